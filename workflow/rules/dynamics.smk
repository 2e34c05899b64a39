# CG dynamics and backmapping (config section `dynamics`, README "Dynamics and backmapping"): extra NVT segments
# with a weak Langevin thermostat for the all-atom reference (from its final configuration, true masses) and each
# CG model (the cg_md stage's own force setup), the diffusion analysis into the summary, backmapped CG frames.


include: "dynamics_helpers.smk"


rule dynamics_reference:
    input:
        start=f"{RESULTS}/{{system}}/rep{{replicate}}/reference/{{state}}/topology.pdb",
        thermo=f"{RESULTS}/{{system}}/rep{{replicate}}/reference/{{state}}/thermo.csv",
        forcefield=lambda w: STUDY.forcefield_files(w.system),
        code=stage_code("dynamics_reference"),
    output:
        topology=f"{RESULTS}/{{system}}/rep{{replicate}}/dynamics/reference/{{state}}/topology.pdb",
        trajectory=f"{RESULTS}/{{system}}/rep{{replicate}}/dynamics/reference/{{state}}/trajectory.dcd",
        forces=f"{RESULTS}/{{system}}/rep{{replicate}}/dynamics/reference/{{state}}/forces.npz",
        thermo=f"{RESULTS}/{{system}}/rep{{replicate}}/dynamics/reference/{{state}}/thermo.csv",
    log:
        f"{RESULTS}/logs/dynamics_reference/{{system}}/rep{{replicate}}/{{state}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/dynamics_reference/{{system}}/rep{{replicate}}/{{state}}.tsv"
    conda:
        "../../envs/cgtransfer.yaml"
    threads: config["reference_md"]["threads"]
    resources:
        runtime=240,
        mem_mb=4000,
    params:
        state=state_point,
        forcefield=lambda w: STUDY.forcefields(w.system),
        md=dynamics_reference_md,
        segment=dynamics_reference_segment,
        seed=replicate_seed,
    script:
        "../../scripts/dynamics_reference.py"


rule map_dynamics:
    input:
        topology=dynamics_reference_file("topology.pdb"),
        trajectory=dynamics_reference_file("trajectory.dcd"),
        forces=dynamics_reference_file("forces.npz"),
        code=stage_code("map_dynamics"),
    output:
        f"{RESULTS}/{{system}}/rep{{replicate}}/dynamics/mapped/{{state}}.npz",
    log:
        f"{RESULTS}/logs/map_dynamics/{{system}}/rep{{replicate}}/{{state}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/map_dynamics/{{system}}/rep{{replicate}}/{{state}}.tsv"
    conda:
        "../../envs/cgtransfer.yaml"
    resources:
        mem_mb=4000,
    params:
        mapping=lambda w: STUDY.system(w.system)["mapping"],
        state=state_point,
    script:
        "../../scripts/map_dynamics.py"


rule dynamics_cg:
    input:
        checkpoint=base_checkpoint,
        dataset=rules.map_to_cg.output.dataset,
        code=stage_code("dynamics_cg", per_model_kind=True),
    output:
        topology=f"{RESULTS}/{{system}}/rep{{replicate}}/dynamics/cg/{{model}}/{{state}}/topology.pdb",
        trajectory=f"{RESULTS}/{{system}}/rep{{replicate}}/dynamics/cg/{{model}}/{{state}}/trajectory.dcd",
        thermo=f"{RESULTS}/{{system}}/rep{{replicate}}/dynamics/cg/{{model}}/{{state}}/thermo.csv",
        summary=f"{RESULTS}/{{system}}/rep{{replicate}}/dynamics/cg/{{model}}/{{state}}/summary.json",
    log:
        f"{RESULTS}/logs/dynamics_cg/{{system}}/rep{{replicate}}/{{model}}/{{state}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/dynamics_cg/{{system}}/rep{{replicate}}/{{model}}/{{state}}.tsv"
    conda:
        "../../envs/cgtransfer.yaml"
    threads: config["cg_md"]["threads"]
    resources:
        runtime=240,
        mem_mb=4000,
    params:
        state=state_point,
        cg_md=dynamics_cg_settings,
        seed=replicate_seed,
    script:
        "../../scripts/dynamics_cg.py"


rule backmap:
    input:
        cg_topology=nvt_run("topology.pdb"),
        cg_trajectory=nvt_run("trajectory.dcd"),
        reference_topology=reference_file("topology.pdb"),
        reference_trajectory=reference_file("trajectory.dcd"),
        reference_thermo=reference_file("thermo.csv"),
        forcefield=lambda w: STUDY.forcefield_files(STUDY.reference_system(w.system)),
        code=stage_code("backmap"),
    output:
        pdb=f"{RESULTS}/{{system}}/rep{{replicate}}/backmap/{{model}}/{{state}}/backmapped.pdb",
        check=f"{RESULTS}/{{system}}/rep{{replicate}}/backmap/{{model}}/{{state}}/check.json",
    log:
        f"{RESULTS}/logs/backmap/{{system}}/rep{{replicate}}/{{model}}/{{state}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/backmap/{{system}}/rep{{replicate}}/{{model}}/{{state}}.tsv"
    conda:
        "../../envs/cgtransfer.yaml"
    threads: config["reference_md"]["threads"]
    resources:
        runtime=120,
        mem_mb=4000,
    params:
        state=state_point,
        forcefield=lambda w: STUDY.forcefields(STUDY.reference_system(w.system)),
        mapping=lambda w: STUDY.system(w.system)["mapping"],
        md=lambda w: physics(STUDY.settings(STUDY.reference_system(w.system))["reference_md"]),
        rdf=lambda w: STUDY.settings(w.system)["rdf"],
        settings={k: v for k, v in config["dynamics"]["backmap"].items() if k not in ("enabled", "models")},
        seed=replicate_seed,
    script:
        "../../scripts/backmap.py"


rule dynamics:
    input:
        reference=lambda w: [
            f"{RESULTS}/{w.system}/rep{w.replicate}/dynamics/mapped/{s}.npz" for s in simulated_states(w.system)
        ],
        reference_thermo=lambda w: [
            f"{RESULTS}/{STUDY.reference_system(w.system)}/rep{w.replicate}/dynamics/reference/{s}/thermo.csv"
            for s in simulated_states(w.system)
        ],
        cg_topologies=lambda w: [
            f"{RESULTS}/{w.system}/rep{w.replicate}/dynamics/cg/{m}/{s}/topology.pdb"
            for m, s in dynamics_cells(w.system)
        ],
        cg_trajectories=lambda w: [
            f"{RESULTS}/{w.system}/rep{w.replicate}/dynamics/cg/{m}/{s}/trajectory.dcd"
            for m, s in dynamics_cells(w.system)
        ],
        cg_summaries=lambda w: [
            f"{RESULTS}/{w.system}/rep{w.replicate}/dynamics/cg/{m}/{s}/summary.json"
            for m, s in dynamics_cells(w.system)
        ],
        backmap=lambda w: [
            f"{RESULTS}/{w.system}/rep{w.replicate}/backmap/{m}/{s}/check.json"
            for m in backmap_models(w.system)
            for s in simulated_states(w.system)
        ],
        code=stage_code("dynamics"),
    output:
        diffusion=f"{RESULTS}/{{system}}/rep{{replicate}}/summary/diffusion.csv",
        transfer=f"{RESULTS}/{{system}}/rep{{replicate}}/summary/alpha_transfer.csv",
        json=f"{RESULTS}/{{system}}/rep{{replicate}}/summary/dynamics.json",
        figure=report(
            f"{RESULTS}/{{system}}/rep{{replicate}}/summary/dynamics.png",
            caption="../report/dynamics.rst",
            category="Dynamics",
            labels={"system": "{system}", "figure": "diffusion and CG time scale"},
        ),
        backmap=f"{RESULTS}/{{system}}/rep{{replicate}}/summary/backmap.csv",
    log:
        f"{RESULTS}/logs/dynamics/{{system}}/rep{{replicate}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/dynamics/{{system}}/rep{{replicate}}.tsv"
    conda:
        "../../envs/cgtransfer.yaml"
    params:
        reference_states=lambda w: simulated_states(w.system),
        pairs=lambda w: dynamics_cells(w.system),
        states=lambda w: {s.state: s.temperature_K for s in STUDY.states_of(w.system)},
        models=lambda w: {
            m: {"kind": STUDY.model(w.system, m)["kind"], "states": list(STUDY.model(w.system, m)["states"])}
            for m in dynamics_models(w.system)
        },
        settings={k: v for k, v in config["dynamics"].items() if k not in ("backmap", "enabled", "systems", "models")},
        git_revision=GIT_REVISION,  # as summarize's provenance: the cheap table rule reruns per commit, not the segments
    script:
        "../../scripts/dynamics.py"
