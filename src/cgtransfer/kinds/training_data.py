"""The training set of a model, whatever its kind: the mapped frames of its training states concatenated and
split per state into contiguous time blocks (consecutive frames are correlated: a random split leaks), the
fixed prior parameters, and with several beads per molecule the Boltzmann-inverted bonded prior whose forces
are taken off the target."""

from __future__ import annotations

import numpy as np

from cgtransfer.analysis import bonds as bonded
from cgtransfer.dataset import DB_KEYS, load_dataset, time_block_split
from cgtransfer.io import read_json
from cgtransfer.kinds.base import TrainingData


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

    from cgtransfer import units

    thermo = pd.read_csv(thermo_path)
    times = np.asarray(dataset["time_ps"], dtype=np.float64)
    rows = {round(float(t), 6): float(e) for t, e in zip(thermo["time_ps"], thermo["potential_energy_kJ_mol"])}
    missing = [t for t in times if round(float(t), 6) not in rows]
    if missing:
        raise ValueError(f"{thermo_path}: no all-atom energy at {len(missing)} of the {len(times)} mapped frame times "
                         f"(first {missing[0]:g} ps): the thermo file and the mapped dataset are not of the same run")
    return units.kj_to_kcal(np.array([rows[round(float(t), 6)] for t in times]))


def thinned(train_block: np.ndarray, keep: int | None) -> np.ndarray:
    """``keep`` frames of a state's train block, evenly spaced over it (first and last included); all of them
    when ``keep`` is None or not smaller than the block."""
    if keep is None or keep >= len(train_block):
        return train_block
    return train_block[np.round(np.linspace(0, len(train_block) - 1, keep)).astype(int)]


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
            if split == "train":
                idx = thinned(idx, train_cfg.get("train_frames_per_state"))
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
    used = np.sort(np.concatenate(list(splits.values())))
    if len(used) < len(frame_state):  # thinned train blocks: drop the unused frames (a database holds only its splits)
        n_frames = len(frame_state)
        arrays = {k: (v[used] if len(v) == n_frames else v) for k, v in arrays.items()}
        splits = {k: np.searchsorted(used, v) for k, v in splits.items()}
        frame_state = [frame_state[i] for i in used]
        frame_temperature = [frame_temperature[i] for i in used] if len(frame_temperature) else frame_temperature
        frame_energy = [frame_energy[i] for i in used] if len(frame_energy) else frame_energy
    return TrainingData(arrays, splits, bead_types, list(state_names), summaries,
                        prior_parameters(datasets, summaries, prior_cfg), frame_state, frame_temperature, frame_energy,
                        bonded=bonded_prior)
