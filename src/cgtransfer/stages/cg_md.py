"""Stage cg_md: one CG model at one state point, in one ensemble, with OpenMM (model as a PythonForce).

* NVT in the reference's mean box: the structural test (RDFs) and the CG pressure at the reference density
  (a frequency-0 MonteCarloBarostat's computeCurrentPressure).
* NPT with a MonteCarloBarostat at the state's pressure: the thermodynamic test (density). A force-matched
  model carries no information about the volume dependence of the PMF and is expected to drift here; the
  drift is measured and reported, not hidden.

Starts from the mapped reference frame whose volume is closest to the mean (scaled onto the mean box for NVT).
A run that diverges (non-finite energy, temperature above max_temperature_factor × target, two beads closer than
overlap_limit_A) is a result: its summary says ``stable: false`` with the phase, step and time it failed at, and
the workflow goes on.
"""

from __future__ import annotations

import time

import numpy as np
import openmm
import pandas as pd
import openmm.unit as u
from openmm import app

from cgtransfer.analysis import bonds as bonded
from cgtransfer import units
from cgtransfer.ensembles import parse_ensemble
from cgtransfer.md.forcefields import cpu_platform
from cgtransfer.io import write_csv, write_json
from cgtransfer.kinds.base import NETWORK_FORCE_GROUP, PRIOR_FORCE_GROUP, CGModel
from cgtransfer.kinds.registry import load_model
from cgtransfer.analysis.rdf import min_pair_distance
from cgtransfer.analysis.statistics import block_average
from cgtransfer.dataset import load_dataset, mean_box_A
from cgtransfer.md.checkpoint import file_identity, finish_partial, model_files
from cgtransfer.md.protocol import make_barostat, protocol_steps, run_protocol
from cgtransfer.kinds.volume_term import load_volume_term


def start_frame(data: dict, ensemble: str, density_factor: float = 1.0):
    """(positions Å, box edges Å) to start from: the frame closest to the mean volume; for NVT scaled onto the
    mean box (affine, by at most the frame's volume fluctuation), or onto the mean box shrunk to
    ``density_factor`` × the mean density (the volume term's pressure-density scan)."""
    boxes = data["cells"][:, [0, 1, 2], [0, 1, 2]].astype(np.float64)
    volumes = boxes.prod(axis=1)
    i = int(np.argmin(np.abs(volumes - volumes.mean())))
    pos = data["positions"][i].astype(np.float64)
    if ensemble == "nvt":
        box = mean_box_A(data)
        if density_factor != 1.0:
            box = box / density_factor ** (1.0 / 3.0)
        # molecules by their centres (bonded beads keep their distance), as the barostat scales them
        return bonded.scale_molecules(pos, data["masses"], data["residue_index"], box / boxes[i], boxes[i]), box
    if density_factor != 1.0:
        raise ValueError("a density factor applies to NVT runs only")
    return pos, boxes[i]


def cg_topology(data: dict, box_A) -> app.Topology:
    top = app.Topology()
    chain = top.addChain()
    residues = {}
    for name, res in zip(data["bead_names"], data["residue_index"]):
        if res not in residues:
            residues[res] = top.addResidue("CG", chain)
        top.addAtom(str(name), None, residues[res])
    atoms = list(top.atoms())
    for i, j in bonded.intramolecular_pairs(data["residue_index"]):  # CONECT records: molecules can be made whole
        top.addBond(atoms[i], atoms[j])
    edge_nm = units.angstrom_to_nm(np.asarray(box_A))
    top.setPeriodicBoxVectors(((edge_nm[0], 0, 0), (0, edge_nm[1], 0), (0, 0, edge_nm[2])) * u.nanometer)
    return top




def build_cg_system(model: CGModel, data: dict, box_A, temperature_K: float, pressure_bar: float | None,
                    ensemble: str, cfg: dict, label: str, seed: int = 1, volume_term=None):
    """The OpenMM System of CG beads for any model kind: particles with the bead masses, the model's forces
    (``model.add_to_system``), the model's volume term U_V(V) at this temperature if it has one (a
    ``CustomVolumeForce``, group 0), a CMMotionRemover and a MonteCarloBarostat (frequency 0 in NVT: it then only
    measures the pressure). Returns (system, barostat, model forces)."""
    md_range = model.md_range_A(cfg)
    if md_range >= 0.5 * float(np.min(box_A)):
        raise ValueError(f"{label}: the {model.kind} model's pair range during MD ({md_range:g} Å) must be below "
                         f"half the box edge ({0.5 * np.min(box_A):.2f} Å)")
    system = openmm.System()
    for m in data["masses"]:
        system.addParticle(float(m) * u.amu)
    edge_nm = units.angstrom_to_nm(np.asarray(box_A, dtype=float))
    box = (openmm.Vec3(edge_nm[0], 0, 0), openmm.Vec3(0, edge_nm[1], 0), openmm.Vec3(0, 0, edge_nm[2])) * u.nanometer
    system.setDefaultPeriodicBoxVectors(*box)
    forces = model.add_to_system(system, data["species"][0], cfg)
    if volume_term is not None:
        system.addForce(volume_term.openmm_force(system.getNumParticles(), temperature_K))
    system.addForce(openmm.CMMotionRemover())
    # barostat_frequency counts steps of timestep_fs: with multiple time stepping the simulation step is k times
    # longer, so the barostat attempts a move every barostat_frequency / k outer steps (the same simulated time)
    frequency = max(1, round(cfg["barostat_frequency"] / outer_step_factor(system, cfg)))
    # NVT: a frequency-0 barostat only measures; its set pressure is irrelevant (0 bar is a valid NPT target)
    barostat = make_barostat(pressure_bar, temperature_K, frequency if ensemble == "npt" else 0, seed)
    system.addForce(barostat)
    return system, barostat, forces


def _record_failure(out_topology, out_trajectory, out_thermo, out_summary, label, ensemble, message, phase):
    """Outputs of a CG run that could not start: empty trajectory and thermo, a summary that says why."""
    from pathlib import Path

    for path in (out_topology, out_trajectory):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(b"")
    write_csv(out_thermo, pd.DataFrame(columns=["step", "time_ps"]))
    summary = {"label": label, "ensemble": ensemble, "stable": False, "failure": message, "failed_phase": phase,
               "failed_at_step": None, "failed_at_ps": None}
    write_json(out_summary, summary)
    print(message, flush=True)
    return summary


def outer_step_factor(system: openmm.System, cfg: dict) -> int:
    """k when the run will use multiple time stepping (a network force in the slow group and
    ``cfg["mts_inner_steps"]`` = k > 1), else 1."""
    k = int(cfg.get("mts_inner_steps", 1))
    groups = {system.getForce(i).getForceGroup() for i in range(system.getNumForces())}
    return k if k > 1 and NETWORK_FORCE_GROUP in groups else 1


def cg_integrator(system: openmm.System, temperature_K: float, cfg: dict):
    """The Langevin integrator of a CG run and its (outer) step in fs.

    ``cfg["timestep_fs"]`` is the step of the fast forces. When the System has forces in a slow group (the
    HIP-NN-TS network with ``prior_in_openmm``) and ``cfg["mts_inner_steps"]`` = k > 1, the network is evaluated
    once per outer step of k × timestep_fs and the fast forces k times (``MTSLangevinIntegrator``, r-RESPA);
    otherwise a ``LangevinMiddleIntegrator`` at timestep_fs."""
    k = outer_step_factor(system, cfg)
    groups = {system.getForce(i).getForceGroup() for i in range(system.getNumForces())}
    friction = cfg["friction_per_ps"] / u.picosecond
    if k > 1:
        if groups - {PRIOR_FORCE_GROUP, NETWORK_FORCE_GROUP}:
            raise ValueError(f"unexpected force groups {sorted(groups)} for multiple time stepping")
        dt_fs = k * cfg["timestep_fs"]
        integrator = openmm.MTSLangevinIntegrator(temperature_K * u.kelvin, friction, dt_fs * u.femtosecond,
                                                  [(PRIOR_FORCE_GROUP, k), (NETWORK_FORCE_GROUP, 1)])
        return integrator, dt_fs
    dt_fs = cfg["timestep_fs"]
    return openmm.LangevinMiddleIntegrator(temperature_K * u.kelvin, friction, dt_fs * u.femtosecond), dt_fs


def positions_and_box_A(state: openmm.State):
    """Positions (N, 3) and orthorhombic box edges (3,) of an OpenMM State, in Å."""
    pos = units.nm_to_angstrom(state.getPositions(asNumpy=True).value_in_unit(u.nanometer))
    edges = units.nm_to_angstrom(np.diag(state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(u.nanometer)))
    return pos, edges


def run_cg_md(checkpoint_dir, dataset_npz, temperature_K: float, pressure_bar: float | None, ensemble: str,
              cfg: dict, out_topology, out_trajectory, out_thermo, out_summary, label: str, threads: int = 1,
              device: str = "cpu", seed: int = 1, volume_term_json=None) -> dict:
    ensemble_name = ensemble
    ensemble, density_factor = parse_ensemble(ensemble_name)
    if ensemble == "npt" and pressure_bar is None:
        raise ValueError(f"{label}: NPT needs a state with a pressure")
    data = load_dataset(dataset_npz)
    positions_A, box_A = start_frame(data, ensemble, density_factor)
    volume_term = None
    if volume_term_json is not None:
        volume_term, reason = load_volume_term(volume_term_json)
        if volume_term is None:  # an uncorrectable model is a result too: recorded, the study goes on
            return _record_failure(out_topology, out_trajectory, out_thermo, out_summary, label, ensemble,
                                   f"{label}: no volume term: {reason}", "volume term fit")
    model = load_model(checkpoint_dir, device=device)
    model.check_data(data, str(dataset_npz))
    system, barostat, _ = build_cg_system(model, data, box_A, temperature_K, pressure_bar, ensemble,
                                          {**cfg, "device": device, "temperature_K": temperature_K}, label, seed=seed,
                                          volume_term=volume_term)
    integrator, dt_fs = cg_integrator(system, temperature_K, cfg)
    integrator.setRandomNumberSeed(seed)
    platform, props = cpu_platform(threads, "CPU")
    topology = cg_topology(data, box_A)
    simulation = app.Simulation(topology, system, integrator, platform, props)
    simulation.context.setPositions(units.angstrom_to_nm(positions_A) * u.nanometer)
    simulation.context.setVelocitiesToTemperature(temperature_K * u.kelvin, seed)

    def min_distance(sim, state):
        return min_pair_distance(*positions_and_box_A(state), data["residue_index"])

    extra = {"min_pair_distance_A": min_distance}
    if model.reports_energy:
        # the energy-anchored U(R) along the run: its mean predicts the all-atom potential energy at this state
        species = data["species"][:1]

        def model_energy(sim, state):
            pos, edges = positions_and_box_A(state)
            pos = pos - np.floor(pos / edges) * edges
            return float(model.model_energy(species, pos[None], np.diag(edges)[None], temperature_K)[0])

        extra["model_energy_kcal_mol"] = model_energy
    if ensemble == "nvt":
        extra["pressure_bar"] = lambda sim, state: barostat.computeCurrentPressure(sim.context).value_in_unit(u.bar)
    interval, n_equil, n_prod, checkpoint_steps = protocol_steps(cfg, dt_fs)  # at least one step between reports
    t0 = time.perf_counter()
    thermo_options = {"extra": extra, "max_temperature_K": cfg["max_temperature_factor"] * temperature_K,
                      "include_positions": True, "min_pair_distance_limit_A": cfg.get("overlap_limit_A")}
    run = run_protocol(simulation, system, topology, label, n_equil, n_prod, interval, out_trajectory, out_topology,
                       thermo_options=thermo_options, enforce_periodic_box=True, keep_failed=True,
                       checkpoint_steps=checkpoint_steps,
                       fingerprint={"T": temperature_K, "P": pressure_bar, "ensemble": ensemble_name, "seed": seed,
                                    "device": device, "cfg": {k: v for k, v in cfg.items() if k != "checkpoint_interval_ps"},
                                    "inputs": file_identity(dataset_npz, volume_term_json, *model_files(checkpoint_dir))})
    frame = run.thermo
    write_csv(out_thermo, frame if len(frame) else pd.DataFrame(columns=["step", "time_ps", *extra]))
    wall_prod = run.wall_production_s
    summary = {
        "label": label,
        "seed": int(seed),
        "ensemble": ensemble,
        "stable": run.failure is None,
        **({"density_factor": density_factor} if ensemble_name != ensemble else {}),
        "temperature_target_K": temperature_K,
        "pressure_target_bar": pressure_bar,
        "timestep_fs": dt_fs,
        "integrator": type(integrator).__name__,
        "barostat_frequency_steps": int(barostat.getFrequency()),
        "inner_timestep_fs": cfg["timestep_fs"],
        "friction_per_ps": cfg["friction_per_ps"],
        "production_steps": int(n_prod),
        "model_kind": model.kind,
        "volume_term": volume_term.to_dict() if volume_term is not None else None,
    }
    if run.failure is not None:
        summary.update({"failure": str(run.failure), "failed_phase": run.failed_phase,
                        "failed_at_step": run.failed_at_step, "failed_at_ps": run.failed_at_ps,
                        "wall_s": time.perf_counter() - t0})
        write_json(out_summary, summary)
        finish_partial(out_trajectory)
        print(f"{label}: UNSTABLE, recorded as a result: {run.failure}", flush=True)
        return summary

    t_mean, t_err = block_average(frame["temperature_K"])
    rho_mean, rho_err = block_average(frame["density_g_cm3"])
    quarter = max(1, len(frame) // 4)
    summary.update({
        "n_frames": int(len(frame)),
        "mean_temperature_K": t_mean,
        "mean_temperature_stderr_K": t_err,
        "temperature_deviation_pct": 100.0 * (t_mean - temperature_K) / temperature_K,
        "mean_density_g_cm3": rho_mean,
        "mean_density_stderr_g_cm3": rho_err,
        "density_first_quarter_g_cm3": float(frame["density_g_cm3"][:quarter].mean()),
        "density_last_quarter_g_cm3": float(frame["density_g_cm3"][-quarter:].mean()),
        "min_pair_distance_A": float(frame["min_pair_distance_A"].min()),
        "ms_per_step": 1000.0 * wall_prod / max(1, n_prod),
        "ns_per_day": (n_prod * dt_fs * 1e-6) / (wall_prod / 86400.0),
        "model_calls": model.md_calls,
        "model_repeats_answered": model.md_repeats,
        "wall_s": time.perf_counter() - t0,
    })
    if "model_energy_kcal_mol" in frame:
        e_mean, e_err = block_average(frame["model_energy_kcal_mol"])
        summary["mean_model_energy_kcal_mol"] = e_mean
        summary["mean_model_energy_stderr_kcal_mol"] = e_err
    if ensemble == "nvt":
        p_mean, p_err = block_average(frame["pressure_bar"])
        summary["mean_pressure_bar"] = p_mean
        summary["mean_pressure_stderr_bar"] = p_err
    write_json(out_summary, summary)
    finish_partial(out_trajectory)
    print(f"{label}: {summary}", flush=True)
    return summary

