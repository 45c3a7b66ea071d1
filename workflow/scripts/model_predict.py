"""Snakemake adapter: posterior + measurements -> model/block_draws.parquet."""

from models.stage import predict_stage
from pipeline_common.logs import snakemake_log

snakemake = globals()["snakemake"]
snakemake_log(snakemake)
predict_stage(
    snakemake.input.measurements,
    snakemake.input.public_counts,
    snakemake.input.patterns,
    snakemake.input.posterior,
    snakemake.config,
    snakemake.output.block_draws,
)
