"""The trained model inside OpenMM (PythonForce) and the CG MD stage, on the LJ-argon fixture."""

import json
import pickle

import numpy as np
import openmm
import openmm.unit as u
import pytest

from cgtransfer import units
from cgtransfer.cg_md import run_cg_md
from cgtransfer.potential import HippynnPotential, NonFiniteModelOutput, make_force
from cgtransfer.reporters import SimulationDiverged

CG = dict(pair_skin_A=1.0, barostat_frequency=25, timestep_fs=5.0, friction_per_ps=5.0, report_interval_ps=0.1,
          equilibration_ps=0.5, production_ps=2.0, max_temperature_factor=3.0)


def openmm_context(potential, data, frame=0):
    system = openmm.System()
    for m in data["masses"]:
        system.addParticle(float(m))
    edge = units.angstrom_to_nm(np.diag(data["cells"][frame]))
    system.setDefaultPeriodicBoxVectors(*(openmm.Vec3(*(edge[i] if i == j else 0 for j in range(3))) for i in range(3)))
    system.addForce(make_force(potential))
    ctx = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    ctx.setPositions(units.angstrom_to_nm(data["positions"][frame].astype(np.float64)) * u.nanometer)
    return ctx


def energy_forces(ctx):
    s = ctx.getState(getEnergy=True, getForces=True)
    return (s.getPotentialEnergy().value_in_unit(u.kilojoule_per_mole),
            s.getForces(asNumpy=True).value_in_unit(u.kilojoule_per_mole / u.nanometer))


def test_pythonforce_units_and_energy_force_consistency(tiny_model, argon_cg):
    data = argon_cg["cg"]
    potential = HippynnPotential(tiny_model, data["species"][0], pair_skin_A=0.0)
    ctx = openmm_context(potential, data)
    e, f = energy_forces(ctx)
    e_model, f_model = potential.evaluator(data["species"][:1], data["positions"][:1], data["cells"][:1])
    assert e == pytest.approx(4.184 * e_model[0], rel=1e-6)
    np.testing.assert_allclose(f, 41.84 * f_model[0], rtol=1e-5, atol=1e-4)
    # OpenMM-side finite difference (nm, kJ/mol): the conversions of energy and force agree with each other
    pos = ctx.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(u.nanometer)
    h = 1e-3
    for i in (0, 17, 53):
        for k in range(3):
            shifted = []
            for sign in (1, -1):
                p = pos.copy()
                p[i, k] += sign * h
                ctx.setPositions(p * u.nanometer)
                shifted.append(energy_forces(ctx)[0])
            fd = -(shifted[0] - shifted[1]) / (2 * h)
            assert f[i, k] == pytest.approx(fd, rel=0.03, abs=0.05 * np.abs(f).mean())


def test_potential_pickles_without_the_model(tiny_model, argon_cg):
    data = argon_cg["cg"]
    potential = HippynnPotential(tiny_model, data["species"][0])
    _ = potential.evaluator
    clone = pickle.loads(pickle.dumps(potential))
    assert clone._evaluator is None
    a = potential.energy_forces_model_units(data["positions"][0].astype(float), np.diag(data["cells"][0]))
    b = clone.energy_forces_model_units(data["positions"][0].astype(float), np.diag(data["cells"][0]))
    assert a[0] == pytest.approx(b[0], rel=1e-6)
    with pytest.raises(NonFiniteModelOutput):
        clone.energy_forces_model_units(np.full((108, 3), np.nan), np.diag(data["cells"][0]))


@pytest.mark.parametrize("ensemble", ["nvt", "npt"])
def test_cg_md_runs_at_target_temperature(tiny_model, argon_cg, tmp_path, ensemble):
    out = {k: tmp_path / f"{k}.{ext}" for k, ext in (("top", "pdb"), ("traj", "dcd"), ("thermo", "csv"), ("sum", "json"))}
    s = run_cg_md(tiny_model, argon_cg["dataset"], 120.0, 500.0, ensemble, CG, out["top"], out["traj"],
                  out["thermo"], out["sum"], label=f"argon {ensemble}")
    assert json.loads(out["sum"].read_text())["n_frames"] == 20
    for key in ("mean_temperature_K", "mean_density_g_cm3", "min_pair_distance_A", "ns_per_day"):
        assert np.isfinite(s[key])
    # 108 beads, 20 frames: the kinetic temperature's standard error is ~3 %; the thermostat must hold 120 K
    assert s["mean_temperature_K"] == pytest.approx(120.0, rel=0.12)
    if ensemble == "nvt":
        assert np.isfinite(s["mean_pressure_bar"])
        assert s["mean_density_g_cm3"] == pytest.approx(1.4, rel=0.02)  # NVT in the reference's mean box
    import MDAnalysis as mda

    assert mda.Universe(str(out["top"]), str(out["traj"])).trajectory.n_frames == 20


def test_diverging_cg_md_stops_naming_model_state_and_step(tiny_model, argon_cg, tmp_path):
    bad = dict(CG, timestep_fs=400.0, friction_per_ps=0.01, equilibration_ps=0.0, production_ps=400.0,
               report_interval_ps=4.0)
    with pytest.raises(SimulationDiverged, match=r"model tiny, state T120.*step \d+") as err:
        run_cg_md(tiny_model, argon_cg["dataset"], 120.0, None, "nvt", bad, tmp_path / "t.pdb", tmp_path / "t.dcd",
                  tmp_path / "t.csv", tmp_path / "t.json", label="cg_md model tiny, state T120 (NVT)")
    print(err.value)
    assert not (tmp_path / "t.dcd").exists() and not (tmp_path / "t.json").exists()  # nothing half-written
