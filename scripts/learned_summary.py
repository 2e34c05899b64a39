"""Snakemake adapter for rule learned_summary (logic: cgtransfer.stages.learned)."""
from cgtransfer.io import log_to
from cgtransfer.stages.learned import learned_table

p, inp, out = snakemake.params, snakemake.input, snakemake.output
with log_to(snakemake.log[0]):
    table = learned_table(dict(zip(p.models, inp.json)), dict(zip(p.models, inp.curves)),
                          dict(zip(p.models, inp.triplet)), dict(zip(map(tuple, p.cells), inp.metrics)),
                          {"csv": out.csv, "json": out.json, "figure": out.figure}, system=snakemake.wildcards.system)
    print(table.to_string())
