"""Snakemake adapter: evidence + frame + geography -> model/cells.parquet, model/patterns.parquet."""

import pandas as pd

from models.pipeline import SOURCES
from models.tabulate import tabulate
from pipeline_common.io import write_parquet
from pipeline_common.logs import snakemake_log
from pipeline_common.world_schema import read_world_file

snakemake_log(snakemake)  # noqa: F821
sm = snakemake  # noqa: F821
cells, patterns = tabulate(
    pd.read_parquet(sm.input.evidence),
    read_world_file(sm.input.frame, "frame", sm.config["reference_date"]),
    read_world_file(sm.input.geography, "geography"),
    SOURCES,
    sm.config["model"],
    sm.config["age_groups"],
    sm.config["reference_date"],
    sm.config["linkage"],
)
write_parquet(cells, sm.output.cells)
write_parquet(patterns, sm.output.patterns)
