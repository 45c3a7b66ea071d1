"""Snakemake adapter: combine per-source links into links, evidence and withheld counts."""

import pandas as pd

from linkage.stage import combine
from pipeline_common.io import read_json, write_json, write_parquet
from pipeline_common.logs import snakemake_log

snakemake_log(snakemake)  # noqa: F821
sm = snakemake  # noqa: F821
by_source = [pd.read_parquet(path) for path in sm.input.links]
reports = [read_json(path) for path in sm.input.reports]
links, evidence, withheld = combine(by_source, reports)
write_parquet(links, sm.output.links)
write_parquet(evidence, sm.output.evidence)
write_json(withheld, sm.output.withheld)
