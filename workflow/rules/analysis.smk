rule compare:
    input:
        reference_rdf=rules.map_to_cg.output.rdf,
        reference_angles=rules.map_to_cg.output.angles,
        reference_bonds=rules.map_to_cg.output.bonds,
        reference_summary=rules.map_to_cg.output.summary,
        reference_thermo=reference_file("thermo.csv"),
        nvt_topology=nvt_run("topology.pdb"),
        nvt_trajectory=nvt_run("trajectory.dcd"),
        nvt_summary=nvt_run("summary.json"),
        npt_summary=npt_run("summary.json"),
        npt_topology=npt_run("topology.pdb"),
        npt_trajectory=npt_run("trajectory.dcd"),
        npt_thermo=npt_run("thermo.csv"),
        force_errors=base_force_errors,
        volume_term=volume_term_file,
        code=stage_code("compare"),
    output:
        metrics=f"{RESULTS}/{{system}}/rep{{replicate}}/compare/{{model}}/{{state}}/metrics.json",
        rdf=f"{RESULTS}/{{system}}/rep{{replicate}}/compare/{{model}}/{{state}}/rdf.csv",
        angles=f"{RESULTS}/{{system}}/rep{{replicate}}/compare/{{model}}/{{state}}/angles.csv",
    log:
        f"{RESULTS}/logs/compare/{{system}}/rep{{replicate}}/{{model}}/{{state}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/compare/{{system}}/rep{{replicate}}/{{model}}/{{state}}.tsv"
    conda:
        "../../envs/cgtransfer.yaml"
    params:
        state=state_point,
        rdf=lambda w: STUDY.settings(w.system)["rdf"],
        kind=model_kind,
        in_training=lambda w: w.state in training_states(w),
    script:
        "../../scripts/compare.py"


rule summarize:
    input:
        metrics=lambda w: compare_outputs(w.system, w.replicate, "metrics.json"),
        rdfs=lambda w: compare_outputs(w.system, w.replicate, "rdf.csv"),
        angles=lambda w: compare_outputs(w.system, w.replicate, "angles.csv"),
        code=stage_code("summarize"),
    output:
        metrics=f"{RESULTS}/{{system}}/rep{{replicate}}/summary/metrics.csv",
        long=f"{RESULTS}/{{system}}/rep{{replicate}}/summary/long.csv",
        force_rmse=f"{RESULTS}/{{system}}/rep{{replicate}}/summary/force_rmse.csv",
        rdf_error=f"{RESULTS}/{{system}}/rep{{replicate}}/summary/rdf_error.csv",
        density_error=f"{RESULTS}/{{system}}/rep{{replicate}}/summary/density_error.csv",
        pressure_error=f"{RESULTS}/{{system}}/rep{{replicate}}/summary/pressure_error.csv",
        angle_error=f"{RESULTS}/{{system}}/rep{{replicate}}/summary/angle_error.csv",
        bond_error=f"{RESULTS}/{{system}}/rep{{replicate}}/summary/bond_error.csv",
        angles_figure=report(
            f"{RESULTS}/{{system}}/rep{{replicate}}/summary/angles.png",
            caption="../report/angles.rst",
            category="Transferability",
            labels={"system": "{system}", "figure": "three-body angle distributions"},
        ),
        headline_json=f"{RESULTS}/{{system}}/rep{{replicate}}/summary/headline.json",
        provenance=f"{RESULTS}/{{system}}/rep{{replicate}}/summary/provenance.json",
        headline_txt=report(
            f"{RESULTS}/{{system}}/rep{{replicate}}/summary/headline.txt",
            caption="../report/headline.rst",
            category="Transferability",
            labels={"system": "{system}", "figure": "headline comparison"},
        ),
        heatmaps=report(
            f"{RESULTS}/{{system}}/rep{{replicate}}/summary/transferability.png",
            caption="../report/transferability.rst",
            category="Transferability",
            labels={"system": "{system}", "figure": "model x state matrices"},
        ),
        rdf_grid=report(
            f"{RESULTS}/{{system}}/rep{{replicate}}/summary/rdf_grid.png",
            caption="../report/rdf_grid.rst",
            category="Transferability",
            labels={"system": "{system}", "figure": "RDF grid (models x states)"},
        ),
        density_figure=report(
            f"{RESULTS}/{{system}}/rep{{replicate}}/summary/density_vs_temperature.png",
            caption="../report/density.rst",
            category="Transferability",
            labels={"system": "{system}", "figure": "density vs temperature"},
        ),
        temperature_transfer=f"{RESULTS}/{{system}}/rep{{replicate}}/summary/temperature_transfer.csv",
        temperature_figure=report(
            f"{RESULTS}/{{system}}/rep{{replicate}}/summary/temperature_transfer.png",
            caption="../report/temperature_transfer.rst",
            category="Transferability",
            labels={"system": "{system}", "figure": "temperature transfer"},
        ),
        rdf_dir=report(
            directory(f"{RESULTS}/{{system}}/rep{{replicate}}/summary/rdf"),
            patterns=["rdf_{state}.png"],
            caption="../report/rdf.rst",
            category="RDFs",
            labels={"figure": "RDF overlay"},
        ),
    log:
        f"{RESULTS}/logs/summarize/{{system}}/rep{{replicate}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/summarize/{{system}}/rep{{replicate}}.tsv"
    conda:
        "../../envs/cgtransfer.yaml"
    params:
        info=lambda w: {m: STUDY.model(w.system, m) for m in STUDY.models(w.system)},
        provenance=lambda w: {
            "git_revision": GIT_REVISION,
            "state_points": [vars(s) for s in STUDY.states_of(w.system)],
        },
        pairs=lambda w: STUDY.cells(w.system),
    script:
        "../../scripts/summarize.py"


rule verdict:
    input:
        long=lambda w: [f"{RESULTS}/{w.system}/rep{r}/summary/long.csv" for r in STUDY.replicates(w.system)],
        code=stage_code("verdict"),
    output:
        cells=f"{RESULTS}/{{system}}/verdict/cells.csv",
        calibration=f"{RESULTS}/{{system}}/verdict/calibration.csv",
        claims_csv=f"{RESULTS}/{{system}}/verdict/claims.csv",
        claims_json=f"{RESULTS}/{{system}}/verdict/claims.json",
        text=report(
            f"{RESULTS}/{{system}}/verdict/verdict.txt",
            caption="../report/verdict.rst",
            category="Verdict",
            labels={"system": "{system}", "figure": "claims in words"},
        ),
        forest=report(
            f"{RESULTS}/{{system}}/verdict/forest.png",
            caption="../report/forest.rst",
            category="Verdict",
            labels={"system": "{system}", "figure": "forest plot of the claims"},
        ),
        heatmaps=report(
            directory(f"{RESULTS}/{{system}}/verdict/heatmaps"),
            patterns=["{name}.png"],
            caption="../report/verdict_heatmaps.rst",
            category="Verdict",
            labels={"system": "{system}", "figure": "{name}"},
        ),
    log:
        f"{RESULTS}/logs/verdict/{{system}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/verdict/{{system}}.tsv"
    conda:
        "../../envs/cgtransfer.yaml"
    params:
        info=lambda w: {m: STUDY.model(w.system, m) for m in STUDY.models(w.system)},
        state_points=lambda w: [vars(s) for s in STUDY.states_of(w.system)],
    script:
        "../../scripts/verdict.py"


rule validate:
    input:
        templates=lambda w: [t for t, _ in STUDY.molecules(w.system)],
        reference_summaries=lambda w: [
            f"{RESULTS}/{w.system}/rep{w.replicate}/cg_data/{s.state}/summary.json" for s in STUDY.states_of(w.system)
        ],
        datasets=lambda w: [
            f"{RESULTS}/{w.system}/rep{w.replicate}/cg_data/{s.state}/dataset.npz" for s in STUDY.states_of(w.system)
        ],
        reference_rdfs=lambda w: [
            f"{RESULTS}/{w.system}/rep{w.replicate}/cg_data/{s.state}/rdf.csv" for s in STUDY.states_of(w.system)
        ],
        forces=lambda w: [reference_file("forces.npz", s.state)(w) for s in STUDY.states_of(w.system)],
        pair_tables=lambda w: [
            f"{RESULTS}/{w.system}/rep{w.replicate}/models/{m}/pair_table.csv" for m in validation_mscg_models(w)
        ],
        metrics=lambda w: compare_outputs(w.system, w.replicate, "metrics.json"),
        volume_terms=lambda w: [
            f"{RESULTS}/{w.system}/rep{w.replicate}/models/{m}/volume_term.json" for m in validation_volume_models(w)
        ],
        code=stage_code("validate"),
    output:
        json=f"{RESULTS}/{{system}}/rep{{replicate}}/summary/validation.json",
        figure=report(
            f"{RESULTS}/{{system}}/rep{{replicate}}/summary/validation.png",
            caption="../report/validation.rst",
            category="Validation",
            labels={"system": "{system}", "figure": "known-answer validation"},
        ),
    log:
        f"{RESULTS}/logs/validate/{{system}}/rep{{replicate}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/validate/{{system}}/rep{{replicate}}.tsv"
    conda:
        "../../envs/cgtransfer.yaml"
    params:
        spec=lambda w: STUDY.system(w.system).get("validation", {}),
        states=lambda w: [s.state for s in STUDY.states_of(w.system)],
        mscg_models=validation_mscg_models,
        volume_models=validation_volume_models,
        cells=lambda w: STUDY.cells(w.system),
        forcefield=lambda w: STUDY.forcefields(w.system),
        reference_md=lambda w: physics(STUDY.settings(w.system)["reference_md"]),
        mscg_cutoff_A=lambda w: STUDY.settings(w.system)["mscg"]["cutoff_A"],
    script:
        "../../scripts/validate.py"


rule learned:
    input:
        checkpoint=rules.train.output.checkpoint,
        datasets=lambda w: [
            f"{RESULTS}/{w.system}/rep{w.replicate}/cg_data/{s.state}/dataset.npz" for s in STUDY.states_of(w.system)
        ],
        code=stage_code("learned"),
    output:
        json=f"{RESULTS}/{{system}}/rep{{replicate}}/learned/{{model}}/learned.json",
        curves=f"{RESULTS}/{{system}}/rep{{replicate}}/learned/{{model}}/pair_curves.csv",
        triplet=f"{RESULTS}/{{system}}/rep{{replicate}}/learned/{{model}}/three_body.csv",
        hierarchy=f"{RESULTS}/{{system}}/rep{{replicate}}/learned/{{model}}/energy_hierarchy.csv",
    log:
        f"{RESULTS}/logs/learned/{{system}}/rep{{replicate}}/{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/learned/{{system}}/rep{{replicate}}/{{model}}.tsv"
    conda:
        "../../envs/cgtransfer.yaml"
    threads: 1
    params:
        states=lambda w: [s.state for s in STUDY.states_of(w.system)],
        temperatures_K=lambda w: {s.state: s.temperature_K for s in STUDY.states_of(w.system)},
        training=split_settings,
        mscg=lambda w: physics(STUDY.settings(w.system)["mscg"]),
    script:
        "../../scripts/learned.py"


rule learned_summary:
    input:
        json=lambda w: [
            f"{RESULTS}/{w.system}/rep{w.replicate}/learned/{m}/learned.json" for m in learned_models(w.system)
        ],
        curves=lambda w: [
            f"{RESULTS}/{w.system}/rep{w.replicate}/learned/{m}/pair_curves.csv" for m in learned_models(w.system)
        ],
        triplet=lambda w: [
            f"{RESULTS}/{w.system}/rep{w.replicate}/learned/{m}/three_body.csv" for m in learned_models(w.system)
        ],
        metrics=lambda w: [
            f"{RESULTS}/{w.system}/rep{w.replicate}/compare/{m}/{s}/metrics.json"
            for m in learned_models(w.system)
            for s in STUDY.evaluated_states(w.system, m)
        ],
        code=stage_code("learned_summary"),
    output:
        csv=f"{RESULTS}/{{system}}/rep{{replicate}}/summary/learned.csv",
        json=f"{RESULTS}/{{system}}/rep{{replicate}}/summary/learned_trends.json",
        figure=report(
            f"{RESULTS}/{{system}}/rep{{replicate}}/summary/learned.png",
            caption="../report/learned.rst",
            category="What the network learned",
            labels={"system": "{system}", "figure": "effective pair potential, many-body share"},
        ),
    log:
        f"{RESULTS}/logs/learned_summary/{{system}}/rep{{replicate}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/learned_summary/{{system}}/rep{{replicate}}.tsv"
    conda:
        "../../envs/cgtransfer.yaml"
    params:
        models=lambda w: learned_models(w.system),
        cells=lambda w: [(m, s.state) for m in learned_models(w.system) for s in STUDY.states_of(w.system)],
    script:
        "../../scripts/learned_summary.py"
