"""Scores of one sensitivity-sweep point against its own truth.

Each point's block draws (the exact fit ``model/block_draws.parquet``, the published
``published/draws.parquet`` and the three baselines) are scored against that point's truth by
the calibration study's scorer (:func:`models.calibration_stage.score_run`: the same compact
districts, 90% intervals of summed draws and randomized PIT) and summarized per method, level
and quantity by :func:`models.calibration_stage.summarize_run`. The sweep keeps the levels
:data:`LEVELS` (block, compact districts of about 1,000 and 10,000 persons, county).
:func:`score_point` gives one point's table, long (``method, level, quantity`` and the
metrics); the tables over points and replicates are :mod:`sensitivity.summary`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from models.calibration import district_level
from models.calibration_stage import TRUTH_COLUMNS, score_run, summarize_run
from pipeline_common.io import read_json

#: Method -> block draws under ``results/{run}/`` (published: the noise-aware refit's, or the
#: exact fit's under privacy mode none).
METHOD_FILES = {
    "exact": "model/block_draws.parquet",
    "published": "published/draws.parquet",
    "record_rule": "baselines/record_rule/block_draws.parquet",
    "census_style": "baselines/census_style/block_draws.parquet",
    "acs_direct": "baselines/acs_direct/block_draws.parquet",
}
MODEL_METHODS = ("exact", "published")
BASELINE_METHODS = ("record_rule", "census_style", "acs_direct")
LEVELS = ("block", district_level(1_000), district_level(10_000), "county")
QUANTITIES = ("citizens", "cvap", "noncitizens")
#: Metrics kept from the calibration summary. ``coverage``: equal-tailed 90% interval holds
#: the truth; ``pit_coverage``: randomized PIT in [0.05, 0.95] (the block level's measure).
METRICS = ("mae", "rmse", "bias", "coverage", "pit_coverage", "mean_width", "n_units")
KEYS = ("seed", "knob", "value")
#: Files a point's scoring reads, besides the draws.
WORLD_FILES = {
    "truth": "truth/persons.parquet",
    "frame": "world/frame.parquet",
    "geography": "world/geography.parquet",
}
FIT_DIAGNOSTICS = {"exact": "model/diagnostics.json", "published": "privacy/model/diagnostics.json"}


def score_point(
    draws: Mapping[str, pd.DataFrame],
    truth_persons: pd.DataFrame,
    frame: pd.DataFrame,
    geography: pd.DataFrame,
    seed: int,
) -> pd.DataFrame:
    """Every method's metrics at :data:`LEVELS` for one point.

    Parameters
    ----------
    draws
        Method -> block draws (``draw, block_id, citizens, noncitizens, cvap``).
    truth_persons, frame, geography
        The point's ``truth/persons.parquet``, ``world/frame.parquet`` and
        ``world/geography.parquet``.
    seed
        The replicate seed (draws the randomized PIT's uniforms, as the calibration study).

    Returns
    -------
    pandas.DataFrame
        ``method, level, quantity`` and :data:`METRICS`.
    """
    units = score_run(draws, truth_persons[TRUTH_COLUMNS], frame, geography, seed)
    summary = summarize_run(units)
    summary = summary[summary["level"].isin(LEVELS)]
    return summary[["method", "level", "quantity", *METRICS]].reset_index(drop=True)


def fit_diagnostics(run_dir: str | Path, privacy_mode: str) -> dict[str, float | bool | None]:
    """Max R-hat, min bulk ESS, divergences and ``converged`` of the exact and published fits."""
    out: dict[str, float | bool | None] = {}
    for method, relative in FIT_DIAGNOSTICS.items():
        if method == "published" and privacy_mode == "none":
            relative = FIT_DIAGNOSTICS["exact"]
        path = Path(run_dir) / relative
        diag = read_json(path) if path.exists() else {}
        for key in ("max_rhat", "min_ess_bulk", "divergences"):
            value = diag.get(key)
            out[f"{method}.{key}"] = (
                float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None
            )
        out[f"{method}.converged"] = diag.get("converged")
    return out


def score_run_dir(run_dir: str | Path, seed: int) -> pd.DataFrame:
    """:func:`score_point` on the files of ``results/{run}``."""
    from privacy.aggregate import read_draws

    run_dir = Path(run_dir)
    draws = {method: read_draws(run_dir / rel) for method, rel in METHOD_FILES.items()}
    return score_point(
        draws,
        pd.read_parquet(run_dir / WORLD_FILES["truth"], columns=TRUTH_COLUMNS),
        pd.read_parquet(run_dir / WORLD_FILES["frame"], columns=["person_id", "block_id"]),
        pd.read_parquet(run_dir / WORLD_FILES["geography"]),
        seed,
    )
