"""Snakemake adapter of the report stage: render report.html and report.pdf for one run."""

from pipeline_common.logs import snakemake_log
from reports.render import write_report

snakemake = globals()["snakemake"]
log = snakemake_log(snakemake)
rendered = write_report(
    run_dir=snakemake.params.run_dir,
    config=snakemake.config,
    html_path=snakemake.output.html,
    pdf_path=snakemake.output.pdf,
    bench_dir=snakemake.params.bench_dir,
    sensitivity_summary=snakemake.params.sensitivity,
    calibration_study=snakemake.params.calibration_study,
)
log.info("report: %d figures, sections %s", len(rendered.figures), ", ".join(rendered.sections))
for path in rendered.missing:
    log.warning("input not available, the report says so: %s", path)
