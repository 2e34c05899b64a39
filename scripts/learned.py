"""Snakemake adapter for rule learned (logic: cgtransfer.stages.learned)."""
from cgtransfer.compute import configure

device = snakemake.config["training"]["device"]  # run-time: not a param
configure(snakemake.threads, device)  # before hippynn is imported

from cgtransfer.io import log_to
from cgtransfer.stages.learned import learned_model

p, inp, out = snakemake.params, snakemake.input, snakemake.output
with log_to(snakemake.log[0]):
    result = learned_model(inp.checkpoint, dict(zip(p.states, inp.datasets)), p.temperatures_K, p.training,
                           p.mscg, {"json": out.json, "curves": out.curves, "triplet": out.triplet,
                                    "hierarchy": out.hierarchy}, model_name=snakemake.wildcards.model, device=device)
    for state, row in result["states"].items():
        print(state, {k: v for k, v in row.items() if k not in ("pairs", "hierarchy")})
