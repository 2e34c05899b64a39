"""External all-atom references: a state point's frames and forces read from files a user already has (a GROMACS
TRR with force blocks, a LAMMPS dump with ``fx fy fz``) instead of simulated by ``reference_md``.

``systems.<name>.external_reference.<state>`` gives a topology (any file MDAnalysis reads that carries residue
and atom names: GRO, PDB, TPR, PSF, ...) and a trajectory carrying forces; a list of trajectories gives one per
replicate (independent runs). The units are the format's (TRR: GROMACS nm, kJ/mol, ps) or declared (a LAMMPS
dump: its ``units`` style, ``real`` or ``metal``); ``frame_interval_ps`` is the time between frames (a LAMMPS
dump carries step numbers only). An optional per-frame thermo CSV gives the all-atom potential energy, pressure
and temperature, each column named with its unit.

Everything here reads files and checks them (``check_external_references`` runs when the workflow is parsed,
before any job); ``read_frames`` is what rule ``import_reference`` converts. Every error names the config key
and the file. Values are converted to OpenMM's units through ``cgtransfer.units``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from cgtransfer import units

TRAJECTORY_FORMATS = ("trr", "lammpsdump")
LAMMPS_UNITS = ("real", "metal")
EXTENSIONS = {".trr": "trr", ".lammpstrj": "lammpsdump", ".lammpsdump": "lammpsdump", ".dump": "lammpsdump"}
#: thermo CSV columns: name → (quantity, unit system the name declares); other columns are ignored
THERMO_COLUMNS = {
    "potential_energy_kJ_mol": ("energy", "gromacs"), "potential_energy_kcal_mol": ("energy", "real"),
    "potential_energy_eV": ("energy", "metal"),
    "pressure_bar": ("pressure", "gromacs"), "pressure_atm": ("pressure", "real"),
    "temperature_K": ("temperature", None),
}
#: above this size a trajectory's every frame is checked by the import job, not when the workflow is parsed
#: (the parse, repeated by every job, reads its first and last frames)
FULL_CHECK_BYTES = 200 * 1024**2
TIME_TOLERANCE_PS = 1e-4


class ExternalReferenceError(ValueError):
    """An external reference's files do not give what the workflow needs (the message names key and file)."""


def _key(where: str, field: str) -> str:
    """A field of a spec named by ``where``: ``config key '<spec>.<field>'`` (``where`` is the key's opening
    ``config key '<spec>``), or ``<where>, <field>`` for a job's label."""
    return f"{where}.{field}'" if where.startswith("config key '") else f"{where}, {field}"


def resolve(basedir, path) -> Path:
    p = Path(path)
    return p if p.is_absolute() else Path(basedir) / p


def trajectories(spec: dict) -> list[str]:
    """The spec's trajectory files, one per replicate (a single file: replicate 1 only)."""
    value = spec["trajectory"]
    return [value] if isinstance(value, str) else list(value)


def trajectory_format(spec: dict, path, key: str) -> str:
    """``trr`` or ``lammpsdump``: the spec's ``format``, else from the file name (``.gz`` allowed for dumps)."""
    fmt = spec.get("format", "auto")
    if fmt != "auto":
        return fmt
    name = Path(path).name.lower()
    name = name[:-3] if name.endswith(".gz") else name
    suffix = Path(name).suffix
    if suffix in (".xyz", ".extxyz"):
        raise ExternalReferenceError(
            f"{key}: '{path}' is an (extended) XYZ file; MDAnalysis reads no forces from XYZ, so it cannot be a "
            "force-matching reference: convert it to a GROMACS TRR with forces or a LAMMPS dump with fx fy fz")
    if suffix not in EXTENSIONS:
        raise ExternalReferenceError(
            f"{key}: cannot tell the format of '{path}' from its extension {suffix or '(none)'}: give 'format' "
            f"({' or '.join(TRAJECTORY_FORMATS)}); known extensions: {', '.join(EXTENSIONS)}")
    return EXTENSIONS[suffix]


def unit_system(spec: dict, fmt: str, key: str) -> str:
    """The units of the trajectory's values: a TRR's are GROMACS's (nm, kJ/mol, ps: the format fixes them); a
    LAMMPS dump's are its ``units`` style, which the dump does not record, so ``units`` must be declared."""
    declared = spec.get("units")
    if fmt == "trr":
        if declared not in (None, "gromacs"):
            raise ExternalReferenceError(f"{_key(key, 'units')}: a TRR is in GROMACS units (nm, kJ/mol/nm, ps); "
                                         f"{declared!r} contradicts the format")
        return "gromacs"
    if declared is None:
        raise ExternalReferenceError(
            f"{_key(key, 'units')}: missing: a LAMMPS dump does not record its units; declare the LAMMPS `units` style the "
            f"run used ({' or '.join(LAMMPS_UNITS)}: real is Å, kcal/mol/Å, fs; metal is Å, eV/Å, ps)")
    if declared not in LAMMPS_UNITS:
        raise ExternalReferenceError(f"{_key(key, 'units')}: {declared!r} is not a LAMMPS units style this reads "
                                     f"({', '.join(LAMMPS_UNITS)})")
    return declared


# ------------------------------------------------------------------------------------------------ reading
def _lammps_header(path) -> tuple[str, list[str]]:
    """The first frame's box-bounds flags and atom columns of a LAMMPS dump."""
    from MDAnalysis.lib.util import anyopen

    bounds, columns = "", []
    with anyopen(str(path)) as fh:
        for _ in range(200):
            line = fh.readline()
            if not line:
                break
            if line.startswith("ITEM: BOX BOUNDS"):
                bounds = line[len("ITEM: BOX BOUNDS"):].strip()
            elif line.startswith("ITEM: ATOMS"):
                columns = line.split()[2:]
                break
    return bounds, columns


def _orthorhombic_box(box, where: str) -> np.ndarray:
    """Edge lengths of a box given as a 3×3 matrix; a zero box is a non-periodic frame, a skewed one is refused."""
    box = np.asarray(box, dtype=np.float64)
    diag = np.diag(box)
    if not np.all(np.isfinite(box)) or np.any(diag <= 0):
        raise ExternalReferenceError(f"{where}: no periodic box (box vectors {box.tolist()}); the reference must "
                                     "be a periodic liquid")
    if np.any(np.abs(box - np.diag(diag)) > 1e-6 * diag.max()):
        raise ExternalReferenceError(f"{where}: a triclinic box ({box.tolist()}); only orthorhombic boxes are "
                                     "supported")
    return diag


def read_frames(path, fmt: str, unit_sys: str, key: str = "trajectory", first_and_last: bool = False):
    """Yield every frame of a trajectory as a dict in OpenMM's units: ``step``, ``time_ps`` (None for a LAMMPS
    dump, which records steps), ``positions_nm``, ``forces_kj_mol_nm`` (n_atoms × 3, float64), ``box_nm`` (edge
    lengths). A frame without forces, a non-periodic or triclinic box, non-finite forces raise
    ExternalReferenceError naming ``key``, the file and the frame. ``first_and_last``: only those two frames."""
    path = Path(path)
    if fmt == "trr":
        yield from _read_trr(path, unit_sys, key, first_and_last)
    elif fmt == "lammpsdump":
        yield from _read_lammps(path, unit_sys, key, first_and_last)
    else:
        raise ExternalReferenceError(f"{key}: unknown format {fmt!r} ({', '.join(TRAJECTORY_FORMATS)})")


def _frame(step, time_ps, positions, forces, box_edges, unit_sys, where) -> dict:
    forces = units.to_openmm(forces, "force", unit_sys)
    if not np.all(np.isfinite(forces)):
        bad = int(np.argwhere(~np.isfinite(forces))[0][0])
        raise ExternalReferenceError(f"{where}: non-finite force on atom {bad + 1}")
    return {"step": int(step), "time_ps": time_ps, "positions_nm": units.to_openmm(positions, "length", unit_sys),
            "forces_kj_mol_nm": forces, "box_nm": units.to_openmm(box_edges, "length", unit_sys)}


def _read_trr(path, unit_sys, key, first_and_last):
    from MDAnalysis.lib.formats.libmdaxdr import TRRFile

    try:
        trr = TRRFile(str(path))
        offsets = trr.offsets  # reads the frame headers only
    except Exception as exc:
        raise ExternalReferenceError(f"{key}: cannot read '{path}' as a GROMACS TRR ({type(exc).__name__}: {exc})") from exc
    with trr:
        n = len(offsets)
        wanted = sorted({0, n - 1}) if first_and_last else range(n)
        for i in wanted:
            trr.seek(i)
            frame = trr.read()
            where = f"{key}: '{path}', frame {i + 1} of {n} (step {frame.step})"
            if not frame.hasf:
                raise ExternalReferenceError(f"{where}: no force block (write forces, e.g. GROMACS mdp nstfout = "
                                             "nstxout): forces are the force-matching target")
            if not frame.hasx:
                raise ExternalReferenceError(f"{where}: no coordinates (GROMACS mdp nstxout must equal nstfout)")
            edges = _orthorhombic_box(frame.box, where)
            yield _frame(frame.step, float(units.to_openmm(frame.time, "time", unit_sys)), frame.x, frame.f, edges,
                         unit_sys, where)


def _read_lammps(path, unit_sys, key, first_and_last):
    from MDAnalysis.coordinates.LAMMPS import DumpReader

    bounds, columns = _lammps_header(path)
    if not columns:
        raise ExternalReferenceError(f"{key}: '{path}' is not a LAMMPS dump (no 'ITEM: ATOMS' line)")
    missing = [c for c in ("fx", "fy", "fz") if c not in columns]
    if missing:
        raise ExternalReferenceError(f"{key}: '{path}': the dump's columns ({' '.join(columns)}) lack "
                                     f"{' '.join(missing)}: dump the forces (e.g. dump ... custom ... id x y z fx fy fz)")
    if "id" not in columns:
        raise ExternalReferenceError(f"{key}: '{path}': the dump's columns ({' '.join(columns)}) lack 'id': atom "
                                     "i of the topology is the dump's atom id i")
    flags = bounds.split()[-3:] if bounds else []
    if flags and any(f != "pp" for f in flags):
        raise ExternalReferenceError(f"{key}: '{path}': box boundaries '{bounds}' are not periodic in every "
                                     "direction (pp pp pp); the reference must be a periodic liquid")
    try:
        reader = DumpReader(str(path), dt=1.0)  # its times are unused (steps; frame_interval_ps)
        n = reader.n_frames
    except Exception as exc:
        raise ExternalReferenceError(f"{key}: cannot read '{path}' as a LAMMPS dump ({type(exc).__name__}: {exc})") from exc
    try:
        wanted = sorted({0, n - 1}) if first_and_last else range(n)
        for i in wanted:
            ts = reader[i]
            where = f"{key}: '{path}', frame {i + 1} of {n} (step {ts.data['step']})"
            if not ts.has_forces:
                raise ExternalReferenceError(f"{where}: no forces (columns fx fy fz)")
            dims = np.asarray(ts.dimensions, dtype=np.float64)
            if np.any(np.abs(dims[3:] - 90.0) > 1e-3):
                raise ExternalReferenceError(f"{where}: a triclinic box; only orthorhombic boxes are supported")
            edges = _orthorhombic_box(np.diag(dims[:3]), where)
            yield _frame(ts.data["step"], None, ts.positions, ts.forces, edges, unit_sys, where)
    finally:
        reader.close()


def frame_count(path, fmt: str, key: str) -> int:
    if fmt == "trr":
        from MDAnalysis.lib.formats.libmdaxdr import TRRFile

        try:
            with TRRFile(str(path)) as trr:
                return len(trr.offsets)
        except Exception as exc:
            raise ExternalReferenceError(f"{key}: cannot read '{path}' as a GROMACS TRR ({exc})") from exc
    from MDAnalysis.coordinates.LAMMPS import DumpReader

    try:
        reader = DumpReader(str(path), dt=1.0)  # its times are unused (steps; frame_interval_ps)
        try:
            return reader.n_frames
        finally:
            reader.close()
    except Exception as exc:
        raise ExternalReferenceError(f"{key}: cannot read '{path}' as a LAMMPS dump ({exc})") from exc


def load_topology(path, key: str):
    """The topology as an MDAnalysis Universe (no coordinates needed): residue names, atom names."""
    import warnings

    import MDAnalysis as mda

    path = Path(path)
    if not path.is_file():
        raise ExternalReferenceError(f"{key}: file '{path}' not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            universe = mda.Universe(str(path))
    except Exception as exc:
        raise ExternalReferenceError(f"{key}: MDAnalysis cannot read '{path}' as a topology "
                                     f"({type(exc).__name__}: {exc})") from exc
    for attr in ("names", "resnames"):
        if not hasattr(universe.atoms, attr):
            raise ExternalReferenceError(f"{key}: '{path}' carries no atom {attr[:-1].replace('res', 'residue ')} "
                                         "names (a LAMMPS data file has types only): give a topology with the residue "
                                         "and atom names the mapping uses (GRO, PDB, TPR, PSF)")
    return universe


def frame_times(frames_steps_times: list[tuple[int, float | None]], interval_ps: float | None, key: str,
                path) -> np.ndarray:
    """The time of every frame (ps): a TRR's own (``interval_ps``, if given, must agree with its spacing); a LAMMPS
    dump's frame index × ``interval_ps`` (required). Frames must be evenly spaced (the time blocks of training and
    the jackknife assume it)."""
    steps = np.array([s for s, _ in frames_steps_times], dtype=np.float64)
    times = [t for _, t in frames_steps_times]
    if any(t is None for t in times):
        if interval_ps is None:
            raise ExternalReferenceError(f"{_key(key, 'frame_interval_ps')}: missing: '{path}' records step numbers, not "
                                         "times; give the time between its frames (ps)")
        if len(steps) > 2 and np.ptp(np.diff(steps)) > 0:
            raise ExternalReferenceError(f"{key}: '{path}': frames are not evenly spaced (step gaps "
                                         f"{sorted(set(np.diff(steps).astype(int).tolist()))[:5]}); time blocks need "
                                         "a constant spacing")
        return interval_ps * np.arange(len(steps))
    t = np.asarray(times, dtype=np.float64)
    if len(t) > 1:
        gaps = np.diff(t)
        if np.any(gaps <= 0) or np.ptp(gaps) > TIME_TOLERANCE_PS:
            raise ExternalReferenceError(f"{key}: '{path}': frame times are not evenly spaced and increasing "
                                         f"(gaps {np.unique(gaps.round(6))[:5].tolist()} ps)")
        if interval_ps is not None and abs(gaps.mean() - interval_ps) > TIME_TOLERANCE_PS:
            raise ExternalReferenceError(f"{_key(key, 'frame_interval_ps')} = {interval_ps:g} ps, but the frames of '{path}' "
                                         f"are {gaps.mean():g} ps apart")
    return t


def read_thermo(path, n_frames: int, key: str):
    """The optional per-frame thermo CSV → a DataFrame in OpenMM's units (potential_energy_kJ_mol, pressure_bar,
    temperature_K; the columns it gives), one row per frame."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise ExternalReferenceError(f"{key}: file '{path}' not found")
    try:
        table = pd.read_csv(path, comment="#")
    except Exception as exc:
        raise ExternalReferenceError(f"{key}: cannot read '{path}' as CSV ({exc})") from exc
    known = [c for c in table.columns if c in THERMO_COLUMNS]
    if not known:
        raise ExternalReferenceError(f"{key}: '{path}' has none of the columns {list(THERMO_COLUMNS)} (its: "
                                     f"{list(table.columns)}); the unit is part of each column's name")
    if len(table) != n_frames:
        raise ExternalReferenceError(f"{key}: '{path}' has {len(table)} rows but the trajectory {n_frames} frames "
                                     "(one row per frame, in frame order)")
    out = pd.DataFrame(index=range(n_frames))
    for col in known:
        quantity, system = THERMO_COLUMNS[col]
        values = pd.to_numeric(table[col], errors="coerce").to_numpy(dtype=np.float64)
        if not np.all(np.isfinite(values)):
            raise ExternalReferenceError(f"{key}: '{path}', column '{col}': a value is missing or not a number "
                                         f"(row {int(np.argwhere(~np.isfinite(values))[0][0]) + 1})")
        name = {"energy": "potential_energy_kJ_mol", "pressure": "pressure_bar", "temperature": "temperature_K"}[quantity]
        if name in out:
            raise ExternalReferenceError(f"{key}: '{path}' gives the {quantity} twice")
        out[name] = values if system is None else units.to_openmm(values, quantity, system)
    return out


# ------------------------------------------------------------------------------------------------ topology
def template_residues(template_paths) -> dict:
    """Residue name → (atom name → element symbol, bonds as atom-name pairs) of the molecule templates."""
    from openmm import app

    out = {}
    for path in template_paths:
        top = app.PDBFile(str(path)).topology
        for res in top.residues():
            elements = {a.name: (a.element.symbol if a.element is not None else None) for a in res.atoms()}
            bonds = [(a.name, b.name) for a, b in res.internal_bonds()]
            out.setdefault(res.name, (elements, bonds))
    return out


def molecule_counts_by_residue(molecules: list) -> dict[str, int]:
    """Residue name → count in the box, from the molecule templates and their counts [(path, n), ...]."""
    from openmm import app

    out: dict[str, int] = {}
    for path, n in molecules:
        for res in app.PDBFile(str(path)).topology.residues():
            out[res.name] = out.get(res.name, 0) + int(n)
    return out


def residue_counts(universe) -> dict[str, int]:
    names, counts = np.unique(universe.residues.resnames, return_counts=True)
    return {str(n): int(c) for n, c in zip(names, counts)}


def check_topology_against_templates(universe, templates: dict, mapping: dict, key: str, path) -> None:
    """Every residue of the external topology is a template's residue with the same atom names (so the mapping's
    atom names are there, and elements and bonds can be taken from the template)."""
    for res in universe.residues:
        name = str(res.resname)
        if name not in mapping:
            raise ExternalReferenceError(f"{key}: residue {name} (resid {res.resid}) of '{path}' has no entry in the "
                                         f"mapping (mapped: {sorted(mapping)})")
        if name not in templates:
            raise ExternalReferenceError(f"{key}: residue {name} of '{path}' is in no molecule template of the system")
        atoms = [str(a) for a in res.atoms.names]
        expected = templates[name][0]
        if sorted(atoms) != sorted(expected):
            missing = sorted(set(expected) - set(atoms))
            extra = sorted(set(atoms) - set(expected))
            raise ExternalReferenceError(
                f"{key}: residue {name} (resid {res.resid}) of '{path}' has atoms {atoms}, the template "
                f"{sorted(expected)}" + (f"; missing {missing}" if missing else "") + (f"; unknown {extra}" if extra else "")
                + ": the mapping's atom names must be the topology's")


# ------------------------------------------------------------------------------------------------ config checks
def per_replicate(spec: dict, field: str) -> list:
    """A spec's ``trajectory`` or ``thermo``: one entry per replicate (a single file: one replicate)."""
    value = spec.get(field)
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def check_external_references(config: dict, name: str, settings: dict, states: list, molecules: list,
                              basedir) -> None:
    """All checks of ``systems.<name>.external_reference`` that can run before any job: the states are the
    system's; files exist and are read; format and units are known or declared; forces present and finite (every
    frame of a file up to ``FULL_CHECK_BYTES``; the first and last of a larger one, the import job checks the
    rest); periodic orthorhombic boxes whose half edge holds the interaction ranges; topology and trajectory atom
    counts agree and the topology's residues and atom names are the templates' (so the mapping's); as many
    molecules as the system declares; enough frames for the training time blocks; one trajectory per replicate;
    the thermo columns that the volume term and energy anchoring need. Raises ExternalReferenceError."""
    system = config["systems"][name]
    specs = system.get("external_reference") or {}
    by_state = {s.state: s for s in states}
    templates = template_residues([path for path, _ in molecules])
    expected_counts = molecule_counts_by_residue(molecules)
    replicates = int(system.get("replicates", config.get("replicates", 1)))
    users = [s for s, other in config["systems"].items() if other.get("reference_system") == name]
    for user in users:
        replicates = max(replicates, int(config["systems"][user].get("replicates", config.get("replicates", 1))))
    for state, spec in specs.items():
        skey = f"systems.{name}.external_reference.{state}"
        if state not in by_state:
            raise ExternalReferenceError(f"config key '{skey}': {state!r} is not a state of system {name!r} in the "
                                         f"state-point sheet (its states: {sorted(by_state)})")
        trajs, thermos = per_replicate(spec, "trajectory"), per_replicate(spec, "thermo")
        if len(trajs) != replicates:
            why = ("one external run cannot make independent replicates: the same frames in every replicate would "
                   "understate the spread the verdict measures" if len(trajs) == 1 else
                   "give one trajectory per replicate")
            mapped_by = f" and the systems that map its runs ({', '.join(users)})" if users else ""
            raise ExternalReferenceError(
                f"config key '{skey}.trajectory': {len(trajs)} trajectory file(s) for {replicates} replicates of "
                f"system {name!r}{mapped_by}; {why}. Give a list of {replicates} independent runs, or set "
                f"systems.{name}.replicates: {len(trajs)}")
        if thermos and len(thermos) != len(trajs):
            raise ExternalReferenceError(f"config key '{skey}.thermo': {len(thermos)} file(s) for {len(trajs)} "
                                         "trajectories (one per trajectory)")
        topo_path = resolve(basedir, spec["topology"])
        tkey = f"config key '{skey}.topology'"
        universe = load_topology(topo_path, tkey)
        check_topology_against_templates(universe, templates, system["mapping"], tkey, topo_path)
        counts = residue_counts(universe)
        if counts != expected_counts:
            raise ExternalReferenceError(f"{tkey}: '{topo_path}' holds molecules {counts}, but system {name!r} "
                                         f"declares {expected_counts} (n_molecules / molecules)")
        given: set | None = None
        for i, traj in enumerate(trajs):
            suffix = "" if len(trajs) == 1 else f".{i}"
            n = check_trajectory(resolve(basedir, traj), spec, skey, f"config key '{skey}.trajectory{suffix}'",
                                 universe.atoms.n_atoms, topo_path, settings)
            columns = (set(read_thermo(resolve(basedir, thermos[i]), n, f"config key '{skey}.thermo{suffix}'").columns)
                       if thermos else set())
            given = columns if given is None else given & columns
        needs = []
        if settings["volume_term"]["enabled"]:
            needs.append(("pressure_bar", "the volume term (volume_term.enabled) fits the all-atom pressure",
                          "pressure_bar or pressure_atm", "volume_term: {enabled: false}"))
        anchored = [m for m, spec_m in system["models"].items() if spec_m.get("kind") == "hipnn_t"
                    and state in _model_states(spec_m, list(by_state))
                    and {**settings["hipnn_t"], **spec_m.get("hipnn_t", {})}["energy_anchoring"]]
        if anchored:
            needs.append(("potential_energy_kJ_mol", f"energy-anchored hipnn_t model(s) {anchored} fit the all-atom "
                          "energy", "potential_energy_kJ_mol, potential_energy_kcal_mol or potential_energy_eV",
                          "hipnn_t: {energy_anchoring: false}"))
        for column, why, columns, off in needs:
            if column not in given:
                raise ExternalReferenceError(
                    f"config key '{skey}.thermo': state {state!r} is external and {why}: give a per-frame thermo CSV "
                    f"with a column {columns}, or set systems.{name}.{off}")


def _model_states(spec: dict, states: list[str]) -> list[str]:
    """The states a model entry trains on (a shorthand: every state of the system may be among them)."""
    value = spec.get("states")
    return list(value) if isinstance(value, list) else states


def check_trajectory(path: Path, spec: dict, skey: str, key: str, n_atoms: int, topology_path,
                     settings: dict) -> int:
    """One trajectory of an external state (see ``check_external_references``); returns its frame count."""
    if not path.is_file():
        raise ExternalReferenceError(f"{key}: file '{path}' not found")
    fmt = trajectory_format(spec, path, key)
    unit_sys = unit_system(spec, fmt, f"config key '{skey}")
    large = path.stat().st_size > FULL_CHECK_BYTES
    frames = []
    min_edge = math.inf
    for frame in read_frames(path, fmt, unit_sys, key, first_and_last=large):
        if len(frame["positions_nm"]) != n_atoms:
            raise ExternalReferenceError(f"{key}: '{path}' has {len(frame['positions_nm'])} atoms per frame but the "
                                         f"topology '{topology_path}' has {n_atoms}: they do not belong together")
        frames.append((frame["step"], frame["time_ps"]))
        min_edge = min(min_edge, float(frame["box_nm"].min()) * units.ANGSTROM_PER_NM)
    n = frame_count(path, fmt, key) if large else len(frames)
    if not large:
        frame_times(frames, spec.get("frame_interval_ps"), f"config key '{skey}", path)
    elif fmt == "lammpsdump" and spec.get("frame_interval_ps") is None:
        frame_times([(0, None)], None, f"config key '{skey}", path)
    tr = settings["training"]
    n_valid = max(1, int(round(tr["valid_fraction"] * n)))
    n_test = max(1, int(round(tr["test_fraction"] * n)))
    if n - n_valid - n_test < 2 or (n - n_valid - n_test) * tr["fraction_train_eval"] < 1:
        raise ExternalReferenceError(f"{key}: '{path}' has {n} frames: after the validation ({n_valid}) and test "
                                     f"({n_test}) time blocks (training.valid_fraction, training.test_fraction) too few "
                                     "remain for training (at least 2, and one evaluated per epoch)")
    ranges = {"rdf.rmax_A": settings["rdf"]["rmax_A"], "mscg.cutoff_A": settings["mscg"]["cutoff_A"],
              "hipnn.dist_hard_max + cg_md.pair_skin_A": settings["hipnn"]["dist_hard_max"]
              + settings["cg_md"]["pair_skin_A"]}
    for what, length in ranges.items():
        if length >= 0.5 * min_edge:
            raise ExternalReferenceError(f"{key}: the smallest box edge of '{path}' is {min_edge:.2f} Å; config key "
                                         f"'{what}' = {length:g} Å does not fit in half of it")
    return n
