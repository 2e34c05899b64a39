"""Statistics of correlated simulation series: block averages, the delete-one jackknife, the isothermal
compressibility from volume fluctuations, and force-error metrics. Every stage that reports an uncertainty
takes it from here."""

from __future__ import annotations

import numpy as np

from cgtransfer import units


def block_average(x: np.ndarray, n_blocks: int = 5) -> tuple[float, float]:
    """Mean and its standard error from ``n_blocks`` contiguous blocks."""
    x = np.asarray(x, dtype=float)
    if len(x) < n_blocks:
        return float(np.mean(x)), float("nan")
    blocks = np.array([b.mean() for b in np.array_split(x, n_blocks)])
    return float(x.mean()), float(blocks.std(ddof=1) / np.sqrt(n_blocks))


def block_edges(n_frames: int, n_blocks: int) -> np.ndarray:
    """Frame indices bounding ``n_blocks`` contiguous, near-equal blocks of ``n_frames`` frames: block i is
    frames [edges[i], edges[i + 1])."""
    return np.linspace(0, n_frames, n_blocks + 1).round().astype(int)


def jackknife_stderr(blocks: list[np.ndarray], statistic) -> float:
    """Delete-one jackknife standard error of ``statistic(mean of blocks)`` over equal-weight blocks."""
    n = len(blocks)
    stack = np.asarray(blocks)
    values = np.array([statistic(np.delete(stack, i, axis=0).mean(axis=0)) for i in range(n)])
    return float(np.sqrt((n - 1) / n * np.sum((values - values.mean()) ** 2)))


def compressibility_per_bar(volume_nm3, temperature_K: float, n_blocks: int = 5) -> tuple[float, float]:
    """Isothermal compressibility from NPT volume fluctuations, κ_T = <δV²>/(k T <V>), in 1/bar, with the
    standard error of its block estimates."""
    v = np.asarray(volume_nm3, dtype=float) * units.ANGSTROM_PER_NM**3  # Å³
    kt = units.KB_KJ_MOL_K * temperature_K * units.KCAL_PER_KJ * units.BAR_PER_KCAL_MOL_A3  # k T in bar·Å³
    kappa = float(v.var(ddof=1) / (kt * v.mean()))
    if len(v) < 2 * n_blocks:
        return kappa, float("nan")
    blocks = [float(b.var(ddof=1) / (kt * b.mean())) for b in np.array_split(v, n_blocks)]
    return kappa, float(np.std(blocks, ddof=1) / np.sqrt(n_blocks))


def force_metrics(predicted: np.ndarray, reference: np.ndarray) -> dict:
    """RMSE, MAE (kcal/mol/Å) and R² over force components. With frame-shaped arrays (frames first) the RMSE
    also gets a standard error from the frame-to-frame spread of the mean squared error (delta method)."""
    predicted = np.asarray(predicted, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    p, r = predicted.ravel(), reference.ravel()
    res = p - r
    rmse = float(np.sqrt(np.mean(res**2)))
    out = {
        "force_rmse_kcal_mol_A": rmse,
        "force_mae_kcal_mol_A": float(np.mean(np.abs(res))),
        "force_r2": float(1.0 - np.sum(res**2) / np.sum((r - r.mean()) ** 2)),
        "n_components": int(p.size),
    }
    if predicted.ndim >= 2 and len(predicted) >= 2:
        mse_per_frame = ((predicted - reference) ** 2).reshape(len(predicted), -1).mean(axis=1)
        se_mse = mse_per_frame.std(ddof=1) / np.sqrt(len(mse_per_frame))
        out["force_rmse_stderr_kcal_mol_A"] = float(se_mse / (2.0 * rmse)) if rmse > 0 else 0.0
        out["n_frames"] = int(len(predicted))
    return out
