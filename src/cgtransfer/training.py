"""Stage train: fit one CG model of any kind (`cgtransfer.models`) on a named set of state points, and its
held-out force errors.

The data handling is shared by every kind: the mapped frames of the training states, split per state into
contiguous time blocks (train | valid | test, test last) because consecutive frames are correlated and a
random split leaks. The kind's own `fit` does the rest (HIP-NN-TS: hippynn training with early stopping on the
valid block; MS-CG: least squares with the regularisation chosen on the valid block). The test block is never
used by any fit.
"""

from __future__ import annotations

import json

import numpy as np

from .io import read_json, write_json
from . import bonded
from .models import CGModel, TrainingData, fit_model, load_model

DB_KEYS = ("species", "positions", "cells", "forces")


def time_block_split(n_frames: int, valid_fraction: float, test_fraction: float):
    """Contiguous index blocks (train, valid, test), test at the end of the trajectory."""
    n_test = max(1, int(round(test_fraction * n_frames)))
    n_valid = max(1, int(round(valid_fraction * n_frames)))
    n_train = n_frames - n_valid - n_test
    if n_train < 1:
        raise ValueError(f"{n_frames} frames are too few for valid {valid_fraction} and test {test_fraction}")
    idx = np.arange(n_frames)
    return idx[:n_train], idx[n_train:n_train + n_valid], idx[n_train + n_valid:]


DATASET_KEYS = ("species", "positions", "cells", "forces", "masses", "bead_types")


def load_dataset(path) -> dict:
    """A mapped dataset (map_to_cg's dataset.npz), checked for consistency: a truncated, foreign or hand-edited
    file stops here with the file and what does not match, not deep inside training or MD."""
    try:
        with np.load(path) as d:
            data = {k: d[k] for k in d.files}
    except Exception as exc:  # zipfile.BadZipFile, EOFError, OSError, pickle refusals: all mean a broken file
        raise ValueError(f"{path}: cannot read the mapped dataset ({type(exc).__name__}: {exc}); rerun map_to_cg") from exc
    missing = [k for k in DATASET_KEYS if k not in data]
    if missing:
        raise ValueError(f"{path}: the mapped dataset lacks {missing}")
    n_frames, n_beads = data["positions"].shape[:2]
    shapes = {"species": (n_frames, n_beads), "positions": (n_frames, n_beads, 3), "cells": (n_frames, 3, 3),
              "forces": (n_frames, n_beads, 3), "masses": (n_beads,)}
    for key, shape in shapes.items():
        if data[key].shape != shape:
            raise ValueError(f"{path}: '{key}' has shape {data[key].shape} but {n_frames} frames of {n_beads} beads "
                             f"need {shape}: the dataset is inconsistent (truncated or assembled from other files)")
    n_types = len(data["bead_types"])
    if data["species"].min() < 1 or data["species"].max() > n_types:
        raise ValueError(f"{path}: species numbers outside 1..{n_types} (the bead types {list(data['bead_types'])})")
    for key in ("positions", "cells", "forces"):
        if not np.all(np.isfinite(data[key])):
            raise ValueError(f"{path}: '{key}' holds non-finite values")
    return data


def prior_parameters(datasets: list[dict], summaries: list[dict], prior_cfg: dict) -> dict:
    """Onset: the smallest reference-RDF onset over the training states and bead pairs (the closest contact the
    data allows); strength: mean |force component| of the training data (kcal/mol/Å)."""
    onset = min(p["onset_A"] for s in summaries for p in s["rdf"].values())
    strength = float(np.mean([np.abs(d["forces"]).mean() for d in datasets]))
    return {"onset": onset, "strength": strength, "width": prior_cfg["width_A"], "fraction": prior_cfg["force_fraction_at_onset"]}


def frame_energies(dataset: dict, thermo_path) -> np.ndarray:
    """The all-atom potential energy (kcal/mol) of every mapped frame, from the reference thermo CSV (one row per
    recorded frame; matched by time, so a thermo file of another run is a clear error)."""
    import pandas as pd

    from . import units

    thermo = pd.read_csv(thermo_path)
    times = np.asarray(dataset["time_ps"], dtype=np.float64)
    rows = {round(float(t), 6): float(e) for t, e in zip(thermo["time_ps"], thermo["potential_energy_kJ_mol"])}
    missing = [t for t in times if round(float(t), 6) not in rows]
    if missing:
        raise ValueError(f"{thermo_path}: no all-atom energy at {len(missing)} of the {len(times)} mapped frame times "
                         f"(first {missing[0]:g} ps): the thermo file and the mapped dataset are not of the same run")
    return units.kj_to_kcal(np.array([rows[round(float(t), 6)] for t in times]))


def training_data(dataset_paths: list, summary_paths: list, state_names: list[str], prior_cfg: dict,
                  train_cfg: dict, state_temperatures_K: dict | None = None,
                  reference_thermo_paths: list | None = None) -> TrainingData:
    """Load the mapped training states, concatenate them and split each into contiguous time blocks.
    ``state_temperatures_K`` (state → K) gives every frame its temperature; ``reference_thermo_paths`` (one per
    state) its all-atom potential energy (energy anchoring of temperature-aware models)."""
    datasets = [load_dataset(p) for p in dataset_paths]
    summaries = [read_json(p) for p in summary_paths]
    bead_types = [str(t) for t in datasets[0]["bead_types"]]
    for d, name in zip(datasets, state_names):
        if [str(t) for t in d["bead_types"]] != bead_types:
            raise ValueError(f"state {name}: bead types differ from the first training state")
    arrays = {k: np.concatenate([d[k] for d in datasets]) for k in DB_KEYS}
    arrays["species"] = arrays["species"].astype(np.int64)
    for k in ("positions", "cells", "forces"):
        arrays[k] = arrays[k].astype(np.float32)
    splits = {"train": [], "valid": [], "test": []}
    frame_state = []
    offset = 0
    for d, name in zip(datasets, state_names):
        n = len(d["positions"])
        for split, idx in zip(("train", "valid", "test"),
                              time_block_split(n, train_cfg["valid_fraction"], train_cfg["test_fraction"])):
            splits[split].append(idx + offset)
        frame_state += [name] * n
        offset += n
    splits = {k: np.concatenate(v) for k, v in splits.items()}
    frame_temperature = []
    if state_temperatures_K is not None:
        missing = [s for s in state_names if s not in state_temperatures_K]
        if missing:
            raise ValueError(f"no temperature for the training state(s) {missing}: their frames cannot be given one")
        frame_temperature = [float(state_temperatures_K[s]) for s in frame_state]
    frame_energy = []
    if reference_thermo_paths:
        if len(reference_thermo_paths) != len(datasets):
            raise ValueError(f"{len(reference_thermo_paths)} reference thermo files for {len(datasets)} training states")
        frame_energy = np.concatenate([frame_energies(d, p) for d, p in zip(datasets, reference_thermo_paths)]).tolist()
    # several beads per molecule: a fixed harmonic bonded prior (Boltzmann-inverted), intramolecular pairs
    # excluded from the nonbonded model; every kind fits the forces that remain (cgtransfer.bonded)
    bonded_prior = bonded.fit_bonded_prior(datasets, list(state_names))
    if bonded_prior is not None:
        e_bonded, f_bonded = bonded.bonded_energy_forces(bonded_prior, arrays["positions"], arrays["cells"])
        arrays["forces"] = (arrays["forces"] - f_bonded).astype(np.float32)
        if len(frame_energy):  # energy anchoring: the network's U(R) is the energy beyond the bonded prior's
            frame_energy = (np.asarray(frame_energy) - e_bonded).tolist()
        arrays["molecule"] = np.broadcast_to(np.asarray(bonded_prior["molecule_of_bead"], dtype=np.int64),
                                             arrays["species"].shape).copy()
    return TrainingData(arrays, splits, bead_types, list(state_names), summaries,
                        prior_parameters(datasets, summaries, prior_cfg), frame_state, frame_temperature, frame_energy,
                        bonded=bonded_prior)


def kind_settings(kind: str, config: dict) -> dict:
    """The parts of the config a model kind's fit reads: ``config`` holds hipnn, mscg, training."""
    if kind == "hipnn":
        return {"network": config["hipnn"], "training": config["training"]}
    if kind == "hipnn_t":
        return {"network": config["hipnn"], "training": config["training"], "hipnn_t": config["hipnn_t"]}
    if kind == "mscg":
        return {"mscg": config["mscg"]}
    raise ValueError(f"unknown model kind {kind!r}")


def train_model(kind: str, dataset_paths: list, summary_paths: list, state_names: list[str], settings: dict,
                prior_cfg: dict, train_cfg: dict, out_checkpoint_dir, label: str = "model", seed: int = 0,
                reference_thermo_paths: list | None = None) -> dict:
    """Fit one model of ``kind`` on the named states into ``out_checkpoint_dir`` (atomically). Returns the
    training record (timings, split sizes, kind-specific fit details, warnings). ``settings`` of a temperature-
    aware kind carry ``state_temperatures_K`` (state → K); ``reference_thermo_paths`` the all-atom energies."""
    import torch

    torch.manual_seed(seed)
    data = training_data(dataset_paths, summary_paths, state_names, prior_cfg, train_cfg,
                         state_temperatures_K=settings.get("state_temperatures_K"),
                         reference_thermo_paths=reference_thermo_paths)
    record = fit_model(kind, data, settings, out_checkpoint_dir, label=label, seed=seed)
    record.update({"train_frames": int(len(data.splits["train"])), "valid_frames": int(len(data.splits["valid"])),
                   "test_frames": int(len(data.splits["test"]))})
    return record


def force_metrics(predicted: np.ndarray, reference: np.ndarray) -> dict:
    """RMSE, MAE (kcal/mol/Å) and R² over force components. With frame-shaped arrays (frames first) the RMSE
    also gets a standard error from the frame-to-frame spread of the mean squared error (delta method)."""
    predicted = np.asarray(predicted, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    p, r = predicted.ravel(), reference.ravel()
    res = p - r
    rmse = float(np.sqrt(np.mean(res**2)))
    out = {
        "force_rmse_kcal_mol_A": rmse,
        "force_mae_kcal_mol_A": float(np.mean(np.abs(res))),
        "force_r2": float(1.0 - np.sum(res**2) / np.sum((r - r.mean()) ** 2)),
        "n_components": int(p.size),
    }
    if predicted.ndim >= 2 and len(predicted) >= 2:
        mse_per_frame = ((predicted - reference) ** 2).reshape(len(predicted), -1).mean(axis=1)
        se_mse = mse_per_frame.std(ddof=1) / np.sqrt(len(mse_per_frame))
        out["force_rmse_stderr_kcal_mol_A"] = float(se_mse / (2.0 * rmse)) if rmse > 0 else 0.0
        out["n_frames"] = int(len(predicted))
    return out


def held_out_forces(model: CGModel, data: dict, valid_fraction: float, test_fraction: float,
                    temperature_K: float | None = None):
    """Predicted and reference forces on the test block (the last frames) of one state (at its temperature)."""
    _, _, test = time_block_split(len(data["positions"]), valid_fraction, test_fraction)
    _, pred = model.predict_frames(data, test, temperature_K=temperature_K)
    return pred, data["forces"][test]


def train_and_report(kind: str, dataset_paths, summary_paths, state_names, settings, prior_cfg, train_cfg,
                     out_checkpoint_dir, out_metrics, out_curve_png, out_parity_png, label: str, seed: int = 0,
                     reference_thermo_paths: list | None = None) -> dict:
    """Fit, then evaluate the held-out test block of every training state; write metrics, curve and parity."""
    from . import plots
    from .io import save_figure

    record = train_model(kind, dataset_paths, summary_paths, state_names, settings, prior_cfg, train_cfg,
                         out_checkpoint_dir, label=label, seed=seed, reference_thermo_paths=reference_thermo_paths)
    model = load_model(out_checkpoint_dir, device=train_cfg["device"])
    temperatures = settings.get("state_temperatures_K", {})
    preds, refs, per_state = [], [], {}
    for path, state in zip(dataset_paths, state_names):
        pred, ref = held_out_forces(model, load_dataset(path), train_cfg["valid_fraction"], train_cfg["test_fraction"],
                                    temperatures.get(state))
        per_state[state] = force_metrics(pred, ref)
        preds.append(pred)
        refs.append(ref)
    pred, ref = np.concatenate(preds), np.concatenate(refs)
    test = force_metrics(pred, ref)
    curve = record.pop("curve")
    metrics = {"model": label, "training_states": list(state_names), "seed": int(seed), "test": test,
               "test_per_state": per_state, **record}
    print(json.dumps(metrics, indent=1))
    save_figure(model.curve_figure(curve, f"{label} ({kind})"), out_curve_png)
    save_figure(plots.force_parity(pred, ref, f"{label} ({kind})", test), out_parity_png)
    write_json(out_metrics, metrics)
    return metrics


def model_force_errors(checkpoint_dir, dataset_paths: dict, train_cfg, training_states, out_json,
                       temperatures_K: dict | None = None) -> dict:
    """Held-out force errors of one model on every state (state → mapped dataset): the test block of each
    (never trained on by any model), at the state's temperature (the input of a temperature-aware model).
    One job per model: the model is loaded once. Writes and returns {state: metrics}."""
    model = load_model(checkpoint_dir, device=train_cfg["device"])
    out = {}
    for state, path in dataset_paths.items():
        data = load_dataset(path)
        model.check_data(data, str(path))
        pred, ref = held_out_forces(model, data, train_cfg["valid_fraction"], train_cfg["test_fraction"],
                                    (temperatures_K or {}).get(state))
        out[state] = {**force_metrics(pred, ref), "kind": model.kind, "state_in_training": state in training_states}
    write_json(out_json, out)
    return out


def export_pair_table(checkpoint_dir, out_csv, out_png, label: str) -> None:
    """An MS-CG model's fitted table (r, force, energy per pair) as CSV and its pair potential/force figure."""
    from .io import save_figure, write_csv

    model = load_model(checkpoint_dir)
    if not hasattr(model, "pair_table"):
        raise ValueError(f"{label}: a {model.kind} model has no pair table (only mscg models do)")
    write_csv(out_csv, model.pair_table())
    save_figure(model.pair_figure(label), out_png)
