"""The model against every baseline, at every level users sum blocks to (reads the truth).

Methods: ``published`` (``published/draws.parquet``), ``exact`` (``model/block_draws.parquet``,
never published), and the baselines ``record_rule``, ``census_style`` and ``acs_direct``
(today's practice: the ACS block-group estimate pushed down to blocks). Each method's block
draws are scored with :func:`models.calibration_stage.score_run` (the same units, intervals and
PIT as ``evaluation/calibration.json``) at block, block group, tract, compact districts (runs of
consecutive blocks in GEOID order of about 300 ... 30,000 persons), county and run total:
MAE, bias, coverage of the 90% interval and its mean width, per quantity.

Besides, the ACS direct baseline's own block-group MOEs are scored as published
(``estimate +- MOE`` holds the truth), overall and by number of respondents, and the issue's
three targets are checked:

1. published block MAE of citizens and CVAP at most half the ``acs_direct`` baseline's;
2. at block group, published 90% intervals no wider on average than the ACS-style
   ``estimate +- MOE`` intervals, with coverage in 0.85-0.95;
3. compact districts of 1,000-30,000 persons: published MAE below ``acs_direct``'s at every
   size.

Outputs: ``evaluation/comparison.json`` and ``comparison.csv`` (the per-level table), and
``evaluation/gain_over_acs.png`` (relative error by district size, today's ACS disaggregation
against the published estimates).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from models.calibration import DISTRICT_TARGETS, district_level
from models.calibration_stage import TRUTH_COLUMNS, records, score_run, summarize_run
from models.evaluate import truth_blocks
from pipeline_common.io import atomic_path, write_json, write_text

METHODS = {
    "published": "published/draws.parquet",
    "exact": "model/block_draws.parquet",
    "record_rule": "baselines/record_rule/block_draws.parquet",
    "census_style": "baselines/census_style/block_draws.parquet",
    "acs_direct": "baselines/acs_direct/block_draws.parquet",
}
METHOD_LABELS = {
    "published": "this project, published (privacy-protected)",
    "exact": "this project, exact fit (not published)",
    "record_rule": "record rule",
    "census_style": "Census-style records + classifier",
    "acs_direct": "today: ACS block group pushed down to blocks",
}
TARGET_QUANTITIES = ("citizens", "cvap")
# Census CVAP names of the ACS block-group table -> this project's quantity names.
ACS_NAMES = {"cit": "citizens", "noncit": "noncitizens", "cvap": "cvap"}
RESPONDENT_BINS = (0, 1, 10, 25, 50, math.inf)
COVERAGE_BAND = (0.85, 0.95)
TARGET_DISTRICTS = tuple(t for t in DISTRICT_TARGETS if 1_000 <= t <= 30_000)
FIGURE_LEVELS = ("block", "block_group", "tract", *(district_level(t) for t in DISTRICT_TARGETS))


def acs_moe_coverage(
    block_groups: pd.DataFrame, truth_persons: pd.DataFrame, frame_ids: pd.Series
) -> dict:
    """Coverage of the ACS direct estimate's published ``estimate +- MOE`` per block group.

    Parameters
    ----------
    block_groups
        ``baselines/acs_direct/block_groups.parquet`` (``block_group_id, respondents`` and
        ``{cit,noncit,cvap}_{est,moe}``).
    truth_persons
        The truth (``person_id, block_id, tract_id, county_id, citizen, age``).
    frame_ids
        Enumerated persons (the estimand's population).

    Returns
    -------
    dict
        Per quantity: ``n_block_groups, coverage, mean_moe, mean_width, zero_moe_share, mae,
        bias`` and ``by_respondents`` (the same by number of ACS person records).
    """
    truth = truth_blocks(truth_persons, frame_ids)
    truth["block_group_id"] = truth["block_id"].astype(str).str[:12]
    per_bg = truth.groupby("block_group_id")[list(ACS_NAMES.values())].sum()
    table = block_groups.assign(block_group_id=block_groups["block_group_id"].astype(str))
    table = table.set_index("block_group_id").join(per_bg, how="left").fillna(0)
    bins = pd.cut(table["respondents"], list(RESPONDENT_BINS), right=False)
    out = {}
    for name, quantity in ACS_NAMES.items():
        error = table[f"{name}_est"] - table[quantity]
        covered = error.abs() <= table[f"{name}_moe"]

        def row(mask: pd.Series, error=error, covered=covered, name=name) -> dict:
            n = int(mask.sum())
            return {
                "n_block_groups": n,
                "coverage": float(covered[mask].mean()) if n else None,
                "mean_moe": float(table.loc[mask, f"{name}_moe"].mean()) if n else None,
                "mean_width": float(2 * table.loc[mask, f"{name}_moe"].mean()) if n else None,
                "zero_moe_share": float((table.loc[mask, f"{name}_moe"] == 0).mean())
                if n
                else None,
                "mae": float(error[mask].abs().mean()) if n else None,
                "bias": float(error[mask].mean()) if n else None,
            }

        result = row(pd.Series(True, index=table.index))
        result["by_respondents"] = {
            str(interval): row(bins == interval) for interval in bins.cat.categories
        }
        out[quantity] = result
    return out


def check_targets(summary: pd.DataFrame, moe: dict) -> dict:
    """The issue's three targets against ``summary`` (rows of :func:`summarize_run`)."""

    def value(method: str, level: str, quantity: str, column: str) -> float:
        row = summary[
            (summary["method"] == method)
            & (summary["level"] == level)
            & (summary["quantity"] == quantity)
        ]
        return float(row[column].iloc[0]) if len(row) else math.nan

    block = {}
    for q in TARGET_QUANTITIES:
        published, acs = (
            value("published", "block", q, "mae"),
            value("acs_direct", "block", q, "mae"),
        )
        block[q] = {
            "published_mae": published,
            "acs_direct_mae": acs,
            "ratio": published / acs if acs > 0 else None,
            "met": bool(published <= 0.5 * acs),
        }
    block_group = {}
    for q in TARGET_QUANTITIES:
        width = value("published", "block_group", q, "mean_width")
        coverage = value("published", "block_group", q, "coverage")
        acs_width = moe[q]["mean_width"]
        block_group[q] = {
            "published_mean_width": width,
            "acs_moe_interval_mean_width": acs_width,
            "published_coverage": coverage,
            "acs_moe_coverage": moe[q]["coverage"],
            "met": bool(width <= acs_width and COVERAGE_BAND[0] <= coverage <= COVERAGE_BAND[1]),
        }
    districts = {}
    for q in TARGET_QUANTITIES:
        sizes = {}
        for target in TARGET_DISTRICTS:
            level = district_level(target)
            published, acs = (
                value("published", level, q, "mae"),
                value("acs_direct", level, q, "mae"),
            )
            sizes[level] = {
                "published_mae": published,
                "acs_direct_mae": acs,
                "mean_population": value("published", level, q, "mean_population"),
                "met": bool(published < acs),
            }
        districts[q] = {"sizes": sizes, "met": all(s["met"] for s in sizes.values())}
    return {
        "block_mae_at_most_half_of_acs_direct": {
            "quantities": block,
            "met": all(v["met"] for v in block.values()),
        },
        "block_group_width_and_coverage": {
            "quantities": block_group,
            "coverage_band": list(COVERAGE_BAND),
            "met": all(v["met"] for v in block_group.values()),
        },
        "districts_1000_30000_mae_below_acs_direct": {
            "quantities": districts,
            "met": all(v["met"] for v in districts.values()),
        },
    }


def _finite(value):
    """NaN and infinities to None, recursively (JSON has no NaN)."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def relative_errors(units: pd.DataFrame) -> pd.DataFrame:
    """Per method, level and quantity: summed absolute error over summed truth, mean persons."""
    grouped = units.groupby(["method", "level", "quantity"], sort=False)
    table = grouped.agg(
        abs_error=("error", lambda e: float(np.abs(e).sum())),
        truth=("truth", "sum"),
        mean_population=("population", "mean"),
    ).reset_index()
    table["relative_error"] = table["abs_error"] / table["truth"].where(table["truth"] > 0)
    return table


def gain_figure(
    relative: pd.DataFrame,
    title: str | None = None,
    figsize: tuple[float, float] = (10, 3.8),
):
    """Typical error as a share of the true count, by district size: today vs this project.

    One panel per quantity (citizens, CVAP); x the mean persons per unit (log scale) of block,
    block group, tract and the compact-district levels; y the summed absolute error over the
    summed truth; each point of the ACS line labelled with how many times the published error
    it is.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"acs_direct": "#D55E00", "published": "#CC79A7", "exact": "#0072B2"}
    styles = {"acs_direct": "-", "published": "-", "exact": "--"}
    fig, axes = plt.subplots(1, len(TARGET_QUANTITIES), figsize=figsize, sharey=True)
    for ax, quantity in zip(axes, TARGET_QUANTITIES, strict=True):
        subset = relative[
            (relative["quantity"] == quantity) & relative["level"].isin(FIGURE_LEVELS)
        ]
        lines = {}
        for method in ("acs_direct", "published", "exact"):
            group = subset[subset["method"] == method].sort_values("mean_population")
            if group.empty:
                continue
            lines[method] = group.set_index("level")
            ax.plot(
                group["mean_population"],
                100 * group["relative_error"],
                styles[method],
                marker="o",
                ms=4,
                color=colours[method],
                label=METHOD_LABELS[method],
            )
        if "acs_direct" in lines and "published" in lines:
            acs, published = lines["acs_direct"], lines["published"]
            for level in acs.index.intersection(published.index):
                ratio = acs.loc[level, "relative_error"] / published.loc[level, "relative_error"]
                if np.isfinite(ratio):
                    ax.annotate(
                        f"{ratio:.1f}x",
                        (acs.loc[level, "mean_population"], 100 * acs.loc[level, "relative_error"]),
                        textcoords="offset points",
                        xytext=(0, 5),
                        ha="center",
                        fontsize=7,
                        color=colours["acs_direct"],
                    )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("persons per unit (block ... district)")
        ax.set_title("citizens" if quantity == "citizens" else "CVAP (citizens 18+)")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("typical error, % of the true count")
    axes[0].legend(fontsize=7, loc="lower left")
    if title is None:
        title = (
            "What you gain over today's ACS disaggregation (labels: ACS error / published error)"
        )
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def compare(
    draws: Mapping[str, pd.DataFrame],
    acs_block_groups: pd.DataFrame,
    truth_persons: pd.DataFrame,
    frame: pd.DataFrame,
    geography: pd.DataFrame,
    seed: int,
) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """Score every method; return the JSON document, the per-level table and relative errors."""
    units = score_run(draws, truth_persons[TRUTH_COLUMNS], frame, geography, seed)
    summary = summarize_run(units, COVERAGE_BAND)
    relative = relative_errors(units)
    summary = summary.merge(
        relative[["method", "level", "quantity", "relative_error"]],
        on=["method", "level", "quantity"],
        how="left",
    )
    moe = acs_moe_coverage(acs_block_groups, truth_persons, frame["person_id"])
    table = summary[
        [
            "method",
            "level",
            "quantity",
            "n_units",
            "mean_population",
            "mae",
            "relative_error",
            "bias",
            "coverage",
            "pit_coverage",
            "mean_width",
            "status",
        ]
    ]
    document = {
        "seed": int(seed),
        "methods": {
            m: {"file": METHODS.get(m, m), "label": METHOD_LABELS.get(m, m)} for m in draws
        },
        "interval": "90%: the 5% and 95% quantiles (inverted_cdf) of each unit's summed draws, "
        "as cvap-aggregate computes them (models.calibration)",
        "levels": "block, block group, tract, compact districts (runs of consecutive blocks in "
        "GEOID order closed at about 300 ... 30,000 frame persons), county, run total",
        "acs_direct_moe_coverage": _finite(moe),
        "acs_direct_moe_note": "the baseline's block-group estimate +- its published 90% MOE "
        "(1.645 x the successive-difference replicate SE) against the true block-group count",
        "targets": _finite(check_targets(summary, moe)),
        "summary": records(table),
    }
    return document, table, relative


def write_figure(relative: pd.DataFrame, path: str | Path) -> None:
    """Write :func:`gain_figure` as PNG atomically."""
    import matplotlib.pyplot as plt

    fig = gain_figure(relative)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=150)
    plt.close(fig)


def comparison_stage(
    draws_paths: Mapping[str, str | Path],
    acs_block_groups_path: str | Path,
    truth_path: str | Path,
    frame_path: str | Path,
    geography_path: str | Path,
    json_path: str | Path,
    csv_path: str | Path,
    figure_path: str | Path,
    seed: int,
    run: str | None = None,
) -> dict:
    """Read the inputs, compare, write ``comparison.json``, ``comparison.csv`` and the figure."""
    from privacy.aggregate import read_draws

    document, table, relative = compare(
        {method: read_draws(path) for method, path in draws_paths.items()},
        pd.read_parquet(acs_block_groups_path),
        pd.read_parquet(truth_path, columns=TRUTH_COLUMNS),
        pd.read_parquet(frame_path, columns=["person_id", "block_id"]),
        pd.read_parquet(geography_path),
        seed,
    )
    if run is not None:
        document = {"run": run, **document}
    write_json(document, json_path)
    write_text(table.to_csv(index=False, lineterminator="\n"), csv_path)
    write_figure(relative, figure_path)
    return document
