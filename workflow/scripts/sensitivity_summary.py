"""Gather the sweep's point scores: per point and replicate, and over replicates."""

import pandas as pd

from pipeline_common.io import read_json, write_text
from pipeline_common.logs import snakemake_log
from sensitivity.summary import aggregate, report_table, run_columns, wide_summary

snakemake = globals()["snakemake"]
log = snakemake_log(snakemake)
# Text columns stay text (values such as "true" or "0.25" are labels of the sweep file).
scores = pd.concat(
    [pd.read_csv(p, dtype={"knob": str, "value": str}) for p in snakemake.input.scores],
    ignore_index=True,
)
runs = run_columns([read_json(p) for p in snakemake.input.runs])
aggregated = aggregate(scores)


def write(table: pd.DataFrame, path: str) -> None:
    write_text(table.to_csv(index=False, float_format="%.6g", lineterminator="\n"), path)


write(wide_summary(scores, runs), snakemake.output.summary)
write(scores, snakemake.output.long)
write(aggregated, snakemake.output.aggregate)
write(report_table(aggregated), snakemake.output.report_table)
log.info("summarized %d points x replicates, %d score rows", len(runs), len(scores))
