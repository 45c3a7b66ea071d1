# Helpers shared by the stage rule files.
import sys
from pathlib import Path

# The stage packages live at the repository root; make them importable from scripts.
sys.path.insert(0, str(Path(workflow.basedir)))

from pipeline_common.sources import SOURCES as ALL_SOURCES

RUN = config["run"]
RESULTS = f"results/{RUN}"
LOGS = f"logs/{RUN}"
BENCH = f"benchmarks/{RUN}"
SOURCES = list(ALL_SOURCES)
ENV = "../envs/pipeline.yaml"

# The model refitted to the privacy stage's noisy measurements (publication reads it).
PRIVATE_MODEL = f"{RESULTS}/privacy/model"


def published_fit(name):
    """The fit publication reads: the noise-aware refit, or the exact fit without privacy."""
    if config["privacy"]["mode"] == "none":
        return f"{RESULTS}/model/{name}"
    return f"{PRIVATE_MODEL}/{name}"


def settings(*sections):
    """The config a rule's script reads, as a ``params:`` value: Snakemake's params rerun trigger
    then reruns the rule when it changes (scripts read ``snakemake.config`` directly).
    """
    shared = {k: config[k] for k in ("seed", "reference_date", "age_groups")}
    return {**shared, **{section: config[section] for section in sections}}


def linkage_settings():
    """``settings("linkage")``, without the backend keys while DuckDB runs: the params of runs
    made before the Spark backend existed stay the same, so they are not relinked."""
    params = settings("linkage")
    if config["linkage"]["backend"] == "duckdb":
        section = params["linkage"]
        params["linkage"] = {
            k: v for k, v in section.items() if k not in ("backend", "spark")
        }
    return params


# Each stage file appends the targets a full run must build.
FINAL_TARGETS = []


def all_outputs():
    return FINAL_TARGETS


def warn_unconverged_fits():
    """End of a successful run: a loud warning naming every fit that missed a convergence
    target (read from the run's diagnostics.json files; pipeline_common.convergence)."""
    from snakemake.logging import logger

    from pipeline_common.convergence import end_of_run_warning, run_fits

    message = end_of_run_warning(run_fits(RESULTS, config["privacy"]["mode"]))
    if message:
        logger.warning(message)


# What each job asks a scheduler for (pipeline_common/resources.py, every stage's `resources:`):
# memory in MB and wall time in minutes, from the default scenario's measured figures, grown
# with this scenario's persons (county table x synthetic.scale) where the work grows with them.
# (No 'rule' and colon on one line here: the linter would take this file for a rule file.)
from pipeline_common.resources import resource_table

RESOURCES = resource_table(config)
