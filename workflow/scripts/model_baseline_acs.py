"""Snakemake adapter: the ACS file -> baselines/acs_direct/{block_draws,block_groups}.parquet."""

from models.baselines import acs_direct_stage
from pipeline_common.logs import snakemake_log

snakemake_log(snakemake)  # noqa: F821
sm = snakemake  # noqa: F821
acs_direct_stage(
    sm.input.acs,
    sm.input.frame,
    sm.input.geography,
    sm.params.settings | {"model": {"baselines": sm.params.baselines}},
    sm.output.block_draws,
    sm.output.block_groups,
)
