"""Wall time per workflow stage from Snakemake's per-job `benchmark:` files of a finished run.

    python benchmarks/stage_times.py [results] [--elapsed-s S --install-s S --revision REV]
        [--out benchmarks/results/stage_times.json]

Prints and writes: per rule the number of jobs, the summed and the longest job wall time (s), and per model kind
of the rules that run one job per model (train, cg_md, ...) the jobs and their summed and mean wall time; with
--elapsed-s the run's elapsed time beside them. The sums are CPU occupancy, not elapsed time: jobs run side by
side on `--cores`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd


def stage_times(results: Path) -> pd.DataFrame:
    rows = []
    for tsv in sorted((results / "benchmarks").rglob("*.tsv")):
        rule = tsv.relative_to(results / "benchmarks").parts[0]
        t = pd.read_csv(tsv, sep="\t")
        rows.append({"rule": rule, "job": str(tsv.relative_to(results / "benchmarks" / rule).with_suffix("")),
                     "wall_s": float(t["s"].iloc[-1]), "max_rss_mb": float(t["max_rss"].iloc[-1])})
    jobs = pd.DataFrame(rows)
    return jobs.groupby("rule", sort=False).agg(jobs=("job", "count"), total_s=("wall_s", "sum"),
                                                longest_s=("wall_s", "max"), max_rss_mb=("max_rss_mb", "max"))


def times_by_model_kind(results: Path) -> pd.DataFrame:
    """Per rule whose jobs belong to one model (<rule>/<system>/rep<r>/<model>[/...]): jobs, summed and mean wall
    time per model kind, the kind read from the model's name (hipnn_T298, hipnn_loo_T248 -> hipnn; mscg_... ->
    mscg; the names the default config gives its models)."""
    rows = []
    for tsv in sorted((results / "benchmarks").rglob("*.tsv")):
        parts = tsv.relative_to(results / "benchmarks").with_suffix("").parts
        if len(parts) < 4 or not parts[2].startswith("rep"):
            continue
        model = parts[3]
        if "_" not in model:  # a state (reference_md, map_to_cg), not a model
            continue
        kind = model.split("_")[0]
        t = pd.read_csv(tsv, sep="\t")
        rows.append({"rule": parts[0], "kind": kind, "wall_s": float(t["s"].iloc[-1])})
    jobs = pd.DataFrame(rows)
    return jobs.groupby(["rule", "kind"], sort=False).agg(jobs=("wall_s", "count"), total_s=("wall_s", "sum"),
                                                          mean_s=("wall_s", "mean"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results", nargs="?", default="results")
    ap.add_argument("--elapsed-s", type=float, default=None,
                    help="the run's elapsed time from a fresh clone, install included (recorded beside the sums)")
    ap.add_argument("--install-s", type=float, default=None, help="of which the install")
    ap.add_argument("--revision", default=None, help="the git revision the run was made with")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "stage_times.json"))
    args = ap.parse_args()
    table = stage_times(Path(args.results))
    kinds = times_by_model_kind(Path(args.results))
    print(table.round(1).to_string())
    print(kinds.round(1).to_string())
    out = {"revision": args.revision, "elapsed_s": args.elapsed_s, "install_s": args.install_s,
           "jobs": int(table["jobs"].sum()), "job_time_total_s": round(float(table["total_s"].sum()), 1),
           "rules": table.round(2).reset_index().to_dict("records"),
           "by_model_kind": kinds.round(2).reset_index().to_dict("records")}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
