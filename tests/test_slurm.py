"""The cluster path, for real: a one-node SLURM cluster on localhost (slurm-wlm + munge, started by
tests/slurm/start_cluster.sh), the one-state study submitted with `snakemake --profile profiles/slurm`; every
job must have run as a SLURM job, and the results must pass the same physics checks as a local run. A resource
that SLURM rejects fails at once with the scheduler's message. Needs root and apt (CI has both); elsewhere it
skips and says why."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import REPO
from test_interruption import micro_config

pytestmark = pytest.mark.workflow
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "the SLURM test starts slurmctld/slurmd/munged and needs root"
    if not shutil.which("slurmctld") and not shutil.which("apt-get"):
        return "neither slurm-wlm nor apt-get (to install it) is available"
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        return "snakemake-executor-plugin-slurm is not installed (pip install -e '.[test]')"
    return None


@pytest.fixture(scope="module")
def cluster():
    reason = _why_not()
    if reason:
        pytest.skip(reason)
    if not shutil.which("slurmctld"):  # a machine that cannot reach its Debian mirror cannot run this test
        install = subprocess.run("apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
                                 "slurm-wlm munge", shell=True, capture_output=True, text=True, timeout=900)
        if install.returncode != 0:
            pytest.skip(f"apt-get could not install slurm-wlm and munge: {(install.stdout + install.stderr)[-500:]}")
    proc = subprocess.run(["bash", str(REPO / "tests/slurm/start_cluster.sh")], capture_output=True, text=True,
                          env=real_slurm_env({}),
                          timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def submit(work: Path, config: Path, env: dict, *extra):
    """The profile as a user runs it; on this 2-CPU test node one thread per job and no GPU."""
    return subprocess.run([SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(work),
                           "--configfile", str(config), "--profile", str(REPO / "profiles/slurm"),
                           "--slurm-no-account", "--slurm-status-command", "squeue",
                           "--slurm-init-seconds-before-status-checks", "5", "--seconds-between-status-checks", "2",
                           "--slurm-keep-successful-logs",
                           "--set-threads", "reference_md=1", "train=1", "cg_md=1", *extra],
                          capture_output=True, text=True, env=real_slurm_env(env), timeout=1500)


def real_slurm_env(extra: dict) -> dict:
    """The environment with the cluster's own configuration (conftest points the suite's SLURM clients at a
    fast-failing copy while no controller runs)."""
    env = {k: v for k, v in os.environ.items() if k != "SLURM_CONF"}
    if "CGTRANSFER_TEST_REAL_SLURM_CONF" in env:
        env["SLURM_CONF"] = env.pop("CGTRANSFER_TEST_REAL_SLURM_CONF")
    return {**env, **extra}


@pytest.fixture(scope="module")
def slurm_run(cluster, tmp_path_factory):
    work = tmp_path_factory.mktemp("slurm")
    config = micro_config(work)
    proc = submit(work, config, {"CGTRANSFER_GPUS_PER_JOB": "0", "CGTRANSFER_SLURM_PARTITION": "debug"})
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return work, proc.stdout + proc.stderr


def test_every_job_ran_through_slurm(slurm_run):
    work, out = slurm_run
    planned = {m.group(1): int(m.group(2)) for m in
               re.finditer(r"^(\w+)\s+(\d+)\s*$", out.split("Job stats:", 1)[1].split("total", 1)[0], re.M)}
    submitted = re.findall(r"Job \d+ has been submitted with SLURM jobid (\d+) \(log: (\S+)\)", out)
    assert len(submitted) == sum(planned.values()) - planned.get("all", 0) >= 8  # all but the local target rule
    for job_id, log in submitted:
        assert Path(log).is_file(), log  # SLURM's own job log
        state = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True,
                               env=real_slurm_env({})).stdout
        assert "JobState=COMPLETED" in state and "Partition=debug" in state, state[:500]
    assert "localrule all" in out and not re.search(r"^localrule (?!all)", out, re.M)


def test_slurm_results_pass_the_physics_checks(slurm_run):
    work, _ = slurm_run
    res = work / "results/methanol/rep1"
    thermo = pd.read_csv(res / "reference/T400/thermo.csv")
    assert len(thermo) == 20 and abs(thermo["density_g_cm3"] - 0.68).max() < 1e-6  # NVT at the state's density
    assert abs(thermo["temperature_K"].mean() - 400.0) < 20.0
    cg = json.loads((res / "cg_md/hipnn_T400/T400/nvt/summary.json").read_text())
    assert cg["stable"] and abs(cg["mean_temperature_K"] - 400.0) < 40.0
    table = pd.read_csv(res / "summary/metrics.csv")
    assert len(table) == 1 and 0 < table["rdf_mae"].iloc[0] < 0.5 and table["force_rmse_kcal_mol_A"].iloc[0] > 0


def test_a_resource_slurm_rejects_fails_with_its_message(cluster, tmp_path):
    """An unknown partition: the first submission fails at once with sbatch's own message, not a hang."""
    config = micro_config(tmp_path)
    proc = submit(tmp_path, config, {"CGTRANSFER_GPUS_PER_JOB": "0", "CGTRANSFER_SLURM_PARTITION": "nosuchpartition"})
    assert proc.returncode != 0
    assert "invalid partition" in (proc.stdout + proc.stderr).lower(), (proc.stdout + proc.stderr)[-3000:]
