"""Known answers of backmapping (cgtransfer.md.backmap, cgtransfer.stages.backmap): an identity-mapped argon frame
comes back as the same frame; placement puts one- and two-bead molecules' bead centres on the CG beads, and the
restrained minimisation keeps them there while it removes the overlaps of a random placement (TIP3P-FB water,
two-bead methanol)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openmm
import openmm.unit as u
import pytest
from openmm import app

from cgtransfer.md import backmap as bm
from cgtransfer.md.box import replicate_topology
from cgtransfer.md.forcefields import cpu_platform, create_system

REPO = Path(__file__).resolve().parents[1]


def minimised(topology, forcefield, placed_A, beads_A, mapping, box_A, k=1e6, constraints="HBonds", cutoff=0.8):
    system = create_system(forcefield, topology, cutoff, constraints, 5e-4, True)
    edge = units_nm(box_A)
    system.setDefaultPeriodicBoxVectors(*(openmm.Vec3(*(edge[i] if i == j else 0 for j in range(3))) for i in range(3)))
    bm.add_bead_restraints(system, topology, mapping, beads_A, k)
    # the product's platform helper: it also limits OpenMM's PME threads (OPENMM_CPU_THREADS), which a bare
    # {"Threads": "1"} does not - a PME context made without it left later PME runs of this process multi-threaded
    # and their forces no longer bit-reproducible (tests/test_determinism.py)
    platform, props = cpu_platform(1)
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), platform, props)
    context.setPositions(units_nm(placed_A) * u.nanometer)
    energies = bm.restrained_minimisation(context, system)
    pos = context.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(u.angstrom)
    return pos, energies


def units_nm(x):
    from cgtransfer import units

    return units.angstrom_to_nm(np.asarray(x, dtype=float))


def test_identity_mapped_argon_frame_comes_back(argon_run, argon_cg):
    cg = argon_cg["cg"]
    frame, box = cg["positions"][-1].astype(float), cg["cells"][-1].diagonal().astype(float)
    top = app.PDBFile(str(argon_run["dir"] / "topology.pdb")).topology
    library = app.PDBFile(str(argon_run["dir"] / "topology.pdb")).getPositions(asNumpy=True).value_in_unit(u.angstrom)
    mapping = {"AR": {"AR": ["AR"]}}
    placed = bm.place_molecules(top, np.asarray(library), box, mapping, frame, box, np.random.default_rng(0))
    np.testing.assert_allclose(placed, frame, atol=1e-9)  # one atom per bead: placement is the frame
    pos, energies = minimised(top, str(REPO / "resources/argon/argon.xml"), placed, frame, mapping, box,
                              constraints="none")
    dev = bm.bead_deviation_A(pos, top, mapping, frame, box)
    assert dev.max() < 0.01  # the same frame (1e6 kJ/mol/nm² against liquid LJ forces: < 0.005 Å)
    assert np.isfinite(energies["energy_minimised_kj_mol"]) and energies["energy_minimised_kj_mol"] < 0


def _liquid(template, n_side, edge_A, mapping, rng):
    """A lattice of ``n_side``³ molecules (the template copied), and its mapped bead centres: a CG frame."""
    pdb = app.PDBFile(str(template))
    top = replicate_topology(pdb.topology, n_side ** 3)
    tpl = np.asarray(pdb.getPositions(asNumpy=True).value_in_unit(u.angstrom))
    spacing = edge_A / n_side
    grid = np.array([(i, j, k) for i in range(n_side) for j in range(n_side) for k in range(n_side)])
    pos = np.concatenate([tpl - tpl.mean(axis=0) + (g + 0.5) * spacing for g in grid])
    box = np.full(3, edge_A)
    top.setPeriodicBoxVectors(np.diag(box / 10.0) * u.nanometer)
    masses = bm.atom_masses(top)
    beads = np.array([np.average(pos[a], axis=0, weights=masses[a]) for _, _, a in bm.bead_atoms(top, mapping)])
    # a CG frame is not the mapped lattice: each molecule shifted rigidly (its bead-bead distance is a molecule's)
    residue = np.array([r for r, _, _ in bm.bead_atoms(top, mapping)])
    beads += rng.normal(0, 0.1, (n_side ** 3, 3))[residue]
    return top, pos, beads, box


@pytest.mark.parametrize("system", ["water", "methanol_2bead"])
def test_placement_and_restrained_minimisation_keep_bead_centres(system):
    rng = np.random.default_rng(4)
    if system == "water":
        template, ff, mapping = REPO / "resources/water/water.pdb", "tip3pfb.xml", {"HOH": {"W": ["O", "H1", "H2"]}}
        n_side, edge = 4, 12.4  # 64 waters at ~1 g/cm³
    else:
        template, ff = REPO / "resources/methanol/methanol.pdb", str(REPO / "resources/methanol/oplsaa_methanol.xml")
        mapping = {"MOH": {"CH3": ["C", "H1", "H2", "H3"], "OH": ["O", "HO"]}}
        n_side, edge = 4, 16.3  # 64 methanols at ~0.78 g/cm³
    top, library, beads, box = _liquid(template, n_side, edge, mapping, rng)
    placed = bm.place_molecules(top, library, box, mapping, beads, box, rng)
    dev0 = bm.bead_deviation_A(placed, top, mapping, beads, box)
    if system == "water":
        assert dev0.max() < 1e-6  # one bead: the centre of mass is placed on it
    else:
        assert dev0.max() < 1.0  # two beads: only the bead-bead distance differs from the library molecule's
    pos, energies = minimised(top, ff, placed, beads, mapping, box, k=1e6, cutoff=0.6)
    dev = bm.bead_deviation_A(pos, top, mapping, beads, box)
    assert dev.max() < 0.1
    assert np.isfinite(energies["energy_minimised_kj_mol"])
    assert energies["energy_minimised_kj_mol"] < energies["energy_placed_kj_mol"]
    if system == "water":
        assert energies["energy_minimised_kj_mol"] < 0  # a cohesive liquid, not overlapping molecules
    else:  # OPLS methanol's energy has a positive intramolecular offset: compare with the unrestrained lattice
        _, lattice = minimised(top, ff, library, beads, mapping, box, k=0.0, cutoff=0.6)
        excess = (energies["energy_minimised_kj_mol"] - lattice["energy_minimised_kj_mol"]) / n_side ** 3
        assert excess < 20.0  # kJ/mol per molecule (measured 12.7: the restrained beads of a jittered lattice)


def test_random_rotation_and_kabsch():
    rng = np.random.default_rng(0)
    r = bm.random_rotation(rng)
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(r) == pytest.approx(1.0)
    p = rng.normal(size=(4, 3))
    p -= p.mean(axis=0)
    np.testing.assert_allclose(bm.kabsch(p, p @ r.T, np.ones(4)), r, atol=1e-10)


def test_backmap_stage_on_identity_mapped_argon(argon_run, tmp_path):
    """The whole stage on the LJ argon fluid (CG run = its own identity-mapped trajectory): the backmapped
    configuration is the last CG frame, and the checks (bead centres, finite energy, density and Ar-Ar RDF after
    a 2-ps unrestrained NVT relaxation against the reference) pass."""
    import MDAnalysis as mda
    import pandas as pd

    from cgtransfer.io import read_json
    from cgtransfer.stages.backmap import backmap_run

    d = argon_run["dir"]
    rho = 108 * 39.948 / (argon_run["edge_nm"] ** 3 * 1e-21 * 6.02214076e23)
    pd.DataFrame({"time_ps": [0.5, 1.0, 1.5], "density_g_cm3": [rho] * 3}).to_csv(tmp_path / "thermo.csv", index=False)
    md = {"nonbonded_cutoff_nm": 0.8, "constraints": "none", "ewald_error_tolerance": 5e-4,
          "dispersion_correction": True, "timestep_fs": 5.0, "friction_per_ps": 5.0, "barostat_frequency": 25}
    settings = {"n_frames": 1, "restraint_k_kj_mol_nm2": 1e6, "bead_tolerance_A": 0.01, "relax_ps": 2.0,
                "density_tolerance_pct": 3.0, "rdf_mae_max": 0.15}
    result = backmap_run(d / "topology.pdb", d / "trajectory.dcd", d / "topology.pdb", d / "trajectory.dcd",
                         tmp_path / "thermo.csv", str(REPO / "resources/argon/argon.xml"), {"AR": {"AR": ["AR"]}}, md,
                         120.0, None, settings, {"nbins": 50, "rmax_A": 8.0}, tmp_path / "bm.pdb",
                         tmp_path / "check.json", label="argon", seed=3)
    assert result["passed"], {k: v for k, v in result.items() if k not in ("rdf", "frames")}
    assert result["rdf_atoms"] == "AR-AR" and result["max_bead_deviation_A"] < 0.01
    assert result["density_bound_pct"] == pytest.approx(3.0)  # a fixed density (NVT): no scatter to allow for
    assert read_json(tmp_path / "check.json")["passed"]
    u_cg = mda.Universe(str(d / "topology.pdb"), str(d / "trajectory.dcd"))
    u_cg.trajectory[-1]
    box = u_cg.dimensions[:3]
    back = mda.Universe(str(tmp_path / "bm.pdb")).atoms.positions
    diff = back - u_cg.atoms.positions
    diff -= box * np.round(diff / box)
    assert np.abs(diff).max() < 0.01  # the same frame (PDB precision 0.001 Å)


def test_density_window_scatter_of_uncorrelated_samples():
    """The reference's density averaged over a window scatters as sd / sqrt(samples per window) for uncorrelated
    samples (known answer), and a fixed density does not scatter."""
    import pandas as pd

    from cgtransfer.stages.backmap import window_density_sd

    rng = np.random.default_rng(7)
    t = 0.1 * np.arange(1, 40001)
    noisy = pd.DataFrame({"time_ps": t, "density_g_cm3": 0.8 + rng.normal(0.0, 0.02, t.size)})
    for window_ps, per in ((1.0, 10), (2.5, 25)):
        # 4000 and 1600 windows: the sd of the window means is known to ~1.1 % and ~1.8 % (1/sqrt(2(n-1)))
        assert window_density_sd(noisy, window_ps) == pytest.approx(0.02 / np.sqrt(per), rel=0.06)
    assert window_density_sd(noisy.assign(density_g_cm3=0.68), 1.0) == pytest.approx(0.0, abs=1e-12)
    assert np.isnan(window_density_sd(noisy.iloc[:25], 1.0))  # two windows: no sd
