"""Stage build_box: the starting all-atom box of a system, packed with packmol (`cgtransfer.md.box`)."""

from __future__ import annotations

from cgtransfer.md.box import build_mixture_box


def build_box(templates: list, counts: list, density_g_cm3: float, out_pdb, seed: int = 1) -> dict:
    """Pack ``counts[i]`` copies of ``templates[i]`` at ``density_g_cm3`` into ``out_pdb`` (a periodic cube)."""
    return build_mixture_box(list(zip(templates, counts)), density_g_cm3, out_pdb, seed=seed)
