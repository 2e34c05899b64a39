"""Stage fit_volume_term: fit a model's volume term (`cgtransfer.kinds.volume_term`) on its training states
from the CG NVT pressures (and density scans) against the all-atom pressure and compressibility."""

from __future__ import annotations

import numpy as np

from cgtransfer.kinds.volume_term import (corrected_slope_bar_A3, fit_volume_term, pressure_density_slope,
                                          virial_pressure_bar)


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

    from cgtransfer.analysis.statistics import block_average
    from cgtransfer.analysis.statistics import compressibility_per_bar
    from cgtransfer.io import read_json, write_json
    from cgtransfer.dataset import load_dataset, mean_box_A

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
        volume = float(np.prod(mean_box_A(data)))  # the box of the CG NVT run
        rho0 = n_beads / volume
        if settings.get("mapped_frames", 0):
            if model is None:
                from cgtransfer.kinds.registry import load_model

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
