"""Pair tables in the file formats of the MD engines users run CG models in; every unit through `cgtransfer.units`.

* LAMMPS ``pair_style table`` (documented format): one section per bead-type pair, headed by its keyword, a
  parameter line ``N <n> R <rlo> <rhi>`` (r evenly spaced) or ``N <n> RSQ <rlo> <rhi>`` (r² evenly spaced) and a
  blank line, then ``index r energy force`` rows from rlo to rhi; force = -dE/dr (> 0 repulsive). In ``units real`` (Å, kcal/mol) the model's own units; ``units
  metal`` (Å, eV) is written by the same code with its factor. No r = 0 row: a table starts inside the wall.
* GROMACS tabulated non-bonded interactions (``table_<A>_<B>.xvg``, documented columns): x (nm), f, -f', g, -g',
  h, -h' with V(r) = q_i q_j f(r) + C6 g(r) + C12 h(r). A CG pair table goes into the repulsion columns h, -h' (the
  bead types get C6 = 0, C12 = 1, as VOTCA writes them); f and g are zero. GROMACS needs rows from x = 0 in uniform
  steps up to the cutoff plus ``table-extension``: below the table's start the energy continues linearly (the
  force at the start held constant: finite, steeply repulsive) and beyond the cutoff both are zero.

Readers of both formats are here for round trips; the tests read the files with their own, independent parsers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cgtransfer import units
from cgtransfer.io import atomic_path

GROMACS_SPACING_NM = 0.002  # GROMACS's recommended table spacing in single precision (500 points per nm)
GROMACS_TABLE_EXTENSION_NM = 1.0  # GROMACS's default table-extension: rows beyond the cutoff it reads


def write_lammps_table(path, sections: list[dict], header: str, engine: str = "lammps_real") -> None:
    """``sections``: dicts with ``keyword`` and ``r_A``, ``energy_kcal_mol``, ``force_kcal_mol_A`` (model units,
    r > 0, evenly spaced in r, or in r² where the section has ``grid: "rsq"``), written in ``engine``'s units
    (``lammps_real`` or ``lammps_metal``)."""
    length, energy, force, _ = units.ENGINE_UNITS[engine]["names"]
    lines = [f"# {line}" for line in header.splitlines()]
    lines.append(f"# units: r {length}, energy {energy}, force {force} (= -dE/dr, > 0 repulsive)")
    for s in sections:
        r, e, f = units.table_model_to_engine(engine, s["r_A"], s["energy_kcal_mol"], s["force_kcal_mol_A"])
        if r[0] <= 0.0:
            raise ValueError(f"table {s['keyword']}: LAMMPS refuses r <= 0 rows (first r = {r[0]})")
        if not (np.all(np.isfinite(e)) and np.all(np.isfinite(f))):
            raise ValueError(f"table {s['keyword']}: non-finite energy or force")
        if s.get("grid") == "rsq":
            rsq = np.square(r)
            if not np.allclose(np.diff(rsq), (rsq[-1] - rsq[0]) / (len(r) - 1), rtol=1e-9, atol=1e-12):
                raise ValueError(f"table {s['keyword']}: r² must be evenly spaced for the RSQ keyword")
            # rlo and rhi exactly (repr): LAMMPS rebuilds the grid from them, and takes the rows as they are only
            # where rhi equals the pair_coeff cutoff bit for bit
            params = f"N {len(r)} RSQ {float(r[0])!r} {float(r[-1])!r}"
        else:
            if not np.allclose(np.diff(r), r[1] - r[0], rtol=1e-9, atol=1e-12):
                raise ValueError(f"table {s['keyword']}: r must be evenly spaced for the R keyword")
            params = f"N {len(r)} R {float(r[0]):.10f} {float(r[-1]):.10f}"
        lines += ["", s["keyword"], params, ""]
        lines += [f"{i} {ri:.10f} {ei:.12e} {fi:.12e}" for i, (ri, ei, fi) in enumerate(zip(r, e, f), start=1)]
    with atomic_path(path) as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n")


def read_lammps_table(path, engine: str = "lammps_real") -> dict[str, dict]:
    """keyword → {r_A, energy_kcal_mol, force_kcal_mol_A} (model units) of a file `write_lammps_table` wrote."""
    lines = [ln.strip() for ln in Path(path).read_text().splitlines()]
    out, k = {}, 0
    while k < len(lines):
        if not lines[k] or lines[k].startswith("#"):
            k += 1
            continue
        keyword, params = lines[k], lines[k + 1].split()
        n = int(params[params.index("N") + 1])
        rows = np.array([ln.split() for ln in lines[k + 3:k + 3 + n]], dtype=float)
        r, e, f = units.table_engine_to_model(engine, rows[:, 1], rows[:, 2], rows[:, 3])
        out[keyword] = {"r_A": r, "energy_kcal_mol": e, "force_kcal_mol_A": f}
        k += 3 + n
    return out


def gromacs_rows(r_A, energy_kcal_mol, force_kcal_mol_A, cutoff_A: float) -> np.ndarray:
    """The GROMACS table of one pair (model values on an even grid from r_A[0] to the cutoff), as rows x, f, -f',
    g, -g', h, -h' in nm and kJ/mol on GROMACS's grid from 0 to cutoff + table-extension: the model's energy and
    force interpolated linearly from its (finer) grid, a linear continuation below the first model point."""
    r_nm, e_kj, f_kjnm = units.table_model_to_engine("gromacs", r_A, energy_kcal_mol, force_kcal_mol_A)
    cut_nm = float(units.length_model_to_engine("gromacs", cutoff_A))
    n = int(round((cut_nm + GROMACS_TABLE_EXTENSION_NM) / GROMACS_SPACING_NM)) + 1
    x = np.arange(n) * GROMACS_SPACING_NM
    inside = (x >= r_nm[0]) & (x < cut_nm)
    h = np.zeros(n)
    dh = np.zeros(n)
    dh[inside] = np.interp(x[inside], r_nm, f_kjnm)
    h[inside] = np.interp(x[inside], r_nm, e_kj)
    below = x < r_nm[0]
    h[below] = e_kj[0] + f_kjnm[0] * (r_nm[0] - x[below])
    dh[below] = f_kjnm[0]
    rows = np.zeros((n, 7))
    rows[:, 0], rows[:, 5], rows[:, 6] = x, h, dh
    return rows


def write_gromacs_table(path, rows: np.ndarray, header: str) -> None:
    lines = [f"# {line}" for line in header.splitlines()]
    lines.append("# columns: x (nm), f, -f', g, -g', h, -h' (kJ/mol, kJ/mol/nm); V = qq f + C6 g + C12 h, "
                 "the CG pair potential in h (C12 = 1)")
    lines += [" ".join(f"{v:.10e}" for v in row) for row in rows]
    with atomic_path(path) as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n")


def read_gromacs_table(path) -> dict:
    """x (Å), V (kcal/mol) and F = -dV/dr (kcal/mol/Å) of the h columns of a GROMACS table, in model units."""
    rows = np.loadtxt(path, comments=("#", "@"))
    r, e, f = units.table_engine_to_model("gromacs", rows[:, 0], rows[:, 5], rows[:, 6])
    return {"r_A": r, "energy_kcal_mol": e, "force_kcal_mol_A": f}
