"""The compare stage on hand-built runs whose answers are known without the code: a CG run identical to the
reference has zero structural error, the volume term's pressure shift at the run's density is ρ² ψ'(ρ), the
energy comparison is per molecule in kcal/mol, a failed run is never opened, and a run's trajectory is opened
once for all its metrics."""

import math

import MDAnalysis as mda
import numpy as np
import pandas as pd
import pytest

from cgtransfer import units
from cgtransfer.analysis import rdf as rdfmod
from cgtransfer.io import write_json
from cgtransfer.kinds.volume_term import VolumeTerm
from cgtransfer.stages import compare

N_BEADS, N_FRAMES, BOX_A = 64, 10, 12.34567  # the PDB keeps 3 decimals of the box, the DCD more
NBINS, RMAX_A, N_BLOCKS, CUTOFF_A = 20, 5.0, 5, 4.0


def write_run(tmp_path, seed=0):
    """A CG run on disk as cg_md writes it: topology.pdb, trajectory.dcd (one-bead molecules, ideal gas)."""
    rng = np.random.default_rng(seed)
    pos = rng.uniform(0, BOX_A, size=(N_FRAMES, N_BEADS, 3))
    u = rdfmod.bead_universe(pos, np.full((N_FRAMES, 3), BOX_A), ["X"] * N_BEADS, np.arange(N_BEADS))
    top, traj = tmp_path / "topology.pdb", tmp_path / "trajectory.dcd"
    u.atoms.write(str(top))
    with mda.Writer(str(traj), N_BEADS) as w:
        for _ in u.trajectory:
            w.write(u.atoms)
    return top, traj


def reference_from(universe, summary_extra=None) -> compare.Reference:
    """A mapped reference whose curves are those of ``universe`` itself, with its two halves as noise floor."""
    half = N_FRAMES // 2
    r, g = rdfmod.bead_rdf(universe, "X", "X", NBINS, RMAX_A)
    g1 = rdfmod.bead_rdf(universe, "X", "X", NBINS, RMAX_A, stop=half)[1]
    g2 = rdfmod.bead_rdf(universe, "X", "X", NBINS, RMAX_A, start=half)[1]
    th, p, n_nb = rdfmod.three_body_angles(universe, "X", CUTOFF_A, 30)
    p1 = rdfmod.three_body_angles(universe, "X", CUTOFF_A, 30, stop=half)[1]
    p2 = rdfmod.three_body_angles(universe, "X", CUTOFF_A, 30, start=half)[1]
    width = th[1] - th[0]
    shell = {"cutoff_A": CUTOFF_A, "noise_floor": rdfmod.angle_distribution_mae(p1, p2, width),
             "mean_neighbours": n_nb}
    n = 20
    thermo = pd.DataFrame({"density_g_cm3": np.full(n, 0.8), "volume_nm3": np.full(n, 1.88),
                           "pressure_bar": np.full(n, 50.0),
                           "potential_energy_kJ_mol": np.full(n, 4.184 * 150.0)})  # 150 kcal/mol
    return compare.Reference(
        rdf=pd.DataFrame({"pair": "X-X", "r_A": r, "g": g, "g_first_half": g1, "g_second_half": g2}),
        summary={"angles": {"X": shell}, "min_pair_distance_A": 1.0, **(summary_extra or {})},
        thermo=thermo, angles=pd.DataFrame({"type": "X", "theta_deg": th, "p": p}))


NVT_SUMMARY = {"stable": True, "mean_pressure_bar": 40.0, "mean_pressure_stderr_bar": 3.0,
               "mean_temperature_K": 300.0, "temperature_deviation_pct": 0.1, "min_pair_distance_A": 1.2}
FORCES = {"force_rmse_kcal_mol_A": 1.0, "force_mae_kcal_mol_A": 0.8, "force_r2": 0.9, "state_in_training": True}


def load_nvt(tmp_path, summary):
    top, traj = write_run(tmp_path)
    write_json(tmp_path / "summary.json", summary)
    return compare.CGRun.load(top, traj, tmp_path / "summary.json")


def test_a_run_identical_to_the_reference_has_zero_structural_error(tmp_path):
    """RDF MAE, its ratio to the noise floor, the JS divergence and the angle distance are all exactly 0 when
    the CG run is the reference; first peaks coincide; the noise floor is the reference's own."""
    nvt = load_nvt(tmp_path, NVT_SUMMARY)
    ref = reference_from(nvt.universe)
    metrics, table = compare.rdf_metrics(ref, nvt, NBINS, RMAX_A, N_BLOCKS)
    pair = metrics["rdf"]["X-X"]
    assert pair["mae"] == 0.0 and metrics["rdf_mae"] == 0.0 and metrics["rdf_mae_over_noise"] == 0.0
    assert pair["js_divergence_r2g"] == pytest.approx(0.0, abs=1e-15)
    halves = np.mean(np.abs(ref.rdf["g_first_half"] - ref.rdf["g_second_half"]))
    assert pair["noise_floor_mae"] == pytest.approx(halves)
    assert pair["noise_floor_mae"] > 0 and pair["mae_stderr"] > 0  # blocks of a finite run scatter
    assert pair["first_peak_r_A_cg"] == pair["first_peak_r_A_ref"]
    assert pair["first_peak_g_cg"] == pair["first_peak_g_ref"]
    assert np.array_equal(table["g_cg"], table["g_reference"])
    angles, angle_table = compare.angle_metrics(ref, nvt, N_BLOCKS)
    assert angles["angles"]["X"]["error"] == 0.0 and angles["angle_error_over_noise"] == 0.0
    assert angles["angles"]["X"]["mean_neighbours_cg"] == angles["angles"]["X"]["mean_neighbours_ref"]
    assert np.array_equal(angle_table["p_cg"], angle_table["p_reference"])


def test_volume_term_shift_at_the_runs_density_is_rho2_dpsi(tmp_path):
    """ψ(ρ) = a1 ρ + a2 ρ² (+ linear in T) adds ρ² ψ'(ρ) = ρ² (c1 + 2 c2 ρ) to the pressure, at ρ = N / L³ of the
    run's box as stored in the trajectory (not the PDB's 3 decimals, which would move it measurably here)."""
    nvt = load_nvt(tmp_path, NVT_SUMMARY)
    term = VolumeTerm(a=[-200.0, 3000.0], b=[0.5, -2.0], t_ref_K=300.0)
    T = 320.0
    c1, c2 = -200.0 + 0.5 * 20.0, 3000.0 - 2.0 * 20.0
    rho = N_BEADS / np.float32(BOX_A).astype(float) ** 3
    expected = rho**2 * (c1 + 2 * c2 * rho) * units.BAR_PER_KCAL_MOL_A3
    assert nvt.number_density_A3 == pytest.approx(rho, rel=1e-12)
    assert compare.volume_term_shift_bar(term, nvt, T) == pytest.approx(expected, rel=1e-12)
    rho_pdb = N_BEADS / round(BOX_A, 3) ** 3
    assert abs(rho_pdb**2 * (c1 + 2 * c2 * rho_pdb) * units.BAR_PER_KCAL_MOL_A3 - expected) > 1e-5 * abs(expected)
    # through the pressure metrics: the NVT pressure is the base run's plus the shift, against the measured AA one
    vt_json = tmp_path / "volume_term.json"
    write_json(vt_json, {"correctable": True, "term": term.to_dict()})
    p = compare.pressure_metrics(reference_from(nvt.universe), nvt, T, None, vt_json)
    assert p["volume_term_pressure_shift_bar"] == pytest.approx(expected, rel=1e-12)
    assert p["pressure_cg_nvt_bar"] == pytest.approx(40.0 + expected, rel=1e-12)
    assert p["pressure_aa_bar"] == 50.0 and p["pressure_error_bar"] == pytest.approx(40.0 + expected - 50.0)
    # an uncorrectable model: its corrected NVT pressure is unknown, not the base model's
    write_json(vt_json, {"correctable": False, "reason": "no slope"})
    p = compare.pressure_metrics(reference_from(nvt.universe), nvt, T, None, vt_json)
    assert p["volume_term_uncorrectable"] == "no slope" and math.isnan(p["pressure_cg_nvt_bar"])


def test_energy_is_per_molecule_in_kcal_mol(tmp_path):
    """U_CG = 100 kcal/mol and E_AA = 150 kcal/mol (627.6 kJ/mol) over 64 molecules: -50/64 per molecule."""
    nvt = load_nvt(tmp_path, {**NVT_SUMMARY, "mean_model_energy_kcal_mol": 100.0,
                              "mean_model_energy_stderr_kcal_mol": 6.4})
    e = compare.energy_metrics(reference_from(nvt.universe), nvt)
    assert e["energy_cg_kcal_mol_per_molecule"] == pytest.approx(100.0 / 64)
    assert e["energy_aa_kcal_mol_per_molecule"] == pytest.approx(150.0 / 64)
    assert e["energy_error_kcal_mol_per_molecule"] == pytest.approx(-50.0 / 64)
    assert e["energy_error_stderr_kcal_mol_per_molecule"] == pytest.approx(0.1)  # the AA series is constant
    no_energy = compare.energy_metrics(reference_from(nvt.universe), load_nvt(tmp_path, NVT_SUMMARY))
    assert all(math.isnan(v) for v in no_energy.values())


def test_the_trajectory_is_opened_once_and_a_failed_run_never(tmp_path, monkeypatch):
    top, traj = write_run(tmp_path)
    write_json(tmp_path / "summary.json", NVT_SUMMARY)
    ref = reference_from(mda.Universe(str(top), str(traj)))
    opened = []
    real = mda.Universe

    def counting(*args, **kwargs):
        opened.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(compare.mda, "Universe", counting)
    nvt = compare.CGRun.load(top, traj, tmp_path / "summary.json")
    metrics, rdfs, angles = compare.compare_state(ref, nvt, None, FORCES, model="m", state="S", temperature_K=300.0,
                                                  pressure_bar=None, nbins=NBINS, rmax_A=RMAX_A, n_blocks=N_BLOCKS)
    assert len(opened) == 1
    assert metrics["stable"] and metrics["rdf_mae"] == 0.0 and metrics["angle_error"] == 0.0
    assert metrics["pressure_error_bar"] == -10.0 and math.isnan(metrics["density_cg_g_cm3"])
    assert list(metrics)[:7] == ["model", "state", "temperature_K", "pressure_bar", "ensemble", "stable", "rdf"]

    failed = {"stable": False, "failed_phase": "production", "failed_at_ps": 1.5, "failed_at_step": 750,
              "failure": "overlap"}
    write_json(tmp_path / "failed.json", failed)
    opened.clear()
    run = compare.CGRun.load(top, tmp_path / "missing.dcd", tmp_path / "failed.json")
    metrics, rdfs, _ = compare.compare_state(ref, run, None, FORCES, model="m", state="S", temperature_K=300.0,
                                             pressure_bar=None, nbins=NBINS, rmax_A=RMAX_A, n_blocks=N_BLOCKS)
    assert opened == []
    assert not metrics["stable"] and metrics["unstable_ensembles"] == "NVT" and metrics["failed_at_step"] == 750
    assert list(metrics)[6:8] == ["rdf", "unstable_ensembles"]
    assert math.isnan(metrics["rdf_mae"]) and math.isnan(metrics["pressure_cg_nvt_bar"]) and rdfs["g_cg"].isna().all()
    assert metrics["force_rmse_kcal_mol_A"] == 1.0 and metrics["min_pair_distance_reference_A"] == 1.0
