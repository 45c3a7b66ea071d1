"""Snakemake adapter: block draws of every method + truth -> evaluation/estimates.json."""

from models.stage import evaluate_stage
from pipeline_common.logs import snakemake_log

snakemake_log(snakemake)  # noqa: F821
sm = snakemake  # noqa: F821
evaluate_stage(
    {
        "model": sm.input.model,
        "record_rule": sm.input.record_rule,
        "census_style": sm.input.census_style,
        "acs_direct": sm.input.acs_direct,
    },
    sm.input.truth,
    sm.input.frame,
    sm.input.evidence,
    sm.config,
    sm.output.estimates,
)
