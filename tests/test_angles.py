"""Three-body angular distribution of CG beads, first minimum of g(r), and the distance between angle densities."""

import itertools

import numpy as np
import pytest

from cgtransfer.analysis import rdf


def _bin_integrals_isotropic(nbins):
    """Expected density per degree in each bin for isotropic, independent neighbour directions: cos θ is
    uniform on [-1, 1], so the probability of a bin [a, b] is (cos a - cos b) / 2."""
    edges = np.radians(np.linspace(0.0, 180.0, nbins + 1))
    width = 180.0 / nbins
    return (np.cos(edges[:-1]) - np.cos(edges[1:])) / 2.0 / width


def test_ideal_gas_angles_follow_sin_theta():
    """Uniform random points: the density is (π/360) sin θ, and the mean neighbour count is (n-1) (4/3 π rc³) / V."""
    rng = np.random.default_rng(11)
    n_frames, n, L, rc, nbins = 40, 400, 20.0, 4.0, 30
    pos = rng.uniform(0, L, size=(n_frames, n, 3))
    u = rdf.bead_universe(pos, np.full((n_frames, 3), L), ["X"] * n, np.arange(n))
    theta, density, mean_nb = rdf.three_body_angles(u, "X", rc, nbins=nbins)
    width = 180.0 / nbins
    assert theta == pytest.approx(np.arange(nbins) * width + width / 2)
    assert np.sum(density) * width == pytest.approx(1.0, rel=1e-12)
    expected = _bin_integrals_isotropic(nbins)
    # ~1.4 M (correlated) angles: seeds give a max bin deviation of ~1 % of the peak density and TV ≈ 0.002
    assert np.max(np.abs(density - expected)) < 0.03 * expected.max()
    assert rdf.angle_distribution_mae(density, expected, width) < 0.008
    # the check discriminates: a flat density in θ (the common mistake of forgetting the sin θ) is far off
    assert rdf.angle_distribution_mae(np.full(nbins, 1 / 180.0), expected, width) > 0.1
    assert mean_nb == pytest.approx((n - 1) * (4 / 3 * np.pi * rc**3) / L**3, rel=0.01)


def _fcc(n_cells, a):
    basis = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    cells = np.array(list(itertools.product(range(n_cells), repeat=3)), dtype=float)
    return ((cells[:, None, :] + basis[None, :, :]).reshape(-1, 3)) * a


def test_fcc_lattice_exact_angles():
    """A perfect FCC crystal with the cutoff between the first (a/√2) and second (a) shells: 12 neighbours and
    66 pairs per bead, 24 at 60°, 12 at 90°, 24 at 120°, 6 at 180°. 35 bins of 180/35° keep those angles inside bins."""
    a, n_cells, nbins = 4.0, 4, 35
    L = n_cells * a
    lattice = _fcc(n_cells, a)
    assert len(lattice) == 256
    rng = np.random.default_rng(5)
    # random offsets and wrapping: many neighbour vectors go through the periodic boundary
    pos = np.stack([(lattice + rng.uniform(0, L, size=3)) % L for _ in range(3)])
    u = rdf.bead_universe(pos, np.full((3, 3), L), ["W"] * 256, np.arange(256))
    theta, density, mean_nb = rdf.three_body_angles(u, "W", 0.85 * a, nbins=nbins)
    width = 180.0 / nbins
    mass = density * width
    assert mean_nb == 12.0
    expected = np.zeros(nbins)
    for angle, count in [(60, 24), (90, 12), (120, 24), (180, 6)]:
        i = min(int(angle // width), nbins - 1)
        if angle < 180:  # 180° is the closed right edge of the last bin
            assert min(angle - i * width, (i + 1) * width - angle) > 1.0  # well inside its bin
        expected[i] = count / 66
    assert mass == pytest.approx(expected, abs=1e-12)


def test_periodic_boundary_same_residue_and_other_names():
    """Centre at (0.5, 5, 5) in a 10 Å box; neighbours at (9.5, 5, 5) (through the boundary), (0.5, 6, 5), (1.5, 5, 5):
    angles 90°, 180°, 90°. A bead of the centre's residue and a bead of another name, both within the cutoff, are ignored."""
    L, rc = 10.0, 1.2
    frame0 = np.array([
        [0.5, 5, 5],   # centre, residue 0
        [9.5, 5, 5],   # residue 1, 1 Å away through x = 0
        [0.5, 6, 5],   # residue 2
        [1.5, 5, 5],   # residue 3
        [0.5, 5, 6],   # residue 0 again: same molecule as the centre -> not a neighbour
        [0.5, 4, 5],   # name Y -> not a neighbour
    ])
    frame1 = np.array([[0, 0, 0], [3, 0, 0], [0, 3, 0], [0, 0, 3], [3, 3, 3], [6, 6, 6]], dtype=float)
    names = ["X", "X", "X", "X", "X", "Y"]
    res = [0, 1, 2, 3, 0, 4]
    u = rdf.bead_universe(np.stack([frame0, frame1]), np.full((2, 3), L), names, res)
    nbins = 9  # 20° bins: 90° and 180° well inside bins 4 and 8
    theta, density, mean_nb = rdf.three_body_angles(u, "X", rc, nbins=nbins, stop=1)
    expected = np.zeros(nbins)
    expected[4] = 2 / 3
    expected[8] = 1 / 3
    assert density * 20.0 == pytest.approx(expected, abs=1e-12)
    assert theta[4] == 90.0 and theta[8] == 170.0
    # centre: 3 neighbours; each outer bead of another residue: 1 (the centre); the same-residue bead: 0
    assert mean_nb == pytest.approx(6 / 5)
    # the second frame has no pairs within the cutoff: including it leaves the density, halves the neighbours
    _, density_all, mean_all = rdf.three_body_angles(u, "X", rc, nbins=nbins)
    assert density_all == pytest.approx(density, abs=1e-12)
    assert mean_all == pytest.approx(6 / 10)
    with pytest.raises(ValueError, match=r"'X'.*0\.5"):
        rdf.three_body_angles(u, "X", 0.5, nbins=nbins)
    with pytest.raises(ValueError, match="'X'"):
        rdf.three_body_angles(u, "X", rc, nbins=nbins, start=1)


def test_first_minimum():
    """g = 1 + 2 e^{-x/2} cos(πx), x = r - 3: extrema at tan(πx) = -1/(2π); the first peak at x ≈ -0.05 and the
    first minimum at x = 1 - atan(1/(2π))/π. A dip below 1 before the peak (at r ≈ 1.5) is not the first minimum."""
    r = np.arange(0.005, 10, 0.01)
    x = r - 3.0
    g = np.where(r < 2.5, 0.3 * np.sin(np.pi * r / 1.0) ** 2, 1 + 2 * np.exp(-x / 2) * np.cos(np.pi * x))
    assert np.any((g[1:-1] < g[:-2]) & (g[1:-1] < g[2:]) & (r[1:-1] < 2.5))  # there is an earlier dip
    expected = 3.0 + 1.0 - np.arctan(1 / (2 * np.pi)) / np.pi
    assert rdf.first_minimum(r, g) == pytest.approx(expected, abs=0.01)
    # an ideal gas has no peak, so no first minimum
    assert np.isnan(rdf.first_minimum(r, np.ones_like(r)))
    # a single peak decaying monotonically to 1: no minimum after it
    assert np.isnan(rdf.first_minimum(r, np.where(r < 3, 0.0, 1 + np.exp(-(r - 3)))))


def test_angle_distribution_mae():
    nbins = 36
    width = 180.0 / nbins
    flat = np.full(nbins, 1 / 180.0)
    first_half = np.where(np.arange(nbins) < nbins // 2, 1 / 90.0, 0.0)
    second_half = first_half[::-1]
    assert rdf.angle_distribution_mae(flat, flat, width) == 0.0
    assert rdf.angle_distribution_mae(first_half, second_half, width) == pytest.approx(1.0)
    assert rdf.angle_distribution_mae(flat, first_half, width) == pytest.approx(0.5)
