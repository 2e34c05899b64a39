"""config/README.md documents every key of the config schema, with the schema's defaults: its key reference is
generated from the schema (``python -m cgtransfer.config``) and must match it byte for byte."""

import re

import yaml

from conftest import REPO
from cgtransfer.config import (README_MARKER, config_keys, config_reference_markdown, config_reference_readme,
                               load_schema)

SCHEMA = load_schema(REPO / "workflow/schemas/config.schema.yaml")
README = (REPO / "config/README.md").read_text()


def _documented() -> dict[str, str]:
    """key → its default column, from the README's key table."""
    rows = re.findall(r"^\| `([^`]+)` \| ([^|]*) \|", README.split(README_MARKER, 1)[1], re.M)
    return {key: default.strip() for key, default in rows}


def test_readme_key_reference_is_the_generated_one():
    assert README_MARKER in README
    assert README == config_reference_readme(README, SCHEMA), (
        "config/README.md is stale: regenerate it with `python -m cgtransfer.config`")


def test_every_schema_key_is_documented_and_every_documented_key_exists():
    keys = [name for name, _, _ in config_keys(SCHEMA)]
    documented = _documented()
    assert sorted(set(keys) - set(documented)) == [], "schema keys missing from config/README.md"
    assert sorted(set(documented) - set(keys)) == [], "config/README.md documents keys the schema lacks"
    assert all(sub.get("description") for _, sub, _ in config_keys(SCHEMA)), "a schema key has no description"


def test_readme_states_the_schema_defaults():
    documented = _documented()
    for name, sub, required in config_keys(SCHEMA):
        text = documented[name]
        if "default" in sub and sub["default"] != {}:
            assert yaml.safe_load(text.strip("`")) == sub["default"], name
        elif required:
            assert text == "*required*", name
        else:
            assert "`" not in text, name


def test_generator_is_deterministic_and_covers_the_sections():
    text = config_reference_markdown(SCHEMA)
    assert text == config_reference_markdown(load_schema(REPO / "workflow/schemas/config.schema.yaml"))
    for section in ("reference_md", "rdf", "hipnn", "hipnn_t", "mscg", "prior", "training", "cg_md", "volume_term"):
        assert f"| `{section}` |" in text and f"| `systems.<name>.{section}` |" in text
    assert "| `systems.<name>.molecules` |" in text and "| `systems.<name>.models.<entry>.kind` |" in text
