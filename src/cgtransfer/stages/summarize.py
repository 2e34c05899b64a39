"""Stage summarize: the transferability study of one system — every model at every state.

* ``metrics.csv``: one wide row per (model, state), everything compare measured.
* ``long.csv``: the long format (system, model, kind, training_set, state, ensemble, temperature, in_training,
  stable, metric, value, stderr) that every table and figure is built from.
* model × state tables (kind as a column) and heatmaps of held-out force RMSE, RDF error in units of the
  reference noise floor, NPT density error and NVT pressure error, training states boxed, unstable cells marked.
* an RDF grid (rows models, columns states) and per-state RDF overlays.
* ``headline.json``/``headline.txt``: the paper's comparison with its uncertainty (see ``headline``).

Every table and figure holds every model, whatever its kind (HIP-NN-TS and the MS-CG baseline side by side).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from cgtransfer import plots
from cgtransfer.io import atomic_path, read_json, save_figure, write_csv

# metric name in long.csv → (column of metrics.csv, its standard-error column or None, description)
METRICS = {
    "force_rmse_kcal_mol_A": ("force_rmse_kcal_mol_A", "force_rmse_stderr_kcal_mol_A", "held-out force RMSE (kcal/mol/Å)"),
    "force_r2": ("force_r2", None, "held-out force R²"),
    "rdf_mae": ("rdf_mae", "rdf_mae_stderr", "RDF MAE"),
    "rdf_error_over_noise": ("rdf_mae_over_noise", "rdf_mae_over_noise_stderr", "RDF MAE / reference noise floor"),
    "rdf_js_divergence_r2g": ("rdf_js_divergence_r2g", None, "Jensen-Shannon divergence of r²g(r)"),
    "density_error_pct": ("density_error_pct", "density_error_pct_stderr", "CG NPT density error (%)"),
    "pressure_error_bar": ("pressure_error_bar", "pressure_error_stderr_bar", "CG − AA pressure at the AA density (bar)"),
    "density_cg_g_cm3": ("density_cg_g_cm3", "density_cg_stderr_g_cm3", "CG NPT density (g/cm³)"),
    "pressure_cg_nvt_bar": ("pressure_cg_nvt_bar", "pressure_cg_nvt_stderr_bar", "CG NVT pressure (bar)"),
    "temperature_deviation_pct_nvt": ("temperature_deviation_pct_nvt", None, "CG NVT temperature deviation (%)"),
    "density_drift_pct": ("density_drift_pct", None, "CG NPT density drift, last vs first quarter (%)"),
    "density_not_converged": ("density_not_converged", None, "CG NPT density still drifting (1) or converged (0)"),
    "compressibility_ratio": ("compressibility_ratio", "compressibility_ratio_stderr", "CG / AA isothermal compressibility"),
    "rdf_error_npt_over_noise": ("rdf_error_npt_over_noise", "rdf_error_npt_over_noise_stderr",
                                 "RDF MAE at the CG NPT density / noise floor"),
    "angle_error_over_noise": ("angle_error_over_noise", "angle_error_over_noise_stderr",
                               "three-body angle distribution error (first shell) / reference noise floor"),
    "bond_error_over_noise": ("bond_error_over_noise", "bond_error_over_noise_stderr",
                              "intramolecular bead-pair distance distribution error / reference noise floor"),
    "energy_cg_kcal_mol_per_molecule": ("energy_cg_kcal_mol_per_molecule", "energy_cg_stderr_kcal_mol_per_molecule",
                                        "energy-anchored CG U(R), mean over the NVT run (kcal/mol per molecule)"),
    "energy_aa_kcal_mol_per_molecule": ("energy_aa_kcal_mol_per_molecule", "energy_aa_stderr_kcal_mol_per_molecule",
                                        "all-atom mean potential energy (kcal/mol per molecule)"),
    "energy_error_kcal_mol_per_molecule": ("energy_error_kcal_mol_per_molecule", "energy_error_stderr_kcal_mol_per_molecule",
                                           "CG U(R) − all-atom energy (kcal/mol per molecule)"),
}
HEATMAPS = ("force_rmse_kcal_mol_A", "rdf_error_over_noise", "density_error_pct", "pressure_error_bar",
            "compressibility_ratio")


def metrics_table(metrics_paths: list) -> pd.DataFrame:
    rows = []
    for p in metrics_paths:
        m = read_json(p)
        rows.append({k: v for k, v in m.items() if not isinstance(v, dict)})
    table = pd.DataFrame(rows).sort_values(["model", "temperature_K"]).reset_index(drop=True)
    if "stable" not in table:
        table["stable"] = True
    if "density_converged" in table:
        conv = table["density_converged"]
        table["density_not_converged"] = [np.nan if c is None or (isinstance(c, float) and np.isnan(c)) else float(not c)
                                          for c in conv]
    return table


def long_table(table: pd.DataFrame, system: str, info: dict) -> pd.DataFrame:
    """``info``: model → {kind, states, training_set, held_out_state}."""
    rows = []
    for rec in table.to_dict("records"):
        m = info[rec["model"]]
        for metric, (col, err, _) in METRICS.items():
            if col not in rec:
                continue
            value = rec[col]
            rows.append({
                "system": system, "model": rec["model"], "kind": m["kind"], "training_set": m["training_set"],
                "volume_term": bool(m.get("volume_term", False)), "base_model": m.get("base_model", rec["model"]),
                "state": rec["state"], "ensemble": rec.get("ensemble", ""), "temperature_K": rec["temperature_K"],
                "in_training": rec["state"] in m["states"], "stable": bool(rec["stable"]), "metric": metric,
                "value": np.nan if value is None else float(value),
                "stderr": float(rec[err]) if err and rec.get(err) is not None else np.nan,
            })
    return pd.DataFrame(rows)


def pivot(long: pd.DataFrame, metric: str, state_order: list[str], column: str = "value") -> pd.DataFrame:
    out = long[long["metric"] == metric].pivot(index="model", columns="state", values=column)
    return out[[s for s in state_order if s in out.columns]]


def with_kind(df: pd.DataFrame, kinds: dict) -> pd.DataFrame:
    """A model × state table with the model's kind as its first column."""
    out = df.reset_index().rename(columns={"index": "model"})
    out.insert(1, "kind", [kinds.get(m, "") for m in out["model"]])
    return out


def label(model: str, kinds: dict) -> str:
    return f"{model} ({kinds[model]})" if model in kinds else model


# ---------------------------------------------------------------------------------------------------- headline
def _ratio_summary(cells: list[dict]) -> dict:
    """Aggregate per-cell ratios a/b (each with the standard errors of a and b): geometric mean ratio with a
    95 % interval from the cell-to-cell spread of log(a/b) (or, for one cell, from the propagated errors), and
    the cells whose difference is significant (|a − b| > 2 sqrt(se_a² + se_b²))."""
    if not cells:
        return {"n_cells": 0}
    logs = np.array([np.log(c["a"] / c["b"]) for c in cells])
    se_logs = np.array([np.hypot(c["se_a"] / c["a"], c["se_b"] / c["b"]) for c in cells])
    mean = float(logs.mean())
    if len(cells) > 1:
        se = float(logs.std(ddof=1) / np.sqrt(len(cells)))
        se = max(se, float(np.sqrt(np.sum(se_logs**2))) / len(cells))
    else:
        se = float(se_logs[0])
    z = np.array([(c["a"] - c["b"]) / np.hypot(c["se_a"], c["se_b"]) if np.hypot(c["se_a"], c["se_b"]) > 0
                  else np.inf * np.sign(c["a"] - c["b"]) for c in cells])
    return {
        "n_cells": len(cells),
        "geometric_mean_ratio": float(np.exp(mean)),
        "ratio_95ci": [float(np.exp(mean - 1.96 * se)), float(np.exp(mean + 1.96 * se))],
        "resolved": bool(abs(mean) > 1.96 * se),
        "cells_a_better": int(np.sum(z < -2)),
        "cells_b_better": int(np.sum(z > 2)),
        "cells_not_significant": int(np.sum(np.abs(z) <= 2)),
        "cells": cells,
    }


def headline(long: pd.DataFrame, info: dict, metric: str = "rdf_error_over_noise") -> dict:
    """The seed paper's comparison on this system, cell by cell with uncertainties (ratios < 1 favour the first).

    * ``hipnn_vs_mscg``: at held-out states, HIP-NN-TS against MS-CG trained on the same states (same training
      set, same state).
    * ``multi_vs_single`` per kind: at each state, a multi-state model that did not see it (leave-one-out) —
      or, without leave-one-out models, the model on all states (which did) — against the mean of the
      single-state models trained elsewhere.
    * ``single_heldout_vs_trained`` per kind: how much a single-state model loses away from its training state
      (single-state models elsewhere against the one trained at the state).
    Unstable cells are counted per model kind (every model) and left out of the ratios; models with their own
    ``cg_md`` overrides are not pooled."""
    volume = volume_term_summary(long, info)
    d = long[long["metric"] == metric].copy()
    stable = d[d["stable"] & d["value"].notna()]
    # models with their own cg_md settings (e.g. another timestep) run a different protocol, and volume-corrected
    # variants share their base model's NVT structure: neither is pooled here
    info = {m: v for m, v in info.items() if not v.get("cg_md") and not v.get("volume_term")}
    stable = stable[stable["model"].isin(list(info))]
    key = {m: (tuple(sorted(v["states"])), v["kind"]) for m, v in info.items()}

    def cell(rows):
        v = rows["value"].to_numpy()
        se = rows["stderr"].fillna(0.0).to_numpy()
        return float(v.mean()), float(np.sqrt(np.sum(se**2)) / len(v))

    out: dict = {"metric": metric, "unstable_cells": {}, "volume_term": volume}
    for kind, grp in d.groupby("kind"):
        bad = grp[~grp["stable"]]
        out["unstable_cells"][kind] = [f"{r.model}@{r.state}" for r in bad.itertuples()]
    pairs, trained_pairs = [], []
    for m_h, v in info.items():
        if v["kind"] != "hipnn":
            continue
        twins = [m for m, w in info.items() if w["kind"] == "mscg" and key[m][0] == key[m_h][0]]
        for m_m in twins:
            for state in sorted(set(stable["state"])):
                a = stable[(stable["model"] == m_h) & (stable["state"] == state)]
                b = stable[(stable["model"] == m_m) & (stable["state"] == state)]
                if len(a) and len(b):
                    (va, sa), (vb, sb) = cell(a), cell(b)
                    (trained_pairs if state in v["states"] else pairs).append(
                        {"state": state, "a_model": m_h, "b_model": m_m, "a": va, "se_a": sa, "b": vb, "se_b": sb})
    out["hipnn_vs_mscg"] = _ratio_summary(pairs)
    # the same pairs at their training states: how well each kind can represent the structure it was fitted to
    out["hipnn_vs_mscg_at_training_states"] = _ratio_summary(trained_pairs)
    out["multi_vs_single"], out["single_heldout_vs_trained"] = {}, {}
    for kind in sorted({v["kind"] for v in info.values()}):
        singles = [m for m, v in info.items() if v["kind"] == kind and len(v["states"]) == 1]
        loo = [m for m, v in info.items() if v["kind"] == kind and v.get("held_out_state")]
        alls = [m for m, v in info.items() if v["kind"] == kind and v["training_set"] == "all"]
        cells, degrade = [], []
        for state in sorted(set(stable["state"])):
            elsewhere = stable[stable["model"].isin([m for m in singles if state not in info[m]["states"]])
                               & (stable["state"] == state)]
            here = stable[stable["model"].isin([m for m in singles if state in info[m]["states"]])
                          & (stable["state"] == state)]
            multi_models = [m for m in loo if info[m]["held_out_state"] == state] or alls
            multi = stable[stable["model"].isin(multi_models) & (stable["state"] == state)]
            if len(multi) and len(elsewhere):
                (va, sa), (vb, sb) = cell(multi), cell(elsewhere)
                cells.append({"state": state, "a_model": ",".join(multi["model"]), "a_held_out": bool(loo),
                              "b_model": ",".join(elsewhere["model"]), "a": va, "se_a": sa, "b": vb, "se_b": sb})
            if len(here) and len(elsewhere):
                (va, sa), (vb, sb) = cell(elsewhere), cell(here)
                degrade.append({"state": state, "a_model": ",".join(elsewhere["model"]), "b_model": ",".join(here["model"]),
                                "a": va, "se_a": sa, "b": vb, "se_b": sb})
        out["multi_vs_single"][kind] = {"multi": "leave_one_out (held out)" if loo else "all (in training)",
                                        **_ratio_summary(cells)}
        out["single_heldout_vs_trained"][kind] = _ratio_summary(degrade)
    return out


# ------------------------------------------------------------------------------------- temperature transfer
TEMPERATURE_METRICS = ("force_rmse_kcal_mol_A", "rdf_error_over_noise", "density_error_pct",
                       "energy_error_kcal_mol_per_molecule")
ROLES = ("temperature-aware", "temperature-blind", "MS-CG", "single-state")


def temperature_transfer(long: pd.DataFrame, info: dict) -> pd.DataFrame:
    """The test of every temperature-aware model (kind hipnn_t): at each state, labelled training, interpolation
    (between its training temperatures) or extrapolation (beyond them), its force RMSE, RDF error and NPT
    density error next to (a) the temperature-blind HIP-NN-TS and (b) the MS-CG model trained on the same states
    and (c) the single-state HIP-NN-TS trained at that very state. Structure and forces are the uncorrected
    models' (the volume term exerts no force); the NPT density is that of the volume-corrected variant
    ``<model>_vol`` where the study has one. One row per (temperature-aware model, state, role, metric)."""
    temps = dict(zip(long["state"], long["temperature_K"]))
    plain = {m: v for m, v in info.items() if not v.get("volume_term") and not v.get("cg_md")}
    rows = []
    for aware, v in plain.items():
        if v["kind"] != "hipnn_t":
            continue
        train_set = set(v["states"])
        t_train = [temps[s] for s in v["states"] if s in temps]
        twins = {"temperature-blind": [m for m, w in plain.items() if w["kind"] == "hipnn" and set(w["states"]) == train_set],
                 "MS-CG": [m for m, w in plain.items() if w["kind"] == "mscg" and set(w["states"]) == train_set]}
        for state in sorted(temps, key=temps.get):
            t = temps[state]
            where = ("training" if state in train_set else
                     "interpolation" if min(t_train) < t < max(t_train) else "extrapolation")
            models = {"temperature-aware": [aware], **twins,
                      "single-state": [m for m, w in plain.items() if w["kind"] == "hipnn" and w["states"] == [state]]}
            for role, names in models.items():
                for model in names:
                    for metric in TEMPERATURE_METRICS:
                        if metric == "energy_error_kcal_mol_per_molecule" and role != "temperature-aware":
                            continue
                        source = model
                        if metric == "density_error_pct" and f"{model}_vol" in info:
                            source = f"{model}_vol"
                        cell = long[(long["model"] == source) & (long["state"] == state) & (long["metric"] == metric)]
                        if not len(cell):
                            continue
                        c = cell.iloc[0]
                        rows.append({"aware_model": aware, "state": state, "temperature_K": t, "where": where,
                                     "role": role, "model": source, "metric": metric, "stable": bool(c["stable"]),
                                     "value": c["value"] if c["stable"] else np.nan, "stderr": c["stderr"]})
    columns = ["aware_model", "state", "temperature_K", "where", "role", "model", "metric", "stable", "value", "stderr"]
    return pd.DataFrame(rows, columns=columns)


def temperature_headline(tt: pd.DataFrame, metric: str = "rdf_error_over_noise") -> dict:
    """Per temperature-aware model, at its interpolation and extrapolation states: its ``metric`` against the
    single-state model trained there and against the temperature-blind model on the same states (ratios < 1
    favour the temperature-aware model, with intervals as in ``headline``), and its corrected NPT density error
    (target: within 3 %)."""
    out = {}
    for aware, grp in tt.groupby("aware_model"):
        entry = {}
        for where in ("interpolation", "extrapolation"):
            sub = grp[grp["where"] == where]
            block = {"states": sorted(set(sub["state"]), key=lambda s: float(sub[sub["state"] == s]["temperature_K"].iloc[0]))}
            for other in ("single-state", "temperature-blind", "MS-CG"):
                cells = []
                for state in block["states"]:
                    a = sub[(sub["state"] == state) & (sub["role"] == "temperature-aware") & (sub["metric"] == metric)]
                    b = sub[(sub["state"] == state) & (sub["role"] == other) & (sub["metric"] == metric)]
                    if len(a) and len(b) and np.isfinite(a["value"].iloc[0]) and np.isfinite(b["value"].iloc[0]):
                        cells.append({"state": state, "a_model": a["model"].iloc[0], "b_model": b["model"].iloc[0],
                                      "a": float(a["value"].iloc[0]), "se_a": float(np.nan_to_num(a["stderr"].iloc[0])),
                                      "b": float(b["value"].iloc[0]), "se_b": float(np.nan_to_num(b["stderr"].iloc[0]))})
                block[f"vs_{other.replace('-', '_').replace(' ', '_')}"] = _ratio_summary(cells)
            dens = sub[(sub["role"] == "temperature-aware") & (sub["metric"] == "density_error_pct")]
            dens = dens[np.isfinite(dens["value"])]
            block["density_error_pct"] = {r.state: [float(r.value), float(r.stderr)] for r in dens.itertuples()}
            block["density_within_3pct"] = bool(len(dens) and (dens["value"].abs() <= 3).all()) if len(dens) else None
            unstable = sub[~sub["stable"]]
            block["unstable_cells"] = sorted({f"{r.model}@{r.state}" for r in unstable.itertuples()})
            entry[where] = block
        energy = grp[(grp["role"] == "temperature-aware") & (grp["metric"] == "energy_error_kcal_mol_per_molecule")]
        entry["energy_error_kcal_mol_per_molecule"] = {r.state: [float(r.value), float(r.stderr)]
                                                       for r in energy.itertuples() if np.isfinite(r.value)}
        out[aware] = entry
    return out


def heat_capacity(table: pd.DataFrame, model: str) -> dict | None:
    """The configurational heat capacity along the NPT states (1 bar): the slope d<E>/dT of a straight line through
    the all-atom mean potential energies and through the energy-anchored model's mean U(R) (kcal/mol/K per
    molecule, with the fit's standard error); None without anchored energies at two NPT states at least."""
    rows = table[(table["model"] == model) & table.get("ensemble", pd.Series("", index=table.index)).eq("NPT")]
    if "energy_cg_kcal_mol_per_molecule" not in rows:
        return None
    rows = rows[np.isfinite(rows["energy_cg_kcal_mol_per_molecule"])].sort_values("temperature_K")
    if len(rows) < 2:
        return None
    out = {"states": list(rows["state"])}
    for side in ("aa", "cg"):
        t = rows["temperature_K"].to_numpy(float)
        e = rows[f"energy_{side}_kcal_mol_per_molecule"].to_numpy(float)
        se = np.maximum(rows[f"energy_{side}_stderr_kcal_mol_per_molecule"].fillna(0).to_numpy(float), 1e-12)
        coef, cov = np.polyfit(t, e, 1, w=1.0 / se, cov="unscaled") if len(t) > 2 else (np.polyfit(t, e, 1), None)
        slope_se = float(np.sqrt(cov[0, 0])) if cov is not None else float(np.hypot(se[0], se[1]) / (t[1] - t[0]))
        out[f"{side}_kcal_mol_K"] = [float(coef[0]), slope_se]
    return out


def temperature_headline_text(th: dict) -> list[str]:
    lines = []
    for aware, entry in th.items():
        for where in ("interpolation", "extrapolation"):
            block = entry[where]
            if not block["states"]:
                continue
            parts = []
            for key, name in (("vs_single_state", "single-state model trained there"),
                              ("vs_temperature_blind", "temperature-blind HIP-NN-TS, same states"),
                              ("vs_MS_CG", "MS-CG, same states")):
                r = block[key]
                if r.get("n_cells"):
                    lo, hi = r["ratio_95ci"]
                    parts.append(f"vs {name}: {r['geometric_mean_ratio']:.2f} ({lo:.2f}-{hi:.2f}; "
                                 f"{r['cells_a_better']} better, {r['cells_b_better']} worse, "
                                 f"{r['cells_not_significant']} n.s.)")
            dens = ", ".join(f"{s} {v:+.1f}±{e:.1f} %" for s, (v, e) in block["density_error_pct"].items())
            lines.append(f"[{aware}] {where} ({', '.join(block['states'])}): RDF error ratio " + "; ".join(parts)
                         + (f"; corrected NPT density error {dens}" if dens else "")
                         + (f"; unstable: {', '.join(block['unstable_cells'])}" if block["unstable_cells"] else ""))
        if entry["energy_error_kcal_mol_per_molecule"]:
            lines.append(f"[{aware}] energy-anchored U(R) − all-atom energy per molecule: " + ", ".join(
                f"{s} {v:+.3f}±{e:.3f}" for s, (v, e) in entry["energy_error_kcal_mol_per_molecule"].items())
                + " kcal/mol")
        hc = entry.get("heat_capacity")
        if hc:
            lines.append(f"[{aware}] configurational heat capacity d<E>/dT along the NPT states ({', '.join(hc['states'])}): "
                         f"CG {hc['cg_kcal_mol_K'][0] * 4184:.0f}±{hc['cg_kcal_mol_K'][1] * 4184:.0f}, all-atom "
                         f"{hc['aa_kcal_mol_K'][0] * 4184:.0f}±{hc['aa_kcal_mol_K'][1] * 4184:.0f} J/(mol K) per molecule")
    return lines


def volume_term_summary(long: pd.DataFrame, info: dict) -> dict:
    """NPT density error, convergence and compressibility ratio of uncorrected and volume-corrected models, at
    their training states and at held-out states, per kind: mean |error|, largest |error|, cell counts."""
    out = {}
    for corrected in (False, True):
        for kind in sorted({v["kind"] for v in info.values()}):
            models = [m for m, v in info.items() if v["kind"] == kind and bool(v.get("volume_term")) == corrected
                      and not v.get("cg_md")]
            if not models:
                continue
            rows = long[long["model"].isin(models) & long["stable"]]
            entry = {}
            for where, mask in (("training", rows["in_training"]), ("held_out", ~rows["in_training"])):
                dens = rows[mask & (rows["metric"] == "density_error_pct")]["value"].dropna()
                comp = rows[mask & (rows["metric"] == "compressibility_ratio")]["value"].dropna()
                drift = rows[mask & (rows["metric"] == "density_not_converged")]["value"].dropna()
                entry[where] = {
                    "n_cells": int(len(dens)),
                    "mean_abs_density_error_pct": float(dens.abs().mean()) if len(dens) else None,
                    "max_abs_density_error_pct": float(dens.abs().max()) if len(dens) else None,
                    "cells_within_2pct": int((dens.abs() <= 2).sum()), "cells_within_4pct": int((dens.abs() <= 4).sum()),
                    "median_compressibility_ratio": float(comp.median()) if len(comp) else None,
                    "cells_not_converged": int((drift > 0).sum()),
                }
            out[f"{kind}{' + volume term' if corrected else ''}"] = entry
    return out


def headline_text(h: dict) -> str:
    def line(name, r, a, b):
        if not r.get("n_cells"):
            return f"{name}: no cells to compare"
        lo, hi = r["ratio_95ci"]
        verdict = ("resolved: " + (f"{a} better" if r["geometric_mean_ratio"] < 1 else f"{b} better")) if r["resolved"] \
            else "not resolved (the interval contains 1)"
        return (f"{name}: {a}/{b} = {r['geometric_mean_ratio']:.2f} (95 % interval {lo:.2f}-{hi:.2f}) over "
                f"{r['n_cells']} cells; {verdict}; significant cells: {r['cells_a_better']} favour {a}, "
                f"{r['cells_b_better']} favour {b}, {r['cells_not_significant']} not significant")

    lines = [f"Headline comparison on {h['metric']} within ONE replicate (ratios below 1 favour the first model). "
             "Its intervals come from the spread over cells and the within-run errors of this one chain and do not "
             "hold a re-run; the study's verdict, with intervals over independent replicates, is "
             "results/<system>/verdict/verdict.txt.",
             line("HIP-NN-TS vs MS-CG at held-out states", h["hipnn_vs_mscg"], "HIP-NN-TS", "MS-CG"),
             line("HIP-NN-TS vs MS-CG at training states", h.get("hipnn_vs_mscg_at_training_states", {}),
                  "HIP-NN-TS", "MS-CG")]
    for kind, r in h["multi_vs_single"].items():
        lines.append(line(f"[{kind}] multi-state ({r['multi']}) vs single-state models trained elsewhere", r,
                          "multi-state", "single-state"))
    for kind, r in h["single_heldout_vs_trained"].items():
        lines.append(line(f"[{kind}] single-state models away from vs at their training state", r, "held out", "trained"))
    for kind, cells in h["unstable_cells"].items():
        lines.append(f"[{kind}] unstable cells: {len(cells)}" + (f" ({', '.join(cells)})" if cells else ""))
    if "three_body_angles" in h:
        a = h["three_body_angles"]
        lines.append("Three-body angle distribution (first shell; error / reference noise floor):")
        lines.append("  " + line("HIP-NN-TS vs MS-CG at held-out states", a["hipnn_vs_mscg"], "HIP-NN-TS", "MS-CG"))
        lines.append("  " + line("HIP-NN-TS vs MS-CG at training states", a["hipnn_vs_mscg_at_training_states"],
                                 "HIP-NN-TS", "MS-CG"))
        for kind, r in a["multi_vs_single"].items():
            lines.append("  " + line(f"[{kind}] multi-state ({r['multi']}) vs single-state elsewhere", r,
                                     "multi-state", "single-state"))
    lines += temperature_headline_text(h.get("temperature_aware", {}))
    for name, entry in h.get("volume_term", {}).items():
        for where, e in entry.items():
            if e["n_cells"]:
                lines.append(f"NPT density [{name}] at {where} states: mean |error| {e['mean_abs_density_error_pct']:.1f} %, "
                             f"max {e['max_abs_density_error_pct']:.1f} % ({e['cells_within_2pct']}/{e['n_cells']} within 2 %, "
                             f"{e['cells_within_4pct']}/{e['n_cells']} within 4 %); median compressibility CG/AA "
                             + (f"{e['median_compressibility_ratio']:.2f}" if e["median_compressibility_ratio"] is not None
                                else "n/a") + f"; still drifting: {e['cells_not_converged']}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------- stage
def package_versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("cgtransfer", "torch", "openmm", "hippynn", "MDAnalysis", "snakemake", "numpy", "scipy", "pandas"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def summarize(metrics_paths: list, rdf_paths: dict, info: dict, out: dict, system: str = "",
              provenance: dict | None = None, angle_paths: dict | None = None) -> pd.DataFrame:
    """``rdf_paths``/``angle_paths``: {(model, state): compare rdf.csv/angles.csv}; ``info``: model → {kind, states, training_set,
    held_out_state}; ``out``: output paths by name (see the summarize rule)."""
    table = metrics_table(metrics_paths)
    kinds = {m: v["kind"] for m, v in info.items()}
    training = {m: v["states"] for m, v in info.items()}
    if "kind" not in table:
        table.insert(1, "kind", [kinds[m] for m in table["model"]])
    table["in_training"] = [s in training[m] for m, s in zip(table["model"], table["state"])]
    state_order = list(table.drop_duplicates("state").sort_values("temperature_K")["state"])
    write_csv(out["metrics"], table)
    long = long_table(table, system, info)
    prov = {**(provenance or {}), "packages": package_versions()}
    long["git_revision"] = prov.get("git_revision", "unknown")
    long["cgtransfer_version"] = prov["packages"]["cgtransfer"]
    write_csv(out["long"], long)
    if "provenance" in out:
        with atomic_path(out["provenance"]) as tmp:
            tmp.write_text(json.dumps(prov, indent=2, default=str) + "\n")

    tables = {"force_rmse": "force_rmse_kcal_mol_A", "rdf_error": "rdf_error_over_noise",
              "density_error": "density_error_pct", "pressure_error": "pressure_error_bar",
              "angle_error": "angle_error_over_noise", "bond_error": "bond_error_over_noise"}
    for name, metric in tables.items():
        value, err = pivot(long, metric, state_order), pivot(long, metric, state_order, "stderr")
        both = value.join(err, rsuffix="_stderr")
        write_csv(out[name], with_kind(both, kinds))

    unstable = {(r.model, r.state): (r.failed_at_ps if "failed_at_ps" in table else np.nan)
                for r in table[~table["stable"].astype(bool)].itertuples()}
    panels = {METRICS[m][2]: pivot(long, m, state_order) for m in HEATMAPS}
    errs = {METRICS[m][2]: pivot(long, m, state_order, "stderr") for m in HEATMAPS}
    save_figure(plots.transferability_heatmaps(panels, training, errors=errs, unstable=unstable, kinds=kinds),
                out["heatmaps"])
    labelled_table = table.assign(model=[label(m, kinds) for m in table["model"]],
                                  volume_term=[bool(info[m].get("volume_term")) for m in table["model"]])
    save_figure(plots.density_vs_temperature(labelled_table), out["density_figure"])

    curves = {key: pd.read_csv(path) for key, path in rdf_paths.items()}
    temps = dict(zip(table["state"], table["temperature_K"]))
    # a volume-corrected model's NVT structure is its base model's (same run): one row per trained model
    models = sorted((m for m in info if not info[m].get("volume_term")), key=lambda m: (kinds[m], len(training[m]), m))
    save_figure(plots.rdf_grid(curves, models, state_order, temps, training, unstable, kinds), out["rdf_grid"])
    Path(out["rdf_dir"]).mkdir(parents=True, exist_ok=True)
    for state in state_order:  # one figure per state, one panel per bead-type pair
        panels: dict = {}
        for (model, st), df in curves.items():
            if st != state or info[model].get("volume_term"):
                continue
            for pair, t in df.groupby("pair", sort=False):
                entry = panels.setdefault(pair, {"r": t["r_A"].to_numpy(), "g_ref": t["g_reference"].to_numpy(),
                                                 "models": {}})
                if np.isfinite(t["g_cg"]).all():
                    entry["models"][label(model, kinds)] = t["g_cg"].to_numpy()
        fig = plots.rdf_overlay_pairs(panels, f"{state} ({temps[state]:g} K), CG NVT")
        save_figure(fig, Path(out["rdf_dir"]) / f"rdf_{state}.png")

    if "angles_figure" in out:
        angle_curves = {key: pd.read_csv(path) for key, path in (angle_paths or {}).items()}
        save_figure(plots.angle_distributions(angle_curves, models, state_order, temps, kinds), out["angles_figure"])
    h = headline(long, info)
    angles = long[(long["metric"] == "angle_error_over_noise") & long["value"].notna()]
    if len(angles):  # the same comparison on the three-body angle distribution (water's many-body structure)
        h["three_body_angles"] = {k: v for k, v in headline(long, info, "angle_error_over_noise").items()
                                  if k != "volume_term"}
    tt = temperature_transfer(long, info)
    if "temperature_transfer" in out:
        write_csv(out["temperature_transfer"], tt)
    if "temperature_figure" in out:
        save_figure(plots.temperature_transfer(tt, table), out["temperature_figure"])
    h["temperature_aware"] = temperature_headline(tt)
    for aware, entry in h["temperature_aware"].items():
        entry["heat_capacity"] = heat_capacity(table, aware)
    with atomic_path(out["headline_json"]) as tmp:
        tmp.write_text(json.dumps(h, indent=2) + "\n")
    text = headline_text(h)
    with atomic_path(out["headline_txt"]) as tmp:
        tmp.write_text(text)
    print(text)
    return table
