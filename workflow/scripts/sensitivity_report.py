"""Render the sensitivity report (HTML and PDF) from the sweep's summary."""

import pandas as pd

from pipeline_common.io import read_json, write_bytes, write_text
from pipeline_common.logs import snakemake_log
from reports.render import html_to_pdf
from sensitivity.report import render

snakemake = globals()["snakemake"]
log = snakemake_log(snakemake)
text = {"knob": str, "value": str}
html = render(
    pd.read_csv(snakemake.input.long, dtype=text),
    pd.read_csv(snakemake.input.aggregate, dtype=text),
    [read_json(p) for p in snakemake.input.runs],
    snakemake.params.sensitivity,
    snakemake.params.sensitivity_file,
)
write_text(html, snakemake.output.html)
write_bytes(html_to_pdf(html), snakemake.output.pdf)
log.info("wrote %s and %s", snakemake.output.html, snakemake.output.pdf)
