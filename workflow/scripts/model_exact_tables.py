"""Snakemake adapter: model/cells.parquet -> the exact tables of the privacy-free model fit."""

import pandas as pd

from models.tabulate import exact_measurements_from_cells, public_counts_from_cells
from pipeline_common.io import write_parquet
from pipeline_common.logs import snakemake_log

snakemake_log(snakemake)  # noqa: F821
sm = snakemake  # noqa: F821
cells = pd.read_parquet(sm.input.cells)
write_parquet(exact_measurements_from_cells(cells), sm.output.measurements)
write_parquet(public_counts_from_cells(cells), sm.output.public_counts)
