"""Stage backmap: CG frames of a model's NVT run → all-atom configurations (``cgtransfer.md.backmap``), checked.

Per frame: placement from a library of the reference's own molecules (its final configuration), minimisation
with every bead centre restrained to the CG frame, then the checks (bead centres within ``bead_tolerance_A``,
finite all-atom energy), release and an unrestrained all-atom relaxation of ``relax_ps`` (NPT at an NPT state,
NVT otherwise; the reference's force field, cutoff and friction, true masses). On the relaxation's second half:
density against the reference's mean (within ``density_tolerance_pct`` plus 3 sd of the reference's own density
averaged over a window of that length), and the atom-level RDF (oxygen-oxygen, else the first atom name) against
the reference trajectory's, by mean absolute difference (beside the reference's own two-halves noise floor).

Writes the backmapped configuration of the last frame (after the restrained minimisation, bead centres on the CG
frame) as PDB, and a JSON with every number and check.
"""

from __future__ import annotations

import numpy as np
import openmm
import openmm.unit as u
import pandas as pd
from openmm import app

from cgtransfer import units
from cgtransfer.analysis import rdf as rdfmod
from cgtransfer.io import atomic_path, write_json
from cgtransfer.md import backmap as bm
from cgtransfer.md.forcefields import cpu_platform, create_system
from cgtransfer.md.protocol import make_barostat, steps_for


def rdf_atom_name(topology: app.Topology) -> str:
    names = [a.name for a in topology.atoms()]
    return "O" if "O" in names else names[0]


def atom_rdf(positions_A: np.ndarray, boxes_A: np.ndarray, topology: app.Topology, name: str, nbins: int,
             rmax_A: float):
    """RDF of the atoms called ``name`` (pairs inside one molecule excluded) over frames (n_frames, n_atoms, 3)."""
    atoms = [a for a in topology.atoms() if a.name == name]
    idx = np.array([a.index for a in atoms])
    res = np.array([a.residue.index for a in atoms])
    _, res = np.unique(res, return_inverse=True)
    universe = rdfmod.bead_universe(positions_A[:, idx], boxes_A, [name] * len(idx), res)
    return rdfmod.bead_rdf(universe, name, name, nbins, rmax_A)


def reference_atom_rdf(topology_pdb, trajectory_dcd, name: str, nbins: int, rmax_A: float, max_frames: int = 200):
    import MDAnalysis as mda

    topology = app.PDBFile(str(topology_pdb)).topology
    universe = mda.Universe(str(topology_pdb), str(trajectory_dcd))
    step = max(1, universe.trajectory.n_frames // max_frames)
    frames = [(ts.positions.copy(), ts.dimensions[:3].copy()) for ts in universe.trajectory[::step]]
    pos = np.array([f[0] for f in frames], dtype=np.float64)
    box = np.array([f[1] for f in frames], dtype=np.float64)
    r, g = atom_rdf(pos, box, topology, name, nbins, rmax_A)
    half = len(pos) // 2
    _, g1 = atom_rdf(pos[:half], box[:half], topology, name, nbins, rmax_A)
    _, g2 = atom_rdf(pos[half:], box[half:], topology, name, nbins, rmax_A)
    return r, g, rdfmod.rdf_mae(g1, g2)


def window_density_sd(thermo: pd.DataFrame, window_ps: float) -> float:
    """How much a density averaged over ``window_ps`` scatters at equilibrium: the sd of the means of the
    reference production's consecutive windows of that length (NaN with fewer than three windows; 0 at NVT)."""
    density = thermo["density_g_cm3"].to_numpy(dtype=float)
    per = max(1, int(round(window_ps / float(np.median(np.diff(thermo["time_ps"].to_numpy(dtype=float)))))))
    n = len(density) // per
    if n < 3:
        return float("nan")
    return float(density[: n * per].reshape(n, per).mean(axis=1).std(ddof=1))


def cg_frames(topology_pdb, trajectory_dcd, n_frames: int):
    """The last ``n_frames`` evenly spaced frames (ending at the last) of a CG run: [(index, positions Å, box Å)]."""
    import MDAnalysis as mda

    universe = mda.Universe(str(topology_pdb), str(trajectory_dcd))
    n = universe.trajectory.n_frames
    if n == 0:
        raise ValueError(f"{trajectory_dcd} holds no frame (an unstable CG run) : nothing to backmap")
    picks = sorted({int(round(i)) for i in np.linspace(n - 1, 0, n_frames + 1)[:n_frames]})
    out = []
    for i in picks:
        ts = universe.trajectory[i]
        out.append((i, universe.atoms.positions.astype(np.float64).copy(), ts.dimensions[:3].astype(np.float64)))
    return out


def backmap_run(cg_topology, cg_trajectory, reference_topology, reference_trajectory, reference_thermo, forcefield,
                mapping: dict, md: dict, temperature_K: float, pressure_bar: float | None, settings: dict,
                rdf_settings: dict, out_pdb, out_json, label: str, seed: int = 1, threads: int = 1) -> dict:
    rng = np.random.default_rng(seed)
    ref_pdb = app.PDBFile(str(reference_topology))
    topology = ref_pdb.topology
    library = np.asarray(ref_pdb.getPositions(asNumpy=True).value_in_unit(u.angstrom))
    library_box = np.diag(topology.getPeriodicBoxVectors().value_in_unit(u.angstrom))
    masses = bm.atom_masses(topology)
    name = rdf_atom_name(topology)
    ref_thermo = pd.read_csv(reference_thermo)
    ref_density = float(ref_thermo["density_g_cm3"].mean())
    dt_fs = min(md["timestep_fs"], 2.0) if md.get("hydrogen_mass_amu") else md["timestep_fs"]
    platform, props = cpu_platform(threads, md.get("platform", "CPU"))
    frames, last_positions, last_box = [], None, None
    relaxed_pos, relaxed_box = [], []
    for index, beads, box in cg_frames(cg_topology, cg_trajectory, settings["n_frames"]):
        placed = bm.place_molecules(topology, library, library_box, mapping, beads, box, rng)
        system = create_system(forcefield, topology, md["nonbonded_cutoff_nm"], md["constraints"],
                               md["ewald_error_tolerance"], md["dispersion_correction"])  # true masses
        edge_nm = units.angstrom_to_nm(box)
        vectors = [openmm.Vec3(*(edge_nm[i] if i == j else 0.0 for j in range(3))) for i in range(3)]
        system.setDefaultPeriodicBoxVectors(*vectors)
        target = beads.copy()
        bm.add_bead_restraints(system, topology, mapping, bead_targets(placed, beads, box, topology, mapping, masses),
                               settings["restraint_k_kj_mol_nm2"])
        barostat = make_barostat(pressure_bar, temperature_K, md["barostat_frequency"] if pressure_bar else 0, seed)
        system.addForce(barostat)
        integrator = openmm.LangevinMiddleIntegrator(temperature_K * u.kelvin, md["friction_per_ps"] / u.picosecond,
                                                     dt_fs * u.femtosecond)
        integrator.setRandomNumberSeed(seed)
        context = openmm.Context(system, integrator, platform, props)
        context.setPeriodicBoxVectors(*vectors)
        context.setPositions(units.angstrom_to_nm(placed) * u.nanometer)
        energies = bm.restrained_minimisation(context, system)
        minimised = context.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(u.angstrom)
        deviation = bm.bead_deviation_A(np.asarray(minimised), topology, mapping, target, box)
        # release: restraints off, unrestrained all-atom relaxation; frames of its second half kept
        context.setParameter(bm.RESTRAINT_PARAMETER, 0.0)
        context.setVelocitiesToTemperature(temperature_K * u.kelvin, seed)
        n_steps = steps_for(settings["relax_ps"], dt_fs)
        stride = max(1, steps_for(0.05, dt_fs))
        groups = bm.unrestrained_groups(system)
        for step in range(0, n_steps, stride):
            integrator.step(stride)
            if step >= n_steps // 2:
                state = context.getState(getPositions=True)
                relaxed_pos.append(state.getPositions(asNumpy=True).value_in_unit(u.angstrom))
                relaxed_box.append(np.diag(state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(u.angstrom)))
        energy_relaxed = context.getState(getEnergy=True, groups=groups).getPotentialEnergy().value_in_unit(
            u.kilojoule_per_mole)
        frames.append({"cg_frame": index, **energies, "energy_relaxed_kj_mol": energy_relaxed,
                       "max_bead_deviation_A": float(deviation.max()),
                       "rms_bead_deviation_A": float(np.sqrt(np.mean(deviation ** 2)))})
        last_positions, last_box = minimised, box
        print(f"{label}: frame {index}: {frames[-1]}", flush=True)
    relaxed_pos, relaxed_box = np.array(relaxed_pos), np.array(relaxed_box)
    density = units.density_g_cm3(float(masses.sum()), np.prod(units.angstrom_to_nm(relaxed_box), axis=1))
    rmax = min(rdf_settings["rmax_A"], 0.5 * float(min(relaxed_box.min(), library_box.min())) - 1e-6)
    r, g_bm = atom_rdf(relaxed_pos, relaxed_box, topology, name, rdf_settings["nbins"], rmax)
    _, g_ref, noise = reference_atom_rdf(reference_topology, reference_trajectory, name, rdf_settings["nbins"], rmax)
    density_dev_pct = 100.0 * (float(np.mean(density)) - ref_density) / ref_density
    # the relaxation's second half is a short window: its mean density scatters as the reference's own windows of
    # that length do (125 methanol, 0.5 ps: ~1 %); the bound is the tolerance plus 3 sd of that scatter
    window_sd_pct = 100.0 * window_density_sd(ref_thermo, 0.5 * settings["relax_ps"]) / ref_density
    window_sd_pct = window_sd_pct / np.sqrt(len(frames)) if np.isfinite(window_sd_pct) else 0.0
    density_bound_pct = settings["density_tolerance_pct"] + 3.0 * window_sd_pct
    mae = rdfmod.rdf_mae(g_bm, g_ref)
    max_dev = max(f["max_bead_deviation_A"] for f in frames)
    checks = {
        "beads_within_tolerance": bool(max_dev <= settings["bead_tolerance_A"]),
        "energy_finite": bool(np.all(np.isfinite([[f["energy_minimised_kj_mol"], f["energy_relaxed_kj_mol"]]
                                                   for f in frames]))),
        "density_within_bounds": bool(abs(density_dev_pct) <= density_bound_pct),
        "rdf_within_bounds": bool(mae <= settings["rdf_mae_max"]),
    }
    result = {
        "label": label, "n_frames": len(frames), "n_atoms": topology.getNumAtoms(), "rdf_atoms": f"{name}-{name}",
        "max_bead_deviation_A": max_dev, "bead_tolerance_A": settings["bead_tolerance_A"],
        "energy_minimised_kj_mol": float(np.mean([f["energy_minimised_kj_mol"] for f in frames])),
        "relax_ps": settings["relax_ps"], "relax_ensemble": "npt" if pressure_bar is not None else "nvt",
        "relaxed_density_g_cm3": float(np.mean(density)), "reference_density_g_cm3": ref_density,
        "density_deviation_pct": density_dev_pct, "density_tolerance_pct": settings["density_tolerance_pct"],
        "density_window_sd_pct": window_sd_pct, "density_bound_pct": density_bound_pct,
        "rdf_mae": mae, "rdf_mae_max": settings["rdf_mae_max"], "reference_rdf_noise_floor": noise,
        **checks, "passed": bool(all(checks.values())), "frames": frames,
        "rdf": {"r_A": r.tolist(), "g_backmapped": g_bm.tolist(), "g_reference": g_ref.tolist()},
    }
    topology.setPeriodicBoxVectors([openmm.Vec3(*(units.angstrom_to_nm(last_box)[i] if i == j else 0.0
                                                  for j in range(3))) for i in range(3)] * u.nanometer)
    with atomic_path(out_pdb) as tmp:
        with open(tmp, "w") as fh:
            app.PDBFile.writeFile(topology, units.angstrom_to_nm(np.asarray(last_positions)) * u.nanometer, fh)
    write_json(out_json, result)
    print(f"{label}: {({k: v for k, v in result.items() if k not in ('frames', 'rdf')})}", flush=True)
    return result


def bead_targets(placed_A: np.ndarray, beads_A: np.ndarray, box_A: np.ndarray, topology: app.Topology,
                 mapping: dict, masses: np.ndarray) -> np.ndarray:
    """The restraint targets: each CG bead moved by the box vector that puts it next to its atoms' centre of mass
    in the placed configuration (molecules whole, not wrapped), so that a molecule placed across the box edge is
    restrained where its atoms are."""
    centres = np.array([np.average(placed_A[atoms], axis=0, weights=masses[atoms]) if masses[atoms].sum() > 0
                        else placed_A[atoms].mean(axis=0) for _, _, atoms in bm.bead_atoms(topology, mapping)])
    return beads_A + box_A * np.round((centres - beads_A) / box_A)
