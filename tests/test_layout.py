"""The package's plan: stages on top, then kinds, md, analysis, then the base modules; no import circles; the rule
inputs derived from the imports (cgtransfer.provenance) hold every module a stage really loads."""

import json
import subprocess
import sys
from pathlib import Path

from cgtransfer import provenance

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((REPO / "scripts").glob("*.py"))


def test_no_import_runs_up_a_layer_or_between_stages():
    assert provenance.layering_violations() == []


def test_no_import_circles():
    assert provenance.import_cycles() == []


def test_import_walk_on_a_hand_written_file(tmp_path):
    """Known answer: absolute, relative-looking, function-level and module-vs-name imports of a written file."""
    src = tmp_path / "script.py"
    src.write_text("import os\nfrom cgtransfer import units\nfrom cgtransfer.analysis.rdf import bead_rdf\n"
                   "def f():\n    from cgtransfer.kinds import hipnn_graph as g\n    import cgtransfer.io\n"
                   "from numpy import array\n")
    assert provenance.imports_of(src) == {"cgtransfer.units", "cgtransfer.analysis.rdf", "cgtransfer.kinds.hipnn_graph",
                                          "cgtransfer.io"}
    # the closure adds the packages Python runs on the way and what the modules import in turn
    closure = provenance.closure(src)
    assert {"cgtransfer", "cgtransfer.analysis", "cgtransfer.kinds"} <= closure
    assert "cgtransfer.stages" not in closure


def test_scripts_call_only_stages():
    for script in SCRIPTS:
        imported = provenance.imports_of(script)
        outside = {m for m in imported if provenance.layer_of(m) not in ("stages", "base")}
        assert not outside, f"{script.name} calls {outside} directly: scripts call a stage module"
        assert any(provenance.layer_of(m) == "stages" for m in imported), script.name


def test_a_kinds_rules_depend_only_on_that_kind():
    cg_md = REPO / "scripts" / "cg_md.py"
    mscg = {Path(p).relative_to(REPO / "src").as_posix() for p in provenance.package_sources(cg_md, kind="mscg")}
    hipnn = {Path(p).relative_to(REPO / "src").as_posix() for p in provenance.package_sources(cg_md, kind="hipnn")}
    assert "cgtransfer/kinds/mscg.py" in mscg and not any("hipnn" in p for p in mscg)
    assert {"cgtransfer/kinds/hipnn.py", "cgtransfer/kinds/hipnn_force.py"} <= hipnn
    assert "cgtransfer/kinds/mscg.py" not in hipnn and "cgtransfer/kinds/hipnn_t.py" not in hipnn
    compare = {Path(p).name for p in provenance.package_sources(REPO / "scripts" / "compare.py")}
    assert "rdf.py" in compare and "mscg.py" not in compare and "protocol.py" not in compare


def test_derived_inputs_hold_every_module_a_stage_loads():
    """What Python really loads when a stage module is imported and (for the model stages) a kind is loaded, run
    in a fresh interpreter, is a subset of the statically derived inputs; an MS-CG job loads neither torch nor
    hippynn."""
    code = r"""
import importlib, json, sys
stage, kind = sys.argv[1], sys.argv[2]
importlib.import_module(f"cgtransfer.stages.{stage}")
if kind != "-":
    from cgtransfer.kinds.registry import model_class
    model_class(kind)
print(json.dumps({"modules": sorted(m for m in sys.modules if m.split(".")[0] == "cgtransfer"),
                  "torch": "torch" in sys.modules, "hippynn": "hippynn" in sys.modules}))
"""
    cases = [("cg_md", "cg_md", "mscg"), ("cg_md", "cg_md", "hipnn_t"), ("train", "train", "mscg"),
             ("force_errors", "force_errors", "hipnn"), ("compare", "compare", "-"), ("mapping", "map_to_cg", "-"),
             ("reference", "reference_md", "-"), ("summarize", "summarize", "-"), ("volume_fit", "fit_volume_term", "mscg"),
             ("import_reference", "import_reference", "-"), ("dynamics_md", "dynamics_reference", "-"),
             ("cg_md", "dynamics_cg", "hipnn"), ("dynamics", "dynamics", "-"), ("backmap", "backmap", "-"),
             ("mapping", "map_dynamics", "-")]
    for stage, script, kind in cases:
        proc = subprocess.run([sys.executable, "-c", code, stage, kind], capture_output=True, text=True, cwd=REPO)
        assert proc.returncode == 0, proc.stderr[-2000:]
        loaded = json.loads(proc.stdout.strip().splitlines()[-1])
        derived = provenance.closure((REPO / "scripts" / f"{script}.py").resolve(), None if kind == "-" else kind)
        # (cgtransfer.model: the alias of kinds.hipnn_graph under which old checkpoints pickled its classes)
        missing = set(loaded["modules"]) - set(derived) - {"cgtransfer.provenance", "cgtransfer.model"}
        assert not missing, f"{stage} ({kind}) loads {missing}, which its rule's inputs lack"
        if kind == "mscg" or kind == "-":
            assert not loaded["torch"] and not loaded["hippynn"], f"{stage} ({kind}) loads torch/hippynn"
