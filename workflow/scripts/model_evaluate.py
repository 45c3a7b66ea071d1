"""Snakemake adapter: block draws of every method + truth -> evaluation/estimates.json."""

from models.stage import evaluate_stage
from pipeline_common.logs import snakemake_log

snakemake = globals()["snakemake"]
snakemake_log(snakemake)
evaluate_stage(
    {
        "model": snakemake.input.model,
        "record_rule": snakemake.input.record_rule,
        "census_style": snakemake.input.census_style,
        "acs_direct": snakemake.input.acs_direct,
    },
    snakemake.input.truth,
    snakemake.input.frame,
    snakemake.input.evidence,
    snakemake.config,
    snakemake.output.estimates,
)
