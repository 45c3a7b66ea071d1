"""Snakemake adapter: standardize the census frame once for every source's linkage."""

from linkage.stage import standardized_frame
from pipeline_common.io import write_parquet
from pipeline_common.logs import snakemake_log
from pipeline_common.world_schema import read_world_file

snakemake_log(snakemake)  # noqa: F821
sm = snakemake  # noqa: F821
frame = read_world_file(sm.input.frame, "frame", sm.config["reference_date"])
write_parquet(standardized_frame(frame, sm.config, file=sm.input.frame), sm.output.frame_std)
