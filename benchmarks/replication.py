"""Does the verdict replicate? Two independent runs of the same study (README command 1, each from a fresh clone,
on different `seed`s): each claim's estimate against the other run's 95 % interval, each run's calibration, and
the verdict of both runs' replicates pooled (2R independent replicates through the workflow's own verdict stage).

    python benchmarks/replication.py RUN_A/results RUN_B/results [--system methanol]
        [--configfile config/config.yaml] [--out docs/replication]

Writes OUT/replication.json (per claim: both runs' estimates and intervals, whether each estimate lies inside
the other run's interval, whether both runs resolve it alike; both runs' calibration; each run's revision and
replicate seeds as their files record them), OUT/second_run/ (run B's verdict files: claims.csv, claims.json,
calibration.csv, verdict.txt, forest.png; run A's are the committed docs/default_run/verdict/) and OUT/pooled/
(rule verdict's files over the 2R replicates of both runs). Every number is read from the runs' files.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

ROOT = Path(__file__).resolve().parent.parent
VERDICT_FILES = ("claims.csv", "claims.json", "calibration.csv", "verdict.txt", "forest.png")


def run_files(results: Path, system: str) -> dict:
    """A run's replicates (long tables in replicate order), its revision and each replicate's seed."""
    reps = sorted((results / system).glob("rep*/summary/long.csv"), key=lambda p: int(p.parent.parent.name[3:]))
    if not reps:
        raise SystemExit(f"{results / system}: no rep*/summary/long.csv (is this a results folder of a finished run?)")
    revisions = sorted(set(pd.concat(pd.read_csv(p, usecols=["git_revision"]) for p in reps)["git_revision"]
                           .dropna().astype(str)))
    seeds = []
    for p in reps:
        summaries = sorted((p.parent.parent / "cg_data").glob("*/summary.json"))
        seeds.append(sorted({json.loads(s.read_text()).get("reference_seed") for s in summaries} - {None}))
    return {"long": reps, "git_revision": revisions, "replicate_seeds": seeds,
            "verdict": results / system / "verdict"}


def inside(value, lo, hi) -> bool | None:
    if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in (value, lo, hi)):
        return None
    return bool(lo <= value <= hi)


def difference_test(a: dict, b: dict) -> dict:
    """Are the two runs' estimates of one claim consistent? Their difference on the claim's scale (log for a
    ratio) against its own standard error sqrt(se_a² + se_b²), Welch-Satterthwaite degrees of freedom. This is
    the test a re-run answers: a 95 % interval of one run is not a 95 % interval for another run's estimate
    (that one is about sqrt(2) wider), so "each inside the other's interval" fails more often than 5 % even
    when both intervals are right (`chance_each_inside`)."""
    key = "se_log" if a.get("scale") == "ratio" else "se"
    sa, sb = a.get(key), b.get(key)
    if a.get("estimate") is None or b.get("estimate") is None or not sa or not sb:
        return {"t": None, "dof": None, "p": None, "consistent": None}
    ya, yb = (math.log(a["estimate"]), math.log(b["estimate"])) if key == "se_log" else (a["estimate"], b["estimate"])
    se = math.sqrt(sa**2 + sb**2)
    dof = se**4 / (sa**4 / a["dof"] + sb**4 / b["dof"])
    t = (ya - yb) / se
    p = float(2 * stats.t.sf(abs(t), dof))
    return {"t": t, "dof": dof, "p": p, "consistent": p >= 0.05}


def chance_each_inside(r_a: int, r_b: int, level: float = 0.95, n: int = 200_000, seed: int = 1,
                       both: bool = True) -> float:
    """The probability that two runs of R_a and R_b replicates, drawn from one normal distribution, each put
    their estimate (mean) inside the other's t interval (``both=False``: run B's inside run A's): what "each
    inside the other's interval" is expected to give for a claim when the intervals are exactly right (Monte
    Carlo, seeded)."""
    rng = np.random.default_rng(seed)
    xa, xb = rng.normal(size=(n, r_a)), rng.normal(size=(n, r_b))
    ma, mb = xa.mean(axis=1), xb.mean(axis=1)
    ha = stats.t.ppf(0.5 + level / 2, r_a - 1) * xa.std(axis=1, ddof=1) / math.sqrt(r_a)
    hb = stats.t.ppf(0.5 + level / 2, r_b - 1) * xb.std(axis=1, ddof=1) / math.sqrt(r_b)
    b_in_a = np.abs(mb - ma) <= ha
    return float(np.mean(((np.abs(ma - mb) <= hb) & b_in_a) if both else b_in_a))


def side_by_side(claims_a: list[dict], claims_b: list[dict]) -> list[dict]:
    """Per claim both runs make (same name, same metric): estimates, intervals and the agreement tests."""
    b_of = {(c["claim"], c["metric"]): c for c in claims_b}
    rows = []
    for a in claims_a:
        b = b_of.get((a["claim"], a["metric"]))
        if b is None or not a.get("n_contrasts") or not b.get("n_contrasts"):
            continue
        a_in_b, b_in_a = inside(a["estimate"], b["lo"], b["hi"]), inside(b["estimate"], a["lo"], a["hi"])
        rows.append({
            "claim": a["claim"], "design": a["design"], "metric": a["metric"], "comparative": a["comparative"],
            "a": {k: a.get(k) for k in ("estimate", "lo", "hi", "resolved", "n_contrasts", "n_replicates", "calibration")},
            "b": {k: b.get(k) for k in ("estimate", "lo", "hi", "resolved", "n_contrasts", "n_replicates", "calibration")},
            "a_inside_b_interval": a_in_b, "b_inside_a_interval": b_in_a,
            "each_inside_the_other": None if a_in_b is None or b_in_a is None else (a_in_b and b_in_a),
            "same_resolution": (bool(a["resolved"]) == bool(b["resolved"])) if a["comparative"] else None,
            "difference": difference_test(a, b),
        })
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_a", type=Path, help="the first run's results folder")
    parser.add_argument("run_b", type=Path, help="the second run's results folder")
    parser.add_argument("--system", default="methanol")
    parser.add_argument("--configfile", type=Path, default=ROOT / "config" / "config.yaml")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "replication")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT / "src"))
    import yaml

    from cgtransfer.config import load_study
    from cgtransfer.stages.verdict import verdict

    a, b = run_files(args.run_a, args.system), run_files(args.run_b, args.system)
    claims_a = json.loads((a["verdict"] / "claims.json").read_text())
    claims_b = json.loads((b["verdict"] / "claims.json").read_text())
    rows = side_by_side(claims_a["claims"], claims_b["claims"])

    args.out.mkdir(parents=True, exist_ok=True)
    second = args.out / "second_run"
    shutil.rmtree(second, ignore_errors=True)
    second.mkdir()
    for name in VERDICT_FILES:
        shutil.copy2(b["verdict"] / name, second / name)

    # both runs' replicates through the workflow's own verdict stage
    study = load_study(yaml.safe_load(args.configfile.read_text()), basedir=ROOT)
    info = {m: study.model(args.system, m) for m in study.models(args.system)}
    state_points = [vars(s) for s in study.states_of(args.system)]
    pooled = args.out / "pooled"
    shutil.rmtree(pooled, ignore_errors=True)
    pooled.mkdir()
    names = ("cells", "calibration", "claims_csv", "claims_json", "text", "forest", "heatmaps")
    files = ("cells.csv", "calibration.csv", "claims.csv", "claims.json", "verdict.txt", "forest.png", "heatmaps")
    verdict([str(p) for p in a["long"] + b["long"]], info, state_points,
            {n: str(pooled / f) for n, f in zip(names, files)}, system=args.system)
    shutil.rmtree(pooled / "heatmaps")  # the per-run heatmaps are in the runs' own folders

    testable = [r for r in rows if r["each_inside_the_other"] is not None]
    comparative = [r for r in rows if r["same_resolution"] is not None]
    tested = [r for r in rows if r["difference"]["consistent"] is not None]
    chance = {}
    for r in testable:
        key = f"{r['a']['n_replicates']},{r['b']['n_replicates']}"
        if key not in chance:
            chance[key] = chance_each_inside(r["a"]["n_replicates"], r["b"]["n_replicates"])
    result = {
        "what": "two independent runs of the same study: each claim's estimate against the other run's 95 % "
                "interval; both runs' replicates pooled through rule verdict's stage",
        "system": args.system,
        "runs": {"a": {k: (v if k != "long" else len(v)) for k, v in a.items() if k != "verdict"},
                 "b": {k: (v if k != "long" else len(v)) for k, v in b.items() if k != "verdict"}},
        "claims": rows,
        "n_claims": len(testable),
        "n_each_inside_the_other": sum(r["each_inside_the_other"] for r in testable),
        "not_inside": [r["claim"] for r in testable if not r["each_inside_the_other"]],
        "chance_each_inside_if_intervals_right": chance,
        "expected_each_inside_if_intervals_right": sum(
            chance[f"{r['a']['n_replicates']},{r['b']['n_replicates']}"] for r in testable),
        "n_difference_tested": len(tested),
        "n_difference_consistent": sum(r["difference"]["consistent"] for r in tested),
        "inconsistent": [r["claim"] for r in tested if not r["difference"]["consistent"]],
        "n_comparative": len(comparative),
        "n_same_resolution": sum(r["same_resolution"] for r in comparative),
        "calibration": {"a": claims_a["calibration"], "b": claims_b["calibration"],
                        "pooled": json.loads((pooled / "claims.json").read_text())["calibration"]},
        "pooled_replicates": len(a["long"]) + len(b["long"]),
    }
    (args.out / "replication.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"{result['n_each_inside_the_other']} of {result['n_claims']} claims: each run's estimate inside the other's "
          f"interval (expected {result['expected_each_inside_if_intervals_right']:.1f} if the intervals are right); "
          f"difference consistent {result['n_difference_consistent']} of {result['n_difference_tested']}; same "
          f"resolution {result['n_same_resolution']} of {result['n_comparative']}; not inside: {result['not_inside']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
