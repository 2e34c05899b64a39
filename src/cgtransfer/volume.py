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

from . import units


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
    from . import bonded

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


def fit_for_model(checkpoint_dir, states: list[dict], cg_nvt_summaries: list, reference_thermos: list,
                  datasets: list, settings: dict, out_json, label: str, cg_scan_summaries: list | None = None) -> dict:
    """Stage fit_volume_term: fit a model's volume term on its training states and save it beside the model.

    ``states``: per training state {state, temperature_K, pressure_bar (None at NVT states)}; the other lists are
    aligned with it; ``cg_scan_summaries[i]``: the uncorrected model's NVT runs at the other densities of state i
    (order 2, NPT states; empty otherwise). The all-atom target is the set pressure at NPT states and the measured
    all-atom pressure at NVT states, and at NPT states the all-atom slope dP/dρ = 1/(ρ κ_T) from the reference's
    volume fluctuations. A state whose uncorrected NVT run was unstable, or whose CG pressure falls with density
    (a mechanically unstable model there), is skipped with the reason; a scan run that failed only drops that
    state's slope. No usable state, or a corrected slope ≤ 0 at a training state, makes the model uncorrectable
    (recorded with the reason; its corrected cells are reported as such, the study goes on)."""
    import pandas as pd

    from .cg_md import block_average
    from .compare import compressibility_per_bar
    from .io import read_json, write_json
    from .training import load_dataset

    order = int(settings.get("order", 1))
    scans_per_state = cg_scan_summaries if cg_scan_summaries is not None else [[] for _ in states]
    points, skipped, mapped, slope_notes = [], {}, {}, {}
    model = None
    for st, cg_path, scans, thermo_path, data_path in zip(states, cg_nvt_summaries, scans_per_state,
                                                         reference_thermos, datasets):
        cg = read_json(cg_path)
        thermo = pd.read_csv(thermo_path)
        p_aa_measured, p_aa_err = block_average(thermo["pressure_bar"])
        # NPT state: the barostat holds the set pressure exactly on average (its measured mean only adds noise);
        # NVT state: the all-atom pressure measured at that density
        p_aa = st["pressure_bar"] if st.get("pressure_bar") is not None else p_aa_measured
        if st.get("pressure_bar") is not None:
            p_aa_err = 0.0
        data = load_dataset(data_path)
        n_beads = data["positions"].shape[1]
        # the box of the CG NVT run (cg_md.start_frame: the mean edges of the mapped frames)
        volume = float(np.prod(data["cells"][:, [0, 1, 2], [0, 1, 2]].astype(np.float64).mean(axis=0)))
        rho0 = n_beads / volume
        if settings.get("mapped_frames", 0):
            if model is None:
                from .models import load_model

                model = load_model(checkpoint_dir)
            model.check_data(data, str(data_path))
            frames = np.linspace(0, len(data["positions"]) - 1, min(settings["mapped_frames"], len(data["positions"])))
            frames = frames.round().astype(int)
            p_cg_frames = virial_pressure_bar(model, data, frames, st["temperature_K"])
            gap = thermo["pressure_bar"].to_numpy()[frames] - p_cg_frames
            mapped[st["state"]] = {"pressure_cg_mapped_bar": float(p_cg_frames.mean()),
                                   "pressure_gap_mapped_bar": float(gap.mean()),
                                   "pressure_gap_mapped_stderr_bar": float(gap.std(ddof=1) / np.sqrt(len(gap)))
                                   if len(gap) > 1 else float("nan")}
        if not cg.get("stable", True):
            skipped[st["state"]] = f"uncorrected NVT run unstable: {cg.get('failure')}"
            continue
        point = {"state": st["state"], "temperature_K": st["temperature_K"], "rho_A3": rho0,
                 "pressure_aa_bar": p_aa, "pressure_aa_measured_bar": p_aa_measured,
                 "pressure_cg_bar": cg["mean_pressure_bar"], "pressure_cg_stderr_bar": cg["mean_pressure_stderr_bar"],
                 "pressure_gap_bar": p_aa - cg["mean_pressure_bar"],
                 "stderr_bar": float(np.hypot(p_aa_err, cg["mean_pressure_stderr_bar"]))}
        if scans:
            curve = [(rho0, cg["mean_pressure_bar"], cg["mean_pressure_stderr_bar"])]
            failed = []
            for path in scans:
                scan = read_json(path)
                if scan.get("stable", True):
                    curve.append((scan["density_factor"] * rho0, scan["mean_pressure_bar"],
                                  scan["mean_pressure_stderr_bar"]))
                else:
                    failed.append(f"NVT run at {scan.get('density_factor', '?')} x rho_AA unstable: "
                                  f"{scan.get('failure')}")
            point["pressure_curve"] = [{"rho_A3": r, "pressure_bar": p_, "stderr_bar": e} for r, p_, e in curve]
            try:
                if failed:
                    raise ValueError("; ".join(failed))
                slope_cg, slope_cg_err = pressure_density_slope(*zip(*curve))
            except ValueError as exc:
                slope_notes[st["state"]] = f"no CG pressure slope (too few densities): {exc}"
            else:
                point.update({"slope_cg_bar_A3": slope_cg, "slope_cg_stderr_bar_A3": slope_cg_err})
                if slope_cg <= 0:
                    skipped[st["state"]] = (f"mechanically unstable: the uncorrected CG pressure falls with density "
                                            f"(dP/drho = {slope_cg:.4g} +/- {slope_cg_err:.2g} bar A^3 over "
                                            f"rho_AA x {min(c[0] for c in curve) / rho0:.3f}-"
                                            f"{max(c[0] for c in curve) / rho0:.3f})")
                    continue
                kappa, kappa_err = compressibility_per_bar(thermo["volume_nm3"], st["temperature_K"])
                if st.get("pressure_bar") is not None and np.isfinite(kappa) and kappa > 0:
                    slope_aa = 1.0 / (rho0 * kappa)
                    slope_aa_err = slope_aa * (kappa_err / kappa if np.isfinite(kappa_err) else 0.0)
                    point.update({"compressibility_aa_per_bar": kappa, "compressibility_aa_stderr_per_bar": kappa_err,
                                  "slope_aa_bar_A3": slope_aa, "slope_aa_stderr_bar_A3": slope_aa_err,
                                  "slope_gap_bar_A3": slope_aa - slope_cg,
                                  "slope_gap_stderr_bar_A3": float(np.hypot(slope_aa_err, slope_cg_err))})
                else:
                    slope_notes[st["state"]] = f"no all-atom compressibility (kappa_T = {kappa:.3g} / bar)"
        points.append(point)
    out = {"label": label, "order_requested": order, "points": points, "skipped_states": skipped,
           "slope_notes": slope_notes, "mapped_frame_estimate": mapped}
    try:
        term, details = fit_volume_term(points, order=order)
        out["fit"] = details
        unstable = []
        for p in points:
            t, rho = p["temperature_K"], p["rho_A3"]
            shift = float(term.pressure_shift_bar(rho, t))
            p["pressure_corrected_bar"] = p["pressure_cg_bar"] + shift
            p["pressure_shift_bar"] = shift
            if "slope_cg_bar_A3" in p:
                slope = corrected_slope_bar_A3(term, p["slope_cg_bar_A3"], rho, t)
                p["slope_corrected_bar_A3"] = slope
                if slope <= 0:
                    unstable.append(f"{p['state']} (dP/drho = {slope:.4g} bar A^3)")
                    continue
                p["compressibility_corrected_per_bar"] = 1.0 / (rho * slope)
                if "slope_aa_bar_A3" in p:
                    # the NPT density the corrected model should reach: linear in ρ about the AA density
                    p["predicted_density_error_pct"] = 100.0 * (p["pressure_aa_bar"] - p["pressure_corrected_bar"]) \
                        / slope / rho
        if unstable:
            raise ValueError("the corrected model would be mechanically unstable (pressure falling with density) "
                             "at " + ", ".join(unstable))
        out.update({"correctable": True, "term": term.to_dict(),
                    "pressure_shift_at_training_states_bar": {p["state"]: p["pressure_shift_bar"] for p in points}})
    except ValueError as exc:
        reason = str(exc)
        if not points and skipped:
            reason += " (" + "; ".join(f"{state}: {why}" for state, why in skipped.items()) + ")"
        out.update({"correctable": False, "reason": reason})
    write_json(out_json, out)
    print(out, flush=True)
    return out


def load_volume_term(path) -> tuple[VolumeTerm | None, str | None]:
    """(term, None) from a fit_volume_term JSON, or (None, reason) when the model was uncorrectable."""
    from .io import read_json

    d = read_json(path)
    if not d.get("correctable"):
        return None, d.get("reason", "uncorrectable")
    return VolumeTerm.from_dict(d["term"]), None
