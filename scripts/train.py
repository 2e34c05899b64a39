"""Snakemake adapter for rule train (logic: cgtransfer.training; the model kinds in cgtransfer.models)."""
from cgtransfer.compute import configure

configure(snakemake.threads, snakemake.params.training["device"])  # before hippynn is imported

from cgtransfer.io import log_to  # noqa: E402
from cgtransfer.training import train_and_report  # noqa: E402

p, out = snakemake.params, snakemake.output
with log_to(snakemake.log[0]):
    train_and_report(p.kind, snakemake.input.datasets, snakemake.input.summaries, p.states, p.settings, p.prior,
                     p.training, out.checkpoint, out.metrics, out.curve, out.parity,
                     label=f"{snakemake.wildcards.system}/{snakemake.wildcards.model}", seed=p.seed)
