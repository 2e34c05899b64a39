"""All-atom OpenMM systems from a ForceField XML (the physics lives in the XML; see resources/)."""

from __future__ import annotations

import os

import openmm
import openmm.unit as u
from openmm import app

CONSTRAINTS = {"none": None, "HBonds": app.HBonds, "AllBonds": app.AllBonds, "HAngles": app.HAngles}


def load_forcefield(forcefield_xml) -> app.ForceField:
    """One XML (path or a file OpenMM ships) or a list of them, loaded together."""
    files = [forcefield_xml] if isinstance(forcefield_xml, (str, os.PathLike)) else list(forcefield_xml)
    return app.ForceField(*map(str, files))


def create_system(forcefield_xml, topology: app.Topology, cutoff_nm: float = 1.0, constraints: str = "HBonds",
                  ewald_error_tolerance: float = 5e-4, dispersion_correction: bool = True,
                  separable_lj: bool = True, hydrogen_mass_amu: float | None = None) -> openmm.System:
    """PME electrostatics, LJ cut at ``cutoff_nm`` with the long-range dispersion correction; rigid water.
    Without any charge (e.g. Lennard-Jones argon) the NonbondedForce is plain periodic cutoff: the same LJ
    energies and forces, no reciprocal-space work. ``forcefield_xml``: one XML or a list (``load_forcefield``).

    ``separable_lj``: when the XML's ``LennardJonesForce`` type tables are exactly geometric (OPLS), rewrite them
    as per-particle products (`separable_lennard_jones`): the same energies, and on some CPUs several times
    faster than OpenMM's ``Discrete2DFunction`` tables.

    ``hydrogen_mass_amu``: hydrogen mass repartitioning (OpenMM's ``hydrogenMass``): every hydrogen bonded to a
    heavier atom gets this mass, taken from that atom, so each molecule keeps its mass (water, rigid, is left
    alone); None keeps the force field's masses. Only the System's masses change, never the topology's elements:
    anything that maps atoms to beads reads its masses from the topology (``stages.mapping``)."""
    forcefield = load_forcefield(forcefield_xml)
    extra = {} if hydrogen_mass_amu is None else {"hydrogenMass": float(hydrogen_mass_amu) * u.amu}
    system = forcefield.createSystem(
        topology,
        nonbondedMethod=app.PME,
        nonbondedCutoff=cutoff_nm * u.nanometer,
        constraints=CONSTRAINTS[constraints],
        rigidWater=True,
        ewaldErrorTolerance=ewald_error_tolerance,
        useDispersionCorrection=dispersion_correction,
        **extra,
    )
    uncharged_cutoff(system)
    if separable_lj:
        separable_lennard_jones(system)
    return system


def uncharged_cutoff(system: openmm.System) -> bool:
    """A NonbondedForce whose particles and exceptions carry no charge needs no Ewald sum: switch PME to a
    periodic cutoff (same LJ, same cutoff, same dispersion correction; the reaction-field term of zero charges is
    zero). Returns whether it switched."""
    for force in system.getForces():
        if isinstance(force, openmm.NonbondedForce) and force.getNonbondedMethod() == openmm.NonbondedForce.PME:
            if any(force.getParticleParameters(i)[0].value_in_unit(u.elementary_charge) != 0.0
                   for i in range(force.getNumParticles())):
                return False
            if any(force.getExceptionParameters(i)[2].value_in_unit(u.elementary_charge**2) != 0.0
                   for i in range(force.getNumExceptions())):
                return False
            force.setNonbondedMethod(openmm.NonbondedForce.CutoffPeriodic)
            return True
    return False


def separable_lennard_jones(system: openmm.System, rtol: float = 1e-6) -> bool:
    """Replace the ``LennardJones`` CustomNonbondedForce that OpenMM's ForceField builds from a
    ``<LennardJonesForce>`` (type tables acoef(t1,t2)/r^12 - bcoef(t1,t2)/r^6) by the per-particle product form
    (a1*a2/r^6 - b1*b2)/r^6 with a_t = sqrt(acoef(t,t)), b_t = sqrt(bcoef(t,t)) — exact when every pair is
    geometric (4 eps_ij sigma_ij^12 = a_i a_j with eps_ij = sqrt(eps_i eps_j), sigma_ij = sqrt(sigma_i sigma_j)).
    Exclusions, cutoff, switching, long-range correction, force group and the separate 1-4 force are kept.
    Returns False (and changes nothing) when the tables are not separable, e.g. a real NBFix."""
    import numpy as np

    for index in range(system.getNumForces()):
        force = system.getForce(index)
        if isinstance(force, openmm.CustomNonbondedForce) and force.getName() == "LennardJones":
            break
    else:
        return False
    names = [force.getTabulatedFunctionName(i) for i in range(force.getNumTabulatedFunctions())]
    if (force.getEnergyFunction().replace(" ", "").rstrip(";") != "acoef(type1,type2)/r^12-bcoef(type1,type2)/r^6"
            or sorted(names) != ["acoef", "bcoef"] or force.getNumInteractionGroups() or force.getNumGlobalParameters()):
        return False
    tables = {}
    for i, name in enumerate(names):
        nx, ny, values = force.getTabulatedFunction(i).getFunctionParameters()
        tables[name] = np.asarray(values, dtype=float).reshape(ny, nx)
    acoef, bcoef = tables["acoef"], tables["bcoef"]
    a = np.sqrt(np.clip(np.diag(acoef), 0, None))
    b = np.sqrt(np.clip(np.diag(bcoef), 0, None))
    for table, v in ((acoef, a), (bcoef, b)):
        if not np.allclose(table, np.outer(v, v), rtol=rtol, atol=rtol * max(table.max(), 1e-30)):
            return False
    product = openmm.CustomNonbondedForce("(a1*a2/r^6 - b1*b2)/r^6")
    product.addPerParticleParameter("a")
    product.addPerParticleParameter("b")
    for i in range(force.getNumParticles()):
        t = int(round(force.getParticleParameters(i)[0]))
        product.addParticle([float(a[t]), float(b[t])])
    for i in range(force.getNumExclusions()):
        product.addExclusion(*force.getExclusionParticles(i))
    product.setNonbondedMethod(force.getNonbondedMethod())
    product.setCutoffDistance(force.getCutoffDistance())
    product.setUseSwitchingFunction(force.getUseSwitchingFunction())
    product.setSwitchingDistance(force.getSwitchingDistance())
    product.setUseLongRangeCorrection(force.getUseLongRangeCorrection())
    product.setForceGroup(force.getForceGroup())
    product.setName("LennardJones")
    system.removeForce(index)
    system.addForce(product)
    return True


def cpu_platform(threads: int | None = None, name: str = "CPU"):
    """The platform and its properties. On the CPU platform the thread count goes both to the ``Threads``
    property and to ``OPENMM_CPU_THREADS``: OpenMM's PME plugin ignores the property and otherwise starts one
    thread per core of the node (measured: with ``Threads`` 1 the reciprocal-space forces still differ from run
    to run; a 2-core job on a 64-core cluster node would run 64 PME threads). With one thread, OpenMM's CPU
    forces are bitwise reproducible; with several, the summation order varies (~1e-4 kJ/mol/nm)."""
    import os

    platform = openmm.Platform.getPlatformByName(name)
    props = {}
    if name == "CPU" and threads:
        props["Threads"] = str(int(threads))
        os.environ["OPENMM_CPU_THREADS"] = str(int(threads))  # read when the PME kernel is created
    return platform, props
