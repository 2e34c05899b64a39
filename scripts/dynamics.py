"""Snakemake adapter for rule dynamics (logic: cgtransfer.stages.dynamics)."""
from cgtransfer.io import log_to
from cgtransfer.stages.dynamics import analyse

w, p, inp, out = snakemake.wildcards, snakemake.params, snakemake.input, snakemake.output
with log_to(snakemake.log[0]):
    reference = dict(zip(p.reference_states, inp.reference))
    cg_runs = {tuple(pair): files for pair, files in
               zip(p.pairs, zip(inp.cg_topologies, inp.cg_trajectories, inp.cg_summaries))}
    analyse(reference, cg_runs, p.states, p.models, p.settings, w.system, out.diffusion, out.transfer, out.json,
            out.figure, backmap_checks=list(inp.backmap), out_backmap=out.backmap,
            reference_thermo=dict(zip(p.reference_states, inp.reference_thermo)), git_revision=p.git_revision)
