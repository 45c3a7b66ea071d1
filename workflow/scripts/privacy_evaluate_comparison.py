"""Snakemake adapter: every method's draws + truth -> evaluation/comparison.{json,csv}, figure."""

from models.comparison import comparison_stage
from pipeline_common.logs import snakemake_log

snakemake_log(snakemake)  # noqa: F821
sm = snakemake  # noqa: F821
comparison_stage(
    {
        "published": sm.input.published,
        "exact": sm.input.exact,
        "record_rule": sm.input.record_rule,
        "census_style": sm.input.census_style,
        "acs_direct": sm.input.acs_direct,
    },
    sm.input.acs_block_groups,
    sm.input.truth,
    sm.input.frame,
    sm.input.geography,
    sm.output.evaluation,
    sm.output.table,
    sm.output.figure,
    sm.params.settings["seed"],
    sm.params.run,
)
