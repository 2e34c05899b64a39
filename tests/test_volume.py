"""The CG volume term, checked on answers known without the code: its pressure is -dU_V/dV, OpenMM's
computeCurrentPressure reports exactly that shift, and an ideal gas of beads with the term has the NPT density
its equation of state P = ρkT + ρ²ψ'(ρ) predicts."""

import numpy as np
import openmm
import openmm.unit as u
import pytest
from scipy.optimize import brentq

from cgtransfer import units
from cgtransfer.volume import VolumeTerm

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
    from cgtransfer.models import load_model
    from cgtransfer.training import train_model
    from cgtransfer.volume import virial_pressure_bar

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
