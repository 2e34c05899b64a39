"""Every config error names the offending key and the file it came from (or --config, or the sheet and row), and
the first cause: each case is a real malformed config or sheet written to a file and loaded as the workflow does
(load_study with the files Snakemake passes, workflow/rules/common.smk)."""

import copy
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO
from cgtransfer.config import CONFIG_OVERRIDES, ConfigError, load_study, merge_config

H = "system\tstate\ttemperature_K\tpressure_bar\tdensity_g_cm3\n"
BASE = yaml.safe_load((REPO / "config/config.yaml").read_text())
for key in ("template_pdb", "forcefield"):
    BASE["systems"]["methanol"][key] = str(REPO / BASE["systems"]["methanol"][key])
BASE["state_points"] = str(REPO / BASE["state_points"])


def load(tmp_path, cfg, overrides=None, sheet=None):
    """Write ``cfg`` (and ``sheet``) to tmp_path and load them as the workflow does: the file's values, Snakemake's
    --config overrides merged over them, and the config_files list common.smk passes (the marker whenever
    Snakemake has overrides, which include the --configfile files themselves)."""
    cfg = copy.deepcopy(cfg)
    if sheet is not None:
        (tmp_path / "states.tsv").write_text(sheet)
        cfg["state_points"] = str(tmp_path / "states.tsv")
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    config = yaml.safe_load(path.read_text())
    merge_config(config, overrides or {})
    with pytest.raises(ConfigError) as err:
        load_study(config, REPO, config_files=[str(path), CONFIG_OVERRIDES])
    return str(err.value), str(path)


def edited(*edits, base=BASE):
    cfg = copy.deepcopy(base)
    for path, value in edits:
        d = cfg
        for k in path[:-1]:
            d = d.setdefault(k, {})
        d[path[-1]] = value
    return cfg


def line_of(text, needle):
    return next(line for line in text.splitlines() if needle in line)


# 1. every message names the file each key it names came from ------------------------------------------------------
@pytest.mark.parametrize("edit, key", [
    ((("rdf", "rmax_A"), 14.0), "'rdf.rmax_A' = 14 Å does not fit"),
    ((("training", "batch_size"), 64), "'training.batch_size' (64) exceeds"),
    ((("reference_md", "timestep_fs"), 4.5), "'reference_md.timestep_fs' = 4.5 fs is too long"),
    ((("seed",), -1), "key 'seed': -1 is less than the minimum of 0"),
    ((("systems", "methanol", "template_pdb"), "nope.pdb"), "'systems.methanol.template_pdb': file"),
    ((("state_points",), "nope.tsv"), "config key 'state_points': file"),
])
def test_message_names_the_config_file(tmp_path, edit, key):
    text, path = load(tmp_path, edited(edit))
    line = line_of(text, key)
    assert line.lstrip().startswith(path + ": ") or line.lstrip().startswith(path + ", "), text
    assert "--config" not in text, text  # no --config value: not named, though Snakemake counts the file as an override


def test_a_default_is_named_as_such(tmp_path):
    """100 molecules make a box too small for the all-atom cutoff, which no file sets: the schema's default."""
    text, path = load(tmp_path, edited((("systems", "methanol", "n_molecules"), 100)))
    assert text.startswith(f"the schema's default (set in none of {path}): config key "
                           "'reference_md.nonbonded_cutoff_nm' = 10 Å does not fit"), text


def test_a_config_override_is_named_and_the_header_lists_it(tmp_path):
    text, path = load(tmp_path, BASE, overrides={"seed": -3})
    assert f"the configuration ({path}, --config overrides)" in text
    assert "--config: key 'seed': -3 is less than the minimum of 0" in text, text


def test_no_override_no_config_in_the_header(tmp_path):
    text, path = load(tmp_path, edited((("seed",), -3)))
    assert f"the configuration ({path}) does not match" in text and f"{path}: key 'seed'" in text, text


def test_a_system_override_is_named_with_its_file(tmp_path):
    cfg = edited((("systems", "methanol", "mscg"), {"cutoff_A": 0.8}))
    text, path = load(tmp_path, cfg)
    assert f"{path}: key 'systems.methanol.mscg.cutoff_A': 0.8 is less than the minimum of 2.0" in text, text


def test_a_typo_names_the_file_that_holds_it(tmp_path):
    text, path = load(tmp_path, edited((("systems", "methanol", "n_molecule"), 10)))
    assert f"{path}: key 'systems.methanol': Additional properties are not allowed ('n_molecule'" in text, text


def test_sheet_errors_name_sheet_and_row(tmp_path):
    text, _ = load(tmp_path, BASE, sheet=H + "methanol\tT298\t298\t1.0\t\nmethanol\tT300\tabc\t1.0\t\n")
    assert f"{tmp_path / 'states.tsv'}, row 2 (system 'methanol', state 'T300'), column 'temperature_K'" in text


def test_a_duplicate_state_names_both_rows(tmp_path):
    text, _ = load(tmp_path, BASE, sheet=H + "methanol\tT298\t298\t1.0\t\nmethanol\tT400\t400\t\t0.7\n"
                                           "methanol\tT298\t298\t1.0\t\n")
    assert f"{tmp_path / 'states.tsv'}, rows 1 and 3: state 'T298' of system 'methanol' appears twice" in text


# 2. a state id that encodes a temperature agrees with it ----------------------------------------------------------
@pytest.mark.parametrize("row, message", [
    ("methanol\tT298\t25\t1.0\t", r"state id 'T298' encodes 298 K but its column 'temperature_K' is 25: is this "
                                  r"Celsius\? \(25 °C = 298\.15 K"),
    ("methanol\tT298_high\t310\t1.0\t", r"state id 'T298_high' encodes 298 K but its column 'temperature_K' is 310 "
                                        r"\(more than 0\.5 K apart\)"),
    ("methanol\tt400\t401\t\t0.68", r"state id 't400' encodes 400 K but its column 'temperature_K' is 401"),
    ("methanol\tT273.15\t0\t1.0\t", r"encodes 273\.15 K but its column 'temperature_K' is 0: is this Celsius\?"),
])
def test_state_id_and_temperature_disagree(tmp_path, row, message):
    text, _ = load(tmp_path, BASE, sheet=H + "methanol\tT250\t250\t1.0\t\n" + row + "\n")
    assert re.search(message, text), text
    assert f"{tmp_path / 'states.tsv'}, row 2" in text, text


def test_state_id_within_half_a_kelvin_is_fine(tmp_path):
    cfg = edited((("systems", "methanol", "models"), {"m": {"kind": "mscg", "states": "each"}}))
    (tmp_path / "states.tsv").write_text(H + "methanol\tT94\t94.4\t\t0.9\nmethanol\tT298\t298.5\t1.0\t\n"
                                         "methanol\thot\t600\t\t0.5\n")
    cfg["state_points"] = str(tmp_path / "states.tsv")
    assert [p.state for p in load_study(cfg, REPO).states_of("methanol")] == ["T94", "T298", "hot"]


# 3. ranges reach the first coordination shell ---------------------------------------------------------------------
@pytest.mark.parametrize("section, key, value", [("rdf", "rmax_A", 3.0), ("hipnn", "dist_hard_max", 3.5),
                                                 ("mscg", "cutoff_A", 4.0)])
def test_range_shorter_than_the_molecular_spacing(tmp_path, section, key, value):
    cfg = edited(((section, key), value), ((section, "dist_soft_max") if section == "hipnn" else ("seed",),
                                           3.0 if section == "hipnn" else 1))
    text, path = load(tmp_path, cfg)
    assert re.search(rf"{re.escape(path)}: config key '{section}\.{key}' = {value:g} Å is shorter than the mean "
                     r"intermolecular spacing of system 'methanol', 4\.12 Å \(\(M / \(rho N_A\)\)\^\(1/3\) for M = "
                     r"32\.04 g/mol at 0\.76 g/cm3", text), text


def test_spacing_is_that_of_the_densest_state(tmp_path):
    """An NVT state denser than the packing density sets the spacing; a system's own override is named."""
    cfg = edited((("systems", "methanol", "rdf"), {"rmax_A": 3.8}),
                 (("systems", "methanol", "models"), {"m": {"kind": "mscg", "states": "each"}}))
    text, path = load(tmp_path, cfg, sheet=H + "methanol\tT298\t298\t1.0\t\nmethanol\tT250\t250\t\t0.95\n")
    assert f"{path}: config key 'systems.methanol.rdf.rmax_A' = 3.8 Å is shorter" in text, text
    assert "3.83 Å" in text and "at 0.95 g/cm3, state 'T250' in" in text, text


def test_every_shipped_config_passes_the_spacing_check():
    for files in (["config/config.yaml"], ["config/paper.yaml"], [".test/config/config.yaml"],
                  ["config/config.yaml", "config/systems.yaml"]):
        cfg = {}
        for f in files:
            merge_config(cfg, yaml.safe_load((REPO / f).read_text()))
        load_study(cfg, REPO, config_files=files)


# 4. a bead needs mass ---------------------------------------------------------------------------------------------
def tip4p(tmp_path, mapping):
    from openmm.app import forcefield as ff

    source = next(Path(d) / "tip4pew.pdb" for d in ff._getDataDirectories() if (Path(d) / "tip4pew.pdb").is_file())
    atoms = [ln for ln in source.read_text().splitlines() if ln.startswith(("ATOM", "HETATM"))][:4]
    (tmp_path / "tip4p.pdb").write_text("\n".join(atoms) + "\nEND\n")
    return edited((("systems",), {"water": {"n_molecules": 216, "template_pdb": str(tmp_path / "tip4p.pdb"),
                                             "forcefield": "tip4pew.xml", "initial_density_g_cm3": 1.0,
                                             "mapping": {"HOH": mapping},
                                             "models": {"m": {"kind": "mscg", "states": "all"}}}}),
                  (("rdf",), {"rmax_A": 8.0}), (("reference_md",), {"nonbonded_cutoff_nm": 0.8}),
                  (("hipnn",), {"dist_soft_max": 6.5, "dist_hard_max": 7.0}), (("mscg",), {"cutoff_A": 7.0}))


def test_a_massless_virtual_site_as_its_own_bead(tmp_path):
    text, path = load(tmp_path, tip4p(tmp_path, {"W": ["O", "H1", "H2"], "M": ["M"]}), sheet=H + "water\tT298\t298\t1.0\t\n")
    assert (f"{path}: config key 'systems.water.mapping.HOH.M': bead 'M' holds atom(s) ['M'] of residue HOH, whose "
            "total mass is zero") in text, text
    assert "put the massless site in a bead with mass (e.g. W: [O, H1, H2, M])" in text, text


def test_the_virtual_site_in_a_bead_with_mass_is_fine(tmp_path):
    cfg = tip4p(tmp_path, {"W": ["O", "H1", "H2", "M"]})
    (tmp_path / "states.tsv").write_text(H + "water\tT298\t298\t1.0\t\n")
    cfg["state_points"] = str(tmp_path / "states.tsv")
    assert load_study(cfg, REPO).models("water")


# 5. the first message blames the first cause ----------------------------------------------------------------------
def test_an_implausible_nvt_density_is_named_before_the_box(tmp_path):
    text, _ = load(tmp_path, BASE, sheet=H + "methanol\tT298\t298\t1.0\t\nmethanol\tT400\t400\t\t4.0\n")
    assert (f"{tmp_path / 'states.tsv'}, row 2 (system 'methanol', state 'T400'): column 'density_g_cm3' = 4 g/cm3 "
            "leaves 2.2 Å3 per atom") in text, text
    assert "does not fit" not in text


def test_an_implausible_initial_density_is_named_before_the_box(tmp_path):
    text, path = load(tmp_path, edited((("systems", "methanol", "initial_density_g_cm3"), 3.5)))
    assert f"{path}: config key 'systems.methanol.initial_density_g_cm3' = 3.5 g/cm3 leaves 2.5 Å3 per atom" in text
    assert "does not fit" not in text


def test_a_template_without_conect_records(tmp_path):
    pdb = tmp_path / "methanol.pdb"
    pdb.write_text("".join(ln for ln in (REPO / "resources/methanol/methanol.pdb").read_text().splitlines(True)
                           if not ln.startswith("CONECT")))
    text, path = load(tmp_path, edited((("systems", "methanol", "template_pdb"), str(pdb))))
    assert (f"{path}: config key 'systems.methanol.template_pdb': '{pdb}' has no CONECT records: the 6 atoms of "
            "residue MOH are unbonded") in text, text
    assert "has no residue template matching" not in text


@pytest.mark.parametrize("states, message", [
    ([], r"key 'systems\.methanol\.models\.m\.states': \[\] trains on no state"),
    ("T298", r"'T298' is neither a list nor a shorthand; .* \(one state is written as a list: \[T298\]\)"),
    ([298], r"\[298\]: \[298\] are not state ids \(ids are names such as T298, not temperatures\)"),
    ("every", r"'every' is neither a list nor a shorthand"),
])
def test_model_states_say_what_is_allowed(tmp_path, states, message):
    text, path = load(tmp_path, edited((("systems", "methanol", "models", "m"), {"kind": "mscg", "states": states})))
    line = line_of(text, "models.m.states")
    assert line.lstrip().startswith(f"{path}: key 'systems.methanol.models.m.states'"), text
    assert re.search(message, line) and "a list of this system's state ids" in line and \
        "each / all / leave_one_out" in line and "not valid under any" not in line, text


@pytest.mark.parametrize("rows, message", [
    ("methanol\tT298\t298\t1.0\t\t\n", r"row 1 \(line 2\): 6 tab-separated fields, but the header has 5 .*a trailing tab"),
    ("methanol\tT298\t298\t1.0\t\nmethanol\tT400\t400\t\t0.68\tx\n", r"row 2 \(line 3\): 6 .*a value beyond the last column"),
    ("# comment\nmethanol\tT298\t298\t1.0\t\n\nmethanol\tT400\t400\t\t0.68\t\n", r"row 2 \(line 5\): 6 .*trailing tab"),
])
def test_a_row_wider_than_the_header(tmp_path, rows, message):
    text, _ = load(tmp_path, BASE, sheet=H + rows)
    assert re.search(re.escape(str(tmp_path / "states.tsv")) + ", " + message, text), text


def test_a_nested_config_value_arrives_as_text(tmp_path):
    """What Snakemake's --config makes of rdf='{rmax_A: 10.0}' (a YAML base-loader dict: text values)."""
    text, _ = load(tmp_path, BASE, overrides={"rdf": {"rmax_A": "10.0"}})
    line = line_of(text, "rdf.rmax_A")
    assert line.lstrip().startswith("--config: key 'rdf.rmax_A': '10.0' is not of type 'number'"), text
    assert "Snakemake's --config parses only top-level key=value" in line and "--configfile" in line


# 6. an old config format: one message naming what changed -------------------------------------------------------
def test_old_model_section(tmp_path):
    cfg = edited((("model",), {"n_features": 32, "dist_hard_max": 8.0}))
    cfg.pop("hipnn", None)
    text, path = load(tmp_path, cfg)
    assert text.startswith("the configuration is in an old format"), text
    assert (f"{path}: config key 'model': the section of HIP-NN-TS hyperparameters is now called 'hipnn'") in text
    assert "models now live under systems.<name>.models as name: {kind: hipnn|hipnn_t|mscg, states:" in text


def test_old_models_as_lists_and_without_kind(tmp_path):
    cfg = edited((("systems", "methanol", "models"), {"a": ["T298", "T328"], "b": {"states": "each"}}))
    text, path = load(tmp_path, cfg)
    assert (f"{path}: config key 'systems.methanol.models.a': a bare list of states is the old format; models now "
            "live under") in text and "write a: {kind: hipnn, states: [T298, T328]}" in text, text
    assert f"{path}: config key 'systems.methanol.models.b': no 'kind' (the old format)" in text, text
    assert text.count("\n") == 2  # one message, a line per change


def test_the_first_format_all_at_once(tmp_path):
    """The first commit's format: a 'model' section and list models, one message for both."""
    cfg = edited((("model",), {"n_features": 32}), (("systems", "methanol", "models"), {"hipnn_T298": ["T298"]}))
    text, _ = load(tmp_path, cfg)
    assert "config key 'model'" in text and "config key 'systems.methanol.models.hipnn_T298'" in text
    assert "Additional properties" not in text


# through the real command line ------------------------------------------------------------------------------------
def _cli(tmp_path, *args):
    snakemake = Path(sys.executable).with_name("snakemake")
    return subprocess.run([str(snakemake), "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path),
                           "--dry-run", "--cores", "1", *args], capture_output=True, text=True)


def test_cli_configfile_without_config_and_a_nested_config_value(tmp_path):
    bad = edited((("rdf",), {"rmax_A": 14.0}))
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    proc = _cli(tmp_path, "--configfile", str(tmp_path / "bad.yaml"))
    assert proc.returncode != 0
    assert f"{tmp_path / 'bad.yaml'}: config key 'rdf.rmax_A' = 14 Å does not fit" in proc.stderr, proc.stderr[-2000:]
    assert "--config" not in proc.stderr.split("no job was started.")[-1]
    (tmp_path / "ok.yaml").write_text(yaml.safe_dump(BASE))
    nested = _cli(tmp_path, "--configfile", str(tmp_path / "ok.yaml"), "--config", "rdf={rmax_A: 10.0}")
    assert nested.returncode != 0
    assert "--config: key 'rdf.rmax_A': '10.0' is not of type 'number'" in nested.stderr, nested.stderr[-2000:]
    assert "Snakemake's --config parses only top-level key=value" in nested.stderr
    assert "Traceback" not in nested.stderr + proc.stderr


# 7. unit slips: the bound a slip violates, and the slip named with the value converted -----------------------------
@pytest.mark.parametrize("row, message", [
    ("methanol\tT298\t298\t100000\t", r"key 'pressure_bar': 100000\.0 is greater than the maximum of 10000 .* — 100000 "
                                      r"bar: is this pascal\? \(100000 Pa = 1 bar\)"),
    ("methanol\tT298\t298\t101325\t", r"— 101325 bar: is this pascal\? \(101325 Pa = 1\.01325 bar\)"),
    ("methanol\troom\t25\t1.0\t", r"key 'temperature_K': 25\.0 is less than the minimum of 50 .* — 25 K: is this "
                                  r"degrees Celsius\? \(25 °C = 298\.15 K\)"),
    ("methanol\tcold\t-20\t1.0\t", r"— -20 K: is this degrees Celsius\? \(-20 °C = 253\.15 K\)"),
    ("methanol\tT400\t400\t\t680", r"key 'density_g_cm3': 680\.0 is greater than or equal to the maximum of 5 .* — 680 "
                                   r"g/cm³: is this kg/m³\? \(680 kg/m³ = 0\.68 g/cm³\)"),
    ("methanol\tT5000\t5000\t1.0\t", r"key 'temperature_K': 5000\.0 is greater than or equal to the maximum of 2000 "
                                     r"\(temperatures are in kelvin"),
    ("methanol\thot\t2000\t1.0\t", r"key 'temperature_K': 2000\.0 is greater than or equal to the maximum of 2000"),
    ("methanol\tT298\t298\t-5000\t", r"key 'pressure_bar': -5000\.0 is less than the minimum of -1000"),
])
def test_a_sheet_value_in_the_wrong_unit(tmp_path, row, message):
    text, _ = load(tmp_path, BASE, sheet=H + row + "\n")
    assert re.search(message, text), text
    assert f"{tmp_path / 'states.tsv'}, row 1" in text


@pytest.mark.parametrize("edit, message", [
    ((("rdf", "rmax_A"), 1.2), r"key 'rdf\.rmax_A': 1\.2 is less than the minimum of 2\.0 .* — 1\.2 Å: is this nm\? "
                               r"\(1\.2 nm = 12 Å\)"),
    ((("mscg", "cutoff_A"), 0.8), r"key 'mscg\.cutoff_A': 0\.8 .* — 0\.8 Å: is this nm\? \(0\.8 nm = 8 Å\)"),
    ((("hipnn", "dist_soft_min"), 0.25), r"key 'hipnn\.dist_soft_min': 0\.25 .* — 0\.25 Å: is this nm\? \(0\.25 nm = "
                                         r"2\.5 Å\)"),
    ((("reference_md", "nonbonded_cutoff_nm"), 10.0), r"key 'reference_md\.nonbonded_cutoff_nm': 10\.0 is greater than "
                                                      r"the maximum of 3\.0 .* — 10 nm: is this Å\? \(10 Å = 1 nm\)"),
    ((("reference_md", "nonbonded_cutoff_nm"), 0.1), r"key 'reference_md\.nonbonded_cutoff_nm': 0\.1 is less than the "
                                                     r"minimum of 0\.3 \(lengths ending _nm are in nanometres"),
    ((("mscg", "knot_spacing_A"), 0.02), r"key 'mscg\.knot_spacing_A': 0\.02 is less than the minimum of 0\.05 .* — "
                                         r"0\.02 Å: is this nm\? \(0\.02 nm = 0\.2 Å\)"),
    ((("prior", "width_A"), 0.015), r"key 'prior\.width_A': 0\.015 .* — 0\.015 Å: is this nm\? \(0\.015 nm = 0\.15 Å\)"),
    ((("systems", "methanol", "initial_density_g_cm3"), 760), r"key 'systems\.methanol\.initial_density_g_cm3': 760 .* — "
                                                              r"760 g/cm³: is this kg/m³\? \(760 kg/m³ = 0\.76 g/cm³\)"),
])
def test_a_config_value_in_the_wrong_unit(tmp_path, edit, message):
    text, path = load(tmp_path, edited(edit))
    line = line_of(text, edit[0][-1])
    assert line.lstrip().startswith(path + ": ") and re.search(message, line), text


def test_all_three_hipnn_distances_in_nm_each_named(tmp_path):
    """The issue's case: 0.25 / 0.7 / 0.8 typed for 2.5 / 7 / 8 Å, one line each, each with its slip."""
    text, path = load(tmp_path, edited((("hipnn", "dist_soft_min"), 0.25), (("hipnn", "dist_soft_max"), 0.7),
                                       (("hipnn", "dist_hard_max"), 0.8)))
    for key, meant in (("dist_soft_min", "2.5"), ("dist_soft_max", "7"), ("dist_hard_max", "8")):
        assert f"nm = {meant} Å)" in line_of(text, f"hipnn.{key}'"), text


def test_no_slip_is_named_where_none_explains_the_value(tmp_path):
    """7.9 g/cm³ read as kg/m³ would be a gas (0.0079 g/cm³), not a liquid: the bound is named, no slip; a
    value too large in any unit (5000 K) gets the bound alone."""
    text, _ = load(tmp_path, edited((("systems", "methanol", "initial_density_g_cm3"), 7.9)))
    assert "7.9 is greater than or equal to the maximum of 5" in text and "is this" not in text, text
    text, _ = load(tmp_path, BASE, sheet=H + "methanol\tT5000\t5000\t1.0\t\n")
    assert "is this" not in text, text


def test_a_systems_own_length_in_nm(tmp_path):
    cfg = edited((("systems", "methanol", "reference_md"), {"nonbonded_cutoff_nm": 9.0}))
    text, path = load(tmp_path, cfg)
    assert (f"{path}: key 'systems.methanol.reference_md.nonbonded_cutoff_nm': 9.0 is greater than the maximum of "
            "3.0") in text and "9 nm: is this Å? (9 Å = 0.9 nm)" in text, text


def test_unit_slip_known_answers():
    from cgtransfer.plausibility import unit_of, unit_slip, within

    assert unit_of("temperature_K") == "K" and unit_of("rmax_A") == "Å" and unit_of("nonbonded_cutoff_nm") == "nm"
    assert unit_of("density_g_cm3") == "g/cm³" and unit_of("pressure_bar") == "bar" and unit_of("seed") is None
    assert within(5.0, {"minimum": 5}) and not within(5.0, {"exclusiveMaximum": 5}) and within(1.0, {})
    assert unit_slip("pressure_bar", 100000.0, {"minimum": -1000, "maximum": 10000}) == \
        "100000 bar: is this pascal? (100000 Pa = 1 bar)"
    assert unit_slip("pressure_bar", 5000.0, {"minimum": -1000, "maximum": 10000}) is None  # in bounds: no slip
    assert unit_slip("temperature_K", 5000.0, {"minimum": 50, "exclusiveMaximum": 2000}) is None  # no unit explains it
    assert unit_slip("rmax_A", True, {"minimum": 2}) is None and unit_slip("rmax_A", "1.2", {"minimum": 2}) is None
    assert unit_slip("rmax_A", float("nan"), {"minimum": 2}) is None and unit_slip("seed", -1, {"minimum": 0}) is None
    # a key whose name declares no unit gets it from its schema (x-unit)
    assert unit_slip("dist_hard_max", 0.8, {"minimum": 2.0}) is None
    assert unit_slip("dist_hard_max", 0.8, {"minimum": 2.0}, "Å") == "0.8 Å: is this nm? (0.8 nm = 8 Å)"


# 8. the checks after the schema name the file too; --config values; names that collide by case --------------------
@pytest.mark.parametrize("edit, message", [
    ([(("training", "valid_fraction"), 0.3), (("training", "test_fraction"), 0.25)],
     "config keys 'training.valid_fraction' + 'training.test_fraction' must be below 0.5"),
    ([(("hipnn", "dist_soft_max"), 9.0)], "config key 'hipnn': need dist_soft_min < dist_soft_max <= dist_hard_max"),
    ([(("mscg", "knot_spacing_A"), 9.0)], "config key 'mscg.knot_spacing_A' must be well below 'mscg.cutoff_A'"),
    ([(("cg_md", "report_interval_ps"), 100.0)], "config key 'cg_md.report_interval_ps' (100 ps) is longer than "
                                                 "'cg_md.production_ps' (8 ps): the run would record no frame"),
    ([(("training", "batch_size"), 512)], "config key 'training.batch_size' (512) exceeds 'training.max_batch_size'"),
])
def test_a_check_after_the_schema_names_its_file(tmp_path, edit, message):
    text, path = load(tmp_path, edited(*edit))
    assert text.startswith(f"{path}: {message}"), text


def test_a_check_on_a_default_names_the_default_and_the_file(tmp_path):
    text, path = load(tmp_path, edited((("reference_md", "production_ps"), 0.3)))
    assert text.startswith(f"{path}, the schema's default (set in none of {path}): config keys "
                           "'reference_md.production_ps' / 'reference_md.report_interval_ps' give 1 frames"), text


@pytest.mark.parametrize("overrides, message", [
    ({"seed": "abc"}, "--config: key 'seed': 'abc' is not of type 'integer' (--config seed=abc gave the text 'abc': "
                      "Snakemake reads a --config value as YAML, so 'seed' needs an integer (e.g. 7) written as the "
                      "value itself (unquoted), not a word)"),
    ({"replicates": 0}, "--config: key 'replicates': 0 is less than the minimum of 1"),
    ({"state_points": "missing.tsv"}, f"--config: config key 'state_points': file '{REPO / 'missing.tsv'}' not found"),
])
def test_a_top_level_config_value_is_named_as_from_the_command_line(tmp_path, overrides, message):
    text, path = load(tmp_path, BASE, overrides=overrides)
    assert message in text, text
    assert "nested value" not in text  # the hint for nested values is not given for a top-level one


def test_systems_differing_only_in_case(tmp_path):
    system = {**copy.deepcopy(BASE["systems"]["methanol"]), "models": {"m": {"kind": "mscg", "states": "all"}}}
    cfg = edited((("systems",), {"methanol": system, "Methanol": copy.deepcopy(system)}))
    text, path = load(tmp_path, cfg, sheet=H + "methanol\tT298\t298\t1.0\t\nMethanol\tT298\t298\t1.0\t\n")
    assert (f"{path}: config key 'systems': systems 'methanol' and 'Methanol' differ only in case: their result folders "
            "(results/<system>/) would collide on a case-insensitive file system; rename one") in text, text


def test_models_differing_only_in_case(tmp_path):
    text, path = load(tmp_path, edited((("systems", "methanol", "models"), {"m": {"kind": "mscg", "states": "all"},
                                                                          "M": {"kind": "mscg", "states": "all"}})))
    assert (f"{path}: config key 'systems.methanol.models': models 'm' and 'M' differ only in case: their result "
            "folders (results/methanol/rep<r>/models/<model>/) would collide") in text, text


def test_expanded_model_names_differing_only_in_case(tmp_path):
    """each makes m_T298; an entry named M_T298 collides with it on a case-insensitive file system."""
    text, _ = load(tmp_path, edited((("systems", "methanol", "models"), {"m": {"kind": "mscg", "states": "each"},
                                                                       "M_T298": {"kind": "mscg", "states": ["T298"]}})))
    assert "models 'm_T298' and 'M_T298' differ only in case" in text, text


def test_states_differing_only_in_case_across_two_sheets(tmp_path):
    (tmp_path / "a.tsv").write_text(H + "methanol\tT298\t298\t1.0\t\n")
    (tmp_path / "b.tsv").write_text(H + "methanol\tt298\t298\t\t0.78\n")
    cfg = edited((("state_points",), [str(tmp_path / "a.tsv"), str(tmp_path / "b.tsv")]),
                 (("systems", "methanol", "models"), {"m": {"kind": "mscg", "states": "all"}}))
    text, path = load(tmp_path, cfg)
    assert (f"{path}: config key 'state_points' ({tmp_path / 'a.tsv'} + {tmp_path / 'b.tsv'}): states 'T298' and "
            "'t298' of system 'methanol' differ only in case") in text, text


@pytest.mark.parametrize("row, message", [
    ("methanol\t298K\t25\t1.0\t", r"state id '298K' encodes 298 K but its column 'temperature_K' is 25: is this Celsius\?"),
    ("methanol\t300k_dense\t350\t\t0.8", r"state id '300k_dense' encodes 300 K but its column 'temperature_K' is 350 "
                                         r"\(more than 0\.5 K apart\)"),
])
def test_a_state_id_ending_in_kelvin_agrees_with_its_temperature(tmp_path, row, message):
    text, _ = load(tmp_path, BASE, sheet=H + row + "\n")
    assert re.search(message, text) and f"{tmp_path / 'states.tsv'}, row 1" in text, text


def test_ids_that_only_look_like_temperatures_are_not_read_as_one(tmp_path):
    """'300kbar' or 'Tlow' encode no temperature; 'T298' at 298.4 K is within half a kelvin."""
    cfg = edited((("systems", "methanol", "models"), {"m": {"kind": "mscg", "states": "each"}}))
    (tmp_path / "states.tsv").write_text(H + "methanol\tTlow\t250\t1.0\t\nmethanol\t300kbar\t310\t1.0\t\n"
                                         "methanol\tT298\t298.4\t1.0\t\n")
    cfg["state_points"] = str(tmp_path / "states.tsv")
    assert [p.state for p in load_study(cfg, REPO).states_of("methanol")] == ["Tlow", "T298", "300kbar"]


def test_an_old_paper_config_gets_one_message(tmp_path):
    """The first paper config's shape: a 'model' section and three list models; one message, a line per change."""
    cfg = edited((("model",), {"n_features": 32, "dist_hard_max": 8.0}),
                 (("systems", "methanol", "models"), {"T250_only": ["T298"], "middle": ["T298", "T328"],
                                                      "all": ["T248", "T298", "T328"]}))
    cfg.pop("hipnn", None)
    text, path = load(tmp_path, cfg)
    lines = text.splitlines()
    assert lines[0] == "the configuration is in an old format; what changed and how to write it now:" and len(lines) == 5
    assert all(line.startswith(f"  {path}: config key '") for line in lines[1:]), text
    assert "write middle: {kind: hipnn, states: [T298, T328]}" in text
