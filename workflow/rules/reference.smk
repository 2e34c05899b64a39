rule build_box:
    input:
        templates=lambda w: [t for t, _ in STUDY.molecules(w.system)],
        code=stage_code("build_box"),
    output:
        f"{RESULTS}/{{system}}/rep{{replicate}}/box/packed.pdb",
    log:
        f"{RESULTS}/logs/build_box/{{system}}/rep{{replicate}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/build_box/{{system}}/rep{{replicate}}.tsv"
    conda:
        "../../envs/cgtransfer.yaml"
    params:
        counts=lambda w: [n for _, n in STUDY.molecules(w.system)],
        density=lambda w: STUDY.system(w.system)["initial_density_g_cm3"],
        seed=replicate_seed,
    script:
        "../../scripts/build_box.py"


rule reference_md:
    input:
        box=rules.build_box.output[0],
        forcefield=lambda w: STUDY.forcefield_files(w.system),
        not_external=simulated_only,
        code=stage_code("reference_md"),
    output:
        topology=f"{RESULTS}/{{system}}/rep{{replicate}}/reference/{{state}}/topology.pdb",
        trajectory=f"{RESULTS}/{{system}}/rep{{replicate}}/reference/{{state}}/trajectory.dcd",
        forces=f"{RESULTS}/{{system}}/rep{{replicate}}/reference/{{state}}/forces.npz",
        thermo=f"{RESULTS}/{{system}}/rep{{replicate}}/reference/{{state}}/thermo.csv",
    log:
        f"{RESULTS}/logs/reference_md/{{system}}/rep{{replicate}}/{{state}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/reference_md/{{system}}/rep{{replicate}}/{{state}}.tsv"
    # first: with many 1-thread jobs ready, a 2-thread job would otherwise wait for two free cores at once
    priority: 10
    conda:
        "../../envs/cgtransfer.yaml"
    threads: config["reference_md"]["threads"]  # run-time settings stay global
    resources:
        runtime=240,
        mem_mb=4000,
    params:
        state=state_point,
        forcefield=lambda w: STUDY.forcefields(w.system),
        md=lambda w: physics(STUDY.settings(w.system)["reference_md"]),
        seed=replicate_seed,
    script:
        "../../scripts/reference_md.py"


ruleorder: import_reference > reference_md


rule import_reference:
    input:
        topology=external_file("topology"),
        trajectory=external_file("trajectory"),
        thermo=external_file("thermo"),
        templates=lambda w: [t for t, _ in STUDY.molecules(w.system)],
        code=stage_code("import_reference"),
    output:
        topology=f"{RESULTS}/{{system}}/rep{{replicate}}/reference/{{state}}/topology.pdb",
        trajectory=f"{RESULTS}/{{system}}/rep{{replicate}}/reference/{{state}}/trajectory.dcd",
        forces=f"{RESULTS}/{{system}}/rep{{replicate}}/reference/{{state}}/forces.npz",
        thermo=f"{RESULTS}/{{system}}/rep{{replicate}}/reference/{{state}}/thermo.csv",
    log:
        f"{RESULTS}/logs/import_reference/{{system}}/rep{{replicate}}/{{state}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/import_reference/{{system}}/rep{{replicate}}/{{state}}.tsv"
    conda:
        "../../envs/cgtransfer.yaml"
    resources:
        mem_mb=4000,
    params:
        state=state_point,
        spec=external_reading,
    script:
        "../../scripts/import_reference.py"
