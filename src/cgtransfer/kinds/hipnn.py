"""Model kind ``hipnn``: HIP-NN-TS (hippynn HipnnQuad, l = 2) + a fixed exponential pair repulsion, trained by
force matching (the graph itself is built in `cgtransfer.model`, whose path is pickled into checkpoints).

Loss = force RMSE + force MAE (no energy target); Adam; batch size raised on plateau; early stopping on the
validation loss (hippynn PatienceController). In OpenMM it runs as a `PythonForce` (`cgtransfer.potential`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from cgtransfer.kinds import hipnn_graph as graph
from cgtransfer.compute import configure_torch, resolve_device
from cgtransfer.kinds.base import NETWORK_FORCE_GROUP, PRIOR_FORCE_GROUP, CGModel, TrainingData, read_info
from cgtransfer.kinds.hipnn_force import ModelEvaluator

configure_torch()  # the job's thread count (compute.configure) and flushed subnormals, now that torch is loaded




def latest_epoch_checkpoint(directory: Path) -> Path | None:
    """hippynn's newest complete per-epoch checkpoint in ``directory`` (``checkpoint_epoch_<n>.pt``), if any."""
    found = []
    for p in directory.glob("checkpoint_epoch_*.pt"):
        try:
            found.append((int(p.stem.rsplit("_", 1)[1]), p))
        except ValueError:
            continue
    for _, p in sorted(found, reverse=True):
        try:  # a file cut short by a kill while it was being written is skipped
            torch.load(p, map_location="cpu", weights_only=False)
            return p
        except Exception:
            p.unlink()
    return None


def prune_epoch_checkpoints(epoch: int, _better: bool) -> None:
    """hippynn callback (run before the epoch's own checkpoint is written): keep only the newest one before."""
    for pattern in ("checkpoint_epoch_*.pt", "model_epoch_*.pt"):
        for p in Path(".").glob(pattern):
            try:
                if int(p.stem.rsplit("_", 1)[1]) < epoch - 1:
                    p.unlink()
            except ValueError:
                continue


class HipnnModel(CGModel):
    kind = "hipnn"

    def __init__(self, directory, info: dict, device: str = "cpu"):
        super().__init__(directory, info)
        self.device = device
        self._evaluator = None

    @property
    def evaluator(self) -> ModelEvaluator:
        if self._evaluator is None:
            self._evaluator = ModelEvaluator(self.directory, device=self.device)
        return self._evaluator

    @classmethod
    def load(cls, directory, device: str = "cpu") -> "HipnnModel":
        return cls(directory, read_info(directory), device=device)

    @classmethod
    def fit(cls, data: TrainingData, settings: dict, out_dir: Path, label: str, seed: int = 0):
        """``settings``: {"network": hipnn config, "training": training config[, "hipnn_t": hipnn_t config]}."""
        from hippynn.databases import Database
        from hippynn.experiment import SetupParams
        from hippynn.experiment.routines import setup_training, train_model
        from hippynn.experiment.assembly import assemble_for_training
        from hippynn.experiment.controllers import PatienceController, RaiseBatchSizeOnPlateau
        from hippynn.graphs.nodes import loss
        from hippynn.tools import active_directory

        network, train_cfg = settings["network"], settings["training"]
        torch.manual_seed(seed)
        box_min = float(data.arrays["cells"][:, [0, 1, 2], [0, 1, 2]].min())
        if network["dist_hard_max"] >= 0.5 * box_min:
            raise ValueError(f"{label}: hipnn dist_hard_max {network['dist_hard_max']} Å must be below half the "
                             f"smallest box edge ({0.5 * box_min:.2f} Å) for the periodic KD-tree pair finder")
        nodes, arrays, kind_info = cls._graph_and_arrays(data, settings, label)
        forces = nodes["forces"]
        rmse = loss.MSELoss.of_node(forces) ** (1 / 2)
        mae = loss.MAELoss.of_node(forces)
        rsq = loss.Rsq.of_node(forces)
        total = rmse + mae
        validation_losses = {"ForceRMSE": rmse, "ForceMAE": mae, "ForceRsq": rsq}
        if "energy_anchor" in arrays:  # hipnn_t with energy anchoring: U(R) regressed on the all-atom energy
            n_beads = data.arrays["positions"].shape[1]
            energy_rmse = loss.MSELoss.of_node(nodes["model_energy"]) ** (1 / 2)
            validation_losses["EnergyRMSE"] = energy_rmse
            total = total + (float(settings["hipnn_t"]["energy_loss_weight"]) / n_beads) * energy_rmse
        validation_losses["TotalLoss"] = total
        training_modules, db_info = assemble_for_training(total, validation_losses)

        database = Database(arrays, seed=seed, quiet=True, **db_info)
        for split in ("test", "valid", "train"):
            database.make_explicit_split(split, torch.as_tensor(data.splits[split]))

        optimizer = torch.optim.Adam(training_modules.model.parameters(), lr=train_cfg["learning_rate"])
        scheduler = RaiseBatchSizeOnPlateau(optimizer=optimizer, max_batch_size=train_cfg["max_batch_size"],
                                            patience=train_cfg["plateau_patience"], factor=0.5)
        controller = PatienceController(optimizer=optimizer, scheduler=scheduler, batch_size=train_cfg["batch_size"],
                                        eval_batch_size=train_cfg["eval_batch_size"],
                                        max_epochs=train_cfg["max_epochs"],
                                        termination_patience=train_cfg["termination_patience"],
                                        fraction_train_eval=train_cfg["fraction_train_eval"], stopping_key="TotalLoss")
        torch_device = resolve_device(train_cfg["device"])
        t0 = time.perf_counter()
        with active_directory(str(out_dir), create=False):
            training_modules, controller, tracker = setup_training(
                training_modules=training_modules, setup_params=SetupParams(controller=controller, device=torch_device))
            resume = latest_epoch_checkpoint(Path("."))
            if resume is not None:  # a killed training job: continue from its last epoch checkpoint
                state = torch.load(resume, map_location=torch_device, weights_only=False)
                training_modules.model.load_state_dict(state["model"])
                controller.load_state_dict(state["controller"])
                tracker = state["metric_tracker"]
                torch.random.set_rng_state(state["torch_rng_state"])
                print(f"{label}: resumed from {resume.name} (epoch {tracker.current_epoch})", flush=True)
            # a checkpoint every epoch (hippynn's store_every), the older ones pruned: a killed job resumes
            tracker = train_model(training_modules, database, controller, tracker, callbacks=[prune_epoch_checkpoints],
                                  batch_callbacks=None, store_every=1)
            prune_epoch_checkpoints(10**9, False)  # finished: the resume points go, the best model stays
        wall = time.perf_counter() - t0
        n_train = len(data.splits["train"])
        curve = [{"epoch": i, **{f"{split}_{m}": float(v) for split, vals in e.items() for m, v in vals.items()}}
                 for i, e in enumerate(tracker.epoch_metric_values)]
        (out_dir / "training_curve.json").write_text(json.dumps(curve, indent=1))
        info = {"network": {k: network[k] for k in graph.NETWORK_KEYS}, "prior": data.prior,
                "interaction_range_A": float(network["dist_hard_max"]), **kind_info}
        record = {
            "device": str(torch_device),
            "wall_s": wall,
            "epochs": len(tracker.epoch_metric_values),
            "ms_per_training_frame_epoch": 1000.0 * float(np.median(tracker.epoch_times)) / n_train,
            "prior": data.prior,
            "curve": curve,
        }
        return info, record

    @classmethod
    def _graph_and_arrays(cls, data: TrainingData, settings: dict, label: str):
        """The training graph, the database arrays and what model_info.json records beyond the network."""
        nodes = graph.build_graph(len(data.bead_types), settings["network"], data.prior, pair_skin_A=0.0,
                                  exclude_intramolecular=data.bonded is not None)
        return nodes, dict(data.arrays), {}

    def predict_nonbonded(self, species, positions, cells, temperature_K=None):
        return self.evaluator(species, positions, cells, temperature_K)

    @property
    def interaction_range_A(self) -> float:
        return float(self.info["network"]["dist_hard_max"])

    def add_nonbonded_to_system(self, system, species, settings: dict) -> list:
        """The network as an OpenMM ``PythonForce``. With ``settings["prior_in_openmm"]`` the exponential prior
        is a native ``CustomNonbondedForce`` (force group 0) and the PythonForce evaluates the network alone
        (force group 1), so an MTS integrator can call the network less often than the stiff prior."""
        from cgtransfer.kinds.hipnn_force import HippynnPotential, make_force, prior_force

        native_prior = bool(settings.get("prior_in_openmm", False))
        potential = HippynnPotential(self.directory, species, device=settings.get("device", "cpu"),
                                     pair_skin_A=settings["pair_skin_A"], include_prior=not native_prior,
                                     temperature_K=settings.get("temperature_K") if self.temperature_aware else None)
        network = make_force(potential)
        forces = [network]
        if native_prior:
            network.setForceGroup(NETWORK_FORCE_GROUP)
            prior = prior_force(self.info["prior"], self.interaction_range_A, system.getNumParticles(),
                                self.excluded_pairs())
            prior.setForceGroup(PRIOR_FORCE_GROUP)
            system.addForce(prior)
            forces.append(prior)
        system.addForce(network)
        self.potential = potential
        return forces

    @property
    def md_calls(self) -> int | None:
        potential = getattr(self, "potential", None)
        return None if potential is None else potential.n_calls

    @property
    def md_repeats(self) -> int | None:
        potential = getattr(self, "potential", None)
        return None if potential is None else potential.n_repeats

    def md_range_A(self, settings: dict) -> float:
        """Pair range during MD: the hard cutoff plus the Verlet skin of the KD-tree pair list."""
        return self.interaction_range_A + float(settings["pair_skin_A"])

    def curve_figure(self, curve, title):
        from cgtransfer import plots

        return plots.training_curve(curve, title)


