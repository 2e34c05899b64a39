import numpy as np
import pytest

from cgtransfer.analysis import rdf


def test_ideal_gas_rdf_is_one():
    """Uniformly random points have g(r) = 1 at every r (exclusion of self pairs fixes the normalisation)."""
    rng = np.random.default_rng(1)
    n_frames, n, L = 40, 400, 20.0
    pos = rng.uniform(0, L, size=(n_frames, n, 3))
    u = rdf.bead_universe(pos, np.full((n_frames, 3), L), ["X"] * n, np.arange(n))
    r, g = rdf.bead_rdf(u, "X", "X", 40, 10.0)
    assert np.all(np.isfinite(g))
    assert np.mean(g[r > 2.0]) == pytest.approx(1.0, abs=0.02)
    assert np.max(np.abs(g[r > 4.0] - 1.0)) < 0.1


def test_intramolecular_pairs_excluded_for_two_bead_molecules():
    """Rigid dimers (bond 1 Å) placed at random: with exclusion_block the intramolecular 1 Å peak vanishes and
    the intermolecular g stays ≈ 1 (ideal gas of dimers)."""
    rng = np.random.default_rng(2)
    n_frames, n_mol, L = 30, 200, 20.0
    centres = rng.uniform(0, L, size=(n_frames, n_mol, 3))
    d = rng.normal(size=(n_frames, n_mol, 3))
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    pos = np.empty((n_frames, 2 * n_mol, 3))
    pos[:, 0::2] = centres
    pos[:, 1::2] = (centres + d) % L
    u = rdf.bead_universe(pos, np.full((n_frames, 3), L), ["A", "B"] * n_mol, np.repeat(np.arange(n_mol), 2))
    r, g = rdf.bead_rdf(u, "A", "B", 40, 10.0)
    assert g[np.argmin(np.abs(r - 1.0))] < 1.5
    assert np.mean(g[r > 2.0]) == pytest.approx(1.0, abs=0.05)


def test_peak_onset_and_divergences():
    r = np.linspace(0.05, 10, 200)
    g = np.where(r < 3, 0.0, 1 + 2 * np.exp(-((r - 4) ** 2)) * np.cos(r - 4))
    assert rdf.rdf_onset(r, g, 1e-3) == pytest.approx(r[r >= 3][0])
    peak_r, peak_g = rdf.first_peak(r, g)
    assert peak_r == pytest.approx(4.0, abs=0.06)
    assert peak_g == pytest.approx(3.0, abs=0.01)
    # an ideal gas has no first peak: reported as such, not replaced by some other maximum
    assert np.isnan(rdf.first_peak(r, np.where(r < 3, 0.0, 1.0 - 0.01 * np.exp(-r))) ).all()
    assert rdf.js_divergence_r2g(r, g, g) == pytest.approx(0.0, abs=1e-12)
    assert rdf.js_divergence_r2g(r, g, np.ones_like(g)) > 0.01
    assert rdf.rdf_mae(g, g + 0.1) == pytest.approx(0.1)


def test_min_pair_distance_minimum_image():
    pos = np.array([[0.5, 5, 5], [9.7, 5, 5], [5, 5, 5]])
    assert rdf.min_pair_distance(pos, np.array([10.0, 10, 10])) == pytest.approx(0.8, abs=1e-5)
