"""Snakemake adapter for rule build_box (logic: cgtransfer.md.box)."""
from cgtransfer.md.box import build_mixture_box
from cgtransfer.io import log_to

with log_to(snakemake.log[0]):
    build_mixture_box(list(zip(snakemake.input.templates, snakemake.params.counts)), snakemake.params.density,
                      snakemake.output[0], seed=snakemake.params.seed)
