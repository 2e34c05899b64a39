"""Snakemake adapter for rule compare (logic: cgtransfer.stages.compare)."""
from cgtransfer.stages.compare import compare_state
from cgtransfer.io import log_to, single_or_none, write_csv, write_json

w, p, inp, out = snakemake.wildcards, snakemake.params, snakemake.input, snakemake.output
with log_to(snakemake.log[0]):
    metrics, rdfs, angles = compare_state(inp.reference_rdf, inp.reference_summary, inp.reference_thermo, inp.nvt_topology,
                                  inp.nvt_trajectory, inp.nvt_summary, single_or_none(inp.npt_summary), inp.force_errors,
                                  p.rdf["nbins"], p.rdf["rmax_A"], w.model, w.state, p.state["temperature_K"],
                                  p.state["pressure_bar"], n_blocks=p.rdf["n_blocks"],
                                  npt_topology=single_or_none(inp.npt_topology),
                                  npt_trajectory=single_or_none(inp.npt_trajectory),
                                  npt_thermo_csv=single_or_none(inp.npt_thermo),
                                  volume_term_json=single_or_none(inp.volume_term),
                                  reference_angles_csv=inp.reference_angles,
                                  reference_bonds_csv=inp.reference_bonds)
    metrics = {"model": w.model, "kind": p.kind, "in_training": p.in_training, **metrics}
    print(metrics)
    write_csv(out.rdf, rdfs)
    write_csv(out.angles, angles)
    write_json(out.metrics, metrics)
