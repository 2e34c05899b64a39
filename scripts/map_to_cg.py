"""Snakemake adapter for rule map_to_cg (logic: cgtransfer.stages.mapping)."""
from cgtransfer.stages import mapping
from cgtransfer.io import log_to, write_csv, write_json, write_npz

inp, out, rdf = snakemake.input, snakemake.output, snakemake.params.rdf
with log_to(snakemake.log[0]):
    cg = mapping.map_trajectory(inp.topology, inp.trajectory, inp.forces, snakemake.params.mapping,
                                temperature_K=snakemake.params.state["temperature_K"])
    table = mapping.reference_rdfs(cg, rdf["nbins"], rdf["rmax_A"])
    summary = mapping.summarize_mapped(cg, table, rdf["onset_threshold"])
    angles, summary["angles"] = mapping.reference_angles(cg, table)
    bonds = mapping.reference_bond_distributions(cg)
    summary["bonds"] = {t: {"mean_r_A": float((g["r_A"] * g["p"]).sum() / g["p"].sum())}
                        for t, g in bonds.groupby("type", sort=False)}
    print(summary)
    write_npz(out.dataset, **cg)
    write_csv(out.rdf, table)
    write_csv(out.angles, angles)
    write_csv(out.bonds, bonds)
    write_json(out.summary, summary)
