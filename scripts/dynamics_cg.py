"""Snakemake adapter for rule dynamics_cg (logic: cgtransfer.stages.cg_md): a model's NVT dynamics segment at
the reference's mean box, with the dynamics section's weak friction, lengths and report interval."""
from cgtransfer.compute import configure

device = snakemake.config["cg_md"]["device"]  # a run-time setting: read here, not a param (no rerun)
configure(snakemake.threads, device)  # before hippynn is imported

from cgtransfer.stages.cg_md import run_cg_md
from cgtransfer.io import log_to

w, p, out = snakemake.wildcards, snakemake.params, snakemake.output
with log_to(snakemake.log[0]):
    run_cg_md(snakemake.input.checkpoint, snakemake.input.dataset, p.state["temperature_K"], p.state["pressure_bar"],
              "nvt", {**p.cg_md, "checkpoint_interval_ps": snakemake.config["cg_md"]["checkpoint_interval_ps"]},
              out.topology, out.trajectory, out.thermo, out.summary,
              label=f"dynamics_cg model {w.model}, state {w.state} ({w.system})",
              threads=snakemake.threads, device=device, seed=p.seed)
