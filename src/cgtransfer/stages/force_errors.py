"""Stage force_errors: the held-out force errors of one model on every state of its system."""

from __future__ import annotations

from cgtransfer.analysis.statistics import force_metrics
from cgtransfer.dataset import load_dataset
from cgtransfer.io import write_json
from cgtransfer.kinds.registry import load_model
from cgtransfer.kinds.base import held_out_forces


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
