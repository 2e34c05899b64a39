"""The learning-curve benchmark's verdict (benchmarks/learning_curve.py) on synthetic points: a change of the
held-out RMSE inside the seed spread is "adequate", one well outside it is not; a deterministic kind (no seed
spread) falls back to the paired test-block error; and the train-block subset keeps the split contiguous."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def lc():
    spec = importlib.util.spec_from_file_location("learning_curve", ROOT / "benchmarks" / "learning_curve.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_change_inside_seed_spread_is_adequate(lc):
    default = lc.summarize_point([1.00, 1.04, 0.96])   # SD 0.04, SE 0.023
    largest = lc.summarize_point([0.99, 1.03, 0.95])   # 1 % lower: 0.3 SE of the difference
    v = lc.verdict(default, largest)
    assert v["verdict"] == "adequate"
    assert v["rmse_change_percent"] == pytest.approx(-1.0)
    assert v["noise_source"] == "seed spread"


def test_change_outside_seed_spread_is_not_adequate(lc):
    default = lc.summarize_point([1.00, 1.01, 0.99])   # SD 0.01
    largest = lc.summarize_point([0.90, 0.91, 0.89])   # 10 % lower: 12 SE, 10 seed SDs
    v = lc.verdict(default, largest)
    assert v["verdict"].startswith("not adequate")
    assert v["change_in_seed_sd"] == pytest.approx(-10.0)
    assert v["change_in_se"] < -2
    worse = lc.verdict(largest, default)  # a larger budget that is worse does not call for more training
    assert worse["verdict"].startswith("adequate (")


def test_deterministic_kind_uses_paired_test_error(lc):
    default, largest = lc.summarize_point([1.00, 1.00]), lc.summarize_point([0.98, 0.98])
    assert lc.verdict(default, largest, paired_se=0.02)["verdict"] == "adequate"
    assert lc.verdict(default, largest, paired_se=0.002)["verdict"].startswith("not adequate")
    assert lc.verdict(default, default, paired_se=0.0)["verdict"] == "adequate"


def test_paired_se_of_identical_errors_is_zero(lc):
    rng = np.random.default_rng(0)
    mse = rng.uniform(1.0, 2.0, 40)
    assert lc.paired_se(mse, mse) == pytest.approx(0.0)
    assert lc.paired_se(mse, mse * rng.uniform(0.9, 1.1, 40)) > 0


def test_cheapest_adequate_budget(lc):
    def point(frames, epochs, rmses):
        return {"train_frames_per_state": frames, "max_epochs": epochs, "wall_per_fit_s": frames * epochs,
                **lc.summarize_point(rmses)}

    pts = [point(64, 5, [1.20, 1.21, 1.19]), point(64, 15, [1.00, 1.01, 0.99]), point(64, 40, [0.995, 1.005, 0.985])]
    assert lc.cheapest_adequate(pts)["max_epochs"] == 15


def test_subset_train_keeps_contiguous_blocks(lc):
    from cgtransfer.kinds.base import TrainingData

    n = 20  # per state: train 0..15, valid 16..17, test 18..19
    arrays = {"positions": np.arange(2 * n, dtype=np.float32)[:, None, None] * np.ones((1, 2, 3), np.float32)}
    splits = {"train": np.r_[0:16, 20:36], "valid": np.r_[16:18, 36:38], "test": np.r_[18:20, 38:40]}
    data = TrainingData(arrays, splits, ["B"], ["s1", "s2"], [], {}, frame_state=["s1"] * n + ["s2"] * n)
    sub = lc.subset_train(data, 0.25)
    frame = sub.arrays["positions"][:, 0, 0].astype(int)  # the original frame index of every kept frame
    assert list(frame[sub.splits["train"]]) == [0, 1, 2, 3, 20, 21, 22, 23]
    assert list(frame[sub.splits["valid"]]) == [16, 17, 36, 37]
    assert list(frame[sub.splits["test"]]) == [18, 19, 38, 39]
    assert len(sub.frame_state) == len(frame) == 16
    assert sorted(np.concatenate(list(sub.splits.values()))) == list(range(16))  # every kept frame in one split
