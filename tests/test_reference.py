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
