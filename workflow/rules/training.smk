rule train:
    input:
        datasets=training_inputs("dataset"),
        summaries=training_inputs("summary"),
        reference_thermo=energy_anchoring_inputs,
        code=stage_code("train", per_model_kind=True),
    output:
        checkpoint=directory(f"{RESULTS}/{{system}}/rep{{replicate}}/models/{{model}}/checkpoint"),
        metrics=f"{RESULTS}/{{system}}/rep{{replicate}}/models/{{model}}/metrics.json",
        curve=report(
            f"{RESULTS}/{{system}}/rep{{replicate}}/models/{{model}}/training_curve.png",
            caption="../report/training_curve.rst",
            category="Training",
            labels={"system": "{system}", "model": "{model}", "figure": "training curve"},
        ),
        parity=report(
            f"{RESULTS}/{{system}}/rep{{replicate}}/models/{{model}}/force_parity.png",
            caption="../report/force_parity.rst",
            category="Training",
            labels={"system": "{system}", "model": "{model}", "figure": "force parity"},
        ),
    log:
        f"{RESULTS}/logs/train/{{system}}/rep{{replicate}}/{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{{system}}/rep{{replicate}}/{{model}}.tsv"
    conda:
        "../../envs/cgtransfer.yaml"
    threads: config["training"]["threads"]
    resources:
        runtime=720,
        mem_mb=8000,
    params:
        kind=model_kind,
        states=training_states,
        settings=kind_settings,
        prior=lambda w: STUDY.settings(w.system)["prior"],
        training=train_settings,
        seed=replicate_seed,
    script:
        "../../scripts/train.py"


rule pair_table:
    input:
        checkpoint=rules.train.output.checkpoint,
        code=stage_code("pair_table", per_model_kind=True),
    output:
        table=f"{RESULTS}/{{system}}/rep{{replicate}}/models/{{model}}/pair_table.csv",
        figure=report(
            f"{RESULTS}/{{system}}/rep{{replicate}}/models/{{model}}/pair_potential.png",
            caption="../report/pair_potential.rst",
            category="Training",
            labels={"system": "{system}", "model": "{model}", "figure": "MS-CG pair potential"},
        ),
    log:
        f"{RESULTS}/logs/pair_table/{{system}}/rep{{replicate}}/{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/pair_table/{{system}}/rep{{replicate}}/{{model}}.tsv"
    conda:
        "../../envs/cgtransfer.yaml"
    script:
        "../../scripts/pair_table.py"


rule export:
    input:
        checkpoint=base_checkpoint,
        dataset=lambda w: f"{RESULTS}/{w.system}/rep{w.replicate}/cg_data/{training_states(w)[0]}/dataset.npz",
        volume_term=volume_term_file,
        code=stage_code("export", per_model_kind=True),
    output:
        export=directory(f"{RESULTS}/{{system}}/rep{{replicate}}/models/{{model}}/export"),
        summary=report(
            f"{RESULTS}/{{system}}/rep{{replicate}}/models/{{model}}/export.json",
            caption="../report/export.rst",
            category="Export",
            labels={"system": "{system}", "model": "{model}", "file": "export summary"},
        ),
    log:
        f"{RESULTS}/logs/export/{{system}}/rep{{replicate}}/{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/export/{{system}}/rep{{replicate}}/{{model}}.tsv"
    conda:
        "../../envs/cgtransfer.yaml"
    params:
        temperature_K=lambda w: STUDY.state(w.system, training_states(w)[0]).temperature_K,
        timestep_fs=lambda w: STUDY.cg_md_settings(w.system, w.model)["timestep_fs"],
    script:
        "../../scripts/export.py"


rule force_errors:
    input:
        checkpoint=rules.train.output.checkpoint,
        datasets=lambda w: [
            f"{RESULTS}/{w.system}/rep{w.replicate}/cg_data/{s.state}/dataset.npz" for s in STUDY.states_of(w.system)
        ],
        code=stage_code("force_errors", per_model_kind=True),
    output:
        f"{RESULTS}/{{system}}/rep{{replicate}}/force_errors/{{model}}.json",
    log:
        f"{RESULTS}/logs/force_errors/{{system}}/rep{{replicate}}/{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/force_errors/{{system}}/rep{{replicate}}/{{model}}.tsv"
    conda:
        "../../envs/cgtransfer.yaml"
    threads: 1
    params:
        training=split_settings,
        states=lambda w: [s.state for s in STUDY.states_of(w.system)],
        training_states=training_states,
        temperatures_K=lambda w: {s.state: s.temperature_K for s in STUDY.states_of(w.system)},
    script:
        "../../scripts/force_errors.py"


rule fit_volume_term:
    input:
        checkpoint=rules.train.output.checkpoint,
        cg_nvt=volume_fit_inputs("cg_nvt"),
        cg_scan=density_scan_inputs,
        reference_thermo=volume_fit_inputs("reference_thermo"),
        datasets=volume_fit_inputs("datasets"),
        code=stage_code("fit_volume_term", per_model_kind=True),
    output:
        f"{RESULTS}/{{system}}/rep{{replicate}}/models/{{model}}/volume_term.json",
    log:
        f"{RESULTS}/logs/fit_volume_term/{{system}}/rep{{replicate}}/{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/fit_volume_term/{{system}}/rep{{replicate}}/{{model}}.tsv"
    conda:
        "../../envs/cgtransfer.yaml"
    threads: 1
    params:
        states=lambda w: [
            {
                "state": s,
                "temperature_K": STUDY.state(w.system, s).temperature_K,
                "pressure_bar": STUDY.state(w.system, s).pressure_bar,
            }
            for s in training_states(w)
        ],
        scans_per_state=lambda w: [len(density_scan(w, s)) for s in training_states(w)],
        settings=lambda w: STUDY.settings(w.system)["volume_term"],
    script:
        "../../scripts/fit_volume_term.py"
