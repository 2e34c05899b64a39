# Helpers only: configuration validation (before any job starts) and input functions.
from pathlib import Path

from cgtransfer.config import load_study

STUDY = load_study(config, basedir=workflow.basedir, schema_dir=Path(workflow.basedir) / "workflow" / "schemas")
RESULTS = "results"


wildcard_constraints:
    system="[A-Za-z0-9_]+",
    state="[A-Za-z0-9_]+",
    model="[A-Za-z0-9_]+",
    ensemble="nvt|npt",


def system_file(key):
    return lambda w: STUDY.path(w.system, key)


def state_point(w):
    s = STUDY.state(w.system, w.state)
    return {"temperature_K": s.temperature_K, "pressure_bar": s.pressure_bar, "density_g_cm3": s.density_g_cm3}


def training_states(w):
    return STUDY.model(w.system, w.model)["states"]


def model_kind(w):
    return STUDY.model(w.system, w.model)["kind"]


def kind_settings(w):
    """Only the config section of the model's kind: editing mscg settings does not retrain HIP-NN-TS."""
    from cgtransfer.training import kind_settings as settings

    return settings(model_kind(w), config)


def training_inputs(kind):
    names = {"dataset": "dataset.npz", "summary": "summary.json"}
    return lambda w: [f"{RESULTS}/{w.system}/cg_data/{s}/{names[kind]}" for s in training_states(w)]


def npt_summary(w):
    if "npt" in STUDY.ensembles(w.system, w.state):
        return f"{RESULTS}/{w.system}/cg_md/{w.model}/{w.state}/npt/summary.json"
    return []


def compare_outputs(system, name):
    return [
        f"{RESULTS}/{system}/compare/{model}/{s.state}/{name}"
        for model in STUDY.models(system)
        for s in STUDY.states_of(system)
    ]


def summary_outputs(system):
    out = [
        f"{RESULTS}/{system}/summary/{name}"
        for name in (
            "metrics.csv",
            "long.csv",
            "force_rmse.csv",
            "rdf_error.csv",
            "density_error.csv",
            "pressure_error.csv",
            "headline.json",
            "headline.txt",
            "transferability.png",
            "rdf_grid.png",
            "density_vs_temperature.png",
        )
    ]
    out.append(f"{RESULTS}/{system}/summary/rdf")
    return out


def all_outputs():
    out = []
    for system in STUDY.systems():
        out += summary_outputs(system)
        out += [f"{RESULTS}/{system}/models/{m}/metrics.json" for m in STUDY.models(system)]
        out += [
            f"{RESULTS}/{system}/models/{m}/pair_potential.png"
            for m in STUDY.models_of_kind(system, "mscg")
        ]
    return out
