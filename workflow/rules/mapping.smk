rule map_to_cg:
    input:
        topology=reference_file("topology.pdb"),
        trajectory=reference_file("trajectory.dcd"),
        forces=reference_file("forces.npz"),
        code=stage_code("map_to_cg"),
    output:
        dataset=f"{RESULTS}/{{system}}/rep{{replicate}}/cg_data/{{state}}/dataset.npz",
        rdf=f"{RESULTS}/{{system}}/rep{{replicate}}/cg_data/{{state}}/rdf.csv",
        angles=f"{RESULTS}/{{system}}/rep{{replicate}}/cg_data/{{state}}/angles.csv",
        bonds=f"{RESULTS}/{{system}}/rep{{replicate}}/cg_data/{{state}}/bonds.csv",
        summary=f"{RESULTS}/{{system}}/rep{{replicate}}/cg_data/{{state}}/summary.json",
    log:
        f"{RESULTS}/logs/map_to_cg/{{system}}/rep{{replicate}}/{{state}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/map_to_cg/{{system}}/rep{{replicate}}/{{state}}.tsv"
    conda:
        "../../envs/cgtransfer.yaml"
    resources:
        mem_mb=4000,
    params:
        mapping=lambda w: STUDY.system(w.system)["mapping"],
        rdf=lambda w: STUDY.settings(w.system)["rdf"],
        state=state_point,
    script:
        "../../scripts/map_to_cg.py"
