"""The volume term of a CG model: U_V(V) = N ψ(ρ; T), ρ = N/V (beads per Å³), ψ(ρ; T) = Σ_k c_k(T) ρ^k.

It exerts no force on the beads and adds ρ² ψ'(ρ) to the pressure, so it changes the NPT density and the
compressibility and leaves NVT structure untouched (Das & Andersen, J. Chem. Phys. 132, 164106 (2010); Dunn &
Noid, J. Chem. Phys. 143, 243148 (2015)). Coefficients are linear in temperature, c_k(T) = a_k + b_k (T − T_ref),
so a model fitted at several temperatures can run at any (Lebold & Noid 2019 found the methanol correction close
to linear in T). Model units: ψ in kcal/mol, ρ in Å⁻³. In OpenMM it is one ``CustomVolumeForce`` (energy of the
box only), evaluated natively, so ``MonteCarloBarostat`` sees it in NPT and ``computeCurrentPressure`` reports the
corrected pressure in NVT.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import openmm

from cgtransfer import units


@dataclass
class VolumeTerm:
    """ψ(ρ; T) = Σ_k (a[k-1] + b[k-1] (T − t_ref_K)) ρ^k, k = 1..len(a)."""

    a: list[float]
    b: list[float] = field(default_factory=list)
    t_ref_K: float = 300.0

    def coefficients(self, temperature_K: float) -> np.ndarray:
        b = np.asarray(self.b if self.b else [0.0] * len(self.a), dtype=float)
        return np.asarray(self.a, dtype=float) + b * (temperature_K - self.t_ref_K)

    def psi(self, rho_A3, temperature_K: float):
        c = self.coefficients(temperature_K)
        rho = np.asarray(rho_A3, dtype=float)
        return sum(ck * rho ** (k + 1) for k, ck in enumerate(c))

    def pressure_shift_bar(self, rho_A3, temperature_K: float):
        """ρ² ψ'(ρ) in bar: what the term adds to the pressure at density ρ (beads/Å³)."""
        c = self.coefficients(temperature_K)
        rho = np.asarray(rho_A3, dtype=float)
        dpsi = sum((k + 1) * ck * rho**k for k, ck in enumerate(c))
        return rho**2 * dpsi * units.BAR_PER_KCAL_MOL_A3

    def energy_kcal_mol(self, n_beads: int, volume_A3, temperature_K: float):
        return n_beads * self.psi(n_beads / np.asarray(volume_A3, dtype=float), temperature_K)

    def openmm_force(self, n_beads: int, temperature_K: float) -> openmm.CustomVolumeForce:
        """The term at one temperature as a ``CustomVolumeForce`` (kJ/mol; ``v`` is the box volume in nm³)."""
        c = self.coefficients(temperature_K)
        nm3_per_A3 = float(units.angstrom_to_nm(1.0)) ** 3
        terms = []
        for k, ck in enumerate(c):
            # N c_k ρ_Å^k with ρ_Å = N/V_Å = (N/v) nm3_per_A3, energy kcal → kJ
            coefficient = float(units.kcal_to_kj(ck)) * nm3_per_A3 ** (k + 1)
            terms.append(f"{coefficient!r}*rho^{k + 1}")
        force = openmm.CustomVolumeForce(f"N*({' + '.join(terms) or '0'}); rho = N/v")
        force.addGlobalParameter("N", float(n_beads))
        force.setName("CGVolumeTerm")
        return force

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "VolumeTerm":
        return cls(list(d["a"]), list(d.get("b", [])), float(d.get("t_ref_K", 300.0)))


# ------------------------------------------------------------------------------------------------ fitting
def pressure_density_slope(rho_A3, pressure_bar, stderr_bar) -> tuple[float, float]:
    """dP/dρ (bar Å³) of a model's NVT pressures at a few densities: weighted straight line, with the standard
    error of the slope from the runs' own standard errors (≥ 2 densities)."""
    rho, p = np.asarray(rho_A3, dtype=float), np.asarray(pressure_bar, dtype=float)
    se = np.asarray([s if np.isfinite(s) and s > 0 else np.nan for s in stderr_bar], dtype=float)
    if len(rho) < 2 or np.ptp(rho) <= 0:
        raise ValueError(f"a pressure slope needs at least 2 distinct densities, got {len(set(rho.tolist()))}")
    se = np.where(np.isfinite(se), se, np.nanmax(se) if np.isfinite(se).any() else 1.0)
    # numpy's weighted least squares; "unscaled": the covariance from the given errors, not from the residuals
    (slope, _), cov = np.polyfit(rho, p, 1, w=1.0 / se, cov="unscaled")
    return float(slope), float(np.sqrt(cov[0, 0]))


def fit_volume_term(points: list[dict], order: int = 2) -> tuple[VolumeTerm, dict]:
    """Self-consistent pressure matching, one point per training state; returns (term, fit details).

    Each point: ``temperature_K``, ``rho_A3`` (beads per Å³ of the all-atom mean box), ``pressure_gap_bar`` =
    P_AA − P_CG (the uncorrected model's NVT pressure in that box) with its standard error ``stderr_bar``, and
    optionally ``slope_gap_bar_A3`` = dP_AA/dρ − dP_CG/dρ at that density with ``slope_gap_stderr_bar_A3`` (NPT
    states: dP_AA/dρ = 1/(ρ κ_T,AA)). The term adds ΔP(ρ) = ρ²ψ′ = c₁ρ² + 2c₂ρ³ and dΔP/dρ = 2c₁ρ + 6c₂ρ², both
    linear in the coefficients, and exerts no force, so the corrected model's NVT pressure at each sampled density
    is the uncorrected one plus ΔP exactly: matching both gaps is a weighted linear least-squares problem, solved
    in one step (no iteration: nothing the term changes feeds back into the NVT pressures). Coefficients
    c_k(T) = a_k + b_k (T − T_ref): a₂ needs ``order`` 2 and a slope; b₁ two temperatures; b₂ slopes at two
    temperatures. One state of order 2 with a slope: two equations, two unknowns, both gaps closed exactly."""
    if not points:
        raise ValueError("no training state with a usable CG pressure: the volume term cannot be fitted")
    to_model = 1.0 / units.BAR_PER_KCAL_MOL_A3  # bar → kcal/mol/Å³
    t_ref = float(np.mean([p["temperature_K"] for p in points]))
    rows, rhs, sigma, kinds = [], [], [], []
    for p in points:
        rho, dt = p["rho_A3"], p["temperature_K"] - t_ref
        rows.append([rho**2, rho**2 * dt, 2 * rho**3, 2 * rho**3 * dt])
        rhs.append(p["pressure_gap_bar"] * to_model)
        sigma.append(max(p.get("stderr_bar") or 0.0, 1e-3) * to_model)
        kinds.append(("pressure", p["temperature_K"]))
        if order >= 2 and p.get("slope_gap_bar_A3") is not None:
            rows.append([2 * rho, 2 * rho * dt, 6 * rho**2, 6 * rho**2 * dt])
            rhs.append(p["slope_gap_bar_A3"] * to_model)
            sigma.append(max(p.get("slope_gap_stderr_bar_A3") or 0.0, 1e-3) * to_model)
            kinds.append(("slope", p["temperature_K"]))
    temps = {t for _, t in kinds}
    slope_temps = {t for k, t in kinds if k == "slope"}
    use = [True, len(temps) > 1, order >= 2 and bool(slope_temps), order >= 2 and len(slope_temps) > 1]
    a = np.asarray(rows)[:, use] / np.asarray(sigma)[:, None]
    y = np.asarray(rhs) / np.asarray(sigma)
    scale = np.linalg.norm(a, axis=0)  # columns differ by ρ ~ 0.01: solve on unit columns
    coef, *_ = np.linalg.lstsq(a / scale, y, rcond=None)
    if not np.all(np.isfinite(coef)):
        raise ValueError("the volume-term least squares gave non-finite coefficients")
    full = np.zeros(4)
    full[np.flatnonzero(use)] = coef / scale
    term = VolumeTerm(a=[float(full[0]), float(full[2])], b=[float(full[1]), float(full[3])], t_ref_K=t_ref)
    residual = (np.asarray(rows) @ full - np.asarray(rhs)) / np.asarray(sigma)
    details = {"order": 2 if use[2] else 1, "equations": len(rows), "unknowns": int(sum(use)),
               "coefficients_fitted": [n for n, u_ in zip(("a1", "b1", "a2", "b2"), use) if u_],
               "chi2_per_equation": float(np.mean(residual**2))}
    if order >= 2 and not use[2]:
        details["order_note"] = "no training state with a compressibility target (NPT) and a usable pressure " \
                                "slope: psi linear (pressure only)"
    return term, details


def corrected_slope_bar_A3(term: VolumeTerm, slope_cg_bar_A3: float, rho_A3: float, temperature_K: float) -> float:
    """dP/dρ of the corrected model at ρ: the uncorrected slope plus d(ρ²ψ′)/dρ = 2c₁ρ + 6c₂ρ² (bar Å³)."""
    c = term.coefficients(temperature_K)
    c2 = c[1] if len(c) > 1 else 0.0
    return slope_cg_bar_A3 + (2 * c[0] * rho_A3 + 6 * c2 * rho_A3**2) * units.BAR_PER_KCAL_MOL_A3


def virial_pressure_bar(model, data: dict, frames, temperature_K: float, rel_dv: float = 2e-3) -> np.ndarray:
    """The CG model's (molecular) pressure on mapped frames: N_mol k T / V plus the virial −dU/dV by a central
    difference of the model energy with the box and the molecules' centres scaled (volume ± ``rel_dv``; molecules
    keep their shape, as under OpenMM's barostat; for one-bead molecules: the beads). bar, one per frame."""
    from cgtransfer.analysis import bonds as bonded

    frames = np.asarray(frames)
    species, pos, cells = data["species"][frames], data["positions"][frames].astype(np.float64), \
        data["cells"][frames].astype(np.float64)
    volume = np.abs(np.linalg.det(cells))
    edges = cells[:, [0, 1, 2], [0, 1, 2]]
    residues = data["residue_index"] if "residue_index" in data else np.arange(species.shape[1])
    energies = []
    for sign in (+1, -1):
        s = (1.0 + sign * rel_dv) ** (1.0 / 3.0)
        scaled = bonded.scale_molecules(pos, data["masses"], residues, s, edges)
        e, _ = model.predict(species, scaled.astype(np.float32), (cells * s).astype(np.float32), temperature_K)
        energies.append(np.asarray(e, dtype=np.float64))
    p_virial = -(energies[0] - energies[1]) / (2.0 * rel_dv * volume)
    kt = units.KB_KJ_MOL_K * temperature_K * units.KCAL_PER_KJ
    n = len(np.unique(residues))  # molecules: the ideal-gas term of the molecular pressure
    return (n * kt / volume + p_virial) * units.BAR_PER_KCAL_MOL_A3


def load_volume_term(path) -> tuple[VolumeTerm | None, str | None]:
    """(term, None) from a fit_volume_term JSON, or (None, reason) when the model was uncorrectable."""
    from cgtransfer.io import read_json

    d = read_json(path)
    if not d.get("correctable"):
        return None, d.get("reason", "uncorrectable")
    return VolumeTerm.from_dict(d["term"]), None
