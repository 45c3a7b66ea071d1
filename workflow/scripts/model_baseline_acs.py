"""Snakemake adapter: the ACS file -> baselines/acs_direct/{block_draws,block_groups}.parquet."""

from models.baselines import acs_direct_stage
from pipeline_common.logs import snakemake_log

snakemake = globals()["snakemake"]
snakemake_log(snakemake)
acs_direct_stage(
    snakemake.input.acs,
    snakemake.input.frame,
    snakemake.input.geography,
    snakemake.params.settings | {"model": {"baselines": snakemake.params.baselines}},
    snakemake.output.block_draws,
    snakemake.output.block_groups,
)
