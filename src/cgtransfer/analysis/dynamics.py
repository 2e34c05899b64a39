"""Self-diffusion from bead trajectories: pure functions (numpy, MDAnalysis, tidynamics), no MD.

* ``unwrap``: wrapped positions (one frame per report interval) → unwrapped, by summing minimum-image steps
  (exact while no bead moves half a box edge between two frames).
* ``msd``: the mean-squared displacement with MDAnalysis ``EinsteinMSD`` (FFT route, every time origin).
* ``diffusion``: D from a straight-line fit MSD = 6 D t + c over a stated window in the diffusive regime; the
  window counts as diffusive when the MSD is a straight line there: the slopes over its second and first halves
  agree within ``DIFFUSIVE_LINEARITY_TOLERANCE`` (a ballistic or caged MSD bends: the ratio is far from 1). The
  window's log-log slope β is reported too (not the criterion: the MSD's positive offset from the ballistic start,
  c > 0, keeps β below 1 over a short window of a diffusive MSD). The error: the scatter of the same fit on
  contiguous time blocks (standard error of their mean).
* ``vacf``: the velocity autocorrelation function of the frame-to-frame velocities and its running
  Green-Kubo integral D(t) = (1/3) ∫₀ᵗ C dt', a cross-check of the MSD slope (with finite-difference velocities
  the integral equals half the MSD's local slope / 3, so it checks the fit window, not the trajectory).
* ``yeh_hummer_per_viscosity``: the finite-size correction D∞ = D_PBC + ξ k_B T / (6 π η L) of a cubic box
  (Yeh & Hummer, J. Phys. Chem. B 108, 15873 (2004)), as ξ k_B T / (6 π L) per unit shear viscosity.

Units: positions Å, times ps, D in m²/s (1 Å²/ps = 1e-8 m²/s).
"""

from __future__ import annotations

import numpy as np

A2_PER_PS_TO_M2_PER_S = 1e-8
BOLTZMANN_J_K = 1.380649e-23
YEH_HUMMER_XI = 2.837297  # cubic lattice constant of the Yeh-Hummer correction
DIFFUSIVE_LINEARITY_TOLERANCE = 0.15  # diffusive window: slope(second half) / slope(first half) = 1 ± this


def unwrap(positions_A: np.ndarray, box_A: np.ndarray) -> np.ndarray:
    """(n_frames, n, 3) positions wrapped in an orthorhombic box (edges (3,) or per frame (n_frames, 3)) →
    unwrapped trajectory starting at the first frame."""
    pos = np.asarray(positions_A, dtype=np.float64)
    box = np.asarray(box_A, dtype=np.float64)
    box = np.broadcast_to(box if box.ndim == 2 else box[None], (len(pos), 3))
    steps = np.diff(pos, axis=0)
    steps -= box[1:, None, :] * np.round(steps / box[1:, None, :])
    return np.concatenate([pos[:1], pos[:1] + np.cumsum(steps, axis=0)], axis=0)


def msd(unwrapped_A: np.ndarray, dt_ps: float) -> tuple[np.ndarray, np.ndarray]:
    """(lag times ps, MSD Å²) of an unwrapped trajectory, averaged over beads and time origins (MDAnalysis
    ``EinsteinMSD``, ``fft=True``; needs tidynamics)."""
    import MDAnalysis as mda
    from MDAnalysis.analysis.msd import EinsteinMSD
    from MDAnalysis.coordinates.memory import MemoryReader

    pos = np.ascontiguousarray(unwrapped_A, dtype=np.float32)
    universe = mda.Universe.empty(pos.shape[1], trajectory=False)
    universe.load_new(pos, format=MemoryReader, dt=dt_ps)
    run = EinsteinMSD(universe, select="all", msd_type="xyz", fft=True).run()
    lags = np.arange(len(pos)) * dt_ps
    return lags, np.asarray(run.results.timeseries, dtype=np.float64)


def fit_line(t: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    slope, intercept = np.polyfit(t, y, 1)
    return float(slope), float(intercept)


def fit_window(lags_ps: np.ndarray, start_ps: float, end_ps: float) -> np.ndarray:
    mask = (lags_ps >= start_ps - 1e-9) & (lags_ps <= end_ps + 1e-9)
    if mask.sum() < 3:
        raise ValueError(f"the fit window {start_ps}-{end_ps} ps holds {int(mask.sum())} lag times (need 3)")
    return mask


def diffusion_from_msd(lags_ps, msd_A2, start_ps: float, end_ps: float) -> dict:
    """D (m²/s) from MSD = 6 D t + c over [start_ps, end_ps], with the window's log-log slope β and its
    linearity: the slope over the window's second half over that over its first half."""
    mask = fit_window(lags_ps, start_ps, end_ps)
    slope, intercept = fit_line(lags_ps[mask], msd_A2[mask])
    beta, _ = fit_line(np.log(lags_ps[mask]), np.log(np.maximum(msd_A2[mask], 1e-300)))
    mid = 0.5 * (start_ps + end_ps)
    early, late = fit_window(lags_ps, start_ps, mid), fit_window(lags_ps, mid, end_ps)
    linearity = fit_line(lags_ps[late], msd_A2[late])[0] / fit_line(lags_ps[early], msd_A2[early])[0]
    return {"D_m2_s": slope / 6.0 * A2_PER_PS_TO_M2_PER_S, "intercept_A2": intercept, "beta": beta,
            "linearity": float(linearity)}


def diffusion(unwrapped_A: np.ndarray, dt_ps: float, start_ps: float, end_ps: float, n_blocks: int = 4) -> dict:
    """D of the whole trajectory and its standard error from ``n_blocks`` contiguous time blocks, each fitted
    over the same window (a block must last at least twice ``end_ps``: the window's lags then have as many time
    origins as lags)."""
    if start_ps <= 0 or end_ps <= start_ps:
        raise ValueError(f"fit window {start_ps}-{end_ps} ps: need 0 < start < end")
    n = len(unwrapped_A)
    block = n // n_blocks
    if n_blocks < 2 or block * dt_ps < 2 * end_ps - 1e-9:
        raise ValueError(f"{n_blocks} blocks of {block * dt_ps:g} ps are too short for a fit window ending at "
                         f"{end_ps} ps (each block must last twice that)")
    lags, curve = msd(unwrapped_A, dt_ps)
    whole = diffusion_from_msd(lags, curve, start_ps, end_ps)
    blocks = []
    for b in range(n_blocks):
        lb, cb = msd(unwrapped_A[b * block:(b + 1) * block], dt_ps)
        blocks.append(diffusion_from_msd(lb, cb, start_ps, end_ps)["D_m2_s"])
    blocks = np.asarray(blocks)
    return {**whole, "D_stderr_m2_s": float(blocks.std(ddof=1) / np.sqrt(n_blocks)), "D_blocks_m2_s": blocks.tolist(),
            "fit_start_ps": float(start_ps), "fit_end_ps": float(end_ps), "n_blocks": int(n_blocks),
            "diffusive": bool(abs(whole["linearity"] - 1.0) <= DIFFUSIVE_LINEARITY_TOLERANCE), "lags_ps": lags, "msd_A2": curve}


def vacf(unwrapped_A: np.ndarray, dt_ps: float, max_lag_ps: float) -> dict:
    """VACF C(t) (Å²/ps², per bead, summed over x, y, z) of the frame-to-frame velocities up to ``max_lag_ps``
    (FFT, every time origin) and its running integral D(t) = (1/3) ∫₀ᵗ C dt' in m²/s (trapezoid rule)."""
    import tidynamics

    v = np.diff(np.asarray(unwrapped_A, dtype=np.float64), axis=0) / dt_ps
    n_lag = min(len(v), int(round(max_lag_ps / dt_ps)) + 1)
    c = np.zeros(n_lag)
    for i in range(v.shape[1]):
        c += tidynamics.acf(v[:, i, :])[:n_lag]
    c /= v.shape[1]
    t = np.arange(n_lag) * dt_ps
    running = np.concatenate([[0.0], np.cumsum(0.5 * (c[1:] + c[:-1]) * dt_ps)]) / 3.0
    return {"t_ps": t, "vacf_A2_ps2": c, "D_running_m2_s": running * A2_PER_PS_TO_M2_PER_S}


def vacf_diffusion(vacf_result: dict, start_ps: float, end_ps: float) -> float:
    """The Green-Kubo D: the running integral averaged over the plateau window [start, end] (m²/s)."""
    t, d = vacf_result["t_ps"], vacf_result["D_running_m2_s"]
    mask = (t >= start_ps - 1e-9) & (t <= end_ps + 1e-9)
    return float(d[mask].mean()) if mask.any() else float("nan")


def yeh_hummer_per_viscosity(temperature_K: float, box_edge_A: float) -> float:
    """ξ k_B T / (6 π L): the Yeh-Hummer correction times the shear viscosity, in (m²/s)·(mPa·s); divide by η in
    mPa·s for the correction D∞ − D_PBC in m²/s."""
    return YEH_HUMMER_XI * BOLTZMANN_J_K * temperature_K / (6.0 * np.pi * box_edge_A * 1e-10) / 1e-3


def ratio_with_error(a: float, a_err: float, b: float, b_err: float) -> tuple[float, float]:
    """a / b and its error from independent errors of a and b (first order)."""
    r = a / b
    return float(r), float(abs(r) * np.hypot(a_err / a, b_err / b))


def langevin_free_particle_D(temperature_K: float, mass_amu: float, friction_per_ps: float) -> float:
    """The exact D = k_B T / (m γ) of a free Langevin particle, in m²/s."""
    kT_J = BOLTZMANN_J_K * temperature_K
    m_kg = mass_amu * 1.66053906660e-27
    return kT_J / (m_kg * friction_per_ps * 1e12)
