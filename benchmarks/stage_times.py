"""Wall time per workflow stage from Snakemake's per-job `benchmark:` files of a finished run.

    python benchmarks/stage_times.py [results] [--out benchmarks/results/stage_times.json]

Prints and writes: per rule the number of jobs, the summed and the longest job wall time (s). The sum is CPU
occupancy, not elapsed time: jobs run side by side on `--cores`.
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results", nargs="?", default="results")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "stage_times.json"))
    args = ap.parse_args()
    table = stage_times(Path(args.results))
    print(table.round(1).to_string())
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(table.round(2).reset_index().to_dict("records"), indent=1) + "\n")


if __name__ == "__main__":
    main()
