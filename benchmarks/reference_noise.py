"""How much a short all-atom reference's thermodynamics scatter from run to run: the same system and state point,
many seeds (velocities, thermostat and barostat noise; one packed box), through the workflow's own
``run_reference``. The end-to-end test's bounds on the tiny config's reference densities and pressures are set
from this scatter (tests/test_workflow.py), not from one run: every machine draws a new realisation (OpenMM's
threaded float sums differ between CPUs even at fixed seeds).

    python benchmarks/reference_noise.py [--config .test/config/config.yaml] [--seeds 20]
        [--case water:T270 water:T330 argon_water:T300 methanol:T273 ...] [--equilibration-ps 6 12]
        [--out benchmarks/results/reference_noise.json]

Per case and equilibration length: each seed's mean density, mean temperature and the barostat check's pressure z
((<P> - P) / (sd(P) / sqrt(n / 4)), as tests/test_workflow.py computes it), and their mean and sd over seeds. A
pressure z whose mean over seeds is off zero by more than its own error means the run is still relaxing.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]


def pressure_z(thermo: pd.DataFrame, pressure_bar: float) -> float:
    p = thermo["pressure_bar"]
    return float((p.mean() - pressure_bar) / (p.std() / np.sqrt(len(p) / 4)))


def summary(values: list[float]) -> dict:
    return {"mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else float("nan"),
            "min": min(values), "max": max(values)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=str(REPO / ".test/config/config.yaml"))
    ap.add_argument("--case", nargs="+", default=["water:T270", "water:T330", "argon_water:T300", "methanol:T273"])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--first-seed", type=int, default=1)
    ap.add_argument("--equilibration-ps", type=float, nargs="+", help="equilibration lengths to compare (default: "
                    "the config's)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(REPO / "benchmarks/results/reference_noise.json"))
    args = ap.parse_args(argv)

    from cgtransfer.config import load_study
    from cgtransfer.stages.build_box import build_box
    from cgtransfer.stages.reference import run_reference
    from cgtransfer.io import write_json

    cfg = yaml.safe_load(Path(args.config).read_text())
    study = load_study(cfg, REPO)
    t0 = time.perf_counter()
    cases = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for case in args.case:
            system, state_name = case.split(":")
            state = study.state(system, state_name)
            md = dict(study.settings(system)["reference_md"], checkpoint_interval_ps=0)
            molecules = study.molecules(system)
            box = tmp / f"{system}.pdb"
            if not box.exists():
                with contextlib.redirect_stdout(io.StringIO()):
                    build_box([t for t, _ in molecules], [n for _, n in molecules],
                              study.system(system)["initial_density_g_cm3"], box, seed=cfg.get("seed", 2024))
            for equilibration in args.equilibration_ps or [md["equilibration_ps"]]:
                run_md = dict(md, equilibration_ps=equilibration)
                runs = []
                for seed in range(args.first_seed, args.first_seed + args.seeds):
                    with contextlib.redirect_stdout(io.StringIO()):
                        s = run_reference(box, study.forcefields(system), state.temperature_K, state.pressure_bar,
                                          state.density_g_cm3, run_md, tmp / "t.pdb", tmp / "t.dcd", tmp / "f.npz",
                                          tmp / "thermo.csv", threads=args.threads, seed=seed)
                    thermo = pd.read_csv(tmp / "thermo.csv")
                    runs.append({"seed": seed, "mean_density_g_cm3": s["mean_density_g_cm3"],
                                 "mean_temperature_K": s["mean_temperature_K"],
                                 "pressure_z": pressure_z(thermo, state.pressure_bar)
                                 if state.pressure_bar is not None else None})
                    print(case, equilibration, runs[-1], flush=True)
                row = {"system": system, "state": state_name, "temperature_K": state.temperature_K,
                       "pressure_bar": state.pressure_bar, "n_molecules": sum(n for _, n in molecules),
                       "equilibration_ps": equilibration, "production_ps": md["production_ps"],
                       "report_interval_ps": md["report_interval_ps"], "seeds": len(runs),
                       "density_g_cm3": summary([r["mean_density_g_cm3"] for r in runs]),
                       "mean_temperature_K": summary([r["mean_temperature_K"] for r in runs]), "runs": runs}
                if state.pressure_bar is not None:
                    z = [r["pressure_z"] for r in runs]
                    row["pressure_z"] = {**summary(z), "mean_stderr": statistics.stdev(z) / np.sqrt(len(z)),
                                         "beyond_3": int(sum(abs(v) > 3 for v in z))}
                cases.append(row)
    out = {"what": "run-to-run scatter of short all-atom references (one packed box, many seeds) through the "
                   "workflow's run_reference: mean density, temperature and the barostat check's pressure z per seed",
           "config": str(Path(args.config).resolve().relative_to(REPO)) if Path(args.config).resolve().is_relative_to(REPO)
           else Path(args.config).name,
           "machine": {"platform": platform.platform(), "python": platform.python_version()},
           "cases": cases, "wall_s": time.perf_counter() - t0}
    write_json(args.out, out)  # atomic, folders made
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
