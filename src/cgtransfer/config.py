"""Configuration: JSON-schema validation of config.yaml and the state-point sheet, plus the checks a schema
cannot express (exactly one of pressure and density, files that must exist, models naming known states), and
the expansion of the training-set shorthands (``each``, ``all``, ``leave_one_out``) into named models.

Everything here runs when Snakemake parses the workflow, before any job starts; every error names the key
(or the state-point row) and the file at fault.
"""

from __future__ import annotations

import copy
import functools
import math
import re
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pandas as pd
import yaml

from cgtransfer.plausibility import unit_slip


class ConfigError(ValueError):
    """The configuration or the state-point sheet is invalid (the message names the key and the file)."""


def _path_str(path) -> str:
    parts = [str(p) for p in path]
    return ".".join(parts) if parts else "(top level)"


def _non_finite(obj, path=()):
    """Keys whose value is a NaN or an infinity (YAML .nan/.inf, a sheet's 'inf'): JSON schema accepts them."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _non_finite(v, (*path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _non_finite(v, (*path, i))
    elif isinstance(obj, float) and not math.isfinite(obj):
        yield path, obj


@functools.lru_cache(maxsize=8)
def _schema(path: str, mtime_ns: int) -> dict:
    return yaml.safe_load(Path(path).read_text())


def load_schema(schema_path) -> dict:
    """The parsed schema (cached per file and modification time: a study validates each system's sections)."""
    path = Path(schema_path)
    return copy.deepcopy(_schema(str(path), path.stat().st_mtime_ns))


def _resolved(schema: dict, root: dict) -> dict:
    """``schema`` with a local ``$ref`` (``#/definitions/...``) replaced by its target, the sibling keywords (a
    ``default``, a ``description``) kept over it."""
    while isinstance(schema, dict) and "$ref" in schema:
        target = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            target = target[part]
        schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def with_defaults(instance, schema: dict, root: dict | None = None):
    """``instance`` with the schema's ``default:`` values filled in where a key is missing, recursively (a missing
    section gets its default ``{}`` and then its keys' defaults), as Snakemake's ``validate(..., set_default=True)``
    does. An object whose schema gives defaults comes out in the order of the schema's properties (keys the schema
    does not list follow), so a config that states only its differences and one that states everything load as
    the same dict, key order included. Values of the wrong type are left for validation to name."""
    root = schema if root is None else root
    schema = _resolved(schema, root)
    if not isinstance(instance, dict) or not isinstance(schema, dict):
        return instance
    props = {k: _resolved(v, root) for k, v in schema.get("properties", {}).items()}
    extra = schema.get("additionalProperties")
    extra = _resolved(extra, root) if isinstance(extra, dict) else {}
    out = {}
    if any("default" in sub for sub in props.values()):
        for key, sub in props.items():
            if key in instance:
                out[key] = with_defaults(instance[key], sub, root)
            elif "default" in sub:
                out[key] = with_defaults(copy.deepcopy(sub["default"]), sub, root)
    for key, value in instance.items():
        if key not in out:
            out[key] = with_defaults(value, props.get(key, extra), root)
    return out


def fill_defaults(config: dict, schema_path) -> dict:
    """Fill the schema's defaults into ``config`` in place (the dict Snakemake's rules and scripts read, so every
    consumer sees the complete configuration) and return it."""
    filled = with_defaults(config, load_schema(schema_path))
    config.clear()
    config.update(filled)
    return config


def merge_config(config: dict, overrides: dict) -> dict:
    """``overrides`` merged over ``config`` key by key, nested mappings recursively, in place: what Snakemake does
    with several ``--configfile`` files (``snakemake.utils.update_config``)."""
    for key, value in overrides.items():
        if isinstance(value, dict):
            base = config.get(key)
            config[key] = merge_config(base if isinstance(base, dict) else {}, value)
        else:
            config[key] = value
    return config


DEFAULT_SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


def read_config(*paths, schema_path=DEFAULT_SCHEMA) -> dict:
    """The configuration ``--configfile <paths>`` gives: the files merged in order, the schema's defaults filled
    in (not validated: ``load_study`` does that). For code that reads a config file outside the workflow."""
    config: dict = {}
    for path in paths:
        merge_config(config, yaml.safe_load(Path(path).read_text()) or {})
    return fill_defaults(config, schema_path)


BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")


def _slip_hint(error) -> str:
    """For a value out of a key's bounds, the key's ``x-slip`` hint: the unit it is in and the slip its bounds
    catch (a temperature in °C, a pressure in Pa, a density in kg/m³, a length in nm where Å is meant)."""
    if error.validator not in BOUNDS or not isinstance(error.schema, dict):
        return ""
    hint = error.schema.get("x-slip")
    key = error.absolute_path[-1] if error.absolute_path else ""
    slip = unit_slip(str(key), error.instance, {b: error.schema[b] for b in BOUNDS if b in error.schema},
                     error.schema.get("x-unit"))
    return (f" ({hint})" if hint else "") + (f" — {slip}" if slip else "")


def _states_message(value) -> str:
    """What a model's ``states`` may be, for a value that is none of them (instead of jsonschema's "is not valid
    under any of the given schemas")."""
    allowed = ("a model's 'states' is a list of this system's state ids (the 'state' column of its rows in the "
               "sheet, e.g. [T298, T328]) or one of each / all / leave_one_out")
    if value == []:
        return f"[] trains on no state; {allowed}"
    if isinstance(value, str):
        return f"{value!r} is neither a list nor a shorthand; {allowed} (one state is written as a list: [{value}])"
    if isinstance(value, list) and any(not isinstance(v, str) for v in value):
        bad = [v for v in value if not isinstance(v, str)]
        return (f"{value!r}: {bad} are not state ids (ids are names such as T298, not temperatures); {allowed}")
    return f"{value!r} is not a training set; {allowed}"


def _error_line(path, error) -> str:
    path = tuple(path)
    if error.validator in ("oneOf", "anyOf") and len(path) >= 3 and path[-1] == "states" and path[-3] == "models":
        return f"  key '{_path_str(path)}': {_states_message(error.instance)}"
    return f"  key '{_path_str(path)}': {error.message}{_slip_hint(error)}"


def validate_against_schema(instance, schema_path, what: str) -> None:
    schema = load_schema(schema_path)
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    lines = [_error_line(e.absolute_path, e) for e in errors]
    lines += [f"  key '{_path_str(path)}': {value} is not a finite number" for path, value in _non_finite(instance)]
    if lines:
        raise ConfigError(f"{what} does not match the rules of {schema_path}:\n" + "\n".join(lines))


def validate_section(values: dict, schema_path, section: str, key: str, what: str) -> None:
    """One top-level section's values (e.g. a system's merged overrides) against that section's schema; errors
    name the key as ``key`` (e.g. ``systems.argon.reference_md``) plus the path inside it."""
    schema = load_schema(schema_path)
    sub = {"definitions": schema.get("definitions", {}), **schema["properties"][section]}
    errors = sorted(jsonschema.Draft7Validator(sub).iter_errors(values), key=lambda e: list(e.absolute_path))
    lines = [_error_line((key, *e.absolute_path), e) for e in errors]
    lines += [f"  key '{_path_str((key, *path))}': {value} is not a finite number" for path, value in _non_finite(values)]
    if lines:
        raise ConfigError(f"{what} does not match the rules of {schema_path}:\n" + "\n".join(lines))


STATE_COLUMNS = ("system", "state", "temperature_K", "pressure_bar", "density_g_cm3")


def load_state_points(path) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config key 'state_points': file '{path}' not found")
    check_row_widths(path)
    try:
        table = pd.read_csv(path, sep="\t", comment="#", dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config key 'state_points': cannot read '{path}' as a tab-separated sheet: {exc}") from exc
    table.columns = [str(c).strip() for c in table.columns]
    if len(table.columns) <= 2 and any("," in c or ";" in c for c in table.columns):
        raise ConfigError(f"{path}: the header {list(table.columns)} looks comma- or semicolon-separated; the "
                          f"sheet must be tab-separated with the columns {list(STATE_COLUMNS)}")
    for col in ("pressure_bar", "density_g_cm3"):
        if col not in table:
            table[col] = ""
    return table


def check_row_widths(path) -> None:
    """A row with more tab-separated fields than the header (a trailing tab, a value in a sixth column) would
    shift pandas' columns or stop it with a tokenizer error: named with its row (as the other row messages count:
    data rows, comments and blank lines skipped) and its line."""
    lines = Path(path).read_text(errors="replace").splitlines()
    header, row = None, 0
    for number, line in enumerate(lines, start=1):
        text = line.split("#", 1)[0]
        if not text.strip():
            continue
        fields = text.split("\t")
        if header is None:
            header = fields
            continue
        row += 1
        if len(fields) > len(header):
            extra = "a trailing tab" if all(f.strip() == "" for f in fields[len(header):]) else "a value beyond the last column"
            raise ConfigError(f"{path}, row {row} (line {number}): {len(fields)} tab-separated fields, but the header has "
                              f"{len(header)} ({', '.join(h.strip() for h in header)}); {extra}? Remove it")


NUMERIC_COLUMNS = ("temperature_K", "pressure_bar", "density_g_cm3")


def _row_values(row: dict, where: str) -> dict:
    """A sheet row (text cells) → typed values; empty cells are left out. A cell that is not a number is named."""
    out = {}
    for key, text in row.items():
        text = str(text).strip()
        if text == "":
            continue
        if key in NUMERIC_COLUMNS:
            try:
                out[key] = float(text)
            except ValueError:
                raise ConfigError(f"{where}, column '{key}': {text!r} is not a number") from None
        else:
            out[key] = text
    return out


@dataclass
class StatePoint:
    system: str
    state: str
    temperature_K: float
    pressure_bar: float | None
    density_g_cm3: float | None

    @property
    def ensemble(self) -> str:
        return "NPT" if self.pressure_bar is not None else "NVT"


STATE_ID_TEMPERATURE = re.compile(r"^[Tt](\d+(?:\.\d+)?)|^(\d+(?:\.\d+)?)[Kk](?![A-Za-z])")


def state_id_temperature_mismatch(row: dict) -> str | None:
    """A state id that encodes a temperature (``T298``, ``T298_high``) must agree with its ``temperature_K`` within
    0.5 K: otherwise one of them is wrong (a Celsius value, a copied row). The disagreement, or None."""
    match = STATE_ID_TEMPERATURE.match(str(row.get("state", "")))
    t = row.get("temperature_K")
    if not match or not isinstance(t, float) or not math.isfinite(t):
        return None
    encoded = float(match.group(1) or match.group(2))
    if abs(encoded - t) <= 0.5:
        return None
    text = (f"state id {row['state']!r} encodes {encoded:g} K but its column 'temperature_K' is {t:g}")
    if abs(t + 273.15 - encoded) <= 1.0:
        return f"{text}: is this Celsius? ({t:g} °C = {t + 273.15:g} K; temperatures are in kelvin)"
    return f"{text} (more than 0.5 K apart): fix the temperature or rename the state"


def check_state_points(table: pd.DataFrame, schema_path, sheet_path, rows: dict | None = None) -> list[StatePoint]:
    unknown = set(table.columns) - set(STATE_COLUMNS)
    if unknown:
        raise ConfigError(f"{sheet_path}: unknown column(s) {sorted(unknown)}; allowed: {list(STATE_COLUMNS)}")
    points = []
    missing = [c for c in ("system", "state", "temperature_K") if c not in table.columns]
    if missing:
        raise ConfigError(f"{sheet_path}: missing column(s) {missing}; a sheet has the columns {list(STATE_COLUMNS)} "
                          "(tab-separated; one of pressure_bar and density_g_cm3 per row)")
    for i, row in enumerate(table.to_dict("records")):
        where = f"{sheet_path}, row {i + 1} (system {row.get('system')!r}, state {row.get('state')!r})"
        row = _row_values(row, where)
        id_hint = state_id_temperature_mismatch(row)
        try:
            validate_against_schema(row, schema_path, where)
        except ConfigError as exc:  # the id's disagreement is the clue to the bad value: said beside it
            if id_hint:
                raise ConfigError(f"{exc}\n  {id_hint}") from None
            raise
        if id_hint:
            raise ConfigError(f"{where}: {id_hint}")
        has_p, has_rho = "pressure_bar" in row, "density_g_cm3" in row
        if has_p == has_rho:
            raise ConfigError(f"{where}: give exactly one of 'pressure_bar' (NPT) and 'density_g_cm3' (NVT); "
                              f"found {'both' if has_p else 'neither'}")
        points.append(StatePoint(row["system"], row["state"], float(row["temperature_K"]),
                                 float(row["pressure_bar"]) if has_p else None,
                                 float(row["density_g_cm3"]) if has_rho else None))
        if rows is not None:
            rows.setdefault((row["system"], row["state"]), where)
    seen: dict = {}
    for i, p in enumerate(points):
        if (p.system, p.state) in seen:
            raise ConfigError(f"{sheet_path}, rows {seen[(p.system, p.state)]} and {i + 1}: state {p.state!r} of "
                              f"system {p.system!r} appears twice")
        seen[(p.system, p.state)] = i + 1
    check_state_names_differ_in_more_than_case(points, str(sheet_path))
    return points


def check_state_names_differ_in_more_than_case(points: list[StatePoint], where: str) -> None:
    """Two states of one system whose names differ only in case (T298, t298) would share their result folders on
    a case-insensitive file system (macOS, Windows): refused, naming both."""
    folded: dict[tuple[str, str], str] = {}
    for p in points:
        other = folded.setdefault((p.system, p.state.casefold()), p.state)
        if other != p.state:
            raise ConfigError(f"{where}: states {other!r} and {p.state!r} of system {p.system!r} differ only in "
                              "case: their result folders would collide on a case-insensitive file system; rename one")


SHORTHANDS = ("each", "all", "leave_one_out")


def expand_models(system: str, specs: dict, own_states: list[str], where: str) -> dict[str, dict]:
    """Model entries of one system → named models {kind, states, training_set, cg_md}.

    ``states`` is a list of state names (one model) or a shorthand: ``all`` (one model on every state),
    ``each`` (one model per state, named ``<entry>_<state>``) or ``leave_one_out`` (one model per state on all
    the others, named ``<entry>_<held-out state>``). ``own_states`` are the system's states (temperature order)."""
    out: dict[str, dict] = {}
    for entry, spec in specs.items():
        key = f"config key 'systems.{system}.models.{entry}.states'"
        states = spec["states"]
        extra = {k: v for k, v in spec.items() if k not in ("kind", "states")}
        if isinstance(states, str):
            if states == "all":
                made = {entry: (list(own_states), None)}
            elif states == "each":
                made = {f"{entry}_{s}": ([s], None) for s in own_states}
            elif states == "leave_one_out":
                if len(own_states) < 2:
                    raise ConfigError(f"{key}: leave_one_out needs at least two state points; system {system!r} has "
                                      f"{own_states} in {where}")
                made = {f"{entry}_{s}": ([o for o in own_states if o != s], s) for s in own_states}
            else:
                raise ConfigError(f"{key}: unknown shorthand {states!r}; use a list of states or one of {list(SHORTHANDS)}")
            training_set = states
        else:
            if len(set(states)) != len(states):
                raise ConfigError(f"{key}: a state is listed twice ({states})")
            missing = [s for s in states if s not in own_states]
            if missing:
                raise ConfigError(f"{key}: state(s) {missing} are not state points of {system!r} in {where} "
                                  f"(known: {sorted(own_states)})")
            made = {entry: (list(states), None)}
            training_set = "each" if len(states) == 1 else ("all" if set(states) == set(own_states) else "custom")
        if spec.get("evaluated_at") == "held_out" and states != "leave_one_out":
            raise ConfigError(f"config key 'systems.{system}.models.{entry}.evaluated_at': held_out needs "
                              f"states: leave_one_out (only such a model has a held-out state); it has {states!r}")
        for name, (trained_on, held_out) in made.items():
            if name in out:
                raise ConfigError(f"config key 'systems.{system}.models': two entries make a model named {name!r}")
            out[name] = {"kind": spec["kind"], "states": trained_on, "training_set": training_set,
                         "held_out_state": held_out, **extra}
    return out


def check_temperature_aware(system: str, models: dict[str, dict], states: dict) -> None:
    """A temperature-aware model (kind hipnn_t) learns U and S from forces at several temperatures: with one
    training temperature they are not separable, and every training frame needs its temperature."""
    for name, m in models.items():
        if m["kind"] != "hipnn_t":
            if "hipnn_t" in m:
                raise ConfigError(f"config key 'systems.{system}.models': model {name!r} is of kind {m['kind']!r}; "
                                  "its 'hipnn_t' settings apply to kind hipnn_t only")
            continue
        temps = [states[s].temperature_K for s in m["states"]]
        bad = [s for s, t in zip(m["states"], temps) if not (math.isfinite(t) and t > 0)]
        if bad:
            raise ConfigError(f"config key 'systems.{system}.models': model {name!r} (kind hipnn_t) has training "
                              f"state(s) {bad} without a positive temperature: its frames would have none")
        if len(set(temps)) < 2:
            raise ConfigError(f"config key 'systems.{system}.models': model {name!r} (kind hipnn_t) is trained at one "
                              f"temperature only ({sorted(set(temps))} K, states {m['states']}): U and S are not "
                              "separable; give it training states at two temperatures at least")


VOLUME_SUFFIX = "_vol"


def with_volume_corrected(system: str, models: dict[str, dict]) -> dict[str, dict]:
    """Every model also as ``<model>_vol``: the same trained model plus a fitted volume term U_V(V)."""
    out = {}
    for name, m in models.items():
        out[name] = {**m, "base_model": name, "volume_term": False}
    for name, m in models.items():
        corrected = name + VOLUME_SUFFIX
        if corrected in out:
            raise ConfigError(f"config key 'systems.{system}.models': model {corrected!r} clashes with the volume-"
                              f"corrected variant of {name!r}; rename it")
        out[corrected] = {**m, "base_model": name, "volume_term": True}
    return out


SECTIONS = ("reference_md", "rdf", "hipnn", "hipnn_t", "mscg", "prior", "training", "cg_md", "volume_term")


def system_settings(config: dict, name: str) -> dict:
    """The configuration as one system sees it: each top-level section with the system's own overrides
    (``systems.<name>.<section>``) merged over it, e.g. argon's cutoff and timestep."""
    system = config["systems"][name]
    return {**config, **{sec: {**config[sec], **system.get(sec, {})} for sec in SECTIONS}}


def molecule_types(system: dict) -> list[tuple[str, int, str]]:
    """The molecule types of a system as (template_pdb, n_molecules, config key): one type (``template_pdb`` +
    ``n_molecules``) or a mixture (``molecules``: a list of them, packed in that order)."""
    if "molecules" in system:
        return [(m["template_pdb"], int(m["n_molecules"]), f"molecules.{i}") for i, m in enumerate(system["molecules"])]
    return [(system["template_pdb"], int(system["n_molecules"]), "")]


def forcefield_entries(system: dict) -> list[str]:
    value = system["forcefield"]
    return [value] if isinstance(value, str) else list(value)


def resolve_forcefield(basedir, entry: str, key: str) -> str:
    """A force-field entry → what ``openmm.app.ForceField`` loads: a file of the repository (absolute path), or
    the name of a file OpenMM ships (kept as the name, e.g. ``tip3pfb.xml``)."""
    import os

    path = resolve(basedir, entry)
    if path.is_file():
        return str(path)
    from openmm.app import forcefield as ff

    if any(os.path.isfile(os.path.join(d, entry)) for d in ff._getDataDirectories()):
        return entry
    raise ConfigError(f"config key '{key}': file '{path}' not found, and OpenMM ships no force field named {entry!r}")


@dataclass
class Study:
    config: dict
    basedir: Path
    states: list[StatePoint]
    expanded: dict[str, dict[str, dict]] = None  # system → model name → {kind, states, training_set, ...}

    def systems(self) -> list[str]:
        return list(self.config["systems"])

    def replicates(self, system: str) -> list[int]:
        """The replicate numbers 1 … R of a system (``systems.<name>.replicates``, else the top-level
        ``replicates``): independent chains, each under ``results/<system>/rep<r>/``."""
        return list(range(1, int(self.system(system).get("replicates", self.config.get("replicates", 1))) + 1))

    def replicates_run(self, system: str) -> list[int]:
        """The replicates whose files may exist under a system: its own, and those of every system that maps
        its all-atom runs (``reference_system``)."""
        users = [s for s in self.systems() if s == system or self.reference_system(s) == system]
        return list(range(1, max(len(self.replicates(s)) for s in users) + 1))

    def system(self, name: str) -> dict:
        return self.config["systems"][name]

    def settings(self, system: str) -> dict:
        """The configuration with the system's own section overrides merged in (``system_settings``)."""
        return system_settings(self.config, system)

    def molecules(self, system: str) -> list[tuple[str, int]]:
        """(absolute template path, count) per molecule type, in packing order."""
        return [(str(resolve(self.basedir, t)), n) for t, n, _ in molecule_types(self.system(system))]

    def forcefields(self, system: str) -> list[str]:
        """The system's force-field XMLs as OpenMM loads them (absolute paths, or names of files OpenMM ships)."""
        return [resolve_forcefield(self.basedir, e, f"systems.{system}.forcefield")
                for e in forcefield_entries(self.system(system))]

    def forcefield_files(self, system: str) -> list[str]:
        """The repository files among the force fields (workflow inputs: editing one reruns the references)."""
        return [f for f in self.forcefields(system) if Path(f).is_absolute()]

    def reference_system(self, system: str) -> str:
        """The system whose all-atom reference runs ``system`` maps: its own, or ``systems.<s>.reference_system``."""
        return self.system(system).get("reference_system", system)

    def states_of(self, system: str) -> list[StatePoint]:
        return sorted((s for s in self.states if s.system == system), key=lambda s: s.temperature_K)

    def state(self, system: str, state: str) -> StatePoint:
        for s in self.states:
            if s.system == system and s.state == state:
                return s
        raise KeyError(f"no state {state!r} for system {system!r}")

    def models(self, system: str) -> dict[str, list[str]]:
        """model name → training states (shorthands expanded)."""
        return {name: m["states"] for name, m in self.expanded[system].items()}

    def model(self, system: str, name: str) -> dict:
        """{kind, states, training_set, held_out_state, [cg_md]} of one model."""
        return self.expanded[system][name]

    def models_of_kind(self, system: str, kind: str) -> list[str]:
        """Trained models of one kind (volume-corrected variants share their base model's training)."""
        return [name for name, m in self.expanded[system].items() if m["kind"] == kind and not m.get("volume_term")]

    def trained_models(self, system: str) -> list[str]:
        """Models that the train rule fits (not the volume-corrected variants)."""
        return [name for name, m in self.expanded[system].items() if not m.get("volume_term")]

    def base_model(self, system: str, name: str) -> str:
        return self.model(system, name).get("base_model", name)

    def volume_corrected(self, system: str, name: str) -> bool:
        return bool(self.model(system, name).get("volume_term"))

    def cg_md_settings(self, system: str, name: str) -> dict:
        """The cg_md config section with the model's own overrides (``models.<name>.cg_md``) applied. An MS-CG
        model steps with ``mscg_timestep_fs`` (unless its own override sets ``timestep_fs``), and its barostat
        interval is rescaled so that it attempts a move after the same simulated time as every other kind; the
        key itself is dropped, so that it reruns only the MS-CG runs."""
        cg = dict(self.settings(system)["cg_md"])
        own = self.model(system, name).get("cg_md", {})
        mscg_step = cg.pop("mscg_timestep_fs", None)
        if self.model(system, name)["kind"] == "mscg" and mscg_step is not None and "timestep_fs" not in own:
            cg["barostat_frequency"] = max(1, round(cg["barostat_frequency"] * cg["timestep_fs"] / mscg_step))
            cg["timestep_fs"] = mscg_step
        return {**cg, **own}

    def hipnn_t_settings(self, system: str, name: str) -> dict:
        """The hipnn_t config section with the model's own overrides (``models.<name>.hipnn_t``) applied."""
        return {**self.settings(system)["hipnn_t"], **self.model(system, name).get("hipnn_t", {})}

    def ensembles(self, system: str, state: str) -> list[str]:
        return ["nvt", "npt"] if self.state(system, state).pressure_bar is not None else ["nvt"]

    def cg_ensembles(self, system: str, state: str) -> list[str]:
        """The CG runs a study makes at a state: NVT, and NPT at an NPT state unless ``cg_md.npt`` is false."""
        npt = self.settings(system)["cg_md"].get("npt", True)
        return [e for e in self.ensembles(system, state) if e == "nvt" or npt]

    def evaluated_states(self, system: str, name: str) -> list[str]:
        """The states a model is run and compared at (``evaluated_at``): every state, or a leave-one-out model's
        held-out state only."""
        m = self.model(system, name)
        if m.get("evaluated_at", "all") == "held_out":
            return [m["held_out_state"]]
        return [s.state for s in self.states_of(system)]

    def cells(self, system: str) -> list[tuple[str, str]]:
        """(model, state) of every CG run and comparison the study makes, models in config order."""
        return [(m, s) for m in self.models(system) for s in self.evaluated_states(system, m)]


def constrained_pairs(residue, constraints: str) -> list[tuple]:
    """The atom pairs of one template residue whose distance OpenMM's ``createSystem(constraints=...)`` fixes:
    HBonds, bonds to hydrogen; AllBonds, every bond; HAngles, every bond and the 1-3 pairs of the angles H-X-H and
    H-O-X (OpenMM's definition). Bonds come from the template (CONECT records)."""
    def is_h(atom):
        return atom.element is not None and atom.element.symbol == "H"

    bonds = [(bond[0], bond[1]) for bond in residue.internal_bonds()]
    if constraints == "none":
        return []
    if constraints == "HBonds":
        return [(a, b) for a, b in bonds if is_h(a) or is_h(b)]
    pairs = list(bonds)
    if constraints == "HAngles":
        neighbours: dict = {}
        for a, b in bonds:
            neighbours.setdefault(a, []).append(b)
            neighbours.setdefault(b, []).append(a)
        for centre, around in neighbours.items():
            for i, a in enumerate(around):
                for b in around[i + 1:]:
                    o_centre = centre.element is not None and centre.element.symbol == "O"
                    if (is_h(a) and is_h(b)) or (o_centre and (is_h(a) or is_h(b))):
                        pairs.append((a, b))
    return pairs


def check_constraints_inside_beads(residue, bead_of: dict, constraints: str, key: str) -> None:
    """A constraint across a bead boundary would put a constraint force between two beads that the mapped forces
    (sums over each bead's atoms) do not cancel: refused before any simulation, naming the pair."""
    for a, b in constrained_pairs(residue, constraints):
        if bead_of.get(a.name) != bead_of.get(b.name):
            raise ConfigError(f"{key}: the pair {a.name}-{b.name} of residue {residue.name} is constrained "
                              f"(reference_md.constraints: {constraints}) but split across beads "
                              f"{bead_of.get(a.name)!r} and {bead_of.get(b.name)!r}; put both atoms in one bead "
                              "or constrain less")


def check_template_and_mapping(name: str, system: dict, basedir, constraints: str = "HBonds") -> float:
    """Every molecule template against the mapping (every residue mapped, every bead atom present, every atom in
    exactly one bead, no constrained pair split across beads under ``constraints``, no mapped residue that no
    template has); returns the mass of the whole box (amu) for the box-size checks."""
    from openmm import app

    base = f"systems.{name}.mapping"
    total_mass, residues = 0.0, set()
    for template, count, where in molecule_types(system):
        path = resolve(basedir, template)
        tkey = f"systems.{name}.{where + '.' if where else ''}template_pdb"
        try:
            pdb = app.PDBFile(str(path))
        except Exception as exc:  # an unreadable template is a config error, not a traceback
            raise ConfigError(f"config key '{tkey}': cannot read '{path}' as PDB: {exc}") from exc
        mass = 0.0
        for res in pdb.topology.residues():
            residues.add(res.name)
            atoms = [a.name for a in res.atoms()]
            mass += sum(a.element.mass._value for a in res.atoms() if a.element is not None)
            if res.name not in system["mapping"]:
                raise ConfigError(f"config key '{base}': residue {res.name!r} of '{path}' has no entry "
                                  f"(mapped: {sorted(system['mapping'])})")
            key = f"config key '{base}.{res.name}'"
            beads = system["mapping"][res.name]
            mapped = [a for names in beads.values() for a in names]
            unknown = sorted(set(mapped) - set(atoms))
            if unknown:
                raise ConfigError(f"{key}: atom(s) {unknown} are not in residue {res.name} of '{path}' "
                                  f"(its atoms: {atoms})")
            left_out = [a for a in atoms if a not in mapped]
            if left_out:
                raise ConfigError(f"{key}: atom(s) {left_out} of '{path}' are in no bead (their forces "
                                  "would be lost); every atom must belong to exactly one bead")
            bead_of = {}
            for bead, names in beads.items():
                for atom in names:
                    if atom in bead_of and bead_of[atom] != bead:
                        raise ConfigError(f"{key}: atom {atom} of residue {res.name} is in two beads "
                                          f"({bead_of[atom]!r} and {bead!r}); every atom must belong to exactly one bead")
                    bead_of[atom] = bead
            check_constraints_inside_beads(res, bead_of, constraints, key)
        total_mass += count * mass
    extra = sorted(set(system["mapping"]) - residues)
    if extra:
        paths = " or ".join(f"'{resolve(basedir, t)}'" for t, _, _ in molecule_types(system))
        raise ConfigError(f"config key '{base}': residue(s) {extra} are not in {paths} (the molecule templates of "
                          f"system {name!r} have {sorted(residues)})")
    return total_mass


def check_molecule_types(name: str, system: dict, basedir) -> None:
    """Exactly one of ``template_pdb`` + ``n_molecules`` (one molecule type) and ``molecules`` (a mixture);
    every template file present; no template twice."""
    single = [k for k in ("template_pdb", "n_molecules") if k in system]
    if ("molecules" in system) == bool(single) or (single and len(single) != 2):
        raise ConfigError(f"config key 'systems.{name}': give either 'template_pdb' and 'n_molecules' (one molecule "
                          "type) or 'molecules' (a mixture: a list of {template_pdb, n_molecules}), not "
                          f"{'both' if 'molecules' in system and single else 'neither' if not single else single}")
    seen = set()
    for template, _, where in molecule_types(system):
        key = f"systems.{name}.{where + '.' if where else ''}template_pdb"
        f = resolve(basedir, template)
        if not f.is_file():
            raise ConfigError(f"config key '{key}': file '{f}' not found")
        if f in seen:
            raise ConfigError(f"config key '{key}': '{f}' is listed twice; give one entry with the total count")
        seen.add(f)


def check_lengths_fit_the_box(config: dict, name: str, system: dict, box_mass_amu: float,
                              states: list[StatePoint], sheet) -> None:
    """Every interaction range must stay below half the box edge that the molecule count and density imply
    (NVT states: their density; NPT states: the initial packing density, which the reference starts from)."""
    from cgtransfer.units import ANGSTROM_PER_NM, volume_nm3_for_density

    ranges = {
        "reference_md.nonbonded_cutoff_nm": config["reference_md"]["nonbonded_cutoff_nm"] * ANGSTROM_PER_NM,
        "rdf.rmax_A": config["rdf"]["rmax_A"],
        "hipnn.dist_hard_max + cg_md.pair_skin_A": config["hipnn"]["dist_hard_max"] + config["cg_md"]["pair_skin_A"],
        "mscg.cutoff_A": config["mscg"]["cutoff_A"],
    }
    for st in states:
        density = st.density_g_cm3 if st.density_g_cm3 is not None else system["initial_density_g_cm3"]
        edge_A = volume_nm3_for_density(box_mass_amu, density) ** (1 / 3) * ANGSTROM_PER_NM
        n_molecules = sum(n for _, n, _ in molecule_types(system))
        for key, length in ranges.items():
            if length >= 0.5 * edge_A:
                where = (f"state {st.state!r} in {sheet} (NVT at {density:g} g/cm3)" if st.density_g_cm3 is not None
                         else f"the initial density {density:g} g/cm3 (systems.{name}.initial_density_g_cm3)")
                raise ConfigError(f"config key '{key}' = {length:g} Å does not fit in half the box edge "
                                  f"({0.5 * edge_A:.2f} Å) of {n_molecules} molecules at {where}; use more "
                                  f"molecules (systems.{name}.{'molecules' if 'molecules' in system else 'n_molecules'}) "
                                  "or a shorter range")


AVOGADRO_PER_A3 = 0.602214076  # N_A × 1e-24: g/cm3 → amu/Å3
MIN_VOLUME_PER_ATOM_A3 = 5.0  # diamond, the densest packing of atoms in condensed matter, has 5.7 Å3 per atom


def molecule_counts(basedir, system: dict) -> tuple[int, int]:
    """(molecules, atoms) in the box."""
    from openmm import app

    n_mol = n_atoms = 0
    for template, count, _ in molecule_types(system):
        n_mol += count
        n_atoms += count * app.PDBFile(str(resolve(basedir, template))).topology.getNumAtoms()
    return n_mol, n_atoms


def check_densities_plausible(name: str, system: dict, basedir, box_mass_amu: float, states: list[StatePoint],
                              rows: dict) -> None:
    """The initial density and every NVT density against the atoms they pack: fewer than 5 Å3 per atom is denser
    than any condensed matter, a density meant for another system or unit (checked before the box-size check,
    whose "does not fit in half the box" would blame the cutoff for it)."""
    n_mol, n_atoms = molecule_counts(basedir, system)
    mass = box_mass_amu / n_mol
    given = [(system["initial_density_g_cm3"], f"config key 'systems.{name}.initial_density_g_cm3'")]
    given += [(st.density_g_cm3, rows.get((name, st.state), f"state {st.state!r}") + ": column 'density_g_cm3'")
              for st in states if st.density_g_cm3 is not None]
    for density, what in given:
        per_molecule = mass / (density * AVOGADRO_PER_A3)
        per_atom = per_molecule * n_mol / n_atoms
        if per_atom < MIN_VOLUME_PER_ATOM_A3:
            raise ConfigError(f"{what} = {density:g} g/cm3 leaves {per_atom:.1f} Å3 per atom ({per_molecule:.1f} Å3 per "
                              f"molecule of {mass:.2f} g/mol) in system {name!r}: denser than any condensed matter "
                              "(diamond has 5.7 Å3 per atom); a density in another unit, or meant for another system?")


def setting_key(system: dict, name: str, section: str, key: str) -> str:
    """The config key a system's setting comes from: its own override, or the top-level section."""
    return f"systems.{name}.{section}.{key}" if key in system.get(section, {}) else f"{section}.{key}"


def check_lengths_reach_the_first_shell(config: dict, name: str, system: dict, box_mass_amu: float,
                                        states: list[StatePoint], sheet) -> None:
    """The RDF range and the models' interaction ranges must reach past the first coordination shell: at least
    the mean intermolecular spacing (M / (rho N_A))^(1/3) at the system's densest state (its NVT densities and the
    initial density; M the mean molecular mass of the templates)."""
    n_mol = sum(n for _, n, _ in molecule_types(system))
    mass = box_mass_amu / n_mol
    densest = (system["initial_density_g_cm3"], f"the initial density, systems.{name}.initial_density_g_cm3")
    for st in states:
        if st.density_g_cm3 is not None and st.density_g_cm3 > densest[0]:
            densest = (st.density_g_cm3, f"state {st.state!r} in {sheet}")
    spacing = (mass / (densest[0] * AVOGADRO_PER_A3)) ** (1 / 3)
    kinds = {spec.get("kind") for spec in system["models"].values() if isinstance(spec, dict)}
    lengths = [("rdf", "rmax_A")]
    lengths += [("hipnn", "dist_hard_max")] if kinds & {"hipnn", "hipnn_t"} else []
    lengths += [("mscg", "cutoff_A")] if "mscg" in kinds else []
    for section, key in lengths:
        value = config[section][key]
        if value < spacing:
            raise ConfigError(f"config key '{setting_key(system, name, section, key)}' = {value:g} Å is shorter than the "
                              f"mean intermolecular spacing of system {name!r}, {spacing:.2f} Å ((M / (rho N_A))^(1/3) "
                              f"for M = {mass:.2f} g/mol at {densest[0]:g} g/cm3, {densest[1]}): it would not reach "
                              "the first coordination shell (lengths are in Å)")


MAX_REFERENCE_TIMESTEP_FS = {"none": 1.0, "HBonds": 4.0, "AllBonds": 5.0, "HAngles": 5.0}


def template_has_bonds(basedir, system: dict) -> bool:
    from openmm import app

    return any(app.PDBFile(str(resolve(basedir, t))).topology.getNumBonds() > 0 for t, _, _ in molecule_types(system))


def check_run_lengths(config: dict, bonded: bool = True, where: str = "") -> None:
    """Report intervals against run lengths; the all-atom timestep against its constraints (a molecule with
    bonds; atoms without bonds, e.g. argon, have no vibration to resolve); the frames a run records against the
    time blocks training and the jackknife need. (A CG report interval shorter than the CG step records every
    step.)"""
    ref = config["reference_md"]
    limit = MAX_REFERENCE_TIMESTEP_FS[ref["constraints"]]
    if bonded and ref["timestep_fs"] > limit:
        raise ConfigError(f"config key 'reference_md.timestep_fs'{where} = {ref['timestep_fs']:g} fs is too long for "
                          f"constraints '{ref['constraints']}' (at most {limit:g} fs: the fastest unconstrained "
                          "vibration must be resolved)")
    for section in ("reference_md", "cg_md"):
        md = config[section]
        if md["report_interval_ps"] > md["production_ps"]:
            raise ConfigError(f"config key '{section}.report_interval_ps' ({md['report_interval_ps']:g} ps) is longer "
                              f"than '{section}.production_ps' ({md['production_ps']:g} ps): the run would record no frame")
    if ref["report_interval_ps"] * 1000.0 < ref["timestep_fs"]:
        raise ConfigError(f"config key 'reference_md.report_interval_ps' ({ref['report_interval_ps']:g} ps) is shorter "
                          f"than one timestep ({ref['timestep_fs']:g} fs)")
    n_ref = int(round(ref["production_ps"] / ref["report_interval_ps"]))
    tr = config["training"]
    n_valid = max(1, int(round(tr["valid_fraction"] * n_ref)))
    n_test = max(1, int(round(tr["test_fraction"] * n_ref)))
    if n_ref - n_valid - n_test < 2:
        raise ConfigError(f"config keys 'reference_md.production_ps' / 'reference_md.report_interval_ps' give "
                          f"{n_ref} frames per state: after the validation ({n_valid}) and test ({n_test}) blocks of "
                          "'training.valid_fraction' and 'training.test_fraction', fewer than 2 remain for training")
    if (n_ref - n_valid - n_test) * tr["fraction_train_eval"] < 1:
        raise ConfigError(f"config key 'training.fraction_train_eval' = {tr['fraction_train_eval']:g}: of the "
                          f"{n_ref - n_valid - n_test} training frames per state it evaluates none")
    cg = config["cg_md"]
    n_cg = int(round(cg["production_ps"] / cg["report_interval_ps"]))
    if n_cg < 2 * config["rdf"]["n_blocks"]:
        raise ConfigError(f"config key 'rdf.n_blocks' = {config['rdf']['n_blocks']}: a CG run records {n_cg} frames "
                          "('cg_md.production_ps' / 'cg_md.report_interval_ps'), fewer than 2 per jackknife block")


def check_training_settings(config: dict) -> None:
    tr = config["training"]
    if tr["batch_size"] > tr["max_batch_size"]:
        raise ConfigError(f"config key 'training.batch_size' ({tr['batch_size']}) exceeds 'training.max_batch_size' "
                          f"({tr['max_batch_size']}), the largest the plateau controller may raise it to")
    if tr["termination_patience"] < tr["plateau_patience"]:
        raise ConfigError(f"config key 'training.termination_patience' ({tr['termination_patience']}) is shorter than "
                          f"'training.plateau_patience' ({tr['plateau_patience']}): training would stop before the "
                          "batch size is ever raised")
    if tr["valid_fraction"] + tr["test_fraction"] >= 0.5:
        raise ConfigError("config keys 'training.valid_fraction' + 'training.test_fraction' must be below 0.5")


def check_forcefield(name: str, system: dict, basedir) -> None:
    """The force-field XML(s) must parse and have a template for every residue of the molecule template."""
    from openmm import app

    key = f"config key 'systems.{name}.forcefield'"
    files = [resolve_forcefield(basedir, e, f"systems.{name}.forcefield") for e in forcefield_entries(system)]
    try:
        forcefield = app.ForceField(*files)
    except Exception as exc:
        raise ConfigError(f"{key}: cannot read '{', '.join(files)}' as an OpenMM force field XML: {exc}") from exc
    for template, _, where in molecule_types(system):
        pdb_path = resolve(basedir, template)
        topology = app.PDBFile(str(pdb_path)).topology
        unmatched = forcefield.getUnmatchedResidues(topology)
        if unmatched:
            unbonded = [r for r in unmatched if len(list(r.atoms())) > 1 and not list(r.internal_bonds())]
            if unbonded:  # the first cause: without bonds no template can match
                tkey = f"systems.{name}.{where + '.' if where else ''}template_pdb"
                raise ConfigError(f"config key '{tkey}': '{pdb_path}' has no CONECT records: the "
                                  f"{len(list(unbonded[0].atoms()))} atoms of residue {unbonded[0].name} are unbonded, so "
                                  f"no residue template of '{', '.join(files)}' can match it (a template matches atom "
                                  "names, elements and bonds); add CONECT records for its bonds")
            names = sorted({r.name for r in unmatched})
            raise ConfigError(f"{key}: '{', '.join(files)}' has no residue template matching residue(s) {names} of "
                              f"'{pdb_path}' (atom names, elements and bonds must match a <Residue> of the XML)")
        check_bead_masses(name, system, forcefield, topology, pdb_path, files)


def atom_masses(forcefield, topology) -> list[float]:
    """Each template atom's mass (amu) as the force field gives it (a virtual site, e.g. TIP4P's M, has 0); the
    elements' masses if the force field cannot build the template alone."""
    from openmm import app, unit

    try:
        built = forcefield.createSystem(topology, nonbondedMethod=app.NoCutoff, constraints=None, rigidWater=False,
                                        removeCMMotion=False)
        return [built.getParticleMass(i).value_in_unit(unit.amu) for i in range(built.getNumParticles())]
    except Exception:
        return [a.element.mass._value if a.element is not None else 0.0 for a in topology.atoms()]


def check_bead_masses(name: str, system: dict, forcefield, topology, pdb_path, files) -> None:
    """A bead is the centre of mass of its atoms and moves with their summed mass: atoms of zero total mass (a
    virtual site such as TIP4P's M as a bead of its own) make a bead without a position or a mass."""
    masses = atom_masses(forcefield, topology)
    by_index = {a.index: m for a, m in zip(topology.atoms(), masses)}
    for res in topology.residues():
        beads = system["mapping"].get(res.name, {})
        mass_of = {a.name: by_index[a.index] for a in res.atoms()}
        for bead, atoms in beads.items():
            if sum(mass_of.get(a, 0.0) for a in atoms) <= 0.0:
                others = [b for b in beads if b != bead and sum(mass_of.get(a, 0.0) for a in beads[b]) > 0]
                example = (f" (e.g. {others[0]}: [{', '.join(beads[others[0]] + atoms)}])" if others else "")
                raise ConfigError(f"config key 'systems.{name}.mapping.{res.name}.{bead}': bead {bead!r} holds atom(s) "
                                  f"{atoms} of residue {res.name}, whose total mass is zero (in '{pdb_path}' with "
                                  f"'{', '.join(files)}'; a virtual site such as TIP4P's M): a bead without mass has no "
                                  f"centre of mass; put the massless site in a bead with mass{example}. Leaving it "
                                  "out of the mapping is not possible: every atom must belong to a bead")


def resolve(basedir, path) -> Path:
    p = Path(path)
    return p if p.is_absolute() else Path(basedir) / p


CONFIG_OVERRIDES = "--config overrides"  # what workflow/rules/common.smk adds to config_files when Snakemake has
# overrides; Snakemake counts the --configfile files among them too, so whether a value came from --config is
# decided here, by comparing the configuration with the files
_MISSING = object()


def _leaves(obj, path=()):
    if isinstance(obj, dict) and obj:
        for k, v in obj.items():
            yield from _leaves(v, (*path, str(k)))
    else:
        yield path, obj


def _lookup(obj, path):
    for k in path:
        if not isinstance(obj, dict) or k not in obj:
            return _MISSING
        obj = obj[k]
    return obj


class ConfigOrigin:
    """Where each key of a loaded configuration came from: the last config file that sets it, ``--config`` (a
    value no file gives), or the schema's default (a key no file sets); used to name the file in every error."""

    KEY = re.compile(r"(?:(?<=key )|(?<=keys )|(?<=' / )|(?<=' \+ ))'([^' ]+)'")

    def __init__(self, raw: dict, config_files, basedir):
        entries = [str(f) for f in (config_files or [])]
        self.files = [f for f in entries if f != CONFIG_OVERRIDES]
        cli_given = CONFIG_OVERRIDES in entries
        data = []
        for f in self.files:
            path = Path(f)
            for candidate in ([path] if path.is_absolute() else [Path.cwd() / path, Path(basedir) / path]):
                if candidate.is_file():
                    try:
                        data.append((f, yaml.safe_load(candidate.read_text()) or {}))
                    except Exception:  # Snakemake read it; a file this cannot read names no key
                        pass
                    break
        self.source: dict[tuple, str | None] = {}
        for path, value in _leaves(raw):
            src = "--config" if cli_given else None
            for f, d in reversed(data):
                given = _lookup(d, path)
                if given is not _MISSING:
                    src = f if (given == value or not cli_given) else "--config"
                    break
            self.source[path] = src
        self.cli_used = "--config" in self.source.values()
        self.active = bool(self.files) or cli_given

    def header(self) -> str:
        named = self.files + ([CONFIG_OVERRIDES] if self.cli_used else [])
        return f"the configuration ({', '.join(named)})" if named else "the configuration"

    def _has(self, path: tuple) -> bool:
        return any(p[:len(path)] == path or path[:len(p)] == p for p in self.source)

    def sources(self, path: tuple) -> list[str]:
        """The files (or ``--config``) that give ``path``: itself, everything under it, or the value it lies in."""
        found = [s for p, s in self.source.items() if p[:len(path)] == path]
        if not found:
            found = [s for p, s in self.source.items() if path[:len(p)] == p]
        if not found or None in found:  # not set (or partly not set) by any file: the schema's default
            found = [s for s in found if s is not None] + [None]
        out = []
        for s in found:
            label = s if s is not None else f"the schema's default (set in none of {', '.join(self.files)})"
            if s is None and not self.files:
                label = "the schema's default"
            if label not in out:
                out.append(label)
        return out

    def annotate(self, message: str) -> str:
        """``message`` with each line that names a config key prefixed by the file(s) it came from."""
        if not self.active:
            return message
        out = []
        for line in message.split("\n"):
            keys = [k for k in self.KEY.findall(line) if k != "(top level)" and k.split(".")[0] in TOP_LEVEL_KEYS]
            if "key '(top level)'" in line:  # an unexpected or missing top-level key
                names = re.findall(r"'([^']+)'", line.split(":", 1)[-1])
                keys += [n for n in names if (n,) in self.source] or ["(top level)"]
            labels: list[str] = []
            systems = re.findall(r"system '([A-Za-z0-9_]+)'", line) + re.findall(r"systems\.([A-Za-z0-9_]+)\.", line)
            for key in keys:
                parts = () if key == "(top level)" else tuple(key.split("."))
                unexpected = re.findall(r"'([^']+)'(?:, '[^']+')* (?:was|were) unexpected", line)
                if unexpected and parts:
                    named = re.findall(r"'([^']+)'", line[line.index("Additional"):]) if "Additional" in line else []
                    candidates = [(*parts, n) for n in named]
                else:
                    candidates = [("systems", s, *parts) for s in systems if parts and parts[0] in SECTIONS] + [parts]
                for cand in candidates:
                    if self._has(cand) or cand == candidates[-1]:
                        for label in self.sources(cand):
                            if label not in labels:
                                labels.append(label)
                        if not unexpected:
                            break
            if labels:
                indent = line[:len(line) - len(line.lstrip())]
                line = f"{indent}{', '.join(labels)}: {line.lstrip()}"
                text_for = re.search(r"key '([^']+)': '([^']*)' is not of type '(number|integer|boolean|object|array)'", line)
                if "--config" in labels and text_for:
                    key, text, wanted = text_for.groups()
                    line += CLI_TEXT_HINT if "." in key else CLI_TOP_LEVEL_HINT.format(key=key, text=text,
                                                                                        wanted=WANTED[wanted])
            out.append(line)
        return "\n".join(out)


CLI_TEXT_HINT = (" (Snakemake's --config parses only top-level key=value: a nested value such as "
                 "rdf='{rmax_A: 10.0}' arrives with every number as text; set nested keys in a config file "
                 "(--configfile my.yaml, which replaces config/config.yaml: copy its study), or use --config for top-level "
                 "numbers only, e.g. "
                 "seed=7)")

CLI_TOP_LEVEL_HINT = (" (--config {key}={text} gave the text {text!r}: Snakemake reads a --config value as YAML, so "
                      "'{key}' needs {wanted} written as the value itself (unquoted), not a word)")
WANTED = {"number": "a number", "integer": "an integer (e.g. 7)", "boolean": "true or false", "object": "a mapping",
          "array": "a list"}

OLD_FORMAT_MODELS = ("models now live under systems.<name>.models as name: {kind: hipnn|hipnn_t|mscg, states: "
                     "[state ids] or each / all / leave_one_out}")


def check_old_format(config: dict) -> None:
    """A configuration written for an earlier version: one message naming each change and how to write it now
    (the top-level 'model' section became 'hipnn' when models got kinds; a model was a bare list of states, now
    {kind, states})."""
    lines = []
    if "model" in config:
        lines.append("  config key 'model': the section of HIP-NN-TS hyperparameters is now called 'hipnn' (rename "
                     "'model:' to 'hipnn:'; MS-CG has its own section 'mscg'); " + OLD_FORMAT_MODELS)
    for name, system in (config.get("systems") or {}).items():
        models = system.get("models") if isinstance(system, dict) else None
        for entry, spec in (models.items() if isinstance(models, dict) else ()):
            if isinstance(spec, list):
                lines.append(f"  config key 'systems.{name}.models.{entry}': a bare list of states is the old format; "
                             f"{OLD_FORMAT_MODELS}: write {entry}: {{kind: hipnn, states: {_yaml_value(spec)}}} (an old "
                             "model was HIP-NN-TS)")
            elif isinstance(spec, dict) and "kind" not in spec and set(spec) <= {"states", "cg_md", "hipnn_t"}:
                lines.append(f"  config key 'systems.{name}.models.{entry}': no 'kind' (the old format); "
                             f"{OLD_FORMAT_MODELS}: add kind: hipnn, hipnn_t or mscg")
    if lines:
        raise ConfigError("the configuration is in an old format; what changed and how to write it now:\n"
                          + "\n".join(lines))


TOP_LEVEL_KEYS = ("state_points", "seed", "replicates", "systems", "model", *SECTIONS)


def load_study(config: dict, basedir, schema_dir=None, config_files=None) -> Study:
    """Fill the schema's defaults into ``config`` (in place: the dict Snakemake loaded from ``config_files`` and
    --config overrides, which its rules and scripts read), validate it and its state-point sheet; return the
    Study. Every error names the file (or --config) each key it names came from, or the sheet and row."""
    origin = ConfigOrigin(config, config_files, basedir)
    try:
        return _load_study(config, basedir, schema_dir, origin)
    except ConfigError as error:
        raise ConfigError(origin.annotate(str(error))) from None


def _load_study(config: dict, basedir, schema_dir, origin: ConfigOrigin) -> Study:
    basedir = Path(basedir)
    schema_dir = Path(schema_dir) if schema_dir else basedir / "workflow" / "schemas"
    source = origin.header()
    check_old_format(config)
    fill_defaults(config, schema_dir / "config.schema.yaml")  # before every check: all of them see the whole config
    validate_against_schema(config, schema_dir / "config.schema.yaml", source)
    sheets = [config["state_points"]] if isinstance(config["state_points"], str) else config["state_points"]
    states, rows = [], {}
    for entry in sheets:  # several sheets (e.g. the default's and config/systems.yaml's) are read as one
        sheet = resolve(basedir, entry)
        states += check_state_points(load_state_points(sheet), schema_dir / "state_points.schema.yaml", sheet, rows)
    if len(sheets) > 1:
        sheet = " + ".join(str(resolve(basedir, e)) for e in sheets)
        seen = set()
        for p in states:
            if (p.system, p.state) in seen:
                raise ConfigError(f"config key 'state_points' ({sheet}): state {p.state!r} of system {p.system!r} "
                                  "appears in two sheets")
            seen.add((p.system, p.state))
        check_state_names_differ_in_more_than_case(states, f"config key 'state_points' ({sheet})")
    expanded: dict[str, dict[str, dict]] = {}
    for name, system in config["systems"].items():
        overrides = [sec for sec in SECTIONS if sec in system]
        settings = system_settings(config, name)
        for sec in overrides:  # each overridden section, merged, must still follow its section's rules
            validate_section(settings[sec], schema_dir / "config.schema.yaml", sec, f"systems.{name}.{sec}",
                             f"the settings of system {name!r} (systems.{name}.{sec} merged over {sec})")
        check_molecule_types(name, system, basedir)
        if system.get("validation", {}).get("identity_mapping") and len(molecule_types(system)) > 1:
            raise ConfigError(f"config key 'systems.{name}.validation.identity_mapping': the exact-pair-force "
                              "validation handles one molecule type (one atom), not a mixture")
        own = {s.state for s in states if s.system == name}
        box_mass = check_template_and_mapping(name, system, basedir, settings["reference_md"]["constraints"])
        check_forcefield(name, system, basedir)
        own_points = [s for s in states if s.system == name]
        check_densities_plausible(name, system, basedir, box_mass, own_points, rows)
        check_lengths_reach_the_first_shell(settings, name, system, box_mass, own_points, sheet)
        check_lengths_fit_the_box(settings, name, system, box_mass, [s for s in states if s.system == name], sheet)
        if not own:
            raise ConfigError(f"config key 'systems.{name}': no state points for system {name!r} in {sheet}")
        own_sorted = [s.state for s in sorted((s for s in states if s.system == name), key=lambda s: s.temperature_K)]
        expanded[name] = expand_models(name, system["models"], own_sorted, str(sheet))
        check_temperature_aware(name, expanded[name], {s.state: s for s in states if s.system == name})
        if system.get("external_reference"):
            check_external_reference(config, name, settings, own_points, basedir)
        if settings["volume_term"]["enabled"]:
            expanded[name] = with_volume_corrected(name, expanded[name])
        for resname, beads in system["mapping"].items():
            atoms = [a for names in beads.values() for a in names]
            if len(atoms) != len(set(atoms)):
                raise ConfigError(f"config key 'systems.{name}.mapping.{resname}': an atom is in two beads")
        where = f" (system {name!r})" if len(config["systems"]) > 1 else ""
        model_cfg = settings["hipnn"]
        if model_cfg["dist_soft_max"] > model_cfg["dist_hard_max"] or model_cfg["dist_soft_min"] >= model_cfg["dist_soft_max"]:
            raise ConfigError(f"config key 'hipnn'{where}: need dist_soft_min < dist_soft_max <= dist_hard_max")
        mscg = settings["mscg"]
        if mscg["knot_spacing_A"] >= mscg["cutoff_A"]:
            raise ConfigError(f"config key 'mscg.knot_spacing_A'{where} must be well below 'mscg.cutoff_A'")
        check_run_lengths(settings, bonded=template_has_bonds(basedir, system), where=where)
        check_training_settings(settings)
    for s in states:
        if s.system not in config["systems"]:
            raise ConfigError(f"{sheet}: state {s.state!r} names system {s.system!r}, which is not in config key 'systems'")
    for name in config["systems"]:
        check_reference_system(config, name, states)
    check_names_differ_in_more_than_case(config, expanded)
    return Study(config, basedir, states, expanded)


def check_names_differ_in_more_than_case(config: dict, expanded: dict[str, dict[str, dict]]) -> None:
    """Systems, and models of one system, whose names differ only in case (methanol, Methanol; m_T298, M_T298)
    would share their result folders on a case-insensitive file system (macOS, Windows): refused, naming both
    (for a model, the entries of config key 'systems.<name>.models' that make them)."""
    folded: dict[str, str] = {}
    for name in config["systems"]:
        other = folded.setdefault(name.casefold(), name)
        if other != name:
            raise ConfigError(f"config key 'systems': systems {other!r} and {name!r} differ only in case: their result "
                              "folders (results/<system>/) would collide on a case-insensitive file system; rename one")
    for system, models in expanded.items():
        folded = {}
        for name in models:
            other = folded.setdefault(name.casefold(), name)
            if other != name:
                raise ConfigError(f"config key 'systems.{system}.models': models {other!r} and {name!r} differ only in "
                                  f"case: their result folders (results/{system}/rep<r>/models/<model>/) would collide "
                                  "on a case-insensitive file system; rename an entry")


def check_external_reference(config: dict, name: str, settings: dict, states: list[StatePoint], basedir) -> None:
    """``systems.<name>.external_reference``: the user's topology, trajectory and thermo files of each external
    state, read and checked before any job (``cgtransfer.external.check_external_references``)."""
    from cgtransfer.external import ExternalReferenceError, check_external_references

    molecules = [(resolve(basedir, t), n) for t, n, _ in molecule_types(config["systems"][name])]
    try:
        check_external_references(config, name, settings, states, molecules, basedir)
    except ExternalReferenceError as exc:
        raise ConfigError(str(exc)) from None


def check_reference_system(config: dict, name: str, states: list[StatePoint]) -> None:
    """``systems.<name>.reference_system``: the other system's all-atom runs must be exactly the runs this system
    would make: same molecules, force fields, starting density, reference_md settings, and every state of this
    system one of the other's at the same temperature, pressure and density."""
    other = config["systems"][name].get("reference_system")
    if other is None:
        return
    key = f"config key 'systems.{name}.reference_system'"
    if other not in config["systems"] or other == name:
        raise ConfigError(f"{key}: {other!r} is not another system of the configuration "
                          f"({sorted(set(config['systems']) - {name})})")
    if "reference_system" in config["systems"][other]:
        raise ConfigError(f"{key}: {other!r} reuses another system's reference itself; name that one directly")
    mine, theirs = config["systems"][name], config["systems"][other]
    checks = {"molecules (templates and counts)": (molecule_types(mine), molecule_types(theirs)),
              "forcefield": (forcefield_entries(mine), forcefield_entries(theirs)),
              "initial_density_g_cm3": (mine.get("initial_density_g_cm3"), theirs.get("initial_density_g_cm3")),
              "reference_md": (system_settings(config, name)["reference_md"],
                               system_settings(config, other)["reference_md"])}
    for what, (a, b) in checks.items():
        if a != b:
            raise ConfigError(f"{key}: its {what} differ from system {other!r}'s ({a} vs {b}): the all-atom runs "
                              "would not be the same")
    their_states = {s.state: s for s in states if s.system == other}
    for s in states:
        if s.system != name:
            continue
        t = their_states.get(s.state)
        if t is None or (t.temperature_K, t.pressure_bar, t.density_g_cm3) != (s.temperature_K, s.pressure_bar,
                                                                                s.density_g_cm3):
            raise ConfigError(f"{key}: state {s.state!r} of system {name!r} is not a state of system {other!r} "
                              "with the same temperature, pressure and density")


# ------------------------------------------------------------------------------ the key reference (config/README.md)
README_MARKER = "<!-- generated from workflow/schemas/config.schema.yaml by cgtransfer.config.config_reference_markdown: edit the schema's descriptions, then run `python -m cgtransfer.config` -->"


def config_keys(schema: dict, root: dict | None = None, path: str = ""):
    """(key, its schema with ``$ref`` resolved, required?) for every key the config schema defines, in schema order,
    nested objects after their key; a key of free names is written ``<name>`` (``systems.<name>``, or the
    schema's ``x-key``), a list item's keys ``[]`` (``systems.<name>.molecules[].template_pdb``)."""
    root = schema if root is None else root
    required = set(schema.get("required", []))
    for key, sub in schema.get("properties", {}).items():
        sub = _resolved(sub, root)
        name = f"{path}.{key}" if path else key
        yield name, sub, key in required
        yield from config_keys(sub, root, name)
        extra = sub.get("additionalProperties")
        if isinstance(extra, dict) and "properties" in _resolved(extra, root):
            yield from config_keys(_resolved(extra, root), root, f"{name}.<{sub.get('x-key', 'name')}>")
        items = sub.get("items")
        if isinstance(items, dict) and "properties" in _resolved(items, root):
            yield from config_keys(_resolved(items, root), root, f"{name}[]")


def _yaml_value(value) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    return text[:-3].strip() if text.endswith("...") else text


def config_reference_markdown(schema: dict) -> str:
    """The key reference of config/README.md (below its marker line), generated from the schema: every key with
    its default (as YAML) and its ``description``."""
    lines = ["## Keys", "",
             "Every key the schema defines, in its order. *default*: the value a config that leaves the key out gets; "
             "*required*: no default, a config must give it; a section's keys each have their own default; "
             "–: no default, given where the meaning says so (otherwise unused).", "",
             "| key | default | meaning |", "|---|---|---|"]
    for name, sub, required in config_keys(schema):
        if "default" in sub:
            default = "" if sub["default"] == {} else f"`{_yaml_value(sub['default'])}`"
        else:
            default = "*required*" if required else "–"
        meaning = " ".join(str(sub.get("description", "")).split()).replace("|", "\\|")
        lines.append(f"| `{name}` | {default} | {meaning} |")
    return "\n".join(lines) + "\n"


def config_reference_readme(readme_text: str, schema: dict) -> str:
    """``readme_text`` with everything after its marker line replaced by the generated key reference."""
    head, marker, _ = readme_text.partition(README_MARKER)
    if not marker:
        raise ValueError(f"the README has no marker line {README_MARKER!r}")
    return head + README_MARKER + "\n\n" + config_reference_markdown(schema)


if __name__ == "__main__":  # python -m cgtransfer.config: regenerate config/README.md's key reference
    _repo = DEFAULT_SCHEMA.parents[2]
    _readme = _repo / "config" / "README.md"
    _readme.write_text(config_reference_readme(_readme.read_text(), load_schema(DEFAULT_SCHEMA)))
    print(f"wrote {_readme}")
