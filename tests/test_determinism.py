"""Determinism on the CPU: the same seeds give bit-identical packed boxes, reference trajectories and forces,
mapped datasets and training metrics; a different seed gives different ones. Real packmol, OpenMM, MDAnalysis
and hippynn on a small methanol box (the workflow's own stage functions, as the rules call them)."""

import json

import numpy as np
import pytest

from conftest import REPO, TINY_NETWORK, TINY_TRAINING
from cgtransfer.stages import mapping
from cgtransfer.md.box import build_box
from cgtransfer.config import read_config
from cgtransfer.io import write_json, write_npz
from cgtransfer.stages.reference import run_reference
from cgtransfer.stages.train import train_and_report

CONFIG = read_config(REPO / ".test/config/config.yaml")  # the schema's defaults filled
MD = {**CONFIG["reference_md"], "nonbonded_cutoff_nm": 0.8, "equilibration_ps": 0.2, "production_ps": 1.0,
      "report_interval_ps": 0.1, "minimize_max_iterations": 50, "threads": 1}
TEMPLATE = REPO / "resources/methanol/methanol.pdb"
FORCEFIELD = REPO / "resources/methanol/oplsaa_methanol.xml"
MAPPING = CONFIG["systems"]["methanol"]["mapping"]


def pipeline(d, box_seed: int, md_seed: int, train_seed: int) -> dict:
    """box → NPT reference (barostat moves too) → mapped dataset → HIP-NN-TS training, as the rules run them."""
    d.mkdir()
    build_box(TEMPLATE, 100, 0.76, d / "packed.pdb", seed=box_seed)
    run_reference(d / "packed.pdb", FORCEFIELD, 300.0, 1.0, None, MD, d / "topology.pdb", d / "trajectory.dcd",
                  d / "forces.npz", d / "thermo.csv", threads=1, seed=md_seed, label="determinism")
    cg = mapping.map_trajectory(d / "topology.pdb", d / "trajectory.dcd", d / "forces.npz", MAPPING)
    write_npz(d / "dataset.npz", **cg)
    write_json(d / "summary.json", mapping.summarize_mapped(cg, mapping.reference_rdfs(cg, 20, 7.0), 1e-3))
    metrics = train(d, d, train_seed)
    with np.load(d / "forces.npz") as f, np.load(d / "dataset.npz") as ds:
        return {"box": (d / "packed.pdb").read_text(), "forces": f["forces_kj_mol_nm"].copy(),
                "reference_seed": int(f["seed"]), "dataset": {k: ds[k].copy() for k in ds.files},
                "thermo": (d / "thermo.csv").read_text(), "metrics": metrics}


def train(data_dir, out_dir, seed: int) -> dict:
    settings = {**TINY_TRAINING, "valid_fraction": 0.15, "test_fraction": 0.15, "max_epochs": 2,
                "fraction_train_eval": 0.5}
    network = {**TINY_NETWORK, "dist_hard_max": 6.0, "dist_soft_max": 5.5}
    out_dir.mkdir(exist_ok=True)
    return train_and_report("hipnn", [data_dir / "dataset.npz"], [data_dir / "summary.json"], ["T300"],
                            {"network": network, "training": settings}, CONFIG["prior"], settings,
                            out_dir / "checkpoint", out_dir / "metrics.json", out_dir / "curve.png",
                            out_dir / "parity.png", label="determinism", seed=seed)


def _comparable(metrics: dict) -> str:
    """The metrics without the wall-clock timings (wall_s, ms_per_training_frame_epoch)."""
    timing = ("wall_s", "ms_per_training_frame_epoch")
    return json.dumps({k: v for k, v in metrics.items() if k not in timing}, sort_keys=True)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("determinism")
    return {"a": pipeline(root / "a", 7, 11, 3), "b": pipeline(root / "b", 7, 11, 3),
            "md_seed": pipeline(root / "c", 7, 12, 3), "train_seed": train(root / "a", root / "a4", 4)}


def test_same_seeds_give_identical_outputs(runs):
    a, b = runs["a"], runs["b"]
    assert a["box"] == b["box"]
    assert np.array_equal(a["forces"], b["forces"]) and a["thermo"] == b["thermo"]
    assert a["dataset"].keys() == b["dataset"].keys()
    for key in a["dataset"]:
        assert np.array_equal(a["dataset"][key], b["dataset"][key]), key
    assert _comparable(a["metrics"]) == _comparable(b["metrics"])
    assert a["reference_seed"] == 11 and a["metrics"]["seed"] == 3  # the seeds are recorded with the outputs
    assert int(a["dataset"]["reference_seed"]) == 11


def test_different_seeds_give_different_outputs(runs):
    a, c = runs["a"], runs["md_seed"]
    assert a["box"] == c["box"]  # the box seed is the same
    assert not np.array_equal(a["forces"], c["forces"])  # another Langevin noise and initial velocities
    assert not np.array_equal(a["dataset"]["positions"], c["dataset"]["positions"])
    assert _comparable(a["metrics"]) != _comparable(c["metrics"])
    # the same data, another training seed (initial weights and batch order): other metrics
    assert a["metrics"]["test"]["force_rmse_kcal_mol_A"] != runs["train_seed"]["test"]["force_rmse_kcal_mol_A"]


def test_a_different_box_seed_packs_differently(tmp_path):
    build_box(TEMPLATE, 100, 0.76, tmp_path / "one.pdb", seed=7)
    build_box(TEMPLATE, 100, 0.76, tmp_path / "two.pdb", seed=8)
    assert (tmp_path / "one.pdb").read_text() != (tmp_path / "two.pdb").read_text()
