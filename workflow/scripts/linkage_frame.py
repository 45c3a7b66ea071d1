"""Snakemake adapter: standardize the census frame once for every source's linkage."""

from linkage.stage import standardized_frame
from pipeline_common.io import write_parquet
from pipeline_common.logs import snakemake_log
from pipeline_common.world_schema import read_world_file

snakemake = globals()["snakemake"]
snakemake_log(snakemake)
frame = read_world_file(snakemake.input.frame, "frame", snakemake.config["reference_date"])
write_parquet(
    standardized_frame(frame, snakemake.config, file=snakemake.input.frame),
    snakemake.output.frame_std,
)
