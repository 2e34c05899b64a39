"""Does the HIP-NN-TS fast path keep the physics? The workflow's own CG MD (`cgtransfer.cg_md.run_cg_md`) of one
trained model at one state, NVT, run with the plain path at 1 fs (the reference: the whole model as one
PythonForce, `LangevinMiddleIntegrator`) and with the fast path at several outer steps (prior native every
`timestep_fs`, network every k steps, `MTSLangevinIntegrator`), judged by configurational observables against the
1-fs run: RDF MAE against the 1-fs run's own noise floor (MAE between its halves), mean potential energy and
pressure with block standard errors, and the kinetic temperature (MTS velocities are full-step: no half-step
thermometer offset). Also the speed of each. Writes benchmarks/results/mts_check.json.

    python benchmarks/mts_check.py results/methanol/models/hipnn_T298/checkpoint \
        results/methanol/cg_data/T298/dataset.npz 298 [--production-ps 10]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from cgtransfer.analysis import rdf as rdfmod
from cgtransfer.config import read_config
from cgtransfer.analysis.statistics import block_average
from cgtransfer.stages.cg_md import run_cg_md
from cgtransfer.stages.compare import cg_block_rdfs
from cgtransfer.compute import configure

REPO = Path(__file__).resolve().parents[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("dataset")
    ap.add_argument("temperature_K", type=float)
    ap.add_argument("--production-ps", type=float, default=10.0)
    ap.add_argument("--outer-steps", type=int, nargs="+", default=[5, 8], help="k values of the fast path (2-fs inner)")
    ap.add_argument("--out", default=str(REPO / "benchmarks/results/mts_check.json"))
    args = ap.parse_args()
    configure(1, "cpu")
    config = read_config(REPO / "config/config.yaml")  # the schema's defaults filled
    base = {**config["cg_md"], "device": "cpu", "equilibration_ps": 1.0, "production_ps": args.production_ps,
            "report_interval_ps": 0.1}
    variants = {"plain_1fs": {**base, "prior_in_openmm": False, "mts_inner_steps": 1, "timestep_fs": 1.0}}
    for k in args.outer_steps:
        variants[f"fast_{2 * k}fs"] = {**base, "prior_in_openmm": True, "mts_inner_steps": k, "timestep_fs": 2.0}
    rdf_cfg = config["rdf"]
    results, rdfs = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, cfg in variants.items():
            d = Path(tmp) / name
            summary = run_cg_md(args.checkpoint, args.dataset, args.temperature_K, None, "nvt", cfg, d / "top.pdb",
                                d / "traj.dcd", d / "thermo.csv", d / "summary.json", label=f"mts_check {name}",
                                seed=7)
            thermo = pd.read_csv(d / "thermo.csv")
            u_mean, u_err = block_average(thermo["potential_energy_kJ_mol"])
            r, g, blocks = cg_block_rdfs(d / "top.pdb", d / "traj.dcd", ["MOH-MOH"], rdf_cfg["nbins"],
                                         rdf_cfg["rmax_A"], 2)["MOH-MOH"]
            rdfs[name] = (g, blocks)
            results[name] = {
                "timestep_fs": summary["timestep_fs"], "integrator": summary["integrator"],
                "mean_temperature_K": summary["mean_temperature_K"],
                "temperature_deviation_pct": summary["temperature_deviation_pct"],
                "mean_potential_energy_kJ_mol": u_mean, "potential_energy_stderr_kJ_mol": u_err,
                "mean_pressure_bar": summary["mean_pressure_bar"], "pressure_stderr_bar": summary["mean_pressure_stderr_bar"],
                "ms_per_step": summary["ms_per_step"], "ns_per_day": summary["ns_per_day"],
            }
    g_ref, (half1, half2) = rdfs["plain_1fs"]
    noise = rdfmod.rdf_mae(half1, half2)
    ref = results["plain_1fs"]
    for name, res in results.items():
        res["rdf_mae_vs_1fs"] = rdfmod.rdf_mae(rdfs[name][0], g_ref)
        res["rdf_noise_floor_1fs"] = noise
        res["rdf_within_noise_floor"] = bool(res["rdf_mae_vs_1fs"] <= noise)
        res["potential_energy_diff_over_stderr"] = (res["mean_potential_energy_kJ_mol"] - ref["mean_potential_energy_kJ_mol"]) / float(
            np.hypot(res["potential_energy_stderr_kJ_mol"], ref["potential_energy_stderr_kJ_mol"]))
        res["pressure_diff_over_stderr"] = (res["mean_pressure_bar"] - ref["mean_pressure_bar"]) / float(
            np.hypot(res["pressure_stderr_bar"], ref["pressure_stderr_bar"]))
        res["speedup_over_plain_1fs"] = res["ns_per_day"] / ref["ns_per_day"]
    out = {"machine": platform.node(), "processor": platform.processor(), "checkpoint": args.checkpoint,
           "dataset": args.dataset, "temperature_K": args.temperature_K, "production_ps": args.production_ps,
           "variants": results}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
