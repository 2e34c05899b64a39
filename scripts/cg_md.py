"""Snakemake adapter for rule cg_md (logic: cgtransfer.stages.cg_md)."""
from cgtransfer.compute import configure

device = snakemake.config["cg_md"]["device"]  # a run-time setting: read here, not a param (no rerun)
configure(snakemake.threads, device)  # before hippynn is imported

from cgtransfer.stages.cg_md import run_cg_md
from cgtransfer.io import log_to, single_or_none

w, p, out = snakemake.wildcards, snakemake.params, snakemake.output
with log_to(snakemake.log[0]):
    run_cg_md(snakemake.input.checkpoint, snakemake.input.dataset, p.state["temperature_K"], p.state["pressure_bar"],
              w.ensemble, {**p.cg_md, "checkpoint_interval_ps": snakemake.config["cg_md"]["checkpoint_interval_ps"]},
              out.topology, out.trajectory, out.thermo, out.summary,
              label=f"cg_md model {w.model}, state {w.state} ({w.system}, {w.ensemble.upper()})",
              threads=snakemake.threads, device=device, seed=p.seed,
              volume_term_json=single_or_none(snakemake.input.volume_term))
