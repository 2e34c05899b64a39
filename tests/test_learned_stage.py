"""What a network learned, on known answers (cgtransfer.kinds.learned's triplet energy and energy hierarchy, and
the stage cgtransfer.stages.learned): hippynn's per-layer energy terms add up to the network's energy; a triplet
whose centre sees no neighbour has no three-body energy; a network trained on Lennard-Jones argon is pairwise in
the liquid and its pair projection is the LJ force within its held-out force error; on TIP3P-FB water the
many-body share is clearly non-zero, for the target and for the network; a network that has seen isolated beads
(a dilute argon gas beside the liquid) recovers the isolated LJ pair and a near-zero triplet energy. Two small
networks are trained here (argon 90 epochs on liquid and gas, water 20 epochs: ~1.5 CPU-minutes together)."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from conftest import ARGON_EPSILON_KJ, ARGON_SIGMA_NM, REPO, TINY_NETWORK, TINY_TRAINING
from cgtransfer import units
from cgtransfer.dataset import time_block_split
from cgtransfer.kinds import learned
from cgtransfer.kinds.registry import load_model

SIGMA_A = ARGON_SIGMA_NM * 10.0
EPS_KCAL = float(units.kj_to_kcal(ARGON_EPSILON_KJ))
PRIOR = {"width_A": 0.15, "force_fraction_at_onset": 0.05}


def lj_force(r):
    """Pair force (kcal/mol/Å, > 0 repulsive) of the fixture's argon."""
    r = np.asarray(r, dtype=np.float64)
    sr6 = (SIGMA_A / r) ** 6
    return 24.0 * EPS_KCAL / r * (2.0 * sr6**2 - sr6)


def train(datasets, summaries, states, out, epochs, **network):
    from cgtransfer.stages.train import train_model

    training = dict(TINY_TRAINING, max_epochs=epochs, termination_patience=epochs, plateau_patience=epochs)
    train_model("hipnn", list(datasets), list(summaries), list(states),
                {"network": {**TINY_NETWORK, **network}, "training": training}, PRIOR, training, out,
                label=f"{'+'.join(states)}/learned")
    return load_model(out)


@pytest.fixture(scope="module")
def tiny(tiny_model):
    return load_model(tiny_model)


@pytest.fixture(scope="module")
def argon_gas(tmp_path_factory):
    """108 LJ argon atoms as a dilute supercritical gas (240 K = 2 ε/k, 0.15 g/cm³, ρσ³ ≈ 0.09; 30 frames 0.2 ps
    apart, ~5 s), identity-mapped: frames in which a bead has no, one or two neighbours within the network's
    range, the environments of the isolated pair and triplet that a liquid never shows."""
    from cgtransfer.io import write_json, write_npz
    from cgtransfer.stages import mapping

    from conftest import argon_system, argon_topology, record_lj_trajectory

    d = tmp_path_factory.mktemp("argon_gas")
    n, rho = 108, 0.15
    edge = (n * 39.948 / rho * 1.66053906660e-3) ** (1 / 3)
    grid = np.array([(i, j, k) for i in range(5) for j in range(5) for k in range(5)])[:n]
    pos = (grid + 0.5) * edge / 5 + np.random.default_rng(2).normal(0, 0.01, (n, 3))
    record_lj_trajectory(argon_topology(n, edge), argon_system(n, edge), pos, 240.0, d, n_frames=30,
                         equilibration_steps=400, seed=2)
    cg = mapping.map_trajectory(d / "topology.pdb", d / "trajectory.dcd", d / "forces.npz", {"AR": {"AR": ["AR"]}})
    write_npz(d / "dataset.npz", **cg)
    write_json(d / "summary.json", mapping.summarize_mapped(cg, mapping.reference_rdfs(cg, 50, 8.0), 1e-3))
    return {"cg": cg, "dataset": d / "dataset.npz", "summary": d / "summary.json"}


@pytest.fixture(scope="module")
def argon_net(argon_cg, argon_gas, tmp_path_factory):
    """The tiny network trained to convergence (90 epochs, ~50 s) on the argon liquid of the session fixture and
    on the dilute gas. The liquid alone never shows a bead with one or two neighbours, and a network fitted on it
    alone extrapolates there (measured, 30 epochs on the liquid: its isolated two-bead force 0.16 kcal/mol/Å from
    LJ against a held-out RMSE of 0.067, its isolated first-shell triplet 0.08 kcal/mol, 1/3 of ε). With the gas,
    measured: 30 epochs 0.049 vs 0.053 and triplet 0.058; 60 epochs 0.035 vs 0.031 and 0.020; 90 epochs 0.022 vs
    0.025 and 0.016 kcal/mol: the isolated answers converge with the fit, as the liquid's do."""
    return train([argon_cg["dataset"], argon_gas["dataset"]], [argon_cg["summary"], argon_gas["summary"]],
                 ["T120", "T240"], tmp_path_factory.mktemp("argon_net") / "ckpt", 90)


@pytest.fixture(scope="module")
def water(tmp_path_factory):
    """125 TIP3P-FB waters at 300 K, 1 g/cm³ (3 ps, 30 frames, ~6 s), one bead per molecule, and a tiny network
    trained on them (20 epochs)."""
    from cgtransfer.io import write_json, write_npz
    from cgtransfer.md.box import build_box
    from cgtransfer.stages import mapping
    from cgtransfer.stages.reference import run_reference

    d = tmp_path_factory.mktemp("water")
    md = {"platform": "CPU", "timestep_fs": 2.0, "friction_per_ps": 5.0, "nonbonded_cutoff_nm": 0.7,
          "ewald_error_tolerance": 5e-4, "dispersion_correction": True, "constraints": "HBonds",
          "barostat_frequency": 25, "minimize_max_iterations": 200, "equilibration_ps": 1.0, "production_ps": 3.0,
          "report_interval_ps": 0.1, "checkpoint_interval_ps": 0}
    build_box(REPO / "resources/water/water.pdb", 125, 1.0, d / "packed.pdb", seed=3)
    run_reference(d / "packed.pdb", ["tip3pfb.xml"], 300.0, None, 1.0, md, d / "topology.pdb", d / "trajectory.dcd",
                  d / "forces.npz", d / "thermo.csv", threads=1, seed=3)
    cg = mapping.map_trajectory(d / "topology.pdb", d / "trajectory.dcd", d / "forces.npz",
                                {"HOH": {"W": ["O", "H1", "H2"]}})
    write_npz(d / "dataset.npz", **cg)
    write_json(d / "summary.json", mapping.summarize_mapped(cg, mapping.reference_rdfs(cg, 35, 7.0), 1e-3))
    net = train([d / "dataset.npz"], [d / "summary.json"], ["T300"], d / "ckpt", 20, dist_soft_min=2.2)
    return {"cg": cg, "dataset": d / "dataset.npz", "model": net}


def held_out(model, cg):
    """The network's predicted and the reference forces on the test block, and the fit block's frames."""
    train_idx, _, test = time_block_split(len(cg["positions"]), 0.1, 0.1)
    _, pred = model.predict_frames(cg, test)
    return pred, np.asarray(cg["forces"][test], dtype=np.float64), train_idx, test


def target_many_body(cg, cutoff, train_idx, test):
    """The MS-CG least squares of the reference forces on the training block, scored on the test block."""
    types = [str(t) for t in cg["bead_types"]]
    fit = learned.pair_projection(cg["species"][train_idx], cg["positions"][train_idx], cg["cells"][train_idx],
                                  cg["forces"][train_idx], types, cutoff, regularization=1e-6)
    pred = learned.pair_forces_on_frames(fit["pair_forces"], types, cg["species"][test], cg["positions"][test],
                                         cg["cells"][test])
    return fit, learned.force_r2(pred, cg["forces"][test])


# ------------------------------------------------------------------ exact answers on any network
def test_energy_terms_add_up_to_the_network_energy(tiny, argon_cg):
    """hippynn's HEnergy energy_terms (cumulative per layer) differenced per layer sum to the network's energy
    (the model without its prior); the non-interacting layer-0 term (one-hot species) is the same in every frame
    of fixed composition; the hierarchicality lies in [0, number of interaction layers]."""
    from cgtransfer.kinds.hipnn_force import ModelEvaluator

    cg = argon_cg["cg"]
    frames = np.arange(0, len(cg["positions"]), 5)
    h = learned.energy_hierarchy(tiny, cg, frames)
    assert list(h) == ["HEnergy"]
    terms = h["HEnergy"]["layer_terms_kcal_mol"]
    assert terms.shape == (len(frames), TINY_NETWORK["n_interaction_layers"] + 1)
    network, _ = ModelEvaluator(tiny.directory, include_prior=False)(cg["species"][frames], cg["positions"][frames],
                                                                     cg["cells"][frames])
    print("layer terms per bead:", terms.mean(0) / cg["species"].shape[1], "network energy", network[:3])
    np.testing.assert_allclose(terms.sum(axis=1), network, rtol=1e-5, atol=1e-4)
    assert np.ptp(terms[:, 0]) < 1e-6 * abs(terms[0, 0]) and np.ptp(terms[:, 1]) > 0
    hier = h["HEnergy"]["hierarchicality"]
    assert np.all((hier >= 0) & (hier <= TINY_NETWORK["n_interaction_layers"]))


def test_three_body_energy_of_a_centre_without_neighbours_is_zero(tiny):
    """With j and k beyond the range from i, the centre sees nobody: ΔE₃ = 0 at every angle (to float64 rounding)
    and the pair part is the j–k two-bead energy at r_jk; within range, the pair part is the sum of the three
    two-bead energies (the evaluation is consistent with `two_bead_curve`)."""
    rc = tiny.interaction_range_A
    far = learned.three_body_energy(tiny, rc + 0.5, [20.0, 30.0, 60.0])
    print("far triplet:", far["three_body_kcal_mol"], far["pair_sum_kcal_mol"], far["r_jk_A"])
    assert np.abs(far["three_body_kcal_mol"]).max() < 1e-9
    inside = far["r_jk_A"] < rc
    assert inside.sum() == 2  # 20° and 30°: j and k interact
    pair_jk = learned.two_bead_curve(tiny, far["r_jk_A"][inside])["energy_kcal_mol"]
    np.testing.assert_allclose(far["pair_sum_kcal_mol"][inside], pair_jk, rtol=1e-8, atol=1e-10)
    assert far["pair_sum_kcal_mol"][~inside] == pytest.approx(0.0, abs=1e-10)
    near = learned.three_body_energy(tiny, 4.0, [90.0, 180.0])
    two = learned.two_bead_curve(tiny, np.array([4.0, *near["r_jk_A"]]))["energy_kcal_mol"]
    np.testing.assert_allclose(near["pair_sum_kcal_mol"], 2 * two[0] + two[1:], rtol=1e-8, atol=1e-10)


# ------------------------------------------------------------------ argon: pairwise; water: many-body
def test_argon_network_is_pairwise_and_its_pair_projection_is_lj(argon_net, argon_cg):
    """Identity-mapped LJ argon: the target is pairwise (MS-CG's held-out R² > 0.999); the trained network's own
    forces are too (many-body share < 1 %), and the conditional mean of its pair-projected force is the LJ pair
    force: its RMS difference over the liquid's pairs is below the network's held-out force RMSE, the well within
    0.1 Å of 2^(1/6) σ."""
    cg = argon_cg["cg"]
    pred, ref, train_idx, test = held_out(argon_net, cg)
    rmse = float(np.sqrt(np.mean((pred - ref) ** 2)))
    rc = argon_net.interaction_range_A
    _, target_r2 = target_many_body(cg, rc, train_idx, test)
    proj = learned.network_pair_projection(argon_net, cg, train_idx, regularization=1e-6)
    pf = proj["pair_forces"]["AR-AR"]
    grid = np.arange(0.01, rc, 0.02)
    counts = learned.pair_distance_counts(cg["species"][train_idx], cg["positions"][train_idx],
                                          cg["cells"][train_idx], ["AR"], grid, rc)["AR-AR"]
    diff = learned.pair_force_rms_difference(grid, pf.force(grid), lj_force, pf.r_wall, rc - 0.02, weights=counts)
    r = np.arange(pf.r_wall, rc, 0.01)
    features = learned.pair_curve_features(r, pf.energy(r), pf.force(r))
    print(f"argon: held-out RMSE {rmse:.4f}, R² {learned.force_r2(pred, ref):.4f}; target MS-CG held-out R² "
          f"{target_r2:.6f}; network many-body share {proj['many_body_share']:.5f}; pair projection vs LJ over the "
          f"liquid's pairs {diff['rms_kcal_mol_A']:.4f} kcal/mol/Å; well {features['well_position_A']:.3f} Å "
          f"{features['well_depth_kcal_mol']:.3f} kcal/mol (LJ {2 ** (1 / 6) * SIGMA_A:.3f} Å, -{EPS_KCAL:.3f})")
    assert target_r2 > 0.999
    assert proj["many_body_share"] < 0.01
    assert diff["rms_kcal_mol_A"] < rmse
    assert features["well_position_A"] == pytest.approx(2 ** (1 / 6) * SIGMA_A, abs=0.1)


def test_argon_isolated_pair_and_triplet_recover_lj(argon_net, argon_cg):
    """The known answer for isolated beads, on the network that has seen them (the dilute gas beside the liquid):
    the two-bead pair force is LJ within the held-out force error (over the liquid's pairs) and the first-shell
    triplet's three-body energy is near zero (below 10 % of ε at every angle)."""
    cg = argon_cg["cg"]
    pred, ref, train_idx, _ = held_out(argon_net, cg)
    rmse = float(np.sqrt(np.mean((pred - ref) ** 2)))
    rc = argon_net.interaction_range_A
    grid = np.arange(3.0, rc, 0.02)
    counts = learned.pair_distance_counts(cg["species"][train_idx], cg["positions"][train_idx],
                                          cg["cells"][train_idx], ["AR"], grid, rc)["AR-AR"]
    curve = learned.two_bead_curve(argon_net, grid)
    diff = learned.pair_force_rms_difference(grid, curve["force_kcal_mol_A"], lj_force, 3.0, rc - 0.02,
                                             weights=counts)
    triplet = learned.three_body_energy(argon_net, 2 ** (1 / 6) * SIGMA_A, np.arange(60.0, 181.0, 10.0))
    e3 = float(np.abs(triplet["three_body_kcal_mol"]).max())
    print(f"isolated pair vs LJ {diff['rms_kcal_mol_A']:.4f} (held-out RMSE {rmse:.4f}); triplet max |ΔE3| "
          f"{e3:.4f} kcal/mol (ε {EPS_KCAL:.3f})")
    assert diff["rms_kcal_mol_A"] < rmse and e3 < 0.1 * EPS_KCAL


def test_water_many_body_share_is_clearly_nonzero(water, argon_net, argon_cg):
    """TIP3P-FB water mapped to one bead: no pair potential represents the target (MS-CG's held-out R² < 0.8;
    argon > 0.999), and the network fitted on it is clearly less pairwise than the argon network (many-body share
    > 2 % and > 5 × argon's), its first-shell triplet energy larger than argon's."""
    cg, net = water["cg"], water["model"]
    _, _, train_idx, test = held_out(net, cg)
    fit, target_r2 = target_many_body(cg, net.interaction_range_A, train_idx, test)
    proj = learned.network_pair_projection(net, cg, train_idx, regularization=1e-6)
    argon = learned.network_pair_projection(argon_net, argon_cg["cg"], np.arange(24), regularization=1e-6)
    pf = fit["pair_forces"]["W-W"]
    r = np.arange(pf.r_wall, pf.cutoff, 0.01)
    shell = learned.pair_curve_features(r, pf.energy(r), pf.force(r))["contact_A"]
    e3_water = np.abs(learned.three_body_energy(net, shell, np.arange(60.0, 181.0, 10.0))["three_body_kcal_mol"])
    e3_argon = np.abs(learned.three_body_energy(argon_net, 2 ** (1 / 6) * SIGMA_A,
                                                np.arange(60.0, 181.0, 10.0))["three_body_kcal_mol"])
    print(f"water: target MS-CG held-out R² {target_r2:.3f}; network many-body share {proj['many_body_share']:.4f} "
          f"(argon {argon['many_body_share']:.5f}); first shell {shell:.2f} Å, triplet max |ΔE3| "
          f"{e3_water.max():.3f} kcal/mol (argon {e3_argon.max():.3f})")
    assert target_r2 < 0.8
    assert proj["many_body_share"] > 0.02 and proj["many_body_share"] > 5 * argon["many_body_share"]
    assert e3_water.max() > e3_argon.max()


# ------------------------------------------------------------------ the stage
def test_learned_stage_writes_consistent_results(argon_net, argon_cg, tmp_path):
    """Rule learned's stage on the argon network and rule learned_summary's table: the files, the same many-body
    share as the function, MS-CG's held-out R² ≈ 1 for argon, the layer-0 energy term constant, no machine paths."""
    from cgtransfer.stages.learned import learned_model, learned_table

    out = {k: tmp_path / f"{k}.{'json' if k == 'json' else 'csv'}" for k in ("json", "curves", "triplet", "hierarchy")}
    res = learned_model(argon_net.directory, {"T120": argon_cg["dataset"]}, {"T120": 120.0},
                        {"valid_fraction": 0.1, "test_fraction": 0.1}, {"knot_spacing_A": 0.1}, out, model_name="net")
    st = res["states"]["T120"]
    pr = st["pairs"]["AR-AR"]
    print(json.dumps({k: v for k, v in st.items() if k != "pairs"}, indent=1), json.dumps(pr, indent=1),
          res["triplets"])
    assert st["mscg_state_test_r2"] > 0.999 and st["many_body_share"] < 0.01
    assert st["many_body_share"] == pytest.approx(1.0 - st["network_pair_r2"], abs=1e-12)
    assert st["network_test_r2"] > 0.9 and st["beyond_pair_r2"] < 0.1
    assert pr["projected_vs_mscg_pair_weighted_rms_kcal_mol_A"] < st["network_force_rmse_kcal_mol_A"]
    assert pr["mscg"]["well_position_A"] == pytest.approx(2 ** (1 / 6) * SIGMA_A, abs=0.05)
    assert st["hierarchy"]["HEnergy"]["layer_std_kcal_mol_per_bead"][0] < 1e-6
    text = out["json"].read_text()
    assert str(tmp_path) not in text and "/tmp" not in text and "NaN" not in text
    curves = pd.read_csv(out["curves"])
    assert set(curves["source"]) == {"effective", "projected", "mscg"}
    triplet = pd.read_csv(out["triplet"])
    # the CSV holds six significant digits (write_csv): half a unit of the sixth for a contact of 1-10 Å
    assert len(triplet) > 5 and triplet["r_A"].iloc[0] == pytest.approx(pr["mscg"]["contact_A"], abs=5.01e-6)
    summary = {k: tmp_path / name for k, name in (("csv", "learned.csv"), ("json", "trends.json"),
                                                 ("figure", "learned.png"))}
    table = learned_table({"net": out["json"]}, {"net": out["curves"]}, {"net": out["triplet"]}, {}, summary,
                          system="argon")
    assert len(table) == 1 and summary["figure"].stat().st_size > 10_000
    assert math.isclose(table["many_body_share"].iloc[0], st["many_body_share"])


def test_projection_chooses_its_regularization_by_cross_validation(argon_cg):
    """Among candidate λ the projection takes the one cross-validation prefers, as the MS-CG kind: on exactly
    pairwise forces the least-squares limit (1e-8) and not a λ that flattens the force (10); one candidate needs
    no folds, several do."""
    cg = argon_cg["cg"]
    f = np.arange(0, 24, 2)
    args = (cg["species"][f], cg["positions"][f], cg["cells"][f], cg["forces"][f], ["AR"], 7.0)
    fit = learned.pair_projection(*args, regularization=[1e-8, 10.0], cv_folds=3)
    print(fit["cv_r2_by_regularization"])
    assert fit["regularization"] == 1e-8 and fit["cv_r2"] > 0.999
    assert fit["cv_r2_by_regularization"][10.0] < fit["cv_r2_by_regularization"][1e-8] - 0.01
    assert learned.pair_projection(*args, regularization=[1e-8])["regularization"] == 1e-8
    with pytest.raises(ValueError, match="cv_folds"):
        learned.pair_projection(*args, regularization=[1e-8, 10.0])
