# Block-level citizenship estimates from linked administrative records on a synthetic world.
# Thin by design: config, schema validation, stage includes, and the default target.
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


# Each stage's section has its own schema (defaults are filled in per section).
validate(config, schema="workflow/schemas/config.schema.yaml", set_default=True)
for stage in ("synthetic", "linkage", "model", "privacy", "report"):
    validate(
        config[stage], schema=f"workflow/schemas/{stage}.schema.yaml", set_default=True
    )


include: "workflow/rules/common.smk"
include: "workflow/rules/synthetic.smk"
include: "workflow/rules/linkage.smk"
include: "workflow/rules/model.smk"
include: "workflow/rules/privacy.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/sensitivity.smk"


rule all:
    default_target: True
    input:
        all_outputs(),


# A fit that missed its convergence targets is said loudly at the end of the run.
onsuccess:
    warn_unconverged_fits()
