"""Time the privacy stage (measure, publish, aggregate) on a toy world of a chosen size.

Usage: ``python benchmarks/bench_privacy.py --blocks 5000 --draws 1000``. Prints figures only.
"""

from __future__ import annotations

import argparse
import io
import resource
import time

import numpy as np
import pandas as pd

from pipeline_common.config import load_config
from privacy.aggregate import aggregate
from privacy.measure import measure
from privacy.publish import publish
from privacy.testing import fixture_draws, fixture_world


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=5000)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--noise-source", default="seeded", choices=["seeded", "opendp"])
    args = parser.parse_args()
    blocks_per_tract = 25
    tracts = max(1, args.blocks // blocks_per_tract)
    world = fixture_world(
        np.random.default_rng(1),
        counties=3,
        tracts_per_county=max(1, tracts // 3),
        blocks_per_tract=blocks_per_tract,
    )
    config = load_config(overrides={"run": "bench", "privacy": {"noise_source": args.noise_source}})
    start = time.perf_counter()
    measurements, counts, ledger = measure(
        world["cells"], world["patterns"], config, world["geography"]
    )
    measured = time.perf_counter()
    draws = fixture_draws(np.random.default_rng(2), world["persons"], draws=args.draws)
    drawn = time.perf_counter()
    files = publish(draws, counts, ledger, {}, config)
    published = time.perf_counter()
    districts = pd.DataFrame(
        {"block_id": world["geography"]["block_id"], "district": world["geography"]["tract_id"]}
    )
    aggregate(pd.read_parquet(io.BytesIO(files["draws.parquet"])), districts)
    aggregated = time.perf_counter()
    print(
        f"persons {len(world['persons'])}, blocks {len(world['geography'])}, "
        f"draws {args.draws}, measurement cells {len(measurements)}"
    )
    print(f"measure   {measured - start:7.2f} s ({args.noise_source})")
    print(
        f"publish   {published - drawn:7.2f} s; draws.parquet {len(files['draws.parquet']) / 1e6:.1f} MB"
    )
    print(
        f"aggregate {aggregated - published:7.2f} s ({districts['district'].nunique()} districts)"
    )
    print(f"peak RSS  {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
