"""One function per report figure; each returns a matplotlib Figure (or None without data).

All figures use :mod:`reports.style` (fonts, Okabe-Ito palette, page-width sizes) and label
their axes with units. Captions live in the template, beside the figure, and say what the
reader should see.
"""

from __future__ import annotations

import math
import textwrap

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection, PatchCollection
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import PercentFormatter

from reports.data import SOURCES
from reports.style import (
    CYCLE,
    FULL,
    HALF,
    METHOD_COLOURS,
    METHOD_LABELS,
    PALETTE,
    TALL,
    TEXT_WIDTH_IN,
    UNCERTAINTY_CMAP,
    new_figure,
    report_style,
)
from reports.summaries import STATUS_LABELS, source_label

PERCENT = PercentFormatter(xmax=1.0, decimals=0)


def _method_label(method: str) -> str:
    return METHOD_LABELS.get(method, method.replace("_", " "))


# ---------------------------------------------------------------- sources and linkage


def source_records(sources: pd.DataFrame) -> Figure | None:
    """Records held, withheld by policy, and linked to the census frame, per source."""
    table = sources.dropna(subset=["records"])
    if table.empty:
        return None
    table = table.iloc[::-1]
    y = np.arange(len(table))
    fig, ax = new_figure((TEXT_WIDTH_IN, 0.42 * len(table) + 1.0))
    bar = 0.27
    series = (
        ("records", "records held", PALETTE["grey"], bar),
        ("linked", "linked to the frame", PALETTE["blue"], 0),
        ("withheld", "withheld by policy", PALETTE["vermillion"], -bar),
    )
    for column, label, colour, offset in series:
        values = table[column].fillna(0).astype(float).to_numpy()
        ax.barh(
            y + offset, np.where(values > 0, values, np.nan), height=bar, color=colour, label=label
        )
        top = float(np.nanmax(table["records"].astype(float)))
        for yi, value in zip(y + offset, values, strict=True):
            if value > 0:
                ax.text(value + top * 0.01, yi, f"{int(value):,}", va="center", fontsize=6.5)
    # Linear from zero: bar lengths compare as counts (a log axis starts nowhere in particular).
    ax.set_xlim(0, float(np.nanmax(table["records"].astype(float))) * 1.18)
    ax.xaxis.set_major_formatter(mpl.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_yticks(y, table["Source"])
    ax.set_xlabel("records")
    fig.legend(loc="outside upper center", ncols=3)
    ax.grid(axis="y", visible=False)
    return fig


def linkage_quality(sources: pd.DataFrame) -> Figure | None:
    """Precision and recall of each source's links against the synthetic truth."""
    table = sources.dropna(subset=["precision", "recall"], how="all")
    if table.empty:
        return None
    table = table.iloc[::-1]
    y = np.arange(len(table))
    fig, ax = new_figure((HALF[0] * 1.2, 0.32 * len(table) + 1.0))
    ax.hlines(y, table[["precision", "recall"]].min(axis=1), 1.0, color="#CCCCCC", lw=1)
    ax.plot(table["precision"], y, "o", color=PALETTE["blue"], label="precision")
    ax.plot(table["recall"], y, "D", color=PALETTE["orange"], label="recall")
    ax.set_yticks(y, table["Source"])
    lowest = float(np.nanmin(table[["precision", "recall"]].to_numpy()))
    ax.set_xlim(max(0.0, lowest - 0.05), 1.005)
    ax.xaxis.set_major_formatter(PERCENT)
    ax.set_xlabel("share of links (precision) or of true records (recall)")
    fig.legend(loc="outside upper center", ncols=2)
    return fig


def recall_by_status(recall: pd.DataFrame) -> Figure | None:
    """Heat map of recall by source (rows) and true status class (columns), annotated."""
    if recall.empty:
        return None
    grid = recall.pivot_table(index="source", columns="status", values="recall")
    grid = grid.reindex(
        [s for s in SOURCES if s in grid.index] + [s for s in grid.index if s not in SOURCES]
    )
    order = [s for s in STATUS_LABELS if s in grid.columns]
    grid = grid[order + [c for c in grid.columns if c not in order]]
    fig, ax = new_figure((TEXT_WIDTH_IN, 0.36 * len(grid) + 1.3))
    values = grid.to_numpy(dtype=float)
    # Colour range fitted to the data (recall is often 95-100%): the scale starts at the
    # lowest recall rounded down to 5 points, so differences between cells stay visible.
    low = float(np.floor(np.nanmin(values) * 20) / 20) if np.isfinite(values).any() else 0.0
    low = min(low, 0.95)
    digits = 1 if low >= 0.8 else 0
    cmap = mpl.colormaps[UNCERTAINTY_CMAP].with_extremes(bad="#EEEEEE")
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=low, vmax=1, aspect="auto")
    middle = low + (1 - low) * 0.55
    for (i, j), value in np.ndenumerate(values):
        ax.text(
            j,
            i,
            f"{value:.{digits}%}" if np.isfinite(value) else "no records",
            ha="center",
            va="center",
            fontsize=7.5 if np.isfinite(value) else 6.5,
            color=("white" if value < middle else "black") if np.isfinite(value) else "#777777",
        )
    ax.set_xticks(
        range(grid.shape[1]),
        [STATUS_LABELS.get(c, c).replace(" ", "\n", 1) for c in grid.columns],
    )
    ax.set_yticks(range(grid.shape[0]), [source_label(s) for s in grid.index])
    ax.grid(False)
    ax.set_xlabel("true status class (known only because the data are synthetic)")
    bar = fig.colorbar(image, ax=ax, shrink=0.9, format=PercentFormatter(xmax=1.0, decimals=digits))
    bar.set_label("recall")
    return fig


def match_probabilities(
    probabilities: pd.DataFrame | None,
    histograms: dict[str, dict] | None = None,
    kind: str = "probability",
) -> Figure | None:
    """Link confidence of accepted links, one panel per source.

    With the evaluation's histograms (``{edges, true_links, false_links}``; ``kind`` says
    whether the edges are match weights or probabilities) correct links are bars and false
    links an outline; bins are drawn with equal widths and labelled by their edges, since
    probability bins are uneven (0.99, 0.999, ...). Without them, all links from
    ``linkage/links.parquet`` are shown in one colour.
    """
    histograms = histograms or {}
    if histograms:
        sources = [s for s in SOURCES if s in histograms] + [
            s for s in histograms if s not in SOURCES
        ]
    elif probabilities is not None and not probabilities.empty:
        sources = list(dict.fromkeys(probabilities["source"]))
    else:
        return None
    cols = 4
    rows = math.ceil(len(sources) / cols)
    fig, axes = new_figure(
        (TEXT_WIDTH_IN, 1.55 * rows + 0.8), nrows=rows, ncols=cols, sharex=True, squeeze=False
    )
    edges = None
    for ax, source in zip(axes.flat, sources, strict=False):
        if source in histograms:
            hist = histograms[source]
            edges = [float(e) for e in hist["edges"]]
            true_links = np.asarray(hist["true_links"], dtype=float)
            false_links = np.asarray(hist["false_links"], dtype=float)
            x = np.arange(len(true_links))
            ax.bar(x, true_links, 1.0, align="edge", color=PALETTE["blue"], label="correct links")
            # False links as an outline on the same axis (stacking on a log axis would
            # exaggerate them).
            ax.stairs(
                false_links,
                np.arange(len(false_links) + 1),
                color=PALETTE["vermillion"],
                lw=1.4,
                label="false links",
            )
            total = true_links.sum() + false_links.sum()
            n_false = int(false_links.sum())
            share = n_false / max(total, 1)
            # A count, not a rounded share: "0.0% false" beside drawn false links misleads.
            detail = f"{int(total):,} links, {n_false:,} false" + (
                f" ({share:.2%})" if n_false and share >= 0.0001 else ""
            )
        else:
            values = probabilities.loc[probabilities["source"] == source, "match_probability"]
            ax.hist(values.clip(0, 1), bins=np.linspace(0, 1, 26), color=PALETTE["blue"])
            below = float((values < 0.9).mean()) if len(values) else 0.0
            detail = f"{len(values):,} links, {below:.1%} below 0.9"
        ax.set_yscale("symlog", linthresh=1)
        ax.set_title(f"{source_label(source)}\n{detail}", fontsize=7.5, fontweight="normal")
        ax.tick_params(labelsize=7)
        ax.grid(axis="x", visible=False)
    for ax in list(axes.flat)[len(sources) :]:
        ax.set_visible(False)
    if histograms and edges is not None:
        n_bins = len(edges) - 1
        step = max(1, math.ceil(n_bins / 6))
        ticks = list(range(0, n_bins + 1, step))
        for ax in axes.flat:
            ax.set_xticks(ticks, [f"{edges[t]:g}" for t in ticks], fontsize=6.5)
        handles, labels = axes.flat[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside upper center", ncols=2)
        xlabel = (
            "match weight of the accepted link (log2 Bayes factor)"
            if kind == "weight"
            else "match probability of the accepted link (bin edges)"
        )
    else:
        xlabel = "match probability of the accepted link"
    fig.supxlabel(xlabel, fontsize=8.5)
    fig.supylabel("links (log scale)", fontsize=8.5)
    return fig


# ---------------------------------------------------------------- model


def pick_rank_variables(
    posterior_ds, limit: int = 6, preferred: list[str] | None = None
) -> list[str]:
    """Variables for rank plots, at most ``limit`` panels: the model's named top-level
    parameters first (``preferred``), then the smallest remaining ones."""
    sizes = {}
    for name, var in posterior_ds.data_vars.items():
        extra = [d for d in var.dims if d not in ("chain", "draw")]
        sizes[name] = int(np.prod([var.sizes[d] for d in extra])) if extra else 1
    # Named parameters first, scalars (hyperparameters) before vectors.
    order = sorted((n for n in (preferred or []) if n in sizes), key=lambda n: sizes[n])
    order += [n for n in sorted(sizes, key=lambda n: (sizes[n], n)) if n not in order]
    chosen, panels = [], 0
    for name in order:
        if panels + sizes[name] > limit:
            continue
        chosen.append(name)
        panels += sizes[name]
    return chosen


PARAMETER_LABELS = {
    "sigma_tract": "s.d. of tract effects",
    "intercept": "county intercept",
    "age_effect": "age effect",
    "eta_tract": "tract effect",
    "theta_logratio": "source log-ratio",
}


def _scalar_entries(ds, names: list[str]) -> list[tuple[str, dict, np.ndarray]]:
    """(label, selection, draws chain x draw) for every scalar entry of ``names``."""
    out = []
    for name in names:
        var = ds[name]
        extra = [d for d in var.dims if d not in ("chain", "draw")]
        index = np.ndindex(*[var.sizes[d] for d in extra]) if extra else [()]
        for position in index:
            selection = dict(zip(extra, position, strict=True))
            values = var.isel(selection).transpose("chain", "draw").values
            label = _entry_label(ds, name, selection)
            out.append((label, selection, values))
    return out


def _entry_label(ds, name: str, selection: dict) -> str:
    """Readable name of one scalar entry: labelled coordinates by their value (classes by
    their printed name), unlabelled ones by number."""
    parts = []
    for dim, i in selection.items():
        coord = ds[dim].values[i] if dim in ds.coords else None
        if coord is not None and isinstance(coord, str | np.str_):
            parts.append(class_label(str(coord)) if "class" in dim else str(coord))
        elif dim.startswith("tract"):
            parts.append(f"tract no. {i + 1}")
        else:
            parts.append(f"no. {i + 1}")
    if name.startswith("theta_") and name != "theta_logratio":
        label = "P(" + source_label(name[len("theta_") :]) + " says"
        return label + (" | " + ", ".join(parts) if parts else "") + ")"
    label = PARAMETER_LABELS.get(name, name.replace("_", " "))
    return label + (f": {', '.join(parts)}" if parts else "")


def rank_plot(posterior, limit: int = 6, preferred: list[str] | None = None) -> Figure | None:
    """Rank histograms (Vehtari et al. 2021) per chain: the model's top-level parameters and
    the entries with the largest R-hat. Each panel pools all chains' draws, ranks them, and
    counts each chain's ranks in 20 bins; chains that sample the same distribution give flat
    histograms inside the grey 99% band of a uniform count."""
    if posterior is None or "posterior" not in posterior.children:
        return None
    import arviz as az
    from scipy import stats

    ds = posterior["posterior"].to_dataset()
    chosen = _scalar_entries(ds, pick_rank_variables(ds, max(limit - 3, 1), preferred))
    # The three entries whose chains disagree most, wherever they are.
    rhat = az.rhat(posterior)
    if hasattr(rhat, "children") and "posterior" in rhat.children:
        rhat = rhat["posterior"].to_dataset()
    worst = []
    for name in ds.data_vars:
        values = np.asarray(rhat[name].values, dtype=float)
        for flat in np.argsort(np.nan_to_num(values, nan=0).ravel())[::-1][:3]:
            if np.isfinite(values.ravel()[flat]):
                worst.append((float(values.ravel()[flat]), name, flat))
    worst.sort(reverse=True)
    seen = {label for label, _, _ in chosen}
    for value, name, flat in worst:
        if len(chosen) >= limit:
            break
        var = ds[name]
        extra = [d for d in var.dims if d not in ("chain", "draw")]
        position = np.unravel_index(flat, [var.sizes[d] for d in extra]) if extra else ()
        selection = dict(zip(extra, (int(p) for p in position), strict=True))
        values = var.isel(selection).transpose("chain", "draw").values
        label = _entry_label(ds, name, selection) + f" (R-hat {value:.3f})"
        if label not in seen:
            chosen.append((label, selection, values))
            seen.add(label)
    chosen = chosen[:limit]
    if not chosen:
        return None
    cols = 3
    rows = math.ceil(len(chosen) / cols)
    fig, axes = new_figure(
        (TEXT_WIDTH_IN, 1.45 * rows + 0.5), nrows=rows, ncols=cols, squeeze=False, sharey=True
    )
    bins = 20
    chain_colours = [PALETTE["blue"], PALETTE["orange"], PALETTE["green"], PALETTE["purple"]]
    for ax, (label, _, values) in zip(axes.flat, chosen, strict=False):
        n_chains, n_draws = values.shape
        ranks = stats.rankdata(values.ravel()).reshape(values.shape) / values.size
        expected = n_draws / bins
        low, high = stats.binom.ppf([0.005, 0.995], n_draws, 1 / bins)
        ax.axhspan(low, high, color="#E4E4E4", lw=0)
        ax.axhline(expected, color=PALETTE["grey"], lw=0.8, ls="--")
        edges = np.linspace(0, 1, bins + 1)
        for c in range(n_chains):
            counts, _ = np.histogram(ranks[c], bins=edges)
            ax.stairs(
                counts,
                edges,
                color=chain_colours[c % 4],
                lw=1.2,
                baseline=None,
                label=f"chain {c + 1}",
            )
        ax.set_title(textwrap.fill(label, 38), fontsize=6.5, fontweight="normal")
        ax.set_xlim(0, 1)
        ax.set_xticks([0, 0.5, 1], ["0", "0.5", "1"])
        ax.tick_params(labelsize=6.5)
        ax.grid(False)
    for ax in list(axes.flat)[len(chosen) :]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("draws per bin", fontsize=7)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    handles.append(mpl.patches.Patch(color="#E4E4E4", label="99% band of a uniform count"))
    labels.append("99% band of a uniform count")
    fig.legend(handles, labels, loc="outside upper center", ncols=len(labels), fontsize=7)
    fig.supxlabel("rank of the draw among all chains' draws (fraction)", fontsize=7.5)
    return fig


def convergence(posterior) -> tuple[Figure | None, dict]:
    """Histograms of R-hat and bulk ESS over every posterior parameter, and their extremes."""
    if posterior is None or "posterior" not in posterior.children:
        return None, {}
    import arviz as az

    def flat(tree) -> np.ndarray:
        ds = tree["posterior"].to_dataset() if "posterior" in tree.children else tree.to_dataset()
        return np.concatenate([np.ravel(v.values) for v in ds.data_vars.values()])

    rhat = flat(az.rhat(posterior))
    ess = flat(az.ess(posterior, method="bulk"))
    fig, (left, right) = new_figure(FULL, ncols=2)
    left.hist(rhat[np.isfinite(rhat)], bins=30, color=PALETTE["blue"])
    left.axvline(1.01, color=PALETTE["vermillion"], ls="--", lw=1, label="1.01 threshold")
    left.set_xlabel("rank-normalized split R-hat")
    left.set_ylabel("parameters")
    left.legend()
    right.hist(ess[np.isfinite(ess)], bins=30, color=PALETTE["green"])
    right.axvline(400, color=PALETTE["vermillion"], ls="--", lw=1, label="400 draws")
    right.set_xlabel("bulk effective sample size (draws)")
    right.set_ylabel("parameters")
    right.legend()
    stats = {
        # Structural constants have an undefined R-hat: counted out, as az.summary does.
        "parameters": int(np.isfinite(rhat).sum()),
        "max_rhat": float(np.nanmax(rhat)),
        "min_ess_bulk": float(np.nanmin(ess)),
        "share_rhat_over_1_01": float(np.mean(rhat > 1.01)),
    }
    return fig, stats


def source_behaviour(behaviour: pd.DataFrame) -> Figure | None:
    """Estimated source behaviour against the generating value, as the error of the estimate
    (posterior mean and 90% interval minus the generating value, percentage points): a few
    points of error are visible at this scale, where on a 0-100% axis the intervals hid under
    the markers. One row per behaviour, one line per fit; zero is the truth."""
    table = behaviour.dropna(subset=["mean", "truth"])
    if table.empty:
        return None
    if "fit" not in table:
        table = table.assign(fit="exact")
    table = table.astype({"lo90": float, "hi90": float, "truth": float, "mean": float})
    labels = list(dict.fromkeys(table["label"]))[::-1]
    fits = [f for f in ("exact", "privacy") if (table["fit"] == f).any()]
    fit_style = {
        "exact": (PALETTE["blue"], "o", "exact fit"),
        "privacy": (PALETTE["purple"], "s", "privacy fit"),
    }
    offsets = {"exact": 0.17, "privacy": -0.17} if len(fits) > 1 else {fits[0]: 0.0}
    fig, ax = new_figure((TEXT_WIDTH_IN, 0.42 * len(labels) + 1.1))
    y_of = {label: i for i, label in enumerate(labels)}
    ax.axvline(0, color=PALETTE["vermillion"], lw=1.2, ls="--", label="generating value")
    for fit in fits:
        part = table[table["fit"] == fit]
        y = part["label"].map(y_of).to_numpy(float) + offsets[fit]
        colour, marker, name = fit_style[fit]
        mean = (part["mean"] - part["truth"]).to_numpy() * 100
        lo = (part["lo90"] - part["truth"]).to_numpy() * 100
        hi = (part["hi90"] - part["truth"]).to_numpy() * 100
        has = np.isfinite(lo) & np.isfinite(hi)
        ax.errorbar(
            mean[has],
            y[has],
            xerr=np.vstack([mean[has] - lo[has], hi[has] - mean[has]]).clip(0),
            fmt=marker,
            ms=3.5,
            color=colour,
            ecolor=colour,
            elinewidth=1.6,
            capsize=2.5,
            label=f"{name}: mean, 90% interval",
        )
        missed = has & ((lo > 0) | (hi < 0))
        # Inside the axes (right edge), so the printed size stays the text width.
        edge = mpl.transforms.blended_transform_factory(ax.transAxes, ax.transData)
        for yi in y[missed]:
            ax.text(
                0.995,
                yi,
                "✗",
                transform=edge,
                ha="right",
                va="center",
                fontsize=7,
                color=PALETTE["vermillion"],
            )
    ax.set_yticks(
        range(len(labels)), [label.replace(" | ", "\n| ") for label in labels], fontsize=7
    )
    ax.set_ylim(-0.6, len(labels) - 0.4)
    span = (
        float(
            np.nanmax(
                np.abs(
                    np.r_[
                        (table[["lo90", "hi90", "mean"]].sub(table["truth"], axis=0))
                        .to_numpy()
                        .ravel()
                    ]
                )
            )
        )
        * 100
    )
    ax.set_xlim(-span * 1.15 - 0.5, span * 1.15 + 0.5)
    ax.set_xlabel("estimate minus generating value (percentage points)")
    ax.grid(axis="y", visible=False)
    fig.legend(loc="outside upper center", ncols=3, fontsize=7)
    return fig


CATEGORY_COLOURS = {
    "none": "#CCCCCC",
    "citizen": PALETTE["blue"],
    "naturalized": PALETTE["sky"],
    "noncitizen": PALETTE["vermillion"],
    "lpr": PALETTE["orange"],
    "unknown": PALETTE["yellow"],
}
CATEGORY_LABELS = {"none": "no link", "lpr": "LPR"}
# Latent classes in reading order, with their printed names.
CLASS_LABELS = {
    "native_citizen": "Native-born citizen",
    "naturalized": "Naturalized citizen",
    "naturalized_withheld": "Naturalized, DHS records withheld",
    "lpr": "LPR",
    "other_noncitizen": "Other noncitizen",
    "noncitizen_withheld": "Noncitizen, DHS records withheld",
}


def class_label(name: str) -> str:
    """Printed name of a latent class."""
    return CLASS_LABELS.get(name, STATUS_LABELS.get(name, name.replace("_", " ")))


def source_behaviour_profile(table: pd.DataFrame) -> Figure | None:
    """What each source says about persons of each latent class (posterior means, stacked)."""
    from reports.summaries import category_base

    if table.empty or table["mean"].isna().all():
        return None
    table = table.assign(base=table["category"].map(category_base))
    sums = table.groupby(["source", "latent_class", "base"], sort=False)["mean"].sum()
    present = list(dict.fromkeys(table["source"]))
    sources = [s for s in SOURCES if s in present] + [s for s in present if s not in SOURCES]
    present_classes = list(dict.fromkeys(table["latent_class"]))
    classes = [k for k in CLASS_LABELS if k in present_classes] + [
        k for k in present_classes if k not in CLASS_LABELS
    ]
    bases = [b for b in CATEGORY_COLOURS if b in set(table["base"])]
    bases += [b for b in dict.fromkeys(table["base"]) if b not in bases]
    cols = 4
    rows = math.ceil(len(sources) / cols)
    fig, axes = new_figure(
        (TEXT_WIDTH_IN, 1.25 * rows + 0.8),
        nrows=rows,
        ncols=cols,
        sharex=True,
        sharey=True,
        squeeze=False,
    )
    y = np.arange(len(classes))[::-1]
    for ax, source in zip(axes.flat, sources, strict=False):
        left = np.zeros(len(classes))
        for base in bases:
            values = np.array([sums.get((source, k, base), 0.0) for k in classes])
            ax.barh(
                y,
                values,
                left=left,
                color=CATEGORY_COLOURS.get(base, PALETTE["purple"]),
                height=0.7,
                label=CATEGORY_LABELS.get(base, base),
            )
            left += values
        ax.set_title(source_label(source), fontsize=7.5, fontweight="normal")
        ax.set_yticks(y, [class_label(k) for k in classes], fontsize=7)
        ax.set_xlim(0, 1)
        # Three ticks, the outer labels aligned inwards: neighbouring panels' "100%" and "0%"
        # no longer run into each other.
        ax.set_xticks([0, 0.5, 1], ["0%", "50%", "100%"])
        for label, align in zip(ax.get_xticklabels(), ("left", "center", "right"), strict=False):
            label.set_horizontalalignment(align)
        ax.tick_params(axis="x", labelsize=6.5)
        ax.grid(False)
    for ax in list(axes.flat)[len(sources) :]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncols=len(bases))
    fig.supxlabel(
        "posterior mean probability of what the source says (by latent class)", fontsize=8.5
    )
    return fig


def posterior_predictive(
    ppc: pd.DataFrame | None, misfits: pd.DataFrame | None = None
) -> Figure | None:
    """Observed against replicated pattern counts (posterior predictive mean and 90% interval);
    patterns outside their interval in vermillion, the worst ones numbered."""
    if ppc is None or ppc.empty:
        return None
    fig, ax = new_figure((TEXT_WIDTH_IN * 0.75, 3.6))
    inside = ppc["inside"].to_numpy(bool) if "inside" in ppc else np.ones(len(ppc), bool)
    for mask, colour, label in (
        (inside, PALETTE["blue"], "observed inside the 90% interval"),
        (~inside, PALETTE["vermillion"], "observed outside the 90% interval"),
    ):
        part = ppc[mask]
        if part.empty:
            continue
        err = None
        if {"lo90", "hi90"} <= set(part.columns):
            err = np.clip(
                np.vstack([part["replicated"] - part["lo90"], part["hi90"] - part["replicated"]]),
                0,
                None,
            )
        ax.errorbar(
            part["observed"],
            part["replicated"],
            yerr=err,
            fmt="o",
            ms=3.5,
            lw=0.8,
            color=colour,
            ecolor=colour,
            alpha=0.8,
            label=f"{label} ({len(part)})",
        )
    top = float(max(ppc["observed"].max(), ppc["hi90"].max() if "hi90" in ppc else 0) * 1.3 + 1)
    ax.plot([0, top], [0, top], color=PALETTE["grey"], lw=1, ls="--", label="replicated = observed")
    if misfits is not None:
        for number, (_, row) in enumerate(misfits.iterrows(), start=1):
            ax.annotate(
                str(number),
                (row["observed"], row["replicated"]),
                xytext=(4, -9),
                textcoords="offset points",
                fontsize=7.5,
                fontweight="bold",
                color=PALETTE["vermillion"],
            )
    ax.set_xscale("symlog", linthresh=1)
    ax.set_yscale("symlog", linthresh=1)
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_xlabel("observed persons with the pattern (all blocks)")
    ax.set_ylabel("replicated persons (posterior predictive)")
    ax.legend(loc="upper left", fontsize=7.5)
    return fig


# ---------------------------------------------------------------- estimates


def tract_edges(part: pd.DataFrame) -> list[list[tuple[float, float]]]:
    """Segments where a block borders another tract (or nothing): the tract outlines.

    Blocks are squares on a grid (``x, y`` centres, ``width``): an edge is drawn when the
    square across it belongs to a different tract or does not exist.
    """
    if "tract_id" not in part or part.empty:
        return []
    width = part["width"] if "width" in part else pd.Series(1.0, index=part.index)
    key = {
        (round(x, 6), round(y, 6)): t
        for x, y, t in zip(part["x"], part["y"], part["tract_id"], strict=True)
    }
    segments = []
    for x, y, w, tract in zip(part["x"], part["y"], width, part["tract_id"], strict=True):
        h = w / 2
        for dx, dy, seg in (
            (w, 0, [(x + h, y - h), (x + h, y + h)]),
            (-w, 0, [(x - h, y - h), (x - h, y + h)]),
            (0, w, [(x - h, y + h), (x + h, y + h)]),
            (0, -w, [(x - h, y - h), (x + h, y - h)]),
        ):
            if key.get((round(x + dx, 6), round(y + dy, 6))) != tract:
                segments.append(seg)
    return segments


def _map_panels(blocks: pd.DataFrame, geography: pd.DataFrame):
    merged = geography.merge(blocks, on=["block_id"], how="inner", suffixes=("_geo", ""))
    if "county_id" not in merged:
        merged["county_id"] = merged["county_id_geo"]
    counties = sorted(merged["county_id"].unique())
    cols = min(len(counties), 3)
    rows = math.ceil(len(counties) / cols)
    return merged, counties, cols, rows


def block_map(
    blocks: pd.DataFrame,
    geography: pd.DataFrame,
    values: pd.Series,
    label: str,
    cmap: str,
    vmax: float | None = None,
    hatch_mask: pd.Series | None = None,
) -> Figure | None:
    """Blocks drawn as squares on the synthetic plane, one panel per county, coloured by
    ``values`` (indexed like ``blocks``); ``hatch_mask`` marks blocks to hatch."""
    if blocks.empty or geography.empty:
        return None
    frame = blocks[["block_id", "county_id"]].assign(value=values.to_numpy())
    if hatch_mask is not None:
        frame["hatch"] = hatch_mask.to_numpy()
    merged, counties, _, _ = _map_panels(frame, geography)
    if merged.empty:
        return None
    finite = merged["value"].replace([np.inf, -np.inf], np.nan).dropna()
    vmax = vmax if vmax is not None else (float(finite.quantile(0.98)) if len(finite) else 1.0)
    vmax = vmax if vmax > 0 else 1.0
    if "width" not in merged:
        merged["width"] = 1.0
    if "height" not in merged:
        merged["height"] = merged["width"]
    # One panel, the synthetic plane as it is (counties side by side, one scale): no empty
    # panels, and tract codes printed on the map so a block can be found (its GEOID is its
    # tract's plus four digits; published/blocks.geojson has every square).
    pad = float(merged["width"].max())
    x0, x1 = merged["x"].min() - pad, merged["x"].max() + pad
    y0, y1 = merged["y"].min() - pad, merged["y"].max() + 3 * pad
    height = float(np.clip(TEXT_WIDTH_IN * (y1 - y0) / (x1 - x0), 2.0, 7.5))
    fig, ax = new_figure((TEXT_WIDTH_IN, height + 0.8))
    norm = mpl.colors.Normalize(vmin=0, vmax=vmax)
    colormap = mpl.colormaps[cmap]
    patches = [
        Rectangle((x - w / 2, y - h / 2), w, h)
        for x, y, w, h in zip(
            merged["x"], merged["y"], merged["width"], merged["height"], strict=True
        )
    ]
    colours = [
        colormap(norm(v)) if np.isfinite(v) else (0.85, 0.85, 0.85, 1) for v in merged["value"]
    ]
    ax.add_collection(PatchCollection(patches, facecolor=colours, edgecolor="white", lw=0.15))
    for county in counties:
        part = merged[merged["county_id"] == county]
        ax.add_collection(LineCollection(tract_edges(part), colors="black", linewidths=0.6))
        ax.text(
            (part["x"].min() + part["x"].max()) / 2,
            part["y"].max() + 1.2 * pad,
            f"county {county} ({len(part):,} blocks)",
            ha="center",
            va="bottom",
            fontsize=7,
        )
    if "hatch" in merged and merged["hatch"].any():
        flagged = merged[merged["hatch"].astype(bool)]
        ax.add_collection(
            PatchCollection(
                [
                    Rectangle((x - w / 2, y - h / 2), w, h)
                    for x, y, w, h in zip(
                        flagged["x"], flagged["y"], flagged["width"], flagged["height"], strict=True
                    )
                ],
                facecolor="none",
                edgecolor="black",
                linewidth=0.0,
                hatch="////",
            )
        )
    if "tract_id" in merged:
        centres = merged.groupby("tract_id")[["x", "y"]].median()
        for tract, (cx, cy) in centres.iterrows():
            ax.text(
                cx,
                cy,
                str(tract)[5:9] + "." + str(tract)[9:11],
                ha="center",
                va="center",
                fontsize=3.6,
                color="white",
                bbox={"boxstyle": "round,pad=0.1", "fc": (0, 0, 0, 0.55), "lw": 0},
            )
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    mappable = mpl.cm.ScalarMappable(norm=norm, cmap=colormap)
    bar = fig.colorbar(
        mappable,
        ax=ax,
        orientation="horizontal",
        shrink=0.6,
        aspect=40,
        pad=0.02,
        extend="max" if finite.max() > vmax else "neither",
    )
    bar.set_label(label)
    return fig


RELIABILITY_STYLE = {
    "high": (PALETTE["blue"], "o"),
    "medium": (PALETTE["orange"], "s"),
    "low": (PALETTE["black"], "^"),
}


def interval_width_by_size(blocks: pd.DataFrame, quantity: str = "noncitizens") -> Figure | None:
    """90% interval width against block population: absolute (persons) and as a share;
    points coloured by the published reliability flag."""
    blocks = blocks[blocks["population"] > 0]
    if blocks.empty:
        return None
    population = blocks["population"].astype(float)
    width = (blocks[f"{quantity}_hi90"] - blocks[f"{quantity}_lo90"]).astype(float)
    flags = (
        blocks["reliability"].astype(str).str.lower()
        if "reliability" in blocks
        else pd.Series("unflagged", index=blocks.index)
    )
    fig, (left, right) = new_figure(FULL, ncols=2)
    levels = [lvl for lvl in RELIABILITY_STYLE if (flags == lvl).any()]
    levels += [lvl for lvl in dict.fromkeys(flags) if lvl not in levels]
    for ax, values, ylabel in (
        (left, width, f"{quantity}: 90% interval width\n(persons)"),
        (right, width / population, "90% interval width\n/ block population"),
    ):
        for level in levels:
            mask = (flags == level).to_numpy()
            colour, marker = RELIABILITY_STYLE.get(level, (PALETTE["grey"], "o"))
            ax.scatter(
                population[mask],
                values[mask],
                s=14 if level == "low" else 9,
                alpha=0.7,
                color=colour,
                marker=marker,
                linewidths=0,
                label=f"reliability {level} ({int(mask.sum()):,})",
            )
        ax.set_xscale("log")
        ax.set_xlabel("block population (persons, log scale)")
        ax.set_ylabel(ylabel)
    right.yaxis.set_major_formatter(PERCENT)
    fig.legend(
        *left.get_legend_handles_labels(),
        loc="outside upper center",
        ncols=max(1, len(levels)),
        fontsize=7.5,
        markerscale=1.5,
    )
    return fig


# ---------------------------------------------------------------- validation


def coverage_at_90(curve: pd.DataFrame, quantities: tuple[str, ...], band: float = 0.03) -> Figure:
    """Empirical coverage of nominal 90% intervals per method and quantity (one level only)."""
    present = list(dict.fromkeys(curve["method"]))
    methods = [m for m in METHOD_COLOURS if m in present] + [
        m for m in present if m not in METHOD_COLOURS
    ]
    fig, ax = new_figure((HALF[0] * 1.25, 0.42 * len(methods) * len(quantities) + 1.2))
    labels, y = [], 0
    for quantity in quantities:
        for method in methods:
            hit = curve[(curve["method"] == method) & (curve["quantity"] == quantity)]
            if len(hit):
                value = float(hit["empirical"].iloc[0])
                ax.plot(value, y, "o", ms=6, color=METHOD_COLOURS.get(method, PALETTE["purple"]))
                ax.text(value, y + 0.28, f"{value:.1%}", ha="center", fontsize=7)
            labels.append(f"{_method_label(method)}, {quantity}")
            y += 1
    ax.axvspan(0.9 - band, 0.9 + band, color="#E5E5E5", zorder=0, label=f"90% ± {band:.0%}")
    ax.axvline(0.9, color=PALETTE["grey"], ls="--", lw=1, label="nominal 90%")
    ax.set_yticks(range(len(labels)), labels, fontsize=7.5)
    ax.set_ylim(len(labels) - 0.4, -0.6)
    low = float(min(curve["empirical"].min(), 0.9 - band)) - 0.05
    ax.set_xlim(max(0.0, low), 1.0)
    ax.xaxis.set_major_formatter(PERCENT)
    ax.set_xlabel("share of blocks whose true count falls inside the 90% interval")
    fig.legend(loc="outside upper center", ncols=2)
    return fig


def calibration(
    curve: pd.DataFrame, quantities: tuple[str, ...] = ("citizens", "cvap")
) -> Figure | None:
    """Empirical against nominal coverage of the intervals, per method (diagonal = honest);
    one panel per quantity."""
    quantities = tuple(q for q in quantities if (curve["quantity"] == q).any())
    if not quantities:
        return None
    if set(curve["nominal"].round(6)) == {0.9}:
        return coverage_at_90(curve, quantities)
    fig, axes = new_figure((TEXT_WIDTH_IN, 3.9), ncols=len(quantities), squeeze=False, sharey=True)
    lo = float(min(curve["nominal"].min(), curve["empirical"].min(), 0.5)) - 0.05
    for ax, quantity in zip(axes.flat, quantities, strict=True):
        part = curve[curve["quantity"] == quantity]
        ax.plot(
            [0, 1],
            [0, 1],
            color=PALETTE["grey"],
            ls="--",
            lw=1,
            label="perfect calibration" if quantity == quantities[0] else None,
        )
        present = list(dict.fromkeys(part["method"]))
        ordered = [m for m in METHOD_COLOURS if m in present] + [
            m for m in present if m not in METHOD_COLOURS
        ]
        for method in ordered:
            rows = part[part["method"] == method]
            rows = rows.sort_values("nominal")
            ax.plot(
                rows["nominal"],
                rows["empirical"],
                "o-",
                ms=4,
                color=METHOD_COLOURS.get(method, PALETTE["purple"]),
                label=_method_label(method) if quantity == quantities[0] else None,
            )
        ax.set_xlim(max(lo, 0.0), 1.0)
        ax.set_ylim(max(lo, 0.0), 1.0)
        ax.set_aspect("equal")
        ax.xaxis.set_major_formatter(PERCENT)
        ax.yaxis.set_major_formatter(PERCENT)
        ax.set_xlabel("nominal interval level")
        ax.set_title(f"block {quantity}")
    axes.flat[0].set_ylabel("share of blocks whose true count\nfalls inside the interval")
    fig.legend(loc="outside upper center", ncols=3, fontsize=7.5)
    return fig


LEVEL_ORDER = (
    "block",
    "block_group",
    "tract",
    "district_300",
    "district_1000",
    "district_3000",
    "district_10000",
    "district_30000",
    "county",
    "total",
)
LEVEL_SHORT = {
    "block": "blocks\n(PIT)",
    "block_group": "block\ngroups",
    "tract": "tracts",
    "county": "counties",
    "total": "run\ntotal",
}


def _wilson(share: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson 95% interval of a binomial share."""
    if n <= 0:
        return share, share
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def calibration_levels(
    summary: pd.DataFrame, band: tuple[float, float] = (0.85, 0.95)
) -> Figure | None:
    """90% coverage by aggregation level, block to run total, published and exact fit, for
    citizens and CVAP: one point per level (blocks by the randomized PIT, as the summary),
    Wilson 95% error bars, the target band and the 90% line. Levels are categories in order
    of size (labels never collide); the mean persons per unit is printed under each."""
    needed = {"method", "level", "quantity", "coverage", "n_units"}
    if summary is None or summary.empty or not needed <= set(summary):
        return None
    rows = {(r["method"], r["level"], r["quantity"]): r for r in summary.to_dict("records")}
    levels = [lvl for lvl in LEVEL_ORDER if any(k[1] == lvl for k in rows)]
    if not levels:
        return None
    # Citizens above CVAP, each the full text width: ten levels side by side need the room.
    fig, axes = new_figure((TEXT_WIDTH_IN, 3.9), nrows=2, sharex=True)
    x = np.arange(len(levels))
    for ax, quantity in zip(axes, ("citizens", "cvap"), strict=True):
        ax.axhspan(*band, color="#E8E8E8", lw=0, label=f"target {band[0]:.2f}-{band[1]:.2f}")
        ax.axhline(0.9, color="black", lw=0.8, ls="--", label="nominal 0.90")
        for method, colour, marker, offset, name in (
            ("published", METHOD_COLOURS["published"], "s", -0.12, "published"),
            ("exact", METHOD_COLOURS["model"], "o", 0.12, "exact fit"),
        ):
            xs, ys, lo, hi = [], [], [], []
            for i, level in enumerate(levels):
                row = rows.get((method, level, quantity))
                if not row:
                    continue
                key = "pit_coverage" if level == "block" and row.get("pit_coverage") else "coverage"
                value = row.get(key)
                if value is None or not np.isfinite(value):
                    continue
                low, high = _wilson(float(value), int(row["n_units"]))
                xs.append(i + offset)
                ys.append(float(value))
                lo.append(max(float(value) - low, 0.0))
                hi.append(max(high - float(value), 0.0))
            ax.errorbar(
                xs,
                ys,
                yerr=[lo, hi],
                fmt=marker,
                ms=4,
                color=colour,
                capsize=2,
                lw=1.2,
                label=name,
            )
        persons = []
        for level in levels:
            row = next((rows[k] for k in rows if k[1] == level and k[2] == quantity), {})
            n = row.get("mean_population")
            persons.append(f"{n:,.0f}" if n is not None and np.isfinite(n) else "")
        ax.set_xticks(
            x,
            [
                f"{LEVEL_SHORT.get(lvl) or '~' + format(int(lvl.split('_')[-1]), ',')}\n{p}"
                for lvl, p in zip(levels, persons, strict=True)
            ],
            fontsize=6.5,
        )
        ax.set_title(QUANTITY_TITLES.get(quantity, quantity), fontsize=8, loc="left")
        ax.set_ylim(min(0.5, ax.get_ylim()[0]), 1.02)
        ax.yaxis.set_major_formatter(PERCENT)
        ax.grid(axis="x", visible=False)
    fig.supylabel("units whose 90% interval holds the truth", fontsize=7.5)
    fig.supxlabel(
        "aggregation level (districts: ~persons); second line: mean persons per unit",
        fontsize=7.5,
    )
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncols=4, fontsize=7)
    return fig


QUANTITY_TITLES = {"citizens": "citizens", "cvap": "CVAP", "noncitizens": "noncitizens"}


def gain_over_acs(summary: pd.DataFrame) -> Figure | None:
    """Typical error by district size: today's ACS disaggregation against the published
    estimates (``evaluation/comparison.json``; the figure of ``models.comparison``)."""
    from models.comparison import gain_figure

    needed = {"method", "level", "quantity", "relative_error", "mean_population"}
    if summary is None or summary.empty or not needed <= set(summary):
        return None
    table = summary.dropna(subset=["relative_error", "mean_population"])
    if table.empty or "acs_direct" not in set(table["method"]):
        return None
    with report_style():
        # A little narrower than the text: the ratio labels may reach past the axes.
        return gain_figure(table, title="", figsize=(TEXT_WIDTH_IN - 0.4, 3.4))


def record_rule_cost(by_status: dict | None) -> Figure | None:
    """What the record rule decides for persons of each true status (shares of the class)."""
    if not isinstance(by_status, dict) or not by_status:
        return None
    order = [s for s in STATUS_LABELS if s in by_status] + [
        s for s in by_status if s not in STATUS_LABELS
    ]
    citizen_classes = {"native_citizen", "naturalized"}
    rows = []
    for status in order:
        entry = by_status[status] if isinstance(by_status[status], dict) else {}
        persons = float(entry.get("persons") or 0)
        if persons <= 0:
            continue
        rows.append(
            (
                status,
                persons,
                float(entry.get("labelled_citizen") or 0) / persons,
                float(entry.get("labelled_noncitizen") or 0) / persons,
                float(entry.get("no_definitive_record") or 0) / persons,
            )
        )
    if not rows:
        return None
    rows = rows[::-1]
    fig, ax = new_figure((TEXT_WIDTH_IN, 0.42 * len(rows) + 1.2))
    y = np.arange(len(rows))
    left = np.zeros(len(rows))
    for k, (label, colour) in enumerate(
        (
            ("labelled citizen", PALETTE["blue"]),
            ("labelled noncitizen", PALETTE["vermillion"]),
            ("no definitive record (county share used)", "#CCCCCC"),
        )
    ):
        values = np.array([row[2 + k] for row in rows])
        ax.barh(y, values, left=left, color=colour, height=0.65, label=label)
        for yi, lo, value in zip(y, left, values, strict=True):
            # Inside a segment only when it is wide enough for its label (no overlaps).
            if value >= 0.07:
                ax.text(
                    lo + value / 2,
                    yi,
                    f"{value:.1%}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if k < 2 else "black",
                )
        left += values
    # Mistakes about people, to the right of each bar: citizens labelled noncitizen and
    # noncitizens labelled citizen, as a share and in persons.
    for yi, row in zip(y, rows, strict=True):
        status, persons = row[0], row[1]
        wrong = row[3] if status in citizen_classes else row[2]
        what = "labelled noncitizen" if status in citizen_classes else "labelled citizen"
        ax.text(
            1.02,
            yi,
            f"{what}:\n{wrong:.2%} ({round(wrong * persons):,})",
            ha="left",
            va="center",
            fontsize=7,
            fontweight="bold" if wrong > 0 else "normal",
            color=PALETTE["vermillion"] if wrong > 0 else "black",
            clip_on=False,
        )
    ax.set_yticks(
        y, [f"{STATUS_LABELS.get(row[0], row[0])}\n({int(row[1]):,} persons)" for row in rows]
    )
    ax.set_xlim(0, 1)
    ax.set_xticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.xaxis.set_major_formatter(PERCENT)
    ax.set_xlabel("share of persons of this true status")
    ax.grid(axis="y", visible=False)
    ax.spines["right"].set_visible(False)
    fig.get_layout_engine().set(rect=(0, 0, 0.84, 1))
    fig.legend(loc="outside upper center", ncols=3, fontsize=7.5)
    return fig


def method_errors(metrics: pd.DataFrame, methods: list[str], keys: dict) -> Figure | None:
    """Block MAE/RMSE (persons) and tract/county relative errors, model against baselines."""
    from reports.summaries import metric

    quantities = [q for q in ("citizens", "cvap") if q in set(metrics["quantity"])]
    if not quantities or not methods:
        return None
    fig, (left, right) = new_figure(FULL, ncols=2)
    groups = [(q, name) for q in quantities for name in ("MAE", "RMSE")]
    width = 0.8 / len(methods)
    for i, method in enumerate(methods):
        values = [metric(metrics, method, q, *keys[name]) for q, name in groups]
        left.bar(
            np.arange(len(groups)) + i * width,
            [v if v is not None else np.nan for v in values],
            width,
            color=METHOD_COLOURS.get(method, PALETTE["purple"]),
            label=_method_label(method),
        )
    left.set_xticks(
        np.arange(len(groups)) + width * (len(methods) - 1) / 2,
        [f"{n}\n{q}" for q, n in groups],
        fontsize=7.5,
    )
    left.set_ylabel("block error (persons)")
    all_quantities = [
        q for q in ("citizens", "noncitizens", "cvap") if q in set(metrics["quantity"])
    ]
    levels = [(q, lvl) for q in all_quantities for lvl in ("tract", "county")]
    # Dots, not bars: noncitizen relative errors are an order larger, so the axis is
    # logarithmic, and a bar on a log axis starts from an arbitrary origin.
    markers = {"model": "o", "published": "s", "record_rule": "^", "census_style": "D"}
    for i, method in enumerate(methods):
        values = [metric(metrics, method, q, *keys[lvl]) for q, lvl in levels]
        right.plot(
            np.arange(len(levels)) + i * width,
            [abs(v) if v is not None and abs(v) > 0 else np.nan for v in values],
            markers.get(method, "o"),
            ms=5,
            color=METHOD_COLOURS.get(method, PALETTE["purple"]),
        )
    right.set_xticks(
        np.arange(len(levels)) + width * (len(methods) - 1) / 2,
        [
            f"{lvl}\n" + {"citizens": "cit.", "noncitizens": "noncit.", "cvap": "CVAP"}.get(q, q)
            for q, lvl in levels
        ],
        fontsize=6.5,
    )
    right.set_yscale("log")
    right.yaxis.set_major_formatter(mpl.ticker.FuncFormatter(lambda v, _: f"{v * 100:g}%"))
    right.set_ylabel("mean absolute relative error")
    fig.legend(
        *left.get_legend_handles_labels(),
        loc="outside upper center",
        ncols=len(methods),
        fontsize=7.5,
    )
    return fig


def sensitivity(table: pd.DataFrame | None, band: float = 0.03) -> Figure | None:
    """One row per sweep run (``summaries.sensitivity_table``): block MAE of the model and the
    baselines (left) and the model's 90% coverage (right); the baseline run as dashed lines."""
    if table is None or table.empty or table["model_mae"].isna().all():
        return None
    table = table.reset_index(drop=True)
    labels = [
        "unchanged (baseline)"
        if knob == "baseline"
        else f"{knob.replace('_', ' ')} = {value.replace('_', ' ')}"
        for knob, value in zip(table["knob"], table["value"], strict=True)
    ]
    y = np.arange(len(table))
    fig, (left, right) = new_figure(
        (TEXT_WIDTH_IN, 0.24 * len(table) + 1.3),
        ncols=2,
        sharey=True,
        gridspec_kw={"width_ratios": [1.4, 1]},
    )
    for column, method, marker in (
        ("record_rule_mae", "record_rule", "s"),
        ("census_style_mae", "census_style", "^"),
        ("model_mae", "model", "o"),
    ):
        if column in table and table[column].notna().any():
            left.plot(
                table[column].astype(float),
                y,
                marker,
                ms=5 if method == "model" else 4,
                color=METHOD_COLOURS[method],
                label=_method_label(method),
                alpha=1 if method == "model" else 0.85,
            )
    base = table[table["knob"] == "baseline"]
    if len(base) and pd.notna(base["model_mae"].iloc[0]):
        left.axvline(float(base["model_mae"].iloc[0]), color=PALETTE["grey"], ls="--", lw=1)
    left.set_xlabel("block MAE, citizens (persons)")
    left.set_xlim(left=0)
    left.set_yticks(y, labels, fontsize=7.5)
    left.set_ylim(len(table) - 0.5, -0.5)
    coverage = table["model_coverage"].astype(float)
    right.axvspan(0.9 - band, 0.9 + band, color="#E5E5E5", zorder=0)
    right.axvline(0.9, color=PALETTE["black"], ls="--", lw=0.9, label="nominal 90%")
    right.plot(coverage, y, "o", ms=5, color=METHOD_COLOURS["model"])
    low = float(np.nanmin(coverage)) if coverage.notna().any() else 0.8
    right.set_xlim(max(0.0, min(low, 0.85) - 0.05), 1.0)
    right.xaxis.set_major_formatter(PERCENT)
    right.set_xlabel("model 90% coverage, citizens")
    for ax in (left, right):
        ax.grid(axis="y", visible=False)
    handles, names = left.get_legend_handles_labels()
    h2, n2 = right.get_legend_handles_labels()
    fig.legend(handles + h2, names + n2, loc="outside upper center", ncols=4, fontsize=7.5)
    return fig


# ---------------------------------------------------------------- privacy and run


NOISE_PANELS = (
    ("mae", "Block MAE (persons)", None),
    ("coverage90", "Block 90% coverage, equal-tailed (inclusive)", "pct"),
    ("width", "Mean 90% interval width (persons)", None),
    ("county_mean", "County total: mean abs. relative error", "pct"),
)
FIT_COLOURS = {"exact": PALETTE["blue"], "published": PALETTE["purple"]}


def noise_cost(table: pd.DataFrame) -> Figure | None:
    """The exact-fit model against the published (noisy) estimates, metric by metric:
    paired bars per quantity, one panel per metric."""
    if table is None or table.empty:
        return None
    panels = [p for p in NOISE_PANELS if (table["metric"] == p[0]).any()]
    if not panels:
        return None
    quantities = list(dict.fromkeys(table["quantity"]))
    cols = 2
    rows = math.ceil(len(panels) / cols)
    fig, axes = new_figure((TEXT_WIDTH_IN, 2.0 * rows + 0.5), nrows=rows, ncols=cols, squeeze=False)
    x = np.arange(len(quantities))
    width = 0.38
    for ax, (key, title, fmt) in zip(axes.flat, panels, strict=False):
        part = table[table["metric"] == key].set_index("quantity").reindex(quantities)
        for offset, column, label in (
            (-width / 2, "exact", "exact fit (not published)"),
            (width / 2, "published", "published (fit to noisy tables)"),
        ):
            values = part[column].astype(float).to_numpy()
            ax.bar(x + offset, values, width, color=FIT_COLOURS[column], label=label)
            for xi, value in zip(x + offset, values, strict=True):
                if not np.isfinite(value):
                    continue
                text = f"{value:.1%}" if fmt == "pct" else f"{value:.2f}"
                if key == "coverage90":  # inside the bar, clear of the nominal line
                    ax.text(
                        xi,
                        value - 0.03,
                        text,
                        ha="center",
                        va="top",
                        fontsize=6.5,
                        color="white",
                        rotation=90,
                    )
                else:
                    ax.text(xi, value, text, ha="center", va="bottom", fontsize=6.5)
        if key == "coverage90":
            ax.axhline(0.9, color=PALETTE["black"], ls="--", lw=0.9, label="nominal 90%")
            ax.set_ylim(0, 1.08)
        else:
            ax.set_ylim(0, float(np.nanmax(part[["exact", "published"]].to_numpy(float))) * 1.2)
        if fmt == "pct":
            ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=None))
        ax.set_xticks(x, quantities)
        ax.set_title(title, fontsize=8.5)
        ax.grid(axis="x", visible=False)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    handles, labels = [], []
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="outside upper center", ncols=3, fontsize=7.5)
    return fig


def noise_shift(blocks: pd.DataFrame, exact: pd.DataFrame | None) -> Figure | None:
    """Published block estimate against the exact fit's, for noncitizens and CVAP, coloured
    by block population: how far the privacy noise moves each block."""
    if exact is None or exact.empty:
        return None
    merged = blocks.merge(exact, on="block_id", how="inner", suffixes=("", "_exact"))
    merged = merged[merged["population"] > 0]
    if merged.empty:
        return None
    fig, axes = new_figure((TEXT_WIDTH_IN, 3.0), ncols=2)
    norm = mpl.colors.LogNorm(
        vmin=max(1, merged["population"].min()), vmax=merged["population"].max()
    )
    for ax, quantity in zip(axes, ("noncitizens", "cvap"), strict=True):
        x = merged[quantity].astype(float)
        y = merged[f"{quantity}_est"].astype(float)
        points = ax.scatter(
            x, y, c=merged["population"], cmap="viridis", norm=norm, s=7, alpha=0.75, linewidths=0
        )
        top = float(max(x.max(), y.max()) * 1.05 + 1)
        ax.plot([0, top], [0, top], color=PALETTE["grey"], ls="--", lw=1)
        ax.set_xlim(0, top)
        ax.set_ylim(0, top)
        ax.set_aspect("equal")
        shift = float((y - x).abs().mean())
        ax.set_title(f"block {quantity}: mean |shift| {shift:.1f} persons", fontsize=8.5)
        ax.set_xlabel("exact fit, posterior mean (persons)")
        ax.set_ylabel("published estimate (persons)")
    bar = fig.colorbar(points, ax=axes, shrink=0.85)
    bar.set_label("block population (log scale)")
    return fig


def privacy_ledger(ledger: pd.DataFrame) -> Figure | None:
    """Budget (rho) spent by each measurement, with the running total."""
    if ledger.empty or ledger["rho"].isna().all():
        return None
    fig, ax = new_figure((HALF[0] * 1.3, 0.35 * len(ledger) + 1.0))
    y = np.arange(len(ledger))[::-1]
    ax.barh(y, ledger["rho"].fillna(0), color=PALETTE["blue"], label="rho of the measurement")
    ax.plot(ledger["running_rho"], y, "D", color=PALETTE["vermillion"], label="running total")
    ax.set_yticks(y, ledger["measurement"], fontsize=7.5)
    ax.set_xlabel("zCDP budget rho")
    fig.legend(loc="outside upper center", ncols=2)
    return fig


def runtime(benchmarks: pd.DataFrame | None, top: int = 30) -> Figure | None:
    """Wall-clock seconds per workflow step, coloured by stage (Snakemake benchmark files)."""
    if benchmarks is None or benchmarks.empty:
        return None
    table = benchmarks.head(top).iloc[::-1]
    stages = list(dict.fromkeys(benchmarks["stage"])) if "stage" in table else []
    colours = {stage: CYCLE[k % len(CYCLE)] for k, stage in enumerate(stages)}
    fig, ax = new_figure((TEXT_WIDTH_IN, 0.2 * len(table) + 1.0))
    y = np.arange(len(table))
    bar_colours = [colours.get(st, PALETTE["green"]) for st in table.get("stage", [])] or None
    ax.barh(y, table["seconds"], color=bar_colours or PALETTE["green"], height=0.75)
    ax.set_yticks(y, table["step"], fontsize=7)
    for i, seconds in enumerate(table["seconds"]):
        ax.text(seconds, i, f" {seconds:,.1f} s", va="center", fontsize=6.5)
    ax.set_xlim(right=float(table["seconds"].max()) * 1.18 + 0.1)
    ax.set_xlabel("wall-clock time (seconds)")
    ax.grid(axis="y", visible=False)
    if stages:
        totals = benchmarks.groupby("stage")["seconds"].sum()
        handles = [Rectangle((0, 0), 1, 1, color=colours[st]) for st in stages]
        labels = [f"{st} ({totals[st]:,.0f} s)" for st in stages]
        fig.legend(
            handles, labels, loc="outside upper center", ncols=min(len(stages), 4), fontsize=7
        )
    return fig


TALL_SIZE = TALL  # re-exported for callers that want the tall size
