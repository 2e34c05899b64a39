"""Does a trained pairwise MS-CG model need the 2-fs step of ``cg_md.timestep_fs``? NVT runs of the model at
1, 2, 5 and 10 fs (the same simulated time each, several seeds), built with the cg_md stage's own building blocks
(``start_frame``, ``build_cg_system``, ``cg_integrator``), compared with the 1-fs run: bead-bead RDF, pressure
(the frequency-0 barostat's ``computeCurrentPressure``), potential energy and kinetic temperature, each with its
noise (per seed ``block_average``, seeds pooled), plus ms/step and ns/day of the stepping alone.

With ``--mts-inner-timestep-fs 2`` a HIP-NN-TS model is checked the same way along the workflow's
multiple-time-step path: every timestep above 2 fs is the network's outer step (prior natively every 2 fs), the
first timestep (1 fs) the whole model every step.

A timestep passes when every observable agrees with the 1-fs run within ``--z-max`` combined standard errors and
the RDF's chi² per bin (difference over its combined per-bin noise, bins where g > 0.05) is within
1 + ``--z-max`` × sqrt(2 / bins) of 1; the verdict is the largest timestep that passes, with every smaller one.

    python benchmarks/timestep_check.py --case MODEL_DIR/checkpoint CG_DATA/dataset.npz [--case ...] \
        [--timesteps 1,2,5,10] [--production-ps 40] [--seeds 3] [--out benchmarks/results/timestep_check.json]

``MODEL_DIR/checkpoint`` is a trained ``mscg`` model (results/<system>/models/<name>/checkpoint) and
``dataset.npz`` the mapped reference of the state to run (results/<system>/cg_data/<state>/dataset.npz): the run
starts from its frame closest to the mean volume, in its mean box, at its temperature.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np
import openmm
import openmm.unit as u

from cgtransfer import units
from cgtransfer.analysis.rdf import bead_rdf, bead_universe
from cgtransfer.analysis.statistics import block_average
from cgtransfer.dataset import load_dataset
from cgtransfer.kinds.registry import load_model
from cgtransfer.md.forcefields import cpu_platform
from cgtransfer.md.protocol import degrees_of_freedom, steps_for
from cgtransfer.stages.cg_md import build_cg_system, cg_integrator, positions_and_box_A, start_frame

# the cg_md section's run settings that build_cg_system / cg_integrator read (the defaults of the schema)
CG_MD = {"friction_per_ps": 5.0, "barostat_frequency": 25, "pair_skin_A": 1.5, "mts_inner_steps": 1}


def run_one(model, data, temperature_K: float, dt_fs: float, seed: int, args) -> dict:
    """One NVT run at ``dt_fs``: equilibrate, then record T, U, P every report interval and a frame every frame
    interval. Returns the series, the frames and the wall time of the production steps alone."""
    positions_A, box_A = start_frame(data, "nvt")
    cfg = {**CG_MD, "timestep_fs": dt_fs, "friction_per_ps": args.friction, "device": "cpu",
           "temperature_K": temperature_K}
    inner = getattr(args, "mts_inner_timestep_fs", None)
    if inner and model.kind != "mscg" and dt_fs > inner:
        # the workflow's HIP-NN-TS path: the prior natively every `inner` fs, the network every dt_fs (MTS)
        k = int(round(dt_fs / inner))
        if abs(k * inner - dt_fs) > 1e-9:
            raise SystemExit(f"{dt_fs:g} fs is not a whole number of {inner:g}-fs inner steps")
        cfg.update(timestep_fs=inner, mts_inner_steps=k, prior_in_openmm=True)
    system, barostat, _ = build_cg_system(model, data, box_A, temperature_K, None, "nvt", cfg, "timestep check",
                                          seed=seed)
    integrator, dt = cg_integrator(system, temperature_K, cfg)
    integrator.setRandomNumberSeed(seed)
    plat, props = cpu_platform(args.threads, "CPU")
    context = openmm.Context(system, integrator, plat, props)
    context.setPositions(units.angstrom_to_nm(positions_A) * u.nanometer)
    context.setVelocitiesToTemperature(temperature_K * u.kelvin, seed)
    dof = degrees_of_freedom(system)
    interval = max(1, steps_for(args.report_interval_ps, dt))
    frame_every = max(1, int(round(args.frame_interval_ps / args.report_interval_ps)))
    n_reports = steps_for(args.production_ps, dt) // interval
    out = {"temperature_K": [], "potential_energy_kJ_mol": [], "pressure_bar": [], "positions": [], "boxes": []}
    try:
        integrator.step(steps_for(args.equilibration_ps, dt))
        wall = 0.0
        for k in range(n_reports):
            t0 = time.perf_counter()
            integrator.step(interval)
            wall += time.perf_counter() - t0
            state = context.getState(getEnergy=True, getPositions=(k + 1) % frame_every == 0)
            ke = state.getKineticEnergy().value_in_unit(u.kilojoule_per_mole)
            pe = state.getPotentialEnergy().value_in_unit(u.kilojoule_per_mole)
            temperature = 2.0 * ke / (dof * units.KB_KJ_MOL_K)
            if not (math.isfinite(pe) and math.isfinite(ke)) or temperature > 2.0 * temperature_K:
                raise FloatingPointError(f"diverged at report {k}: U {pe}, T {temperature}")
            out["temperature_K"].append(temperature)
            out["potential_energy_kJ_mol"].append(pe)
            out["pressure_bar"].append(barostat.computeCurrentPressure(context).value_in_unit(u.bar))
            if (k + 1) % frame_every == 0:
                pos, edges = positions_and_box_A(state)
                out["positions"].append(pos - np.floor(pos / edges) * edges)
                out["boxes"].append(edges)
    except (openmm.OpenMMException, FloatingPointError, ValueError) as exc:
        return {"stable": False, "failure": str(exc)}
    n_steps = n_reports * interval
    return {"stable": True, **out, "n_steps": n_steps, "wall_s": wall, "dt_fs": dt}


def pooled(runs: list[dict], key: str) -> tuple[float, float]:
    """Mean over seeds of each seed's block average and its standard error (the seeds' block errors combined)."""
    stats = [block_average(np.asarray(r[key]), 5) for r in runs]
    means = np.array([m for m, _ in stats])
    errs = np.array([e for _, e in stats])
    return float(means.mean()), float(np.sqrt(np.sum(errs**2)) / len(errs))


def rdf_blocks(runs: list[dict], data: dict, args) -> tuple[np.ndarray, np.ndarray]:
    """g(r) of each block (5 contiguous blocks of every seed's frames): (bin centres, blocks × bins)."""
    name = str(data["bead_names"][0])
    blocks = []
    for r in runs:
        pos = np.asarray(r["positions"])
        boxes = np.asarray(r["boxes"])
        universe = bead_universe(pos, boxes, data["bead_names"], data["residue_index"])
        for edges in np.array_split(np.arange(len(pos)), 5):
            centres, g = bead_rdf(universe, name, name, args.rdf_bins, args.rdf_rmax_A, start=int(edges[0]),
                                  stop=int(edges[-1]) + 1)
            blocks.append(g)
    return centres, np.asarray(blocks)


def compare(case: dict, reference: dict, z_max: float) -> dict:
    """Differences to the 1-fs run, their combined noise, z-scores and the verdict of one timestep."""
    out, ok = {}, True
    for key in ("temperature_K", "pressure_bar", "potential_energy_kJ_mol"):
        diff = case[key]["mean"] - reference[key]["mean"]
        noise = math.hypot(case[key]["stderr"], reference[key]["stderr"])
        z = diff / noise if noise > 0 else 0.0
        out[key] = {"difference": diff, "noise": noise, "z": z, "passes": abs(z) <= z_max}
        ok &= abs(z) <= z_max
    g, s = np.asarray(case["rdf"]["g"]), np.asarray(case["rdf"]["stderr"])
    g1, s1 = np.asarray(reference["rdf"]["g"]), np.asarray(reference["rdf"]["stderr"])
    use = (np.maximum(g, g1) > 0.05) & (np.hypot(s, s1) > 0)
    chi2 = float(np.mean(((g - g1)[use] / np.hypot(s, s1)[use]) ** 2))
    limit = 1.0 + z_max * math.sqrt(2.0 / use.sum())
    mae = float(np.mean(np.abs(g - g1)))
    # the MAE two runs that sample the same distribution would show: E|N(0, s² + s1²)| per bin
    floor = float(np.mean(np.sqrt(2.0 / math.pi) * np.hypot(s, s1)))
    out["rdf"] = {"mae": mae, "noise_floor_mae": floor, "chi2_per_bin": chi2, "chi2_limit": limit, "bins": int(use.sum()),
                  "passes": chi2 <= limit}
    ok &= chi2 <= limit
    out["passes"] = bool(ok)
    return out


def check_case(checkpoint: str, dataset: str, args) -> dict:
    model = load_model(checkpoint)
    if model.kind != "mscg":
        print(f"note: {checkpoint} is a {model.kind} model, not mscg; checking it anyway", flush=True)
    data = load_dataset(dataset)
    model.check_data(data, dataset)
    temperature = float(args.temperature or data["temperature_K"])
    results = {}
    for i, dt in enumerate(args.timesteps):
        runs = []
        for s in range(args.seeds):
            seed = args.seed + 1000 * i + s  # independent noise for every run
            t0 = time.perf_counter()
            run = run_one(model, data, temperature, dt, seed, args)
            print(f"{Path(checkpoint).parent.name} {dt:g} fs seed {seed}: "
                  f"{'stable' if run['stable'] else 'UNSTABLE ' + run['failure']} ({time.perf_counter() - t0:.1f} s)",
                  flush=True)
            runs.append(run)
        if not all(r["stable"] for r in runs):
            results[dt] = {"timestep_fs": dt, "stable": False, "failures": [r["failure"] for r in runs if not r["stable"]]}
            continue
        entry = {"timestep_fs": dt, "stable": True, "seeds": args.seeds, "frames_per_seed": len(runs[0]["positions"]),
                 "reports_per_seed": len(runs[0]["temperature_K"])}
        for key in ("temperature_K", "pressure_bar", "potential_energy_kJ_mol"):
            mean, err = pooled(runs, key)
            entry[key] = {"mean": mean, "stderr": err}
        entry["temperature_deviation_pct"] = 100.0 * (entry["temperature_K"]["mean"] - temperature) / temperature
        entry["temperature_deviation_stderr_pct"] = 100.0 * entry["temperature_K"]["stderr"] / temperature
        centres, blocks = rdf_blocks(runs, data, args)
        entry["rdf"] = {"r_A": centres.tolist(), "g": blocks.mean(axis=0).tolist(),
                        "stderr": (blocks.std(axis=0, ddof=1) / math.sqrt(len(blocks))).tolist()}
        steps = sum(r["n_steps"] for r in runs)
        wall = sum(r["wall_s"] for r in runs)
        entry["ms_per_step"] = 1000.0 * wall / steps
        entry["ns_per_day"] = steps * dt * 1e-6 / (wall / 86400.0)
        results[dt] = entry
    base = results[args.timesteps[0]]
    if not base.get("stable"):
        raise SystemExit(f"the {args.timesteps[0]:g}-fs reference run of {checkpoint} is unstable")
    largest = args.timesteps[0]
    for dt in args.timesteps:
        entry = results[dt]
        if dt == args.timesteps[0]:
            entry["comparison"] = None
            continue
        entry["comparison"] = compare(entry, base, args.z_max) if entry["stable"] else {"passes": False}
        if entry["comparison"]["passes"] and largest == args.timesteps[args.timesteps.index(dt) - 1]:
            largest = dt
    for entry in results.values():
        if entry.get("rdf"):
            entry["rdf"].pop("r_A")  # once per case: rdf_r_A
    return {"checkpoint": str(checkpoint), "dataset": str(dataset), "model_kind": model.kind,
            "n_beads": int(len(data["masses"])), "bead_mass_amu": float(np.mean(data["masses"])),
            "temperature_K": temperature, "rdf_r_A": centres.tolist(),
            "timesteps": [results[dt] for dt in args.timesteps], "largest_passing_timestep_fs": largest}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--case", nargs=2, action="append", required=True, metavar=("CHECKPOINT", "DATASET"),
                   help="a trained MS-CG checkpoint directory and the mapped dataset.npz of the state to run")
    p.add_argument("--timesteps", type=lambda s: [float(x) for x in s.split(",")], default=[1.0, 2.0, 5.0, 10.0],
                   help="fs, comma-separated; the first is the reference")
    p.add_argument("--temperature", type=float, default=None, help="K (default: the dataset's)")
    p.add_argument("--equilibration-ps", type=float, default=5.0)
    p.add_argument("--production-ps", type=float, default=40.0)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--friction", type=float, default=CG_MD["friction_per_ps"], help="Langevin friction, 1/ps")
    p.add_argument("--report-interval-ps", type=float, default=0.1, help="T, U and P every this")
    p.add_argument("--frame-interval-ps", type=float, default=0.5, help="one RDF frame every this")
    p.add_argument("--rdf-bins", type=int, default=120)
    p.add_argument("--rdf-rmax-A", type=float, default=9.0)
    p.add_argument("--z-max", type=float, default=3.0, help="pass within this many combined standard errors")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--mts-inner-timestep-fs", type=float, default=None,
                   help="HIP-NN-TS models: run each timestep above this as the workflow's multiple-time-step path "
                        "(prior natively every this many fs, the network every timestep); the first timestep "
                        "(the reference) runs the whole model every step")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "timestep_check.json"))
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    cases = [check_case(c, d, args) for c, d in args.case]
    largest = min(c["largest_passing_timestep_fs"] for c in cases)
    report = {
        "what": "NVT runs of trained MS-CG models at several timesteps compared with the first (smallest); "
                "pass: T, P, U within z_max combined standard errors and RDF chi2 per bin within its limit",
        "settings": {k: v for k, v in vars(args).items() if k not in ("case", "out")},
        "integrator": "LangevinMiddleIntegrator (cg_md's cg_integrator), CMMotionRemover, CPU platform",
        "machine": {"python": sys.version.split()[0], "openmm": openmm.__version__, "platform": platform.platform()},
        "cases": cases,
        "largest_passing_timestep_fs": largest,
        "wall_s": time.perf_counter() - t0,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    for c in cases:
        print(f"\n{c['checkpoint']} at {c['temperature_K']:g} K ({c['n_beads']} beads)")
        print(f"{'dt fs':>6} {'T K':>14} {'P bar':>16} {'U kJ/mol':>16} {'RDF MAE (floor)':>18} {'chi2/bin':>9} "
              f"{'ms/step':>8} {'ns/day':>8} verdict")
        for e in c["timesteps"]:
            if not e["stable"]:
                print(f"{e['timestep_fs']:6g} unstable")
                continue
            cmp_ = e["comparison"] or {}
            rdf = cmp_.get("rdf", {})
            print(f"{e['timestep_fs']:6g} {e['temperature_K']['mean']:8.2f}±{e['temperature_K']['stderr']:.2f} "
                  f"{e['pressure_bar']['mean']:9.1f}±{e['pressure_bar']['stderr']:5.1f} "
                  f"{e['potential_energy_kJ_mol']['mean']:9.2f}±{e['potential_energy_kJ_mol']['stderr']:5.2f} "
                  f"{rdf.get('mae', float('nan')):9.4f} ({rdf.get('noise_floor_mae', float('nan')):.4f}) "
                  f"{rdf.get('chi2_per_bin', float('nan')):9.2f} {e['ms_per_step']:8.3f} {e['ns_per_day']:8.0f} "
                  f"{'reference' if not cmp_ else ('pass' if cmp_['passes'] else 'FAIL')}")
        print(f"largest passing timestep: {c['largest_passing_timestep_fs']:g} fs")
    print(f"\nwritten {args.out}")


if __name__ == "__main__":
    main()
