"""Bad input is rejected before any job starts, with a message naming the key or row and the file."""

import copy
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO
from cgtransfer.config import ConfigError, load_study, read_config

DEFAULT = read_config(REPO / "config/config.yaml")  # the default study, the schema's defaults filled in


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
    test = load_study(yaml.safe_load((REPO / ".test/config/config.yaml").read_text()), REPO)  # as written: defaults filled
    assert any(p.ensemble == "NVT" for p in test.states)
    assert any(m["training_set"] == "leave_one_out" for m in test.expanded["methanol"].values())
    paper = load_study(yaml.safe_load((REPO / "config/paper.yaml").read_text()), REPO)
    sets = {m["training_set"] for m in paper.expanded["methanol"].values()}
    assert sets == {"each", "all", "leave_one_out", "custom"}
    # the default asks the core question in replicates: one model per state and leave-one-out models of each
    # kind, the latter run only at their held-out state; NVT only (the densities are config/density.yaml's)
    assert s.replicates("methanol") == [1, 2, 3]
    assert {(m["kind"], m["training_set"]) for m in s.expanded["methanol"].values()} == {
        (k, t) for k in ("hipnn", "mscg") for t in ("each", "leave_one_out")}
    for name, m in s.expanded["methanol"].items():
        loo = m["training_set"] == "leave_one_out"
        assert s.evaluated_states("methanol", name) == ([m["held_out_state"]] if loo else [p.state for p in states])
    assert s.cg_ensembles("methanol", "T298") == ["nvt"] and not s.settings("methanol")["volume_term"]["enabled"]
    addons = load_study(read_config(REPO / "config/config.yaml", REPO / "config/temperature_transfer.yaml"), REPO)
    density = load_study(read_config(REPO / "config/config.yaml", REPO / "config/density.yaml"), REPO)
    assert density.cg_ensembles("methanol", "T298") == ["nvt", "npt"] and "hipnn_T298_vol" in density.models("methanol")
    assert density.evaluated_states("methanol", "hipnn_loo_T298_vol") == ["T298"]
    for study in (addons, test, paper):  # each holds a temperature-aware model, trained at several temperatures
        aware = study.models_of_kind("methanol", "hipnn_t")
        assert aware and all(len({study.state("methanol", st).temperature_K for st in study.model("methanol", m)["states"]}) >= 2
                             for m in aware)
    assert max(p.temperature_K for p in paper.states) >= 700


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["reference_md"].__setitem__("timestep_fs", "two"), r"key 'reference_md\.timestep_fs': 'two' is not of type 'number'"),
    (lambda c: c.pop("systems"), r"key '\(top level\)': 'systems' is a required property"),
    (lambda c: c["systems"]["methanol"]["models"]["hipnn"].__setitem__("kind", "gnn"),
     r"key 'systems\.methanol\.models\.hipnn\.kind': 'gnn' is not one of \['hipnn', 'hipnn_t', 'mscg'\]"),
    (lambda c: c.pop("state_points"), r"'state_points' is a required property"),
    (lambda c: c["hipnn_t"].__setitem__("energy_anchoring", "yes"), r"key 'hipnn_t\.energy_anchoring': 'yes' is not of type 'boolean'"),
    (lambda c: c["systems"]["methanol"]["models"]["mscg"].pop("states"),
     r"key 'systems\.methanol\.models\.mscg': 'states' is a required property"),
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
    ("methanol\tT298\t-5\t1.0\t", r"key 'temperature_K': -5\.0 is less than the minimum of 50 \(temperatures are in kelvin"),
    ("methanol\tT298\t298\t\t-0.7", r"key 'density_g_cm3': -0.7 is less than or equal to the minimum of 0"),
    ("methanol\tT298\t298\t\t0", r"key 'density_g_cm3': 0\.0 is less than or equal to the minimum of 0"),
])
def test_state_point_errors_name_row_and_file(tmp_path, row, message):
    sheet = "system\tstate\ttemperature_K\tpressure_bar\tdensity_g_cm3\n" + row + "\n"
    cfg = copy.deepcopy(DEFAULT)
    cfg["systems"]["methanol"]["models"] = {"m": {"kind": "mscg", "states": ["T298"]}}
    with pytest.raises(ConfigError, match=message) as err:
        study(cfg, tmp_path, sheet)
    assert "states.tsv, row 1 (system 'methanol', state 'T298')" in str(err.value)


def test_held_out_evaluation_needs_a_leave_one_out_family():
    cfg = copy.deepcopy(DEFAULT)
    cfg["systems"]["methanol"]["models"]["mscg"]["evaluated_at"] = "held_out"
    with pytest.raises(ConfigError, match=r"models\.mscg\.evaluated_at': held_out needs states: leave_one_out"):
        load_study(cfg, REPO)


def test_model_with_unknown_state_is_rejected():
    cfg = copy.deepcopy(DEFAULT)
    cfg["systems"]["methanol"]["models"]["hot"] = {"kind": "mscg", "states": ["T999"]}
    with pytest.raises(ConfigError, match=r"systems\.methanol\.models\.hot\.states': state\(s\) \['T999'\]"):
        load_study(cfg, REPO)


def test_model_kinds_and_duplicate_training_state():
    s = load_study(read_config(REPO / "config/config.yaml", REPO / "config/density.yaml",
                               REPO / "config/temperature_transfer.yaml"), REPO)
    names = s.trained_models("methanol")
    assert s.models_of_kind("methanol", "mscg") == [n for n in names if n.startswith("mscg")]
    # with the volume term every trained model also exists with a fitted volume term, sharing its training
    assert set(s.models("methanol")) == set(names) | {n + "_vol" for n in names}
    assert all(s.base_model("methanol", n + "_vol") == n and s.volume_corrected("methanol", n + "_vol") for n in names)
    # every training set has both kinds (the temperature-transfer set: and the temperature-aware one)
    sets = {}
    for name in names:
        sets.setdefault(tuple(s.model("methanol", name)["states"]), set()).add(s.model("methanol", name)["kind"])
    assert all(kinds in ({"hipnn", "mscg"}, {"hipnn", "hipnn_t", "mscg"}) for kinds in sets.values())
    assert sum(kinds == {"hipnn", "hipnn_t", "mscg"} for kinds in sets.values()) == 1
    cfg = copy.deepcopy(DEFAULT)
    cfg["systems"]["methanol"]["models"]["mscg"]["states"] = ["T298", "T298"]
    with pytest.raises(ConfigError, match=r"models\.mscg\.states': a state is listed twice"):
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


def test_mscg_runs_step_with_their_own_timestep_and_the_same_barostat_time():
    """MS-CG runs step with cg_md.mscg_timestep_fs, their barostat attempting a move after the same simulated time
    as a HIP-NN-TS run's; a model's own timestep override wins; null falls back to timestep_fs; the key reaches
    no run's settings (changing it reruns MS-CG runs only)."""
    cfg = copy.deepcopy(DEFAULT)
    cfg["cg_md"].update(timestep_fs=2.0, mscg_timestep_fs=10.0, barostat_frequency=25)
    cfg["systems"]["methanol"]["models"] = {"h": {"kind": "hipnn", "states": ["T298"]},
                                            "m": {"kind": "mscg", "states": ["T298"]},
                                            "own": {"kind": "mscg", "states": ["T298"], "cg_md": {"timestep_fs": 1.0}}}
    s = load_study(cfg, REPO)
    h, m, own = (s.cg_md_settings("methanol", name) for name in ("h", "m", "own"))
    assert (h["timestep_fs"], h["barostat_frequency"]) == (2.0, 25)
    assert (m["timestep_fs"], m["barostat_frequency"]) == (10.0, 5)  # 25 x 2 fs = 5 x 10 fs
    assert m["timestep_fs"] * m["barostat_frequency"] == h["timestep_fs"] * h["barostat_frequency"]
    assert (own["timestep_fs"], own["barostat_frequency"]) == (1.0, 25)
    assert not any("mscg_timestep_fs" in d for d in (h, m, own))
    cfg["cg_md"]["mscg_timestep_fs"] = None
    s = load_study(cfg, REPO)
    assert s.cg_md_settings("methanol", "m")["timestep_fs"] == 2.0


def test_temperature_aware_model_needs_two_temperatures(tmp_path):
    """U and S of W = U - T S are separable only with frames at two temperatures at least: a hipnn_t model on one
    temperature (a single state, the each shorthand, or two states at the same temperature) is refused by name."""
    for states in (["T298"], "each"):
        cfg = copy.deepcopy(DEFAULT)
        cfg["systems"]["methanol"]["models"] = {"warm": {"kind": "hipnn_t", "states": states}}
        with pytest.raises(ConfigError, match=r"model 'warm(_T\d+)?' \(kind hipnn_t\) is trained at one temperature"):
            load_study(cfg, REPO)
    sheet = ("system\tstate\ttemperature_K\tpressure_bar\tdensity_g_cm3\nmethanol\tA\t298\t1.0\t\n"
             "methanol\tB\t298\t\t0.70\n")
    cfg = copy.deepcopy(DEFAULT)
    cfg["systems"]["methanol"]["models"] = {"two": {"kind": "hipnn_t", "states": ["A", "B"]}}
    with pytest.raises(ConfigError, match=r"model 'two' \(kind hipnn_t\) is trained at one temperature only \(\[298\.0\] K"):
        study(cfg, tmp_path, sheet)
    cfg["systems"]["methanol"]["models"] = {"two": {"kind": "hipnn_t", "states": "all",
                                                    "hipnn_t": {"energy_anchoring": False}}}
    s = study(cfg, tmp_path, sheet.replace("B\t298", "B\t350"))  # two temperatures: accepted
    assert s.hipnn_t_settings("methanol", "two") == {**DEFAULT["hipnn_t"], "energy_anchoring": False}
    cfg["systems"]["methanol"]["models"] = {"h": {"kind": "hipnn", "states": "all", "hipnn_t": {"energy_anchoring": False}}}
    with pytest.raises(ConfigError, match=r"model 'h' is of kind 'hipnn'; its 'hipnn_t' settings apply to kind hipnn_t only"):
        study(cfg, tmp_path, sheet.replace("B\t298", "B\t350"))


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
    cfg["systems"]["methanol"]["models"]["mscg"]["kind"] = "pairwise"
    return ["systems.methanol.models.mscg.kind", "'pairwise' is not one of ['hipnn', 'hipnn_t', 'mscg']"]


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


H = "system\tstate\ttemperature_K\tpressure_bar\tdensity_g_cm3\n"


def _drop(*path):
    def edit(c):
        d = c
        for k in path[:-1]:
            d = d[k]
        d.pop(path[-1])
    return edit


def _rename_system(new):
    return lambda c: c["systems"].__setitem__(new, c["systems"].pop("methanol"))


MOH = ["C", "H1", "H2", "H3", "O", "HO"]
# (config edit, the message it must give): kinds of mistake a new user makes, each rejected before any job
MORE_BAD_CONFIGS = {
    # a left-out section or key gets the schema's default (test_defaults_are_filled_in_place_before_the_checks);
    # what has none must be given
    "missing state sheet": (_drop("state_points"), r"key '\(top level\)': 'state_points' is a required property"),
    "missing nested key": (_drop("systems", "methanol", "mapping"), r"key 'systems\.methanol': 'mapping' is a required"),
    "typo at top level": (_set(("seeed",), 1), r"Additional properties are not allowed \('seeed' was unexpected\)"),
    "typo in a system": (_set(("systems", "methanol", "n_molecule"), 10), r"key 'systems\.methanol': Additional "
                         r"properties are not allowed \('n_molecule'"),
    "typo in a model": (_set(("systems", "methanol", "models", "mscg", "kinds"), "mscg"),
                        r"key 'systems\.methanol\.models\.mscg': Additional properties are not allowed \('kinds'"),
    "typo in a model's cg_md": (_set(("systems", "methanol", "models", "mscg", "cg_md"), {"timestep": 2.0}),
                                r"models\.mscg\.cg_md': Additional properties are not allowed \('timestep'"),
    "NaN timestep": (_set(("reference_md", "timestep_fs"), math.nan), r"key 'reference_md\.timestep_fs': nan is not a finite"),
    "infinite run": (_set(("cg_md", "production_ps"), math.inf), r"key 'cg_md\.production_ps': inf is not a finite"),
    "zero CG timestep": (_set(("cg_md", "timestep_fs"), 0), r"key 'cg_md\.timestep_fs': 0 is less than or equal"),
    "AA timestep beyond 5 fs": (_set(("reference_md", "timestep_fs"), 20.0), r"key 'reference_md\.timestep_fs': 20\.0 is greater than the maximum of 5"),
    "AA timestep too long for HBonds": (_set(("reference_md", "timestep_fs"), 4.5), r"'reference_md\.timestep_fs' = 4\.5 fs is too long for constraints 'HBonds' \(at most 4 fs"),
    "AA timestep without constraints": (_set(("reference_md", "constraints"), "none"), r"= 4 fs is too long for constraints 'none'"),
    "CG timestep beyond 200 fs": (_set(("cg_md", "timestep_fs"), 500.0), r"key 'cg_md\.timestep_fs': 500\.0 is greater than the maximum of 200"),
    "negative friction": (_set(("cg_md", "friction_per_ps"), -1.0), r"key 'cg_md\.friction_per_ps': -1\.0 is less than or equal"),
    "negative equilibration": (_set(("cg_md", "equilibration_ps"), -1), r"key 'cg_md\.equilibration_ps': -1 is less than the minimum of 0"),
    "free-text training device": (_set(("training", "device"), "gpu"), r"key 'training\.device': 'gpu' does not match"),
    "free-text CG device": (_set(("cg_md", "device"), "nvidia"), r"key 'cg_md\.device': 'nvidia' does not match"),
    "lower-case platform": (_set(("reference_md", "platform"), "cuda"), r"key 'reference_md\.platform': 'cuda' is not one of \['CPU'"),
    "zero threads": (_set(("reference_md", "threads"), 0), r"key 'reference_md\.threads': 0 is less than the minimum of 1"),
    "negative seed": (_set(("seed",), -1), r"key 'seed': -1 is less than the minimum of 0"),
    "text seed": (_set(("seed",), "abc"), r"key 'seed': 'abc' is not of type 'integer'"),
    "no systems": (_set(("systems",), {}), r"key 'systems': \{\} should be non-empty"),
    "system name with a slash": (_rename_system("meth/anol"), r"key 'systems': 'meth/anol' does not match"),
    "model name with a dash": (_set(("systems", "methanol", "models", "bad-name"), {"kind": "mscg", "states": "each"}),
                               r"key 'systems\.methanol\.models': 'bad-name' does not match"),
    "no models": (_set(("systems", "methanol", "models"), {}), r"key 'systems\.methanol\.models': \{\} should be non-empty"),
    "zero initial density": (_set(("systems", "methanol", "initial_density_g_cm3"), 0), r"initial_density_g_cm3': 0 is less than or equal"),
    "atom in two beads": (_set(("systems", "methanol", "mapping"), {"MOH": {"A": MOH, "B": ["C"]}}),
                          r"mapping\.MOH': an atom is in two beads|mapping\.MOH'.*two beads"),
    "bead name MDAnalysis reads differently": (_set(("systems", "methanol", "mapping"), {"MOH": {"name MOH": MOH}}),
                                               r"key 'systems\.methanol\.mapping\.MOH': 'name MOH' does not match"),
    "bead with no atoms": (_set(("systems", "methanol", "mapping"), {"MOH": {"MOH": []}}), r"mapping\.MOH\.MOH': \[\] should be non-empty"),
    "mapping of a residue the template lacks": (_set(("systems", "methanol", "mapping"), {"MOH": {"MOH": MOH}, "ETH": {"E": ["C"]}}),
                                                r"mapping': residue\(s\) \['ETH'\] are not in '.*methanol\.pdb'"),
    "missing template": (_set(("systems", "methanol", "template_pdb"), "resources/nope.pdb"), r"template_pdb': file '.*nope\.pdb' not found"),
    "template that is not a PDB": (_set(("systems", "methanol", "template_pdb"), "resources/methanol/oplsaa_methanol.xml"),
                                   r"template_pdb': cannot read '.*oplsaa_methanol\.xml' as PDB|mapping': residue"),
    "force field that is not XML": (_set(("systems", "methanol", "forcefield"), "resources/methanol/methanol.pdb"),
                                    r"forcefield': cannot read '.*methanol\.pdb' as an OpenMM force field XML"),
    "NPT state without a sheet": (_set(("state_points",), "config/nope.tsv"), r"config key 'state_points': file '.*nope\.tsv' not found"),
    "sheet path not a string": (_set(("state_points",), 5), r"key 'state_points': 5 is not valid under any of the given schemas"),
    "too few RDF bins": (_set(("rdf", "nbins"), 5), r"key 'rdf\.nbins': 5 is less than the minimum of 10"),
    "more jackknife blocks than frames": (_set(("rdf", "n_blocks"), 100), r"'rdf\.n_blocks' = 100: a CG run records 80 frames"),
    "knots wider than the cutoff": (_set(("mscg", "knot_spacing_A"), 8.0), r"'mscg\.knot_spacing_A' must be well below"),
    "negative regularisation": (_set(("mscg", "regularization"), [-1.0]), r"key 'mscg\.regularization\.0': -1\.0 is less than"),
    "one cross-validation fold": (_set(("mscg", "cv_folds"), 1), r"key 'mscg\.cv_folds': 1 is less than the minimum of 2"),
    "prior fraction of 1": (_set(("prior", "force_fraction_at_onset"), 1.0), r"force_fraction_at_onset': 1\.0 is greater than or equal"),
    "sloppy Ewald tolerance": (_set(("reference_md", "ewald_error_tolerance"), 1.0), r"ewald_error_tolerance': 1\.0 is greater than the maximum"),
    "soft cutoff beyond the hard one": (_set(("hipnn", "dist_soft_max"), 9.0), r"need dist_soft_min < dist_soft_max <= dist_hard_max"),
    "zero learning rate": (_set(("training", "learning_rate"), 0), r"key 'training\.learning_rate': 0 is less than or equal"),
    "zero epochs": (_set(("training", "max_epochs"), 0), r"key 'training\.max_epochs': 0 is less than the minimum of 1"),
    "batch larger than the largest batch": (_set(("training", "batch_size"), 64), r"'training\.batch_size' \(64\) exceeds 'training\.max_batch_size' \(16\)"),
    "termination before plateau": (_set(("training", "termination_patience"), 1), r"'training\.termination_patience' \(1\) is shorter than 'training\.plateau_patience'"),
    "valid + test leave too little": (lambda c: (c["training"].__setitem__("valid_fraction", 0.3), c["training"].__setitem__("test_fraction", 0.3)),
                                      r"'training\.valid_fraction' \+ 'training\.test_fraction' must be below 0\.5"),
    "too few frames for the time blocks": (_set(("reference_md", "production_ps"), 0.6), r"give 3 frames per state: after the validation \(1\) and test \(1\) blocks"),
    "volume term switch as text": (_set(("volume_term", "enabled"), "yes"), r"key 'volume_term\.enabled': 'yes' is not of type 'boolean'"),
    "volume term of order 3": (_set(("volume_term", "order"), 3), r"key 'volume_term\.order': 3 is not one of \[1, 2\]"),
    "density scan of 0 %": (_set(("volume_term", "density_scan_pct"), 0), r"key 'volume_term\.density_scan_pct': 0 is less than or equal to the minimum of 0"),
    "density scan of 50 %": (_set(("volume_term", "density_scan_pct"), 50), r"key 'volume_term\.density_scan_pct': 50 is greater than the maximum of 20"),
    "MTS factor 0": (_set(("cg_md", "mts_inner_steps"), 0), r"key 'cg_md\.mts_inner_steps': 0 is less than the minimum of 1"),
    # unit slips: a length in nm where Å is meant, a density in kg/m3; the message names the key and the unit
    "RDF range in nm": (_set(("rdf", "rmax_A"), 1.2), r"key 'rdf\.rmax_A': 1\.2 is less than the minimum of 2\.0 \(lengths ending _A are in ångström.*nm"),
    "MS-CG cutoff in nm": (_set(("mscg", "cutoff_A"), 0.8), r"key 'mscg\.cutoff_A': 0\.8 is less than the minimum of 2\.0 \(lengths ending _A are in ångström"),
    "HIP-NN range in nm": (_set(("hipnn", "dist_hard_max"), 0.8), r"key 'hipnn\.dist_hard_max': 0\.8 is less than the minimum of 2\.0 \(lengths ending _A"),
    "HIP-NN soft cutoff in nm": (_set(("hipnn", "dist_soft_max"), 0.7), r"key 'hipnn\.dist_soft_max': 0\.7 is less than the minimum of 2\.0 \(lengths ending _A"),
    "HIP-NN inner cutoff in nm": (_set(("hipnn", "dist_soft_min"), 0.25), r"key 'hipnn\.dist_soft_min': 0\.25 is less than the minimum of 0\.5 \(lengths ending _A"),
    "literature peak in nm": (_set(("systems", "methanol", "validation"), {"first_peak_A": 0.37}),
                              r"key 'systems\.methanol\.validation\.first_peak_A': 0\.37 is less than the minimum of 1\.5 \(lengths ending _A"),
    "packing density in kg/m3": (_set(("systems", "methanol", "initial_density_g_cm3"), 760),
                                 r"key 'systems\.methanol\.initial_density_g_cm3': 760 is greater than or equal to the maximum of 5 \(densities are in g/cm³"),
}


@pytest.mark.parametrize("name", list(MORE_BAD_CONFIGS))
def test_more_bad_configs_name_the_key_and_file(name):
    edit, message = MORE_BAD_CONFIGS[name]
    cfg = copy.deepcopy(DEFAULT)
    edit(cfg)
    with pytest.raises(ConfigError, match=message) as err:
        load_study(cfg, REPO, config_files=["config/config.yaml"])
    text = str(err.value)
    assert "config" in text and ("config/config.yaml" in text or "config key" in text or "tsv" in text), text


# (sheet text, the message it must give; the row and cell are named)
MORE_BAD_SHEETS = {
    "text in a numeric cell": (H + "methanol\tT298\t298\t1.0\t\nmethanol\tT300\tabc\t1.0\t\n",
                               r"row 2 \(system 'methanol', state 'T300'\), column 'temperature_K': 'abc' is not a number"),
    "infinite temperature": (H + "methanol\tT298\tinf\t1.0\t\n", r"(?s)row 1 .*key 'temperature_K': inf is"),
    "temperature beyond 2000 K": (H + "methanol\tT298\t9000\t1.0\t\n", r"(?s)row 1 .*'temperature_K': 9000\.0 is greater than or equal to the maximum of 2000"),
    "pressure beyond 10 kbar": (H + "methanol\tT298\t298\t1e6\t\n", r"(?s)row 1 .*'pressure_bar': 1000000\.0 is greater"),
    # unit slips: each refused with the key and the unit it is in
    "temperature in Celsius": (H + "methanol\tT298\t25\t1.0\t\n",
                               r"(?s)row 1 .*key 'temperature_K': 25\.0 is less than the minimum of 50 \(temperatures are in kelvin.*Celsius"),
    "pressure in pascal": (H + "methanol\tT298\t298\t101325\t\n",
                           r"(?s)row 1 .*key 'pressure_bar': 101325\.0 is greater than the maximum of 10000 \(pressures are in bar.*pascal"),
    "density in kg/m3": (H + "methanol\tT400\t400\t\t680\n",
                         r"(?s)row 1 .*key 'density_g_cm3': 680\.0 is greater than or equal to the maximum of 5 \(densities are in g/cm³.*kg/m³"),
    "state names differing only in case": (H + "methanol\tT298\t298\t1.0\t\nmethanol\tt298\t298.2\t1.0\t\n",
                                           r"states 'T298' and 't298' of system 'methanol' differ only in case"),
    "deeply negative pressure": (H + "methanol\tT298\t298\t-5000\t\n", r"(?s)row 1 .*'pressure_bar': -5000\.0 is less than the minimum of -1000"),
    "duplicate state id": (H + "methanol\tT298\t298\t1.0\t\nmethanol\tT298\t298.3\t1.0\t\n", r"state 'T298' of system 'methanol' appears twice"),
    "state id with a slash": (H + "methanol\tT/298\t298\t1.0\t\n", r"(?s)row 1 .*key 'state': 'T/298' does not match"),
    "state id '..'": (H + "methanol\t..\t298\t1.0\t\n", r"(?s)row 1 .*key 'state': '\.\.' does not match"),
    "state of an unknown system": (H + "water\tT298\t298\t1.0\t\nmethanol\tT300\t300\t1.0\t\n", r"state 'T298' names system 'water', which is not in config key 'systems'"),
    "missing temperature column": ("system\tstate\tpressure_bar\nmethanol\tT298\t1.0\n", r"missing column\(s\) \['temperature_K'\]"),
    "unknown column": (H.rstrip("\n") + "\tfoo\nmethanol\tT298\t298\t1.0\t\t1\n", r"unknown column\(s\) \['foo'\]"),
    "no rows": (H, r"no state points for system 'methanol' in .*states\.tsv"),
    "comma-separated instead of tabs": ("system,state,temperature_K,pressure_bar\nmethanol,T298,298,1.0\n", r"looks comma- or semicolon-separated; the sheet must be tab-separated"),
}


@pytest.mark.parametrize("name", list(MORE_BAD_SHEETS))
def test_more_bad_sheets_name_row_and_file(tmp_path, name):
    text, message = MORE_BAD_SHEETS[name]
    cfg = copy.deepcopy(DEFAULT)
    cfg["systems"]["methanol"]["models"] = {"m": {"kind": "mscg", "states": "each"}}
    with pytest.raises(ConfigError, match=message) as err:
        study(cfg, tmp_path, text)
    assert "states.tsv" in str(err.value)


def test_zero_pressure_is_a_valid_npt_state(tmp_path):
    """0 bar is a pressure, not a missing one: it stays 0 (the CG barostat must not fall back to 1 bar)."""
    cfg = copy.deepcopy(DEFAULT)
    cfg["systems"]["methanol"]["models"] = {"m": {"kind": "mscg", "states": "each"}}
    s = study(cfg, tmp_path, H + "methanol\tT298\t298\t0\t\nmethanol\tT300\t300\t\t0.78\n")
    assert s.state("methanol", "T298").pressure_bar == 0.0 and s.state("methanol", "T298").ensemble == "NPT"


def _cli(tmp_path, *args):
    snakemake = Path(sys.executable).with_name("snakemake")
    return subprocess.run([str(snakemake), "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path),
                           *args], capture_output=True, text=True)


def _absolute_config(tmp_path):
    cfg = copy.deepcopy(DEFAULT)
    for key in ("template_pdb", "forcefield"):
        cfg["systems"]["methanol"][key] = str(REPO / cfg["systems"]["methanol"][key])
    cfg["state_points"] = str(REPO / cfg["state_points"])
    (tmp_path / "config").mkdir(exist_ok=True)
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(cfg))
    return cfg


def test_cli_overrides_single_targets_and_yaml_errors(tmp_path):
    """Through the real CLI, no traceback reaches the user: --config overrides apply on top of the default config
    (not instead of it) and are validated and named; a single requested target gets the same checks; a YAML
    syntax error stops before any job."""
    _absolute_config(tmp_path)  # the workflow's default config/config.yaml, as seen from this working directory
    ok = _cli(tmp_path, "--config", "seed=7", "--dry-run", "--cores", "1")
    assert ok.returncode == 0, ok.stderr[-3000:]
    bad = _cli(tmp_path, "--config", "seed=-3", "--dry-run", "--cores", "1")
    assert bad.returncode != 0
    assert "the configuration (config/config.yaml, --config overrides)" in bad.stderr
    assert "key 'seed': -3 is less than the minimum of 0" in bad.stderr
    target = _cli(tmp_path, "--config", "seed=-3", "--cores", "1", "results/methanol/reference/T298/npt/summary.json")
    assert target.returncode != 0 and "key 'seed'" in target.stderr
    (tmp_path / "broken.yaml").write_text("seed: 2024\nsystems:\n  methanol: [unclosed\n")
    broken = _cli(tmp_path, "--configfile", str(tmp_path / "broken.yaml"), "--cores", "1")
    assert broken.returncode != 0 and "not valid JSON or YAML" in broken.stderr
    for proc in (bad, target, broken):
        assert "Traceback" not in proc.stderr and 'File "' not in proc.stderr, proc.stderr
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("constraints", ["none", "HBonds", "AllBonds", "HAngles"])
def test_constrained_pairs_are_openmms(constraints):
    """The pairs the mapping check treats as constrained are exactly those OpenMM's createSystem constrains."""
    from openmm import app

    from cgtransfer.config import constrained_pairs

    pdb = app.PDBFile(str(REPO / "resources/methanol/methanol.pdb"))
    ff = app.ForceField(str(REPO / "resources/methanol/oplsaa_methanol.xml"))
    openmm_constraints = {"none": None, "HBonds": app.HBonds, "AllBonds": app.AllBonds, "HAngles": app.HAngles}
    system = ff.createSystem(pdb.topology, nonbondedMethod=app.NoCutoff, constraints=openmm_constraints[constraints])
    by_openmm = {frozenset(system.getConstraintParameters(i)[:2]) for i in range(system.getNumConstraints())}
    residue = next(pdb.topology.residues())
    ours = {frozenset((a.index, b.index)) for a, b in constrained_pairs(residue, constraints)}
    assert ours == by_openmm and len(ours) == {"none": 0, "HBonds": 4, "AllBonds": 5, "HAngles": 9}[constraints]


@pytest.mark.parametrize("constraints, mapping, refused", [
    ("HBonds", {"CH3": ["C", "H1", "H2", "H3"], "OH": ["O", "HO"]}, None),   # two beads: C-O is not constrained
    ("AllBonds", {"CH3": ["C", "H1", "H2", "H3"], "OH": ["O", "HO"]}, "C-O"),
    ("HAngles", {"CH3": ["C", "H1", "H2", "H3"], "OH": ["O", "HO"]}, "C-O"),
    ("none", {"CH3": ["C", "H1", "H2", "H3"], "OH": ["O", "HO"]}, None),
    ("HBonds", {"CH2": ["C", "H2", "H3"], "HOH": ["H1", "O", "HO"]}, "C-H1"),  # a C-H bond across beads
    ("none", {"CH2": ["C", "H2", "H3"], "HOH": ["H1", "O", "HO"]}, None),
])
def test_mapping_that_splits_a_constrained_pair_is_refused_before_any_job(constraints, mapping, refused):
    """Summed bead forces are exact only if every constraint lies inside a bead: a split pair is refused at
    config time (not after the reference run, as before), naming residue, pair and beads."""
    cfg = copy.deepcopy(DEFAULT)
    cfg["systems"]["methanol"]["mapping"] = {"MOH": mapping}
    cfg["reference_md"]["constraints"] = constraints
    if constraints == "none":
        cfg["reference_md"]["timestep_fs"] = 1.0
    if refused is None:
        load_study(cfg, REPO)
        return
    with pytest.raises(ConfigError, match=rf"mapping\.MOH': the pair {refused} of residue MOH is constrained "
                                          rf"\(reference_md\.constraints: {constraints}\) but split across beads"):
        load_study(cfg, REPO)


# ------------------------------------------------------------------------------------ systems as data
TINY = read_config(REPO / ".test/config/config.yaml")
SYSTEMS = yaml.safe_load((REPO / "config/systems.yaml").read_text())


def test_systems_config_adds_argon_and_water_to_the_default():
    """config/systems.yaml merged over the default (as `--configfile config/config.yaml config/systems.yaml`)."""
    from snakemake.utils import update_config

    cfg = copy.deepcopy(DEFAULT)
    update_config(cfg, copy.deepcopy(SYSTEMS))
    s = load_study(cfg, REPO)
    assert s.systems() == ["methanol", "argon", "water", "methanol_2bead", "argon_water"]
    assert s.reference_system("methanol_2bead") == "methanol"  # the default study's all-atom runs, mapped again
    assert [p.state for p in s.states_of("methanol_2bead")] == [p.state for p in s.states_of("methanol")]
    assert s.expanded["methanol"] == load_study(DEFAULT, REPO).expanded["methanol"]  # the default study, unchanged
    default = load_study(copy.deepcopy(DEFAULT), REPO)
    assert all(s.settings("methanol")[sec] == default.settings("methanol")[sec]
               for sec in ("reference_md", "rdf", "hipnn", "mscg", "cg_md", "volume_term"))
    argon = s.settings("argon")
    assert argon["reference_md"]["constraints"] == "none" and argon["reference_md"]["timestep_fs"] == 5.0
    assert argon["reference_md"]["ewald_error_tolerance"] == DEFAULT["reference_md"]["ewald_error_tolerance"]  # merged
    assert argon["mscg"]["cutoff_A"] == 10 * argon["reference_md"]["nonbonded_cutoff_nm"]  # the exact force fits
    assert s.cg_md_settings("argon", "hipnn_all")["timestep_fs"] == 5.0
    assert s.cg_md_settings("methanol", "hipnn_T298")["timestep_fs"] == DEFAULT["cg_md"]["timestep_fs"]
    assert s.settings("argon")["volume_term"]["enabled"] and s.cg_ensembles("argon", "T87") == ["nvt", "npt"]
    assert s.forcefields("water") == ["tip3pfb.xml"] and s.forcefield_files("water") == []  # shipped by OpenMM
    assert s.forcefield_files("argon") == [str(REPO / "resources/argon/argon.xml")]
    temps = [p.temperature_K for p in s.states_of("water")]
    assert min(temps) <= 250 and max(p.temperature_K for p in s.states_of("water") if p.ensemble == "NPT") >= 370
    assert any(p.ensemble == "NVT" and p.temperature_K > 373 for p in s.states_of("water"))
    argon_states = {p.state: p for p in s.states_of("argon")}
    assert argon_states["T94"].temperature_K == 94.4 and argon_states["T94"].density_g_cm3 == 1.374  # Rahman 1964
    assert s.system("argon")["validation"]["identity_mapping"] is True
    assert {"methanol", "methanol_2bead", "argon", "water", "argon_water", "argon_external"} == set(
        load_study(TINY, REPO).systems())  # CI


def _tiny(edit):
    cfg = copy.deepcopy(TINY)
    edit(cfg)
    return cfg


@pytest.mark.parametrize("edit, message", [
    # a system's override must still follow its section's rules, and the message says whose settings they are
    (lambda c: c["systems"]["argon"]["reference_md"].__setitem__("timestep_fs", -1.0),
     r"(?s)settings of system 'argon' \(systems\.argon\.reference_md merged over reference_md\).*"
     r"key 'systems\.argon\.reference_md\.timestep_fs': -1\.0 is less than or equal to the minimum of 0"),
    (lambda c: c["systems"]["argon"]["mscg"].__setitem__("cutof_A", 8.0),
     r"(?s)settings of system 'argon'.*key 'systems\.argon\.mscg': Additional properties are not allowed \('cutof_A'"),
    (lambda c: c["systems"]["argon"].__setitem__("solvent", {}), r"key 'systems\.argon': Additional properties"),
    (lambda c: c["systems"]["argon"]["validation"].__setitem__("first_peak_A", -3.7),
     r"key 'systems\.argon\.validation\.first_peak_A'"),
    # a system's own ranges against its own box
    (lambda c: c["systems"]["argon"]["rdf"].__setitem__("rmax_A", 14.0),
     r"'rdf\.rmax_A' = 14 Å does not fit in half the box edge .* \(systems\.argon\.initial_density_g_cm3\)"),
    (lambda c: c["systems"]["water"]["reference_md"].__setitem__("nonbonded_cutoff_nm", 1.2),
     r"'reference_md\.nonbonded_cutoff_nm' = 12 Å does not fit .* \(systems\.water"),
    # the bonded-timestep limit applies to molecules with bonds only: argon's 5 fs without constraints is fine,
    # methanol's is not
    (lambda c: c["systems"]["methanol"].__setitem__("reference_md", {"constraints": "none", "timestep_fs": 5.0}),
     r"'reference_md\.timestep_fs' \(system 'methanol'\) = 5 fs is too long for constraints 'none'"),
    (lambda c: c["systems"]["water"].__setitem__("forcefield", "tip9p.xml"),
     r"systems\.water\.forcefield': file '.*tip9p\.xml' not found, and OpenMM ships no force field named 'tip9p\.xml'"),
    (lambda c: c["systems"]["water"].__setitem__("forcefield", "resources/argon/argon.xml"),
     r"systems\.water\.forcefield': '.*argon\.xml' has no residue template matching residue\(s\) \['HOH'\]"),
    (lambda c: c["systems"]["water"]["mapping"].__setitem__("HOH", {"W": ["O", "H1"]}),
     r"systems\.water\.mapping\.HOH': atom\(s\) \['H2'\] .* are in no bead"),
    (lambda c: c["systems"]["argon"]["mapping"].__setitem__("AR", {"AR": ["Ar1"]}),
     r"systems\.argon\.mapping\.AR': atom\(s\) \['Ar1'\] are not in residue AR"),
    # another mapping of the same all-atom runs: only if they are exactly the runs this system would make
    (lambda c: c["systems"]["methanol_2bead"].__setitem__("reference_system", "ethanol"),
     r"'systems\.methanol_2bead\.reference_system': 'ethanol' is not another system"),
    (lambda c: c["systems"]["methanol_2bead"].__setitem__("n_molecules", 100),
     r"'systems\.methanol_2bead\.reference_system': its molecules \(templates and counts\) differ from system "
     r"'methanol'"),
    (lambda c: c["systems"]["methanol_2bead"].__setitem__("reference_md", {"production_ps": 8.0}),
     r"'systems\.methanol_2bead\.reference_system': its reference_md differ"),
    (lambda c: c["systems"]["methanol_2bead"].__setitem__("reference_system", "argon"),
     r"'systems\.methanol_2bead\.reference_system': its molecules"),
    (lambda c: c.__setitem__("state_points", [".test/config/state_points.tsv", ".test/config/state_points.tsv"]),
     r"config key 'state_points' \(.* \+ .*\): state 'T273' of system 'methanol' appears in two sheets"),
])
def test_system_settings_errors_name_system_and_key(edit, message):
    with pytest.raises(ConfigError, match=message):
        load_study(_tiny(edit), REPO)


def test_reference_system_states_must_be_the_same_runs(tmp_path):
    """methanol_2bead maps methanol's all-atom runs: a state it has that methanol lacks (or at another pressure)
    would be a run nobody makes."""
    s = load_study(TINY, REPO)
    assert s.reference_system("methanol_2bead") == "methanol" and s.reference_system("methanol") == "methanol"
    sheet = tmp_path / "extra.tsv"
    for row in ("methanol_2bead\tT350\t350\t1.0\t", "methanol_2bead\tT313\t313\t50.0\t"):
        lines = (REPO / ".test/config/state_points.tsv").read_text().splitlines()
        lines = [ln for ln in lines if not ln.startswith("methanol_2bead\tT313")] + [row]
        sheet.write_text("\n".join(lines) + "\n")
        cfg = _tiny(lambda c: c.__setitem__("state_points", str(sheet)))
        with pytest.raises(ConfigError, match=r"state 'T3[15]\d' of system 'methanol_2bead' is not a state of system "
                                              r"'methanol' with the same temperature, pressure and density"):
            load_study(cfg, REPO)


def test_monatomic_template_needs_no_bonds_and_several_sheets_are_one(tmp_path):
    s = load_study(TINY, REPO)
    assert s.settings("argon")["reference_md"]["constraints"] == "none"
    sheet = tmp_path / "extra.tsv"
    sheet.write_text("system\tstate\ttemperature_K\tpressure_bar\tdensity_g_cm3\nargon\tT100\t100\t\t1.30\n")
    cfg = _tiny(lambda c: c.__setitem__("state_points", [".test/config/state_points.tsv", str(sheet)]))
    two = load_study(cfg, REPO)
    assert [p.state for p in two.states_of("argon")] == ["T87", "T94", "T100"]
    assert "mscg_T100" in two.models("argon")  # `each` covers the new sheet's state


def test_a_mixture_is_data(tmp_path):
    """A system of several molecule types: the box mass is the sum over types, each template is checked against
    the mapping and the force fields, and both or neither of the two forms is refused."""
    mix = {"molecules": [{"template_pdb": "resources/argon/argon.pdb", "n_molecules": 40},
                         {"template_pdb": "resources/water/water.pdb", "n_molecules": 260}],
           "forcefield": ["resources/argon/argon.xml", "tip3pfb.xml"], "initial_density_g_cm3": 1.0,
           "mapping": {"AR": {"AR": ["AR"]}, "HOH": {"W": ["O", "H1", "H2"]}},
           "models": {"mscg": {"kind": "mscg", "states": "all"}},
           "reference_md": {"nonbonded_cutoff_nm": 0.7}, "rdf": {"rmax_A": 7.0},
           "hipnn": {"dist_soft_max": 6.0, "dist_hard_max": 6.5}, "mscg": {"cutoff_A": 6.5},
           "cg_md": {"pair_skin_A": 0.5}}
    sheet = tmp_path / "mix.tsv"
    sheet.write_text("system\tstate\ttemperature_K\tpressure_bar\tdensity_g_cm3\nmix\tT300\t300\t1.0\t\n")
    cfg = _tiny(lambda c: (c["systems"].__setitem__("mix", copy.deepcopy(mix)),
                           c.__setitem__("state_points", [".test/config/state_points.tsv", str(sheet)])))
    s = load_study(cfg, REPO)
    assert s.molecules("mix") == [(str(REPO / "resources/argon/argon.pdb"), 40), (str(REPO / "resources/water/water.pdb"), 260)]
    # the box: (40 x 39.948 + 260 x 18.015) amu at 1.0 g/cm3 is 10431 Å3, 21.85 Å wide: 11 Å does not fit in half
    bad = copy.deepcopy(cfg)
    bad["systems"]["mix"]["rdf"]["rmax_A"] = 11.0
    with pytest.raises(ConfigError, match=r"'rdf\.rmax_A' = 11 Å does not fit in half the box edge \(10\.9\d Å\) of "
                                          r"300 molecules .*systems\.mix\.molecules"):
        load_study(bad, REPO)
    for edit, message in [
        (lambda m: m.__setitem__("template_pdb", "resources/argon/argon.pdb"), r"'systems\.mix': give either .* not both"),
        (lambda m: m.pop("molecules"), r"'systems\.mix': give either .* not neither"),
        (lambda m: m["molecules"][1].__setitem__("template_pdb", "resources/argon/argon.pdb"), r"molecules\.1\.template_pdb': .* listed twice"),
        (lambda m: m["molecules"][1].__setitem__("template_pdb", "resources/water/nope.pdb"), r"molecules\.1\.template_pdb': file .* not found"),
        (lambda m: m["mapping"].pop("HOH"), r"'systems\.mix\.mapping': residue 'HOH' of '.*water\.pdb' has no entry"),
        (lambda m: m.__setitem__("forcefield", "resources/argon/argon.xml"), r"no residue template matching residue\(s\) \['HOH'\]"),
        (lambda m: m.__setitem__("validation", {"identity_mapping": True}), r"identity_mapping': .* not a mixture"),
    ]:
        broken = copy.deepcopy(cfg)
        edit(broken["systems"]["mix"])
        with pytest.raises(ConfigError, match=message):
            load_study(broken, REPO)


# ------------------------------------------------------------------------------------ defaults: configs hold differences
SCHEMA_PATH = REPO / "workflow/schemas/config.schema.yaml"


def _schema_defaults():
    from cgtransfer.config import load_schema, with_defaults

    return with_defaults({}, load_schema(SCHEMA_PATH))


def test_defaults_are_filled_in_place_before_the_checks():
    """A config stating only its study gets every other setting from the schema, in the schema's key order, in
    the very dict it passed (the one Snakemake's rules and scripts read); a section given in part keeps the
    defaults of its other keys; a key left out of a section is no error."""
    raw = yaml.safe_load((REPO / "config/config.yaml").read_text())
    assert set(raw) == {"state_points", "systems"}  # the default study states only what defines it
    s = load_study(raw, REPO)
    assert s.config is raw and json_text(raw) == json_text(DEFAULT)
    assert list(raw) == ["state_points", "seed", "replicates", "systems", "reference_md", "rdf", "hipnn", "hipnn_t",
                         "mscg", "prior", "training", "cg_md", "volume_term", "dynamics"]
    cfg = copy.deepcopy(raw)
    for section in ("reference_md", "rdf", "hipnn", "hipnn_t", "mscg", "prior", "training", "cg_md", "volume_term"):
        cfg.pop(section)
    cfg["cg_md"] = {"production_ps": 3.0}
    cfg["hipnn"] = {}
    s = load_study(cfg, REPO)
    assert cfg["cg_md"] == {**DEFAULT["cg_md"], "production_ps": 3.0} and list(cfg["cg_md"]) == list(DEFAULT["cg_md"])
    assert cfg["hipnn"] == DEFAULT["hipnn"] and s.settings("methanol")["mscg"] == DEFAULT["mscg"]
    assert _schema_defaults() == {k: v for k, v in DEFAULT.items() if k not in ("state_points", "systems")}


def json_text(obj) -> str:
    import json

    return json.dumps(obj)  # key order included


@pytest.mark.parametrize("path", ["config/config.yaml", "config/paper.yaml", ".test/config/config.yaml",
                                  "config/systems.yaml"])
def test_configs_state_only_what_differs_from_the_defaults(path):
    """No setting repeats its default (a repeated default would silently stop following the schema's)."""
    defaults = _schema_defaults()
    raw = yaml.safe_load((REPO / path).read_text())
    repeated = [k for k, v in raw.items() if k in defaults and not isinstance(v, dict) and v == defaults[k]]
    repeated += [f"{sec}.{k}" for sec, v in raw.items() if isinstance(v, dict) and sec in defaults
                 for k, x in v.items() if defaults[sec].get(k) == x]
    assert not repeated, f"{path} repeats the default of {repeated}"


def test_systems_config_runs_alone_and_keeps_the_default_methanol():
    """config/systems.yaml alone is the same study as added to the default: its copy of the default's methanol
    system (which methanol_2bead maps) must stay the default's."""
    alone = load_study(read_config(REPO / "config/systems.yaml"), REPO)
    both = load_study(read_config(REPO / "config/config.yaml", REPO / "config/systems.yaml"), REPO)
    assert yaml.safe_load((REPO / "config/systems.yaml").read_text())["systems"]["methanol"] == \
        yaml.safe_load((REPO / "config/config.yaml").read_text())["systems"]["methanol"]
    assert json_text(alone.config) == json_text(both.config) and alone.expanded == both.expanded
    assert alone.systems() == ["methanol", "argon", "water", "methanol_2bead", "argon_water"]


def test_systems_config_alone_through_the_cli(tmp_path):
    """`snakemake -n --configfile config/systems.yaml` plans the study (no section is missing)."""
    snakemake = Path(sys.executable).with_name("snakemake")
    proc = subprocess.run([str(snakemake), "-n", "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path),
                           "--configfile", str(REPO / "config/systems.yaml"), "--cores", "1"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "results/argon_water/rep1/summary" in proc.stdout + proc.stderr


def test_unit_slip_in_a_system_override_names_the_system_key():
    cfg = _tiny(lambda c: c["systems"]["argon"]["rdf"].__setitem__("rmax_A", 1.1))
    with pytest.raises(ConfigError, match=r"key 'systems\.argon\.rdf\.rmax_A': 1\.1 is less than the minimum of 2\.0 "
                                          r"\(lengths ending _A are in ångström"):
        load_study(cfg, REPO)


def test_state_names_differing_only_in_case_across_sheets(tmp_path):
    """Two sheets read as one: T298 in the default's and t298 in another collide as result folders."""
    (tmp_path / "more.tsv").write_text(H + "methanol\tt298\t298\t1.0\t\n")
    cfg = copy.deepcopy(DEFAULT)
    cfg["state_points"] = ["config/state_points.tsv", str(tmp_path / "more.tsv")]
    with pytest.raises(ConfigError, match=r"config key 'state_points' .*: states 'T298' and 't298' of system 'methanol' "
                                          r"differ only in case"):
        load_study(cfg, REPO)


def test_the_default_plans_its_design_and_the_add_ons_add_theirs(tmp_path):
    """The default's plan (a dry run): three replicates; every single-state model at every state, each
    leave-one-out model at its held-out state only; NVT runs only; the leave-one-out fits get their thinned frames
    (a train param of theirs alone); config/density.yaml adds NPT runs and volume-corrected twins."""
    snakemake = Path(sys.executable).with_name("snakemake")

    def plan(*configs):
        proc = subprocess.run([str(snakemake), "-n", "--snakefile", str(REPO / "Snakefile"), "--directory",
                               str(tmp_path), "--configfile", *[str(REPO / c) for c in configs], "--cores", "1"],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return re.findall(r"results/methanol/rep(\d)/cg_md/(\w+)/(T\d+)/(\w+)/summary\.json", proc.stdout)

    runs = set(plan("config/config.yaml"))
    assert {r for r, *_ in runs} == {"1", "2", "3"} and {e for *_, e in runs} == {"nvt"}
    states = ["T248", "T298", "T328", "T400", "T550"]
    for kind in ("hipnn", "mscg"):
        for held in states:
            assert {(m, s) for r, m, s, e in runs if r == "1" and m == f"{kind}_loo_{held}"} == {(f"{kind}_loo_{held}", held)}
            assert {s for r, m, s, e in runs if r == "2" and m == f"{kind}_{held}"} == set(states)
    assert len(runs) == 3 * (10 * 5 + 10)
    density = set(plan("config/config.yaml", "config/density.yaml"))
    assert ("1", "hipnn_T298_vol", "T248", "npt") in density and ("1", "hipnn_T298", "T248", "npt") in density
    assert not any(e == "npt" and s in ("T400", "T550") for *_, s, e in density)
    study = load_study(read_config(REPO / "config/config.yaml"), REPO)
    assert study.model("methanol", "hipnn_loo_T298")["train_frames_per_state"] == 16
    assert "train_frames_per_state" not in study.model("methanol", "hipnn_T298")


def test_equal_work_config_is_the_measured_default_with_only_run_settings_changed():
    """benchmarks/configs/equal_work.yaml times today's code on the study the default was when its time was first
    measured (revision ed84f61): it must validate, and differ from that config only in how fast it runs (the
    all-atom step, the HIP-NN-TS outer step), never in what it computes (states, models, simulated picoseconds)."""
    path = REPO / "benchmarks/configs/equal_work.yaml"
    s = load_study(read_config(path), REPO)
    raw = yaml.safe_load(path.read_text())
    assert s.replicates("methanol") == [1]
    assert set(s.expanded["methanol"]) >= {f"{k}_T{t}" for k in ("hipnn", "mscg")
                                                   for t in (248, 298, 328, 400, 550)} | {"hipnn_all", "mscg_all"}
    assert raw["reference_md"]["equilibration_ps"] == 8.0 and raw["reference_md"]["production_ps"] == 16.0
    assert raw["cg_md"]["production_ps"] == 8.0 and raw["training"]["max_epochs"] == 15
    assert raw["volume_term"]["enabled"] and "timestep_fs" not in raw["reference_md"]
    assert "mts_inner_steps" not in raw["cg_md"]
