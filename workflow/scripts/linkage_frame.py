"""Snakemake adapter: standardize the census frame once for every source's linkage."""

import pandas as pd

from linkage.stage import standardized_frame
from pipeline_common.io import write_parquet
from pipeline_common.logs import snakemake_log

snakemake_log(snakemake)  # noqa: F821
sm = snakemake  # noqa: F821
frame = pd.read_parquet(sm.input.frame)
write_parquet(standardized_frame(frame, sm.config, file=sm.input.frame), sm.output.frame_std)
