"""Snakemake adapter: both fits' block draws + truth -> evaluation/calibration.json and figure
(models.calibration_stage: coverage at every level a user sums blocks to)."""

from models.calibration_stage import calibration_stage
from pipeline_common.logs import snakemake_log

snakemake = globals()["snakemake"]
log = snakemake_log(snakemake)
result = calibration_stage(
    {"published": snakemake.input.published_draws, "exact": snakemake.input.exact_draws},
    snakemake.input.truth,
    snakemake.input.frame,
    snakemake.input.geography,
    snakemake.output.evaluation,
    snakemake.output.figure,
    int(snakemake.params.settings["seed"]),
    snakemake.params.run,
)
missed = [row for row in result["summary"] if row["status"] == "missed"]
log.info("calibration: %d of %d rows missed their target", len(missed), len(result["summary"]))
for row in missed:
    log.info(
        "missed: %s %s %s coverage %.3f",
        row["method"],
        row["level"],
        row["quantity"],
        row["coverage"],
    )
