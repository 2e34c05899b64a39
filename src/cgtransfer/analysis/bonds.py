"""Intramolecular bead pairs: exclusions and the harmonic bonded prior of molecules with several beads.

With more than one bead per molecule (methanol as CH3 | OH) two beads of one molecule sit at a bond length
(1.4 Å), far inside any intermolecular contact: the pair repulsion, the network and the MS-CG tables must not
see them (they are **excluded**: every bead pair inside one molecule), and a **bonded prior** holds them
together instead. The prior is one harmonic term per intramolecular bead pair, U = ½ k (r − r₀)², fitted by
Boltzmann inversion of the reference distance distribution of that pair type: r₀ = ⟨r⟩, k = k_B T / var(r)
(per training state, averaged over the states). For two beads that is the bond; for three or more it is an
elastic network over all intramolecular pairs (bonds and 1-3 distances), which holds small, nearly rigid
molecules in shape. The bonded prior is fixed: every model kind fits the remaining (nonbonded) forces, and
adds the prior back when it predicts or runs (in OpenMM a ``HarmonicBondForce``, whose bonds also make
OpenMM's MonteCarloBarostat scale each CG molecule as a rigid unit, by its centre).

Bead pairs are identified by the per-bead molecule (residue) index of the mapped dataset; pair types by the
bead-type names of both beads in molecule order ("CH3-OH").
"""

from __future__ import annotations

import numpy as np

from cgtransfer import units


def intramolecular_pairs(residue_index) -> np.ndarray:
    """Every bead pair (i < j) inside one molecule, (M, 2) int64; empty for one-bead molecules."""
    residue_index = np.asarray(residue_index)
    pairs = []
    for r in np.unique(residue_index):
        beads = np.nonzero(residue_index == r)[0]
        pairs += [(int(a), int(b)) for k, a in enumerate(beads) for b in beads[k + 1:]]
    return np.asarray(pairs, dtype=np.int64).reshape(-1, 2)


def has_multibead_molecules(residue_index) -> bool:
    residue_index = np.asarray(residue_index)
    return len(residue_index) > len(np.unique(residue_index))


def pair_type_names(pairs: np.ndarray, bead_names) -> list[str]:
    names = np.asarray(bead_names).astype(str)
    return [f"{names[i]}-{names[j]}" for i, j in pairs]


def pair_distances(positions, cells, pairs) -> np.ndarray:
    """Minimum-image distances (F, M) of the bead pairs in orthorhombic cells; positions (F, N, 3), cells (F, 3, 3)."""
    positions = np.asarray(positions, dtype=np.float64)
    edges = np.asarray(cells, dtype=np.float64)[:, [0, 1, 2], [0, 1, 2]]
    d = positions[:, pairs[:, 1]] - positions[:, pairs[:, 0]]
    d -= np.round(d / edges[:, None, :]) * edges[:, None, :]
    return np.linalg.norm(d, axis=-1)


def fit_bonded_prior(datasets: list[dict], state_names: list[str]) -> dict | None:
    """The harmonic bonded prior of the training states (Boltzmann inversion, module docstring), or None when
    every molecule is one bead. Each dataset needs ``residue_index``, ``bead_names`` and ``temperature_K``."""
    first = datasets[0]
    if "residue_index" not in first or not has_multibead_molecules(first["residue_index"]):
        return None
    pairs = intramolecular_pairs(first["residue_index"])
    types = pair_type_names(pairs, first["bead_names"])
    per_type: dict[str, list] = {t: [] for t in dict.fromkeys(types)}
    for d, state in zip(datasets, state_names):
        if not np.array_equal(d["residue_index"], first["residue_index"]):
            raise ValueError(f"state {state}: its beads belong to other molecules than in the first training state")
        if "temperature_K" not in d:
            raise ValueError(f"state {state}: the mapped dataset has no temperature (rerun map_to_cg): the bonded "
                             "prior's Boltzmann inversion needs it")
        r = pair_distances(d["positions"], d["cells"], pairs)
        for t in per_type:
            sel = np.array([x == t for x in types])
            x = r[:, sel].ravel()
            per_type[t].append((float(x.mean()), float(x.var()), float(d["temperature_K"]), int(x.size)))
    params = {}
    for t, rows in per_type.items():
        mean, var, temp, n = map(np.asarray, zip(*rows))
        if np.any(var <= 0):
            raise ValueError(f"bead pair {t}: its distance never varies in the reference (a constrained pair?): "
                             "no harmonic prior can be fitted")
        params[t] = {"r0_A": float(mean.mean()), "k_kcal_mol_A2": float(np.mean(units.KB_KCAL_MOL_K * temp / var)),
                     "std_A": float(np.sqrt(var.mean())), "n_samples": int(n.sum())}
    return {"pairs": pairs.tolist(), "types": types, "params": params,
            "molecule_of_bead": np.asarray(first["residue_index"]).astype(int).tolist()}


def _arrays(bonded: dict):
    pairs = np.asarray(bonded["pairs"], dtype=np.int64).reshape(-1, 2)
    k = np.array([bonded["params"][t]["k_kcal_mol_A2"] for t in bonded["types"]])
    r0 = np.array([bonded["params"][t]["r0_A"] for t in bonded["types"]])
    return pairs, k, r0


def bonded_energy_forces(bonded: dict | None, positions, cells):
    """Energy (B,) kcal/mol and forces (B, N, 3) kcal/mol/Å of the bonded prior (zeros without one)."""
    positions = np.asarray(positions, dtype=np.float64)
    energy = np.zeros(len(positions))
    forces = np.zeros_like(positions)
    if not bonded:
        return energy, forces
    pairs, k, r0 = _arrays(bonded)
    edges = np.asarray(cells, dtype=np.float64)[:, [0, 1, 2], [0, 1, 2]]
    d = positions[:, pairs[:, 1]] - positions[:, pairs[:, 0]]
    d -= np.round(d / edges[:, None, :]) * edges[:, None, :]
    r = np.linalg.norm(d, axis=-1)
    energy = (0.5 * k * (r - r0) ** 2).sum(axis=1)
    f_on_j = (-k * (r - r0) / r)[..., None] * d  # −dU/dr along the unit vector from i to j
    for col, sign in ((1, 1.0), (0, -1.0)):
        np.add.at(forces, (slice(None), pairs[:, col]), sign * f_on_j)
    return energy, forces


def harmonic_bond_force(bonded: dict):
    """The bonded prior as an OpenMM ``HarmonicBondForce`` (E = ½ k (r − r₀)², OpenMM's own convention); its
    bonds define OpenMM's molecules, so the MonteCarloBarostat scales each CG molecule rigidly by its centre."""
    import openmm

    force = openmm.HarmonicBondForce()
    force.setUsesPeriodicBoundaryConditions(True)
    pairs, k, r0 = _arrays(bonded)
    for (i, j), kk, rr in zip(pairs, k, r0):
        force.addBond(int(i), int(j), float(units.angstrom_to_nm(rr)), float(units.spring_model_to_openmm(kk)))
    force.setName("bonded prior (harmonic, Boltzmann-inverted)")
    return force


def check_layout(bonded: dict | None, residue_index, where: str) -> None:
    """A model with a bonded prior runs only on beads grouped into the same molecules as its training data."""
    if bonded and not np.array_equal(np.asarray(bonded["molecule_of_bead"]), np.asarray(residue_index)):
        raise ValueError(f"{where}: its beads belong to other molecules than the model's training data")


BOND_BINS = 60


def bin_edges_from_centres(centres) -> np.ndarray:
    c = np.asarray(centres, dtype=float)
    w = c[1] - c[0]
    return np.append(c - 0.5 * w, c[-1] + 0.5 * w)


def distance_distributions(positions, cells, pairs, types, edges: dict | None = None):
    """Histogram (probability density per Å) of the distance of every intramolecular pair type on the frames and
    on their two halves (the noise floor): a table with columns type, r_A, p, p_first_half, p_second_half.
    ``edges`` (type → bin edges): the bins of a reference table to compare with; by default r₀ ± 6 std in
    BOND_BINS bins of these frames."""
    import pandas as pd

    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    r = pair_distances(positions, cells, pairs)
    n = len(r)
    tables = []
    for t in dict.fromkeys(types):
        sel = np.array([x == t for x in types])
        x = r[:, sel]
        bins = (edges[t] if edges is not None else
                np.linspace(x.mean() - 6 * x.std(), x.mean() + 6 * x.std(), BOND_BINS + 1))

        def hist(v):
            h, _ = np.histogram(v.ravel(), bins=bins)
            return h / max(1, len(v.ravel())) / np.diff(bins)  # outside the bins counts as missing probability

        tables.append(pd.DataFrame({"type": t, "r_A": 0.5 * (bins[1:] + bins[:-1]), "p": hist(x),
                                    "p_first_half": hist(x[: n // 2]), "p_second_half": hist(x[n // 2:])}))
    if not tables:
        return pd.DataFrame(columns=["type", "r_A", "p", "p_first_half", "p_second_half"])
    return pd.concat(tables, ignore_index=True)


def scale_molecules(positions, masses, residue_index, factor, edges=None) -> np.ndarray:
    """Bead positions (N, 3) or (F, N, 3) with every molecule's centre of mass scaled by ``factor`` (scalar or
    (3,)) and its shape kept: what OpenMM's MonteCarloBarostat does to molecules, and the volume derivative of
    the molecular pressure. ``edges`` (3,) or (F, 3): the box before scaling, to make molecules whole (minimum
    image to their first bead) first. One-bead molecules: plain scaling."""
    positions = np.asarray(positions, dtype=np.float64)
    factor = np.asarray(factor, dtype=np.float64)
    if not has_multibead_molecules(residue_index):
        return positions * factor
    single = positions.ndim == 2
    pos = positions[None] if single else positions
    res = np.asarray(residue_index)
    _, first = np.unique(res, return_index=True)
    first_of_bead = first[np.searchsorted(np.unique(res), res)]
    d = pos - pos[:, first_of_bead]
    if edges is not None:
        e = np.asarray(edges, dtype=np.float64).reshape(-1, 1, 3)
        d -= np.round(d / e) * e
    whole = pos[:, first_of_bead] + d
    m = np.asarray(masses, dtype=np.float64)
    n_res = int(res.max()) + 1
    com = np.zeros((len(pos), n_res, 3))
    np.add.at(com, (slice(None), res), whole * m[:, None])
    com /= np.bincount(res, weights=m, minlength=n_res)[None, :, None]
    out = whole + (com * (factor - 1.0))[:, res]
    return out[0] if single else out
