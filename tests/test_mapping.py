"""CG mapping on frames whose answer is known without the code."""

import numpy as np
import openmm.unit as u
import pytest
from openmm import app

from conftest import REPO
from cgtransfer.stages import mapping
from cgtransfer import units
from cgtransfer.md.box import replicate_topology

MASS = {"C": 12.011, "H": 1.008, "O": 15.999}
METHANOL = {"MOH": {"MOH": ["C", "H1", "H2", "H3", "O", "HO"]}}


def write_frames(tmp_path, top, frames_nm, edge_nm):
    top.setPeriodicBoxVectors(((edge_nm, 0, 0), (0, edge_nm, 0), (0, 0, edge_nm)) * u.nanometer)
    with open(tmp_path / "top.pdb", "w") as fh:
        app.PDBFile.writeFile(top, frames_nm[0] * u.nanometer, fh)
    with open(tmp_path / "traj.dcd", "wb") as fh:
        dcd = app.DCDFile(fh, top, 0.001)
        for f in frames_nm:
            dcd.writeModel(f * u.nanometer, periodicBoxVectors=top.getPeriodicBoxVectors())


def test_com_across_periodic_boundary_and_summed_forces(tmp_path):
    template = app.PDBFile(str(REPO / "resources/methanol/methanol.pdb"))
    top = replicate_topology(template.topology, 2)
    mol = np.asarray(template.getPositions(asNumpy=True).value_in_unit(u.nanometer))
    edge = 2.0
    # molecule 1 straddles x = 0: its C sits at x = 0.02 nm, its O (0.141 nm along -x) wraps to x ≈ 1.88 nm
    mol1 = mol * [-1, 1, 1] + [0.02, 1.0, 1.0]
    mol2 = mol + [1.0, 0.5, 0.5]
    unwrapped = np.vstack([mol1, mol2])
    wrapped = unwrapped % edge
    assert wrapped[4, 0] > 1.5 and wrapped[0, 0] < 0.1  # the molecule really is split in the file
    write_frames(tmp_path, top, [wrapped, wrapped], edge)
    rng = np.random.default_rng(3)
    forces = rng.normal(size=(2, 12, 3)).astype(np.float32) * 100
    np.savez(tmp_path / "forces.npz", forces_kj_mol_nm=forces, step=np.arange(2), time_ps=np.arange(2.0))

    cg = mapping.map_trajectory(tmp_path / "top.pdb", tmp_path / "traj.dcd", tmp_path / "forces.npz", METHANOL)
    m = np.array([MASS[a.element.symbol] for a in top.atoms()])
    for k, sl in enumerate((slice(0, 6), slice(6, 12))):
        com_nm = (m[sl, None] * unwrapped[sl]).sum(0) / m[sl].sum()
        expected = (com_nm % edge) * 10.0
        np.testing.assert_allclose(cg["positions"][0, k], expected, atol=2e-3)
        np.testing.assert_allclose(cg["forces"][1, k], forces[1, sl].sum(0) / 41.84, rtol=1e-5, atol=1e-5)
        assert cg["masses"][k] == pytest.approx(m[sl].sum(), rel=1e-4)
    assert cg["positions"].dtype == np.float32 and cg["forces"].dtype == np.float32
    np.testing.assert_allclose(cg["cells"][0], np.diag([20.0, 20.0, 20.0]), atol=1e-4)
    assert cg["species"].tolist() == [[1, 1], [1, 1]]


def test_identity_mapping_of_lj_fluid_reproduces_atoms(argon_run, argon_cg):
    """One bead per argon atom: CG positions = wrapped atom positions (Å), CG forces = atom forces (kcal/mol/Å)."""
    import MDAnalysis as mda

    d = argon_run["dir"]
    u_ = mda.Universe(str(d / "topology.pdb"), str(d / "trajectory.dcd"))
    atoms = np.stack([ts.positions.copy() for ts in u_.trajectory])
    box = argon_run["edge_nm"] * 10
    cg = argon_cg["cg"]
    diff = cg["positions"] - atoms % box
    diff -= box * np.round(diff / box)
    assert np.max(np.abs(diff)) < 1e-3
    raw = np.load(d / "forces.npz")["forces_kj_mol_nm"]
    np.testing.assert_allclose(cg["forces"], units.force_openmm_to_model(raw), rtol=1e-5, atol=1e-6)
    # Newton's third law: pair forces sum to zero over the box
    assert np.abs(cg["forces"].sum(axis=1)).max() < 1e-2


def test_mapping_errors(tmp_path):
    template = app.PDBFile(str(REPO / "resources/methanol/methanol.pdb"))
    top = replicate_topology(template.topology, 1)
    pos = np.asarray(template.getPositions(asNumpy=True).value_in_unit(u.nanometer)) + 0.5
    write_frames(tmp_path, top, [pos], 2.0)
    np.savez(tmp_path / "forces.npz", forces_kj_mol_nm=np.zeros((1, 6, 3), np.float32), step=[0], time_ps=[0.0])
    args = (tmp_path / "top.pdb", tmp_path / "traj.dcd", tmp_path / "forces.npz")
    with pytest.raises(ValueError, match="crosses a bead boundary"):
        mapping.map_trajectory(*args, {"MOH": {"A": ["C", "H1", "H2"], "B": ["H3", "O", "HO"]}})
    with pytest.raises(ValueError, match="not assigned to any bead"):
        mapping.map_trajectory(*args, {"MOH": {"A": ["C", "H1", "H2", "H3", "O"]}})
    with pytest.raises(ValueError, match="no entry in the CG mapping"):
        mapping.map_trajectory(*args, {"XYZ": {"A": ["C"]}})
    two = mapping.map_trajectory(*args, {"MOH": {"CH3": ["C", "H1", "H2", "H3"], "OH": ["O", "HO"]}})
    assert two["species"].tolist() == [[1, 2]]
    assert two["masses"].sum() == pytest.approx(32.042, abs=0.01)
