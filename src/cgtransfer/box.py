"""Stage build_box: pack n copies of a molecule template into a cubic periodic box with packmol."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np
import openmm.unit as u
from openmm.app import PDBFile, Topology

from . import units
from .io import atomic_path


def molecule_mass_amu(topology: Topology) -> float:
    return float(sum(atom.element.mass.value_in_unit(u.amu) for atom in topology.atoms()))


def replicate_topology(template: Topology, n_copies: int) -> Topology:
    """A topology of ``n_copies`` of the template's residues, bonds included (one chain)."""
    top = Topology()
    chain = top.addChain()
    template_atoms = list(template.atoms())
    for copy in range(n_copies):
        new_atoms = {}
        for residue in template.residues():
            res = top.addResidue(residue.name, chain, id=str(copy + 1))
            for atom in residue.atoms():
                new_atoms[atom.index] = top.addAtom(atom.name, atom.element, res)
        for bond in template.bonds():
            top.addBond(new_atoms[bond[0].index], new_atoms[bond[1].index])
    assert top.getNumAtoms() == n_copies * len(template_atoms)
    return top


def packmol_binary() -> str:
    from packmol.cli import get_binary_path

    return str(get_binary_path())


def build_box(template_pdb, n_molecules: int, density_g_cm3: float, out_pdb, seed: int = 1,
              tolerance_A: float = 2.0) -> dict:
    """Pack ``n_molecules`` copies of ``template_pdb`` at ``density_g_cm3`` into a periodic cube; write a PDB
    (with CONECT bonds and the box in CRYST1). Returns the box edge and density."""
    template = PDBFile(str(template_pdb))
    if template.topology.getNumBonds() == 0 and template.topology.getNumAtoms() > 1:
        raise ValueError(f"{template_pdb}: the molecule template has {template.topology.getNumAtoms()} atoms but no "
                         "CONECT bonds (only a one-atom template, e.g. argon, needs none)")
    mass = molecule_mass_amu(template.topology)
    volume_nm3 = units.volume_nm3_for_density(n_molecules * mass, density_g_cm3)
    edge_A = float(units.nm_to_angstrom(volume_nm3 ** (1.0 / 3.0)))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        PDBFile.writeFile(template.topology, template.positions, str(tmp / "template.pdb"))
        (tmp / "pack.inp").write_text(
            f"tolerance {tolerance_A}\nfiletype pdb\noutput packed.pdb\nseed {seed}\n"
            f"pbc 0. 0. 0. {edge_A:.4f} {edge_A:.4f} {edge_A:.4f}\n"
            f"structure template.pdb\n  number {n_molecules}\nend structure\n"
        )
        with open(tmp / "pack.inp") as inp:
            proc = subprocess.run([packmol_binary()], stdin=inp, cwd=tmp, capture_output=True, text=True)
        print(proc.stdout[-3000:])
        if proc.returncode != 0 or "Success!" not in proc.stdout or not (tmp / "packed.pdb").exists():
            raise RuntimeError(
                f"packmol could not pack {n_molecules} molecules of {template_pdb} at {density_g_cm3} g/cm3 "
                f"(exit {proc.returncode}); lower initial_density_g_cm3. Output tail:\n{proc.stdout[-1500:]}"
            )
        packed = PDBFile(str(tmp / "packed.pdb"))
        positions_nm = np.asarray(packed.getPositions(asNumpy=True).value_in_unit(u.nanometer))
    top = replicate_topology(template.topology, n_molecules)
    edge_nm = edge_A / units.ANGSTROM_PER_NM
    top.setPeriodicBoxVectors(((edge_nm, 0, 0), (0, edge_nm, 0), (0, 0, edge_nm)) * u.nanometer)
    with atomic_path(out_pdb) as tmp_pdb:
        with open(tmp_pdb, "w") as fh:
            PDBFile.writeFile(top, positions_nm * u.nanometer, fh)
    return {"n_molecules": n_molecules, "box_edge_A": edge_A, "density_g_cm3": density_g_cm3}
