# Sensitivity analyses (run on purpose: `./run.sh sensitivity`): a Paramspace of one-at-a-time
# knob settings from config/sensitivity.yaml; each is a full pipeline run on the base scenario.
import yaml
from snakemake.utils import Paramspace

from pipeline_common.sensitivity import run_overrides, summarize, sweep_table

SENSITIVITY = yaml.safe_load(open("config/sensitivity.yaml"))


validate(SENSITIVITY, schema="../schemas/sensitivity.schema.yaml", set_default=True)


SWEEP = Paramspace(sweep_table(SENSITIVITY), param_sep="~")
SENS = "results/sensitivity"


rule sensitivity_config:
    output:
        config=f"{SENS}/{SWEEP.wildcard_pattern}/config.yaml",
    log:
        f"logs/sensitivity/{SWEEP.wildcard_pattern}/config.log",
    benchmark:
        f"benchmarks/sensitivity/{SWEEP.wildcard_pattern}/config.tsv"
    conda:
        ENV
    params:
        overrides=lambda wc: run_overrides(SENSITIVITY, wc.knob, wc.value),
    script:
        "../scripts/sensitivity_config.py"


rule sensitivity_run:
    input:
        config=rules.sensitivity_config.output.config,
    output:
        estimates=f"{SENS}/{SWEEP.wildcard_pattern}/estimates.json",
        published=f"{SENS}/{SWEEP.wildcard_pattern}/published.json",
    log:
        f"logs/sensitivity/{SWEEP.wildcard_pattern}/run.log",
    benchmark:
        f"benchmarks/sensitivity/{SWEEP.wildcard_pattern}/run.tsv"
    conda:
        ENV
    threads: workflow.cores
    params:
        snakefile=workflow.main_snakefile,
        run=lambda wc: f"results/sens-{wc.knob}-{wc.value}",
    shell:
        # A nested run of this workflow with the knob's config; only its evaluation is needed.
        "snakemake -s {params.snakefile} --configfile {input.config} --cores {threads}"
        " --nolock {params.run}/evaluation/estimates.json"
        " {params.run}/evaluation/published.json > {log} 2>&1"
        " && cp {params.run}/evaluation/estimates.json {output.estimates}"
        " && cp {params.run}/evaluation/published.json {output.published}"


rule sensitivity_summary:
    input:
        estimates=expand(
            f"{SENS}/{{params}}/estimates.json", params=SWEEP.instance_patterns
        ),
    output:
        summary=report(f"{SENS}/summary.csv", category="Sensitivity"),
        figure=report(f"{SENS}/summary.png", category="Sensitivity"),
    log:
        "logs/sensitivity/summary.log",
    benchmark:
        "benchmarks/sensitivity/summary.tsv"
    conda:
        ENV
    params:
        sweep=SWEEP,
    script:
        "../scripts/sensitivity_summary.py"


rule sensitivity:
    input:
        rules.sensitivity_summary.output,
