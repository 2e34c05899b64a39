"""OpenMM reporters and the MD protocol shared by the all-atom reference and the CG simulations.

Built-in reporters write no forces and no derived columns, so two small ones live here: `ForceReporter`
(per-frame force-field forces, the force-matching target) and `ThermoReporter` (a tidy CSV row per frame:
time, T, potential energy, volume, density, plus optional extra observables such as the instantaneous pressure
or the closest pair distance). `ThermoReporter` also stops a diverging simulation with a message saying where. `run_protocol` is the one
equilibrate → produce → write sequence both stages run.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import openmm
import openmm.unit as u
import pandas as pd
from openmm import app

from cgtransfer import units
from cgtransfer.errors import CollapsedBox, NonFiniteModelOutput, SimulationDiverged
from cgtransfer.io import atomic_path


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
        return collapsed or "nan" in text or "infinit" in text or "finite" in text or "constraint" in text
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


def _dcd_header_length(path) -> int:
    """Bytes before the first frame of a DCD (CHARMM layout as OpenMM writes it: 92-byte first block, the
    title block, the atom-count block)."""
    import struct

    with open(path, "rb") as fh:
        fh.seek(96)
        n_titles = struct.unpack("<i", fh.read(4))[0]
    return 92 + 4 + 4 + 80 * n_titles + 4 + 12


def concatenate_dcd(segments: list[Path], out_path) -> int:
    """Join DCD segments of the same system into one DCD, byte for byte (no coordinate is rewritten): the first
    segment's header with the total frame count, then every segment's frames. Returns the frame count."""
    import struct

    frames, n_total, frame_bytes = [], 0, None
    for seg in segments:
        header = _dcd_header_length(seg)
        with open(seg, "rb") as fh:
            fh.seek(8)
            n = struct.unpack("<i", fh.read(4))[0]
            fh.seek(header)
            data = fh.read()
        if n and len(data) % n:
            raise ValueError(f"{seg}: {len(data)} bytes of frames do not divide into {n} frames")
        size = len(data) // n if n else None
        if frame_bytes is not None and size is not None and size != frame_bytes:
            raise ValueError(f"{seg}: frames of {size} bytes, the first segment's are {frame_bytes}")
        frame_bytes = frame_bytes or size
        frames.append(data)
        n_total += n
    with open(segments[0], "rb") as fh:
        head = bytearray(fh.read(_dcd_header_length(segments[0])))
    istart, interval = struct.unpack("<ii", bytes(head[12:20]))
    head[8:12] = struct.pack("<i", n_total)
    head[20:24] = struct.pack("<i", istart + max(n_total - 1, 0) * interval)
    with atomic_path(out_path, suffix=".dcd") as tmp:
        with open(tmp, "wb") as fh:
            fh.write(bytes(head))
            for data in frames:
                fh.write(data)
    return n_total


def checkpoint_steps_for(checkpoint_interval_ps: float, interval_steps: int, report_interval_ps: float) -> int | None:
    """A checkpoint interval in simulated ps → steps, a whole number of report intervals (0 → no checkpoints)."""
    if not checkpoint_interval_ps:
        return None
    return max(1, round(checkpoint_interval_ps / report_interval_ps)) * interval_steps


def file_identity(*paths) -> list:
    """(path, size, mtime) of input files (None entries skipped): what a checkpoint's fingerprint keeps of them."""
    out = []
    for p in paths:
        if p is None:
            continue
        st = Path(p).stat()
        out.append([str(p), st.st_size, st.st_mtime_ns])
    return out


def model_files(checkpoint_dir) -> list:
    return sorted(str(p) for p in Path(checkpoint_dir).rglob("*") if p.is_file())


def partial_directory(out_trajectory) -> Path:
    """Where a checkpointed run keeps its state until it completes: a hidden sibling of its trajectory, never a
    declared output (Snakemake cannot mistake it for a finished result), removed when the outputs are written."""
    out = Path(out_trajectory)
    return out.with_name(f".{out.stem}.partial")


def _write_atomic_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)


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

    Checkpoints (``checkpoint_steps``, a multiple of ``interval``): every ``checkpoint_steps`` steps the run
    commits, in ``partial_directory(out_trajectory)``, the DCD segment produced since the last commit, an OpenMM
    checkpoint (positions, velocities, box, step, random-number state) and the reporters' rows, then a
    progress record (the commit point). A run that finds a progress record resumes from it: a job killed at any
    moment and rerun continues from its last commit instead of step 0, discards what came after it, and ends
    with the frames, thermo rows and reporter arrays of an uninterrupted run: the same steps, none missing or
    twice; those before the commit bit-identical, those after it a continuation of the same state (not
    bit-identical: an OpenMM CPU checkpoint does not restore the barostat's random-number state, and the
    restored context rebuilds its neighbour list at other steps, 1e-5 nm after 100 steps without a barostat). ``production_reporters`` must offer ``saved()``/``restore()`` to be checkpointed. ``fingerprint``
    (JSON-able: the run's settings and inputs) is stored with the checkpoint; a checkpoint of a run with another
    fingerprint (the job's parameters or inputs changed since) is discarded, never resumed."""
    import json
    import pickle

    thermo_options = thermo_options or {}
    chunk = chunk or interval
    last_good: dict = {}
    start = simulation.context.getState(getPositions=True)
    equil = ThermoReporter(interval, system, f"{label} (equilibration)", **thermo_options)
    prod = ThermoReporter(interval, system, label, **thermo_options)
    result = ProtocolResult(pd.DataFrame(), pd.DataFrame(), 0.0)
    partial = partial_directory(out_trajectory)
    if checkpoint_steps is not None and (checkpoint_steps <= 0 or checkpoint_steps % interval):
        raise ValueError(f"{label}: checkpoint_steps {checkpoint_steps} must be a positive multiple of the report "
                         f"interval {interval}")
    identity = json.loads(json.dumps({"label": label, "n_equil": n_equil, "n_prod": n_prod, "interval": interval,
                                      "checkpoint_steps": checkpoint_steps, **(fingerprint or {})}, default=str))
    progress = {"phase": "equilibration", "done": 0, "segments": 0, "wall_production_s": 0.0, "identity": identity}
    stored = None
    if checkpoint_steps and (partial / "progress.json").is_file():
        stored = json.loads((partial / "progress.json").read_text())
        if stored.get("identity") != identity:
            print(f"{label}: discarding a checkpoint of a run with other settings or inputs", flush=True)
            stored = None
    if stored is not None:
        progress = stored
        simulation.loadCheckpoint(str(partial / "checkpoint.chk"))
        saved = pickle.loads((partial / "reporters.pkl").read_bytes())
        equil.rows, prod.rows = saved["equilibration"], saved["production"]
        for r, state in zip(production_reporters, saved["extra"]):
            r.restore(state)
        print(f"{label}: resumed from the checkpoint at step {simulation.currentStep} of the {progress['phase']} "
              f"({progress['done']} steps of it done, {progress['segments']} trajectory segment(s) kept)", flush=True)
    else:
        shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True, exist_ok=True)
    for stale in partial.iterdir():  # anything written after the last commit
        m = re.fullmatch(r"segment(\d+)\.dcd", stale.name)
        if (m and int(m.group(1)) >= progress["segments"]) or ".tmp" in stale.name:
            stale.unlink()

    def commit():
        if not checkpoint_steps:
            return
        _write_atomic_bytes(partial / "checkpoint.chk", simulation.context.createCheckpoint())
        _write_atomic_bytes(partial / "reporters.pkl", pickle.dumps(
            {"equilibration": equil.rows, "production": prod.rows, "extra": [r.saved() for r in production_reporters]}))
        _write_atomic_bytes(partial / "progress.json", json.dumps(progress).encode())

    segment_dcd = None
    phase = progress["phase"]
    t_prod = time.perf_counter()
    try:
        for phase, n_steps in (("equilibration", n_equil), ("production", n_prod)):
            if phase == "equilibration" and progress["phase"] == "production":
                continue
            if phase == "production" and progress["phase"] == "equilibration":
                progress.update(phase="production", done=0)
                simulation.currentStep = 0
                simulation.context.setTime(0.0)
            t_prod = time.perf_counter()
            while progress["done"] < n_steps:
                k = min(checkpoint_steps or n_steps, n_steps - progress["done"])
                if phase == "production":
                    segment_dcd = partial / f"segment{progress['segments']:05d}.tmp.dcd"
                    dcd = app.DCDReporter(str(segment_dcd), interval, enforcePeriodicBox=enforce_periodic_box)
                    simulation.reporters[:] = [dcd, prod, *production_reporters]
                    tag = label
                else:
                    simulation.reporters[:] = [equil]
                    tag = f"{label} (equilibration)"
                step_checked(simulation, k, tag, chunk, last_good)
                _close_dcd_reporters(simulation)
                if phase == "production":
                    if segment_dcd.exists():
                        os.replace(segment_dcd, partial / f"segment{progress['segments']:05d}.dcd")
                        progress["segments"] += 1
                    segment_dcd = None
                progress["done"] += k
                if phase == "production":
                    progress["wall_production_s"] += time.perf_counter() - t_prod
                    t_prod = time.perf_counter()
                commit()
    except SimulationDiverged as exc:
        exc.phase, exc.last_good = phase, last_good
        _close_dcd_reporters(simulation)
        if not keep_failed:
            raise
        result.failure, result.failed_phase = exc, phase
        result.failed_at_step = int(simulation.currentStep)
        result.failed_at_ps = float(simulation.currentStep * simulation.integrator.getStepSize().value_in_unit(u.picosecond))
        if phase == "production":
            progress["wall_production_s"] += time.perf_counter() - t_prod
        if segment_dcd is not None and segment_dcd.exists():  # the frames before the failure are kept
            os.replace(segment_dcd, partial / f"segment{progress['segments']:05d}.dcd")
            progress["segments"] += 1
    finally:
        _close_dcd_reporters(simulation)
        simulation.reporters.clear()
    result.wall_production_s = progress["wall_production_s"]
    segments = [partial / f"segment{i:05d}.dcd" for i in range(progress["segments"])]
    segments = [seg for seg in segments if seg.stat().st_size > 100 and seg.stat().st_size > _dcd_header_length(seg)]
    if segments:
        concatenate_dcd(segments, out_trajectory)
    else:
        with atomic_path(out_trajectory, suffix=".dcd") as tmp:
            Path(tmp).touch()
    result.thermo, result.equilibration = prod.frame(), equil.frame()
    final = start if result.failure is not None else simulation.context.getState(getPositions=True,
                                                                                 enforcePeriodicBox=enforce_periodic_box)
    topology.setPeriodicBoxVectors(final.getPeriodicBoxVectors())
    with atomic_path(out_topology) as tmp_pdb:
        with open(tmp_pdb, "w") as fh:
            app.PDBFile.writeFile(topology, final.getPositions(), fh)
    return result


def finish_partial(out_trajectory) -> None:
    """Remove a run's checkpoint directory once all its outputs are written (the caller's last step)."""
    shutil.rmtree(partial_directory(out_trajectory), ignore_errors=True)


def _close_dcd_reporters(simulation) -> None:
    for r in simulation.reporters:
        if isinstance(r, app.DCDReporter) and getattr(r, "_out", None) is not None and not r._out.closed:
            r._out.close()


def steps_for(ps: float, timestep_fs: float) -> int:
    return int(round(ps * 1000.0 / timestep_fs))
