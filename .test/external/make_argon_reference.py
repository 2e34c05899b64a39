"""Make the tiny config's external argon references (system argon_external) from real OpenMM runs of the
project's own reference stage at the tiny config's argon settings (20 frames, 0.5 ps apart), written as a user's
engine would have left them:

* T87 (NPT, 10 bar): a GROMACS TRR with coordinates and forces (nm, kJ/mol/nm, ps; MDAnalysis's XDR writer),
  a GRO topology, and a thermo CSV in GROMACS units (potential_energy_kJ_mol, pressure_bar);
* T94 (NVT, 1.374 g/cm3): a gzipped LAMMPS dump in `units real` (Å, kcal/mol/Å; columns id type x y z fx fy fz),
  a PDB topology, and a thermo CSV in LAMMPS real units (potential_energy_kcal_mol, pressure_atm).

Run from the repository root: python .test/external/make_argon_reference.py (about half a minute).
"""

from __future__ import annotations

import gzip
import tempfile
from pathlib import Path

import MDAnalysis as mda
import numpy as np
import pandas as pd

from cgtransfer import units
from cgtransfer.config import read_config, system_settings
from cgtransfer.md.box import build_box
from cgtransfer.stages.reference import run_reference

REPO = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent / "argon"
STATES = {"T87": (87.0, 10.0, None), "T94": (94.4, None, 1.374)}


def native_run(directory: Path, temperature_K, pressure_bar, density_g_cm3, md, seed):
    build_box(REPO / "resources/argon/argon.pdb", 256, 1.30, directory / "box.pdb", seed=seed)
    run_reference(directory / "box.pdb", [str(REPO / "resources/argon/argon.xml")], temperature_K, pressure_bar,
                  density_g_cm3, md, directory / "topology.pdb", directory / "trajectory.dcd",
                  directory / "forces.npz", directory / "thermo.csv", threads=1, seed=seed)
    u = mda.Universe(str(directory / "topology.pdb"), str(directory / "trajectory.dcd"))
    pos = [units.angstrom_to_nm(ts.positions.astype(np.float64)) for ts in u.trajectory]
    box = [units.angstrom_to_nm(ts.dimensions[:3].astype(np.float64)) for ts in u.trajectory]
    with np.load(directory / "forces.npz") as data:
        return u, pos, box, data["forces_kj_mol_nm"], data["time_ps"], pd.read_csv(directory / "thermo.csv")


def write_trr(path, pos, box, forces, times):
    from MDAnalysis.lib.formats.libmdaxdr import TRRFile

    with TRRFile(str(path), "w") as trr:
        for i, (x, b, f, t) in enumerate(zip(pos, box, forces, times)):
            trr.write(x.astype(np.float32), None, f.astype(np.float32), np.diag(b).astype(np.float32), i * 100,
                      float(t), 0.0, len(x))


def write_dump_real(path, pos, box, forces):
    length = 1.0 / units.TRAJECTORY_UNITS["real"]["length_nm"]
    force = 1.0 / units.TRAJECTORY_UNITS["real"]["force_kj_mol_nm"]
    with gzip.open(path, "wt") as fh:
        for i, (x, b, f) in enumerate(zip(pos, box, forces)):
            fh.write(f"ITEM: TIMESTEP\n{i * 100}\nITEM: NUMBER OF ATOMS\n{len(x)}\nITEM: BOX BOUNDS pp pp pp\n")
            fh.writelines(f"0.0 {e * length:.8g}\n" for e in b)
            fh.write("ITEM: ATOMS id type x y z fx fy fz\n")
            for a in range(len(x)):
                fh.write(f"{a + 1} 1 {x[a, 0] * length:.7g} {x[a, 1] * length:.7g} {x[a, 2] * length:.7g} "
                         f"{f[a, 0] * force:.7g} {f[a, 1] * force:.7g} {f[a, 2] * force:.7g}\n")


def main():
    config = read_config(REPO / ".test/config/config.yaml")
    md = {**system_settings(config, "argon")["reference_md"], "report_interval_ps": 0.5, "checkpoint_interval_ps": 0}
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for seed, (state, (t, p, rho)) in enumerate(STATES.items(), start=11):
            d = Path(tmp) / state
            d.mkdir()
            u, pos, box, forces, times, thermo = native_run(d, t, p, rho, md, seed)
            if state == "T87":
                u.atoms.write(str(OUT / "T87.gro"))
                write_trr(OUT / "T87.trr", pos, box, forces, times)
                thermo[["potential_energy_kJ_mol", "pressure_bar"]].to_csv(OUT / "T87_thermo.csv", index=False,
                                                                           float_format="%.8g")
            else:
                (OUT / "T94.pdb").write_text((d / "topology.pdb").read_text())
                write_dump_real(OUT / "T94.lammpstrj.gz", pos, box, forces)
                pd.DataFrame({"potential_energy_kcal_mol": units.kj_to_kcal(thermo["potential_energy_kJ_mol"]),
                              "pressure_atm": thermo["pressure_bar"] / units.BAR_PER_ATM}).to_csv(
                    OUT / "T94_thermo.csv", index=False, float_format="%.8g")
            print(state, len(pos), "frames", f"{thermo['density_g_cm3'].mean():.4f} g/cm3")


if __name__ == "__main__":
    main()
