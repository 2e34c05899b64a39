"""Molecules of several beads (cgtransfer.bonded): the Boltzmann-inverted harmonic prior recovers a known bond
from a real OpenMM simulation, its forces are its energy's gradient and OpenMM's, molecules scale rigidly, and the
network and prior leave intramolecular pairs out."""

import numpy as np
import openmm
import openmm.unit as u
import pytest

from cgtransfer.analysis import bonds as bonded
from cgtransfer import units
from cgtransfer.analysis.rdf import min_pair_distance

K_TRUE = 400.0  # kcal/mol/Å², OpenMM's convention E = ½ k (r - r0)²
R0_TRUE = 1.5   # Å


@pytest.fixture(scope="module")
def dumbbell_gas():
    """An ideal gas of 64 harmonic dumbbells (no other interaction), Langevin at 300 K: each bond length
    is Boltzmann-distributed in the known harmonic potential (r² Jacobian: mean shifted by ~2 var / r0)."""
    n_mol, edge_nm, temp = 64, 3.0, 300.0
    system = openmm.System()
    system.setDefaultPeriodicBoxVectors(*(openmm.Vec3(*(edge_nm if i == j else 0 for j in range(3))) for i in range(3)))
    bond = openmm.HarmonicBondForce()
    bond.setUsesPeriodicBoundaryConditions(True)
    rng = np.random.default_rng(3)
    pos = []
    for m in range(n_mol):
        for _ in range(2):
            system.addParticle(16.0)
        bond.addBond(2 * m, 2 * m + 1, R0_TRUE / 10, units.spring_model_to_openmm(K_TRUE))
        c = rng.uniform(0, edge_nm, 3)
        pos += [c, c + [R0_TRUE / 10, 0, 0]]
    system.addForce(bond)
    integ = openmm.LangevinMiddleIntegrator(temp * u.kelvin, 5.0 / u.picosecond, 1.0 * u.femtosecond)
    integ.setRandomNumberSeed(5)
    ctx = openmm.Context(system, integ, openmm.Platform.getPlatformByName("Reference"))
    ctx.setPositions(np.array(pos) * u.nanometer)
    ctx.setVelocitiesToTemperature(temp * u.kelvin, 5)
    integ.step(500)
    frames = []
    for _ in range(200):
        integ.step(50)  # 50 fs apart: bond vibrations (~20 fs) decorrelate
        frames.append(ctx.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(u.angstrom))
    cells = np.broadcast_to(np.eye(3) * edge_nm * 10, (len(frames), 3, 3)).copy()
    names = np.array(["A", "B"] * n_mol)
    return {"positions": np.array(frames), "cells": cells, "residue_index": np.repeat(np.arange(n_mol), 2),
            "bead_names": names, "temperature_K": temp, "masses": np.full(2 * n_mol, 16.0)}


def test_boltzmann_inversion_recovers_the_bond_of_a_real_simulation(dumbbell_gas):
    prior = bonded.fit_bonded_prior([dumbbell_gas], ["T300"])
    p = prior["params"]["A-B"]
    assert prior["types"] == ["A-B"] * 64 and len(prior["pairs"]) == 64
    # 12,800 samples: k to ~2 % (1.3 % statistical + the Jacobian's ~0.3 %), r0 to the Jacobian's 2 var / r0
    var = units.KB_KCAL_MOL_K * 300.0 / K_TRUE
    assert p["k_kcal_mol_A2"] == pytest.approx(K_TRUE, rel=0.05)
    assert p["r0_A"] == pytest.approx(R0_TRUE + 2 * var / R0_TRUE, abs=0.002)
    assert p["std_A"] == pytest.approx(np.sqrt(var), rel=0.03)


def test_one_bead_molecules_have_no_bonded_prior(dumbbell_gas):
    single = {**dumbbell_gas, "residue_index": np.arange(128)}
    assert bonded.fit_bonded_prior([single], ["T300"]) is None
    assert len(bonded.intramolecular_pairs(np.arange(5))) == 0


def test_bonded_forces_are_the_gradient_and_equal_openmm_across_the_boundary():
    """A hand-built periodic frame: a bond that crosses the box edge; numpy energy/forces vs finite differences
    and vs OpenMM's HarmonicBondForce built from the same prior."""
    prior = {"pairs": [[0, 1], [2, 3], [2, 4]], "types": ["A-B", "A-B", "A-C"],
             "params": {"A-B": {"r0_A": 1.5, "k_kcal_mol_A2": 300.0}, "A-C": {"r0_A": 2.4, "k_kcal_mol_A2": 80.0}},
             "molecule_of_bead": [0, 0, 1, 1, 1]}
    edge = 12.0
    pos = np.array([[11.5, 3.0, 3.0], [0.3, 3.4, 2.9], [5.0, 5.0, 5.0], [6.2, 5.9, 5.1], [5.0, 7.1, 4.6]])
    cells = (np.eye(3) * edge)[None]
    e, f = bonded.bonded_energy_forces(prior, pos[None], cells)
    h = 1e-5
    for i in range(5):
        for k in range(3):
            p1, p2 = pos.copy(), pos.copy()
            p1[i, k] += h
            p2[i, k] -= h
            fd = -(bonded.bonded_energy_forces(prior, p1[None], cells)[0] - bonded.bonded_energy_forces(prior, p2[None], cells)[0]) / (2 * h)
            assert f[0, i, k] == pytest.approx(fd[0], abs=1e-5)
    np.testing.assert_allclose(f[0].sum(axis=0), 0.0, atol=1e-10)
    system = openmm.System()
    for _ in range(5):
        system.addParticle(10.0)
    system.setDefaultPeriodicBoxVectors(*(openmm.Vec3(*(edge / 10 if i == j else 0 for j in range(3))) for i in range(3)))
    system.addForce(bonded.harmonic_bond_force(prior))
    ctx = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    ctx.setPositions(pos / 10 * u.nanometer)
    s = ctx.getState(getEnergy=True, getForces=True)
    assert units.kj_to_kcal(s.getPotentialEnergy().value_in_unit(u.kilojoule_per_mole)) == pytest.approx(e[0], rel=1e-9)
    f_omm = units.force_openmm_to_model(s.getForces(asNumpy=True).value_in_unit(u.kilojoule_per_mole / u.nanometer))
    np.testing.assert_allclose(f_omm, f[0], rtol=1e-7, atol=1e-7)


def test_scale_molecules_moves_centres_and_keeps_shapes():
    pos = np.array([[11.5, 3.0, 3.0], [0.3, 3.4, 2.9], [5.0, 5.0, 5.0], [6.2, 5.9, 5.1]])
    masses = np.array([15.0, 17.0, 15.0, 17.0])
    res = np.array([0, 0, 1, 1])
    edges = np.array([12.0, 12.0, 12.0])
    out = bonded.scale_molecules(pos, masses, res, 1.1, edges)
    pairs = bonded.intramolecular_pairs(res)
    cells = (np.eye(3) * edges)[None]
    np.testing.assert_allclose(bonded.pair_distances(out[None], cells * 1.1, pairs),
                               bonded.pair_distances(pos[None], cells, pairs), rtol=1e-12)
    com1 = (masses[2:, None] * pos[2:]).sum(0) / masses[2:].sum()
    np.testing.assert_allclose((masses[2:, None] * out[2:]).sum(0) / masses[2:].sum(), 1.1 * com1)
    # one-bead molecules: plain scaling
    np.testing.assert_allclose(bonded.scale_molecules(pos, masses, np.arange(4), 1.1), 1.1 * pos)


def test_min_pair_distance_leaves_out_bonded_beads():
    pos = np.array([[1.0, 1.0, 1.0], [2.5, 1.0, 1.0], [5.0, 1.0, 1.0]])
    box = np.array([10.0, 10.0, 10.0])
    assert min_pair_distance(pos, box) == pytest.approx(1.5, abs=1e-5)
    assert min_pair_distance(pos, box, [0, 0, 1]) == pytest.approx(2.5, abs=1e-5)


def test_network_and_prior_ignore_the_bonded_partner():
    """The hippynn graph with exclusions: an isolated 2-bead molecule's energy (network + exponential prior) does
    not change when its bond is stretched, because nothing else is within the cutoff; without exclusions the
    prior alone (onset 2.5 Å) would change it by orders of magnitude."""
    import torch
    from hippynn.graphs import GraphModule

    from cgtransfer.kinds.hipnn_graph import build_graph

    net = dict(n_features=6, n_sensitivities=6, dist_soft_min=2.0, dist_soft_max=5.0, dist_hard_max=6.0,
               n_interaction_layers=1, n_atom_layers=1, sensitivity_type="inverse", resnet=True)
    prior = {"onset": 2.5, "strength": 5.0, "width": 0.15, "fraction": 0.05}
    energies = {}
    for exclude in (True, False):
        torch.manual_seed(0)
        nodes = build_graph(2, net, prior, exclude_intramolecular=exclude)
        inputs = [nodes["species"], nodes["positions"], nodes["cells"]] + ([nodes["molecule"]] if exclude else [])
        module = GraphModule(inputs, [nodes["energy"]])
        out = []
        for bond in (1.4, 1.6):
            pos = torch.tensor([[[10.0, 10.0, 10.0], [10.0 + bond, 10.0, 10.0]]])
            args = [torch.tensor([[1, 2]]), pos, torch.eye(3)[None] * 20.0]
            if exclude:
                args.append(torch.tensor([[0, 0]]))
            out.append(float(module(*args)[0].detach()))
        energies[exclude] = out
    assert energies[True][0] == pytest.approx(energies[True][1], abs=1e-5)
    assert abs(energies[False][0] - energies[False][1]) > 1.0
