"""Stage reference_md: the all-atom OpenMM reference at one state point (minimise, equilibrate, produce).

Writes a DCD trajectory with a PDB topology, the force-field forces of every frame (npz, the force-matching
target) and a thermo CSV (time, T, potential energy, volume, density).
"""

from __future__ import annotations

import time

import numpy as np
import openmm
import openmm.unit as u
from openmm import app

from . import units
from .forcefields import cpu_platform, create_system
from .io import atomic_path, write_csv, write_npz
from .reporters import ForceReporter, ThermoReporter, step_checked, total_mass_amu


def steps_for(ps: float, timestep_fs: float) -> int:
    return int(round(ps * 1000.0 / timestep_fs))


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
                  threads: int = 1, seed: int = 1, label: str = "reference") -> dict:
    """Run the all-atom reference MD at (T, P) [NPT] or (T, rho) [NVT]. ``md`` holds the reference_md config."""
    if (pressure_bar is None) == (density_g_cm3 is None):
        raise ValueError(f"{label}: give exactly one of pressure_bar and density_g_cm3")
    pdb = app.PDBFile(str(box_pdb))
    topology = pdb.topology
    positions = np.asarray(pdb.getPositions(asNumpy=True).value_in_unit(u.nanometer))
    edge = topology.getPeriodicBoxVectors()[0][0].value_in_unit(u.nanometer)
    system = create_system(forcefield_xml, topology, md["nonbonded_cutoff_nm"], md["constraints"],
                           md["ewald_error_tolerance"], md["dispersion_correction"])
    if md["nonbonded_cutoff_nm"] >= 0.5 * edge * 0.95:
        raise ValueError(f"{label}: nonbonded_cutoff_nm {md['nonbonded_cutoff_nm']} is too large for a box of {edge:.2f} nm")
    if density_g_cm3 is not None:
        positions, edge = scale_to_density(topology, positions, edge, total_mass_amu(system), density_g_cm3)
    box = (openmm.Vec3(edge, 0, 0), openmm.Vec3(0, edge, 0), openmm.Vec3(0, 0, edge)) * u.nanometer
    system.setDefaultPeriodicBoxVectors(*box)
    if pressure_bar is not None:
        barostat = openmm.MonteCarloBarostat(pressure_bar * u.bar, temperature_K * u.kelvin, md["barostat_frequency"])
        barostat.setRandomNumberSeed(int(seed))  # OpenMM's default seed is random: a rerun would differ
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

    interval = steps_for(md["report_interval_ps"], dt_fs)
    n_equil = steps_for(md["equilibration_ps"], dt_fs)
    n_prod = steps_for(md["production_ps"], dt_fs)
    n_prod -= n_prod % interval
    equil_thermo = ThermoReporter(interval, system, f"{label} (equilibration)")
    simulation.reporters.append(equil_thermo)
    step_checked(simulation, n_equil, f"{label} (equilibration)", chunk=500)
    simulation.reporters.clear()
    print(f"{label}: equilibrated {md['equilibration_ps']} ps, last density "
          f"{equil_thermo.rows[-1]['density_g_cm3'] if equil_thermo.rows else float('nan'):.4f} g/cm3", flush=True)

    simulation.currentStep = 0
    simulation.context.setTime(0.0)
    t_prod = time.perf_counter()
    with atomic_path(out_trajectory, suffix=".dcd") as tmp_dcd:
        dcd = app.DCDReporter(str(tmp_dcd), interval, enforcePeriodicBox=False)
        forces = ForceReporter(interval)
        thermo = ThermoReporter(interval, system, label)
        simulation.reporters.extend([dcd, forces, thermo])
        step_checked(simulation, n_prod, label, chunk=500)
        simulation.reporters.clear()
        dcd._out.close()
    wall_prod = time.perf_counter() - t_prod

    arrays = forces.arrays()
    frame = thermo.frame()
    assert len(frame) == len(arrays["step"]), "force and thermo reports out of step"
    write_npz(out_forces, **arrays, time_ps=frame["time_ps"].to_numpy(), temperature_K=temperature_K)
    write_csv(out_thermo, frame)
    final = simulation.context.getState(getPositions=True)
    topology.setPeriodicBoxVectors(final.getPeriodicBoxVectors())
    with atomic_path(out_topology) as tmp_pdb:
        with open(tmp_pdb, "w") as fh:
            app.PDBFile.writeFile(topology, final.getPositions(), fh)
    ns_per_day = (n_prod * dt_fs * 1e-6) / (wall_prod / 86400.0)
    summary = {
        "n_frames": int(len(frame)),
        "mean_temperature_K": float(frame["temperature_K"].mean()),
        "mean_density_g_cm3": float(frame["density_g_cm3"].mean()),
        "production_ns_per_day": ns_per_day,
        "wall_s": time.perf_counter() - t0,
    }
    print(f"{label}: {summary}", flush=True)
    return summary

