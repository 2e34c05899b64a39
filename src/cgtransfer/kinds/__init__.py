"""The model kinds behind one interface (`cgtransfer.kinds.base.CGModel`): ``hipnn`` (`kinds.hipnn`),
``hipnn_t`` (`kinds.hipnn_t`), ``mscg`` (`kinds.mscg`). This registry is the only place that maps a kind's
name to its class; every kind is imported on demand, so an MS-CG job never loads torch or hippynn."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from cgtransfer.kinds.base import KINDS, MODEL_INFO, UNITS, CGModel, TrainingData, _json_default, read_info


def kind_settings(kind: str, config: dict) -> dict:
    """The parts of the config a model kind's fit reads: ``config`` holds hipnn, mscg, training."""
    if kind == "hipnn":
        return {"network": config["hipnn"], "training": config["training"]}
    if kind == "hipnn_t":
        return {"network": config["hipnn"], "training": config["training"], "hipnn_t": config["hipnn_t"]}
    if kind == "mscg":
        return {"mscg": config["mscg"]}
    raise ValueError(f"unknown model kind {kind!r}")


def model_class(kind: str) -> type[CGModel]:
    """The class of a model kind, imported on demand: an MS-CG job never loads torch and hippynn (seconds of
    start-up per job)."""
    if kind == "hipnn":
        from cgtransfer.kinds.hipnn import HipnnModel

        return HipnnModel
    if kind == "hipnn_t":
        from cgtransfer.kinds.hipnn_t import HipnnTModel

        return HipnnTModel
    if kind == "mscg":
        from cgtransfer.kinds.mscg import MSCGModel

        return MSCGModel
    raise ValueError(f"unknown model kind {kind!r}; known kinds: {sorted(KINDS)}")


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
    (tmp_dir / MODEL_INFO).write_text(json.dumps(info, indent=2, default=_json_default))
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
