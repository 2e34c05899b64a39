"""Several molecule types in one box (systems as data): packmol packs them, OpenMM runs them with force fields
loaded together, MDAnalysis maps them to two bead types, and every bead-type pair gets its RDF and its MS-CG pair
force. Argon dissolved in TIP3P-FB water: argon.xml + the water model OpenMM ships."""

import numpy as np
import openmm.unit as u
import pytest
from openmm import app

from conftest import REPO
from cgtransfer.stages import mapping
from cgtransfer import units
from cgtransfer.md.box import build_mixture_box, molecule_mass_amu
from cgtransfer.stages.reference import run_reference

ARGON, WATER = REPO / "resources/argon/argon.pdb", REPO / "resources/water/water.pdb"
FORCEFIELDS = [str(REPO / "resources/argon/argon.xml"), "tip3pfb.xml"]
MD = {"platform": "CPU", "timestep_fs": 2.0, "friction_per_ps": 5.0, "nonbonded_cutoff_nm": 0.7,
      "ewald_error_tolerance": 5e-4, "dispersion_correction": True, "constraints": "HBonds", "barostat_frequency": 25,
      "minimize_max_iterations": 200, "equilibration_ps": 1.0, "production_ps": 2.0, "report_interval_ps": 0.1,
      "checkpoint_interval_ps": 0}


@pytest.fixture(scope="module")
def mixture_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("mixture")
    info = build_mixture_box([(ARGON, 40), (WATER, 260)], 1.0, d / "packed.pdb", seed=3)
    summary = run_reference(d / "packed.pdb", FORCEFIELDS, 300.0, None, 1.0, MD, d / "topology.pdb",
                            d / "trajectory.dcd", d / "forces.npz", d / "thermo.csv", threads=1, seed=3)
    return d, info, summary


def test_mixture_box_composition_and_density(mixture_run):
    d, info, _ = mixture_run
    pdb = app.PDBFile(str(d / "packed.pdb"))
    names = [r.name for r in pdb.topology.residues()]
    assert names == ["AR"] * 40 + ["HOH"] * 260  # the types follow one another in the order given
    assert info["n_molecules"] == 300
    mass = 40 * molecule_mass_amu(app.PDBFile(str(ARGON)).topology) + 260 * molecule_mass_amu(app.PDBFile(str(WATER)).topology)
    edge_nm = pdb.topology.getPeriodicBoxVectors()[0][0].value_in_unit(u.nanometer)
    assert units.density_g_cm3(mass, edge_nm**3) == pytest.approx(1.0, rel=1e-3)
    assert pdb.topology.getNumBonds() == 2 * 260  # O-H bonds of every water, none for argon
    # packed without overlaps: every atom pair of different molecules at least ~packmol's tolerance apart
    from MDAnalysis.lib.distances import self_distance_array

    pos = pdb.getPositions(asNumpy=True).value_in_unit(u.angstrom)
    residue = np.array([a.residue.index for a in pdb.topology.atoms()])
    dist = self_distance_array(pos.astype(np.float32), box=np.array([edge_nm * 10] * 3 + [90.0] * 3, dtype=np.float32))
    i, j = np.triu_indices(len(pos), 1)
    assert dist[residue[i] != residue[j]].min() > 1.5


def test_mixture_maps_to_two_bead_types_with_every_pair(mixture_run):
    d, _, summary = mixture_run
    assert 280 < summary["mean_temperature_K"] < 320
    cg = mapping.map_trajectory(d / "topology.pdb", d / "trajectory.dcd", d / "forces.npz",
                                {"AR": {"AR": ["AR"]}, "HOH": {"W": ["O", "H1", "H2"]}})
    assert list(cg["bead_types"]) == ["AR", "W"]
    assert list(cg["species"][0]) == [1] * 40 + [2] * 260
    np.testing.assert_allclose(cg["masses"][:40], 39.948, rtol=1e-4)
    np.testing.assert_allclose(cg["masses"][40:], 18.015, rtol=1e-3)
    # the bead forces of the whole box sum to the all-atom total (internal and constraint forces cancel)
    with np.load(d / "forces.npz") as f:
        total_aa = units.force_openmm_to_model(f["forces_kj_mol_nm"].sum(axis=1))
    np.testing.assert_allclose(cg["forces"].astype(np.float64).sum(axis=1), total_aa, atol=0.05)
    table = mapping.reference_rdfs(cg, 35, 7.0)
    assert list(dict.fromkeys(table["pair"])) == ["AR-AR", "AR-W", "W-W"]
    peaks = {p: mapping.rdfmod.first_peak(t["r_A"].to_numpy(), t["g"].to_numpy())[0] for p, t in table.groupby("pair")}
    assert 2.5 < peaks["W-W"] < 3.1  # water's hydrogen-bonded neighbours
    assert 3.2 < peaks["AR-W"] < 4.2  # argon's hydration shell (sigma_ArO ~ 3.3 Å)


def test_mscg_fits_one_pair_force_per_bead_type_pair(mixture_run, tmp_path):
    from cgtransfer.io import write_json, write_npz
    from cgtransfer.kinds.registry import load_model
    from cgtransfer.stages.train import train_model

    d, _, _ = mixture_run
    cg = mapping.map_trajectory(d / "topology.pdb", d / "trajectory.dcd", d / "forces.npz",
                                {"AR": {"AR": ["AR"]}, "HOH": {"W": ["O", "H1", "H2"]}})
    table = mapping.reference_rdfs(cg, 35, 7.0)
    write_npz(tmp_path / "dataset.npz", **cg)
    write_json(tmp_path / "summary.json", mapping.summarize_mapped(cg, table, 1e-3))
    settings = {"mscg": {"cutoff_A": 7.0, "knot_spacing_A": 0.25, "spline_degree": 3, "regularization": [1e-4, 1e-2],
                         "cv_folds": 3, "selection_tolerance": 0.001, "table_spacing_A": 0.01}}
    train_model("mscg", [tmp_path / "dataset.npz"], [tmp_path / "summary.json"], ["T300"], settings,
                {"width_A": 0.15, "force_fraction_at_onset": 0.05},
                {"device": "cpu", "valid_fraction": 0.1, "test_fraction": 0.1}, tmp_path / "mscg", label="mix/mscg")
    model = load_model(tmp_path / "mscg")
    assert sorted(p.pair for p in model.pairs) == ["AR-AR", "AR-W", "W-W"]
    pair_table = model.pair_table()
    assert set(pair_table["pair"]) == {"AR-AR", "AR-W", "W-W"}
    # water-water is the strongly attractive pair (hydrogen bonds): its well is the deepest
    depth = {p: pair_table[pair_table["pair"] == p]["energy_kcal_mol"].min() for p in ("AR-W", "W-W")}
    assert depth["W-W"] < depth["AR-W"]
