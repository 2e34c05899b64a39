"""Where a CG MD step spends its time: a profile of one step of each model kind, and of an all-atom step.

Builds the System and integrator exactly as the workflow's cg_md stage does (`cg_md.start_frame`,
`build_cg_system`, `cg_integrator`, `registry.load_model`, the ``cg_md`` settings of a config file), steps it under
cProfile and groups the cumulative times by function:

* HIP-NN-TS (per outer step of the multiple-time-step integrator): the PythonForce callback split into the pair
  search (hippynn's pair finder modules), graph construction (index modules and the graph's own bookkeeping), the
  network forward (network and energy-head modules), the backward pass for the forces (the gradient module:
  ``torch.autograd.grad``), and the conversions around the graph (OpenMM State → numpy → tensors and back, checks);
  the rest of the step (``openmm_native``) is OpenMM's own work: the prior, the integrator, the call into Python.
* MS-CG (per step): native OpenMM stepping only (the tables are native forces).
* Both kinds again through the stage's own protocol (`cg_md.run_cg_md`, a short run into a temporary folder): the
  share of the native/model stepping against the Python-side reporters (`md.protocol.ThermoReporter` and its
  extra observables, the DCD writer, the State hand-over) and the checkpoint bookkeeping.
* All-atom (optional, ``--aa-pdb``): the reference system built as the reference stage builds it, per step.

Fractions come from the profiled runs (medians over repeats); ms per step from the same steps run without the
profiler. Writes JSON; compare fractions and ratios across machines, not milliseconds.

    python benchmarks/profile_step.py --hipnn results/methanol/models/hipnn_T273/checkpoint \
        --mscg results/methanol/models/mscg_T273/checkpoint --data results/methanol/cg_data/T273/dataset.npz \
        [--aa-pdb results/methanol/reference/T273/topology.pdb] [--config config/config.yaml]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import platform
import pstats
import statistics
import tempfile
import time
from pathlib import Path

from cgtransfer.compute import configure

configure(1, "cpu")  # as the workflow's cg_md jobs: one thread (before torch and hippynn load)

import openmm
import openmm.unit as u
import torch
from openmm import app

import cgtransfer
from cgtransfer import units
from cgtransfer.config import read_config
from cgtransfer.dataset import load_dataset
from cgtransfer.kinds.registry import load_model
from cgtransfer.md.forcefields import cpu_platform, create_system
from cgtransfer.stages import cg_md

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------------ profile helpers
def code_key(fn) -> tuple:
    """The pstats key of a Python function."""
    c = fn.__code__
    return (c.co_filename, c.co_firstlineno, c.co_name)


def cumulative(stats: dict, key) -> float:
    return stats[key][3] if key in stats else 0.0


def cumulative_where(stats: dict, match) -> float:
    """Sum of the cumulative times of the functions ``match((file, line, name))`` accepts (they must not nest)."""
    return sum(v[3] for k, v in stats.items() if match(k))


def profiled(fn, *args):
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    fn(*args)
    prof.disable()
    wall = time.perf_counter() - t0
    return pstats.Stats(prof).stats, wall


def is_integrator_step(key) -> bool:
    return key[0] == "~" and "Integrator_step" in key[2]


def median_dict(rows: list[dict]) -> dict:
    return {k: statistics.median(r[k] for r in rows) for k in rows[0]}


# ------------------------------------------------------------------------------------------------ CG systems
def cg_simulation(checkpoint, data, cfg: dict, temperature_K: float, threads: int, seed: int = 1):
    """The NVT CG Simulation of the cg_md stage: same start frame, System, integrator and platform."""
    positions_A, box_A = cg_md.start_frame(data, "nvt")
    model = load_model(checkpoint, device="cpu")
    system, _, _ = cg_md.build_cg_system(model, data, box_A, temperature_K, None, "nvt",
                                         {**cfg, "device": "cpu", "temperature_K": temperature_K}, "profile",
                                         seed=seed)
    integrator, dt_fs = cg_md.cg_integrator(system, temperature_K, cfg)
    integrator.setRandomNumberSeed(seed)
    plat, props = cpu_platform(threads, "CPU")
    sim = app.Simulation(cg_md.cg_topology(data, box_A), system, integrator, plat, props)
    sim.context.setPositions(units.angstrom_to_nm(positions_A) * u.nanometer)
    sim.context.setVelocitiesToTemperature(temperature_K * u.kelvin, seed)
    return sim, model, dt_fs, type(integrator).__name__


def hipnn_components(stats: dict, graph_module) -> dict:
    """Seconds per component of the profiled steps of a HIP-NN-TS Simulation (see the module docstring)."""
    from cgtransfer.kinds.hipnn_force import HippynnPotential

    callback = cumulative(stats, code_key(HippynnPotential.__call__))
    graph = cumulative(stats, code_key(type(graph_module).forward))
    groups = {"pair_search": set(), "graph_construction": set(), "network_forward": set(), "backward_forces": set()}
    for mod in graph_module.moddict.values():
        where = type(mod).__module__
        if where.startswith("hippynn.layers.pairs"):
            group = "pair_search"
        elif where.startswith("hippynn.layers.physics"):
            group = "backward_forces"
        elif where.startswith("hippynn.layers.indexers"):
            group = "graph_construction"
        else:  # the network, the energy head, the model's own nodes
            group = "network_forward"
        groups[group].add(code_key(type(mod).forward))
    seconds = {g: sum(cumulative(stats, k) for k in keys) for g, keys in groups.items()}
    # the graph's own bookkeeping (module dispatch, gradient flags) counts as graph construction
    seconds["graph_construction"] += graph - sum(seconds.values())
    seconds["transfers_and_checks"] = callback - graph
    return seconds, callback


def bare_steps(sim, n_steps: int, repeats: int, components=None) -> dict:
    """Median ms/step without the profiler and median fractions of the step with it."""
    sim.step(max(2, n_steps // 5))  # warm-up: first calls, pair list, lazy model load
    plain = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        sim.step(n_steps)
        plain.append(time.perf_counter() - t0)
    fractions = []
    for _ in range(repeats):
        stats, _ = profiled(sim.step, n_steps)
        total = cumulative_where(stats, is_integrator_step)
        parts = components(stats) if components else {}
        parts["openmm_native"] = total - sum(parts.values())
        fractions.append({k: v / total for k, v in parts.items()})
    ms = 1000.0 * statistics.median(plain) / n_steps
    fr = median_dict(fractions)
    return {"steps_per_repeat": n_steps, "ms_per_step": ms, "fractions": fr,
            "ms_per_step_by_component": {k: v * ms for k, v in fr.items()}}


def protocol_breakdown(checkpoint, dataset, cfg: dict, temperature_K: float, production_ps: float,
                       threads: int) -> dict:
    """A short run of the cg_md stage itself (NVT, no equilibration): stepping against reporters."""
    from openmm.app import DCDReporter

    from cgtransfer.md import protocol

    run_cfg = {**cfg, "equilibration_ps": 0.0, "production_ps": production_ps,
               "checkpoint_interval_ps": production_ps}
    with tempfile.TemporaryDirectory() as tmp:
        out = [Path(tmp) / name for name in ("top.pdb", "traj.dcd", "thermo.csv", "summary.json")]
        stats, _ = profiled(cg_md.run_cg_md, checkpoint, dataset, temperature_K, None, "nvt", run_cfg, *out,
                            "profile", threads)
        summary = json.loads(out[3].read_text())
    total = cumulative(stats, code_key(protocol.run_protocol))
    reports = cumulative(stats, code_key(app.Simulation._generate_reports))
    stepping = cumulative_where(stats, is_integrator_step)
    thermo = cumulative(stats, code_key(protocol.ThermoReporter.report))
    cg_file = cg_md.__file__
    extras = cumulative_where(stats, lambda k: k[0] == cg_file and k[2] in ("min_distance", "<lambda>",
                                                                           "model_energy"))
    dcd = cumulative(stats, code_key(DCDReporter.report))
    parts = {"stepping": stepping,
             "thermo_reporter_observables": extras,
             "thermo_reporter_rest": thermo - extras,
             "dcd_writer": dcd,
             "state_handover": reports - thermo - dcd,
             "checkpoints_and_rest": total - stepping - reports}
    n = int(summary["production_steps"])
    interval = round(cfg["report_interval_ps"] * 1000.0 / summary["timestep_fs"])
    return {"production_steps": n, "report_interval_steps": interval,
            "fractions": {k: v / total for k, v in parts.items()}}


# ------------------------------------------------------------------------------------------------ all-atom
def aa_simulation(pdb_path, forcefield, md: dict, threads: int, temperature_K: float):
    """The reference stage's System (create_system with the reference_md settings) at the PDB's box, NVT."""
    pdb = app.PDBFile(str(pdb_path))
    system = create_system(forcefield, pdb.topology, md["nonbonded_cutoff_nm"], md["constraints"],
                           md["ewald_error_tolerance"], md["dispersion_correction"])
    system.setDefaultPeriodicBoxVectors(*pdb.topology.getPeriodicBoxVectors())
    integrator = openmm.LangevinMiddleIntegrator(temperature_K * u.kelvin, md["friction_per_ps"] / u.picosecond,
                                                 md["timestep_fs"] * u.femtosecond)
    plat, props = cpu_platform(threads, "CPU")
    sim = app.Simulation(pdb.topology, system, integrator, plat, props)
    sim.context.setPositions(pdb.positions)
    sim.context.setVelocitiesToTemperature(temperature_K * u.kelvin, 1)
    return sim, system.getNumParticles()


# ------------------------------------------------------------------------------------------------ main
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hipnn", default="results/methanol/models/hipnn_T273/checkpoint", help="HIP-NN-TS checkpoint")
    p.add_argument("--mscg", default="results/methanol/models/mscg_T273/checkpoint", help="MS-CG checkpoint")
    p.add_argument("--data", default="results/methanol/cg_data/T273/dataset.npz", help="mapped CG dataset")
    p.add_argument("--temperature", type=float, default=273.0, help="K")
    p.add_argument("--aa-pdb", default=None, help="all-atom configuration with its box (e.g. a reference "
                                                  "topology.pdb); omitted: no all-atom profile")
    p.add_argument("--system", default="methanol", help="the config's system of --aa-pdb (its forcefield)")
    p.add_argument("--config", default=str(REPO / "config" / "config.yaml"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--hipnn-steps", type=int, default=40, help="outer steps per repeat")
    p.add_argument("--mscg-steps", type=int, default=1000)
    p.add_argument("--aa-steps", type=int, default=50)
    p.add_argument("--protocol-ps", type=float, default=None,
                   help="production of the short stage runs (default: one checkpoint interval of the config)")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "profile_step.json"))
    args = p.parse_args(argv)

    config = read_config(args.config)
    cfg = config["cg_md"]
    protocol_ps = args.protocol_ps or float(cfg.get("checkpoint_interval_ps") or 0.5)
    data = load_dataset(args.data)
    result = {"machine": {"processor": platform.processor(), "python": platform.python_version()},
              "threads": args.threads, "repeats": args.repeats, "n_beads": len(data["masses"]),
              "torch": torch.__version__, "openmm": openmm.__version__, "cgtransfer": cgtransfer.__version__,
              "profiler": "cProfile (cumulative time by function)", "cg_md": {k: cfg[k] for k in
              ("timestep_fs", "mts_inner_steps", "prior_in_openmm", "pair_skin_A", "report_interval_ps")},
              "config": _shown(args.config), "protocol_production_ps": protocol_ps, "startup_s": None}

    sim, model, dt_fs, integrator = cg_simulation(args.hipnn, data, cfg, args.temperature, args.threads)
    sim.step(1)  # loads the network in the callback
    graph_module = _evaluated_graph()
    result["hipnn"] = {"kind": model.kind, "integrator": integrator, "outer_timestep_fs": dt_fs,
                       "per": "outer step (one network evaluation)",
                       **bare_steps(sim, args.hipnn_steps, args.repeats,
                                    lambda stats: hipnn_components(stats, graph_module)[0])}
    del sim
    # MS-CG steps with cg_md.mscg_timestep_fs, as the workflow runs it (config.Study.cg_md_settings)
    mscg_cfg = dict(cfg, timestep_fs=cfg.get("mscg_timestep_fs") or cfg["timestep_fs"])
    sim, model, dt_fs, integrator = cg_simulation(args.mscg, data, mscg_cfg, args.temperature, args.threads)
    result["mscg"] = {"kind": model.kind, "integrator": integrator, "timestep_fs": dt_fs, "per": "step",
                      **bare_steps(sim, args.mscg_steps, args.repeats)}
    del sim
    result["hipnn"]["protocol"] = protocol_breakdown(args.hipnn, args.data, cfg, args.temperature, protocol_ps,
                                                     args.threads)
    result["mscg"]["protocol"] = protocol_breakdown(args.mscg, args.data, mscg_cfg, args.temperature, protocol_ps,
                                                    args.threads)
    result["hipnn"]["ms_per_ps_vs_mscg"] = (result["hipnn"]["ms_per_step"] / result["hipnn"]["outer_timestep_fs"]) \
        / (result["mscg"]["ms_per_step"] / result["mscg"]["timestep_fs"])

    if args.aa_pdb:
        md = config["reference_md"]
        system_cfg = config["systems"][args.system]
        forcefield = system_cfg["forcefield"]
        forcefield = [str(REPO / f) if (REPO / f).exists() else f for f in
                      (forcefield if isinstance(forcefield, list) else [forcefield])]
        sim, n_atoms = aa_simulation(args.aa_pdb, forcefield if len(forcefield) > 1 else forcefield[0], md,
                                     args.threads, args.temperature)
        aa = bare_steps(sim, args.aa_steps, args.repeats)
        result["all_atom"] = {"n_atoms": n_atoms, "timestep_fs": md["timestep_fs"], "per": "step",
                              "ms_per_step": aa["ms_per_step"], "steps_per_repeat": aa["steps_per_repeat"],
                              "ms_per_ps_vs_mscg": (aa["ms_per_step"] / md["timestep_fs"])
                              / (result["mscg"]["ms_per_step"] / result["mscg"]["timestep_fs"])}
    else:
        result["all_atom"] = None

    startup = REPO / "benchmarks" / "results" / "startup.json"
    if startup.exists():  # measured by benchmarks/startup.py: what a cg_md job pays before its first step
        rules = {r["rule"]: r["median_s"] for r in json.loads(startup.read_text())["rules"]}
        result["startup_s"] = {k: rules[k] for k in ("cg_md (hipnn)", "cg_md (mscg)") if k in rules}

    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 0


def _shown(path) -> str:
    """A path as recorded: relative to the repository when inside it, else its name only."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return path.name


def _evaluated_graph():
    """The hippynn GraphModule the PythonForce's callback evaluates (the callback object OpenMM holds)."""
    import gc

    from cgtransfer.kinds.hipnn_force import HippynnPotential

    found = []
    for obj in gc.get_objects():
        try:  # type(), not isinstance(): dead weak proxies are among gc's objects
            if type(obj) is HippynnPotential and obj._evaluator is not None:
                found.append(obj)
        except ReferenceError:
            continue
    if len(found) != 1:
        raise RuntimeError(f"expected one evaluated HIP-NN-TS callback, found {len(found)}")
    return found[0].evaluator.module


if __name__ == "__main__":
    raise SystemExit(main())
