"""The all-atom references' self-diffusion against experiment at 298.15 K, 1 bar: methanol (OPLS-AA, the default
system) and water (TIP3P-FB), with the workflow's own stages: packed box → reference run (NPT, the reference_md
defaults) → dynamics segment from its final configuration (``cgtransfer.stages.dynamics_md``: NVT at the mean
density, true masses, weak friction) → centre-of-mass mapping → D from EinsteinMSD over the fit window, block
error, VACF integral, Yeh-Hummer correction with the experimental viscosity.

    python benchmarks/diffusion_check.py [--system methanol|water ...] [--out benchmarks/results/diffusion_check.json]

Experiment (298.15 K, 0.1 MPa): water D = 2.299e-9 m²/s (R. Mills, J. Phys. Chem. 77, 685 (1973)), η = 0.890
mPa·s; methanol D = 2.42e-9 m²/s (R. L. Hurle, A. J. Easteal, L. A. Woolf, J. Chem. Soc. Faraday Trans. 1 81, 769
(1985)), η = 0.544 mPa·s (viscosities: CRC Handbook of Chemistry and Physics, "Viscosity of liquids"). The force
fields' own viscosities differ from experiment, so D∞ carries that uncertainty (TIP3P-type water: about 0.3-0.4
mPa·s, which would make its correction about twice as large as the one computed here).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from cgtransfer.analysis import dynamics as dyn  # noqa: E402
from cgtransfer.md.box import build_box  # noqa: E402
from cgtransfer.stages.dynamics_md import run_aa_segment  # noqa: E402
from cgtransfer.stages.mapping import map_trajectory  # noqa: E402
from cgtransfer.stages.reference import run_reference  # noqa: E402

SYSTEMS = {
    "methanol": {"template": "resources/methanol/methanol.pdb", "forcefield": str(REPO / "resources/methanol/oplsaa_methanol.xml"),
                 "n": 256, "density": 0.76, "cutoff": 0.9, "mapping": {"MOH": {"MOH": ["C", "H1", "H2", "H3", "O", "HO"]}},
                 "D_exp": 2.42e-9, "D_exp_source": "Hurle, Easteal, Woolf, J. Chem. Soc. Faraday Trans. 1 81, 769 (1985)",
                 "eta_mPa_s": 0.544},
    "water": {"template": "resources/water/water.pdb", "forcefield": "tip3pfb.xml", "n": 256, "density": 0.95,
              "cutoff": 0.8, "mapping": {"HOH": {"W": ["O", "H1", "H2"]}},
              "D_exp": 2.299e-9, "D_exp_source": "Mills, J. Phys. Chem. 77, 685 (1973)", "eta_mPa_s": 0.890},
}
VISCOSITY_SOURCE = "CRC Handbook of Chemistry and Physics, Viscosity of liquids (298.15 K)"


def check(name: str, equilibration_ps: float, production_ps: float, segment_ps: float, fit: tuple, n_blocks: int,
          friction: float, seed: int, workdir: Path) -> dict:
    s = SYSTEMS[name]
    t0 = time.perf_counter()
    box = workdir / f"{name}_packed.pdb"
    build_box(REPO / s["template"], s["n"], s["density"], box, seed=seed)
    md = {"nonbonded_cutoff_nm": s["cutoff"], "constraints": "HBonds", "ewald_error_tolerance": 5e-4,
          "dispersion_correction": True, "timestep_fs": 2.0, "friction_per_ps": 1.0, "barostat_frequency": 25,
          "minimize_max_iterations": 1000, "equilibration_ps": equilibration_ps, "production_ps": production_ps,
          "report_interval_ps": 0.5, "checkpoint_interval_ps": 0}
    ref = {k: workdir / f"{name}_ref_{k}" for k in ("topology.pdb", "trajectory.dcd", "forces.npz", "thermo.csv")}
    run_reference(box, s["forcefield"], 298.15, 1.0, None, md, *ref.values(), seed=seed, label=f"{name} reference")
    density = float(pd.read_csv(ref["thermo.csv"])["density_g_cm3"].mean())
    seg = {k: workdir / f"{name}_dyn_{k}" for k in ("topology.pdb", "trajectory.dcd", "forces.npz", "thermo.csv")}
    dyn_settings = {"timestep_fs": 2.0, "friction_per_ps": friction, "equilibration_ps": 2.0,
                    "production_ps": segment_ps, "report_interval_ps": 0.05}
    summary = run_aa_segment(ref["topology.pdb"], s["forcefield"], 298.15, density, md, dyn_settings, *seg.values(),
                             seed=seed + 1, label=f"{name} dynamics")
    cg = map_trajectory(seg["topology.pdb"], seg["trajectory.dcd"], seg["forces.npz"], s["mapping"])
    box_A = cg["cells"][:, [0, 1, 2], [0, 1, 2]].astype(float)
    unwrapped = dyn.unwrap(cg["positions"].astype(float), box_A)
    res = dyn.diffusion(unwrapped, 0.05, fit[0], fit[1], n_blocks)
    gk = dyn.vacf(unwrapped, 0.05, fit[1])
    edge = float(np.cbrt(np.prod(box_A.mean(axis=0))))
    per_eta = dyn.yeh_hummer_per_viscosity(298.15, edge)
    d_inf = res["D_m2_s"] + per_eta / s["eta_mPa_s"]
    return {
        "system": name, "n_molecules": s["n"], "temperature_K": 298.15, "reference_density_g_cm3": density,
        "segment_ps": segment_ps, "segment_mean_temperature_K": summary["mean_temperature_K"],
        "segment_mean_temperature_stderr_K": summary["mean_temperature_stderr_K"], "friction_per_ps": friction,
        "fit_window_ps": list(fit), "beta": res["beta"], "linearity": res["linearity"], "diffusive": res["diffusive"], "n_blocks": n_blocks,
        "D_m2_s": res["D_m2_s"], "D_stderr_m2_s": res["D_stderr_m2_s"],
        "D_vacf_m2_s": dyn.vacf_diffusion(gk, *fit), "box_edge_A": edge,
        "yh_per_viscosity_m2_s_mPa_s": per_eta, "viscosity_mPa_s": s["eta_mPa_s"],
        "viscosity_source": VISCOSITY_SOURCE, "D_yh_m2_s": d_inf,
        "D_experiment_m2_s": s["D_exp"], "D_experiment_source": s["D_exp_source"],
        "D_yh_over_experiment": d_inf / s["D_exp"], "wall_s": time.perf_counter() - t0,
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--system", action="append", choices=sorted(SYSTEMS))
    ap.add_argument("--equilibration-ps", type=float, default=40.0)
    ap.add_argument("--production-ps", type=float, default=10.0)
    ap.add_argument("--segment-ps", type=float, default=40.0)
    ap.add_argument("--fit", type=float, nargs=2, default=(1.0, 5.0))
    ap.add_argument("--n-blocks", type=int, default=4)
    ap.add_argument("--friction", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/results/diffusion_check.json")
    args = ap.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.system or sorted(SYSTEMS):
            results.append(check(name, args.equilibration_ps, args.production_ps, args.segment_ps, tuple(args.fit),
                                 args.n_blocks, args.friction, args.seed, Path(tmp)))
            print(json.dumps(results[-1], indent=1), flush=True)
    out = {"what": "all-atom self-diffusion at 298.15 K, 1 bar, against experiment", "results": results,
           "machine": platform.processor() or platform.machine(), "command": "python benchmarks/diffusion_check.py " +
           " ".join(argv if argv is not None else sys.argv[1:])}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
