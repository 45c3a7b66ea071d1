# Rules of the model stage (see docs/CONTRACTS.md).
# tabulate -> exact_tables -> fit_model -> predict_blocks; baselines; evaluation.
# model/ holds the privacy-free fit on the exact cells (the method at its best, never
# published); the privacy stage refits the same model to its noisy measurements for publication.
MODEL = f"{RESULTS}/model"
CVAP_TABLE = f"{config['data_dir']}/census_cvap/cvap_acs2009_2013_county_totals.csv"


rule tabulate:
    input:
        evidence=f"{RESULTS}/linkage/evidence.parquet",
        frame=f"{RESULTS}/world/frame.parquet",
        geography=f"{RESULTS}/world/geography.parquet",
    output:
        cells=f"{MODEL}/cells.parquet",
        patterns=f"{MODEL}/patterns.parquet",
    log:
        f"{LOGS}/model/tabulate.log",
    benchmark:
        f"{BENCH}/model/tabulate.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=RESOURCES["tabulate"].mem_mb,
        runtime=RESOURCES["tabulate"].runtime,
    params:
        # A changed exclusion list or category rule must re-run tabulation.
        settings=settings(),
        tabulation={
            key: config["model"][key]
            for key in (
                "exclude_sources",
                "high_confidence_threshold",
                "stale_split",
                "stale_cutoff_year",
            )
        },
    script:
        "../scripts/model_tabulate.py"


rule exact_tables:
    input:
        cells=f"{MODEL}/cells.parquet",
    output:
        measurements=f"{MODEL}/exact_measurements.parquet",
        public_counts=f"{MODEL}/public_counts.parquet",
    log:
        f"{LOGS}/model/exact_tables.log",
    benchmark:
        f"{BENCH}/model/exact_tables.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=RESOURCES["exact_tables"].mem_mb,
        runtime=RESOURCES["exact_tables"].runtime,
    params:
        settings=settings("model"),
    script:
        "../scripts/model_exact_tables.py"


rule fit_model:
    input:
        measurements=f"{MODEL}/exact_measurements.parquet",
        public_counts=f"{MODEL}/public_counts.parquet",
        patterns=f"{MODEL}/patterns.parquet",
    output:
        posterior=f"{MODEL}/posterior.nc",
        diagnostics=report(f"{MODEL}/diagnostics.json", category="Model"),
    log:
        f"{LOGS}/model/fit_model.log",
    benchmark:
        f"{BENCH}/model/fit_model.tsv"
    conda:
        ENV
    threads: config["model"]["chains"]
    resources:
        mem_mb=RESOURCES["fit_model"].mem_mb,
        runtime=RESOURCES["fit_model"].runtime,
    params:
        settings=settings("model"),
    script:
        "../scripts/model_fit.py"


rule predict_blocks:
    input:
        measurements=f"{MODEL}/exact_measurements.parquet",
        public_counts=f"{MODEL}/public_counts.parquet",
        patterns=f"{MODEL}/patterns.parquet",
        posterior=f"{MODEL}/posterior.nc",
    output:
        block_draws=f"{MODEL}/block_draws.parquet",
    log:
        f"{LOGS}/model/predict_blocks.log",
    benchmark:
        f"{BENCH}/model/predict_blocks.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=RESOURCES["predict_blocks"].mem_mb,
        runtime=RESOURCES["predict_blocks"].runtime,
    params:
        settings=settings("model"),
    script:
        "../scripts/model_predict.py"


rule baseline_record_rule:
    input:
        evidence=f"{RESULTS}/linkage/evidence.parquet",
        frame=f"{RESULTS}/world/frame.parquet",
        geography=f"{RESULTS}/world/geography.parquet",
        cvap_table=CVAP_TABLE,
    output:
        block_draws=f"{RESULTS}/baselines/record_rule/block_draws.parquet",
    log:
        f"{LOGS}/model/baseline_record_rule.log",
    benchmark:
        f"{BENCH}/model/baseline_record_rule.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=RESOURCES["baseline_record_rule"].mem_mb,
        runtime=RESOURCES["baseline_record_rule"].runtime,
    params:
        method="record_rule",
        settings=settings(),
        baselines=config["model"]["baselines"],
        threshold=config["model"]["high_confidence_threshold"],
    script:
        "../scripts/model_baseline.py"


rule baseline_census_style:
    input:
        evidence=f"{RESULTS}/linkage/evidence.parquet",
        frame=f"{RESULTS}/world/frame.parquet",
        geography=f"{RESULTS}/world/geography.parquet",
    output:
        block_draws=f"{RESULTS}/baselines/census_style/block_draws.parquet",
    log:
        f"{LOGS}/model/baseline_census_style.log",
    benchmark:
        f"{BENCH}/model/baseline_census_style.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=RESOURCES["baseline_census_style"].mem_mb,
        runtime=RESOURCES["baseline_census_style"].runtime,
    params:
        method="census_style",
        settings=settings(),
        baselines=config["model"]["baselines"],
        threshold=config["model"]["high_confidence_threshold"],
    script:
        "../scripts/model_baseline.py"


rule baseline_acs_direct:
    input:
        acs=f"{RESULTS}/world/sources/acs.parquet",
        frame=f"{RESULTS}/world/frame.parquet",
        geography=f"{RESULTS}/world/geography.parquet",
    output:
        block_draws=f"{RESULTS}/baselines/acs_direct/block_draws.parquet",
        block_groups=f"{RESULTS}/baselines/acs_direct/block_groups.parquet",
    log:
        f"{LOGS}/model/baseline_acs_direct.log",
    benchmark:
        f"{BENCH}/model/baseline_acs_direct.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=RESOURCES["baseline_acs_direct"].mem_mb,
        runtime=RESOURCES["baseline_acs_direct"].runtime,
    params:
        settings=settings(),
        baselines=config["model"]["baselines"],
    script:
        "../scripts/model_baseline_acs.py"


rule evaluate_estimates:
    input:
        model=f"{MODEL}/block_draws.parquet",
        record_rule=f"{RESULTS}/baselines/record_rule/block_draws.parquet",
        census_style=f"{RESULTS}/baselines/census_style/block_draws.parquet",
        acs_direct=f"{RESULTS}/baselines/acs_direct/block_draws.parquet",
        truth=f"{RESULTS}/truth/persons.parquet",
        frame=f"{RESULTS}/world/frame.parquet",
        evidence=f"{RESULTS}/linkage/evidence.parquet",
    output:
        estimates=f"{RESULTS}/evaluation/estimates.json",
    log:
        f"{LOGS}/model/evaluate_estimates.log",
    benchmark:
        f"{BENCH}/model/evaluate_estimates.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=RESOURCES["evaluate_estimates"].mem_mb,
        runtime=RESOURCES["evaluate_estimates"].runtime,
    script:
        "../scripts/model_evaluate.py"


FINAL_TARGETS.extend(
    [
        f"{RESULTS}/evaluation/estimates.json",
        f"{MODEL}/diagnostics.json",
    ]
)
