# Helpers only: configuration validation (before any job starts) and input functions.
import re
import sys
from pathlib import Path

from cgtransfer.config import ConfigError, load_study

try:
    STUDY = load_study(
        config,
        basedir=workflow.basedir,
        schema_dir=Path(workflow.basedir) / "workflow" / "schemas",
        config_files=[
            *workflow.configfiles,
            *(["--config overrides"] if workflow.config_settings.overwrite_config else []),
        ],
    )
except ConfigError as error:  # a bad config is the user's to fix: the message, no traceback, before any job
    print(f"cgtransfer: invalid configuration, no job was started.\n{error}", file=sys.stderr)
    sys.exit(1)
RESULTS = "results"


def unknown_target(target, rules=()):
    """Why a requested output file names no system, replicate, model, state or ensemble of this study (None when
    it does): asked for on the command line, e.g. results/<system>/rep<r>/compare/<model>/<state>/metrics.json.
    The system and replicate are read from the path; the model, state and ensemble from the wildcards of the
    ``rules`` whose output pattern the path matches (every rule of the workflow, whichever file defines it)."""
    parts = Path(target).parts
    if len(parts) < 2 or parts[0] != RESULTS or parts[1] in ("logs", "benchmarks"):
        return None
    system = parts[1]
    if system not in STUDY.systems():
        return f"unknown system {system!r}; the systems of this study: {', '.join(STUDY.systems())}"
    if len(parts) < 3 or parts[2] == "verdict":
        return None
    replicates = [f"rep{r}" for r in STUDY.replicates_run(system)]
    if parts[2] not in replicates:
        if re.fullmatch(r"rep[0-9]+", parts[2]) is None and len(parts) > 3:  # a path of the layout before replicates
            meant = str(Path(*parts[:2], replicates[0], *parts[2:]))
            also = unknown_target(meant, rules)
            return (
                f"no replicate folder: per-run results are under {RESULTS}/{system}/rep<r>/ (this system has "
                f"{', '.join(replicates)}), e.g. {meant}" + (f"; and there, {also}" if also else "")
            )
        return (
            f"unknown replicate {parts[2]!r} of system {system!r}; it has {', '.join(replicates)} "
            f"(config key 'replicates'), and the pooled results are under {RESULTS}/{system}/verdict/"
        )
    states = [s.state for s in STUDY.states_of(system)]
    models = list(STUDY.models(system))
    matched = False
    for producer in rules:
        try:
            if not producer.is_producer(target):
                continue
            wildcards = producer.get_wildcards(target)
        except Exception:  # a rule whose pattern cannot be matched says nothing about the names
            continue
        matched = True
        model, state, ensemble = (wildcards.get(k) for k in ("model", "state", "ensemble"))
        if model is not None and model not in models:
            return f"unknown model {model!r} of system {system!r}; its models: {', '.join(models)}"
        if state is not None and state not in states:
            return f"unknown state {state!r} of system {system!r}; its states: {', '.join(states)}"
        if state is not None and ensemble in ("nvt", "npt"):
            allowed = STUDY.ensembles(system, state)
            if ensemble not in allowed:
                return (
                    f"no {ensemble} run of state {state!r} of system {system!r}: it is an NVT state (a density "
                    f"in the sheet, no pressure); its runs: {', '.join(allowed)}"
                )
    if rules and not matched:
        return f"no step of this workflow makes this file; the folders of a run: {', '.join(run_folders(rules))}"
    return None


def run_folders(rules):
    """The folders below results/<system>/rep<r>/ that the rules write (from their output patterns)."""
    found = []
    for producer in rules:
        for pattern in producer.output:  # e.g. results/{system,...}/rep{replicate,...}/cg_md/...
            parts = str(pattern).split("/")
            if len(parts) > 4 and parts[0] == RESULTS and parts[2].startswith("rep{replicate"):
                if parts[3] not in found:
                    found.append(parts[3])
    return found


def command_line_targets():
    """The targets named on the snakemake command line (Snakemake hands them to the workflow only after parsing
    it; a job process started by an executor names none)."""
    if Path(sys.argv[0]).name != "snakemake":
        return []
    try:
        from snakemake.cli import get_argument_parser

        args, _ = get_argument_parser().parse_known_args(sys.argv[1:])
        return list(args.targets or [])
    except (Exception, SystemExit):
        return []


def refuse_unknown_targets():
    """Called once all rules are defined (at the end of the Snakefile). A command-line target that names nothing
    in this study stops the workflow with one line per target saying what was asked and what exists (no job, no
    traceback; was an InputFunctionException ending in a bare KeyError)."""
    rules = list(workflow.rules)
    unknown = [(t, why) for t in command_line_targets() if (why := unknown_target(t, rules))]
    if unknown:  # a wrong target is the user's to fix: say what is known, no traceback
        print("cgtransfer: no job was started; the requested target(s) name nothing in this study:", file=sys.stderr)
        for target, why in unknown:
            print(f"  {target}: {why}", file=sys.stderr)
        sys.exit(1)


# Run-time settings: they change how fast a job runs, not what it computes, so they are not rule params (a new
# thread count or device must not rerun finished simulations); scripts read them from the config at run time.
RUNTIME_KEYS = ("threads", "device", "platform", "checkpoint_interval_ps")


def physics(settings):
    """A config section without its run-time settings: what a rule's params may carry."""
    return {k: v for k, v in settings.items() if k not in RUNTIME_KEYS}


# The package source files each rule's script can reach through its imports (cgtransfer.provenance, read when
# the workflow is parsed): inputs, so that editing a module (mtime) reruns exactly the stages whose code imports
# it and what follows, which Snakemake's code trigger (it sees only the rule's script) would miss. A rule of one
# model depends only on its own kind's modules among the kinds.
def stage_code(script, per_model_kind=False):
    from cgtransfer.provenance import package_sources

    path = Path(workflow.basedir) / "scripts" / f"{script}.py"
    if per_model_kind:
        return lambda w: package_sources(path, kind=model_kind(w))
    return package_sources(path)


def git_revision():
    """The workflow's git revision (with -dirty appended for uncommitted changes, as git describe does), for provenance."""
    import subprocess

    try:
        rev = subprocess.run(
            ["git", "-C", workflow.basedir, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", workflow.basedir, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        return f"{rev}{'-dirty' if dirty else ''}"
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


GIT_REVISION = git_revision()


wildcard_constraints:
    system="[A-Za-z0-9_]+",
    state="[A-Za-z0-9_]+",
    model="[A-Za-z0-9_]+",
    ensemble="nvt|npt|nvt_rho[0-9]+\\.[0-9]+",
    replicate="[1-9][0-9]*",


def replicate_seed(w):
    """The seed of a replicate's chain (packing, velocities, thermostats, training): replicate 1 runs on the
    configured seed, replicate r on seed + 100003 (r - 1), so each replicate is an independent chain and adding
    one changes nothing that exists."""
    return config["seed"] + 100003 * (int(w.replicate) - 1)


def reference_file(name, state=None):
    """A file of the all-atom reference run of a state (that of the system's reference_system, if it names one)."""
    return (
        lambda w: f"{RESULTS}/{STUDY.reference_system(w.system)}/rep{w.replicate}/reference/{state or w.state}/{name}"
    )


# An external state (systems.<name>.external_reference) is read from the user's files instead of simulated: rule
# import_reference writes the same four files. Each rule's inputs name an impossible file for the other kind of
# state, so exactly one of them can make a state's reference (the ruleorder only settles the tie Snakemake
# would otherwise report before it looks at inputs).
def external_spec(w):
    """The external_reference entry of a state (None for a simulated state)."""
    return STUDY.system(w.system).get("external_reference", {}).get(w.state)


def external_file(field):
    """A per-replicate file of an external state (a list: replicate r's entry), resolved in the repository."""

    def path(w):
        spec = external_spec(w)
        if spec is None:
            return f"{RESULTS}/.not_external/{w.system}/{w.state}"  # a file nothing makes (a simulated state)
        value = spec.get(field)
        if value is None:
            return []
        value = value if isinstance(value, str) else value[int(w.replicate) - 1]
        return str(Path(workflow.basedir) / value) if not Path(value).is_absolute() else value

    return path


def external_reading(w):
    """How to read an external state's trajectory (format, units, frame interval): the import job's params."""
    return {k: v for k, v in (external_spec(w) or {}).items() if k in ("format", "units", "frame_interval_ps")}


def simulated_only(w):
    return [] if external_spec(w) is None else f"{RESULTS}/.external/{w.system}/{w.state}"


def state_point(w):
    s = STUDY.state(w.system, w.state)
    return {"temperature_K": s.temperature_K, "pressure_bar": s.pressure_bar, "density_g_cm3": s.density_g_cm3}


def training_states(w):
    return STUDY.model(w.system, w.model)["states"]


def temperature_aware(kind):
    from cgtransfer.kinds.registry import temperature_aware as aware

    return aware(kind)


def model_kind(w):
    return STUDY.model(w.system, w.model)["kind"]


def kind_settings(w):
    """Only the config section of the model's kind: editing mscg settings does not retrain HIP-NN-TS."""
    from cgtransfer.kinds.registry import kind_settings as settings

    out = {section: physics(values) for section, values in settings(model_kind(w), STUDY.settings(w.system)).items()}
    if temperature_aware(model_kind(w)):  # every training frame gets its state's temperature (the model's input)
        out["hipnn_t"] = STUDY.hipnn_t_settings(w.system, w.model)
        out["state_temperatures_K"] = {s: STUDY.state(w.system, s).temperature_K for s in training_states(w)}
    return out


def split_settings(w):
    """The time-block split of the mapped data (train | valid | test), the part of the training section that
    every kind's jobs read: a HIP-NN-TS learning rate does not refit MS-CG."""
    from cgtransfer.kinds.registry import split_settings as split

    return split(STUDY.settings(w.system)["training"])


def train_settings(w):
    """The split, and the model's own ``train_frames_per_state`` where it sets one (only then: the other models'
    params, and so their fits, stay as they were)."""
    out = split_settings(w)
    frames = STUDY.model(w.system, w.model).get("train_frames_per_state")
    if frames is not None:
        out["train_frames_per_state"] = frames
    return out


def cg_md_settings(w):
    """The cg_md settings a run of this model's kind reads (MS-CG runs do not carry the network's MD keys)."""
    from cgtransfer.kinds.registry import md_settings

    settings = physics(md_settings(model_kind(w), STUDY.cg_md_settings(w.system, w.model)))
    settings.pop("npt", None)  # which runs the study makes, not how one runs: no CG run reruns for it
    return settings


def energy_anchoring_inputs(w):
    """The all-atom thermo of the training states (per-frame potential energy) of an energy-anchored hipnn_t."""
    if not temperature_aware(model_kind(w)) or not STUDY.hipnn_t_settings(w.system, w.model)["energy_anchoring"]:
        return []
    return [reference_file("thermo.csv", s)(w) for s in training_states(w)]


def training_inputs(kind):
    names = {"dataset": "dataset.npz", "summary": "summary.json"}
    return lambda w: [f"{RESULTS}/{w.system}/rep{w.replicate}/cg_data/{s}/{names[kind]}" for s in training_states(w)]


def base_checkpoint(w):
    """The trained model's checkpoint (a volume-corrected model uses its base model's)."""
    return f"{RESULTS}/{w.system}/rep{w.replicate}/models/{STUDY.base_model(w.system, w.model)}/checkpoint"


def volume_term_file(w):
    if STUDY.volume_corrected(w.system, w.model):
        return f"{RESULTS}/{w.system}/rep{w.replicate}/models/{STUDY.base_model(w.system, w.model)}/volume_term.json"
    return []


def nvt_run(name):
    """A model's NVT run; a volume-corrected model reuses its base model's (the term exerts no force, so with
    the same seed the trajectory is the same; compare adds the term's exact pressure shift)."""
    return (
        lambda w: f"{RESULTS}/{w.system}/rep{w.replicate}/cg_md/{STUDY.base_model(w.system, w.model)}/{w.state}/nvt/{name}"
    )


def npt_run(name):
    def files(w):
        if "npt" in STUDY.cg_ensembles(w.system, w.state):
            return f"{RESULTS}/{w.system}/rep{w.replicate}/cg_md/{w.model}/{w.state}/npt/{name}"
        return []

    return files


def base_force_errors(w):
    return f"{RESULTS}/{w.system}/rep{w.replicate}/force_errors/{STUDY.base_model(w.system, w.model)}.json"


def volume_fit_inputs(kind):
    """Per training state of the model: its uncorrected NVT summary, the reference thermo, the mapped data."""
    paths = {
        "cg_nvt": "{R}/{sys}/rep{r}/cg_md/{m}/{s}/nvt/summary.json",
        "reference_thermo": "{R}/{ref}/rep{r}/reference/{s}/thermo.csv",
        "datasets": "{R}/{sys}/rep{r}/cg_data/{s}/dataset.npz",
    }
    return lambda w: [
        paths[kind].format(R=RESULTS, sys=w.system, r=w.replicate, ref=STUDY.reference_system(w.system), m=w.model, s=s)
        for s in training_states(w)
    ]


def density_scan(w, state):
    """The uncorrected model's extra NVT runs for the volume term's pressure slope at a training state: order 2,
    NPT states only (the slope target is the all-atom compressibility), at rho_AA (1 -/+ density_scan_pct %)."""
    vt = STUDY.settings(w.system)["volume_term"]
    if not vt["enabled"] or vt["order"] < 2 or "npt" not in STUDY.ensembles(w.system, state):
        return []
    from cgtransfer.ensembles import density_scan_ensemble

    d = vt["density_scan_pct"] / 100.0
    return [
        f"{RESULTS}/{w.system}/rep{w.replicate}/cg_md/{w.model}/{state}/{density_scan_ensemble(f)}/summary.json"
        for f in (1.0 - d, 1.0 + d)
    ]


def density_scan_inputs(w):
    return [path for s in training_states(w) for path in density_scan(w, s)]


def compare_outputs(system, replicate, name):
    return [f"{RESULTS}/{system}/rep{replicate}/compare/{model}/{state}/{name}" for model, state in STUDY.cells(system)]


def summary_outputs(system, replicate):
    out = [
        f"{RESULTS}/{system}/rep{replicate}/summary/{name}"
        for name in (
            "metrics.csv",
            "long.csv",
            "force_rmse.csv",
            "rdf_error.csv",
            "density_error.csv",
            "pressure_error.csv",
            "angle_error.csv",
            "angles.png",
            "headline.json",
            "headline.txt",
            "provenance.json",
            "transferability.png",
            "rdf_grid.png",
            "density_vs_temperature.png",
            "temperature_transfer.csv",
            "temperature_transfer.png",
        )
    ]
    out.append(f"{RESULTS}/{system}/rep{replicate}/summary/rdf")
    return out


def verdict_outputs(system):
    """The pooled verdict over the system's replicates (rule verdict)."""
    names = ("cells.csv", "calibration.csv", "claims.csv", "claims.json", "verdict.txt", "forest.png", "heatmaps")
    return [f"{RESULTS}/{system}/verdict/{name}" for name in names]


def validation_mscg_models(w):
    """The MS-CG models whose pair force an identity-mapped system checks against the exact one."""
    if not STUDY.system(w.system).get("validation", {}).get("identity_mapping"):
        return []
    return STUDY.models_of_kind(w.system, "mscg")


def validation_volume_models(w):
    """The trained models whose volume term an identity-mapped system checks against the dispersion correction."""
    if not STUDY.system(w.system).get("validation", {}).get("identity_mapping"):
        return []
    if not STUDY.settings(w.system)["volume_term"]["enabled"]:
        return []
    return STUDY.trained_models(w.system)


def exported_models(system):
    """The models the default target exports for LAMMPS and GROMACS. Every MS-CG model, with its volume-corrected
    variant (the volume term for LAMMPS fix bocs), and the temperature-blind HIP-NN-TS models (the temperature-aware
    kind has no route into LAMMPS's ML-IAP, which passes positions and types only)."""
    return [
        name
        for name in STUDY.models(system)
        if STUDY.model(system, name)["kind"] == "mscg"
        or (STUDY.model(system, name)["kind"] == "hipnn" and not STUDY.volume_corrected(system, name))
    ]


def learned_models(system):
    """The HIP-NN-TS models (kinds hipnn and hipnn_t) whose learned interaction the learned stage analyses, those
    run at every state, since it sets what a model learned beside its transfer across the states."""
    n_states = len(STUDY.states_of(system))
    return [
        m
        for m in STUDY.models_of_kind(system, "hipnn") + STUDY.models_of_kind(system, "hipnn_t")
        if len(STUDY.evaluated_states(system, m)) == n_states
    ]


def all_outputs():
    out = []
    for system in STUDY.systems():
        for r in STUDY.replicates(system):
            run = f"{RESULTS}/{system}/rep{r}"
            out += summary_outputs(system, r)
            if STUDY.system(system).get("validation"):
                out += [f"{run}/summary/validation.json", f"{run}/summary/validation.png"]
            out += [f"{run}/models/{m}/metrics.json" for m in STUDY.trained_models(system)]
            out += [f"{run}/models/{m}/pair_potential.png" for m in STUDY.models_of_kind(system, "mscg")]
            out += [f"{run}/models/{m}/export.json" for m in exported_models(system)]
            if learned_models(system):  # rule learned_summary
                out += [f"{run}/summary/{name}" for name in ("learned.csv", "learned_trends.json", "learned.png")]
            out += dynamics_outputs(system, r)  # rule dynamics (dynamics.smk), when dynamics.enabled
        out += verdict_outputs(system)
    return out
