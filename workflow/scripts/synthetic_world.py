"""Snakemake adapter: generate the synthetic world and write its contract files."""

from pathlib import Path

from pipeline_common.logs import snakemake_log
from synthetic.world import generate_world, write_world

snakemake = globals()["snakemake"]
log = snakemake_log(snakemake)
config = dict(snakemake.config)
world = generate_world(config)
run_dir = Path(snakemake.output["frame"]).parent.parent
paths = write_world(world, run_dir)
expected = {str(Path(p)) for p in snakemake.output}
written = {str(p) for p in paths.values()}
missing = sorted(expected - written)
if missing:
    raise RuntimeError(f"synthetic stage did not write: {missing}")
log.info("synthetic world written to %s", run_dir)
