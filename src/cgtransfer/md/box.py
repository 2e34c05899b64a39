"""Stage build_box: pack n copies of a molecule template into a cubic periodic box with packmol."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np
import openmm.unit as u
from openmm.app import PDBFile, Topology

from cgtransfer import units
from cgtransfer.io import atomic_path


def molecule_mass_amu(topology: Topology) -> float:
    return float(sum(atom.element.mass.value_in_unit(u.amu) for atom in topology.atoms()))


def replicate_topology(template: Topology, n_copies: int) -> Topology:
    """A topology of ``n_copies`` of the template's residues, bonds included (one chain)."""
    return mixture_topology([(template, n_copies)])


def mixture_topology(types: list) -> Topology:
    """One topology (one chain) of ``[(template topology, count), ...]``: the copies of each type follow one
    another in the order given, bonds included; residue ids count the molecules."""
    top = Topology()
    chain = top.addChain()
    copy = 0
    for template, count in types:
        for _ in range(count):
            copy += 1
            new_atoms = {}
            for residue in template.residues():
                res = top.addResidue(residue.name, chain, id=str(copy))
                for atom in residue.atoms():
                    new_atoms[atom.index] = top.addAtom(atom.name, atom.element, res)
            for bond in template.bonds():
                top.addBond(new_atoms[bond[0].index], new_atoms[bond[1].index])
    assert top.getNumAtoms() == sum(count * template.getNumAtoms() for template, count in types)
    return top


def packmol_binary() -> str:
    from packmol.cli import get_binary_path

    return str(get_binary_path())


def build_box(template_pdb, n_molecules: int, density_g_cm3: float, out_pdb, seed: int = 1,
              tolerance_A: float = 2.0) -> dict:
    """Pack ``n_molecules`` copies of ``template_pdb`` at ``density_g_cm3`` into a periodic cube (one molecule
    type; ``build_mixture_box`` for several)."""
    return build_mixture_box([(template_pdb, n_molecules)], density_g_cm3, out_pdb, seed, tolerance_A)


def build_mixture_box(molecules: list, density_g_cm3: float, out_pdb, seed: int = 1, tolerance_A: float = 2.0) -> dict:
    """Pack molecule types ``[(template_pdb, count), ...]`` at ``density_g_cm3`` into a periodic cube with packmol
    (one ``structure`` block per type, in this order); write a PDB with CONECT bonds and the box in CRYST1: the
    residues of each type follow one another in the order given. Returns the box edge and density."""
    templates = []
    for template_pdb, count in molecules:
        template = PDBFile(str(template_pdb))
        if template.topology.getNumBonds() == 0 and template.topology.getNumAtoms() > 1:
            raise ValueError(f"{template_pdb}: the molecule template has {template.topology.getNumAtoms()} atoms but "
                             "no CONECT bonds (only a one-atom template, e.g. argon, needs none)")
        templates.append((template, int(count)))
    mass = sum(count * molecule_mass_amu(t.topology) for t, count in templates)
    n_total = sum(count for _, count in templates)
    volume_nm3 = units.volume_nm3_for_density(mass, density_g_cm3)
    edge_A = float(units.nm_to_angstrom(volume_nm3 ** (1.0 / 3.0)))
    what = " + ".join(f"{count} x {Path(str(p)).name}" for p, count in molecules)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        blocks = ""
        for i, (template, count) in enumerate(templates):
            PDBFile.writeFile(template.topology, template.positions, str(tmp / f"template{i}.pdb"))
            blocks += f"structure template{i}.pdb\n  number {count}\nend structure\n"
        (tmp / "pack.inp").write_text(
            f"tolerance {tolerance_A}\nfiletype pdb\noutput packed.pdb\nseed {seed}\n"
            f"pbc 0. 0. 0. {edge_A:.4f} {edge_A:.4f} {edge_A:.4f}\n{blocks}"
        )
        with open(tmp / "pack.inp") as inp:
            proc = subprocess.run([packmol_binary()], stdin=inp, cwd=tmp, capture_output=True, text=True)
        print(proc.stdout[-3000:])
        if proc.returncode != 0 or "Success!" not in proc.stdout or not (tmp / "packed.pdb").exists():
            raise RuntimeError(
                f"packmol could not pack {what} at {density_g_cm3} g/cm3 (exit {proc.returncode}); lower "
                f"initial_density_g_cm3. Output tail:\n{proc.stdout[-1500:]}"
            )
        packed = PDBFile(str(tmp / "packed.pdb"))
        positions_nm = np.asarray(packed.getPositions(asNumpy=True).value_in_unit(u.nanometer))
    # packmol writes the structures in the order of their blocks
    top = mixture_topology([(template.topology, count) for template, count in templates])
    if top.getNumAtoms() != len(positions_nm):
        raise RuntimeError(f"packmol wrote {len(positions_nm)} atoms for {top.getNumAtoms()} ({what})")
    edge_nm = edge_A / units.ANGSTROM_PER_NM
    top.setPeriodicBoxVectors(((edge_nm, 0, 0), (0, edge_nm, 0), (0, 0, edge_nm)) * u.nanometer)
    with atomic_path(out_pdb) as tmp_pdb:
        with open(tmp_pdb, "w") as fh:
            PDBFile.writeFile(top, positions_nm * u.nanometer, fh)
    return {"n_molecules": n_total, "box_edge_A": edge_A, "density_g_cm3": density_g_cm3}
