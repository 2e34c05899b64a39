"""OpenMM reporters and the MD protocol shared by the all-atom reference and the CG simulations.

Built-in reporters write no forces and no derived columns, so two small ones live here: `ForceReporter`
(per-frame force-field forces, the force-matching target) and `ThermoReporter` (a tidy CSV row per frame:
time, T, potential energy, volume, density, plus optional extra observables such as the instantaneous pressure
or the closest pair distance). `ThermoReporter` also stops a diverging simulation with a message saying where.
`run_protocol` is the one equilibrate → produce → write sequence both stages run (a loop over the two phases; its
checkpoints, resume and trajectory segments are a `Checkpointer`'s, `cgtransfer.md.checkpoint`), and
`make_barostat` and `protocol_steps` the barostat and step counts both stages set up for it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import numpy as np
import openmm
import openmm.unit as u
import pandas as pd
from openmm import app

from cgtransfer import units
from cgtransfer.errors import CollapsedBox, NonFiniteModelOutput, SimulationDiverged
from cgtransfer.io import atomic_path
from cgtransfer.md.checkpoint import Checkpointer, checkpoint_steps_for


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

    def saved(self):
        """What a checkpoint keeps of this reporter (run_protocol); ``restore`` puts it back."""
        return {"forces": self.forces, "steps": self.steps}

    def restore(self, saved) -> None:
        self.forces, self.steps = list(saved["forces"]), list(saved["steps"])


class ThermoReporter:
    """One row per report: time, temperature, potential energy, volume, density and any extra observables.

    ``extra`` maps a column name to ``f(simulation, state) -> float``. ``label`` names the simulation in the
    error raised when it diverges (non-finite energy or temperature).
    """

    def __init__(self, report_interval: int, system: openmm.System, label: str,
                 extra: dict[str, Callable] | None = None, max_temperature_K: float | None = None,
                 include_positions: bool = False, min_pair_distance_limit_A: float | None = None):
        self.interval = int(report_interval)
        self.dof = degrees_of_freedom(system)
        self.mass_amu = total_mass_amu(system)
        self.label = label
        self.extra = extra or {}
        self.max_temperature_K = max_temperature_K
        self.min_pair_distance_limit_A = min_pair_distance_limit_A
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
        closest = row.get("min_pair_distance_A")
        if self.min_pair_distance_limit_A is not None and closest is not None and closest < self.min_pair_distance_limit_A:
            raise SimulationDiverged(
                f"{self.label}: diverged at step {step} (t = {row['time_ps']:.3f} ps): two particles are "
                f"{closest:.2f} Å apart, closer than the limit {self.min_pair_distance_limit_A:g} Å"
            )

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)


def is_divergence(exc: BaseException) -> bool:
    """Does an exception raised while stepping mean the simulation blew up (NaN coordinates caught by OpenMM,
    a non-finite model output, a pair search handed non-finite coordinates, a box collapsed below twice a
    cutoff under the barostat) rather than a bug, an I/O error or
    running out of memory? Only those become SimulationDiverged; everything else propagates unchanged."""
    if isinstance(exc, (SimulationDiverged, NonFiniteModelOutput, CollapsedBox, FloatingPointError)):
        return True
    text = str(exc).lower()
    if isinstance(exc, openmm.OpenMMException):
        # a box that shrank below twice a cutoff: the PythonForce's CollapsedBox, or OpenMM's own native-force check
        collapsed = "box collapsed" in text or "box size has decreased" in text
        return (collapsed or "nan" in text or "infinit" in text or "finite" in text or "constraint" in text
                or "diverged" in text)
    if isinstance(exc, ValueError):
        return "finite" in text or "nan" in text
    cause = exc.__cause__ or exc.__context__
    return cause is not None and cause is not exc and is_divergence(cause)


def step_checked(simulation, n_steps: int, label: str, chunk: int, last_good: dict | None = None) -> None:
    """simulation.step in chunks; a blow-up (see ``is_divergence``) becomes SimulationDiverged naming the
    simulation and the steps; any other error propagates as it is. ``last_good`` (a dict) receives the state
    (positions, box) and step at the start of every chunk: the last configuration known to be sane. Progress
    (percent, ns/day, ETA) is printed to the log at every tenth of the run and at least once a minute."""
    done = 0
    t0 = last_print = time.perf_counter()
    dt_ps = simulation.integrator.getStepSize().value_in_unit(u.picosecond)
    while done < n_steps:
        now = time.perf_counter()
        if done and (now - last_print > 60.0 or done * 10 // n_steps > (done - chunk) * 10 // n_steps):
            rate = done / (now - t0)  # steps per second
            print(f"{label}: {100.0 * done / n_steps:.0f} % ({done}/{n_steps} steps), "
                  f"{rate * dt_ps * 86400e-3:.2f} ns/day, ETA {(n_steps - done) / rate / 60.0:.1f} min", flush=True)
            last_print = now
        k = min(chunk, n_steps - done)
        if last_good is not None:
            last_good["state"] = simulation.context.getState(getPositions=True)
            last_good["step"] = int(simulation.currentStep)
        try:
            simulation.step(k)
        except SimulationDiverged:
            raise
        except Exception as exc:
            if not is_divergence(exc):
                raise
            t_ps = simulation.currentStep * simulation.integrator.getStepSize().value_in_unit(u.picosecond)
            raise SimulationDiverged(
                f"{label}: diverged between step {simulation.currentStep} and {simulation.currentStep + k} "
                f"(t ≈ {t_ps:.2f} ps): {exc}"
            ) from exc
        done += k


@dataclass
class ProtocolResult:
    """What ``run_protocol`` measured: the production thermo rows (those before the failure if it failed), the
    equilibration rows, the production wall time, and the failure (None when the run completed)."""

    thermo: pd.DataFrame
    equilibration: pd.DataFrame
    wall_production_s: float
    failure: SimulationDiverged | None = None
    failed_phase: str | None = None
    failed_at_ps: float | None = None
    failed_at_step: int | None = None
    extra: dict = field(default_factory=dict)


def make_barostat(pressure_bar: float | None, temperature_K: float, frequency: int,
                  seed: int) -> openmm.MonteCarloBarostat:
    """The MonteCarloBarostat of both MD stages: at ``pressure_bar`` with a move attempted every ``frequency``
    steps (NPT), or with ``frequency`` 0 one that never moves and only measures the pressure
    (``computeCurrentPressure``, NVT; a state without a pressure sets 1 bar, irrelevant then). Seeded with
    ``seed``: OpenMM's default seed is random, so a rerun would differ."""
    barostat = openmm.MonteCarloBarostat((pressure_bar if pressure_bar is not None else 1.0) * u.bar,
                                         temperature_K * u.kelvin, frequency)
    barostat.setRandomNumberSeed(int(seed))
    return barostat


class ProtocolSteps(NamedTuple):
    """The step counts of a run: report interval, equilibration, production (a whole number of report
    intervals) and checkpoint interval (None: no checkpoints)."""

    interval: int
    n_equil: int
    n_prod: int
    checkpoint: int | None


def protocol_steps(md: dict, timestep_fs: float) -> ProtocolSteps:
    """``md``'s report interval, equilibration, production and checkpoint interval (ps; ``checkpoint_interval_ps``
    optional, 0 or absent: none) in steps of ``timestep_fs``; at least one step between reports."""
    interval = max(1, steps_for(md["report_interval_ps"], timestep_fs))
    n_prod = steps_for(md["production_ps"], timestep_fs)
    checkpoint = checkpoint_steps_for(md.get("checkpoint_interval_ps", 0), interval, md["report_interval_ps"])
    n_equil = steps_for(md["equilibration_ps"], timestep_fs)
    return ProtocolSteps(interval, n_equil, n_prod - n_prod % interval, checkpoint)


def run_protocol(simulation, system: openmm.System, topology: app.Topology, label: str, n_equil: int, n_prod: int,
                 interval: int, out_trajectory, out_topology, chunk: int | None = None, thermo_options: dict | None = None,
                 production_reporters: tuple = (), enforce_periodic_box: bool = False,
                 keep_failed: bool = False, checkpoint_steps: int | None = None,
                 fingerprint: dict | None = None) -> ProtocolResult:
    """The MD protocol of both stages: equilibrate ``n_equil`` steps, restart the clock, produce ``n_prod`` steps
    writing a DCD every ``interval`` steps and a thermo row (``ThermoReporter(**thermo_options)``) beside every
    frame, then write the final configuration as a PDB topology. Outputs are written atomically.

    A diverging run raises ``SimulationDiverged`` naming the phase, step and time; with ``keep_failed`` it is
    returned instead (``result.failure``): the trajectory then holds the frames produced before the failure and
    the topology the configuration the run started from, so a failed run is a result, not a crash.

    Checkpoints (``checkpoint_steps``, a multiple of ``interval``; see ``cgtransfer.md.checkpoint``): every
    ``checkpoint_steps`` steps the run commits, in ``partial_directory(out_trajectory)``, the DCD segment produced
    since the last commit, an OpenMM checkpoint and the reporters' rows, then a progress record (the commit
    point). A run that finds a progress record resumes from it: a job killed at any moment and rerun continues
    from its last commit instead of step 0, discards what came after it, and ends with the frames, thermo rows
    and reporter arrays of an uninterrupted run: the same steps, none missing or twice; those before the commit
    bit-identical, those after it a continuation of the same state (not bit-identical: an OpenMM CPU checkpoint
    does not restore the barostat's random-number state, and the restored context rebuilds its neighbour list at
    other steps, 1e-5 nm after 100 steps without a barostat). ``production_reporters`` must offer
    ``saved()``/``restore()`` to be checkpointed. ``fingerprint`` (JSON-able: the run's settings and inputs) is
    stored with the checkpoint; a checkpoint of a run with another fingerprint (the job's parameters or inputs
    changed since) is discarded, never resumed."""
    thermo_options = thermo_options or {}
    chunk = chunk or interval
    last_good: dict = {}
    start = simulation.context.getState(getPositions=True)
    reporters = {"equilibration": ThermoReporter(interval, system, f"{label} (equilibration)", **thermo_options),
                 "production": ThermoReporter(interval, system, label, **thermo_options)}
    tags = {"equilibration": f"{label} (equilibration)", "production": label}
    result = ProtocolResult(pd.DataFrame(), pd.DataFrame(), 0.0)
    if checkpoint_steps is not None and (checkpoint_steps <= 0 or checkpoint_steps % interval):
        raise ValueError(f"{label}: checkpoint_steps {checkpoint_steps} must be a positive multiple of the report "
                         f"interval {interval}")
    checkpoints = Checkpointer(simulation, out_trajectory, label, checkpoint_steps,
                               {"label": label, "n_equil": n_equil, "n_prod": n_prod, "interval": interval,
                                "checkpoint_steps": checkpoint_steps, **(fingerprint or {})},
                               reporters, production_reporters)
    checkpoints.resume()
    phase = checkpoints.phase
    t_prod = time.perf_counter()
    try:
        for phase, n_steps in (("equilibration", n_equil), ("production", n_prod)):
            if checkpoints.passed(phase):
                continue
            if phase != checkpoints.phase:  # equilibration done: production starts at step 0, time 0
                checkpoints.enter(phase)
                simulation.currentStep = 0
                simulation.context.setTime(0.0)
            t_prod = time.perf_counter()
            while checkpoints.remaining(n_steps) > 0:
                k = checkpoints.next_stretch(n_steps)
                if phase == "production":
                    dcd = app.DCDReporter(str(checkpoints.open_segment()), interval,
                                          enforcePeriodicBox=enforce_periodic_box)
                    simulation.reporters[:] = [dcd, reporters[phase], *production_reporters]
                else:
                    simulation.reporters[:] = [reporters[phase]]
                step_checked(simulation, k, tags[phase], chunk, last_good)
                _close_dcd_reporters(simulation)
                checkpoints.close_segment()
                if phase == "production":
                    now = time.perf_counter()
                    checkpoints.advance(k, now - t_prod)
                    t_prod = now
                else:
                    checkpoints.advance(k)
                checkpoints.commit()
    except SimulationDiverged as exc:
        exc.phase, exc.last_good = phase, last_good
        _close_dcd_reporters(simulation)
        if not keep_failed:
            raise
        result.failure, result.failed_phase = exc, phase
        result.failed_at_step = int(simulation.currentStep)
        result.failed_at_ps = float(simulation.currentStep * simulation.integrator.getStepSize().value_in_unit(u.picosecond))
        if phase == "production":
            checkpoints.add_wall(time.perf_counter() - t_prod)
        checkpoints.close_segment()  # the frames before the failure are kept
    finally:
        _close_dcd_reporters(simulation)
        simulation.reporters.clear()
    result.wall_production_s = checkpoints.wall_production_s
    checkpoints.write_trajectory(out_trajectory)
    result.thermo, result.equilibration = reporters["production"].frame(), reporters["equilibration"].frame()
    final = start if result.failure is not None else simulation.context.getState(getPositions=True,
                                                                                 enforcePeriodicBox=enforce_periodic_box)
    topology.setPeriodicBoxVectors(final.getPeriodicBoxVectors())
    with atomic_path(out_topology) as tmp_pdb:
        with open(tmp_pdb, "w") as fh:
            app.PDBFile.writeFile(topology, final.getPositions(), fh)
    return result


def _close_dcd_reporters(simulation) -> None:
    for r in simulation.reporters:
        if isinstance(r, app.DCDReporter) and getattr(r, "_out", None) is not None and not r._out.closed:
            r._out.close()


def steps_for(ps: float, timestep_fs: float) -> int:
    return int(round(ps * 1000.0 / timestep_fs))
