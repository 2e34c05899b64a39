"""The temperature-aware model (kind hipnn_t) against a known answer.

Synthetic frames whose potential of mean force is known exactly, W(R; T) = U(R) − T S(R) with U a soft pair
repulsion plus attraction and S a Gaussian pair bump (kcal/mol/K): every frame carries its temperature and the
exact force −∇U + T ∇S. Trained at 200, 300 and 400 K, the model must
* separate the two parts: −∇U and ∇S read off its forces at two temperatures match the known ones (R²);
* predict forces at a temperature it never saw (250 K, between; 500 K, beyond) far better than the
  temperature-blind HIP-NN-TS trained on the same frames, which can only learn the average force;
* with energy anchoring, learn U(R) itself (the "all-atom energy" of each frame here is the known U);
* give forces that are minus the gradient of its energy at any temperature (finite differences).
Real hippynn training (tiny network, ~1 min on 2 cores).
"""

from __future__ import annotations

import numpy as np
import pytest

from cgtransfer.kinds.base import TrainingData
from cgtransfer.kinds.registry import fit_model, load_model

from conftest import TINY_TRAINING

N_BEADS, BOX_A, R_MIN_A = 24, 14.0, 2.9
U_EPS, U_SIGMA = 0.25, 3.4           # U(r) = 4 eps [(s/r)^12 - (s/r)^6]: kcal/mol, Å
S_AMP, S_R0, S_WIDTH = 2.0e-3, 4.6, 0.45  # S(r) = A exp(-(r - r0)^2 / 2 w^2): kcal/mol/K, Å, Å
CUTOFF_A = 6.5
TRAIN_T = (200.0, 300.0, 400.0)
NETWORK = dict(n_features=16, n_sensitivities=12, dist_soft_min=2.5, dist_soft_max=6.0, dist_hard_max=CUTOFF_A,
               n_interaction_layers=1, n_atom_layers=2, sensitivity_type="inverse", resnet=True)
PRIOR = {"onset": 2.4, "strength": 1.0, "width": 0.15, "fraction": 0.05}  # negligible beyond R_MIN_A


def pair_terms(positions):
    """Exact U (kcal/mol), its force −∇U and ∇S (kcal/mol/Å per K) of one frame (minimum image, cutoff)."""
    d = positions[:, None, :] - positions[None, :, :]
    d -= BOX_A * np.round(d / BOX_A)
    r = np.linalg.norm(d, axis=-1)
    np.fill_diagonal(r, 2 * CUTOFF_A)  # self pairs: outside the cutoff
    inside = r < CUTOFF_A
    sr6 = np.where(inside, (U_SIGMA / r) ** 6, 0.0)
    u_pair = 4 * U_EPS * (sr6**2 - sr6)
    du_dr = np.where(inside, 4 * U_EPS * (-12 * sr6**2 + 6 * sr6) / r, 0.0)
    s_pair = np.where(inside, S_AMP * np.exp(-((r - S_R0) ** 2) / (2 * S_WIDTH**2)), 0.0)
    ds_dr = np.where(inside, -s_pair * (r - S_R0) / S_WIDTH**2, 0.0)
    unit = d / r[..., None]
    force_u = -(du_dr[..., None] * unit).sum(axis=1)      # −∇_i U
    grad_s = (ds_dr[..., None] * unit).sum(axis=1)        # +∇_i S
    return 0.5 * u_pair.sum(), force_u, grad_s


def random_frame(rng):
    pos = np.empty((N_BEADS, 3))
    n = 0
    while n < N_BEADS:
        trial = rng.uniform(0, BOX_A, 3)
        d = pos[:n] - trial
        d -= BOX_A * np.round(d / BOX_A)
        if n == 0 or np.min(np.linalg.norm(d, axis=1)) > R_MIN_A:
            pos[n] = trial
            n += 1
    return pos


def synthetic(temperatures, frames_per_t, seed):
    rng = np.random.default_rng(seed)
    out = {"positions": [], "forces": [], "force_u": [], "grad_s": [], "energy": [], "temperature": []}
    for t in temperatures:
        for _ in range(frames_per_t):
            pos = random_frame(rng)
            e_u, f_u, g_s = pair_terms(pos)
            out["positions"].append(pos)
            out["force_u"].append(f_u)
            out["grad_s"].append(g_s)
            out["forces"].append(f_u + t * g_s)
            out["energy"].append(e_u)
            out["temperature"].append(t)
    return {k: np.asarray(v) for k, v in out.items()}


def training_data(sample, frames_per_t):
    n = len(sample["positions"])
    arrays = {"species": np.ones((n, N_BEADS), dtype=np.int64),
              "positions": sample["positions"].astype(np.float32),
              "cells": np.broadcast_to(np.eye(3) * BOX_A, (n, 3, 3)).astype(np.float32).copy(),
              "forces": sample["forces"].astype(np.float32)}
    idx = np.arange(n).reshape(n // frames_per_t, frames_per_t)
    n_valid = max(1, frames_per_t // 10)  # + one test frame per temperature (hippynn wants three splits)
    splits = {"train": idx[:, :-n_valid - 1].ravel(), "valid": idx[:, -n_valid - 1:-1].ravel(), "test": idx[:, -1]}
    states = list(dict.fromkeys(f"T{int(t)}" for t in sample["temperature"]))
    return TrainingData(arrays, splits, ["B"], states, [], PRIOR,
                        frame_state=[f"T{int(t)}" for t in sample["temperature"]],
                        frame_temperature_K=list(sample["temperature"]), frame_energy_kcal_mol=list(sample["energy"]))


def r2(pred, ref):
    return 1.0 - np.sum((pred - ref) ** 2) / np.sum((ref - ref.mean()) ** 2)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    frames_per_t = 60
    data = training_data(synthetic(TRAIN_T, frames_per_t, seed=1), frames_per_t)
    training = {**TINY_TRAINING, "max_epochs": 60, "batch_size": 8, "max_batch_size": 32, "eval_batch_size": 32,
                "plateau_patience": 5, "termination_patience": 12, "learning_rate": 3e-3, "fraction_train_eval": 0.1}
    root = tmp_path_factory.mktemp("hipnn_t")
    aware = root / "aware"
    blind = root / "blind"
    record = fit_model("hipnn_t", data, {"network": NETWORK, "training": training,
                                         "hipnn_t": {"energy_anchoring": True, "energy_loss_weight": 1.0}},
                       aware, label="aware", seed=3)
    fit_model("hipnn", data, {"network": NETWORK, "training": training}, blind, label="blind", seed=3)
    return load_model(aware), load_model(blind), record


def predict(model, sample, temperature):
    n = len(sample["positions"])
    species = np.ones((n, N_BEADS), dtype=np.int64)
    cells = np.broadcast_to(np.eye(3) * BOX_A, (n, 3, 3)).astype(np.float32)
    return model.predict(species, sample["positions"].astype(np.float32), cells, temperature)


def test_known_temperature_dependence_is_recovered(trained):
    aware, blind, record = trained
    assert aware.kind == "hipnn_t" and aware.info["training_temperatures_K"] == list(TRAIN_T)
    assert aware.info["reference_temperature_K"] == pytest.approx(300.0)
    test = synthetic([300.0], 40, seed=7)  # new configurations
    # −∇U and ∇S from the model's forces at two temperatures (exactly linear in T by construction)
    _, f_lo = predict(aware, test, 250.0)
    _, f_hi = predict(aware, test, 350.0)
    grad_s_model = (f_hi - f_lo) / 100.0
    force_u_model = f_lo - 250.0 * grad_s_model
    r2_u, r2_s = r2(force_u_model, test["force_u"]), r2(grad_s_model, test["grad_s"])
    print(f"R2 of -grad U {r2_u:.3f}, of grad S {r2_s:.3f}")
    assert r2_u > 0.9 and r2_s > 0.8, (r2_u, r2_s)
    # held-out temperatures: between (250 K) and beyond (500 K) the training temperatures
    for t, factor in ((250.0, 0.8), (500.0, 0.5)):
        exact = test["force_u"] + t * test["grad_s"]
        rmse_aware = np.sqrt(np.mean((predict(aware, test, t)[1] - exact) ** 2))
        rmse_blind = np.sqrt(np.mean((predict(blind, test, t)[1] - exact) ** 2))
        print(f"{t} K: force RMSE aware {rmse_aware:.4f}, blind {rmse_blind:.4f} kcal/mol/Å")
        assert rmse_aware < factor * rmse_blind, (t, rmse_aware, rmse_blind)


def test_energy_anchoring_learns_the_energy(trained):
    aware, _, record = trained
    assert aware.info["energy_anchoring"] and "valid_EnergyRMSE" in record["curve"][-1]
    test = synthetic([300.0], 40, seed=11)
    n = len(test["positions"])
    u = aware.model_energy(np.ones((n, N_BEADS), dtype=np.int64), test["positions"].astype(np.float32),
                           np.broadcast_to(np.eye(3) * BOX_A, (n, 3, 3)).astype(np.float32), 300.0)
    # on the absolute scale (the training shift added back) and independent of the temperature input
    print(f"energy R2 {r2(u, test['energy']):.3f}, mean error {np.mean(u - test['energy']):.3f} kcal/mol")
    assert r2(u, test["energy"]) > 0.8
    assert abs(np.mean(u - test["energy"])) < 0.5 * np.std(test["energy"])


def test_forces_are_minus_the_gradient_at_two_temperatures(trained):
    aware, _, _ = trained
    sample = synthetic([300.0], 1, seed=5)
    pos = sample["positions"][0].astype(np.float64)
    cell = (np.eye(3) * BOX_A)[None].astype(np.float32)
    species = np.ones((1, N_BEADS), dtype=np.int64)
    h = 2e-3
    for t in (220.0, 480.0):
        _, forces = aware.predict(species, pos[None].astype(np.float32), cell, t)
        for atom, axis in ((0, 0), (5, 1), (11, 2), (17, 0)):
            plus, minus = pos.copy(), pos.copy()
            plus[atom, axis] += h
            minus[atom, axis] -= h
            e_plus = aware.predict(species, plus[None].astype(np.float32), cell, t)[0][0]
            e_minus = aware.predict(species, minus[None].astype(np.float32), cell, t)[0][0]
            fd = -(e_plus - e_minus) / (2 * h)
            f = float(forces[0, atom, axis])
            assert fd == pytest.approx(f, abs=0.02 + 0.02 * abs(f)), (t, atom, axis)


def test_one_temperature_and_missing_temperatures_are_refused(tmp_path):
    sample = synthetic([300.0], 10, seed=2)
    data = training_data({**sample, "temperature": np.full(len(sample["temperature"]), 300.0)}, 10)
    settings = {"network": NETWORK, "training": {**TINY_TRAINING, "max_epochs": 1},
                "hipnn_t": {"energy_anchoring": False, "energy_loss_weight": 1.0}}
    with pytest.raises(ValueError, match="two temperatures at least"):
        fit_model("hipnn_t", data, settings, tmp_path / "one_t", label="one_t")
    data.frame_temperature_K = []
    with pytest.raises(ValueError, match="needs a positive temperature for every training frame"):
        fit_model("hipnn_t", data, settings, tmp_path / "no_t", label="no_t")
    # and a trained temperature-aware model refuses to predict without a temperature
    sample = synthetic((200.0, 400.0), 10, seed=4)
    two = training_data(sample, 10)
    fit_model("hipnn_t", two, settings, tmp_path / "two_t", label="two_t")
    model = load_model(tmp_path / "two_t")
    assert not model.info["energy_anchoring"]
    with pytest.raises(ValueError, match="needs the temperature"):
        predict(model, sample, None)
