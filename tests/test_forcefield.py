"""The OPLS-AA methanol XML against the OPLS rules, checked with numbers written down independently of it."""

import itertools
import math

import numpy as np
import openmm
import openmm.unit as u
import pytest
from openmm import app

from conftest import REPO
from cgtransfer.md.box import replicate_topology

XML = REPO / "resources/methanol/oplsaa_methanol.xml"
PDB = REPO / "resources/methanol/methanol.pdb"
# OPLS-AA (Jorgensen, Maxwell, Tirado-Rives 1996) in Å and kcal/mol
OPLS = {"C": (3.50, 0.066, 0.145), "H1": (2.50, 0.030, 0.040), "H2": (2.50, 0.030, 0.040),
        "H3": (2.50, 0.030, 0.040), "O": (3.12, 0.170, -0.683), "HO": (0.0, 0.0, 0.418)}
COULOMB_KJ_NM = 138.935456  # 1/(4 pi eps0) in kJ mol^-1 nm e^-2


def two_molecules(separation_nm=0.9):
    template = app.PDBFile(str(PDB))
    top = replicate_topology(template.topology, 2)
    pos = np.asarray(template.getPositions(asNumpy=True).value_in_unit(u.nanometer))
    rot = np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1.0]])
    both = np.vstack([pos, pos @ rot.T + [separation_nm, 0.1, 0.05]])
    return top, both


def energies_by_force(system, positions):
    for i, f in enumerate(system.getForces()):
        f.setForceGroup(i)
    ctx = openmm.Context(system, openmm.VerletIntegrator(1.0), openmm.Platform.getPlatformByName("Reference"))
    ctx.setPositions(positions * u.nanometer)
    out = {}
    for i, f in enumerate(system.getForces()):
        e = ctx.getState(getEnergy=True, groups={i}).getPotentialEnergy().value_in_unit(u.kilojoule_per_mole)
        out[f.getName()] = out.get(f.getName(), 0.0) + e
    return out


def test_molecule_is_neutral_and_charges_are_opls():
    top, pos = two_molecules()
    system = app.ForceField(str(XML)).createSystem(top, nonbondedMethod=app.NoCutoff, constraints=None)
    nb = next(f for f in system.getForces() if isinstance(f, openmm.NonbondedForce))
    charges = [nb.getParticleParameters(i)[0].value_in_unit(u.elementary_charge) for i in range(6)]
    assert sum(charges) == pytest.approx(0.0, abs=1e-9)
    assert charges == pytest.approx([OPLS[a.name][2] for a in list(top.atoms())[:6]])


def test_intermolecular_lj_uses_geometric_combining():
    """LJ energy between two molecules = hand sum of 4 eps_ij[(s_ij/r)^12 - (s_ij/r)^6] with
    s_ij = sqrt(s_i s_j), eps_ij = sqrt(eps_i eps_j); Lorentz-Berthelot would differ by ~1e-2 kJ/mol here."""
    top, pos = two_molecules(0.42)
    system = app.ForceField(str(XML)).createSystem(top, nonbondedMethod=app.NoCutoff, constraints=None)
    lj = energies_by_force(system, pos)["LennardJones"]
    atoms = list(top.atoms())
    geo, lb = 0.0, 0.0
    for i, j in itertools.product(range(6), range(6, 12)):
        si, ei, _ = OPLS[atoms[i].name]
        sj, ej, _ = OPLS[atoms[j].name]
        r = np.linalg.norm(pos[i] - pos[j]) * 10.0
        eps = math.sqrt(ei * ej) * 4.184
        for sig, acc in ((math.sqrt(si * sj), "geo"), (0.5 * (si + sj), "lb")):
            e = 4 * eps * ((sig / r) ** 12 - (sig / r) ** 6) if eps > 0 else 0.0
            if acc == "geo":
                geo += e
            else:
                lb += e
    assert abs(geo - lb) > 1e-3  # the test can tell the two rules apart
    assert lj == pytest.approx(geo, rel=1e-5, abs=1e-6)


def test_one_four_pairs_scaled_by_half():
    top, pos = two_molecules()
    system = app.ForceField(str(XML)).createSystem(top, nonbondedMethod=app.NoCutoff, constraints=None)
    nb = next(f for f in system.getForces() if isinstance(f, openmm.NonbondedForce))
    names = [a.name for a in top.atoms()]
    n14 = 0
    for k in range(nb.getNumExceptions()):
        i, j, qq, sig, eps = nb.getExceptionParameters(k)
        qq = qq.value_in_unit(u.elementary_charge**2)
        pair = {names[i], names[j]}
        if pair in ({"H1", "HO"}, {"H2", "HO"}, {"H3", "HO"}):  # the only 1-4 pairs of methanol
            n14 += 1
            assert qq == pytest.approx(0.5 * 0.040 * 0.418)
        else:
            assert qq == 0.0
    assert n14 == 6


def test_pme_system_has_dispersion_correction_and_hbond_constraints():
    from cgtransfer.md.forcefields import create_system

    top, pos = two_molecules()
    top.setPeriodicBoxVectors(((3, 0, 0), (0, 3, 0), (0, 0, 3)) * u.nanometer)
    system = create_system(XML, top, 1.0, "HBonds", 5e-4, True)
    lj = next(f for f in system.getForces() if f.getName() == "LennardJones")
    assert lj.getUseLongRangeCorrection()
    assert lj.getCutoffDistance().value_in_unit(u.nanometer) == pytest.approx(1.0)
    nb = next(f for f in system.getForces() if isinstance(f, openmm.NonbondedForce))
    assert nb.getNonbondedMethod() == openmm.NonbondedForce.PME
    assert system.getNumConstraints() == 2 * 4  # 3 C-H + 1 O-H per molecule


def test_separable_lj_is_the_type_table_exactly():
    """The fast per-particle product form (a1*a2/r^6 - b1*b2)/r^6 that replaces OpenMM's acoef/bcoef type tables
    gives the same energy and forces on a periodic box of methanol (geometric mixing is separable); a table that
    is not separable (an NBFix-like pair) is left alone."""
    from cgtransfer.md.box import build_box
    from cgtransfer.md.forcefields import create_system, separable_lennard_jones
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        build_box(PDB, 40, 0.76, Path(tmp) / "box.pdb")
        pdb = app.PDBFile(str(Path(tmp) / "box.pdb"))
    states = {}
    for separable in (False, True):
        system = create_system(XML, pdb.topology, 0.6, "HBonds", 5e-4, True, separable_lj=separable)
        lj = [f for f in system.getForces() if f.getName() == "LennardJones"]
        assert len(lj) == 1 and (lj[0].getNumTabulatedFunctions() == 0) == separable
        ctx = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
        ctx.setPositions(pdb.positions)
        state = ctx.getState(getEnergy=True, getForces=True)
        states[separable] = (state.getPotentialEnergy().value_in_unit(u.kilojoule_per_mole),
                             state.getForces(asNumpy=True).value_in_unit(u.kilojoule_per_mole / u.nanometer))
    assert states[True][0] == pytest.approx(states[False][0], rel=1e-8)  # double rounding of sqrt(a_ii) a_jj
    np.testing.assert_allclose(states[True][1], states[False][1], rtol=1e-6, atol=1e-7 * np.abs(states[False][1]).max())
    # break separability: one unlike pair no longer geometric
    system = create_system(XML, pdb.topology, 0.6, "HBonds", 5e-4, True, separable_lj=False)
    lj = next(f for f in system.getForces() if f.getName() == "LennardJones")
    nx, ny, values = lj.getTabulatedFunction(0).getFunctionParameters()
    values = list(values)
    # an unlike pair with a nonzero coefficient (a type with epsilon = 0, like the hydroxyl H, stays separable
    # whatever its row is scaled by; OpenMM's type order varies between processes)
    i, j = next((i, j) for i in range(nx) for j in range(nx) if i != j and values[i + nx * j] != 0)
    values[i + nx * j] *= 1.5
    values[j + nx * i] *= 1.5
    lj.getTabulatedFunction(0).setFunctionParameters(nx, ny, values)
    assert separable_lennard_jones(system) is False
    assert next(f for f in system.getForces() if f.getName() == "LennardJones").getNumTabulatedFunctions() == 2
