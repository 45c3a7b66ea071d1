"""Snakemake adapter of the report stage: render report.html and report.pdf for one run."""

from pipeline_common.logs import snakemake_log
from reports.render import write_report

log = snakemake_log(snakemake)  # noqa: F821 - injected by Snakemake
rendered = write_report(
    run_dir=snakemake.params.run_dir,  # noqa: F821
    config=snakemake.config,  # noqa: F821
    html_path=snakemake.output.html,  # noqa: F821
    pdf_path=snakemake.output.pdf,  # noqa: F821
    bench_dir=snakemake.params.bench_dir,  # noqa: F821
    sensitivity_summary=snakemake.params.sensitivity,  # noqa: F821
    calibration_study=snakemake.params.calibration_study,  # noqa: F821
)
log.info("report: %d figures, sections %s", len(rendered.figures), ", ".join(rendered.sections))
for path in rendered.missing:
    log.warning("input not available, the report says so: %s", path)
