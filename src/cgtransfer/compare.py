"""Stage compare: one model at one state against the mapped all-atom reference.

Structure: CG (NVT, reference mean box) RDF vs mapped-AA RDF on identical bins (MDAnalysis InterRDF), read
against the reference's own noise floor (RDF MAE between its two halves). Thermodynamics: CG NPT density vs AA
density, CG NVT pressure vs the state's pressure. Forces: held-out RMSE/MAE/R² of the model on this state.
Contacts: the closest CG bead pair vs the closest mapped reference pair.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import MDAnalysis as mda

from . import rdf as rdfmod
from .cg_md import block_average
from .io import read_json


def cg_rdfs(topology_pdb, trajectory, pairs: list[str], nbins: int, rmax_A: float) -> pd.DataFrame:
    u = mda.Universe(str(topology_pdb), str(trajectory))
    tables = []
    for pair in pairs:
        a, b = pair.split("-")
        r, g = rdfmod.bead_rdf(u, a, b, nbins, rmax_A)
        tables.append(pd.DataFrame({"pair": pair, "r_A": r, "g": g}))
    return pd.concat(tables, ignore_index=True)


def compare_state(reference_rdf_csv, reference_summary_json, reference_thermo_csv, nvt_topology, nvt_trajectory,
                  nvt_summary_json, npt_summary_json, force_errors_json, nbins: int, rmax_A: float,
                  model: str, state: str, temperature_K: float, pressure_bar: float | None):
    ref_rdf = pd.read_csv(reference_rdf_csv)
    ref_sum = read_json(reference_summary_json)
    ref_thermo = pd.read_csv(reference_thermo_csv)
    nvt = read_json(nvt_summary_json)
    npt = read_json(npt_summary_json) if npt_summary_json else None
    forces = read_json(force_errors_json)

    pairs = list(dict.fromkeys(ref_rdf["pair"]))
    cg = cg_rdfs(nvt_topology, nvt_trajectory, pairs, nbins, rmax_A)
    rows = []
    metrics = {"model": model, "state": state, "temperature_K": temperature_K, "pressure_bar": pressure_bar,
               "rdf": {}}
    for pair in pairs:
        ref = ref_rdf[ref_rdf["pair"] == pair]
        mine = cg[cg["pair"] == pair]
        r = ref["r_A"].to_numpy()
        if not np.allclose(r, mine["r_A"].to_numpy()):
            raise ValueError(f"{model}/{state}: CG and reference RDF bins differ for {pair}")
        g_ref, g_cg = ref["g"].to_numpy(), mine["g"].to_numpy()
        peak_ref, peak_cg = rdfmod.first_peak(r, g_ref), rdfmod.first_peak(r, g_cg)
        mae = rdfmod.rdf_mae(g_cg, g_ref)
        noise = rdfmod.rdf_mae(ref["g_first_half"], ref["g_second_half"])
        metrics["rdf"][pair] = {
            "mae": mae,
            "noise_floor_mae": noise,
            "mae_over_noise": mae / noise if noise > 0 else float("inf"),
            "js_divergence_r2g": rdfmod.js_divergence_r2g(r, g_cg, g_ref),
            "first_peak_r_A_cg": peak_cg[0], "first_peak_g_cg": peak_cg[1],
            "first_peak_r_A_ref": peak_ref[0], "first_peak_g_ref": peak_ref[1],
        }
        rows.append(pd.DataFrame({"pair": pair, "r_A": r, "g_reference": g_ref, "g_cg": g_cg}))
    main = metrics["rdf"][pairs[0]]
    metrics["rdf_mae"] = float(np.mean([m["mae"] for m in metrics["rdf"].values()]))
    metrics["rdf_noise_floor_mae"] = float(np.mean([m["noise_floor_mae"] for m in metrics["rdf"].values()]))
    metrics["rdf_js_divergence_r2g"] = float(np.mean([m["js_divergence_r2g"] for m in metrics["rdf"].values()]))
    metrics["first_peak_r_A_cg"], metrics["first_peak_g_cg"] = main["first_peak_r_A_cg"], main["first_peak_g_cg"]
    metrics["first_peak_r_A_ref"], metrics["first_peak_g_ref"] = main["first_peak_r_A_ref"], main["first_peak_g_ref"]

    rho_aa, rho_aa_err = block_average(ref_thermo["density_g_cm3"])
    metrics["density_aa_g_cm3"] = rho_aa
    metrics["density_aa_stderr_g_cm3"] = rho_aa_err
    if npt is not None:
        metrics["density_cg_g_cm3"] = npt["mean_density_g_cm3"]
        metrics["density_cg_stderr_g_cm3"] = npt["mean_density_stderr_g_cm3"]
        metrics["density_error_pct"] = 100.0 * (npt["mean_density_g_cm3"] - rho_aa) / rho_aa
        metrics["density_cg_last_quarter_g_cm3"] = npt["density_last_quarter_g_cm3"]
        metrics["temperature_cg_npt_K"] = npt["mean_temperature_K"]
        metrics["min_pair_distance_cg_npt_A"] = npt["min_pair_distance_A"]
    else:
        metrics["density_cg_g_cm3"] = metrics["density_error_pct"] = None
    metrics["pressure_cg_nvt_bar"] = nvt["mean_pressure_bar"]
    metrics["pressure_cg_nvt_stderr_bar"] = nvt["mean_pressure_stderr_bar"]
    metrics["pressure_reference_bar"] = pressure_bar
    metrics["temperature_cg_nvt_K"] = nvt["mean_temperature_K"]
    metrics["temperature_deviation_pct_nvt"] = nvt["temperature_deviation_pct"]
    metrics["min_pair_distance_cg_nvt_A"] = nvt["min_pair_distance_A"]
    metrics["min_pair_distance_reference_A"] = ref_sum["min_pair_distance_A"]
    metrics.update({k: forces[k] for k in ("force_rmse_kcal_mol_A", "force_mae_kcal_mol_A", "force_r2")})
    metrics["force_state_in_training"] = forces["state_in_training"]
    return metrics, pd.concat(rows, ignore_index=True)
