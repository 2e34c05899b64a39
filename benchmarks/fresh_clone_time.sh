#!/usr/bin/env bash
# A study's time from a fresh clone with the install, as README command 1 runs it: clones this repository's HEAD
# into WORKDIR/clone, installs it into a new virtual environment, runs `snakemake --cores all` with the extra
# arguments given, and writes OUT (per rule job times from the jobs' benchmark files, the elapsed and install
# time, the revision; benchmarks/stage_times.py) into the repository it is run from.
#
#   bash benchmarks/fresh_clone_time.sh OUT [WORKDIR [SNAKEMAKE_ARGS...]]
#   bash benchmarks/fresh_clone_time.sh benchmarks/results/stage_times_default.json /tmp/default   # the default
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out=$(realpath -m "$1")
work=${2:-$(mktemp -d)}
shift $(( $# < 2 ? $# : 2 ))
rev=$(git -C "$repo" rev-parse --short HEAD)
git clone -q "$repo" "$work/clone"
cd "$work/clone"
t0=$(date +%s)
python3 -m venv .venv && . .venv/bin/activate && pip install -q -e . > install.log 2>&1
t1=$(date +%s)
snakemake --cores all "$@" > run.log 2>&1
t2=$(date +%s)
python benchmarks/stage_times.py results --elapsed-s $((t2 - t0)) --install-s $((t1 - t0)) --revision "$rev" \
    --out "$out"
echo "$((t2 - t0)) s from a fresh clone (install $((t1 - t0)) s), revision $rev: $out"
