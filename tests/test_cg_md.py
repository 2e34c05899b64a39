"""The trained model inside OpenMM (PythonForce) and the CG MD stage, on the LJ-argon fixture."""

import json
import math
import pickle
import re

import numpy as np
import openmm
import openmm.unit as u
import pandas as pd
import pytest

from cgtransfer import units
from cgtransfer.stages.cg_md import run_cg_md
from cgtransfer.errors import CollapsedBox, NonFiniteModelOutput, SimulationDiverged
from cgtransfer.kinds.hipnn_force import HippynnPotential, make_force

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
    # a box squeezed below twice the pair range (a collapsing model under the barostat) is a recorded instability,
    # not a crash: hippynn's refusal becomes CollapsedBox, whose message marks it through OpenMM
    edges = np.diag(data["cells"][0])
    squeeze = 0.99 * 2.0 * (7.0 + 1.0) / edges.min()  # twice (the tiny model's dist_hard_max 7 Å + skin 1 Å)
    with pytest.raises(CollapsedBox, match="box collapsed: shortest edge"):
        potential.energy_forces_model_units(data["positions"][0].astype(float) * squeeze, edges * squeeze)


def test_a_bead_whole_boxes_away_is_the_same_frame_and_one_beyond_double_precision_is_a_divergence(tiny_model,
                                                                                                     argon_cg):
    """Periodicity: a bead shifted by a million box edges is the same configuration (same energy and forces). A bead
    flung 1e21 Å away (a diverged run) can no longer be wrapped at double precision: a SimulationDiverged naming
    it, recognised as a divergence through OpenMM's message, before the pair search's KD-tree sees the frame."""
    from cgtransfer.md.protocol import is_divergence

    data = argon_cg["cg"]
    frame = data["positions"][0].astype(float)
    edges = np.diag(data["cells"][0]).astype(float)
    potential = HippynnPotential(tiny_model, data["species"][0], pair_skin_A=0.0)
    e0, f0 = potential.energy_forces_model_units(frame, edges)
    far = frame.copy()
    far[5] += np.array([1e6, -3e6, 2e6]) * edges
    e1, f1 = potential.energy_forces_model_units(far, edges)
    assert e1 == pytest.approx(e0, rel=1e-5) and np.allclose(f1, f0, rtol=1e-4, atol=1e-4 * np.abs(f0).max())
    flung = frame.copy()
    flung[7] = [2.7e21, -2.7e21, 1.0]
    with pytest.raises(SimulationDiverged, match=r"diverged: \|x\| up to 2.7e\+21 Å") as err:
        potential.energy_forces_model_units(flung, edges)
    assert is_divergence(openmm.OpenMMException(str(err.value)))


def test_a_configuration_asked_for_again_gets_the_same_answer_without_a_call(tiny_model, argon_cg):
    """OpenMM asks the PythonForce again for configurations it has just evaluated (a report's energy, the two trial
    boxes of computeCurrentPressure, then the next step at the same positions): the repeat is answered from memory,
    equal bit for bit to a fresh evaluation; a moved bead or another box is evaluated."""
    data = argon_cg["cg"]
    potential = HippynnPotential(tiny_model, data["species"][0], pair_skin_A=1.0)
    ctx = openmm_context(potential, data)
    e0, f0 = energy_forces(ctx)
    calls = potential.n_calls
    # two other boxes (what computeCurrentPressure evaluates), then the first configuration again
    state = ctx.getState(getPositions=True)
    pos = state.getPositions(asNumpy=True).value_in_unit(u.nanometer)
    box = np.diag(state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(u.nanometer))
    for scale in (1.001, 0.999):
        ctx.setPeriodicBoxVectors(*(openmm.Vec3(*(box[i] * scale if i == j else 0 for j in range(3))) for i in range(3)))
        ctx.setPositions(pos * scale * u.nanometer)
        energy_forces(ctx)
    ctx.setPeriodicBoxVectors(*(openmm.Vec3(*(box[i] if i == j else 0 for j in range(3))) for i in range(3)))
    ctx.setPositions(pos * u.nanometer)
    e1, f1 = energy_forces(ctx)
    assert potential.n_calls == calls + 2 and potential.n_repeats == 1
    assert e1 == e0 and np.array_equal(f1, f0)
    fresh = HippynnPotential(tiny_model, data["species"][0], pair_skin_A=1.0)
    e2, f2 = energy_forces(openmm_context(fresh, data))
    assert e2 == e0 and np.array_equal(f2, f0)
    moved = pos.copy()
    moved[3, 0] += 1e-4
    ctx.setPositions(moved * u.nanometer)
    assert energy_forces(ctx)[0] != e0 and potential.n_calls == calls + 3


@pytest.mark.parametrize("ensemble", ["nvt", "npt"])
def test_cg_md_runs_at_target_temperature(tiny_model, argon_cg, tmp_path, ensemble):
    out = {k: tmp_path / f"{k}.{ext}" for k, ext in (("top", "pdb"), ("traj", "dcd"), ("thermo", "csv"), ("sum", "json"))}
    s = run_cg_md(tiny_model, argon_cg["dataset"], 120.0, 500.0, ensemble, CG, out["top"], out["traj"],
                  out["thermo"], out["sum"], label=f"argon {ensemble}")
    assert json.loads(out["sum"].read_text())["n_frames"] == 20
    # every report's configuration is asked for again by the next step (after the pressure's two trial boxes in
    # NVT; after a rejected box move in NPT) and answered without a network call: 25 reports (5 + 20)
    assert s["model_repeats_answered"] >= 25 and s["model_calls"] > s["production_steps"]
    for key in ("mean_temperature_K", "mean_density_g_cm3", "min_pair_distance_A", "ns_per_day"):
        assert np.isfinite(s[key])
    # 108 beads, 20 frames: the kinetic temperature's standard error is ~3 %; the thermostat must hold 120 K
    assert s["mean_temperature_K"] == pytest.approx(120.0, rel=0.12)
    volume = pd.read_csv(out["thermo"])["volume_nm3"]
    if ensemble == "nvt":
        assert np.isfinite(s["mean_pressure_bar"])
        assert s["mean_density_g_cm3"] == pytest.approx(1.4, rel=0.02)  # NVT in the reference's mean box
        assert volume.nunique() == 1
    else:  # the barostat acted: the box moved (every 25 steps, 20 frames of 2 ps)
        assert volume.nunique() > 10 and volume.std() > 1e-4 * volume.mean()
    import MDAnalysis as mda

    assert mda.Universe(str(out["top"]), str(out["traj"])).trajectory.n_frames == 20


def test_diverging_cg_md_is_recorded_naming_model_state_and_step(tiny_model, argon_cg, tmp_path):
    """A CG run that blows up is a result: the summary says unstable, where and why; every output exists
    (written atomically), so the workflow goes on."""
    bad = dict(CG, timestep_fs=400.0, friction_per_ps=0.01, equilibration_ps=0.0, production_ps=400.0,
               report_interval_ps=4.0)
    summary = run_cg_md(tiny_model, argon_cg["dataset"], 120.0, None, "nvt", bad, tmp_path / "t.pdb",
                        tmp_path / "t.dcd", tmp_path / "t.csv", tmp_path / "t.json",
                        label="cg_md model tiny, state T120 (NVT)")
    print(summary["failure"])
    assert summary["stable"] is False and summary["failed_phase"] == "production"
    assert re.search(r"model tiny, state T120.*diverged.*step \d+", summary["failure"])
    assert summary["failed_at_ps"] == pytest.approx(summary["failed_at_step"] * 0.4)
    on_disk = json.loads((tmp_path / "t.json").read_text())
    assert on_disk["stable"] is False and on_disk["failure"] == summary["failure"]
    assert (tmp_path / "t.dcd").exists() and (tmp_path / "t.pdb").exists() and (tmp_path / "t.csv").exists()
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary files left behind


def test_skin_pair_list_across_the_periodic_boundary_equals_fresh_evaluations(tiny_model, argon_cg):
    """The MD path keeps a Verlet pair list (skin 1 Å over the tiny model's 7-Å range) over continuous positions.
    Hand-built frame: bead B walks +x through the box face towards bead A's periodic image, from 9 Å (outside
    the 8-Å list range) to 4 Å; beads C and D sit within range of both. At every call the energy and forces must
    equal a fresh evaluation (no list kept) in float64: a stale list drops the A-B pair once it comes within
    7 Å. Also the pair memory alone, fed the unwrapped positions. The list is rebuilt when a bead has moved half
    the skin (every third 0.2-Å call), not at every call nor at every crossing of the box edge."""
    from cgtransfer.kinds.hipnn_force import ModelEvaluator

    species = np.full(4, int(argon_cg["cg"]["species"][0, 0]))
    box = np.full(3, 24.0)
    pos = np.array([[6.0, 12.0, 12.0], [21.0, 12.0, 12.0], [1.0, 15.5, 12.5], [9.5, 9.0, 11.0]])
    kept = HippynnPotential(tiny_model, species, pair_skin_A=1.0)
    fresh = HippynnPotential(tiny_model, species, pair_skin_A=0.0)
    bare = ModelEvaluator(tiny_model, pair_skin_A=1.0).in_double_precision()
    for p in (kept, fresh):  # float64: a dropped pair must stand out from rounding, even one near the cutoff
        p.evaluator.in_double_precision()
    memories = [next(m for m in e.module.modules() if hasattr(m, "set_skin")) for e in (kept.evaluator, bare)]
    rng = np.random.default_rng(5)
    for step in range(26):
        pos[1, 0] += 0.2
        pos[2:] += rng.normal(0.0, 0.01, (2, 3))  # the others jiggle (never half the skin in total)
        e_new, f_new = fresh.energy_forces_model_units(pos.copy(), box)
        e_kept, f_kept = kept.energy_forces_model_units(pos.copy(), box)
        (e_bare,), (f_bare,) = bare(species[None], pos[None], np.diag(box)[None])
        for e, f in ((e_kept, f_kept), (e_bare, f_bare)):
            assert e == pytest.approx(e_new, rel=1e-11, abs=1e-11), step
            np.testing.assert_allclose(f, f_new, rtol=1e-9, atol=1e-10 * np.abs(f_new).max(), err_msg=f"step {step}")
    assert pos[1, 0] > box[0] and abs(pos[1, 0] - box[0] - pos[0, 0]) < 4.0 + 1e-9  # B crossed, 4 Å from A
    assert abs(f_new[1, 0]) > 1e-3  # the A-B pair acts at the end: a dropped pair would show
    for memory in memories:
        assert 7 <= memory.recalculations <= 10, (memory.recalculations, memory.reuses)



def test_skin_pair_list_is_kept_through_scaled_trial_boxes_and_equals_fresh_evaluations(tiny_model, argon_cg):
    """OpenMM measures the pressure by evaluating two slightly scaled trial boxes (positions scaled with the box),
    and the barostat tries scaled boxes; the pair list built for the box before stays exact through them as long
    as 2 max|dx| + sum_k |n_k| |dL_k| <= skin (``hipnn_graph._pair_list_outdated``). Known answer: at every call
    (box scaled by 1 +- 1e-4, back, 1 % larger, 6 % larger, back to the first) energy and forces equal a fresh
    evaluation (no list kept) in float64; the list is kept through the first five calls and rebuilt where the
    bound says it must (the 6 % box and the return from it)."""
    from cgtransfer.kinds.hipnn_force import HippynnPotential

    data = argon_cg["cg"]
    species = data["species"][-1]
    box = np.diag(data["cells"][-1]).astype(float)
    pos = data["positions"][-1].astype(float)
    kept = HippynnPotential(tiny_model, species, pair_skin_A=1.0)
    fresh = HippynnPotential(tiny_model, species, pair_skin_A=0.0)
    for p in (kept, fresh):
        p.evaluator.in_double_precision()
    memory = next(m for m in kept.evaluator.module.modules() if hasattr(m, "set_skin"))
    builds = []
    for scale in (1.0, 1.0 + 1e-4, 1.0 - 1e-4, 1.0, 1.01, 1.06, 1.0):
        centre = pos.mean(axis=0)  # (the scaling's origin does not matter: a common shift of all beads)
        x, b = centre + scale * (pos - centre), scale * box
        e_new, f_new = fresh.energy_forces_model_units(x, b)
        e_kept, f_kept = kept.energy_forces_model_units(x, b)
        assert e_kept == pytest.approx(e_new, rel=1e-11, abs=1e-11), scale
        np.testing.assert_allclose(f_kept, f_new, rtol=1e-9, atol=1e-10 * np.abs(f_new).max(), err_msg=str(scale))
        builds.append(memory.recalculations)
    assert np.abs(f_new).max() > 1e-2
    assert builds[:5] == [builds[0]] * 5  # kept through the pressure's trial boxes and a 1 % barostat move
    assert builds[6] > builds[5] > builds[4]  # rebuilt for the 6 % box and on the way back

def test_native_prior_plus_network_equals_the_full_model(tiny_model, argon_cg):
    """The MD fast path splits the model: the exponential prior as a native OpenMM CustomNonbondedForce and the
    network alone in the PythonForce. Their sum must be the trained model exactly (energy and forces)."""
    from cgtransfer.kinds.registry import load_model

    data = argon_cg["cg"]
    model = load_model(tiny_model)
    e_full, f_full = model.predict(data["species"][:1], data["positions"][:1], data["cells"][:1])
    for native in (False, True):
        system = openmm.System()
        for m in data["masses"]:
            system.addParticle(float(m))
        edge = units.angstrom_to_nm(np.diag(data["cells"][0]))
        system.setDefaultPeriodicBoxVectors(*(openmm.Vec3(*(edge[i] if i == j else 0 for j in range(3))) for i in range(3)))
        forces = model.add_to_system(system, data["species"][0], {"pair_skin_A": 0.0, "prior_in_openmm": native})
        assert len(forces) == (2 if native else 1)
        ctx = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
        ctx.setPositions(units.angstrom_to_nm(data["positions"][0].astype(np.float64)) * u.nanometer)
        e, f = energy_forces(ctx)
        assert e == pytest.approx(4.184 * e_full[0], rel=1e-5)
        np.testing.assert_allclose(f, 41.84 * f_full[0], rtol=1e-4, atol=1e-4 * np.abs(f).max())
        if native:  # the prior alone: the network's group left out
            prior_only = ctx.getState(getEnergy=True, groups={0}).getPotentialEnergy().value_in_unit(u.kilojoule_per_mole)
            assert prior_only > 0.0 and prior_only != pytest.approx(e, rel=1e-3)


def test_mts_fast_path_keeps_the_structure_of_a_1fs_run(tiny_model, argon_cg, tmp_path):
    """The fast path (prior native every 2-fs inner step, network every 5th: 10-fs outer step, BAOAB-RESPA) must
    sample the same liquid as a 1-fs LangevinMiddle run of the same model: RDF within the 1-fs run's own noise
    (MAE between its two halves, x2 for two independent runs), mean potential energy within 3 standard errors,
    and the temperature (MTSLangevin reports full-step velocities: no half-step bias) at the target."""
    import pandas as pd

    from cgtransfer.stages.compare import cg_rdfs
    from cgtransfer.analysis import rdf as rdfmod

    runs = {}
    for name, extra in (("ref_1fs", dict(timestep_fs=1.0)),
                        ("mts_10fs", dict(timestep_fs=2.0, prior_in_openmm=True, mts_inner_steps=5))):
        cfg = dict(CG, equilibration_ps=0.5, production_ps=6.0, report_interval_ps=0.1, **extra)
        out = {k: tmp_path / f"{name}.{ext}" for k, ext in (("top", "pdb"), ("traj", "dcd"), ("thermo", "csv"), ("sum", "json"))}
        s = run_cg_md(tiny_model, argon_cg["dataset"], 120.0, None, "nvt", cfg, out["top"], out["traj"], out["thermo"],
                      out["sum"], label=name, seed=3)
        runs[name] = (s, pd.read_csv(out["thermo"]), cg_rdfs(out["top"], out["traj"], ["AR-AR"], 50, 8.0))
    (s_ref, th_ref, g_ref), (s_mts, th_mts, g_mts) = runs["ref_1fs"], runs["mts_10fs"]
    assert s_mts["integrator"] == "MTSLangevinIntegrator" and s_mts["timestep_fs"] == 10.0
    assert s_ref["integrator"] == "LangevinMiddleIntegrator"
    half = len(th_ref) // 2
    import MDAnalysis as mda

    mae = rdfmod.rdf_mae(g_mts["g"].to_numpy(), g_ref["g"].to_numpy())
    # the 1-fs run's own noise: its first half against its second half
    from cgtransfer.analysis.rdf import bead_rdf
    u_ref = mda.Universe(str(tmp_path / "ref_1fs.pdb"), str(tmp_path / "ref_1fs.dcd"))
    _, ga = bead_rdf(u_ref, "AR", "AR", 50, 8.0, stop=half)
    _, gb = bead_rdf(u_ref, "AR", "AR", 50, 8.0, start=half)
    noise = rdfmod.rdf_mae(ga, gb)
    print(f"RDF MAE MTS vs 1 fs {mae:.4f}, 1-fs noise {noise:.4f}; T {s_mts['mean_temperature_K']:.1f} vs "
          f"{s_ref['mean_temperature_K']:.1f}; U {th_mts['potential_energy_kJ_mol'].mean():.1f} vs "
          f"{th_ref['potential_energy_kJ_mol'].mean():.1f}")
    assert mae < 2.0 * noise
    u_err = np.hypot(*(th["potential_energy_kJ_mol"].std() / np.sqrt(len(th) / 10) for th in (th_ref, th_mts)))
    assert abs(th_mts["potential_energy_kJ_mol"].mean() - th_ref["potential_energy_kJ_mol"].mean()) < 3 * u_err
    assert s_mts["mean_temperature_K"] == pytest.approx(120.0, rel=0.05)


def test_barostat_acts_at_the_same_simulated_interval_with_mts(tiny_model, argon_cg):
    """barostat_frequency counts steps of timestep_fs: with a 5x longer MTS outer step the barostat must attempt
    moves every 25/5 = 5 outer steps, or an NPT run relaxes its volume 5x slower per picosecond."""
    from cgtransfer.stages.cg_md import build_cg_system, cg_integrator
    from cgtransfer.kinds.registry import load_model

    data = argon_cg["cg"]
    model = load_model(tiny_model)
    box = np.diag(data["cells"][0]).astype(float)
    for k, expected_freq, expected_dt in ((1, 25, 2.0), (5, 5, 10.0)):
        cfg = dict(CG, timestep_fs=2.0, prior_in_openmm=True, mts_inner_steps=k)
        system, barostat, _ = build_cg_system(model, data, box, 120.0, 1.0, "npt", cfg, "argon")
        integrator, dt = cg_integrator(system, 120.0, cfg)
        assert barostat.getFrequency() == expected_freq and dt == expected_dt
        assert isinstance(integrator, openmm.MTSLangevinIntegrator if k > 1 else openmm.LangevinMiddleIntegrator)


@pytest.mark.parametrize("raised, diverged", [
    (lambda: NonFiniteModelOutput("CG model returned a non-finite energy (nan) or force"), True),
    (lambda: CollapsedBox("box collapsed: shortest edge 16.99 Å is no longer above twice the model's pair range"), True),
    (lambda: RuntimeError("The periodic box size has decreased to less than twice the nonbonded cutoff."), True),
    (lambda: RuntimeError("a bug in the model code"), False),
    (lambda: MemoryError("out of memory"), False),
])
def test_only_blow_ups_count_as_divergence(raised, diverged):
    """Errors raised by a PythonForce reach Python as OpenMMException with the message only; a non-finite model
    output is a blow-up (recorded as an unstable cell), a bug or out-of-memory is not and must propagate."""
    from openmm import app

    from cgtransfer.errors import SimulationDiverged
    from cgtransfer.md.protocol import step_checked

    def callback(state):
        raise raised()

    system = openmm.System()
    for _ in range(2):
        system.addParticle(1.0)
    system.addForce(openmm.PythonForce(callback))
    top = app.Topology()
    res = top.addResidue("X", top.addChain())
    for name in "AB":
        top.addAtom(name, None, res)
    sim = app.Simulation(top, system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    sim.context.setPositions(np.zeros((2, 3)))
    with pytest.raises(Exception) as err:
        step_checked(sim, 5, "cg_md model m, state S (NVT)", 5)
    assert isinstance(err.value, SimulationDiverged) == diverged
    if diverged:
        assert "cg_md model m, state S (NVT): diverged between step 0 and 5" in str(err.value)


def test_native_prior_stops_where_it_has_fallen_to_float64_rounding():
    """The native prior force's cutoff: where E(r)/E(onset) = exp(a (t - r)) = 1e-16 (``prior_range_A``), or the
    network's range if shorter. Known answers: the ratio there, the cutoff OpenMM is given, and the energy of a
    bead pair at 0.95 of that cutoff equal to the formula (a pair beyond it: zero)."""
    from cgtransfer.kinds.hipnn_force import prior_force, prior_range_A

    prior = {"onset": 2.85, "strength": 3.5, "width": 0.15, "fraction": 0.05}
    a = math.log(1 / prior["fraction"]) / prior["width"]
    r_c = prior_range_A(prior)
    assert math.exp(a * (prior["onset"] - r_c)) == pytest.approx(1e-16, rel=1e-9)
    assert 4.0 < r_c < 5.0
    assert prior_force(prior, 8.0, 2).getCutoffDistance().value_in_unit(u.nanometer) == pytest.approx(r_c / 10)
    assert prior_force(prior, 3.5, 2).getCutoffDistance().value_in_unit(u.nanometer) == pytest.approx(0.35)
    for r, expected in ((0.95 * r_c, 4.184 * prior["fraction"] * prior["strength"] / a
                         * math.exp(a * (prior["onset"] - 0.95 * r_c))), (1.05 * r_c, 0.0)):
        system = openmm.System()
        system.addParticle(32.0)
        system.addParticle(32.0)
        system.setDefaultPeriodicBoxVectors(*(np.eye(3) * 3.0))
        system.addForce(prior_force(prior, 8.0, 2))
        ctx = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
        ctx.setPositions(np.array([[0.0, 0.0, 0.0], [r / 10, 0.0, 0.0]]))
        e = ctx.getState(getEnergy=True).getPotentialEnergy().value_in_unit(u.kilojoule_per_mole)
        assert e == pytest.approx(expected, rel=1e-9, abs=1e-300)
