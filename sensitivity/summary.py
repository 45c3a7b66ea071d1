"""The sweep's summary over points and replicates, and the verdicts the report states.

Tables:

- :func:`wide_summary`: one row per point and replicate (``summary.csv``), a column per
  ``{method}.{level}.{quantity}.{metric}``;
- :func:`aggregate`: per point, method, level and quantity, the mean, standard deviation,
  minimum and maximum over replicates (``summary_aggregate.csv``);
- :func:`report_table`: block-level means in the shape the main report reads
  (``summary_report.csv``);
- :func:`run_columns`: per point, what was reused and the fits' convergence;
- :func:`calibration_verdicts` and :func:`mae_growth`: what the report says.

The rows are :func:`sensitivity.score.score_point` tables with the sweep keys added.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from models.calibration import district_level
from sensitivity.score import KEYS, LEVELS, METRICS, MODEL_METHODS, QUANTITIES


def wide_summary(scores: pd.DataFrame, extra: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per point and replicate, one column per method, level, quantity and metric.

    Parameters
    ----------
    scores
        :func:`score_point` rows with the columns :data:`KEYS` added.
    extra
        Optional per-point columns (``seed, knob, value`` and e.g. convergence), merged in.

    Returns
    -------
    pandas.DataFrame
        :data:`KEYS`, the ``extra`` columns, then ``{method}.{level}.{quantity}.{metric}``;
        rows in the order points first appear in ``scores``.
    """
    long = scores.melt(
        id_vars=[*KEYS, "method", "level", "quantity"],
        value_vars=list(METRICS),
        var_name="metric",
        value_name="score",
    )
    long["column"] = (
        long["method"] + "." + long["level"] + "." + long["quantity"] + "." + long["metric"]
    )
    # Columns grouped by method, level and quantity, metrics in METRICS order.
    rank = {
        "method": {m: i for i, m in enumerate(dict.fromkeys(scores["method"]))},
        "level": {name: i for i, name in enumerate(LEVELS)},
        "quantity": {q: i for i, q in enumerate(QUANTITIES)},
        "metric": {m: i for i, m in enumerate(METRICS)},
    }
    names = long[["method", "level", "quantity", "metric", "column"]].drop_duplicates("column")
    names = names.assign(
        **{f"_{key}": names[key].map(order).fillna(len(order)) for key, order in rank.items()}
    ).sort_values([f"_{key}" for key in rank], kind="stable")
    order = list(names["column"])
    wide = long.pivot_table(
        index=list(KEYS), columns="column", values="score", aggfunc="first", sort=False
    )
    wide = wide.reindex(columns=order).reset_index()
    points = scores[list(KEYS)].drop_duplicates()
    wide = points.merge(wide, on=list(KEYS), how="left")
    if extra is not None:
        wide = extra.merge(wide, on=list(KEYS), how="right")
        wide = wide[[*KEYS, *(c for c in wide.columns if c not in KEYS)]]
    wide.columns.name = None
    return wide.reset_index(drop=True)


def aggregate(scores: pd.DataFrame) -> pd.DataFrame:
    """Mean and spread over replicates per point, method, level and quantity.

    Returns
    -------
    pandas.DataFrame
        ``knob, value, method, level, quantity, n_replicates``, ``coverage_pooled`` and
        ``pit_coverage_pooled`` (covered units over all replicates' units), and for each metric
        of :data:`METRICS` (``n_units`` summed instead: ``n_units_total``) ``{metric}_mean,
        _sd, _min, _max`` (``sd`` with one degree of freedom; NaN for one replicate).
    """
    keys = ["knob", "value", "method", "level", "quantity"]
    # Covered units per replicate, to pool coverage over replicates (units, not means).
    scores = scores.assign(
        _covered=scores["coverage"] * scores["n_units"],
        _pit_covered=scores["pit_coverage"] * scores["n_units"],
    )
    grouped = scores.groupby(keys, sort=False)
    out = grouped.size().rename("n_replicates").reset_index()
    units = grouped["n_units"].sum().to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["coverage_pooled"] = grouped["_covered"].sum().to_numpy() / units
        out["pit_coverage_pooled"] = grouped["_pit_covered"].sum().to_numpy() / units
    for metric in METRICS:
        if metric == "n_units":
            out["n_units_total"] = grouped["n_units"].sum().to_numpy()
            continue
        stats = grouped[metric].agg(["mean", "std", "min", "max"]).to_numpy()
        for j, name in enumerate(("mean", "sd", "min", "max")):
            out[f"{metric}_{name}"] = stats[:, j]
    return out


def coverage_column(level: str) -> str:
    """The coverage a level is judged by: randomized PIT at block, equal-tailed above."""
    return "pit_coverage" if level == "block" else "coverage"


#: Fewer pooled units than this at a level: too few to say whether it is calibrated.
MIN_UNITS = 30


def calibration_verdicts(
    aggregated: pd.DataFrame,
    band: tuple[float, float] = (0.85, 0.95),
    methods: tuple[str, ...] = MODEL_METHODS,
    levels: tuple[str, ...] = ("block", district_level(1_000), district_level(10_000)),
    quantities: tuple[str, ...] = ("citizens", "cvap"),
    min_units: int = MIN_UNITS,
) -> pd.DataFrame:
    """Per point, method, level and quantity: the pooled 90% coverage and its verdict.

    Returns
    -------
    pandas.DataFrame
        ``knob, value, method, level, quantity, coverage`` (pooled over replicates, by
        :func:`coverage_column`), ``n_units`` (pooled), ``n_replicates`` and ``verdict``:
        ``calibrated`` (within ``band``), ``too narrow`` (below), ``too wide`` (above) or
        ``too few units`` (fewer than ``min_units`` pooled units: not judged); ``calibrated``
        is True only for the first.
    """
    part = aggregated[
        aggregated["method"].isin(methods)
        & aggregated["level"].isin(levels)
        & aggregated["quantity"].isin(quantities)
    ].copy()
    part["coverage"] = [
        row[f"{coverage_column(row['level'])}_pooled"] for _, row in part.iterrows()
    ]
    part["n_units"] = part["n_units_total"]
    verdict = np.where(
        part["coverage"] < band[0],
        "too narrow",
        np.where(part["coverage"] > band[1], "too wide", "calibrated"),
    )
    part["verdict"] = np.where(part["n_units"] < min_units, "too few units", verdict)
    part["calibrated"] = part["verdict"] == "calibrated"
    return part[
        [
            "knob",
            "value",
            "method",
            "level",
            "quantity",
            "coverage",
            "n_units",
            "n_replicates",
            "verdict",
            "calibrated",
        ]
    ].reset_index(drop=True)


def mae_growth(
    aggregated: pd.DataFrame,
    knobs: list[str],
    level: str = "block",
    quantity: str = "citizens",
) -> pd.DataFrame:
    """How much each method's MAE grows from a knob's largest value to its smallest.

    For coverage knobs: MAE at the lowest coverage over MAE at the highest (1.0 = no growth).

    Returns
    -------
    pandas.DataFrame
        ``knob, method, low_value, high_value, mae_low, mae_high, ratio``.
    """
    rows = []
    part = aggregated[(aggregated["level"] == level) & (aggregated["quantity"] == quantity)]
    for knob in knobs:
        rows_knob = part[part["knob"] == knob]
        if rows_knob.empty:
            continue
        values = sorted(set(rows_knob["value"]), key=_as_number)
        if len(values) < 2:
            continue
        low, high = values[0], values[-1]
        for method, group in rows_knob.groupby("method", sort=False):
            by_value = group.set_index("value")["mae_mean"]
            if low not in by_value or high not in by_value:
                continue
            mae_low, mae_high = float(by_value[low]), float(by_value[high])
            rows.append(
                {
                    "knob": knob,
                    "method": method,
                    "low_value": low,
                    "high_value": high,
                    "mae_low": mae_low,
                    "mae_high": mae_high,
                    "ratio": mae_low / mae_high if mae_high > 0 else np.nan,
                }
            )
    return pd.DataFrame(
        rows, columns=["knob", "method", "low_value", "high_value", "mae_low", "mae_high", "ratio"]
    )


def _as_number(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return math.inf


def run_columns(runs: list[dict]) -> pd.DataFrame:
    """Per point and replicate (``run.json`` of each point): run name, reuse and convergence.

    Returns
    -------
    pandas.DataFrame
        :data:`KEYS`, ``run, knob_stage, reuse_stage, files_reused, world_changed``, the fits'
        diagnostics (``exact.max_rhat`` ...) and ``seconds_nested_run``.
    """
    rows = []
    for run in runs:
        rows.append(
            {
                "seed": int(run["seed"]),
                "knob": str(run["knob"]),
                "value": str(run["value"]),
                "run": run["run"],
                "knob_stage": run.get("knob_stage"),
                "reuse_stage": run["reuse"]["stage"],
                "files_reused": run["reuse"]["files_linked"],
                "world_changed": ";".join(run["reuse"].get("world_changed") or []),
                **run.get("fits", {}),
                "seconds_nested_run": run.get("seconds", {}).get("nested_run"),
            }
        )
    return pd.DataFrame(rows)


def report_table(aggregated: pd.DataFrame) -> pd.DataFrame:
    """Block-level replicate means in the long shape the main report's sensitivity section reads.

    ``reports.summaries.sensitivity_table`` reads one row per knob, value, method and quantity
    with ``block_mae``, ``coverage90_pit`` and ``mean_width90``; the exact fit is its ``model``.
    """
    block = aggregated[aggregated["level"] == "block"]
    return pd.DataFrame(
        {
            "knob": block["knob"],
            "value": block["value"],
            "method": block["method"].replace({"exact": "model"}),
            "quantity": block["quantity"],
            "n_replicates": block["n_replicates"],
            "block_mae": block["mae_mean"],
            "block_rmse": block["rmse_mean"],
            "block_bias": block["bias_mean"],
            "coverage90_pit": block["pit_coverage_mean"],
            "coverage90_inclusive": block["coverage_mean"],
            "mean_width90": block["mean_width_mean"],
        }
    ).reset_index(drop=True)
