rule train:
    input:
        datasets=training_inputs("dataset"),
        summaries=training_inputs("summary"),
    output:
        checkpoint=directory(f"{RESULTS}/{{system}}/models/{{model}}/checkpoint"),
        metrics=f"{RESULTS}/{{system}}/models/{{model}}/metrics.json",
        curve=report(
            f"{RESULTS}/{{system}}/models/{{model}}/training_curve.png",
            caption="../report/training_curve.rst",
            category="Training",
            labels={"system": "{system}", "model": "{model}", "figure": "training curve"},
        ),
        parity=report(
            f"{RESULTS}/{{system}}/models/{{model}}/force_parity.png",
            caption="../report/force_parity.rst",
            category="Training",
            labels={"system": "{system}", "model": "{model}", "figure": "force parity"},
        ),
    params:
        states=training_states,
        network=config["model"],
        prior=config["prior"],
        training=config["training"],
        seed=config["seed"],
    threads: config["training"]["threads"]
    resources:
        runtime=720,
        mem_mb=8000,
    log:
        f"{RESULTS}/logs/train/{{system}}/{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{{system}}/{{model}}.tsv"
    script:
        "../../scripts/train.py"


rule force_errors:
    input:
        checkpoint=rules.train.output.checkpoint,
        dataset=rules.map_to_cg.output.dataset,
    output:
        f"{RESULTS}/{{system}}/force_errors/{{model}}/{{state}}.json",
    params:
        training=config["training"],
        in_training=lambda w: w.state in training_states(w),
    threads: 1
    log:
        f"{RESULTS}/logs/force_errors/{{system}}/{{model}}/{{state}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/force_errors/{{system}}/{{model}}/{{state}}.tsv"
    script:
        "../../scripts/force_errors.py"
