"""Shared fixtures: a real (small) Lennard-Jones argon fluid simulated with OpenMM, mapped one atom → one bead,
and a tiny HIP-NN-TS model trained on it for a couple of epochs. Session-scoped: built once per test run."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import openmm
import openmm.unit as u
import pytest
from openmm import app

from cgtransfer.compute import configure

def _slurm_client_that_fails_fast():
    """Snakemake's SLURM executor plugin runs ``scontrol show config`` whenever the snakemake CLI starts (its
    help text names a status command). On a machine where tests/slurm/start_cluster.sh installed SLURM but no
    controller runs (a later test session), that call waits out the default 10-s MessageTimeout: measured 9 s for
    every snakemake call of the suite. The test session's SLURM clients read a copy of the configuration with a
    1-s timeout instead; tests/test_slurm.py's own cluster and jobs use the real configuration."""
    import re
    import tempfile

    real = Path("/etc/slurm/slurm.conf")
    if "SLURM_CONF" in os.environ or not real.is_file():
        return
    copy = Path(tempfile.mkdtemp(prefix="cgtransfer-slurm-")) / "slurm.conf"
    copy.write_text(re.sub(r"(?m)^MessageTimeout=.*$\n?", "", real.read_text()) + "\nMessageTimeout=1\n")
    os.environ["SLURM_CONF"] = str(copy)
    os.environ["CGTRANSFER_TEST_REAL_SLURM_CONF"] = str(real)


_slurm_client_that_fails_fast()

configure(1, "cpu")  # the workflow's CPU path (uncompiled pytorch kernels, one thread), before hippynn is imported

REPO = Path(__file__).resolve().parents[1]
ARGON_SIGMA_NM = 0.3405
ARGON_EPSILON_KJ = 0.99774  # 120 K · k_B


def argon_topology(n: int, edge_nm: float) -> app.Topology:
    top = app.Topology()
    chain = top.addChain()
    for _ in range(n):
        res = top.addResidue("AR", chain)
        top.addAtom("AR", app.element.argon, res)
    top.setPeriodicBoxVectors(((edge_nm, 0, 0), (0, edge_nm, 0), (0, 0, edge_nm)) * u.nanometer)
    return top


def argon_system(n: int, edge_nm: float, cutoff_nm: float = 0.8) -> openmm.System:
    system = openmm.System()
    system.setDefaultPeriodicBoxVectors(*(openmm.Vec3(*(edge_nm if i == j else 0 for j in range(3))) for i in range(3)))
    nb = openmm.NonbondedForce()
    nb.setNonbondedMethod(openmm.NonbondedForce.CutoffPeriodic)
    nb.setCutoffDistance(cutoff_nm)
    for _ in range(n):
        system.addParticle(39.948)
        nb.addParticle(0.0, ARGON_SIGMA_NM, ARGON_EPSILON_KJ)
    system.addForce(nb)
    return system


def record_lj_trajectory(topology: app.Topology, system: openmm.System, positions_nm, temperature_K: float,
                         directory: Path, n_frames: int, equilibration_steps: int, seed: int, stride: int = 40) -> None:
    """NVT Langevin run (5 fs, 5/ps) from minimised ``positions_nm``, recorded with the reference pipeline's own
    reporters every ``stride`` steps (40: 0.2 ps): ``trajectory.dcd``, ``topology.pdb`` and ``forces.npz``."""
    from cgtransfer.md.protocol import ForceReporter

    integrator = openmm.LangevinMiddleIntegrator(temperature_K * u.kelvin, 5 / u.picosecond, 5 * u.femtosecond)
    integrator.setRandomNumberSeed(seed)
    sim = app.Simulation(topology, system, integrator, openmm.Platform.getPlatformByName("CPU"), {"Threads": "1"})
    sim.context.setPositions(positions_nm * u.nanometer)
    sim.minimizeEnergy()
    sim.context.setVelocitiesToTemperature(temperature_K * u.kelvin, seed)
    sim.step(equilibration_steps)
    forces = ForceReporter(stride)
    sim.reporters.append(app.DCDReporter(str(directory / "trajectory.dcd"), stride, enforcePeriodicBox=False))
    sim.reporters.append(forces)
    sim.step(stride * n_frames)
    del sim.reporters[0]
    state = sim.context.getState(getPositions=True)
    with open(directory / "topology.pdb", "w") as fh:
        app.PDBFile.writeFile(topology, state.getPositions(), fh)
    np.savez(directory / "forces.npz", **forces.arrays(), time_ps=stride * 0.005 * np.arange(1, n_frames + 1),
             temperature_K=temperature_K)


@pytest.fixture(scope="session")
def argon_run(tmp_path_factory):
    """A 0.2 ps-spaced 30-frame NVT trajectory of 108 LJ argon atoms at 120 K, 1.4 g/cm³ (liquid), with
    the reference pipeline's own reporters: DCD + PDB + forces.npz."""
    d = tmp_path_factory.mktemp("argon")
    n, rho = 108, 1.4
    edge = (n * 39.948 / rho * 1.66053906660e-3) ** (1 / 3)
    rng = np.random.default_rng(0)
    grid = np.array([(i, j, k) for i in range(5) for j in range(5) for k in range(5)])[:n]
    pos = (grid + 0.5) * edge / 5 + rng.normal(0, 0.005, (n, 3))
    top = argon_topology(n, edge)
    system = argon_system(n, edge)
    record_lj_trajectory(top, system, pos, 120.0, d, n_frames=30, equilibration_steps=400, seed=1)
    return {"dir": d, "edge_nm": edge, "n": n, "system": system, "topology": top}


@pytest.fixture(scope="session")
def argon_cg(argon_run, tmp_path_factory):
    """Identity mapping of the argon run, the mapped dataset and its summary on disk."""
    from cgtransfer.stages import mapping
    from cgtransfer.io import write_json, write_npz

    d = argon_run["dir"]
    cg = mapping.map_trajectory(d / "topology.pdb", d / "trajectory.dcd", d / "forces.npz", {"AR": {"AR": ["AR"]}})
    table = mapping.reference_rdfs(cg, 50, 8.0)
    write_npz(d / "dataset.npz", **cg)
    write_json(d / "summary.json", mapping.summarize_mapped(cg, table, 1e-3))
    return {"cg": cg, "dataset": d / "dataset.npz", "summary": d / "summary.json", "rdf": table}


TINY_NETWORK = dict(n_features=8, n_sensitivities=6, dist_soft_min=2.5, dist_soft_max=6.0, dist_hard_max=7.0,
                    n_interaction_layers=1, n_atom_layers=1, sensitivity_type="inverse", resnet=True)
TINY_TRAINING = dict(device="cpu", threads=1, valid_fraction=0.1, test_fraction=0.1, learning_rate=1e-3,
                     batch_size=2, max_batch_size=4, eval_batch_size=4, plateau_patience=2,
                     termination_patience=4, max_epochs=2, fraction_train_eval=0.2)


@pytest.fixture(scope="session")
def tiny_model(argon_cg, tmp_path_factory):
    from cgtransfer.stages.train import train_model

    out = tmp_path_factory.mktemp("model") / "checkpoint"
    train_model("hipnn", [argon_cg["dataset"]], [argon_cg["summary"]], ["T120"],
                {"network": TINY_NETWORK, "training": TINY_TRAINING}, {"width_A": 0.15, "force_fraction_at_onset": 0.05},
                TINY_TRAINING, out, label="argon/tiny")
    return out
