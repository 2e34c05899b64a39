# Helpers of dynamics.smk only (configuration checks of the `dynamics` section and input functions): no rules.


def dynamics_systems():
    dyn = config["dynamics"]
    if not dyn["enabled"]:
        return []
    unknown = [s for s in dyn["systems"] if s not in STUDY.systems()]
    if unknown:
        raise ValueError(f"config key 'dynamics.systems': unknown system(s) {unknown}; the systems: {STUDY.systems()}")
    if not 0 < dyn["fit_start_ps"] < dyn["fit_end_ps"]:
        raise ValueError("config keys 'dynamics.fit_start_ps', 'dynamics.fit_end_ps': need fit_start_ps < fit_end_ps")
    if dyn["production_ps"] < dyn["n_blocks"] * 2 * dyn["fit_end_ps"] - 1e-9:
        raise ValueError(
            f"config key 'dynamics.production_ps' ({dyn['production_ps']}) must be at least n_blocks x 2 x fit_end_ps "
            f"({dyn['n_blocks'] * 2 * dyn['fit_end_ps']:g} ps): each time block fits the same window"
        )
    return dyn["systems"] or STUDY.systems()


def dynamics_models(system):
    """The trained models whose dynamics run (a volume-corrected model's would be its base model's)."""
    chosen = config["dynamics"]["models"]
    return [m for m in STUDY.trained_models(system) if not chosen or m in chosen]


def backmap_models(system):
    if not config["dynamics"]["backmap"]["enabled"]:
        return []
    chosen = config["dynamics"]["backmap"]["models"]
    models = dynamics_models(system)
    return [m for m in STUDY.trained_models(system) if m in chosen] if chosen else models[:1]


def dynamics_cells(system):
    """(model, state) of every CG dynamics segment: each dynamics model where the study evaluates it."""
    return [(m, s) for m in dynamics_models(system) for s in STUDY.evaluated_states(system, m)]


def simulated_states(system):
    """States whose all-atom reference OpenMM simulated (an external reference has no final state to go on from)."""
    external = STUDY.system(STUDY.reference_system(system)).get("external_reference", {})
    return [s.state for s in STUDY.states_of(system) if s.state not in external]


def dynamics_reference_md(w):
    """The reference's physics settings (cutoff, constraints, its friction for the thermalisation)."""
    return physics(STUDY.settings(w.system)["reference_md"])


def dynamics_reference_segment(w):
    """The segment: the dynamics section's friction, lengths and report interval, true masses, and the step: the
    reference's, at most 2 fs if the reference repartitions hydrogen masses (or `aa_timestep_fs`)."""
    md = STUDY.settings(w.system)["reference_md"]
    dyn = config["dynamics"]
    dt = dyn["aa_timestep_fs"] or (min(md["timestep_fs"], 2.0) if md.get("hydrogen_mass_amu") else md["timestep_fs"])
    keys = ("friction_per_ps", "equilibration_ps", "production_ps", "report_interval_ps")
    return {"timestep_fs": dt, **{k: dyn[k] for k in keys}}


def dynamics_cg_settings(w):
    """The CG run's settings with the dynamics section's friction and lengths; a network kind's outer step from
    `dynamics.mts_inner_steps` (at the weak friction a longer one heats: README "Dynamics and backmapping")."""
    keys = ("friction_per_ps", "equilibration_ps", "production_ps", "report_interval_ps")
    cg = {**cg_md_settings(w), **{k: config["dynamics"][k] for k in keys}}
    if "mts_inner_steps" in cg:
        cg["mts_inner_steps"] = config["dynamics"]["mts_inner_steps"]
    return cg


def dynamics_reference_file(name):
    return (
        lambda w: f"{RESULTS}/{STUDY.reference_system(w.system)}/rep{w.replicate}/dynamics/reference/{w.state}/{name}"
    )


def dynamics_outputs(system, replicate):
    if system not in dynamics_systems():
        return []
    names = ["diffusion.csv", "alpha_transfer.csv", "dynamics.json", "dynamics.png", "backmap.csv"]
    return [f"{RESULTS}/{system}/rep{replicate}/summary/{n}" for n in names]
