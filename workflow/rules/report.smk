# Rules of the report stage (see docs/CONTRACTS.md): one rule renders report.html and report.pdf
# from the run's upstream outputs: both model fits (model/ exact, privacy/model/ noisy), their
# evaluations, the privacy ledger and the published tables. For validation only (the data are
# synthetic) it reads truth/parameters.json (estimated source behaviour against the generating
# values) and truth/persons.parquet (true block counts for the calibration curve), reduced to
# block counts at once. It never writes under published/.
from pathlib import Path

from reports.snakemake_inputs import report_inputs

REPORT_INPUTS = {
    "geography": f"{RESULTS}/world/geography.parquet",
    **{f"source_{s}": f"{RESULTS}/world/sources/{s}.parquet" for s in SOURCES},
    "links": f"{RESULTS}/linkage/links.parquet",
    "withheld": f"{RESULTS}/linkage/withheld.json",
    "linkage_eval": f"{RESULTS}/evaluation/linkage.json",
    "diagnostics": f"{RESULTS}/model/diagnostics.json",
    "posterior": f"{RESULTS}/model/posterior.nc",
    # The exact fit's tables: the report replicates them for the posterior predictive check.
    "exact_measurements": f"{RESULTS}/model/exact_measurements.parquet",
    "exact_public_counts": f"{RESULTS}/model/public_counts.parquet",
    "patterns": f"{RESULTS}/model/patterns.parquet",
    # The exact fit's block draws: how far the privacy noise moves each published block.
    "exact_block_draws": f"{RESULTS}/model/block_draws.parquet",
    "parameters": f"{RESULTS}/truth/parameters.json",
    # Validation only (synthetic data): true block counts for the calibration curve.
    "truth_persons": f"{RESULTS}/truth/persons.parquet",
    "frame": f"{RESULTS}/world/frame.parquet",
    **{
        f"draws_{m}": f"{RESULTS}/baselines/{m}/block_draws.parquet"
        for m in ("record_rule", "census_style")
    },
    "ledger": f"{RESULTS}/privacy/ledger.json",
    "blocks": f"{RESULTS}/published/blocks.csv",
    "tracts": f"{RESULTS}/published/tracts.csv",
    "counties": f"{RESULTS}/published/counties.csv",
    "draws": f"{RESULTS}/published/draws.parquet",
    "metadata": f"{RESULTS}/published/metadata.json",
    "estimates_eval": f"{RESULTS}/evaluation/estimates.json",
    "published_eval": f"{RESULTS}/evaluation/published.json",
    # Coverage of summed draws at every level from block to run total (both fits).
    "calibration_eval": f"{RESULTS}/evaluation/calibration.json",
    # Every method against every baseline, today's ACS disaggregation included.
    "comparison_eval": f"{RESULTS}/evaluation/comparison.json",
}
# The privacy fit (the model refitted to the noisy measurements, which publication reads) is
# made only when there is noise; under privacy mode none publication uses model/.
if config["privacy"]["mode"] != "none":
    REPORT_INPUTS["privacy_diagnostics"] = f"{RESULTS}/privacy/model/diagnostics.json"
    REPORT_INPUTS["privacy_posterior"] = f"{RESULTS}/privacy/model/posterior.nc"


rule report:
    input:
        # Only inputs some rule produces (a stage still being written is reported as missing).
        unpack(lambda wildcards: report_inputs(workflow, REPORT_INPUTS, BENCH)),
    output:
        html=report(
            f"{RESULTS}/report/report.html",
            category="Report",
            labels={"format": "HTML"},
        ),
        pdf=report(
            f"{RESULTS}/report/report.pdf",
            category="Report",
            labels={"format": "PDF"},
        ),
    log:
        f"{LOGS}/report/report.log",
    benchmark:
        f"{BENCH}/report/report.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=RESOURCES["report"].mem_mb,
        runtime=RESOURCES["report"].runtime,
    params:
        # results/{run}: the folder two levels above the report.
        run_dir=lambda wildcards, output: str(Path(output.html).parent.parent),
        # Benchmark files of rules with wildcards are found by globbing this folder at run time.
        bench_dir=lambda wildcards, output: str(
            Path("benchmarks") / Path(output.html).parent.parent.name
        ),
        # Shown when present; not an input, so a normal run never triggers the sweep.
        # Block-level replicate means of the sweep (sensitivity.summary.report_table).
        sensitivity="results/sensitivity/summary_report.csv",
        # The calibration study's folders (benchmarks/calibration_study.py), shown when
        # present; not an input either (the study is run on purpose, never by the pipeline).
        calibration_study="results/calibration",
    script:
        "../scripts/report_render.py"


FINAL_TARGETS.extend(rules.report.output)
