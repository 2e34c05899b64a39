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


def min_pair_distance(positions_A: np.ndarray, box_lengths_A: np.ndarray, residue_of_bead=None) -> float:
    """Closest minimum-image distance between any two beads of one frame (Å); with ``residue_of_bead`` only
    between beads of different molecules (bonded beads of one molecule sit at a bond length by design)."""
    from MDAnalysis.lib.distances import self_distance_array

    box = np.concatenate([np.asarray(box_lengths_A, dtype=np.float32), [90.0, 90.0, 90.0]]).astype(np.float32)
    d = self_distance_array(np.asarray(positions_A, dtype=np.float32), box=box)
    if residue_of_bead is not None:
        res = np.asarray(residue_of_bead)
        if len(res) > len(np.unique(res)):
            i, j = np.triu_indices(len(res), k=1)  # self_distance_array's order
            d = d[res[i] != res[j]]
    return float(d.min())


def first_minimum(r: np.ndarray, g: np.ndarray) -> float:
    """Position of the first local minimum of g(r) after its first peak (``first_peak``): the first bin i past
    the peak with g[i] <= g[i-1] and g[i] < g[i+1]. Read exactly on the given bins, with no smoothing, so a
    noisy g should be binned coarsely enough (or averaged) before calling this. NaN when g has no first peak
    (e.g. a gas) or does not rise again after it within the range."""
    r = np.asarray(r, dtype=float)
    g = np.asarray(g, dtype=float)
    peak_r, _ = first_peak(r, g)
    if np.isnan(peak_r):
        return float("nan")
    i_peak = int(np.nonzero(r == peak_r)[0][0])
    i = np.arange(i_peak + 1, len(g) - 1)
    is_min = (g[i] <= g[i - 1]) & (g[i] < g[i + 1])
    if not np.any(is_min):
        return float("nan")
    return float(r[i[np.argmax(is_min)]])


def three_body_angles(universe: mda.Universe, name: str, cutoff_A: float, nbins: int = 60, start=None, stop=None):
    """Three-body angular distribution P(θ) of beads ``name``: for every centre bead i of that name and every
    unordered pair (j, k) of its neighbours (beads of the same name, in another residue, within ``cutoff_A`` by
    the minimum image in the orthorhombic box of each frame) the angle j-i-k between r_ij and r_ik.

    Frames [start:stop) of the trajectory. Returns (bin centres in degrees over [0, 180], probability density in
    deg⁻¹ with sum(density) * bin_width = 1, mean number of neighbours per centre bead including beads with
    none). Raises ValueError if no angle at all was found."""
    from MDAnalysis.lib.distances import self_capped_distance

    group = universe.select_atoms(f"name {name}")
    if group.n_atoms == 0:
        raise ValueError(f"no beads named {name!r}")
    resindices = group.resindices
    edges = np.linspace(0.0, 180.0, nbins + 1)
    counts = np.zeros(nbins, dtype=np.int64)
    n_neighbours = 0
    n_centres = 0
    for ts in universe.trajectory[start:stop]:
        dims = np.asarray(ts.dimensions, dtype=np.float64)
        if not np.allclose(dims[3:], 90.0):
            raise ValueError("three_body_angles needs an orthorhombic box")
        box = dims[:3]
        pos = group.positions.astype(np.float64)
        n_centres += len(pos)
        pairs = self_capped_distance(pos, cutoff_A, box=dims, return_distances=False)
        if len(pairs) == 0:
            continue
        pairs = pairs[resindices[pairs[:, 0]] != resindices[pairs[:, 1]]]
        # both directions: every pair is a neighbour of each of its two beads
        centre = np.concatenate([pairs[:, 0], pairs[:, 1]])
        neighbour = np.concatenate([pairs[:, 1], pairs[:, 0]])
        n_neighbours += len(centre)
        order = np.argsort(centre, kind="stable")
        centre, neighbour = centre[order], neighbour[order]
        vec = pos[neighbour] - pos[centre]
        vec -= box * np.round(vec / box)
        vec /= np.linalg.norm(vec, axis=1)[:, None]
        _, first, n_per_centre = np.unique(centre, return_index=True, return_counts=True)
        # centres with the same number m of neighbours form an (n_centres_m, m, 3) block of unit vectors
        for m in np.unique(n_per_centre):
            if m < 2:
                continue
            rows = first[n_per_centre == m][:, None] + np.arange(m)[None, :]
            block = vec[rows]
            a, b = np.triu_indices(m, 1)
            cos = np.einsum("cpx,cpx->cp", block[:, a], block[:, b])
            theta = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
            counts += np.histogram(theta, bins=edges)[0]
    if counts.sum() == 0:
        raise ValueError(f"no three-body angles for beads {name!r} within a cutoff of {cutoff_A} Å")
    width = edges[1] - edges[0]
    density = counts / (counts.sum() * width)
    mean_neighbours = n_neighbours / n_centres if n_centres else float("nan")
    return 0.5 * (edges[1:] + edges[:-1]), density, float(mean_neighbours)


def angle_distribution_mae(p1: np.ndarray, p2: np.ndarray, bin_width_deg: float) -> float:
    """Total variation distance between two angular densities on the same bins: 0.5 * Σ|p1 - p2| * bin width.
    0 for identical distributions, 1 for distributions with disjoint support."""
    return float(0.5 * np.sum(np.abs(np.asarray(p1) - np.asarray(p2))) * bin_width_deg)
