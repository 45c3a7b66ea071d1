"""Interval calibration at several levels, computed by the report against the synthetic truth.

``evaluation/estimates.json`` states coverage at the 90% level only; a calibration plot needs
the whole curve (nominal against empirical coverage, 50% to 95%). The report computes it from
each method's block draws and the true block counts: the truth is read here only because the
data are synthetic (the validation section says so), and it is reduced to block counts at once.
Coverage uses the randomized PIT of discrete counts, as the evaluation does
(``models.evaluate.randomized_pit``): a block is covered at level L when its PIT lies in
``[(1 - L) / 2, (1 + L) / 2]``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

LEVELS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
QUANTITIES = ("citizens", "cvap")
# Method -> block draws under results/{run}/ (published: the draws the intervals come from).
METHOD_DRAWS = {
    "model": "model/block_draws.parquet",
    "published": "published/draws.parquet",
    "record_rule": "baselines/record_rule/block_draws.parquet",
    "census_style": "baselines/census_style/block_draws.parquet",
}


def true_block_counts(run_dir: Path) -> pd.DataFrame | None:
    """True citizens and CVAP per block among enumerated persons (None without the truth)."""
    from models.evaluate import truth_blocks

    truth_path = run_dir / "truth" / "persons.parquet"
    frame_path = run_dir / "world" / "frame.parquet"
    if not truth_path.exists() or not frame_path.exists():
        return None
    truth = pd.read_parquet(
        truth_path, columns=["person_id", "block_id", "tract_id", "county_id", "citizen", "age"]
    )
    frame_ids = pd.read_parquet(frame_path, columns=["person_id"])["person_id"]
    blocks = truth_blocks(truth, frame_ids)
    blocks["block_id"] = blocks["block_id"].astype(str)
    return blocks[["block_id", *QUANTITIES]]


def coverage_curve(
    draws: pd.DataFrame, truth: pd.DataFrame, rng: np.random.Generator, method: str
) -> list[dict]:
    """Rows ``method, quantity, nominal, empirical`` for one method's block draws."""
    from models.evaluate import randomized_pit

    draws = draws.assign(block_id=draws["block_id"].astype(str))
    blocks = truth["block_id"].to_numpy()
    rows = []
    for quantity in QUANTITIES:
        if quantity not in draws:
            continue
        wide = draws.pivot_table(index="block_id", columns="draw", values=quantity, aggfunc="sum")
        matrix = wide.reindex(blocks).fillna(0).to_numpy()
        pit = randomized_pit(matrix, truth[quantity].to_numpy(), rng)
        for level in LEVELS:
            low, high = (1 - level) / 2, (1 + level) / 2
            rows.append(
                {
                    "method": method,
                    "quantity": quantity,
                    "nominal": level,
                    "empirical": float(((pit >= low) & (pit <= high)).mean()),
                }
            )
    return rows


def run_calibration(run_dir: str | Path, seed: int) -> pd.DataFrame | None:
    """The calibration curve of every method whose block draws exist in ``run_dir``."""
    from pipeline_common.rng import stage_rng

    run_dir = Path(run_dir)
    truth = true_block_counts(run_dir)
    if truth is None:
        return None
    rows = []
    for method, relative in METHOD_DRAWS.items():
        path = run_dir / relative
        if path.exists():
            draws = pd.read_parquet(path, columns=["draw", "block_id", *QUANTITIES])
            rows += coverage_curve(draws, truth, stage_rng(seed, "report", "pit", method), method)
    return (
        pd.DataFrame(rows, columns=["method", "quantity", "nominal", "empirical"]) if rows else None
    )
