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

from cgtransfer.analysis.statistics import force_metrics
from cgtransfer.dataset import load_dataset
from cgtransfer.io import write_json
from cgtransfer.kinds.registry import fit_model, load_model
from cgtransfer.kinds.base import held_out_forces
from cgtransfer.kinds.training_data import training_data


def train_model(kind: str, dataset_paths: list, summary_paths: list, state_names: list[str], settings: dict,
                prior_cfg: dict, train_cfg: dict, out_checkpoint_dir, label: str = "model", seed: int = 0,
                reference_thermo_paths: list | None = None) -> dict:
    """Fit one model of ``kind`` on the named states into ``out_checkpoint_dir`` (atomically). Returns the
    training record (timings, split sizes, kind-specific fit details, warnings). ``settings`` of a temperature-
    aware kind carry ``state_temperatures_K`` (state → K); ``reference_thermo_paths`` the all-atom energies."""
    data = training_data(dataset_paths, summary_paths, state_names, prior_cfg, train_cfg,
                         state_temperatures_K=settings.get("state_temperatures_K"),
                         reference_thermo_paths=reference_thermo_paths)
    record = fit_model(kind, data, settings, out_checkpoint_dir, label=label, seed=seed)
    record.update({"train_frames": int(len(data.splits["train"])), "valid_frames": int(len(data.splits["valid"])),
                   "test_frames": int(len(data.splits["test"]))})
    return record


def train_and_report(kind: str, dataset_paths, summary_paths, state_names, settings, prior_cfg, train_cfg,
                     out_checkpoint_dir, out_metrics, out_curve_png, out_parity_png, label: str, seed: int = 0,
                     reference_thermo_paths: list | None = None) -> dict:
    """Fit, then evaluate the held-out test block of every training state; write metrics, curve and parity."""
    from cgtransfer import plots
    from cgtransfer.io import save_figure

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


