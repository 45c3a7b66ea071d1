"""Snakemake adapter: the published tables, draws and metadata (privacy.publish)."""

from pathlib import Path

import pandas as pd

from pipeline_common.io import read_json
from pipeline_common.logs import snakemake_log
from privacy.publish import publish, write_published

snakemake = globals()["snakemake"]
log = snakemake_log(snakemake)
files = publish(
    pd.read_parquet(snakemake.input.draws),
    pd.read_parquet(snakemake.input.public_counts),
    read_json(snakemake.input.ledger),
    read_json(snakemake.input.diagnostics),
    snakemake.config,
    pd.read_parquet(snakemake.input.geography),
    pd.read_csv(snakemake.input.county_table, dtype={"fips": str}),
)
directory = Path(snakemake.output.blocks_csv).parent
for name, path in snakemake.output.items():
    if Path(path).parent != directory or Path(path).name not in files:
        raise RuntimeError(f"output {name}={path} is not a published file")
write_published(files, directory)
log.info("published %s", ", ".join(sorted(files)))
