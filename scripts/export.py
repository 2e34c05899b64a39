"""Snakemake adapter for rule export (logic: cgtransfer.stages.export)."""
from cgtransfer.io import log_to, single_or_none, write_json
from cgtransfer.stages.export import export_model

w, p, inp, out = snakemake.wildcards, snakemake.params, snakemake.input, snakemake.output
with log_to(snakemake.log[0]):
    summary = export_model(inp.checkpoint, inp.dataset, out.export, label=f"{w.system}/{w.model}",
                           temperature_K=p.temperature_K, timestep_fs=p.timestep_fs,
                           volume_term_json=single_or_none(inp.volume_term))
    print(summary)
    write_json(out.summary, summary)
