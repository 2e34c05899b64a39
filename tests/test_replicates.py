"""The replicate statistics on synthetic studies whose answers are known: intervals that cover the truth at their
stated rate, calibration that says "calibrated" for the right errors and not for errors 3.5x too small, claims
paired inside a replicate, and density cells that are still drifting kept out of every statistic."""

import numpy as np
import pandas as pd
import pytest

from cgtransfer.analysis import replicates as rs
from cgtransfer.stages.verdict import build_claims, cells_table


def test_t_interval_covers_the_true_mean_at_its_stated_rate():
    """R = 3 replicates from N(μ, σ): the t interval (2 dof) covers μ in ~95 % of studies; the normal
    interval ±1.96 se that the old headline used covers only ~80 %."""
    rng = np.random.default_rng(7)
    covered_t = covered_z = 0
    n = 4000
    for _ in range(n):
        x = rng.normal(1.5, 0.3, 3)
        t = rs.t_interval(x)
        covered_t += t["lo"] <= 1.5 <= t["hi"]
        covered_z += abs(x.mean() - 1.5) <= 1.96 * t["se"]
    assert abs(covered_t / n - 0.95) < 0.015
    assert covered_z / n < 0.85


@pytest.mark.parametrize("r", [3, 5])
def test_calibration_recognises_right_and_too_small_errors(r):
    """Cells with their own true means and a common replicate spread σ: the replicate-based errors are
    calibrated (RMS z ≈ 1, ~95 % within 1.96); within-run errors that are the true σ are calibrated too, and
    within-run errors 3.5× too small (the old per-cell jackknife) are not (RMS z ≈ 3.5)."""
    rng = np.random.default_rng(11)
    cells, sigma = 400, 0.2
    y = rng.normal(0, 1, (cells, 1)) + rng.normal(0, sigma, (cells, r))
    right = rs.calibration(y, np.full_like(y, sigma))
    assert right["replicate_errors"]["calibrated"] and abs(right["replicate_errors"]["rms_z"] - 1) < 0.1
    assert abs(right["replicate_errors"]["share_within_95"] - 0.95) < 0.03
    assert right["within_run_errors"]["calibrated"] and abs(right["within_run_errors"]["rms_z"] - 1) < 0.1
    small = rs.calibration(y, np.full_like(y, sigma / 3.5))
    assert not small["within_run_errors"]["calibrated"]
    assert abs(small["within_run_errors"]["rms_z"] - 3.5) < 0.35
    # the pooled standard error of a cell mean is σ/√R
    assert rs.pooled_se(y) == pytest.approx(sigma / np.sqrt(r), rel=0.08)


def test_calibration_needs_three_replicates_for_the_replicate_errors():
    y = np.random.default_rng(0).normal(0, 1, (50, 2))
    cal = rs.calibration(y, np.ones_like(y))
    assert cal["replicate_errors"]["rms_z"] is None and cal["within_run_errors"]["n"] == 100


STATES = {"T1": (250.0, 1.0), "T2": (300.0, 1.0), "T3": (400.0, None)}  # temperature, pressure (None: NVT)


def synthetic_long(n_rep: int, ratio: float, shared_sd: float, own_sd: float, seed: int = 3,
                   drifting: tuple | None = None) -> pd.DataFrame:
    """One-state models of two kinds at three states; the HIP-NN-TS error is ``ratio`` × MS-CG's in every cell,
    both multiplied by a per-(replicate, state) factor shared by every model (the reference run) and by a small
    per-cell factor (the CG run)."""
    rng = np.random.default_rng(seed)
    rows = []
    for r in range(1, n_rep + 1):
        shared = {s: rng.normal(0, shared_sd) for s in STATES}
        for kind, factor in (("hipnn", ratio), ("mscg", 1.0)):
            for trained in STATES:
                model = f"{kind}_{trained}"
                for s, (t, p) in STATES.items():
                    base = 2.0 * (1.0 if s == trained else 1.5)
                    value = base * factor * np.exp(shared[s] + rng.normal(0, own_sd))
                    common = {"model": model, "kind": kind, "state": s, "temperature_K": t, "stable": True,
                              "replicate": r}
                    rows.append({**common, "metric": "rdf_error_over_noise", "value": value,
                                 "stderr": 0.02 * value})
                    if p is not None:
                        rows.append({**common, "metric": "density_error_pct", "value": rng.normal(-1.0, 0.3),
                                     "stderr": 0.2})
                        stuck = drifting is not None and (model, s, r) == drifting
                        rows.append({**common, "metric": "density_not_converged", "value": float(stuck),
                                     "stderr": np.nan})
    return pd.DataFrame(rows)


INFO = {f"{k}_{s}": {"kind": k, "states": [s], "training_set": s} for k in ("hipnn", "mscg") for s in STATES}
TEMPS = {s: t for s, (t, _) in STATES.items()}
NVT = {s for s, (_, p) in STATES.items() if p is None}


def claim_named(claims, start):
    return next(c for c in claims if c["claim"].startswith(start))


def test_paired_claim_recovers_the_ratio_through_shared_reference_noise():
    """A 0.8 ratio under reference noise (sd 0.3 in log, shared by both kinds in a replicate) ten times the
    per-run noise: the paired claim over 4 replicates resolves it with an interval around 0.8, narrower than
    the spread of either kind's own error over replicates."""
    long = synthetic_long(4, 0.8, shared_sd=0.3, own_sd=0.03)
    claims = build_claims(long, INFO, TEMPS, NVT, 4)
    c = claim_named(claims, "HIP-NN-TS / MS-CG RDF error, at held-out states")
    assert c["n_contrasts"] == 6 and c["n_replicates"] == 4
    assert c["lo"] < 0.8 < c["hi"] and c["resolved"] and c["hi"] < 1.0
    assert c["hi"] / c["lo"] < 1.15
    colder = claim_named(claims, "HIP-NN-TS / MS-CG RDF error, held out, to colder states")
    assert colder["n_contrasts"] == 3  # trained at T2 or T3, tested at T1; trained at T3, tested at T2
    assert claim_named(claims, "HIP-NN-TS / MS-CG RDF error, held out, at the NVT states")["n_contrasts"] == 2
    # no difference between the kinds: not resolved (for this seed), and the interval holds 1
    same = claim_named(build_claims(synthetic_long(4, 1.0, 0.3, 0.03, seed=5), INFO, TEMPS, NVT, 4),
                       "HIP-NN-TS / MS-CG RDF error, at held-out states")
    assert same["lo"] < 1.0 < same["hi"] and not same["resolved"]


def test_held_out_only_models_make_contrasts_only_where_they_ran():
    """Leave-one-out models run at their held-out state only (evaluated_at: held_out): kind vs kind pairs them
    there, and their training states are neither contrasts nor dropped ones (a dropped contrast means a run that
    failed)."""
    long = synthetic_long(3, 0.8, shared_sd=0.1, own_sd=0.02)
    order = sorted(TEMPS, key=TEMPS.get)
    info = dict(INFO)
    rows = []
    for kind, factor in (("hipnn", 0.8), ("mscg", 1.0)):
        for held in order:
            name = f"{kind}_loo_{held}"
            info[name] = {"kind": kind, "states": [s for s in order if s != held], "training_set": "leave_one_out",
                          "held_out_state": held, "evaluated_at": "held_out"}
            for r in (1, 2, 3):
                rows.append({"model": name, "kind": kind, "state": held, "temperature_K": TEMPS[held], "stable": True,
                             "replicate": r, "metric": "rdf_error_over_noise", "value": 2.5 * factor, "stderr": 0.05})
    claims = build_claims(pd.concat([long, pd.DataFrame(rows)], ignore_index=True), info, TEMPS, NVT, 3)
    held_out = claim_named(claims, "HIP-NN-TS / MS-CG RDF error, at held-out states")
    assert held_out["n_contrasts"] == 6 + 3 and held_out["n_contrasts_dropped"] == 0
    training = claim_named(claims, "HIP-NN-TS / MS-CG RDF error, at their training states")
    assert training["n_contrasts"] == 3 and training["n_contrasts_dropped"] == 0
    loo = claim_named(claims, "[MS-CG] leave-one-out / single-state neighbours at the held-out state, interior")
    assert loo["n_contrasts"] == 1 and loo["n_contrasts_dropped"] == 0


def test_degradation_is_reported_beside_its_denominator():
    long = synthetic_long(3, 0.8, shared_sd=0.1, own_sd=0.02)
    claims = build_claims(long, INFO, TEMPS, NVT, 3)
    deg = claim_named(claims, "[MS-CG] single-state models away from / at their training state")
    assert deg["lo"] < 1.5 < deg["hi"]  # held-out cells are built 1.5x worse
    level = claim_named(claims, "[MS-CG] RDF error of single-state models at their training state (level)")
    assert level["resolved"] is None and level["lo"] < 2.0 < level["hi"]


def test_a_drifting_density_enters_no_statistic():
    long = synthetic_long(3, 0.8, 0.1, 0.02, drifting=("mscg_T1", "T2", 2))
    cells = cells_table(long, INFO, TEMPS, NVT, 3)
    row = cells[(cells["metric"] == "density_error_pct") & (cells["model"] == "mscg_T1") & (cells["state"] == "T2")].iloc[0]
    assert row["replicates_still_drifting"] == 1 and row["n_replicates"] == 2 and np.isnan(row["rep2"])
    other = cells[(cells["metric"] == "density_error_pct") & (cells["model"] == "mscg_T2") & (cells["state"] == "T2")]
    assert other.iloc[0]["n_replicates"] == 3


def test_calibration_verdict_knows_what_a_small_study_can_tell():
    """Right errors in a study the size of the replicate demo (30 cells, R = 3) with a strong replicate effect
    (40 % of the variance, as measured there): their leave-one-out RMS z is never below 1 at R = 3 (the left-out
    value and the pooled variance come from the same three values) and scatters up to ~1.8 from study to study;
    it lies inside the simulated range of right errors in ~95 % of studies, so right errors are rarely called
    "not calibrated"; within-run errors 3.5x too small land far outside their range every time."""
    rng = np.random.default_rng(5)
    outcomes = {"calibrated": 0, "not resolved": 0, "not calibrated": 0}
    inside = 0
    for _ in range(60):
        noise = rng.normal(0, 0.2, (30, 3))
        rep = rng.normal(0, 0.2 * np.sqrt(0.4 / 0.6), (1, 3))
        y = rng.normal(0, 1, (30, 1)) + noise + rep
        cal = rs.calibration(y, np.full_like(y, 0.2 / 3.5), n_sim=300)
        c = cal["replicate_errors"]
        outcomes[c["verdict"]] += 1
        inside += c["null_lo"] <= c["rms_z"] <= c["null_hi"]
        assert c["rms_z"] >= 0.99 and 0.99 <= c["null_lo"] < c["null_hi"]
        assert cal["within_run_errors"]["verdict"] == "not calibrated"
        assert cal["within_run_errors"]["rms_z"] > 3 * cal["within_run_errors"]["null_hi"] / 1.3
    assert inside >= 51  # ~95 % of 60 expected
    assert outcomes["not calibrated"] <= 9


def test_two_way_variances_recover_a_known_replicate_effect():
    rng = np.random.default_rng(9)
    y = rng.normal(0, 1, (2000, 1)) + rng.normal(0, 0.3, (2000, 6)) + rng.normal(0, 0.4, (1, 6))
    v = rs.two_way_variances(y)
    assert v["noise"] == pytest.approx(0.09, rel=0.05)
    # one realisation of 6 replicate effects: the estimate is their sample variance, unbiased for 0.16
    rep = y.mean(axis=0) - y.mean()
    assert v["replicate"] == pytest.approx(float(np.var(rep, ddof=1)) - 0.09 / 2000, rel=0.05)
