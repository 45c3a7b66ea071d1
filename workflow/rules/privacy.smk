# Rules of the privacy stage (see docs/CONTRACTS.md).
# privacy_measure: the only view of the linked evidence the model reads (noisy under zCDP).
# privacy_fit, privacy_predict: the model refitted to the noisy measurements, with the noise
#   variance in its likelihood (skipped under privacy mode none: the exact fit is used).
# publish: post-processing of those draws into published/ (the only writer there).


# evaluate_published: published tables against the truth (evaluation only).
# evaluate_calibration: both fits' draws scored against the truth at every level a user sums
#   blocks to, from block to run total (evaluation only; models/calibration_stage.py).


rule privacy_measure:
    input:
        cells=f"{RESULTS}/model/cells.parquet",
        patterns=f"{RESULTS}/model/patterns.parquet",
        geography=f"{RESULTS}/world/geography.parquet",
    output:
        measurements=f"{RESULTS}/privacy/measurements.parquet",
        public_counts=f"{RESULTS}/privacy/public_counts.parquet",
        ledger=f"{RESULTS}/privacy/ledger.json",
    log:
        f"{LOGS}/privacy/measure.log",
    benchmark:
        f"{BENCH}/privacy/measure.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=RESOURCES["privacy_measure"].mem_mb,
        runtime=RESOURCES["privacy_measure"].runtime,
    params:
        settings=settings("privacy"),
    script:
        "../scripts/privacy_measure.py"


rule privacy_fit:
    input:
        measurements=f"{RESULTS}/privacy/measurements.parquet",
        public_counts=f"{RESULTS}/privacy/public_counts.parquet",
        patterns=f"{RESULTS}/model/patterns.parquet",
    output:
        posterior=f"{PRIVATE_MODEL}/posterior.nc",
        diagnostics=report(f"{PRIVATE_MODEL}/diagnostics.json", category="Privacy"),
    log:
        f"{LOGS}/privacy/fit.log",
    benchmark:
        f"{BENCH}/privacy/fit.tsv"
    conda:
        ENV
    threads: config["model"]["chains"]
    resources:
        mem_mb=RESOURCES["privacy_fit"].mem_mb,
        runtime=RESOURCES["privacy_fit"].runtime,
    params:
        settings=settings("model", "privacy"),
    script:
        "../scripts/model_fit.py"


rule privacy_predict:
    input:
        measurements=f"{RESULTS}/privacy/measurements.parquet",
        public_counts=f"{RESULTS}/privacy/public_counts.parquet",
        patterns=f"{RESULTS}/model/patterns.parquet",
        posterior=f"{PRIVATE_MODEL}/posterior.nc",
    output:
        block_draws=f"{PRIVATE_MODEL}/block_draws.parquet",
    log:
        f"{LOGS}/privacy/predict.log",
    benchmark:
        f"{BENCH}/privacy/predict.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=RESOURCES["privacy_predict"].mem_mb,
        runtime=RESOURCES["privacy_predict"].runtime,
    params:
        settings=settings("model", "privacy"),
    script:
        "../scripts/model_predict.py"


rule publish:
    input:
        draws=published_fit("block_draws.parquet"),
        diagnostics=published_fit("diagnostics.json"),
        public_counts=f"{RESULTS}/privacy/public_counts.parquet",
        ledger=f"{RESULTS}/privacy/ledger.json",
        # Public: block squares (blocks.geojson) and county names (Census-convention files).
        geography=f"{RESULTS}/world/geography.parquet",
        county_table=CVAP_TABLE,
    output:
        blocks_csv=report(
            f"{RESULTS}/published/blocks.csv",
            category="Publication",
            labels={"table": "blocks"},
        ),
        blocks_parquet=f"{RESULTS}/published/blocks.parquet",
        draws=f"{RESULTS}/published/draws.parquet",
        tracts_csv=f"{RESULTS}/published/tracts.csv",
        counties_csv=f"{RESULTS}/published/counties.csv",
        cvap_blocks=f"{RESULTS}/published/cvap_blocks.csv",
        cvap_block_groups=f"{RESULTS}/published/cvap_block_groups.csv",
        cvap_tracts=f"{RESULTS}/published/cvap_tracts.csv",
        blocks_geojson=f"{RESULTS}/published/blocks.geojson",
        metadata=f"{RESULTS}/published/metadata.json",
    log:
        f"{LOGS}/privacy/publish.log",
    benchmark:
        f"{BENCH}/privacy/publish.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=RESOURCES["publish"].mem_mb,
        runtime=RESOURCES["publish"].runtime,
    params:
        settings=settings("model", "privacy"),
    script:
        "../scripts/privacy_publish.py"


rule evaluate_published:
    input:
        blocks=f"{RESULTS}/published/blocks.csv",
        truth=f"{RESULTS}/truth/persons.parquet",
        frame=f"{RESULTS}/world/frame.parquet",
    output:
        evaluation=f"{RESULTS}/evaluation/published.json",
    log:
        f"{LOGS}/privacy/evaluate_published.log",
    benchmark:
        f"{BENCH}/privacy/evaluate_published.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=RESOURCES["evaluate_published"].mem_mb,
        runtime=RESOURCES["evaluate_published"].runtime,
    script:
        "../scripts/privacy_evaluate.py"


rule evaluate_calibration:
    input:
        published_draws=f"{RESULTS}/published/draws.parquet",
        exact_draws=f"{RESULTS}/model/block_draws.parquet",
        truth=f"{RESULTS}/truth/persons.parquet",
        frame=f"{RESULTS}/world/frame.parquet",
        geography=f"{RESULTS}/world/geography.parquet",
    output:
        evaluation=f"{RESULTS}/evaluation/calibration.json",
        figure=report(
            f"{RESULTS}/evaluation/calibration_levels.png",
            category="Evaluation",
            labels={"figure": "coverage by aggregate size"},
        ),
    log:
        f"{LOGS}/privacy/evaluate_calibration.log",
    benchmark:
        f"{BENCH}/privacy/evaluate_calibration.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=RESOURCES["evaluate_calibration"].mem_mb,
        runtime=RESOURCES["evaluate_calibration"].runtime,
    params:
        # The seed draws the randomized PIT (as in benchmarks/calibration_study.py).
        settings=settings(),
        run=RUN,
    script:
        "../scripts/privacy_evaluate_calibration.py"


rule evaluate_comparison:
    input:
        published=f"{RESULTS}/published/draws.parquet",
        exact=f"{RESULTS}/model/block_draws.parquet",
        record_rule=f"{RESULTS}/baselines/record_rule/block_draws.parquet",
        census_style=f"{RESULTS}/baselines/census_style/block_draws.parquet",
        acs_direct=f"{RESULTS}/baselines/acs_direct/block_draws.parquet",
        acs_block_groups=f"{RESULTS}/baselines/acs_direct/block_groups.parquet",
        truth=f"{RESULTS}/truth/persons.parquet",
        frame=f"{RESULTS}/world/frame.parquet",
        geography=f"{RESULTS}/world/geography.parquet",
    output:
        evaluation=f"{RESULTS}/evaluation/comparison.json",
        table=f"{RESULTS}/evaluation/comparison.csv",
        figure=report(
            f"{RESULTS}/evaluation/gain_over_acs.png",
            category="Evaluation",
            labels={"figure": "gain over today's ACS disaggregation"},
        ),
    log:
        f"{LOGS}/privacy/evaluate_comparison.log",
    benchmark:
        f"{BENCH}/privacy/evaluate_comparison.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=RESOURCES["evaluate_comparison"].mem_mb,
        runtime=RESOURCES["evaluate_comparison"].runtime,
    params:
        # The seed draws the randomized PIT (as evaluate_calibration does).
        settings=settings(),
        run=RUN,
    script:
        "../scripts/privacy_evaluate_comparison.py"


FINAL_TARGETS.extend(
    [
        rules.privacy_measure.output.ledger,
        *rules.publish.output,
        rules.evaluate_published.output.evaluation,
        rules.evaluate_calibration.output.evaluation,
        rules.evaluate_comparison.output.evaluation,
    ]
)
