# Sensitivity analyses, run on purpose only: `snakemake sensitivity --cores 2 --nolock`
# (or `./run.sh sensitivity`). Nothing in `rule all` depends on these rules, so a normal run or
# a dry run never triggers the sweep; parsing only reads and checks the small sweep file (every
# knob path must be a key of the resolved config: a typo fails here).
#
# The sweep file is config/sensitivity.yaml unless the environment variable SENSITIVITY_CONFIG
# names another one (the root config schema allows no extra keys, so `--config` cannot carry
# it), e.g. the quick check on the tiny scenario:
#   SENSITIVITY_CONFIG=config/sensitivity_tiny.yaml snakemake sensitivity --cores 2 --nolock
#
# A Paramspace of (replicate seed, knob, value) rows, one unchanged baseline row per seed. Each
# row is a nested run of this workflow under results/{run_prefix}-s{seed}-{knob}-{value}/ (never
# results/default or results/tiny). The points of a replicate wait for its baseline run and
# start from hard links of every baseline output their knob does not change
# (sensitivity/reuse.py); each point is then scored against its own truth
# (sensitivity/score.py) into {summary_dir}/seed~{seed}/knob~{knob}/value~{value}/. The summary
# rule gathers the scores into summary.csv (one row per point and replicate) and
# summary_aggregate.csv (mean and spread over replicates); the report rule renders report.html
# and report.pdf from them.
import os
import sys
from pathlib import Path

from snakemake.utils import Paramspace

from sensitivity.point_config import check_paths, run_overrides
from sensitivity.sweep import baseline_point, load_sensitivity, sweep_table

SENSITIVITY_FILE = os.environ.get("SENSITIVITY_CONFIG", "config/sensitivity.yaml")
SENSITIVITY = load_sensitivity(SENSITIVITY_FILE)
check_paths(SENSITIVITY, SENSITIVITY_FILE)
SWEEP = Paramspace(sweep_table(SENSITIVITY, SENSITIVITY_FILE), param_sep="~")
SENS = SENSITIVITY["summary_dir"]
SENS_LOGS = f"logs/{Path(SENS).name}"
SENS_BENCH = f"benchmarks/{Path(SENS).name}"
SENS_POINT = f"{SENS}/{SWEEP.wildcard_pattern}"


rule sensitivity_config:
    output:
        config=f"{SENS_POINT}/config.yaml",
    log:
        f"{SENS_LOGS}/{SWEEP.wildcard_pattern}/config.log",
    benchmark:
        f"{SENS_BENCH}/{SWEEP.wildcard_pattern}/config.tsv"
    wildcard_constraints:
        seed="[0-9]+",
        knob="[A-Za-z0-9_]+",
        value="[^/~]+",
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=RESOURCES["sensitivity_config"].mem_mb,
        runtime=RESOURCES["sensitivity_config"].runtime,
    params:
        overrides=lambda wc: run_overrides(
            SENSITIVITY, wc.seed, wc.knob, wc.value, SENSITIVITY_FILE
        ),
    script:
        "../scripts/sensitivity_config.py"


rule sensitivity_run:
    input:
        config=rules.sensitivity_config.output.config,
        # A point waits for its replicate's baseline run, whose outputs it reuses.
        baseline=lambda wc: baseline_point(SENS, wc.seed, wc.knob),
    output:
        scores=f"{SENS_POINT}/scores.csv",
        run=f"{SENS_POINT}/run.json",
    log:
        main=f"{SENS_LOGS}/{SWEEP.wildcard_pattern}/run.log",
        nested=f"{SENS_LOGS}/{SWEEP.wildcard_pattern}/nested_run.log",
    benchmark:
        f"{SENS_BENCH}/{SWEEP.wildcard_pattern}/run.tsv"
    wildcard_constraints:
        seed="[0-9]+",
        knob="[A-Za-z0-9_]+",
        value="[^/~]+",
    conda:
        ENV
    threads: workflow.cores
    resources:
        mem_mb=RESOURCES["sensitivity_run"].mem_mb,
        runtime=RESOURCES["sensitivity_run"].runtime,
    params:
        sensitivity=SENSITIVITY,
        sensitivity_file=SENSITIVITY_FILE,
        snakefile=workflow.main_snakefile,
        python=sys.executable,
    script:
        "../scripts/sensitivity_run.py"


rule sensitivity_summary:
    input:
        scores=expand(f"{SENS}/{{params}}/scores.csv", params=SWEEP.instance_patterns),
        runs=expand(f"{SENS}/{{params}}/run.json", params=SWEEP.instance_patterns),
    output:
        summary=report(f"{SENS}/summary.csv", category="Sensitivity"),
        long=f"{SENS}/summary_long.csv",
        aggregate=report(f"{SENS}/summary_aggregate.csv", category="Sensitivity"),
        report_table=f"{SENS}/summary_report.csv",
    log:
        f"{SENS_LOGS}/summary.log",
    benchmark:
        f"{SENS_BENCH}/summary.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=RESOURCES["sensitivity_summary"].mem_mb,
        runtime=RESOURCES["sensitivity_summary"].runtime,
    script:
        "../scripts/sensitivity_summary.py"


rule sensitivity_report:
    input:
        long=rules.sensitivity_summary.output.long,
        aggregate=rules.sensitivity_summary.output.aggregate,
        runs=rules.sensitivity_summary.input.runs,
    output:
        html=report(f"{SENS}/report.html", category="Sensitivity"),
        pdf=report(f"{SENS}/report.pdf", category="Sensitivity"),
    log:
        f"{SENS_LOGS}/report.log",
    benchmark:
        f"{SENS_BENCH}/report.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=RESOURCES["sensitivity_report"].mem_mb,
        runtime=RESOURCES["sensitivity_report"].runtime,
    params:
        sensitivity=SENSITIVITY,
        sensitivity_file=SENSITIVITY_FILE,
        bench_dir=SENS_BENCH,
    script:
        "../scripts/sensitivity_report.py"


rule sensitivity:
    input:
        rules.sensitivity_summary.output,
        rules.sensitivity_report.output,
    localrule: True
