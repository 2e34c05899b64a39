"""Does hydrogen mass repartitioning (``reference_md.hydrogen_mass_amu``) let the all-atom reference run at 4 fs
without changing what it samples? Two NPT runs of the same packed box through the reference stage itself
(``run_reference``): 2 fs with true masses and 4 fs with hydrogens of ``--hydrogen-mass`` amu (HBonds constraints
in both), each mapped to CG beads by the mapping stage (``map_trajectory``, true masses from the topology).
Compared: density, the mapped bead-bead RDF, the RMS mapped force per bead (the force-matching target), each
with block standard errors (``block_average``, 5 contiguous blocks), and ns/day of each run's production.

A variant passes when density and RMS force agree within ``--z-max`` combined standard errors and the RDF's
chi² per bin (bins where g > 0.05) is within 1 + ``--z-max`` × sqrt(2 / bins) of 1.

    python benchmarks/hmr_check.py [--system-dir resources/methanol] [--molecules 256] [--temperature 298] \
        [--pressure 1] [--equilibration-ps 10] [--production-ps 20] [--out benchmarks/results/hmr_check.json]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import openmm
import pandas as pd

from cgtransfer.analysis.rdf import bead_rdf, bead_universe
from cgtransfer.analysis.statistics import block_average
from cgtransfer.md.box import build_box
from cgtransfer.stages.mapping import map_trajectory
from cgtransfer.stages.reference import run_reference

REPO = Path(__file__).resolve().parents[1]
# the reference_md section's defaults (workflow/schemas/config.schema.yaml), except the run lengths
MD = {"platform": "CPU", "friction_per_ps": 1.0, "nonbonded_cutoff_nm": 1.0, "ewald_error_tolerance": 5e-4,
      "dispersion_correction": True, "constraints": "HBonds", "barostat_frequency": 25, "minimize_max_iterations": 1000,
      "report_interval_ps": 0.2, "checkpoint_interval_ps": 0.0}
MAPPING = {"MOH": {"MOH": ["C", "H1", "H2", "H3", "O", "HO"]}}


def run_variant(name: str, box_pdb: Path, timestep_fs: float, hydrogen_mass, args, work: Path) -> dict:
    md = {**MD, "nonbonded_cutoff_nm": args.cutoff_nm, "threads": args.threads, "timestep_fs": timestep_fs,
          "hydrogen_mass_amu": hydrogen_mass,
          "equilibration_ps": args.equilibration_ps, "production_ps": args.production_ps,
          "report_interval_ps": args.report_interval_ps}
    d = work / name
    out = [d / f for f in ("topology.pdb", "trajectory.dcd", "forces.npz", "thermo.csv")]
    t0 = time.perf_counter()
    summary = run_reference(box_pdb, args.forcefield, args.temperature, args.pressure, None, md, *out,
                            threads=args.threads, seed=args.seed, label=f"hmr check {name}")
    cg = map_trajectory(out[0], out[1], out[2], MAPPING, args.temperature)
    thermo = pd.read_csv(out[3])
    name_b = str(cg["bead_names"][0])
    boxes = cg["cells"][:, [0, 1, 2], [0, 1, 2]]
    universe = bead_universe(cg["positions"], boxes, cg["bead_names"], cg["residue_index"])
    rdfs = []
    for edges in np.array_split(np.arange(len(boxes)), 5):
        r, g = bead_rdf(universe, name_b, name_b, args.rdf_bins, args.rdf_rmax_A, start=int(edges[0]),
                        stop=int(edges[-1]) + 1)
        rdfs.append(g)
    rdfs = np.asarray(rdfs)
    rms_force = np.sqrt((np.asarray(cg["forces"], dtype=float) ** 2).sum(axis=2).mean(axis=1))  # per frame
    density = block_average(thermo["density_g_cm3"].to_numpy())
    temperature = block_average(thermo["temperature_K"].to_numpy())
    force = block_average(rms_force)
    return {
        "timestep_fs": timestep_fs,
        "hydrogen_mass_amu": hydrogen_mass,
        "frames": int(len(thermo)),
        "density_g_cm3": {"mean": density[0], "stderr": density[1]},
        "temperature_K": {"mean": temperature[0], "stderr": temperature[1]},
        "rms_bead_force_kcal_mol_A": {"mean": force[0], "stderr": force[1]},
        "bead_mass_amu": float(np.mean(cg["masses"])),
        "rdf": {"r_A": np.asarray(r).tolist(), "g": rdfs.mean(axis=0).tolist(),
                "stderr": (rdfs.std(axis=0, ddof=1) / math.sqrt(len(rdfs))).tolist()},
        "production_ns_per_day": summary["production_ns_per_day"],
        "wall_s": time.perf_counter() - t0,
    }


def compare(case: dict, ref: dict, z_max: float) -> dict:
    out, ok = {}, True
    for key in ("density_g_cm3", "rms_bead_force_kcal_mol_A", "temperature_K"):
        diff = case[key]["mean"] - ref[key]["mean"]
        noise = math.hypot(case[key]["stderr"], ref[key]["stderr"])
        z = diff / noise if noise > 0 else 0.0
        out[key] = {"difference": diff, "relative_difference": diff / ref[key]["mean"], "noise": noise, "z": z,
                    "passes": abs(z) <= z_max}
        ok &= abs(z) <= z_max
    g, s = np.asarray(case["rdf"]["g"]), np.asarray(case["rdf"]["stderr"])
    g1, s1 = np.asarray(ref["rdf"]["g"]), np.asarray(ref["rdf"]["stderr"])
    use = (np.maximum(g, g1) > 0.05) & (np.hypot(s, s1) > 0)
    chi2 = float(np.mean(((g - g1)[use] / np.hypot(s, s1)[use]) ** 2))
    limit = 1.0 + z_max * math.sqrt(2.0 / use.sum())
    out["rdf"] = {"mae": float(np.mean(np.abs(g - g1))),
                  "noise_floor_mae": float(np.mean(np.sqrt(2.0 / math.pi) * np.hypot(s, s1))),
                  "chi2_per_bin": chi2, "chi2_limit": limit, "bins": int(use.sum()), "passes": chi2 <= limit}
    ok &= chi2 <= limit
    out["speedup"] = case["production_ns_per_day"] / ref["production_ns_per_day"]
    out["passes"] = bool(ok)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--template", default=str(REPO / "resources/methanol/methanol.pdb"))
    p.add_argument("--forcefield", default=str(REPO / "resources/methanol/oplsaa_methanol.xml"))
    p.add_argument("--molecules", type=int, default=256)
    p.add_argument("--initial-density", type=float, default=0.76, help="g/cm3 of the packed box")
    p.add_argument("--temperature", type=float, default=298.0)
    p.add_argument("--pressure", type=float, default=1.0)
    p.add_argument("--hydrogen-mass", type=float, default=3.0, help="amu, for the 4-fs run")
    p.add_argument("--equilibration-ps", type=float, default=10.0)
    p.add_argument("--production-ps", type=float, default=20.0)
    p.add_argument("--report-interval-ps", type=float, default=0.2)
    p.add_argument("--rdf-bins", type=int, default=120)
    p.add_argument("--rdf-rmax-A", type=float, default=12.0)
    p.add_argument("--z-max", type=float, default=3.0)
    p.add_argument("--cutoff-nm", type=float, default=MD["nonbonded_cutoff_nm"])
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "hmr_check.json"))
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        box = work / "box.pdb"
        build_box(args.template, args.molecules, args.initial_density, box, seed=args.seed)
        variants = {"2fs_true_masses": run_variant("2fs_true_masses", box, 2.0, None, args, work),
                    f"4fs_hmr_{args.hydrogen_mass:g}amu": run_variant("4fs_hmr", box, 4.0, args.hydrogen_mass, args, work)}
    ref_name, hmr_name = list(variants)
    comparison = compare(variants[hmr_name], variants[ref_name], args.z_max)
    r_A = variants[ref_name]["rdf"].pop("r_A")
    variants[hmr_name]["rdf"].pop("r_A")
    report = {
        "what": "all-atom NPT reference at 2 fs with true masses vs 4 fs with hydrogen mass repartitioning (HBonds "
                "constraints), both mapped with true masses; pass: density, RMS bead force and T within z_max "
                "combined block standard errors, mapped RDF chi2 per bin within its limit",
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "machine": {"python": sys.version.split()[0], "openmm": openmm.__version__, "platform": platform.platform()},
        "rdf_r_A": r_A,
        "variants": variants,
        "comparison": comparison,
        "verdict": (f"4 fs with {args.hydrogen_mass:g}-amu hydrogens samples the same density, mapped RDF and mapped "
                    f"forces as 2 fs with true masses within noise, {comparison['speedup']:.2f}x the ns/day"
                    if comparison["passes"] else
                    f"4 fs with {args.hydrogen_mass:g}-amu hydrogens differs from 2 fs with true masses beyond noise"),
        "wall_s": time.perf_counter() - t0,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    for name, v in variants.items():
        print(f"{name:>22}: density {v['density_g_cm3']['mean']:.4f}±{v['density_g_cm3']['stderr']:.4f} g/cm3, "
              f"T {v['temperature_K']['mean']:.1f}±{v['temperature_K']['stderr']:.1f} K, RMS bead force "
              f"{v['rms_bead_force_kcal_mol_A']['mean']:.3f}±{v['rms_bead_force_kcal_mol_A']['stderr']:.3f} kcal/mol/Å, "
              f"{v['production_ns_per_day']:.1f} ns/day")
    c = comparison
    print(f"RDF MAE {c['rdf']['mae']:.4f} (noise floor {c['rdf']['noise_floor_mae']:.4f}), chi2/bin "
          f"{c['rdf']['chi2_per_bin']:.2f} (limit {c['rdf']['chi2_limit']:.2f}); density z {c['density_g_cm3']['z']:+.2f}, "
          f"force z {c['rms_bead_force_kcal_mol_A']['z']:+.2f}, T z {c['temperature_K']['z']:+.2f}")
    print(report["verdict"])
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
