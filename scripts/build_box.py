"""Snakemake adapter for rule build_box (logic: cgtransfer.stages.build_box)."""
from cgtransfer.io import log_to
from cgtransfer.stages.build_box import build_box

with log_to(snakemake.log[0]):
    build_box(snakemake.input.templates, snakemake.params.counts, snakemake.params.density, snakemake.output[0],
              seed=snakemake.params.seed)
