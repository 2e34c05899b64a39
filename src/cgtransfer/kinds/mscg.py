"""Model kind ``mscg``: the pairwise force-matched CG model (multiscale coarse-graining, MS-CG; Izvekov & Voth,
J. Phys. Chem. B 109, 2469 (2005); Noid et al., J. Chem. Phys. 128, 244114 (2008)) — the classic baseline that
VOTCA, OpenMSCG and BOCS build and LAMMPS runs from tables.

Force on bead i: F_i = sum_j f_t(r_ij) (r_i - r_j) / r_ij, one central pair force f_t per bead-type pair t
(f > 0 repulsive), zero beyond the cutoff r_c.

* r_w <= r <= r_c: f_t(r) = sum_k c_k B_k(r), clamped B-splines on uniform knots (scipy
  ``BSpline.design_matrix``). The last basis function is dropped, so f(r_c) = 0: force and energy are continuous
  at the cutoff.
* r < r_w: a repulsive wall f(r) = f(r_w) + p s (exp(a (r_w - r)) - 1), a = ln(1/p)/d, with the HIP-NN-TS
  prior's p, s and d (config ``prior``; s = mean |force| of the data). It is continuous at r_w and adds
  s(1 - p) within d of it. r_w is the closest distance the training frames sample for the pair (rounded down to
  0.01 Å): below the sampled range the data say nothing, and the wall takes over. (Starting it at the reference
  RDF onset instead, as the HIP-NN-TS prior does, was tried: the few pairs sampled below the onset then pull the
  end coefficient towards the steep real force and bias f(r_w) by ~9 % on the LJ known-answer test.)

f(r_w) is linear in the coefficients and the wall increment is fixed, so the model stays linear: a pair below
r_w (only in frames outside the fitted blocks) would enter with the design row B(r_w) and its fixed wall
increment moved to the target.
The fit minimises |A c - F|^2 / n + lambda |D2 c|^2 (D2: second differences of each pair's coefficients, a
P-spline smoothness penalty, Eilers & Marx 1996), with the normal equations accumulated frame by frame over the
training block. lambda is chosen by contiguous time-block cross-validation over the training and validation
blocks (``mscg.cv_folds`` folds; each fold is one contiguous stretch of every training state's frames, so
correlated neighbouring frames stay on one side): the largest candidate of ``mscg.regularization`` whose
cross-validated force RMSE is within ``mscg.selection_tolerance`` (relative) of the lowest, i.e. the smoothest
fit the held-out data cannot tell from the best one (with plenty of data the curve is flat at small lambda and
plain argmin would pick the roughest fit). The final coefficients are fitted on the training block and the
validation block's RMSE is reported beside the cross-validated one. (Choosing lambda on the validation block
alone, 2 frames per state in the test config, was noise: the chosen lambda moved by two decades between
machines and the too-smooth fits lost the hydrogen-bond contact shoulder of methanol.) The scan is the model's
fitting curve.
Energy U(r) = integral of f from r to r_c (zero at the cutoff): exact for the spline (``BSpline.antiderivative``),
analytic for the wall.

In OpenMM the model is native: one ``CustomNonbondedForce``, energy
``U_spline(max(r, r_w)) + step(r_w - r) * wall(r_w - r)`` with U_spline written out as its quartic polynomial on
each knot interval (``PairForce.openmm_energy_expression``: exact, and compiled with the rest of the expression,
where a ``Continuous1DFunction`` table is called per pair outside it: that made the step 1.8x slower, speed.json).
With several bead types, one such term per type pair in the same force, each times a delta selector on the
per-particle bead types (one neighbour list; interaction groups would be simpler but OpenMM's CPU platform
evaluates them without its neighbour list). No Python callback per step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.linalg
from scipy import sparse
from scipy.interpolate import BSpline

from cgtransfer import units
from cgtransfer.kinds.base import CGModel, TrainingData, read_info


class MSCGFitError(ValueError):
    """The training data cannot determine the MS-CG model as configured (the message names model and pair)."""


def type_pairs(bead_types: list[str]) -> list[tuple[int, int, str]]:
    """(species a, species b, name) for every unordered bead-type pair, named as the reference RDFs ("A-B")."""
    return [(i + 1, j + 1, f"{a}-{b}") for i, a in enumerate(bead_types) for j, b in enumerate(bead_types) if j >= i]


def frame_pairs(positions_A: np.ndarray, box_A: np.ndarray, cutoff_A: float, molecule=None):
    """Bead pairs i < j closer than the cutoff (minimum image, MDAnalysis): i, j, r_i - r_j (Å), distance (Å).
    With ``molecule`` (per bead) pairs inside one molecule are left out (the bonded prior's, cgtransfer.bonded)."""
    from MDAnalysis.lib.distances import minimize_vectors, self_capped_distance

    pos = np.asarray(positions_A, dtype=np.float64)
    dims = np.array([*np.asarray(box_A, dtype=np.float64), 90.0, 90.0, 90.0])
    pairs, dist = self_capped_distance(pos, cutoff_A, box=dims)
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    keep = dist < cutoff_A
    if molecule is not None:
        keep &= molecule[pairs[:, 0]] != molecule[pairs[:, 1]]
    i, j, dist = pairs[keep, 0], pairs[keep, 1], np.asarray(dist, dtype=np.float64)[keep]
    vec = minimize_vectors(pos[i] - pos[j], dims)
    return i, j, vec, dist


@dataclass
class PairForce:
    """The fitted pair force of one bead-type pair (model units: Å, kcal/mol)."""

    pair: str
    types: tuple[int, int]
    r_wall: float
    cutoff: float
    knots: np.ndarray
    degree: int
    coefficients: np.ndarray  # one per basis function; the last is 0 (f(r_c) = 0)
    wall_force: float  # p·s (kcal/mol/Å)
    wall_decay: float  # a (1/Å)

    def __post_init__(self):
        self.knots = np.asarray(self.knots, dtype=np.float64)
        self.coefficients = np.asarray(self.coefficients, dtype=np.float64)
        self._spline = BSpline(self.knots, self.coefficients, self.degree, extrapolate=False)
        self._antiderivative = self._spline.antiderivative()
        self.force_at_wall = float(self._spline(self.r_wall))

    def force(self, r) -> np.ndarray:
        """Pair force f(r) (kcal/mol/Å, > 0 repulsive)."""
        r = np.asarray(r, dtype=np.float64)
        f = self._spline(np.clip(r, self.r_wall, self.cutoff))
        below = r < self.r_wall
        if np.any(below):
            f = np.where(below, f + self.wall_force * np.expm1(self.wall_decay * np.maximum(self.r_wall - r, 0.0)), f)
        return np.where(r < self.cutoff, f, 0.0)

    def energy(self, r) -> np.ndarray:
        """Pair energy U(r) = integral of f from r to the cutoff (kcal/mol)."""
        r = np.asarray(r, dtype=np.float64)
        x = np.clip(r, self.r_wall, self.cutoff)
        u = self._antiderivative(self.cutoff) - self._antiderivative(x)
        dx = np.maximum(self.r_wall - r, 0.0)
        wall = self.force_at_wall * dx + self.wall_force * (np.expm1(self.wall_decay * dx) / self.wall_decay - dx)
        return np.where(r < self.cutoff, u + wall, 0.0)

    def openmm_energy_expression(self, tag: str = "") -> str:
        """U(r) in OpenMM units (kJ/mol, r in nm) as a Lepton expression: the spline part exactly, as its local
        quartic polynomial on each knot interval (``PPoly.from_spline`` of U; Horner form in r - t_i, the interval
        selected by steps), evaluated at max(r, r_w); plus the wall below r_w. Exact to the platform's float
        rounding, and several times cheaper per pair on OpenMM's CPU platform than a ``Continuous1DFunction``
        table, which is called per pair outside the compiled, vectorised expression (benchmarks/speed.py measures
        both side by side). ``tag`` suffixes the expression's variables (x, rr) so that
        several pairs' expressions can be summed in one force."""
        from scipy.interpolate import PPoly

        pp = PPoly.from_spline(self._antiderivative)
        a_cut = float(self._antiderivative(self.cutoff))
        nm = 1.0 / units.ANGSTROM_PER_NM
        kj = float(units.kcal_to_kj(1.0))
        degree = pp.c.shape[0] - 1
        terms = []
        for i in range(len(pp.x) - 1):
            lo, hi = float(pp.x[i]), float(pp.x[i + 1])
            if hi <= lo or hi <= self.r_wall or lo >= self.cutoff:
                continue
            # U = A(r_c) - A(r); coefficient of (r - t_i)^p in nm and kJ/mol
            coef = [-float(pp.c[degree - p, i]) * kj * units.ANGSTROM_PER_NM ** p for p in range(degree + 1)]
            coef[0] += a_cut * kj
            lo_nm, hi_nm = lo * nm, hi * nm
            d = f"(rr{tag} - {lo_nm!r})"
            horner = repr(coef[-1])
            for c in reversed(coef[:-1]):
                horner = f"({horner}) * {d} + {c!r}"
            window = [f"step(rr{tag} - {lo_nm!r})"] if lo > self.r_wall else []  # rr >= r_w always
            if hi < self.cutoff:
                window.append(f"(1 - step(rr{tag} - {hi_nm!r}))")  # half-open [t_i, t_i+1): one interval at a knot
            terms.append(" * ".join([*window, f"({horner})"]))
        rw_nm = self.r_wall * nm
        fw = float(units.force_model_to_openmm(self.force_at_wall))
        pw = float(units.force_model_to_openmm(self.wall_force))
        decay_nm = self.wall_decay * units.ANGSTROM_PER_NM
        spline = " + ".join(terms) if terms else "0"
        x = f"x{tag}"
        return (f"{spline} + step({x}) * ({fw!r} * {x} + {pw!r} * ((exp({decay_nm!r} * {x}) - 1) / {decay_nm!r} - {x})); "
                f"{x} = {rw_nm!r} - r; rr{tag} = max(r, {rw_nm!r})")

    def zero_force_distance(self) -> float:
        """Where the wall's force turns repulsive when f(r_w) < 0 (else r_w): the closest a pair can comfortably sit."""
        if self.force_at_wall >= 0:
            return self.r_wall
        return self.r_wall - math.log1p(-self.force_at_wall / self.wall_force) / self.wall_decay

    def to_dict(self) -> dict:
        return {"pair": self.pair, "types": list(self.types), "r_wall_A": self.r_wall, "cutoff_A": self.cutoff,
                "knots_A": self.knots.tolist(), "degree": self.degree, "coefficients": self.coefficients.tolist(),
                "wall_force_kcal_mol_A": self.wall_force, "wall_decay_per_A": self.wall_decay}

    @classmethod
    def from_dict(cls, d: dict) -> "PairForce":
        return cls(d["pair"], tuple(d["types"]), d["r_wall_A"], d["cutoff_A"], d["knots_A"], d["degree"],
                   d["coefficients"], d["wall_force_kcal_mol_A"], d["wall_decay_per_A"])


class SplineBasis:
    """Clamped B-splines on uniform knots over [r_w, r_c] per type pair, last function dropped; one block of
    columns per type pair."""

    def __init__(self, pairs: list[tuple[int, int, str]], r_wall: dict, cutoff: float, spacing: float, degree: int):
        self.pairs, self.r_wall, self.cutoff, self.degree = pairs, r_wall, float(cutoff), int(degree)
        self.knots, self.n_free, self.offsets = {}, {}, {}
        offset = 0
        for _, _, name in pairs:
            lo = float(r_wall[name])
            n_intervals = max(1, int(math.ceil((self.cutoff - lo) / spacing - 1e-9)))
            inner = np.linspace(lo, self.cutoff, n_intervals + 1)
            self.knots[name] = np.concatenate([[lo] * self.degree, inner, [self.cutoff] * self.degree])
            self.n_free[name] = n_intervals + self.degree - 1  # n_basis - 1 (the last one, nonzero at r_c, dropped)
            self.offsets[name] = offset
            offset += self.n_free[name]
        self.n_coefficients = offset

    def design(self, name: str, r: np.ndarray):
        x = np.clip(np.asarray(r, dtype=np.float64), self.r_wall[name], self.cutoff)
        d = BSpline.design_matrix(x, self.knots[name], self.degree)
        return sparse.csr_array(d)[:, : self.n_free[name]]

    def penalty(self) -> np.ndarray:
        """Block-diagonal second-difference penalty D2ᵀD2."""
        blocks = []
        for _, _, name in self.pairs:
            n = self.n_free[name]
            d2 = np.diff(np.eye(n), 2, axis=0) if n > 2 else np.zeros((0, n))
            blocks.append(d2.T @ d2)
        return scipy.linalg.block_diag(*blocks)

    def centres(self, name: str) -> np.ndarray:
        """Where each free basis function peaks (approximately: the mean of its knots)."""
        t, k = self.knots[name], self.degree
        return np.array([t[i + 1:i + k + 1].mean() for i in range(self.n_free[name])])


class NormalEquations:
    """Accumulates AᵀA, Aᵀy, yᵀy and the number of force components over frames."""

    def __init__(self, n: int):
        self.G = np.zeros((n, n))
        self.b = np.zeros(n)
        self.yy = 0.0
        self.n = 0

    def add(self, A, y):
        self.G += (A.T @ A).toarray()
        self.b += A.T @ y
        self.yy += float(y @ y)
        self.n += len(y)

    def rmse(self, c: np.ndarray) -> float:
        sse = float(c @ self.G @ c - 2.0 * c @ self.b + self.yy)
        return math.sqrt(max(sse, 0.0) / max(self.n, 1))


def frame_system(basis: SplineBasis, pair_of: np.ndarray, wall: dict, species, positions, box, forces, stats: dict,
                 molecule=None):
    """The linear system of one frame: A (3N × K, sparse) and target y = F - fixed wall increments (3N,),
    component-major (all x, then all y, then all z). ``stats`` collects per-pair sample counts and minima.
    ``molecule``: per bead; pairs inside one molecule are excluded (``forces`` are then the nonbonded forces)."""
    i, j, vec, r = frame_pairs(positions, box, basis.cutoff, molecule)
    n, n_pairs = len(positions), len(r)
    tp = pair_of[species[i], species[j]]
    e = vec / r[:, None]
    rows, cols, vals = [], [], []
    wall_increment = np.zeros(n_pairs)
    for k, (_, _, name) in enumerate(basis.pairs):
        sel = np.nonzero(tp == k)[0]
        if len(sel) == 0:
            continue
        d = basis.design(name, r[sel]).tocoo()
        rows.append(sel[d.row])
        cols.append(d.col + basis.offsets[name])
        vals.append(d.data)
        rw = basis.r_wall[name]
        below = r[sel] < rw
        wall_increment[sel] = np.where(below, wall["force"] * np.expm1(wall["decay"] * np.maximum(rw - r[sel], 0.0)), 0.0)
        s = stats[name]
        s["n_pairs"] += len(sel)
        s["n_below_wall"] += int(below.sum())
        s["r_min_A"] = min(s["r_min_A"], float(r[sel].min()))
        s["basis_samples"] += np.bincount(d.col, minlength=basis.n_free[name])
    D = sparse.csr_array((np.concatenate(vals) if vals else np.zeros(0),
                          (np.concatenate(rows) if rows else np.zeros(0, int),
                           np.concatenate(cols) if cols else np.zeros(0, int))), shape=(n_pairs, basis.n_coefficients))
    incidence = sparse.csr_array((np.r_[np.ones(n_pairs), -np.ones(n_pairs)],
                                  (np.r_[i, j], np.r_[np.arange(n_pairs), np.arange(n_pairs)])), shape=(n, n_pairs))
    A = sparse.vstack([incidence @ sparse.csr_array(D.multiply(e[:, [a]])) for a in range(3)], format="csr")
    fixed = np.concatenate([incidence @ (wall_increment * e[:, a]) for a in range(3)])
    y = np.asarray(forces, dtype=np.float64).T.reshape(-1) - fixed
    return A, y


def solve_regularised(train: NormalEquations, penalty: np.ndarray, lam: float) -> np.ndarray:
    M = train.G / train.n + lam * penalty
    rhs = train.b / train.n
    try:
        c = scipy.linalg.solve(M, rhs, assume_a="pos")
    except (np.linalg.LinAlgError, scipy.linalg.LinAlgError):
        c = scipy.linalg.lstsq(M, rhs)[0]
    if not np.all(np.isfinite(c)):
        c = scipy.linalg.lstsq(M, rhs)[0]
    return c


def cross_validation_folds(data: TrainingData, n_folds: int, label: str) -> dict[int, int]:
    """Frame index → fold: the training and validation frames of each state, in time order, cut into
    ``n_folds`` contiguous stretches (fold k holds the k-th stretch of every state)."""
    frames = np.sort(np.concatenate([data.frames("train"), data.frames("valid")]))
    n_frames = len(data.arrays["positions"])
    state_of = np.asarray(data.frame_state if len(data.frame_state) == n_frames else ["all"] * n_frames)
    fold_of = {}
    for state in dict.fromkeys(state_of[frames]):
        own = frames[state_of[frames] == state]
        if len(own) < n_folds:
            raise MSCGFitError(f"{label}: state {state} has {len(own)} training and validation frames, fewer than "
                               f"mscg.cv_folds = {n_folds}")
        for k, chunk in enumerate(np.array_split(own, n_folds)):
            fold_of.update({int(f): k for f in chunk})
    return fold_of


def cross_validated_rmse(folds: list[NormalEquations], penalty: np.ndarray, lam: float) -> float:
    """Force RMSE of fits without fold k, evaluated on fold k, pooled over the folds."""
    n = folds[0].G.shape[0]
    total = NormalEquations(n)
    for f in folds:
        total.G += f.G
        total.b += f.b
        total.yy += f.yy
        total.n += f.n
    sse = 0.0
    for f in folds:
        rest = NormalEquations(n)
        rest.G, rest.b, rest.yy, rest.n = total.G - f.G, total.b - f.b, total.yy - f.yy, total.n - f.n
        sse += f.rmse(solve_regularised(rest, penalty, lam)) ** 2 * f.n
    return math.sqrt(sse / total.n)


def sampled_range_start(data: TrainingData, pairs, pair_of: np.ndarray, cutoff: float, label: str) -> dict:
    """Per type pair: the closest distance sampled in the train and valid blocks, rounded down to 0.01 Å (where
    the fitted range, and below it the wall, starts). An unsampled pair is an error naming it."""
    r_min = {name: math.inf for _, _, name in pairs}
    arrays = data.arrays
    for f in np.concatenate([data.frames("train"), data.frames("valid")]):
        i, j, _, r = frame_pairs(arrays["positions"][f], np.diag(arrays["cells"][f]), cutoff,
                                 arrays["molecule"][f] if "molecule" in arrays else None)
        tp = pair_of[arrays["species"][f][i], arrays["species"][f][j]]
        for k, (_, _, name) in enumerate(pairs):
            sel = tp == k
            if np.any(sel):
                r_min[name] = min(r_min[name], float(r[sel].min()))
    for name, r in r_min.items():
        if not np.isfinite(r):
            raise MSCGFitError(f"{label}: the training frames never sample bead-type pair {name} within the "
                               f"cutoff {cutoff} Å: its pair force cannot be fitted")
    return {name: math.floor(100.0 * r) / 100.0 for name, r in r_min.items()}


class MSCGModel(CGModel):
    kind = "mscg"

    def __init__(self, directory, info: dict):
        super().__init__(directory, info)
        self.pairs = [PairForce.from_dict(d) for d in info["pairs"]]
        n_types = len(info["bead_types"])
        self.pair_of = np.full((n_types + 1, n_types + 1), -1, dtype=np.int64)
        for k, pf in enumerate(self.pairs):
            a, b = pf.types
            self.pair_of[a, b] = self.pair_of[b, a] = k

    @classmethod
    def load(cls, directory, device: str = "cpu") -> "MSCGModel":
        return cls(directory, read_info(directory))

    @property
    def interaction_range_A(self) -> float:
        return float(self.info["cutoff_A"])

    # ------------------------------------------------------------------ fit
    @classmethod
    def fit(cls, data: TrainingData, settings: dict, out_dir: Path, label: str, seed: int = 0):
        """``settings``: the ``mscg`` config (cutoff_A, knot_spacing_A, spline_degree, regularization,
        table_spacing_A) plus ``prior`` (the wall's p, s, d come from data.prior)."""
        import time

        t0 = time.perf_counter()
        cfg = settings["mscg"]
        cutoff = float(cfg["cutoff_A"])
        arrays = data.arrays
        boxes = arrays["cells"][:, [0, 1, 2], [0, 1, 2]].astype(np.float64)
        if cutoff >= 0.5 * boxes.min():
            raise MSCGFitError(f"{label}: mscg cutoff_A {cutoff} Å must be below half the smallest box edge of the "
                               f"training frames ({0.5 * boxes.min():.2f} Å)")
        pairs = type_pairs(list(data.bead_types))
        n_types = len(data.bead_types)
        pair_of = np.full((n_types + 1, n_types + 1), -1, dtype=np.int64)
        for k, (a, b, _) in enumerate(pairs):
            pair_of[a, b] = pair_of[b, a] = k
        r_wall = sampled_range_start(data, pairs, pair_of, cutoff, label)
        for name, rw in r_wall.items():
            if rw >= cutoff - cfg["knot_spacing_A"]:
                raise MSCGFitError(f"{label}: pair {name}: wall onset {rw:.2f} Å leaves no fitting range below the "
                                   f"cutoff {cutoff} Å")
        basis = SplineBasis(pairs, r_wall, cutoff, cfg["knot_spacing_A"], cfg["spline_degree"])
        p = data.prior["fraction"]
        decay = math.log(1.0 / p) / data.prior["width"]
        wall = {"force": p * data.prior["strength"], "decay": decay}

        n_components = len(data.frames("train")) * arrays["positions"].shape[1] * 3
        if basis.n_coefficients > n_components:
            raise MSCGFitError(f"{label}: the basis has {basis.n_coefficients} coefficients but the training block "
                               f"holds only {n_components} force components; use fewer knots (larger "
                               f"knot_spacing_A) or more frames")
        n_folds = int(cfg["cv_folds"])
        systems = {s: NormalEquations(basis.n_coefficients) for s in ("train", "valid")}
        folds = [NormalEquations(basis.n_coefficients) for _ in range(n_folds)]
        stats = {s: {name: {"n_pairs": 0, "n_below_wall": 0, "r_min_A": math.inf,
                            "basis_samples": np.zeros(basis.n_free[name], dtype=np.int64)} for _, _, name in pairs}
                 for s in ("train", "valid")}
        fold_of = cross_validation_folds(data, n_folds, label)
        for split in ("train", "valid"):
            for f in data.frames(split):
                A, y = frame_system(basis, pair_of, wall, arrays["species"][f], arrays["positions"][f], boxes[f],
                                    arrays["forces"][f], stats[split],
                                    arrays["molecule"][f] if "molecule" in arrays else None)
                systems[split].add(A, y)
                folds[fold_of[int(f)]].add(A, y)
        train, valid = systems["train"], systems["valid"]

        warnings = []
        for _, _, name in pairs:
            st = stats["train"][name]
            if st["n_pairs"] == 0:
                raise MSCGFitError(f"{label}: the training frames never sample bead-type pair {name} within the "
                                   f"cutoff {cutoff} Å: its pair force cannot be fitted")
            empty = np.nonzero(st["basis_samples"] == 0)[0]
            if len(empty):
                centres = basis.centres(name)[empty]
                warnings.append(f"{label}: pair {name}: {len(empty)} of {basis.n_free[name]} B-spline functions "
                                f"(near r = {', '.join(f'{c:.2f}' for c in centres[:6])} Å) have no training samples; "
                                f"only the smoothness penalty determines them")

        penalty = basis.penalty()
        curve, solutions = [], []
        for lam in sorted(float(x) for x in cfg["regularization"]):
            c = solve_regularised(train, penalty, lam)
            if not np.all(np.isfinite(c)):
                continue
            curve.append({"regularization": lam, "cv_ForceRMSE": cross_validated_rmse(folds, penalty, lam),
                          "train_ForceRMSE": train.rmse(c), "valid_ForceRMSE": valid.rmse(c)})
            solutions.append(c)
        if not curve:
            raise MSCGFitError(f"{label}: no regularisation strength gave a finite solution")
        # the smoothest fit the held-out folds cannot tell from the best one: the largest lambda whose
        # cross-validated RMSE is within selection_tolerance (relative) of the minimum
        best_rmse = min(row["cv_ForceRMSE"] for row in curve)
        k = max(i for i, row in enumerate(curve)
                if row["cv_ForceRMSE"] <= best_rmse * (1.0 + cfg["selection_tolerance"]))
        coef, chosen = solutions[k], curve[k]
        if len(curve) > 1 and k == len(curve) - 1:
            warnings.append(f"{label}: the chosen regularisation strength {chosen['regularization']:g} is the largest "
                            f"scanned; a stronger penalty might validate as well")
        if len(curve) > 1 and k == 0 and curve[1]["cv_ForceRMSE"] > best_rmse * (1.0 + cfg["selection_tolerance"]):
            warnings.append(f"{label}: the chosen regularisation strength {chosen['regularization']:g} is the smallest "
                            f"scanned and the cross-validated error still falls towards it")

        pair_forces = []
        for a, b, name in pairs:
            c_pair = coef[basis.offsets[name]: basis.offsets[name] + basis.n_free[name]]
            pf = PairForce(name, (a, b), r_wall[name], cutoff, basis.knots[name], basis.degree,
                           np.append(c_pair, 0.0), wall["force"], wall["decay"])
            pair_forces.append(pf)
            if pf.force_at_wall < 0:
                warnings.append(f"{label}: pair {name}: the fitted force at the wall onset r_w = {pf.r_wall:.2f} Å is "
                                f"attractive ({pf.force_at_wall:.3g} kcal/mol/Å); the wall turns it repulsive only at "
                                f"r = {pf.zero_force_distance():.2f} Å, closer than the reference ever samples")
        for w in warnings:
            print("WARNING:", w, flush=True)

        sample_stats = {name: {"n_pairs": int(st["n_pairs"]), "n_below_wall": int(st["n_below_wall"]),
                               "r_min_A": float(st["r_min_A"]),
                               "min_samples_per_basis_function": int(st["basis_samples"].min())}
                        for name, st in stats["train"].items()}
        info = {
            "cutoff_A": cutoff,
            "interaction_range_A": cutoff,
            "knot_spacing_A": float(cfg["knot_spacing_A"]),
            "spline_degree": int(cfg["spline_degree"]),
            "regularization": chosen["regularization"],
            "table_spacing_A": float(cfg["table_spacing_A"]),
            "prior": data.prior,
            "pairs": [pf.to_dict() for pf in pair_forces],
            "training_samples": sample_stats,
            "warnings": warnings,
        }
        model = cls(out_dir, {"bead_types": list(data.bead_types), **info})
        model.pair_table().to_csv(out_dir / "pair_table.csv", index=False, float_format="%.8g")
        record = {
            "wall_s": time.perf_counter() - t0,
            "n_coefficients": basis.n_coefficients,
            "regularization": chosen["regularization"],
            "train_force_rmse_kcal_mol_A": chosen["train_ForceRMSE"],
            "valid_force_rmse_kcal_mol_A": chosen["valid_ForceRMSE"],
            "cv_force_rmse_kcal_mol_A": chosen["cv_ForceRMSE"],
            "cv_folds": n_folds,
            "training_samples": sample_stats,
            "pair_features": model.pair_features(),
            "curve": curve,
        }
        return info, record

    # ------------------------------------------------------------------ inference
    def predict_nonbonded(self, species, positions, cells, temperature_K=None):
        species = np.asarray(species)
        positions = np.asarray(positions, dtype=np.float64)
        cells = np.asarray(cells, dtype=np.float64)
        energies = np.zeros(len(positions))
        forces = np.zeros(positions.shape)
        molecule = np.asarray(self.bonded["molecule_of_bead"]) if self.bonded else None
        for b in range(len(positions)):
            box = np.diag(cells[b])
            i, j, vec, r = frame_pairs(positions[b], box, self.interaction_range_A, molecule)
            tp = self.pair_of[species[b][i], species[b][j]]
            f = np.zeros(len(r))
            for k, pf in enumerate(self.pairs):
                sel = tp == k
                if np.any(sel):
                    f[sel] = pf.force(r[sel])
                    energies[b] += float(pf.energy(r[sel]).sum())
            fij = (f / r)[:, None] * vec
            np.add.at(forces[b], i, fij)
            np.add.at(forces[b], j, -fij)
        return energies, forces

    # ------------------------------------------------------------------ tables and OpenMM
    def pair_table(self, r_start_A: float | None = None) -> pd.DataFrame:
        """r, force and energy per pair on the table grid, starting 0.5 Å inside the wall."""
        h = float(self.info["table_spacing_A"])
        rows = []
        for pf in self.pairs:
            lo = max(0.5, pf.r_wall - 0.5) if r_start_A is None else r_start_A
            r = np.arange(lo, pf.cutoff + 0.5 * h, h)
            rows.append(pd.DataFrame({"pair": pf.pair, "r_A": r, "force_kcal_mol_A": pf.force(r),
                                      "energy_kcal_mol": pf.energy(r), "inside_wall": r < pf.r_wall}))
        return pd.concat(rows, ignore_index=True)

    def pair_features(self) -> dict:
        """Per pair: the potential's global well (depth, position), its contact shoulder (the first local
        minimum beyond the wall, e.g. hydrogen-bonded neighbours, and the barrier after it), where U crosses zero
        on the repulsive side, U and f at the wall onset."""
        out = {}
        for pf in self.pairs:
            r = np.linspace(pf.r_wall, pf.cutoff, 4000)
            u = pf.energy(r)
            k = int(np.argmin(u))
            repulsive = np.nonzero(u[:k] > 0)[0]
            local = np.nonzero((u[1:-1] < u[:-2]) & (u[1:-1] <= u[2:]))[0] + 1
            contact = int(local[0]) if len(local) else k
            barrier = contact + int(np.argmax(u[contact:k + 1])) if contact < k else contact
            out[pf.pair] = {
                "contact_minimum_A": float(r[contact]),
                "contact_minimum_kcal_mol": float(u[contact]),
                "barrier_after_contact_kcal_mol": float(u[barrier]),
                "well_depth_kcal_mol": float(u[k]),
                "well_position_A": float(r[k]),
                "zero_crossing_A": float(r[repulsive[-1]]) if len(repulsive) else None,
                "r_wall_A": pf.r_wall,
                "energy_at_wall_kcal_mol": float(u[0]),
                "force_at_wall_kcal_mol_A": pf.force_at_wall,
                "max_force_in_fit_range_kcal_mol_A": float(np.max(pf.force(r))),
            }
        return out

    def add_nonbonded_to_system(self, system, species, settings: dict) -> list:
        import openmm

        species = np.asarray(species)
        present = set(int(x) for x in species)
        pairs = [pf for pf in self.pairs if pf.types[0] in present and pf.types[1] in present]
        if len({pf.cutoff for pf in pairs}) > 1:
            raise ValueError(f"MS-CG model at {self.directory}: its type pairs have different cutoffs")
        if len(pairs) == 1:
            energy = pairs[0].openmm_energy_expression()
        else:
            # several type pairs in one force, each selected by the per-particle bead types: one neighbour list
            # (a force per pair built one each, 2.7x the step of two bead types here; interaction groups would be
            # simpler but OpenMM's CPU platform evaluates them without its neighbour list: 19x slower at 4,096 beads)
            terms, definitions = [], []
            for k, pf in enumerate(pairs):
                a, b = pf.types
                select = f"delta(t1 - {a}) * delta(t2 - {b})" + (f" + delta(t1 - {b}) * delta(t2 - {a})" if a != b else "")
                body, defs = pf.openmm_energy_expression(tag=str(k)).split(";", 1)
                terms.append(f"({select}) * ({body})")
                definitions.append(defs.strip())
            energy = " + ".join(terms) + "; " + "; ".join(definitions)
        force = openmm.CustomNonbondedForce(energy)
        force.setNonbondedMethod(openmm.CustomNonbondedForce.CutoffPeriodic)
        force.setCutoffDistance(float(units.angstrom_to_nm(pairs[0].cutoff)))
        force.setUseSwitchingFunction(False)
        force.setUseLongRangeCorrection(False)
        if len(pairs) > 1:
            force.addPerParticleParameter("t")
            for t in species:
                force.addParticle([float(t)])
        else:
            for _ in range(len(species)):
                force.addParticle([])
        for i, j in self.excluded_pairs():  # bead pairs inside one molecule: the bonded prior's
            force.addExclusion(int(i), int(j))
        force.setName("MS-CG pairs " + " ".join(pf.pair for pf in pairs))
        system.addForce(force)
        return [force]

    def curve_figure(self, curve, title):
        from cgtransfer import plots

        return plots.regularization_curve(curve, self.info["regularization"], title)

    def pair_figure(self, title: str):
        from cgtransfer import plots

        return plots.pair_potential(self.pair_table(), {pf.pair: pf.r_wall for pf in self.pairs}, title)
