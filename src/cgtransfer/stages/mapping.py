"""Stage map_to_cg: all-atom frames → CG beads (MDAnalysis), in the model's units (Å, kcal/mol/Å).

A mapping is data: per residue name, bead name → atom names. Bead position = centre of mass of its atoms
(molecules made whole across the periodic box first), bead force = sum of its atoms' forces, bead mass = sum of
its atoms' masses. Summing forces over a whole molecule is exact even with constraints (constraint forces are
internal); for several beads per molecule a constrained bond must not cross a bead boundary, which is checked.
"""

from __future__ import annotations

import numpy as np
import MDAnalysis as mda
from MDAnalysis import transformations

from cgtransfer.analysis import rdf as rdfmod
from cgtransfer import units


def bead_definitions(universe: mda.Universe, mapping: dict[str, dict[str, list[str]]]):
    """Per bead: atom indices, bead name, residue index; bead order is residue by residue."""
    bead_names_all = []
    for beads in mapping.values():
        for name in beads:
            if name not in bead_names_all:
                bead_names_all.append(name)
    beads = []
    for res in universe.residues:
        if res.resname not in mapping:
            raise ValueError(f"residue {res.resname} (resid {res.resid}) has no entry in the CG mapping")
        for bead_name, atom_names in mapping[res.resname].items():
            atoms = res.atoms[np.isin(res.atoms.names, atom_names)]
            if len(atoms) != len(atom_names):
                missing = sorted(set(atom_names) - set(atoms.names))
                raise ValueError(f"mapping of residue {res.resname}, bead {bead_name}: atoms {missing} not found")
            beads.append((atoms.indices, bead_name, res.resindex))
    atom_bead = np.full(universe.atoms.n_atoms, -1)
    for i, (idx, name, _) in enumerate(beads):
        if np.any(atom_bead[idx] >= 0):
            raise ValueError(f"bead {name}: an atom is assigned to two beads")
        atom_bead[idx] = i
    if np.any(atom_bead < 0):
        unmapped = universe.atoms[atom_bead < 0]
        raise ValueError(f"atoms not assigned to any bead (forces would be lost): {unmapped.names[:5]} ...")
    return beads, atom_bead, bead_names_all


def check_constraints_inside_beads(universe: mda.Universe, atom_bead: np.ndarray) -> None:
    """HBonds constraints (bonds to hydrogen) must not cross a bead boundary."""
    if not hasattr(universe, "bonds"):
        return
    for bond in universe.bonds:
        a, b = bond.atoms
        if "H" in (a.element, b.element) and atom_bead[a.index] != atom_bead[b.index]:
            raise ValueError(f"constrained bond {a.resname}:{a.name}-{b.name} crosses a bead boundary")


def add_openmm_bonds(universe: mda.Universe, topology_pdb) -> None:
    """OpenMM writes no CONECT records for standard residues (water HOH): take the bonds OpenMM's own PDB reader
    assigns them (its residue definitions: the bonds the force field was built on), so molecules can be made whole."""
    from openmm.app import PDBFile

    bonds = [(a.index, b.index) for a, b in PDBFile(str(topology_pdb)).topology.bonds()]
    if bonds:
        universe.add_TopologyAttr("bonds", bonds)


def map_trajectory(topology_pdb, trajectory, forces_npz, mapping: dict, temperature_K: float | None = None) -> dict:
    """Return the CG arrays for hippynn: species, positions (Å), cells (Å), forces (kcal/mol/Å), float32; with
    the state's ``temperature_K`` (the bonded prior's Boltzmann inversion reads it)."""
    try:
        universe = mda.Universe(str(topology_pdb), str(trajectory))
    except Exception as exc:  # a truncated or foreign trajectory
        raise ValueError(f"{trajectory} (topology {topology_pdb}): MDAnalysis cannot read it "
                         f"({type(exc).__name__}: {exc}); rerun reference_md") from exc
    with np.load(forces_npz) as data:
        forces_kj = data["forces_kj_mol_nm"]
        time_ps = data["time_ps"]
        reference_seed = int(data["seed"]) if "seed" in data.files else -1
    if len(forces_kj) != universe.trajectory.n_frames:
        raise ValueError(f"{trajectory} has {universe.trajectory.n_frames} frames but {forces_npz} has {len(forces_kj)}")
    if forces_kj.shape[1] != universe.atoms.n_atoms:
        raise ValueError(f"{forces_npz} holds forces on {forces_kj.shape[1]} atoms but {topology_pdb} has "
                         f"{universe.atoms.n_atoms}: force file and topology do not belong together")
    try:
        beads, atom_bead, bead_types = bead_definitions(universe, mapping)
    except ValueError as exc:
        raise ValueError(f"{topology_pdb} does not match the mapping: {exc}") from exc
    if not (hasattr(universe, "bonds") and len(universe.bonds) > 0):
        add_openmm_bonds(universe, topology_pdb)
    check_constraints_inside_beads(universe, atom_bead)
    n_beads = len(beads)
    if hasattr(universe, "bonds") and len(universe.bonds) > 0:
        universe.trajectory.add_transformations(transformations.unwrap(universe.atoms))
    elif any(len(res.atoms) > 1 for res in universe.residues):
        raise ValueError(f"{topology_pdb} has no bonds (CONECT records): molecules cannot be made whole")

    # one AtomGroup per (residue name, bead name): its centre of mass per residue gives one bead per residue
    groups: dict[tuple, tuple[list, list]] = {}
    for i, (idx, name, resindex) in enumerate(beads):
        atoms, bead_index = groups.setdefault((universe.residues[resindex].resname, name), ([], []))
        atoms.extend(idx)
        bead_index.append(i)
    group_atoms = [(universe.atoms[np.asarray(a)], np.asarray(b)) for a, b in groups.values()]

    n_frames = universe.trajectory.n_frames
    positions = np.empty((n_frames, n_beads, 3), dtype=np.float64)
    boxes = np.empty((n_frames, 3), dtype=np.float64)
    for f, ts in enumerate(universe.trajectory):
        for ag, bead_index in group_atoms:
            positions[f, bead_index] = ag.center_of_mass(compound="residues")
        boxes[f] = ts.dimensions[:3]
        if np.any(np.abs(ts.dimensions[3:] - 90.0) > 1e-3):
            raise ValueError("only orthorhombic boxes are supported")
    positions -= np.floor(positions / boxes[:, None, :]) * boxes[:, None, :]

    forces_model = units.force_openmm_to_model(forces_kj.astype(np.float64))
    bead_forces = np.zeros((n_frames, n_beads, 3))
    np.add.at(bead_forces, (slice(None), atom_bead), forces_model)
    masses = np.zeros(n_beads)
    np.add.at(masses, atom_bead, universe.atoms.masses)
    names = np.array([b[1] for b in beads])
    species = np.array([bead_types.index(n) + 1 for n in names], dtype=np.int64)
    cells = np.zeros((n_frames, 3, 3))
    cells[:, [0, 1, 2], [0, 1, 2]] = boxes
    return {
        "species": np.broadcast_to(species, (n_frames, n_beads)).copy(),
        "positions": positions.astype(np.float32),
        "cells": cells.astype(np.float32),
        "forces": bead_forces.astype(np.float32),
        "masses": masses.astype(np.float32),
        "bead_names": names,
        "bead_types": np.array(bead_types),
        "residue_index": np.array([b[2] for b in beads], dtype=np.int64),
        "time_ps": np.asarray(time_ps, dtype=np.float64),
        "reference_seed": np.int64(reference_seed),
        **({"temperature_K": np.float64(temperature_K)} if temperature_K is not None else {}),
    }


def reference_bond_distributions(cg: dict):
    """Distance distribution of every intramolecular bead-pair type (``cgtransfer.bonded``) and its two-halves
    noise floor; an empty table when every molecule is one bead."""
    from cgtransfer.analysis import bonds as bonded

    pairs = bonded.intramolecular_pairs(cg["residue_index"])
    return bonded.distance_distributions(cg["positions"], cg["cells"], pairs,
                                         bonded.pair_type_names(pairs, cg["bead_names"]))


def reference_rdfs(cg: dict, nbins: int, rmax_A: float):
    """RDF of every bead-type pair on the whole mapped trajectory and on its two halves (the noise floor)."""
    import pandas as pd

    box = cg["cells"][:, [0, 1, 2], [0, 1, 2]]
    if rmax_A > 0.5 * box.min() + 1e-6:
        raise ValueError(f"rdf rmax_A {rmax_A} exceeds half the smallest box edge {0.5 * box.min():.2f} Å")
    u = rdfmod.bead_universe(cg["positions"], box, cg["bead_names"], cg["residue_index"])
    n = len(cg["positions"])
    tables = []
    types = list(cg["bead_types"])
    for i, a in enumerate(types):
        for b in types[i:]:
            r, g = rdfmod.bead_rdf(u, a, b, nbins, rmax_A)
            _, g1 = rdfmod.bead_rdf(u, a, b, nbins, rmax_A, stop=n // 2)
            _, g2 = rdfmod.bead_rdf(u, a, b, nbins, rmax_A, start=n // 2)
            tables.append(pd.DataFrame({"pair": f"{a}-{b}", "r_A": r, "g": g, "g_first_half": g1, "g_second_half": g2}))
    return pd.concat(tables, ignore_index=True)


ANGLE_BINS = 60  # 3-degree bins of the three-body angle distribution


def reference_angles(cg: dict, rdf_table):
    """Three-body angle distribution of every bead type (centre and both neighbours of that type, neighbours
    within the first minimum of the type's reference RDF: the first shell) on the whole mapped trajectory and its
    two halves (the noise floor). Types whose RDF has no first minimum (no shell) are left out."""
    import pandas as pd

    box = cg["cells"][:, [0, 1, 2], [0, 1, 2]]
    u = rdfmod.bead_universe(cg["positions"], box, cg["bead_names"], cg["residue_index"])
    n = len(cg["positions"])
    tables, shells = [], {}
    for a in map(str, cg["bead_types"]):
        t = rdf_table[rdf_table["pair"] == f"{a}-{a}"]
        cutoff = rdfmod.first_minimum(t["r_A"].to_numpy(), t["g"].to_numpy())
        if not np.isfinite(cutoff):
            continue
        try:
            theta, p, n_nb = rdfmod.three_body_angles(u, a, cutoff, ANGLE_BINS)
            _, p1, _ = rdfmod.three_body_angles(u, a, cutoff, ANGLE_BINS, stop=n // 2)
            _, p2, _ = rdfmod.three_body_angles(u, a, cutoff, ANGLE_BINS, start=n // 2)
        except ValueError as exc:  # a rare bead type (a dilute solute): no shell triples in a half of the run
            print(f"three-body angles of {a} left out: {exc}")
            continue
        width = float(theta[1] - theta[0])
        shells[a] = {"cutoff_A": float(cutoff), "mean_neighbours": n_nb,
                     "noise_floor": rdfmod.angle_distribution_mae(p1, p2, width)}
        tables.append(pd.DataFrame({"type": a, "theta_deg": theta, "p": p, "p_first_half": p1, "p_second_half": p2}))
    table = (pd.concat(tables, ignore_index=True) if tables else
             pd.DataFrame(columns=["type", "theta_deg", "p", "p_first_half", "p_second_half"]))
    return table, shells


def summarize_mapped(cg: dict, rdf_table, onset_threshold: float) -> dict:
    box = cg["cells"][:, [0, 1, 2], [0, 1, 2]]
    volume_nm3 = np.prod(box, axis=1) / units.ANGSTROM_PER_NM**3
    min_d = min(rdfmod.min_pair_distance(p, b, cg["residue_index"]) for p, b in zip(cg["positions"], box))
    out = {
        "n_frames": int(len(cg["positions"])),
        "n_beads": int(cg["positions"].shape[1]),
        "reference_seed": int(cg.get("reference_seed", -1)),
        "bead_types": list(map(str, cg["bead_types"])),
        "mean_box_A": box.mean(axis=0).tolist(),
        "mean_density_g_cm3": float(units.density_g_cm3(float(cg["masses"].sum()), volume_nm3).mean()),
        "mean_abs_force_kcal_mol_A": float(np.abs(cg["forces"]).mean()),
        "rms_force_kcal_mol_A": float(np.sqrt(np.mean(cg["forces"].astype(np.float64) ** 2))),
        "min_pair_distance_A": float(min_d),
        "rdf": {},
    }
    for pair, t in rdf_table.groupby("pair", sort=False):
        r, g = t["r_A"].to_numpy(), t["g"].to_numpy()
        peak_r, peak_g = rdfmod.first_peak(r, g)
        out["rdf"][pair] = {
            "onset_A": rdfmod.rdf_onset(r, g, onset_threshold),
            "first_peak_r_A": peak_r,
            "first_peak_g": peak_g,
            "noise_floor_mae": rdfmod.rdf_mae(t["g_first_half"], t["g_second_half"]),
        }
    return out
