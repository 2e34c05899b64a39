"""Snakemake adapter for rule dynamics_reference (logic: cgtransfer.stages.dynamics_md)."""
import pandas as pd

from cgtransfer.io import log_to
from cgtransfer.stages.dynamics_md import run_aa_segment

w, p, inp, out = snakemake.wildcards, snakemake.params, snakemake.input, snakemake.output
md = {**p.md, "platform": snakemake.config["reference_md"]["platform"]}  # run-time setting: not a param
density = p.state["density_g_cm3"] or float(pd.read_csv(inp.thermo)["density_g_cm3"].mean())
with log_to(snakemake.log[0]):
    run_aa_segment(inp.start, p.forcefield, p.state["temperature_K"], density, md, p.segment, out.topology,
                   out.trajectory, out.forces, out.thermo, threads=snakemake.threads, seed=p.seed,
                   label=f"dynamics_reference {w.system}/{w.state}")
