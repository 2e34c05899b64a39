"""Configuration: JSON-schema validation of config.yaml and the state-point sheet, plus the checks a schema
cannot express (exactly one of pressure and density, files that must exist, models naming known states).

Everything here runs when Snakemake parses the workflow, before any job starts; every error names the key
(or the state-point row) and the file at fault.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pandas as pd
import yaml


class ConfigError(ValueError):
    """The configuration or the state-point sheet is invalid (the message names the key and the file)."""


def _path_str(path) -> str:
    parts = [str(p) for p in path]
    return ".".join(parts) if parts else "(top level)"


def validate_against_schema(instance, schema_path, what: str) -> None:
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"  key '{_path_str(e.absolute_path)}': {e.message}" for e in errors[:10]]
        raise ConfigError(f"{what} does not match {schema_path}:\n" + "\n".join(lines))


STATE_COLUMNS = ("system", "state", "temperature_K", "pressure_bar", "density_g_cm3")


def load_state_points(path) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config key 'state_points': file '{path}' not found")
    table = pd.read_csv(path, sep="\t", comment="#", dtype={"system": str, "state": str})
    for col in ("pressure_bar", "density_g_cm3"):
        if col not in table:
            table[col] = math.nan
    return table


def _clean_row(row: dict) -> dict:
    return {k: v for k, v in row.items() if not (isinstance(v, float) and math.isnan(v))}


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


def check_state_points(table: pd.DataFrame, schema_path, sheet_path) -> list[StatePoint]:
    unknown = set(table.columns) - set(STATE_COLUMNS)
    if unknown:
        raise ConfigError(f"{sheet_path}: unknown column(s) {sorted(unknown)}; allowed: {list(STATE_COLUMNS)}")
    points = []
    for i, row in enumerate(table.to_dict("records")):
        row = _clean_row(row)
        where = f"{sheet_path}, row {i + 1} (system {row.get('system')!r}, state {row.get('state')!r})"
        validate_against_schema(row, schema_path, where)
        has_p, has_rho = "pressure_bar" in row, "density_g_cm3" in row
        if has_p == has_rho:
            raise ConfigError(f"{where}: give exactly one of 'pressure_bar' (NPT) and 'density_g_cm3' (NVT); "
                              f"found {'both' if has_p else 'neither'}")
        points.append(StatePoint(row["system"], row["state"], float(row["temperature_K"]),
                                 float(row["pressure_bar"]) if has_p else None,
                                 float(row["density_g_cm3"]) if has_rho else None))
    seen = set()
    for p in points:
        if (p.system, p.state) in seen:
            raise ConfigError(f"{sheet_path}: state {p.state!r} of system {p.system!r} appears twice")
        seen.add((p.system, p.state))
    return points


@dataclass
class Study:
    config: dict
    basedir: Path
    states: list[StatePoint]

    def systems(self) -> list[str]:
        return list(self.config["systems"])

    def system(self, name: str) -> dict:
        return self.config["systems"][name]

    def path(self, system: str, key: str) -> str:
        return str(resolve(self.basedir, self.system(system)[key]))

    def states_of(self, system: str) -> list[StatePoint]:
        return sorted((s for s in self.states if s.system == system), key=lambda s: s.temperature_K)

    def state(self, system: str, state: str) -> StatePoint:
        for s in self.states:
            if s.system == system and s.state == state:
                return s
        raise KeyError(f"no state {state!r} for system {system!r}")

    def models(self, system: str) -> dict[str, list[str]]:
        """model name → training states."""
        return {name: m["states"] for name, m in self.system(system)["models"].items()}

    def model(self, system: str, name: str) -> dict:
        """{kind, states} of one model."""
        return self.system(system)["models"][name]

    def models_of_kind(self, system: str, kind: str) -> list[str]:
        return [name for name, m in self.system(system)["models"].items() if m["kind"] == kind]

    def ensembles(self, system: str, state: str) -> list[str]:
        return ["nvt", "npt"] if self.state(system, state).pressure_bar is not None else ["nvt"]


def resolve(basedir, path) -> Path:
    p = Path(path)
    return p if p.is_absolute() else Path(basedir) / p


def load_study(config: dict, basedir, schema_dir=None) -> Study:
    """Validate ``config`` (already loaded by Snakemake) and its state-point sheet; return the Study."""
    basedir = Path(basedir)
    schema_dir = Path(schema_dir) if schema_dir else basedir / "workflow" / "schemas"
    validate_against_schema(config, schema_dir / "config.schema.yaml", "the configuration")
    sheet = resolve(basedir, config["state_points"])
    states = check_state_points(load_state_points(sheet), schema_dir / "state_points.schema.yaml", sheet)
    for name, system in config["systems"].items():
        for key in ("template_pdb", "forcefield"):
            f = resolve(basedir, system[key])
            if not f.is_file():
                raise ConfigError(f"config key 'systems.{name}.{key}': file '{f}' not found")
        own = {s.state for s in states if s.system == name}
        if not own:
            raise ConfigError(f"config key 'systems.{name}': no state points for system {name!r} in {sheet}")
        for model, spec in system["models"].items():
            trained_on = spec["states"]
            if len(set(trained_on)) != len(trained_on):
                raise ConfigError(f"config key 'systems.{name}.models.{model}.states': a state is listed twice")
            missing = [s for s in trained_on if s not in own]
            if missing:
                raise ConfigError(f"config key 'systems.{name}.models.{model}.states': state(s) {missing} are not state "
                                  f"points of {name!r} in {sheet} (known: {sorted(own)})")
        for resname, beads in system["mapping"].items():
            atoms = [a for names in beads.values() for a in names]
            if len(atoms) != len(set(atoms)):
                raise ConfigError(f"config key 'systems.{name}.mapping.{resname}': an atom is in two beads")
    for s in states:
        if s.system not in config["systems"]:
            raise ConfigError(f"{sheet}: state {s.state!r} names system {s.system!r}, which is not in config key 'systems'")
    model_cfg = config["hipnn"]
    if model_cfg["dist_soft_max"] > model_cfg["dist_hard_max"] or model_cfg["dist_soft_min"] >= model_cfg["dist_soft_max"]:
        raise ConfigError("config key 'hipnn': need dist_soft_min < dist_soft_max <= dist_hard_max")
    mscg = config["mscg"]
    if mscg["knot_spacing_A"] >= mscg["cutoff_A"]:
        raise ConfigError("config key 'mscg.knot_spacing_A' must be well below 'mscg.cutoff_A'")
    tr = config["training"]
    if tr["valid_fraction"] + tr["test_fraction"] >= 0.5:
        raise ConfigError("config keys 'training.valid_fraction' + 'training.test_fraction' must be below 0.5")
    return Study(config, basedir, states)
