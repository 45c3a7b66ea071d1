"""Snakemake adapter: person-level evidence -> baselines/{method}/block_draws.parquet."""

from models.stage import baseline_stage
from pipeline_common.logs import snakemake_log

snakemake_log(snakemake)  # noqa: F821
sm = snakemake  # noqa: F821
baseline_stage(
    sm.params.method,
    sm.input.evidence,
    sm.input.frame,
    sm.input.geography,
    sm.config,
    getattr(sm.input, "cvap_table", None),
    sm.output.block_draws,
)
