"""Snakemake adapter for rule map_dynamics (logic: cgtransfer.stages.mapping): the all-atom dynamics segment
mapped to the system's beads."""
from cgtransfer.io import log_to, write_npz
from cgtransfer.stages import mapping

inp = snakemake.input
with log_to(snakemake.log[0]):
    cg = mapping.map_trajectory(inp.topology, inp.trajectory, inp.forces, snakemake.params.mapping,
                                temperature_K=snakemake.params.state["temperature_K"])
    print(f"{len(cg['positions'])} frames of {cg['positions'].shape[1]} beads")
    write_npz(snakemake.output[0], **cg)
