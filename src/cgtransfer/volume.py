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
def fit_volume_term(points: list[dict]) -> VolumeTerm:
    """Self-consistent pressure matching at the all-atom density, one point per training state.

    Each point: ``temperature_K``, ``rho_A3`` (beads per Å³ of the all-atom mean box) and ``pressure_gap_bar`` =
    P_AA − P_CG (the uncorrected model's NVT pressure in that box) with its standard error ``stderr_bar``. With
    ψ = c₁(T) ρ the term adds c₁ρ² to the pressure at any configuration, so c₁ = gap/ρ² makes the corrected NVT
    pressure equal the all-atom pressure exactly; over several temperatures c₁(T) = a + b (T − T_ref) by weighted
    least squares (one temperature: b = 0)."""
    if not points:
        raise ValueError("no training state with a usable CG pressure: the volume term cannot be fitted")
    t = np.array([p["temperature_K"] for p in points], dtype=float)
    rho = np.array([p["rho_A3"] for p in points], dtype=float)
    c1 = np.array([p["pressure_gap_bar"] for p in points]) / units.BAR_PER_KCAL_MOL_A3 / rho**2
    se = np.array([max(p.get("stderr_bar") or 0.0, 1e-9) for p in points]) / units.BAR_PER_KCAL_MOL_A3 / rho**2
    t_ref = float(t.mean())
    if np.ptp(t) < 1e-6:
        w = 1.0 / se**2
        return VolumeTerm(a=[float(np.sum(w * c1) / np.sum(w))], b=[0.0], t_ref_K=t_ref)
    design = np.column_stack([np.ones_like(t), t - t_ref]) / se[:, None]
    (a, b), *_ = np.linalg.lstsq(design, c1 / se, rcond=None)
    return VolumeTerm(a=[float(a)], b=[float(b)], t_ref_K=t_ref)


def virial_pressure_bar(model, data: dict, frames, temperature_K: float, rel_dv: float = 2e-3) -> np.ndarray:
    """The CG model's pressure on mapped frames: N k T / V plus the virial −dU/dV by a central difference of the
    model energy under uniform scaling of bead positions and box (volume ± ``rel_dv``). bar, one per frame."""
    frames = np.asarray(frames)
    species, pos, cells = data["species"][frames], data["positions"][frames].astype(np.float64), \
        data["cells"][frames].astype(np.float64)
    volume = np.abs(np.linalg.det(cells))
    energies = []
    for sign in (+1, -1):
        s = (1.0 + sign * rel_dv) ** (1.0 / 3.0)
        e, _ = model.predict(species, (pos * s).astype(np.float32), (cells * s).astype(np.float32))
        energies.append(np.asarray(e, dtype=np.float64))
    p_virial = -(energies[0] - energies[1]) / (2.0 * rel_dv * volume)
    kt = units.KB_KJ_MOL_K * temperature_K * units.KCAL_PER_KJ
    n = species.shape[1]
    return (n * kt / volume + p_virial) * units.BAR_PER_KCAL_MOL_A3


def fit_for_model(checkpoint_dir, states: list[dict], cg_nvt_summaries: list, reference_thermos: list,
                  datasets: list, settings: dict, out_json, label: str) -> dict:
    """Stage fit_volume_term: fit a model's volume term on its training states and save it beside the model.

    ``states``: per training state {state, temperature_K, pressure_bar (None at NVT states)}; the other lists are
    aligned with it. The all-atom target is the set pressure at NPT states and the measured all-atom pressure at
    NVT states. A state whose
    uncorrected NVT run was unstable gives no pressure and is skipped; no usable state at all makes the model
    uncorrectable (recorded with the reason; its corrected cells are reported as such, the study goes on)."""
    import pandas as pd

    from .cg_md import block_average
    from .io import read_json, write_json
    from .training import load_dataset

    points, skipped, mapped = [], {}, {}
    model = None
    for st, cg_path, thermo_path, data_path in zip(states, cg_nvt_summaries, reference_thermos, datasets):
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
        points.append({"state": st["state"], "temperature_K": st["temperature_K"], "rho_A3": n_beads / volume,
                       "pressure_aa_bar": p_aa, "pressure_aa_measured_bar": p_aa_measured,
                       "pressure_cg_bar": cg["mean_pressure_bar"],
                       "pressure_gap_bar": p_aa - cg["mean_pressure_bar"],
                       "stderr_bar": float(np.hypot(p_aa_err, cg["mean_pressure_stderr_bar"]))})
    out = {"label": label, "points": points, "skipped_states": skipped, "mapped_frame_estimate": mapped}
    try:
        term = fit_volume_term(points)
        out.update({"correctable": True, "term": term.to_dict(),
                    "pressure_shift_at_training_states_bar": {p["state"]: float(term.pressure_shift_bar(p["rho_A3"], p["temperature_K"]))
                                                              for p in points}})
    except ValueError as exc:
        out.update({"correctable": False, "reason": str(exc)})
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
