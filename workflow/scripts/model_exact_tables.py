"""Snakemake adapter: model/cells.parquet -> the exact tables of the privacy-free model fit."""

import pandas as pd

from models.tabulate import exact_measurements_from_cells, public_counts_from_cells
from pipeline_common.io import write_parquet
from pipeline_common.logs import snakemake_log

snakemake = globals()["snakemake"]
snakemake_log(snakemake)
cells = pd.read_parquet(snakemake.input.cells)
write_parquet(exact_measurements_from_cells(cells), snakemake.output.measurements)
write_parquet(public_counts_from_cells(cells), snakemake.output.public_counts)
