"""Stage compare: one model at one state against the mapped all-atom reference.

Structure: CG (NVT, reference mean box) RDF vs mapped-AA RDF on identical bins (MDAnalysis InterRDF), read
against the reference's own noise floor (RDF MAE between its two halves); its standard error is a delete-one
jackknife over ``n_blocks`` contiguous blocks of the CG run (the reference is shared by every model at a state,
so the error of a model-to-model comparison is the CG sampling error). Thermodynamics: CG NPT density vs AA
density, CG NVT pressure vs the AA pressure at the same density (both from computeCurrentPressure, block
standard errors). Forces: held-out RMSE/MAE/R² of the model on this state. Contacts: the closest CG bead pair vs
the closest mapped reference pair. An unstable CG run is reported as such (with where it failed), its metrics
NaN.

Each CG run is loaded once (``CGRun``: its trajectory opened once, its summary, the box it ran in) and the
reference once (``Reference``); small metric functions each take what they need and return a dict of their
numbers (and a table where there is one); ``compare_state`` assembles them in the order of metrics.json.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import MDAnalysis as mda

from cgtransfer.analysis import rdf as rdfmod
from cgtransfer.analysis.statistics import block_average, block_edges, compressibility_per_bar, jackknife_stderr
from cgtransfer.io import read_json

NAN = float("nan")
ANGLE_COLUMNS = ["type", "theta_deg", "p_reference", "p_cg"]


# ------------------------------------------------------------------------------------------------ inputs
@dataclass
class Reference:
    """The mapped all-atom reference at one state: RDFs (with their two halves), summary (angle shells, closest
    pair), thermo series, and, where the rule provides them, angle and bond distributions."""

    rdf: pd.DataFrame
    summary: dict
    thermo: pd.DataFrame
    angles: pd.DataFrame | None = None
    bonds: pd.DataFrame | None = None

    @classmethod
    def load(cls, rdf_csv, summary_json, thermo_csv, angles_csv=None, bonds_csv=None) -> "Reference":
        return cls(pd.read_csv(rdf_csv), read_json(summary_json), pd.read_csv(thermo_csv),
                   pd.read_csv(angles_csv) if angles_csv is not None else None,
                   pd.read_csv(bonds_csv) if bonds_csv is not None else None)

    @property
    def pairs(self) -> list[str]:
        return list(dict.fromkeys(self.rdf["pair"]))


@dataclass
class CGRun:
    """One CG MD run (NVT or NPT) of a cell, loaded once: its summary, and for a run that completed its
    trajectory as one MDAnalysis Universe, its thermo series (NPT) and the box of its first frame, read from the
    trajectory in double precision (DCD), not from the PDB's 3 decimals. A failed run has no Universe: its
    trajectory is never opened."""

    summary: dict
    universe: mda.Universe | None = None
    thermo: pd.DataFrame | None = None
    box_A: np.ndarray | None = None

    @classmethod
    def load(cls, topology_pdb, trajectory, summary_json, thermo_csv=None) -> "CGRun":
        summary = read_json(summary_json)
        if not summary.get("stable", True):
            return cls(summary)
        u = mda.Universe(str(topology_pdb), str(trajectory))
        box = np.asarray(u.trajectory[0].dimensions[:3], dtype=np.float64)
        return cls(summary, u, pd.read_csv(thermo_csv) if thermo_csv is not None else None, box)

    @property
    def stable(self) -> bool:
        return self.summary.get("stable", True)

    @property
    def source(self) -> str:
        return str(self.universe.trajectory.filename) if self.universe is not None else "failed CG run"

    @property
    def n_frames(self) -> int:
        return len(self.universe.trajectory)

    @property
    def n_molecules(self) -> int:
        return self.universe.residues.n_residues

    @property
    def number_density_A3(self) -> float:
        """Beads per Å³ in the box of the first frame (the NVT run's constant box)."""
        return self.universe.atoms.n_atoms / float(np.prod(self.box_A))


# ------------------------------------------------------------------------------------------------ structure
def block_rdfs(universe: mda.Universe, pairs: list[str], nbins: int, rmax_A: float, n_blocks: int):
    """{pair: (r, g of the whole run, [g of each of n_blocks contiguous blocks])} of one opened trajectory."""
    n = len(universe.trajectory)
    if n < n_blocks:
        raise ValueError(f"{universe.trajectory.filename}: {n} frames, fewer than rdf.n_blocks = {n_blocks}")
    edges = block_edges(n, n_blocks)
    out = {}
    for pair in pairs:
        a, b = pair.split("-")
        r, g = rdfmod.bead_rdf(universe, a, b, nbins, rmax_A)
        blocks = [rdfmod.bead_rdf(universe, a, b, nbins, rmax_A, start=int(lo), stop=int(hi))[1]
                  for lo, hi in zip(edges[:-1], edges[1:])]
        out[pair] = (r, g, blocks)
    return out


def cg_rdfs(topology_pdb, trajectory, pairs: list[str], nbins: int, rmax_A: float) -> pd.DataFrame:
    """RDFs of a CG run, one table (pair, r_A, g)."""
    u = mda.Universe(str(topology_pdb), str(trajectory))
    tables = []
    for pair in pairs:
        a, b = pair.split("-")
        r, g = rdfmod.bead_rdf(u, a, b, nbins, rmax_A)
        tables.append(pd.DataFrame({"pair": pair, "r_A": r, "g": g}))
    return pd.concat(tables, ignore_index=True)


def cg_block_rdfs(topology_pdb, trajectory, pairs: list[str], nbins: int, rmax_A: float, n_blocks: int):
    """``block_rdfs`` of a run given by its files."""
    return block_rdfs(mda.Universe(str(topology_pdb), str(trajectory)), pairs, nbins, rmax_A, n_blocks)


def rdf_metrics(reference: Reference, nvt: CGRun, nbins: int, rmax_A: float, n_blocks: int):
    """RDF of the CG NVT run against the reference, per bead-type pair (MAE with its jackknife standard error,
    the reference's two-halves noise floor, JS divergence of r²g, first peaks) and averaged over pairs (the
    first peak of the first pair). Returns (metrics, table of curves); NaN for a failed run."""
    cg = block_rdfs(nvt.universe, reference.pairs, nbins, rmax_A, n_blocks) if nvt.stable else {}
    per_pair, rows = {}, []
    for pair in reference.pairs:
        ref = reference.rdf[reference.rdf["pair"] == pair]
        r, g_ref = ref["r_A"].to_numpy(), ref["g"].to_numpy()
        noise = rdfmod.rdf_mae(ref["g_first_half"], ref["g_second_half"])
        peak_ref = rdfmod.first_peak(r, g_ref)
        if pair in cg:
            r_cg, g_cg, blocks = cg[pair]
            if not np.allclose(r, r_cg):
                raise ValueError(f"{nvt.source}: CG and reference RDF bins differ for {pair}")
            peak_cg = rdfmod.first_peak(r, g_cg)
            mae = rdfmod.rdf_mae(g_cg, g_ref)
            mae_err = jackknife_stderr(blocks, lambda g: rdfmod.rdf_mae(g, g_ref))
            js = rdfmod.js_divergence_r2g(r, g_cg, g_ref)
        else:  # the NVT run failed: no CG structure to compare
            g_cg = np.full_like(g_ref, np.nan)
            peak_cg, mae, mae_err, js = (np.nan, np.nan), np.nan, np.nan, np.nan
        per_pair[pair] = {
            "mae": mae,
            "mae_stderr": mae_err,
            "noise_floor_mae": noise,
            "mae_over_noise": mae / noise if noise > 0 else float("inf"),
            "js_divergence_r2g": js,
            "first_peak_r_A_cg": peak_cg[0], "first_peak_g_cg": peak_cg[1],
            "first_peak_r_A_ref": peak_ref[0], "first_peak_g_ref": peak_ref[1],
        }
        rows.append(pd.DataFrame({"pair": pair, "r_A": r, "g_reference": g_ref, "g_cg": g_cg}))
    values = list(per_pair.values())
    main = values[0]
    out = {"rdf": per_pair}
    out["rdf_mae"] = float(np.mean([m["mae"] for m in values]))
    out["rdf_mae_stderr"] = float(np.sqrt(np.sum([m["mae_stderr"] ** 2 for m in values])) / len(values))
    out["rdf_noise_floor_mae"] = float(np.mean([m["noise_floor_mae"] for m in values]))
    out["rdf_mae_over_noise"] = out["rdf_mae"] / out["rdf_noise_floor_mae"]
    out["rdf_mae_over_noise_stderr"] = out["rdf_mae_stderr"] / out["rdf_noise_floor_mae"]
    out["rdf_js_divergence_r2g"] = float(np.mean([m["js_divergence_r2g"] for m in values]))
    for key in ("first_peak_r_A_cg", "first_peak_g_cg", "first_peak_r_A_ref", "first_peak_g_ref"):
        out[key] = main[key]
    return out, pd.concat(rows, ignore_index=True)


def npt_rdf_metrics(reference: Reference, npt: CGRun, nbins: int, rmax_A: float, n_blocks: int) -> dict:
    """Structure at the CG model's own NPT density against the reference: the RDF MAE of every bead-type pair,
    averaged as for the NVT RDFs, with its jackknife standard error."""
    rdfs = block_rdfs(npt.universe, reference.pairs, nbins, rmax_A, n_blocks)
    maes, errs = [], []
    for pair in reference.pairs:
        g_ref_pair = reference.rdf[reference.rdf["pair"] == pair]["g"].to_numpy()
        _, g_npt, blocks = rdfs[pair]
        maes.append(rdfmod.rdf_mae(g_npt, g_ref_pair))
        errs.append(jackknife_stderr(blocks, lambda g, ref=g_ref_pair: rdfmod.rdf_mae(g, ref)))
    return {"rdf_mae_npt": float(np.mean(maes)),
            "rdf_mae_npt_stderr": float(np.sqrt(np.sum(np.square(errs))) / len(errs))}


def angle_metrics(reference: Reference, nvt: CGRun, n_blocks: int):
    """Three-body angle distribution of the CG NVT run against the reference (same bead type, same first-shell
    cutoff, same bins): per bead type the total-variation distance, its jackknife standard error over
    ``n_blocks`` blocks, and its ratio to the reference noise floor (distance between the reference's two
    halves); averaged over bead types. Returns (metrics, table of curves); empty when the reference has no
    first shell, NaN for a failed run."""
    ref = reference.angles
    shells = reference.summary.get("angles", {})
    u = nvt.universe if nvt.stable else None
    per_type, rows = {}, []
    for bead, shell in shells.items():
        t = ref[ref["type"] == bead]
        theta, p_ref = t["theta_deg"].to_numpy(), t["p"].to_numpy()
        width = float(theta[1] - theta[0])
        p_cg, err, err_se, n_nb = np.full_like(p_ref, np.nan), np.nan, np.nan, np.nan
        if u is not None:
            try:
                th, p_cg, n_nb = rdfmod.three_body_angles(u, bead, shell["cutoff_A"], len(theta))
                if not np.allclose(th, theta):
                    raise RuntimeError(f"{nvt.source}: angle bins differ from the reference's")
                err = rdfmod.angle_distribution_mae(p_cg, p_ref, width)
                edges = block_edges(nvt.n_frames, n_blocks)
                blocks = [rdfmod.three_body_angles(u, bead, shell["cutoff_A"], len(theta), start=int(lo),
                                                   stop=int(hi))[1] for lo, hi in zip(edges[:-1], edges[1:])]
                err_se = jackknife_stderr(blocks, lambda p: rdfmod.angle_distribution_mae(p, p_ref, width))
            except ValueError as exc:  # a rare bead type (a solute) may have no triple in the run or in a block
                print(f"three-body angles of {bead}: {exc}; recorded as NaN")
        noise = shell["noise_floor"]
        per_type[bead] = {"cutoff_A": shell["cutoff_A"], "error": err, "error_stderr": err_se, "noise_floor": noise,
                          "error_over_noise": err / noise if noise > 0 else float("inf"),
                          "mean_neighbours_cg": n_nb, "mean_neighbours_ref": shell["mean_neighbours"]}
        rows.append(pd.DataFrame({"type": bead, "theta_deg": theta, "p_reference": p_ref, "p_cg": p_cg}))
    table = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=ANGLE_COLUMNS)
    out = {"angles": per_type}
    values = list(per_type.values())
    keys = ("angle_error", "angle_error_stderr", "angle_noise_floor", "angle_error_over_noise",
            "angle_error_over_noise_stderr")
    if values:  # mean over bead types, as for the RDF pairs
        err = float(np.mean([a["error"] for a in values]))
        se = float(np.sqrt(np.sum([a["error_stderr"] ** 2 for a in values])) / len(values))
        noise = float(np.mean([a["noise_floor"] for a in values]))
        out.update(dict(zip(keys, (err, se, noise, err / noise, se / noise))))
    else:
        out.update(dict.fromkeys(keys, NAN))
    return out, table


def bond_metrics(reference: Reference, nvt: CGRun, n_blocks: int) -> dict:
    """Distance distribution of every intramolecular bead-pair type (``cgtransfer.analysis.bonds``) in the CG
    NVT run against the reference, on the reference's bins: mean and width of both, the total-variation
    distance with its jackknife standard error over ``n_blocks`` blocks, and its ratio to the reference's
    two-halves noise floor; the ratio averaged over types. Per-type entries empty for one-bead molecules."""
    per_type = _bond_types(reference.bonds, nvt, n_blocks)
    out = {"bonds": per_type}
    values = list(per_type.values())
    keys = ("bond_error_over_noise", "bond_error_over_noise_stderr")
    if values:
        err = float(np.mean([b["error_over_noise"] for b in values]))
        se = float(np.sqrt(np.sum([(b["error_stderr"] / b["noise_floor"]) ** 2 for b in values])) / len(values))
        out.update(dict(zip(keys, (err, se))))
    else:
        out.update(dict.fromkeys(keys, NAN))
    return out


def _bond_types(ref: pd.DataFrame, nvt: CGRun, n_blocks: int) -> dict:
    from cgtransfer.analysis import bonds as bonded

    if not len(ref):
        return {}
    u = nvt.universe if nvt.stable else None
    out = {}
    if u is not None:
        frames = [(u.atoms.positions.astype(np.float64), np.diag(ts.dimensions[:3]).astype(np.float64))
                  for ts in u.trajectory]  # one pass over the trajectory
        pos, cells = (np.array(a) for a in zip(*frames))
        pairs = bonded.intramolecular_pairs(u.atoms.resindices)
        types = bonded.pair_type_names(pairs, u.atoms.names)
        r_cg = bonded.pair_distances(pos, cells, pairs)
    for t, g in ref.groupby("type", sort=False):
        r, p_ref = g["r_A"].to_numpy(), g["p"].to_numpy()
        width = float(r[1] - r[0])
        edges = {t: bonded.bin_edges_from_centres(r)}  # the reference's bins
        noise = rdfmod.angle_distribution_mae(g["p_first_half"], g["p_second_half"], width)
        entry = {"mean_ref_A": float((r * p_ref).sum() / p_ref.sum()),
                 "std_ref_A": float(np.sqrt((r**2 * p_ref).sum() / p_ref.sum() - ((r * p_ref).sum() / p_ref.sum()) ** 2)),
                 "mean_cg_A": np.nan, "std_cg_A": np.nan, "error": np.nan, "error_stderr": np.nan, "noise_floor": noise,
                 "error_over_noise": np.nan}
        if u is not None and t in types:
            sel = np.array([x == t for x in types])
            x = r_cg[:, sel]
            p_cg = np.histogram(x.ravel(), bins=edges[t])[0] / max(1, x.size) / np.diff(edges[t])  # as the reference
            err = rdfmod.angle_distribution_mae(p_cg, p_ref, width)
            cut = block_edges(len(pos), n_blocks)
            blocks = [np.histogram(x[lo:hi].ravel(), bins=edges[t])[0] / max(1, x[lo:hi].size) / width
                      for lo, hi in zip(cut[:-1], cut[1:])]
            se = jackknife_stderr(blocks, lambda p: rdfmod.angle_distribution_mae(p, p_ref, width))
            entry.update({"mean_cg_A": float(x.mean()), "std_cg_A": float(x.std()), "error": err, "error_stderr": se,
                          "error_over_noise": err / noise if noise > 0 else float("inf")})
        out[t] = entry
    return out


# ------------------------------------------------------------------------------------------------ failures
def unstable_runs(nvt: dict, npt: dict | None) -> dict:
    """{ensemble: summary} of the CG runs of this cell that did not complete."""
    return {name: s for name, s in (("nvt", nvt), ("npt", npt)) if s is not None and not s.get("stable", True)}


def failure_metrics(failed: dict) -> dict:
    """Which runs failed, and where the first of them (NVT before NPT) failed; empty when none did."""
    if not failed:
        return {}
    first = failed.get("nvt") or failed.get("npt")
    return {"unstable_ensembles": ",".join(e.upper() for e in failed), "failed_phase": first["failed_phase"],
            "failed_at_ps": first["failed_at_ps"], "failed_at_step": first["failed_at_step"],
            "failure": first["failure"]}


# ------------------------------------------------------------------------------------------------ thermodynamics
def density_drift(density, tolerance_pct: float = 1.0, n_blocks: int = 8) -> dict:
    """Has an NPT run's density converged? A linear trend through the means of ``n_blocks`` contiguous blocks:
    the run is still drifting when the trend over the whole run exceeds ``tolerance_pct`` % of the mean AND is
    significant (|slope| > 3 standard errors, from the scatter of the block means about the line). A drifting
    series inflates block standard errors, so the trend is tested against its residuals, not against them.
    Flagged, not averaged silently."""
    d = np.asarray(density, dtype=float)
    q = max(1, len(d) // 4)
    out = {"density_drift_pct": float(100.0 * (d[-q:].mean() - d[:q].mean()) / d.mean())}
    if len(d) < 2 * n_blocks:
        return {**out, "density_trend_pct": float("nan"), "density_trend_t": float("nan"), "density_converged": None}
    means = np.array([b.mean() for b in np.array_split(d, n_blocks)])
    x = np.arange(n_blocks, dtype=float)
    slope, intercept = np.polyfit(x, means, 1)
    resid = means - (slope * x + intercept)
    se = np.sqrt(np.sum(resid**2) / (n_blocks - 2) / np.sum((x - x.mean()) ** 2))
    t = float(slope / se) if se > 0 else float("inf") * np.sign(slope)
    trend = float(100.0 * slope * (n_blocks - 1) / d.mean())
    return {**out, "density_trend_pct": trend, "density_trend_t": t,
            "density_converged": not (abs(trend) > tolerance_pct and abs(t) > 3.0)}


NPT_KEYS = ("density_cg_g_cm3", "density_cg_stderr_g_cm3", "density_error_pct", "density_error_pct_stderr",
            "density_cg_last_quarter_g_cm3", "temperature_cg_npt_K", "min_pair_distance_cg_npt_A",
            "density_drift_pct", "density_trend_pct", "density_trend_t", "compressibility_cg_per_bar",
            "compressibility_cg_stderr_per_bar", "rdf_mae_npt", "rdf_mae_npt_stderr")


def npt_metrics(reference: Reference, npt: CGRun | None, temperature_K: float, nbins: int, rmax_A: float,
                n_blocks: int) -> dict:
    """What the CG NPT run measures against the reference: density (and whether it converged),
    compressibility from volume fluctuations, and structure at its own density. NaN for an NVT state (no NPT
    run) or a failed NPT run."""
    rho_aa, rho_aa_err = block_average(reference.thermo["density_g_cm3"])
    out = {"density_aa_g_cm3": rho_aa, "density_aa_stderr_g_cm3": rho_aa_err}
    if npt is None or not npt.stable:
        return {**out, **dict.fromkeys(NPT_KEYS, NAN), "density_converged": None}
    s = npt.summary
    out["density_cg_g_cm3"] = s["mean_density_g_cm3"]
    out["density_cg_stderr_g_cm3"] = s["mean_density_stderr_g_cm3"]
    out["density_error_pct"] = 100.0 * (s["mean_density_g_cm3"] - rho_aa) / rho_aa
    out["density_error_pct_stderr"] = 100.0 * np.hypot(s["mean_density_stderr_g_cm3"], rho_aa_err) / rho_aa
    out["density_cg_last_quarter_g_cm3"] = s["density_last_quarter_g_cm3"]
    out["temperature_cg_npt_K"] = s["mean_temperature_K"]
    out["min_pair_distance_cg_npt_A"] = s["min_pair_distance_A"]
    out.update(density_drift(npt.thermo["density_g_cm3"]))
    out["compressibility_cg_per_bar"], out["compressibility_cg_stderr_per_bar"] = \
        compressibility_per_bar(npt.thermo["volume_nm3"], temperature_K)
    out.update(npt_rdf_metrics(reference, npt, nbins, rmax_A, n_blocks))
    return out


def compressibility_metrics(reference: Reference, k_cg: float, k_cg_err: float, temperature_K: float,
                            pressure_bar: float | None) -> dict:
    """The all-atom compressibility (NPT states only) and the CG/AA ratio with its standard error."""
    out = {}
    if pressure_bar is not None:
        out["compressibility_aa_per_bar"], out["compressibility_aa_stderr_per_bar"] = \
            compressibility_per_bar(reference.thermo["volume_nm3"], temperature_K)
    else:
        out["compressibility_aa_per_bar"] = out["compressibility_aa_stderr_per_bar"] = NAN
    k_aa = out["compressibility_aa_per_bar"]
    out["compressibility_ratio"] = k_cg / k_aa if np.isfinite(k_cg) and np.isfinite(k_aa) else NAN
    out["compressibility_ratio_stderr"] = (out["compressibility_ratio"] * np.hypot(
        k_cg_err / k_cg, out["compressibility_aa_stderr_per_bar"] / k_aa)
        if np.isfinite(out["compressibility_ratio"]) else NAN)
    return out


def volume_term_shift_bar(term, run: CGRun, temperature_K: float) -> float:
    """The pressure a volume term adds to a run, ρ² ψ'(ρ), at the density of the run's box (from the
    trajectory: the shift's density derivative can be large enough that PDB rounding moves it by a bar)."""
    return float(term.pressure_shift_bar(run.number_density_A3, temperature_K))


def volume_term_metrics(volume_term_json, nvt: CGRun, temperature_K: float) -> dict:
    """The model's volume term and the exact shift it adds to the NVT pressure (the NVT run is the base
    model's: same trajectory, the term exerts no force); for an uncorrectable model the reason, and a NaN shift
    (its NVT pressure is unknown, not the base model's)."""
    from cgtransfer.kinds.volume_term import load_volume_term

    term, reason = load_volume_term(volume_term_json)
    out = {"volume_term": term.to_dict() if term is not None else None, "volume_term_pressure_shift_bar": 0.0}
    if term is None:
        out.update({"volume_term_pressure_shift_bar": NAN, "volume_term_uncorrectable": reason})
    elif nvt.stable:
        out["volume_term_pressure_shift_bar"] = volume_term_shift_bar(term, nvt, temperature_K)
    return out


def pressure_metrics(reference: Reference, nvt: CGRun, temperature_K: float, pressure_bar: float | None,
                     volume_term_json=None) -> dict:
    """CG NVT pressure (plus a volume term's shift) against the all-atom pressure at the same density: NPT
    states, the barostat's set pressure (exact on average; the measured mean only adds noise); NVT states, the
    measured pressure. With the NVT run's temperature and closest contact; NaN for a failed run."""
    thermo = reference.thermo
    p_measured, p_measured_err = block_average(thermo["pressure_bar"]) if "pressure_bar" in thermo else (NAN, NAN)
    p_aa, p_aa_err = (pressure_bar, 0.0) if pressure_bar is not None else (p_measured, p_measured_err)
    out = {"pressure_aa_measured_bar": p_measured, "pressure_aa_measured_stderr_bar": p_measured_err,
           "pressure_aa_bar": p_aa, "pressure_aa_stderr_bar": p_aa_err, "pressure_reference_bar": pressure_bar}
    shift = 0.0
    if volume_term_json is not None:
        out.update(volume_term_metrics(volume_term_json, nvt, temperature_K))
        shift = out["volume_term_pressure_shift_bar"]
    keys = ("pressure_cg_nvt_bar", "pressure_cg_nvt_stderr_bar", "pressure_error_bar", "pressure_error_stderr_bar",
            "temperature_cg_nvt_K", "temperature_deviation_pct_nvt", "min_pair_distance_cg_nvt_A")
    if not nvt.stable or out.get("volume_term_uncorrectable") is not None:
        return {**out, **dict.fromkeys(keys, NAN)}
    s = nvt.summary
    p_cg, p_cg_err = s["mean_pressure_bar"] + shift, s["mean_pressure_stderr_bar"]
    values = (p_cg, p_cg_err, p_cg - p_aa, float(np.hypot(p_cg_err, p_aa_err)), s["mean_temperature_K"],
              s["temperature_deviation_pct"], s["min_pair_distance_A"])
    return {**out, **dict(zip(keys, values))}


def energy_metrics(reference: Reference, nvt: CGRun) -> dict:
    """An energy-anchored temperature-aware model's mean U(R) along its NVT run against the all-atom mean
    potential energy at the state, per molecule (kcal/mol); NaN for every other model or a failed run."""
    from cgtransfer import units

    keys = ("energy_cg_kcal_mol_per_molecule", "energy_cg_stderr_kcal_mol_per_molecule",
            "energy_aa_kcal_mol_per_molecule", "energy_aa_stderr_kcal_mol_per_molecule",
            "energy_error_kcal_mol_per_molecule", "energy_error_stderr_kcal_mol_per_molecule")
    if not nvt.stable or "mean_model_energy_kcal_mol" not in nvt.summary:
        return dict.fromkeys(keys, NAN)
    e_aa, e_aa_err = block_average(units.kj_to_kcal(reference.thermo["potential_energy_kJ_mol"].to_numpy()))
    e_cg, e_cg_err = nvt.summary["mean_model_energy_kcal_mol"], nvt.summary["mean_model_energy_stderr_kcal_mol"]
    values = (e_cg, e_cg_err, e_aa, e_aa_err, e_cg - e_aa, float(np.hypot(e_cg_err, e_aa_err)))
    return {k: float(v) / nvt.n_molecules for k, v in zip(keys, values)}


# ------------------------------------------------------------------------------------------------ forces
def force_error_metrics(forces: dict) -> dict:
    """The model's held-out force errors at this state, and whether the state was in its training set."""
    out = {k: forces[k] for k in ("force_rmse_kcal_mol_A", "force_mae_kcal_mol_A", "force_r2")}
    out["force_rmse_stderr_kcal_mol_A"] = forces.get("force_rmse_stderr_kcal_mol_A", NAN)
    out["force_state_in_training"] = forces["state_in_training"]
    return out


# ------------------------------------------------------------------------------------------------ assembly
def compare_state(reference: Reference, nvt: CGRun, npt: CGRun | None, forces: dict, *, model: str, state: str,
                  temperature_K: float, pressure_bar: float | None, nbins: int, rmax_A: float, n_blocks: int = 5,
                  volume_term_json=None):
    """metrics.json (a dict), rdf.csv and angles.csv (tables) of one model at one state. ``npt`` is None at an
    NVT state; ``forces`` the model's force errors at this state; ``volume_term_json`` a fitted volume term."""
    failed = unstable_runs(nvt.summary, npt.summary if npt is not None else None)
    metrics = {"model": model, "state": state, "temperature_K": temperature_K, "pressure_bar": pressure_bar,
               "ensemble": "NPT" if pressure_bar is not None else "NVT", "stable": not failed, "rdf": {}}
    metrics.update(failure_metrics(failed))
    rdf, rdf_table = rdf_metrics(reference, nvt, nbins, rmax_A, n_blocks)
    metrics.update(rdf)
    metrics.update(npt_metrics(reference, npt, temperature_K, nbins, rmax_A, n_blocks))
    metrics.update(compressibility_metrics(reference, metrics["compressibility_cg_per_bar"],
                                           metrics["compressibility_cg_stderr_per_bar"], temperature_K, pressure_bar))
    noise = metrics["rdf_noise_floor_mae"]  # the mean over pairs, as for the NVT ratio
    metrics["rdf_error_npt_over_noise"] = metrics["rdf_mae_npt"] / noise
    metrics["rdf_error_npt_over_noise_stderr"] = metrics["rdf_mae_npt_stderr"] / noise
    metrics.update(pressure_metrics(reference, nvt, temperature_K, pressure_bar, volume_term_json))
    metrics.update(energy_metrics(reference, nvt))
    angles_table = pd.DataFrame(columns=ANGLE_COLUMNS)
    if reference.angles is not None:
        angles, angles_table = angle_metrics(reference, nvt, n_blocks)
        metrics.update(angles)
    if reference.bonds is not None:  # molecules of several beads: the bonded prior's distance distributions
        metrics.update(bond_metrics(reference, nvt, n_blocks))
    metrics["min_pair_distance_reference_A"] = reference.summary["min_pair_distance_A"]
    metrics.update(force_error_metrics(forces))
    return metrics, rdf_table, angles_table
