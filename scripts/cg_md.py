"""Snakemake adapter for rule cg_md (logic: cgtransfer.cg_md)."""
import torch

from cgtransfer.cg_md import run_cg_md
from cgtransfer.io import log_to

torch.set_num_threads(snakemake.threads)
w, p, out = snakemake.wildcards, snakemake.params, snakemake.output
with log_to(snakemake.log[0]):
    run_cg_md(snakemake.input.checkpoint, snakemake.input.dataset, p.state["temperature_K"], p.state["pressure_bar"],
              w.ensemble, p.cg_md, out.topology, out.trajectory, out.thermo, out.summary,
              label=f"cg_md model {w.model}, state {w.state} ({w.system}, {w.ensemble.upper()})",
              threads=snakemake.threads, device=p.cg_md["device"], seed=p.seed)
