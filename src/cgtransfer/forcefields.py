"""All-atom OpenMM systems from a ForceField XML (the physics lives in the XML; see resources/)."""

from __future__ import annotations

import openmm
import openmm.unit as u
from openmm import app

CONSTRAINTS = {"none": None, "HBonds": app.HBonds, "AllBonds": app.AllBonds, "HAngles": app.HAngles}


def create_system(forcefield_xml, topology: app.Topology, cutoff_nm: float = 1.0, constraints: str = "HBonds",
                  ewald_error_tolerance: float = 5e-4, dispersion_correction: bool = True) -> openmm.System:
    """PME electrostatics, LJ cut at ``cutoff_nm`` with the long-range dispersion correction."""
    forcefield = app.ForceField(str(forcefield_xml))
    return forcefield.createSystem(
        topology,
        nonbondedMethod=app.PME,
        nonbondedCutoff=cutoff_nm * u.nanometer,
        constraints=CONSTRAINTS[constraints],
        rigidWater=True,
        ewaldErrorTolerance=ewald_error_tolerance,
        useDispersionCorrection=dispersion_correction,
    )


def cpu_platform(threads: int | None = None, name: str = "CPU"):
    platform = openmm.Platform.getPlatformByName(name)
    props = {}
    if name == "CPU" and threads:
        props["Threads"] = str(int(threads))
    return platform, props
