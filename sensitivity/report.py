"""The sensitivity report (HTML and PDF): metric-against-knob curves, a tornado chart and a
statement of where the model stays calibrated, all computed from the sweep's summary.

Reads ``summary_long.csv`` (every point, replicate, method, level and quantity) and
``summary_aggregate.csv`` (mean and spread over replicates) of
:mod:`sensitivity.summary`, and each point's ``run.json`` (what was reused). Rendered with the
project's Jinja2 environment and stylesheet (:mod:`reports.render`) into
``reports/templates/sensitivity.html.j2``; the PDF is the same HTML through WeasyPrint.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from models.calibration import district_level
from sensitivity.score import BASELINE_METHODS
from sensitivity.summary import MIN_UNITS, calibration_verdicts, coverage_column, mae_growth
from sensitivity.sweep import BASELINE_KNOB, knob_labels, replicate_seeds

METHOD_STYLE = {
    "exact": ("#1f77b4", "o", "exact fit"),
    "published": ("#9467bd", "s", "published"),
    "record_rule": ("#d62728", "^", "record rule"),
    "census_style": ("#2ca02c", "v", "Census-style"),
    "acs_direct": ("#ff7f0e", "D", "ACS direct"),
}
LEVEL_LABELS = {
    "block": "blocks",
    district_level(1_000): "districts of ~1,000",
    district_level(10_000): "districts of ~10,000",
    "county": "counties",
}
BAND = (0.85, 0.95)
#: Knobs whose values are shares of the default source coverage (the issue's coverage grid).
COVERAGE_KNOB_SUFFIX = "_coverage"


def _order(values: list[str]) -> list[str]:
    """Numbers ascending (as numbers), then the rest in their order."""
    numbers = [v for v in values if _is_number(v)]
    rest = [v for v in values if not _is_number(v)]
    return sorted(numbers, key=float) + rest


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def knobs_of(aggregated: pd.DataFrame) -> list[str]:
    """Knobs of the sweep in file order, the baseline row excluded."""
    return [k for k in dict.fromkeys(aggregated["knob"]) if k != BASELINE_KNOB]


def curve_figure(
    long: pd.DataFrame,
    knobs: list[str],
    level: str = "block",
    quantity: str = "citizens",
) -> Figure:
    """Per knob: MAE of every method (top) and the model's 90% coverage (bottom) at ``level``.

    Points are replicate means; bars span the replicates' minimum to maximum. The coverage row
    shows the exact fit and the published estimates (randomized PIT at block level,
    equal-tailed intervals above) with the 0.85-0.95 band.
    """
    part = long[(long["level"] == level) & (long["quantity"] == quantity)]
    base = part[part["knob"] == BASELINE_KNOB].groupby("method")[["mae", coverage_column(level)]]
    base = base.mean()
    cols = max(1, min(len(knobs), 4))
    blocks = max(1, math.ceil(len(knobs) / cols))
    fig = Figure(figsize=(3.3 * cols, 4.6 * blocks))
    grid = fig.add_gridspec(2 * blocks, cols, height_ratios=[3, 2] * blocks)
    coverage = coverage_column(level)
    methods = [m for m in METHOD_STYLE if m in set(part["method"])]
    for k, knob in enumerate(knobs):
        block, j = divmod(k, cols)
        ax_mae = fig.add_subplot(grid[2 * block, j])
        ax_cov = fig.add_subplot(grid[2 * block + 1, j], sharex=ax_mae)
        rows = part[part["knob"] == knob]
        values = _order(list(dict.fromkeys(rows["value"])))
        x = np.arange(len(values))
        for i, method in enumerate(methods):
            colour, marker, label = METHOD_STYLE[method]
            stats = _stats(rows[rows["method"] == method], "mae", values)
            offset = (i - (len(methods) - 1) / 2) * 0.06
            _errorbar(ax_mae, x + offset, stats, colour, marker, label)
            # Dashed: the replicate baseline runs (every other setting at its default).
            if method in base.index:
                ax_mae.axhline(base.loc[method, "mae"], color=colour, ls="--", lw=0.7, alpha=0.6)
            if method in ("exact", "published"):
                stats = _stats(rows[rows["method"] == method], coverage, values)
                _errorbar(ax_cov, x + offset, stats, colour, marker, label)
                if method in base.index:
                    ax_cov.axhline(
                        base.loc[method, coverage], color=colour, ls="--", lw=0.7, alpha=0.6
                    )
        ax_cov.axhspan(*BAND, color="grey", alpha=0.15, lw=0)
        ax_cov.axhline(0.9, color="grey", ls=":", lw=1)
        ax_cov.set_ylim(max(0.0, min(0.8, _floor(ax_cov))), 1.005)
        ax_mae.set_ylim(bottom=0)
        ax_mae.set_title(knob.replace("_", " "), fontsize=9)
        ax_cov.set_xticks(x)
        ax_cov.set_xticklabels([v.replace("_", "\n") for v in values], fontsize=7)
        ax_mae.tick_params(labelbottom=False, labelsize=7)
        ax_cov.tick_params(labelsize=7)
        for ax in (ax_mae, ax_cov):
            ax.grid(alpha=0.3)
            ax.set_xlim(-0.5, len(values) - 0.5)
        if j == 0:
            ax_mae.set_ylabel(f"MAE, {quantity}\n({LEVEL_LABELS.get(level, level)})", fontsize=8)
            ax_cov.set_ylabel(
                "90% coverage\n" + ("(randomized PIT)" if level == "block" else "(equal-tailed)"),
                fontsize=8,
            )
    handles = [_legend_handle(fig, method) for method in methods]
    if handles:
        fig.legend(handles=handles, loc="upper center", ncol=len(handles), fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.96 if blocks == 1 else 0.98))
    return fig


def _floor(ax) -> float:
    low = ax.get_ylim()[0]
    return low - 0.02 if math.isfinite(low) else 0.0


def _legend_handle(fig: Figure, method: str):
    from matplotlib.lines import Line2D

    colour, marker, label = METHOD_STYLE[method]
    return Line2D([], [], color=colour, marker=marker, label=label)


def _stats(rows: pd.DataFrame, metric: str, values: list[str]) -> pd.DataFrame:
    """Mean, minimum and maximum over replicates of ``metric`` at each value."""
    grouped = rows.groupby("value")[metric].agg(["mean", "min", "max"])
    return grouped.reindex(values)


def _errorbar(ax, x, stats: pd.DataFrame, colour: str, marker: str, label: str) -> None:
    mean = stats["mean"].to_numpy(dtype=float)
    low = np.maximum(mean - stats["min"].to_numpy(dtype=float), 0)
    high = np.maximum(stats["max"].to_numpy(dtype=float) - mean, 0)
    ax.errorbar(
        x, mean, yerr=[low, high], color=colour, marker=marker, ms=4, lw=1, capsize=2, label=label
    )


def tornado_rows(
    aggregated: pd.DataFrame,
    method: str = "published",
    quantity: str = "citizens",
) -> pd.DataFrame:
    """Per knob (each left-out source on its own): range of the change from the baseline run.

    Error: block MAE relative to the baseline run's (``mae_low``, ``mae_high`` in percent);
    coverage: block randomized-PIT coverage minus the baseline's (``cov_low``, ``cov_high``
    in percentage points), and the same for districts of ~1,000 persons (``dcov_*``).
    The baseline value (change 0) is part of each range.

    Returns
    -------
    pandas.DataFrame
        ``bar, knob, mae_low, mae_high, cov_low, cov_high, dcov_low, dcov_high, span_mae,
        span_cov``; sorted by ``span_mae``, largest first.
    """
    part = aggregated[(aggregated["method"] == method) & (aggregated["quantity"] == quantity)]
    block = part[part["level"] == "block"].set_index(["knob", "value"])
    district = part[part["level"] == district_level(1_000)].set_index(["knob", "value"])
    base = (BASELINE_KNOB, "base")
    if base not in block.index:
        return pd.DataFrame()
    mae0 = float(block.loc[base, "mae_mean"])
    cov0 = float(block.loc[base, "pit_coverage_pooled"])
    dcov0 = float(district.loc[base, "coverage_pooled"]) if base in district.index else math.nan
    groups: dict[str, list[tuple[str, str]]] = {}
    for knob, value in block.index:
        if knob == BASELINE_KNOB:
            continue
        bar = f"leave out {value}" if knob == "leave_out" else knob
        groups.setdefault(bar, []).append((knob, value))
    rows = []
    for bar, keys in groups.items():
        mae = [100 * (float(block.loc[k, "mae_mean"]) / mae0 - 1) for k in keys] + [0.0]
        cov = [100 * (float(block.loc[k, "pit_coverage_pooled"]) - cov0) for k in keys] + [0.0]
        dcov = [
            100 * (float(district.loc[k, "coverage_pooled"]) - dcov0)
            for k in keys
            if k in district.index
        ] + [0.0]
        rows.append(
            {
                "bar": bar.replace("_", " "),
                "knob": keys[0][0],
                "mae_low": min(mae),
                "mae_high": max(mae),
                "cov_low": min(cov),
                "cov_high": max(cov),
                "dcov_low": min(dcov),
                "dcov_high": max(dcov),
            }
        )
    table = pd.DataFrame(rows)
    table["span_mae"] = table["mae_high"] - table["mae_low"]
    table["span_cov"] = table["cov_high"] - table["cov_low"]
    return table.sort_values("span_mae", ascending=False, kind="stable").reset_index(drop=True)


def tornado_figure(rows: pd.DataFrame, method: str = "published") -> Figure:
    """Two tornado panels: change of block MAE (%) and of 90% coverage (points) per knob."""
    n = max(len(rows), 1)
    fig = Figure(figsize=(9.5, 0.9 + 0.32 * n))
    ax_err, ax_cov = fig.subplots(1, 2, sharey=True)
    y = np.arange(len(rows))[::-1]
    if len(rows):
        ax_err.barh(
            y, rows["mae_high"] - rows["mae_low"], left=rows["mae_low"], color="#1f77b4", height=0.6
        )
        ax_cov.barh(
            y + 0.17,
            rows["cov_high"] - rows["cov_low"],
            left=rows["cov_low"],
            color="#9467bd",
            height=0.32,
            label="blocks (randomized PIT)",
        )
        ax_cov.barh(
            y - 0.17,
            rows["dcov_high"] - rows["dcov_low"],
            left=rows["dcov_low"],
            color="#8c564b",
            height=0.32,
            label="districts of ~1,000 (equal-tailed)",
        )
        ax_err.set_yticks(y)
        ax_err.set_yticklabels(rows["bar"], fontsize=8)
        ax_cov.legend(fontsize=7, loc="lower right")
    label = METHOD_STYLE.get(method, ("", "", method))[2]
    ax_err.set_xlabel(f"block MAE of citizens, {label}: % change from the baseline run", fontsize=8)
    ax_cov.set_xlabel("90% coverage: change from the baseline run (points)", fontsize=8)
    for ax in (ax_err, ax_cov):
        ax.axvline(0, color="black", lw=0.8)
        ax.grid(axis="x", alpha=0.3)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    return fig


def _name(knob: str, value: str) -> str:
    if knob == BASELINE_KNOB:
        return "the baseline run"
    if knob == "leave_out":
        return f"leave out {value}"
    return f"{knob.replace('_', ' ')} = {value}"


def statements(aggregated: pd.DataFrame, band: tuple[float, float] = BAND) -> list[tuple[str, str]]:
    """Plain sentences computed from the summary: where the model stays calibrated, where not,
    and whether the baselines' error grows faster than the model's as coverage falls.

    Returns
    -------
    list of (level, text)
        ``ok`` / ``warn`` / ``info`` and the sentence.
    """
    out: list[tuple[str, str]] = []
    if aggregated.empty:
        return out
    verdicts = calibration_verdicts(aggregated, band)
    n_rep = int(aggregated["n_replicates"].max())
    for method in ("exact", "published"):
        part = verdicts[verdicts["method"] == method]
        if part.empty:
            continue
        label = METHOD_STYLE[method][2]
        few = part[part["verdict"] == "too few units"]
        judged = part[part["verdict"] != "too few units"]
        if judged.empty:
            out.append(
                (
                    "info",
                    f"{label.capitalize()}: no level has {MIN_UNITS} or more units pooled over "
                    f"the {n_rep} replicate(s); calibration is not judged.",
                )
            )
            continue
        points = judged.groupby(["knob", "value"], sort=False)["calibrated"].all()
        levels = ", ".join(LEVEL_LABELS.get(x, x) for x in dict.fromkeys(judged["level"]))
        lead = (
            f"{label.capitalize()}: 90% coverage of citizens and CVAP within "
            f"{band[0]:.2f}-{band[1]:.2f} (pooled over {n_rep} replicate(s); {levels}) at "
            f"{int(points.sum())} of {len(points)} points"
        )
        bad = judged[~judged["calibrated"]]
        if bad.empty:
            out.append(("ok", lead + "."))
        else:
            details = []
            for (knob, value), group in bad.groupby(["knob", "value"], sort=False):
                misses = ", ".join(
                    f"{LEVEL_LABELS.get(r.level, r.level)} {r.quantity} {r.coverage:.2f} "
                    f"({r.verdict})"
                    for r in group.itertuples()
                )
                details.append(f"{_name(knob, value)}: {misses}")
            out.append(("warn", lead + "; not at " + "; ".join(details) + "."))
        if not few.empty:
            units = few.groupby("level", sort=False)["n_units"].max()
            out.append(
                (
                    "info",
                    f"{label.capitalize()}: not judged (fewer than {MIN_UNITS} units pooled over "
                    "the replicates): "
                    + ", ".join(
                        f"{LEVEL_LABELS.get(lv, lv)} ({int(n)} units)" for lv, n in units.items()
                    )
                    + ".",
                )
            )
    coverage_knobs = [k for k in knobs_of(aggregated) if k.endswith(COVERAGE_KNOB_SUFFIX)]
    growth = mae_growth(aggregated, coverage_knobs)
    for knob, group in growth.groupby("knob", sort=False):
        ratios = group.set_index("method")["ratio"]
        model = ratios.get("published", ratios.get("exact", np.nan))
        baselines = {m: ratios[m] for m in BASELINE_METHODS if m in ratios}
        if not baselines or not np.isfinite(model):
            continue
        faster = [m for m, r in baselines.items() if r > model]
        low, high = group["low_value"].iloc[0], group["high_value"].iloc[0]
        text = (
            f"{knob.replace('_', ' ')} from {high} to {low}: block MAE of citizens x{model:.2f} "
            "for the published estimates, "
            + ", ".join(f"x{r:.2f} {METHOD_STYLE[m][2]}" for m, r in baselines.items())
            + ". "
        )
        if len(faster) == len(baselines):
            out.append(("ok", text + "Every baseline's error grows faster than the model's."))
        else:
            slower = [METHOD_STYLE[m][2] for m in baselines if m not in faster]
            out.append(("warn", text + "Not faster than the model's: " + ", ".join(slower) + "."))
    return out


def point_table(aggregated: pd.DataFrame, quantity: str = "citizens") -> list[dict[str, Any]]:
    """One row per point: the model's errors and coverage and the baselines' block MAE."""
    part = aggregated[aggregated["quantity"] == quantity]
    rows = []
    for (knob, value), group in part.groupby(["knob", "value"], sort=False):
        get = group.set_index(["method", "level"])

        def value_of(method: str, level: str, column: str, get: pd.DataFrame = get) -> float:
            key = (method, level)
            return float(get.loc[key, column]) if key in get.index else math.nan

        rows.append(
            {
                "knob": knob,
                "value": value,
                "n": int(group["n_replicates"].max()),
                "exact_mae": value_of("exact", "block", "mae_mean"),
                "published_mae": value_of("published", "block", "mae_mean"),
                "published_mae_sd": value_of("published", "block", "mae_sd"),
                "exact_pit": value_of("exact", "block", "pit_coverage_pooled"),
                "published_pit": value_of("published", "block", "pit_coverage_pooled"),
                "published_d1000": value_of("published", district_level(1_000), "coverage_pooled"),
                "published_d10000": value_of(
                    "published", district_level(10_000), "coverage_pooled"
                ),
                "published_county": value_of("published", "county", "coverage_pooled"),
                "published_width": value_of("published", "block", "mean_width_mean"),
                **{f"{m}_mae": value_of(m, "block", "mae_mean") for m in BASELINE_METHODS},
            }
        )
    return rows


def cost_rows(runs: list[dict]) -> list[dict[str, Any]]:
    """Per point and replicate: what the knob reran and how long the nested run took."""
    rows = []
    for run in runs:
        rows.append(
            {
                "seed": run["seed"],
                "knob": run["knob"],
                "value": run["value"],
                "stage": run["reuse"]["stage"],
                "reused": run["reuse"]["files_linked"],
                "changed": ", ".join(Path(p).stem for p in run["reuse"].get("world_changed") or []),
                "seconds": run.get("seconds", {}).get("nested_run"),
            }
        )
    return rows


def render(
    long: pd.DataFrame,
    aggregated: pd.DataFrame,
    runs: list[dict],
    sensitivity: dict,
    sensitivity_file: str,
    dpi: int = 150,
) -> str:
    """The sensitivity report as one self-contained HTML page."""
    from reports.render import TEMPLATES, _environment
    from reports.style import data_uri, figure_bytes

    labels = knob_labels(sensitivity)
    knobs = knobs_of(aggregated)
    tornado = tornado_rows(aggregated)
    figures = []
    for key, fig, title, caption in (
        (
            "curves_block",
            curve_figure(long, knobs, "block"),
            "Block errors and coverage against each knob",
            "Top: mean absolute error of block citizens for the exact fit, the published "
            "estimates and the three baselines; bottom: 90% coverage of the exact fit and the "
            "published estimates (randomized PIT), with the 0.85-0.95 band. Points are means "
            "over replicates, bars span the replicates; dashed lines are the baseline runs "
            "(every knob at its default).",
        ),
        (
            "curves_district",
            curve_figure(long, knobs, district_level(10_000)),
            "Districts of about 10,000 persons",
            "As above for compact districts (runs of consecutive blocks in GEOID order) of "
            "about 10,000 persons; coverage of equal-tailed 90% intervals of summed draws.",
        ),
        (
            "tornado",
            tornado_figure(tornado),
            "Which knob matters most",
            "Range over each knob's values of the change from the baseline run (the baseline "
            "value included): left, block MAE of the published citizens in percent; right, "
            "90% coverage in percentage points. Sorted by the error range.",
        ),
    ):
        payload = figure_bytes(fig, "png", dpi)
        width = int.from_bytes(payload[16:20], "big") / dpi
        figures.append(
            {
                "key": key,
                "number": len(figures) + 1,
                "title": title,
                "caption": caption,
                "uri": data_uri(payload, "png"),
                "width_in": round(min(width, 7.0), 2),
            }
        )
    seeds = replicate_seeds(sensitivity)
    context = {
        "title": "Sensitivity of block citizenship estimates to source coverage and settings",
        "css": (TEMPLATES / "report.css").read_text(encoding="utf-8"),
        "page_size": "A4",
        "sweep_file": sensitivity_file,
        "base_scenario": sensitivity.get("base_scenario"),
        "overlays": sensitivity.get("overlays") or [],
        "seeds": seeds,
        "knobs": [
            {
                "name": k,
                "description": labels.get(k, k),
                "value_list": [str(v) for v in sensitivity["knobs"][k]["values"]],
                "relative": bool(sensitivity["knobs"][k].get("relative")),
                "paths": sensitivity["knobs"][k]["paths"],
            }
            for k in sensitivity["knobs"]
        ],
        "statements": statements(aggregated),
        "figures": figures,
        "points": point_table(aggregated),
        "tornado": tornado.to_dict("records") if not tornado.empty else [],
        "costs": cost_rows(runs),
        "band": BAND,
    }
    return _environment().get_template("sensitivity.html.j2").render(**context)
