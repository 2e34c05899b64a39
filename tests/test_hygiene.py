"""Workflow hygiene, checked in CI: `snakemake --lint` and `snakefmt --check` are clean, and the conda
environment that the rules' `conda:` directives name lists the same packages and pins as pyproject.toml."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

from conftest import REPO

BIN = Path(sys.executable).parent


def test_snakemake_lint_is_clean():
    proc = subprocess.run([str(BIN / "snakemake"), "--lint"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0 and "Congratulations, your workflow is in a good condition" in proc.stdout + proc.stderr, \
        proc.stdout[-3000:] + proc.stderr[-3000:]


def test_snakefmt_is_clean():
    proc = subprocess.run([str(BIN / "snakefmt"), "--check", "Snakefile", "workflow"], cwd=REPO, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def _name(requirement: str) -> str:
    return re.split(r"[=<>!~ \[]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_conda_env_matches_pip_requirements():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pip = {_name(r): r for r in project["dependencies"]}
    env = yaml.safe_load((REPO / "envs/cgtransfer.yaml").read_text())
    listed = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    conda_pip = {_name(r): r for r in listed if not r.startswith("-e")}
    extras = {_name(r) for r in project["optional-dependencies"]["slurm"]}
    assert set(conda_pip) == set(pip) | extras
    for name, requirement in pip.items():  # the same pins (exact versions where pyproject pins one)
        if "==" in requirement:
            assert conda_pip[name].replace(" ", "") == requirement.replace(" ", ""), name
    for rule_file in (REPO / "workflow/rules").glob("*.smk"):
        text = rule_file.read_text()
        assert text.count("\nrule ") + text.startswith("rule ") == text.count('conda:\n        "../../envs/cgtransfer.yaml"'), rule_file
