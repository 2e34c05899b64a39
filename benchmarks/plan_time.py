"""How long Snakemake takes to plan a large study (`snakemake -n`), with the real Snakefile and config checks.

Writes a temporary study with ``--states`` NPT state points and ``--training-sets`` training sets (each fitted as
both model kinds) for the default system and times a dry run from a clean directory. With the defaults
(12 states, 10 training sets → 20 models) that is about 1,000 jobs.

    python benchmarks/plan_time.py [--out benchmarks/results/plan_time.json]
"""

from __future__ import annotations

import argparse
import copy
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--states", type=int, default=12)
    ap.add_argument("--training-sets", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(REPO / "benchmarks/results/plan_time.json"))
    args = ap.parse_args()
    cfg = yaml.safe_load((REPO / "config/config.yaml").read_text())
    states = [f"T{200 + 10 * i}" for i in range(args.states)]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "states.tsv").write_text("system\tstate\ttemperature_K\tpressure_bar\n" + "".join(
            f"methanol\t{s}\t{s[1:]}\t1.0\n" for s in states))
        study = copy.deepcopy(cfg)
        study["state_points"] = str(tmp / "states.tsv")
        system = study["systems"]["methanol"]
        for key in ("template_pdb", "forcefield"):
            system[key] = str(REPO / system[key])
        models = {}
        for k in range(args.training_sets):
            train = states[k % len(states): k % len(states) + 1 + k // len(states)] or states[:1]
            for kind in ("hipnn", "mscg"):
                models[f"{kind}_set{k}"] = {"kind": kind, "states": train}
        system["models"] = models
        (tmp / "config.yaml").write_text(yaml.safe_dump(study))
        snakemake = Path(sys.executable).with_name("snakemake")
        cmd = [str(snakemake), "-n", "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp / "work"),
               "--configfile", str(tmp / "config.yaml"), "--cores", "2"]
        times, n_jobs = [], None
        for _ in range(args.repeats):
            t = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True)
            times.append(time.perf_counter() - t)
            if proc.returncode != 0:
                raise SystemExit(proc.stdout[-3000:] + proc.stderr[-3000:])
            m = re.search(r"^total\s+(\d+)", proc.stdout, re.M)
            n_jobs = int(m.group(1)) if m else None
    result = {"states": args.states, "models": len(models), "jobs": n_jobs, "repeats": args.repeats,
              "median_s": statistics.median(times), "times_s": times,
              "ms_per_job": 1000 * statistics.median(times) / n_jobs if n_jobs else None}
    sys.path.insert(0, str(REPO / "src"))
    from cgtransfer.io import write_json

    write_json(args.out, result)
    print(result)


if __name__ == "__main__":
    main()
