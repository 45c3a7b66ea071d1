"""How well published draws serve district plans: coverage of random plans against the truth.

Usage: ``python benchmarks/district_coverage.py results/default --plans 4 --districts 30``.
For each random plan it assigns blocks to districts the way ``cvap-aggregate`` users would
(``tracts``: whole tracts, shuffled and cut into districts of about equal population;
``blocks``: blocks drawn at random, a worst case for spatial correlation), aggregates
``published/draws.parquet`` with :func:`privacy.aggregate.aggregate` and prints, per quantity,
the share of districts whose 90% interval holds the truth, the mean absolute error (persons and
percent) and the mean interval width. Reads the truth: an evaluation script, run on purpose.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from models.evaluate import truth_blocks
from pipeline_common.errors import InputError
from privacy.aggregate import QUANTITIES, aggregate, read_draws


def random_plan(
    blocks: pd.DataFrame, n_districts: int, kind: str, rng: np.random.Generator
) -> pd.DataFrame:
    """A block -> district table of ``n_districts`` districts of about equal population.

    ``blocks`` has ``block_id, tract_id, population``; ``kind`` is ``tracts`` (whole tracts)
    or ``blocks`` (single blocks).
    """
    unit = "tract_id" if kind == "tracts" else "block_id"
    units = blocks.groupby(unit)["population"].sum()
    order = units.index.to_numpy()[rng.permutation(len(units))]
    cumulative = units.loc[order].cumsum().to_numpy()
    district_of_unit = np.minimum(
        (cumulative - 1) * n_districts // cumulative[-1], n_districts - 1
    ).astype(int)
    mapping = pd.Series(district_of_unit, index=order)
    return pd.DataFrame(
        {
            "block_id": blocks["block_id"],
            "district": blocks[unit].map(mapping).map("D{:03d}".format),
        }
    )


def plan_metrics(estimates: pd.DataFrame, truth: pd.DataFrame) -> dict:
    """Coverage, mean absolute error and width of one plan's district estimates."""
    joined = estimates.merge(
        truth.rename(columns={q: f"{q}_true" for q in QUANTITIES}), on="district"
    )
    out = {}
    for q in QUANTITIES:
        y = joined[f"{q}_true"]
        covered = (joined[f"{q}_lo90"] <= y) & (y <= joined[f"{q}_hi90"])
        error = (joined[f"{q}_est"] - y).abs()
        out[q] = {
            "coverage90": float(covered.mean()),
            "mae": float(error.mean()),
            "mae_percent": float((error / y.where(y > 0)).mean() * 100),
            "bias": float((joined[f"{q}_est"] - y).mean()),
            "width90": float((joined[f"{q}_hi90"] - joined[f"{q}_lo90"]).mean()),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="results/{run}")
    parser.add_argument("--plans", type=int, default=4)
    parser.add_argument("--districts", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--draws",
        default="published/draws.parquet",
        help="block draws under run_dir (model/block_draws.parquet: the exact fit)",
    )
    args = parser.parse_args()
    try:
        report(args)
    except InputError as error:
        print(f"district_coverage: error: {error}", file=sys.stderr)
        sys.exit(2)


def report(args: argparse.Namespace) -> None:
    """Score ``args.plans`` random plans of each kind and print the table."""
    for name in ("published/blocks.csv", "truth/persons.parquet", "world/frame.parquet"):
        if not (args.run_dir / name).exists():
            raise InputError(
                args.run_dir / name,
                "(file)",
                "file not found",
                "give a results/{run} folder of a finished pipeline run",
            )
    draws = read_draws(args.run_dir / args.draws)
    published = pd.read_csv(args.run_dir / "published/blocks.csv", dtype={"block_id": str})
    truth = truth_blocks(
        pd.read_parquet(args.run_dir / "truth/persons.parquet"),
        pd.read_parquet(args.run_dir / "world/frame.parquet", columns=["person_id"])["person_id"],
    )
    blocks = published[["block_id", "tract_id", "population"]].astype({"tract_id": str})
    rng = np.random.default_rng(args.seed)
    rows = []
    for kind in ("tracts", "blocks"):
        for plan in range(args.plans):
            districts = random_plan(blocks, args.districts, kind, rng)
            estimates = aggregate(draws, districts)
            true = (
                truth.merge(districts, on="block_id")
                .groupby("district")[list(QUANTITIES)]
                .sum()
                .reset_index()
            )
            for q, m in plan_metrics(estimates, true).items():
                rows.append({"plan_kind": kind, "plan": plan, "quantity": q, **m})
    table = pd.DataFrame(rows)
    pd.set_option("display.width", 160)
    print(f"{args.run_dir}: {args.plans} plans x {args.districts} districts per kind")
    print(table.round(3).to_string(index=False))
    print(
        table.groupby(["plan_kind", "quantity"])[
            ["coverage90", "mae", "mae_percent", "bias", "width90"]
        ]
        .mean()
        .round(3)
        .to_string()
    )


if __name__ == "__main__":
    from pipeline_common.errors import run_main

    run_main(main, "district_coverage")
