"""A broken model fails the checks the end-to-end test applies: unit-level, on constructed broken models against
the real checking code (force metrics of a model's predictions, the volume-term fit's stability decision), with the
floors tied to committed numbers of real runs (docs/default_run/). A model that predicts zeros, one with the wrong
sign, and a model whose pressure falls with density must each fail; the trained model must pass with margin."""

import numpy as np
import pandas as pd
import pytest

from conftest import REPO
from cgtransfer.analysis.statistics import force_metrics
from cgtransfer.dataset import load_dataset, time_block_split

# The held-out force R² floor of a HIP-NN-TS model of 1-bead methanol at the default settings, with a third of
# margin below the worst held-out cell of the default runs' replicate chains: always hipnn_T550 at T248 (302 K
# colder than its training state, on the 8-frame test block) or hipnn_T298 at T550: 0.124 and 0.085 in the first
# replicates of two earlier runs, 0.075, 0.068 and 0.084 in the three replicates of run C (docs/default_run/ holds
# its first). The pairwise MS-CG fitted at 550 K scores 0.042 at the same cell, so the cell is hard for any
# model, and its scatter between chains is the reference's test block. A model predicting zeros scores R² <= 0 on
# any data, one with the wrong sign far below.
HIPNN_METHANOL_R2_FLOOR = 0.045


def test_the_default_run_reaches_the_force_floor_with_margin():
    table = pd.read_csv(REPO / "docs/default_run/metrics.csv")
    hipnn = table[(table["kind"] == "hipnn") & ~table["model"].str.endswith("_vol")]
    assert len(hipnn) >= 10 and hipnn["force_r2"].min() > 1.5 * HIPNN_METHANOL_R2_FLOOR, hipnn["force_r2"].min()
    held_out = hipnn[~hipnn["in_training"]]
    assert len(held_out) >= 10 and held_out["force_r2"].min() > 1.5 * HIPNN_METHANOL_R2_FLOOR


@pytest.fixture(scope="module")
def predictions(tiny_model, argon_cg):
    """The tiny HIP-NN-TS of the argon fixture on its held-out frames: (predicted, reference) forces."""
    from cgtransfer.kinds.registry import load_model

    data = load_dataset(argon_cg["dataset"])
    _, _, test = time_block_split(len(data["positions"]), 0.1, 0.1)
    _, predicted = load_model(tiny_model).predict_frames(data, test)
    return predicted, data["forces"][test]


def test_a_model_predicting_zeros_fails_the_floor(predictions):
    predicted, reference = predictions
    zeros = force_metrics(np.zeros_like(reference), reference)
    # R² of zeros = 1 - sum f² / sum (f - mean)² <= 0: never above the floor, whatever the data
    assert zeros["force_r2"] <= 0.0 < HIPNN_METHANOL_R2_FLOOR
    assert zeros["force_rmse_kcal_mol_A"] == pytest.approx(np.sqrt(np.mean(reference ** 2)), rel=1e-6)


def test_a_model_with_the_wrong_sign_fails_the_floor(predictions):
    predicted, reference = predictions
    trained = force_metrics(predicted, reference)
    wrong = force_metrics(-predicted, reference)
    assert trained["force_r2"] > HIPNN_METHANOL_R2_FLOOR  # the trained model passes (argon: pair forces, easy)
    # -p: R²(-p) = R²(p) - 4 sum f p / sum (f - mean)², so a model that has learned anything (f p > 0 on average)
    # loses more than its own R² (measured here: 0.53 trained, -0.91 with the sign flipped)
    assert wrong["force_r2"] < min(0.0, trained["force_r2"] - 1.0) < HIPNN_METHANOL_R2_FLOOR, (trained, wrong)
    assert wrong["force_rmse_kcal_mol_A"] > trained["force_rmse_kcal_mol_A"]


def test_a_half_strength_model_is_worse_than_the_trained_one(predictions):
    """A model whose forces are scaled by 0.5 (a unit or prefactor slip) loses R²: the metric sees magnitudes."""
    predicted, reference = predictions
    assert force_metrics(0.5 * predicted, reference)["force_r2"] < force_metrics(predicted, reference)["force_r2"]


def _volume_fit(tmp_path, argon_cg, slopes_per_state: dict[str, float]):
    """fit_for_model on constructed CG runs: each training state an NPT state with an NVT run at rho_AA and a
    density scan at 0.95 / 1.05 rho_AA whose pressures change with density by the given amount (bar)."""
    from cgtransfer.io import write_json
    from cgtransfer.stages.volume_fit import fit_for_model

    rng = np.random.default_rng(1)
    thermo = tmp_path / "thermo.csv"
    pd.DataFrame({"pressure_bar": 300 + rng.normal(0, 50, 200),
                  "volume_nm3": 12.0 + rng.normal(0, 0.2, 200)}).to_csv(thermo, index=False)

    def summary(name, pressure, factor=None):
        path = tmp_path / name
        write_json(path, {"stable": True, "mean_pressure_bar": pressure, "mean_pressure_stderr_bar": 20.0,
                          **({"density_factor": factor} if factor is not None else {})})
        return path

    states, nvt, scans = [], [], []
    for state, rise in slopes_per_state.items():
        states.append({"state": state, "temperature_K": 120.0, "pressure_bar": 300.0})
        nvt.append(summary(f"{state}.json", 500.0))
        scans.append([summary(f"{state}_lo.json", 500.0 - rise, 0.95), summary(f"{state}_hi.json", 500.0 + rise, 1.05)])
    return fit_for_model(None, states, nvt, [thermo] * len(states), [argon_cg["dataset"]] * len(states),
                         {"order": 2, "mapped_frames": 0}, tmp_path / "volume_term.json", "constructed",
                         cg_scan_summaries=scans)


def test_a_constructed_unstable_model_is_recorded_uncorrectable(argon_cg, tmp_path):
    """The condition the end-to-end test's `uncorrectable` fixture accepts (every training state mechanically
    unstable, the reason saying so) arises from a model whose pressure falls with density at every state, and
    only from such a model: the same states with rising pressure are corrected."""
    unstable = _volume_fit(tmp_path, argon_cg, {"A": -400.0, "B": -300.0})
    assert unstable["correctable"] is False and set(unstable["skipped_states"]) == {"A", "B"}
    assert all("mechanically unstable" in why for why in unstable["skipped_states"].values())
    assert "mechanically unstable" in unstable["reason"] and not unstable["points"]
    (tmp_path / "stable").mkdir()
    stable = _volume_fit(tmp_path / "stable", argon_cg, {"A": 400.0, "B": 300.0})
    assert stable["correctable"] is True and not stable["skipped_states"]
    half = tmp_path / "half"
    half.mkdir()
    mixed = _volume_fit(half, argon_cg, {"A": -400.0, "B": 300.0})  # unstable at one state only: corrected on B
    assert mixed["correctable"] is True and set(mixed["skipped_states"]) == {"A"}


def test_an_uncorrectable_model_has_no_corrected_pressure(argon_cg, tmp_path):
    """compare's pressure metrics of an uncorrectable model: the reason recorded, every pressure NaN (its NVT
    pressure is unknown, not the base model's), so no table can take it for a result."""
    from cgtransfer.stages.compare import volume_term_metrics

    _volume_fit(tmp_path, argon_cg, {"A": -400.0})
    out = volume_term_metrics(tmp_path / "volume_term.json", nvt=None, temperature_K=120.0)
    assert out["volume_term"] is None and np.isnan(out["volume_term_pressure_shift_bar"])
    assert "mechanically unstable" in out["volume_term_uncorrectable"]
