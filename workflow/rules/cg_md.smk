rule cg_md:
    input:
        checkpoint=base_checkpoint,
        dataset=rules.map_to_cg.output.dataset,
        volume_term=volume_term_file,
        code=stage_code("cg_md", per_model_kind=True),
    output:
        topology=f"{RESULTS}/{{system}}/rep{{replicate}}/cg_md/{{model}}/{{state}}/{{ensemble}}/topology.pdb",
        trajectory=f"{RESULTS}/{{system}}/rep{{replicate}}/cg_md/{{model}}/{{state}}/{{ensemble}}/trajectory.dcd",
        thermo=f"{RESULTS}/{{system}}/rep{{replicate}}/cg_md/{{model}}/{{state}}/{{ensemble}}/thermo.csv",
        summary=f"{RESULTS}/{{system}}/rep{{replicate}}/cg_md/{{model}}/{{state}}/{{ensemble}}/summary.json",
    log:
        f"{RESULTS}/logs/cg_md/{{system}}/rep{{replicate}}/{{model}}/{{state}}/{{ensemble}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/cg_md/{{system}}/rep{{replicate}}/{{model}}/{{state}}/{{ensemble}}.tsv"
    conda:
        "../../envs/cgtransfer.yaml"
    threads: config["cg_md"]["threads"]
    resources:
        runtime=240,
        mem_mb=4000,
    params:
        state=state_point,
        cg_md=cg_md_settings,
        seed=replicate_seed,
    script:
        "../../scripts/cg_md.py"
