"""Evaluation of the published tables against the synthetic truth (the only truth reader here).

Compares ``published/blocks.csv`` and ``published/counties.csv`` with counts from
``truth/persons.parquet``, restricted to enumerated persons (``world/frame.parquet``) when given,
because the estimates are of the frame population.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline_common.ages import VOTING_AGE
from pipeline_common.errors import require_columns

QUANTITIES = ("citizens", "noncitizens", "cvap")
TRUTH_FILE = "truth/persons.parquet"


def true_block_counts(truth: pd.DataFrame, frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """True citizens, noncitizens and cvap per block (of enumerated persons if ``frame``)."""
    require_columns(truth, ["person_id", "block_id", "age", "citizen"], TRUTH_FILE)
    persons = truth
    if frame is not None:
        # Count each enumerated person where the frame puts them (the published geography),
        # with their true citizenship and true age.
        require_columns(frame, ["person_id", "block_id"], "world/frame.parquet")
        persons = truth.drop(columns="block_id").merge(
            frame[["person_id", "block_id"]], on="person_id"
        )
    citizen = persons["citizen"].astype(bool)
    adult = persons["age"].to_numpy() >= VOTING_AGE
    return (
        pd.DataFrame(
            {
                "block_id": persons["block_id"].to_numpy(),
                "true_population": 1,
                "true_citizens": citizen.to_numpy().astype(np.int64),
                "true_noncitizens": (~citizen).to_numpy().astype(np.int64),
                "true_cvap": (citizen.to_numpy() & adult).astype(np.int64),
            }
        )
        .groupby("block_id")
        .sum()
        .reset_index()
    )


def evaluate_published(
    blocks: pd.DataFrame, truth: pd.DataFrame, frame: pd.DataFrame | None = None
) -> dict:
    """Coverage of block 90% intervals, block MAE, tract and county relative errors."""
    blocks = blocks.copy()
    blocks["block_id"] = blocks["block_id"].astype(str)
    true_counts = true_block_counts(truth, frame)
    true_counts["block_id"] = true_counts["block_id"].astype(str)
    merged = blocks.merge(true_counts, on="block_id", how="left").fillna(
        {f"true_{q}": 0 for q in (*QUANTITIES, "population")}
    )
    populated = merged[merged["population"] > 0]
    result: dict = {
        "blocks": int(len(populated)),
        "population_matches_truth_share": float(
            (populated["population"] == populated["true_population"]).mean()
        ),
        "block": {},
        "county": {},
        "tract": {},
    }
    for quantity in QUANTITIES:
        est = populated[f"{quantity}_est"].to_numpy()
        true = populated[f"true_{quantity}"].to_numpy()
        covered = (populated[f"{quantity}_lo90"] <= true) & (true <= populated[f"{quantity}_hi90"])
        width = populated[f"{quantity}_hi90"] - populated[f"{quantity}_lo90"]
        result["block"][quantity] = {
            "coverage90": float(covered.mean()),
            "mae": float(np.abs(est - true).mean()),
            "rmse": float(np.sqrt(((est - true) ** 2).mean())),
            "bias": float((est - true).mean()),
            "mean_width90": float(width.mean()),
        }
    for level, key in (("county", "county_id"), ("tract", "tract_id")):
        sums = merged.groupby(key)[
            [f"{q}_est" for q in QUANTITIES] + [f"true_{q}" for q in QUANTITIES]
        ].sum()
        for quantity in QUANTITIES:
            true = sums[f"true_{quantity}"].to_numpy(dtype=float)
            rel = (sums[f"{quantity}_est"] - true) / np.maximum(true, 1.0)
            entry = {
                "max_abs_relative_error": float(np.abs(rel).max()),
                "mean_abs_relative_error": float(np.abs(rel).mean()),
            }
            if level == "county":
                entry["relative_error"] = {str(k): float(v) for k, v in rel.items()}
            result[level][quantity] = entry
    return result


def main(argv: list[str] | None = None) -> None:
    """Command line: evaluate a run's published tables."""
    from pathlib import Path

    from pipeline_common.cli import config_of, stage_parser
    from pipeline_common.config import run_dir
    from pipeline_common.io import write_json

    parser = stage_parser("privacy.evaluate", __doc__.splitlines()[0])
    args = parser.parse_args(argv)
    root = run_dir(config_of(args))
    frame_path = root / "world" / "frame.parquet"
    result = evaluate_published(
        pd.read_csv(root / "published" / "blocks.csv", dtype={"block_id": str}),
        pd.read_parquet(root / TRUTH_FILE),
        pd.read_parquet(frame_path, columns=["person_id", "block_id"])
        if frame_path.exists()
        else None,
    )
    write_json(result, Path(root, "evaluation", "published.json"))


if __name__ == "__main__":
    from pipeline_common.errors import run_main

    run_main(main, "privacy.evaluate")
