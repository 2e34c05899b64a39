"""Figures (matplotlib, Agg). Each function returns a Figure; `io.save_figure` writes it atomically."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def training_curve(curve: list[dict], title: str):
    df = pd.DataFrame(curve)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for split, style in (("train", "-"), ("valid", "--")):
        col = f"{split}_ForceRMSE"
        if col in df:
            ax.plot(df["epoch"], df[col], style, label=f"{split} force RMSE")
    ax.set_xlabel("epoch")
    ax.set_ylabel("force RMSE (kcal/mol/Å)")
    ax.set_title(title)
    ax.legend()
    return fig


def force_parity(predicted: np.ndarray, reference: np.ndarray, title: str, metrics: dict):
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    r, p = np.ravel(reference), np.ravel(predicted)
    hb = ax.hexbin(r, p, gridsize=60, bins="log", mincnt=1, cmap="viridis")
    lim = np.percentile(np.abs(r), 99.9) * 1.1
    ax.plot([-lim, lim], [-lim, lim], "k--", lw=1)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_xlabel("mapped AA force component (kcal/mol/Å)")
    ax.set_ylabel("model force component (kcal/mol/Å)")
    ax.set_title(f"{title}\nRMSE {metrics['force_rmse_kcal_mol_A']:.2f}, R² {metrics['force_r2']:.3f} (test frames)")
    fig.colorbar(hb, ax=ax, label="count")
    return fig


def rdf_overlay_pairs(panels: dict, title: str):
    """``panels``: {pair: {"r", "g_ref", "models": {name: g}}}: one panel per bead-type pair (reference black)."""
    n = max(1, len(panels))
    fig, axes = plt.subplots(1, n, figsize=(5 * n, 3.5), squeeze=False)
    for ax, (pair, p) in zip(axes[0], panels.items()):
        ax.plot(p["r"], p["g_ref"], "k-", lw=2.0, label="mapped AA (reference)")
        for name, g in sorted(p["models"].items()):
            ax.plot(p["r"], g, lw=1.2, label=f"CG: {name}")
        ax.axhline(1.0, color="grey", lw=0.5)
        ax.set_xlabel("r (Å)")
        ax.set_ylabel("g(r)")
        ax.set_title(f"{title}: {pair}", fontsize=9)
    if panels:
        axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def angle_distributions(curves: dict, models: list[str], states: list[str], temperatures: dict, kinds: dict):
    """One panel per state: the reference three-body angle distribution (black) and each model's (CG NVT).
    ``curves``: {(model, state): compare angles.csv table}."""
    n = max(1, len(states))
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.2), sharey=True, squeeze=False)
    any_data = False
    for ax, state in zip(axes[0], states):
        ref_drawn = False
        for model in models:
            df = curves.get((model, state))
            if df is None or not len(df):
                continue
            bead = df["type"].iloc[0]
            df = df[df["type"] == bead]
            if not ref_drawn:
                ax.plot(df["theta_deg"], df["p_reference"], "k-", lw=2, label="mapped AA")
                ref_drawn = True
            if np.isfinite(df["p_cg"]).all():
                ax.plot(df["theta_deg"], df["p_cg"], lw=1, color="tab:red" if kinds.get(model, "").startswith("hipnn")
                        else "tab:blue", alpha=0.7, label=f"{model} ({kinds.get(model, '')})")
            any_data = True
        ax.set_title(f"{state} ({temperatures.get(state, float('nan')):g} K)", fontsize=9)
        ax.set_xlabel("angle (deg)")
    axes[0][0].set_ylabel("P(angle) (1/deg)")
    if any_data:
        axes[0][-1].legend(fontsize=6)
    else:
        axes[0][0].text(0.5, 0.5, "no first shell: no three-body angles", transform=axes[0][0].transAxes, ha="center")
    fig.suptitle("three-body angle distribution, first shell (red HIP-NN-TS, blue MS-CG)", fontsize=9)
    fig.tight_layout()
    return fig


def density_vs_temperature(table: pd.DataFrame):
    """CG NPT density against T next to the all-atom reference (NPT states only), uncorrected models left and
    volume-corrected models right; filled markers: the model was trained at that state. ``table``: the wide
    metrics table (model labelled "name (kind)", in_training, volume_term)."""
    npt = table[table["density_aa_g_cm3"].notna() & table["ensemble"].eq("NPT")] if "ensemble" in table else table
    corrected = npt["volume_term"].astype(bool) if "volume_term" in npt else pd.Series(False, index=npt.index)
    panels = [("uncorrected", npt[~corrected])] + ([("with volume term", npt[corrected])] if corrected.any() else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2), squeeze=False, sharey=True)
    aa = npt.drop_duplicates("state").sort_values("temperature_K")
    for ax, (title, sub) in zip(axes[0], panels):
        ax.errorbar(aa["temperature_K"], aa["density_aa_g_cm3"], yerr=aa["density_aa_stderr_g_cm3"], fmt="ko-", lw=2.5,
                    label="AA reference", zorder=5)
        for model, t in sub.groupby("model"):
            t = t.sort_values("temperature_K")
            if not t["density_cg_g_cm3"].notna().any():
                continue
            line = ax.errorbar(t["temperature_K"], t["density_cg_g_cm3"], yerr=t["density_cg_stderr_g_cm3"], fmt="--",
                               lw=1, label=model)
            trained = t["in_training"].astype(bool) if "in_training" in t else pd.Series(False, index=t.index)
            colour = line[0].get_color()
            ax.plot(t["temperature_K"][trained], t["density_cg_g_cm3"][trained], "o", color=colour, ms=6)
            ax.plot(t["temperature_K"][~trained], t["density_cg_g_cm3"][~trained], "o", mfc="white", color=colour, ms=6)
        ax.set_title(f"CG NPT density, {title} (filled: trained there)", fontsize=9)
        ax.set_xlabel("T (K)")
        ax.legend(fontsize=6, ncol=2)
    axes[0, 0].set_ylabel("density (g/cm³)")
    fig.tight_layout()
    return fig


def transferability_heatmaps(panels: dict[str, pd.DataFrame], training: dict[str, list[str]],
                             errors: dict[str, pd.DataFrame] | None = None, unstable: dict | None = None,
                             kinds: dict | None = None):
    """One heatmap per metric (model × state, rows labelled "model (kind)"): value ± standard error in each
    cell, training states boxed, cells whose CG run was unstable hatched and marked."""
    errors, unstable, kinds = errors or {}, unstable or {}, kinds or {}
    n_rows = max(len(p) for p in panels.values())
    n_cols = max(p.shape[1] for p in panels.values())
    fig, axes = plt.subplots(1, len(panels), figsize=((1.1 * n_cols + 3.0) * len(panels), 1.2 + 0.45 * n_rows),
                             squeeze=False)
    for k, (ax, (title, df)) in enumerate(zip(axes[0], panels.items())):
        values = df.to_numpy(dtype=float)
        err = errors.get(title)
        signed = "error" in title or "−" in title  # signed CG − AA errors: a diverging colour map centred on zero
        finite = values[np.isfinite(values)]
        if signed and finite.size:
            vmax = float(np.abs(finite).max()) or 1.0
            im = ax.imshow(values, cmap="RdBu_r", vmin=-vmax, vmax=vmax, aspect="auto")
        else:
            im = ax.imshow(values, cmap="magma_r" if "R²" not in title else "viridis", aspect="auto")
        ax.set_xticks(range(df.shape[1]), df.columns, rotation=45)
        ax.set_yticks(range(df.shape[0]), [f"{m} ({kinds[m]})" if m in kinds else m for m in df.index] if k == 0
                      else [""] * df.shape[0])
        for i, model in enumerate(df.index):
            for j, state in enumerate(df.columns):
                v = values[i, j]
                if (model, state) in unstable and np.isnan(v):
                    ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=True, fc="0.85", hatch="xx", ec="0.4"))
                    t = unstable[(model, state)]
                    ax.text(j, i, "unstable" + (f"\nat {t:.2g} ps" if t is not None and t == t else ""),
                            ha="center", va="center", fontsize=6, color="darkred")
                    continue
                text = "—" if np.isnan(v) else f"{v:.3g}"
                if err is not None and np.isfinite(v) and np.isfinite(err.iloc[i, j]):
                    text += f"\n±{err.iloc[i, j]:.2g}"
                if (model, state) in unstable:
                    text += "\n(MD unstable)"
                r, g, b, _ = im.cmap(im.norm(v)) if np.isfinite(v) else (1, 1, 1, 1)
                ax.text(j, i, text, ha="center", va="center", fontsize=6.5,
                        color="white" if 0.299 * r + 0.587 * g + 0.114 * b < 0.5 else "black")
                if state in training.get(model, []):
                    ax.add_patch(plt.Rectangle((j - 0.45, i - 0.45), 0.9, 0.9, fill=False, ec="limegreen", lw=2))
        ax.set_title(title, fontsize=9)
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.suptitle("model × state (green box: trained there; hatched: CG run unstable; ± standard error)", fontsize=9)
    fig.tight_layout()
    return fig


def rdf_grid(curves: dict, models: list[str], states: list[str], temperatures: dict, training: dict,
             unstable: dict, kinds: dict):
    """RDF of every model (rows) at every state (columns) against the mapped reference; every bead-type pair
    (one line style per pair)."""
    fig, axes = plt.subplots(len(models), len(states), figsize=(2.3 * len(states) + 1.5, 1.5 * len(models) + 0.8),
                             squeeze=False, sharex=True, sharey=True)
    for i, model in enumerate(models):
        for j, state in enumerate(states):
            ax = axes[i, j]
            df = curves.get((model, state))
            if df is not None:
                for (pair, t), style in zip(df.groupby("pair", sort=False), ("-", "--", ":", "-.") * 4):
                    ax.plot(t["r_A"], t["g_reference"], "k", ls=style, lw=1.4)
                    if np.isfinite(t["g_cg"]).all():
                        ax.plot(t["r_A"], t["g_cg"], ls=style, lw=1.0,
                                color="tab:red" if kinds.get(model, "").startswith("hipnn") else "tab:blue")
            if (model, state) in unstable:
                ax.text(0.5, 0.5, "unstable", transform=ax.transAxes, ha="center", color="darkred", fontsize=8)
            if state in training.get(model, []):
                for spine in ax.spines.values():
                    spine.set_edgecolor("limegreen")
                    spine.set_linewidth(2)
            if i == 0:
                ax.set_title(f"{state} ({temperatures[state]:g} K)", fontsize=8)
            if j == 0:
                ax.set_ylabel(f"{model}\n({kinds.get(model, '?')})", fontsize=7)
            ax.tick_params(labelsize=6)
    for ax in axes[-1]:
        ax.set_xlabel("r (Å)", fontsize=7)
    fig.suptitle("g(r): mapped AA (black) vs CG NVT (red HIP-NN-TS, blue MS-CG; one line style per bead-type pair); "
                 "green frame: trained there",
                 fontsize=9)
    fig.tight_layout()
    return fig


def regularization_curve(curve: list[dict], chosen: float, title: str):
    """MS-CG: training, cross-validated and validation-block force RMSE against the regularisation strength; the
    chosen one marked."""
    df = pd.DataFrame(curve)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.semilogx(df["regularization"], df["train_ForceRMSE"], "o-", label="train force RMSE")
    if "cv_ForceRMSE" in df:
        ax.semilogx(df["regularization"], df["cv_ForceRMSE"], "^-", label="cross-validated force RMSE (selects λ)")
    ax.semilogx(df["regularization"], df["valid_ForceRMSE"], "s--", label="valid force RMSE")
    ax.axvline(chosen, color="grey", lw=1, ls=":", label=f"chosen λ = {chosen:g}")
    ax.set_xlabel("regularisation strength λ (second-difference penalty)")
    ax.set_ylabel("force RMSE (kcal/mol/Å)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return fig


def pair_potential(table: pd.DataFrame, r_wall: dict, title: str):
    """MS-CG: pair potential U(r) and pair force f(r) per bead-type pair; the wall region shaded."""
    fig, (ax_u, ax_f) = plt.subplots(1, 2, figsize=(9, 3.5))
    for pair, t in table.groupby("pair", sort=False):
        fit = t[t["r_A"] >= r_wall[pair]]
        line, = ax_u.plot(fit["r_A"], fit["energy_kcal_mol"], label=pair)
        ax_f.plot(fit["r_A"], fit["force_kcal_mol_A"], color=line.get_color(), label=pair)
        wall = t[t["r_A"] <= r_wall[pair]]
        ax_u.plot(wall["r_A"], wall["energy_kcal_mol"], ":", color=line.get_color())
        ax_f.plot(wall["r_A"], wall["force_kcal_mol_A"], ":", color=line.get_color())
        for ax in (ax_u, ax_f):
            ax.axvline(r_wall[pair], color=line.get_color(), lw=0.6, ls="--")
    fit_all = table[~table["inside_wall"]]
    for ax, col, label in ((ax_u, "energy_kcal_mol", "U(r) (kcal/mol)"), (ax_f, "force_kcal_mol_A", "f(r) (kcal/mol/Å), > 0 repulsive")):
        lo, hi = fit_all[col].min(), fit_all[col].max()
        pad = 0.15 * (hi - lo)
        ax.set_ylim(lo - pad, hi + pad)
        ax.axhline(0.0, color="grey", lw=0.5)
        ax.set_xlabel("r (Å)")
        ax.set_ylabel(label)
    ax_u.legend(fontsize=8)
    ax_u.set_title(f"{title}: pair potential (dotted: wall)", fontsize=9)
    ax_f.set_title("pair force", fontsize=9)
    fig.tight_layout()
    return fig


def temperature_transfer(tt: pd.DataFrame, table: pd.DataFrame):
    """One row of panels per temperature-aware model: held-out force RMSE, RDF error (noise-floor units) and
    corrected NPT density error against T for the temperature-aware model, the temperature-blind HIP-NN-TS and
    MS-CG on the same states, and the single-state model trained at each state; with energy anchoring, the CG
    U(R) against the all-atom energy. Grey lines: training temperatures; hollow markers: unstable runs left out."""
    aware_models = list(dict.fromkeys(tt["aware_model"])) if len(tt) else []
    if not aware_models:
        fig, ax = plt.subplots(figsize=(5, 2))
        ax.text(0.5, 0.5, "no temperature-aware (hipnn_t) model in this study", ha="center", va="center")
        ax.axis("off")
        return fig
    panels = [("force_rmse_kcal_mol_A", "held-out force RMSE (kcal/mol/Å)"),
              ("rdf_error_over_noise", "RDF error / noise floor (NVT)"),
              ("density_error_pct", "NPT density error (%), volume term")]
    has_energy = "energy_cg_kcal_mol_per_molecule" in table and table["energy_cg_kcal_mol_per_molecule"].notna().any()
    n_cols = len(panels) + int(has_energy)
    fig, axes = plt.subplots(len(aware_models), n_cols, figsize=(4.2 * n_cols, 3.6 * len(aware_models)), squeeze=False)
    style = {"temperature-aware": ("tab:red", "o-"), "temperature-blind": ("tab:orange", "s--"),
             "MS-CG": ("tab:blue", "^--"), "single-state": ("k", "D:")}
    for row, aware in enumerate(aware_models):
        grp = tt[tt["aware_model"] == aware]
        t_train = sorted(set(grp[grp["where"] == "training"]["temperature_K"]))
        for col, (metric, title) in enumerate(panels):
            ax = axes[row, col]
            for t in t_train:
                ax.axvline(t, color="0.85", lw=4, zorder=0)
            if metric == "density_error_pct":
                ax.axhspan(-3, 3, color="tab:green", alpha=0.08, zorder=0)
            sub = grp[grp["metric"] == metric]
            for role in ("temperature-aware", "temperature-blind", "MS-CG", "single-state"):
                d = sub[sub["role"] == role].sort_values("temperature_K")
                if not len(d):
                    continue
                colour, fmt = style[role]
                ok = d[np.isfinite(d["value"])]
                name = role if role != "single-state" else "single-state (trained at each T)"
                ax.errorbar(ok["temperature_K"], ok["value"], yerr=ok["stderr"].fillna(0), fmt=fmt, color=colour,
                            ms=5, lw=1.2, capsize=2, label=name)
            ax.set_title(f"{aware}: {title}", fontsize=8)
            ax.set_xlabel("T (K)")
            if row == 0 and col == 0:
                ax.legend(fontsize=6)
        if has_energy:
            ax = axes[row, -1]
            d = table[table["model"] == aware].sort_values("temperature_K")
            if not d["energy_cg_kcal_mol_per_molecule"].notna().any():
                ax.text(0.5, 0.5, f"{aware}: no energy anchoring\n(forces only: U known up to a constant)",
                        ha="center", va="center", fontsize=8)
                ax.axis("off")
                continue
            ax.errorbar(d["temperature_K"], d["energy_aa_kcal_mol_per_molecule"], yerr=d["energy_aa_stderr_kcal_mol_per_molecule"],
                        fmt="ko-", lw=2, label="all-atom ⟨E⟩")
            ax.errorbar(d["temperature_K"], d["energy_cg_kcal_mol_per_molecule"], yerr=d["energy_cg_stderr_kcal_mol_per_molecule"],
                        fmt="o--", color="tab:red", label="CG ⟨U(R)⟩ (anchored)")
            for t in t_train:
                ax.axvline(t, color="0.85", lw=4, zorder=0)
            ax.set_title(f"{aware}: potential energy per molecule (kcal/mol)", fontsize=8)
            ax.set_xlabel("T (K)")
            ax.legend(fontsize=6)
    fig.tight_layout()
    return fig


def forest(claims: list[dict], title: str):
    """Every claim's estimate with its 95 % interval over replicates (thick) and, beside it, the interval the
    within-run errors alone would give (thin, grey); ratios on a log axis with a line at 1, signed differences
    on a linear axis with a line at 0. Resolved claims in colour, unresolved in grey, levels in blue."""
    rows = [c for c in claims if c.get("n_contrasts") and c.get("estimate") is not None]
    ratios = [c for c in rows if c["scale"] == "ratio"]
    diffs = [c for c in rows if c["scale"] != "ratio"]
    panels = [p for p in (ratios, diffs) if p]
    if not panels:
        fig, ax = plt.subplots(figsize=(6, 1.5))
        ax.text(0.5, 0.5, "no claims to show", ha="center", va="center")
        ax.axis("off")
        return fig
    heights = [max(len(p), 1) for p in panels]
    fig, axes = plt.subplots(len(panels), 1, figsize=(9.5, 1.0 + 0.34 * sum(heights) + 0.6 * len(panels)),
                             gridspec_kw={"height_ratios": heights}, squeeze=False)
    for ax, part in zip(axes[:, 0], panels):
        ratio = part[0]["scale"] == "ratio"
        for i, c in enumerate(part):
            y = len(part) - 1 - i
            colour = ("tab:blue" if not c["comparative"] else "tab:red" if c["resolved"] else "0.45")
            if c.get("within_run_only"):
                lo, hi = c["within_run_only"]
                ax.plot([lo, hi], [y + 0.18] * 2, color="0.7", lw=1.2)
            if c["lo"] is not None:
                ax.plot([c["lo"], c["hi"]], [y, y], color=colour, lw=2.6, solid_capstyle="butt")
            ax.plot([c["estimate"]], [y], "o", color=colour, ms=4.5)
        ax.axvline(1.0 if ratio else 0.0, color="k", lw=0.8, ls="--")
        if ratio:
            ax.set_xscale("log")
        ax.set_yticks(range(len(part)), [c["claim"] for c in reversed(part)], fontsize=7)
        ax.set_xlabel("ratio (below 1: the first named is better / the level)" if ratio else "difference", fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
    axes[0, 0].set_title(title + "\n(thick: 95 % interval over replicates; thin grey: within-run errors only; "
                         "red: resolved; grey: not resolved; blue: level)", fontsize=8)
    fig.tight_layout()
    return fig


def replicate_heatmap(cells: pd.DataFrame, states: list[str], training: dict, title: str):
    """Model × state heatmap of one metric and one model kind: the mean over replicates and its standard error
    from the replicate spread in every cell, training states boxed; one kind per figure so that it stays legible."""
    value = cells.pivot(index="model", columns="state", values="mean")
    err = cells.pivot(index="model", columns="state", values="se_replicates")
    value = value[[s for s in states if s in value.columns]]
    err = err.reindex(index=value.index, columns=value.columns)
    n_rows, n_cols = value.shape
    fig, ax = plt.subplots(figsize=(1.25 * n_cols + 3.2, 1.3 + 0.5 * n_rows))
    v = value.to_numpy(dtype=float)
    finite = v[np.isfinite(v)]
    signed = "density" in title or "pressure" in title or "energy" in title
    if signed and finite.size:
        vmax = float(np.abs(finite).max()) or 1.0
        im = ax.imshow(v, cmap="RdBu_r", vmin=-vmax, vmax=vmax, aspect="auto")
    else:
        im = ax.imshow(v, cmap="magma_r", aspect="auto")
    for i, model in enumerate(value.index):
        for j, state in enumerate(value.columns):
            x = v[i, j]
            text = "—" if not np.isfinite(x) else f"{x:.3g}"
            e = err.iloc[i, j]
            if np.isfinite(x) and np.isfinite(e):
                text += f"\n±{e:.2g}"
            r, g, b, _ = im.cmap(im.norm(x)) if np.isfinite(x) else (1, 1, 1, 1)
            ax.text(j, i, text, ha="center", va="center", fontsize=8,
                    color="white" if 0.299 * r + 0.587 * g + 0.114 * b < 0.5 else "black")
            if state in training.get(model, []):
                ax.add_patch(plt.Rectangle((j - 0.45, i - 0.45), 0.9, 0.9, fill=False, ec="limegreen", lw=2))
    ax.set_xticks(range(n_cols), value.columns)
    ax.set_yticks(range(n_rows), value.index, fontsize=8)
    ax.set_title(title + "\n(green box: trained there; —: unstable or not a property in some replicate)", fontsize=8)
    fig.colorbar(im, ax=ax, shrink=0.8)
    fig.tight_layout()
    return fig


def learned_overview(table: pd.DataFrame, curves: dict, triplets: dict, system: str):
    """What the networks learned (stage learned), one figure per system: (a) each model's effective pair
    potential (two isolated beads) beside the MS-CG table of every state (first bead-type pair), (b) the triplet's
    three-body energy against the angle, (c) the many-body share of each model's force per state, (d) the held-out
    RDF error against the effective pair force's RMS distance from the target state's MS-CG table."""
    fig, axes = plt.subplots(2, 2, figsize=(10, 7.5))
    (ax_u, ax_3), (ax_mb, ax_rdf) = axes
    pair = table["pair"].iloc[0] if not table.empty else None
    colours = {m: f"C{k}" for k, m in enumerate(curves)}
    shown_mscg = False
    for model, c in curves.items():
        c = c[c["pair"] == pair]
        effective = c[c["source"] == "effective"]
        for k, (state, g) in enumerate(effective.groupby(effective["state"].fillna(""), sort=False)):
            ax_u.plot(g["r_A"], g["energy_kcal_mol"], color=colours[model], lw=1.2, alpha=1.0 - 0.25 * (k % 3),
                      label=f"{model} @ {state}" if state else model)
        projected = c[c["source"] == "projected"]
        if len(projected):  # the in-liquid pair projection at the first state
            g = projected[projected["state"] == projected["state"].iloc[0]]
            ax_u.plot(g["r_A"], g["energy_kcal_mol"], color=colours[model], lw=0.8, ls=":",
                      label=f"{model} in the liquid ({g['state'].iloc[0]})")
        if not shown_mscg:
            for k, (state, g) in enumerate(c[c["source"] == "mscg"].groupby("state", sort=False)):
                ax_u.plot(g["r_A"], g["energy_kcal_mol"], color="k", ls=("--", ":", "-.")[k % 3], lw=1.0,
                          label=f"MS-CG {state}")
            shown_mscg = True
    ref = pd.concat([c[(c["pair"] == pair) & (c["source"] == "mscg")] for c in curves.values()]) if curves else None
    if ref is not None and len(ref):
        lo, hi = ref["energy_kcal_mol"].min(), ref["energy_kcal_mol"].max()
        pad = 0.3 * (hi - lo) + 1e-3
        ax_u.set_ylim(lo - pad, min(hi, 2.0 * abs(lo) + 0.5) + pad)
    ax_u.axhline(0.0, color="grey", lw=0.5)
    ax_u.set_xlabel("r (Å)")
    ax_u.set_ylabel("U(r) (kcal/mol)")
    ax_u.set_title(f"{system} {pair}: two isolated beads (solid), in the liquid (dotted), MS-CG (black)", fontsize=8)
    ax_u.legend(fontsize=6, loc="upper right", framealpha=0.7)
    for model, t in triplets.items():
        for k, ((name, temp), g) in enumerate(t.groupby(["triplet", t["temperature_K"].fillna(-1)], sort=False)):
            ax_3.plot(g["angle_deg"], g["three_body_kcal_mol"], color=colours.get(model, "k"),
                      alpha=1.0 - 0.3 * (k % 3),
                      label=f"{model} {name}" + (f" @ {temp:g} K" if temp > 0 else ""))
    ax_3.axhline(0.0, color="grey", lw=0.5)
    ax_3.set_xlabel("angle θ_jik (degrees), r_ij = r_ik = first shell")
    ax_3.set_ylabel("E(ijk) − E(ij) − E(ik) − E(jk) (kcal/mol)")
    ax_3.set_title("three-body energy of a triplet", fontsize=9)
    ax_3.legend(fontsize=6)
    first = table[table["pair"] == pair] if pair is not None else table
    for model, g in first.groupby("model", sort=False):
        g = g.sort_values("temperature_K")
        ax_mb.plot(g["temperature_K"], g["many_body_share"], "o-", color=colours.get(model, "k"), label=model)
        ax_mb.plot(g["temperature_K"], 1.0 - g["mscg_state_test_r2"], "x:", color="k", lw=0.6)
        ax_rdf.scatter(g["effective_vs_mscg_pair_weighted_rms_kcal_mol_A"], g["rdf_error_over_noise"],
                       color=colours.get(model, "k"), label=model, marker="o")
        tr = g[g["in_training"].astype(bool)]
        ax_rdf.scatter(tr["effective_vs_mscg_pair_weighted_rms_kcal_mol_A"], tr["rdf_error_over_noise"],
                       facecolor="none", edgecolor="k", s=80)
    ax_mb.set_xlabel("state temperature (K)")
    ax_mb.set_ylabel("many-body share 1 − R²(pair projection)")
    ax_mb.set_title("network force no pair potential represents (x: 1 − held-out R² of MS-CG)", fontsize=8)
    ax_mb.legend(fontsize=6)
    ax_rdf.set_xlabel("RMS over the liquid's pairs of (effective pair force − target state's MS-CG) (kcal/mol/Å)",
                      fontsize=7)
    ax_rdf.set_ylabel("held-out RDF error / noise floor")
    ax_rdf.set_title("transfer vs distance from MS-CG (ringed: training state)", fontsize=8)
    ax_rdf.legend(fontsize=6)
    fig.tight_layout()
    return fig
