"""External all-atom references (cgtransfer.external, stage import_reference): a real OpenMM run's frames and
forces written to a GROMACS TRR (MDAnalysis's XDR writer) and to a LAMMPS dump (the documented text format, in
LAMMPS ``real`` and ``metal`` units) read back through the import stage map to the same CG dataset as the
native path, to float precision; every kind of bad input is refused naming the file and what is missing."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import REPO
from cgtransfer import units
from cgtransfer.external import ExternalReferenceError, check_external_references, read_thermo
from cgtransfer.stages import mapping
from cgtransfer.stages.import_reference import import_reference

ARGON_TEMPLATE = REPO / "resources/argon/argon.pdb"
METHANOL_TEMPLATE = REPO / "resources/methanol/methanol.pdb"
METHANOL_XML = REPO / "resources/methanol/oplsaa_methanol.xml"
ARGON_MAPPING = {"AR": {"AR": ["AR"]}}
METHANOL_MAPPING = {"MOH": {"CH3": ["C", "H1", "H2", "H3"], "OH": ["O", "HO"]}}  # two beads: unwrapping matters


# ------------------------------------------------------------------------------------------------ writers
def native_frames(run_dir: Path):
    """(positions nm, box nm edges, forces kJ/mol/nm, times ps) of a native reference run (DCD + forces.npz)."""
    import MDAnalysis as mda

    u = mda.Universe(str(run_dir / "topology.pdb"), str(run_dir / "trajectory.dcd"))
    pos = np.array([units.angstrom_to_nm(ts.positions.astype(np.float64)) for ts in u.trajectory])
    box = np.array([units.angstrom_to_nm(ts.dimensions[:3].astype(np.float64)) for ts in u.trajectory])
    with np.load(run_dir / "forces.npz") as data:
        return pos, box, data["forces_kj_mol_nm"], data["time_ps"]


def write_trr(path, pos, box, forces, times, with_forces=True, box_scale=1.0):
    """GROMACS TRR (nm, kJ/mol/nm, ps) with MDAnalysis's XDR writer."""
    from MDAnalysis.lib.formats.libmdaxdr import TRRFile

    with TRRFile(str(path), "w") as trr:
        for i, (x, b, f, t) in enumerate(zip(pos, box, forces, times)):
            trr.write(x.astype(np.float32), None, f.astype(np.float32) if with_forces else None,
                      np.diag(b * box_scale).astype(np.float32), i * 50, float(t), 0.0, len(x))


def write_dump(path, pos, box, forces, unit_system="real", columns="id type x y z fx fy fz", bounds="pp pp pp",
               step0=0, stride=50):
    """A LAMMPS dump in its documented text format (ITEM: TIMESTEP / NUMBER OF ATOMS / BOX BOUNDS / ATOMS) in
    ``unit_system`` (real: Å, kcal/mol/Å; metal: Å, eV/Å), atoms written in reverse id order (the reader sorts)."""
    length = 1.0 / units.TRAJECTORY_UNITS[unit_system]["length_nm"]
    force = 1.0 / units.TRAJECTORY_UNITS[unit_system]["force_kj_mol_nm"]
    opener = gzip.open if str(path).endswith(".gz") else open
    cols = columns.split()
    with opener(path, "wt") as fh:
        for i, (x, b, f) in enumerate(zip(pos, box, forces)):
            fh.write(f"ITEM: TIMESTEP\n{step0 + i * stride}\nITEM: NUMBER OF ATOMS\n{len(x)}\n")
            fh.write(f"ITEM: BOX BOUNDS {bounds}\n")
            for edge in b * length:
                fh.write(f"0.0 {edge:.10g}\n")
            fh.write(f"ITEM: ATOMS {columns}\n")
            for a in reversed(range(len(x))):
                values = {"id": a + 1, "type": 1, "x": x[a, 0] * length, "y": x[a, 1] * length, "z": x[a, 2] * length,
                          "fx": f[a, 0] * force, "fy": f[a, 1] * force, "fz": f[a, 2] * force}
                fh.write(" ".join(f"{values[c]:.9g}" if c not in ("id", "type") else str(values[c]) for c in cols)
                         + "\n")


def write_gro(path, topology_pdb):
    import MDAnalysis as mda

    mda.Universe(str(topology_pdb)).atoms.write(str(path))


def assert_same_dataset(native: dict, imported: dict):
    """Positions, boxes, forces (float32 datasets) equal to float precision; species, masses, names identical."""
    for key in ("species", "bead_names", "residue_index"):
        np.testing.assert_array_equal(native[key], imported[key])
    np.testing.assert_allclose(imported["masses"], native["masses"], rtol=1e-4)  # template vs force-field masses
    np.testing.assert_allclose(imported["cells"], native["cells"], rtol=2e-6)
    scale = np.abs(native["forces"]).mean()
    np.testing.assert_allclose(imported["forces"], native["forces"], rtol=1e-5, atol=1e-5 * scale)
    box = native["cells"][:, [0, 1, 2], [0, 1, 2]][:, None, :]
    d = imported["positions"] - native["positions"]
    d -= np.round(d / box) * box  # a bead exactly on the wrapping plane may sit on either side
    assert np.abs(d).max() < 2e-4, np.abs(d).max()  # Å: float32 of nm vs of Å


def import_and_map(tmp, topology, trajectory, spec, template, mapping_spec, thermo=None):
    out = {k: tmp / n for k, n in (("top", "topology.pdb"), ("traj", "trajectory.dcd"), ("forces", "forces.npz"),
                                   ("thermo", "thermo.csv"))}
    summary = import_reference(topology, trajectory, spec, [template], 120.0, out["top"], out["traj"], out["forces"],
                               out["thermo"], thermo=thermo)
    cg = mapping.map_trajectory(out["top"], out["traj"], out["forces"], mapping_spec)
    return cg, summary, out


# ------------------------------------------------------------------------------------------------ known answers
@pytest.fixture(scope="module")
def argon_native(argon_run):
    d = argon_run["dir"]
    cg = mapping.map_trajectory(d / "topology.pdb", d / "trajectory.dcd", d / "forces.npz", ARGON_MAPPING)
    return {"dir": d, "cg": cg, "frames": native_frames(d)}


def test_trr_reference_maps_to_the_native_dataset(argon_native, tmp_path):
    pos, box, forces, times = argon_native["frames"]
    write_trr(tmp_path / "run.trr", pos, box, forces, times)
    write_gro(tmp_path / "conf.gro", argon_native["dir"] / "topology.pdb")
    cg, summary, out = import_and_map(tmp_path, tmp_path / "conf.gro", tmp_path / "run.trr", {}, ARGON_TEMPLATE,
                                      ARGON_MAPPING)
    assert summary["units"] == "gromacs" and summary["n_frames"] == len(pos) == 30
    assert_same_dataset(argon_native["cg"], cg)
    np.testing.assert_allclose(cg["time_ps"], times - times[0], atol=1e-5)  # the TRR's own clock, from its first frame
    with np.load(out["forces"]) as data:
        assert float(data["source_first_time_ps"]) == pytest.approx(times[0], abs=1e-5) and times[0] > 0
    with np.load(out["forces"]) as data:
        assert data["forces_kj_mol_nm"].shape == forces.shape and int(data["seed"]) == -1
    thermo = pd.read_csv(out["thermo"])
    # density from the boxes and the template masses: 108 argon atoms at 1.4 g/cm3 (the fixture's NVT density)
    np.testing.assert_allclose(thermo["density_g_cm3"], 1.4, rtol=1e-4)
    assert thermo["pressure_bar"].isna().all() and thermo["potential_energy_kJ_mol"].isna().all()


@pytest.mark.parametrize("unit_system,name", [("real", "run.lammpstrj"), ("metal", "run.lammpstrj.gz")])
def test_lammps_dump_reference_maps_to_the_native_dataset(argon_native, tmp_path, unit_system, name):
    pos, box, forces, times = argon_native["frames"]
    write_dump(tmp_path / name, pos, box, forces, unit_system)
    spec = {"units": unit_system, "frame_interval_ps": 0.2}
    cg, summary, _ = import_and_map(tmp_path, argon_native["dir"] / "topology.pdb", tmp_path / name, spec,
                                    ARGON_TEMPLATE, ARGON_MAPPING)
    assert summary["units"] == unit_system and summary["format"] == "lammpsdump"
    assert_same_dataset(argon_native["cg"], cg)
    np.testing.assert_allclose(cg["time_ps"], 0.2 * np.arange(30), atol=1e-9)


def test_a_wrong_unit_constant_is_caught(argon_native, tmp_path):
    """Declaring metal for a real-units dump scales forces by 23.06 (eV vs kcal/mol): the datasets differ."""
    pos, box, forces, times = argon_native["frames"]
    write_dump(tmp_path / "run.lammpstrj", pos, box, forces, "real")
    cg, _, _ = import_and_map(tmp_path, argon_native["dir"] / "topology.pdb", tmp_path / "run.lammpstrj",
                              {"units": "metal", "frame_interval_ps": 0.2}, ARGON_TEMPLATE, ARGON_MAPPING)
    ratio = np.abs(cg["forces"]).mean() / np.abs(argon_native["cg"]["forces"]).mean()
    assert ratio == pytest.approx(units.KJ_MOL_PER_EV / 4.184, rel=1e-4)


@pytest.fixture(scope="module")
def methanol_native(tmp_path_factory):
    """A tiny real methanol reference (64 molecules, 4 frames) from the native stage."""
    from cgtransfer.md.box import build_box
    from cgtransfer.stages.reference import run_reference

    d = tmp_path_factory.mktemp("methanol_native")
    md = dict(platform="CPU", threads=1, timestep_fs=2.0, friction_per_ps=1.0, nonbonded_cutoff_nm=0.7,
              ewald_error_tolerance=5e-4, dispersion_correction=True, constraints="HBonds", barostat_frequency=25,
              minimize_max_iterations=100, equilibration_ps=0.1, production_ps=0.2, report_interval_ps=0.05)
    build_box(METHANOL_TEMPLATE, 64, 0.75, d / "box.pdb", seed=3)
    run_reference(d / "box.pdb", METHANOL_XML, 300.0, None, 0.79, md, d / "topology.pdb", d / "trajectory.dcd",
                  d / "forces.npz", d / "thermo.csv", threads=1)
    cg = mapping.map_trajectory(d / "topology.pdb", d / "trajectory.dcd", d / "forces.npz", METHANOL_MAPPING)
    return {"dir": d, "cg": cg, "frames": native_frames(d)}


def test_methanol_trr_and_dump_with_thermo_map_to_the_native_dataset(methanol_native, tmp_path):
    """Several atoms per molecule: elements and bonds come from the template, molecules are made whole; the
    thermo CSV's energy and pressure come through in OpenMM's units from either unit system."""
    pos, box, forces, times = methanol_native["frames"]
    native_thermo = pd.read_csv(methanol_native["dir"] / "thermo.csv")
    write_gro(tmp_path / "conf.gro", methanol_native["dir"] / "topology.pdb")
    write_trr(tmp_path / "run.trr", pos, box, forces, times)
    native_thermo[["potential_energy_kJ_mol", "pressure_bar"]].to_csv(tmp_path / "gmx.csv", index=False)
    (tmp_path / "gmx").mkdir()
    cg, _, out = import_and_map(tmp_path / "gmx", tmp_path / "conf.gro", tmp_path / "run.trr", {"frame_interval_ps": 0.05},
                                METHANOL_TEMPLATE, METHANOL_MAPPING, thermo=tmp_path / "gmx.csv")
    assert_same_dataset(methanol_native["cg"], cg)
    thermo = pd.read_csv(out["thermo"])
    np.testing.assert_allclose(thermo["potential_energy_kJ_mol"], native_thermo["potential_energy_kJ_mol"], rtol=1e-9)
    np.testing.assert_allclose(thermo["density_g_cm3"], 0.79, rtol=2e-3)  # template element masses vs OPLS masses
    # an energy-anchored model finds every mapped frame's energy by its time (kcal/mol)
    from cgtransfer.kinds.training_data import frame_energies

    np.testing.assert_allclose(frame_energies(cg, out["thermo"]),
                               units.kj_to_kcal(native_thermo["potential_energy_kJ_mol"]), rtol=1e-9)

    write_dump(tmp_path / "run.lammpstrj", pos, box, forces, "real", columns="id x y z fy fz fx")
    pd.DataFrame({"potential_energy_kcal_mol": units.kj_to_kcal(native_thermo["potential_energy_kJ_mol"]),
                  "pressure_atm": native_thermo["pressure_bar"] / 1.01325}).to_csv(tmp_path / "lmp.csv", index=False)
    (tmp_path / "lmp").mkdir()
    cg, _, out = import_and_map(tmp_path / "lmp", methanol_native["dir"] / "topology.pdb", tmp_path / "run.lammpstrj",
                                {"units": "real", "frame_interval_ps": 0.05}, METHANOL_TEMPLATE, METHANOL_MAPPING,
                                thermo=tmp_path / "lmp.csv")
    assert_same_dataset(methanol_native["cg"], cg)
    thermo = pd.read_csv(out["thermo"])
    np.testing.assert_allclose(thermo["potential_energy_kJ_mol"], native_thermo["potential_energy_kJ_mol"], rtol=1e-9)
    np.testing.assert_allclose(thermo["pressure_bar"], native_thermo["pressure_bar"], rtol=1e-9)


# ------------------------------------------------------------------------------------------------ bad input
def study_config(tmp_path, external: dict, **system_extra) -> dict:
    """A one-system study (108 LJ argon atoms, the argon_run fixture's box) whose states T120 (NVT) and T100 (NPT)
    are given by ``external``; ranges below half its 17-Å box."""
    sheet = tmp_path / "states.tsv"
    sheet.write_text("system\tstate\ttemperature_K\tpressure_bar\tdensity_g_cm3\n"
                     "ext\tT120\t120\t\t1.4\next\tT100\t100\t1.0\t\n")
    system = {"n_molecules": 108, "template_pdb": str(ARGON_TEMPLATE), "forcefield": "resources/argon/argon.xml",
              "initial_density_g_cm3": 1.4, "mapping": ARGON_MAPPING, "models": {"mscg": {"kind": "mscg", "states": "all"}},
              "external_reference": external, "volume_term": {"enabled": False},
              "reference_md": {"constraints": "none", "timestep_fs": 5.0, "nonbonded_cutoff_nm": 0.8}, **system_extra}
    return {"state_points": str(sheet), "systems": {"ext": system},
            "rdf": {"rmax_A": 7.0}, "mscg": {"cutoff_A": 7.0}, "cg_md": {"pair_skin_A": 0.5},
            "hipnn": {"dist_soft_max": 5.5, "dist_hard_max": 6.0}}


@pytest.fixture(scope="module")
def good_files(argon_native, tmp_path_factory):
    """The argon run as a TRR + GRO and as a LAMMPS dump (real) + PDB, with GROMACS- and LAMMPS-unit thermo."""
    d = tmp_path_factory.mktemp("external_good")
    pos, box, forces, times = argon_native["frames"]
    write_trr(d / "run.trr", pos, box, forces, times)
    write_gro(d / "conf.gro", argon_native["dir"] / "topology.pdb")
    write_dump(d / "run.lammpstrj", pos, box, forces, "real")
    shutil.copy(argon_native["dir"] / "topology.pdb", d / "conf.pdb")
    pd.DataFrame({"potential_energy_kJ_mol": np.linspace(-1, 1, 30), "pressure_bar": 1.0}).to_csv(d / "gmx.csv",
                                                                                                  index=False)
    return {"dir": d, "frames": (pos, box, forces, times),
            "T120": {"topology": str(d / "conf.gro"), "trajectory": str(d / "run.trr")},
            "T100": {"topology": str(d / "conf.pdb"), "trajectory": str(d / "run.lammpstrj"), "units": "real",
                     "frame_interval_ps": 0.2}}


def load(config):
    from cgtransfer.config import load_study

    return load_study(config, REPO)


def test_a_good_external_study_loads_and_mixes_formats(good_files, tmp_path):
    study = load(study_config(tmp_path, {"T120": good_files["T120"], "T100": good_files["T100"]}))
    assert [s.state for s in study.states_of("ext")] == ["T100", "T120"]
    # one external state and one simulated one in the same system
    study = load(study_config(tmp_path, {"T120": good_files["T120"]}))
    assert study.system("ext")["external_reference"].keys() == {"T120"}


def bad_case(good_files, tmp_path, name):
    """(external spec of T120, the error's expected text) for a named bad input; files written to tmp_path."""
    pos, box, forces, times = good_files["frames"]
    gro = good_files["T120"]["topology"]
    pdb = good_files["T100"]["topology"]
    if name == "trr_without_forces":
        write_trr(tmp_path / "bad.trr", pos, box, forces, times, with_forces=False)
        return {"topology": gro, "trajectory": str(tmp_path / "bad.trr")}, r"bad\.trr', frame 1 of 30.*no force block"
    if name == "dump_without_force_columns":
        write_dump(tmp_path / "bad.lammpstrj", pos, box, forces, columns="id type x y z")
        return ({"topology": pdb, "trajectory": str(tmp_path / "bad.lammpstrj"), "units": "real",
                 "frame_interval_ps": 0.2}, r"bad\.lammpstrj': the dump's columns \(id type x y z\) lack fx fy fz")
    if name == "xyz_trajectory":
        (tmp_path / "run.xyz").write_text("1\n\nAR 0 0 0\n")
        return {"topology": gro, "trajectory": str(tmp_path / "run.xyz")}, r"run\.xyz' is an \(extended\) XYZ file"
    if name == "atom_count_mismatch":
        write_trr(tmp_path / "short.trr", pos[:, :100], box, forces[:, :100], times)
        return ({"topology": gro, "trajectory": str(tmp_path / "short.trr")},
                r"short\.trr' has 100 atoms per frame but the topology '.*conf\.gro' has 108")
    if name == "non_periodic_trr":
        write_trr(tmp_path / "nobox.trr", pos, box, forces, times, box_scale=0.0)
        return {"topology": gro, "trajectory": str(tmp_path / "nobox.trr")}, r"nobox\.trr', frame 1 .*no periodic box"
    if name == "non_periodic_dump":
        write_dump(tmp_path / "ff.lammpstrj", pos, box, forces, bounds="ff ff ff")
        return ({"topology": pdb, "trajectory": str(tmp_path / "ff.lammpstrj"), "units": "real",
                 "frame_interval_ps": 0.2}, r"ff\.lammpstrj': box boundaries 'ff ff ff' are not periodic")
    if name == "dump_without_units":
        return ({"topology": pdb, "trajectory": good_files["T100"]["trajectory"], "frame_interval_ps": 0.2},
                r"external_reference\.T120\.units': missing: a LAMMPS dump does not record its units")
    if name == "dump_without_frame_interval":
        return ({"topology": pdb, "trajectory": good_files["T100"]["trajectory"], "units": "real"},
                r"T120\.frame_interval_ps': missing: '.*run\.lammpstrj' records step numbers")
    if name == "too_few_frames":
        write_trr(tmp_path / "few.trr", pos[:4], box[:4], forces[:4], times[:4])
        return {"topology": gro, "trajectory": str(tmp_path / "few.trr")}, r"few\.trr' has 4 frames: .* too few remain"
    if name == "non_finite_forces":
        bad = forces.copy()
        bad[7, 12, 1] = np.nan
        write_trr(tmp_path / "nan.trr", pos, box, bad, times)
        return {"topology": gro, "trajectory": str(tmp_path / "nan.trr")}, r"nan\.trr', frame 8 of 30 .*non-finite force on atom 13"
    if name == "atom_names_miss_the_mapping":
        text = Path(pdb).read_text().replace(" AR    AR A   1", " XE    AR A   1", 1)
        (tmp_path / "renamed.pdb").write_text(text)
        return ({"topology": str(tmp_path / "renamed.pdb"), "trajectory": good_files["T120"]["trajectory"]},
                r"renamed\.pdb' has atoms \['XE'\], the template \['AR'\]; missing \['AR'\]; unknown \['XE'\]")
    if name == "missing_file":
        return ({"topology": gro, "trajectory": str(tmp_path / "nowhere.trr")},
                r"T120\.trajectory': file '.*nowhere\.trr' not found")
    if name == "interval_contradicts_trr":
        return ({**good_files["T120"], "frame_interval_ps": 0.5},
                r"frame_interval_ps' = 0.5 ps, but the frames of '.*run\.trr' are 0.2 ps apart")
    raise KeyError(name)


BAD = ["trr_without_forces", "dump_without_force_columns", "xyz_trajectory", "atom_count_mismatch",
       "non_periodic_trr", "non_periodic_dump", "dump_without_units", "dump_without_frame_interval", "too_few_frames",
       "non_finite_forces", "atom_names_miss_the_mapping", "missing_file", "interval_contradicts_trr"]


@pytest.mark.parametrize("name", BAD)
def test_bad_external_input_is_refused_before_any_job_naming_file_and_what_is_missing(good_files, tmp_path, name):
    from cgtransfer.config import ConfigError

    spec, message = bad_case(good_files, tmp_path, name)
    with pytest.raises(ConfigError, match=message) as info:
        load(study_config(tmp_path, {"T120": spec}))
    assert "config key 'systems.ext.external_reference.T120" in str(info.value)


@pytest.mark.parametrize("name", ["trr_without_forces", "non_finite_forces", "non_periodic_trr", "too_few_frames"])
def test_the_import_stage_refuses_what_the_config_check_refuses(good_files, tmp_path, name):
    """A file that changed after the workflow was planned: the import job checks every frame itself."""
    spec, _ = bad_case(good_files, tmp_path, name)
    if name == "too_few_frames":  # not the stage's concern (the time blocks are the config's): it imports them
        import_reference(spec["topology"], spec["trajectory"], spec, [ARGON_TEMPLATE], 120.0, *(tmp_path / f for f in
                         ("t.pdb", "t.dcd", "f.npz", "th.csv")))
        return
    with pytest.raises(ExternalReferenceError, match=Path(spec["trajectory"]).name):
        import_reference(spec["topology"], spec["trajectory"], spec, [ARGON_TEMPLATE], 120.0,
                         *(tmp_path / f for f in ("t.pdb", "t.dcd", "f.npz", "th.csv")))
    assert not (tmp_path / "f.npz").exists()


def test_one_external_run_cannot_make_several_replicates(good_files, tmp_path):
    from cgtransfer.config import ConfigError

    with pytest.raises(ConfigError, match=r"T120\.trajectory': 1 trajectory file\(s\) for 2 replicates .*understate the spread"):
        load(study_config(tmp_path, {"T120": good_files["T120"]}, replicates=2))
    # one independent run per replicate is accepted
    two = {**good_files["T120"], "trajectory": [good_files["T120"]["trajectory"]] * 2}
    load(study_config(tmp_path, {"T120": two}, replicates=2))


def test_the_volume_term_needs_the_external_pressure(good_files, tmp_path):
    from cgtransfer.config import ConfigError

    with pytest.raises(ConfigError, match=r"T120\.thermo': state 'T120' is external and the volume term"):
        load(study_config(tmp_path, {"T120": good_files["T120"]}, volume_term={"enabled": True}))
    with_thermo = {**good_files["T120"], "thermo": str(good_files["dir"] / "gmx.csv")}
    load(study_config(tmp_path, {"T120": with_thermo}, volume_term={"enabled": True}))


def test_a_thermo_file_of_another_length_or_without_known_columns_is_refused(good_files, tmp_path):
    pd.DataFrame({"pressure_bar": [1.0] * 29}).to_csv(tmp_path / "short.csv", index=False)
    with pytest.raises(ExternalReferenceError, match=r"short\.csv' has 29 rows but the trajectory 30 frames"):
        read_thermo(tmp_path / "short.csv", 30, "thermo")
    pd.DataFrame({"pressure": [1.0] * 30}).to_csv(tmp_path / "nounit.csv", index=False)
    with pytest.raises(ExternalReferenceError, match=r"nounit\.csv' has none of the columns"):
        read_thermo(tmp_path / "nounit.csv", 30, "thermo")


def test_a_large_trajectory_is_read_in_full_by_the_import_job_only(good_files, tmp_path, monkeypatch):
    """Above FULL_CHECK_BYTES the parse (repeated by every job) reads the first and last frames: a bad frame in
    between passes it, and the import job, which reads every frame, refuses it naming the frame."""
    from cgtransfer import external

    spec, _ = bad_case(good_files, tmp_path, "non_finite_forces")
    monkeypatch.setattr(external, "FULL_CHECK_BYTES", 0)
    load(study_config(tmp_path, {"T120": spec}))
    with pytest.raises(ExternalReferenceError, match=r"nan\.trr', frame 8 of 30 .*non-finite force on atom 13"):
        import_reference(spec["topology"], spec["trajectory"], spec, [ARGON_TEMPLATE], 120.0,
                         *(tmp_path / f for f in ("t.pdb", "t.dcd", "f.npz", "th.csv")))
    # the last frame is still read at parse time
    pos, box, forces, times = good_files["frames"]
    bad = forces.copy()
    bad[-1, 0, 0] = np.inf
    write_trr(tmp_path / "lastbad.trr", pos, box, bad, times)
    from cgtransfer.config import ConfigError

    with pytest.raises(ConfigError, match=r"lastbad\.trr', frame 30 of 30"):
        load(study_config(tmp_path, {"T120": {**spec, "trajectory": str(tmp_path / "lastbad.trr")}}))


def test_a_triclinic_box_is_refused(good_files, tmp_path):
    from MDAnalysis.lib.formats.libmdaxdr import TRRFile
    from cgtransfer.config import ConfigError

    pos, box, forces, times = good_files["frames"]
    with TRRFile(str(tmp_path / "skew.trr"), "w") as trr:
        for i, (x, b, f, t) in enumerate(zip(pos, box, forces, times)):
            cell = np.diag(b)
            cell[1, 0] = 0.3 * b[0]
            trr.write(x.astype(np.float32), None, f.astype(np.float32), cell.astype(np.float32), i, float(t), 0.0, len(x))
    with pytest.raises(ConfigError, match=r"skew\.trr', frame 1 .*triclinic box"):
        load(study_config(tmp_path, {"T120": {**good_files["T120"], "trajectory": str(tmp_path / "skew.trr")}}))
