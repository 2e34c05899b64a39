"""Stage learned: what one HIP-NN-TS model learned, beside the MS-CG pair model fitted on the same frames
(cgtransfer.kinds.learned holds the analyses), and the table across a system's models.

Per model (`learned_model`), at every state of its system (a temperature-aware model at the state's temperature):

* the target state's MS-CG table: the MS-CG least squares (`learned.pair_projection`, the MS-CG kind's basis) of
  the mapped nonbonded forces on frames of the state's training block; its held-out force R² on the state's test
  block, and the held-out R² of the model and of an MS-CG table fitted on the model's own training states (the
  same training frames: what the network explains beyond the best pair model);
* the network's pair projection: the same least squares fitted to the model's own forces on those frames; its R²
  (1 − R²: the share of the network's force no pair potential can represent) and its pair force (the conditional
  mean of the network's pair-projected force) beside the MS-CG table;
* the effective pair potential (two isolated beads; hipnn_t at the state's temperature): well position and depth,
  contact shoulder, and its RMS difference to the state's MS-CG pair force over the sampled range;
* hippynn's per-interaction-layer energy terms (HEnergy node) on the state's test frames;
* the three-body energy of a triplet at the first-shell distance (the MS-CG table's contact) against the angle,
  at every training temperature of a temperature-aware model (once for a plain one).

`learned_table` sets every model's numbers per state beside its held-out RDF error (rule compare): which parts
move with the training temperature, and whether a model's RDF error follows the distance of its effective pair
potential from the target state's MS-CG table.

Few frames per state (`N_FIT_FRAMES`, `N_TEST_FRAMES`): seconds per model at the tiny size.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from cgtransfer import plots
from cgtransfer.analysis.bonds import bonded_energy_forces
from cgtransfer.dataset import load_dataset, time_block_split
from cgtransfer.io import read_json, save_figure, write_csv, write_json
from cgtransfer.kinds import learned
from cgtransfer.kinds.registry import load_model

#: frames per state: spread over the training block (the MS-CG fits and the network's pair projection) and the
#: last of the test block (held-out R², energy terms)
N_FIT_FRAMES = 40
N_TEST_FRAMES = 8
#: the radial grid (Å) of the curves and the triplet's angles (degrees; those with r_jk inside the sampled range)
GRID_SPACING_A = 0.02
TRIPLET_ANGLES_DEG = np.arange(40.0, 180.1, 5.0)
#: the P-spline weight of the network's pair projection (its forces are smooth and noise-free: the least-squares
#: limit); the MS-CG tables of the mapped forces choose theirs among the config's `mscg.regularization` by
#: cross-validation over the frames, as the MS-CG kind does
REGULARIZATION = 1e-6
CV_FOLDS = 4


def _spread(idx: np.ndarray, n: int) -> np.ndarray:
    """At most ``n`` indices spread evenly over ``idx`` (all of them if fewer)."""
    if len(idx) <= n:
        return np.asarray(idx)
    return np.asarray(idx)[np.unique(np.linspace(0, len(idx) - 1, n).round().astype(int))]


def _nonbonded_target(model, data: dict) -> np.ndarray:
    """The mapped forces the nonbonded model is fitted to: minus the model's bonded prior (several beads)."""
    forces = np.asarray(data["forces"], dtype=np.float64)
    if model.bonded:
        forces = forces - bonded_energy_forces(model.bonded, data["positions"], data["cells"])[1]
    return forces


def _features(r, energy, force, r_min: float) -> dict:
    sel = r >= r_min
    return learned.pair_curve_features(r[sel], energy[sel], force[sel])


def _clean(x):
    """JSON-able: NaN/inf as None, numpy scalars as Python numbers."""
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return float(x) if math.isfinite(float(x)) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


def learned_model(checkpoint_dir, dataset_paths: dict, temperatures_K: dict, split: dict, mscg: dict, out: dict,
                  model_name: str = "", device: str = "cpu") -> dict:
    """All analyses of one network model on every state (state → mapped dataset path); ``split``: the time-block
    fractions (valid_fraction, test_fraction); ``mscg``: the MS-CG settings (knot_spacing_A, spline_degree).
    ``out``: paths of ``json`` (numbers), ``curves`` (CSV: r, pair, source, state, energy, force), ``triplet``
    (CSV) and ``hierarchy`` (CSV). Returns the JSON's content."""
    model = load_model(checkpoint_dir, device=device)
    if model.kind not in ("hipnn", "hipnn_t"):
        raise ValueError(f"{checkpoint_dir}: the learned analyses are for HIP-NN-TS models, not {model.kind}")
    rc = model.interaction_range_A
    bead_types = list(model.bead_types)
    pair_names = [f"{bead_types[a]}-{bead_types[b]}" for a in range(len(bead_types)) for b in range(a, len(bead_types))]
    pair_types = {f"{bead_types[a]}-{bead_types[b]}": (a + 1, b + 1)
                  for a in range(len(bead_types)) for b in range(a, len(bead_types))}
    molecule = np.asarray(model.bonded["molecule_of_bead"]) if model.bonded else None
    aware = model.temperature_aware
    training = list(model.training_states)
    fit_kw = {"knot_spacing_A": float(mscg.get("knot_spacing_A", 0.1)),
              "spline_degree": int(mscg.get("spline_degree", 3)), "regularization": REGULARIZATION}
    mscg_kw = {**fit_kw, "regularization": list(mscg.get("regularization", [REGULARIZATION])),
               "selection_tolerance": float(mscg.get("selection_tolerance", 0.001))}

    states, fit_sets = {}, {}
    for state, path in dataset_paths.items():
        data = load_dataset(path)
        model.check_data(data, str(path))
        train, _, test = time_block_split(len(data["positions"]), split["valid_fraction"], split["test_fraction"])
        fit, held = _spread(train, N_FIT_FRAMES), test[-N_TEST_FRAMES:]
        target = _nonbonded_target(model, data)
        states[state] = {"data": data, "fit": fit, "test": held, "target": target}
        fit_sets[state] = (data["species"][fit], data["positions"][fit], data["cells"][fit], target[fit])

    # the MS-CG table of the model's own training states (the same training frames as the network's)
    own = [fit_sets[s] for s in training if s in fit_sets]
    mscg_training = learned.pair_projection(*(np.concatenate([f[k] for f in own]) for k in range(3)),
                                            np.concatenate([f[3] for f in own]), bead_types, rc, molecule=molecule,
                                            cv_folds=CV_FOLDS, **mscg_kw) if own else None

    curves, hierarchy_rows, per_state = [], [], {}
    two_bead = {}  # temperature (None for a plain model) → pair → curve
    r_walls = {}
    mscg_state = {}
    for state, s in states.items():
        mscg_state[state] = learned.pair_projection(*fit_sets[state], bead_types, rc, molecule=molecule,
                                                    cv_folds=CV_FOLDS, **mscg_kw)
        for name, w in mscg_state[state]["r_wall_A"].items():
            r_walls[name] = min(r_walls.get(name, math.inf), w)
    r_grid = {name: np.arange(max(0.5, r_walls[name] - 0.3), rc - 0.5 * GRID_SPACING_A, GRID_SPACING_A)
              for name in pair_names}
    r_grid_all = np.arange(0.5 * GRID_SPACING_A, rc, GRID_SPACING_A)  # the pair-distance histogram's grid

    for state, s in states.items():
        data, T = s["data"], temperatures_K.get(state) if aware else None
        if aware and T is None:
            raise ValueError(f"no temperature for state {state}: the temperature-aware model needs one")
        key = None if T is None else float(T)
        if key not in two_bead:
            two_bead[key] = {name: learned.two_bead_curve(model, r_grid[name], pair_types[name], temperature_K=T)
                             for name in pair_names}
        test = s["test"]
        _, predicted = model.predict_nonbonded(data["species"][test], data["positions"][test], data["cells"][test], T)
        reference = s["target"][test]
        net_r2 = learned.force_r2(predicted, reference)
        ms = mscg_state[state]
        ms_pred = learned.pair_forces_on_frames(ms["pair_forces"], bead_types, data["species"][test],
                                                data["positions"][test], data["cells"][test], molecule)
        row = {"state": state, "temperature_K": temperatures_K.get(state), "in_training": state in training,
               "network_test_r2": net_r2, "mscg_state_test_r2": learned.force_r2(ms_pred, reference),
               "mscg_regularization": ms["regularization"], "n_fit_frames": int(len(s["fit"])),
               "n_test_frames": int(len(test)),
               "network_force_rmse_kcal_mol_A": float(np.sqrt(np.mean((predicted - reference) ** 2))),
               "reference_force_rms_kcal_mol_A": float(np.sqrt(np.mean(reference**2)))}
        if mscg_training is not None:
            mt = learned.pair_forces_on_frames(mscg_training["pair_forces"], bead_types, data["species"][test],
                                               data["positions"][test], data["cells"][test], molecule)
            row["mscg_training_test_r2"] = learned.force_r2(mt, reference)
            row["beyond_pair_r2"] = net_r2 - row["mscg_training_test_r2"]
        proj = learned.network_pair_projection(model, data, s["fit"], temperature_K=T, **fit_kw)
        row.update({"network_pair_r2": proj["r2"], "many_body_share": proj["many_body_share"],
                    "network_pair_residual_rms_kcal_mol_A": proj["residual_rms_kcal_mol_A"]})
        counts = learned.pair_distance_counts(data["species"][s["fit"]], data["positions"][s["fit"]],
                                              data["cells"][s["fit"]], bead_types, r_grid_all, rc, molecule)
        pairs = {}
        for name in pair_names:
            r = r_grid[name]
            tb = two_bead[key][name]
            ref_pf, proj_pf = ms["pair_forces"][name], proj["pair_forces"][name]
            lo = max(ref_pf.r_wall, proj_pf.r_wall)
            hi = rc - GRID_SPACING_A
            eff = learned.pair_force_rms_difference(r, tb["force_kcal_mol_A"], ref_pf.force, lo, hi)
            prj = learned.pair_force_rms_difference(r, proj_pf.force(r), ref_pf.force, lo, hi)
            w = np.interp(r, r_grid_all, counts[name])  # the liquid's pairs at this state
            eff_w = learned.pair_force_rms_difference(r, tb["force_kcal_mol_A"], ref_pf.force, lo, hi, weights=w)
            prj_w = learned.pair_force_rms_difference(r, proj_pf.force(r), ref_pf.force, lo, hi, weights=w)
            pairs[name] = {"effective": _features(r, tb["energy_kcal_mol"], tb["force_kcal_mol_A"], lo),
                           "network_only": _features(r, tb["network_energy_kcal_mol"],
                                                     tb["network_force_kcal_mol_A"], lo),
                           "projected": _features(r, proj_pf.energy(r), proj_pf.force(r), lo),
                           "mscg": _features(r, ref_pf.energy(r), ref_pf.force(r), lo),
                           "effective_vs_mscg_rms_kcal_mol_A": eff["rms_kcal_mol_A"],
                           "effective_vs_mscg_relative": eff["relative"],
                           "projected_vs_mscg_rms_kcal_mol_A": prj["rms_kcal_mol_A"],
                           "projected_vs_mscg_relative": prj["relative"], "sampled_from_A": lo,
                           "effective_vs_mscg_pair_weighted_rms_kcal_mol_A": eff_w["rms_kcal_mol_A"],
                           "projected_vs_mscg_pair_weighted_rms_kcal_mol_A": prj_w["rms_kcal_mol_A"]}
            inside = r >= ref_pf.r_wall
            for source, e, f in (("effective", tb["energy_kcal_mol"], tb["force_kcal_mol_A"]),
                                 ("projected", proj_pf.energy(r), proj_pf.force(r)),
                                 ("mscg", ref_pf.energy(r), ref_pf.force(r))):
                if source == "effective" and aware is False and state != next(iter(states)):
                    continue  # a plain model's effective curve is the same at every state: written once
                keep = np.ones_like(r, dtype=bool) if source == "effective" else inside
                curves.append(pd.DataFrame({"source": source, "state": "" if source == "effective" and not aware
                                            else state, "pair": name, "r_A": r[keep],
                                            "energy_kcal_mol": np.asarray(e)[keep],
                                            "force_kcal_mol_A": np.asarray(f)[keep]}))
        row["pairs"] = pairs
        hier = learned.energy_hierarchy(model, data, test, temperature_K=T)
        n_beads = data["species"].shape[1]
        row["hierarchy"] = {}
        for head, h in hier.items():
            terms = h["layer_terms_kcal_mol"] / n_beads
            row["hierarchy"][head] = {"layer_mean_kcal_mol_per_bead": terms.mean(axis=0).tolist(),
                                      "layer_std_kcal_mol_per_bead": terms.std(axis=0).tolist(),
                                      "hierarchicality": float(np.mean(h["hierarchicality"]))}
            for layer in range(terms.shape[1]):
                hierarchy_rows.append({"state": state, "head": head, "layer": layer,
                                       "mean_kcal_mol_per_bead": float(terms[:, layer].mean()),
                                       "std_kcal_mol_per_bead": float(terms[:, layer].std()),
                                       "hierarchicality": float(np.mean(h["hierarchicality"]))})
        per_state[state] = row

    # the three-body energy of a triplet of each bead type at its first-shell distance (the contact of the MS-CG
    # table of the first training state), at each training temperature of a temperature-aware model
    first = next((st for st in training if st in mscg_state), next(iter(states)))
    triplet_rows, triplets = [], {}
    temps = [temperatures_K[st] for st in training if st in temperatures_K] if aware else [None]
    for t, bead in enumerate(bead_types, start=1):
        name = f"{bead}-{bead}"
        ms_feat = per_state[first]["pairs"][name]["mscg"]
        r1 = ms_feat["contact_A"] or ms_feat["well_position_A"]
        if r1 is None:
            continue
        wall = mscg_state[first]["r_wall_A"][name]
        angles = TRIPLET_ANGLES_DEG[2.0 * r1 * np.sin(0.5 * np.radians(TRIPLET_ANGLES_DEG)) >= wall]
        for T in temps:
            tb = learned.three_body_energy(model, r1, angles, (t, t, t), temperature_K=T)
            e3, e2 = tb["three_body_kcal_mol"], tb["pair_sum_kcal_mol"]
            triplets[f"{name}-{bead}" + ("" if T is None else f"@{T:g}K")] = {
                "r_A": r1, "temperature_K": T, "max_abs_kcal_mol": float(np.abs(e3).max()),
                "rms_kcal_mol": float(np.sqrt(np.mean(e3**2))),
                "relative_to_pair_sum": float(np.sqrt(np.mean(e3**2)) / max(np.sqrt(np.mean(e2**2)), 1e-300)),
                "at_60_deg_kcal_mol": float(np.interp(60.0, tb["angle_deg"], e3)) if angles.min() <= 60 else None,
                "at_180_deg_kcal_mol": float(e3[-1])}
            triplet_rows.append(pd.DataFrame({"triplet": f"{bead}-{bead}-{bead}", "temperature_K": T,
                                              "r_A": r1, "angle_deg": tb["angle_deg"], "r_jk_A": tb["r_jk_A"],
                                              "three_body_kcal_mol": e3, "pair_sum_kcal_mol": e2}))

    result = _clean({"model": model_name, "kind": model.kind, "training_states": training,
                     "bead_types": bead_types, "range_A": rc, "n_fit_frames": N_FIT_FRAMES,
                     "n_test_frames": N_TEST_FRAMES, "states": per_state, "triplets": triplets})
    write_csv(out["curves"], pd.concat(curves, ignore_index=True))
    write_csv(out["triplet"], pd.concat(triplet_rows, ignore_index=True) if triplet_rows else
              pd.DataFrame(columns=["triplet", "temperature_K", "r_A", "angle_deg", "r_jk_A", "three_body_kcal_mol",
                                    "pair_sum_kcal_mol"]))
    write_csv(out["hierarchy"], pd.DataFrame(hierarchy_rows))
    write_json(out["json"], result)
    return result


# ------------------------------------------------------------------ across the system's models
def learned_rows(learned_jsons: dict, compare_metrics: dict | None = None) -> pd.DataFrame:
    """One row per model, state and pair: the learned numbers beside the model's held-out RDF error at that state
    (``compare_metrics``: (model, state) → metrics.json path, rule compare), with a column ``training_T_K`` (the
    mean training temperature) to see what moves with it."""
    rows = []
    for model, path in learned_jsons.items():
        res = read_json(path)
        temps = [st["temperature_K"] for name, st in res["states"].items() if name in res["training_states"]]
        mean_t = float(np.mean(temps)) if temps else None
        metrics = {}
        for (m, state), p in (compare_metrics or {}).items():
            if m == model:
                metrics[state] = read_json(p)
        for state, st in res["states"].items():
            for pair, pr in st["pairs"].items():
                eff, ms = pr["effective"], pr["mscg"]
                hier = st["hierarchy"].get("HEnergy", {})
                layers = hier.get("layer_std_kcal_mol_per_bead", [])
                row = {"model": model, "kind": res["kind"], "state": state, "temperature_K": st["temperature_K"],
                       "in_training": st["in_training"], "training_T_K": mean_t, "pair": pair,
                       "network_test_r2": st["network_test_r2"], "mscg_state_test_r2": st["mscg_state_test_r2"],
                       "mscg_training_test_r2": st.get("mscg_training_test_r2"),
                       "beyond_pair_r2": st.get("beyond_pair_r2"), "network_pair_r2": st["network_pair_r2"],
                       "many_body_share": st["many_body_share"],
                       "well_position_A": eff["well_position_A"], "well_depth_kcal_mol": eff["well_depth_kcal_mol"],
                       "contact_A": eff["contact_A"], "contact_energy_kcal_mol": eff["contact_energy_kcal_mol"],
                       "mscg_well_position_A": ms["well_position_A"], "mscg_well_depth_kcal_mol":
                       ms["well_depth_kcal_mol"], "mscg_contact_A": ms["contact_A"],
                       "mscg_contact_energy_kcal_mol": ms["contact_energy_kcal_mol"],
                       "effective_vs_mscg_rms_kcal_mol_A": pr["effective_vs_mscg_rms_kcal_mol_A"],
                       "effective_vs_mscg_relative": pr["effective_vs_mscg_relative"],
                       "effective_vs_mscg_pair_weighted_rms_kcal_mol_A":
                       pr["effective_vs_mscg_pair_weighted_rms_kcal_mol_A"],
                       "projected_vs_mscg_pair_weighted_rms_kcal_mol_A":
                       pr["projected_vs_mscg_pair_weighted_rms_kcal_mol_A"],
                       "projected_vs_mscg_rms_kcal_mol_A": pr["projected_vs_mscg_rms_kcal_mol_A"],
                       "hierarchicality": hier.get("hierarchicality"),
                       "interaction_layers_std_kcal_mol_per_bead": float(np.sum(layers[1:])) if layers else None}
                trip = [v for k, v in res["triplets"].items() if k.startswith(f"{pair.split('-')[0]}-{pair}")]
                row["triplet_max_abs_kcal_mol"] = max((v["max_abs_kcal_mol"] for v in trip), default=None)
                m = metrics.get(state, {})
                row["rdf_error_over_noise"] = m.get("rdf_mae_over_noise")
                row["force_rmse_kcal_mol_A"] = m.get("force_rmse_kcal_mol_A")
                rows.append(row)
    return pd.DataFrame(rows)


def learned_table(learned_jsons: dict, curves_csvs: dict, triplet_csvs: dict, compare_metrics: dict, out: dict,
                  system: str = "") -> pd.DataFrame:
    """The system's table across its network models (``out["csv"]``), the per-model temperature dependence
    (``out["temperature_json"]``: Spearman correlation over models of each quantity with the training temperature
    and of the RDF error with the effective potential's distance from the target state's MS-CG table) and one
    figure (``out["figure"]``)."""
    table = learned_rows(learned_jsons, compare_metrics)
    write_csv(out["csv"], table)
    write_json(out["json"], _clean(learned_trends(table)))
    curves = {m: pd.read_csv(p) for m, p in curves_csvs.items()}
    triplets = {m: pd.read_csv(p) for m, p in triplet_csvs.items()}
    save_figure(plots.learned_overview(table, curves, triplets, system), out["figure"])
    return table


TREND_COLUMNS = ("well_position_A", "well_depth_kcal_mol", "contact_A", "contact_energy_kcal_mol", "many_body_share",
                 "network_test_r2", "beyond_pair_r2", "effective_vs_mscg_pair_weighted_rms_kcal_mol_A",
                 "projected_vs_mscg_pair_weighted_rms_kcal_mol_A", "hierarchicality",
                 "triplet_max_abs_kcal_mol")


def _spearman(x, y):
    x, y = pd.Series(x, dtype=float), pd.Series(y, dtype=float)
    ok = x.notna() & y.notna()
    if ok.sum() < 3 or x[ok].nunique() < 2 or y[ok].nunique() < 2:
        return None
    return float(x[ok].rank().corr(y[ok].rank()))


def learned_trends(table: pd.DataFrame) -> dict:
    """Which learned quantities move with the training temperature (Spearman ρ over models of the mean training
    temperature against each quantity, evaluated at each state, first pair only), and whether the held-out RDF
    error follows the effective pair potential's distance from the target state's MS-CG table (ρ over all model ×
    state cells). None where fewer than three models (or cells) vary."""
    if table.empty:
        return {"with_training_temperature": {}, "rdf_error_vs_mscg_distance": None, "n_cells": 0}
    first = table[table["pair"] == table["pair"].iloc[0]]
    moves = {}
    for col in TREND_COLUMNS:
        per_state = {}
        for state, g in first.groupby("state"):
            per_state[state] = _spearman(g["training_T_K"], g[col])
        moves[col] = {"spearman_by_state": per_state,
                      "range_over_models": _clean({st: float(g[col].max() - g[col].min()) if g[col].notna().any()
                                                   else None for st, g in first.groupby("state")})}
    return {"pair": str(table["pair"].iloc[0]), "with_training_temperature": moves,
            "rdf_error_vs_mscg_distance": _spearman(first["effective_vs_mscg_pair_weighted_rms_kcal_mol_A"],
                                                    first["rdf_error_over_noise"]),
            "rdf_error_vs_projected_mscg_distance": _spearman(
                first["projected_vs_mscg_pair_weighted_rms_kcal_mol_A"], first["rdf_error_over_noise"]),
            "n_cells": int(first["rdf_error_over_noise"].notna().sum())}
