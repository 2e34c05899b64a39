"""A target that names no system, replicate, model, state or ensemble of the study is refused before any job, with the
known names and no traceback (was an InputFunctionException ending in a bare KeyError). The model, state and ensemble
are read from the wildcards of whichever rule's output the path matches, so a rule added later is covered too; a path
of the layout before replicates (no rep<r> folder) is named as such."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CASES = {  # target -> what the refusal must say
    "results/ethanol/rep1/summary/metrics.csv": "unknown system 'ethanol'; the systems of this study: methanol, ",
    "results/methanol/rep1/compare/hipnn_T999/T273/metrics.json": "unknown model 'hipnn_T999' of system 'methanol'; "
                                                                  "its models: hipnn_loo_T273, ",
    "results/methanol/rep1/force_errors/hipnn_T999.json": "unknown model 'hipnn_T999' of system 'methanol'; its "
                                                          "models: hipnn_loo_T273, ",
    "results/methanol/rep1/cg_md/mscg_T273/T999/nvt/summary.json": "unknown state 'T999' of system 'methanol'; its "
                                                                   "states: T273, T313, T400",
    "results/water/rep2/summary/metrics.csv": "unknown replicate 'rep2' of system 'water'; it has rep1 (config key "
                                              "'replicates'), and the pooled results are under results/water/verdict/",
    "results/methanol_2bead/rep3/models/mscg_all/metrics.json": "unknown replicate 'rep3' of system 'methanol_2bead'; "
                                                                "it has rep1, rep2 ",
    # the layout before replicates: the folder is named, and what the path would name with it
    "results/methanol/compare/hipnn_T999/T273/metrics.json": "no replicate folder: per-run results are under "
                                                             "results/methanol/rep<r>/ (this system has rep1, rep2), e.g. "
                                                             "results/methanol/rep1/compare/hipnn_T999/T273/metrics.json; "
                                                             "and there, unknown model 'hipnn_T999' of system 'methanol'; "
                                                             "its models: hipnn_loo_T273, ",
    "results/argon/summary/metrics.csv": "no replicate folder: per-run results are under results/argon/rep<r>/ (this "
                                         "system has rep1), e.g. results/argon/rep1/summary/metrics.csv",
    # a file no rule makes: the folders a run has
    "results/methanol/rep1/nonsense/x.json": "no step of this workflow makes this file; the folders of a run: box, "
                                             "reference, cg_data, models, ",
    # stages the hand-written path table did not cover: the rules' own patterns name the wildcards
    "results/methanol/rep1/models/hipnn_T999/pair_table.csv": "unknown model 'hipnn_T999' of system 'methanol'; its ",
    "results/methanol/rep1/cg_data/T999/rdf.csv": "unknown state 'T999' of system 'methanol'; its states: T273, T313, ",
    "results/methanol/rep1/cg_md/mscg_T273/T400/npt/summary.json": "no npt run of state 'T400' of system 'methanol': "
                                                                   "it is an NVT state (a density in the sheet, no "
                                                                   "pressure); its runs: nvt",
}
KNOWN = ["results/methanol/rep1/summary/metrics.csv", "results/methanol_2bead/rep2/summary/metrics.csv",
         "results/methanol/rep2/reference/T273/thermo.csv",  # methanol_2bead's second replicate maps this run
         "results/methanol_2bead/verdict/claims.csv", "results/methanol/rep1/force_errors/mscg_T273.json",
         "results/methanol/rep1/cg_md/mscg_T273/T313/npt/summary.json"]


def test_unknown_targets_are_refused_with_the_known_names(tmp_path):
    snakemake = Path(sys.executable).with_name("snakemake")
    proc = subprocess.run([str(snakemake), "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path),
                           "--configfile", str(REPO / ".test/config/config.yaml"), "-n",
                           *KNOWN, *CASES], capture_output=True, text=True)
    assert proc.returncode == 1
    for target, says in CASES.items():
        assert f"  {target}: {says}" in proc.stderr, proc.stderr[-2000:]
    for target in KNOWN:  # a known target is not blamed
        assert target not in proc.stderr, target
    assert "Traceback" not in proc.stderr + proc.stdout and "KeyError" not in proc.stderr
    assert not (tmp_path / "results").exists()
