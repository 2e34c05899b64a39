# cgtransfer: HIP-NN-TS coarse-grained force fields for molecular liquids and their thermodynamic
# transferability (after Shinkle et al., JCTC 20, 10524, 2024). Rules only wire files; the logic lives in
# the cgtransfer package (src/cgtransfer), one module per stage.

from snakemake.utils import min_version

min_version("9.0")


# The default study; a --configfile given on the command line replaces it (e.g. .test/config/config.yaml)
# instead of being merged into it. --config key=value overrides apply on top of either.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/reference.smk"
include: "workflow/rules/mapping.smk"
include: "workflow/rules/training.smk"
include: "workflow/rules/cg_md.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/dynamics.smk"


rule all:
    default_target: True
    input:
        all_outputs(),


# Every rule is defined: a requested target that names no system, replicate, model or state of the study is refused
# here, before any job, with the known names.
refuse_unknown_targets()
