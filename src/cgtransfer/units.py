"""The one place that owns units.

OpenMM works in nm, ps, kJ/mol, amu, K, bar. The CG model and its datasets work in Å and kcal/mol (as the
hippynn coarse-graining example and LAMMPS ``units real``), so a trained model interoperates with hippynn's
own tools. Every conversion in the package goes through these constants and functions.
"""

from __future__ import annotations

import numpy as np
import openmm.unit as u

#: Å per nm
ANGSTROM_PER_NM = (1.0 * u.nanometer).value_in_unit(u.angstrom)
#: kcal/mol per kJ/mol
KCAL_PER_KJ = (1.0 * u.kilojoule).value_in_unit(u.kilocalorie)
#: (kcal/mol/Å) per (kJ/mol/nm)
KCAL_A_PER_KJ_NM = KCAL_PER_KJ / ANGSTROM_PER_NM
#: g/cm³ per (amu/nm³)
G_CM3_PER_AMU_NM3 = (1.0 * u.amu / u.nanometer**3 / u.AVOGADRO_CONSTANT_NA).value_in_unit(
    u.gram / u.centimeter**3
)
#: bar per (kcal/mol/Å³): a pressure from a model energy per volume
BAR_PER_KCAL_MOL_A3 = (1.0 * u.kilocalorie_per_mole / u.angstrom**3 / u.AVOGADRO_CONSTANT_NA).value_in_unit(u.bar)
#: Boltzmann constant in kJ/mol/K
KB_KJ_MOL_K = (u.BOLTZMANN_CONSTANT_kB * u.AVOGADRO_CONSTANT_NA).value_in_unit(u.kilojoule_per_mole / u.kelvin)


def nm_to_angstrom(x):
    return np.asarray(x) * ANGSTROM_PER_NM


def angstrom_to_nm(x):
    return np.asarray(x) / ANGSTROM_PER_NM


def kj_to_kcal(x):
    return np.asarray(x) * KCAL_PER_KJ


def kcal_to_kj(x):
    return np.asarray(x) / KCAL_PER_KJ


def force_openmm_to_model(f_kj_mol_nm):
    """kJ/mol/nm (OpenMM) → kcal/mol/Å (model)."""
    return np.asarray(f_kj_mol_nm) * KCAL_A_PER_KJ_NM


def force_model_to_openmm(f_kcal_mol_a):
    """kcal/mol/Å (model) → kJ/mol/nm (OpenMM)."""
    return np.asarray(f_kcal_mol_a) / KCAL_A_PER_KJ_NM


def density_g_cm3(total_mass_amu: float, volume_nm3):
    """Mass density in g/cm³ from a mass in amu and a volume in nm³."""
    return total_mass_amu / np.asarray(volume_nm3) * G_CM3_PER_AMU_NM3


def volume_nm3_for_density(total_mass_amu: float, density: float) -> float:
    """Volume (nm³) holding ``total_mass_amu`` at ``density`` g/cm³."""
    return total_mass_amu * G_CM3_PER_AMU_NM3 / density


KB_KCAL_MOL_K = KB_KJ_MOL_K * KCAL_PER_KJ


# ------------------------------------------------------------------ external trajectories (GROMACS, LAMMPS)
#: bar per atm (LAMMPS ``units real`` pressures)
BAR_PER_ATM = (1.0 * u.atmosphere).value_in_unit(u.bar)
#: kJ/mol per eV (LAMMPS ``units metal`` energies are per particle, in eV)
KJ_MOL_PER_EV = ((1.0 * u.elementary_charge).value_in_unit(u.coulomb) * u.joule
                 * u.AVOGADRO_CONSTANT_NA).value_in_unit(u.kilojoule_per_mole)

#: Per trajectory unit system, the factors that take its values to OpenMM's units: length → nm, force →
#: kJ/mol/nm, energy → kJ/mol, pressure → bar, time → ps. GROMACS works in OpenMM's units; LAMMPS in the
#: dump's ``units`` style (``real``: Å, kcal/mol, atm, fs; ``metal``: Å, eV, bar, ps).
TRAJECTORY_UNITS = {
    "gromacs": {"length_nm": 1.0, "force_kj_mol_nm": 1.0, "energy_kj_mol": 1.0, "pressure_bar": 1.0, "time_ps": 1.0},
    "real": {"length_nm": 1.0 / ANGSTROM_PER_NM, "force_kj_mol_nm": 1.0 / KCAL_A_PER_KJ_NM,
             "energy_kj_mol": 1.0 / KCAL_PER_KJ, "pressure_bar": BAR_PER_ATM, "time_ps": 1.0e-3},
    "metal": {"length_nm": 1.0 / ANGSTROM_PER_NM, "force_kj_mol_nm": KJ_MOL_PER_EV * ANGSTROM_PER_NM,
              "energy_kj_mol": KJ_MOL_PER_EV, "pressure_bar": 1.0, "time_ps": 1.0},
}


def to_openmm(values, quantity: str, unit_system: str):
    """``values`` of ``quantity`` (length, force, energy, pressure, time) in ``unit_system`` (a key of
    ``TRAJECTORY_UNITS``) → OpenMM's units (nm, kJ/mol/nm, kJ/mol, bar, ps)."""
    factors = TRAJECTORY_UNITS[unit_system]
    key = {"length": "length_nm", "force": "force_kj_mol_nm", "energy": "energy_kj_mol", "pressure": "pressure_bar",
           "time": "time_ps"}[quantity]
    return np.asarray(values, dtype=np.float64) * factors[key]


def spring_model_to_openmm(k_kcal_mol_a2):
    """Harmonic force constant kcal/mol/Å² → kJ/mol/nm²."""
    return k_kcal_mol_a2 / KCAL_PER_KJ * ANGSTROM_PER_NM**2


# ------------------------------------------------------------------ engine table units (stages.export)
#: atm per bar (LAMMPS ``units real`` pressures are in atm)
ATM_PER_BAR = (1.0 * u.bar).value_in_unit(u.atmosphere)
#: eV per kcal/mol (LAMMPS ``units metal`` energies)
EV_PER_KCAL_MOL = (1.0 * u.kilocalorie_per_mole / u.AVOGADRO_CONSTANT_NA).value_in_unit(u.joule) / (
    (1.0 * u.elementary_charge * u.volt).value_in_unit(u.joule))

#: The units of the engines' table formats, as (length per Å, energy per kcal/mol, pressure per bar):
#: LAMMPS ``units real`` (Å, kcal/mol, atm), LAMMPS ``units metal`` (Å, eV, bar), GROMACS (nm, kJ/mol, bar).
ENGINE_UNITS = {
    "lammps_real": {"length": 1.0, "energy": 1.0, "pressure": ATM_PER_BAR,
                    "names": ("Angstrom", "kcal/mol", "kcal/mol/Angstrom", "atm")},
    "lammps_metal": {"length": 1.0, "energy": EV_PER_KCAL_MOL, "pressure": 1.0,
                     "names": ("Angstrom", "eV", "eV/Angstrom", "bar")},
    "gromacs": {"length": 1.0 / ANGSTROM_PER_NM, "energy": 1.0 / KCAL_PER_KJ, "pressure": 1.0,
                "names": ("nm", "kJ/mol", "kJ/mol/nm", "bar")},
}


def _engine(engine: str) -> dict:
    if engine not in ENGINE_UNITS:
        raise ValueError(f"unknown engine unit system {engine!r}; known: {sorted(ENGINE_UNITS)}")
    return ENGINE_UNITS[engine]


def table_model_to_engine(engine: str, r_A, energy_kcal_mol, force_kcal_mol_A):
    """A pair table (r, U, f = -dU/dr) from model units (Å, kcal/mol, kcal/mol/Å) to an engine's units."""
    e = _engine(engine)
    return (np.asarray(r_A) * e["length"], np.asarray(energy_kcal_mol) * e["energy"],
            np.asarray(force_kcal_mol_A) * e["energy"] / e["length"])


def table_engine_to_model(engine: str, r, energy, force):
    """The inverse of `table_model_to_engine`: an engine's pair table back to Å, kcal/mol, kcal/mol/Å."""
    e = _engine(engine)
    return (np.asarray(r) / e["length"], np.asarray(energy) / e["energy"],
            np.asarray(force) * e["length"] / e["energy"])


def length_model_to_engine(engine: str, x_A):
    return np.asarray(x_A) * _engine(engine)["length"]


def volume_model_to_engine(engine: str, v_A3):
    return np.asarray(v_A3) * _engine(engine)["length"] ** 3


def pressure_bar_to_engine(engine: str, p_bar):
    return np.asarray(p_bar) * _engine(engine)["pressure"]


def spring_model_to_engine(engine: str, k_kcal_mol_a2):
    """Harmonic force constant kcal/mol/Å² → the engine's energy/length² (the ½ k convention is the caller's)."""
    e = _engine(engine)
    return np.asarray(k_kcal_mol_a2) * e["energy"] / e["length"] ** 2
