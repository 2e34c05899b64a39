"""The names of the CG MD ensembles of a cell: ``nvt`` (the reference's mean box), ``npt`` (the state's pressure)
and ``nvt_rho<f>`` (NVT at f × the all-atom mean density: the volume term's pressure-density scan). Here, in the
base layer, so that the rules (which name the outputs) and cg_md (which runs them) agree without the Snakefile
loading OpenMM, and editing the config checks does not rerun CG MD."""

from __future__ import annotations

import math

DENSITY_SCAN_PREFIX = "nvt_rho"


def density_scan_ensemble(density_factor: float) -> str:
    """The ensemble name of a CG NVT run at ``density_factor`` × the all-atom mean density, e.g. ``nvt_rho0.950``."""
    return f"{DENSITY_SCAN_PREFIX}{density_factor:.3f}"


def parse_ensemble(ensemble: str) -> tuple[str, float]:
    """("nvt" | "npt", density factor): ``nvt`` and ``npt`` have factor 1, ``nvt_rho<f>`` is NVT at f × ρ_AA."""
    if ensemble in ("nvt", "npt"):
        return ensemble, 1.0
    if ensemble.startswith(DENSITY_SCAN_PREFIX):
        try:
            factor = float(ensemble[len(DENSITY_SCAN_PREFIX):])
        except ValueError:
            factor = float("nan")
        if math.isfinite(factor) and 0.5 <= factor <= 2.0:
            return "nvt", factor
    raise ValueError(f"unknown ensemble {ensemble!r} (nvt, npt or nvt_rho<density factor 0.5-2>)")
