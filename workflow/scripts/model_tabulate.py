"""Snakemake adapter: evidence + frame + geography -> model/cells.parquet, model/patterns.parquet."""

import pandas as pd

from models.pipeline import SOURCES
from models.tabulate import tabulate
from pipeline_common.io import write_parquet
from pipeline_common.logs import snakemake_log
from pipeline_common.world_schema import read_world_file

snakemake = globals()["snakemake"]
snakemake_log(snakemake)
cells, patterns = tabulate(
    pd.read_parquet(snakemake.input.evidence),
    read_world_file(snakemake.input.frame, "frame", snakemake.config["reference_date"]),
    read_world_file(snakemake.input.geography, "geography"),
    SOURCES,
    snakemake.config["model"],
    snakemake.config["age_groups"],
    snakemake.config["reference_date"],
    snakemake.config["linkage"],
)
write_parquet(cells, snakemake.output.cells)
write_parquet(patterns, snakemake.output.patterns)
