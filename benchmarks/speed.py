"""Side-by-side speed benchmark on the default system (256 OPLS-AA methanol / 256 CG beads).

Measures in one run, on this machine: all-atom reference MD ns/day in three formulations side by side (OPLS
geometric LJ as the workflow builds it, per-particle products; the same as OpenMM's acoef/bcoef type tables; and a
plain Lorentz-Berthelot NonbondedForce as the speed reference), CG MD ns/day and ms/step of both model kinds built exactly as
the workflow builds them (`cg_md.build_cg_system`): the default-size HIP-NN-TS model as an OpenMM PythonForce
and the MS-CG tables as native CustomNonbondedForces (NVT, and NPT with a MonteCarloBarostat), HIP-NN-TS training
milliseconds per frame and the MS-CG fit time. Beside them: MS-CG in the earlier OpenMM form (a
``Continuous1DFunction`` table of U instead of its polynomials, ``cg_mscg_table_nvt``), and the headline CG paths on
the all-atom run's cores (``--threads`` for OpenMM and torch, ``*_2threads``; ``*_same_cores`` speedups) beside
their one-thread runs (how the workflow runs CG jobs: side by side, one thread each).
Writes JSON with medians over repeated segments; the ratios are the numbers to compare across machines.

    python benchmarks/speed.py [--config config/config.yaml] [--out benchmarks/results/speed.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

from cgtransfer.compute import configure

configure(1, "cpu")  # as the workflow's train and cg_md jobs: one thread, its CPU kernels (before hippynn loads)

import numpy as np  # noqa: E402
import openmm  # noqa: E402
import openmm.unit as u  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402
from openmm import app  # noqa: E402

import cgtransfer  # noqa: E402
from cgtransfer.stages import mapping
from cgtransfer import units
from cgtransfer.md.box import build_box
from cgtransfer.stages.cg_md import cg_topology
from cgtransfer.config import load_study
from cgtransfer.md.forcefields import cpu_platform, create_system
from cgtransfer.io import write_json, write_npz
from cgtransfer.stages.cg_md import build_cg_system, cg_integrator
from cgtransfer.kinds.registry import load_model
from cgtransfer.md.protocol import ForceReporter
from cgtransfer.kinds.registry import kind_settings
from cgtransfer.stages.train import train_model
from mscg_forms import table_expression  # noqa: E402  (benchmarks/ is on the path: run as a script)

REPO = Path(__file__).resolve().parents[1]


def hippynn_kernels_active() -> str:
    """The message-passing kernels hippynn runs here (``cgtransfer.compute`` chooses them on the CPU)."""
    import hippynn.custom_kernels as ck

    return str(ck.CUSTOM_KERNELS_ACTIVE)


def timed_segments(step, n_steps, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        step(n_steps)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def ns_per_day(seconds, n_steps, dt_fs):
    return n_steps * dt_fs * 1e-6 / (seconds / 86400.0)


def aa_simulation(box_pdb, xml, md, threads, geometric=True, separable_lj=True):
    """The all-atom NPT run as the reference stage builds it (``md``: its settings, hydrogen mass repartitioning
    included)."""
    pdb = app.PDBFile(str(box_pdb))
    hmass = md.get("hydrogen_mass_amu")
    if geometric:
        system = create_system(xml, pdb.topology, md["nonbonded_cutoff_nm"], md["constraints"],
                               md["ewald_error_tolerance"], True, separable_lj=separable_lj, hydrogen_mass_amu=hmass)
    else:  # the same charges and LJ parameters in one NonbondedForce (Lorentz-Berthelot): speed reference only
        system = create_system(xml, pdb.topology, md["nonbonded_cutoff_nm"], md["constraints"],
                               md["ewald_error_tolerance"], True, separable_lj=False, hydrogen_mass_amu=hmass)
        lj = next(f for f in system.getForces() if f.getName() == "LennardJones")
        nb = next(f for f in system.getForces() if isinstance(f, openmm.NonbondedForce))
        types = [lj.getParticleParameters(i)[0] for i in range(lj.getNumParticles())]
        acoef = lj.getTabulatedFunction(0).getFunctionParameters()[2]
        bcoef = lj.getTabulatedFunction(1).getFunctionParameters()[2]
        n_types = int(round(len(acoef) ** 0.5))
        for i in range(nb.getNumParticles()):
            q, _, _ = nb.getParticleParameters(i)
            t = int(types[i])
            a, b = acoef[t + n_types * t], bcoef[t + n_types * t]
            sigma, eps = ((a / b) ** (1 / 6), b * b / (4 * a)) if a > 0 else (0.1, 0.0)
            nb.setParticleParameters(i, q, sigma, eps)
        nb.setUseDispersionCorrection(True)
        for i in reversed(range(system.getNumForces())):
            if system.getForce(i).getName().startswith("LennardJones"):
                system.removeForce(i)
    system.addForce(openmm.MonteCarloBarostat(1 * u.bar, 298 * u.kelvin, md["barostat_frequency"]))
    integrator = openmm.LangevinMiddleIntegrator(298 * u.kelvin, 1 / u.picosecond, md["timestep_fs"] * u.femtosecond)
    plat, props = cpu_platform(threads)
    sim = app.Simulation(pdb.topology, system, integrator, plat, props)
    sim.context.setPositions(pdb.positions)
    sim.minimizeEnergy(maxIterations=200)
    sim.context.setVelocitiesToTemperature(298 * u.kelvin, 1)
    return sim, pdb


def table_form(system, model, table_spacing_A=0.005):
    """The MS-CG forces of ``system`` replaced by the form the workflow used before (mscg_forms.table_expression:
    U as a ``Continuous1DFunction`` table, the same wall; speed comparison only)."""
    for k in range(system.getNumForces()):
        force = system.getForce(k)
        if not force.getName().startswith("MS-CG pairs"):
            continue
        names = force.getName().split()[2:]
        if len(names) != 1:
            raise ValueError("table_form: one bead type only")
        pf = next(p for p in model.pairs if p.pair == names[0])
        expression, table = table_expression(pf, table_spacing_A)
        force.setEnergyFunction(expression)
        force.addTabulatedFunction("table", table)
    return system


def tile_frame(data: dict, reps) -> dict:
    """The last frame of a CG dataset replicated periodically reps = (nx, ny, nz) times."""
    box = np.diag(data["cells"][-1]).astype(float)
    shifts = np.array([(i, j, k) for i in range(reps[0]) for j in range(reps[1]) for k in range(reps[2])]) * box
    n_copies = len(shifts)
    pos = (data["positions"][-1][None, :, :] + shifts[:, None, :]).reshape(1, -1, 3)
    n_res = int(data["residue_index"].max()) + 1
    cells = np.diag(box * np.array(reps))[None]
    return {"positions": pos, "cells": cells, "species": np.tile(data["species"][-1:], (1, n_copies)),
            "masses": np.tile(data["masses"], n_copies), "bead_names": np.tile(data["bead_names"], n_copies),
            "residue_index": np.concatenate([data["residue_index"] + c * n_res for c in range(n_copies)])}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default=str(REPO / "config/config.yaml"))
    ap.add_argument("--out", default=str(REPO / "benchmarks/results/speed.json"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2, help="OpenMM CPU threads for the all-atom runs")
    ap.add_argument("--short-mts-inner-steps", type=int, default=5,
                    help="HIP-NN-TS: a shorter outer step timed beside the config's (k inner steps; the earlier default)")
    ap.add_argument("--short-mscg-timestep-fs", type=float, default=2.0,
                    help="MS-CG: a shorter timestep timed beside the config's (the earlier default)")
    ap.add_argument("--short-aa-timestep-fs", type=float, default=2.0,
                    help="all-atom: the step with true masses timed beside the config's (the earlier default)")
    args = ap.parse_args()
    cfg = yaml.safe_load(Path(args.config).read_text())
    study = load_study(cfg, REPO)
    system_name = study.systems()[0]
    sysc = study.system(system_name)
    md, cgc = cfg["reference_md"], cfg["cg_md"]
    result = {"machine": platform.platform(), "processor": platform.processor(), "aa_threads": args.threads,
              "cg_and_training_threads": 1, "hippynn_kernels": hippynn_kernels_active(),
              "torch": torch.__version__, "openmm": openmm.__version__, "cgtransfer": cgtransfer.__version__,
              "system": system_name, "n_molecules": sysc["n_molecules"], "repeats": args.repeats}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        build_box(REPO / sysc["template_pdb"], sysc["n_molecules"], sysc["initial_density_g_cm3"],
                  tmp / "box.pdb")
        n_aa = 250
        formulations = {"aa_geometric": (True, True), "aa_geometric_type_table": (True, False),
                        "aa_lorentz_berthelot": (False, False)}
        for key, (geometric, separable) in formulations.items():
            sim, pdb = aa_simulation(tmp / "box.pdb", study.forcefields(system_name), md, args.threads,
                                     geometric, separable)
            sim.step(100)
            secs = timed_segments(sim.step, n_aa, args.repeats)
            result[key] = {"timestep_fs": md["timestep_fs"], "hydrogen_mass_amu": md.get("hydrogen_mass_amu"),
                           "steps": n_aa, "median_s": secs, "ns_per_day": ns_per_day(secs, n_aa, md["timestep_fs"]),
                           "ms_per_step": 1000 * secs / n_aa, "n_atoms": pdb.topology.getNumAtoms()}
        # the earlier default beside it: true masses at the short step
        short = dict(md, timestep_fs=args.short_aa_timestep_fs, hydrogen_mass_amu=None)
        sim, pdb = aa_simulation(tmp / "box.pdb", study.forcefields(system_name), short, args.threads)
        sim.step(100)
        secs = timed_segments(sim.step, n_aa, args.repeats)
        result["aa_geometric_true_masses"] = {"timestep_fs": short["timestep_fs"], "hydrogen_mass_amu": None,
                                              "steps": n_aa, "median_s": secs,
                                              "ns_per_day": ns_per_day(secs, n_aa, short["timestep_fs"]),
                                              "ms_per_step": 1000 * secs / n_aa, "n_atoms": pdb.topology.getNumAtoms()}
        del sim
        # the all-atom reference at 4x the size (1024 molecules), for the speedups of the larger CG systems
        # (4096 beads: the all-atom cost extrapolated linearly from this size, marked as such)
        build_box(REPO / sysc["template_pdb"], 4 * sysc["n_molecules"], sysc["initial_density_g_cm3"],
                  tmp / "box4.pdb")
        sim, pdb = aa_simulation(tmp / "box4.pdb", study.forcefields(system_name), md, args.threads)
        sim.step(20)
        secs = timed_segments(sim.step, n_aa // 4, args.repeats)
        result["aa_geometric_x4"] = {"timestep_fs": md["timestep_fs"], "steps": n_aa // 4, "median_s": secs,
                                     "ns_per_day": ns_per_day(secs, n_aa // 4, md["timestep_fs"]),
                                     "ms_per_step": 4000 * secs / n_aa, "n_atoms": pdb.topology.getNumAtoms(),
                                     "n_molecules": 4 * sysc["n_molecules"]}
        del sim
        # frames for training / a start configuration: 20 frames of the geometric reference
        sim, pdb = aa_simulation(tmp / "box.pdb", study.forcefields(system_name), md, args.threads, True)
        sim.step(1000)
        forces = ForceReporter(50)
        sim.reporters += [app.DCDReporter(str(tmp / "t.dcd"), 50), forces]
        sim.step(1000)
        sim.reporters.clear()
        with open(tmp / "top.pdb", "w") as fh:
            app.PDBFile.writeFile(pdb.topology, sim.context.getState(getPositions=True).getPositions(), fh)
        np.savez(tmp / "f.npz", **forces.arrays(), time_ps=np.arange(20) * 0.1)
        cg = mapping.map_trajectory(tmp / "top.pdb", tmp / "t.dcd", tmp / "f.npz", sysc["mapping"])
        table = mapping.reference_rdfs(cg, cfg["rdf"]["nbins"], cfg["rdf"]["rmax_A"])
        write_npz(tmp / "d.npz", **cg)
        write_json(tmp / "s.json", mapping.summarize_mapped(cg, table, cfg["rdf"]["onset_threshold"]))
        train = dict(cfg["training"], max_epochs=args.repeats + 1, termination_patience=100, device="cpu")
        data = {k: cg[k] for k in cg}
        n_cg = {"hipnn": 60, "mscg": 2000}
        for kind in ("hipnn", "mscg"):
            settings = kind_settings(kind, cfg)
            rec = train_model(kind, [tmp / "d.npz"], [tmp / "s.json"], ["bench"], settings, cfg["prior"], train,
                              tmp / kind, label=f"bench/{kind}")
            if kind == "hipnn":
                result["training"] = {"ms_per_frame": rec["ms_per_training_frame_epoch"], "epochs": rec["epochs"],
                                      "train_frames": rec["train_frames"], "batch_size": train["batch_size"],
                                      "network": cfg["hipnn"], "note": "median epoch wall time / training frames "
                                      "(includes the validation pass of the epoch)"}
            else:
                result["mscg_fit"] = {"wall_s": rec["wall_s"], "train_frames": rec["train_frames"],
                                      "n_coefficients": rec["n_coefficients"], "settings": cfg["mscg"]}
            model = load_model(tmp / kind)
            box = np.diag(data["cells"][-1]).astype(float)
            # the workflow's default settings, and the longer steps that passed the checks against 1-fs runs
            # (benchmarks/timestep_check.py; with --mts-inner-timestep-fs for the HIP-NN-TS outer step)
            # (the config's settings: the workflow's; "_short": the earlier, shorter defaults beside them)
            mscg_dt = cgc.get("mscg_timestep_fs") or cgc["timestep_fs"]
            variants = {"mscg": {"": dict(timestep_fs=mscg_dt), "_short": dict(timestep_fs=args.short_mscg_timestep_fs),
                                 "_table": dict(timestep_fs=mscg_dt)},
                        "hipnn": {"": dict(prior_in_openmm=False, mts_inner_steps=1),
                                  "_fast": dict(prior_in_openmm=True, mts_inner_steps=cgc["mts_inner_steps"]),
                                  "_fast_short": dict(prior_in_openmm=True,
                                                      mts_inner_steps=args.short_mts_inner_steps)}}[kind]
            # "_2threads": the workflow's path on the all-atom run's cores (OpenMM and torch threads = --threads)
            runs = [(suffix, overrides, ensemble, 1) for suffix, overrides in variants.items()
                    for ensemble in ("nvt", "npt")]
            runs.append(("_fast" if kind == "hipnn" else "", variants["_fast" if kind == "hipnn" else ""],
                         "nvt", args.threads))
            for suffix, overrides, ensemble, threads in runs:
                torch.set_num_threads(threads)
                c = {k: v for k, v in cgc.items() if k != "mscg_timestep_fs"}
                c.update(device="cpu", **overrides)
                if kind == "mscg":  # the barostat after the same simulated time (as the workflow's MS-CG runs)
                    c["barostat_frequency"] = max(1, round(cgc["barostat_frequency"] * cgc["timestep_fs"]
                                                           / c["timestep_fs"]))
                system, _, _ = build_cg_system(model, data, box, 298.0, 1.0, ensemble, c, f"bench {kind} {ensemble}")
                if suffix == "_table":
                    table_form(system, model, cfg["mscg"]["table_spacing_A"])
                integ, dt_fs = cg_integrator(system, 298.0, c)
                csim = app.Simulation(cg_topology(data, box), system, integ,
                                      openmm.Platform.getPlatformByName("CPU"), {"Threads": str(threads)})
                csim.context.setPositions(units.angstrom_to_nm(data["positions"][-1].astype(float)) * u.nanometer)
                csim.context.setVelocitiesToTemperature(298 * u.kelvin, 1)
                csim.step(20)
                secs = timed_segments(csim.step, n_cg[kind], args.repeats)
                key = f"cg_{kind}{suffix}_{ensemble}" + ("" if threads == 1 else f"_{threads}threads")
                result[key] = {
                    "integrator": type(integ).__name__, "timestep_fs": dt_fs, "inner_timestep_fs": c["timestep_fs"],
                    "prior_in_openmm": bool(c.get("prior_in_openmm", False)), "steps": n_cg[kind], "threads": threads,
                    "median_s": secs, "ns_per_day": ns_per_day(secs, n_cg[kind], dt_fs),
                    "ms_per_step": 1000 * secs / n_cg[kind], "n_beads": int(data["positions"].shape[1])}
                if suffix == "_table":
                    result[key]["form"] = ("the earlier OpenMM form: U as a Continuous1DFunction table "
                                           f"(grid {cfg['mscg']['table_spacing_A']} Å) instead of its polynomials")
            torch.set_num_threads(1)
            # CG step time against system size: the frame tiled periodically (256, 1024, 4096 beads); HIP-NN-TS
            # also with 2 torch threads (the all-atom runs use --threads) up to 1024 beads
            sweeps = [(1, ((1, 1, 1), (2, 2, 1), (4, 2, 2)))]
            if kind == "hipnn":
                sweeps.append((2, ((1, 1, 1), (2, 2, 1))))
            for torch_threads, sizes in sweeps:
                torch.set_num_threads(torch_threads)
                key = f"cg_{kind}_scaling_nvt" + ("" if torch_threads == 1 else f"_{torch_threads}threads")
                for reps in sizes:
                    tiled = tile_frame(data, reps)
                    tbox = box * np.array(reps)
                    overrides = variants["_fast" if kind == "hipnn" else ""]
                    c = {k: v for k, v in cgc.items() if k != "mscg_timestep_fs"}
                    c.update(device="cpu", **overrides)
                    system, _, _ = build_cg_system(model, tiled, tbox, 298.0, 1.0, "nvt", c, f"bench {kind} scaling")
                    integ, dt_fs = cg_integrator(system, 298.0, c)
                    ctx = openmm.Context(system, integ, openmm.Platform.getPlatformByName("CPU"),
                                         {"Threads": str(torch_threads)})
                    ctx.setPositions(units.angstrom_to_nm(tiled["positions"][-1].astype(float)) * u.nanometer)
                    ctx.setVelocitiesToTemperature(298 * u.kelvin, 1)
                    integ.step(3)
                    n = max(5, n_cg[kind] // (reps[0] * reps[1] * reps[2]))
                    secs = timed_segments(integ.step, n, args.repeats)
                    result.setdefault(key, []).append({
                        "n_beads": int(tiled["positions"].shape[1]), "threads": torch_threads, "timestep_fs": dt_fs,
                        "steps": n, "ms_per_step": 1000 * secs / n, "ns_per_day": ns_per_day(secs, n, dt_fs)})
            torch.set_num_threads(1)
    aa = result["aa_geometric"]
    # the headline: CG ns/day over all-atom ns/day, same molecules, measured in this run (HIP-NN-TS: the MD
    # path of the workflow, prior native + MTS; MS-CG: native tables)
    result["cg_hipnn_speedup_over_aa"] = result["cg_hipnn_fast_nvt"]["ns_per_day"] / aa["ns_per_day"]
    result["cg_mscg_speedup_over_aa"] = result["cg_mscg_nvt"]["ns_per_day"] / aa["ns_per_day"]
    # on the same cores as the all-atom run (--threads for OpenMM and torch): one CG trajectory per machine, as
    # the all-atom reference runs (the workflow runs one-thread CG jobs side by side instead)
    same = f"_{args.threads}threads"
    result["cg_hipnn_speedup_over_aa_same_cores"] = result[f"cg_hipnn_fast_nvt{same}"]["ns_per_day"] / aa["ns_per_day"]
    result["cg_mscg_speedup_over_aa_same_cores"] = result[f"cg_mscg_nvt{same}"]["ns_per_day"] / aa["ns_per_day"]
    # against the all-atom model with true masses at the short step (the baseline of the earlier defaults)
    aa_true = result["aa_geometric_true_masses"]["ns_per_day"]
    result["cg_hipnn_speedup_over_aa_true_masses"] = result["cg_hipnn_fast_nvt"]["ns_per_day"] / aa_true
    result["cg_mscg_speedup_over_aa_true_masses"] = result["cg_mscg_nvt"]["ns_per_day"] / aa_true
    result["aa_hmr_speedup_over_true_masses"] = aa["ns_per_day"] / aa_true
    aa_by_beads = {sysc["n_molecules"]: (aa["ns_per_day"], "measured"),
                   4 * sysc["n_molecules"]: (result["aa_geometric_x4"]["ns_per_day"], "measured"),
                   16 * sysc["n_molecules"]: (result["aa_geometric_x4"]["ns_per_day"] / 4, "extrapolated linearly "
                                              "from 4x the molecules")}
    for key in [k for k in result if k.startswith("cg_") and "_scaling_nvt" in k]:
        for row in result[key]:
            if row["n_beads"] in aa_by_beads:  # one bead per molecule: the all-atom system of as many molecules
                aa_ns, how = aa_by_beads[row["n_beads"]]
                row["speedup_over_aa"] = row["ns_per_day"] / aa_ns
                row["aa_ns_per_day"] = aa_ns
                row["aa_ns_per_day_is"] = how
    result["cg_hipnn_speedup_over_aa_by_beads"] = {str(r["n_beads"]): r["speedup_over_aa"]
                                                   for r in result["cg_hipnn_scaling_nvt"] if "speedup_over_aa" in r}
    result["ratios"] = {
        "cg_hipnn_nvt_over_aa_ns_per_day": result["cg_hipnn_nvt"]["ns_per_day"] / aa["ns_per_day"],
        "cg_hipnn_fast_nvt_over_aa_ns_per_day": result["cg_hipnn_fast_nvt"]["ns_per_day"] / aa["ns_per_day"],
        "cg_hipnn_fast_over_plain_nvt_ns_per_day": result["cg_hipnn_fast_nvt"]["ns_per_day"] / result["cg_hipnn_nvt"]["ns_per_day"],
        "cg_mscg_nvt_over_aa_ns_per_day": result["cg_mscg_nvt"]["ns_per_day"] / aa["ns_per_day"],
        "cg_mscg_table_over_polynomial_nvt_ms_per_step": result["cg_mscg_table_nvt"]["ms_per_step"] / result["cg_mscg_nvt"]["ms_per_step"],
        "cg_mscg_nvt_over_cg_hipnn_fast_nvt_ns_per_day": result["cg_mscg_nvt"]["ns_per_day"] / result["cg_hipnn_fast_nvt"]["ns_per_day"],
        "cg_hipnn_npt_over_nvt_ms_per_step": result["cg_hipnn_npt"]["ms_per_step"] / result["cg_hipnn_nvt"]["ms_per_step"],
        "aa_geometric_over_lorentz_berthelot_ms_per_step": aa["ms_per_step"] / result["aa_lorentz_berthelot"]["ms_per_step"],
        "aa_type_table_over_separable_ms_per_step": result["aa_geometric_type_table"]["ms_per_step"] / aa["ms_per_step"],
    }
    write_json(args.out, result)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
