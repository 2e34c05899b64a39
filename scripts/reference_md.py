"""Snakemake adapter for rule reference_md (logic: cgtransfer.stages.reference)."""
from cgtransfer.io import log_to
from cgtransfer.stages.reference import run_reference

w, p, out = snakemake.wildcards, snakemake.params, snakemake.output
run_time = snakemake.config["reference_md"]  # run-time settings: not params (changing them reruns nothing)
md = {**p.md, "platform": run_time["platform"], "checkpoint_interval_ps": run_time["checkpoint_interval_ps"]}
with log_to(snakemake.log[0]):
    run_reference(snakemake.input.box, p.forcefield, p.state["temperature_K"], p.state["pressure_bar"],
                  p.state["density_g_cm3"], md, out.topology, out.trajectory, out.forces, out.thermo,
                  threads=snakemake.threads, seed=p.seed, label=f"reference_md {w.system}/{w.state}",
                  failure_pdb=snakemake.log[0].removesuffix(".log") + ".last_good.pdb")
