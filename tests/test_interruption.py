"""A job killed outright (SIGKILL: a node failure, an out-of-memory kill, a scheduler's hard limit) leaves no
output that a downstream rule accepts, and a rerun with --rerun-incomplete repeats exactly the interrupted job
and what had not run yet. The real Snakemake CLI on a one-state, one-model study (real OpenMM, HIP-NN-TS training,
CG MD),
killed in three different rules; then completed and checked."""

import copy
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from cgtransfer.config import read_config

from conftest import REPO

pytestmark = pytest.mark.workflow
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def micro_config(work: Path) -> Path:
    cfg = read_config(REPO / ".test/config/config.yaml")  # the schema's defaults filled
    cfg = copy.deepcopy(cfg)
    cfg["systems"] = {"methanol": cfg["systems"]["methanol"]}  # one system, one state
    system = cfg["systems"]["methanol"]
    for key in ("template_pdb", "forcefield"):
        system[key] = str(REPO / system[key])
    system["models"] = {"hipnn": {"kind": "hipnn", "states": "each"}}
    cfg["volume_term"]["enabled"] = False
    cfg["dynamics"]["enabled"] = False  # its own segments are tested end to end in test_workflow (CI time)
    cfg["reference_md"]["threads"] = 1
    cfg["reference_md"]["equilibration_ps"] = 3.0  # one NVT state: no density to relax from the packed box
    cfg["reference_md"]["production_ps"] = 4.0  # 20 frames: enough for one model's three training epochs
    (work / "states.tsv").write_text("system\tstate\ttemperature_K\tpressure_bar\tdensity_g_cm3\n"
                                     "methanol\tT400\t400\t\t0.68\n")
    cfg["state_points"] = str(work / "states.tsv")
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def snakemake(work, config, *args, **kwargs):
    return subprocess.run([SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(work),
                           "--configfile", str(config), "--cores", "1", *args], capture_output=True, text=True,
                          **kwargs)


def planned_jobs(work, config) -> dict[str, int]:
    """rule → number of jobs a rerun would run (the dry run's job table)."""
    proc = snakemake(work, config, "--dry-run", "--rerun-incomplete")
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = proc.stdout + proc.stderr
    if "Nothing to be done" in text:
        return {}
    table = text.split("Job stats:", 1)[1].split("total", 1)[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", table, re.M)}


def in_production(partial: Path):
    """True once a checkpointed MD run has committed a stretch of production (its progress record, written
    atomically at each commit): the job is certainly running, in the middle of its production."""
    def check():
        try:
            progress = json.loads((partial / "progress.json").read_text())
        except (OSError, ValueError):
            return False
        return progress["phase"] == "production" and progress["done"] > 0
    return check


def run_and_kill(work, config, log_glob: str, ready) -> tuple[list[str], str]:
    """Start the workflow, SIGKILL its whole process group once the job whose log matches ``log_glob`` has
    started and ``ready()`` holds (an artefact of the running job, not a delay: the same point of the job on a
    fast or a slow machine); return the rules that finished before the kill and the killed rule."""
    proc = subprocess.Popen([SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(work),
                             "--configfile", str(config), "--cores", "1", "--rerun-incomplete"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    deadline = time.time() + 1200
    while not (list(work.glob(log_glob)) and ready()):
        assert proc.poll() is None, f"the workflow ended before {log_glob} was ready:\n{proc.stdout.read()[-3000:]}"
        assert time.time() < deadline
        time.sleep(0.05)
    assert proc.poll() is None, "the job finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    out = proc.communicate()[0]
    finished = re.findall(r"Finished jobid: \d+ \(Rule: (\w+)\)", out)
    subprocess.run([SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(work), "--configfile",
                    str(config), "--unlock"], capture_output=True, check=True)
    return finished, log_glob.split("/")[2]


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory):
    work = tmp_path_factory.mktemp("interrupted")
    config = micro_config(work)
    all_rules = set(planned_jobs(work, config)) - {"all"}
    done, kills = set(), []
    run = work / "results/methanol/rep1"
    for log_glob, ready in (
            ("results/logs/reference_md/methanol/rep1/T400.log", in_production(run / "reference/T400/.trajectory.partial")),
            # the training's first epoch checkpoint has appeared (two epochs to go): what a kill leaves there, the
            # rerun takes or discards (tests/test_training.py: the newest complete checkpoint), nothing here relies on it
            ("results/logs/train/methanol/rep1/hipnn_T400.log",
             lambda: (run / "models/hipnn_T400/checkpoint.tmp/checkpoint_epoch_1.pt").exists()),
            ("results/logs/cg_md/methanol/rep1/hipnn_T400/T400/nvt.log",
             in_production(run / "cg_md/hipnn_T400/T400/nvt/.trajectory.partial"))):
        finished, killed = run_and_kill(work, config, log_glob, ready)
        # looked at at once, before any rerun: which of the killed job's final outputs exist
        outputs = {"reference_md": work / "results/methanol/rep1/reference/T400",
                   "cg_md": work / "results/methanol/rep1/cg_md/hipnn_T400/T400/nvt"}.get(killed)
        existing = sorted(p.name for p in outputs.iterdir() if not p.name.startswith(".")) if outputs and \
            outputs.exists() else []
        done |= set(finished)
        plan = planned_jobs(work, config)
        kills.append({"killed": killed, "finished": set(finished), "done": set(done), "plan": plan,
                      "outputs_after_kill": existing,
                      "tmp_files": sorted(str(p) for p in (work / "results").rglob("*.tmp*"))})
    final = snakemake(work, config, "--rerun-incomplete")
    assert final.returncode == 0, final.stdout[-3000:] + final.stderr[-3000:]
    return work, kills, all_rules


def test_a_rerun_repeats_exactly_the_interrupted_job(interrupted):
    _, kills, all_rules = interrupted
    assert {"reference_md", "train", "cg_md"} <= all_rules
    for k in kills:
        plan = set(k["plan"])
        assert k["killed"] in plan, k  # the interrupted job runs again ...
        assert not (plan & k["done"]), k  # ... and nothing that had finished
        assert plan | k["done"] >= all_rules, k  # everything else is still to do
    assert kills[0]["plan"]["reference_md"] == 1 and "build_box" in kills[0]["done"]


def test_no_partial_output_survives_or_is_accepted(interrupted):
    """The killed job's outputs do not exist (written to temporaries and renamed at the end), so no downstream
    rule can start from them; the temporaries a kill leaves are removed when the job reruns."""
    work, kills, _ = interrupted
    ref = work / "results/methanol/rep1/reference/T400"
    cg = work / "results/methanol/rep1/cg_md/hipnn_T400/T400/nvt"
    assert kills[0]["killed"] == "reference_md" and kills[2]["killed"] == "cg_md"
    assert not list((work / "results").rglob("*.tmp*")), "temporaries left after the reruns"
    # after the reruns: complete, consistent outputs (frames of trajectory, forces and thermo agree)
    import MDAnalysis as mda

    u = mda.Universe(str(ref / "topology.pdb"), str(ref / "trajectory.dcd"))
    with np.load(ref / "forces.npz") as f:
        n_forces = len(f["forces_kj_mol_nm"])
    assert u.trajectory.n_frames == n_forces == len(pd.read_csv(ref / "thermo.csv")) == 20
    assert (cg / "summary.json").stat().st_size > 0
    assert (work / "results/methanol/rep1/summary/metrics.csv").stat().st_size > 0


def test_a_killed_simulation_leaves_no_output(interrupted):
    """Looked at right after the kill: none of the killed reference or CG run's final outputs exists (topology,
    trajectory, forces, thermo, summary are written to temporaries and renamed at the end)."""
    _, kills, _ = interrupted
    assert kills[0]["killed"] == "reference_md" and kills[2]["killed"] == "cg_md"
    finals = {"topology.pdb", "trajectory.dcd", "forces.npz", "thermo.csv", "summary.json"}
    for k in (kills[0], kills[2]):
        assert not finals & set(k["outputs_after_kill"]), k


def test_reruns_follow_physics_not_run_time_settings(interrupted):
    """On the finished study (dry runs only): another thread count or device reruns nothing; editing a state's
    row reruns that state's chain; adding a state runs only what it needs plus the summary; editing a stage's
    module in the package reruns that stage and what follows."""
    work, _, _ = interrupted
    config = work / "config.yaml"
    assert planned_jobs(work, config) == {}
    cfg = yaml.safe_load(config.read_text())
    for section, key, value in (("reference_md", "threads", 2), ("cg_md", "threads", 2), ("training", "device", "cpu"),
                                ("cg_md", "device", "auto"), ("reference_md", "platform", "Reference")):
        edited = copy.deepcopy(cfg)
        edited[section][key] = value
        (work / "edited.yaml").write_text(yaml.safe_dump(edited))
        assert planned_jobs(work, work / "edited.yaml") == {}, (section, key)
    # one row edited: its reference and everything built on it
    sheet = work / "states.tsv"
    original = sheet.read_text()
    sheet.write_text(original.replace("\t0.68", "\t0.70"))
    plan = planned_jobs(work, config)
    assert plan["reference_md"] == 1 and plan["map_to_cg"] == 1 and plan["summarize"] == 1
    assert "build_box" not in plan
    # a new state: its reference, its own model, the old model at the new state, the summary; not the old model
    sheet.write_text(original + "methanol\tT300\t300\t\t0.78\n")
    plan = planned_jobs(work, config)
    assert plan["reference_md"] == 1 and plan["train"] == 1 and plan["summarize"] == 1
    assert plan["cg_md"] == 3  # hipnn_T300 at both states, hipnn_T400 at T300 (NVT states only)
    sheet.write_text(original)
    assert planned_jobs(work, config) == {}
    # an edit to the comparison module (a changed checksum, not a mere touch) reruns compare and summarize only
    compare_py = REPO / "src/cgtransfer/stages/compare.py"
    source, stat = compare_py.read_bytes(), compare_py.stat()
    try:
        compare_py.write_bytes(source + b"\n# an edit\n")
        os.utime(compare_py, (time.time() + 5, time.time() + 5))
        # (learned_summary sets the learned interactions beside the held-out RDF error that compare writes)
        assert planned_jobs(work, config) == {"compare": 1, "summarize": 1, "verdict": 1, "learned_summary": 1,
                                              "all": 1}
    finally:
        compare_py.write_bytes(source)
        os.utime(compare_py, (stat.st_atime, stat.st_mtime))
