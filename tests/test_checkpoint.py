"""Checkpoint and resume: a reference run and a CG run killed with SIGKILL in the middle of production and run
again resume from their last checkpoint, not from step 0, and end with the outputs of an uninterrupted run:
the same frame count and steps in trajectory, forces and thermo (none missing, none twice), the frames before
the checkpoint bit-identical, the first frame after it a continuation of the same state (OpenMM's CPU
checkpoints do not restore the barostat's random numbers, so later frames diverge as chaotic MD does). A
checkpoint of a run with other settings is discarded, and the checkpoint directory is gone once the outputs are
written."""

import json
import re
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import MDAnalysis as mda
import numpy as np
import pandas as pd
import pytest

from conftest import REPO
from cgtransfer.md.box import build_box
from cgtransfer.stages.reference import run_reference
from cgtransfer.md.checkpoint import partial_directory

XML = REPO / "resources/methanol/oplsaa_methanol.xml"
MD = dict(platform="CPU", threads=1, timestep_fs=2.0, friction_per_ps=1.0, nonbonded_cutoff_nm=0.7,
          ewald_error_tolerance=5e-4, dispersion_correction=True, constraints="HBonds", barostat_frequency=25,
          minimize_max_iterations=50, equilibration_ps=0.4, production_ps=2.0, report_interval_ps=0.1,
          checkpoint_interval_ps=0.4)
NAMES = ("top.pdb", "traj.dcd", "forces.npz", "thermo.csv")


def reference(d: Path, md=MD, **kw):
    d.mkdir(exist_ok=True)
    return run_reference(d.parent / "box.pdb", XML, 300.0, 1.0, None, md, *(d / n for n in NAMES), threads=1, seed=5,
                         label="reference_md methanol/T300", **kw)


def kill_when(proc, condition, timeout=300):
    deadline = time.time() + timeout
    while not condition():
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        assert time.time() < deadline
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def in_production(partial: Path, done_at_least: int = 1):
    def check():
        try:
            p = json.loads((partial / "progress.json").read_text())
        except (OSError, ValueError):
            return False
        return p["phase"] == "production" and p["done"] >= done_at_least
    return check


def outputs(d: Path) -> dict:
    u = mda.Universe(str(d / "top.pdb"), str(d / "traj.dcd"))
    with np.load(d / "forces.npz") as f:
        forces = f["forces_kj_mol_nm"].copy()
    return {"xyz": np.stack([ts.positions.copy() for ts in u.trajectory]), "forces": forces,
            "thermo": pd.read_csv(d / "thermo.csv"), "top": (d / "top.pdb").read_text()}


@pytest.fixture(scope="module")
def box(tmp_path_factory):
    root = tmp_path_factory.mktemp("checkpoint")
    build_box(REPO / "resources/methanol/methanol.pdb", 64, 0.75, root / "box.pdb", seed=3)
    return root


def test_killed_reference_resumes_and_matches_an_uninterrupted_run(box):
    reference(box / "whole")
    whole = outputs(box / "whole")
    assert len(whole["xyz"]) == len(whole["forces"]) == len(whole["thermo"]) == 20
    assert not partial_directory(box / "whole" / "traj.dcd").exists()  # removed once the outputs are written

    killed = box / "killed"
    killed.mkdir()
    script = (f"import sys; sys.path.insert(0, {str(REPO / 'tests')!r}); from pathlib import Path; "
              f"import test_checkpoint as t; t.reference(Path({str(killed)!r}))")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    partial = partial_directory(killed / "traj.dcd")
    kill_when(proc, in_production(partial, done_at_least=400))  # past the second production checkpoint
    assert not any((killed / n).exists() for n in NAMES)  # nothing a downstream rule could take
    progress = json.loads((partial / "progress.json").read_text())
    assert progress["phase"] == "production" and progress["segments"] >= 2
    kept = int(round(progress["done"] * MD["timestep_fs"] / (1000 * MD["report_interval_ps"])))  # committed frames
    reference(killed)  # the rerun: resumes from the last commit
    resumed = outputs(killed)
    for key in ("xyz", "forces"):
        assert resumed[key].shape == whole[key].shape, key
        assert np.array_equal(resumed[key][:kept], whole[key][:kept]), key  # from the killed process
    # the run continued from the checkpointed state: 0.1 ps after it the frames still agree to ~0.01 A (a
    # restart from step 0 or from new velocities would be Angstroms away)
    assert np.abs(resumed["xyz"][kept] - whole["xyz"][kept]).max() < 0.05
    pd.testing.assert_series_equal(resumed["thermo"]["step"], whole["thermo"]["step"])
    pd.testing.assert_series_equal(resumed["thermo"]["time_ps"], whole["thermo"]["time_ps"])
    assert abs(resumed["thermo"]["temperature_K"].mean() - whole["thermo"]["temperature_K"].mean()) < 15.0
    assert not partial.exists()


def test_a_checkpoint_of_other_settings_is_not_resumed(box, capsys):
    d = box / "other"
    d.mkdir()
    script = (f"import sys; sys.path.insert(0, {str(REPO / 'tests')!r}); from pathlib import Path; "
              f"import test_checkpoint as t; t.reference(Path({str(d)!r}))")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    kill_when(proc, in_production(partial_directory(d / "traj.dcd")))
    reference(d, md={**MD, "friction_per_ps": 2.0})  # the job's parameters changed since the kill
    assert "discarding a checkpoint of a run with other settings" in capsys.readouterr().out
    assert len(pd.read_csv(d / "thermo.csv")) == 20


def test_killed_cg_run_resumes_and_matches(tiny_model, argon_cg, tmp_path):
    """The same for CG MD with the HIP-NN-TS model as an OpenMM PythonForce (NPT: barostat state included)."""
    from cgtransfer.stages.cg_md import run_cg_md

    cfg = dict(pair_skin_A=1.0, barostat_frequency=25, timestep_fs=5.0, friction_per_ps=5.0, report_interval_ps=0.1,
               equilibration_ps=0.5, production_ps=3.0, max_temperature_factor=3.0, checkpoint_interval_ps=0.5)
    names = ("top.pdb", "traj.dcd", "thermo.csv", "summary.json")

    def run(d: Path):
        d.mkdir(exist_ok=True)
        return run_cg_md(tiny_model, argon_cg["dataset"], 120.0, 500.0, "npt", cfg, *(d / n for n in names),
                         label="argon npt")

    run(tmp_path / "whole")
    killed = tmp_path / "killed"
    killed.mkdir()
    script = ("import sys, json; sys.path.insert(0, %r); from pathlib import Path; "
              "from cgtransfer.compute import configure; configure(1, 'cpu'); "
              "import test_checkpoint as t; t.CG_RUN(Path(%r), Path(%r), Path(%r), json.loads(%r))"
              % (str(REPO / "tests"), str(killed), str(tiny_model), str(argon_cg["dataset"]), json.dumps(cfg)))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    kill_when(proc, in_production(partial_directory(killed / "traj.dcd"), done_at_least=200))
    run(killed)
    a = mda.Universe(str(tmp_path / "whole/top.pdb"), str(tmp_path / "whole/traj.dcd"))
    b = mda.Universe(str(killed / "top.pdb"), str(killed / "traj.dcd"))
    assert a.trajectory.n_frames == b.trajectory.n_frames == 30
    xa = np.stack([ts.positions.copy() for ts in a.trajectory])
    xb = np.stack([ts.positions.copy() for ts in b.trajectory])
    assert np.array_equal(xa[:4], xb[:4])  # the first checkpointed production segment (0.5 ps = 5 frames; >= 4)
    ta, tb = pd.read_csv(tmp_path / "whole/thermo.csv"), pd.read_csv(killed / "thermo.csv")
    pd.testing.assert_series_equal(ta["step"], tb["step"])
    assert json.loads((killed / "summary.json").read_text())["n_frames"] == 30
    assert not partial_directory(killed / "traj.dcd").exists()


def CG_RUN(d, model, dataset, cfg):
    """The CG run of test_killed_cg_run_resumes_and_matches, in a process of its own (to be killed)."""
    from cgtransfer.stages.cg_md import run_cg_md

    names = ("top.pdb", "traj.dcd", "thermo.csv", "summary.json")
    return run_cg_md(model, dataset, 120.0, 500.0, "npt", cfg, *(d / n for n in names), label="argon npt")


def TRAIN(dataset, summary, out: Path, epochs: int):
    """A HIP-NN-TS training of ``epochs`` epochs on the argon fixture (run in its own process to be killed)."""
    from conftest import TINY_NETWORK, TINY_TRAINING
    from cgtransfer.stages.train import train_model

    train = {**TINY_TRAINING, "max_epochs": epochs, "termination_patience": 100, "plateau_patience": 50}
    return train_model("hipnn", [dataset], [summary], ["T120"], {"network": TINY_NETWORK, "training": train},
                       {"width_A": 0.15, "force_fraction_at_onset": 0.05}, train, out, label="argon/resume", seed=2)


def test_killed_training_resumes_from_its_last_epoch(argon_cg, tmp_path, capsys):
    """hippynn writes a checkpoint every epoch; a training killed after a few epochs and rerun continues from the
    last one and ends with as many epochs as an uninterrupted training; the resume points are removed at the end."""
    epochs = 8
    out = tmp_path / "killed" / "checkpoint"
    out.parent.mkdir()
    script = ("import sys; sys.path.insert(0, %r); from pathlib import Path; "
              "from cgtransfer.compute import configure; configure(1, 'cpu'); "
              "import test_checkpoint as t; t.TRAIN(Path(%r), Path(%r), Path(%r), %d)"
              % (str(REPO / "tests"), str(argon_cg["dataset"]), str(argon_cg["summary"]), str(out), epochs))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tmp_dir = out.with_name(out.name + ".tmp")
    # killed once epoch 4's checkpoint has appeared: epoch 3's is then complete (hippynn writes one epoch's file after
    # the other, and the pruning keeps the one before the newest); a file that merely exists may still be written
    kill_when(proc, lambda: (tmp_dir / "checkpoint_epoch_4.pt").exists())
    assert not out.exists()  # nothing a downstream rule could take
    record = TRAIN(argon_cg["dataset"], argon_cg["summary"], out, epochs)
    printed = capsys.readouterr().out
    resumed = re.search(r"argon/resume: resumed from checkpoint_epoch_(\d+)\.pt", printed)
    assert resumed and int(resumed.group(1)) >= 3, printed[-2000:]
    assert record["epochs"] == epochs and len(record["curve"]) == epochs  # the whole history, not only the rerun's
    assert not list(out.glob("*epoch_*.pt")) and not (out / "fit_identity.json").exists() and not tmp_dir.exists()
    from cgtransfer.kinds.registry import load_model

    assert load_model(out).kind == "hipnn"
