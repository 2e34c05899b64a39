"""Snakemake adapter for rule pair_table (logic: cgtransfer.stages.pair_table)."""
from cgtransfer.io import log_to
from cgtransfer.stages.pair_table import export_pair_table

with log_to(snakemake.log[0]):
    export_pair_table(snakemake.input.checkpoint, snakemake.output.table, snakemake.output.figure,
                      label=f"{snakemake.wildcards.system}/{snakemake.wildcards.model}")
