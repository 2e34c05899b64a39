"""Bad input is rejected before any job starts, with a message naming the key or row and the file."""

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO
from cgtransfer.config import ConfigError, load_study

DEFAULT = yaml.safe_load((REPO / "config/config.yaml").read_text())


def study(cfg, tmp_path, sheet=None):
    cfg = copy.deepcopy(cfg)
    if sheet is not None:
        (tmp_path / "states.tsv").write_text(sheet)
        cfg["state_points"] = str(tmp_path / "states.tsv")
    return load_study(cfg, REPO)


def test_default_and_test_configs_are_valid():
    s = load_study(DEFAULT, REPO)
    states = s.states_of("methanol")
    assert len(states) >= 5  # the transferability study: at least 5 states spanning at least 250 K
    assert max(p.temperature_K for p in states) - min(p.temperature_K for p in states) >= 250
    assert {p.ensemble for p in states} == {"NPT", "NVT"}
    assert max(p.temperature_K for p in states if p.ensemble == "NVT") > 513  # beyond methanol's critical T
    assert s.ensembles("methanol", "T298") == ["nvt", "npt"] and s.ensembles("methanol", "T550") == ["nvt"]
    test = load_study(yaml.safe_load((REPO / ".test/config/config.yaml").read_text()), REPO)
    assert any(p.ensemble == "NVT" for p in test.states)
    assert any(m["training_set"] == "leave_one_out" for m in test.expanded["methanol"].values())
    paper = load_study(yaml.safe_load((REPO / "config/paper.yaml").read_text()), REPO)
    sets = {m["training_set"] for m in paper.expanded["methanol"].values()}
    assert sets == {"each", "all", "leave_one_out"}
    assert max(p.temperature_K for p in paper.states) >= 700


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["reference_md"].__setitem__("timestep_fs", "two"), r"key 'reference_md\.timestep_fs': 'two' is not of type 'number'"),
    (lambda c: c["hipnn"].pop("n_features"), r"key 'hipnn': 'n_features' is a required property"),
    (lambda c: c["systems"]["methanol"]["models"]["hipnn_all"].__setitem__("kind", "gnn"),
     r"key 'systems\.methanol\.models\.hipnn_all\.kind': 'gnn' is not one of \['hipnn', 'mscg'\]"),
    (lambda c: c["systems"]["methanol"]["models"]["mscg_all"].pop("states"),
     r"key 'systems\.methanol\.models\.mscg_all': 'states' is a required property"),
    (lambda c: c["mscg"].__setitem__("regularization", []), r"key 'mscg\.regularization': \[\] should be non-empty"),
    (lambda c: c["cg_md"].__setitem__("thermostat", "nose"), r"key 'cg_md': Additional properties are not allowed \('thermostat'"),
    (lambda c: c["systems"]["methanol"].__setitem__("n_molecules", 0), r"key 'systems\.methanol\.n_molecules'"),
    (lambda c: c["training"].__setitem__("test_fraction", 1.5), r"key 'training\.test_fraction'"),
])
def test_schema_errors_name_the_key(edit, message):
    cfg = copy.deepcopy(DEFAULT)
    edit(cfg)
    with pytest.raises(ConfigError, match=message):
        load_study(cfg, REPO)


def test_missing_forcefield_file_is_named():
    cfg = copy.deepcopy(DEFAULT)
    cfg["systems"]["methanol"]["forcefield"] = "resources/methanol/nope.xml"
    with pytest.raises(ConfigError, match=r"systems\.methanol\.forcefield': file '.*nope\.xml' not found"):
        load_study(cfg, REPO)


@pytest.mark.parametrize("row, message", [
    ("methanol\tT298\t298\t1.0\t0.78", "found both"),
    ("methanol\tT298\t298\t\t", "found neither"),
    ("methanol\tT298\t-5\t1.0\t", r"key 'temperature_K': -5 is less than or equal to the minimum of 0"),
    ("methanol\tT298\t298\t\t-0.7", r"key 'density_g_cm3': -0.7 is less than or equal to the minimum of 0"),
    ("methanol\tT298\t298\t\t0", r"key 'density_g_cm3': 0 is less than or equal to the minimum of 0"),
])
def test_state_point_errors_name_row_and_file(tmp_path, row, message):
    sheet = "system\tstate\ttemperature_K\tpressure_bar\tdensity_g_cm3\n" + row + "\n"
    cfg = copy.deepcopy(DEFAULT)
    cfg["systems"]["methanol"]["models"] = {"m": {"kind": "mscg", "states": ["T298"]}}
    with pytest.raises(ConfigError, match=message) as err:
        study(cfg, tmp_path, sheet)
    assert "states.tsv, row 1 (system 'methanol', state 'T298')" in str(err.value)


def test_model_with_unknown_state_is_rejected():
    cfg = copy.deepcopy(DEFAULT)
    cfg["systems"]["methanol"]["models"]["hot"] = {"kind": "mscg", "states": ["T999"]}
    with pytest.raises(ConfigError, match=r"systems\.methanol\.models\.hot\.states': state\(s\) \['T999'\]"):
        load_study(cfg, REPO)


def test_model_kinds_and_duplicate_training_state():
    s = load_study(DEFAULT, REPO)
    names = s.trained_models("methanol")
    assert s.models_of_kind("methanol", "mscg") == [n for n in names if n.startswith("mscg")]
    # every trained model also exists with a fitted volume term, sharing its training
    assert set(s.models("methanol")) == set(names) | {n + "_vol" for n in names}
    assert all(s.base_model("methanol", n + "_vol") == n and s.volume_corrected("methanol", n + "_vol") for n in names)
    # every training set of the default has both kinds
    sets = {}
    for name in names:
        sets.setdefault(tuple(s.model("methanol", name)["states"]), set()).add(s.model("methanol", name)["kind"])
    assert all(kinds == {"hipnn", "mscg"} for kinds in sets.values())
    cfg = copy.deepcopy(DEFAULT)
    cfg["systems"]["methanol"]["models"]["mscg_all"]["states"] = ["T298", "T298"]
    with pytest.raises(ConfigError, match=r"models\.mscg_all\.states': a state is listed twice"):
        load_study(cfg, REPO)


def test_training_set_shorthands_expand_to_named_models():
    cfg = copy.deepcopy(DEFAULT)
    cfg["systems"]["methanol"]["models"] = {"h": {"kind": "hipnn", "states": "each"},
                                            "m": {"kind": "mscg", "states": "leave_one_out"},
                                            "a": {"kind": "mscg", "states": "all", "cg_md": {"timestep_fs": 1.0}}}
    s = load_study(cfg, REPO)
    order = [p.state for p in s.states_of("methanol")]
    models = s.expanded["methanol"]
    assert [m for m in s.trained_models("methanol") if m.startswith("h_")] == [f"h_{t}" for t in order]
    assert all(models[f"h_{t}"]["states"] == [t] for t in order)
    for t in order:  # leave-one-out: every state but the held-out one
        assert models[f"m_{t}"]["states"] == [o for o in order if o != t]
        assert models[f"m_{t}"]["held_out_state"] == t and models[f"m_{t}"]["kind"] == "mscg"
    assert models["a"]["states"] == order and models["a"]["training_set"] == "all"
    assert s.cg_md_settings("methanol", "a")["timestep_fs"] == 1.0  # a model's own cg_md override
    assert s.cg_md_settings("methanol", "h_T298")["timestep_fs"] == DEFAULT["cg_md"]["timestep_fs"]


def test_bad_training_sets_are_rejected(tmp_path):
    cfg = copy.deepcopy(DEFAULT)
    cfg["systems"]["methanol"]["models"] = {"m": {"kind": "mscg", "states": "leave_one_out"}}
    one_state = "system\tstate\ttemperature_K\tpressure_bar\tdensity_g_cm3\nmethanol\tT298\t298\t1.0\t\n"
    with pytest.raises(ConfigError, match=r"models\.m\.states': leave_one_out needs at least two state points"):
        study(cfg, tmp_path, one_state)
    cfg["systems"]["methanol"]["models"] = {"m": {"kind": "mscg", "states": "every"}}
    with pytest.raises(ConfigError, match=r"key 'systems\.methanol\.models\.m\.states'"):
        load_study(cfg, REPO)
    cfg["systems"]["methanol"]["models"] = {"m": {"kind": "mscg", "states": []}}
    with pytest.raises(ConfigError, match=r"key 'systems\.methanol\.models\.m\.states'"):
        load_study(cfg, REPO)
    # two entries that expand to the same model name
    cfg["systems"]["methanol"]["models"] = {"m": {"kind": "mscg", "states": "each"},
                                            "m_T298": {"kind": "hipnn", "states": ["T298"]}}
    with pytest.raises(ConfigError, match=r"two entries make a model named 'm_T298'"):
        load_study(cfg, REPO)
    cfg["systems"]["methanol"]["models"] = {"m": {"kind": "mscg", "states": ["T298"], "cg_md": {"timestep_fs": -1}}}
    with pytest.raises(ConfigError, match=r"key 'systems\.methanol\.models\.m\.cg_md\.timestep_fs'"):
        load_study(cfg, REPO)


def _bad_sheet(cfg, tmp_path):
    (tmp_path / "states.tsv").write_text("system\tstate\ttemperature_K\tpressure_bar\tdensity_g_cm3\n"
                                         "methanol\tT248\t248\t1.0\t\nmethanol\tT298\t298\t1.0\t0.79\n"
                                         "methanol\tT328\t328\t1.0\t\nmethanol\tT400\t400\t\t0.68\n"
                                         "methanol\tT550\t550\t\t0.60\n")
    cfg["state_points"] = str(tmp_path / "states.tsv")
    return ["row 2 (system 'methanol', state 'T298')", "found both"]


def _unknown_kind(cfg, tmp_path):
    cfg["state_points"] = str(REPO / cfg["state_points"])
    cfg["systems"]["methanol"]["models"]["mscg_all"]["kind"] = "pairwise"
    return ["systems.methanol.models.mscg_all.kind", "'pairwise' is not one of ['hipnn', 'mscg']"]


@pytest.mark.parametrize("breaks", [_bad_sheet, _unknown_kind])
def test_snakemake_refuses_bad_config_before_any_job(tmp_path, breaks):
    """Through the real CLI: a bad state sheet or an unknown model kind stops the workflow at parse time; no
    results are written."""
    cfg = copy.deepcopy(DEFAULT)
    for key in ("template_pdb", "forcefield"):
        cfg["systems"]["methanol"][key] = str(REPO / cfg["systems"]["methanol"][key])
    expected = breaks(cfg, tmp_path)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    snakemake = Path(sys.executable).with_name("snakemake")
    proc = subprocess.run([str(snakemake), "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path),
                           "--configfile", str(tmp_path / "config.yaml"), "--cores", "1"],
                          capture_output=True, text=True)
    assert proc.returncode != 0
    for text in expected:
        assert text in proc.stderr + proc.stdout
    assert not (tmp_path / "results").exists()


def _set(path, value):
    def edit(c):
        d = c
        for k in path[:-1]:
            d = d[k]
        d[path[-1]] = value
    return edit


@pytest.mark.parametrize("edit, message", [
    # mapping against the template (resources/methanol/methanol.pdb: residue MOH, atoms C H1 H2 H3 O HO)
    (_set(("systems", "methanol", "mapping"), {"MOH": {"MOH": ["C", "H1", "H2", "H3", "O", "HX"]}}),
     r"mapping\.MOH': atom\(s\) \['HX'\] are not in residue MOH of '.*methanol\.pdb'"),
    (_set(("systems", "methanol", "mapping"), {"MOH": {"MOH": ["C", "H1", "H2", "H3", "O"]}}),
     r"mapping\.MOH': atom\(s\) \['HO'\] of '.*methanol\.pdb' are in no bead"),
    (_set(("systems", "methanol", "mapping"), {"MEOH": {"MOH": ["C", "H1", "H2", "H3", "O", "HO"]}}),
     r"mapping': residue 'MOH' of '.*methanol\.pdb' has no entry"),
    # lengths against half the box that 256 molecules at the initial density imply (edge 26.2 Å)
    (_set(("rdf", "rmax_A"), 14.0), r"'rdf\.rmax_A' = 14 Å does not fit in half the box edge \(13\.08 Å\) of 256 "
                                    r"molecules at the initial density 0\.76 g/cm3"),
    (_set(("mscg", "cutoff_A"), 13.5), r"'mscg\.cutoff_A' = 13\.5 Å does not fit"),
    (_set(("hipnn", "dist_hard_max"), 12.0), r"'hipnn\.dist_hard_max \+ cg_md\.pair_skin_A' = 13\.5 Å does not fit"),
    (_set(("systems", "methanol", "n_molecules"), 64), r"'reference_md\.nonbonded_cutoff_nm' = 10 Å does not fit"),
    (_set(("cg_md", "report_interval_ps"), 20.0), r"'cg_md\.report_interval_ps' \(20 ps\) is longer than 'cg_md\.production_ps'"),
    (_set(("reference_md", "production_ps"), 0.1), r"'reference_md\.report_interval_ps' \(0\.2 ps\) is longer"),
])
def test_physics_of_the_config_is_checked_before_any_job(edit, message):
    cfg = copy.deepcopy(DEFAULT)
    edit(cfg)
    with pytest.raises(ConfigError, match=message):
        load_study(cfg, REPO)


def test_nvt_state_whose_box_is_too_small_names_the_row(tmp_path):
    """A compressed NVT state: 256 molecules at 1.5 g/cm3 make a box of 20.9 Å, too small for the 12-Å RDF range
    (the same molecules at the initial 0.76 g/cm3 fit)."""
    cfg = copy.deepcopy(DEFAULT)
    sheet = ("system\tstate\ttemperature_K\tpressure_bar\tdensity_g_cm3\nmethanol\tT298\t298\t1.0\t\n"
             "methanol\tT900\t900\t\t1.5\n")
    cfg["systems"]["methanol"]["models"] = {"m": {"kind": "mscg", "states": ["T298"]}}
    with pytest.raises(ConfigError, match=r"'rdf\.rmax_A' = 12 Å does not fit in half the box edge \(10\.43 Å\) of 256 "
                                          r"molecules at state 'T900' in .*states\.tsv \(NVT at 1\.5 g/cm3\)"):
        study(cfg, tmp_path, sheet)
