# Block-level citizenship estimates from linked administrative records on a synthetic world.
# Thin by design: config, schema validation, stage includes, and the default target.
import sys

from snakemake.utils import min_version

from pipeline_common.config import validate_config
from pipeline_common.errors import InputError

min_version("9.0")


configfile: "config/config.yaml"


# Each stage's section has its own schema (defaults are filled in per section); then the
# cross-field rules (pipeline_common.config_checks). A bad config stops here, before any job,
# with the config file, the dotted key and the fix (no traceback, no schema dump).
try:
    # Merge order: the default config, then the --configfile files (the last setter wins).
    CONFIG_FILES = [
        "config/config.yaml",
        *map(str, workflow.overwrite_configfiles or []),
    ]
    validate_config(config, files=CONFIG_FILES, check_paths=True)
except InputError as error:
    sys.exit(f"config error: {error}")


include: "workflow/rules/common.smk"
include: "workflow/rules/synthetic.smk"
include: "workflow/rules/linkage.smk"
include: "workflow/rules/model.smk"
include: "workflow/rules/privacy.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/sensitivity.smk"


# Target rules run no job: on a cluster they stay on the submitting machine.
rule all:
    default_target: True
    input:
        all_outputs(),
    localrule: True


# A fit that missed its convergence targets is said loudly at the end of the run.
onsuccess:
    warn_unconverged_fits()
