"""Write the config of one sensitivity run (base scenario + one knob changed)."""

import yaml

from pipeline_common.io import write_text
from pipeline_common.logs import snakemake_log

log = snakemake_log(snakemake)  # noqa: F821
overrides = snakemake.params.overrides  # noqa: F821
write_text(yaml.safe_dump(overrides, sort_keys=True), snakemake.output.config)  # noqa: F821
log.info("run %s: %s", overrides["run"], overrides)
