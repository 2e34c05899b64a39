"""Snakemake adapter for rule summarize (logic: cgtransfer.stages.summarize)."""
from pathlib import Path

from cgtransfer.io import log_to
from cgtransfer.stages.summarize import summarize

out = snakemake.output
with log_to(snakemake.log[0]):
    rdf_paths = dict(zip(map(tuple, snakemake.params.pairs), snakemake.input.rdfs))
    angle_paths = dict(zip(map(tuple, snakemake.params.pairs), snakemake.input.angles))
    Path(out.rdf_dir).mkdir(parents=True, exist_ok=True)
    table = summarize(snakemake.input.metrics, rdf_paths, snakemake.params.info, dict(out.items()),
                      system=snakemake.wildcards.system, provenance={**snakemake.params.provenance, "config": snakemake.config},
                      angle_paths=angle_paths)
    print(table.to_string())
