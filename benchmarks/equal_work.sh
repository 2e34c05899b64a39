#!/usr/bin/env bash
# The default study's time at equal work: today's code, from a fresh clone with the install (README command 1's
# install), on the study the default was when its time was first measured (benchmarks/configs/equal_work.yaml:
# 98.9 min from a fresh clone on 2 cores at revision ed84f61). Writes benchmarks/results/stage_times_equal_work.json
# (per rule job times, elapsed and install time, revision) into the repository it is run from.
#
#   bash benchmarks/equal_work.sh [workdir]      # workdir: where the fresh clone goes (default: a temporary folder)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec bash "$here/fresh_clone_time.sh" "$here/results/stage_times_equal_work.json" "${1:-$(mktemp -d)}" \
    --configfile benchmarks/configs/equal_work.yaml
