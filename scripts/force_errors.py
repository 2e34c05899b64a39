"""Snakemake adapter for rule force_errors (logic: cgtransfer.training)."""
from cgtransfer.io import log_to
from cgtransfer.training import state_force_errors

with log_to(snakemake.log[0]):
    state_force_errors(snakemake.input.checkpoint, snakemake.input.dataset, snakemake.params.training,
                       snakemake.params.in_training, snakemake.output[0])
