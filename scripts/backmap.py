"""Snakemake adapter for rule backmap (logic: cgtransfer.stages.backmap)."""
from cgtransfer.io import log_to
from cgtransfer.stages.backmap import backmap_run

w, p, inp, out = snakemake.wildcards, snakemake.params, snakemake.input, snakemake.output
md = {**p.md, "platform": snakemake.config["reference_md"]["platform"]}
with log_to(snakemake.log[0]):
    backmap_run(inp.cg_topology, inp.cg_trajectory, inp.reference_topology, inp.reference_trajectory,
                inp.reference_thermo, p.forcefield, p.mapping, md, p.state["temperature_K"], p.state["pressure_bar"],
                p.settings, p.rdf, out.pdb, out.check, label=f"backmap {w.system}/{w.model}/{w.state}", seed=p.seed,
                threads=snakemake.threads)
