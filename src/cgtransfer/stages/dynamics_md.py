"""Stage dynamics_reference: the all-atom dynamics segment of one state.

Continues the reference run from its final configuration (no minimisation: it is an equilibrated liquid), NVT at
the reference's mean density (molecules moved rigidly by their centres of mass, a change of at most the density
fluctuation), with true masses (no hydrogen mass repartitioning). Velocities are drawn at T and thermalised for
``equilibration_ps`` with the reference's own friction; then the velocities are scaled to the target kinetic
energy and the friction is lowered to the dynamics friction (``friction_per_ps``, weak: it does not set the time
scale) for the recorded segment. Writes a DCD (atoms, not
wrapped), the final configuration as PDB topology, the forces (npz, the layout rule ``map_dynamics`` maps) and a
thermo CSV (time, temperature, potential energy); the temperature of the weakly coupled segment is reported.
"""

from __future__ import annotations

import time

import numpy as np
import openmm
import openmm.unit as u
import pandas as pd
from openmm import app

from cgtransfer import units
from cgtransfer.analysis.bonds import scale_molecules
from cgtransfer.analysis.statistics import block_average
from cgtransfer.io import atomic_path, write_csv, write_npz
from cgtransfer.md.forcefields import cpu_platform, create_system
from cgtransfer.md.protocol import ForceReporter, degrees_of_freedom, steps_for, total_mass_amu

BOLTZMANN_KJ_MOL_K = 0.00831446261815324


def run_aa_segment(start_pdb, forcefield, temperature_K: float, density_g_cm3: float, md: dict, dyn: dict,
                   out_topology, out_trajectory, out_forces, out_thermo, threads: int = 1, seed: int = 1,
                   label: str = "dynamics_reference") -> dict:
    """``md``: the reference_md settings (cutoff, constraints, Ewald tolerance, dispersion correction, its
    friction for the thermalisation); ``dyn``: the dynamics section plus ``timestep_fs`` (the step to use)."""
    pdb = app.PDBFile(str(start_pdb))
    topology = pdb.topology
    positions = np.asarray(pdb.getPositions(asNumpy=True).value_in_unit(u.nanometer))
    edge0 = np.diag(topology.getPeriodicBoxVectors().value_in_unit(u.nanometer))
    system = create_system(forcefield, topology, md["nonbonded_cutoff_nm"], md["constraints"],
                           md["ewald_error_tolerance"], md["dispersion_correction"], hydrogen_mass_amu=None)
    mass = total_mass_amu(system)
    edge = units.volume_nm3_for_density(mass, density_g_cm3) ** (1.0 / 3.0)
    if md["nonbonded_cutoff_nm"] >= 0.5 * edge:
        raise ValueError(f"{label}: nonbonded_cutoff_nm {md['nonbonded_cutoff_nm']} is too large for a box of {edge:.2f} nm")
    masses = np.array([system.getParticleMass(i).value_in_unit(u.amu) for i in range(system.getNumParticles())])
    residue = np.array([a.residue.index for a in topology.atoms()])
    positions = scale_molecules(positions, masses, residue, edge / edge0, edge0)
    box = [openmm.Vec3(*(edge if i == j else 0.0 for j in range(3))) for i in range(3)]
    system.setDefaultPeriodicBoxVectors(*box)
    dt_fs = dyn["timestep_fs"]
    integrator = openmm.LangevinMiddleIntegrator(temperature_K * u.kelvin, md["friction_per_ps"] / u.picosecond,
                                                 dt_fs * u.femtosecond)
    integrator.setRandomNumberSeed(seed)
    platform, props = cpu_platform(threads, md.get("platform", "CPU"))
    simulation = app.Simulation(topology, system, integrator, platform, props)
    simulation.context.setPeriodicBoxVectors(*box)
    simulation.context.setPositions(positions * u.nanometer)
    simulation.context.setVelocitiesToTemperature(temperature_K * u.kelvin, seed)
    t0 = time.perf_counter()
    simulation.step(steps_for(dyn["equilibration_ps"], dt_fs))
    integrator.setFriction(dyn["friction_per_ps"] / u.picosecond)
    dof = degrees_of_freedom(system)
    # the weakly coupled segment keeps the energy it starts with for ~1/γ: start it at the target kinetic energy
    state = simulation.context.getState(getVelocities=True, getEnergy=True)
    t_now = 2 * state.getKineticEnergy().value_in_unit(u.kilojoule_per_mole) / (dof * BOLTZMANN_KJ_MOL_K)
    simulation.context.setVelocities(state.getVelocities(asNumpy=True) * np.sqrt(temperature_K / t_now))
    simulation.currentStep = 0
    interval = max(1, steps_for(dyn["report_interval_ps"], dt_fs))
    n_frames = steps_for(dyn["production_ps"], dt_fs) // interval
    forces = ForceReporter(interval)
    rows = []
    with atomic_path(out_trajectory, suffix=".dcd") as tmp:
        dcd = app.DCDReporter(str(tmp), interval, enforcePeriodicBox=False)
        simulation.reporters[:] = [dcd, forces]
        for f in range(n_frames):
            simulation.step(interval)
            state = simulation.context.getState(getEnergy=True)
            ke = state.getKineticEnergy().value_in_unit(u.kilojoule_per_mole)
            pe = state.getPotentialEnergy().value_in_unit(u.kilojoule_per_mole)
            if not np.isfinite(pe):
                raise RuntimeError(f"{label}: non-finite energy at frame {f}")
            rows.append({"step": simulation.currentStep, "time_ps": (f + 1) * interval * dt_fs / 1000.0,
                         "temperature_K": 2 * ke / (dof * BOLTZMANN_KJ_MOL_K), "potential_energy_kj_mol": pe})
        dcd._out.close()
        simulation.reporters.clear()
    thermo = pd.DataFrame(rows)
    arrays = forces.arrays()
    write_npz(out_forces, **arrays, time_ps=thermo["time_ps"].to_numpy(), temperature_K=temperature_K, seed=int(seed))
    write_csv(out_thermo, thermo)
    final = simulation.context.getState(getPositions=True)
    topology.setPeriodicBoxVectors(final.getPeriodicBoxVectors())
    with atomic_path(out_topology) as tmp:
        with open(tmp, "w") as fh:
            app.PDBFile.writeFile(topology, final.getPositions(), fh)
    t_mean, t_err = block_average(thermo["temperature_K"].to_numpy())
    summary = {"n_frames": n_frames, "density_g_cm3": density_g_cm3, "timestep_fs": dt_fs,
               "friction_per_ps": dyn["friction_per_ps"], "mean_temperature_K": t_mean,
               "mean_temperature_stderr_K": t_err, "wall_s": time.perf_counter() - t0}
    print(f"{label}: {summary}", flush=True)
    return summary
