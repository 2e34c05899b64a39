"""Write docs/results.md from the committed result files.

    python docs/make_results.py            # regenerates docs/results.md

Every number in docs/results.md is read here from a file in docs/default_run/ (the summary of one default run of
the workflow, per system) or benchmarks/results/ (the benchmark scripts' JSON); the prose around the numbers is
fixed text in this script and holds no measurement. To document a new run, copy its `results/<system>/summary/`
files into docs/default_run/ (the default system at the top level, the others in a folder named after the system)
and run this script; tests/test_results_doc.py checks that the committed docs/results.md is this script's output.
Only pandas and json: no workflow code is imported.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
RUN_DIR = ROOT / "docs" / "default_run"
BENCH_DIR = ROOT / "benchmarks" / "results"
OUTPUT = ROOT / "docs" / "results.md"

# system, folder under docs/default_run ("" = top level), title, what it is for (fixed prose, no measurements)
SYSTEMS = [
    ("methanol", "", "Methanol, one bead per molecule: the transferability study",
     "The default study: OPLS-AA liquid methanol mapped to one bead per molecule at its centre of mass, liquid "
     "states at 1 bar (NPT references) and hotter states at a fixed density (NVT), in independent replicates of "
     "the whole chain. Every state gets a single-state HIP-NN-TS model (`hipnn_<state>`) and its MS-CG twin "
     "(`mscg_<state>`), run at every state; every state is also held out once by a leave-one-out model of each "
     "kind (`hipnn_loo_<state>`, `mscg_loo_<state>`: trained on the four other states with a quarter of their "
     "frames each, as many as a single-state model), run at the held-out state only. CG runs are NVT in the "
     "reference's mean box (structure, pressure); the CG densities (volume term) and the all-state and "
     "temperature-aware models are add-on configs. The tables below are the first replicate's; the study's "
     "answer over all replicates is the verdict section."),
    ("argon", "argon", "Argon: the known answer",
     "Lennard-Jones argon with identity mapping (one bead per atom). Here the exact CG force is the pair force "
     "of the force field, so MS-CG must recover it, the volume term must equal the long-range tail pressure "
     "that force matching cannot see, and every model's structure must match the reference. The validation "
     "stage scores each of these as a check with its criterion."),
    ("water", "water", "Water: many-body structure",
     "TIP3P-FB water, one bead per molecule. A pair potential cannot hold the tetrahedral first shell; a "
     "many-body network can. The three-body angle distribution of the first shell is the decisive table."),
    ("methanol_2bead", "methanol_2bead", "Methanol with two beads: molecules of several beads",
     "The default study's own all-atom methanol runs mapped a second way: a CH3 bead and an OH bead per "
     "molecule, two bead types, three bead-type pairs, one intramolecular bond (a Boltzmann-inverted harmonic "
     "prior, intramolecular pairs excluded from the nonbonded model). No volume term in this run."),
    ("argon_water", "argon_water", "Argon in water: a mixture",
     "Argon atoms dissolved in TIP3P-FB water at one state: two molecule types packed in one box, two bead "
     "types (AR, W), three pair RDFs and three MS-CG pair forces. No volume term in this run."),
]

FIGURE_CAPTIONS = {
    "transferability.png": "heatmaps of the model × state tables (held-out force RMSE, RDF error, NPT density "
                           "error, pressure error, compressibility ratio), training states boxed",
    "rdf_grid.png": "CG and reference RDFs, every model at every state",
    "density_vs_temperature.png": "NPT densities of the reference and of every model against temperature",
    "temperature_transfer.png": "the temperature-aware models beside their temperature-blind, MS-CG and "
                                "single-state comparisons",
    "angles.png": "three-body angle distributions of the first shell per state",
    "validation.png": "the known-answer checks (pair force, tail pressure, densities)",
    "dynamics.png": "self-diffusion of the reference and the CG models, and the time-scaling factor α",
    "learned.png": "what the network learned: its effective pair potential beside MS-CG's, its many-body share "
                   "and its three-body energy",
}

DASH = "–"


# ------------------------------------------------------------------------------------------------ formatting
def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def num(v, digits: int = 2, sign: bool = False) -> str:
    """A number from a file, rounded for display; missing values are a dash."""
    if _missing(v):
        return DASH
    text = f"{float(v):+.{digits}f}" if sign else f"{float(v):.{digits}f}"
    return f"{0.0:.{digits}f}" if float(text) == 0 else text


def pm(v, se, digits: int = 2, sign: bool = False) -> str:
    if _missing(v):
        return DASH
    return num(v, digits, sign) if _missing(se) else f"{num(v, digits, sign)} ± {num(se, digits)}"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out + [""]


def code(text: str) -> list[str]:
    return ["```", text.rstrip("\n"), "```", ""]


# ------------------------------------------------------------------------------------------------ inputs
def read_system(folder: str, run_dir: Path) -> dict:
    d = run_dir / folder if folder else run_dir
    data = {"dir": d, "metrics": pd.read_csv(d / "metrics.csv"), "headline_txt": (d / "headline.txt").read_text()}
    if (d / "headline.json").exists():
        data["headline"] = json.loads((d / "headline.json").read_text())
    if (d / "validation.json").exists():
        data["validation"] = json.loads((d / "validation.json").read_text())
    if (d / "temperature_transfer.csv").exists():
        data["temperature"] = pd.read_csv(d / "temperature_transfer.csv")
    return data


def states_of(m: pd.DataFrame) -> list[str]:
    first = m.drop_duplicates("state").sort_values("temperature_K")
    return list(first["state"])


def state_label(m: pd.DataFrame, state: str) -> str:
    row = m[m["state"] == state].iloc[0]
    return f"{state} ({row['ensemble']})"


def cell(m: pd.DataFrame, model: str, state: str) -> pd.Series | None:
    rows = m[(m["model"] == model) & (m["state"] == state)]
    return None if rows.empty else rows.iloc[0]


def base_models(m: pd.DataFrame) -> list[str]:
    return [x for x in dict.fromkeys(m["model"]) if not x.endswith("_vol")]


def all_models(m: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(m["model"]))


def same_as_base(m: pd.DataFrame, columns: list[str]) -> tuple[list[str], list[str]]:
    """Volume-corrected models whose values in `columns` equal their base model's in every cell, and the others."""
    same, differ = [], []
    for model in all_models(m):
        if not model.endswith("_vol") or model[:-4] not in set(m["model"]):
            continue
        a = m[m["model"] == model].set_index("state")[columns].sort_index()
        b = m[m["model"] == model[:-4]].set_index("state")[columns].sort_index()
        (same if a.equals(b) else differ).append(model)
    return same, differ


# ------------------------------------------------------------------------------------------------ tables
def matrix(m: pd.DataFrame, models: list[str], value: str, stderr: str | None, digits: int = 2,
           sign: bool = False, states: list[str] | None = None, flag=None) -> list[str]:
    """Model × state table of one metric (value ± standard error); bold: the model was trained at that state;
    `flag(row)` may return a suffix for a cell (e.g. a run that is still drifting)."""
    states = states or states_of(m)
    rows = []
    for model in models:
        r = [f"`{model}`"]
        for s in states:
            c = cell(m, model, s)
            if c is None:
                r.append(DASH)
                continue
            text = pm(c[value], c[stderr] if stderr else None, digits, sign)
            if text != DASH and bool(c["in_training"]):
                text = f"**{text}**"
            if not bool(c["stable"]):
                text += " (unstable)"
            if flag is not None and text != DASH:
                text += flag(c)
            r.append(text)
        rows.append(r)
    return table(["model"] + [state_label(m, s) for s in states], rows)


def has(m: pd.DataFrame, column: str) -> bool:
    return column in m and m[column].notna().any()


def reference_table(m: pd.DataFrame) -> list[str]:
    rows = []
    for s in states_of(m):
        c = m[m["state"] == s].iloc[0]
        rows.append([s, str(c["ensemble"]), num(c["temperature_K"], 0),
                     DASH if _missing(c["pressure_bar"]) else num(c["pressure_bar"], 0),
                     (num(c["density_aa_g_cm3"], 4) + " (set)") if c["ensemble"] == "NVT" else
                     pm(c["density_aa_g_cm3"], c["density_aa_stderr_g_cm3"], 4),
                     pm(c["pressure_aa_measured_bar"], c["pressure_aa_measured_stderr_bar"], 0),
                     DASH if _missing(c["compressibility_aa_per_bar"]) else
                     pm(c["compressibility_aa_per_bar"] * 1e5, c["compressibility_aa_stderr_per_bar"] * 1e5, 1),
                     num(c["rdf_noise_floor_mae"], 4), num(c["first_peak_r_A_ref"], 2),
                     num(c["first_peak_g_ref"], 2)])
    return table(["state", "ensemble", "T (K)", "P set (bar)", "density (g/cm³)", "measured P (bar)",
                  "κ_T (10⁻⁵/bar)", "RDF noise floor", "first peak r (Å)", "first peak g"], rows)


def headline_table(h: dict) -> list[str]:
    """The methanol headline comparisons from headline.json, as stored (ratio < 1 favours the first)."""
    def row(name, r):
        if not r or not r.get("n_cells"):
            return [name, DASH, DASH, "0", DASH, DASH]
        lo, hi = r["ratio_95ci"]
        return [name, num(r["geometric_mean_ratio"]), f"{num(lo)}–{num(hi)}", str(r["n_cells"]),
                "yes" if r["resolved"] else "no",
                f"{r['cells_a_better']} / {r['cells_b_better']} / {r['cells_not_significant']}"]

    rows = [row("HIP-NN-TS / MS-CG, single-state twins at held-out states", h.get("hipnn_vs_mscg"))]
    for kind, r in h.get("single_heldout_vs_trained", {}).items():
        if r.get("n_cells"):
            rows.append(row(f"`{kind}` single-state: held out / at its training state", r))
    for kind, r in h.get("multi_vs_single", {}).items():
        if r.get("n_cells"):
            rows.append(row(f"`{kind}` all-state model / single-state models trained elsewhere", r))
    return table(["comparison", "geometric-mean ratio", "95 % interval", "cells", "resolved",
                  "significant cells: first better / second better / neither"], rows)


def volume_summary_table(h: dict) -> list[str]:
    rows = []
    for group, where in h.get("volume_term", {}).items():
        for label, r in where.items():
            if not r.get("n_cells"):
                continue
            rows.append([group, label.replace("_", "-"), str(r["n_cells"]), num(r["mean_abs_density_error_pct"], 1),
                         num(r["max_abs_density_error_pct"], 1), f"{r['cells_within_2pct']}/{r['n_cells']}",
                         f"{r['cells_within_4pct']}/{r['n_cells']}", num(r["median_compressibility_ratio"], 2),
                         str(r["cells_not_converged"])])
    return table(["models", "states", "NPT cells", "mean abs. density error (%)", "max (%)", "within 2 %",
                  "within 4 %", "median κ_T CG/AA", "still drifting"], rows)


def temperature_tables(t: pd.DataFrame) -> list[str]:
    names = {"rdf_error_over_noise": ("RDF error (noise floors)", 2, False),
             "density_error_pct": ("NPT density error of the `_vol` model (%)", 2, True),
             "force_rmse_kcal_mol_A": ("held-out force RMSE (kcal/mol/Å)", 2, False),
             "energy_error_kcal_mol_per_molecule": ("mean U(R) − all-atom energy (kcal/mol per molecule)", 3, True)}
    roles = ["temperature-aware", "temperature-blind", "MS-CG", "single-state"]
    out = []
    for aware in dict.fromkeys(t["aware_model"]):
        a = t[t["aware_model"] == aware]
        models = {role: sorted({x[:-4] if x.endswith("_vol") else x for x in a[a["role"] == role]["model"]})
                  for role in roles}
        header = ["state", "where", "metric"] + [
            f"{role} (`{models[role][0]}`)" if len(models[role]) == 1 else f"{role} (trained at that state)"
            for role in roles]
        rows = []
        for state in dict.fromkeys(a.sort_values("temperature_K")["state"]):
            s = a[a["state"] == state]
            for metric, (label, digits, sign) in names.items():
                cells = []
                for role in roles:
                    r = s[(s["role"] == role) & (s["metric"] == metric)]
                    cells.append(DASH if r.empty else pm(r.iloc[0]["value"], r.iloc[0]["stderr"], digits, sign))
                if all(c == DASH for c in cells):
                    continue
                rows.append([state, str(s.iloc[0]["where"]), label] + cells)
        out += [f"**`{aware}`**", ""] + table(header, rows)
    return out


def model_state_rows(frame: pd.DataFrame, key: str, states: list[str], text, label: str, flag=None) -> list[list[str]]:
    """One row per model (column `key`, in file order) and a cell per state: `text(row)`, bold at a training state,
    then `flag(row)`'s suffix; a dash where the model has no row at that state."""
    rows = []
    for model, g in frame.groupby(key, sort=False):
        r = [label.format(model)]
        for st in states:
            c = g[g["state"] == st]
            if c.empty:
                r.append(DASH)
                continue
            c = c.iloc[0]
            cell = text(c)
            if cell != DASH and str(c["in_training"]) == "True":
                cell = f"**{cell}**"
            r.append(cell + (flag(c) if flag is not None else ""))
        rows.append(r)
    return rows


def learned_section(d: Path, link: str) -> list[str]:
    """What the network learned (rules learned, learned_summary): learned.csv and learned_trends.json."""
    t = pd.read_csv(d / "learned.csv")
    if t.empty:
        return []
    pair = str(t["pair"].iloc[0])
    first = t[t["pair"] == pair]
    trends = json.loads((d / "learned_trends.json").read_text()) if (d / "learned_trends.json").exists() else {}
    out = ["### What the network learned", "",
           f"From [`learned.csv`]({link}/learned.csv) (rule `learned_summary`; pair `{pair}`): each HIP-NN-TS model's "
           "effective pair potential (the energy of two isolated beads) beside the MS-CG table fitted on the same "
           "frames at its first training state, and, per state, how much of the mapped force the network explains "
           "(held-out R²) against a pairwise MS-CG fit to that state, and the share of the network's own force that "
           "no pair potential represents (1 − R² of its pair projection).", ""]
    rows = []
    for model, g in first.groupby("model", sort=False):
        own = g[g["in_training"].astype(str) == "True"]
        c = (own if not own.empty else g).sort_values("temperature_K").iloc[0]
        rows.append([f"`{model}`", num(c["training_T_K"], 0), f"{num(c['well_position_A'], 2)} / "
                     f"{num(c['well_depth_kcal_mol'], 3)}", f"{num(c['mscg_well_position_A'], 2)} / "
                     f"{num(c['mscg_well_depth_kcal_mol'], 3)}", num(c["contact_A"], 2), num(c["mscg_contact_A"], 2),
                     num(c["effective_vs_mscg_relative"], 2), num(c["projected_vs_mscg_rms_kcal_mol_A"], 3)])
    out += table(["model", "mean training T (K)", "well r (Å) / depth (kcal/mol)", "MS-CG well r / depth",
                  "contact (Å)", "MS-CG contact (Å)", "isolated-pair force vs MS-CG (RMS, relative)",
                  "in-liquid pair projection vs MS-CG (RMS, kcal/mol/Å)"], rows)
    states = list(dict.fromkeys(first.sort_values("temperature_K")["state"]))

    def grid(column: str, digits: int) -> list[str]:
        body = model_state_rows(first, "model", states, lambda c: num(c[column], digits), "`{}`")
        return table(["model"] + states, body)

    out += ["Held-out force R² of the network (bold: a training state); the pairwise MS-CG fit to the same state's "
            "frames reaches, per state: " + ", ".join(
                f"{st} {num(first[first['state'] == st]['mscg_state_test_r2'].iloc[0], 3)}" for st in states) + ".",
            ""]
    out += grid("network_test_r2", 3)
    out += ["Many-body share of the network's force (1 − R² of its own pair projection):", ""]
    out += grid("many_body_share", 3)
    moves = trends.get("with_training_temperature", {})
    if moves:
        rows = []
        for col, v in moves.items():
            rho = {k: x for k, x in (v.get("spearman_by_state") or {}).items() if x is not None}
            if rho:
                rows.append([col.replace("_", " "), ", ".join(f"{k} {num(x, 2, True)}" for k, x in rho.items())])
        if rows:
            out += ["With the training temperature ([`learned_trends.json`]"
                    f"({link}/learned_trends.json): Spearman ρ over the models of the mean training temperature "
                    "against each quantity, evaluated at each state):", ""]
            out += table(["quantity", "ρ by state"], rows)
        rho = trends.get("rdf_error_vs_mscg_distance")
        out += [f"Does a model's RDF error follow how far its effective pair potential sits from the target "
                f"state's MS-CG table? Spearman ρ over {trends.get('n_cells', 0)} model × state cells: "
                f"{num(rho, 2, True)} (effective potential), "
                f"{num(trends.get('rdf_error_vs_projected_mscg_distance'), 2, True)} (its pair projection).", ""]
    return out


def dynamics_section(d: Path, link: str, source: str = "") -> list[str]:
    """Dynamics and backmapping (rule dynamics): diffusion.csv, alpha_transfer.csv, backmap.csv."""
    dif = pd.read_csv(d / "diffusion.csv")
    out = ["### Dynamics: self-diffusion and the CG time scale", "",
           f"From [`diffusion.csv`]({link}/diffusion.csv) (rule `dynamics`, weak-friction NVT segments; "
           "which models ran: the `dynamics.models` of that run" + (f"; {source}" if source else "") + "): "
           "D from the bead centres' MSD (10⁻⁹ m²/s, ± block "
           "standard error), and α = D_CG / D_AA. † the segment's mean temperature left its tolerance (its α is not "
           "used for transfer); ‡ the MSD window was not diffusive.", ""]
    states = list(dict.fromkeys(dif.sort_values("temperature_K")["state"]))
    ref = dif[dif["source"] == "reference"]
    rows = [["all-atom D"] + [pm(ref[ref["state"] == st]["D_m2_s"].iloc[0] * 1e9,
                                 ref[ref["state"] == st]["D_stderr_m2_s"].iloc[0] * 1e9, 2)
                              + (" ‡" if str(ref[ref["state"] == st]["diffusive"].iloc[0]) == "False" else "")
                              if (ref["state"] == st).any() else DASH for st in states]]
    rows += model_state_rows(dif[dif["source"] != "reference"], "source", states,
                             lambda c: pm(c["alpha"], c["alpha_stderr"], 2), "`{}` α",
                             lambda c: (" †" if str(c["temperature_ok"]) == "False" else "")
                             + (" ‡" if str(c["diffusive"]) == "False" else ""))
    out += table([""] + states, rows)
    if (d / "alpha_transfer.csv").exists():
        tr = pd.read_csv(d / "alpha_transfer.csv")
        if not tr.empty:
            rows = [[f"`{r.model}`", r.state, pm(r.alpha_training, r.alpha_training_stderr, 2),
                     pm(r.alpha, r.alpha_stderr, 2), pm(r.ratio_to_training, r.ratio_stderr, 2),
                     "yes" if str(r.transfers_within_2se) == "True" else "no"] for r in tr.itertuples()]
            out += ["Does a single-state model's α transfer? α at each held-out state against α at the training "
                    f"state ([`alpha_transfer.csv`]({link}/alpha_transfer.csv)):", ""]
            out += table(["model", "state", "α at training state", "α here", "ratio", "within 2 SE"], rows)
    if (d / "backmap.csv").exists():
        bm = pd.read_csv(d / "backmap.csv")
        rows = [[r.label.replace("backmap ", ""), num(r.max_bead_deviation_A, 3), num(r.density_deviation_pct, 2, True),
                 num(r.rdf_mae, 3), num(r.reference_rdf_noise_floor, 3), "pass" if str(r.passed) == "True" else "FAIL"]
                for r in bm.itertuples()]
        out += [f"Backmapping ([`backmap.csv`]({link}/backmap.csv)): CG frames turned into all-atom liquids, bead "
                "centres kept before release (Å), density after the short all-atom relaxation against the reference "
                "(%), and the atom-level RDF's mean absolute difference against the reference's own noise floor:", ""]
        out += table(["frame", "max bead deviation (Å)", "density (%)", "RDF MAE", "reference noise floor", ""], rows)
    return out


def validation_table(v: dict) -> list[str]:
    rows = []
    for c in v["checks"]:
        value = c["value"]
        text = DASH if _missing(value) else (f"{value:.3g}" if isinstance(value, float) else str(value))
        rows.append([c["check"], text, c["criterion"], "pass" if c["passed"] else "**fail**"])
    return table(["check", "value", "criterion", "result"], rows)


def figures(d: Path, link_prefix: str) -> list[str]:
    out = []
    for png in sorted(d.glob("*.png")):
        caption = FIGURE_CAPTIONS.get(png.name, "")
        out.append(f"* [`{png.name}`]({link_prefix}/{png.name})" + (f": {caption}" if caption else ""))
    return out + [""]


# ------------------------------------------------------------------------------------------------ sections
def system_section(name: str, folder: str, title: str, about: str, data: dict) -> list[str]:
    m = data["metrics"]
    link = "default_run" + (f"/{folder}" if folder else "")
    out = [f"## {title}", "", about, "",
           f"Files: [`docs/{link}/`]({link}/) (system `{name}`; the whole table is "
           f"[`metrics.csv`]({link}/metrics.csv)).", ""]

    out += ["### Headline", ""]
    if "headline" in data:
        out += ["From [`headline.json`](default_run/headline.json), metric "
                f"`{data['headline']['metric']}`:", ""]
        out += headline_table(data["headline"])
        out += ["NPT densities with and without the volume term (from the same file):", ""]
        out += volume_summary_table(data["headline"])
    out += [f"[`headline.txt`]({link}/headline.txt), as the workflow wrote it:", ""]
    out += code(data["headline_txt"])

    if "validation" in data:
        v = data["validation"]
        out += ["### Known-answer checks", "",
                f"[`validation.json`]({link}/validation.json): **{v['n_passed']} of {v['n_checks']} checks "
                "pass**. Value units: relative error for forces, bar for the volume term, Å for the RDF peak, "
                "noise floors for RDFs, % for densities.", ""]
        out += validation_table(v)

    out += ["### All-atom reference", "", "Per state, from the reference runs as recorded with every cell "
            "(density ± block standard error; at NVT states the set density):", ""]
    out += reference_table(m)

    out += ["### Structure: RDF error in reference noise floors", ""]
    same, differ = same_as_base(m, ["rdf_mae_over_noise", "rdf_mae_over_noise_stderr"])
    if same:
        out += [f"Volume-corrected models have their base model's fixed-volume structure; in the file their RDF "
                f"errors equal the base model's for {len(same)} of {len(same) + len(differ)} `_vol` models, so "
                "only base models are listed" + (f", plus {', '.join(f'`{x}`' for x in differ)}" if differ else "")
                + ".", ""]
    out += matrix(m, base_models(m) + differ, "rdf_mae_over_noise", "rdf_mae_over_noise_stderr")

    if has(m, "angle_error_over_noise"):
        out += ["### Three-body angle distribution error in reference noise floors", ""]
        out += matrix(m, base_models(m), "angle_error_over_noise", "angle_error_over_noise_stderr")
    if has(m, "bond_error_over_noise"):
        out += ["### Intramolecular bond distribution error in reference noise floors", ""]
        out += matrix(m, base_models(m), "bond_error_over_noise", "bond_error_over_noise_stderr")

    npt = [s for s in states_of(m) if (m[m["state"] == s]["ensemble"] == "NPT").any()]
    if npt and has(m, "density_error_pct"):
        out += ["### NPT density against the reference", "",
                "CG NPT density error in % of the all-atom density (± block standard error); "
                "† still drifting at the end of the run (not converged):", ""]
        out += matrix(m, all_models(m), "density_error_pct", "density_error_pct_stderr", 2, True, npt,
                      flag=lambda c: " †" if str(c["density_converged"]) == "False" else "")

    if has(m, "pressure_error_bar"):
        out += ["### Pressure at the all-atom density", "",
                "CG NVT pressure minus all-atom pressure in the reference's mean box (bar, ± standard error):", ""]
        out += matrix(m, all_models(m), "pressure_error_bar", "pressure_error_stderr_bar", 0, True)

    out += ["### Held-out force errors", ""]
    fsame, fdiffer = same_as_base(m, ["force_rmse_kcal_mol_A", "force_r2"])
    out += ["Force RMSE (kcal/mol/Å, ± standard error) on the held-out test block of each state; a volume term "
            "exerts no force" + (f", and the file's `_vol` rows equal their base model's ({len(fsame)} models)"
                                 if fsame else "") + ":", ""]
    out += matrix(m, base_models(m) + fdiffer, "force_rmse_kcal_mol_A", "force_rmse_stderr_kcal_mol_A")
    out += ["R² of the held-out forces:", ""]
    out += matrix(m, base_models(m) + fdiffer, "force_r2", None, 3)

    if "temperature" in data:
        out += ["### Knowing the temperature", "",
                "From [`temperature_transfer.csv`](default_run/temperature_transfer.csv): each temperature-aware "
                "model beside the temperature-blind HIP-NN-TS and the MS-CG model trained on the same states and "
                "the single-state HIP-NN-TS trained at each state; `where` says whether the state is a training "
                "state, between the training temperatures (interpolation) or beyond them (extrapolation).", ""]
        out += temperature_tables(data["temperature"])

    if (data["dir"] / "learned.csv").exists():
        out += learned_section(data["dir"], link)
    if (data["dir"] / "diffusion.csv").exists():
        source = data["dir"] / "dynamics_about.json"  # the add-on run the dynamics files come from
        out += dynamics_section(data["dir"], link, json.loads(source.read_text())["what"] if source.exists() else "")

    out += ["### Figures", ""] + figures(data["dir"], link)
    return out


def benchmark_section(bench_dir: Path) -> list[str]:
    out = ["## Benchmarks", "",
           "Measured by the scripts in `benchmarks/` and stored in `benchmarks/results/` (one machine, one run "
           "each; compare ratios across machines, not seconds). These files are independent of the default run "
           "above.", ""]
    speed_file = bench_dir / "speed.json"
    if speed_file.exists():
        s = json.loads(speed_file.read_text())
        aa = s["aa_geometric"]["ns_per_day"]
        entries = [("all-atom, as the workflow builds it (hydrogen mass repartitioning)", "aa_geometric"),
                   ("all-atom, true masses (the earlier default)", "aa_geometric_true_masses"),
                   ("all-atom, LJ as OpenMM type tables", "aa_geometric_type_table"),
                   ("all-atom, plain Lorentz-Berthelot (speed reference only)", "aa_lorentz_berthelot"),
                   ("CG NVT, HIP-NN-TS as one PythonForce", "cg_hipnn_nvt"),
                   ("CG NPT, HIP-NN-TS as one PythonForce", "cg_hipnn_npt"),
                   ("CG NVT, HIP-NN-TS as the workflow runs it (multiple time step)", "cg_hipnn_fast_nvt"),
                   ("CG NPT, HIP-NN-TS as the workflow runs it", "cg_hipnn_fast_npt"),
                   ("CG NVT, HIP-NN-TS, shorter outer step (the earlier default)", "cg_hipnn_fast_short_nvt"),
                   ("CG NPT, HIP-NN-TS, shorter outer step (the earlier default)", "cg_hipnn_fast_short_npt"),
                   ("CG NVT, HIP-NN-TS as the workflow runs it, on the all-atom run's cores", "cg_hipnn_fast_nvt_2threads"),
                   ("CG NVT, MS-CG as the workflow runs it (spline polynomials)", "cg_mscg_nvt"),
                   ("CG NPT, MS-CG as the workflow runs it", "cg_mscg_npt"),
                   ("CG NVT, MS-CG as the workflow runs it, on the all-atom run's cores", "cg_mscg_nvt_2threads"),
                   ("CG NVT, MS-CG as a table of U (the earlier form)", "cg_mscg_table_nvt"),
                   ("CG NVT, MS-CG, shorter timestep (the earlier default)", "cg_mscg_short_nvt"),
                   ("CG NPT, MS-CG, shorter timestep (the earlier default)", "cg_mscg_short_npt")]
        rows = [[label, str(s[k].get("threads", s["cg_and_training_threads"] if k.startswith("cg_") else s["aa_threads"])),
                 num(s[k]["timestep_fs"], 0), num(s[k]["ns_per_day"], 1), num(s[k]["ms_per_step"], 2),
                 num(s[k]["ns_per_day"] / aa, 2)] for label, k in entries if k in s]
        out += [f"[`speed.json`](../benchmarks/results/speed.json): system `{s['system']}`, "
                f"{s['n_molecules']} molecules, medians of {s['repeats']} segments; all-atom on "
                f"{s['aa_threads']} threads, CG and training on {s['cg_and_training_threads']}; torch "
                f"{s['torch']}, OpenMM {s['openmm']}.", ""]
        out += table(["what", "threads", "timestep (fs)", "ns/day", "ms/step", "vs all-atom"], rows)
        if "aa_geometric_true_masses" in s:
            out += [f"Against the all-atom model with true masses at {num(s['aa_geometric_true_masses']['timestep_fs'], 0)}"
                    f" fs, the CG runs as the workflow runs them cover {num(s['cg_hipnn_speedup_over_aa_true_masses'], 1)}× "
                    f"(HIP-NN-TS) and {num(s['cg_mscg_speedup_over_aa_true_masses'], 1)}× (MS-CG) its ns/day; hydrogen "
                    f"mass repartitioning makes the all-atom reference itself {num(s['aa_hmr_speedup_over_true_masses'], 2)}× "
                    "faster.", ""]
        tr, fit = s.get("training", {}), s.get("mscg_fit", {})
        if tr:
            out += [f"HIP-NN-TS training: {num(tr['ms_per_frame'], 1)} ms per frame (batch size "
                    f"{tr['batch_size']}, {tr['train_frames']} frames). "
                    + (f"MS-CG fit: {num(fit['wall_s'], 2)} s ({fit['train_frames']} frames, "
                       f"{fit['n_coefficients']} coefficients)." if fit else ""), ""]
        scaling = []
        for key, label in (("cg_hipnn_scaling_nvt", "HIP-NN-TS fast path"),
                           ("cg_hipnn_scaling_nvt_2threads", "HIP-NN-TS fast path, 2 threads"),
                           ("cg_mscg_scaling_nvt", "MS-CG")):
            for r in s.get(key, []):
                scaling.append([label, str(r["n_beads"]), num(r["timestep_fs"], 0), num(r["ms_per_step"], 1),
                                num(r["ns_per_day"], 1),
                                num(r["speedup_over_aa"], 2) if "speedup_over_aa" in r else "–"])
        if scaling:
            out += ["CG step time against the number of beads (NVT, the frame tiled periodically; vs all-atom: "
                    "over the all-atom system of as many molecules, measured up to 4x the default size, "
                    "extrapolated linearly beyond):", ""]
            out += table(["model", "beads", "timestep (fs)", "ms/step", "ns/day", "vs all-atom"], scaling)
    stage_file = bench_dir / "stage_times.json"
    if stage_file.exists():
        st = json.loads(stage_file.read_text())
        rules = st["rules"] if isinstance(st, dict) else st
        elapsed = ""
        if isinstance(st, dict) and st.get("elapsed_s"):
            elapsed = (f" It took {num(st['elapsed_s'] / 60, 0)} min from a fresh clone on 2 cores "
                       f"({num(st['elapsed_s'], 0)} s, the install {num(st['install_s'], 0)} s of it; revision "
                       f"`{st['revision']}`) for {st['jobs']} jobs and {num(st['job_time_total_s'], 0)} s of job time.")
        out += ["[`stage_times.json`](../benchmarks/results/stage_times.json): wall time per rule (summed over its "
                "jobs) from Snakemake's benchmark files of the default run whose files are in `docs/default_run/` "
                "(README command 1 from a fresh clone; a sum over jobs that ran two at a time on 2 cores: CPU "
                "occupancy, not elapsed time)." + elapsed, ""]
        out += rule_times_table(rules)
        if isinstance(st, dict) and st.get("by_model_kind"):
            out += ["Per model kind (the rules with one job per model):", ""] + by_kind_table(st["by_model_kind"])
    equal_file = bench_dir / "stage_times_equal_work.json"
    if equal_file.exists():
        eq = json.loads(equal_file.read_text())
        out += ["[`stage_times_equal_work.json`](../benchmarks/results/stage_times_equal_work.json): the default "
                "study as it was when its time was first measured (one replicate, 24 models with volume terms; "
                "`benchmarks/configs/equal_work.yaml`, run by `benchmarks/equal_work.sh` from a fresh clone) with "
                f"revision {fresh_clone_run(eq)}", ""]
        out += rule_times_table(eq["rules"])
    default_file = bench_dir / "stage_times_default.json"
    if default_file.exists():
        d = json.loads(default_file.read_text())
        out += ["[`stage_times_default.json`](../benchmarks/results/stage_times_default.json): today's default "
                "study (README command 1, run by `benchmarks/fresh_clone_time.sh` from a fresh clone; its results "
                f"are not the ones in `docs/default_run/`) with revision {fresh_clone_run(d)}", ""]
        out += rule_times_table(d["rules"])
        if d.get("by_model_kind"):
            out += ["Per model kind:", ""] + by_kind_table(d["by_model_kind"])
    plan_file = bench_dir / "plan_time.json"
    if plan_file.exists():
        p = json.loads(plan_file.read_text())
        out += [f"[`plan_time.json`](../benchmarks/results/plan_time.json): planning a study of {p['states']} "
                f"states × {p['models']} models ({p['jobs']} jobs, `snakemake -n`) takes "
                f"{num(p['median_s'], 1)} s (median of {p['repeats']}).", ""]
    kernels_file = bench_dir / "kernels.json"
    if kernels_file.exists():
        k = json.loads(kernels_file.read_text())
        rows = [[f"`{name}`", num(v["import_s"], 1), num(v["first_call_s_cold_cache"], 2), num(v["first_call_s"], 2),
                 num(v["median_call_ms"], 1)] for name, v in k["kernels"].items()]
        out += ["[`kernels.json`](../benchmarks/results/kernels.json): hippynn's CPU kernels for one HIP-NN-TS model "
                f"call ({next(iter(k['kernels'].values()))['n_beads']} beads), each in a fresh process as a job starts "
                f"(medians of {k['rounds']} rounds; the first round compiles into an empty cache). `_pytorch_raw` is what "
                "the workflow uses on the CPU (`pytorch`: the same kernels under `torch.compile`):", ""]
        out += table(["kernels", "import (s)", "first call, empty cache (s)", "first call, cache filled (s)",
                      "later calls (ms)"], rows)
    startup_file = bench_dir / "startup.json"
    if startup_file.exists():
        out += startup_section(json.loads(startup_file.read_text()))
    profile_file = bench_dir / "profile_step.json"
    if profile_file.exists():
        out += profile_section(json.loads(profile_file.read_text()))
    for name, section in (("timestep_check.json", timestep_section),
                          ("timestep_check_hipnn.json", timestep_section), ("hmr_check.json", hmr_section),
                          ("learning_curve.json", learning_curve_section)):
        if (bench_dir / name).exists():
            out += section(json.loads((bench_dir / name).read_text()))
    return out


def startup_section(st: dict) -> list[str]:
    """Each rule's job start-up (benchmarks/startup.py), against another revision where it was timed with it."""
    base = st.get("baseline_revision")
    out = ["### Job start-up", "",
           "[`startup.json`](../benchmarks/results/startup.json): what a job of each rule pays before its first "
           f"useful step (a fresh interpreter importing the rule's stage module and model kind; median of "
           f"{st['repeats']}" + (f", revision `{st['revision']}`" if st.get("revision") else "")
           + (f", interleaved with revision `{base}`" if base else "") + "):", ""]
    head = ["rule", "start-up (s)", "torch", "hippynn"]
    if base:
        head += [f"at `{base}` (s)", "speed-up"]
    rows = []
    for r in st["rules"]:
        row = [r["rule"], num(r["median_s"], 2), "yes" if r["torch"] else "no", "yes" if r["hippynn"] else "no"]
        if base:
            row += [num(r["baseline_median_s"], 2), num(r["speedup_over_baseline"], 2) + "×"]
        rows.append(row)
    return out + table(head, rows)


def fresh_clone_run(st: dict) -> str:
    """A timed fresh-clone run (benchmarks/fresh_clone_time.sh's JSON): revision, elapsed and job time."""
    return (f"`{st['revision']}`: {num(st['elapsed_s'] / 60, 0)} min on 2 cores ({num(st['elapsed_s'], 0)} s, the "
            f"install {num(st['install_s'], 0)} s of it) for {st['jobs']} jobs and {num(st['job_time_total_s'], 0)} "
            "s of job time.")


def by_kind_table(rows: list[dict]) -> list[str]:
    """Per model kind of the rules with one job per model (benchmarks/stage_times.py's by_model_kind)."""
    return table(["rule", "kind", "jobs", "total (s)", "mean job (s)"],
                 [[f"`{r['rule']}`", r["kind"], str(r["jobs"]), num(r["total_s"], 0), num(r["mean_s"], 1)]
                  for r in rows])


def rule_times_table(rules: list[dict]) -> list[str]:
    """Per rule of a run (benchmarks/stage_times.py's JSON): jobs, summed and longest job wall time, peak RSS."""
    return table(["rule", "jobs", "total (s)", "longest job (s)", "peak RSS (MB)"],
                 [[f"`{r['rule']}`", str(r["jobs"]), num(r["total_s"], 0), num(r["longest_s"], 1),
                   num(r["max_rss_mb"], 0)] for r in rules])


def timestep_section(tc: dict) -> list[str]:
    """Trained models at several timesteps against their smallest (benchmarks/timestep_check.py): MS-CG's plain
    step, or (``mts_inner_timestep_fs`` set) HIP-NN-TS's outer step of the multiple-time-step path."""
    st = tc["settings"]
    mts = st.get("mts_inner_timestep_fs")
    rows = []
    for case in tc["cases"]:
        for v in case["timesteps"]:
            c = v.get("comparison", {})
            rows.append([f"{num(case['temperature_K'], 0)} K", num(v["timestep_fs"], 0),
                         pm(v["temperature_K"]["mean"], v["temperature_K"]["stderr"], 2),
                         pm(v["pressure_bar"]["mean"], v["pressure_bar"]["stderr"], 1),
                         pm(v["potential_energy_kJ_mol"]["mean"], v["potential_energy_kJ_mol"]["stderr"], 2),
                         num(c["rdf"]["chi2_per_bin"], 2) + f" (≤ {num(c['rdf']['chi2_limit'], 2)})" if c else "–",
                         num(v["ns_per_day"], 0),
                         ("pass" if c.get("passes") else "FAIL") if c else "reference"])
    name = "timestep_check_hipnn.json" if mts else "timestep_check.json"
    case0 = tc["cases"][0]
    if mts:
        head = [f"### HIP-NN-TS outer step", "",
                f"[`{name}`](../benchmarks/results/{name}): a HIP-NN-TS model trained with the default settings "
                f"({case0['n_beads']} beads), NVT, {st['seeds']} seeds × {num(st['production_ps'], 0)} ps per "
                f"step: the whole model every 1 fs (the reference) against the workflow's multiple-time-step path "
                f"(the prior natively every {num(mts, 0)} fs, the network every outer step). Largest passing outer "
                f"step: {num(case0['largest_passing_timestep_fs'], 0)} fs (the default's is 10 fs). Speeds were "
                "measured beside other jobs: use speed.json for ratios.", ""]
    else:
        head = [f"### MS-CG timestep", "",
                f"[`{name}`](../benchmarks/results/{name}): trained MS-CG models of the tiny "
                f"test config ({case0['n_beads']} beads), NVT, {st['seeds']} seeds × {num(st['production_ps'], 0)} "
                "ps per timestep, each against the smallest step: kinetic temperature, pressure and potential energy "
                f"within {num(st['z_max'], 0)} combined standard errors and the RDF's χ² per bin within its limit. "
                f"Largest passing timestep: {num(tc['largest_passing_timestep_fs'], 0)} fs (the default stays 2 fs "
                "until the default study is rerun with a longer one).", ""]
    return head + table(["state", "step (fs)", "T (K)", "P (bar)", "U (kJ/mol)", "RDF χ²/bin", "ns/day",
                         "verdict"], rows)


def hmr_section(h: dict) -> list[str]:
    """All-atom reference at 2 fs with true masses against 4 fs with hydrogen mass repartitioning."""
    st, cmp = h["settings"], h["comparison"]
    rows = [[name, num(v["timestep_fs"], 0), "true" if v["hydrogen_mass_amu"] is None else num(v["hydrogen_mass_amu"], 0),
             pm(v["density_g_cm3"]["mean"], v["density_g_cm3"]["stderr"], 4),
             pm(v["rms_bead_force_kcal_mol_A"]["mean"], v["rms_bead_force_kcal_mol_A"]["stderr"], 3),
             pm(v["temperature_K"]["mean"], v["temperature_K"]["stderr"], 1), num(v["production_ns_per_day"], 1)]
            for name, v in h["variants"].items()]
    return ["### Hydrogen mass repartitioning of the all-atom reference", "",
            f"[`hmr_check.json`](../benchmarks/results/hmr_check.json): {st['molecules']} methanol, NPT "
            f"{num(st['temperature'], 0)} K, {num(st['production_ps'], 0)} ps each (machine shared: ns/day indicative). "
            f"Density z = {num(cmp['density_g_cm3']['z'], 1)}, RMS mapped bead force z = "
            f"{num(cmp['rms_bead_force_kcal_mol_A']['z'], 1)}, mapped RDF χ²/bin {num(cmp['rdf']['chi2_per_bin'], 2)} "
            f"(limit {num(cmp['rdf']['chi2_limit'], 2)}); speed-up {num(cmp['speedup'], 2)}×. "
            "`reference_md.hydrogen_mass_amu` is an option, not the default: the check is short and the force "
            "difference sits at about 2 standard errors.", ""] + \
        table(["variant", "timestep (fs)", "H mass (amu)", "density (g/cm³)", "RMS bead force (kcal/mol/Å)", "T (K)",
               "ns/day"], rows)


def learning_curve_section(lc: dict) -> list[str]:
    """Held-out force RMSE against training budget (benchmarks/learning_curve.py)."""
    rows = [[p["kind"], str(p["train_frames_per_state"]), "–" if p["max_epochs"] is None else str(p["max_epochs"]),
             pm(p["rmse_mean"], p["rmse_seed_sd"], 4), str(p.get("n_seeds", "–")), num(p.get("cpu_per_fit_s"), 0),
             "**default**" if p.get("is_default") else ""] for p in lc["points"]]
    out = ["### Is the training budget adequate? (learning curve)", "",
           f"[`learning_curve.json`](../benchmarks/results/learning_curve.json): {lc['system']} at "
           f"{', '.join(lc['states'])}, {lc['beads'][0]} beads, held-out (test block) force RMSE in kcal/mol/Å, mean "
           f"± seed SD over {len(lc['seeds'])} training seeds (MS-CG is deterministic).", ""]
    out += table(["kind", "train frames / state", "max epochs", "held-out RMSE", "seeds", "CPU s / fit", ""], rows)
    for kind, v in lc["verdicts"].items():
        out += [f"* {kind}: {v['verdict']} (largest budget against the default: {num(v['rmse_change_percent'], 2, True)} "
                f"% held-out RMSE, {num(v['change_in_se'], 1, True)} standard errors of the difference).", ""]
    return out


PROFILE_COMPONENTS = [
    ("pair_search", "pair search (hippynn pair finder)"),
    ("graph_construction", "graph construction (index modules, graph bookkeeping)"),
    ("network_forward", "network forward (HIP-NN-TS and energy head)"),
    ("backward_forces", "backward pass for the forces (autograd)"),
    ("transfers_and_checks", "State → numpy → tensor and back, checks"),
    ("openmm_native", "OpenMM native (prior, integrator, callback call)"),
]
PROTOCOL_COMPONENTS = [
    ("stepping", "stepping (the step above)"),
    ("thermo_reporter_observables", "thermo reporter: extra observables (pressure, closest pair)"),
    ("thermo_reporter_rest", "thermo reporter: the rest"),
    ("dcd_writer", "trajectory writer"),
    ("state_handover", "State hand-over to the reporters"),
    ("checkpoints_and_rest", "checkpoint and output bookkeeping"),
]


def profile_section(pr: dict) -> list[str]:
    """The profile of one CG step of each kind (benchmarks/profile_step.py)."""
    h, m, aa = pr["hipnn"], pr["mscg"], pr.get("all_atom")
    out = ["### Where a CG step spends its time", "",
           f"[`profile_step.json`](../benchmarks/results/profile_step.json): one NVT run of each kind built as the "
           f"`cg_md` stage builds it ({pr['n_beads']} beads, {pr['threads']} thread"
           f"{'' if pr['threads'] == 1 else 's'}, settings of "
           f"`{pr['config']}`), profiled by function; shares are medians of {pr['repeats']} repeats, ms/step the "
           "same steps without the profiler. HIP-NN-TS per outer step of the "
           f"`{h['integrator']}` ({num(h['outer_timestep_fs'], 0)} fs, one network evaluation):", ""]
    rows = [[label, num(100.0 * h["fractions"][k], 1) + " %", num(h["ms_per_step_by_component"][k], 2)]
            for k, label in PROFILE_COMPONENTS if k in h["fractions"]]
    rows.append(["**whole step**", "100 %", num(h["ms_per_step"], 2)])
    out += table(["component", "share of step", "ms per step"], rows)
    out += [f"MS-CG (`{m['integrator']}`, {num(m['timestep_fs'], 0)} fs): the step is OpenMM's native work alone, "
            f"{num(m['ms_per_step'], 2)} ms per step. Per simulated picosecond HIP-NN-TS costs "
            f"{num(h['ms_per_ps_vs_mscg'], 1)} × MS-CG"
            + (f", the all-atom reference ({aa['n_atoms']} atoms, {num(aa['timestep_fs'], 0)} fs) "
               f"{num(aa['ms_per_ps_vs_mscg'], 1)} × MS-CG." if aa else "; the all-atom step was not profiled."),
            ""]
    rows = [[label, num(100.0 * h["protocol"]["fractions"][k], 1) + " %",
             num(100.0 * m["protocol"]["fractions"][k], 1) + " %"] for k, label in PROTOCOL_COMPONENTS]
    out += [f"The same models through the stage's own protocol ({num(pr['protocol_production_ps'], 1)} ps of "
            "production, one checkpoint interval; a thermo row every "
            f"{h['protocol']['report_interval_steps']} HIP-NN-TS / {m['protocol']['report_interval_steps']} "
            "MS-CG steps), share of the run:", ""]
    out += table(["component", "HIP-NN-TS", "MS-CG"], rows)
    if pr.get("startup_s"):
        s = pr["startup_s"]
        out += ["Before its first step a `cg_md` job starts up in "
                + ", ".join(f"{num(v, 1)} s ({k.split('(')[-1].rstrip(')')})" for k, v in s.items())
                + " ([`startup.json`](../benchmarks/results/startup.json)).", ""]
    return out


INTRO = [
    "# Results",
    "",
    "<!-- Generated by docs/make_results.py from docs/default_run/ and benchmarks/results/; do not edit by hand. "
    "-->",
    "",
    "What the workflow measured, read from the summary files committed in [`docs/default_run/`](default_run/): "
    "the default study from one run of the code at the revision named below, the other systems of "
    "`config/systems.yaml` from an earlier run (the table below says which revision wrote what). Run "
    "history, timings of whole runs and earlier replicates are in [`CHANGELOG.md`](../CHANGELOG.md).",
    "",
    "## How to read the tables",
    "",
    "* A **cell** is one model at one state. **Bold**: the model was trained at that state. A run that blew up "
    "is recorded, not dropped: its cell says *unstable*.",
    "* **RDF error in reference noise floors**: the mean absolute difference between the CG (NVT, in the "
    "all-atom mean box) and the mapped all-atom radial distribution function of every bead-type pair, divided by "
    "the reference's own noise floor (the same difference between the two halves of the reference run). About "
    "one means indistinguishable from the reference at this sampling. The three-body angle and bond errors are "
    "the total-variation distances of those distributions in the same units. ± is a jackknife standard error "
    "over blocks of the CG run.",
    "* **Headline ratios** compare two sets of cells: the geometric mean of the per-cell ratios, with a 95 % "
    "interval from the cell-to-cell spread; *resolved* when the interval excludes one. Ratios below one favour "
    "the first named. A cell is *significant* when the difference exceeds two combined standard errors. The "
    "*degradation* of a single-state model is its error away from its training state over its error there.",
    "* **Density error**: CG NPT density against the all-atom density at the same temperature and pressure. "
    "Force matching says nothing about the volume dependence of the free energy, so uncorrected models have the "
    "wrong pressure and run away under a barostat; `<model>_vol` adds a fitted volume term that matches the "
    "all-atom pressure and compressibility at the training states. The term exerts no force: fixed-volume "
    "structure and forces are the base model's.",
    "* **Pressure error**: CG minus all-atom pressure, both measured in the all-atom mean box.",
    "* **Held-out force errors**: on the last time block of every state, never used in training. The summed "
    "force on a bead is dominated by what no CG model resolves, so force errors barely separate models; "
    "structure and density are where transfer shows.",
    "* These are the numbers of one run. Reference trajectories with several threads are not bit-reproducible, "
    "and a repeated run moves the headline ratios by more than their intervals (which hold only the "
    "cell-to-cell spread of one run): treat a difference between kinds as established only where it holds "
    "across runs (see the changelog for replicates).",
    "",
]


def provenance(run_dir: Path) -> list[str]:
    """The revision that wrote each system's files: the systems beyond the default come from earlier runs of the
    study with config/systems.yaml and say so."""
    rows = []
    for name, folder, *_ in SYSTEMS:
        long = (run_dir / folder if folder else run_dir) / "long.csv"
        if not long.exists():
            if long.with_name("metrics.csv").exists():
                rows.append([f"`{name}`", "an earlier run (not recorded in its files)", DASH])
            continue
        cols = pd.read_csv(long, usecols=["git_revision", "cgtransfer_version"])
        revs = ", ".join(f"`{r[:12]}`" for r in dict.fromkeys(cols["git_revision"].dropna()))
        vers = ", ".join(f"`{v}`" for v in dict.fromkeys(cols["cgtransfer_version"].dropna().astype(str)))
        rows.append([f"`{name}`", revs or DASH, vers or DASH])
    if not rows:
        return []
    return (["Which revision wrote each system's files (every value's row of `long.csv` records both); systems "
             "written at an older revision come from an earlier run and are not rerun with the default:", ""]
            + table(["system", "git revision", "cgtransfer"], rows))


def verdict_section(verdict_dir: Path, link: str, title: str, about: str, designs: tuple = ()) -> list[str]:
    """The verdict of one replicated run (rule verdict's files); with `designs`, only the claims of those designs
    (their first letter: "a" … "d")."""
    claims = pd.read_csv(verdict_dir / "claims.csv")
    if designs:
        claims = claims[claims["design"].str[0].isin(designs)]
    cal = pd.read_csv(verdict_dir / "calibration.csv")
    n = int(claims["n_replicates"].max())
    out = [f"## {title}", "",
           f"From [`docs/{link}/`]({link}/) (rule `verdict`'s files): {about} {n} independent replicates. "
           "Estimates are ratios (below 1 favours the first named) or differences, with 95 % t intervals over the "
           "replicates; \"within-run only\" is the interval the block errors of one run would give; the last "
           "column is the calibration of the claim's metric.", ""]
    rows = []
    for r in claims.itertuples():
        if not r.n_contrasts:
            continue
        interval = DASH if pd.isna(r.lo) else f"{num(r.lo, 2)} to {num(r.hi, 2)}"
        status = "level" if not r.comparative else ("resolved" if r.resolved else "not resolved")
        within = DASH if pd.isna(r.within_run_lo) else f"{num(r.within_run_lo, 2)} to {num(r.within_run_hi, 2)}"
        calibration = getattr(r, "calibration", DASH)
        rows.append([r.claim, r.metric, num(r.estimate, 3), interval, within, str(r.n_contrasts), status,
                     DASH if pd.isna(calibration) else str(calibration)])
    out += table(["claim", "metric", "estimate", "95 % interval", "within-run only", "contrasts", "", "calibration"],
                 rows)
    has_range = "null_rms_z_lo" in cal.columns
    rows = []
    for r in cal.itertuples():
        row = [r.metric, r.errors.replace("_", " "), DASH if pd.isna(r.rms_z) else num(r.rms_z, 2),
               DASH if pd.isna(r.share_within_95) else num(100 * r.share_within_95, 0) + " %"]
        if has_range:
            row.append(DASH if pd.isna(r.null_rms_z_lo) else f"{num(r.null_rms_z_lo, 2)} to {num(r.null_rms_z_hi, 2)}")
        outcome = getattr(r, "verdict", None)
        if outcome is None or pd.isna(outcome):
            outcome = DASH if pd.isna(r.calibrated) else ("calibrated" if str(r.calibrated) == "True" else "not calibrated")
        rows.append(row + [str(outcome)])
    out += ["Calibration: each replicate predicted from the others (RMS z in 0.7–1.4: calibrated"
            + ("; beside it the range of RMS z that right errors give in a study of this shape" if has_range else "")
            + "; a dash: no cell has a value in every replicate):", ""]
    out += table(["metric", "errors", "RMS z", "share within ±1.96"] + (["right errors give"] if has_range else [])
                 + ["verdict"], rows)
    if designs:  # verdict.txt holds every design's claims: linked, not shown
        out += [f"Every design's claims over these replicates: [`verdict.txt`]({link}/verdict.txt).", ""]
    elif (verdict_dir / "verdict.txt").exists():
        out += [f"[`verdict.txt`]({link}/verdict.txt), as the workflow wrote it:", ""]
        out += code((verdict_dir / "verdict.txt").read_text())
    if (verdict_dir / "forest.png").exists():
        out += [f"![forest plot]({link}/forest.png)", ""]
    return out


def interval_text(e: dict) -> str:
    est = num(e["estimate"], 3)
    if e.get("lo") is None or pd.isna(e["lo"]):
        return est
    return f"{est} ({num(e['lo'], 2)} to {num(e['hi'], 2)})"


def replication_section(d: Path) -> list[str]:
    """Two independent runs of the default side by side, and their replicates pooled (benchmarks/replication.py)."""
    link = "replication"
    rep = json.loads((d / "replication.json").read_text())
    a, b = rep["runs"]["a"], rep["runs"]["b"]

    def run_words(r: dict) -> str:
        seeds = ", ".join(str(s[0]) if len(s) == 1 else "/".join(map(str, s)) for s in r["replicate_seeds"])
        return f"revision {', '.join(f'`{v[:12]}`' for v in r['git_revision'])}, replicate seeds {seeds}"

    out = ["## Methanol: does the verdict replicate?", "",
           f"From [`docs/{link}/replication.json`]({link}/replication.json) (`benchmarks/replication.py`): two "
           "independent default runs, each README command 1 from a fresh clone on its own seed, made with the code "
           f"of their day — run A ({run_words(a)}; its verdict files in [`docs/{link}/first_run/`]({link}/first_run/)) "
           f"and run B ({run_words(b)}; [`docs/{link}/second_run/`]({link}/second_run/)). Each claim's estimate is tested against the other "
           "run's 95 % interval, and the two estimates against each other (their difference over its standard "
           "error, on the log scale for ratios; Welch's t, p < 0.05 = inconsistent). A run's 95 % interval is not "
           "a 95 % interval for another run's estimate, so \"each inside the other's\" fails more often than 5 % "
           "even when both intervals are right; its expected count is given below.", ""]
    rows = []
    for c in rep["claims"]:
        def status(e: dict) -> str:
            return "level" if not c["comparative"] else ("resolved" if e["resolved"] else "not resolved")

        both, diff = c["each_inside_the_other"], c["difference"]
        rows.append([c["claim"], interval_text(c["a"]), status(c["a"]), interval_text(c["b"]), status(c["b"]),
                     DASH if both is None else ("yes" if both else "**no**"),
                     DASH if diff["p"] is None else (num(diff["p"], 2) + ("" if diff["consistent"] else " **no**"))])
    out += table(["claim", "run A", "", "run B", "", "each inside the other's interval", "difference p"], rows)
    chance = ", ".join(f"{num(100 * v, 0)} % per claim for {k.replace(',', ' and ')} replicates"
                       for k, v in rep["chance_each_inside_if_intervals_right"].items())
    out += [f"Each estimate inside the other run's interval: {rep['n_each_inside_the_other']} of {rep['n_claims']} "
            f"claims (if the intervals are right: {num(rep['expected_each_inside_if_intervals_right'], 1)} expected, "
            f"{chance})"
            + (f"; outside: {', '.join(rep['not_inside'])}" if rep["not_inside"] else "")
            + f". The two runs' estimates consistent: {rep['n_difference_consistent']} of {rep['n_difference_tested']}"
            + (f" (inconsistent: {', '.join(rep['inconsistent'])})" if rep["inconsistent"] else "")
            + f". Resolved alike (both resolved or both not): {rep['n_same_resolution']} of {rep['n_comparative']} "
            "comparative claims.", ""]
    cal = {k: pd.DataFrame(v) for k, v in rep["calibration"].items()}
    rows = []
    for r in cal["a"].itertuples():
        row = [r.metric, r.errors.replace("_", " ")]
        for k in ("a", "b", "pooled"):
            m = cal[k][(cal[k]["metric"] == r.metric) & (cal[k]["errors"] == r.errors)]
            row.append(DASH if not len(m) or pd.isna(m["rms_z"].iloc[0]) else num(m["rms_z"].iloc[0], 2))
        if any(v != DASH for v in row[2:]):  # metrics the study does not measure have no row
            rows.append(row)
    out += ["Calibration (RMS z of a left-out replicate against the errors of the others; 0.7–1.4 is calibrated) "
            f"in each run and over the {rep['pooled_replicates']} replicates pooled:", ""]
    out += table(["metric", "errors", "run A", "run B", "pooled"], rows)
    pooled = verdict_section(d / "pooled", f"{link}/pooled", "The verdict over both runs' replicates",
                             "both default runs' replicates pooled through rule verdict's stage,")
    return out + ["#" + pooled[0]] + pooled[1:]


def temperature_transfer_section(d: Path) -> list[str]:
    """config/temperature_transfer.yaml on top of the default run's replicates: the temperature-aware claims (d)
    over replicates, and the first replicate's temperature-transfer table."""
    link = "temperature_transfer"
    about = json.loads((d / "about.json").read_text())
    out = verdict_section(d / "verdict", f"{link}/verdict", "Methanol: knowing the temperature, over replicates",
                          f"{about['what']};", designs=("d",))
    out[0] = "## Methanol: knowing the temperature, over replicates (config/temperature_transfer.yaml)"
    if (d / "temperature_transfer.csv").exists():
        out += [f"The first replicate's cells ([`temperature_transfer.csv`]({link}/temperature_transfer.csv)): each "
                "temperature-aware model beside the temperature-blind HIP-NN-TS and the MS-CG model trained on the "
                "same states and the single-state HIP-NN-TS trained at each state; `where` says whether the state "
                "is a training state, between the training temperatures (interpolation) or beyond them "
                "(extrapolation).", ""]
        out += temperature_tables(pd.read_csv(d / "temperature_transfer.csv"))
    return out


def earlier_section(earlier: Path) -> list[str]:
    """Results of earlier default runs for models or segments the current default no longer runs
    (docs/earlier_run/about.json says which revision wrote which files)."""
    link = "earlier_run"
    about = json.loads((earlier / "about.json").read_text())
    out = ["## Methanol: results of earlier default runs", "",
           f"From [`docs/{link}/`]({link}/): studies the current default no longer runs, from the files of earlier "
           "default runs of one replicate each (not the run above; [`about.json`](earlier_run/about.json) names "
           "the revision of each file).", ""]
    if "temperature_transfer" in about and (earlier / "temperature_transfer.csv").exists():
        a = about["temperature_transfer"]
        out += ["### Knowing the temperature (config/temperature_transfer.yaml)", "",
                f"From [`temperature_transfer.csv`]({link}/temperature_transfer.csv), {a['what']}: each "
                "temperature-aware model beside the temperature-blind HIP-NN-TS and the MS-CG model trained on the "
                "same states and the single-state HIP-NN-TS trained at each state; `where` says whether the state is "
                "a training state, between the training temperatures (interpolation) or beyond them "
                "(extrapolation).", ""]
        out += temperature_tables(pd.read_csv(earlier / "temperature_transfer.csv"))
    if "dynamics" in about and (earlier / "diffusion.csv").exists():
        out += dynamics_section(earlier, link, about["dynamics"]["what"])
    figures_here = [f for f in ("temperature_transfer.png", "dynamics.png") if (earlier / f).exists()]
    if figures_here:
        out += ["### Figures", ""] + [f"* [`{f}`]({link}/{f}): {FIGURE_CAPTIONS[f]}" for f in figures_here] + [""]
    return out


def render(run_dir: Path = RUN_DIR, bench_dir: Path = BENCH_DIR) -> str:
    out = list(INTRO) + provenance(run_dir)
    present = [s for s in SYSTEMS if ((run_dir / s[1]) if s[1] else run_dir).joinpath("metrics.csv").exists()]
    out += ["Systems: " + ", ".join(f"[{title.split(':')[0]}](#{_anchor(title)})" for _, _, title, _ in present)
            + ", [Benchmarks](#benchmarks).", ""]
    for name, folder, title, about in present:
        out += system_section(name, folder, title, about, read_system(folder, run_dir))
    verdict_dir = run_dir / "verdict"
    if (verdict_dir / "claims.csv").exists():
        out += verdict_section(verdict_dir, "default_run/verdict", "Methanol: the verdict over replicates",
                               "the default study (the tables above are its first replicate) in")
    temperature = run_dir.parent / "temperature_transfer"
    if (temperature / "verdict" / "claims.csv").exists():
        out += temperature_transfer_section(temperature)
    replication = run_dir.parent / "replication"
    if (replication / "replication.json").exists():
        out += replication_section(replication)
    earlier = run_dir.parent / "earlier_run"
    if earlier.exists():
        out += earlier_section(earlier)
    if bench_dir.exists():
        out += benchmark_section(bench_dir)
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out) + "\n"


def _anchor(title: str) -> str:
    keep = "".join(ch for ch in title.lower() if ch.isalnum() or ch in " -_")
    return keep.replace(" ", "-")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    target = Path(argv[0]) if argv else OUTPUT
    target.write_text(render(), encoding="utf-8")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
