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


def rdf_overlay(r, g_reference, g_models: dict, title: str):
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(r, g_reference, "k-", lw=2.0, label="mapped AA (reference)")
    for name, g in g_models.items():
        ax.plot(r, g, lw=1.2, label=f"CG: {name}")
    ax.axhline(1.0, color="grey", lw=0.5)
    ax.set_xlabel("r (Å)")
    ax.set_ylabel("g(r)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return fig


def density_vs_temperature(table: pd.DataFrame):
    """``table``: rows (state, temperature_K, model, density_aa, density_cg, density_cg_err)."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    aa = table.drop_duplicates("state").sort_values("temperature_K")
    ax.errorbar(aa["temperature_K"], aa["density_aa_g_cm3"], yerr=aa["density_aa_stderr_g_cm3"], fmt="ko-", lw=2,
                label="AA reference (NPT)")
    for model, t in table.groupby("model"):
        t = t.sort_values("temperature_K")
        if t["density_cg_g_cm3"].notna().any():
            ax.errorbar(t["temperature_K"], t["density_cg_g_cm3"], yerr=t["density_cg_stderr_g_cm3"], fmt="s--",
                        label=f"CG: {model} (NPT)")
    ax.set_xlabel("T (K)")
    ax.set_ylabel("density (g/cm³)")
    ax.legend(fontsize=8)
    return fig


def transferability_heatmaps(panels: dict[str, pd.DataFrame], training: dict[str, list[str]]):
    """One heatmap per metric (model × state); training states of each model are boxed."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 0.9 + 0.6 * max(len(p) for p in panels.values())),
                             squeeze=False)
    for ax, (title, df) in zip(axes[0], panels.items()):
        values = df.to_numpy(dtype=float)
        im = ax.imshow(values, cmap="magma_r" if "R²" not in title else "viridis", aspect="auto")
        ax.set_xticks(range(df.shape[1]), df.columns, rotation=45)
        ax.set_yticks(range(df.shape[0]), df.index)
        for i, model in enumerate(df.index):
            for j, state in enumerate(df.columns):
                v = values[i, j]
                ax.text(j, i, "—" if np.isnan(v) else f"{v:.3g}", ha="center", va="center", fontsize=8,
                        color="white" if np.isfinite(v) and v > np.nanmean(values) else "black")
                if state in training.get(model, []):
                    ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="cyan", lw=2))
        ax.set_title(title, fontsize=9)
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.suptitle("model × state (boxed: trained there)", fontsize=9)
    fig.tight_layout()
    return fig


def regularization_curve(curve: list[dict], chosen: float, title: str):
    """MS-CG: training and validation force RMSE against the regularisation strength; the chosen one marked."""
    df = pd.DataFrame(curve)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.semilogx(df["regularization"], df["train_ForceRMSE"], "o-", label="train force RMSE")
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
