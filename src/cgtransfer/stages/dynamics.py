"""Stage dynamics: self-diffusion of the all-atom reference and of every CG model at every state, the CG time
scale α = D_CG / D_AA and whether a model's α transfers across states; the backmapping checks gathered.

Inputs are the dynamics segments (rules ``dynamics_reference`` → ``map_dynamics`` for the all-atom reference,
mapped to the system's beads; ``dynamics_cg`` for each model): NVT, Langevin with a weak friction, frames every
``report_interval_ps``. The analysis is ``cgtransfer.analysis.dynamics`` (EinsteinMSD, FFT; fit window and
blocks from the config; VACF integral as a cross-check; Yeh-Hummer correction per unit viscosity and, where a
viscosity is configured, the corrected D).

Writes into the system's summary directory: ``diffusion.csv`` (one row per source × state × bead type),
``alpha_transfer.csv`` (per model: α at its training states vs at each held-out state), ``dynamics.json``,
``dynamics.png`` and ``backmap.csv``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cgtransfer.analysis import dynamics as dyn
from cgtransfer.io import read_json, save_figure, write_csv, write_json

# a segment whose mean temperature is further than this from the state's is flagged (temperature_ok false) and its
# alpha left out of the transfer table: under the weak friction a model that does not conserve energy well (e.g.
# a barely trained network with a long multiple-time-step outer step) heats up, and its D is not the state's
TEMPERATURE_TOLERANCE_PCT = 5.0


def load_reference_beads(npz_path) -> dict:
    """Mapped all-atom dynamics segment: positions (wrapped, Å), box per frame (Å), bead names."""
    with np.load(npz_path) as data:
        return {"positions": data["positions"].astype(np.float64), "box": data["cells"][:, [0, 1, 2], [0, 1, 2]],
                "bead_names": data["bead_names"].astype(str)}


def load_cg_segment(topology_pdb, trajectory_dcd) -> dict:
    import MDAnalysis as mda

    u = mda.Universe(str(topology_pdb), str(trajectory_dcd))
    pos = np.empty((u.trajectory.n_frames, u.atoms.n_atoms, 3))
    box = np.empty((u.trajectory.n_frames, 3))
    for f, ts in enumerate(u.trajectory):
        pos[f], box[f] = u.atoms.positions, ts.dimensions[:3]
    return {"positions": pos, "box": box, "bead_names": u.atoms.names.astype(str)}


def segment_diffusion(segment: dict, dt_ps: float, settings: dict, temperature_K: float,
                      viscosity_mPa_s: float | None) -> list[dict]:
    """One row per bead type: D (whole-segment fit), its block error, β and linearity, VACF-integral D, Yeh-Hummer numbers."""
    unwrapped = dyn.unwrap(segment["positions"], segment["box"])
    edge = float(np.cbrt(np.prod(segment["box"].mean(axis=0))))
    per_viscosity = dyn.yeh_hummer_per_viscosity(temperature_K, edge)
    rows = []
    for bead in dict.fromkeys(segment["bead_names"]):
        sel = segment["bead_names"] == bead
        fit = dyn.diffusion(unwrapped[:, sel], dt_ps, settings["fit_start_ps"], settings["fit_end_ps"],
                            settings["n_blocks"])
        gk = dyn.vacf(unwrapped[:, sel], dt_ps, settings["fit_end_ps"])
        rows.append({
            "bead_type": str(bead), "n_beads": int(sel.sum()), "n_frames": int(len(unwrapped)),
            "D_m2_s": fit["D_m2_s"], "D_stderr_m2_s": fit["D_stderr_m2_s"], "beta": fit["beta"],
            "linearity": fit["linearity"],
            "diffusive": fit["diffusive"], "fit_start_ps": fit["fit_start_ps"], "fit_end_ps": fit["fit_end_ps"],
            "n_blocks": fit["n_blocks"], "D_vacf_m2_s": dyn.vacf_diffusion(gk, settings["fit_start_ps"],
                                                                           settings["fit_end_ps"]),
            "box_edge_A": edge, "yh_per_viscosity_m2_s_mPa_s": per_viscosity,
            "viscosity_mPa_s": viscosity_mPa_s if viscosity_mPa_s is not None else np.nan,
            "D_yh_m2_s": fit["D_m2_s"] + per_viscosity / viscosity_mPa_s if viscosity_mPa_s else np.nan,
            "_msd": (fit["lags_ps"], fit["msd_A2"]),
        })
    return rows


def alpha_transfer(table: pd.DataFrame) -> pd.DataFrame:
    """Per model with held-out states: α at each held-out state against α at its training state(s) (their
    mean): ratio, its error, and whether α transfers within two standard errors. Segments off their temperature
    (``temperature_ok`` false, theirs or the reference's) are left out."""
    rows = []
    cg = table[(table["source"] != "reference") & np.isfinite(table["alpha"]) & table["temperature_ok"]
               & table["reference_temperature_ok"]]
    for (model, bead), t in cg.groupby(["source", "bead_type"], sort=False):
        train, held = t[t["in_training"]], t[~t["in_training"]]
        if train.empty or held.empty:
            continue
        a_train = float(train["alpha"].mean())
        a_train_err = float(np.sqrt((train["alpha_stderr"] ** 2).sum()) / len(train))
        for _, r in held.iterrows():
            ratio, err = dyn.ratio_with_error(r["alpha"], r["alpha_stderr"], a_train, a_train_err)
            rows.append({"model": model, "kind": r["kind"], "bead_type": bead,
                         "training_states": " ".join(train["state"]), "alpha_training": a_train,
                         "alpha_training_stderr": a_train_err, "state": r["state"],
                         "temperature_K": r["temperature_K"], "alpha": r["alpha"], "alpha_stderr": r["alpha_stderr"],
                         "ratio_to_training": ratio, "ratio_stderr": err,
                         "transfers_within_2se": bool(abs(ratio - 1.0) <= 2 * err)})
    return pd.DataFrame(rows, columns=["model", "kind", "bead_type", "training_states", "alpha_training",
                                       "alpha_training_stderr", "state", "temperature_K", "alpha", "alpha_stderr",
                                       "ratio_to_training", "ratio_stderr", "transfers_within_2se"])


def figure(table: pd.DataFrame, msds: dict, title: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for (source, state, bead), (lag, curve) in msds.items():
        style = "k-" if source == "reference" else "-"
        axes[0].loglog(lag[1:], curve[1:], style, lw=1.5 if source == "reference" else 0.8, alpha=0.8)
    window = table[["fit_start_ps", "fit_end_ps"]].dropna()
    if len(window):
        axes[0].axvspan(window["fit_start_ps"].iloc[0], window["fit_end_ps"].iloc[0], color="0.9", zorder=0)
    axes[0].set(xlabel="lag (ps)", ylabel="MSD (Å²)", title="MSD (black: all-atom; grey: fit window)")
    for (source, bead), t in table.groupby(["source", "bead_type"], sort=False):
        label = f"{source} {bead}" if table["bead_type"].nunique() > 1 else source
        kw = {"color": "k", "lw": 2} if source == "reference" else {}
        axes[1].errorbar(t["temperature_K"], t["D_m2_s"] * 1e9, yerr=t["D_stderr_m2_s"] * 1e9, marker="o",
                         label=label, capsize=2, **kw)
        if source != "reference" and np.isfinite(t["alpha"]).any():
            line = axes[2].errorbar(t["temperature_K"], t["alpha"], yerr=t["alpha_stderr"], marker="o",
                                    label=label, capsize=2, mfc="white")
            tr = t[t["in_training"]]
            axes[2].plot(tr["temperature_K"], tr["alpha"], "o", color=line[0].get_color(), zorder=5)  # filled: training
    axes[1].set(xlabel="T (K)", ylabel="D (1e-9 m²/s)", title="self-diffusion (raw, periodic box)")
    axes[2].set(xlabel="T (K)", ylabel="α = D_CG / D_AA", title="CG time scale (filled: training state)")
    axes[1].legend(fontsize=7)
    axes[2].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def analyse(reference: dict, cg_runs: dict, states: dict, models: dict, settings: dict, system: str,
            out_diffusion, out_transfer, out_json, out_figure, backmap_checks=(), out_backmap=None,
            reference_thermo: dict | None = None, git_revision: str = "") -> pd.DataFrame:
    """``reference``: state → mapped all-atom segment npz (missing states: no all-atom dynamics, e.g. an external
    reference); ``cg_runs``: (model, state) → (topology, trajectory, summary json); ``states``: state →
    temperature_K; ``models``: model → {kind, states (training)}; ``settings``: the dynamics config section;
    ``reference_thermo``: state → the all-atom segment's thermo CSV (its mean temperature is reported);
    ``git_revision``: the code that wrote the files (recorded in the JSON, as summarize records it in long.csv)."""
    dt = settings["report_interval_ps"]
    viscosity = settings.get("shear_viscosity_mPa_s", {}).get(system, {})
    rows, msds = [], {}

    def add(source, kind, state, segment, extra):
        for r in segment_diffusion(segment, dt, settings, states[state], viscosity.get(state)):
            msds[(source, state, r["bead_type"])] = r.pop("_msd")
            rows.append({"source": source, "kind": kind, "state": state, "temperature_K": states[state], **extra, **r})

    for state, path in reference.items():
        t_seg = (float(pd.read_csv(reference_thermo[state])["temperature_K"].mean())
                 if reference_thermo and state in reference_thermo else np.nan)
        add("reference", "all-atom", state, load_reference_beads(path),
            {"in_training": False, "stable": True, "segment_mean_temperature_K": t_seg})
    for (model, state), (topology, trajectory, summary_json) in cg_runs.items():
        summary = read_json(summary_json)
        extra = {"in_training": state in models[model]["states"], "stable": bool(summary.get("stable")),
                 "segment_mean_temperature_K": summary.get("mean_temperature_K", np.nan)}
        if not summary.get("stable"):
            rows.append({"source": model, "kind": models[model]["kind"], "state": state,
                         "temperature_K": states[state], **extra, "D_m2_s": np.nan, "D_stderr_m2_s": np.nan})
            continue
        add(model, models[model]["kind"], state, load_cg_segment(topology, trajectory), extra)
    table = pd.DataFrame(rows)
    table["temperature_deviation_pct"] = 100.0 * (table["segment_mean_temperature_K"] / table["temperature_K"] - 1.0)
    table["temperature_ok"] = ~(table["temperature_deviation_pct"].abs() > TEMPERATURE_TOLERANCE_PCT)
    ref = table[table["source"] == "reference"].set_index(["state", "bead_type"])
    alpha, alpha_err = [], []
    for _, r in table.iterrows():
        key = (r["state"], r.get("bead_type"))
        if r["source"] == "reference" or key not in ref.index or not np.isfinite(r["D_m2_s"]):
            alpha.append(np.nan)
            alpha_err.append(np.nan)
            continue
        a, e = dyn.ratio_with_error(r["D_m2_s"], r["D_stderr_m2_s"], ref.loc[key, "D_m2_s"], ref.loc[key, "D_stderr_m2_s"])
        alpha.append(a)
        alpha_err.append(e)
    table["alpha"], table["alpha_stderr"] = alpha, alpha_err
    ref_ok = {k: bool(v) for k, v in ref["temperature_ok"].items()}
    table["reference_temperature_ok"] = [ref_ok.get((r["state"], r.get("bead_type")), False) for _, r in table.iterrows()]
    transfer = alpha_transfer(table)
    write_csv(out_diffusion, table)
    write_csv(out_transfer, transfer)
    write_json(out_json, {
        "system": system, "git_revision": git_revision, "friction_per_ps": settings["friction_per_ps"],
        "report_interval_ps": dt,
        "fit_window_ps": [settings["fit_start_ps"], settings["fit_end_ps"]], "n_blocks": settings["n_blocks"],
        "diffusive_linearity_tolerance": dyn.DIFFUSIVE_LINEARITY_TOLERANCE, "yeh_hummer_xi": dyn.YEH_HUMMER_XI,
        "viscosity_source": settings.get("shear_viscosity_source", "") if viscosity else "",
        "n_not_diffusive": int((~table["diffusive"].fillna(True).astype(bool)).sum()),
        "temperature_tolerance_pct": TEMPERATURE_TOLERANCE_PCT,
        "n_temperature_off": int((~table["temperature_ok"]).sum()),
        "rows": int(len(table)), "transfer_rows": int(len(transfer)),
    })
    save_figure(figure(table, msds, f"{system}: dynamics"), out_figure)
    if out_backmap is not None:
        checks = [read_json(p) for p in backmap_checks]
        write_csv(out_backmap, pd.DataFrame([{k: v for k, v in c.items() if not isinstance(v, (list, dict))}
                                             for c in checks]))
    print(table.drop(columns=[c for c in table.columns if c.startswith("yh")]).to_string())
    return table
