"""One run's calibration at every level a user sums blocks to (evaluation: reads the truth).

The ``evaluate_calibration`` rule scores the run's ``published/draws.parquet`` (method
``published``) and ``model/block_draws.parquet`` (method ``exact``) against the true block
counts with :mod:`models.calibration` (block, block group, tract, compact districts of about
300 ... 30,000 persons, county, run total; citizens, noncitizens, CVAP) and writes:

- ``evaluation/calibration.json``: per method, level and quantity the units, coverage of the 90%
  intervals (with binomial SE and Wilson 95% interval), randomized-PIT coverage, bias, relative
  bias of the sum, MAE, mean width and mean persons per unit, each with ``status`` ``ok`` or
  ``missed`` against the 0.85-0.95 target (the run total: ``covered`` or ``missed``); and the
  county and run-total units themselves (estimate, interval, truth);
- ``evaluation/calibration_levels.png``: coverage against mean persons per unit
  (:mod:`models.calibration_plot`).

One world has a handful of counties and one total: those rows say what happened in this run,
not how often intervals cover. The pooled calibration study (``benchmarks/calibration_study.py``)
is the measure. The PIT uniforms come from ``stage_rng(seed, "calibration", method)``, as in the
study, so a run scored here and by the study gives the same numbers.

Command line (outside Snakemake)::

    python -m models.calibration_stage [--configfile scenario.yaml ...] [--run-dir results/{run}]
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from models.calibration import (
    DISTRICT_TARGETS,
    INTERVAL_LEVEL,
    block_geography,
    level_names,
    score_levels,
    summarize_levels,
)
from models.calibration_plot import COVERAGE_BAND, write_coverage_figure
from models.evaluate import QUANTITIES, truth_blocks
from pipeline_common.errors import require_columns
from pipeline_common.io import write_json
from pipeline_common.rng import stage_rng

# Method -> its block draws under results/{run}/ (the same names as the calibration study).
METHODS = {"published": "published/draws.parquet", "exact": "model/block_draws.parquet"}
TRUTH_COLUMNS = ["person_id", "block_id", "tract_id", "county_id", "citizen", "age"]
# Levels whose units are listed one by one in the JSON (few units per run).
UNIT_LEVELS = ("county", "total")
UNIT_FIELDS = (
    "method",
    "quantity",
    "unit",
    "n_blocks",
    "population",
    "estimate",
    "lo90",
    "hi90",
    "truth",
    "covered",
)
OK, MISSED, COVERED = "ok", "missed", "covered"
SINGLE_WORLD_NOTE = (
    "One world: the county and run-total rows are a handful of units (one total per quantity), "
    "so they say what happened in this run, not how often the intervals cover. The pooled "
    "calibration study (benchmarks/calibration_study.py) is the measure."
)


def block_table(geography: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
    """:func:`models.calibration.block_geography` with the frame population of each block."""
    require_columns(frame, ["block_id"], "world/frame.parquet")
    population = frame.groupby(frame["block_id"].astype(str)).size()
    return block_geography(geography, population)


def score_run(
    draws: Mapping[str, pd.DataFrame],
    truth_persons: pd.DataFrame,
    frame: pd.DataFrame,
    geography: pd.DataFrame,
    seed: int,
    district_targets: Sequence[int] = DISTRICT_TARGETS,
) -> pd.DataFrame:
    """Unit-level scores of every method's block draws, with a ``method`` column.

    Parameters
    ----------
    draws
        Method name -> ``draw, block_id, citizens, noncitizens, cvap``.
    truth_persons
        ``truth/persons.parquet`` (``person_id, block_id, tract_id, county_id, citizen, age``).
    frame
        ``world/frame.parquet`` (``person_id, block_id``): the enumerated persons whose counts
        are estimated, and the population that decides the districts.
    geography
        ``world/geography.parquet``.
    seed
        The run's seed (PIT uniforms: ``stage_rng(seed, "calibration", method)``).
    district_targets
        Target populations of the compact-district levels.

    Returns
    -------
    pandas.DataFrame
        :data:`models.calibration.UNIT_COLUMNS` plus ``method``.
    """
    require_columns(truth_persons, TRUTH_COLUMNS, "truth/persons.parquet")
    require_columns(frame, ["person_id", "block_id"], "world/frame.parquet")
    blocks = block_table(geography, frame)
    truth = truth_blocks(truth_persons[TRUTH_COLUMNS], frame["person_id"])
    tables = []
    for method, table in draws.items():
        units = score_levels(
            table,
            truth,
            blocks,
            stage_rng(seed, "calibration", method),
            district_targets=district_targets,
            draws_source=METHODS.get(method, method),
        )
        tables.append(units.assign(method=method))
    return pd.concat(tables, ignore_index=True)


def coverage_status(level: str, coverage: float, band: tuple[float, float] = COVERAGE_BAND) -> str:
    """``ok`` / ``missed`` against the band; the run total (one unit) ``covered`` / ``missed``."""
    if coverage is None or not math.isfinite(coverage):
        return MISSED
    if level == "total":
        return COVERED if coverage >= 1 else MISSED
    return OK if band[0] <= coverage <= band[1] else MISSED


def summarize_run(units: pd.DataFrame, band: tuple[float, float] = COVERAGE_BAND) -> pd.DataFrame:
    """Per method, level and quantity: :func:`models.calibration.summarize_levels` plus
    ``status`` (coverage) and, at block level, ``pit_status`` (randomized-PIT coverage)."""
    parts = [
        summarize_levels(group.drop(columns="method")).assign(method=method)
        for method, group in units.groupby("method", sort=False)
    ]
    table = pd.concat(parts, ignore_index=True)
    table["status"] = [
        coverage_status(level, coverage, band)
        for level, coverage in zip(table["level"], table["coverage"], strict=True)
    ]
    table["pit_status"] = [
        coverage_status(level, pit, band) if level == "block" else None
        for level, pit in zip(table["level"], table["pit_coverage"], strict=True)
    ]
    columns = ["method", *(c for c in table.columns if c != "method")]
    return table[columns]


def _json_value(value):
    """JSON-safe scalars: numpy types to Python, NaN and NA to None."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def records(table: pd.DataFrame) -> list[dict]:
    """Rows of ``table`` as JSON-safe dicts."""
    return [
        {key: _json_value(value) for key, value in row.items()}
        for row in table.astype(object).to_dict(orient="records")
    ]


def evaluate_calibration(
    draws: Mapping[str, pd.DataFrame],
    truth_persons: pd.DataFrame,
    frame: pd.DataFrame,
    geography: pd.DataFrame,
    seed: int,
    district_targets: Sequence[int] = DISTRICT_TARGETS,
    band: tuple[float, float] = COVERAGE_BAND,
) -> dict:
    """The content of ``evaluation/calibration.json`` for one run (see the module docstring).

    Returns
    -------
    dict
        ``seed, interval, coverage_target, methods, levels, district_targets, note, summary``
        (rows of :func:`summarize_run`) and ``units`` (``{"county": [...], "total": [...]}``,
        rows of ``method, quantity, unit, n_blocks, population, estimate, lo90, hi90, truth,
        covered``).
    """
    units = score_run(draws, truth_persons, frame, geography, seed, district_targets)
    summary = summarize_run(units, band)
    listed = units[units["level"].isin(UNIT_LEVELS)]
    return {
        "seed": int(seed),
        "interval": f"{INTERVAL_LEVEL:.0%}: the 5% and 95% quantiles (inverted_cdf) of the "
        "summed draws; covered when lo90 <= truth <= hi90. PIT: randomized PIT in [0.05, 0.95]",
        "coverage_target": list(band),
        "methods": {m: METHODS.get(m, m) for m in draws},
        "quantities": list(QUANTITIES),
        "levels": level_names(district_targets),
        "district_targets": [int(t) for t in district_targets],
        "note": SINGLE_WORLD_NOTE,
        "summary": records(summary),
        "units": {
            level: records(listed[listed["level"] == level][list(UNIT_FIELDS)])
            for level in UNIT_LEVELS
        },
    }


def summary_table(calibration: dict) -> pd.DataFrame:
    """The ``summary`` rows of a ``calibration.json`` as a table (figure and report input)."""
    table = pd.DataFrame(calibration.get("summary") or [])
    for column in ("coverage", "coverage_lo95", "coverage_hi95", "mean_population"):
        if column in table.columns:
            table[column] = pd.to_numeric(table[column], errors="coerce")
    return table


def run_title(run: str | None) -> str:
    """Title of the one-run figure."""
    name = f"run {run}" if run else "one run"
    return f"Coverage by aggregate size, {name} (one world: few county and total units)"


def calibration_stage(
    draws_paths: Mapping[str, str | Path],
    truth_path: str | Path,
    frame_path: str | Path,
    geography_path: str | Path,
    json_path: str | Path,
    figure_path: str | Path,
    seed: int,
    run: str | None = None,
) -> dict:
    """Read the inputs, score, and write ``calibration.json`` and the figure atomically."""
    from privacy.aggregate import read_draws

    result = evaluate_calibration(
        {method: read_draws(path) for method, path in draws_paths.items()},
        pd.read_parquet(truth_path, columns=TRUTH_COLUMNS),
        pd.read_parquet(frame_path, columns=["person_id", "block_id"]),
        pd.read_parquet(geography_path),
        seed,
    )
    if run is not None:
        result = {"run": run, **result}
    write_json(result, json_path)
    write_coverage_figure(summary_table(result), figure_path, title=run_title(run))
    return result


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - manual entry point
    """Command line: score a run folder (``results/{run}``) and write its evaluation files.

    The config (``--configfile``) gives the run's folder and its seed (which draws the PIT's
    uniforms, as the workflow's rule does).
    """
    from pipeline_common.cli import config_of, stage_parser
    from pipeline_common.config import run_dir

    parser = stage_parser("models.calibration_stage", __doc__.splitlines()[0])
    parser.add_argument(
        "--run-dir", type=Path, metavar="DIR", default=None, help="default results/{run}"
    )
    args = parser.parse_args(argv)
    config = config_of(args)
    root = args.run_dir or run_dir(config)
    calibration_stage(
        {method: root / relative for method, relative in METHODS.items()},
        root / "truth" / "persons.parquet",
        root / "world" / "frame.parquet",
        root / "world" / "geography.parquet",
        root / "evaluation" / "calibration.json",
        root / "evaluation" / "calibration_levels.png",
        config["seed"],
        root.name,
    )


if __name__ == "__main__":  # pragma: no cover
    from pipeline_common.errors import run_main

    run_main(main, "models.calibration_stage")
