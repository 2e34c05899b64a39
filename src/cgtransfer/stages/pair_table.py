"""Stage pair_table: an MS-CG model's fitted pair table and its figure."""

from __future__ import annotations

from cgtransfer.kinds.registry import load_model


def export_pair_table(checkpoint_dir, out_csv, out_png, label: str) -> None:
    """An MS-CG model's fitted table (r, force, energy per pair) as CSV and its pair potential/force figure."""
    from cgtransfer.io import save_figure, write_csv

    model = load_model(checkpoint_dir)
    write_csv(out_csv, model.pair_table())
    save_figure(model.pair_figure(label), out_png)
