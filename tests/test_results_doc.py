"""docs/results.md is generated from the committed result files, and its numbers can be traced to them.

* the committed docs/results.md is byte for byte what docs/make_results.py writes from docs/default_run/ and
  benchmarks/results/ (edit the script or the files, never the document);
* every number in a table of the per-system sections is a value some file in docs/default_run/ holds, rounded as
  displayed (so a number typed into the generator's tables cannot hide);
* changing an input file changes the document.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "docs" / "make_results.py"
DOC = ROOT / "docs" / "results.md"
RUN_DIR = ROOT / "docs" / "default_run"
NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?(?![\w.])")


@pytest.fixture(scope="module")
def make_results():
    spec = importlib.util.spec_from_file_location("make_results", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_results_doc_is_the_generated_one(make_results, tmp_path):
    out = tmp_path / "results.md"
    assert make_results.main([str(out)]) == 0
    assert out.read_bytes() == DOC.read_bytes(), (
        "docs/results.md differs from what docs/make_results.py writes: run `python docs/make_results.py`")


def _file_values(run_dir: Path) -> tuple[list[float], set[str]]:
    """Every number the result files hold: CSV cells, JSON values, and numbers written inside their strings."""
    values: list[float] = []
    tokens: set[str] = set()
    for csv in run_dir.rglob("*.csv"):
        frame = pd.read_csv(csv)
        for column in frame.columns:
            numeric = pd.to_numeric(frame[column], errors="coerce").dropna()
            values += [float(x) for x in numeric]
            if "compressibility" in column:  # displayed in units of 1e-5 / bar
                values += [float(x) * 1e5 for x in numeric]
            if column.startswith("D_") and column.endswith("m2_s"):  # diffusion, displayed in 1e-9 m²/s
                values += [float(x) * 1e9 for x in numeric]

    def walk(x):
        if isinstance(x, bool) or x is None:
            return
        if isinstance(x, (int, float)):
            values.append(float(x))
        elif isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    for path in run_dir.rglob("*.json"):
        walk(json.loads(path.read_text()))
    for path in list(run_dir.rglob("*.json")) + list(run_dir.rglob("*.txt")):
        tokens |= set(NUMBER.findall(path.read_text()))
    return [v for v in values if math.isfinite(v)], tokens


def _allowed(values: list[float], tokens: set[str]) -> set[str]:
    allowed = {t.lstrip("+") for t in tokens}
    for v in values:
        for digits in range(5):
            text = f"{v:.{digits}f}"
            allowed.add("0." + "0" * digits if digits and float(text) == 0 else ("0" if float(text) == 0 else text))
            allowed.add(text)
        allowed.add(f"{v:.3g}")
    return allowed


def _system_table_numbers(doc: str) -> list[tuple[str, str]]:
    """(number, table row) for every number in a table body of the per-system sections (not the benchmarks,
    whose speed ratios are computed)."""
    body = doc.split("\n## Benchmarks")[0].split("\n## The verdict over replicates")[0]
    found = []
    lines = body.splitlines()
    for i, line in enumerate(lines):
        if not line.startswith("|") or line.startswith("|---"):
            continue
        if i + 1 < len(lines) and lines[i + 1].startswith("|---"):
            continue  # header row
        cells = [c.strip() for c in line.strip("|").split("|")]
        for c in cells:
            for number in NUMBER.findall(c.replace("**", "")):
                found.append((number, line))
    return found


def test_every_table_number_is_in_a_result_file(make_results):
    values, tokens = _file_values(RUN_DIR)
    for own in ("earlier_run", "replication", "temperature_transfer"):  # their own sections' files
        if (ROOT / "docs" / own).exists():
            more_values, more_tokens = _file_values(ROOT / "docs" / own)
            values, tokens = values + more_values, tokens | more_tokens
    allowed = _allowed(values, tokens)
    numbers = _system_table_numbers(make_results.render())
    assert len(numbers) > 1000
    missing = [(n, row) for n, row in numbers if n.lstrip("+") not in allowed]
    assert not missing, f"numbers in docs/results.md tables that no file in docs/default_run holds: {missing[:10]}"


def test_every_verdict_number_is_in_the_replicated_run_files(make_results):
    """The verdict section: every number of its tables is a value of docs/default_run/verdict/ (rule verdict's
    files of the default run; the count of contrasts and percentages of shares included), computed, not typed."""
    demo = RUN_DIR / "verdict"
    section = make_results.render().split("\n## Methanol: the verdict over replicates")[1].split("\n## ")[0]
    values, tokens = _file_values(demo)
    allowed = _allowed(values + [100 * v for v in values], tokens)
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| claim")
            and not line.startswith("| metric")]
    numbers = [(n, row) for row in rows for cell in row.strip("|").split("|")[2:] for n in NUMBER.findall(cell)]
    assert len(numbers) > 50
    missing = [(n, row) for n, row in numbers if n.lstrip("+") not in allowed]
    assert not missing, missing[:10]


def test_every_replication_number_is_in_the_two_runs_files(make_results):
    """The replication section: every number of its tables is a value of docs/replication/ (the comparison, run
    A's and run B's verdicts, the pooled verdict), computed by benchmarks/replication.py."""
    doc = make_results.render()
    assert "\n## Methanol: does the verdict replicate?" in doc
    section = doc.split("\n## Methanol: does the verdict replicate?")[1].split("\n## ")[0]
    values, tokens = _file_values(ROOT / "docs" / "replication")  # first_run/ (run A), second_run/, pooled/
    allowed = _allowed([*values, *(100 * v for v in values)], tokens)
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| claim")
            and not line.startswith("| metric")]
    numbers = [(n, row) for row in rows for cell in row.strip("|").split("|")[1:] for n in NUMBER.findall(cell)]
    assert len(numbers) > 100
    missing = [(n, row) for n, row in numbers if n.lstrip("+") not in allowed]
    assert not missing, missing[:10]
    replication = json.loads((ROOT / "docs" / "replication" / "replication.json").read_text())
    assert f"{replication['n_each_inside_the_other']} of {replication['n_claims']} claims" in section


def test_every_model_row_traces_to_that_models_cells(make_results):
    """Stricter: a number in a model × state table row must be one of that model's own values in its system's
    metrics.csv (its base model's for a `_vol` row), not merely some value somewhere."""
    doc = make_results.render()
    checked = 0
    for name, folder, title, _ in make_results.SYSTEMS:
        section = doc.split(f"\n## {title}\n")[1].split("\n## ")[0]
        section, _, learned_part = section.partition("\n### What the network learned\n")
        learned_part = learned_part.split("\n### ")[0]
        learned_csv = (RUN_DIR / folder if folder else RUN_DIR) / "learned.csv"
        if learned_part:  # the learned tables: each model's numbers are its own rows of learned.csv
            learned = pd.read_csv(learned_csv)
            for model, rows in learned.groupby("model"):
                own = _allowed([v for v in rows.apply(pd.to_numeric, errors="coerce").to_numpy().ravel().tolist()
                                if math.isfinite(v)], set())
                checked += _check_rows(learned_part, model, own, f"{name} (learned.csv)")
        metrics = pd.read_csv((RUN_DIR / folder if folder else RUN_DIR) / "metrics.csv")
        for model, rows in metrics.groupby("model"):
            numeric = rows.apply(pd.to_numeric, errors="coerce").to_numpy().ravel().tolist()
            own = _allowed([v for v in numeric if math.isfinite(v)] +
                           [v * 1e5 for v in rows.filter(like="compressibility").to_numpy().ravel().tolist()
                            if math.isfinite(v)], set())
            checked += _check_rows(section, model, own, name)
    assert checked > 1000


def _check_rows(text: str, model: str, own: set[str], where: str) -> int:
    """Every number of the table rows of `model` in `text` is one of `own`; returns how many were checked."""
    checked = 0
    for line in text.splitlines():
        if line.startswith(f"| `{model}` |"):
            for number in NUMBER.findall(line.replace("**", "")):
                checked += 1
                assert number.lstrip("+") in own, f"{where}: {number} in {line!r} is not a value of {model}"
    return checked


def test_an_edited_result_file_changes_the_doc(make_results, tmp_path):
    original = make_results.render()
    copy = tmp_path / "default_run"
    shutil.copytree(RUN_DIR, copy)

    metrics = pd.read_csv(copy / "water" / "metrics.csv")
    row = (metrics["model"] == "hipnn_all") & (metrics["state"] == "T298")
    assert row.sum() == 1
    metrics.loc[row, "rdf_mae_over_noise"] = 9.87654
    metrics.to_csv(copy / "water" / "metrics.csv", index=False)
    edited = make_results.render(run_dir=copy)
    assert edited != original
    assert "9.88" not in original
    structure = edited.split("## Water")[1].split("### Structure")[1].split("###")[0]
    hipnn_all = next(line for line in structure.splitlines() if line.startswith("| `hipnn_all` |"))
    t298 = hipnn_all.strip("|").split("|")[3].strip()  # model, T250, T277, T298
    assert t298.startswith("**9.88 ± ")

    headline = json.loads((copy / "headline.json").read_text())
    headline["single_heldout_vs_trained"]["hipnn"]["geometric_mean_ratio"] = 7.654
    (copy / "headline.json").write_text(json.dumps(headline))
    assert "| 7.65 |" in make_results.render(run_dir=copy)
