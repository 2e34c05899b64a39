"""Known answers of the self-diffusion analysis (cgtransfer.analysis.dynamics): free Langevin particles diffuse
with D = k_B T / (m γ) exactly; a small Lennard-Jones argon liquid's D from a short low-friction segment agrees
with a four times longer run, and does not depend on the friction at the dynamics default (0.1/ps) within its
error; unwrapping undoes wrapping; the Yeh-Hummer and ratio formulas by hand."""

from __future__ import annotations

import numpy as np
import openmm
import openmm.unit as u
import pandas as pd
import pytest

from cgtransfer.analysis import dynamics as dyn
from conftest import argon_system

CPU = openmm.Platform.getPlatformByName("CPU")


def trajectory(system, positions_nm, temperature_K, friction_per_ps, dt_fs, stride, n_frames, seed,
               equilibration_steps=0):
    """Positions (Å, never wrapped: OpenMM keeps particles where they moved) every ``stride`` steps."""
    integrator = openmm.LangevinMiddleIntegrator(temperature_K * u.kelvin, friction_per_ps / u.picosecond,
                                                 dt_fs * u.femtosecond)
    integrator.setRandomNumberSeed(seed)
    context = openmm.Context(system, integrator, CPU, {"Threads": "1"})
    context.setPositions(positions_nm * u.nanometer)
    if system.getNumForces():
        openmm.LocalEnergyMinimizer.minimize(context)
    context.setVelocitiesToTemperature(temperature_K * u.kelvin, seed)
    integrator.step(equilibration_steps)
    out = np.empty((n_frames, system.getNumParticles(), 3))
    for f in range(n_frames):
        integrator.step(stride)
        out[f] = context.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(u.angstrom)
    return out


def test_free_langevin_particles_diffuse_with_kT_over_m_gamma():
    n, mass, T, gamma = 500, 40.0, 300.0, 5.0
    system = openmm.System()
    for _ in range(n):
        system.addParticle(mass)
    pos = np.random.default_rng(1).uniform(0, 3.0, (n, 3))
    traj = trajectory(system, pos, T, gamma, dt_fs=10.0, stride=10, n_frames=800, seed=3)  # 0.1 ps frames, 80 ps
    exact = dyn.langevin_free_particle_D(T, mass, gamma)
    assert exact == pytest.approx(1.2471e-8, rel=1e-3)  # 300 K, 40 amu, 5/ps by hand: R T / (M γ)
    # fit window well past the velocity relaxation time 1/γ = 0.2 ps: MSD = 6 D (t - τ (1 - exp(-t/τ)))
    res = dyn.diffusion(traj, 0.1, 2.0, 8.0, n_blocks=4)
    assert res["diffusive"] and abs(res["linearity"] - 1) < 0.1
    assert res["D_stderr_m2_s"] < 0.05 * exact  # a test that can fail: the error is small
    assert abs(res["D_m2_s"] - exact) < 3 * res["D_stderr_m2_s"] + 0.01 * exact
    # intercept of the asymptote: -6 D τ (Å²), the ballistic start's known offset
    assert res["intercept_A2"] == pytest.approx(-6 * exact / 1e-8 / gamma, abs=0.6 * 6 * exact / 1e-8 / gamma)
    # Green-Kubo cross-check: the running VACF integral on the same window
    v = dyn.vacf(traj, 0.1, 8.0)
    assert dyn.vacf_diffusion(v, 2.0, 8.0) == pytest.approx(exact, rel=0.1)


def test_ballistic_regime_is_not_called_diffusive():
    n, mass, T, gamma = 200, 40.0, 300.0, 0.01  # τ = 100 ps: ballistic over the whole window
    system = openmm.System()
    for _ in range(n):
        system.addParticle(mass)
    traj = trajectory(system, np.zeros((n, 3)), T, gamma, dt_fs=10.0, stride=10, n_frames=200, seed=5)
    res = dyn.diffusion(traj, 0.1, 0.5, 2.0, n_blocks=4)
    assert res["beta"] == pytest.approx(2.0, abs=0.1)
    assert res["linearity"] > 1.5  # t²: slope(1.25-2 ps) / slope(0.5-1.25 ps) = 3.25 / 1.75
    assert not res["diffusive"]


def test_unwrap_undoes_wrapping():
    rng = np.random.default_rng(0)
    box = np.array([10.0, 12.0, 9.0])
    steps = rng.normal(0, 1.0, (300, 20, 3))  # < half a box per frame
    true = np.cumsum(steps, axis=0) + 5.0
    wrapped = true - np.floor(true / box) * box
    out = dyn.unwrap(wrapped, box)
    np.testing.assert_allclose(out - out[0], true - true[0], atol=1e-9)


def test_yeh_hummer_and_ratio_by_hand():
    # ξ k_B T / (6 π L) at 298 K, L = 30 Å: 2.837297 × 4.1143e-21 J / (5.6549e-8 m) = 2.0643e-13 (m²/s)·(Pa·s),
    # i.e. 2.0643e-10 (m²/s)·(mPa·s): water's 0.89 mPa·s adds 2.3e-10 m²/s (10 % of its D) in a 3-nm box
    assert dyn.yeh_hummer_per_viscosity(298.0, 30.0) == pytest.approx(2.0643e-10, rel=1e-3)
    r, e = dyn.ratio_with_error(2.0, 0.2, 1.0, 0.1)
    assert r == 2.0 and e == pytest.approx(2.0 * np.hypot(0.1, 0.1))


def test_fit_window_must_fit_the_blocks():
    traj = np.zeros((100, 2, 3))
    with pytest.raises(ValueError, match="too short"):
        dyn.diffusion(traj, 0.1, 1.0, 2.0, n_blocks=4)  # 2.5-ps blocks for a window ending at 2 ps


@pytest.fixture(scope="module")
def argon_liquid():
    """108 LJ argon atoms at 120 K, 1.4 g/cm³ (the conftest fluid), equilibrated."""
    n, rho = 108, 1.4
    edge = (n * 39.948 / rho * 1.66053906660e-3) ** (1 / 3)
    grid = np.array([(i, j, k) for i in range(5) for j in range(5) for k in range(5)])[:n]
    pos = (grid + 0.5) * edge / 5 + np.random.default_rng(0).normal(0, 0.005, (n, 3))
    return argon_system(n, edge), pos


def test_lj_argon_short_low_friction_segment_matches_a_longer_run(argon_liquid):
    system, pos = argon_liquid
    # reference: 160 ps; the segment: 40 ps (both 5 fs steps, 0.05 ps frames, friction 0.1/ps)
    ref = trajectory(system, pos, 120.0, 0.1, 5.0, 10, 3200, seed=11, equilibration_steps=2000)
    seg = trajectory(system, pos, 120.0, 0.1, 5.0, 10, 800, seed=12, equilibration_steps=2000)
    d_ref = dyn.diffusion(ref, 0.05, 1.0, 4.0, n_blocks=8)
    d_seg = dyn.diffusion(seg, 0.05, 1.0, 4.0, n_blocks=4)
    assert d_ref["diffusive"] and d_seg["diffusive"]
    # liquid argon near its triple point diffuses at a few 1e-9 m²/s (Rahman 1964: 2.43e-9 at 94.4 K)
    assert 1e-9 < d_ref["D_m2_s"] < 1e-8
    assert d_ref["D_stderr_m2_s"] < 0.1 * d_ref["D_m2_s"]  # 108 atoms, 160 ps: about 5 %
    err = np.hypot(d_ref["D_stderr_m2_s"], d_seg["D_stderr_m2_s"])
    assert abs(d_seg["D_m2_s"] - d_ref["D_m2_s"]) < 3 * err
    # friction 0.1/ps vs 0.02/ps: D changes by less than its error (the thermostat does not set the time scale)
    low = trajectory(system, pos, 120.0, 0.02, 5.0, 10, 3200, seed=13, equilibration_steps=2000)
    d_low = dyn.diffusion(low, 0.05, 1.0, 4.0, n_blocks=8)
    assert abs(d_low["D_m2_s"] - d_ref["D_m2_s"]) < 3 * np.hypot(d_low["D_stderr_m2_s"], d_ref["D_stderr_m2_s"])


def _write_cg_segment(directory, positions_A, box_A):
    """A CG segment as the dynamics_cg rule leaves it: PDB topology, DCD of wrapped positions, summary.json."""
    import MDAnalysis as mda

    from cgtransfer.io import write_json

    n = positions_A.shape[1]
    u = mda.Universe.empty(n, n_residues=n, atom_resindex=np.arange(n), trajectory=True)
    u.add_TopologyAttr("name", ["B"] * n)
    u.add_TopologyAttr("resname", ["CG"] * n)
    u.add_TopologyAttr("resid", np.arange(1, n + 1))
    u.dimensions = [*box_A, 90, 90, 90]
    wrapped = positions_A - np.floor(positions_A / box_A) * box_A
    u.atoms.positions = wrapped[0]
    u.atoms.write(str(directory / "topology.pdb"))
    with mda.Writer(str(directory / "trajectory.dcd"), n) as w:
        for frame in wrapped:
            u.atoms.positions = frame
            u.dimensions = [*box_A, 90, 90, 90]
            w.write(u.atoms)
    write_json(directory / "summary.json", {"stable": True, "mean_temperature_K": 300.0})


def test_stage_alpha_of_a_known_speed_up(tmp_path):
    """Reference beads with γ = 5/ps and a 'model' with γ = 2.5/ps at two states: α = D_CG / D_AA = 2 exactly in
    expectation; the model 'trained' at one state transfers its α to the other within its error."""
    from cgtransfer.io import write_json, write_npz
    from cgtransfer.stages import dynamics as stage

    n, mass, T, box = 300, 40.0, 300.0, np.full(3, 30.0)
    system = openmm.System()
    for _ in range(n):
        system.addParticle(mass)
    start = np.random.default_rng(2).uniform(0, 3.0, (n, 3))
    reference, cg_runs = {}, {}
    for k, state in enumerate(("S1", "S2")):
        aa = trajectory(system, start, T, 5.0, 10.0, 10, 400, seed=20 + k)
        write_npz(tmp_path / f"{state}.npz", positions=aa - np.floor(aa / box) * box,
                  cells=np.broadcast_to(np.diag(box), (len(aa), 3, 3)), bead_names=np.array(["B"] * n))
        reference[state] = tmp_path / f"{state}.npz"
        d = tmp_path / state
        d.mkdir()
        _write_cg_segment(d, trajectory(system, start, T, 2.5, 10.0, 10, 400, seed=30 + k), box)
        cg_runs[("fast", state)] = (d / "topology.pdb", d / "trajectory.dcd", d / "summary.json")
        # the same segment reported 20 % too hot: flagged, and its alpha kept out of the transfer table
        write_json(d / "hot.json", {"stable": True, "mean_temperature_K": 1.2 * T})
        cg_runs[("hot", state)] = (d / "topology.pdb", d / "trajectory.dcd", d / "hot.json")
    settings = {"report_interval_ps": 0.1, "fit_start_ps": 1.0, "fit_end_ps": 4.0, "n_blocks": 4,
                "friction_per_ps": 0.1, "shear_viscosity_mPa_s": {"toy": {"S1": 1.0}}, "shear_viscosity_source": "x"}
    models = {"fast": {"kind": "mscg", "states": ["S1"]}, "hot": {"kind": "mscg", "states": ["S1"]}}
    table = stage.analyse(reference, cg_runs, {"S1": T, "S2": T}, models,
                          settings, "toy", tmp_path / "d.csv", tmp_path / "t.csv", tmp_path / "d.json",
                          tmp_path / "d.png")
    ref = table[table["source"] == "reference"]
    exact = dyn.langevin_free_particle_D(T, mass, 5.0)
    assert np.all(np.abs(ref["D_m2_s"] - exact) < 3 * ref["D_stderr_m2_s"] + 0.01 * exact)
    cg = table[table["source"] == "fast"]
    assert np.all(np.abs(cg["alpha"] - 2.0) < 3 * cg["alpha_stderr"] + 0.02)
    assert (cg["alpha_stderr"] < 0.15).all()
    # the corrected D∞ only where a viscosity is given
    assert np.isfinite(ref.set_index("state").loc["S1", "D_yh_m2_s"]) and np.isnan(ref.set_index("state").loc["S2", "D_yh_m2_s"])
    assert table.loc[table["source"] != "hot", "temperature_ok"].all()
    assert not table.loc[table["source"] == "hot", "temperature_ok"].any()
    transfer = pd.read_csv(tmp_path / "t.csv")
    assert list(transfer["model"]) == ["fast"]
    assert list(transfer["state"]) == ["S2"] and transfer["training_states"].iloc[0] == "S1"
    row = transfer.iloc[0]
    assert abs(row["ratio_to_training"] - 1.0) < 3 * row["ratio_stderr"] and row["ratio_stderr"] < 0.1
