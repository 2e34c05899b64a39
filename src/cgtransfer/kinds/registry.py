"""The registry of model kinds: the only place that maps a kind's name to its class and its settings. Every
kind is imported on demand, so an MS-CG job never loads torch or hippynn."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from cgtransfer.kinds.base import UNITS, CGModel, TrainingData, read_info, write_info


# Each kind's module and class, and the config sections its fit reads (the model's hipnn / mscg / hipnn_t /
# training sections). Data, not code: the workflow reads it when it is parsed (rule inputs and params), and
# imports a kind's module only when a job needs that kind.
KIND_MODULES = {"hipnn": "cgtransfer.kinds.hipnn", "hipnn_t": "cgtransfer.kinds.hipnn_t", "mscg": "cgtransfer.kinds.mscg"}
KIND_CLASSES = {"hipnn": "HipnnModel", "hipnn_t": "HipnnTModel", "mscg": "MSCGModel"}
FIT_SECTIONS = {"hipnn": {"network": "hipnn", "training": "training"},
                "hipnn_t": {"network": "hipnn", "training": "training", "hipnn_t": "hipnn_t"},
                "mscg": {"mscg": "mscg"}}
# kinds that take the state's temperature as an input: every training frame is given its state's temperature
TEMPERATURE_AWARE = ("hipnn_t",)
# cg_md settings that only the network kinds read (the neighbour-list skin of the PythonForce, the prior as a
# native force, multiple time stepping of the network): an MS-CG run neither reads nor reruns on them
NETWORK_MD_KEYS = ("pair_skin_A", "prior_in_openmm", "mts_inner_steps")
# what every kind's training job reads of the training section: the time-block split of the data
SPLIT_KEYS = ("valid_fraction", "test_fraction")


def check_kind(kind: str) -> None:
    if kind not in KIND_MODULES:
        raise ValueError(f"unknown model kind {kind!r}; known kinds: {sorted(KIND_MODULES)}")


def temperature_aware(kind: str) -> bool:
    check_kind(kind)
    return kind in TEMPERATURE_AWARE


def kind_settings(kind: str, config: dict) -> dict:
    """The parts of the config a model kind's fit reads: ``config`` holds hipnn, mscg, training."""
    check_kind(kind)
    return {name: config[section] for name, section in FIT_SECTIONS[kind].items()}


def md_settings(kind: str, cg_md: dict) -> dict:
    """The cg_md settings a CG run of this kind reads."""
    check_kind(kind)
    return {k: v for k, v in cg_md.items() if kind != "mscg" or k not in NETWORK_MD_KEYS}


def split_settings(training: dict) -> dict:
    """The settings of the train | valid | test time-block split, which every kind's jobs read."""
    return {k: training[k] for k in SPLIT_KEYS}


def model_class(kind: str) -> type[CGModel]:
    """The class of a model kind, imported on demand: an MS-CG job never loads torch and hippynn (seconds of
    start-up per job)."""
    import importlib

    check_kind(kind)
    return getattr(importlib.import_module(KIND_MODULES[kind]), KIND_CLASSES[kind])


def load_model(directory, device: str = "cpu") -> CGModel:
    """Load any model kind from its directory (the kind is read from model_info.json)."""
    info = read_info(directory)
    return model_class(info.get("kind", "hipnn")).load(directory, device=device)


def fit_model(kind: str, data: TrainingData, settings: dict, out_dir, label: str, seed: int = 0) -> dict:
    """Fit a model of ``kind`` into ``out_dir`` atomically (a temporary sibling directory renamed at the end).
    The kind's ``fit`` writes its files and returns (info, record); model_info.json is written here."""
    cls = model_class(kind)
    out_dir = Path(out_dir)
    tmp_dir = out_dir.with_name(out_dir.name + ".tmp")
    # A fit killed before it finished left tmp_dir (with per-epoch checkpoints for HIP-NN-TS): it is resumed
    # only if it was the same fit (kind, settings, seed, training data); anything else starts afresh.
    identity = fit_identity(kind, data, settings, seed)
    marker = tmp_dir / "fit_identity.json"
    if not (marker.is_file() and json.loads(marker.read_text()) == identity):
        shutil.rmtree(tmp_dir, ignore_errors=True)
        tmp_dir.mkdir(parents=True)
        marker.write_text(json.dumps(identity))
    info, record = cls.fit(data, settings, tmp_dir, label=label, seed=seed)
    marker.unlink(missing_ok=True)
    info = {"kind": kind, "bead_types": list(data.bead_types), "training_states": list(data.state_names),
            "units": UNITS, **info, **({"bonded": data.bonded} if data.bonded else {})}
    write_info(tmp_dir, info)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(tmp_dir, out_dir)
    return {"kind": kind, "warnings": info.get("warnings", []), **record}


def fit_identity(kind: str, data: TrainingData, settings: dict, seed: int) -> dict:
    """What makes two fits the same: kind, settings, seed, and a digest of the training arrays and splits."""
    import hashlib

    digest = hashlib.sha256()
    for key in sorted(data.arrays):
        digest.update(np.ascontiguousarray(data.arrays[key]).tobytes())
    for split in sorted(data.splits):
        digest.update(np.asarray(data.splits[split], dtype=np.int64).tobytes())
    return json.loads(json.dumps({"kind": kind, "settings": settings, "seed": seed, "data": digest.hexdigest(),
                                  "bead_types": list(data.bead_types)}, default=str))
