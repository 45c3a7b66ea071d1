"""Snakemake adapter: every method's draws + truth -> evaluation/comparison.{json,csv}, figure."""

from models.comparison import comparison_stage
from pipeline_common.logs import snakemake_log

snakemake = globals()["snakemake"]
snakemake_log(snakemake)
comparison_stage(
    {
        "published": snakemake.input.published,
        "exact": snakemake.input.exact,
        "record_rule": snakemake.input.record_rule,
        "census_style": snakemake.input.census_style,
        "acs_direct": snakemake.input.acs_direct,
    },
    snakemake.input.acs_block_groups,
    snakemake.input.truth,
    snakemake.input.frame,
    snakemake.input.geography,
    snakemake.output.evaluation,
    snakemake.output.table,
    snakemake.output.figure,
    snakemake.params.settings["seed"],
    snakemake.params.run,
)
