"""A target that names no system, model or state of the study is refused before any job, with the known names
and no traceback (was an InputFunctionException ending in a bare KeyError)."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CASES = {  # target -> what the refusal must say
    "results/ethanol/summary/metrics.csv": "unknown system 'ethanol'; the systems of this study: methanol, ",
    "results/methanol/compare/hipnn_T999/T273/metrics.json": "unknown model 'hipnn_T999' of system 'methanol'; its "
                                                             "models: hipnn_loo_T273, ",
    "results/methanol/cg_md/mscg_T273/T999/nvt/summary.json": "unknown state 'T999' of system 'methanol'; its "
                                                              "states: T273, T313, T400",
}


def test_unknown_targets_are_refused_with_the_known_names(tmp_path):
    snakemake = Path(sys.executable).with_name("snakemake")
    proc = subprocess.run([str(snakemake), "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path),
                           "--configfile", str(REPO / ".test/config/config.yaml"), "-n",
                           "results/methanol/summary/metrics.csv", *CASES], capture_output=True, text=True)
    assert proc.returncode == 1
    for target, says in CASES.items():
        assert f"  {target}: {says}" in proc.stderr, proc.stderr[-2000:]
    assert "results/methanol/summary/metrics.csv" not in proc.stderr  # a known target is not blamed
    assert "Traceback" not in proc.stderr + proc.stdout and "KeyError" not in proc.stderr
    assert not (tmp_path / "results").exists()
