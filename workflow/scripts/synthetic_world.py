"""Snakemake adapter: generate the synthetic world and write its contract files."""

from pathlib import Path

from pipeline_common.logs import snakemake_log
from synthetic.world import generate_world, write_world

log = snakemake_log(snakemake)  # noqa: F821 (injected by Snakemake)
config = dict(snakemake.config)  # noqa: F821
world = generate_world(config)
run_dir = Path(snakemake.output["frame"]).parent.parent  # noqa: F821
paths = write_world(world, run_dir)
expected = {str(Path(p)) for p in snakemake.output}  # noqa: F821
written = {str(p) for p in paths.values()}
missing = sorted(expected - written)
if missing:
    raise RuntimeError(f"synthetic stage did not write: {missing}")
log.info("synthetic world written to %s", run_dir)
