"""Snakemake adapter for rule validate (logic: cgtransfer.stages.validate)."""
from cgtransfer.io import log_to, save_figure, write_json
from cgtransfer.stages.validate import validate_system, validation_figure

inp, p, out, w = snakemake.input, snakemake.params, snakemake.output, snakemake.wildcards
with log_to(snakemake.log[0]):
    result = validate_system(
        w.system, p.spec, p.states,
        reference_summaries=dict(zip(p.states, inp.reference_summaries)),
        mapped={s: (d, f) for s, d, f in zip(p.states, inp.datasets, inp.forces)},
        pair_tables=dict(zip(p.mscg_models, inp.pair_tables)),
        metrics=dict(zip(map(tuple, p.cells), inp.metrics)),
        forcefield_xml=p.forcefield, template_pdb=inp.templates[0] if len(inp.templates) == 1 else None, reference_md=p.reference_md,
        mscg_cutoff_A=p.mscg_cutoff_A,
        volume_terms=dict(zip(p.volume_models, inp.volume_terms)),
        reference_rdfs=dict(zip(p.states, inp.reference_rdfs)),
    )
    for c in result["checks"]:
        print(f"{'PASS' if c['passed'] else 'FAIL'}  {c['check']}: {c['value']:.4g} ({c['criterion']})")
    write_json(out.json, result)
    save_figure(validation_figure(result, f"{w.system}: MS-CG vs exact pair force"), out.figure)
