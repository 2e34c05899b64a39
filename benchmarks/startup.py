"""Start-up cost of each workflow rule's job: a fresh Python interpreter importing the rule's stage module and,
for the model rules, loading the model kind's module (what a job pays before its first useful step).

    python benchmarks/startup.py [--repeats 5] [--out benchmarks/results/startup.json] \
        [--baseline-src OTHER/src --baseline-revision REV]

Writes per rule and kind: the median, min and max wall time (s) over the repeats, measured side by side in one
run (the rules interleaved, so machine noise hits them alike), whether torch and hippynn were loaded, and the
ratio of each to a bare interpreter importing nothing of the package. With ``--baseline-src`` (the ``src`` folder
of another checkout, e.g. ``git worktree add /tmp/before REV``) every case is also timed with that package first
on the path, interleaved with this one: ``baseline_median_s`` and ``speedup_over_baseline`` per rule.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

CASES = [  # (rule, stage module, model kind loaded through the registry or None)
    ("bare interpreter", None, None),
    ("build_box", "build_box", None),
    ("reference_md", "reference", None),
    ("map_to_cg", "mapping", None),
    ("train (mscg)", "train", "mscg"),
    ("train (hipnn)", "train", "hipnn"),
    ("force_errors (mscg)", "force_errors", "mscg"),
    ("pair_table (mscg)", "pair_table", "mscg"),
    ("cg_md (mscg)", "cg_md", "mscg"),
    ("cg_md (hipnn)", "cg_md", "hipnn"),
    ("cg_md (hipnn_t)", "cg_md", "hipnn_t"),
    ("fit_volume_term (mscg)", "volume_fit", "mscg"),
    ("compare", "compare", None),
    ("validate", "validate", None),
    ("summarize", "summarize", None),
]

CODE = """
import importlib, json, sys
stage, kind = sys.argv[1], sys.argv[2]
if stage != "-":
    importlib.import_module(f"cgtransfer.stages.{stage}")
if kind != "-":
    from cgtransfer.kinds.registry import model_class
    model_class(kind)
print(json.dumps({"torch": "torch" in sys.modules, "hippynn": "hippynn" in sys.modules}))
"""


def once(stage, kind, src=None) -> tuple[float, dict]:
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = os.pathsep.join([str(src)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CODE, stage or "-", kind or "-"], capture_output=True, text=True,
                          check=True, env=env)
    return time.perf_counter() - t0, json.loads(proc.stdout.strip().splitlines()[-1])


def revision():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "startup.json"))
    ap.add_argument("--baseline-src", help="the src folder of another revision, timed interleaved with this one")
    ap.add_argument("--baseline-revision", help="its revision, for the record")
    args = ap.parse_args()
    times = {name: [] for name, _, _ in CASES}
    before = {name: [] for name, _, _ in CASES}
    loaded = {}
    once("summarize", None)  # warm the file-system cache once
    for _ in range(args.repeats):
        for name, stage, kind in CASES:
            t, what = once(stage, kind)
            times[name].append(t)
            loaded[name] = what
            if args.baseline_src:
                before[name].append(once(stage, kind, args.baseline_src)[0])
    bare = statistics.median(times["bare interpreter"])
    rows = []
    for name, stage, kind in CASES:
        med = statistics.median(times[name])
        rows.append({"rule": name, "stage_module": stage, "kind": kind, "median_s": round(med, 3),
                     "min_s": round(min(times[name]), 3), "max_s": round(max(times[name]), 3),
                     "over_bare_interpreter_s": round(med - bare, 3), **loaded[name]})
        if args.baseline_src:
            base = statistics.median(before[name])
            rows[-1].update(baseline_median_s=round(base, 3), speedup_over_baseline=round(base / med, 2))
        print(f"{name:26s} {med:6.2f} s  (min {min(times[name]):.2f}, max {max(times[name]):.2f})  "
              f"torch={loaded[name]['torch']} hippynn={loaded[name]['hippynn']}"
              + (f"  baseline {rows[-1]['baseline_median_s']:.2f} s" if args.baseline_src else ""))
    out = {"machine": {"processor": platform.processor() or platform.machine(), "python": platform.python_version()},
           "revision": revision(), "repeats": args.repeats, "rules": rows}
    if args.baseline_src:
        out["baseline_revision"] = args.baseline_revision
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
