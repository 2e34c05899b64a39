"""Radial distribution functions of CG beads with MDAnalysis InterRDF, and the numbers read off them."""

from __future__ import annotations

import numpy as np
import MDAnalysis as mda
from MDAnalysis.analysis.rdf import InterRDF
from MDAnalysis.coordinates.memory import MemoryReader


def bead_universe(positions_A: np.ndarray, box_lengths_A: np.ndarray, bead_names, residue_of_bead,
                  masses=None) -> mda.Universe:
    """An in-memory MDAnalysis Universe of CG beads: positions (n_frames, n_beads, 3) Å, box (n_frames, 3) Å."""
    n_frames, n_beads, _ = positions_A.shape
    residue_of_bead = np.asarray(residue_of_bead)
    n_res = int(residue_of_bead.max()) + 1
    u = mda.Universe.empty(n_beads, n_residues=n_res, atom_resindex=residue_of_bead, trajectory=True)
    u.add_TopologyAttr("name", list(bead_names))
    u.add_TopologyAttr("type", list(bead_names))
    u.add_TopologyAttr("resid", np.arange(1, n_res + 1))
    if masses is not None:
        u.add_TopologyAttr("mass", np.asarray(masses, dtype=float))
    dims = np.zeros((n_frames, 6), dtype=np.float32)
    dims[:, :3] = box_lengths_A
    dims[:, 3:] = 90.0
    u.load_new(np.asarray(positions_A, dtype=np.float32), format=MemoryReader, dimensions=dims)
    return u


def beads_per_residue(group) -> int:
    counts = np.bincount(group.resindices)
    counts = counts[counts > 0]
    if not np.all(counts == counts[0]):
        raise ValueError("bead selection has different numbers of beads per molecule")
    return int(counts[0])


def bead_rdf(universe: mda.Universe, name_a: str, name_b: str, nbins: int, rmax_A: float, start=None, stop=None):
    """g(r) between bead types a and b; pairs inside one molecule are excluded with ``exclusion_block``
    (which also fixes the normalisation). Returns (bin centres Å, g)."""
    ga = universe.select_atoms(f"name {name_a}")
    gb = universe.select_atoms(f"name {name_b}")
    block = (beads_per_residue(ga), beads_per_residue(gb))
    rdf = InterRDF(ga, gb, nbins=nbins, range=(0.0, rmax_A), exclusion_block=block)
    rdf.run(start=start, stop=stop)
    return np.asarray(rdf.results.bins), np.asarray(rdf.results.rdf)


def rdf_onset(r: np.ndarray, g: np.ndarray, threshold: float) -> float:
    """The first r where g(r) exceeds ``threshold`` (closest approach seen in the reference)."""
    above = np.nonzero(g > threshold)[0]
    if len(above) == 0:
        raise ValueError(f"the RDF never exceeds {threshold}")
    return float(r[above[0]])


def first_peak(r: np.ndarray, g: np.ndarray) -> tuple[float, float]:
    """Position and height of the first peak: the first local maximum that rises above 1. An RDF without one
    (a gas) has no first peak: (nan, nan), not a silent fallback to some other maximum."""
    for i in range(1, len(g) - 1):
        if g[i] > 1.0 and g[i] >= g[i - 1] and g[i] >= g[i + 1]:
            return float(r[i]), float(g[i])
    return float("nan"), float("nan")


def rdf_mae(g1: np.ndarray, g2: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(g1) - np.asarray(g2))))


def js_divergence_r2g(r: np.ndarray, g1: np.ndarray, g2: np.ndarray) -> float:
    """Jensen-Shannon divergence (nats) between r²g(r) of the two RDFs, each normalised to a distribution."""
    p = np.clip(r**2 * g1, 0, None)
    q = np.clip(r**2 * g2, 0, None)
    p = p / p.sum()
    q = q / q.sum()
    m = 0.5 * (p + q)

    def kl(a, b):
        mask = a > 0
        return float(np.sum(a[mask] * np.log(a[mask] / b[mask])))

    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


def min_pair_distance(positions_A: np.ndarray, box_lengths_A: np.ndarray) -> float:
    """Closest minimum-image distance between any two beads of one frame (Å)."""
    from MDAnalysis.lib.distances import self_distance_array

    box = np.concatenate([np.asarray(box_lengths_A, dtype=np.float32), [90.0, 90.0, 90.0]]).astype(np.float32)
    return float(self_distance_array(np.asarray(positions_A, dtype=np.float32), box=box).min())
