"""Snakemake adapter: linkage quality against the truth (evaluation only)."""

import logging
from pathlib import Path

import pandas as pd

from linkage.evaluate import evaluate_linkage
from linkage.policy import apply_policy, resolve_policy
from pipeline_common.io import read_json, write_json
from pipeline_common.logs import snakemake_log

snakemake = globals()["snakemake"]
snakemake_log(snakemake)
entered = {}
for path in snakemake.input.sources:
    source = Path(path).stem
    # The same policy the linkage rule applied: which records entered linkage.
    shared, _ = apply_policy(pd.read_parquet(path), resolve_policy(snakemake.config, source), path)
    entered[source] = shared["record_id"]
result = evaluate_linkage(
    pd.read_parquet(snakemake.input.links),
    entered,
    read_json(snakemake.input.withheld),
    pd.read_parquet(snakemake.input.frame, columns=["person_id"])["person_id"],
    pd.read_parquet(snakemake.input.truth_records),
    pd.read_parquet(snakemake.input.truth_persons),
)
for source, entry in result["sources"].items():
    logging.info(
        "%s: precision %s recall %s f1 %s", source, entry["precision"], entry["recall"], entry["f1"]
    )
write_json(result, snakemake.output.evaluation)
