"""Snakemake adapter for rule verdict (logic: cgtransfer.stages.verdict)."""
from cgtransfer.io import log_to
from cgtransfer.stages.verdict import verdict

with log_to(snakemake.log[0]):
    verdict(list(snakemake.input.long), snakemake.params.info, snakemake.params.state_points,
            dict(snakemake.output.items()), system=snakemake.wildcards.system)
