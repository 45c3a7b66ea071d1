# Sensitivity analyses, run on purpose only: `snakemake sensitivity --cores 2 --nolock`
# (or `./run.sh sensitivity`). Nothing in `rule all` depends on these rules, so a normal run or
# a dry run never triggers the sweep; parsing only reads and validates the small sweep file.
#
# The sweep file is config/sensitivity.yaml unless the environment variable SENSITIVITY_CONFIG
# names another one (the root config schema allows no extra keys, so `--config` cannot carry
# it), e.g. the quick check on the tiny scenario:
#   SENSITIVITY_CONFIG=config/sensitivity_tiny.yaml snakemake sensitivity --cores 2 --nolock
#
# A Paramspace of one-at-a-time knob settings (plus one unchanged baseline row); each row is a
# nested run of this workflow with the base scenario and that knob changed, under
# results/{run_prefix}-{knob}-{value}/ (never results/default or results/tiny). Its evaluation
# files are copied to {summary_dir}/knob~{knob}/value~{value}/; the summary rule gathers them
# into {summary_dir}/summary.csv, summary.png and summary.html.
import os
import sys
from pathlib import Path

from snakemake.utils import Paramspace

from pipeline_common.sensitivity import (
    load_sensitivity,
    run_name,
    run_overrides,
    sweep_table,
)

SENSITIVITY_FILE = os.environ.get("SENSITIVITY_CONFIG", "config/sensitivity.yaml")
SENSITIVITY = load_sensitivity(SENSITIVITY_FILE)
SWEEP = Paramspace(sweep_table(SENSITIVITY, SENSITIVITY_FILE), param_sep="~")
SENS = SENSITIVITY["summary_dir"]
SENS_LOGS = f"logs/{Path(SENS).name}"
SENS_BENCH = f"benchmarks/{Path(SENS).name}"


rule sensitivity_config:
    output:
        config=f"{SENS}/{SWEEP.wildcard_pattern}/config.yaml",
    log:
        f"{SENS_LOGS}/{SWEEP.wildcard_pattern}/config.log",
    benchmark:
        f"{SENS_BENCH}/{SWEEP.wildcard_pattern}/config.tsv"
    wildcard_constraints:
        knob="[A-Za-z0-9_]+",
        value="[^/~]+",
    conda:
        ENV
    params:
        overrides=lambda wc: run_overrides(
            SENSITIVITY, wc.knob, wc.value, SENSITIVITY_FILE
        ),
    script:
        "../scripts/sensitivity_config.py"


rule sensitivity_run:
    input:
        config=rules.sensitivity_config.output.config,
    output:
        estimates=f"{SENS}/{SWEEP.wildcard_pattern}/estimates.json",
        published=f"{SENS}/{SWEEP.wildcard_pattern}/published.json",
    log:
        f"{SENS_LOGS}/{SWEEP.wildcard_pattern}/run.log",
    benchmark:
        f"{SENS_BENCH}/{SWEEP.wildcard_pattern}/run.tsv"
    wildcard_constraints:
        knob="[A-Za-z0-9_]+",
        value="[^/~]+",
    conda:
        ENV
    threads: workflow.cores
    params:
        snakemake=f"{sys.executable} -m snakemake",
        snakefile=workflow.main_snakefile,
        run=lambda wc: f"results/{run_name(SENSITIVITY, wc.knob, wc.value)}",
    shell:
        # A nested run of this workflow with the knob's config; only its evaluation is needed.
        "{params.snakemake} -s {params.snakefile} --configfile {input.config}"
        " --cores {threads} --nolock --rerun-incomplete"
        " {params.run}/evaluation/estimates.json"
        " {params.run}/evaluation/published.json > {log} 2>&1"
        " && cp {params.run}/evaluation/estimates.json {output.estimates}"
        " && cp {params.run}/evaluation/published.json {output.published}"


rule sensitivity_summary:
    input:
        estimates=expand(
            f"{SENS}/{{params}}/estimates.json", params=SWEEP.instance_patterns
        ),
        published=expand(
            f"{SENS}/{{params}}/published.json", params=SWEEP.instance_patterns
        ),
    output:
        summary=report(f"{SENS}/summary.csv", category="Sensitivity"),
        figure=report(f"{SENS}/summary.png", category="Sensitivity"),
        html=report(f"{SENS}/summary.html", category="Sensitivity"),
    log:
        f"{SENS_LOGS}/summary.log",
    benchmark:
        f"{SENS_BENCH}/summary.tsv"
    conda:
        ENV
    params:
        runs=SWEEP.dataframe.to_dict("records"),
        title=f"Sensitivity: {SENSITIVITY_FILE} (base {SENSITIVITY['base_scenario']})",
    script:
        "../scripts/sensitivity_summary.py"


rule sensitivity:
    input:
        rules.sensitivity_summary.output,
