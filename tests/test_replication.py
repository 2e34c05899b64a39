"""The replication benchmark (benchmarks/replication.py) on known claims: an estimate inside the other run's
interval and one outside it, a level claim (no resolution to compare), a claim only one run makes, and the whole
script on two synthetic runs of three replicates each (the workflow's verdict stage pools their six)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def rep():
    spec = importlib.util.spec_from_file_location("replication", ROOT / "benchmarks" / "replication.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def claim(name, estimate, lo, hi, resolved, comparative=True, n=5):
    return {"claim": name, "design": "a", "metric": "rdf_error_over_noise", "comparative": comparative,
            "estimate": estimate, "lo": lo, "hi": hi, "resolved": resolved, "n_contrasts": n, "calibration": ""}


def test_each_estimate_against_the_other_runs_interval(rep):
    a = [claim("x", 0.90, 0.80, 1.05, False), claim("y", 0.84, 0.80, 0.88, True), claim("lvl", 1.4, 1.0, 2.0, None,
                                                                                         comparative=False),
         claim("only_a", 1.0, 0.9, 1.1, False), claim("empty", 1.0, 0.9, 1.1, False, n=0)]
    b = [claim("x", 1.00, 0.85, 1.20, False),   # each inside the other: 0.90 in (0.85, 1.20), 1.00 in (0.80, 1.05)
         claim("y", 0.95, 0.90, 1.01, False),   # 0.84 outside (0.90, 1.01); 0.95 outside (0.80, 0.88)
         claim("lvl", 1.9, 1.5, 2.5, None, comparative=False),  # 1.4 outside (1.5, 2.5)
         claim("empty", 1.0, 0.9, 1.1, False)]
    rows = {r["claim"]: r for r in rep.side_by_side(a, b)}
    assert set(rows) == {"x", "y", "lvl"}  # a claim one run lacks or has no contrasts for is not compared
    assert rows["x"]["each_inside_the_other"] and rows["x"]["same_resolution"]
    assert not rows["y"]["a_inside_b_interval"] and not rows["y"]["b_inside_a_interval"]
    assert not rows["y"]["each_inside_the_other"] and not rows["y"]["same_resolution"]
    assert rows["lvl"]["b_inside_a_interval"] and not rows["lvl"]["a_inside_b_interval"]
    assert rows["lvl"]["same_resolution"] is None
    assert rep.inside(1.0, float("nan"), 2.0) is None


def test_difference_test_and_the_chance_a_right_interval_holds_a_rerun(rep):
    """Known answers: two log-ratios 0.3 apart with se 0.1 each (2 dof each) differ by t = 0.3/sqrt(0.02) on
    Welch's 4 dof; a large run puts its mean inside another large run's interval with probability
    P(|N(0, 2)| < 1.98) = 0.84, not 0.95 (the interval of one run is not a prediction interval for another)."""
    a = {"estimate": 1.0, "se_log": 0.1, "dof": 2, "scale": "ratio"}
    b = {"estimate": float(np.exp(0.3)), "se_log": 0.1, "dof": 2, "scale": "ratio"}
    d = rep.difference_test(a, b)
    assert d["t"] == pytest.approx(-0.3 / np.sqrt(0.02)) and d["dof"] == pytest.approx(4.0)
    assert d["p"] == pytest.approx(2 * 0.05, abs=0.01) and d["consistent"]
    far = rep.difference_test(a, {**b, "estimate": float(np.exp(1.0))})
    assert not far["consistent"] and far["p"] < 0.01
    assert rep.difference_test(a, {**b, "se_log": None})["consistent"] is None
    from scipy import stats

    one_way = rep.chance_each_inside(100, 100, n=50_000, both=False)
    assert one_way == pytest.approx(2 * stats.norm.cdf(stats.t.ppf(0.975, 99) / np.sqrt(2)) - 1, abs=0.01)
    assert rep.chance_each_inside(100, 100, n=50_000) < one_way  # both ways: the narrower interval decides
    assert 0.7 < rep.chance_each_inside(3, 3, n=50_000) < 0.9


def synthetic_run(root: Path, seed0: int, rng, shift: float = 0.0):
    """Three replicates of a two-state study in rule summarize's long format, and a verdict folder."""
    rows = []
    for r in range(1, 4):
        run = root / "methanol" / f"rep{r}"
        (run / "summary").mkdir(parents=True)
        for s in ("T298", "T328"):
            (run / "cg_data" / s).mkdir(parents=True)
            (run / "cg_data" / s / "summary.json").write_text(json.dumps({"reference_seed": seed0 + 100003 * (r - 1)}))
        long = []
        for kind, base in (("hipnn", 1.0 + shift), ("mscg", 1.2)):
            for train in ("T298", "T328"):
                for s in ("T298", "T328"):
                    value = base * (1.0 if s == train else 1.8) * float(np.exp(rng.normal(0, 0.1)))
                    long.append({"system": "methanol", "model": f"{kind}_{train}", "kind": kind,
                                 "training_set": train, "volume_term": False, "base_model": f"{kind}_{train}",
                                 "state": s, "ensemble": "nvt", "temperature_K": float(s[1:]),
                                 "in_training": s == train, "stable": True, "metric": "rdf_error_over_noise",
                                 "value": value, "stderr": 0.02 * value, "git_revision": "abc", "cgtransfer_version": "0"})
        pd.DataFrame(long).to_csv(run / "summary" / "long.csv", index=False)
        rows.append(run / "summary" / "long.csv")
    return rows


def test_two_synthetic_runs_compare_and_pool(rep, tmp_path):
    from cgtransfer.stages.verdict import verdict

    rng = np.random.default_rng(3)
    info = {f"{k}_{s}": {"kind": k, "states": [s]} for k in ("hipnn", "mscg") for s in ("T298", "T328")}
    points = [{"state": "T298", "temperature_K": 298.0, "pressure_bar": 1.0},
              {"state": "T328", "temperature_K": 328.0, "pressure_bar": 1.0}]
    for name, seed in (("a", 2024), ("b", 1)):
        longs = synthetic_run(tmp_path / name, seed, rng)
        out = tmp_path / name / "methanol" / "verdict"
        out.mkdir()
        verdict([str(p) for p in longs], info, points,
                {"cells": out / "cells.csv", "calibration": out / "calibration.csv", "claims_csv": out / "claims.csv",
                 "claims_json": out / "claims.json", "text": out / "verdict.txt", "forest": out / "forest.png",
                 "heatmaps": out / "heatmaps"}, system="methanol")
    import yaml

    settings = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())  # the default, on two states
    settings["state_points"] = str(tmp_path / "sp.tsv")
    settings["systems"]["methanol"]["models"] = {"hipnn": {"kind": "hipnn", "states": "each"},
                                                 "mscg": {"kind": "mscg", "states": "each"}}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(settings))
    (tmp_path / "sp.tsv").write_text("system\tstate\ttemperature_K\tpressure_bar\tdensity_g_cm3\n"
                                     "methanol\tT298\t298\t1\t\nmethanol\tT328\t328\t1\t\n")
    assert rep.main([str(tmp_path / "a"), str(tmp_path / "b"), "--configfile", str(config),
                     "--out", str(tmp_path / "out")]) == 0
    result = json.loads((tmp_path / "out" / "replication.json").read_text())
    assert result["runs"]["a"]["replicate_seeds"] == [[2024], [102027], [202030]]
    assert result["runs"]["b"]["replicate_seeds"] == [[1], [100004], [200007]]
    assert result["pooled_replicates"] == 6 and result["n_claims"] >= 3
    pooled = json.loads((tmp_path / "out" / "pooled" / "claims.json").read_text())
    assert pooled["replicates"] == 6
    # the pooled estimate of a ratio claim is the geometric mean of both runs' six per-replicate ratios
    a = json.loads((tmp_path / "a" / "methanol" / "verdict" / "claims.json").read_text())["claims"]
    b = json.loads((tmp_path / "b" / "methanol" / "verdict" / "claims.json").read_text())["claims"]
    p = {c["claim"]: c for c in pooled["claims"]}
    for ca, cb in zip(a, b):
        if ca["n_contrasts"] and ca["scale"] == "ratio":
            both = np.log(ca["per_replicate"] + cb["per_replicate"])
            assert p[ca["claim"]]["estimate"] == pytest.approx(float(np.exp(both.mean())), rel=1e-9)
    assert (tmp_path / "out" / "second_run" / "claims.json").read_bytes() == \
        (tmp_path / "b" / "methanol" / "verdict" / "claims.json").read_bytes()
