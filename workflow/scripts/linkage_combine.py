"""Snakemake adapter: combine per-source links into links, evidence and withheld counts."""

import pandas as pd

from linkage.stage import combine
from pipeline_common.io import read_json, write_json, write_parquet
from pipeline_common.logs import snakemake_log

snakemake = globals()["snakemake"]
snakemake_log(snakemake)
by_source = [pd.read_parquet(path) for path in snakemake.input.links]
reports = [read_json(path) for path in snakemake.input.reports]
links, evidence, withheld = combine(by_source, reports)
write_parquet(links, snakemake.output.links)
write_parquet(evidence, snakemake.output.evidence)
write_json(withheld, snakemake.output.withheld)
