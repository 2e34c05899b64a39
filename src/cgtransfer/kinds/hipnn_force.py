"""A trained hippynn CG model as an OpenMM force: the callable given to ``openmm.PythonForce``.

OpenMM hands over a State (nm); the model works in Å and kcal/mol; `units` converts both ways. The object is
picklable (OpenMM serialises the callable): it pickles only the checkpoint path and settings and reloads the
model lazily in the process that evaluates it.
"""

from __future__ import annotations

import math

import numpy as np
import openmm
import torch

from cgtransfer import units
from cgtransfer.compute import configure_torch, resolve_device
from cgtransfer.kinds import hipnn_graph as graph
from cgtransfer.kinds.base import read_info
from cgtransfer.errors import CollapsedBox, NonFiniteModelOutput, SimulationDiverged

configure_torch()  # the job's thread count (compute.configure) and flushed subnormals, now that torch is loaded

RECENT_RESULTS = 3  # a report's configuration survives the two trial boxes of a pressure measurement before the step
WRAP_RESOLUTION_A = 1e-6  # a coordinate whose double-precision spacing is coarser than this is a diverged run's


class HippynnPotential:
    def __init__(self, checkpoint_dir, species, device: str = "cpu", pair_skin_A: float = 1.0,
                 include_prior: bool = True, temperature_K: float | None = None):
        self.checkpoint_dir = str(checkpoint_dir)
        self.species = np.asarray(species, dtype=np.int64).reshape(1, -1)
        self.device = device
        self.pair_skin_A = float(pair_skin_A)
        self.include_prior = bool(include_prior)
        self.temperature_K = temperature_K  # the state's temperature: the input of a temperature-aware model
        self.n_calls = 0  # network evaluations
        self.n_repeats = 0  # OpenMM asking again for a configuration it had just been given
        self._evaluator = None
        self._recent = []

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_evaluator"] = None
        state.pop("_recent", None)  # remembered answers stay in the process that computed them
        state.pop("_wrap_reference", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.__dict__.setdefault("n_repeats", 0)  # (pickled by a version without the memory)
        self._recent = []

    @property
    def evaluator(self):
        if self._evaluator is None:
            self._evaluator = ModelEvaluator(self.checkpoint_dir, device=self.device, pair_skin_A=self.pair_skin_A,
                                             include_prior=getattr(self, "include_prior", True))
        return self._evaluator

    def _wrap(self, positions_A: np.ndarray, box_A: np.ndarray) -> np.ndarray:
        """The positions shifted into the box by whole box edges, with the image of every bead held fixed between
        pair-list rebuilds ("sticky" wrapping): the pair memory then sees continuous positions and rebuilds only
        when the beads have really moved, instead of each time a bead crosses the box edge (a jump of one edge).
        A bead keeps its image n when the box changes (shifted by n times the new box): a scaled trial box of the
        pressure or the barostat moves the wrapped positions with the box, by a tiny amount.

        The images are renewed, and the pair list rebuilt with them, when a wrapped bead has moved more than half
        the skin since the last renewal; the positions then lie within half a skin of the box."""
        skin = self.pair_skin_A
        ref = getattr(self, "_wrap_reference", None)
        if skin > 0 and ref is not None and ref[0].shape == positions_A.shape:
            wrapped = positions_A - ref[1] * box_A
            if float(np.max(np.sum((wrapped - ref[0]) ** 2, axis=1))) <= (0.5 * skin) ** 2:
                return wrapped
        farthest = float(np.max(np.abs(positions_A)))
        if np.spacing(farthest) > WRAP_RESOLUTION_A:
            # a bead flung beyond ~1e10 Å: its wrapped coordinate has lost its digits (and the pair search's KD-tree,
            # handed such a frame, can crash the process instead of raising)
            raise SimulationDiverged(
                f"bead coordinates diverged: |x| up to {farthest:.3g} Å, too far to be wrapped into the "
                f"{float(np.min(box_A)):.1f}-Å box to {WRAP_RESOLUTION_A:g} Å at double precision")
        images = np.floor(positions_A / box_A)
        wrapped = positions_A - images * box_A
        self._wrap_reference = (wrapped, images)
        if ref is not None:
            self.evaluator.invalidate_pair_list()
        return wrapped

    def energy_forces_model_units(self, positions_A: np.ndarray, box_A: np.ndarray):
        """positions (N, 3) Å, box edges (3,) Å → energy kcal/mol, forces (N, 3) kcal/mol/Å."""
        if not np.all(np.isfinite(positions_A)):
            raise NonFiniteModelOutput("non-finite bead coordinates handed to the CG model")
        wrapped = self._wrap(positions_A, box_A)
        cell = np.diag(box_A).reshape(1, 3, 3)
        try:
            energy, forces = self.evaluator(self.species, wrapped.reshape(1, -1, 3), cell,
                                            getattr(self, "temperature_K", None))
        except ValueError as exc:  # hippynn's pair finder refuses a cell narrower than twice its cutoff
            if "half the shortest cell side" not in str(exc):
                raise
            raise CollapsedBox(f"box collapsed: shortest edge {float(np.min(box_A)):.2f} Å is no longer above twice "
                               f"the model's pair range ({exc})") from exc
        self.n_calls += 1
        if not (np.isfinite(energy[0]) and np.all(np.isfinite(forces))):
            raise NonFiniteModelOutput(f"CG model returned a non-finite energy ({energy[0]}) or force")
        return float(energy[0]), forces[0]

    def __call__(self, state: openmm.State):
        """Energy (kJ/mol) and forces (kJ/mol/nm) for OpenMM. OpenMM asks again for configurations it has just
        evaluated: a report's energy at the current positions, then (for the pressure) two trial boxes, then the
        next step's forces at the same positions; after a rejected barostat move, the configuration before it.
        The same positions and box (bit for bit) get the remembered answer instead of a second network call;
        anything else is evaluated."""
        # ._value: the arrays behind OpenMM's Quantities are in nm already (no unit arithmetic per step)
        positions_nm = np.asarray(state.getPositions(asNumpy=True)._value)
        vectors = np.asarray(state.getPeriodicBoxVectors(asNumpy=True)._value)
        for pos, vec, result in self._recent:
            if np.array_equal(pos, positions_nm) and np.array_equal(vec, vectors):
                self.n_repeats += 1
                return result[0], result[1].copy()
        if np.any(np.abs(vectors - np.diag(np.diag(vectors))) > 1e-9):
            raise ValueError("the CG model supports orthorhombic boxes only")
        positions_A = units.nm_to_angstrom(positions_nm)
        box_A = units.nm_to_angstrom(np.diag(vectors))
        energy, forces = self.energy_forces_model_units(positions_A, box_A)
        result = (float(units.kcal_to_kj(energy)), units.force_model_to_openmm(forces).astype(np.float64))
        self._recent.insert(0, (positions_nm.copy(), vectors.copy(), result))
        del self._recent[RECENT_RESULTS:]
        return result[0], result[1].copy()


def make_force(potential: HippynnPotential) -> openmm.PythonForce:
    force = openmm.PythonForce(potential)
    force.setUsesPeriodicBoundaryConditions(True)
    force.setName("HIP-NN-TS CG model" if potential.include_prior else "HIP-NN-TS network (prior native)")
    return force


PRIOR_NEGLIGIBLE = 1e-16  # the prior's pair energy and force beyond its native cutoff, relative to the onset's


def prior_range_A(prior: dict) -> float:
    """Where the prior's pair energy and force have fallen to ``PRIOR_NEGLIGIBLE`` (float64 rounding) of their
    values at the onset: t + ln(1/1e-16)/a, ~1.8 Å beyond the onset at the default width."""
    a_per_A = math.log(1.0 / prior["fraction"]) / prior["width"]
    return float(prior["onset"] + math.log(1.0 / PRIOR_NEGLIGIBLE) / a_per_A)


def prior_force(prior: dict, cutoff_A: float, n_particles: int, exclusions=()) -> openmm.CustomNonbondedForce:
    """The model's exponential pair repulsion (`cgtransfer.model.prior_pair_energy`) as a native OpenMM force:
    E(r) = (p s / a) exp(a (t - r)), a = ln(1/p)/d, every bead pair once, within the network's cutoff, except
    the ``exclusions`` (bead pairs inside one molecule). The native force stops where the prior has fallen to
    1e-16 of its onset value (`prior_range_A`; the network's range if that is shorter): the same energy and
    forces to float64 rounding, with a neighbour list of a few Å instead of the network's 8 (the inner steps of
    a HIP-NN-TS run evaluate it ten times per network call: 14 of 30 ms per outer step at 8 Å, measured)."""
    cutoff_A = min(float(cutoff_A), prior_range_A(prior))
    a_per_A = math.log(1.0 / prior["fraction"]) / prior["width"]
    amplitude_kj = float(units.kcal_to_kj(prior["fraction"] * prior["strength"] / a_per_A))
    a_per_nm = a_per_A * units.ANGSTROM_PER_NM
    onset_nm = float(units.angstrom_to_nm(prior["onset"]))
    force = openmm.CustomNonbondedForce(f"{amplitude_kj!r} * exp({a_per_nm!r} * ({onset_nm!r} - r))")
    force.setNonbondedMethod(openmm.CustomNonbondedForce.CutoffPeriodic)
    force.setCutoffDistance(float(units.angstrom_to_nm(cutoff_A)))
    force.setUseSwitchingFunction(False)
    force.setUseLongRangeCorrection(False)
    for _ in range(n_particles):
        force.addParticle([])
    for i, j in exclusions:
        force.addExclusion(int(i), int(j))
    force.setName("HIP-NN-TS prior (exponential repulsion)")
    return force


class ModelEvaluator:
    """A trained hippynn graph, loaded from its directory, evaluated on batches of CG frames (model units).

    The evaluation path is lean, as MD calls it every step: one ``GraphModule`` of (species, positions, cells)
    → (energy, forces) called directly (no Predictor bookkeeping), parameters frozen so autograd builds only the
    gradient with respect to the positions. ``include_prior=False`` evaluates the network alone (energy of the
    HEnergy head and its own gradient), for MD that applies the prior natively in OpenMM.
    """

    def __init__(self, checkpoint_dir, device: str = "cpu", pair_skin_A: float = 0.0, include_prior: bool = True):
        from hippynn.experiment.serialization import load_model_from_cwd
        from hippynn.graphs import GraphModule
        from hippynn.graphs.nodes.physics import GradientNode
        from hippynn.tools import active_directory

        self.device = resolve_device(device)
        self.directory = str(checkpoint_dir)
        self.info = read_info(checkpoint_dir)
        with active_directory(str(checkpoint_dir), create=False):
            loaded = load_model_from_cwd(model_device=self.device, weights_only=False)
        anchor = loaded.nodes_to_compute[0]

        def node(name):
            return anchor.find_unique_relative(lambda n: n.name == name)

        inputs = [node("species"), node("positions"), node("cells")]
        # a temperature-aware model (kind hipnn_t) takes the temperature of each frame as a fourth input
        self.temperature_aware = self.info.get("kind") == "hipnn_t"
        if self.temperature_aware:
            inputs.append(node("temperature"))
        # several beads per molecule: the molecule of every bead, for the intramolecular exclusions
        bonded = self.info.get("bonded")
        self.molecule = None if not bonded else np.asarray(bonded["molecule_of_bead"], dtype=np.int64)
        if self.molecule is not None:
            inputs.append(node("molecule"))
        if include_prior:
            outputs = [node("energy"), node("forces")]
        else:
            network = node("network_energy") if self.temperature_aware else node("HEnergy").mol_energy
            outputs = [network, GradientNode("network_forces", (network, inputs[1]), sign=-1)]
        module = GraphModule(inputs, outputs).to(self.device)
        module.eval()
        for p in module.parameters():
            p.requires_grad_(False)
        graph.set_pair_skin(module, pair_skin_A)
        if self.device.type == "cpu":
            graph.evaluate_fast_on_cpu(module)
        self.graph = self.module = module
        self.include_prior = include_prior
        self._energy_module = None
        self._inputs, self._model_energy = inputs, (node("model_energy") if self.temperature_aware else None)

    dtype = torch.float32  # of the positions, cells and the model's arithmetic

    def in_double_precision(self):
        """Evaluate in float64 from now on (checks that must tell a dropped pair from float32 rounding)."""
        self.module.double()
        if self._energy_module is not None:
            self._energy_module.double()
        self.dtype = torch.float64
        return self

    def invalidate_pair_list(self):
        """Make the next evaluation build its pair list afresh (the skin memory forgets its positions)."""
        for m in self.module.modules():
            if hasattr(m, "set_skin") and getattr(m, "positions", None) is not None:
                m.positions = None

    def _tensors(self, species, positions, cells, temperature_K):
        dev = self.device
        args = [torch.as_tensor(species, dtype=torch.int64, device=dev),
                # a copy: the pair memory keeps this tensor, which must not alias the caller's array
                torch.tensor(np.asarray(positions), dtype=self.dtype, device=dev),
                torch.as_tensor(cells, dtype=self.dtype, device=dev)]
        if self.temperature_aware:
            if temperature_K is None:
                raise ValueError(f"the temperature-aware model at {self.directory} needs the temperature of each "
                                 "frame (temperature_K)")
            t = np.array(np.broadcast_to(np.asarray(temperature_K, dtype=np.float64).reshape(-1, 1), (len(args[0]), 1)))
            if not np.all(np.isfinite(t)) or np.any(t <= 0):
                raise ValueError(f"temperature-aware model at {self.directory}: temperature {temperature_K} K is not "
                                 "a positive number")
            args.append(torch.as_tensor(t, dtype=torch.float32, device=dev))
        if self.molecule is not None:
            if args[0].shape[1] != len(self.molecule):
                raise ValueError(f"{self.directory}: {args[0].shape[1]} beads, but the model's molecules hold "
                                 f"{len(self.molecule)}")
            args.append(torch.as_tensor(np.broadcast_to(self.molecule, args[0].shape).copy(), device=dev))
        return args

    def __call__(self, species, positions, cells, temperature_K=None):
        """species (B, N) int, positions (B, N, 3) Å, cells (B, 3, 3) Å [, temperature_K scalar or (B,) for a
        temperature-aware model] → energy (B,) kcal/mol (W(R; T) for hipnn_t), forces (B, N, 3)."""
        energy, forces = self.module(*self._tensors(species, positions, cells, temperature_K))
        return energy.detach().cpu().numpy().reshape(-1), forces.detach().cpu().numpy()

    def model_energy(self, species, positions, cells, temperature_K):
        """U(R) (kcal/mol, prior included, without the training-energy shift) of a temperature-aware model."""
        from hippynn.graphs import GraphModule

        if not self.temperature_aware:
            raise ValueError(f"{self.directory}: only a temperature-aware model (hipnn_t) has a separate U(R)")
        if self._energy_module is None:
            self._energy_module = GraphModule(self._inputs, [self._model_energy]).to(self.device)
            self._energy_module.eval()
        with torch.no_grad():
            (u,) = self._energy_module(*self._tensors(species, positions, cells, temperature_K))
        return u.detach().cpu().numpy().reshape(-1)
