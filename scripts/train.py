"""Snakemake adapter for rule train (logic: cgtransfer.stages.train; the model kinds in cgtransfer.kinds)."""
from cgtransfer.compute import configure

training = {**snakemake.params.training, "device": snakemake.config["training"]["device"]}  # run-time: not a param
configure(snakemake.threads, training["device"])  # before hippynn is imported

from cgtransfer.io import log_to
from cgtransfer.stages.train import train_and_report

p, out = snakemake.params, snakemake.output
settings = {k: ({**v, "device": training["device"]} if k == "training" else v) for k, v in p.settings.items()}
with log_to(snakemake.log[0]):
    train_and_report(p.kind, snakemake.input.datasets, snakemake.input.summaries, p.states, settings, p.prior,
                     training, out.checkpoint, out.metrics, out.curve, out.parity,
                     label=f"{snakemake.wildcards.system}/{snakemake.wildcards.model}", seed=p.seed,
                     reference_thermo_paths=list(snakemake.input.reference_thermo) or None)
