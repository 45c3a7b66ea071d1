"""Gather the sweep's point scores: per point and replicate, and over replicates."""

import pandas as pd

from pipeline_common.io import read_json, write_text
from pipeline_common.logs import snakemake_log
from sensitivity.summary import aggregate, report_table, run_columns, wide_summary

log = snakemake_log(snakemake)  # noqa: F821
sm = snakemake  # noqa: F821
# Text columns stay text (values such as "true" or "0.25" are labels of the sweep file).
scores = pd.concat(
    [pd.read_csv(p, dtype={"knob": str, "value": str}) for p in sm.input.scores],
    ignore_index=True,
)
runs = run_columns([read_json(p) for p in sm.input.runs])
aggregated = aggregate(scores)


def write(table: pd.DataFrame, path: str) -> None:
    write_text(table.to_csv(index=False, float_format="%.6g", lineterminator="\n"), path)


write(wide_summary(scores, runs), sm.output.summary)
write(scores, sm.output.long)
write(aggregated, sm.output.aggregate)
write(report_table(aggregated), sm.output.report_table)
log.info("summarized %d points x replicates, %d score rows", len(runs), len(scores))
