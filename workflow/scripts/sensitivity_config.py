"""Write the config of one sensitivity run (base scenario + one knob changed)."""

import yaml

from pipeline_common.io import write_text
from pipeline_common.logs import snakemake_log

snakemake = globals()["snakemake"]
log = snakemake_log(snakemake)
overrides = snakemake.params.overrides
write_text(yaml.safe_dump(overrides, sort_keys=True), snakemake.output.config)
log.info("run %s: %s", overrides["run"], overrides)
