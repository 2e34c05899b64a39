"""The CG model: hippynn HIP-NN-TS (HipnnQuad, l=2) energy plus a fixed exponential pair repulsion (the prior).

The temperature-aware variant (model kind ``hipnn_t``) gives the same network two energy heads and the
temperature of each frame as an input: the CG potential of mean force is a free energy, W(R; T) = U(R) − T S(R).
With θ = (T − T₀)/T₀ (T₀: the mean training temperature) the heads are W₀(R) = W(R; T₀) − prior and
S̃(R) = T₀ S(R) (kcal/mol), so W = prior + W₀ − θ S̃, U = prior + W₀ + S̃ and S = S̃/T₀ (kcal/mol/K). The two
heads are centred on T₀ because the training temperatures lie on either side of it: W₀ and S̃ are then nearly
uncorrelated targets (uncentred, U and T S would be two large, nearly cancelling outputs).

Energy (kcal/mol) = HIP-NN-TS(beads) + sum over bead pairs of the prior; forces = -dE/dx (hippynn
GradientNode). The prior follows the seed paper's companion hippynn example: a pair force
|F(r)| = p·s·exp(a (t - r)), a = ln(1/p)/d, so that |F(t)| = p·s at the onset t (where the reference RDF first
rises) and |F(t - d)| = s, with s the mean |force| of the data. Unlike the upstream example, each bead pair is
counted once (hippynn pair lists are directed), so the prior's force is exactly its formula.

This module path is pickled into every checkpoint: keep the class names and location stable.
"""

from __future__ import annotations

import math
import sys
import types

import torch

from cgtransfer.compute import import_hippynn

import_hippynn()  # hippynn's import-time torch.compile wrappers deferred to their first call (compute.py)
from hippynn.graphs import IdxType  # noqa: E402 (after import_hippynn)
from hippynn.graphs.nodes.base import ExpandParents, InputNode
from hippynn.graphs.nodes.base.definition_helpers import AutoKw, AutoNoKw
from hippynn.graphs.nodes.base.multi import MultiNode
from hippynn.graphs.nodes.indexers import AtomReIndexer, acquire_encoding_padding
from hippynn.graphs.nodes.inputs import CellNode, PositionsNode, SpeciesNode
from hippynn.graphs.nodes.networks import HipnnQuad
from hippynn.graphs.nodes.pairs import KDTreePairsMemory
from hippynn.graphs.nodes.physics import GradientNode
from hippynn.graphs.nodes.tags import AtomIndexer, PairIndexer
from hippynn.graphs.nodes.targets import HEnergyNode
from hippynn import settings as hippynn_settings
from hippynn.layers.hiplayers.interactions import InteractLayerQuad
from hippynn.layers.hiplayers.sensitivity import InverseSensitivityModule, warn_if_under
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


class TemperatureNode(InputNode):
    """The temperature of each frame (K), one value per system (database key ``temperature``, shape (F, 1))."""

    _index_state = IdxType.Molecules
    input_type_str = "Temperature"


class FreeEnergyOfTemperature(torch.nn.Module):
    """W = W₀ − θ S̃ and U = W₀ + S̃ with θ = (T − T₀)/T₀ (see the module docstring); all (B, 1)."""

    def __init__(self, reference_temperature: float):
        super().__init__()
        if not reference_temperature > 0.0:
            raise ValueError("the reference temperature of a temperature-aware model must be positive")
        self.reference_temperature = float(reference_temperature)

    def forward(self, free_energy_at_reference, entropy_term, temperature):
        theta = (temperature.to(free_energy_at_reference.dtype) - self.reference_temperature) / self.reference_temperature
        return free_energy_at_reference - theta * entropy_term, free_energy_at_reference + entropy_term


class FreeEnergyNode(AutoKw, MultiNode):
    _input_names = "free_energy_at_reference", "entropy_term", "temperature"
    _output_names = "free_energy", "energy"
    _auto_module_class = FreeEnergyOfTemperature
    _output_index_states = IdxType.Molecules, IdxType.Molecules

    def __init__(self, name, parents, reference_temperature, module="auto"):
        self.module_kwargs = {"reference_temperature": reference_temperature}
        super().__init__(name, parents, module=module)


NETWORK_KEYS = ("n_features", "n_sensitivities", "dist_soft_min", "dist_soft_max", "dist_hard_max",
                "n_interaction_layers", "n_atom_layers", "sensitivity_type", "resnet")


class MoleculeNode(InputNode):
    """The molecule of every bead (database key ``molecule``, (F, N) int): with several beads per molecule the
    network and the prior leave out pairs inside one molecule (the bonded prior's, ``cgtransfer.bonded``)."""

    _index_state = IdxType.MolAtom
    input_type_str = "Molecule"


class IntermolecularPairs(torch.nn.Module):
    """Keeps the pairs of beads in different molecules (pairs never cross frames, so per-frame ids suffice)."""

    def forward(self, pair_dist, pair_first, pair_second, pair_coord, cell_offsets, offset_index, molecule):
        mol = molecule.reshape(-1)
        keep = torch.nonzero(mol[pair_first] != mol[pair_second]).squeeze(1)
        return tuple(t[keep] for t in (pair_dist, pair_first, pair_second, pair_coord, cell_offsets, offset_index))


class IntermolecularPairsNode(AutoNoKw, PairIndexer, MultiNode):
    """A periodic pair list with the intramolecular pairs removed: the same outputs as its parent pair finder,
    so hippynn's networks and the prior take it in its place."""

    _input_names = ("all_pair_dist", "all_pair_first", "all_pair_second", "all_pair_coord", "all_cell_offsets",
                    "all_offset_index", "molecule")
    _output_names = "pair_dist", "pair_first", "pair_second", "pair_coord", "cell_offsets", "offset_index"
    _output_index_states = (IdxType.Pair,) * 6
    _auto_module_class = IntermolecularPairs

    def __init__(self, name, pairs, molecule_atoms, module="auto"):
        parents = tuple(getattr(pairs, n) for n in self._output_names) + (molecule_atoms,)
        super().__init__(name, parents, module=module)


def build_graph(n_bead_types: int, network: dict, prior: dict, pair_skin_A: float = 0.0,
                reference_temperature_K: float | None = None, exclude_intramolecular: bool = False) -> dict:
    """The hippynn graph. ``network``: HipnnQuad module kwargs (see NETWORK_KEYS); ``prior``: onset, strength,
    width, fraction. Returns the named nodes; ``forces`` has db_name "forces" (the force-matching target).

    With ``reference_temperature_K`` = T₀ the graph is temperature-aware (module docstring): a ``temperature``
    input, a second head ``HEntropy`` (S̃ = T₀ S), ``network_energy`` = the network's part of W(R; T) and
    ``model_energy`` = U(R) with the prior (db_name "energy_anchor": the optional energy-anchoring target)."""
    species = SpeciesNode(name="species", db_name="species")
    positions = PositionsNode(name="positions", db_name="positions")
    cells = CellNode(name="cells", db_name="cells")
    species_set = list(range(n_bead_types + 1))  # 0 is padding
    net_kwargs = {k: network[k] for k in NETWORK_KEYS}
    net_kwargs["possible_species"] = species_set
    enc, pdx = acquire_encoding_padding([species], species_set=species_set)
    pairs = KDTreePairsMemory("pairs", (positions, enc, pdx, cells), dist_hard_max=network["dist_hard_max"],
                              skin=pair_skin_A)
    nodes = {"species": species, "positions": positions, "cells": cells, "pairs": pairs}
    if exclude_intramolecular:  # several beads per molecule: network and prior see intermolecular pairs only
        molecule = MoleculeNode(name="molecule", db_name="molecule")
        molecule_atoms = AtomReIndexer("molecule_atoms", (molecule, pdx))
        pairs = IntermolecularPairsNode("intermolecular_pairs", pairs, molecule_atoms)
        nodes.update({"molecule": molecule, "intermolecular_pairs": pairs})
    hipnn = HipnnQuad("HIPNN", (pdx, pairs), module_kwargs=net_kwargs, periodic=True)
    henergy = HEnergyNode("HEnergy", parents=(hipnn,))
    repulsion = ExponentialRepulsionNode("prior", (pairs, pdx), prior["onset"], prior["strength"], prior["width"],
                                         prior["fraction"])
    nodes.update({"network": hipnn, "henergy": henergy, "prior": repulsion})
    if reference_temperature_K is None:
        network_energy = henergy.mol_energy
    else:
        temperature = TemperatureNode(name="temperature", db_name="temperature")
        hentropy = HEnergyNode("HEntropy", parents=(hipnn,))
        free = FreeEnergyNode("free_energy", (henergy.mol_energy, hentropy.mol_energy, temperature),
                              reference_temperature=float(reference_temperature_K))
        network_energy = free.free_energy
        network_energy.name = "network_energy"
        model_energy = free.energy + repulsion.mol_energy
        model_energy.name = "model_energy"
        model_energy.db_name = "energy_anchor"
        nodes.update({"temperature": temperature, "hentropy": hentropy, "free_energy": free,
                      "model_energy": model_energy})
    energy = network_energy + repulsion.mol_energy
    energy.name = "energy"
    forces = GradientNode("forces", (energy, positions), sign=-1)
    forces.db_name = "forces"
    nodes.update({"network_energy": network_energy, "energy": energy, "forces": forces})
    return nodes


def _pair_list_outdated(self, coordinates, cells):
    """Whether a skin pair list (hippynn ``PairMemory``) must be rebuilt: a batch of several frames, no list yet,
    no skin, or the beads and the cell moved too far since the list was built.

    The Verlet condition: a pair left out of the list was farther apart than cutoff + skin when the list was
    built; its separation x_i - x_j + n.H (n: integer image, H: cell rows) has since changed by at most
    |dx_i| + |dx_j| + sum_k |n_k| |dH_k|. So the list stays exact while 2 max|dx| + sum_k max|n_k| |dH_k| <= skin,
    with max|n_k| the largest image index of the listed pairs (1 in a box wider than twice the list range).
    A slightly scaled cell, as OpenMM's pressure measurement (two trial boxes per report) and the barostat's
    trial moves make, then keeps the list (it was rebuilt three times per report); the image offsets of the kept
    pairs follow the current cell (``_pair_offsets_for``).

    hippynn's own test sums the squared displacements over the beads (``.sum(1)`` of (1, N, 3)) and compares
    that sum with (skin/2)^2, and rebuilds at any change of the cell: far too often (with 256 beads about every
    other 10-fs step) though never too late. The positions must be continuous between calls (not wrapped into
    the box each call: a wrapped bead jumps by a box edge)."""
    if _list_still_valid(self, coordinates, cells):
        _pair_offsets_for(self, cells)
        return False
    self._offsets_cells = cells.clone()  # the list about to be built holds the offsets for these cells
    return True


def _list_still_valid(memory, coordinates, cells) -> bool:
    if coordinates.shape[0] != 1 or memory.positions is None or memory.skin == 0:
        return False
    if memory.positions.shape != coordinates.shape or memory.cells.shape != cells.shape:
        return False
    with torch.no_grad():
        moved = float(((memory.positions - coordinates) ** 2).sum(-1).max().sqrt())
        cell_moved = 0.0
        if not torch.equal(memory.cells, cells):
            images = memory.offsets.abs().amax(dim=0).to(cells.dtype) if len(memory.offsets) else cells.new_zeros(3)
            cell_moved = float((images * torch.linalg.vector_norm(cells[0] - memory.cells[0], dim=1)).sum())
    return 2.0 * moved + cell_moved <= memory._skin


def _pair_offsets_for(memory, cells):
    """The kept pairs' Cartesian image offsets for ``cells`` (hippynn stores them for the cell of the build)."""
    if not torch.equal(memory._offsets_cells, cells):
        with torch.no_grad():
            memory.pair_offsets = memory.offsets.to(cells.dtype) @ cells[0]
        memory._offsets_cells = cells.clone()


def set_pair_skin(module: torch.nn.Module, skin_A: float) -> None:
    """Give the KD-tree pair finder a Verlet skin for MD (training uses 0: exact pairs every frame), with the
    per-bead rebuild test (`_pair_list_outdated`)."""
    for m in module.modules():
        if hasattr(m, "set_skin"):
            m.set_skin(skin_A)
            if hasattr(m, "recalculation_needed"):
                m.recalculation_needed = types.MethodType(_pair_list_outdated, m)


EXP_FLOOR_MARGIN = 8.0  # the sensitivities' exponent floor above ln(smallest normal float), see below


def _sensitivity_without_underflow(self, distflat, warn_low_distances=None):
    """hippynn's ``InverseSensitivityModule.forward`` with its exponent bounded below at ln(smallest normal float)
    + 8: torch's CPU exp takes a slow path for results that underflow, and still for arguments at ln(smallest
    normal) itself (float32 -87.34, the bound this first had): a 256-bead liquid frame's 7848 x 16 arguments,
    29 % of them at that bound, took 1.9 ms, the same bounded at -86 or -80 0.024 ms (measured with the CPU
    time of one thread). The values replaced are below 6e-35 (float32; 7e-305 in float64) and their gradient
    likewise: beside sensitivities of order 1, nothing in float32 or float64 arithmetic."""
    if warn_low_distances is None:
        warn_low_distances = hippynn_settings.WARN_LOW_DISTANCES
    if warn_low_distances:
        with torch.no_grad():
            mu, argmin = self.mu.min(dim=1)
            sig = self.sigma[:, argmin]
            warn_if_under(distflat, (mu ** -1 - sig ** -1) ** -1)
    nondim = (distflat.unsqueeze(1) ** -1 - self.mu ** -1) ** 2 / (self.sigma ** -2)
    floor = math.log(torch.finfo(nondim.dtype).tiny) + EXP_FLOOR_MARGIN
    return torch.exp(torch.clamp(-0.5 * nondim, min=floor)) * self.cutoff(distflat).unsqueeze(1)


def _interaction_quad_by_neighbour_blocks(self, in_features, pair_first, pair_second, dist_pairs, coord_pairs):
    """hippynn's ``InteractLayerQuad.forward`` (HIP-NN-TS, l <= 2) with its environment sum done per bead on
    dense neighbour blocks. hippynn stacks the pair sensitivities times the nine tensor components (1, r^, and the
    five of the traceless r^r^) into one pairs x 9 nu array and scatter-adds its product with the neighbour's
    features onto the beads; here the components t (pairs x 9) and the sensitivity-weighted features s
    (pairs x nu f) are laid out per bead (beads x neighbours x ...) and env[n] = t_n^T s_n is one batched matrix
    product. The same sums in another order (equal to float rounding, tests/test_model.py), without the
    pairs x 9 nu intermediates whose memory traffic made most of a CPU network call (256 beads: ~14 -> ~9 ms)."""
    n_atoms_real = in_features.shape[0]
    n_pairs = pair_first.shape[0]
    sense_vals = self.sensitivity(dist_pairs)
    rhats = coord_pairs / dist_pairs.unsqueeze(1)
    rhatsquad = rhats.unsqueeze(1) * rhats.unsqueeze(2)
    rhatsquad = (rhatsquad + rhatsquad.transpose(1, 2)) / 2
    tr = torch.diagonal(rhatsquad, dim1=1, dim2=2).sum(dim=1) / 3.0
    tr = tr.unsqueeze(1).unsqueeze(2) * torch.eye(3, dtype=tr.dtype, device=tr.device).unsqueeze(0)
    rhatsqflat = (rhatsquad - tr).reshape(-1, 9)[:, self.upper_ind]
    components = torch.cat([torch.ones_like(rhats[:, :1]), rhats, rhatsqflat], dim=1)  # (pairs, 9)
    neighbour = in_features[pair_second]
    if self.nf_in == 1:
        weighted = sense_vals * neighbour
    else:
        weighted = (sense_vals.unsqueeze(2) * neighbour.unsqueeze(1)).reshape(n_pairs, self.n_dist * self.nf_in)
    with torch.no_grad():  # each pair's bead and its slot among that bead's neighbours
        order = torch.argsort(pair_first, stable=True)
        first = pair_first[order]
        counts = torch.bincount(first, minlength=n_atoms_real)
        slot = torch.arange(n_pairs, device=first.device) - (torch.cumsum(counts, 0) - counts)[first]
        width = max(int(counts.max()), 1) if n_pairs else 1
    blocks_t = components.new_zeros(n_atoms_real, width, 9).index_put((first, slot), components[order])
    blocks_s = weighted.new_zeros(n_atoms_real, width, weighted.shape[1]).index_put((first, slot), weighted[order])
    env_features_stacked = torch.bmm(blocks_t.transpose(1, 2), blocks_s).reshape(-1, 9, self.n_dist, self.nf_in)
    # from here as hippynn
    env_features, env_features_vec, env_features_quad = torch.split(env_features_stacked, [1, 3, 5], dim=1)
    env_features = torch.reshape(env_features, (n_atoms_real, self.n_dist * self.nf_in))
    weights_rs = torch.reshape(self.int_weights.permute(0, 2, 1), (self.n_dist * self.nf_in, self.nf_out))
    features_out = torch.mm(env_features, weights_rs)
    env_features_vec = env_features_vec.reshape(n_atoms_real * 3, self.n_dist * self.nf_in)
    features_out_vec = torch.mm(env_features_vec, weights_rs)
    features_out_vec = features_out_vec.reshape(n_atoms_real, 3, self.nf_out)
    features_out_vec = torch.square(features_out_vec).sum(dim=1) + self.cusp_reg
    features_out_vec = torch.sqrt(features_out_vec) * self.vecscales.unsqueeze(0)
    env_features_quad = env_features_quad.reshape(n_atoms_real * 5, self.n_dist * self.nf_in)
    features_out_quad = torch.mm(env_features_quad, weights_rs).reshape(n_atoms_real, 5, self.nf_out)
    quadfirst = torch.square(features_out_quad).sum(dim=1)
    quadsecond = features_out_quad[:, 0, :] * features_out_quad[:, 3, :]
    features_out_quad = torch.sqrt(2 * (quadfirst + quadsecond) + self.cusp_reg) * self.quadscales.unsqueeze(0)
    return features_out + features_out_vec + features_out_quad + self.selfint(in_features)


def evaluate_fast_on_cpu(module: torch.nn.Module) -> int:
    """For evaluation on the CPU (MD, force errors, analyses; training keeps hippynn's own code and the checkpoint
    stays hippynn's): the HIP-NN-TS interaction layers sum their environments on neighbour blocks
    (`_interaction_quad_by_neighbour_blocks`) and the inverse sensitivities bound their exponent
    (`_sensitivity_without_underflow`). Returns the number of modules switched."""
    n = 0
    for m in module.modules():
        if type(m) is InteractLayerQuad:
            m.forward = types.MethodType(_interaction_quad_by_neighbour_blocks, m)
            n += 1
        elif type(m) is InverseSensitivityModule:
            m.forward = types.MethodType(_sensitivity_without_underflow, m)
            n += 1
    return n


def hippynn_methods_only(module: torch.nn.Module) -> None:
    """Undo `set_pair_skin`'s rebuild test and `evaluate_fast_on_cpu` on ``module``'s submodules: what is then
    pickled (LAMMPS's ML-IAP interface) holds hippynn's own classes and methods only (bound methods set on an
    instance would be pickled with it and not unpickle)."""
    for m in module.modules():
        m.__dict__.pop("recalculation_needed", None)
        m.__dict__.pop("forward", None)


# Checkpoints written before the package was layered pickled these classes as ``cgtransfer.model.<name>``:
# the old module name resolves here, so they still load.
sys.modules.setdefault("cgtransfer.model", sys.modules[__name__])
