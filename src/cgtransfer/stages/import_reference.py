"""Stage import_reference: a state point's all-atom reference read from a user's files (a GROMACS TRR with forces,
a LAMMPS dump with fx fy fz; ``cgtransfer.external``) instead of simulated.

Writes exactly what rule ``reference_md`` writes, in the same units, so mapping, training, CG MD and analysis run
on it unchanged: a PDB topology (residues and atom names from the user's topology; elements and bonds from the
system's molecule templates, as ``reference_md``'s topology has them), a DCD trajectory (OpenMM's writer), the
forces of every frame (npz, kJ/mol/nm; ``seed`` -1: no seed made this run; times since the first frame, whose own
time is kept as ``source_first_time_ps``) and a thermo CSV (time, volume and density from the boxes; potential
energy, pressure and temperature from the optional thermo CSV, NaN without).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openmm.unit as u
import pandas as pd
from openmm import app

from cgtransfer import external, units
from cgtransfer.io import atomic_path, write_csv, write_npz


def openmm_topology(universe, templates: dict, box_nm) -> app.Topology:
    """The external topology's residues and atoms (in its order) with the templates' elements and bonds."""
    top = app.Topology()
    chain = top.addChain()
    for res in universe.residues:
        elements, bonds = templates[str(res.resname)]
        residue = top.addResidue(str(res.resname), chain)
        by_name = {}
        for name in res.atoms.names:
            symbol = elements[str(name)]
            by_name[str(name)] = top.addAtom(str(name), app.Element.getBySymbol(symbol) if symbol else None, residue)
        for a, b in bonds:
            top.addBond(by_name[a], by_name[b])
    top.setPeriodicBoxVectors(np.diag(box_nm) * u.nanometer)
    return top


def import_reference(topology, trajectory, spec: dict, templates, temperature_K: float, out_topology,
                     out_trajectory, out_forces, out_thermo, thermo=None, label: str = "import_reference") -> dict:
    """Convert one external run (``spec``: the state's ``external_reference`` entry, for format, units and frame
    interval) into the reference files. Every frame is checked (forces present and finite, periodic box, the
    topology's atom count); an error names the file and the frame."""
    key = f"{label}: trajectory"
    fmt = external.trajectory_format(spec, trajectory, key)
    unit_sys = external.unit_system(spec, fmt, label)
    universe = external.load_topology(topology, f"{label}: topology")
    template_map = external.template_residues(templates)
    external.check_topology_against_templates(universe, template_map, {r: None for r in template_map},
                                              f"{label}: topology", topology)
    n_atoms = universe.atoms.n_atoms
    frames = list(external.read_frames(trajectory, fmt, unit_sys, key))
    for f in frames:
        if len(f["positions_nm"]) != n_atoms:
            raise external.ExternalReferenceError(f"{key}: '{trajectory}' has {len(f['positions_nm'])} atoms per frame "
                                                  f"but the topology '{topology}' has {n_atoms}")
    times = external.frame_times([(f["step"], f["time_ps"]) for f in frames], spec.get("frame_interval_ps"), label,
                                 trajectory)
    # time since the first frame: a long run's own clock (e.g. 150000.2 ps) would not survive the thermo CSV's
    # six digits, by which frames are matched to their energies
    first_time_ps, times = float(times[0]), np.asarray(times, dtype=np.float64) - float(times[0])
    top = openmm_topology(universe, template_map, frames[0]["box_nm"])
    mass = sum(a.element.mass.value_in_unit(u.amu) for a in top.atoms() if a.element is not None)

    with atomic_path(out_topology) as tmp, open(tmp, "w") as fh:
        app.PDBFile.writeFile(top, frames[0]["positions_nm"] * u.nanometer, fh)
    interval_ps = float(times[1] - times[0]) if len(times) > 1 else 1.0
    with atomic_path(out_trajectory) as tmp, open(tmp, "wb") as fh:
        dcd = app.DCDFile(fh, top, interval_ps * u.picosecond, firstStep=int(frames[0]["step"]), interval=1)
        for f in frames:
            dcd.writeModel(f["positions_nm"] * u.nanometer, periodicBoxVectors=np.diag(f["box_nm"]) * u.nanometer)

    volume = np.array([np.prod(f["box_nm"]) for f in frames])
    table = pd.DataFrame({"step": [f["step"] for f in frames], "time_ps": times,
                          "temperature_K": np.nan, "potential_energy_kJ_mol": np.nan, "volume_nm3": volume,
                          "density_g_cm3": units.density_g_cm3(mass, volume), "pressure_bar": np.nan})
    if thermo is not None:
        given = external.read_thermo(thermo, len(frames), f"{label}: thermo")
        for column in given.columns:
            table[column] = given[column].to_numpy()
    forces = np.stack([f["forces_kj_mol_nm"] for f in frames])
    write_npz(out_forces, forces_kj_mol_nm=forces, step=table["step"].to_numpy(dtype=np.int64),
              time_ps=times, temperature_K=temperature_K, seed=-1, source=np.array(Path(trajectory).name),
              source_first_time_ps=first_time_ps)
    write_csv(out_thermo, table)
    summary = {"n_frames": len(frames), "n_atoms": n_atoms, "format": fmt, "units": unit_sys,
               "frame_interval_ps": interval_ps, "mean_density_g_cm3": float(table["density_g_cm3"].mean()),
               "thermo_columns": [c for c in ("potential_energy_kJ_mol", "pressure_bar", "temperature_K")
                                  if table[c].notna().all()]}
    print(f"{label}: imported {Path(trajectory).name} ({Path(topology).name}): {summary}", flush=True)
    return summary
