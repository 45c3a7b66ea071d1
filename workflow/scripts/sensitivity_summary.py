"""Gather the sensitivity runs into one table, one figure and a small HTML page."""

from pipeline_common.io import write_bytes, write_text
from pipeline_common.logs import snakemake_log
from pipeline_common.sensitivity import summarize, summary_figure_png, summary_html

log = snakemake_log(snakemake)  # noqa: F821
sm = snakemake  # noqa: F821
# The sweep rows and the inputs are in the same (Paramspace) order.
runs = [
    {"knob": row["knob"], "value": row["value"], "estimates": estimates, "published": published}
    for row, estimates, published in zip(
        sm.params.runs, sm.input.estimates, sm.input.published, strict=True
    )
]
summary = summarize(runs)
figure = summary_figure_png(summary)
write_text(summary.to_csv(index=False, float_format="%.6g"), sm.output.summary)
write_bytes(figure, sm.output.figure)
write_text(summary_html(summary, figure, title=sm.params.title), sm.output.html)
log.info("summarized %d runs into %d rows", len(runs), len(summary))
