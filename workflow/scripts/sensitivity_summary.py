"""Gather the sensitivity runs into one table and one figure."""

from pipeline_common.io import write_bytes, write_text
from pipeline_common.logs import snakemake_log
from pipeline_common.sensitivity import summary_figure_png, summarize

log = snakemake_log(snakemake)  # noqa: F821
sweep = snakemake.params.sweep  # noqa: F821
runs = []
for pattern, estimates in zip(sweep.instance_patterns, snakemake.input.estimates, strict=True):  # noqa: F821
    instance = dict(part.split("~", 1) for part in pattern.split("/"))
    runs.append({**instance, "estimates": estimates})
summary = summarize(runs)
write_text(summary.to_csv(index=False, float_format="%.6g"), snakemake.output.summary)  # noqa: F821
write_bytes(summary_figure_png(summary), snakemake.output.figure)  # noqa: F821
log.info("summarized %d runs into %d rows", len(runs), len(summary))
