"""Is the default training budget adequate? A learning curve of held-out force RMSE against training frames per
state and (HIP-NN-TS) the epoch limit, over several training seeds.

Each point trains a model of one kind exactly as the train stage does (``training_data`` → ``fit_model``, the
settings of ``read_config`` with the schema defaults, the kind's section from ``kind_settings``) on the first
``fraction`` of every state's train block (the first frames, so the train | valid | test blocks stay contiguous
in time; the valid and test blocks are the default's), with ``training.max_epochs`` set to the point's epoch
limit, and evaluates it on the test block of every state (``held_out_forces`` → ``force_metrics``), as
``train_and_report`` does. Per point: the held-out force RMSE of each seed, their mean and standard deviation,
the wall and CPU time per fit (graph set-up and fit, not the evaluation; on a shared machine the CPU
time is the steadier of the two) and the epochs actually run (early stopping).

The grid is the two axes through the default's point (frames at the default epoch limit, epochs at all frames)
plus their far corner, not the full product: ``--full-grid`` trains every combination.

The verdict per kind compares the default's point (``--default-fraction`` of the train block, the config's
``max_epochs``) with the largest budget (the largest fraction and epoch limit): the change of the mean RMSE
against its noise, 2 × the standard error of the difference of the two means (seed SDs, seeds independent).
MS-CG is a deterministic least-squares fit (the seed changes nothing): its noise is the test-block sampling
error of the paired difference instead (per-frame squared-error differences on the same test frames). Inside
the noise: "adequate"; otherwise the change in % and in seed SDs, and the cheapest tested budget whose RMSE is
within the noise of the best point. The last doubling of the frames up to the default's (half → default) is
reported beside it, as the trend more frames than the data hold would continue.

    python benchmarks/learning_curve.py CG_DATA/T298/dataset.npz [more states ...] \
        [--kinds hipnn mscg] [--fractions 0.25 0.5 1] [--epochs 5 15 40] [--seeds 3] [--threads 1] \
        [--config config/config.yaml] [--system methanol] [--workdir DIR] [--out benchmarks/results/learning_curve.json]

The dataset paths are the mapped ``cg_data/<state>/dataset.npz`` files of a workflow run (their
``summary.json`` is read beside them; the state's name is the parent directory's). With data longer than the
default's (``reference_md.production_ps``), give ``--default-fraction`` = the default's share of the train block.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------------------------------------------------------
# statistics and verdict (pure functions: tests/test_learning_curve.py)

def summarize_point(rmses: list[float]) -> dict:
    """Mean, seed standard deviation (ddof 1; 0 with one seed) and standard error of a point's seed RMSEs."""
    x = np.asarray(rmses, dtype=np.float64)
    sd = float(x.std(ddof=1)) if len(x) > 1 else 0.0
    return {"rmse_mean": float(x.mean()), "rmse_seed_sd": sd, "rmse_seed_se": sd / math.sqrt(len(x)), "n_seeds": len(x)}


def difference_noise(a: dict, b: dict, paired_se: float | None = None) -> float:
    """Standard error of mean(b) − mean(a): from the seed spreads (independent seeds); where both points have no
    seed spread (a deterministic fit) the paired test-block sampling error ``paired_se`` instead."""
    se = math.sqrt(a["rmse_seed_se"] ** 2 + b["rmse_seed_se"] ** 2)
    if se == 0.0 and paired_se is not None:
        return float(paired_se)
    return se


def verdict(default: dict, largest: dict, paired_se: float | None = None, z: float = 2.0) -> dict:
    """Does going from the default's point to the largest budget change the held-out RMSE by more than ``z``
    standard errors of the difference? ``default``/``largest``: ``summarize_point`` dicts."""
    change = largest["rmse_mean"] - default["rmse_mean"]
    se = difference_noise(default, largest, paired_se)
    pooled_sd = math.sqrt(0.5 * (default["rmse_seed_sd"] ** 2 + largest["rmse_seed_sd"] ** 2))
    out = {
        "rmse_change": change,
        "rmse_change_percent": 100.0 * change / default["rmse_mean"],
        "noise_se_of_difference": se,
        "noise_source": "seed spread" if (default["rmse_seed_se"] or largest["rmse_seed_se"]) or paired_se is None
        else "paired test-block sampling error (deterministic fit)",
        "threshold": z * se,
        "paired_test_block_se": paired_se,  # the test frames' own sampling error of the difference (both on them)
        "change_in_se": (change / se) if se > 0 else (math.inf if change else 0.0),
        "change_in_seed_sd": (change / pooled_sd) if pooled_sd > 0 else None,
    }
    if abs(change) <= z * se:
        out["verdict"] = "adequate"
    elif change < 0:
        out["verdict"] = "not adequate: the largest budget lowers the held-out RMSE"
    else:
        out["verdict"] = "adequate (the largest budget raises the held-out RMSE)"
    return out


def cheapest_adequate(points: list[dict], z: float = 2.0) -> dict:
    """The cheapest point (frames × epochs, then wall time) whose mean RMSE is within ``z`` standard errors of the
    best point's (seed SEs; the paired test-block SE where a kind has no seed spread, under ``paired_se_to_best``)."""
    best = min(points, key=lambda p: p["rmse_mean"])
    ok = []
    for p in points:
        se = difference_noise(best, p, p.get("paired_se_to_best"))
        if p["rmse_mean"] - best["rmse_mean"] <= z * se:
            ok.append(p)
    return min(ok, key=lambda p: (p["train_frames_per_state"] * (p["max_epochs"] or 1), p["wall_per_fit_s"]))


# ----------------------------------------------------------------------------------------------------------------
# training

def subset_train(data, fraction: float):
    """The training data with each state's train block cut to its first ``fraction`` of frames (≥ 1 frame): the
    frames left out are dropped from the arrays (hippynn's database wants every frame in a split) and the splits
    re-indexed; the valid and test blocks and the prior's parameters are the full data's."""
    state_of = np.asarray(data.frame_state)
    train = np.asarray(data.splits["train"])
    keep_train = []
    for state in data.state_names:
        own = train[state_of[train] == state]
        keep_train.append(own[:max(1, round(fraction * len(own)))])
    keep_train = np.concatenate(keep_train)
    kept = np.sort(np.concatenate([keep_train, data.splits["valid"], data.splits["test"]]))
    new_index = {int(old): i for i, old in enumerate(kept)}
    out = copy.copy(data)
    out.arrays = {k: v[kept] for k, v in data.arrays.items()}
    out.splits = {"train": np.array([new_index[int(i)] for i in keep_train], dtype=np.int64),
                  **{s: np.array([new_index[int(i)] for i in data.splits[s]], dtype=np.int64) for s in ("valid", "test")}}
    for attr in ("frame_state", "frame_temperature_K", "frame_energy_kcal_mol"):
        values = getattr(data, attr)
        if len(values):
            setattr(out, attr, [values[int(i)] for i in kept])
    return out


def fit_point(kind, data, settings, train_cfg, datasets, state_names, workdir: Path, seed: int) -> dict:
    """Fit one model, evaluate its held-out test blocks; returns RMSE, wall time and the per-frame squared errors."""
    from cgtransfer.analysis.statistics import force_metrics
    from cgtransfer.kinds.base import held_out_forces
    from cgtransfer.kinds.registry import fit_model, load_model

    out_dir = workdir / "model"
    shutil.rmtree(out_dir, ignore_errors=True)
    t0, c0 = time.perf_counter(), time.process_time()
    record = fit_model(kind, data, settings, out_dir, label=f"learning_curve/{kind}", seed=seed)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    model = load_model(out_dir, device=train_cfg["device"])
    temperatures = settings.get("state_temperatures_K", {})
    preds, refs = [], []
    for d, state in zip(datasets, state_names):
        pred, ref = held_out_forces(model, d, train_cfg["valid_fraction"], train_cfg["test_fraction"], temperatures.get(state))
        preds.append(pred)
        refs.append(ref)
    pred, ref = np.concatenate(preds), np.concatenate(refs)
    shutil.rmtree(out_dir, ignore_errors=True)
    m = force_metrics(pred, ref)
    sq = ((np.asarray(pred, np.float64) - ref) ** 2).reshape(len(pred), -1).mean(axis=1)
    return {"rmse": m["force_rmse_kcal_mol_A"], "rmse_test_se": m.get("force_rmse_stderr_kcal_mol_A"),
            "wall_s": wall, "cpu_s": cpu, "epochs_run": record.get("epochs"), "frame_mse": sq}


def paired_se(frame_mse_a: np.ndarray, frame_mse_b: np.ndarray) -> float:
    """Test-block sampling SE of RMSE(b) − RMSE(a) on the same frames (delta method on the per-frame MSEs)."""
    ra, rb = math.sqrt(frame_mse_a.mean()), math.sqrt(frame_mse_b.mean())
    n = len(frame_mse_a)
    g = frame_mse_b / (2 * rb) - frame_mse_a / (2 * ra)  # d(rb - ra) per unit change of each frame's MSE, × n
    return float(g.std(ddof=1) / math.sqrt(n))


def grid(kind: str, fractions, epochs, default_fraction, default_epochs, full: bool) -> list[tuple]:
    """(fraction, max_epochs) points of a kind: the frame axis at the default epochs, the epoch axis at the
    largest fraction, the default and the far corner (MS-CG: the frame axis only, no epochs)."""
    fractions = sorted(set(fractions) | {default_fraction})
    if kind == "mscg":
        return [(f, None) for f in sorted(fractions, reverse=True)]
    epochs = sorted(set(epochs) | {default_epochs})
    if full:
        return [(f, e) for f in fractions for e in epochs]
    pts = {(f, default_epochs) for f in fractions} | {(max(fractions), e) for e in epochs}
    pts |= {(default_fraction, e) for e in epochs}
    first = [(default_fraction, default_epochs), (max(fractions), max(epochs))]
    return list(dict.fromkeys(first + sorted(pts, key=lambda p: -p[0] * p[1])))


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("datasets", nargs="+", help="cg_data/<state>/dataset.npz of a workflow run (summary.json beside it)")
    ap.add_argument("--kinds", nargs="+", default=["hipnn", "mscg"])
    ap.add_argument("--fractions", nargs="+", type=float, default=[0.25, 0.5, 1.0], help="shares of the train block")
    ap.add_argument("--default-fraction", type=float, default=1.0, help="the default's share of the train block")
    ap.add_argument("--epochs", nargs="+", type=int, default=[5, 15, 40], help="HIP-NN-TS max_epochs values")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--seed0", type=int, default=None, help="first training seed (default: the config's seed)")
    ap.add_argument("--full-grid", action="store_true", help="every fraction × epoch combination")
    ap.add_argument("--extra-points", nargs="*", default=[], metavar="FRACTION:EPOCHS",
                    help="further HIP-NN-TS points (e.g. 0.5:40)")
    ap.add_argument("--reuse", default=None, help="an earlier output of this script on the same data and seeds: its "
                    "points are taken over, not refitted (a run stopped early, or one extended by --extra-points)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--z", type=float, default=2.0, help="standard errors of the difference that count as a change")
    ap.add_argument("--config", default=str(ROOT / "config" / "config.yaml"))
    ap.add_argument("--system", default=None, help="the config's system (default: its first)")
    ap.add_argument("--workdir", default=None, help="scratch directory for the checkpoints (default: a temporary one)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "learning_curve.json"))
    args = ap.parse_args(argv)

    from cgtransfer.compute import configure

    configure(args.threads, "cpu")  # before hippynn (torch) is imported

    from cgtransfer.config import read_config, system_settings
    from cgtransfer.dataset import load_dataset
    from cgtransfer.kinds.registry import kind_settings
    from cgtransfer.kinds.training_data import training_data

    config = read_config(args.config)
    system = args.system or next(iter(config["systems"]))
    conf = system_settings(config, system)
    dataset_paths = [Path(p) for p in args.datasets]
    summary_paths = [p.with_name("summary.json") for p in dataset_paths]
    state_names = [p.parent.name for p in dataset_paths]
    datasets = [load_dataset(p) for p in dataset_paths]
    train_cfg = {**conf["training"], "device": "cpu"}
    default_epochs = int(train_cfg["max_epochs"])
    seed0 = int(config["seed"] if args.seed0 is None else args.seed0)
    seeds = [seed0 + i for i in range(args.seeds)]
    base = training_data(dataset_paths, summary_paths, state_names, conf["prior"], train_cfg)
    n_train_full = len(base.splits["train"]) // len(state_names)
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="learning_curve_"))
    workdir.mkdir(parents=True, exist_ok=True)

    result = {"complete": False,
        "question": "does more training (epochs, frames per state) than the default change the held-out force "
                    "RMSE by more than its seed-to-seed spread?",
        "system": system, "states": state_names,
        "frames_per_state": [len(d["positions"]) for d in datasets],
        "beads": [int(d["positions"].shape[1]) for d in datasets],
        "time_span_ps": [float(d["time_ps"][-1] - d["time_ps"][0]) if "time_ps" in d else None for d in datasets],
        "split": {"valid_fraction": train_cfg["valid_fraction"], "test_fraction": train_cfg["test_fraction"],
                  "train_frames_per_state": n_train_full,
                  "valid_frames": len(base.splits["valid"]), "test_frames": len(base.splits["test"])},
        "default": {"fraction_of_train_block": args.default_fraction, "max_epochs": default_epochs,
                    "hipnn": {k: conf["hipnn"][k] for k in ("n_features", "n_sensitivities") if k in conf["hipnn"]},
                    "training": {k: train_cfg[k] for k in ("learning_rate", "batch_size", "max_batch_size",
                                                           "plateau_patience", "termination_patience")}},
        "seeds": seeds, "threads_per_fit": args.threads, "z": args.z,
        "machine": {"platform": platform.platform(), "python": sys.version.split()[0]},
        "points": [], "verdicts": {},
    }
    reused = {}
    if args.reuse:
        previous = json.loads(Path(args.reuse).read_text())
        if previous["seeds"] != seeds or previous["states"] != state_names or previous["split"] != result["split"]:
            raise SystemExit(f"{args.reuse}: other seeds, states or split than this run: nothing to reuse")
        reused = {(p["kind"], p["fraction_of_train_block"], p["max_epochs"]): p for p in previous["points"]}
    for kind in args.kinds:
        settings = kind_settings(kind, conf)
        settings = {k: ({**v, "device": "cpu"} if k == "training" else v) for k, v in settings.items()}
        frame_mse = {}
        kind_points = []
        points = grid(kind, args.fractions, args.epochs, args.default_fraction, default_epochs, args.full_grid)
        if kind != "mscg":
            points += [(float(f), int(e)) for f, e in (x.split(":") for x in args.extra_points)]
        for fraction, epochs in dict.fromkeys(points):
            old = reused.get((kind, fraction, epochs))
            if old is not None:
                frame_mse[(fraction, epochs)] = np.asarray(old["test_frame_mse_seed_mean"])
                kind_points.append(old)
                result["points"].append(old)
                print(f"{kind} fraction {fraction:g} epochs {epochs}: reused", flush=True)
                continue
            data = subset_train(base, fraction)
            s = copy.deepcopy(settings)
            if epochs is not None:
                s["training"]["max_epochs"] = int(epochs)
            fits = []
            for seed in (seeds if kind != "mscg" or len(seeds) < 2 else seeds[:2]):  # MS-CG: 2 seeds show it is deterministic
                fit = fit_point(kind, data, s, train_cfg, datasets, state_names, workdir, seed)
                print(f"{kind} fraction {fraction:g} epochs {epochs} seed {seed}: RMSE {fit['rmse']:.4f} "
                      f"({fit['wall_s']:.1f} s, {fit['epochs_run']} epochs)", flush=True)
                fits.append(fit)
            frame_mse[(fraction, epochs)] = np.mean([f["frame_mse"] for f in fits], axis=0)
            point = {"kind": kind, "fraction_of_train_block": fraction,
                     "train_frames_per_state": int(len(data.splits["train"]) // len(state_names)),
                     "max_epochs": epochs, **summarize_point([f["rmse"] for f in fits]),
                     "rmse_per_seed": [f["rmse"] for f in fits],
                     "rmse_test_block_se": float(np.mean([f["rmse_test_se"] for f in fits])),
                     "epochs_run": [f["epochs_run"] for f in fits],
                     "wall_per_fit_s": float(np.mean([f["wall_s"] for f in fits])),
                     "cpu_per_fit_s": float(np.mean([f["cpu_s"] for f in fits])),
                     "test_frame_mse_seed_mean": [float(x) for x in frame_mse[(fraction, epochs)]],
                     "is_default": fraction == args.default_fraction and epochs in (None, default_epochs)}
            kind_points.append(point)
            result["points"].append(point)
            v = kind_verdict(kind, kind_points, frame_mse, args.default_fraction, default_epochs, args.z)
            if v is not None:
                result["verdicts"][kind] = v
            write(result, args.out)  # after every point: a run stopped early keeps what it measured
        v = kind_verdict(kind, kind_points, frame_mse, args.default_fraction, default_epochs, args.z)
        if v is not None:  # (also when every point was reused)
            result["verdicts"][kind] = v
        print(kind, json.dumps(result["verdicts"].get(kind)), flush=True)
    if not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    result["complete"] = True
    write(result, args.out)
    return result


def write(result: dict, out) -> None:
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(result, indent=1) + "\n")


def kind_verdict(kind: str, kind_points: list[dict], frame_mse: dict, default_fraction: float, default_epochs: int,
                 z: float) -> dict | None:
    """The verdict of a kind over the points measured so far (None before the default's point)."""
    key = {(p["fraction_of_train_block"], p["max_epochs"]): p for p in kind_points}
    d_key = (default_fraction, None if kind == "mscg" else default_epochs)
    if d_key not in key:
        return None
    l_key = max(key, key=lambda k: (k[0] * (k[1] or 1), k[1] or 0))  # the largest budget: frames × epochs
    best_key = min(key, key=lambda k: key[k]["rmse_mean"])
    for k, p in key.items():
        p["paired_se_to_best"] = paired_se(frame_mse[best_key], frame_mse[k]) if k != best_key else 0.0
    v = verdict(key[d_key], key[l_key], paired_se(frame_mse[d_key], frame_mse[l_key]), z=z)
    cheap = cheapest_adequate(kind_points, z=z)

    def brief(p):
        return {k: p[k] for k in ("fraction_of_train_block", "train_frames_per_state", "max_epochs", "rmse_mean",
                                  "rmse_seed_sd")}

    half = (default_fraction / 2, d_key[1])
    if half in key:  # the last doubling of the frames up to the default: what one more doubling might still bring
        h = verdict(key[half], key[d_key], paired_se(frame_mse[half], frame_mse[d_key]), z=z)
        h["verdict"] = ("within the noise: doubling the frames no longer helps" if h["verdict"] == "adequate" else
                        "more frames still lower the held-out RMSE" if h["rmse_change"] < 0 else
                        "more frames raise the held-out RMSE")
        v["frames_half_to_default"] = {k: h[k] for k in ("rmse_change", "rmse_change_percent", "noise_se_of_difference",
                                                          "change_in_se", "change_in_seed_sd", "verdict")}
    v.update({"default_point": brief(key[d_key]), "largest_point": brief(key[l_key]), "best_point": brief(key[best_key]),
              "cheapest_within_noise_of_best": brief(cheap), "points_measured": len(kind_points)})
    return v


if __name__ == "__main__":
    main()
