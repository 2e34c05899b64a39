"""Snakemake adapter for rule build_box (logic: cgtransfer.box)."""
from cgtransfer.box import build_box
from cgtransfer.io import log_to

with log_to(snakemake.log[0]):
    build_box(snakemake.input.template, snakemake.params.n_molecules, snakemake.params.density,
              snakemake.output[0], seed=snakemake.params.seed)
