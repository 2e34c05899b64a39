"""The CG volume term, checked on answers known without the code: its pressure is -dU_V/dV, OpenMM's
computeCurrentPressure reports exactly that shift, and an ideal gas of beads with the term has the NPT density
its equation of state P = ρkT + ρ²ψ'(ρ) predicts."""

import numpy as np
import openmm
import openmm.unit as u
import pytest
from scipy.optimize import brentq

from cgtransfer import units
from cgtransfer.kinds.volume_term import VolumeTerm

TERM = VolumeTerm(a=[-0.6, 4.0], b=[0.001, 0.0], t_ref_K=300.0)  # kcal/mol · Å³, Å⁶


def test_pressure_shift_is_minus_the_volume_derivative():
    n, v, t = 256, 17000.0, 320.0
    dv = 1e-3 * v
    fd = -(TERM.energy_kcal_mol(n, v + dv, t) - TERM.energy_kcal_mol(n, v - dv, t)) / (2 * dv)
    assert TERM.pressure_shift_bar(n / v, t) == pytest.approx(fd * units.BAR_PER_KCAL_MOL_A3, rel=1e-6)
    # coefficients linear in T
    assert TERM.coefficients(350.0) == pytest.approx([-0.6 + 0.05, 4.0])


def _ideal_gas(n, edge_nm, temperature, term, pressure_bar=None, seed=3):
    system = openmm.System()
    for _ in range(n):
        system.addParticle(32.0)
    system.setDefaultPeriodicBoxVectors(*(openmm.Vec3(*(edge_nm if i == j else 0 for j in range(3))) for i in range(3)))
    system.addForce(term.openmm_force(n, temperature))
    barostat = openmm.MonteCarloBarostat((pressure_bar or 1.0) * u.bar, temperature, 5 if pressure_bar else 0)
    barostat.setRandomNumberSeed(seed)
    system.addForce(barostat)
    integrator = openmm.LangevinMiddleIntegrator(temperature, 5.0, 0.002)
    integrator.setRandomNumberSeed(seed)
    context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName("Reference"))
    rng = np.random.default_rng(seed)
    context.setPositions(rng.uniform(0, edge_nm, size=(n, 3)))
    context.setVelocitiesToTemperature(temperature, seed)
    return context, barostat, integrator


def test_openmm_term_energy_and_pressure_shift():
    n, edge, t = 200, 5.0, 320.0
    context, barostat, _ = _ideal_gas(n, edge, t, TERM)
    v_A3 = (edge * units.ANGSTROM_PER_NM) ** 3
    e = context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(u.kilojoule_per_mole)
    assert e == pytest.approx(float(units.kcal_to_kj(TERM.energy_kcal_mol(n, v_A3, t))), rel=1e-9)
    # computeCurrentPressure = kinetic part + the term's shift; the kinetic part is the same without the term
    ctx0, baro0, _ = _ideal_gas(n, edge, t, VolumeTerm(a=[0.0]))
    ctx0.setVelocities(context.getState(getVelocities=True).getVelocities())
    shift = (barostat.computeCurrentPressure(context) - baro0.computeCurrentPressure(ctx0)).value_in_unit(u.bar)
    assert shift == pytest.approx(float(TERM.pressure_shift_bar(n / v_A3, t)), rel=1e-4)


def test_ideal_gas_npt_density_follows_the_equation_of_state():
    """No pair forces: P = ρkT + ρ²ψ'(ρ), so the barostat must find the ρ that solves it for the target P."""
    n, t, p_bar = 400, 300.0, 400.0
    term = VolumeTerm(a=[-40.0, 1000.0])  # ψ' < 0 at low ρ (pulls the gas together), > 0 at high ρ
    kt = units.KB_KJ_MOL_K * t * units.KCAL_PER_KJ

    def eos(rho):
        return rho * kt * units.BAR_PER_KCAL_MOL_A3 + float(term.pressure_shift_bar(rho, t)) - p_bar

    rho_eos = brentq(eos, 1e-6, 0.05)
    rho_ideal = p_bar / (kt * units.BAR_PER_KCAL_MOL_A3)
    assert abs(rho_eos / rho_ideal - 1) > 0.3  # the term matters here
    edge = (n / rho_eos) ** (1 / 3) / units.ANGSTROM_PER_NM * 1.1
    context, _, integrator = _ideal_gas(n, edge, t, term, pressure_bar=p_bar)
    integrator.step(3000)
    rhos = []
    for _ in range(200):
        integrator.step(50)
        v = context.getState().getPeriodicBoxVolume().value_in_unit(u.nanometer**3) * units.ANGSTROM_PER_NM**3
        rhos.append(n / v)
    # NPT ensemble of N particles: <ρ> deviates from the EOS root by O(1/N); 2 % is > 5 standard errors here
    assert np.mean(rhos) == pytest.approx(rho_eos, rel=0.02)


def test_model_virial_pressure_equals_openmm_on_lennard_jones_frames(argon_cg, argon_run, tmp_path):
    """Identity-mapped LJ argon: MS-CG recovers the LJ pair force, so the model's virial pressure on the mapped
    frames (central difference of its energy under uniform scaling) must equal OpenMM's molecular-virial
    pressure of the LJ system on the same frames (computeCurrentPressure with zero velocities: the virial alone).
    OpenMM's pressure is a finite difference of the energy too, so the LJ energy there is shifted to zero at the
    cutoff like the model's (the truncated energy of the simulation adds an impulsive ~200 bar from pairs crossing
    the cutoff, a property of truncation that no pair force carries), and has no dispersion correction."""
    from test_mscg import MSCG, PRIOR, TRAIN

    from conftest import ARGON_EPSILON_KJ, ARGON_SIGMA_NM
    from cgtransfer.kinds.registry import load_model
    from cgtransfer.stages.train import train_model
    from cgtransfer.kinds.volume_term import virial_pressure_bar

    out = tmp_path / "checkpoint"
    train_model("mscg", [argon_cg["dataset"]], [argon_cg["summary"]], ["T120"], {"mscg": MSCG}, PRIOR, TRAIN, out,
                label="argon/mscg")
    model = load_model(out)
    data = {k: v for k, v in np.load(argon_cg["dataset"]).items()}
    frames = [3, 11, 22]
    t = 120.0
    p_model = virial_pressure_bar(model, data, frames, t)
    kt = units.KB_KJ_MOL_K * t * units.KCAL_PER_KJ
    edge, rc = argon_run["edge_nm"], 0.8
    system = openmm.System()
    system.setDefaultPeriodicBoxVectors(*(openmm.Vec3(*(edge if i == j else 0 for j in range(3))) for i in range(3)))
    lj = openmm.CustomNonbondedForce("4*eps*((s/r)^12 - (s/r)^6 - (s/rc)^12 + (s/rc)^6)")
    for name, value in (("eps", ARGON_EPSILON_KJ), ("s", ARGON_SIGMA_NM), ("rc", rc)):
        lj.addGlobalParameter(name, value)
    lj.setNonbondedMethod(openmm.CustomNonbondedForce.CutoffPeriodic)
    lj.setCutoffDistance(rc)
    for _ in range(argon_run["n"]):
        system.addParticle(39.948)
        lj.addParticle([])
    system.addForce(lj)
    barostat = openmm.MonteCarloBarostat(1.0, t, 0)
    system.addForce(barostat)
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    for f, p in zip(frames, p_model):
        context.setPositions(units.angstrom_to_nm(data["positions"][f].astype(np.float64)))
        context.setVelocities(np.zeros((argon_run["n"], 3)))
        p_openmm = barostat.computeCurrentPressure(context).value_in_unit(u.bar)
        volume = float(np.prod(np.diag(data["cells"][f].astype(np.float64))))
        p_virial_model = p - argon_run["n"] * kt / volume * units.BAR_PER_KCAL_MOL_A3
        assert abs(p_openmm) > 100  # a dense liquid: the virial is large
        assert p_virial_model == pytest.approx(p_openmm, rel=0.02, abs=5.0)


def test_same_seed_nvt_is_unchanged_by_the_volume_term():
    """The term exerts no force: an NVT run with it is the run without it, step for step."""
    n, edge, t = 50, 3.0, 300.0
    runs = []
    for term in (VolumeTerm(a=[0.0]), TERM):
        context, _, integrator = _ideal_gas(n, edge, t, term)
        integrator.step(200)
        runs.append(context.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(u.nanometer))
    assert np.array_equal(runs[0], runs[1])


# --------------------------------------------------------------------------- fitting: pressure and compressibility
def _linear_points(term, states):
    """Points a fit sees when the uncorrected CG pressure is linear in ρ about each state: the gaps the term
    must close are the term's own pressure shift and slope shift there (so the fit must return that term)."""
    from cgtransfer.kinds.volume_term import corrected_slope_bar_A3

    points = []
    for t, rho, with_slope in states:
        p = {"state": f"T{t:g}", "temperature_K": t, "rho_A3": rho, "stderr_bar": 10.0,
             "pressure_gap_bar": float(term.pressure_shift_bar(rho, t))}
        if with_slope:
            p.update({"slope_gap_bar_A3": corrected_slope_bar_A3(term, 0.0, rho, t), "slope_gap_stderr_bar_A3": 500.0})
        points.append(p)
    return points


def test_fit_recovers_a_known_temperature_dependent_quadratic_term():
    from cgtransfer.kinds.volume_term import fit_volume_term

    truth = VolumeTerm(a=[-150.0, 4000.0], b=[0.3, -5.0], t_ref_K=300.0)
    states = [(250.0, 0.0150, True), (300.0, 0.0145, True), (330.0, 0.0141, True), (450.0, 0.0120, False)]
    term, details = fit_volume_term(_linear_points(truth, states), order=2)
    assert details["coefficients_fitted"] == ["a1", "b1", "a2", "b2"] and details["chi2_per_equation"] < 1e-12
    for t in (250.0, 300.0, 400.0):
        assert term.coefficients(t) == pytest.approx(truth.coefficients(t), rel=1e-6)
    # one NPT state: two equations, two unknowns; order 1 or no slope: the pressure alone, psi linear
    one = _linear_points(truth, [(300.0, 0.0145, True)])
    term, details = fit_volume_term(one, order=2)
    assert details["coefficients_fitted"] == ["a1", "a2"]
    assert term.coefficients(300.0) == pytest.approx(truth.coefficients(300.0), rel=1e-6)
    term, details = fit_volume_term(one, order=1)
    assert details["coefficients_fitted"] == ["a1"] and term.coefficients(300.0)[1] == 0.0
    assert term.pressure_shift_bar(0.0145, 300.0) == pytest.approx(one[0]["pressure_gap_bar"], rel=1e-9)
    nvt_only = _linear_points(truth, [(300.0, 0.0145, False)])
    assert fit_volume_term(nvt_only, order=2)[1]["coefficients_fitted"] == ["a1"]
    with pytest.raises(ValueError, match="cannot be fitted"):
        fit_volume_term([], order=2)


def test_pressure_slope_of_a_straight_line_and_too_few_densities():
    from cgtransfer.kinds.volume_term import pressure_density_slope

    rho = [0.0138, 0.0145, 0.0152]
    slope, err = pressure_density_slope(rho, [100.0 + 2e5 * (r - 0.0145) for r in rho], [10.0, 10.0, 10.0])
    assert slope == pytest.approx(2e5, rel=1e-9)
    assert err == pytest.approx(10.0 / np.sqrt(np.sum((np.array(rho) - np.mean(rho)) ** 2)), rel=1e-9)
    with pytest.raises(ValueError, match="at least 2 distinct densities"):
        pressure_density_slope([0.0145], [100.0], [10.0])


def _lj_simulation(n, edge_nm, t, eps_scale, pressure_bar=None, term=None, seed=7, positions=None):
    from conftest import argon_system

    system = argon_system(n, edge_nm)
    nb = system.getForce(0)
    for i in range(n):
        q, sig, eps = nb.getParticleParameters(i)
        nb.setParticleParameters(i, q, sig, eps * eps_scale)
    if term is not None:
        system.addForce(term.openmm_force(n, t))
    barostat = openmm.MonteCarloBarostat((pressure_bar or 1.0) * u.bar, t * u.kelvin, 25 if pressure_bar else 0)
    barostat.setRandomNumberSeed(seed)
    system.addForce(barostat)
    # 10 fs is 0.005 LJ time units for argon; the Reference platform is the fastest for 108 atoms
    integrator = openmm.LangevinMiddleIntegrator(t * u.kelvin, 5 / u.picosecond, 10 * u.femtosecond)
    integrator.setRandomNumberSeed(seed)
    context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName("Reference"))
    if positions is None:
        k = int(np.ceil(n ** (1 / 3)))
        grid = np.array([(i, j, l) for i in range(k) for j in range(k) for l in range(k)])[:n]
        positions = (grid + 0.5) * edge_nm / k
    context.setPositions(positions)
    openmm.LocalEnergyMinimizer.minimize(context, 10.0, 200)
    context.setVelocitiesToTemperature(t * u.kelvin, seed)
    return context, integrator, barostat


def _sample(context, integrator, barostat, n_steps, every, pressure=False):
    volumes, pressures = [], []
    for _ in range(n_steps // every):
        integrator.step(every)
        volumes.append(context.getState().getPeriodicBoxVolume().value_in_unit(u.nanometer**3))
        if pressure:
            pressures.append(barostat.computeCurrentPressure(context).value_in_unit(u.bar))
    return np.array(volumes), np.array(pressures)


def test_fitted_term_brings_a_mis_scaled_lennard_jones_model_back_to_the_target_density_and_compressibility():
    """Known answer: the 'all-atom' system is LJ argon at 120 K and 300 bar (NPT: its density and, from the
    volume fluctuations, its compressibility). The 'CG model' is the same fluid with ε scaled by 0.7 — it
    misses the density by far. Its NVT pressures at ρ_AA and ρ_AA(1 ∓ 5 %) give P_CG and dP_CG/dρ; the fitted
    quadratic volume term must bring the mis-scaled model's NPT density back to ρ_AA and its compressibility to
    the all-atom one. Everything here is OpenMM and the package's own fit; nothing is mocked."""
    from cgtransfer.analysis.statistics import block_average
    from cgtransfer.analysis.statistics import compressibility_per_bar
    from cgtransfer.kinds.volume_term import corrected_slope_bar_A3, fit_volume_term, pressure_density_slope

    n, t, p_set, eps_scale = 108, 120.0, 300.0, 0.7
    edge0 = (n * 39.948 / 1.30 * 1.66053906660e-3) ** (1 / 3)
    # the all-atom target
    ctx, integ, baro = _lj_simulation(n, edge0, t, 1.0, pressure_bar=p_set)
    integ.step(1500)
    v_aa, _ = _sample(ctx, integ, baro, 12000, 10)
    kappa_aa, kappa_aa_err = compressibility_per_bar(v_aa, t)
    v0 = float(v_aa.mean())
    rho0 = n / (v0 * 1000.0)  # Å⁻³
    positions = ctx.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(u.nanometer)
    box = ctx.getState().getPeriodicBoxVectors()[0][0].value_in_unit(u.nanometer)
    # the uncorrected mis-scaled model: NVT pressure curve about ρ_AA
    curve = []
    for factor in (0.95, 1.0, 1.05):
        edge = (v0 / factor) ** (1 / 3)
        ctx_m, integ_m, baro_m = _lj_simulation(n, edge, t, eps_scale, positions=positions * edge / box)
        integ_m.step(1000)
        _, p = _sample(ctx_m, integ_m, baro_m, 4000, 10, pressure=True)
        curve.append((factor * rho0, *block_average(p)))
    slope_cg, slope_cg_err = pressure_density_slope(*zip(*curve))
    p_cg = curve[1][1]
    assert p_cg - p_set > 300.0  # the mis-scaled model is far off at the target density
    slope_aa = 1.0 / (rho0 * kappa_aa)
    point = {"state": "T120", "temperature_K": t, "rho_A3": rho0, "pressure_gap_bar": p_set - p_cg,
             "stderr_bar": curve[1][2], "slope_gap_bar_A3": slope_aa - slope_cg,
             "slope_gap_stderr_bar_A3": float(np.hypot(slope_aa * kappa_aa_err / kappa_aa, slope_cg_err))}
    term, _ = fit_volume_term([point], order=2)
    assert corrected_slope_bar_A3(term, slope_cg, rho0, t) == pytest.approx(slope_aa, rel=1e-6)
    # uncorrected NPT: runs far from the target; corrected NPT: back to it
    ctx_u, integ_u, baro_u = _lj_simulation(n, box, t, eps_scale, pressure_bar=p_set, positions=positions)
    integ_u.step(3000)
    rho_u = n / _sample(ctx_u, integ_u, baro_u, 2000, 10)[0].mean()
    ctx_c, integ_c, baro_c = _lj_simulation(n, box, t, eps_scale, pressure_bar=p_set, term=term, positions=positions)
    integ_c.step(1500)
    v_c, _ = _sample(ctx_c, integ_c, baro_c, 12000, 10)
    kappa_c, kappa_c_err = compressibility_per_bar(v_c, t)
    rho_aa_nm = n / v0
    print(f"rho AA {rho_aa_nm:.3f}/nm3, uncorrected {rho_u:.3f}, corrected {n / v_c.mean():.3f}; kappa AA "
          f"{kappa_aa:.3g} +/- {kappa_aa_err:.2g}, corrected {kappa_c:.3g} +/- {kappa_c_err:.2g} /bar")
    assert abs(rho_u / rho_aa_nm - 1) > 0.08
    assert n / v_c.mean() == pytest.approx(rho_aa_nm, rel=0.02)
    assert kappa_c == pytest.approx(kappa_aa, rel=0.3)


def test_unstable_pressure_curves_are_recorded_not_fitted(argon_cg, tmp_path):
    """Bad input of the fit stage: at state A the CG pressure falls with density (a mechanically unstable model
    there): skipped with the reason; at state B one density of the scan blew up: B keeps its pressure equation,
    loses its slope, says why, and psi falls back to linear. A model whose only state is A is uncorrectable."""
    import pandas as pd

    from cgtransfer.io import write_json
    from cgtransfer.stages.volume_fit import fit_for_model

    rng = np.random.default_rng(0)
    thermo = tmp_path / "thermo.csv"
    pd.DataFrame({"pressure_bar": 300 + rng.normal(0, 50, 200),
                  "volume_nm3": 12.0 + rng.normal(0, 0.2, 200)}).to_csv(thermo, index=False)

    def summary(name, pressure, factor=None, stable=True):
        d = {"stable": stable, "mean_pressure_bar": pressure, "mean_pressure_stderr_bar": 20.0}
        if factor is not None:
            d["density_factor"] = factor
        if not stable:
            d = {"stable": False, "failure": "temperature 900 K above limit", "density_factor": factor}
        write_json(tmp_path / name, d)
        return tmp_path / name

    states = [{"state": s, "temperature_K": 120.0, "pressure_bar": 300.0} for s in ("A", "B")]
    nvt = [summary("a.json", 900.0), summary("b.json", 800.0)]
    scans = [[summary("a_lo.json", 1500.0, 0.95), summary("a_hi.json", 400.0, 1.05)],
             [summary("b_lo.json", 0.0, 0.95, stable=False), summary("b_hi.json", 1400.0, 1.05)]]
    settings = {"order": 2, "mapped_frames": 0}
    out = fit_for_model(None, states, nvt, [thermo] * 2, [argon_cg["dataset"]] * 2, settings, tmp_path / "v.json",
                        "test", cg_scan_summaries=scans)
    assert "mechanically unstable" in out["skipped_states"]["A"]
    assert "unstable" in out["slope_notes"]["B"] and [p["state"] for p in out["points"]] == ["B"]
    assert out["correctable"] and out["fit"]["coefficients_fitted"] == ["a1"]
    assert out["points"][0]["pressure_corrected_bar"] == pytest.approx(300.0, abs=1e-6)
    only_a = fit_for_model(None, states[:1], nvt[:1], [thermo], [argon_cg["dataset"]], settings,
                           tmp_path / "va.json", "test", cg_scan_summaries=scans[:1])
    assert only_a["correctable"] is False and "cannot be fitted" in only_a["reason"]
