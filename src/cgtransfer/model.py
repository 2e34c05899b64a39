"""The CG model: hippynn HIP-NN-TS (HipnnQuad, l=2) energy plus a fixed exponential pair repulsion (the prior).

Energy (kcal/mol) = HIP-NN-TS(beads) + sum over bead pairs of the prior; forces = -dE/dx (hippynn
GradientNode). The prior follows the seed paper's companion hippynn example: a pair force
|F(r)| = p·s·exp(a (t - r)), a = ln(1/p)/d, so that |F(t)| = p·s at the onset t (where the reference RDF first
rises) and |F(t - d)| = s, with s the mean |force| of the data. Unlike the upstream example, each bead pair is
counted once (hippynn pair lists are directed), so the prior's force is exactly its formula.

This module path is pickled into every checkpoint: keep the class names and location stable.
"""

from __future__ import annotations

import math

import torch
from hippynn.graphs import IdxType
from hippynn.graphs.nodes.base import ExpandParents
from hippynn.graphs.nodes.base.definition_helpers import AutoKw
from hippynn.graphs.nodes.base.multi import MultiNode
from hippynn.graphs.nodes.indexers import acquire_encoding_padding
from hippynn.graphs.nodes.inputs import CellNode, PositionsNode, SpeciesNode
from hippynn.graphs.nodes.networks import HipnnQuad
from hippynn.graphs.nodes.pairs import KDTreePairsMemory
from hippynn.graphs.nodes.physics import GradientNode
from hippynn.graphs.nodes.tags import AtomIndexer, PairIndexer
from hippynn.graphs.nodes.targets import HEnergyNode
from hippynn.layers.pairs import MolPairSummer


def prior_pair_energy(r, onset: float, strength: float, width: float, fraction: float):
    """Energy of one bead pair at distance r (Å → kcal/mol)."""
    a = math.log(1.0 / fraction) / width
    return (fraction * strength / a) * torch.exp(a * (onset - r))


class ExponentialRepulsion(torch.nn.Module):
    """Fixed exponential pair repulsion summed per system; see the module docstring."""

    def __init__(self, onset: float, strength: float, width: float, fraction: float):
        super().__init__()
        if not (0.0 < fraction < 1.0 and width > 0.0 and strength > 0.0):
            raise ValueError("prior needs 0 < fraction < 1, width > 0 and strength > 0")
        self.onset = float(onset)
        self.strength = float(strength)
        self.width = float(width)
        self.fraction = float(fraction)
        self.summer = MolPairSummer()

    def forward(self, pair_dist, pair_first, mol_index, n_molecules, n_atoms_max):
        # directed pair list: (i, j) and (j, i) both present, hence the 1/2
        pair_energy = 0.5 * prior_pair_energy(pair_dist, self.onset, self.strength, self.width, self.fraction)
        atom_energy = torch.zeros((n_molecules * n_atoms_max, 1), device=pair_dist.device, dtype=pair_dist.dtype)
        atom_energy.index_add_(0, pair_first, pair_energy.unsqueeze(-1))
        mol_energy = self.summer(pair_energy.unsqueeze(-1), mol_index, n_molecules, pair_first)
        return mol_energy, atom_energy


class ExponentialRepulsionNode(ExpandParents, AutoKw, MultiNode):
    _input_names = "pair_dist", "pair_first", "mol_index", "n_molecules", "n_atoms_max"
    _output_names = "mol_energy", "atom_energies"
    _auto_module_class = ExponentialRepulsion
    _output_index_states = IdxType.Molecules, IdxType.Atoms

    @_parent_expander.match(PairIndexer, AtomIndexer)
    def expansion(self, pairfinder, pidxer, **kwargs):
        return pairfinder.pair_dist, pairfinder.pair_first, pidxer.mol_index, pidxer.n_molecules, pidxer.n_atoms_max

    def __init__(self, name, parents, onset, strength, width, fraction, module="auto"):
        self.module_kwargs = {"onset": onset, "strength": strength, "width": width, "fraction": fraction}
        parents = self.expand_parents(parents, module="auto")
        super().__init__(name, parents, module=module)


NETWORK_KEYS = ("n_features", "n_sensitivities", "dist_soft_min", "dist_soft_max", "dist_hard_max",
                "n_interaction_layers", "n_atom_layers", "sensitivity_type", "resnet")


def build_graph(n_bead_types: int, network: dict, prior: dict, pair_skin_A: float = 0.0) -> dict:
    """The hippynn graph. ``network``: HipnnQuad module kwargs (see NETWORK_KEYS); ``prior``: onset, strength,
    width, fraction. Returns the named nodes; ``forces`` has db_name "forces" (the only training target)."""
    species = SpeciesNode(name="species", db_name="species")
    positions = PositionsNode(name="positions", db_name="positions")
    cells = CellNode(name="cells", db_name="cells")
    species_set = list(range(n_bead_types + 1))  # 0 is padding
    net_kwargs = {k: network[k] for k in NETWORK_KEYS}
    net_kwargs["possible_species"] = species_set
    enc, pdx = acquire_encoding_padding([species], species_set=species_set)
    pairs = KDTreePairsMemory("pairs", (positions, enc, pdx, cells), dist_hard_max=network["dist_hard_max"],
                              skin=pair_skin_A)
    hipnn = HipnnQuad("HIPNN", (pdx, pairs), module_kwargs=net_kwargs, periodic=True)
    henergy = HEnergyNode("HEnergy", parents=(hipnn,))
    repulsion = ExponentialRepulsionNode("prior", (pairs, pdx), prior["onset"], prior["strength"], prior["width"],
                                         prior["fraction"])
    energy = henergy.mol_energy + repulsion.mol_energy
    energy.name = "energy"
    forces = GradientNode("forces", (energy, positions), sign=-1)
    forces.db_name = "forces"
    return {"species": species, "positions": positions, "cells": cells, "pairs": pairs, "network": hipnn,
            "henergy": henergy, "prior": repulsion, "energy": energy, "forces": forces}


def set_pair_skin(module: torch.nn.Module, skin_A: float) -> None:
    """Give the KD-tree pair finder a Verlet skin for MD (training uses 0: exact pairs every frame)."""
    for m in module.modules():
        if hasattr(m, "set_skin"):
            m.set_skin(skin_A)
