"""Stage reference_md: the all-atom OpenMM reference at one state point (minimise, equilibrate, produce).

Writes a DCD trajectory with a PDB topology, the force-field forces of every frame (npz, the force-matching
target) and a thermo CSV (time, T, potential energy, volume, density, pressure from the barostat's
computeCurrentPressure: NPT its own barostat, NVT one at frequency 0 that only measures).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import openmm
import openmm.unit as u
from openmm import app

from cgtransfer import units
from cgtransfer.md.forcefields import cpu_platform, create_system
from cgtransfer.io import atomic_path, write_csv, write_npz
from cgtransfer.errors import SimulationDiverged
from cgtransfer.md.checkpoint import file_identity, finish_partial
from cgtransfer.md.protocol import ForceReporter, make_barostat, protocol_steps, run_protocol, total_mass_amu


def forcefield_list(forcefield_xml) -> list:
    """One force-field entry (a path or a name OpenMM ships) or a list of them, as a list."""
    return [forcefield_xml] if isinstance(forcefield_xml, (str, Path)) else list(forcefield_xml)




def scale_to_density(topology: app.Topology, positions_nm: np.ndarray, box_edge_nm: float, system_mass_amu: float,
                     density_g_cm3: float):
    """Move each molecule's centre rigidly so that the cubic box holds ``density_g_cm3`` (for NVT states)."""
    edge = units.volume_nm3_for_density(system_mass_amu, density_g_cm3) ** (1.0 / 3.0)
    factor = edge / box_edge_nm
    out = positions_nm.copy()
    for residue in topology.residues():
        idx = [a.index for a in residue.atoms()]
        centre = positions_nm[idx].mean(axis=0)
        out[idx] += centre * (factor - 1.0)
    return out, edge


def run_reference(box_pdb, forcefield_xml, temperature_K: float, pressure_bar: float | None,
                  density_g_cm3: float | None, md: dict, out_topology, out_trajectory, out_forces, out_thermo,
                  threads: int = 1, seed: int = 1, label: str = "reference", failure_pdb=None) -> dict:
    """Run the all-atom reference MD at (T, P) [NPT] or (T, rho) [NVT]. ``md`` holds the reference_md config.
    A run that blows up raises SimulationDiverged naming ``label`` (system/state), phase and step; its last
    sane configuration goes to ``failure_pdb`` (beside the rule's log) when given."""
    if (pressure_bar is None) == (density_g_cm3 is None):
        raise ValueError(f"{label}: give exactly one of pressure_bar and density_g_cm3")
    pdb = app.PDBFile(str(box_pdb))
    topology = pdb.topology
    positions = np.asarray(pdb.getPositions(asNumpy=True).value_in_unit(u.nanometer))
    edge = topology.getPeriodicBoxVectors()[0][0].value_in_unit(u.nanometer)
    system = create_system(forcefield_xml, topology, md["nonbonded_cutoff_nm"], md["constraints"],
                           md["ewald_error_tolerance"], md["dispersion_correction"],
                           hydrogen_mass_amu=md.get("hydrogen_mass_amu"))
    if md["nonbonded_cutoff_nm"] >= 0.5 * edge * 0.95:
        raise ValueError(f"{label}: nonbonded_cutoff_nm {md['nonbonded_cutoff_nm']} is too large for a box of {edge:.2f} nm")
    if density_g_cm3 is not None:
        positions, edge = scale_to_density(topology, positions, edge, total_mass_amu(system), density_g_cm3)
    box = (openmm.Vec3(edge, 0, 0), openmm.Vec3(0, edge, 0), openmm.Vec3(0, 0, edge)) * u.nanometer
    system.setDefaultPeriodicBoxVectors(*box)
    # NPT: the barostat; NVT: a frequency-0 barostat that only measures the pressure (computeCurrentPressure)
    barostat = make_barostat(pressure_bar, temperature_K, md["barostat_frequency"] if pressure_bar is not None else 0,
                             seed)
    system.addForce(barostat)
    dt_fs = md["timestep_fs"]
    integrator = openmm.LangevinMiddleIntegrator(temperature_K * u.kelvin, md["friction_per_ps"] / u.picosecond,
                                                 dt_fs * u.femtosecond)
    integrator.setRandomNumberSeed(seed)
    platform, props = cpu_platform(threads, md.get("platform", "CPU"))
    simulation = app.Simulation(topology, system, integrator, platform, props)
    simulation.context.setPeriodicBoxVectors(*box)
    simulation.context.setPositions(positions * u.nanometer)

    t0 = time.perf_counter()
    e_start = simulation.context.getState(getEnergy=True).getPotentialEnergy()
    simulation.minimizeEnergy(maxIterations=md["minimize_max_iterations"])
    e_min = simulation.context.getState(getEnergy=True).getPotentialEnergy()
    print(f"{label}: minimised {e_start} -> {e_min}", flush=True)
    simulation.context.setVelocitiesToTemperature(temperature_K * u.kelvin, seed)

    interval, n_equil, n_prod, checkpoint_steps = protocol_steps(md, dt_fs)
    forces = ForceReporter(interval)
    pressure = {"pressure_bar": lambda sim, state: barostat.computeCurrentPressure(sim.context).value_in_unit(u.bar)}
    try:
        run = run_protocol(simulation, system, topology, label, n_equil, n_prod, interval, out_trajectory,
                           out_topology, chunk=500, thermo_options={"extra": pressure}, production_reporters=(forces,),
                           checkpoint_steps=checkpoint_steps,
                           fingerprint={"T": temperature_K, "P": pressure_bar, "rho": density_g_cm3, "seed": seed,
                                        "md": {k: v for k, v in md.items() if k != "checkpoint_interval_ps"},
                                        "inputs": file_identity(box_pdb, *[f for f in forcefield_list(forcefield_xml)
                                                                      if Path(f).is_file()])})
    except SimulationDiverged as exc:
        # an exploding all-atom reference is a setup error (overlapping packing, bad force field, too long a
        # step): stop, and keep the last sane configuration for inspection beside the log, not in the outputs
        note = ""
        good = getattr(exc, "last_good", {})
        if failure_pdb is not None and "state" in good:
            topology.setPeriodicBoxVectors(good["state"].getPeriodicBoxVectors())
            with atomic_path(failure_pdb) as tmp:
                with open(tmp, "w") as fh:
                    app.PDBFile.writeFile(topology, good["state"].getPositions(), fh)
            note = (f"; the last configuration before the failure ({getattr(exc, 'phase', '?')}, step "
                    f"{good['step']}) is in {failure_pdb}")
        raise SimulationDiverged(f"{exc}{note}") from exc
    if len(run.equilibration):
        print(f"{label}: equilibrated {md['equilibration_ps']} ps, last density "
              f"{run.equilibration['density_g_cm3'].iloc[-1]:.4f} g/cm3", flush=True)
    wall_prod = run.wall_production_s
    arrays = forces.arrays()
    frame = run.thermo
    assert len(frame) == len(arrays["step"]), "force and thermo reports out of step"
    write_npz(out_forces, **arrays, time_ps=frame["time_ps"].to_numpy(), temperature_K=temperature_K, seed=int(seed))
    write_csv(out_thermo, frame)
    finish_partial(out_trajectory)  # every output written: the checkpoints go
    ns_per_day = (n_prod * dt_fs * 1e-6) / (wall_prod / 86400.0)
    summary = {
        "n_frames": int(len(frame)),
        "seed": int(seed),
        "mean_temperature_K": float(frame["temperature_K"].mean()),
        "mean_density_g_cm3": float(frame["density_g_cm3"].mean()),
        "mean_pressure_bar": float(frame["pressure_bar"].mean()),
        "production_ns_per_day": ns_per_day,
        "wall_s": time.perf_counter() - t0,
    }
    print(f"{label}: {summary}", flush=True)
    return summary

