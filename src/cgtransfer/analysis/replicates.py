"""Statistics over independent replicates of the whole chain (all-atom runs, mapping, training, CG runs).

A replicate is the independent unit of the study: within one replicate every cell (model × state) shares the
all-atom reference runs, the trained models and the CG seeds, so cells are correlated and their spread is not
an error bar. Everything here therefore works on per-replicate values:

* a cell's value is the mean over replicates, with a Student-t interval from the replicate spread
  (``t_interval``); the within-run block error is reported beside it, never instead of it;
* a claim (e.g. "HIP-NN-TS beats MS-CG at held-out states") is one statistic per replicate — the mean over the
  claim's cells of a paired log-ratio computed inside that replicate (same reference, same frames, same CG
  seed) — and its interval is the t interval over the R replicate statistics (``claim``). For iid replicates
  this is exact under normality; it equals the fixed-effect contrast of a mixed model with a random replicate
  effect when the design is balanced. A bootstrap over replicates is not used: with R = 3-5 it has 10-126
  distinct resamples and underestimates the variance by (R − 1)/R;
* calibration asks whether a reported error predicts a re-run (``calibration``): each replicate in turn is
  left out and predicted from the others; z = (left-out − mean of the others) / (predicted spread). RMS z ≈ 1
  and ~95 % of |z| < 1.96 when the errors are right. The replicate-based errors (variance pooled over the
  metric's cells, R ≥ 3) and the within-run block errors are checked the same way.
  With few replicates the RMS z of right errors scatters widely: the left-out values of one replicate share
  that replicate's all-atom runs (a replicate effect common to its cells), and the pooled variance has few
  effective degrees of freedom. ``calibration`` therefore also gives the range (2.5-97.5 %) of RMS z that
  right errors would produce in a study of the same shape — simulated from a cell + replicate + noise model
  with the variances fitted to the data (``two_way_variances``) — and the verdict has three outcomes:
  calibrated (RMS z within ``CALIBRATED_RMS_Z``), not calibrated (outside the range right errors produce), or
  not resolved (outside the band but inside that range: the study is too small to tell).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

CALIBRATED_RMS_Z = (0.7, 1.4)  # RMS z inside this range: the reported error predicts a re-run


def t_interval(values, level: float = 0.95) -> dict:
    """Mean of independent replicate values with its standard error and Student-t interval (R − 1 dof)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    n = len(v)
    if n == 0:
        return {"n": 0, "mean": float("nan"), "se": float("nan"), "lo": float("nan"), "hi": float("nan"), "dof": 0}
    mean = float(v.mean())
    if n < 2:
        return {"n": 1, "mean": mean, "se": float("nan"), "lo": float("nan"), "hi": float("nan"), "dof": 0}
    se = float(v.std(ddof=1) / np.sqrt(n))
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * se
    return {"n": n, "mean": mean, "se": se, "lo": mean - half, "hi": mean + half, "dof": n - 1}


def claim(per_replicate, within_se=None, log_scale: bool = True, level: float = 0.95) -> dict:
    """A claim from its statistic in each replicate (``per_replicate``, length R; log-ratios when
    ``log_scale``): estimate, t interval over replicates, "resolved" when the interval excludes no effect
    (0 in log space), and beside it the interval the within-run errors alone would give (``within_se``: the
    propagated block error of each replicate's statistic), to show what ignoring the replicate spread costs."""
    t = t_interval(per_replicate, level)
    back = np.exp if log_scale else (lambda x: x)
    out = {"n_replicates": t["n"], "estimate": float(back(t["mean"])) if t["n"] else None,
           "lo": None, "hi": None, "se_log" if log_scale else "se": t["se"], "dof": t["dof"],
           "per_replicate": [float(back(x)) for x in np.asarray(per_replicate, dtype=float)],
           "resolved": False, "scale": "ratio" if log_scale else "difference"}
    if t["n"] >= 2 and np.isfinite(t["se"]):
        out.update(lo=float(back(t["lo"])), hi=float(back(t["hi"])), resolved=bool(t["lo"] > 0 or t["hi"] < 0))
    if within_se is not None:
        w = np.asarray(within_se, dtype=float)
        w = w[np.isfinite(w)]
        if len(w) and t["n"]:
            se_w = float(np.sqrt(np.sum(w**2)) / len(w))  # the error of the mean over replicates, within-run only
            z = float(stats.norm.ppf(0.5 + level / 2))
            out["within_run_only"] = [float(back(t["mean"] - z * se_w)), float(back(t["mean"] + z * se_w))]
    return out


def loo_z(values: np.ndarray, within_se: np.ndarray | None = None) -> dict:
    """Leave-one-replicate-out z scores of a cells × replicates array (NaN-free rows only).

    ``replicate``: the left-out value against the mean of the other R − 1, with the spread predicted from the
    others' variance pooled over cells (s² (1 + 1/(R − 1)); needs R ≥ 3). ``within``: the same difference
    against the within-run errors (se_left² + mean se_others² / (R − 1)), when ``within_se`` is given."""
    y = np.asarray(values, dtype=float)
    out = {"replicate": np.array([]), "within": np.array([])}
    if y.ndim != 2 or y.shape[1] < 2:
        return out
    keep = np.all(np.isfinite(y), axis=1)
    if within_se is not None:
        se = np.asarray(within_se, dtype=float)
        keep &= np.all(np.isfinite(se) & (se > 0), axis=1)
    y = y[keep]
    if not len(y):
        return out
    n_cells, r = y.shape
    zs_rep, zs_within = [], []
    for k in range(r):
        others = np.delete(y, k, axis=1)
        mean = others.mean(axis=1)
        diff = y[:, k] - mean
        if r >= 3:
            pooled = float(np.sum((others - mean[:, None]) ** 2) / (n_cells * (r - 2)))
            if pooled > 0:
                zs_rep.append(diff / np.sqrt(pooled * (1.0 + 1.0 / (r - 1))))
        if within_se is not None:
            s = se[keep]
            pred = np.sqrt(s[:, k] ** 2 + np.mean(np.delete(s, k, axis=1) ** 2, axis=1) / (r - 1))
            zs_within.append(diff / pred)
    out["replicate"] = np.concatenate(zs_rep) if zs_rep else np.array([])
    out["within"] = np.concatenate(zs_within) if zs_within else np.array([])
    return out


def _z_summary(z: np.ndarray) -> dict:
    if not len(z):
        return {"n": 0, "rms_z": None, "share_within_95": None, "calibrated": None}
    rms = float(np.sqrt(np.mean(z**2)))
    return {"n": int(len(z)), "rms_z": rms, "share_within_95": float(np.mean(np.abs(z) < 1.96)),
            "calibrated": bool(CALIBRATED_RMS_Z[0] <= rms <= CALIBRATED_RMS_Z[1])}


def _complete(values: np.ndarray, within_se: np.ndarray | None = None):
    y = np.asarray(values, dtype=float)
    if y.ndim != 2:
        return y.reshape(0, 0), None
    keep = np.all(np.isfinite(y), axis=1)
    se = None
    if within_se is not None:
        se = np.asarray(within_se, dtype=float)
        keep &= np.all(np.isfinite(se) & (se > 0), axis=1)
        se = se[keep]
    return y[keep], se


def two_way_variances(values: np.ndarray) -> dict:
    """Variance components of a cells × replicates array under y = cell + replicate + noise (two-way ANOVA
    without interaction, method of moments): ``replicate`` (the effect a replicate has on all its cells: its
    all-atom runs), ``noise`` (cell by cell), and the replicate effect's share of their sum."""
    y, _ = _complete(values)
    if y.ndim != 2 or y.shape[0] < 2 or y.shape[1] < 2:
        return {"replicate": float("nan"), "noise": float("nan"), "replicate_share": float("nan")}
    c, r = y.shape
    resid = y - y.mean(axis=1, keepdims=True)
    rep = resid.mean(axis=0)
    noise = float(np.sum((resid - rep) ** 2) / ((c - 1) * (r - 1)))
    rep_var = max(0.0, (c * float(np.sum(rep**2)) / (r - 1) - noise) / c)
    total = rep_var + noise
    return {"replicate": rep_var, "noise": noise, "replicate_share": rep_var / total if total > 0 else float("nan")}


def null_rms_z(values: np.ndarray, within_se: np.ndarray | None = None, n_sim: int = 1000, seed: int = 0,
               level: float = 0.95) -> dict:
    """The range of leave-one-replicate-out RMS z that right errors produce in a study of this shape.

    ``replicate``: studies drawn from the cell + replicate + noise model with the variances fitted to
    ``values`` (``two_way_variances``), each scored as ``loo_z`` scores the data (z is blind to the cells'
    means and to the overall scale). ``within``: studies whose entries scatter by exactly the reported
    within-run errors. Returns (lo, hi) per error kind, None where it cannot be assessed."""
    y, se = _complete(values, within_se)
    out = {"replicate": None, "within": None}
    if y.ndim != 2 or not len(y) or y.shape[1] < 2:
        return out
    rng = np.random.default_rng(seed)
    c, r = y.shape
    q = (100 * (1 - level) / 2, 100 * (1 + level) / 2)
    var = two_way_variances(y)
    if r >= 3 and np.isfinite(var["noise"]) and var["noise"] + var["replicate"] > 0:
        rms = []
        for _ in range(n_sim):
            sim = rng.normal(0, np.sqrt(var["noise"]), (c, r)) + rng.normal(0, np.sqrt(var["replicate"]), (1, r))
            z = loo_z(sim)["replicate"]
            if len(z):
                rms.append(float(np.sqrt(np.mean(z**2))))
        if rms:
            out["replicate"] = tuple(float(v) for v in np.percentile(rms, q))
    if se is not None:
        rms = []
        for _ in range(n_sim):
            z = loo_z(rng.normal(0, se), se)["within"]
            if len(z):
                rms.append(float(np.sqrt(np.mean(z**2))))
        if rms:
            out["within"] = tuple(float(v) for v in np.percentile(rms, q))
    return out


def calibration(values: np.ndarray, within_se: np.ndarray | None = None, n_sim: int = 1000) -> dict:
    """Calibration of the replicate-based errors and of the within-run errors for one metric (cells ×
    replicates, see ``loo_z``). A z summary is None where it cannot be assessed (R < 3 for the replicate
    errors). Each summary also holds ``null_lo``/``null_hi`` (the RMS z range right errors produce here,
    ``null_rms_z``) and ``verdict``: "calibrated", "not calibrated" or "not resolved"."""
    z = loo_z(values, within_se)
    null = null_rms_z(values, within_se, n_sim=n_sim)
    out = {}
    for key, name in (("replicate", "replicate_errors"), ("within", "within_run_errors")):
        summary = _z_summary(z[key])
        band = null[key]
        summary["null_lo"], summary["null_hi"] = band if band else (None, None)
        rms = summary["rms_z"]
        if rms is None:
            summary["verdict"] = None
        elif summary["calibrated"]:
            summary["verdict"] = "calibrated"
        elif band is None or not (band[0] <= rms <= band[1]):
            summary["verdict"] = "not calibrated"
        else:
            summary["verdict"] = "not resolved"
        out[name] = summary
    out["replicate_effect_share"] = two_way_variances(values)["replicate_share"]
    return out


def pooled_se(values: np.ndarray) -> float:
    """The standard error of a cell's replicate mean from the replicate variance pooled over the metric's
    cells (cells × replicates, complete rows): s_pooled / sqrt(R), with C (R − 1) degrees of freedom."""
    y = np.asarray(values, dtype=float)
    y = y[np.all(np.isfinite(y), axis=1)]
    if y.ndim != 2 or y.shape[1] < 2 or not len(y):
        return float("nan")
    var = float(np.sum((y - y.mean(axis=1, keepdims=True)) ** 2) / (y.shape[0] * (y.shape[1] - 1)))
    return float(np.sqrt(var / y.shape[1]))
