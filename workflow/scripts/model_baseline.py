"""Snakemake adapter: person-level evidence -> baselines/{method}/block_draws.parquet."""

from models.stage import baseline_stage
from pipeline_common.logs import snakemake_log

snakemake = globals()["snakemake"]
snakemake_log(snakemake)
baseline_stage(
    snakemake.params.method,
    snakemake.input.evidence,
    snakemake.input.frame,
    snakemake.input.geography,
    snakemake.config,
    getattr(snakemake.input, "cvap_table", None),
    snakemake.output.block_draws,
)
