"""The calibration figure: 90% coverage against aggregate size, published draws and exact fit.

One panel per quantity; x is the mean persons per unit of each level (log scale, block ... run
total), y the share of units whose 90% interval holds the truth, with Wilson 95% error bars, the
nominal 0.90 line and the 0.85-0.95 target band. Drawn from a per-level table of
:func:`models.calibration.summarize_levels` / :func:`models.calibration.pool_replicates` rows
with a ``method`` column (``published``, ``exact``). Used by the calibration study
(``benchmarks/calibration_study.py``, pooled over replicates), by the pipeline's
``evaluate_calibration`` rule (one run) and by the report.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from models.evaluate import QUANTITIES
from pipeline_common.io import atomic_path

# The target of issue 14: a level is honest when 85-95% of its units are covered.
COVERAGE_BAND = (0.85, 0.95)
NOMINAL = 0.9
METHOD_COLOURS = {"published": "#CC79A7", "exact": "#0072B2"}
METHOD_LABELS = {"published": "published draws", "exact": "exact fit"}
# The methods are nudged apart on the x axis to keep the bars legible.
METHOD_OFFSETS = {"published": 0.97, "exact": 1.03}
FIGSIZE = (10, 3.6)


def default_title(table: pd.DataFrame) -> str:
    """``pooled over R replicates`` when the table says so, else one run's title."""
    if "n_replicates" in table.columns and table["n_replicates"].notna().any():
        n_rep = int(table["n_replicates"].max())
        return f"Coverage by aggregate size, pooled over {n_rep} replicates"
    return "Coverage by aggregate size, one run"


def coverage_by_size_figure(
    table: pd.DataFrame,
    band: tuple[float, float] = COVERAGE_BAND,
    title: str | None = None,
    figsize: tuple[float, float] = FIGSIZE,
):
    """Coverage against mean aggregate population, one panel per quantity.

    Parameters
    ----------
    table
        One row per method, level and quantity with ``method, level, quantity, coverage,
        coverage_lo95, coverage_hi95, mean_population`` (more columns are ignored).
    band
        Target coverage band drawn in grey.
    title
        Figure title (default: :func:`default_title`).
    figsize
        Size in inches.

    Returns
    -------
    matplotlib.figure.Figure
        The figure (the caller saves and closes it).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(QUANTITIES), figsize=figsize, sharey=True)
    for ax, quantity in zip(axes, QUANTITIES, strict=True):
        ax.axhspan(*band, color="#999999", alpha=0.2, lw=0, label=f"target {band[0]}-{band[1]}")
        ax.axhline(NOMINAL, color="black", lw=0.8, ls="--", label=f"nominal {NOMINAL:.2f}")
        subset = table[table["quantity"] == quantity]
        for method, group in subset.groupby("method", sort=False):
            group = group.sort_values("mean_population")
            # Wilson 95% intervals: unlike +-2 SE they do not vanish at coverage 1.
            ax.errorbar(
                group["mean_population"] * METHOD_OFFSETS.get(method, 1.0),
                group["coverage"],
                yerr=[
                    (group["coverage"] - group["coverage_lo95"]).clip(lower=0),
                    (group["coverage_hi95"] - group["coverage"]).clip(lower=0),
                ],
                color=METHOD_COLOURS.get(method),
                marker="o",
                ms=3.5,
                lw=1.2,
                capsize=2,
                label=METHOD_LABELS.get(method, method),
            )
        sizes = subset.groupby("level", sort=False)["mean_population"].mean()
        # Levels of (nearly) the same size share one label (a small world has one district).
        names_at: dict[float, list[str]] = {}
        for level_name, size in sizes.items():
            key = next((k for k in names_at if abs(math.log(size / k)) < 0.05), size)
            names_at.setdefault(key, []).append(level_name.replace("district_", "d"))
        for size, names in names_at.items():
            ax.annotate(
                "/".join(names),
                (size, 0),
                xycoords=("data", "axes fraction"),
                xytext=(0, 3),
                textcoords="offset points",
                rotation=90,
                fontsize=6,
                color="#555555",
            )
        ax.set_xscale("log")
        ax.set_title(quantity)
        ax.grid(alpha=0.3, which="both", lw=0.4)
    axes[0].set_ylabel("90% interval coverage (Wilson 95%)")
    fig.supxlabel("mean persons per unit (log scale): block ... run total", fontsize=9, y=0.09)
    lowest = float(table["coverage_lo95"].min())
    axes[0].set_ylim(max(0.0, min(0.5, lowest - 0.05)), 1.02)
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=len(names), fontsize=8, frameon=False)
    fig.suptitle(title if title is not None else default_title(table), fontsize=10)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def write_coverage_figure(
    table: pd.DataFrame,
    path: str | Path,
    band: tuple[float, float] = COVERAGE_BAND,
    title: str | None = None,
    dpi: int = 150,
) -> None:
    """:func:`coverage_by_size_figure` written atomically as PNG to ``path``."""
    import matplotlib.pyplot as plt

    fig = coverage_by_size_figure(table, band, title)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    plt.close(fig)
