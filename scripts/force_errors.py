"""Snakemake adapter for rule force_errors (logic: cgtransfer.training)."""
from cgtransfer.compute import configure

training = {**snakemake.params.training, "device": snakemake.config["training"]["device"]}  # run-time: not a param
configure(snakemake.threads, training["device"])  # before hippynn is imported

from cgtransfer.io import log_to  # noqa: E402
from cgtransfer.training import state_force_errors  # noqa: E402

with log_to(snakemake.log[0]):
    state_force_errors(snakemake.input.checkpoint, snakemake.input.dataset, training,
                       snakemake.params.in_training, snakemake.output[0], snakemake.params.temperature_K)
