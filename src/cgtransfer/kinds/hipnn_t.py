"""Model kind ``hipnn_t``: temperature-aware HIP-NN-TS, W(R; T) = U(R) − T S(R), with the frame's temperature
as an input (the graph in `cgtransfer.kinds.hipnn_graph`); trained on several temperatures at once."""

from __future__ import annotations

import numpy as np

from cgtransfer.analysis.bonds import bonded_energy_forces
from cgtransfer.kinds import hipnn_graph as graph
from cgtransfer.kinds.base import TrainingData
from cgtransfer.kinds.hipnn import HipnnModel


class HipnnTModel(HipnnModel):
    """Model kind ``hipnn_t``: temperature-aware HIP-NN-TS, W(R; T) = U(R) − T S(R) (`cgtransfer.model`).

    One network with two energy heads rather than two networks: U and S are then built on the same learned
    many-body features (half the cost per MD step of two networks, and the two heads cannot disagree about
    which neighbourhoods matter), and the frame's temperature enters only through the exact −T S form. Trained
    by force matching on the frames of all its training temperatures at once, each with its own T
    (F = −∇U + T ∇S); optionally (``hipnn_t.energy_anchoring``) U(R) is also regressed on the all-atom potential
    energy of each frame (the dual-potential idea of Lebold & Noid 2019), shifted by its training mean. In CG MD
    the temperature is that of the state the model runs at."""

    kind = "hipnn_t"

    @property
    def temperature_aware(self) -> bool:
        return True

    @property
    def reports_energy(self) -> bool:
        return bool(self.info.get("energy_anchoring"))

    @classmethod
    def _graph_and_arrays(cls, data: TrainingData, settings: dict, label: str):
        temps = np.asarray(data.frame_temperature_K, dtype=np.float64)
        if len(temps) != len(data.arrays["positions"]) or not np.all(np.isfinite(temps)) or np.any(temps <= 0):
            raise ValueError(f"{label}: a temperature-aware model needs a positive temperature for every training "
                             f"frame ({len(temps)} temperatures for {len(data.arrays['positions'])} frames)")
        distinct = sorted(set(np.round(temps, 6)))
        if len(distinct) < 2:
            raise ValueError(f"{label}: a temperature-aware model needs frames at two temperatures at least (U and S "
                             f"are not separable at one); its training states are all at {distinct} K")
        t_ref = float(temps.mean())
        nodes = graph.build_graph(len(data.bead_types), settings["network"], data.prior, pair_skin_A=0.0,
                                  reference_temperature_K=t_ref, exclude_intramolecular=data.bonded is not None)
        arrays = dict(data.arrays)
        arrays["temperature"] = temps.reshape(-1, 1).astype(np.float32)
        info = {"reference_temperature_K": t_ref, "training_temperatures_K": [float(t) for t in distinct],
                "energy_anchoring": False, "energy_shift_kcal_mol": 0.0}
        if settings["hipnn_t"]["energy_anchoring"]:
            energies = np.asarray(data.frame_energy_kcal_mol, dtype=np.float64)
            if len(energies) != len(temps) or not np.all(np.isfinite(energies)):
                raise ValueError(f"{label}: energy anchoring needs the all-atom potential energy of every training "
                                 f"frame ({len(energies)} energies for {len(temps)} frames)")
            shift = float(energies[data.frames("train")].mean())
            arrays["energy_anchor"] = (energies - shift).reshape(-1, 1).astype(np.float32)
            info.update({"energy_anchoring": True, "energy_shift_kcal_mol": shift,
                         "energy_loss_weight": float(settings["hipnn_t"]["energy_loss_weight"])})
        return nodes, arrays, info

    def model_energy(self, species, positions, cells, temperature_K):
        """U(R) in kcal/mol on the all-atom energy scale (the training shift added back; meaningful as an
        all-atom energy only with energy anchoring)."""
        u = self.evaluator.model_energy(species, positions, cells, temperature_K)
        if self.bonded:  # the bonded prior's energy, left out of the network's target in training
            u = u + bonded_energy_forces(self.bonded, positions, cells)[0]
        return u + float(self.info.get("energy_shift_kcal_mol", 0.0))
