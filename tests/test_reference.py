"""The all-atom reference stage on a small real methanol box (NVT state: the density-scaling path)."""

import numpy as np
import openmm
import openmm.unit as u
import pandas as pd
import pytest
from openmm import app

from conftest import REPO
from cgtransfer.md.box import build_box
from cgtransfer.md.forcefields import create_system
from cgtransfer.stages.reference import run_reference

XML = REPO / "resources/methanol/oplsaa_methanol.xml"
MD = dict(platform="CPU", threads=1, timestep_fs=2.0, friction_per_ps=1.0, nonbonded_cutoff_nm=0.7,
          ewald_error_tolerance=5e-4, dispersion_correction=True, constraints="HBonds", barostat_frequency=25,
          minimize_max_iterations=200, equilibration_ps=0.1, production_ps=0.2, report_interval_ps=0.05)


def test_nvt_reference_records_forces_of_its_own_frames(tmp_path):
    build_box(REPO / "resources/methanol/methanol.pdb", 64, 0.75, tmp_path / "box.pdb", seed=3)
    out = {k: tmp_path / f for k, f in (("top", "top.pdb"), ("traj", "traj.dcd"), ("forces", "f.npz"), ("thermo", "t.csv"))}
    summary = run_reference(tmp_path / "box.pdb", XML, 300.0, None, 0.80, MD, out["top"], out["traj"], out["forces"],
                            out["thermo"], threads=1)
    thermo = pd.read_csv(out["thermo"])
    assert len(thermo) == 4 == summary["n_frames"]
    assert np.allclose(thermo["density_g_cm3"], 0.80, rtol=1e-6)  # NVT at the state's density
    assert set(thermo.columns) >= {"time_ps", "temperature_K", "potential_energy_kJ_mol", "volume_nm3", "density_g_cm3"}
    data = np.load(out["forces"])
    forces = data["forces_kj_mol_nm"]
    assert forces.shape == (4, 384, 3) and np.isfinite(forces).all()

    # the stored forces belong to the stored frames: recompute them at the DCD positions
    import MDAnalysis as mda

    universe = mda.Universe(str(out["top"]), str(out["traj"]))
    pdb = app.PDBFile(str(out["top"]))
    system = create_system(XML, pdb.topology, MD["nonbonded_cutoff_nm"], "HBonds", 5e-4, True)
    ctx = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("CPU"),
                         {"Threads": "1"})
    for i, ts in enumerate(universe.trajectory):
        edge = ts.dimensions[0] / 10.0
        ctx.setPeriodicBoxVectors(*(openmm.Vec3(*(edge if a == b else 0 for b in range(3))) for a in range(3)))
        ctx.setPositions(ts.positions / 10.0 * u.nanometer)
        again = ctx.getState(getForces=True).getForces(asNumpy=True).value_in_unit(u.kilojoule_per_mole / u.nanometer)
        err = np.linalg.norm(again - forces[i], axis=1) / np.linalg.norm(forces[i], axis=1).mean()
        assert np.median(err) < 0.01, f"frame {i}"
        # other frames do not match: the check can tell frames apart
        if i > 0:
            other = np.linalg.norm(again - forces[i - 1], axis=1) / np.linalg.norm(forces[i - 1], axis=1).mean()
            assert np.median(other) > 0.1
    assert abs(summary["mean_temperature_K"] - 300.0) < 60.0


def test_reference_rejects_both_or_neither_of_pressure_and_density(tmp_path):
    with pytest.raises(ValueError, match="exactly one of pressure_bar and density_g_cm3"):
        run_reference(tmp_path / "x.pdb", XML, 300.0, 1.0, 0.8, MD, *(tmp_path / f for f in "abcd"))


def test_an_exploding_reference_names_state_and_step_and_keeps_the_last_good_frame(tmp_path):
    """A reference run that blows up (here: a 40-fs step for an all-atom liquid) stops with a message naming the
    system/state label, the phase and the step; the last sane configuration is written beside the log for
    inspection, and none of the run's outputs exists."""
    from cgtransfer.errors import SimulationDiverged

    build_box(REPO / "resources/methanol/methanol.pdb", 64, 0.75, tmp_path / "box.pdb", seed=3)
    md = {**MD, "timestep_fs": 40.0, "equilibration_ps": 20.0, "minimize_max_iterations": 20}
    out = [tmp_path / f for f in ("top.pdb", "traj.dcd", "f.npz", "t.csv")]
    with pytest.raises(SimulationDiverged) as err:
        run_reference(tmp_path / "box.pdb", XML, 300.0, 1.0, None, md, *out, threads=1,
                      label="reference_md methanol/T300", failure_pdb=tmp_path / "logs" / "T300.last_good.pdb")
    text = str(err.value)
    assert "reference_md methanol/T300 (equilibration): diverged" in text and "step" in text, text
    assert "T300.last_good.pdb" in text
    good = app.PDBFile(str(tmp_path / "logs" / "T300.last_good.pdb"))
    assert good.topology.getNumAtoms() == 64 * 6
    assert np.all(np.isfinite(good.getPositions(asNumpy=True).value_in_unit(u.nanometer)))
    assert not any(p.exists() for p in out)
    assert not list(tmp_path.glob(".*.tmp*"))


# element masses (amu) of OPLS-AA methanol, known without the code: C, O, H
ELEMENT_MASS = {"C": 12.011, "O": 15.999, "H": 1.008}


def test_hydrogen_mass_repartitioning_keeps_each_molecule_mass():
    """HMR moves mass from each heavy atom to its hydrogens: every hydrogen weighs hydrogen_mass_amu, carbon
    loses 3 × (m_H' - m_H), oxygen 1 × (m_H' - m_H), each molecule (and the box) keeps its 32.042 amu."""
    from cgtransfer.md.box import replicate_topology

    template = app.PDBFile(str(REPO / "resources/methanol/methanol.pdb")).topology
    top = replicate_topology(template, 4)
    top.setPeriodicBoxVectors(((2.0, 0, 0), (0, 2.0, 0), (0, 0, 2.0)) * u.nanometer)
    true = create_system(XML, top, 0.7, "HBonds", 5e-4, True)
    hmr = create_system(XML, top, 0.7, "HBonds", 5e-4, True, hydrogen_mass_amu=3.0)
    shift = 3.0 - ELEMENT_MASS["H"]
    expect = {"H": 3.0, "C": ELEMENT_MASS["C"] - 3 * shift, "O": ELEMENT_MASS["O"] - shift}
    for atom in top.atoms():
        m_true = true.getParticleMass(atom.index).value_in_unit(u.amu)
        m_hmr = hmr.getParticleMass(atom.index).value_in_unit(u.amu)
        assert m_true == pytest.approx(ELEMENT_MASS[atom.element.symbol], abs=1e-3), atom
        assert m_hmr == pytest.approx(expect[atom.element.symbol], abs=1e-3), atom
    for residue in top.residues():
        idx = [a.index for a in residue.atoms()]
        total = sum(hmr.getParticleMass(i).value_in_unit(u.amu) for i in idx)
        assert total == pytest.approx(sum(true.getParticleMass(i).value_in_unit(u.amu) for i in idx), abs=1e-9)
        assert total == pytest.approx(sum(ELEMENT_MASS.values()) + 3 * ELEMENT_MASS["H"], abs=1e-3)
    assert hmr.getNumConstraints() == true.getNumConstraints() == 4 * 4  # the X-H bonds


def test_hmr_reference_maps_to_true_mass_centres(tmp_path, monkeypatch):
    """A reference run with hydrogen_mass_amu (4 fs, HBonds) uses the repartitioned masses, but its mapped beads
    sit at the centres of mass of the true (element) masses and weigh 32.042 amu: the mapping reads masses from
    the topology, never from the System."""
    import MDAnalysis as mda

    from cgtransfer.stages import reference
    from cgtransfer.stages.mapping import map_trajectory

    used = {}

    def spy(*args, **kwargs):
        system = create_system(*args, **kwargs)
        used["masses"] = [system.getParticleMass(i).value_in_unit(u.amu) for i in range(system.getNumParticles())]
        return system

    monkeypatch.setattr(reference, "create_system", spy)
    build_box(REPO / "resources/methanol/methanol.pdb", 64, 0.75, tmp_path / "box.pdb", seed=3)
    md = {**MD, "timestep_fs": 4.0, "hydrogen_mass_amu": 3.5, "equilibration_ps": 0.04, "production_ps": 0.12,
          "report_interval_ps": 0.04}
    out = [tmp_path / f for f in ("top.pdb", "traj.dcd", "f.npz", "t.csv")]
    summary = run_reference(tmp_path / "box.pdb", XML, 300.0, None, 0.79, md, *out, threads=1)
    assert summary["n_frames"] == 3
    masses = np.asarray(used["masses"]).reshape(64, 6)
    assert np.allclose(masses[:, [1, 2, 3, 5]], 3.5)  # the run had HMR
    assert np.allclose(masses.sum(axis=1), 32.042, atol=1e-3)

    cg = map_trajectory(out[0], out[1], out[2], {"MOH": {"MOH": ["C", "H1", "H2", "H3", "O", "HO"]}})
    assert np.allclose(cg["masses"], 32.042, atol=1e-3)
    universe = mda.Universe(str(out[0]), str(out[1]))
    weights = np.array([ELEMENT_MASS[n[0]] for n in ["C", "H", "H", "H", "O", "H"]])
    for f, ts in enumerate(universe.trajectory):
        box = ts.dimensions[:3]
        pos = ts.positions.reshape(64, 6, 3).astype(np.float64)
        pos = pos[:, :1] + (pos - pos[:, :1] - box * np.round((pos - pos[:, :1]) / box))  # molecules whole
        com = (weights[None, :, None] * pos).sum(axis=1) / weights.sum()
        com -= np.floor(com / box) * box
        d = cg["positions"][f] - com
        d -= box * np.round(d / box)
        assert np.abs(d).max() < 1e-3, f"frame {f}"
        # the repartitioned masses would put the bead elsewhere: the check can tell them apart
        hmr = (masses[:1, :, None] * pos).sum(axis=1) / masses[0].sum()
        hmr -= np.floor(hmr / box) * box
        d_hmr = cg["positions"][f] - hmr
        d_hmr -= box * np.round(d_hmr / box)
        assert np.abs(d_hmr).max() > 0.01
