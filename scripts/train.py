"""Snakemake adapter for rule train (logic: cgtransfer.training)."""
import torch

from cgtransfer.io import log_to
from cgtransfer.training import train_and_report

torch.set_num_threads(snakemake.threads)
p, out = snakemake.params, snakemake.output
with log_to(snakemake.log[0]):
    train_and_report(snakemake.input.datasets, snakemake.input.summaries, p.states, p.network, p.prior, p.training,
                     out.checkpoint, out.metrics, out.curve, out.parity,
                     label=f"{snakemake.wildcards.system}/{snakemake.wildcards.model}", seed=p.seed)
