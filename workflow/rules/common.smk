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


# Each stage file appends the targets a full run must build.
FINAL_TARGETS = []


def all_outputs():
    return FINAL_TARGETS
