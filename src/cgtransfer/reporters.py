"""OpenMM reporters shared by the all-atom reference and the CG simulations.

Built-in reporters write no forces and no derived columns, so two small ones live here: `ForceReporter`
(per-frame force-field forces, the force-matching target) and `ThermoReporter` (a tidy CSV row per frame:
time, T, potential energy, volume, density, plus optional extra observables such as the instantaneous pressure
or the closest pair distance). `ThermoReporter` also stops a diverging simulation with a message saying where.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import openmm
import openmm.unit as u
import pandas as pd

from . import units


class SimulationDiverged(RuntimeError):
    """A simulation produced a non-finite energy, temperature or coordinate."""


def degrees_of_freedom(system: openmm.System) -> int:
    dof = sum(3 for i in range(system.getNumParticles()) if system.getParticleMass(i) > 0 * u.amu)
    dof -= system.getNumConstraints()
    if any(isinstance(system.getForce(i), openmm.CMMotionRemover) for i in range(system.getNumForces())):
        dof -= 3
    return dof


def total_mass_amu(system: openmm.System) -> float:
    return float(sum(system.getParticleMass(i).value_in_unit(u.amu) for i in range(system.getNumParticles())))


class ForceReporter:
    """Keep positions' companion: the force-field forces (kJ/mol/nm, float32) at every report step."""

    def __init__(self, report_interval: int):
        self.interval = int(report_interval)
        self.forces: list[np.ndarray] = []
        self.steps: list[int] = []

    def describeNextReport(self, simulation):
        steps = self.interval - simulation.currentStep % self.interval
        return {"steps": steps, "periodic": None, "include": ["forces"]}

    def report(self, simulation, state):
        self.forces.append(state.getForces(asNumpy=True).value_in_unit(u.kilojoule_per_mole / u.nanometer).astype(np.float32))
        self.steps.append(simulation.currentStep)

    def arrays(self) -> dict:
        return {"forces_kj_mol_nm": np.stack(self.forces), "step": np.asarray(self.steps, dtype=np.int64)}


class ThermoReporter:
    """One row per report: time, temperature, potential energy, volume, density and any extra observables.

    ``extra`` maps a column name to ``f(simulation, state) -> float``. ``label`` names the simulation in the
    error raised when it diverges (non-finite energy or temperature).
    """

    def __init__(self, report_interval: int, system: openmm.System, label: str,
                 extra: dict[str, Callable] | None = None, max_temperature_K: float | None = None,
                 include_positions: bool = False):
        self.interval = int(report_interval)
        self.dof = degrees_of_freedom(system)
        self.mass_amu = total_mass_amu(system)
        self.label = label
        self.extra = extra or {}
        self.max_temperature_K = max_temperature_K
        self.include = ["energy", "positions"] if include_positions else ["energy"]
        self.rows: list[dict] = []

    def describeNextReport(self, simulation):
        steps = self.interval - simulation.currentStep % self.interval
        return {"steps": steps, "periodic": None, "include": self.include}

    def report(self, simulation, state):
        step = simulation.currentStep
        pe = state.getPotentialEnergy().value_in_unit(u.kilojoule_per_mole)
        ke = state.getKineticEnergy().value_in_unit(u.kilojoule_per_mole)
        temperature = 2.0 * ke / (self.dof * units.KB_KJ_MOL_K)
        volume = state.getPeriodicBoxVolume().value_in_unit(u.nanometer**3)
        row = {
            "step": step,
            "time_ps": state.getTime().value_in_unit(u.picosecond),
            "temperature_K": temperature,
            "potential_energy_kJ_mol": pe,
            "volume_nm3": volume,
            "density_g_cm3": float(units.density_g_cm3(self.mass_amu, volume)),
        }
        if not (math.isfinite(pe) and math.isfinite(temperature)):
            raise SimulationDiverged(
                f"{self.label}: diverged at step {step} (t = {row['time_ps']:.3f} ps): potential energy {pe}, "
                f"temperature {temperature}"
            )
        if self.max_temperature_K is not None and temperature > self.max_temperature_K:
            raise SimulationDiverged(
                f"{self.label}: diverged at step {step} (t = {row['time_ps']:.3f} ps): temperature {temperature:.1f} K "
                f"exceeds the limit {self.max_temperature_K:.1f} K"
            )
        for name, fn in self.extra.items():
            row[name] = float(fn(simulation, state))
        self.rows.append(row)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)


def step_checked(simulation, n_steps: int, label: str, chunk: int) -> None:
    """simulation.step in chunks; a failure (a NaN caught by OpenMM, or an error raised by a Python force)
    becomes SimulationDiverged naming the simulation and the steps."""
    done = 0
    while done < n_steps:
        k = min(chunk, n_steps - done)
        try:
            simulation.step(k)
        except SimulationDiverged:
            raise
        except Exception as exc:
            t_ps = simulation.currentStep * simulation.integrator.getStepSize().value_in_unit(u.picosecond)
            raise SimulationDiverged(
                f"{label}: diverged between step {simulation.currentStep} and {simulation.currentStep + k} "
                f"(t ≈ {t_ps:.2f} ps): {exc}"
            ) from exc
        done += k
