"""Snakemake adapter for rule import_reference (logic: cgtransfer.stages.import_reference)."""
from cgtransfer.io import log_to, single_or_none
from cgtransfer.stages.import_reference import import_reference

w, p, out, inp = snakemake.wildcards, snakemake.params, snakemake.output, snakemake.input
with log_to(snakemake.log[0]):
    import_reference(inp.topology, inp.trajectory, p.spec, list(inp.templates), p.state["temperature_K"],
                     out.topology, out.trajectory, out.forces, out.thermo, thermo=single_or_none(inp.thermo),
                     label=f"import_reference {w.system}/rep{w.replicate}/{w.state}")
