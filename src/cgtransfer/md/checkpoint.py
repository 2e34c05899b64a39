"""Checkpoints of an MD run (``run_protocol``): where a run keeps its state until it completes, how it commits and
resumes, and how its trajectory segments become one DCD.

A ``Checkpointer`` owns a run's partial directory (a hidden sibling of its trajectory, never a declared output):
the DCD segments written so far (``segmentNNNNN.dcd``, one per committed stretch of production), and at every
commit an OpenMM checkpoint (``checkpoint.chk``: positions, velocities, box, step, random-number state), the
reporters' rows (``reporters.pkl``) and last the progress record (``progress.json``, the commit point: phase,
steps done in it, segments kept, production wall time, the run's identity). Each file is replaced atomically, so
a job killed at any moment leaves the last commit intact; what it wrote after the commit is stale and removed on
resume. The MD protocol itself (phases, reporters, stepping) stays in ``cgtransfer.md.protocol``.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import struct
from pathlib import Path

from cgtransfer.io import atomic_path

PHASES = ("equilibration", "production")


def _dcd_header_length(path) -> int:
    """Bytes before the first frame of a DCD (CHARMM layout as OpenMM writes it: 92-byte first block, the
    title block, the atom-count block)."""
    with open(path, "rb") as fh:
        fh.seek(96)
        n_titles = struct.unpack("<i", fh.read(4))[0]
    return 92 + 4 + 4 + 80 * n_titles + 4 + 12


def concatenate_dcd(segments: list[Path], out_path) -> int:
    """Join DCD segments of the same system into one DCD, byte for byte (no coordinate is rewritten): the first
    segment's header with the total frame count, then every segment's frames. Returns the frame count."""
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


def finish_partial(out_trajectory) -> None:
    """Remove a run's checkpoint directory once all its outputs are written (the caller's last step)."""
    shutil.rmtree(partial_directory(out_trajectory), ignore_errors=True)


def _write_atomic_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)


class Checkpointer:
    """The checkpoints and trajectory segments of one run.

    ``every``: steps between commits (None: no checkpoints; the trajectory still goes through segments in the
    partial directory). ``identity`` (JSON-able: the run's settings and inputs) is stored with every commit; a
    checkpoint of another identity is discarded, never resumed. ``rows`` maps a phase name to the reporter
    whose ``rows`` list that phase fills; ``extra`` are reporters with ``saved()``/``restore()``.

    ``progress`` is the run's position: ``phase``, ``done`` (steps of that phase done), ``segments`` (DCD
    segments kept) and ``wall_production_s``; ``commit`` stores it with the simulation's state."""

    def __init__(self, simulation, out_trajectory, label: str, every: int | None, identity: dict, rows: dict,
                 extra: tuple = ()):
        self.simulation = simulation
        self.partial = partial_directory(out_trajectory)
        self.label = label
        self.every = every
        self.rows = rows
        self.extra = extra
        self.identity = json.loads(json.dumps(identity, default=str))
        self.progress = {"phase": PHASES[0], "done": 0, "segments": 0, "wall_production_s": 0.0,
                         "identity": self.identity}
        self._open_segment: Path | None = None

    @property
    def phase(self) -> str:
        return self.progress["phase"]

    @property
    def wall_production_s(self) -> float:
        return self.progress["wall_production_s"]

    def resume(self) -> bool:
        """Continue from the last commit if there is one of this run (the simulation's state, the reporters' rows,
        the progress); otherwise start an empty partial directory. Either way remove what was written after the
        last commit. True when the run resumed."""
        stored = None
        if self.every and (self.partial / "progress.json").is_file():
            stored = json.loads((self.partial / "progress.json").read_text())
            if stored.get("identity") != self.identity:
                print(f"{self.label}: discarding a checkpoint of a run with other settings or inputs", flush=True)
                stored = None
        if stored is not None:
            self.progress = stored
            self.simulation.loadCheckpoint(str(self.partial / "checkpoint.chk"))
            saved = pickle.loads((self.partial / "reporters.pkl").read_bytes())
            for phase, reporter in self.rows.items():
                reporter.rows = saved[phase]
            for r, state in zip(self.extra, saved["extra"]):
                r.restore(state)
            print(f"{self.label}: resumed from the checkpoint at step {self.simulation.currentStep} of the "
                  f"{self.phase} ({self.progress['done']} steps of it done, {self.progress['segments']} trajectory "
                  f"segment(s) kept)", flush=True)
        else:
            shutil.rmtree(self.partial, ignore_errors=True)
        self.partial.mkdir(parents=True, exist_ok=True)
        for stale in self.partial.iterdir():  # anything written after the last commit
            m = re.fullmatch(r"segment(\d+)\.dcd", stale.name)
            if (m and int(m.group(1)) >= self.progress["segments"]) or ".tmp" in stale.name:
                stale.unlink()
        return stored is not None

    def passed(self, phase: str) -> bool:
        """Is the run already beyond ``phase`` (resumed in a later one)?"""
        return PHASES.index(phase) < PHASES.index(self.phase)

    def enter(self, phase: str) -> None:
        """Start ``phase`` from its first step."""
        self.progress.update(phase=phase, done=0)

    def remaining(self, n_steps: int) -> int:
        """Steps of a phase of ``n_steps`` still to run."""
        return n_steps - self.progress["done"]

    def next_stretch(self, n_steps: int) -> int:
        """Steps to run before the next commit, in a phase of ``n_steps``."""
        return min(self.every or n_steps, self.remaining(n_steps))

    def open_segment(self) -> Path:
        """Where the DCD frames of the next stretch of production go (kept by ``close_segment``)."""
        self._open_segment = self.partial / f"segment{self.progress['segments']:05d}.tmp.dcd"
        return self._open_segment

    def close_segment(self) -> None:
        """Keep the open segment's frames (written and closed by the caller), if it has any."""
        if self._open_segment is not None and self._open_segment.exists():
            os.replace(self._open_segment, self.partial / f"segment{self.progress['segments']:05d}.dcd")
            self.progress["segments"] += 1
        self._open_segment = None

    def advance(self, steps: int, wall_production_s: float = 0.0) -> None:
        self.progress["done"] += steps
        self.add_wall(wall_production_s)

    def add_wall(self, seconds: float) -> None:
        self.progress["wall_production_s"] += seconds

    def commit(self) -> None:
        """Store the simulation's state, the reporters' rows and the progress (last: the commit point)."""
        if not self.every:
            return
        _write_atomic_bytes(self.partial / "checkpoint.chk", self.simulation.context.createCheckpoint())
        saved = {phase: reporter.rows for phase, reporter in self.rows.items()}
        saved["extra"] = [r.saved() for r in self.extra]
        _write_atomic_bytes(self.partial / "reporters.pkl", pickle.dumps(saved))
        _write_atomic_bytes(self.partial / "progress.json", json.dumps(self.progress).encode())

    def write_trajectory(self, out_trajectory) -> None:
        """The kept segments joined into ``out_trajectory`` (an empty file when no frame was written)."""
        segments = [self.partial / f"segment{i:05d}.dcd" for i in range(self.progress["segments"])]
        segments = [seg for seg in segments
                    if seg.stat().st_size > 100 and seg.stat().st_size > _dcd_header_length(seg)]
        if segments:
            concatenate_dcd(segments, out_trajectory)
        else:
            with atomic_path(out_trajectory, suffix=".dcd") as tmp:
                Path(tmp).touch()
