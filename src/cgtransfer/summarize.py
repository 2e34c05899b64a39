"""Stage summarize: the transferability tables (model × state) and figures of one system.

Every table and figure holds every model, whatever its kind (HIP-NN-TS and the MS-CG baseline side by side):
tables carry a ``kind`` column and figures label each model as "name (kind)"."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from . import plots
from .io import read_json, save_figure, write_csv


def metrics_table(metrics_paths: list) -> pd.DataFrame:
    rows = []
    for p in metrics_paths:
        m = read_json(p)
        rows.append({k: v for k, v in m.items() if not isinstance(v, dict)})
    return pd.DataFrame(rows).sort_values(["model", "temperature_K"]).reset_index(drop=True)


def pivot(table: pd.DataFrame, column: str, state_order: list[str]) -> pd.DataFrame:
    out = table.pivot(index="model", columns="state", values=column)
    return out[[s for s in state_order if s in out.columns]]


def with_kind(df: pd.DataFrame, kinds: dict) -> pd.DataFrame:
    """A model × state table with the model's kind as its first column."""
    out = df.reset_index().rename(columns={"index": "model"})
    out.insert(1, "kind", [kinds.get(m, "") for m in out["model"]])
    return out


def labelled(df: pd.DataFrame, kinds: dict) -> pd.DataFrame:
    """Rows relabelled "model (kind)" for figures."""
    return df.rename(index=lambda m: f"{m} ({kinds[m]})" if m in kinds else m)


def summarize(metrics_paths: list, rdf_paths: dict, training: dict[str, list[str]], out: dict,
              kinds: dict | None = None) -> pd.DataFrame:
    """``rdf_paths``: {(model, state): compare rdf.csv}; ``training``: model → training states; ``kinds``:
    model → kind; ``out``: output paths by name (see the summarize rule)."""
    table = metrics_table(metrics_paths)
    kinds = kinds or dict(zip(table["model"], table.get("kind", table["model"])))
    state_order = list(table.drop_duplicates("state").sort_values("temperature_K")["state"])
    write_csv(out["metrics"], table)
    force_r2 = pivot(table, "force_r2", state_order)
    rdf_mae = pivot(table, "rdf_mae", state_order)
    noise = table.drop_duplicates("state").set_index("state")["rdf_noise_floor_mae"]
    rdf_with_noise = pd.concat([rdf_mae, noise.to_frame("reference noise floor").T[rdf_mae.columns]])
    density = pivot(table, "density_error_pct", state_order)
    for name, df in (("force_r2", force_r2), ("rdf_mae", rdf_with_noise), ("density_error", density)):
        write_csv(out[name], with_kind(df, kinds))

    panels = {"held-out force R²": force_r2, "RDF MAE / reference noise floor": rdf_mae.divide(noise[rdf_mae.columns], axis=1),
              "CG NPT density error (%)": density}
    panels = {title: labelled(df, kinds) for title, df in panels.items()}
    boxed = {f"{m} ({kinds[m]})" if m in kinds else m: states for m, states in training.items()}
    save_figure(plots.transferability_heatmaps(panels, boxed), out["heatmaps"])
    labelled_table = table.assign(model=[f"{m} ({kinds.get(m, '?')})" for m in table["model"]])
    save_figure(plots.density_vs_temperature(labelled_table), out["density_figure"])
    for state in state_order:
        g_models, r, g_ref, pair = {}, None, None, None
        for (model, st), path in rdf_paths.items():
            if st != state:
                continue
            df = pd.read_csv(path)
            pair = df["pair"].iloc[0]
            df = df[df["pair"] == pair]
            r, g_ref = df["r_A"].to_numpy(), df["g_reference"].to_numpy()
            g_models[f"{model} ({kinds.get(model, '?')})"] = df["g_cg"].to_numpy()
        temp = float(table.loc[table["state"] == state, "temperature_K"].iloc[0])
        fig = plots.rdf_overlay(r, g_ref, dict(sorted(g_models.items())), f"{state} ({temp:g} K), {pair} (CG NVT)")
        save_figure(fig, Path(out["rdf_dir"]) / f"rdf_{state}.png")
    return table
