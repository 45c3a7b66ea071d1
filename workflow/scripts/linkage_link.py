"""Snakemake adapter: link one source to the census frame (policy applied first)."""

import pandas as pd

from linkage.stage import PIK_SOURCE, link_source, pik_from_links
from pipeline_common.io import write_json, write_parquet
from pipeline_common.logs import snakemake_log
from pipeline_common.world_schema import read_world_file

snakemake = globals()["snakemake"]
snakemake_log(snakemake)
source = snakemake.wildcards.get("source", PIK_SOURCE)
config = {
    **snakemake.config,
    "linkage": {**snakemake.config["linkage"], "threads": int(snakemake.threads)},
}
frame_std = pd.read_parquet(snakemake.input.frame_std)
records = read_world_file(snakemake.input.records, source, snakemake.config["reference_date"])
pik = pd.read_parquet(snakemake.input.pik) if "pik" in snakemake.input.keys() else None
links, report = link_source(
    None, records, source, config, pik, file=snakemake.input.records, frame_std=frame_std
)
write_parquet(links, snakemake.output.links)
write_json(report, snakemake.output.report)
if "pik" in snakemake.output.keys():
    write_parquet(pik_from_links(links, records, config), snakemake.output.pik)
