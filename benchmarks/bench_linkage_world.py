"""Wall time and peak memory of the whole linkage stage on a large world (default 1M persons).

Uses the synthetic stage's ``synthetic.world.generate_world(config)``. Run from the
repository root:

    .venv/bin/python benchmarks/bench_linkage_world.py --persons 1000000 --workdir /tmp/bench1m
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import resource
import time
from pathlib import Path

import pandas as pd

from linkage.evaluate import evaluate_linkage
from linkage.policy import DEFAULT_PERMITTED_FIELDS, apply_policy, resolve_policy
from linkage.stage import run_stage
from pipeline_common.config import load_config
from pipeline_common.io import read_json


def build_world(config: dict, persons: int, results: Path) -> str:
    """Write a world of about ``persons`` persons under ``results``; return its generator name.

    The synthetic stage's world is scaled by ``synthetic.scale`` (persons per real person):
    the default config's scale gives about 151k persons, so it is multiplied by
    ``persons / 151_000``.
    """
    from synthetic.world import generate_world, write_world

    world_config = copy.deepcopy(config)
    scale = float(world_config["synthetic"]["scale"]) * persons / 151_000
    world_config["synthetic"]["scale"] = min(scale, 1.0)
    started = time.perf_counter()
    write_world(generate_world(world_config), results)
    logging.info("world generated in %.0f s", time.perf_counter() - started)
    return f"synthetic.world.generate_world (scale {world_config['synthetic']['scale']:.4f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--workdir", default="/tmp/bench_linkage_world")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reuse", action="store_true", help="reuse an existing world")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    config = load_config(overrides={"linkage": {"threads": args.threads}})
    results = Path(args.workdir)
    generator = "existing"
    if not (args.reuse and (results / "world" / "frame.parquet").exists()):
        generator = build_world(config, args.persons, results)
    started = time.perf_counter()
    timings = run_stage(config, results, list(DEFAULT_PERMITTED_FIELDS))
    seconds = time.perf_counter() - started
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    links = pd.read_parquet(results / "linkage" / "links.parquet")
    entered = {}
    for source in DEFAULT_PERMITTED_FIELDS:
        path = results / "world" / "sources" / f"{source}.parquet"
        shared, _ = apply_policy(pd.read_parquet(path), resolve_policy(config, source))
        entered[source] = shared["record_id"]
    quality = evaluate_linkage(
        links,
        entered,
        read_json(results / "linkage" / "withheld.json"),
        pd.read_parquet(results / "world" / "frame.parquet", columns=["person_id"])["person_id"],
        pd.read_parquet(results / "truth" / "records.parquet"),
        pd.read_parquet(results / "truth" / "persons.parquet"),
    )
    summary = {
        "world": generator,
        "frame_persons": len(
            pd.read_parquet(results / "world" / "frame.parquet", columns=["person_id"])
        ),
        "records": int(sum(len(v) for v in entered.values())),
        "linkage_seconds": round(seconds, 1),
        "seconds_per_source": timings,
        "peak_rss_gb": round(peak_gb, 2),
        "quality": {
            s: {k: e[k] for k in ("records_entered", "precision", "recall", "f1")}
            for s, e in quality["sources"].items()
        },
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
