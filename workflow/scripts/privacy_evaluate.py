"""Snakemake adapter: evaluation of the published tables against the truth (privacy.evaluate)."""

import pandas as pd

from pipeline_common.io import write_json
from pipeline_common.logs import snakemake_log
from privacy.evaluate import evaluate_published

snakemake = globals()["snakemake"]
log = snakemake_log(snakemake)
result = evaluate_published(
    pd.read_csv(snakemake.input.blocks, dtype={"block_id": str, "tract_id": str, "county_id": str}),
    pd.read_parquet(snakemake.input.truth, columns=["person_id", "block_id", "age", "citizen"]),
    pd.read_parquet(snakemake.input.frame, columns=["person_id", "block_id"]),
)
write_json(result, snakemake.output.evaluation)
log.info("block coverage: %s", {q: v["coverage90"] for q, v in result["block"].items()})
