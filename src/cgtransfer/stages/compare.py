"""Stage compare: one model at one state against the mapped all-atom reference.

Structure: CG (NVT, reference mean box) RDF vs mapped-AA RDF on identical bins (MDAnalysis InterRDF), read
against the reference's own noise floor (RDF MAE between its two halves); its standard error is a delete-one
jackknife over ``n_blocks`` contiguous blocks of the CG run (the reference is shared by every model at a state,
so the error of a model-to-model comparison is the CG sampling error). Thermodynamics: CG NPT density vs AA
density, CG NVT pressure vs the AA pressure at the same density (both from computeCurrentPressure, block
standard errors). Forces: held-out RMSE/MAE/R² of the model on this state. Contacts: the closest CG bead pair vs
the closest mapped reference pair. An unstable CG run is reported as such (with where it failed), its metrics
NaN.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import MDAnalysis as mda

from cgtransfer.analysis import rdf as rdfmod
from cgtransfer.analysis.statistics import block_average, compressibility_per_bar, jackknife_stderr
from cgtransfer.io import read_json


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
    """{pair: (r, g of the whole run, [g of each of n_blocks contiguous blocks])}."""
    u = mda.Universe(str(topology_pdb), str(trajectory))
    n = len(u.trajectory)
    if n < n_blocks:
        raise ValueError(f"{trajectory}: {n} frames, fewer than rdf.n_blocks = {n_blocks}")
    edges = np.linspace(0, n, n_blocks + 1).round().astype(int)
    out = {}
    for pair in pairs:
        a, b = pair.split("-")
        r, g = rdfmod.bead_rdf(u, a, b, nbins, rmax_A)
        blocks = [rdfmod.bead_rdf(u, a, b, nbins, rmax_A, start=int(lo), stop=int(hi))[1]
                  for lo, hi in zip(edges[:-1], edges[1:])]
        out[pair] = (r, g, blocks)
    return out


def angle_comparison(reference_angles_csv, reference_summary: dict, nvt_topology, nvt_trajectory, n_blocks: int,
                     failed: bool = False):
    """Three-body angle distribution of the CG NVT run against the reference (same bead type, same first-shell
    cutoff, same bins): the total-variation distance, its jackknife standard error over ``n_blocks`` blocks, and
    its ratio to the reference noise floor (distance between the reference's two halves). Returns
    (metrics, table of curves); empty when the reference has no first shell."""
    ref = pd.read_csv(reference_angles_csv)
    shells = reference_summary.get("angles", {})
    metrics, rows = {}, []
    u = None if failed or not shells else mda.Universe(str(nvt_topology), str(nvt_trajectory))
    for bead, shell in shells.items():
        t = ref[ref["type"] == bead]
        theta, p_ref = t["theta_deg"].to_numpy(), t["p"].to_numpy()
        width = float(theta[1] - theta[0])
        p_cg, err, err_se, n_nb = np.full_like(p_ref, np.nan), np.nan, np.nan, np.nan
        if u is not None:
            try:
                th, p_cg, n_nb = rdfmod.three_body_angles(u, bead, shell["cutoff_A"], len(theta))
                if not np.allclose(th, theta):
                    raise RuntimeError(f"{nvt_trajectory}: angle bins differ from the reference's")
                err = rdfmod.angle_distribution_mae(p_cg, p_ref, width)
                edges = np.linspace(0, len(u.trajectory), n_blocks + 1).round().astype(int)
                blocks = [rdfmod.three_body_angles(u, bead, shell["cutoff_A"], len(theta), start=int(lo),
                                                   stop=int(hi))[1] for lo, hi in zip(edges[:-1], edges[1:])]
                err_se = jackknife_stderr(blocks, lambda p: rdfmod.angle_distribution_mae(p, p_ref, width))
            except ValueError as exc:  # a rare bead type (a solute) may have no triple in the run or in a block
                print(f"three-body angles of {bead}: {exc}; recorded as NaN")
        noise = shell["noise_floor"]
        metrics[bead] = {"cutoff_A": shell["cutoff_A"], "error": err, "error_stderr": err_se, "noise_floor": noise,
                         "error_over_noise": err / noise if noise > 0 else float("inf"),
                         "mean_neighbours_cg": n_nb, "mean_neighbours_ref": shell["mean_neighbours"]}
        rows.append(pd.DataFrame({"type": bead, "theta_deg": theta, "p_reference": p_ref, "p_cg": p_cg}))
    table = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
        columns=["type", "theta_deg", "p_reference", "p_cg"])
    return metrics, table


def bond_comparison(reference_bonds_csv, nvt_topology, nvt_trajectory, n_blocks: int, failed: bool = False) -> dict:
    """Distance distribution of every intramolecular bead-pair type (``cgtransfer.bonded``) in the CG NVT run
    against the reference, on the reference's bins: mean and width of both, the total-variation distance with
    its jackknife standard error over ``n_blocks`` blocks, and its ratio to the reference's two-halves noise
    floor. Empty for one-bead molecules."""
    from cgtransfer.analysis import bonds as bonded

    ref = pd.read_csv(reference_bonds_csv)
    if not len(ref):
        return {}
    u = None if failed else mda.Universe(str(nvt_topology), str(nvt_trajectory))
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
            cut = np.linspace(0, len(pos), n_blocks + 1).round().astype(int)
            blocks = [np.histogram(x[lo:hi].ravel(), bins=edges[t])[0] / max(1, x[lo:hi].size) / width
                      for lo, hi in zip(cut[:-1], cut[1:])]
            se = jackknife_stderr(blocks, lambda p: rdfmod.angle_distribution_mae(p, p_ref, width))
            entry.update({"mean_cg_A": float(x.mean()), "std_cg_A": float(x.std()), "error": err, "error_stderr": se,
                          "error_over_noise": err / noise if noise > 0 else float("inf")})
        out[t] = entry
    return out




def unstable_runs(nvt: dict, npt: dict | None) -> dict:
    """{ensemble: summary} of the CG runs of this cell that did not complete."""
    return {name: s for name, s in (("nvt", nvt), ("npt", npt)) if s is not None and not s.get("stable", True)}




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


def energy_comparison(nvt: dict, ref_thermo: pd.DataFrame, nvt_topology) -> dict:
    """An energy-anchored temperature-aware model's mean U(R) along its NVT run against the all-atom mean
    potential energy at the state, per molecule (kcal/mol); NaN for every other model or a failed run."""
    from cgtransfer import units

    nan = float("nan")
    keys = ("energy_cg_kcal_mol_per_molecule", "energy_cg_stderr_kcal_mol_per_molecule",
            "energy_aa_kcal_mol_per_molecule", "energy_aa_stderr_kcal_mol_per_molecule",
            "energy_error_kcal_mol_per_molecule", "energy_error_stderr_kcal_mol_per_molecule")
    if "mean_model_energy_kcal_mol" not in nvt:
        return dict.fromkeys(keys, nan)
    n_molecules = mda.Universe(str(nvt_topology)).residues.n_residues
    e_aa, e_aa_err = block_average(units.kj_to_kcal(ref_thermo["potential_energy_kJ_mol"].to_numpy()))
    e_cg, e_cg_err = nvt["mean_model_energy_kcal_mol"], nvt["mean_model_energy_stderr_kcal_mol"]
    values = (e_cg, e_cg_err, e_aa, e_aa_err, e_cg - e_aa, float(np.hypot(e_cg_err, e_aa_err)))
    return {k: float(v) / n_molecules for k, v in zip(keys, values)}


def compare_state(reference_rdf_csv, reference_summary_json, reference_thermo_csv, nvt_topology, nvt_trajectory,
                  nvt_summary_json, npt_summary_json, force_errors_json, nbins: int, rmax_A: float,
                  model: str, state: str, temperature_K: float, pressure_bar: float | None, n_blocks: int = 5,
                  npt_topology=None, npt_trajectory=None, npt_thermo_csv=None, volume_term_json=None,
                  reference_angles_csv=None, reference_bonds_csv=None):
    ref_rdf = pd.read_csv(reference_rdf_csv)
    ref_sum = read_json(reference_summary_json)
    ref_thermo = pd.read_csv(reference_thermo_csv)
    nvt = read_json(nvt_summary_json)
    npt = read_json(npt_summary_json) if npt_summary_json else None
    forces = read_json(force_errors_json)[state]  # the model's held-out force errors, per state

    pairs = list(dict.fromkeys(ref_rdf["pair"]))
    failed = unstable_runs(nvt, npt)
    rows = []
    metrics = {"model": model, "state": state, "temperature_K": temperature_K, "pressure_bar": pressure_bar,
               "ensemble": "NPT" if pressure_bar is not None else "NVT", "stable": not failed, "rdf": {}}
    if failed:
        first = failed.get("nvt") or failed.get("npt")
        metrics.update({"unstable_ensembles": ",".join(e.upper() for e in failed),
                        "failed_phase": first["failed_phase"], "failed_at_ps": first["failed_at_ps"],
                        "failed_at_step": first["failed_at_step"], "failure": first["failure"]})
    cg = {} if "nvt" in failed else cg_block_rdfs(nvt_topology, nvt_trajectory, pairs, nbins, rmax_A, n_blocks)
    for pair in pairs:
        ref = ref_rdf[ref_rdf["pair"] == pair]
        r, g_ref = ref["r_A"].to_numpy(), ref["g"].to_numpy()
        noise = rdfmod.rdf_mae(ref["g_first_half"], ref["g_second_half"])
        peak_ref = rdfmod.first_peak(r, g_ref)
        if pair in cg:
            r_cg, g_cg, blocks = cg[pair]
            if not np.allclose(r, r_cg):
                raise ValueError(f"{model}/{state}: CG and reference RDF bins differ for {pair}")
            peak_cg = rdfmod.first_peak(r, g_cg)
            mae = rdfmod.rdf_mae(g_cg, g_ref)
            mae_err = jackknife_stderr(blocks, lambda g: rdfmod.rdf_mae(g, g_ref))
            js = rdfmod.js_divergence_r2g(r, g_cg, g_ref)
        else:  # the NVT run failed: no CG structure to compare
            g_cg = np.full_like(g_ref, np.nan)
            peak_cg, mae, mae_err, js = (np.nan, np.nan), np.nan, np.nan, np.nan
        metrics["rdf"][pair] = {
            "mae": mae,
            "mae_stderr": mae_err,
            "noise_floor_mae": noise,
            "mae_over_noise": mae / noise if noise > 0 else float("inf"),
            "js_divergence_r2g": js,
            "first_peak_r_A_cg": peak_cg[0], "first_peak_g_cg": peak_cg[1],
            "first_peak_r_A_ref": peak_ref[0], "first_peak_g_ref": peak_ref[1],
        }
        rows.append(pd.DataFrame({"pair": pair, "r_A": r, "g_reference": g_ref, "g_cg": g_cg}))
    per_pair = list(metrics["rdf"].values())
    main = per_pair[0]
    metrics["rdf_mae"] = float(np.mean([m["mae"] for m in per_pair]))
    metrics["rdf_mae_stderr"] = float(np.sqrt(np.sum([m["mae_stderr"] ** 2 for m in per_pair])) / len(per_pair))
    metrics["rdf_noise_floor_mae"] = float(np.mean([m["noise_floor_mae"] for m in per_pair]))
    metrics["rdf_mae_over_noise"] = metrics["rdf_mae"] / metrics["rdf_noise_floor_mae"]
    metrics["rdf_mae_over_noise_stderr"] = metrics["rdf_mae_stderr"] / metrics["rdf_noise_floor_mae"]
    metrics["rdf_js_divergence_r2g"] = float(np.mean([m["js_divergence_r2g"] for m in per_pair]))
    metrics["first_peak_r_A_cg"], metrics["first_peak_g_cg"] = main["first_peak_r_A_cg"], main["first_peak_g_cg"]
    metrics["first_peak_r_A_ref"], metrics["first_peak_g_ref"] = main["first_peak_r_A_ref"], main["first_peak_g_ref"]

    rho_aa, rho_aa_err = block_average(ref_thermo["density_g_cm3"])
    metrics["density_aa_g_cm3"] = rho_aa
    metrics["density_aa_stderr_g_cm3"] = rho_aa_err
    nan = float("nan")
    if npt is not None and "npt" not in failed:
        metrics["density_cg_g_cm3"] = npt["mean_density_g_cm3"]
        metrics["density_cg_stderr_g_cm3"] = npt["mean_density_stderr_g_cm3"]
        metrics["density_error_pct"] = 100.0 * (npt["mean_density_g_cm3"] - rho_aa) / rho_aa
        metrics["density_error_pct_stderr"] = 100.0 * np.hypot(npt["mean_density_stderr_g_cm3"], rho_aa_err) / rho_aa
        metrics["density_cg_last_quarter_g_cm3"] = npt["density_last_quarter_g_cm3"]
        metrics["temperature_cg_npt_K"] = npt["mean_temperature_K"]
        metrics["min_pair_distance_cg_npt_A"] = npt["min_pair_distance_A"]
        npt_thermo = pd.read_csv(npt_thermo_csv)
        metrics.update(density_drift(npt_thermo["density_g_cm3"]))
        metrics["compressibility_cg_per_bar"], metrics["compressibility_cg_stderr_per_bar"] = \
            compressibility_per_bar(npt_thermo["volume_nm3"], temperature_K)
        # structure at the CG model's own NPT density, against the reference: every bead-type pair, averaged as
        # for the NVT RDFs
        npt_rdfs = cg_block_rdfs(npt_topology, npt_trajectory, pairs, nbins, rmax_A, n_blocks)
        maes, errs = [], []
        for pair in pairs:
            g_ref_pair = ref_rdf[ref_rdf["pair"] == pair]["g"].to_numpy()
            _, g_npt, blocks = npt_rdfs[pair]
            maes.append(rdfmod.rdf_mae(g_npt, g_ref_pair))
            errs.append(jackknife_stderr(blocks, lambda g, ref=g_ref_pair: rdfmod.rdf_mae(g, ref)))
        metrics["rdf_mae_npt"] = float(np.mean(maes))
        metrics["rdf_mae_npt_stderr"] = float(np.sqrt(np.sum(np.square(errs))) / len(errs))
    else:  # NVT state (no NPT run) or a failed NPT run
        for key in ("density_cg_g_cm3", "density_cg_stderr_g_cm3", "density_error_pct", "density_error_pct_stderr",
                    "density_cg_last_quarter_g_cm3", "temperature_cg_npt_K", "min_pair_distance_cg_npt_A",
                    "density_drift_pct", "density_trend_pct", "density_trend_t", "compressibility_cg_per_bar", "compressibility_cg_stderr_per_bar",
                    "rdf_mae_npt", "rdf_mae_npt_stderr"):
            metrics[key] = nan
        metrics["density_converged"] = None
    if pressure_bar is not None:
        metrics["compressibility_aa_per_bar"], metrics["compressibility_aa_stderr_per_bar"] = \
            compressibility_per_bar(ref_thermo["volume_nm3"], temperature_K)
    else:
        metrics["compressibility_aa_per_bar"] = metrics["compressibility_aa_stderr_per_bar"] = nan
    k_cg, k_aa = metrics["compressibility_cg_per_bar"], metrics["compressibility_aa_per_bar"]
    metrics["compressibility_ratio"] = k_cg / k_aa if np.isfinite(k_cg) and np.isfinite(k_aa) else nan
    metrics["compressibility_ratio_stderr"] = (metrics["compressibility_ratio"] * np.hypot(
        metrics["compressibility_cg_stderr_per_bar"] / k_cg, metrics["compressibility_aa_stderr_per_bar"] / k_aa)
        if np.isfinite(metrics["compressibility_ratio"]) else nan)
    rdf_noise = metrics["rdf_noise_floor_mae"]  # the mean over pairs, as for the NVT ratio
    metrics["rdf_error_npt_over_noise"] = metrics["rdf_mae_npt"] / rdf_noise
    metrics["rdf_error_npt_over_noise_stderr"] = metrics["rdf_mae_npt_stderr"] / rdf_noise
    p_measured, p_measured_err = block_average(ref_thermo["pressure_bar"]) if "pressure_bar" in ref_thermo else (nan, nan)
    metrics["pressure_aa_measured_bar"], metrics["pressure_aa_measured_stderr_bar"] = p_measured, p_measured_err
    # the all-atom pressure at its density: NPT, the barostat's set pressure (exact on average; the measured
    # mean only adds noise); NVT, the measured pressure
    p_aa, p_aa_err = (pressure_bar, 0.0) if pressure_bar is not None else (p_measured, p_measured_err)
    metrics["pressure_aa_bar"], metrics["pressure_aa_stderr_bar"] = p_aa, p_aa_err
    metrics["pressure_reference_bar"] = pressure_bar
    shift = 0.0
    if volume_term_json is not None:
        from cgtransfer.kinds.volume_term import load_volume_term

        term, reason = load_volume_term(volume_term_json)
        metrics["volume_term"] = term.to_dict() if term is not None else None
        if term is not None and "nvt" not in failed:
            # the NVT run is the base model's (same trajectory: the term exerts no force); add its exact shift
            # the box from the trajectory (DCD: double precision), not the PDB's 3 decimals: the shift's density
            # derivative can be large enough that PDB rounding moves it by a bar
            run = mda.Universe(str(nvt_topology), str(nvt_trajectory))
            rho = run.atoms.n_atoms / float(np.prod(np.asarray(run.trajectory[0].dimensions[:3], dtype=np.float64)))
            shift = float(term.pressure_shift_bar(rho, temperature_K))
        metrics["volume_term_pressure_shift_bar"] = shift
        if term is None:  # the corrected model does not exist: its NVT pressure is unknown, not the base model's
            metrics["volume_term_uncorrectable"] = reason
            metrics["volume_term_pressure_shift_bar"] = nan
    if "nvt" not in failed and metrics.get("volume_term_uncorrectable") is None:
        nvt = {**nvt, "mean_pressure_bar": nvt["mean_pressure_bar"] + shift}
        metrics["pressure_cg_nvt_bar"] = nvt["mean_pressure_bar"]
        metrics["pressure_cg_nvt_stderr_bar"] = nvt["mean_pressure_stderr_bar"]
        metrics["pressure_error_bar"] = nvt["mean_pressure_bar"] - p_aa
        metrics["pressure_error_stderr_bar"] = float(np.hypot(nvt["mean_pressure_stderr_bar"], p_aa_err))
        metrics["temperature_cg_nvt_K"] = nvt["mean_temperature_K"]
        metrics["temperature_deviation_pct_nvt"] = nvt["temperature_deviation_pct"]
        metrics["min_pair_distance_cg_nvt_A"] = nvt["min_pair_distance_A"]
    else:
        for key in ("pressure_cg_nvt_bar", "pressure_cg_nvt_stderr_bar", "pressure_error_bar",
                    "pressure_error_stderr_bar", "temperature_cg_nvt_K", "temperature_deviation_pct_nvt",
                    "min_pair_distance_cg_nvt_A"):
            metrics[key] = nan
    metrics.update(energy_comparison(nvt if "nvt" not in failed else {}, ref_thermo, nvt_topology))
    angles_table = pd.DataFrame(columns=["type", "theta_deg", "p_reference", "p_cg"])
    if reference_angles_csv is not None:
        metrics["angles"], angles_table = angle_comparison(reference_angles_csv, ref_sum, nvt_topology, nvt_trajectory,
                                                           n_blocks, failed="nvt" in failed)
        per_type = list(metrics["angles"].values())
        keys = ("angle_error", "angle_error_stderr", "angle_noise_floor", "angle_error_over_noise",
                "angle_error_over_noise_stderr")
        if per_type:  # mean over bead types, as for the RDF pairs
            err = float(np.mean([a["error"] for a in per_type]))
            se = float(np.sqrt(np.sum([a["error_stderr"] ** 2 for a in per_type])) / len(per_type))
            noise = float(np.mean([a["noise_floor"] for a in per_type]))
            metrics.update(dict(zip(keys, (err, se, noise, err / noise, se / noise))))
        else:
            metrics.update(dict.fromkeys(keys, nan))
    if reference_bonds_csv is not None:  # molecules of several beads: the bonded prior's distance distributions
        metrics["bonds"] = bond_comparison(reference_bonds_csv, nvt_topology, nvt_trajectory, n_blocks,
                                           failed="nvt" in failed)
        per_type = list(metrics["bonds"].values())
        keys = ("bond_error_over_noise", "bond_error_over_noise_stderr")
        if per_type:
            err = float(np.mean([b["error_over_noise"] for b in per_type]))
            se = float(np.sqrt(np.sum([(b["error_stderr"] / b["noise_floor"]) ** 2 for b in per_type])) / len(per_type))
            metrics.update(dict(zip(keys, (err, se))))
        else:
            metrics.update(dict.fromkeys(keys, nan))
    metrics["min_pair_distance_reference_A"] = ref_sum["min_pair_distance_A"]
    metrics.update({k: forces[k] for k in ("force_rmse_kcal_mol_A", "force_mae_kcal_mol_A", "force_r2")})
    metrics["force_rmse_stderr_kcal_mol_A"] = forces.get("force_rmse_stderr_kcal_mol_A", nan)
    metrics["force_state_in_training"] = forces["state_in_training"]
    return metrics, pd.concat(rows, ignore_index=True), angles_table
