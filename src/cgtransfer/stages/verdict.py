"""Stage verdict: the study's claims over its independent replicates, with intervals that hold a re-run.

Reads every replicate's ``long.csv`` (rule summarize, one per replicate) and writes to ``results/<system>/verdict/``:

* ``cells.csv``: per (model, state, metric) the replicate values, their mean, the t interval from the replicate
  spread, the within-run block error beside it, and labels (training / held-out, an NPT density that was still
  drifting — not a property, left out —, a volume term used outside the temperatures or ensembles it was fitted on);
* ``calibration.csv``: per metric, how well the replicate-based and the within-run errors predict a left-out
  replicate (``cgtransfer.analysis.replicates.calibration``);
* ``claims.csv`` / ``claims.json``: one row per claim (design below): estimate, 95 % interval over replicates,
  the interval the within-run errors alone would give, resolved or not, calibrated or not;
* ``verdict.txt``: the claims in words; ``forest.png``: every claim's estimate and interval; ``heatmaps/``: the
  replicate-mean RDF error, force RMSE and density error, one readable figure per model kind.

Designs (every comparison is paired inside a replicate — same reference runs, same frames, same CG seed — and
the claim's statistic is the mean over its cells of ln(a/b), one value per replicate):

(a) kind vs kind: HIP-NN-TS against the MS-CG model trained on the same states, at held-out states (all, and
    separately by direction: to colder, to hotter, between training temperatures, at NVT states) and at
    training states;
(b) degradation: single-state models away from their training state against the one trained at the state,
    next to each kind's absolute error at its training states (the ratio's denominator);
(c) multi-state benefit where the state is held out: each leave-one-out model at its held-out state against the
    single-state models trained at the neighbouring states, interior states (interpolation) and end states
    (extrapolation) separately;
(d) temperature-aware models against their temperature-blind twin at interpolation and extrapolation states,
    and the energy they predict beyond their training temperatures.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from cgtransfer.analysis import replicates as rs
from cgtransfer.io import atomic_path, save_figure, write_csv

LOG_METRICS = ("rdf_error_over_noise", "force_rmse_kcal_mol_A", "angle_error_over_noise", "bond_error_over_noise",
               "rdf_error_npt_over_noise")
SIGNED_METRICS = ("density_error_pct", "pressure_error_bar", "energy_error_kcal_mol_per_molecule")
CLAIM_METRIC = "rdf_error_over_noise"
KIND_NAMES = {"hipnn": "HIP-NN-TS", "mscg": "MS-CG", "hipnn_t": "HIP-NN-TS(T)"}


def read_replicates(long_paths: list) -> pd.DataFrame:
    """The replicates' long tables as one, with a ``replicate`` column (1 … R in the order given)."""
    frames = []
    for r, path in enumerate(long_paths, start=1):
        df = pd.read_csv(path)
        df["replicate"] = r
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def plain_models(info: dict) -> dict:
    """Models whose cells enter the claims: not volume-corrected variants (their NVT structure is their base
    model's run) and not models with their own cg_md settings (another protocol)."""
    return {m: v for m, v in info.items() if not v.get("volume_term") and not v.get("cg_md")}


def evaluated_at(model: dict, state: str) -> bool:
    """Whether the study runs and compares a model at a state (a leave-one-out model with ``evaluated_at:
    held_out`` only at its held-out state)."""
    return model.get("evaluated_at", "all") != "held_out" or model.get("held_out_state") == state


def cell_values(long: pd.DataFrame, metric: str, n_replicates: int) -> tuple[dict, dict]:
    """{(model, state): values over replicates}, {(model, state): within-run errors}, on the metric's scale
    (log for error magnitudes: errors become relative). A value is NaN where the run was unstable, the metric is
    missing, or (density) the NPT run was still drifting."""
    d = long[long["metric"] == metric]
    drifting = long[(long["metric"] == "density_not_converged") & (long["value"] > 0)]
    drift = set(zip(drifting["model"], drifting["state"], drifting["replicate"]))
    values, errors = {}, {}
    for (model, state), grp in d.groupby(["model", "state"]):
        v = np.full(n_replicates, np.nan)
        e = np.full(n_replicates, np.nan)
        for row in grp.itertuples():
            ok = bool(row.stable) and np.isfinite(row.value)
            if metric.startswith("density") and (model, state, row.replicate) in drift:
                ok = False
            if not ok:
                continue
            if metric in LOG_METRICS:
                if row.value <= 0:
                    continue
                v[row.replicate - 1] = np.log(row.value)
                e[row.replicate - 1] = row.stderr / row.value if np.isfinite(row.stderr) else np.nan
            else:
                v[row.replicate - 1] = row.value
                e[row.replicate - 1] = row.stderr
        values[(model, state)], errors[(model, state)] = v, e
    return values, errors


def direction(state: str, training_states: list[str], temps: dict) -> str:
    t, train = temps[state], [temps[s] for s in training_states if s in temps]
    if state in training_states:
        return "training"
    if t < min(train):
        return "colder"
    if t > max(train):
        return "hotter"
    return "between"


class Claims:
    """Builds claims from contrasts of cells (see the module docstring) on one metric."""

    def __init__(self, values: dict, errors: dict, n_replicates: int, log_scale: bool):
        self.values, self.errors, self.r, self.log = values, errors, n_replicates, log_scale
        self.rows: list[dict] = []

    def _complete(self, cells) -> bool:
        return all(c in self.values and np.all(np.isfinite(self.values[c])) for c in cells)

    def add(self, name: str, design: str, metric: str, contrasts: list[tuple[list, list]], comparative: bool = True,
            note: str = "") -> None:
        """``contrasts``: (plus cells, minus cells); each contrast's value in a replicate is mean(plus) −
        mean(minus) (minus empty: mean(plus), an absolute level). Contrasts with a cell missing in any replicate
        are left out and counted."""
        usable = [(p, m) for p, m in contrasts if self._complete(p + m)]
        stat, within = np.full(self.r, np.nan), np.full(self.r, np.nan)
        if usable:
            per = np.array([[np.mean([self.values[c][k] for c in p]) - (np.mean([self.values[c][k] for c in m]) if m else 0.0)
                             for p, m in usable] for k in range(self.r)])
            var = np.array([[np.sum([self.errors[c][k] ** 2 for c in p]) / len(p) ** 2
                             + (np.sum([self.errors[c][k] ** 2 for c in m]) / len(m) ** 2 if m else 0.0)
                             for p, m in usable] for k in range(self.r)])
            stat = per.mean(axis=1)
            within = np.sqrt(np.nansum(var, axis=1)) / len(usable)
        c = rs.claim(stat, within, log_scale=self.log)
        if not comparative:
            c["resolved"] = None
        cells = sorted({cell for p, m in usable for cell in p + m})
        self.rows.append({"claim": name, "design": design, "metric": metric, "n_contrasts": len(usable),
                          "n_contrasts_dropped": len(contrasts) - len(usable), "n_cells": len(cells),
                          "comparative": comparative, "note": note, **c,
                          "cells": ";".join(f"{m}@{s}" for m, s in cells)})


def build_claims(long: pd.DataFrame, info: dict, temps: dict, nvt_states: set, n_replicates: int) -> list[dict]:
    plain = plain_models(info)
    order = sorted(temps, key=temps.get)
    rows: list[dict] = []
    for metric in (CLAIM_METRIC, "force_rmse_kcal_mol_A"):
        if metric not in set(long["metric"]):
            continue
        values, errors = cell_values(long, metric, n_replicates)
        cl = Claims(values, errors, n_replicates, log_scale=True)
        what = "RDF error" if metric == CLAIM_METRIC else "held-out force RMSE"
        # (a) kind vs kind, paired on the same training set and state
        groups: dict[str, list] = {k: [] for k in ("held_out", "colder", "hotter", "between", "nvt", "training")}
        for mh, vh in plain.items():
            if vh["kind"] != "hipnn":
                continue
            for mm, vm in plain.items():
                if vm["kind"] != "mscg" or sorted(vm["states"]) != sorted(vh["states"]):
                    continue
                for s in order:
                    if not (evaluated_at(vh, s) and evaluated_at(vm, s)):
                        continue  # never run there (evaluated_at: held_out): not a contrast, not a dropped one
                    contrast = ([(mh, s)], [(mm, s)])
                    where = direction(s, vh["states"], temps)
                    if where == "training":
                        groups["training"].append(contrast)
                        continue
                    groups["held_out"].append(contrast)
                    groups[where].append(contrast)
                    if s in nvt_states:
                        groups["nvt"].append(contrast)
        labels = {"held_out": "at held-out states", "colder": "held out, to colder states",
                  "hotter": "held out, to hotter states", "between": "held out, between training temperatures",
                  "nvt": "held out, at the NVT states", "training": "at their training states"}
        for key, label in labels.items():
            if groups[key] or key == "held_out":
                cl.add(f"HIP-NN-TS / MS-CG {what}, {label}", "a: kind vs kind", metric, groups[key])
        if metric == CLAIM_METRIC:
            for kind in sorted({v["kind"] for v in plain.values()}):
                singles = {v["states"][0]: m for m, v in plain.items() if v["kind"] == kind and len(v["states"]) == 1}
                # (b) degradation, and the absolute error at the training state (its denominator)
                deg = [([(m, s) for t, m in singles.items() if t != s], [(singles[s], s)]) for s in order if s in singles
                       and len(singles) > 1]
                name = KIND_NAMES.get(kind, kind)
                if singles:
                    cl.add(f"[{name}] {what} of single-state models at their training state (level)", "b: degradation",
                           metric, [([(m, s)], []) for s, m in singles.items()], comparative=False)
                    cl.add(f"[{name}] {what} of single-state models at held-out states (level)", "b: degradation",
                           metric, [([(m, s)], []) for t, m in singles.items() for s in order if s != t],
                           comparative=False)
                if deg:
                    cl.add(f"[{name}] single-state models away from / at their training state", "b: degradation",
                           metric, deg)
                # (c) leave-one-out models at their held-out state against the single-state neighbours
                loo = {v["held_out_state"]: m for m, v in plain.items() if v["kind"] == kind and v.get("held_out_state")}
                interior, ends = [], []
                for s, m in loo.items():
                    i = order.index(s)
                    neighbours = [singles[n] for n in order[max(i - 1, 0):i + 2] if n != s and n in singles]
                    if neighbours:
                        (interior if 0 < i < len(order) - 1 else ends).append(([(m, s)], [(n, s) for n in neighbours]))
                if interior or ends:
                    cl.add(f"[{name}] leave-one-out / single-state neighbours at the held-out state, interior "
                           "(interpolation)", "c: multi-state", metric, interior)
                    cl.add(f"[{name}] leave-one-out / single-state neighbours at the held-out state, end states "
                           "(extrapolation)", "c: multi-state", metric, ends)
            # (d) temperature-aware against its temperature-blind twin
            for aware, va in plain.items():
                if va["kind"] != "hipnn_t":
                    continue
                blind = [m for m, v in plain.items() if v["kind"] == "hipnn" and sorted(v["states"]) == sorted(va["states"])]
                for where in ("between", "colder", "hotter"):
                    contrasts = [([(aware, s)], [(b, s)]) for b in blind for s in order
                                 if direction(s, va["states"], temps) == where]
                    if contrasts:
                        label = "interpolation" if where == "between" else f"extrapolation to {where} states"
                        cl.add(f"[{aware}] temperature-aware / temperature-blind {what}, {label}", "d: temperature",
                               metric, contrasts)
        rows += cl.rows
    # (d) the energy a temperature-aware model predicts beyond its training temperatures (signed, kcal/mol/molecule)
    if "energy_error_kcal_mol_per_molecule" in set(long["metric"]):
        values, errors = cell_values(long, "energy_error_kcal_mol_per_molecule", n_replicates)
        cl = Claims(values, errors, n_replicates, log_scale=False)
        for aware, va in plain.items():
            if va["kind"] != "hipnn_t":
                continue
            for where in ("between", "colder", "hotter"):
                cells = [([(aware, s)], []) for s in order if direction(s, va["states"], temps) == where]
                if cells and all(np.any(np.isfinite(values.get(c[0][0], [np.nan]))) for c in cells):
                    cl.add(f"[{aware}] CG − all-atom energy (kcal/mol per molecule), "
                           f"{'interpolation' if where == 'between' else f'extrapolation to {where} states'}",
                           "d: temperature", "energy_error_kcal_mol_per_molecule", cells)
        rows += cl.rows
    return rows


def cells_table(long: pd.DataFrame, info: dict, temps: dict, nvt_states: set, n_replicates: int) -> pd.DataFrame:
    rows = []
    for metric in LOG_METRICS + SIGNED_METRICS:
        if metric not in set(long["metric"]):
            continue
        values, errors = cell_values(long, metric, n_replicates)
        for (model, state), v in values.items():
            natural = np.exp(v) if metric in LOG_METRICS else v
            t = rs.t_interval(natural)
            e = errors[(model, state)] * (np.exp(v) if metric in LOG_METRICS else 1.0)
            m = info.get(model, {})
            row = {"model": model, "kind": m.get("kind"), "state": state, "temperature_K": temps.get(state),
                   "metric": metric, "in_training": state in m.get("states", []), "n_replicates": t["n"],
                   "mean": t["mean"], "se_replicates": t["se"], "ci_lo": t["lo"], "ci_hi": t["hi"],
                   "se_within_run": float(np.sqrt(np.nanmean(e**2)) / np.sqrt(max(t["n"], 1))) if t["n"] else np.nan,
                   **{f"rep{k + 1}": natural[k] for k in range(n_replicates)}}
            if metric.startswith("density"):
                drifting = long[(long["metric"] == "density_not_converged") & (long["model"] == model)
                                & (long["state"] == state) & (long["value"] > 0)]
                row["replicates_still_drifting"] = int(len(drifting))
            if m.get("volume_term"):
                base = info.get(m.get("base_model"), {})
                fitted = base.get("states", m.get("states", []))
                t_fit = [temps[s] for s in fitted if s in temps]
                outside_t = bool(t_fit) and not (min(t_fit) <= temps.get(state, np.nan) <= max(t_fit))
                outside_ens = (state not in nvt_states) and all(s in nvt_states for s in fitted)
                row["volume_term_extrapolated"] = bool(outside_t or outside_ens)
            rows.append(row)
    return pd.DataFrame(rows)


def calibration_table(long: pd.DataFrame, info: dict, n_replicates: int) -> pd.DataFrame:
    plain = plain_models(info)
    rows = []
    for metric in LOG_METRICS + SIGNED_METRICS:
        if metric not in set(long["metric"]):
            continue
        values, errors = cell_values(long, metric, n_replicates)
        keys = [k for k in values if k[0] in plain]
        if not keys:
            continue
        y = np.array([values[k] for k in keys])
        e = np.array([errors[k] for k in keys])
        cal = rs.calibration(y, e)
        for which in ("replicate_errors", "within_run_errors"):
            c = cal[which]
            rows.append({"metric": metric, "errors": which, "n_replicates": n_replicates, "n_cells": len(keys),
                         "n_z": c["n"], "rms_z": c["rms_z"], "share_within_95": c["share_within_95"],
                         "calibrated": c["calibrated"], "null_rms_z_lo": c["null_lo"], "null_rms_z_hi": c["null_hi"],
                         "verdict": c["verdict"],
                         "replicate_effect_share": cal["replicate_effect_share"] if which == "replicate_errors" else None,
                         "pooled_se": rs.pooled_se(y) if which == "replicate_errors" else None})
    return pd.DataFrame(rows)


def claim_calibration(claim: dict, calibration: pd.DataFrame) -> str:
    row = calibration[(calibration["metric"] == claim["metric"]) & (calibration["errors"] == "replicate_errors")]
    if not len(row) or row.iloc[0]["calibrated"] is None or pd.isna(row.iloc[0]["calibrated"]):
        return "not assessable (needs 3 or more replicates)"
    r = row.iloc[0]
    return f"{_calibration_words(r)} (leave-one-replicate-out RMS z {r['rms_z']:.2f} over {int(r['n_z'])}{_null_words(r)})"


def _calibration_words(r) -> str:
    verdict = r.get("verdict") if hasattr(r, "get") else getattr(r, "verdict", None)
    if verdict is None or (isinstance(verdict, float) and np.isnan(verdict)):
        verdict = "calibrated" if r["calibrated"] else "not calibrated"
    return {"calibrated": "calibrated", "not calibrated": "NOT calibrated",
            "not resolved": "calibration not resolved"}.get(verdict, str(verdict))


def _null_words(r) -> str:
    lo, hi = r.get("null_rms_z_lo"), r.get("null_rms_z_hi")
    if lo is None or hi is None or pd.isna(lo) or pd.isna(hi):
        return ""
    return f"; right errors give {lo:.2f}-{hi:.2f} here"


def verdict_text(system: str, claims: list[dict], calibration: pd.DataFrame, n_replicates: int) -> str:
    lines = [f"Verdict on {system} over {n_replicates} independent replicate(s) of the whole chain "
             "(95 % t intervals over replicates; ratios below 1 favour the first named):"]
    design = None
    for c in claims:
        if (c["design"], c["metric"]) != design:
            design = (c["design"], c["metric"])
            lines.append(f"\n({c['design']}; {c['metric']})")
        if not c["n_contrasts"]:
            lines.append(f"  {c['claim']}: no cells (the study has no such models)")
            continue
        est = c["estimate"]
        interval = f"{c['lo']:.3g}-{c['hi']:.3g}" if c["lo"] is not None else "no interval (one replicate)"
        if c["comparative"]:
            status = "resolved" if c["resolved"] else "not resolved"
        else:
            status = "level"
        within = c.get("within_run_only")
        extra = f"; within-run errors alone would say {within[0]:.3g}-{within[1]:.3g}" if within else ""
        dropped = (f" ({c['n_contrasts_dropped']} left out: a cell unstable in some replicate)"
                   if c["n_contrasts_dropped"] else "")
        lines.append(f"  {c['claim']}: {est:.3g} [{interval}], {c['n_contrasts']} contrast(s){dropped}; {status}; "
                     f"{claim_calibration(c, calibration)}{extra}")
    lines.append("\nCalibration (does the reported error predict a left-out replicate? RMS z in "
                 f"{rs.CALIBRATED_RMS_Z[0]}-{rs.CALIBRATED_RMS_Z[1]} = calibrated; outside the range that right "
                 "errors give in a study of this shape = NOT calibrated; between the two = not resolved, the study "
                 "is too small to tell):")
    for r in calibration.itertuples():
        if r.rms_z is None or pd.isna(r.rms_z):
            why = (f"needs 3 or more replicates (this study: {r.n_replicates})" if r.errors == "replicate_errors"
                   and r.n_replicates < 3 else "no cell has a value in every replicate" if not r.n_z else "")
            lines.append(f"  {r.metric}, {r.errors.replace('_', ' ')}: not assessable ({why or 'too few values'})")
        else:
            lines.append(f"  {r.metric}, {r.errors.replace('_', ' ')}: RMS z {r.rms_z:.2f}, {100 * r.share_within_95:.0f} % "
                         f"of |z| < 1.96 over {r.n_z}{_null_words(r._asdict())}; {_calibration_words(r._asdict())}"
                         + (f"; the replicate effect (shared by a replicate's cells) is "
                            f"{100 * r.replicate_effect_share:.0f} % of the variance"
                            if r.errors == "replicate_errors" and r.replicate_effect_share is not None
                            and not pd.isna(r.replicate_effect_share) else ""))
    return "\n".join(lines) + "\n"


def verdict(long_paths: list, info: dict, state_points: list[dict], out: dict, system: str = "") -> dict:
    """``state_points``: [{state, temperature_K, pressure_bar}]; ``out``: output paths by name (rule verdict)."""
    long = read_replicates(long_paths)
    n = len(long_paths)
    temps = {s["state"]: float(s["temperature_K"]) for s in state_points}
    nvt_states = {s["state"] for s in state_points if s.get("pressure_bar") is None}
    cells = cells_table(long, info, temps, nvt_states, n)
    write_csv(out["cells"], cells)
    calibration = calibration_table(long, info, n)
    write_csv(out["calibration"], calibration)
    claims = build_claims(long, info, temps, nvt_states, n)
    for c in claims:
        c["calibration"] = claim_calibration(c, calibration)
    def row(c: dict) -> dict:
        out = {k: (";".join(f"{x:.4g}" for x in v) if k == "per_replicate" else v)
               for k, v in c.items() if k != "within_run_only"}
        within = c.get("within_run_only") or [None, None]
        return {**out, "within_run_lo": within[0], "within_run_hi": within[1]}

    table = pd.DataFrame([row(c) for c in claims])
    write_csv(out["claims_csv"], table)
    with atomic_path(out["claims_json"]) as tmp:
        tmp.write_text(json.dumps({"system": system, "replicates": n, "claims": claims,
                                   "calibration": calibration.to_dict("records")}, indent=2, default=str) + "\n")
    text = verdict_text(system, claims, calibration, n)
    with atomic_path(out["text"]) as tmp:
        tmp.write_text(text)
    from cgtransfer import plots

    save_figure(plots.forest(claims, f"{system}: claims over {n} replicate(s)"), out["forest"])
    Path(out["heatmaps"]).mkdir(parents=True, exist_ok=True)
    kinds = sorted({v["kind"] for v in info.values()})
    order = sorted(temps, key=temps.get)
    for metric in ("rdf_error_over_noise", "force_rmse_kcal_mol_A", "density_error_pct"):
        sub = cells[cells["metric"] == metric] if len(cells) else cells
        for kind in kinds:
            part = sub[sub["kind"] == kind] if len(sub) else sub
            if not len(part):
                continue
            fig = plots.replicate_heatmap(part, order, {m: v["states"] for m, v in info.items()},
                                          f"{system} {KIND_NAMES.get(kind, kind)}: {metric} (mean over {n} replicates ± t-based SE)")
            save_figure(fig, Path(out["heatmaps"]) / f"{metric}_{kind}.png")
    print(text)
    return {"claims": claims}
