#!/usr/bin/env bash
# The default study's time at equal work: today's code, from a fresh clone with the install (README command 1's
# install), on the study the default was when its time was first measured (benchmarks/configs/equal_work.yaml:
# 98.9 min from a fresh clone on 2 cores at revision ed84f61). Writes benchmarks/results/stage_times_equal_work.json
# (per rule job times, elapsed and install time, revision) into the repository it is run from.
#
#   bash benchmarks/equal_work.sh [workdir]      # workdir: where the fresh clone goes (default: a temporary folder)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$(mktemp -d)}
rev=$(git -C "$repo" rev-parse --short HEAD)
git clone -q "$repo" "$work/clone"
cd "$work/clone"
t0=$(date +%s)
python3 -m venv .venv && . .venv/bin/activate && pip install -q -e . > install.log 2>&1
t1=$(date +%s)
snakemake --cores all --configfile benchmarks/configs/equal_work.yaml > run.log 2>&1
t2=$(date +%s)
python benchmarks/stage_times.py results --elapsed-s $((t2 - t0)) --install-s $((t1 - t0)) --revision "$rev" \
    --out "$repo/benchmarks/results/stage_times_equal_work.json"
echo "equal-work study: $((t2 - t0)) s from a fresh clone (install $((t1 - t0)) s), revision $rev"
