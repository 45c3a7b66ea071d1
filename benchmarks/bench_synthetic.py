"""Benchmark of the synthetic stage: a 1M-person world with all sources, and the per-person
speed of the vectorized generator against a naive Faker-per-row generator.

Prints: wall time (generation, writing, total), persons per second, peak memory (ru_maxrss),
records per source, and the per-person speed ratio over Faker-per-row (one Faker call per
field per person, on a small sample).

    nice -n 10 .venv/bin/python benchmarks/bench_synthetic.py [--persons 1000000]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline_common.config import load_config
from synthetic.geography import county_targets, load_county_table
from synthetic.identities import sample_identities
from synthetic.world import generate_world, write_world


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MB (ru_maxrss is in KB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def faker_per_row(n: int, seed: int = 1) -> float:
    """Seconds to make ``n`` persons the naive way: one Faker call per field per person."""
    from faker import Faker

    fake = Faker(["en_US", "es_MX", "vi_VN", "en_IN", "zh_CN"])
    Faker.seed(seed)
    started = time.perf_counter()
    rows = []
    for _ in range(n):
        rows.append(
            {
                "first_name": fake.first_name(),
                "last_name": fake.last_name(),
                "dob": fake.date_of_birth(minimum_age=0, maximum_age=100),
                "sex": fake.random_element(("F", "M")),
                "ssn": fake.ssn(),
                "address": fake.street_address(),
                "zip": fake.postcode(),
                "country": fake.country(),
            }
        )
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--faker-sample", type=int, default=2_000)
    args = parser.parse_args(argv)

    base = load_config()
    counties = base["synthetic"]["counties"]
    table = load_county_table(base["data_dir"])
    real_total = county_targets(table, counties, 1.0, "table")["persons"].sum()
    scale = args.persons / real_total
    config = load_config(overrides={"run": "bench", "synthetic": {"scale": scale}})

    load_before = os.getloadavg()[0]
    cpu_before = _cpu_seconds()
    started = time.perf_counter()
    world = generate_world(config)
    generated = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as folder:
        write_start = time.perf_counter()
        write_world(world, Path(folder))
        written = time.perf_counter() - write_start
        size_mb = sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file()) / 1e6
    total = time.perf_counter() - started
    cpu = _cpu_seconds() - cpu_before
    n = len(world.frame)
    records = {name: len(t) for name, t in world.sources.items()}
    print(f"counties: {', '.join(counties)}  scale: {scale:.4f}")
    print(
        f"persons: {n:,}  blocks: {world.geography.shape[0]:,}  source records: {sum(records.values()):,}"
    )
    for name, count in records.items():
        print(f"  {name:<22} {count:>10,}")
    print(f"generate (in memory): {generated:.1f} s")
    print(f"write parquet:        {written:.1f} s  ({size_mb:.0f} MB)")
    print(f"total wall:           {total:.1f} s  -> {n / total:,.0f} persons/s")
    print(f"CPU time (user+sys):  {cpu:.1f} s  -> {n / cpu:,.0f} persons per CPU second")
    print(f"load average at start: {load_before:.1f} (machine shared; wall time includes waiting)")
    print(f"peak memory (ru_maxrss): {peak_rss_mb():,.0f} MB")

    del world
    # Like for like: the same identity fields, vectorized (word lists read once, numpy draws).
    import numpy as np

    id_start = time.perf_counter()
    identities = sample_identities(n, np.random.default_rng(1))
    vectorized_seconds = time.perf_counter() - id_start
    naive_seconds = faker_per_row(args.faker_sample)
    naive_per_person = naive_seconds / args.faker_sample
    print(
        f"Faker-per-row: {args.faker_sample:,} persons (8 identity fields) in {naive_seconds:.2f} s"
        f" -> {1 / naive_per_person:,.0f} persons/s"
    )
    print(
        f"vectorized identities: {len(identities):,} persons (same 8 fields) in "
        f"{vectorized_seconds:.2f} s -> {len(identities) / vectorized_seconds:,.0f} persons/s"
    )
    print(
        f"speed ratio per person, identities like for like: "
        f"{naive_per_person / (vectorized_seconds / len(identities)):.0f}x"
    )
    print(
        f"speed ratio per person, whole world (frame, 7 sources, truth, written) vs "
        f"Faker-per-row identities only: {naive_per_person / (total / n):.0f}x"
    )


if __name__ == "__main__":
    main()
