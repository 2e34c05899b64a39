"""What an MS-CG step costs in OpenMM in each form the workflow has used, side by side in one run (CPU platform).

The pair potential is an MS-CG spline of the default's shape (cubic B-spline force on uniform 0.2-Å knots from a
2.8-Å wall to the 8-Å cutoff, random coefficients: the cost does not depend on their values) on 256 beads at
methanol's bead density, Langevin at 10 fs:

* ``polynomial``: the workflow's form, the spline's quartic polynomial per knot interval in the compiled
  expression (``PairForce.openmm_energy_expression``);
* ``table``: the earlier form, U as a ``Continuous1DFunction`` table (0.005-Å grid), called per pair;
* ``no_pair_force`` and ``trivial_expression``: the integrator alone, and a pair force whose expression costs
  nothing (what is left is OpenMM's pair loop and neighbour list);
* with two bead types (alternating): ``two_types_one_force`` (the workflow's: the three type pairs' terms in one
  force, selected by the per-particle types) and ``two_types_force_per_pair`` (the earlier form, three forces).

Also checks that ``table`` and ``polynomial`` give the same energy (the table to its interpolation error).

    python benchmarks/mscg_forms.py [--threads 1] [--steps 1000] [--repeats 5] [--out benchmarks/results/mscg_forms.json]
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import time
import types
from pathlib import Path

import numpy as np
import openmm

from cgtransfer import units
from cgtransfer.io import write_json
from cgtransfer.kinds.mscg import MSCGModel, PairForce

N_BEADS = 256
NUMBER_DENSITY_PER_A3 = 0.01485  # liquid methanol, 0.79 g/cm3
WALL_A, CUTOFF_A, KNOT_SPACING_A, DEGREE = 2.8, 8.0, 0.2, 3


def pair_force(pair: str, types_: tuple[int, int], seed: int) -> PairForce:
    n_intervals = int(math.ceil((CUTOFF_A - WALL_A) / KNOT_SPACING_A - 1e-9))
    knots = np.concatenate([[WALL_A] * DEGREE, np.linspace(WALL_A, CUTOFF_A, n_intervals + 1), [CUTOFF_A] * DEGREE])
    c = np.random.default_rng(seed).normal(size=len(knots) - DEGREE - 1) * 0.5
    c[-1] = 0.0
    return PairForce(pair, types_, WALL_A, CUTOFF_A, knots, DEGREE, c, 0.05, 3.0)


def lattice(n: int, edge_nm: float, seed: int = 0) -> np.ndarray:
    k = int(math.ceil(n ** (1 / 3)))
    grid = np.array([(i, j, m) for i in range(k) for j in range(k) for m in range(k)])[:n]
    return (grid + 0.5) * edge_nm / k + np.random.default_rng(seed).normal(0.0, 0.02, (n, 3))


def system_with(add_forces, edge_nm: float) -> openmm.System:
    system = openmm.System()
    system.setDefaultPeriodicBoxVectors(openmm.Vec3(edge_nm, 0, 0), openmm.Vec3(0, edge_nm, 0), openmm.Vec3(0, 0, edge_nm))
    for _ in range(N_BEADS):
        system.addParticle(32.04)
    add_forces(system)
    return system


def workflow_form(pairs, species):
    model = types.SimpleNamespace(pairs=pairs, excluded_pairs=lambda: [], directory="benchmark", info={})
    return lambda system: MSCGModel.add_nonbonded_to_system(model, system, species, {})


def custom_force(expression: str, species=None, table=None):
    def add(system):
        force = openmm.CustomNonbondedForce(expression)
        if table is not None:
            force.addTabulatedFunction("table", table)
        force.setNonbondedMethod(openmm.CustomNonbondedForce.CutoffPeriodic)
        force.setCutoffDistance(float(units.angstrom_to_nm(CUTOFF_A)))
        if species is not None:
            force.addPerParticleParameter("t")
        for i in range(N_BEADS):
            force.addParticle([] if species is None else [float(species[i])])
        system.addForce(force)
    return add


def table_expression(pf: PairForce, spacing_A: float = 0.005):
    """The workflow's earlier OpenMM form of a pair force: U on [r_w, r_c] as a ``Continuous1DFunction`` table named
    ``table`` (grid ``spacing_A``, Å) in place of its polynomials, the same wall. (expression, table); also used by
    speed.py."""
    r = np.linspace(pf.r_wall, pf.cutoff, int(np.ceil((pf.cutoff - pf.r_wall) / spacing_A)) + 1)
    _, rest = pf.openmm_energy_expression().split(" + step(x) * (", 1)
    table = openmm.Continuous1DFunction(units.kcal_to_kj(pf.energy(r)).tolist(), float(units.angstrom_to_nm(pf.r_wall)),
                                        float(units.angstrom_to_nm(pf.cutoff)))
    return "table(rr) + step(x) * (" + rest, table


def table_form(pf: PairForce, spacing_A: float = 0.005):
    expression, table = table_expression(pf, spacing_A)
    return custom_force(expression, table=table)


def force_per_pair(pairs, species):
    def add(system):
        for pf in pairs:
            a, b = pf.types
            select = f"delta(t1 - {a}) * delta(t2 - {b})" + (f" + delta(t1 - {b}) * delta(t2 - {a})" if a != b else "")
            body, defs = pf.openmm_energy_expression().split(";", 1)
            custom_force(f"({select}) * ({body}); {defs}", species=species)(system)
    return add


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "mscg_forms.json"))
    args = ap.parse_args()
    edge_nm = float(units.angstrom_to_nm((N_BEADS / NUMBER_DENSITY_PER_A3) ** (1 / 3)))
    positions = lattice(N_BEADS, edge_nm)
    one = [pair_force("A-A", (1, 1), 0)]
    two = [pair_force("A-A", (1, 1), 0), pair_force("A-B", (1, 2), 1), pair_force("B-B", (2, 2), 2)]
    ones, alternating = np.ones(N_BEADS, dtype=int), np.array([1, 2] * (N_BEADS // 2))
    forms = {"no_pair_force": lambda system: None,
             "trivial_expression": custom_force("1e-6 * r"),
             "polynomial": workflow_form(one, ones),
             "table": table_form(one[0]),
             "two_types_one_force": workflow_form(two, alternating),
             "two_types_force_per_pair": force_per_pair(two, alternating)}
    contexts = {}
    for name, add in forms.items():
        integrator = openmm.LangevinMiddleIntegrator(298.0, 5.0, 0.010)
        context = openmm.Context(system_with(add, edge_nm), integrator, openmm.Platform.getPlatformByName("CPU"),
                                 {"Threads": str(args.threads)})
        context.setPositions(positions)
        context.setVelocitiesToTemperature(298.0, 1)
        integrator.step(20)
        contexts[name] = (context, integrator)
    # the two forms give the same energy at the same configuration
    energies = {}
    for name in ("polynomial", "table", "two_types_one_force", "two_types_force_per_pair"):
        context = contexts[name][0]
        context.setPositions(positions)
        energies[name] = context.getState(getEnergy=True).getPotentialEnergy()._value
    # rounds alternate the forms, so that a slow spell of a shared machine hits all of them
    times = {name: [] for name in forms}
    for _ in range(args.repeats):
        for name, (_, integrator) in contexts.items():
            t = time.perf_counter()
            integrator.step(args.steps)
            times[name].append((time.perf_counter() - t) / args.steps * 1e3)
    ms = {name: statistics.median(v) for name, v in times.items()}
    result = {
        "what": __doc__.split("\n\n")[0].replace("\n", " "),
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "python": platform.python_version(), "openmm": openmm.__version__},
        "settings": {"n_beads": N_BEADS, "threads": args.threads, "steps": args.steps, "repeats": args.repeats,
                     "timestep_fs": 10.0, "wall_A": WALL_A, "cutoff_A": CUTOFF_A, "knot_spacing_A": KNOT_SPACING_A,
                     "table_spacing_A": 0.005},
        "ms_per_step": ms,
        "ms_per_step_all_repeats": times,
        "energy_kJ_mol": energies,
        "table_minus_polynomial_energy_kJ_mol": energies["table"] - energies["polynomial"],
        "ratios": {
            "table_over_polynomial": ms["table"] / ms["polynomial"],
            "two_types_force_per_pair_over_one_force": ms["two_types_force_per_pair"] / ms["two_types_one_force"],
            "pair_expression_share_of_polynomial_step": (ms["polynomial"] - ms["trivial_expression"]) / ms["polynomial"],
        },
    }
    write_json(args.out, result)
    print({k: round(v, 3) for k, v in ms.items()}, result["ratios"])


if __name__ == "__main__":
    main()
