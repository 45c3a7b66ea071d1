"""Snakemake adapter: measurements + public counts + patterns -> posterior.nc, diagnostics.json."""

from models.stage import fit_stage
from pipeline_common.logs import snakemake_log

snakemake_log(snakemake)  # noqa: F821
sm = snakemake  # noqa: F821
fit_stage(
    sm.input.measurements,
    sm.input.public_counts,
    sm.input.patterns,
    sm.config,
    posterior_path=sm.output.posterior,
    diagnostics_path=sm.output.diagnostics,
)
