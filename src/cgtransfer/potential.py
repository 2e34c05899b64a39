"""A trained hippynn CG model as an OpenMM force: the callable given to ``openmm.PythonForce``.

OpenMM hands over a State (nm); the model works in Å and kcal/mol; `units` converts both ways. The object is
picklable (OpenMM serialises the callable): it pickles only the checkpoint path and settings and reloads the
model lazily in the process that evaluates it.
"""

from __future__ import annotations

import math

import numpy as np
import openmm

from . import units


class NonFiniteModelOutput(RuntimeError):
    """The model returned NaN/inf, or was handed non-finite coordinates."""


class CollapsedBox(RuntimeError):
    """The periodic box shrank below twice the model's pair range: a model collapsing under the barostat.
    (OpenMM passes a PythonForce's error on as its message only: "box collapsed" is what marks it.)"""


class HippynnPotential:
    def __init__(self, checkpoint_dir, species, device: str = "cpu", pair_skin_A: float = 1.0,
                 include_prior: bool = True, temperature_K: float | None = None):
        self.checkpoint_dir = str(checkpoint_dir)
        self.species = np.asarray(species, dtype=np.int64).reshape(1, -1)
        self.device = device
        self.pair_skin_A = float(pair_skin_A)
        self.include_prior = bool(include_prior)
        self.temperature_K = temperature_K  # the state's temperature: the input of a temperature-aware model
        self.n_calls = 0
        self._evaluator = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_evaluator"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)

    @property
    def evaluator(self):
        if self._evaluator is None:
            from .hipnn_model import ModelEvaluator

            self._evaluator = ModelEvaluator(self.checkpoint_dir, device=self.device, pair_skin_A=self.pair_skin_A,
                                             include_prior=getattr(self, "include_prior", True))
        return self._evaluator

    def energy_forces_model_units(self, positions_A: np.ndarray, box_A: np.ndarray):
        """positions (N, 3) Å, box edges (3,) Å → energy kcal/mol, forces (N, 3) kcal/mol/Å."""
        if not np.all(np.isfinite(positions_A)):
            raise NonFiniteModelOutput("non-finite bead coordinates handed to the CG model")
        wrapped = positions_A - np.floor(positions_A / box_A) * box_A
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
        # ._value: the arrays behind OpenMM's Quantities are in nm already (no unit arithmetic per step)
        positions_A = units.nm_to_angstrom(state.getPositions(asNumpy=True)._value)
        vectors = np.asarray(state.getPeriodicBoxVectors(asNumpy=True)._value)
        if np.any(np.abs(vectors - np.diag(np.diag(vectors))) > 1e-9):
            raise ValueError("the CG model supports orthorhombic boxes only")
        box_A = units.nm_to_angstrom(np.diag(vectors))
        energy, forces = self.energy_forces_model_units(positions_A, box_A)
        return float(units.kcal_to_kj(energy)), units.force_model_to_openmm(forces).astype(np.float64)


def make_force(potential: HippynnPotential) -> openmm.PythonForce:
    force = openmm.PythonForce(potential)
    force.setUsesPeriodicBoundaryConditions(True)
    force.setName("HIP-NN-TS CG model" if potential.include_prior else "HIP-NN-TS network (prior native)")
    return force


def prior_force(prior: dict, cutoff_A: float, n_particles: int, exclusions=()) -> openmm.CustomNonbondedForce:
    """The model's exponential pair repulsion (`cgtransfer.model.prior_pair_energy`) as a native OpenMM force:
    E(r) = (p s / a) exp(a (t - r)), a = ln(1/p)/d, every bead pair once, within the network's cutoff, except
    the ``exclusions`` (bead pairs inside one molecule)."""
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
