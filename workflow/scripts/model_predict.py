"""Snakemake adapter: posterior + measurements -> model/block_draws.parquet."""

from models.stage import predict_stage
from pipeline_common.logs import snakemake_log

snakemake_log(snakemake)  # noqa: F821
sm = snakemake  # noqa: F821
predict_stage(
    sm.input.measurements,
    sm.input.public_counts,
    sm.input.patterns,
    sm.input.posterior,
    sm.config,
    sm.output.block_draws,
)
