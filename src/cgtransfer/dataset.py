"""The mapped CG dataset (map_to_cg's ``dataset.npz``): loading with consistency checks, and its contiguous
time-block split (train | valid | test, test last), shared by training, force errors, CG MD and the volume fit."""

from __future__ import annotations

import numpy as np


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


def mean_box_A(data: dict) -> np.ndarray:
    """The mean box edges (Å, float64) of a mapped dataset's frames: the box of every CG NVT run at the reference
    density (cg_md) and the density the volume term is fitted at (fit_volume_term)."""
    return data["cells"][:, [0, 1, 2], [0, 1, 2]].astype(np.float64).mean(axis=0)


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
