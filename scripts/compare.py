"""Snakemake adapter for rule compare (logic: cgtransfer.stages.compare)."""
from cgtransfer.stages.compare import CGRun, Reference, compare_state
from cgtransfer.io import log_to, read_json, single_or_none, write_csv, write_json

w, p, inp, out = snakemake.wildcards, snakemake.params, snakemake.input, snakemake.output
with log_to(snakemake.log[0]):
    reference = Reference.load(inp.reference_rdf, inp.reference_summary, inp.reference_thermo,
                               angles_csv=inp.reference_angles, bonds_csv=inp.reference_bonds)
    nvt = CGRun.load(inp.nvt_topology, inp.nvt_trajectory, inp.nvt_summary)
    npt_summary = single_or_none(inp.npt_summary)  # none at an NVT state
    npt = (CGRun.load(single_or_none(inp.npt_topology), single_or_none(inp.npt_trajectory), npt_summary,
                      thermo_csv=single_or_none(inp.npt_thermo)) if npt_summary else None)
    metrics, rdfs, angles = compare_state(reference, nvt, npt, read_json(inp.force_errors)[w.state],
                                          model=w.model, state=w.state, temperature_K=p.state["temperature_K"],
                                          pressure_bar=p.state["pressure_bar"], nbins=p.rdf["nbins"],
                                          rmax_A=p.rdf["rmax_A"], n_blocks=p.rdf["n_blocks"],
                                          volume_term_json=single_or_none(inp.volume_term))
    metrics = {"model": w.model, "kind": p.kind, "in_training": p.in_training, **metrics}
    print(metrics)
    write_csv(out.rdf, rdfs)
    write_csv(out.angles, angles)
    write_json(out.metrics, metrics)
