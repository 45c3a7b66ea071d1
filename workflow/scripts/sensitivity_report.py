"""Render the sensitivity report (HTML and PDF) from the sweep's summary."""

import pandas as pd

from pipeline_common.io import read_json, write_bytes, write_text
from pipeline_common.logs import snakemake_log
from reports.render import html_to_pdf
from sensitivity.report import render

log = snakemake_log(snakemake)  # noqa: F821
sm = snakemake  # noqa: F821
text = {"knob": str, "value": str}
html = render(
    pd.read_csv(sm.input.long, dtype=text),
    pd.read_csv(sm.input.aggregate, dtype=text),
    [read_json(p) for p in sm.input.runs],
    sm.params.sensitivity,
    sm.params.sensitivity_file,
)
write_text(html, sm.output.html)
write_bytes(html_to_pdf(html), sm.output.pdf)
log.info("wrote %s and %s", sm.output.html, sm.output.pdf)
