"""Benchmark of the model's fit: cost follows cells, not persons.

Simulates cells from the model's own simulator (no pipeline run) at a fixed geography with
100k and 1M persons, and with twice the blocks; prints cells, parameters, the time of one
log-density gradient, and fit seconds (compile included) with the default config's model
(``config/config.yaml``: levels, centring, sampler, tuning), in a private PyTensor compile
cache (cold for the first case).

    .venv/bin/python benchmarks/bench_model.py [--draws 300] [--blocks-per-tract 25]
        [--sampler pymc|nutpie] [--no-sample]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np

from pipeline_common.config import load_config


def run_case(label: str, n_persons: int, blocks_per_tract: int, args) -> dict:
    from models.latent_class import (
        build_model,
        count_free_parameters,
        modal_reference_start,
        sample,
    )
    from models.pipeline import build_problem
    from models.testing import AGE_LABELS, simulate

    rng = np.random.default_rng(2020)
    start = time.perf_counter()
    sim = simulate(
        rng,
        n_persons=n_persons,
        n_counties=3,
        tracts_per_county=args.tracts,
        blocks_per_tract=blocks_per_tract,
    )
    simulate_s = time.perf_counter() - start
    config = load_config()["model"]
    problem, _ = build_problem(
        sim["measurements"], sim["public_counts"], sim["patterns"], config, AGE_LABELS
    )
    initvals = modal_reference_start(problem)  # as the pipeline's fit starts
    model = build_model(problem)
    dlogp = model.compile_dlogp()
    point = model.initial_point()
    dlogp(point)
    reps = 200
    t0 = time.perf_counter()
    for _ in range(reps):
        dlogp(point)
    grad_ms = (time.perf_counter() - t0) / reps * 1000
    row = {
        "case": label,
        "persons": n_persons,
        "blocks": int(sim["public_counts"]["block_id"].nunique()),
        "cells": len(problem.cell_count),
        "params": count_free_parameters(model),
        "simulate_s": round(simulate_s, 1),
        "grad_ms": round(grad_ms, 2),
    }
    if not args.no_sample:
        idata, seconds = sample(
            model,
            sampler=args.sampler,
            draws=args.draws,
            tune=config["tune"],
            chains=config["chains"],
            target_accept=config["target_accept"],
            adaptation=config["adaptation"],
            seed=1,
            initvals=initvals,
        )
        stats = idata["sample_stats"]
        steps = stats["n_steps"] if "n_steps" in stats else stats["tree_size"]
        row["fit_seconds_incl_compile"] = round(seconds, 1)
        row["wall_seconds"] = round(time.perf_counter() - start, 1)
        row["mean_tree_steps"] = round(float(steps.mean()), 1)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=300)
    parser.add_argument("--tracts", type=int, default=20, help="tracts per county (3 counties)")
    parser.add_argument("--blocks-per-tract", type=int, default=25)
    parser.add_argument("--no-sample", action="store_true", help="gradient timing only")
    parser.add_argument("--sampler", choices=["pymc", "nutpie"], default=None)
    parser.add_argument("--case", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.sampler = args.sampler or load_config()["model"]["sampler"]
    bpt = args.blocks_per_tract
    cases = [
        ("100k persons", 100_000, bpt),
        ("1M persons", 1_000_000, bpt),
        ("100k persons, 2x blocks", 100_000, 2 * bpt),
    ]
    if args.case is not None:
        # One case per process, each on its own empty compile cache: every fit compiles cold,
        # as in the pipeline, so the cases compare like for like.
        from models.stage import use_private_compile_cache

        use_private_compile_cache()
        print("ROW " + json.dumps(run_case(*cases[args.case], args), default=int), flush=True)
        return
    rows = []
    for index in range(len(cases)):
        out = subprocess.run(
            [sys.executable, __file__, *sys.argv[1:], "--case", str(index)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        rows.append(json.loads(next(ln[4:] for ln in out.splitlines() if ln.startswith("ROW "))))
        print(rows[-1], flush=True)
    print(f"\ncase | persons | blocks | cells | params | grad ms | fit s ({args.sampler})")
    for r in rows:
        print(
            f"{r['case']} | {r['persons']} | {r['blocks']} | {r['cells']} | {r['params']} | "
            f"{r['grad_ms']} | {r.get('fit_seconds_incl_compile', '-')}"
        )


if __name__ == "__main__":
    main()
