"""Snakemake adapter: link one source to the census frame (policy applied first)."""

import pandas as pd

from linkage.stage import PIK_SOURCE, link_source, pik_from_links
from pipeline_common.io import write_json, write_parquet
from pipeline_common.logs import snakemake_log
from pipeline_common.world_schema import read_world_file

snakemake_log(snakemake)  # noqa: F821
sm = snakemake  # noqa: F821
source = sm.wildcards.get("source", PIK_SOURCE)
config = {**sm.config, "linkage": {**sm.config["linkage"], "threads": int(sm.threads)}}
frame_std = pd.read_parquet(sm.input.frame_std)
records = read_world_file(sm.input.records, source, sm.config["reference_date"])
pik = pd.read_parquet(sm.input.pik) if "pik" in sm.input.keys() else None
links, report = link_source(
    None, records, source, config, pik, file=sm.input.records, frame_std=frame_std
)
write_parquet(links, sm.output.links)
write_json(report, sm.output.report)
if "pik" in sm.output.keys():
    write_parquet(pik_from_links(links, records, config), sm.output.pik)
