"""Snakemake adapter: privacy measurements, public counts and the ledger (privacy.measure)."""

import pandas as pd

from pipeline_common.io import write_json, write_parquet
from pipeline_common.logs import snakemake_log
from privacy.measure import measure

snakemake = globals()["snakemake"]
log = snakemake_log(snakemake)
measurements, public_counts, ledger = measure(
    pd.read_parquet(snakemake.input.cells),
    pd.read_parquet(snakemake.input.patterns),
    snakemake.config,
    pd.read_parquet(snakemake.input.geography),
)
write_parquet(measurements, snakemake.output.measurements)
write_parquet(public_counts, snakemake.output.public_counts)
write_json(ledger, snakemake.output.ledger)
log.info("wrote %d measurements; total rho %s", len(measurements), ledger["total"]["rho"])
