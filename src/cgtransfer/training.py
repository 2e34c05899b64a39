"""Stage train: force matching of a HIP-NN-TS CG model (hippynn) on a named set of state points.

Loss = force RMSE + force MAE (no energy target); Adam; batch size raised on plateau; early stopping on the
validation loss (hippynn PatienceController). Frames are split per state into contiguous time blocks
(train | valid | test, test last) because consecutive frames are correlated and a random split leaks.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from . import model as cgmodel
from .compute import resolve_device
from .io import read_json, write_json

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


def load_dataset(path) -> dict:
    with np.load(path) as d:
        return {k: d[k] for k in d.files}


def prior_parameters(datasets: list[dict], summaries: list[dict], prior_cfg: dict) -> dict:
    """Onset: the smallest reference-RDF onset over the training states and bead pairs (the closest contact the
    data allows); strength: mean |force component| of the training data (kcal/mol/Å)."""
    onset = min(p["onset_A"] for s in summaries for p in s["rdf"].values())
    strength = float(np.mean([np.abs(d["forces"]).mean() for d in datasets]))
    return {"onset": onset, "strength": strength, "width": prior_cfg["width_A"], "fraction": prior_cfg["force_fraction_at_onset"]}


def train_model(dataset_paths: list, summary_paths: list, state_names: list[str], network: dict, prior_cfg: dict,
                train_cfg: dict, out_checkpoint_dir, device: str = "auto", seed: int = 0) -> dict:
    """Train one model; write the hippynn experiment files + model_info.json into ``out_checkpoint_dir``.
    Returns the training record (timings, split sizes, held-out force metrics per state)."""
    from hippynn.databases import Database
    from hippynn.experiment import SetupParams, setup_and_train
    from hippynn.experiment.assembly import assemble_for_training
    from hippynn.experiment.controllers import PatienceController, RaiseBatchSizeOnPlateau
    from hippynn.graphs.nodes import loss
    from hippynn.tools import active_directory

    torch.manual_seed(seed)
    datasets = [load_dataset(p) for p in dataset_paths]
    summaries = [read_json(p) for p in summary_paths]
    bead_types = [str(t) for t in datasets[0]["bead_types"]]
    for d, name in zip(datasets, state_names):
        if [str(t) for t in d["bead_types"]] != bead_types:
            raise ValueError(f"state {name}: bead types differ from the first training state")
    prior = prior_parameters(datasets, summaries, prior_cfg)

    arrays = {k: np.concatenate([d[k] for d in datasets]) for k in DB_KEYS}
    arrays["species"] = arrays["species"].astype(np.int64)
    for k in ("positions", "cells", "forces"):
        arrays[k] = arrays[k].astype(np.float32)
    splits = {"train": [], "valid": [], "test": []}
    frame_state = []
    offset = 0
    for d, name in zip(datasets, state_names):
        n = len(d["positions"])
        tr, va, te = time_block_split(n, train_cfg["valid_fraction"], train_cfg["test_fraction"])
        splits["train"].append(tr + offset)
        splits["valid"].append(va + offset)
        splits["test"].append(te + offset)
        frame_state += [name] * n
        offset += n
    splits = {k: np.concatenate(v) for k, v in splits.items()}
    box_min = float(arrays["cells"][:, [0, 1, 2], [0, 1, 2]].min())
    if network["dist_hard_max"] >= 0.5 * box_min:
        raise ValueError(f"model dist_hard_max {network['dist_hard_max']} Å must be below half the smallest box "
                         f"edge ({0.5 * box_min:.2f} Å) for the periodic KD-tree pair finder")

    nodes = cgmodel.build_graph(len(bead_types), network, prior, pair_skin_A=0.0)
    forces = nodes["forces"]
    rmse = loss.MSELoss.of_node(forces) ** (1 / 2)
    mae = loss.MAELoss.of_node(forces)
    rsq = loss.Rsq.of_node(forces)
    total = rmse + mae
    validation_losses = {"ForceRMSE": rmse, "ForceMAE": mae, "ForceRsq": rsq, "TotalLoss": total}
    training_modules, db_info = assemble_for_training(total, validation_losses)

    database = Database(arrays, seed=seed, quiet=True, **db_info)
    for split in ("test", "valid", "train"):
        database.make_explicit_split(split, torch.as_tensor(splits[split]))

    optimizer = torch.optim.Adam(training_modules.model.parameters(), lr=train_cfg["learning_rate"])
    scheduler = RaiseBatchSizeOnPlateau(optimizer=optimizer, max_batch_size=train_cfg["max_batch_size"],
                                        patience=train_cfg["plateau_patience"], factor=0.5)
    controller = PatienceController(optimizer=optimizer, scheduler=scheduler, batch_size=train_cfg["batch_size"],
                                    eval_batch_size=train_cfg["eval_batch_size"], max_epochs=train_cfg["max_epochs"],
                                    termination_patience=train_cfg["termination_patience"],
                                    fraction_train_eval=train_cfg["fraction_train_eval"], stopping_key="TotalLoss")
    torch_device = resolve_device(device)

    out_dir = Path(out_checkpoint_dir)
    tmp_dir = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp_dir, ignore_errors=True)
    t0 = time.perf_counter()
    with active_directory(str(tmp_dir), create=True):
        tracker = setup_and_train(training_modules=training_modules, database=database,
                                  setup_params=SetupParams(controller=controller, device=torch_device))
    wall = time.perf_counter() - t0
    n_epochs = len(tracker.epoch_metric_values)
    n_train_frames = len(splits["train"])
    info = {
        "bead_types": bead_types,
        "network": {k: network[k] for k in cgmodel.NETWORK_KEYS},
        "prior": prior,
        "training_states": list(state_names),
        "units": {"length": "angstrom", "energy": "kcal/mol", "force": "kcal/mol/angstrom"},
    }
    (tmp_dir / "model_info.json").write_text(json.dumps(info, indent=2))
    curve = [{"epoch": i, **{f"{split}_{m}": float(v) for split, vals in e.items() for m, v in vals.items()}}
             for i, e in enumerate(tracker.epoch_metric_values)]
    (tmp_dir / "training_curve.json").write_text(json.dumps(curve, indent=1))
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(tmp_dir, out_dir)
    return {
        "device": str(torch_device),
        "wall_s": wall,
        "epochs": n_epochs,
        "train_frames": n_train_frames,
        "valid_frames": int(len(splits["valid"])),
        "test_frames": int(len(splits["test"])),
        "ms_per_training_frame_epoch": 1000.0 * float(np.median(tracker.epoch_times)) / n_train_frames,
        "prior": prior,
        "curve": curve,
    }


class ModelEvaluator:
    """A trained model, loaded from its checkpoint directory, evaluated on batches of CG frames."""

    def __init__(self, checkpoint_dir, device: str = "cpu", pair_skin_A: float = 0.0):
        from hippynn.experiment.serialization import load_model_from_cwd
        from hippynn.graphs import Predictor
        from hippynn.tools import active_directory

        self.device = resolve_device(device)
        self.info = json.loads((Path(checkpoint_dir) / "model_info.json").read_text())
        with active_directory(str(checkpoint_dir), create=False):
            graph = load_model_from_cwd(model_device=self.device, weights_only=False)
        graph.eval()
        cgmodel.set_pair_skin(graph, pair_skin_A)
        self.graph = graph
        energy = [graph.nodes_to_compute[0].find_unique_relative(lambda n: n.name == "energy")]
        self.predictor = Predictor.from_graph(graph, additional_outputs=energy, model_device=self.device,
                                              return_device=torch.device("cpu"))

    def __call__(self, species, positions, cells):
        """species (B, N) int, positions (B, N, 3) Å, cells (B, 3, 3) Å → energy (B,) kcal/mol, forces (B, N, 3)."""
        out = self.predictor(species=torch.as_tensor(species, dtype=torch.int64),
                             positions=torch.as_tensor(positions, dtype=torch.float32),
                             cells=torch.as_tensor(cells, dtype=torch.float32))
        return out["energy"].detach().numpy().reshape(-1), out["forces"].detach().numpy()

    def predict_frames(self, data: dict, frames, batch_size: int = 8):
        energies, forces = [], []
        frames = np.asarray(frames)
        for start in range(0, len(frames), batch_size):
            f = frames[start:start + batch_size]
            e, F = self(data["species"][f], data["positions"][f], data["cells"][f])
            energies.append(e)
            forces.append(F)
        return np.concatenate(energies), np.concatenate(forces)


def force_metrics(predicted: np.ndarray, reference: np.ndarray) -> dict:
    """RMSE, MAE (kcal/mol/Å) and R² over force components."""
    p = np.asarray(predicted, dtype=np.float64).ravel()
    r = np.asarray(reference, dtype=np.float64).ravel()
    res = p - r
    return {
        "force_rmse_kcal_mol_A": float(np.sqrt(np.mean(res**2))),
        "force_mae_kcal_mol_A": float(np.mean(np.abs(res))),
        "force_r2": float(1.0 - np.sum(res**2) / np.sum((r - r.mean()) ** 2)),
        "n_components": int(p.size),
    }


def held_out_forces(evaluator: ModelEvaluator, data: dict, valid_fraction: float, test_fraction: float):
    """Predicted and reference forces on the test block (the last frames) of one state."""
    _, _, test = time_block_split(len(data["positions"]), valid_fraction, test_fraction)
    _, pred = evaluator.predict_frames(data, test)
    return pred, data["forces"][test]


def train_and_report(dataset_paths, summary_paths, state_names, network, prior_cfg, train_cfg, out_checkpoint_dir,
                     out_metrics, out_curve_png, out_parity_png, label: str, seed: int = 0) -> dict:
    """Train, then evaluate the held-out test block of every training state; write metrics, curve and parity."""
    from . import plots
    from .io import save_figure

    record = train_model(dataset_paths, summary_paths, state_names, network, prior_cfg, train_cfg,
                         out_checkpoint_dir, device=train_cfg["device"], seed=seed)
    evaluator = ModelEvaluator(out_checkpoint_dir, device=train_cfg["device"])
    preds, refs, per_state = [], [], {}
    for path, state in zip(dataset_paths, state_names):
        pred, ref = held_out_forces(evaluator, load_dataset(path), train_cfg["valid_fraction"], train_cfg["test_fraction"])
        per_state[state] = force_metrics(pred, ref)
        preds.append(pred)
        refs.append(ref)
    pred, ref = np.concatenate(preds), np.concatenate(refs)
    test = force_metrics(pred, ref)
    curve = record.pop("curve")
    metrics = {"model": label, "training_states": list(state_names), "test": test, "test_per_state": per_state,
               **record}
    print(json.dumps(metrics, indent=1))
    save_figure(plots.training_curve(curve, label), out_curve_png)
    save_figure(plots.force_parity(pred, ref, label, test), out_parity_png)
    write_json(out_metrics, metrics)
    return metrics


def state_force_errors(checkpoint_dir, dataset_path, train_cfg, in_training: bool, out_json) -> dict:
    """Held-out force errors of one model on one state (the test block, never trained on by any model)."""
    evaluator = ModelEvaluator(checkpoint_dir, device=train_cfg["device"])
    pred, ref = held_out_forces(evaluator, load_dataset(dataset_path), train_cfg["valid_fraction"],
                                train_cfg["test_fraction"])
    metrics = {**force_metrics(pred, ref), "state_in_training": bool(in_training)}
    write_json(out_json, metrics)
    return metrics
