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
