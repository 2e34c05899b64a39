"""One interface for every kind of CG model: fit, predict forces on frames, add itself to an OpenMM System,
save/load.

A model lives in a directory (the ``checkpoint/`` output of the train rule) holding ``model_info.json``
(kind, bead types, training states, units, kind-specific settings) and the kind's own files. Kinds:

* ``hipnn``: HIP-NN-TS (hippynn HipnnQuad) + a fixed exponential pair repulsion (`cgtransfer.hipnn_model`);
  runs in OpenMM as a `PythonForce`.
* ``hipnn_t``: temperature-aware HIP-NN-TS, W(R; T) = U(R) − T S(R) with the frame's temperature as an input
  (`cgtransfer.hipnn_model.HipnnTModel`); trained on several temperatures at once.
* ``mscg``: the pairwise force-matched baseline (multiscale coarse-graining) on a B-spline basis
  (`cgtransfer.mscg`); runs natively in OpenMM as tabulated `CustomNonbondedForce`s.

Everything downstream (force errors, CG MD, compare, summarize) goes through `load_model` and the methods of
`CGModel`; nothing else needs to know the kind.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
import os
import shutil
from pathlib import Path

import numpy as np

from cgtransfer.dataset import time_block_split

from cgtransfer.analysis.bonds import bonded_energy_forces, check_layout, harmonic_bond_force

MODEL_INFO = "model_info.json"
UNITS = {"length": "angstrom", "energy": "kcal/mol", "force": "kcal/mol/angstrom"}


@dataclass
class TrainingData:
    """The mapped frames of a model's training states, concatenated, with the time-block splits.

    ``arrays``: species (F, N) int64, positions (F, N, 3) Å, cells (F, 3, 3) Å, forces (F, N, 3) kcal/mol/Å,
    float32. ``splits``: frame indices of train / valid / test (contiguous blocks per state, test last).
    ``summaries``: the map_to_cg summaries (reference RDF onsets, mean |force|) of the training states.
    ``frame_state``, ``frame_temperature_K``: the state and its temperature of every frame;
    ``frame_energy_kcal_mol``: the all-atom potential energy of every frame (only for energy anchoring).
    ``bonded``: with several beads per molecule, the harmonic bonded prior and the bead → molecule layout;
    ``arrays["forces"]`` then hold the mapped forces minus the prior's and ``arrays["molecule"]`` the molecule of
    every bead (the nonbonded model excludes pairs inside one molecule).
    """

    arrays: dict
    splits: dict
    bead_types: list
    state_names: list
    summaries: list
    prior: dict
    frame_state: list = field(default_factory=list)
    frame_temperature_K: list = field(default_factory=list)
    frame_energy_kcal_mol: list = field(default_factory=list)
    bonded: dict | None = None  # the fixed bonded prior (cgtransfer.bonded); arrays["forces"] are then nonbonded

    def frames(self, split: str) -> np.ndarray:
        return np.asarray(self.splits[split])


class CGModel:
    """Base class of the model kinds. Subclasses set ``kind`` and implement the methods below."""

    kind: str = ""

    def __init__(self, directory, info: dict):
        self.directory = Path(directory)
        self.info = info

    # --- fitting (classmethod: writes the kind's files into ``out_dir``; `kinds.registry.fit_model` adds the
    # common model_info.json and makes the directory appear atomically) ---
    @classmethod
    def fit(cls, data: TrainingData, settings: dict, out_dir: Path, label: str, seed: int = 0) -> tuple[dict, dict]:
        """Returns (info: the kind's entries of model_info.json, record: the training record)."""
        raise NotImplementedError

    @classmethod
    def load(cls, directory, device: str = "cpu") -> "CGModel":
        """The model saved in ``directory`` (its model_info.json read by `read_info`)."""
        return cls(directory, read_info(directory))

    def save(self, directory) -> Path:
        """Copy the model (its files and model_info.json) into ``directory``, atomically: a model directory is
        either complete or absent."""
        directory = Path(directory)
        tmp = directory.with_name(directory.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(self.directory, tmp)
        write_info(tmp, self.info)
        if directory.exists():
            shutil.rmtree(directory)
        os.replace(tmp, directory)
        return directory

    # --- inference in model units ---
    def predict(self, species, positions, cells, temperature_K=None):
        """species (B, N) int, positions (B, N, 3) Å, cells (B, 3, 3) Å → energy (B,) kcal/mol, forces (B, N, 3).
        ``temperature_K`` (scalar or (B,)): the frames' temperature; only temperature-aware kinds use it.
        The kind's nonbonded model plus the bonded prior (if the molecules have several beads)."""
        energy, forces = self.predict_nonbonded(species, positions, cells, temperature_K)
        if self.bonded:
            e_b, f_b = bonded_energy_forces(self.bonded, positions, cells)
            energy, forces = energy + e_b, (forces + f_b).astype(forces.dtype)
        return energy, forces

    def predict_nonbonded(self, species, positions, cells, temperature_K=None):
        """The kind's own model (intramolecular bead pairs excluded): energy (B,), forces (B, N, 3)."""
        raise NotImplementedError

    @property
    def bonded(self) -> dict | None:
        """The fixed harmonic bonded prior and bead → molecule layout (``cgtransfer.bonded``), or None."""
        return self.info.get("bonded")

    @property
    def temperature_aware(self) -> bool:
        """Does the model take the state's temperature as an input?"""
        return False

    @property
    def reports_energy(self) -> bool:
        """Is the model's energy on the all-atom energy scale (energy anchoring), so that a CG run reports it and
        compare sets it beside the all-atom potential energy?"""
        return False

    @property
    def md_calls(self) -> int | None:
        """How often the last CG run evaluated the model outside OpenMM's native forces (None: never)."""
        return None

    @property
    def md_repeats(self) -> int | None:
        """How often the last CG run asked again for a configuration just evaluated, answered without a call."""
        return None

    def pair_table(self, r_start_A: float | None = None):
        """The model's pair forces and energies as a table (pairwise kinds only)."""
        raise ValueError(f"a {self.kind} model has no pair table (only pairwise kinds have one)")

    def pair_figure(self, title: str):
        raise ValueError(f"a {self.kind} model has no pair table (only pairwise kinds have one)")

    def predict_frames(self, data: dict, frames, batch_size: int = 8, temperature_K=None):
        energies, forces = [], []
        frames = np.asarray(frames)
        for start in range(0, len(frames), batch_size):
            f = frames[start:start + batch_size]
            e, F = self.predict(data["species"][f], data["positions"][f], data["cells"][f], temperature_K)
            energies.append(e)
            forces.append(F)
        return np.concatenate(energies), np.concatenate(forces)

    # --- OpenMM ---
    def add_to_system(self, system, species, settings: dict) -> list:
        """Add the model's forces to an OpenMM ``system`` of CG beads (``species`` per particle, 1-based);
        ``settings`` is the ``cg_md`` config. Returns the forces added: the kind's nonbonded forces and, with
        several beads per molecule, the bonded prior (a ``HarmonicBondForce`` in the fast force group)."""
        forces = self.add_nonbonded_to_system(system, species, settings)
        if self.bonded:
            bond_force = harmonic_bond_force(self.bonded)
            bond_force.setForceGroup(PRIOR_FORCE_GROUP)
            system.addForce(bond_force)
            forces.append(bond_force)
        return forces

    def add_nonbonded_to_system(self, system, species, settings: dict) -> list:
        raise NotImplementedError

    def excluded_pairs(self) -> np.ndarray:
        """Bead pairs (i < j) inside one molecule, which the nonbonded model leaves out: (M, 2)."""
        if not self.bonded:
            return np.zeros((0, 2), dtype=np.int64)
        return np.asarray(self.bonded["pairs"], dtype=np.int64).reshape(-1, 2)

    @property
    def interaction_range_A(self) -> float:
        """The longest pair distance the model looks at (MD must keep it below half the box edge)."""
        raise NotImplementedError

    def md_range_A(self, settings: dict) -> float:
        """Pair range during CG MD with the ``cg_md`` settings (e.g. plus a pair-list skin)."""
        return self.interaction_range_A

    @property
    def bead_types(self) -> list[str]:
        return list(self.info["bead_types"])

    def check_data(self, data: dict, where: str) -> None:
        """The model must have been trained on the bead types of ``data`` (same names, same order: the species
        numbers mean the same beads); a checkpoint of another system is a clear error naming the file."""
        types = [str(t) for t in data["bead_types"]]
        if types != self.bead_types:
            raise ValueError(f"{where}: its bead types {types} differ from those the {self.kind} model at "
                             f"{self.directory} was trained on {self.bead_types} (a checkpoint of another system?)")
        if self.bonded:
            check_layout(self.bonded, data.get("residue_index", []), where)

    @property
    def training_states(self) -> list[str]:
        return list(self.info["training_states"])

    @property
    def warnings(self) -> list[str]:
        return list(self.info.get("warnings", []))

    def curve_figure(self, curve: list[dict], title: str):
        """The kind's fitting-curve figure (training curve, regularisation scan, ...)."""
        raise NotImplementedError


# OpenMM force groups of a CG model: the fast forces (prior, pair tables) and a network evaluated once per outer
# step of multiple time stepping (cg_md); here, not in hipnn_model, so that MS-CG runs never import hippynn
PRIOR_FORCE_GROUP, NETWORK_FORCE_GROUP = 0, 1




def read_info(directory) -> dict:
    path = Path(directory) / MODEL_INFO
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: not a cgtransfer model directory")
    return json.loads(path.read_text())








def _json_default(obj):
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj)}")


def held_out_forces(model: CGModel, data: dict, valid_fraction: float, test_fraction: float,
                    temperature_K: float | None = None):
    """Predicted and reference forces on the test block (the last frames) of one state (at its temperature)."""
    _, _, test = time_block_split(len(data["positions"]), valid_fraction, test_fraction)
    _, pred = model.predict_frames(data, test, temperature_K=temperature_K)
    return pred, data["forces"][test]


def write_info(directory, info: dict) -> Path:
    """Write a model's model_info.json (kind, bead types, training states, units, kind-specific entries)."""
    path = Path(directory) / MODEL_INFO
    path.write_text(json.dumps(info, indent=2, default=_json_default))
    return path
