"""Snakemake adapter: measurements + public counts + patterns -> posterior.nc, diagnostics.json."""

from models.stage import fit_stage
from pipeline_common.logs import snakemake_log

snakemake = globals()["snakemake"]
snakemake_log(snakemake)
fit_stage(
    snakemake.input.measurements,
    snakemake.input.public_counts,
    snakemake.input.patterns,
    snakemake.config,
    posterior_path=snakemake.output.posterior,
    diagnostics_path=snakemake.output.diagnostics,
)
