"""What a trained CG network learned, in two analyses with known answers.

1. The effective pair potential (`two_bead_curve`, `pair_curve_features`): the model's energy of two isolated
   beads as a function of their distance r, in a cubic box large enough that neither bead sees a periodic image of
   itself or of the other (edge > 2 × the model's range + a margin), with the prior included (the model's energy)
   and without it (the network alone). Energies are relative to the same two beads beyond the model's range (a
   HIP-NN-TS energy holds per-bead terms that do not depend on r), so U(r) = 0 at and beyond the cutoff, as an
   MS-CG pair energy. The pair force f(r) = −dU/dr (> 0 repulsive, the MS-CG sign) comes from the model's forces
   on the two beads projected on their separation, not from differencing U.
   `pair_force_rms_difference` compares it with another pair force (an MS-CG model's table) over a given range.

2. The pair projection of a force field in the liquid (`pair_projection`, `network_pair_projection`): the best
   central pair force, on the MS-CG kind's own B-spline basis and least squares (`cgtransfer.kinds.mscg`: the
   same `SplineBasis`, `frame_system`, `NormalEquations`, `solve_regularised`), fitted to given forces on mapped
   frames, e.g. the network's own predicted forces. R² = 1 − Σ|F − F_pair|² / Σ|F|² (sums over every force
   component of every frame; the mean force on a bead is zero, so Σ|F|² is the force's variance) is the share of
   the force a pair potential can represent; 1 − R² is the many-body share no pair potential can represent.

Model units throughout: Å, kcal/mol, kcal/mol/Å. The network kinds are imported lazily, as in the registry, so
loading this module loads neither torch nor hippynn.
"""

from __future__ import annotations

import math

import numpy as np

from cgtransfer.kinds.base import CGModel

#: default margin (Å) of the two-bead box: its edge is 2 × (the model's range + margin)
BOX_MARGIN_A = 5.0


# ------------------------------------------------------------------ 1. the effective pair potential
def two_bead_frames(r_A, edge_A: float, direction=(1.0, 0.0, 0.0), centre_A=None):
    """Positions (B, 2, 3) Å of two beads at distances ``r_A`` (B,) along the unit ``direction``, symmetric about
    ``centre_A`` (default: the box centre), and the cubic cells (B, 3, 3) of edge ``edge_A``."""
    r = np.asarray(r_A, dtype=np.float64).reshape(-1)
    u = np.asarray(direction, dtype=np.float64)
    u = u / np.linalg.norm(u)
    c = np.full(3, 0.5 * edge_A) if centre_A is None else np.asarray(centre_A, dtype=np.float64)
    pos = np.stack([c - 0.5 * r[:, None] * u, c + 0.5 * r[:, None] * u], axis=1)
    cells = np.broadcast_to(np.eye(3) * float(edge_A), (len(r), 3, 3)).copy()
    return pos, cells


def two_bead_box_edge(range_A: float, margin_A: float = BOX_MARGIN_A) -> float:
    """The default box edge of the two-bead analysis: 2 × the model's range + 2 × margin."""
    return 2.0 * float(range_A) + 2.0 * float(margin_A)


def two_bead_curve(model: CGModel, r_A, types=(1, 1), temperature_K=None, edge_A: float | None = None,
                   direction=(1.0, 0.0, 0.0), centre_A=None, r_far_A: float | None = None, double: bool = True,
                   batch_size: int = 64) -> dict:
    """The model's energy and pair force of two isolated beads of species ``types`` (1-based) at distances
    ``r_A`` (Å), with the prior (``energy``, ``force``) and without it (``network_energy``, ``network_force``).

    Energies are relative to the beads at ``r_far_A`` (default: the model's range + 2 Å, where nothing acts);
    ``*_far`` hold the raw energies there. Forces: f(r) = (F₂ − F₁)·u / 2 with u the unit vector from bead 1 to
    bead 2 (= −dE/dr, > 0 repulsive). ``edge_A`` (default `two_bead_box_edge`) must exceed r + range for every r
    (and r_far), so that no periodic image interacts. ``double``: evaluate in float64 (a float32 energy difference
    would carry rounding of ~1e-6 of the per-bead energies). Network kinds only (kind hipnn, hipnn_t): a pairwise
    kind's pair force is its table. A model of several beads per molecule is evaluated with the two beads in
    different molecules (an intermolecular pair)."""
    from cgtransfer.kinds.hipnn_force import ModelEvaluator

    if model.kind not in ("hipnn", "hipnn_t"):
        raise ValueError(f"two-bead curves are for the network kinds (hipnn, hipnn_t); a {model.kind} model's pair "
                         "force is its pair table")
    rc = model.interaction_range_A
    r = np.asarray(r_A, dtype=np.float64).reshape(-1)
    r_far = rc + 2.0 if r_far_A is None else float(r_far_A)
    if r_far <= rc:
        raise ValueError(f"the far reference distance {r_far} Å must lie beyond the model's range {rc} Å")
    edge = two_bead_box_edge(rc) if edge_A is None else float(edge_A)
    r_max = max(float(r.max()), r_far)
    if edge - r_max <= rc:
        raise ValueError(f"two-bead box edge {edge} Å too small: the periodic image of a pair at {r_max:.2f} Å lies "
                         f"{edge - r_max:.2f} Å away, within the model's range {rc} Å (need edge > {r_max + rc:.2f} Å)")
    if np.any(r <= 0):
        raise ValueError("two-bead distances must be positive")
    n_types = len(model.bead_types)
    if not all(1 <= int(t) <= n_types for t in types) or len(types) != 2:
        raise ValueError(f"types {types}: two species numbers in 1..{n_types} (the model's bead types "
                         f"{model.bead_types})")
    u = np.asarray(direction, dtype=np.float64)
    u = u / np.linalg.norm(u)
    out = {"r_A": r, "types": [int(t) for t in types], "pair": f"{model.bead_types[types[0] - 1]}-"
           f"{model.bead_types[types[1] - 1]}", "edge_A": edge, "r_far_A": r_far, "range_A": rc}
    for prior, key in ((True, ""), (False, "network_")):
        ev = ModelEvaluator(model.directory, device=getattr(model, "device", "cpu"), include_prior=prior)
        if ev.molecule is not None:  # several beads per molecule: the two beads are two molecules
            ev.molecule = np.array([0, 1], dtype=np.int64)
        if double:
            ev.in_double_precision()
        rr = np.append(r, r_far)
        energy, force = np.empty(len(rr)), np.empty(len(rr))
        for s in range(0, len(rr), batch_size):
            part = rr[s:s + batch_size]
            pos, cells = two_bead_frames(part, edge, u, centre_A)
            species = np.broadcast_to(np.asarray(types, dtype=np.int64), (len(part), 2))
            e, f = ev(species, pos, cells, temperature_K)
            energy[s:s + len(part)] = e
            force[s:s + len(part)] = 0.5 * (f[:, 1] - f[:, 0]) @ u
        out[f"{key}energy_far_kcal_mol"] = float(energy[-1])
        out[f"{key}energy_kcal_mol"] = energy[:-1] - energy[-1]
        out[f"{key}force_kcal_mol_A"] = force[:-1]
    out["prior_energy_kcal_mol"] = out["energy_kcal_mol"] - out["network_energy_kcal_mol"]
    return out


def _crossings(x, y, rising: bool):
    """Linearly interpolated x where y changes sign upwards (``rising``) or downwards between neighbouring grid
    points, in order of x (a curve that only reaches 0, as a force at the cutoff, does not cross)."""
    y0, y1 = y[:-1], y[1:]
    idx = np.nonzero((y0 < 0) & (y1 > 0) if rising else (y0 > 0) & (y1 < 0))[0]
    return [float(x[k] - y0[k] * (x[k + 1] - x[k]) / (y1[k] - y0[k])) for k in idx]


def pair_curve_features(r_A, energy, force=None) -> dict:
    """Features of a pair curve U(r) (zero at the cutoff), f(r) = −dU/dr (> 0 repulsive), on an increasing grid:

    * ``well_position_A``, ``well_depth_kcal_mol``: the global minimum of U (a parabola through the lowest grid
      point and its neighbours refines it); depth = U there (< 0). A curve that never falls below zero (beyond
      rounding: 1e-9 of max |U|) has no well: position None, depth 0.
    * ``contact_A``: the contact distance, the innermost distance where the pair force crosses zero going
      outwards from repulsive to attractive (f goes from > 0 to < 0): where two beads pushed together first come
      to rest, the first local minimum of U (the well itself for one well, a shoulder before it otherwise).
      ``contact_energy_kcal_mol``: U there. None if f never turns attractive.
    * ``zero_crossing_A``: the repulsive core's edge, where U rises above 0 going inwards from the well (the
      σ of a Lennard-Jones pair); None without a well or if U stays negative down to the grid's start.
    * ``n_force_zeros``: how many times f crosses zero from repulsive to attractive (1 for a single well).
    """
    r = np.asarray(r_A, dtype=np.float64)
    u = np.asarray(energy, dtype=np.float64)
    f = -np.gradient(u, r) if force is None else np.asarray(force, dtype=np.float64)
    k = int(np.argmin(u))
    pos, depth = float(r[k]), float(u[k])
    if depth >= -1e-9 * float(np.abs(u).max()):  # purely repulsive: no well
        pos, depth, k = None, 0.0, 0
    elif 0 < k < len(r) - 1:  # parabola through the three grid points around the minimum
        x, y = r[k - 1:k + 2], u[k - 1:k + 2]
        a, b, c = np.polyfit(x, y, 2)
        if a > 0:
            xm = -b / (2 * a)
            if x[0] <= xm <= x[2]:
                pos, depth = float(xm), float(c - b * b / (4 * a))
    down = _crossings(r, f, rising=False)
    contact = down[0] if down else None
    zero = None
    repulsive = np.nonzero(u[:k] >= 0)[0]  # grid points inside the well with U >= 0
    if len(repulsive):
        j = int(repulsive[-1])  # the outermost: U crosses 0 between r[j] and r[j + 1]
        zero = float(r[j] - u[j] * (r[j + 1] - r[j]) / (u[j + 1] - u[j]))
    return {"well_position_A": pos, "well_depth_kcal_mol": depth, "contact_A": contact,
            "contact_energy_kcal_mol": None if contact is None else float(np.interp(contact, r, u)),
            "zero_crossing_A": zero, "n_force_zeros": len(down)}


def pair_force_rms_difference(r_A, force, reference_force, r_min_A: float, r_max_A: float, weights=None) -> dict:
    """RMS difference of a pair force ``force`` (on the grid ``r_A``) to ``reference_force`` (a callable of r,
    e.g. an MS-CG `PairForce.force`, or an array on the same grid) over r_min ≤ r ≤ r_max (grid points, equally
    weighted: use a uniform grid; or weighted by ``weights`` on the grid, e.g. `pair_distance_counts`: the RMS
    over the pairs a liquid samples). ``relative``: divided by the reference's RMS over the range."""
    r = np.asarray(r_A, dtype=np.float64)
    f = np.asarray(force, dtype=np.float64)
    ref = np.asarray(reference_force(r) if callable(reference_force) else reference_force, dtype=np.float64)
    sel = (r >= r_min_A) & (r <= r_max_A)
    if sel.sum() < 2:
        raise ValueError(f"fewer than two grid points in [{r_min_A}, {r_max_A}] Å")
    w = np.ones(len(r)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w[sel].sum() <= 0:
        raise ValueError(f"no weight in [{r_min_A}, {r_max_A}] Å")
    rms = float(np.sqrt(np.average((f[sel] - ref[sel]) ** 2, weights=w[sel])))
    ref_rms = float(np.sqrt(np.average(ref[sel] ** 2, weights=w[sel])))
    return {"rms_kcal_mol_A": rms, "reference_rms_kcal_mol_A": ref_rms,
            "relative": rms / ref_rms if ref_rms > 0 else math.inf, "r_min_A": float(r_min_A),
            "r_max_A": float(r_max_A), "n_points": int(sel.sum())}


def mscg_pair_force(mscg_model: CGModel, types=(1, 1)):
    """The fitted pair force (a `PairForce`: ``.force(r)``, ``.energy(r)``) of an MS-CG model for ``types``."""
    if mscg_model.kind != "mscg":
        raise ValueError(f"a {mscg_model.kind} model has no pair table (only the mscg kind)")
    a, b = sorted(int(t) for t in types)
    for pf in mscg_model.pairs:
        if tuple(sorted(pf.types)) == (a, b):
            return pf
    raise ValueError(f"the MS-CG model at {mscg_model.directory} has no pair of species {types}")


# ------------------------------------------------------------------ 2. the pair projection in the liquid
def pair_projection(species, positions, cells, forces, bead_types: list, cutoff_A: float, knot_spacing_A: float = 0.1,
                    spline_degree: int = 3, regularization=1e-8, molecule=None, cv_folds: int = 0,
                    r_wall_A: dict | None = None, selection_tolerance: float = 0.001) -> dict:
    """The best central pair force (MS-CG basis and least squares, `cgtransfer.kinds.mscg`) to ``forces``
    (F, N, 3) kcal/mol/Å on frames ``species`` (F, N) 1-based, ``positions`` (F, N, 3) Å, orthorhombic ``cells``
    (F, 3, 3) Å, and the share of the forces it explains.

    Per type pair the basis spans [r_w, cutoff] with r_w the closest distance the frames sample (rounded down to
    0.01 Å, as the MS-CG fit), so no pair falls below it; ``regularization``: the P-spline smoothness weight λ
    (small: a projection, not a model to run), or a list of candidates chosen from as the MS-CG kind does (needs
    ``cv_folds`` ≥ 2: the largest λ whose cross-validated RMSE is within ``selection_tolerance`` of the lowest;
    for a noisy target, such as mapped forces on few frames, where the least-squares limit overfits). Returns ``r2`` = 1 − Σ|F − F_pair|² / Σ|F|² over every component
    (in-sample: the projection), ``many_body_share`` = 1 − r2, the RMS of F and of the residual, the fitted
    ``pair_forces`` (name → `PairForce`) and, with ``cv_folds`` ≥ 2, ``cv_r2``: the R² of fits without each of
    ``cv_folds`` contiguous blocks of frames evaluated on that block (a check that the basis does not overfit).
    ``molecule`` (F, N) or (N,): pairs inside one molecule are left out (forces then nonbonded)."""
    from cgtransfer.kinds.mscg import (NormalEquations, PairForce, SplineBasis, cross_validated_rmse, frame_pairs,
                                       frame_system, solve_regularised, type_pairs)

    species = np.asarray(species)
    positions = np.asarray(positions, dtype=np.float64)
    forces = np.asarray(forces, dtype=np.float64)
    boxes = np.asarray(cells, dtype=np.float64)[:, [0, 1, 2], [0, 1, 2]]
    n_frames = len(positions)
    if molecule is not None:
        molecule = np.broadcast_to(np.asarray(molecule), species.shape)
    if cutoff_A >= 0.5 * boxes.min():
        raise ValueError(f"pair projection cutoff {cutoff_A} Å must be below half the smallest box edge "
                         f"({0.5 * boxes.min():.2f} Å)")
    pairs = type_pairs(list(bead_types))
    n_types = len(bead_types)
    pair_of = np.full((n_types + 1, n_types + 1), -1, dtype=np.int64)
    for k, (a, b, _) in enumerate(pairs):
        pair_of[a, b] = pair_of[b, a] = k
    if r_wall_A is None:
        r_min = {name: math.inf for _, _, name in pairs}
        for f in range(n_frames):
            i, j, _, r = frame_pairs(positions[f], boxes[f], cutoff_A, None if molecule is None else molecule[f])
            tp = pair_of[species[f][i], species[f][j]]
            for k, (_, _, name) in enumerate(pairs):
                if np.any(tp == k):
                    r_min[name] = min(r_min[name], float(r[tp == k].min()))
        missing = [name for name, x in r_min.items() if not np.isfinite(x)]
        if missing:
            raise ValueError(f"the frames never sample bead-type pair(s) {missing} within {cutoff_A} Å")
        r_wall_A = {name: math.floor(100.0 * x) / 100.0 for name, x in r_min.items()}
    basis = SplineBasis(pairs, r_wall_A, cutoff_A, knot_spacing_A, spline_degree)
    wall = {"force": 0.0, "decay": 1.0}  # no wall: every sampled pair lies in the basis range
    stats = {name: {"n_pairs": 0, "n_below_wall": 0, "r_min_A": math.inf,
                    "basis_samples": np.zeros(basis.n_free[name], dtype=np.int64)} for _, _, name in pairs}
    total = NormalEquations(basis.n_coefficients)
    n_folds = int(cv_folds)
    fold_of = np.zeros(n_frames, dtype=np.int64)
    if n_folds >= 2:
        if n_frames < n_folds:
            raise ValueError(f"{n_frames} frames, fewer than cv_folds = {n_folds}")
        for k, chunk in enumerate(np.array_split(np.arange(n_frames), n_folds)):
            fold_of[chunk] = k
    folds = [NormalEquations(basis.n_coefficients) for _ in range(max(n_folds, 1))]
    for f in range(n_frames):
        A, y = frame_system(basis, pair_of, wall, species[f], positions[f], boxes[f], forces[f], stats,
                            None if molecule is None else molecule[f])
        total.add(A, y)
        if n_folds >= 2:
            folds[fold_of[f]].add(A, y)
    penalty = basis.penalty()
    candidates = [float(x) for x in np.atleast_1d(regularization)]
    cv_by_lambda = {}
    if len(candidates) > 1:
        if n_folds < 2:
            raise ValueError("choosing the regularization among several candidates needs cv_folds >= 2")
        cv_by_lambda = {lam: cross_validated_rmse(folds, penalty, lam) for lam in candidates}
        best = min(cv_by_lambda.values())
        regularization = max(lam for lam, rms in cv_by_lambda.items() if rms <= (1.0 + selection_tolerance) * best)
    regularization = float(candidates[0] if len(candidates) == 1 else regularization)
    coef = solve_regularised(total, penalty, float(regularization))
    residual_rms = total.rmse(coef)
    force_ms = total.yy / total.n
    r2 = 1.0 - residual_rms**2 / force_ms
    pair_forces = {}
    for a, b, name in pairs:
        c = coef[basis.offsets[name]: basis.offsets[name] + basis.n_free[name]]
        pair_forces[name] = PairForce(name, (a, b), r_wall_A[name], float(cutoff_A), basis.knots[name], basis.degree,
                                      np.append(c, 0.0), 0.0, 1.0)
    out = {"r2": float(r2), "many_body_share": float(1.0 - r2), "force_rms_kcal_mol_A": math.sqrt(force_ms),
           "residual_rms_kcal_mol_A": float(residual_rms), "n_frames": int(n_frames),
           "n_components": int(total.n), "n_coefficients": int(basis.n_coefficients), "cutoff_A": float(cutoff_A),
           "knot_spacing_A": float(knot_spacing_A), "regularization": float(regularization),
           "r_wall_A": dict(r_wall_A), "pair_forces": pair_forces,
           "n_pairs": {name: int(s["n_pairs"]) for name, s in stats.items()}}
    if n_folds >= 2:
        cv_rms = cv_by_lambda.get(regularization) or cross_validated_rmse(folds, penalty, float(regularization))
        out.update({"cv_folds": n_folds, "cv_r2": float(1.0 - cv_rms**2 / force_ms)})
        if cv_by_lambda:
            out["cv_r2_by_regularization"] = {lam: float(1.0 - rms**2 / force_ms) for lam, rms in cv_by_lambda.items()}
    return out


def network_pair_projection(model: CGModel, data: dict, frames=None, cutoff_A: float | None = None,
                            temperature_K=None, include_prior: bool = True, **kwargs) -> dict:
    """`pair_projection` of a model's own predicted nonbonded forces on mapped frames of ``data`` (a dataset:
    species, positions, cells, bead_types; ``frames``: indices, default all). ``include_prior``: the model's
    forces (True) or the network alone (False; network kinds only; the prior is a pair force, so the residual
    is the same and only the share changes). ``cutoff_A``: default the model's range (the network sees no pair
    beyond it). The forces the projection saw are returned under ``forces_kcal_mol_A`` (F, N, 3)."""
    model.check_data(data, "pair projection")
    frames = np.arange(len(data["positions"])) if frames is None else np.asarray(frames)
    species, positions, cells = data["species"][frames], data["positions"][frames], data["cells"][frames]
    molecule = np.asarray(model.bonded["molecule_of_bead"]) if model.bonded else None
    if include_prior:
        parts = [model.predict_nonbonded(species[s:s + 8], positions[s:s + 8], cells[s:s + 8], temperature_K)[1]
                 for s in range(0, len(frames), 8)]
    else:
        if model.kind not in ("hipnn", "hipnn_t"):
            raise ValueError(f"include_prior=False is for the network kinds; a {model.kind} model has no prior")
        from cgtransfer.kinds.hipnn_force import ModelEvaluator

        ev = ModelEvaluator(model.directory, device=getattr(model, "device", "cpu"), include_prior=False)
        parts = [ev(species[s:s + 8], positions[s:s + 8], cells[s:s + 8], temperature_K)[1]
                 for s in range(0, len(frames), 8)]
    forces = np.concatenate(parts)
    rc = model.interaction_range_A if cutoff_A is None else float(cutoff_A)
    out = pair_projection(species, positions, cells, forces, list(model.bead_types), rc, molecule=molecule, **kwargs)
    out.update({"include_prior": bool(include_prior), "forces_kcal_mol_A": forces})
    return out



def pair_forces_on_frames(pair_forces: dict, bead_types: list, species, positions, cells, molecule=None):
    """Forces (F, N, 3) kcal/mol/Å of central pair forces ``pair_forces`` (name "A-B" → `PairForce`, e.g. the
    ``pair_forces`` of `pair_projection`) on frames: what that pair model predicts, to score it on frames it was
    not fitted on. ``molecule`` (N,): pairs inside one molecule are left out, as in the fit."""
    from cgtransfer.kinds.mscg import frame_pairs, type_pairs

    species = np.asarray(species)
    positions = np.asarray(positions, dtype=np.float64)
    boxes = np.asarray(cells, dtype=np.float64)[:, [0, 1, 2], [0, 1, 2]]
    pairs = type_pairs(list(bead_types))
    n_types = len(bead_types)
    pair_of = np.full((n_types + 1, n_types + 1), -1, dtype=np.int64)
    for k, (a, b, _) in enumerate(pairs):
        pair_of[a, b] = pair_of[b, a] = k
    cutoff = max(pf.cutoff for pf in pair_forces.values())
    out = np.zeros(positions.shape)
    for f in range(len(positions)):
        i, j, vec, r = frame_pairs(positions[f], boxes[f], cutoff, molecule)
        tp = pair_of[species[f][i], species[f][j]]
        fr = np.zeros(len(r))
        for k, (_, _, name) in enumerate(pairs):
            sel = tp == k
            if np.any(sel) and name in pair_forces:
                fr[sel] = pair_forces[name].force(r[sel])
        fij = (fr / r)[:, None] * vec
        np.add.at(out[f], i, fij)
        np.add.at(out[f], j, -fij)
    return out


def pair_distance_counts(species, positions, cells, bead_types: list, r_grid_A, cutoff_A: float,
                         molecule=None) -> dict:
    """How many bead pairs of each type pair (name "A-B" → counts on ``r_grid_A``, each pair at its nearest grid
    point) the frames hold within the cutoff: weights for `pair_force_rms_difference` over the liquid's pairs."""
    from cgtransfer.kinds.mscg import frame_pairs, type_pairs

    r_grid = np.asarray(r_grid_A, dtype=np.float64)
    edges = np.concatenate([[-np.inf], 0.5 * (r_grid[1:] + r_grid[:-1]), [np.inf]])
    species = np.asarray(species)
    boxes = np.asarray(cells, dtype=np.float64)[:, [0, 1, 2], [0, 1, 2]]
    pairs = type_pairs(list(bead_types))
    out = {name: np.zeros(len(r_grid)) for _, _, name in pairs}
    for f in range(len(species)):
        i, j, _, r = frame_pairs(np.asarray(positions[f], dtype=np.float64), boxes[f], cutoff_A, molecule)
        si, sj = species[f][i], species[f][j]
        for a, b, name in pairs:
            sel = ((si == a) & (sj == b)) | ((si == b) & (sj == a))
            out[name] += np.histogram(r[sel], bins=edges)[0]
    return out


def force_r2(predicted, reference) -> float:
    """R² = 1 − Σ|F_ref − F_pred|² / Σ|F_ref|² over every component (the mean force on a bead is zero, so
    Σ|F|² is the force's variance): the share of the reference force a model explains (1 perfect, 0 none, < 0 worse
    than predicting no force)."""
    ref = np.asarray(reference, dtype=np.float64)
    pred = np.asarray(predicted, dtype=np.float64)
    return float(1.0 - np.sum((ref - pred) ** 2) / np.sum(ref**2))


# ------------------------------------------------------------------ 3. the three-body energy of a triplet
def three_body_energy(model: CGModel, r_A: float, angles_deg, types=(1, 1, 1), temperature_K=None,
                      margin_A: float = BOX_MARGIN_A, double: bool = True) -> dict:
    """The model's three-body energy of an isolated triplet: bead i with j and k at distance ``r_A`` from it and
    angle θ_jik = ``angles_deg``, ΔE₃(θ) = E(ijk) − E(ij) − E(ik) − E(jk) with every energy relative to the
    beads far apart (what a pair potential, whatever it is, leaves as exactly 0).

    Every energy is evaluated on three beads (of species ``types``, 1-based) in one cubic box, a bead "left out"
    being moved beyond the model's range from the others and their images: E(ij) is the frame with k far away,
    and ΔE₃ = E(ijk) − E(ij·) − E(i·k) − E(·jk) + 2 E(···). Returns ``angle_deg``, ``r_jk_A``,
    ``three_body_kcal_mol`` and ``pair_sum_kcal_mol`` = ΔE(ij) + ΔE(ik) + ΔE(jk) (the pair part, for scale).
    Network kinds only; the prior (a pair energy) cancels exactly. Several beads per molecule: the three beads
    are three molecules."""
    from cgtransfer.kinds.hipnn_force import ModelEvaluator

    if model.kind not in ("hipnn", "hipnn_t"):
        raise ValueError(f"three-body energies are for the network kinds; a {model.kind} model is pairwise (0)")
    rc = model.interaction_range_A
    r = float(r_A)
    theta = np.radians(np.asarray(angles_deg, dtype=np.float64).reshape(-1))
    edge = 2.0 * (rc + r + margin_A)  # a far bead sits ≥ edge/2 − r > rc from the others and their images
    c = np.full(3, 0.5 * edge)
    far = [c + 0.5 * edge * np.array(v) for v in ((1, 1, 1), (1, 0, 0), (0, 1, 0))]
    n = len(theta)
    pi = np.broadcast_to(c, (n, 3))
    pj = c + r * np.stack([np.ones(n), np.zeros(n), np.zeros(n)], axis=1)
    pk = c + r * np.stack([np.cos(theta), np.sin(theta), np.zeros(n)], axis=1)
    f0 = np.broadcast_to(far[0], (n, 3))
    frames = np.concatenate([np.stack(x, axis=1) for x in ((pi, pj, pk), (pi, pj, f0), (pi, f0, pk), (f0, pj, pk))]
                            + [np.stack(far)[None]])
    ev = ModelEvaluator(model.directory, device=getattr(model, "device", "cpu"), include_prior=True)
    if ev.molecule is not None:
        ev.molecule = np.array([0, 1, 2], dtype=np.int64)
    if double:
        ev.in_double_precision()
    species = np.tile(np.asarray(types, dtype=np.int64), (len(frames), 1))
    cells = np.tile(np.eye(3) * edge, (len(frames), 1, 1))
    energy = np.concatenate([ev(species[s:s + 64], frames[s:s + 64], cells[s:s + 64], temperature_K)[0]
                             for s in range(0, len(frames), 64)])
    e_ijk, e_ij, e_ik, e_jk = (energy[q * n:(q + 1) * n] for q in range(4))
    e_far = energy[-1]
    return {"angle_deg": np.degrees(theta), "r_A": r, "r_jk_A": 2.0 * r * np.sin(0.5 * theta),
            "types": [int(t) for t in types], "edge_A": edge,
            "three_body_kcal_mol": e_ijk - e_ij - e_ik - e_jk + 2.0 * e_far,
            "pair_sum_kcal_mol": e_ij + e_ik + e_jk - 3.0 * e_far}


# ------------------------------------------------------------------ 4. the energy hierarchy
def energy_hierarchy(model: CGModel, data: dict, frames=None, temperature_K=None, batch_size: int = 8) -> dict:
    """hippynn's own per-interaction-layer energy terms of the model's energy head(s) on frames of ``data``,
    read from the ``HEnergy`` node's outputs (``energy_terms``: the cumulative sums of the layer terms, layer 0
    the non-interacting one-hot species term; ``mol_hier``: its hierarchicality Σ_l Σ E_l² / Σ (E_l² + E_{l−1}²)
    per frame), and of ``HEntropy`` for a temperature-aware model. Per head: ``layer_terms`` (F, L) kcal/mol
    (the differences of the cumulative sums, each frame's sum over beads) and ``hierarchicality`` (F,)."""
    import torch
    from hippynn.graphs import GraphModule

    from cgtransfer.kinds.hipnn_force import ModelEvaluator

    if model.kind not in ("hipnn", "hipnn_t"):
        raise ValueError(f"an energy hierarchy is for the network kinds, not {model.kind}")
    ev = ModelEvaluator(model.directory, device=getattr(model, "device", "cpu"), include_prior=True)
    anchor = ev._inputs[0]
    heads = ["HEnergy"] + (["HEntropy"] if ev.temperature_aware else [])
    outputs = []
    for name in heads:
        node = anchor.find_unique_relative(lambda n, name=name: n.name == name)
        outputs += [node.energy_terms, node.mol_hier]
    module = GraphModule(ev._inputs, outputs).to(ev.device)
    module.eval()
    frames = np.arange(len(data["positions"])) if frames is None else np.asarray(frames)
    parts = {name: ([], []) for name in heads}
    for s in range(0, len(frames), batch_size):
        f = frames[s:s + batch_size]
        with torch.no_grad():
            out = module(*ev._tensors(data["species"][f], data["positions"][f], data["cells"][f], temperature_K))
        for h, name in enumerate(heads):
            terms, hier = out[2 * h], out[2 * h + 1]
            cumulative = np.stack([t.detach().cpu().numpy().reshape(-1) for t in terms], axis=1)
            parts[name][0].append(np.diff(cumulative, axis=1, prepend=0.0))
            parts[name][1].append(hier.detach().cpu().numpy().reshape(-1))
    return {name: {"layer_terms_kcal_mol": np.concatenate(t), "hierarchicality": np.concatenate(hh)}
            for name, (t, hh) in parts.items()}
