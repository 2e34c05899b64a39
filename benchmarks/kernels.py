"""Which of hippynn's CPU message-passing kernels should a CG MD job use? Side by side, each in a fresh process
(as a Snakemake job starts): the import time of the model code, the first model call (where ``torch.compile``
traces and, on a cold cache, compiles) and the median of later calls, for a trained HIP-NN-TS model on a mapped
frame (positions jittered by 0.01 Å per call, so the pair list is reused as in MD). The energies of the first
call must agree between kernels (the same arithmetic); the JSON records them.

    python benchmarks/kernels.py --case MODEL_DIR/checkpoint CG_DATA/dataset.npz [--kernels pytorch,_pytorch_raw]
                                 [--rounds 3] [--calls 60] [--out benchmarks/results/kernels.json]

Kernels (hippynn 0.1.3, ``HIPPYNN_USE_CUSTOM_KERNELS``): ``pytorch`` (the dense pytorch kernels under
``torch.compile``), ``_pytorch_raw`` (the same functions uncompiled: what the workflow sets on the CPU), ``_pytorch_jit``
(TorchScript). Rounds alternate the kernels, so a change of machine load hits all of them alike.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, os, sys, time, warnings
t0 = time.perf_counter()
os.environ["HIPPYNN_USE_CUSTOM_KERNELS"] = sys.argv[1]
warnings.simplefilter("ignore")
from cgtransfer.compute import configure
configure(1, "cpu")
import numpy as np
from cgtransfer.kinds.hipnn_force import HippynnPotential
import hippynn.custom_kernels as ck
t_import = time.perf_counter() - t0
d = np.load(sys.argv[3])
pos = d["positions"][-1].astype(float)
box = np.diag(d["cells"][-1]).astype(float)
pot = HippynnPotential(sys.argv[2], d["species"][0], pair_skin_A=1.5)
t1 = time.perf_counter()
e0, f0 = pot.energy_forces_model_units(pos, box)
t_first = time.perf_counter() - t1
rng = np.random.default_rng(0)
times = []
for _ in range(int(sys.argv[4])):
    p = pos + rng.normal(0.0, 0.01, pos.shape)
    t = time.perf_counter()
    pot.energy_forces_model_units(p, box)
    times.append(time.perf_counter() - t)
print(json.dumps({"active": ck.CUSTOM_KERNELS_ACTIVE, "import_s": t_import, "first_call_s": t_first,
                  "median_call_ms": 1000.0 * float(np.median(times[len(times) // 6:])), "energy_kcal_mol": float(e0),
                  "max_abs_force_kcal_mol_A": float(np.abs(f0).max()), "n_beads": int(pos.shape[0])}))
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--case", nargs=2, required=True, metavar=("CHECKPOINT", "DATASET"))
    ap.add_argument("--kernels", default="pytorch,_pytorch_raw,_pytorch_jit")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--calls", type=int, default=60)
    ap.add_argument("--out", default=str(REPO / "benchmarks/results/kernels.json"))
    args = ap.parse_args(argv)
    kernels = args.kernels.split(",")
    runs = {k: [] for k in kernels}
    t0 = time.perf_counter()
    cold = tempfile.mkdtemp(prefix="inductor_cold_")
    for r in range(args.rounds):
        for k in kernels:
            # round 0 compiles into an empty inductor cache (a fresh machine's first job); later rounds reuse it
            env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=os.path.join(cold, k))
            proc = subprocess.run([sys.executable, "-c", CHILD, k, args.case[0], args.case[1], str(args.calls)],
                                  capture_output=True, text=True, check=True, env=env)
            runs[k].append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(k, runs[k][-1], flush=True)
    summary = {}
    for k, rs in runs.items():
        summary[k] = {"active": rs[0]["active"], "n_beads": rs[0]["n_beads"],
                      "import_s": statistics.median(x["import_s"] for x in rs),
                      "first_call_s_cold_cache": rs[0]["first_call_s"],
                      "first_call_s": statistics.median(x["first_call_s"] for x in rs[1:] or rs),
                      "first_call_s_by_round": [x["first_call_s"] for x in rs],
                      "median_call_ms": statistics.median(x["median_call_ms"] for x in rs),
                      "energy_kcal_mol": rs[0]["energy_kcal_mol"]}
    base = summary[kernels[0]]
    for k in kernels:
        summary[k]["call_time_over_" + kernels[0]] = summary[k]["median_call_ms"] / base["median_call_ms"]
        summary[k]["energy_difference_to_" + kernels[0]] = summary[k]["energy_kcal_mol"] - base["energy_kcal_mol"]
    out = {"what": "hippynn CPU kernels for one HIP-NN-TS model call in a fresh process per round: import, first "
                   "call (torch.compile traces there; round 1 into an empty inductor cache, the later rounds' "
                   "median with it filled), median later call; medians over rounds",
           "machine": {"platform": platform.platform(), "python": platform.python_version()},
           "case": {"checkpoint": "<run>/" + "/".join(Path(args.case[0]).parts[-4:]),
                    "dataset": "<run>/" + "/".join(Path(args.case[1]).parts[-4:])},
           "rounds": args.rounds, "calls": args.calls, "kernels": summary, "wall_s": time.perf_counter() - t0}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
