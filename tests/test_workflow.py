"""End to end: the whole Snakemake workflow on .test/config (125 methanol, 2 NPT states, short runs, tiny
network), checked on its science outputs. Takes a few minutes on 2 cores."""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import REPO

pytestmark = pytest.mark.workflow
MODELS = {"hipnn_cold": "hipnn", "mscg_cold": "mscg", "hipnn_both": "hipnn", "mscg_both": "mscg"}


@pytest.fixture(scope="module")
def workflow_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("workflow")
    snakemake = Path(sys.executable).with_name("snakemake")
    proc = subprocess.run([str(snakemake), "--snakefile", str(REPO / "Snakefile"), "--directory", str(work),
                           "--configfile", str(REPO / ".test/config/config.yaml"), "--cores", "2",
                           "--show-failed-logs"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-5000:]
    return work / "results" / "methanol"


def finite_numbers(obj):
    if isinstance(obj, dict):
        return all(finite_numbers(v) for v in obj.values())
    if isinstance(obj, list):
        return all(finite_numbers(v) for v in obj)
    if isinstance(obj, (int, float)) and not isinstance(obj, bool):
        return math.isfinite(obj)
    return True


def test_summary_tables_and_figures(workflow_run):
    s = workflow_run / "summary"
    for name in ("metrics.csv", "force_r2.csv", "rdf_mae.csv", "density_error.csv", "transferability.png",
                 "density_vs_temperature.png", "rdf/rdf_T273.png", "rdf/rdf_T313.png"):
        assert (s / name).stat().st_size > 0, name
    table = pd.read_csv(s / "metrics.csv")
    assert len(table) == 8 and set(table["model"]) == set(MODELS) and set(table["state"]) == {"T273", "T313"}
    assert dict(zip(table["model"], table["kind"])) == MODELS
    numeric = table.select_dtypes("number").drop(columns=["model_calls"], errors="ignore")
    assert np.isfinite(numeric.to_numpy()).all()
    rdf_mae = pd.read_csv(s / "rdf_mae.csv").set_index("model")
    assert list(rdf_mae.index) == sorted(MODELS) + ["reference noise floor"]
    assert rdf_mae.loc["mscg_cold", "kind"] == "mscg" and rdf_mae.loc["hipnn_both", "kind"] == "hipnn"
    for name in ("force_r2.csv", "density_error.csv"):
        assert set(pd.read_csv(s / name)["kind"]) == {"hipnn", "mscg"}


def test_reference_physics(workflow_run):
    for state, temp in (("T273", 273.0), ("T313", 313.0)):
        thermo = pd.read_csv(workflow_run / f"reference/{state}/thermo.csv")
        assert thermo["temperature_K"].mean() == pytest.approx(temp, rel=0.05)
        # liquid methanol (OPLS-AA): 0.75-0.81 g/cm3 between 273 and 313 K; a short run of 125 molecules
        assert 0.70 < thermo["density_g_cm3"].mean() < 0.86
        forces = np.load(workflow_run / f"reference/{state}/forces.npz")["forces_kj_mol_nm"]
        assert forces.shape == (len(thermo), 750, 3) and np.isfinite(forces).all()
        data = np.load(workflow_run / f"cg_data/{state}/dataset.npz")
        assert data["positions"].shape == (len(thermo), 125, 3) and data["positions"].dtype == np.float32
        assert abs(data["masses"][0] - 32.042) < 0.01
        # whole molecules summed: total force on the box is zero up to PME/cutoff noise
        assert np.abs(data["forces"].sum(axis=1)).max() < 0.05 * np.abs(data["forces"]).sum(axis=1).max()
    ref_cold = pd.read_csv(workflow_run / "reference/T273/thermo.csv")["density_g_cm3"].mean()
    ref_hot = pd.read_csv(workflow_run / "reference/T313/thermo.csv")["density_g_cm3"].mean()
    assert ref_cold > ref_hot  # thermal expansion


def test_models_and_cg_simulations(workflow_run):
    for model, kind in MODELS.items():
        m = json.loads((workflow_run / f"models/{model}/metrics.json").read_text())
        assert finite_numbers(m) and m["kind"] == kind
        assert m["test"]["force_rmse_kcal_mol_A"] > 0 and m["test"]["force_r2"] < 1.0
        # held-out frames: better than predicting the mean force; MS-CG (an exact least-squares fit) clearly so,
        # the tiny HIP-NN-TS trained for 3 epochs only barely
        assert m["test"]["force_r2"] > (0.05 if kind == "mscg" else 0.0)
        assert (workflow_run / f"models/{model}/force_parity.png").stat().st_size > 0
        for state, temp in (("T273", 273.0), ("T313", 313.0)):
            metrics = json.loads((workflow_run / f"compare/{model}/{state}/metrics.json").read_text())
            assert finite_numbers(metrics)
            for ens in ("nvt", "npt"):
                summary = json.loads((workflow_run / f"cg_md/{model}/{state}/{ens}/summary.json").read_text())
                # 125 beads, 20 frames 0.1 ps apart (friction 5/ps): the mean kinetic T has a ~1.6 % std. error
                assert summary["mean_temperature_K"] == pytest.approx(temp, rel=0.08)
            assert 0.0 < metrics["rdf_mae"] < 1.0
            if kind == "mscg" and metrics["force_state_in_training"]:
                # MS-CG reproduces pair structure at its training state (within a few reference noise floors)
                assert metrics["rdf_mae"] < 2.5 * metrics["rdf_noise_floor_mae"]
            assert metrics["rdf_noise_floor_mae"] > 0.0
            assert 0.70 < metrics["density_aa_g_cm3"] < 0.86
            assert 0.2 < metrics["density_cg_g_cm3"] < 1.5
            assert metrics["min_pair_distance_reference_A"] > 2.0
            assert metrics["force_state_in_training"] == (model.endswith("both") or state == "T273")


def test_mscg_pair_tables(workflow_run):
    """The MS-CG files beside the HIP-NN-TS models: the fitted table and its figure; a pair potential zero at the
    cutoff with a repulsive core and a contact shoulder, whose force is minus its derivative."""
    for model in ("mscg_cold", "mscg_both"):
        table = pd.read_csv(workflow_run / f"models/{model}/pair_table.csv")
        assert (workflow_run / f"models/{model}/pair_potential.png").stat().st_size > 0
        t = table[table["pair"] == "MOH-MOH"]
        r, f, e = t["r_A"].to_numpy(), t["force_kcal_mol_A"].to_numpy(), t["energy_kcal_mol"].to_numpy()
        assert abs(e[-1]) < 1e-3 and abs(f[-1]) < 1e-2
        fd = -np.gradient(e, r)
        inner = slice(5, -5)
        assert np.abs(fd[inner] - f[inner]).max() < 0.02 * np.abs(f).max()
        assert f[0] > 1.0 and e[0] > e.min() + 1.0  # repulsive core
        # the contact shoulder of 1-site methanol: a local minimum at the hydrogen-bonded neighbours' distance
        # (the RDF's first peak, 3.35-3.45 A) behind a barrier
        features = json.loads((workflow_run / f"models/{model}/metrics.json").read_text())["pair_features"]["MOH-MOH"]
        assert 3.2 < features["contact_minimum_A"] < 3.8
        assert features["barrier_after_contact_kcal_mol"] > features["contact_minimum_kcal_mol"]
        info = json.loads((workflow_run / f"models/{model}/checkpoint/model_info.json").read_text())
        scanned = yaml.safe_load((REPO / ".test/config/config.yaml").read_text())["mscg"]["regularization"]
        assert info["kind"] == "mscg" and info["regularization"] in [float(x) for x in scanned]
