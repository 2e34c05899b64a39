"""Backmapping: a CG frame (bead centres) → an all-atom configuration of the same system.

1. Placement: each molecule gets the internal geometry of a molecule of the same residue drawn at random from a
   library of all-atom molecules (an all-atom frame of the reference, made whole), oriented so that its bead
   centres lie on the CG bead centres: one bead, a uniformly random rotation about the bead (the bead is the
   molecule's centre of mass); several beads, the mass-weighted Kabsch rotation of its bead centres onto the CG
   ones, then (two beads) a random spin about the bead-bead axis. The molecule's centre of mass goes to the CG
   molecule's centre of mass.
2. Restrained minimisation: the all-atom force field plus one harmonic restraint per bead on the centre of mass of
   its atoms (OpenMM ``CustomCentroidBondForce``, mass weights, force group 1) towards the CG bead centre; the
   overlaps of the placement relax while every bead stays where the CG frame has it.
3. Release (the caller's): the restraint's force constant set to 0 (global parameter ``k_backmap``) and a short
   unrestrained all-atom run.

Positions in Å at the interface, nm inside OpenMM (``cgtransfer.units``).
"""

from __future__ import annotations

import numpy as np
import openmm
import openmm.unit as u
from openmm import app

from cgtransfer import units

RESTRAINT_GROUP = 1
RESTRAINT_PARAMETER = "k_backmap"


def bead_atoms(topology: app.Topology, mapping: dict) -> list[tuple[int, str, np.ndarray]]:
    """Per bead, in the CG order (residue by residue, the mapping's bead order): (residue index, bead name, atom
    indices)."""
    out = []
    for res in topology.residues():
        if res.name not in mapping:
            raise ValueError(f"residue {res.name} (index {res.index}) has no entry in the CG mapping")
        names = {a.name: a.index for a in res.atoms()}
        for bead, atom_names in mapping[res.name].items():
            missing = [a for a in atom_names if a not in names]
            if missing:
                raise ValueError(f"mapping of residue {res.name}, bead {bead}: atoms {missing} not found")
            out.append((res.index, bead, np.array([names[a] for a in atom_names])))
    return out


def atom_masses(topology: app.Topology) -> np.ndarray:
    return np.array([a.element.mass.value_in_unit(u.dalton) if a.element is not None else 0.0
                     for a in topology.atoms()])


def make_whole(x: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Points of one molecule (k, 3) moved by whole box vectors next to the first one."""
    d = x - x[0]
    return x[0] + d - box * np.round(d / box)


def centres(x: np.ndarray, groups: list[np.ndarray], masses: np.ndarray) -> np.ndarray:
    return np.array([np.average(x[g], axis=0, weights=masses[g]) if masses[g].sum() > 0 else x[g].mean(axis=0)
                     for g in groups])


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random rotation matrix (a random unit quaternion)."""
    q = rng.normal(size=4)
    w, x, y, z = q / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def kabsch(p: np.ndarray, q: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The rotation R minimising Σ w |R p_i − q_i|² (p, q centred)."""
    h = (p * w[:, None]).T @ q
    v, _, wt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(wt.T @ v.T))
    return wt.T @ np.diag([1.0, 1.0, d]) @ v.T


def axis_spin(axis: np.ndarray, angle: float) -> np.ndarray:
    a = axis / np.linalg.norm(axis)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def place_molecules(topology: app.Topology, library_A: np.ndarray, library_box_A: np.ndarray, mapping: dict,
                    beads_A: np.ndarray, box_A: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """All-atom positions (Å) for the CG frame ``beads_A`` (n_beads, 3) in the box ``box_A``: one library molecule
    (``library_A``: an all-atom frame of the same topology, any box) per CG molecule, oriented as described in the
    module docstring. Bead centres land on the CG ones exactly for one bead per molecule, and up to the
    difference between the library's and the CG frame's bead-bead distances otherwise."""
    masses = atom_masses(topology)
    beads = bead_atoms(topology, mapping)
    if len(beads) != len(beads_A):
        raise ValueError(f"the CG frame has {len(beads_A)} beads, the topology and mapping give {len(beads)}")
    by_residue: dict[int, list[int]] = {}
    for i, (res, _, _) in enumerate(beads):
        by_residue.setdefault(res, []).append(i)
    residues = list(topology.residues())
    library_of: dict[str, list[int]] = {}
    for res in residues:
        library_of.setdefault(res.name, []).append(res.index)
    out = np.zeros((topology.getNumAtoms(), 3))
    for res_index, bead_idx in by_residue.items():
        res = residues[res_index]
        src = residues[int(rng.choice(library_of[res.name]))]
        src_atoms = np.array([a.index for a in src.atoms()])
        x = make_whole(library_A[src_atoms], library_box_A)
        offset = {a: k for k, a in enumerate(src_atoms)}
        src_beads = [np.array([offset[a] for a in beads_of]) for beads_of in
                     (bead_atoms_of(src, mapping, res.name))]
        m = masses[src_atoms]
        c_lib = centres(x, src_beads, m)
        w = np.array([m[g].sum() for g in src_beads])
        target = make_whole(np.asarray(beads_A[bead_idx], dtype=np.float64), box_A)
        com_lib, com_cg = np.average(c_lib, axis=0, weights=w), np.average(target, axis=0, weights=w)
        if len(bead_idx) == 1:
            rot = random_rotation(rng)
        else:
            rot = kabsch(c_lib - com_lib, target - com_cg, w)
            if len(bead_idx) == 2:
                rot = axis_spin(target[1] - target[0], rng.uniform(0, 2 * np.pi)) @ rot
        placed = (x - np.average(x, axis=0, weights=m)) @ rot.T + com_cg
        # the molecule's own atom order in the output topology (same residue layout as the library molecule)
        dst_atoms = np.array([a.index for a in res.atoms()])
        out[dst_atoms] = placed
    return out


def bead_atoms_of(residue, mapping: dict, resname: str) -> list[np.ndarray]:
    """Atom indices (global) of each bead of one residue, in the mapping's bead order."""
    names = {a.name: a.index for a in residue.atoms()}
    return [np.array([names[a] for a in atoms]) for atoms in mapping[resname].values()]


def add_bead_restraints(system: openmm.System, topology: app.Topology, mapping: dict, beads_A: np.ndarray,
                        k_kj_mol_nm2: float) -> openmm.CustomCentroidBondForce:
    """One harmonic restraint per bead on the mass-weighted centre of its atoms towards ``beads_A`` (Å; the
    positions the atoms were placed around, not wrapped), force group ``RESTRAINT_GROUP``; the force constant is
    the global parameter ``k_backmap``."""
    force = openmm.CustomCentroidBondForce(1, f"0.5*{RESTRAINT_PARAMETER}*((x1-x0)^2+(y1-y0)^2+(z1-z0)^2)")
    force.addGlobalParameter(RESTRAINT_PARAMETER, k_kj_mol_nm2)
    for name in ("x0", "y0", "z0"):
        force.addPerBondParameter(name)
    target = units.angstrom_to_nm(np.asarray(beads_A, dtype=np.float64))
    for i, (_, _, atoms) in enumerate(bead_atoms(topology, mapping)):
        g = force.addGroup([int(a) for a in atoms])  # default weights: the particle masses
        force.addBond([g], [float(v) for v in target[i]])
    force.setForceGroup(RESTRAINT_GROUP)
    system.addForce(force)
    return force


def unrestrained_groups(system: openmm.System) -> set[int]:
    return {system.getForce(i).getForceGroup() for i in range(system.getNumForces())} - {RESTRAINT_GROUP}


def bead_deviation_A(positions_A: np.ndarray, topology: app.Topology, mapping: dict, beads_A: np.ndarray,
                     box_A: np.ndarray) -> np.ndarray:
    """Per bead: the minimum-image distance (Å) between the centre of mass of its atoms and the CG bead."""
    masses = atom_masses(topology)
    groups = [atoms for _, _, atoms in bead_atoms(topology, mapping)]
    got = np.array([np.average(make_whole(positions_A[g], box_A), axis=0, weights=masses[g])
                    if masses[g].sum() > 0 else positions_A[g].mean(axis=0) for g in groups])
    d = got - np.asarray(beads_A, dtype=np.float64)
    d -= box_A * np.round(d / box_A)
    return np.linalg.norm(d, axis=1)


def restrained_minimisation(context: openmm.Context, system: openmm.System, tolerance_kj_mol_nm: float = 1.0,
                            max_iterations: int = 0) -> dict:
    """Minimise with the restraints on; returns the all-atom potential energy (restraints excluded) before and
    after (kJ/mol) and the restraint energy after."""
    groups = unrestrained_groups(system)

    def energy(g):
        return context.getState(getEnergy=True, groups=g).getPotentialEnergy().value_in_unit(u.kilojoule_per_mole)

    before = energy(groups)
    openmm.LocalEnergyMinimizer.minimize(context, tolerance_kj_mol_nm, max_iterations)
    return {"energy_placed_kj_mol": before, "energy_minimised_kj_mol": energy(groups),
            "restraint_energy_kj_mol": energy({RESTRAINT_GROUP})}
