"""Snakemake adapter for rule force_errors (logic: cgtransfer.stages.force_errors)."""
from cgtransfer.compute import configure

training = {**snakemake.params.training, "device": snakemake.config["training"]["device"]}  # run-time: not a param
configure(snakemake.threads, training["device"])  # before hippynn is imported

from cgtransfer.io import log_to
from cgtransfer.stages.force_errors import model_force_errors

p = snakemake.params
with log_to(snakemake.log[0]):
    print(model_force_errors(snakemake.input.checkpoint, dict(zip(p.states, snakemake.input.datasets)), training,
                             p.training_states, snakemake.output[0], p.temperatures_K))
