"""What a HIP-NN-TS network call and a training epoch cost on the CPU, step by step of the workflow's changes,
side by side in alternating fresh processes (one thread).

Variants of one model call (energy and forces of the network without its prior, as MD calls it; 256 beads,
positions jittered by 0.01 Å per call so the pair list is reused as in MD):

* ``hippynn``: hippynn's own evaluation, subnormal floats kept (the code before these changes);
* ``flushed``: the same with subnormal floats flushed to zero (``cgtransfer.compute.configure_torch``: the
  network's Gaussian sensitivities underflow below float32's smallest normal number for most pairs of a liquid,
  and subnormal arithmetic takes a slow microcode path on x86);
* ``workflow``: what MD runs: flushed, and ``hipnn_graph.evaluate_fast_on_cpu`` (environment sums on neighbour
  blocks, the sensitivities' exponent bounded).

With ``--train``, a short training of the model's kind and size on a mapped dataset, subnormals kept and flushed
(ms per training frame and epoch; training always runs hippynn's own code). The energies, the largest force
difference to ``hippynn`` and the final validation losses are recorded: they must agree.

    python benchmarks/network_call.py --case MODEL_DIR DATASET [--train DATASET SUMMARY] [--config config/config.yaml]
                                      [--rounds 3] [--calls 60] [--epochs 6] [--out benchmarks/results/network_call.json]

MODEL_DIR, DATASET, SUMMARY: a workflow run's ``<rep>/models/hipnn_T298/checkpoint``,
``<rep>/cg_data/T298/dataset.npz`` and ``<rep>/cg_data/T298/summary.json`` (or any trained HIP-NN-TS model and
mapped data).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CALL = r"""
import json, sys, time
from cgtransfer.compute import configure
configure(1, "cpu")
import numpy as np, torch
from cgtransfer.kinds.hipnn_force import HippynnPotential
torch.set_flush_denormal(sys.argv[1] != "hippynn")  # after the model code set it on
d = np.load(sys.argv[3])
pos = d["positions"][-1].astype(float)
box = np.diag(d["cells"][-1]).astype(float)
pot = HippynnPotential(sys.argv[2], d["species"][0], pair_skin_A=1.0, include_prior=False)
if sys.argv[1] != "workflow":  # hippynn's own forward methods (the MD pair-list test stays)
    for m in pot.evaluator.module.modules():
        m.__dict__.pop("forward", None)
e0, f0 = pot.energy_forces_model_units(pos, box)
rng = np.random.default_rng(0)
times = []
for _ in range(int(sys.argv[4])):
    p = pos + rng.normal(0.0, 0.01, pos.shape)
    t = time.perf_counter()
    pot.energy_forces_model_units(p, box)
    times.append(time.perf_counter() - t)
np.save(sys.argv[5], f0)
print(json.dumps({"median_call_ms": 1000.0 * float(np.median(times[len(times) // 6:])), "energy_kcal_mol": float(e0),
                  "n_beads": int(pos.shape[0])}))
"""

TRAIN = r"""
import json, sys, time
from pathlib import Path
from cgtransfer.compute import configure
configure(1, "cpu")
import torch, yaml
from cgtransfer.kinds import hipnn  # noqa: F401  (sets the flag on where the training code loads torch)
torch.set_flush_denormal(sys.argv[1] == "on")
from cgtransfer.config import load_study
from cgtransfer.kinds.registry import kind_settings
from cgtransfer.stages.train import train_model
cfg = yaml.safe_load(Path(sys.argv[2]).read_text())
load_study(cfg, Path(sys.argv[7]))
cfg["training"].update(max_epochs=int(sys.argv[5]), termination_patience=100)  # (the fit reads this section)
train = dict(cfg["training"], device="cpu")
rec = train_model("hipnn", [Path(sys.argv[3])], [Path(sys.argv[4])], ["bench"], kind_settings("hipnn", cfg),
                  cfg["prior"], train, Path(sys.argv[6]), label="bench/hipnn")
print(json.dumps({"ms_per_training_frame_epoch": rec["ms_per_training_frame_epoch"], "epochs": rec["epochs"],
                  "train_frames": rec["train_frames"], "wall_s": rec["wall_s"],
                  "final_valid_ForceRMSE": rec["curve"][-1]["valid_ForceRMSE"]}))
"""


def child(code, *args):
    proc = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--case", nargs=2, required=True, metavar=("MODEL_DIR", "DATASET"))
    ap.add_argument("--train", nargs=2, metavar=("DATASET", "SUMMARY"))
    ap.add_argument("--config", default=str(REPO / "config/config.yaml"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--calls", type=int, default=60)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--out", default=str(REPO / "benchmarks/results/network_call.json"))
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    variants = ("hippynn", "flushed", "workflow")
    calls = {v: [] for v in variants}
    trains = {"on": [], "off": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for v in variants if r % 2 == 0 else variants[::-1]:  # alternate: load drifts hit all alike
                calls[v].append(child(CALL, v, args.case[0], args.case[1], args.calls, f"{tmp}/f_{v}.npy"))
                print("call", v, calls[v][-1], flush=True)
            if args.train:
                for flag in ("off", "on") if r % 2 == 0 else ("on", "off"):
                    trains[flag].append(child(TRAIN, flag, args.config, args.train[0], args.train[1], args.epochs,
                                              f"{tmp}/train_{flag}_{r}", REPO))
                    print("train", flag, trains[flag][-1], flush=True)
        import numpy as np

        forces = {v: np.load(f"{tmp}/f_{v}.npy") for v in variants}
    med = {k: statistics.median(x["median_call_ms"] for x in v) for k, v in calls.items()}
    out = {"what": "one HIP-NN-TS network call (energy and forces, no prior) on the CPU: hippynn's own evaluation "
                   "with subnormal floats kept, the same flushed, and the workflow's (flushed, environment sums on "
                   "neighbour blocks, bounded sensitivity exponent); alternating fresh processes, one thread; "
                   "medians over rounds",
           "machine": {"platform": platform.platform(), "python": platform.python_version()},
           "case": {"model": "<run>/" + "/".join(Path(args.case[0]).parts[-3:]),
                    "dataset": "<run>/" + "/".join(Path(args.case[1]).parts[-4:])},
           "rounds": args.rounds, "calls": args.calls, "n_beads": calls["workflow"][0]["n_beads"],
           "call_ms": med, "call_speedup_flushed": med["hippynn"] / med["flushed"],
           "call_speedup_workflow": med["hippynn"] / med["workflow"],
           "energy_kcal_mol": {k: v[0]["energy_kcal_mol"] for k, v in calls.items()},
           "max_abs_force_difference_to_hippynn_kcal_mol_A": {v: float(np.abs(forces[v] - forces["hippynn"]).max())
                                                              for v in variants},
           "max_abs_force_kcal_mol_A": float(np.abs(forces["hippynn"]).max())}
    if args.train:
        tm = {k: statistics.median(x["ms_per_training_frame_epoch"] for x in v) for k, v in trains.items()}
        out["training"] = {"epochs": trains["on"][0]["epochs"], "train_frames": trains["on"][0]["train_frames"],
                           "ms_per_training_frame_epoch": tm, "speedup_flushed": tm["off"] / tm["on"],
                           "final_valid_ForceRMSE": {k: [x["final_valid_ForceRMSE"] for x in v]
                                                     for k, v in trains.items()}}
    out["wall_s"] = time.perf_counter() - t0
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps({k: out[k] for k in ("call_ms", "call_speedup_flushed", "call_speedup_workflow",
                                          "max_abs_force_difference_to_hippynn_kcal_mol_A")}
                     | ({"training": out["training"]} if args.train else {})))
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
