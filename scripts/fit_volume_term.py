"""Snakemake adapter for rule fit_volume_term (logic: cgtransfer.stages.volume_fit)."""
from cgtransfer.compute import configure

configure(snakemake.threads, "cpu")  # before hippynn is imported

from cgtransfer.io import log_to
from cgtransfer.stages.volume_fit import fit_for_model

inp, p = snakemake.input, snakemake.params
scans, flat = [], list(inp.cg_scan)
for n in p.scans_per_state:  # the flat input list, per training state
    scans.append(flat[:n])
    flat = flat[n:]
with log_to(snakemake.log[0]):
    fit_for_model(inp.checkpoint, p.states, list(inp.cg_nvt), list(inp.reference_thermo), list(inp.datasets),
                  p.settings, snakemake.output[0], label=f"fit_volume_term {snakemake.wildcards.model}",
                  cg_scan_summaries=scans)
