"""What a network learned (cgtransfer.kinds.learned), on answers that hold whatever the training: the two-bead
pair force is −dU/dr and does not depend on the box or the pair's orientation, the prior is the exact difference
between the model and the network alone; the pair projection explains exactly pairwise forces (the argon
fixture's LJ forces) entirely and forces with a three-body term clearly less; MS-CG recovers the LJ pair force,
so the RMS difference of its table to the exact force is ≈ 0."""

import math

import numpy as np
import pytest
import torch

from conftest import ARGON_EPSILON_KJ, ARGON_SIGMA_NM
from cgtransfer import units
from cgtransfer.kinds import learned
from cgtransfer.kinds.registry import load_model

SIGMA_A = ARGON_SIGMA_NM * 10.0
EPS_KCAL = float(units.kj_to_kcal(ARGON_EPSILON_KJ))
LJ_CUTOFF_A = 8.0  # the fixture's OpenMM cutoff


def lj_energy(r):
    sr6 = (SIGMA_A / np.asarray(r, dtype=np.float64)) ** 6
    return 4.0 * EPS_KCAL * (sr6**2 - sr6)


def lj_force(r):
    """Pair force (kcal/mol/Å, > 0 repulsive) of the fixture's argon."""
    r = np.asarray(r, dtype=np.float64)
    sr6 = (SIGMA_A / r) ** 6
    return 24.0 * EPS_KCAL / r * (2.0 * sr6**2 - sr6)


@pytest.fixture(scope="module")
def tiny(tiny_model):
    return load_model(tiny_model)


def test_pair_force_is_minus_the_derivative_of_the_two_bead_energy(tiny):
    """f(r) from the forces on the two beads = −dU/dr by central differences (float64), with the prior and for the
    network alone; U − U_network = the prior's pair energy (p s / a) exp(a (t − r)); U = f = 0 beyond the range."""
    rc = tiny.interaction_range_A
    prior = tiny.info["prior"]
    r = np.arange(prior["onset"] - 0.4, rc + 1.0, 0.05)
    h = 1e-5  # central differences: truncation ~h² f''', ~1e-7 here; float64 rounding ~1e-9
    curve = learned.two_bead_curve(tiny, r)
    plus = learned.two_bead_curve(tiny, r + h)
    minus = learned.two_bead_curve(tiny, r - h)
    inside = r < rc - 2 * h
    for key in ("", "network_"):
        f = curve[f"{key}force_kcal_mol_A"]
        fd = -(plus[f"{key}energy_kcal_mol"] - minus[f"{key}energy_kcal_mol"]) / (2 * h)
        scale = np.abs(f[inside]).max()
        print(f"{key or 'model '}: max |f| {scale:.4g}, max |f - fd| {np.abs(f - fd)[inside].max():.3g} kcal/mol/Å")
        np.testing.assert_allclose(f[inside], fd[inside], rtol=1e-5, atol=1e-6 * scale)
        assert np.abs(curve[f"{key}energy_kcal_mol"][r > rc]).max() < 1e-12 and np.all(f[r > rc] == 0.0)
    a = math.log(1.0 / prior["fraction"]) / prior["width"]
    expected = prior["fraction"] * prior["strength"] / a * np.exp(a * (prior["onset"] - r))
    np.testing.assert_allclose(curve["prior_energy_kcal_mol"][r < rc], expected[r < rc], rtol=1e-8, atol=1e-10)
    features = learned.pair_curve_features(r, curve["energy_kcal_mol"], curve["force_kcal_mol_A"])
    print(features)
    if features["well_position_A"] is not None:  # the briefly trained model may have no well at all
        assert r[0] <= features["well_position_A"] <= rc and features["well_depth_kcal_mol"] < 0
    if features["contact_A"] is not None:
        assert r[0] <= features["contact_A"] <= rc


def test_two_bead_energy_does_not_depend_on_box_or_orientation(tiny):
    """The same curve in the default box (2 × range + 10 Å) along x, and in a 1.5× larger box along an oblique
    direction about an off-centre point; a box whose periodic image would interact is refused."""
    r = np.arange(2.5, tiny.interaction_range_A + 0.5, 0.1)
    ref = learned.two_bead_curve(tiny, r)
    direction = np.array([0.3, -0.5, 0.81])
    other = learned.two_bead_curve(tiny, r, edge_A=1.5 * ref["edge_A"], direction=direction,
                                   centre_A=np.array([11.0, 17.0, 23.5]))
    assert ref["edge_A"] == pytest.approx(2 * tiny.interaction_range_A + 10.0)
    for key in ("energy_kcal_mol", "force_kcal_mol_A", "network_energy_kcal_mol", "network_force_kcal_mol_A"):
        scale = np.abs(ref[key]).max()
        print(key, scale, np.abs(other[key] - ref[key]).max())
        np.testing.assert_allclose(other[key], ref[key], rtol=1e-9, atol=1e-9 * scale)
    # the per-bead terms (energy far apart) are the same too: the box does not enter the energy
    assert other["network_energy_far_kcal_mol"] == pytest.approx(ref["network_energy_far_kcal_mol"], rel=1e-10)
    with pytest.raises(ValueError, match="too small"):
        learned.two_bead_curve(tiny, r, edge_A=2 * tiny.interaction_range_A + 1.0)


def test_curve_features_of_known_curves():
    """Lennard-Jones: well at 2^(1/6) σ, depth −ε, contact = the well, U = 0 at σ. With a deeper Gaussian well
    added at 5 Å, the LJ minimum stays as a contact minimum (the shoulder) inside the global well."""
    r = np.arange(3.0, 12.0, 0.002)
    lj = learned.pair_curve_features(r, lj_energy(r), lj_force(r))
    assert lj["well_position_A"] == pytest.approx(2 ** (1 / 6) * SIGMA_A, abs=1e-4)
    assert lj["well_depth_kcal_mol"] == pytest.approx(-EPS_KCAL, rel=1e-6)
    assert lj["contact_A"] == pytest.approx(2 ** (1 / 6) * SIGMA_A, abs=1e-4) and lj["n_force_zeros"] == 1
    assert lj["zero_crossing_A"] == pytest.approx(SIGMA_A, abs=1e-4)
    # a well of 0.5 kcal/mol at 5 Å: the contact minimum near the LJ one, a barrier, the global well beyond it
    amp, r0, w = -0.5, 5.0, 0.3
    u = lj_energy(r) + amp * np.exp(-((r - r0) / w) ** 2)
    f = lj_force(r) + amp * 2 * (r - r0) / w**2 * np.exp(-((r - r0) / w) ** 2)
    shoulder = learned.pair_curve_features(r, u, f)
    print(shoulder)
    assert shoulder["n_force_zeros"] == 2
    assert shoulder["contact_A"] == pytest.approx(2 ** (1 / 6) * SIGMA_A, abs=0.05)
    assert shoulder["well_position_A"] == pytest.approx(r0, abs=0.1)
    assert shoulder["contact_energy_kcal_mol"] > shoulder["well_depth_kcal_mol"]
    # purely repulsive: no well, no zero crossing, no contact
    wall = learned.pair_curve_features(r, np.exp(-r), np.exp(-r))
    assert wall["well_position_A"] is None and wall["well_depth_kcal_mol"] == 0.0
    assert wall["zero_crossing_A"] is None and wall["contact_A"] is None and wall["n_force_zeros"] == 0
    # features from the energy alone (force by differences) agree
    assert learned.pair_curve_features(r, u)["contact_A"] == pytest.approx(shoulder["contact_A"], abs=1e-3)


def three_body_forces(positions, box, strength=0.05, cutoff=5.0):
    """Forces (F, N, 3) of an angular three-body energy, not pairwise by construction:
    E = λ Σ_i Σ_{j≠k} w(r_ij) w(r_ik) P₂(cos θ_jik), w(r) = (1 − (r/r_c)²)² inside r_c (autograd). P₂ averages to
    zero over isotropic angles, so little of it is a mean pair force (with (cos θ + 1/3)², Stillinger–Weber's
    angular term, the pair projection took 89 % of the force on these frames; with P₂ 55 %)."""
    out = []
    for pos in positions:
        x = torch.tensor(np.asarray(pos, dtype=np.float64), requires_grad=True)
        L = torch.tensor(np.asarray(box, dtype=np.float64))
        d = x[None, :, :] - x[:, None, :]  # d[i, j] = r_j - r_i
        d = d - L * torch.round(d / L)
        n = len(pos)
        eye = torch.eye(n, dtype=torch.bool)
        r = torch.sqrt((d**2).sum(-1) + eye.double())
        w = torch.where((r < cutoff) & ~eye, (1 - (r / cutoff) ** 2) ** 2, torch.zeros_like(r))
        unit = d / r[..., None]
        cos = torch.einsum("ijx,ikx->ijk", unit, unit)
        energy = strength * (w[:, :, None] * w[:, None, :] * (1.5 * cos**2 - 0.5)
                             * (~torch.eye(n, dtype=torch.bool))[None]).sum()
        (grad,) = torch.autograd.grad(energy, x)
        out.append(-grad.numpy())
    return np.array(out)


def test_pair_projection_explains_pairwise_forces_and_not_a_three_body_term(argon_cg):
    """The argon frames' forces are exact LJ pair forces: the projection explains them (R² ≈ 1, in-sample and
    5-fold cross-validated) and its pair force is the LJ force. With a three-body term of comparable size added,
    R² drops clearly, and the residual is the three-body term's own (the projection is linear and takes the LJ
    part whole)."""
    cg = argon_cg["cg"]
    species, pos, cells, forces = cg["species"], cg["positions"], cg["cells"], cg["forces"]
    types = [str(t) for t in cg["bead_types"]]
    exact = learned.pair_projection(species, pos, cells, forces, types, LJ_CUTOFF_A, cv_folds=5)
    pf = exact["pair_forces"]["AR-AR"]
    r = np.linspace(pf.r_wall, LJ_CUTOFF_A - 0.05, 400)
    diff = learned.pair_force_rms_difference(r, pf.force(r), lj_force, pf.r_wall, LJ_CUTOFF_A - 0.05)
    print(f"LJ: R² {exact['r2']:.6f}, cv R² {exact['cv_r2']:.6f}, pair force vs LJ: relative RMS "
          f"{diff['relative']:.4f}")
    assert exact["r2"] > 0.999 and exact["cv_r2"] > 0.999 and exact["many_body_share"] < 1e-3
    assert diff["relative"] < 0.01

    box = np.diag(cells[0]).astype(np.float64)
    frames = np.arange(0, len(pos), 2)  # 15 frames: enough for the test, half the autograd cost
    three = three_body_forces(pos[frames], box)
    three *= np.sqrt(np.mean(forces[frames].astype(np.float64) ** 2) / np.mean(three**2))  # same RMS as LJ
    mixed = learned.pair_projection(species[frames], pos[frames], cells[frames], forces[frames] + three, types,
                                    LJ_CUTOFF_A)
    alone = learned.pair_projection(species[frames], pos[frames], cells[frames], three, types, LJ_CUTOFF_A)
    print(f"LJ + three-body: R² {mixed['r2']:.4f}, residual {mixed['residual_rms_kcal_mol_A']:.4f}; three-body "
          f"alone: R² {alone['r2']:.4f}, residual {alone['residual_rms_kcal_mol_A']:.4f} kcal/mol/Å")
    assert alone["r2"] < 0.7 and mixed["r2"] < 0.85 and mixed["many_body_share"] > 0.15
    assert mixed["residual_rms_kcal_mol_A"] == pytest.approx(alone["residual_rms_kcal_mol_A"], rel=0.02)


def test_mscg_table_recovers_the_lj_pair_force(argon_cg, tmp_path):
    """MS-CG on the argon frames (least squares, ~1 s): the RMS difference of its pair force to the exact LJ force
    over the sampled range is ≈ 0 (< 2 % of the force's RMS), and the same function against the projection's pair
    force (the same basis fitted without the wall) agrees as well."""
    from cgtransfer.stages.train import train_model

    mscg_cfg = {"cutoff_A": LJ_CUTOFF_A, "knot_spacing_A": 0.1, "spline_degree": 3,
                "regularization": [1e-8, 1e-6, 1e-4], "cv_folds": 3, "selection_tolerance": 0.001,
                "table_spacing_A": 0.005}
    out = tmp_path / "mscg"
    train_model("mscg", [argon_cg["dataset"]], [argon_cg["summary"]], ["T120"], {"mscg": mscg_cfg},
                {"width_A": 0.15, "force_fraction_at_onset": 0.05},
                {"device": "cpu", "valid_fraction": 0.1, "test_fraction": 0.1}, out, label="argon/mscg")
    pf = learned.mscg_pair_force(load_model(out), (1, 1))
    r = np.linspace(pf.r_wall, LJ_CUTOFF_A - 0.05, 400)
    diff = learned.pair_force_rms_difference(r, lj_force(r), pf.force, pf.r_wall, LJ_CUTOFF_A - 0.05)
    print(f"MS-CG vs LJ over [{pf.r_wall:.2f}, {LJ_CUTOFF_A - 0.05}] Å: RMS {diff['rms_kcal_mol_A']:.4g}, "
          f"relative {diff['relative']:.4f}")
    assert diff["relative"] < 0.01
    # the function itself: a constant offset c gives RMS |c|
    offset = learned.pair_force_rms_difference(r, pf.force(r) + 0.1, pf.force, 4.0, 6.0)
    assert offset["rms_kcal_mol_A"] == pytest.approx(0.1, rel=1e-9)
    features = learned.pair_curve_features(r, pf.energy(r), pf.force(r))
    assert features["well_position_A"] == pytest.approx(2 ** (1 / 6) * SIGMA_A, abs=0.03)


def test_network_pair_projection_the_prior_adds_no_many_body_share(tiny, argon_cg):
    """The tiny model's own forces on the argon frames: an R² in (0, 1]; the prior is a pair force, so projecting
    the model's forces and the network's alone leaves the same residual (only the share differs)."""
    cg = argon_cg["cg"]
    frames = np.arange(0, len(cg["positions"]), 3)
    full = learned.network_pair_projection(tiny, cg, frames)
    bare = learned.network_pair_projection(tiny, cg, frames, include_prior=False)
    print(f"tiny model: R² {full['r2']:.4f} (network alone {bare['r2']:.4f}), residual "
          f"{full['residual_rms_kcal_mol_A']:.4g} / {bare['residual_rms_kcal_mol_A']:.4g} kcal/mol/Å")
    assert 0.0 < full["r2"] <= 1.0 and full["cutoff_A"] == tiny.interaction_range_A
    assert full["residual_rms_kcal_mol_A"] == pytest.approx(bare["residual_rms_kcal_mol_A"], rel=0.02)
    _, predicted = tiny.predict(cg["species"][frames[:1]], cg["positions"][frames[:1]], cg["cells"][frames[:1]])
    np.testing.assert_allclose(full["forces_kcal_mol_A"][:1], predicted, rtol=1e-6, atol=1e-6)
