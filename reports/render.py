"""Render the run report: one Jinja2 template -> self-contained HTML and, via WeasyPrint, PDF.

Figures are embedded as ``data:`` URIs (PNG at ``report.dpi`` or SVG), the stylesheet is inlined,
and the template links to nothing outside the file, so the HTML can be mailed or archived alone.

Command line (outside Snakemake)::

    python -m reports.render --configfile config/scenarios/tiny.yaml
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import logging
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pandas as pd

from pipeline_common.config import config_hash
from reports import figures as F
from reports import headline as H
from reports import narrative as N
from reports import summaries as S
from reports import usage as U
from reports.data import METHODS, first_key, load_run, numeric
from reports.style import METHOD_LABELS, data_uri, figure_bytes

log = logging.getLogger(__name__)
TEMPLATES = Path(__file__).resolve().parent / "templates"

# Section ids and titles, in order; the template and the tests use the same list.
SECTIONS = (
    ("summary", "Summary"),
    ("using", "Using these estimates"),
    ("sources", "Sources and governance"),
    ("linkage", "Linkage quality"),
    ("model", "Model"),
    ("estimates", "Estimates"),
    ("privacy", "Privacy"),
    ("validation", "Validation against truth"),
    ("sensitivity", "Sensitivity"),
    ("reproducibility", "Reproducibility"),
    ("glossary", "Glossary"),
)
REPORT_VERSIONS = ("matplotlib", "arviz", "arviz-plots", "jinja2", "weasyprint", "pandas")
SCHEMA = Path(__file__).resolve().parent.parent / "workflow" / "schemas" / "report.schema.yaml"


def _schema_defaults() -> dict[str, Any]:
    """Defaults of every ``report.*`` key, from the stage's schema (one source of truth)."""
    import yaml

    schema = yaml.safe_load(SCHEMA.read_text(encoding="utf-8"))
    return {key: spec["default"] for key, spec in schema["properties"].items()}


DEFAULT_SETTINGS = _schema_defaults()


GLOSSARY = (
    ("CVAP", "citizen voting-age population: citizens aged 18 or more."),
    (
        "90% interval",
        "the 5% and 95% quantiles of the posterior draws: the true count lies inside with "
        "probability 90% if the model is right. Coverage = share of units where it did.",
    ),
    (
        "MOE",
        "margin of error, as the Census Bureau publishes it: half the width of the 90% "
        "interval (ACS: 1.645 standard errors).",
    ),
    (
        "PIT, randomized PIT",
        "probability integral transform: where the truth falls in the distribution of the "
        "draws (0 to 1). For counts a random point within the truth's probability step is "
        "taken, so that a well-calibrated model gives uniform values; a block is covered at "
        "90% when its PIT lies between 0.05 and 0.95. Equal-tailed intervals of small counts "
        "read inclusively cover more than 90% even when the model is right, so blocks are "
        "judged by the PIT.",
    ),
    (
        "R-hat",
        "rank-normalized split R-hat: compares the chains of the sampler; above 1.01 they "
        "have not sampled the same distribution.",
    ),
    (
        "ESS (bulk, tail)",
        "effective sample size: how many independent draws the correlated draws are worth, "
        "in the middle (bulk) and in the 5% and 95% tails (tail) of the posterior.",
    ),
    (
        "divergence",
        "a sampler step that failed numerically; any means part of the posterior may be missed.",
    ),
    (
        "zCDP, rho",
        "zero-concentrated differential privacy with parameter rho: the privacy loss of the "
        "release; smaller rho means more noise and more privacy. Budgets of several "
        "measurements add up.",
    ),
    (
        "epsilon, delta",
        "the same guarantee as (epsilon, delta)-differential privacy: any outcome becomes at "
        "most e^epsilon times more or less likely when one person's data change, except with "
        "probability delta.",
    ),
    (
        "L2 sensitivity, d_in",
        "how far (Euclidean distance) one person can move a table of counts; here one person "
        "moves one unit between two cells, so sqrt(2). OpenDP calls this input distance d_in "
        "and scales the noise to it.",
    ),
    (
        "exact fit / privacy fit",
        "the same model fitted to the exact tables (never published: the method at its best) "
        "and to the noisy measurements (the source of every published number).",
    ),
    (
        "evidence pattern",
        "what every linked source says about one person (no link, citizen, naturalized, "
        "noncitizen, ...), the unit the model counts.",
    ),
    (
        "posterior predictive check",
        "data replicated from the fitted model and compared with the observed data; observed "
        "values outside the replicated interval show what the model fails to reproduce.",
    ),
    (
        "reliability flag",
        "high / medium / low per block from the relative width of its interval and its size "
        "(section 'Using these estimates').",
    ),
)


def code_commit() -> str | None:
    """The code's git commit (with ``+ uncommitted changes`` when the work tree differs), or
    None outside a git checkout."""
    import subprocess

    repo = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + (" + uncommitted changes" if dirty else "") if head else None


@dataclass
class Rendered:
    """The rendered report and what went into it (for logs and tests)."""

    html: str
    figures: list[dict[str, Any]] = field(default_factory=list)
    sections: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- formatting filters


def fmt_num(value: Any, digits: int = 0) -> str:
    """Thousands separators; an en dash for missing values."""
    number = numeric(value)
    if number is None:
        return "–"
    return f"{number:,.{digits}f}"


def fmt_pct(value: Any, digits: int = 1) -> str:
    """A share as a percentage."""
    number = numeric(value)
    return "–" if number is None else f"{number * 100:.{digits}f}%"


def fmt_sig(value: Any, digits: int = 3) -> str:
    """Significant digits (budgets, R-hat)."""
    number = numeric(value)
    return "–" if number is None else f"{number:.{digits}g}"


def fmt_interval(lo: Any, hi: Any, digits: int = 0) -> str:
    """``lo – hi`` or an en dash."""
    if numeric(lo) is None or numeric(hi) is None:
        return "–"
    return f"{fmt_num(lo, digits)} – {fmt_num(hi, digits)}"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(num=fmt_num, pct=fmt_pct, sig=fmt_sig)
    env.globals.update(interval=fmt_interval, method_label=lambda m: METHOD_LABELS.get(m, m))
    return env


# ---------------------------------------------------------------- figures


class FigureBook:
    """Collects figures in order, embeds them and numbers them as the reader meets them."""

    def __init__(self, fmt: str, dpi: int) -> None:
        self.fmt, self.dpi = fmt, dpi
        self.items: dict[str, dict[str, Any]] = {}

    def add(self, key: str, fig, title: str, caption: str) -> None:
        """Embed ``fig`` (None: nothing to show, the template says so)."""
        if fig is None:
            return
        payload = figure_bytes(fig, self.fmt, self.dpi)
        if self.fmt == "png":  # printed width = pixels / dpi (bbox "tight" changes the size)
            width_in = int.from_bytes(payload[16:20], "big") / self.dpi
        else:
            width_in = float(fig.get_size_inches()[0])
        self.items[key] = {
            "key": key,
            "number": len(self.items) + 1,
            "title": title,
            "caption": caption,
            "uri": data_uri(payload, self.fmt),
            "bytes": len(payload),
            "width_in": round(width_in, 2),
        }


def _versions(metadata: dict) -> list[dict[str, str]]:
    rows = []
    published = first_key(metadata, "versions", "software_versions", "software", default={})
    if isinstance(published, dict):
        rows += [
            {"package": k, "version": str(v), "origin": "published/metadata.json"}
            for k, v in sorted(published.items())
        ]
    known = {r["package"] for r in rows}
    rows.append(
        {
            "package": "python (report)",
            "version": platform.python_version(),
            "origin": "report stage",
        }
    )
    for package in REPORT_VERSIONS:
        if package in known:
            continue
        try:
            version = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
        rows.append({"package": package, "version": version, "origin": "report stage"})
    return rows


def _records(frame: pd.DataFrame | None, limit: int | None = None) -> list[dict[str, Any]]:
    if frame is None or frame.empty:
        return []
    frame = frame if limit is None else frame.head(limit)
    return frame.replace({np.nan: None}).to_dict("records")


def _area_rows(table: pd.DataFrame, level: str, limit: int) -> tuple[list[dict], int]:
    table = table.copy()
    if "noncitizens_est" in table and "population" in table:
        table["noncitizen_share"] = table["noncitizens_est"] / table["population"].where(
            table["population"] > 0
        )
    table = table.sort_values("population", ascending=False) if "population" in table else table
    return _records(table, limit), len(table)


def build_context(ctx: dict[str, Any], settings: dict[str, Any]) -> tuple[dict, FigureBook]:
    """All template variables and the figures, from a loaded run (``reports.data.load_run``)."""
    book = FigureBook(settings["figure_format"], int(settings["dpi"]))
    config = ctx["config"]
    blocks = ctx["blocks"]

    # --- summary numbers
    headline = S.headline(ctx)
    privacy = S.privacy_parameters(ctx)
    metrics = S.method_metrics(ctx)
    methods = S.methods_present(metrics) if not metrics.empty else []
    # The published estimates beside the exact fit and the baselines (tables and figure).
    metrics_all = H.with_published(metrics, ctx.get("published_eval"))
    methods_all = S.methods_present(metrics_all) if not metrics_all.empty else []
    curve = H.with_block_pit(S.coverage_curve(ctx), ctx.get("calibration_eval"))

    # --- sources and linkage
    sources = S.sources_table(ctx)
    recall = S.recall_by_status(ctx)
    n_links = int(sum(ctx["link_counts"].values())) if ctx["link_counts"] else 0
    book.add(
        "sources",
        F.source_records(sources),
        "Records by source",
        "Records each agency holds (grey), records withheld by policy before linkage "
        "(vermillion) and records linked to a census person (blue), counts from zero. The gap "
        "between grey and blue is what linkage lost; withheld records never reached it.",
    )
    book.add(
        "linkage_quality",
        F.linkage_quality(sources),
        "Precision and recall by source",
        "Precision (circles): share of a source's links that join the right person. Recall "
        "(diamonds): share of the source's records of enumerated persons that were linked. "
        "Points far left of 100% mark the sources whose evidence is least complete.",
    )
    book.add(
        "recall_by_status",
        F.recall_by_status(recall),
        "Recall by true status class",
        "Share of each source's true records that were linked, split by the person's true "
        "status (known only because the population is synthetic). Darker cells are classes "
        "the linkage misses more often; uneven rows mean missing links carry information.",
    )
    hist_kind, histograms = S.link_histograms(ctx)
    if histograms:
        scale = "match weight (log2 Bayes factor)" if hist_kind == "weight" else "match probability"
        match_caption = (
            f"Link confidence ({scale}) of every accepted link, by source, on a symmetric log "
            "count scale: correct links as blue bars, false links (known from the synthetic "
            "truth) as a vermillion outline. False links at high confidence are errors the "
            "model cannot discount; at low confidence it can treat them as weak evidence."
        )
    else:
        match_caption = (
            f"Distribution of the Fellegi-Sunter match probability of the {n_links:,} accepted "
            "links, by source (log counts). Mass near 1 is confident linkage; the share below "
            "0.9 in each title is the part the model treats as weaker evidence."
        )
    book.add(
        "match_probability",
        F.match_probabilities(ctx["match_probabilities"], histograms, hist_kind),
        "Link confidence of accepted links",
        match_caption,
    )

    # --- model
    diag_raw = ctx.get("diagnostics") or {}
    conv_fig, conv_stats = F.convergence(ctx["posterior"])
    book.add(
        "convergence",
        conv_fig,
        "R-hat and effective sample size of the exact fit",
        "Distribution over every posterior parameter of the exact fit of the rank-normalized R-hat (left; "
        "values above the dashed 1.01 line signal chains that disagree) and bulk ESS (right; "
        "values left of the dashed line give noisy interval ends).",
    )
    book.add(
        "rank",
        F.rank_plot(
            ctx["posterior"],
            int(settings["rank_plot_panels"]),
            first_key(first_key(diag_raw, "top_parameters", default={}), "names"),
        ),
        "Rank plots of the exact fit",
        "What to see: each chain's line should stay inside the grey band; a line above it at "
        "one end and below at the other means that chain sat higher or lower than the others. "
        "All chains' draws of one parameter are ranked together, and each chain's ranks are "
        "counted in 20 bins (draws per bin; the dashed line is the count if the chains agree, "
        "the grey band its 99% range). Panels: the model's top-level parameters (s.d. of tract "
        "effects by class, county intercepts, age effects) and the three entries with the "
        "largest R-hat.",
    )
    privacy_posterior = ctx.get("privacy_posterior")
    private_diag = ctx.get("privacy_diagnostics") or {}
    conv_fig_p, conv_stats_p = F.convergence(privacy_posterior)
    book.add(
        "convergence_privacy",
        conv_fig_p,
        "R-hat and effective sample size of the privacy fit (published)",
        "The same check for the fit whose draws are published: R-hat of every parameter "
        "(left; bars right of the dashed 1.01 line are parameters whose chains disagree) and "
        "bulk ESS (right; bars left of the dashed 400 line have noisy interval ends).",
    )
    book.add(
        "rank_privacy",
        F.rank_plot(
            privacy_posterior,
            int(settings["rank_plot_panels"]),
            first_key(first_key(private_diag, "top_parameters", default={}), "names"),
        ),
        "Rank plots of the privacy fit (published)",
        "As for the exact fit: lines inside the grey band mean the chains sample the same "
        "distribution; panels are the top-level parameters and the three entries with the "
        "largest R-hat of the privacy fit.",
    )
    book.add(
        "behaviour_profile",
        F.source_behaviour_profile(S.behaviour_table(ctx.get("diagnostics"))),
        "What each source says about each latent class",
        "Posterior mean probability of each source's category for persons of each latent "
        "class (categories of different confidence summed; grey: no link). A source that "
        "separates the classes well has differently coloured bars per class; the Numident's "
        "vermillion share for naturalized citizens is the stale 'noncitizen' record.",
    )
    behaviour = S.source_behaviour(ctx)
    private_behaviour = S.source_behaviour(ctx, fit="privacy")
    both_fits = not private_behaviour.empty and not behaviour.empty
    book.add(
        "behaviour",
        F.source_behaviour(
            pd.DataFrame(behaviour.to_dict("records") + private_behaviour.to_dict("records"))
            if both_fits
            else behaviour
        ),
        "Estimated source behaviour against the generating values",
        "What to see: bars that do not cross the dashed zero line (marked ✗) are source "
        "behaviours the fit learned wrongly. Each row is a behaviour whose generating value is "
        "known (truth/parameters.json; 'links' rows: the source's realized coverage of the "
        "class times its share of records shared and linked), e.g. how often the Numident "
        "still says 'noncitizen' for a naturalized citizen, stated given a link. Marker: "
        "posterior mean minus the generating value; bar: its 90% interval, in percentage "
        "points. "
        + (
            "Blue circles: the exact fit; purple squares: the privacy fit to the noisy tables "
            "(the fit that is published)."
            if both_fits
            else ""
        ),
    )
    ppc = ctx.get("ppc")
    misfits = (
        ppc[~ppc["inside"]].sort_values("miss", ascending=False).head(8)
        if ppc is not None and not ppc.empty
        else None
    )
    private_ppc = ctx.get("privacy_ppc")
    private_misfits = (
        private_ppc[~private_ppc["inside"]].sort_values("miss", ascending=False).head(8)
        if private_ppc is not None and not private_ppc.empty
        else None
    )
    book.add(
        "ppc",
        F.posterior_predictive(ppc, misfits),
        "Posterior predictive check of the exact fit",
        "Each point is one evidence pattern (what every source says about a person), summed "
        "over all blocks: its observed count against the count replicated from the posterior "
        "(dot: mean, bar: 90% interval), both axes on a symmetric log scale. Patterns the model "
        "reproduces lie on the dashed diagonal with their bar across it (blue); vermillion "
        "points are patterns whose observed count falls outside the replicated 90% interval, "
        "numbered as in the table below. Many such points mean the sources are not "
        "independent given the latent class, as the model assumes.",
    )

    book.add(
        "ppc_privacy",
        F.posterior_predictive(private_ppc, private_misfits),
        "Posterior predictive check of the privacy fit (published)",
        "The same check for the fit whose draws are published, against the data it read: each "
        "point is one evidence pattern, its noisy total (the county x age x pattern "
        "measurements summed) against totals replicated from the privacy fit's posterior with "
        "noise of the same variance added. Vermillion points lie outside their replicated 90% "
        "interval; numbers as in the table below the figure.",
    )

    # --- estimates
    share = blocks["noncitizens_est"] / blocks["population"].where(blocks["population"] > 0)
    width = (blocks["noncitizens_hi90"] - blocks["noncitizens_lo90"]) / blocks["population"].where(
        blocks["population"] > 0
    )
    flags = (
        blocks["reliability"]
        .astype(str)
        .str.lower()
        .isin(["low", "unreliable", "false", "0", "suppress", "flag"])
        if "reliability" in blocks
        else None
    )
    book.add(
        "map_share",
        F.block_map(
            blocks,
            ctx["geography"],
            share,
            "estimated noncitizen share of block population",
            "viridis",
            vmax=float(min(1.0, share.quantile(0.98) or 1)),
        ),
        "Map: estimated noncitizen share",
        "Each square is a block on the synthetic plane (counties side by side at one scale; "
        "black lines are tract boundaries, labels the tract code, digits 6-11 of a block's "
        "GEOID), coloured by the published noncitizen estimate divided by the "
        f"block's population: median block {share.median():.0%}, "
        f"{int((share > 0.25).sum()):,} of {int(share.notna().sum()):,} blocks above 25%. "
        + "; ".join(
            f"county {county}: {value:.0%}"
            for county, value in (
                blocks.groupby("county_id")["noncitizens_est"].sum()
                / blocks.groupby("county_id")["population"].sum().where(lambda v: v > 0)
            ).items()
        )
        + " noncitizen overall. Read each block with the uncertainty map below.",
    )
    book.add(
        "map_width",
        F.block_map(
            blocks,
            ctx["geography"],
            width,
            "90% interval width for noncitizens / block population",
            "cividis",
            vmax=float(min(1.0, max(width.quantile(0.98) or 0.0, 0.05))),
            hatch_mask=flags,
        ),
        "Map: uncertainty of the noncitizen estimate",
        "The same blocks coloured by the width of the 90% interval for noncitizens relative "
        f"to the block's population (median {width.median():.0%}; the colour scale ends at "
        "the 98th percentile; tract codes as in the map above); hatched blocks carry the low-reliability flag. Bright "
        "and hatched blocks are those whose estimate should not be read alone.",
    )
    book.add(
        "width_by_size",
        F.interval_width_by_size(blocks),
        "Interval width by block size",
        "90% interval width for noncitizens against block population (log scale): in "
        "persons (left) and as a share of the population (right), coloured by the published "
        "reliability flag. Absolute width grows with size while relative width shrinks: "
        "small blocks are the least reliable.",
    )

    # --- privacy
    ledger = S.ledger_table(ctx.get("ledger"))
    book.add(
        "ledger",
        F.privacy_ledger(ledger),
        "Privacy budget by measurement",
        "zCDP budget rho spent on each noisy measurement (bars) and the running total "
        "(diamonds); the total is the release's privacy loss.",
    )

    # Under privacy mode none nothing was noised: publication is the exact fit itself.
    noised = ctx.get("privacy_mode") != "none"
    noise = S.noise_cost(ctx) if noised else pd.DataFrame()
    noise_sentences = (
        N.noise_sentences(noise, float(settings["coverage_tolerance"]))
        if ctx.get("privacy_mode") != "none"
        else []
    )
    book.add(
        "noise_cost",
        F.noise_cost(noise),
        "What the privacy noise costs in accuracy",
        "The same model fitted twice and checked against the same truth: blue bars are the "
        "exact fit (exact cells, never published), purple bars the published estimates "
        "(the refit to the noisy measurements, post-processed). Higher bars in the error and "
        "width panels are the price of privacy. The coverage panel uses equal-tailed intervals "
        "read inclusively, which over-cover small counts even for a right model: a bar near "
        "the dashed 90% line does not mean the intervals are calibrated (the randomized PIT of "
        "the summary does).",
    )

    book.add(
        "noise_shift",
        F.noise_shift(blocks, ctx.get("exact_blocks")) if noised else None,
        "How far the noise moves each block",
        "Each dot is a block: its published estimate (the fit to noisy measurements) against "
        "the exact fit's posterior mean, coloured by the block's population. Dots on the "
        "dashed diagonal were not moved by the privacy noise; the spread around it is the "
        "noise as it reaches the published numbers, largest in relative terms for small "
        "(dark) blocks. No truth is used here.",
    )

    # --- validation
    calibration = ctx.get("calibration")
    multi_level = calibration is not None and not calibration.empty
    book.add(
        "calibration",
        F.calibration(calibration if multi_level else curve),
        "Interval calibration",
        (
            "What to see: lines below the dashed diagonal are intervals too narrow "
            "(overconfident), above it too wide. Share of blocks whose true count falls inside "
            "the central interval of each nominal level (50% to 95%), per method, from the block "
            "draws and the synthetic truth, by the randomized PIT (the summary's measure, here "
            "drawn with the report's own random numbers: differences of a few tenths of a point "
            "at 90% are that randomness). 'Published' are the released intervals, from the fit "
            "to the noisy measurements."
        )
        if multi_level
        else "Share of blocks whose true count falls inside the interval, per method and "
        "quantity (randomized PIT for discrete counts where evaluated). Against the nominal "
        "level: points below the dashed line or left of the grey band are intervals that are "
        "too narrow (overconfident); above it or to its right, too wide.",
    )
    keys = {"MAE": S.MAE_KEYS, "RMSE": S.RMSE_KEYS, "tract": S.TRACT_KEYS, "county": S.COUNTY_KEYS}
    book.add(
        "errors",
        F.method_errors(metrics_all, methods_all, keys),
        "Error by geography level",
        "What to see: where the purple bars (the published estimates) stand against the "
        "baselines. Left: block mean absolute and root-mean-square error in persons (citizens "
        "and CVAP; noncitizens' block errors equal citizens', population being exact). Right: "
        "mean absolute relative error of tract and county totals, noncitizens included. Bars: "
        "the exact fit (never published), the published estimates, the record rule and the "
        "Census-style baseline (both read the exact linked records).",
    )

    calibration_rows, calibration_summary = S.calibration_levels(ctx.get("calibration_eval"))
    book.add(
        "calibration_levels",
        F.calibration_levels(calibration_summary),
        "Coverage at every level users sum to",
        "What to see: points below the grey band are sizes of area whose intervals are too "
        "narrow. Share of units whose true count lies inside the 90% interval of their summed "
        "draws, this run: blocks (randomized PIT), block groups, tracts, compact districts "
        "(runs of consecutive blocks of about 300 to 30,000 persons), counties and the run "
        "total; purple squares the published draws, blue circles the exact fit (never "
        "published); Wilson 95% error bars. The right-hand levels are a handful of units each "
        "(evaluation/calibration.json).",
    )
    comparison_rows, comparison_summary, comparison_facts = S.comparison_tables(
        ctx.get("comparison_eval")
    )
    book.add(
        "gain_over_acs",
        F.gain_over_acs(comparison_summary),
        "What you gain over the ACS disaggregation used today",
        "Typical error (summed absolute error over the summed true count) of blocks, block "
        "groups, tracts and compact districts (runs of consecutive blocks of about 300 to "
        "30,000 persons), against persons per district (log scales). Orange: today's practice, "
        "the ACS block-group estimate pushed down to blocks in proportion to population "
        "(voting-age population for CVAP); purple: this project's published estimates; blue, "
        "dashed: the exact fit (never published). Labels: how many times the published error "
        "the ACS disaggregation's error is (evaluation/comparison.json).",
    )
    cost = S.person_cost(ctx)
    raw_cost = first_key(ctx.get("estimates_eval") or {}, "record_rule_cost") or {}
    book.add(
        "record_rule_cost",
        F.record_rule_cost(raw_cost.get("by_status") if isinstance(raw_cost, dict) else None),
        "What the record rule decides, by true status",
        "Each bar is the enumerated persons of one true status (known only because the data "
        "are synthetic): the share the record rule labels citizen (blue), noncitizen "
        "(vermillion) and leaves without a definitive record (grey; the baseline then uses "
        "the county's citizen share). Bold numbers are mistakes about people: citizens "
        "labelled noncitizen, above all naturalized citizens with a stale Numident record, "
        "and noncitizens labelled citizen.",
    )

    # --- sensitivity and run
    book.add(
        "sensitivity",
        F.sensitivity(S.sensitivity_table(ctx.get("sensitivity"))),
        "Sensitivity of the model",
        "One row per sweep run, knob changed one at a time. Left: block mean absolute error "
        "for citizens of the model (blue circles) and of the two baselines; the dashed line is "
        "the model in the unchanged run. Right: the model's 90% interval coverage against the "
        "nominal level (grey band: within tolerance). Runs where the blue circle is right of "
        "the baselines, or the coverage dot left of the band, are conditions in which the "
        "model should not be trusted as is.",
    )
    book.add(
        "runtime",
        F.runtime(ctx.get("benchmarks")),
        "Run time per step",
        "Wall-clock seconds of each workflow step, from Snakemake's benchmark files.",
    )

    limit = int(settings["max_table_rows"])
    county_rows, n_counties = _area_rows(ctx["counties"], "county_id", limit)
    tract_rows, n_tracts = _area_rows(ctx["tracts"], "tract_id", limit)
    metadata = ctx.get("metadata") or {}
    diag = ctx.get("diagnostics") or {}
    metric_rows = []
    for method in methods_all:
        for quantity in ("citizens", "noncitizens", "cvap"):
            metric_rows.append(
                {
                    "method": method,
                    "quantity": quantity,
                    "mae": S.metric(metrics_all, method, quantity, *S.MAE_KEYS),
                    "rmse": S.metric(metrics_all, method, quantity, *S.RMSE_KEYS),
                    "coverage90": S.coverage90(curve, method, quantity),
                    "width": S.metric(metrics_all, method, quantity, *S.WIDTH_KEYS),
                    "tract": S.metric(metrics_all, method, quantity, *S.TRACT_KEYS),
                    "county": S.metric(metrics_all, method, quantity, *S.COUNTY_KEYS),
                }
            )
    metric_rows = [
        row for row in metric_rows if any(row[k] is not None for k in ("mae", "coverage90"))
    ]
    published_accuracy = S.published_accuracy(ctx.get("published_eval"))
    # Each fit judged by the targets it was held to (model.convergence), or by report.rhat_max /
    # report.ess_min when set; the section 4 sentences use the same thresholds.
    targets, imposed = S.report_targets(config, settings)
    fits = S.fit_diagnostics(ctx, targets, imposed)
    fit_targets = {
        "exact": targets,
        "privacy": targets,
        **{f["fit"]: f.get("targets") or targets for f in fits if f.get("available")},
    }
    privacy_statement = first_key(metadata, "privacy", default={}) or {}
    bench = ctx.get("benchmarks")

    # --- the summary page: every sentence from the evaluation files (reports.headline)
    studies = ctx.get("calibration_studies") or []
    summary_table, summary_headings = H.calibration_table(ctx.get("calibration_eval"))
    summary_findings = H.summary_findings(
        calibration_eval=ctx.get("calibration_eval"),
        studies=studies,
        published_eval=ctx.get("published_eval"),
        estimates_eval=ctx.get("estimates_eval"),
        comparison_eval=ctx.get("comparison_eval"),
        fits=fits,
        privacy_mode=ctx.get("privacy_mode"),
        ppcs=[
            ("exact fit", ppc, "exact tables"),
            ("privacy fit (published)", private_ppc, "noisy county tables"),
        ],
        behaviours=[("exact fit", behaviour)]
        + ([("privacy fit (published)", private_behaviour)] if both_fits else []),
        blocks=blocks,
        reliability_rule=first_key(metadata, "reliability_rule"),
        privacy=privacy,
    )
    for number, study in enumerate(studies):
        book.add(
            f"study_{number}",
            F.calibration_levels(pd.DataFrame(study["data"]["pooled"]), H.band_of(study["data"])),
            f"Calibration study '{study['name']}': coverage against size, replicate worlds pooled",
            f"{len(study['data'].get('seeds') or [])} replicate worlds of scenario "
            f"{Path(str(study['data'].get('scenario', ''))).stem or study['name']}"
            + (
                " with " + ", ".join(Path(c).stem for c in study["data"]["configfiles"])
                if study["data"].get("configfiles")
                else ""
            )
            + ": what to see: points below the grey band are levels where the intervals are "
            "too narrow for sums of that size. Share of units whose 90% interval (5%-95% "
            "quantiles of summed draws) holds the truth, by aggregation level from blocks "
            "(randomized PIT) to the run total, published draws (purple squares) and exact fit "
            "(blue circles), Wilson 95% error bars (units of one world share its errors, so "
            f"they understate the uncertainty) ({study['path']}).",
        )
    study_tables = [
        {
            "name": study["name"],
            "replicates": len(study["data"].get("seeds") or []),
            "rows": H.study_table(study),
            "figure": f"study_{number}",
        }
        for number, study in enumerate(studies)
    ]
    files = U.published_files(Path(ctx["run_dir"]) / "published")
    example = U.district_example(ctx.get("draws"), blocks)
    context = {
        "title": settings["title"],
        "run": config.get("run", Path(ctx["run_dir"]).name),
        "generated": dt.date.today().isoformat() if settings.get("stamp_date") else None,
        "sections": SECTIONS,
        "secno": {sid: number for number, (sid, _) in enumerate(SECTIONS, start=1)},
        "fig": book.items,
        "headline": _records(headline),
        "n_blocks": len(blocks),
        "n_tracts": n_tracts,
        "n_counties": n_counties,
        "population": int(blocks["population"].sum()),
        "privacy": privacy,
        "privacy_sentences": N.privacy_sentences(privacy),
        "sources": _records(sources),
        "linkage_sentences": N.linkage_sentences(sources, recall),
        "diagnostics": {
            "max_rhat": first_key(diag, "max_rhat", default=conv_stats.get("max_rhat")),
            "min_ess_bulk": first_key(diag, "min_ess_bulk", default=conv_stats.get("min_ess_bulk")),
            "min_ess_tail": first_key(diag, "min_ess_tail"),
            "divergences": first_key(diag, "divergences"),
            "sampling_seconds": first_key(diag, "sampling_seconds"),
            "chains": first_key(diag, "chains", "n_chains"),
            "draws": first_key(diag, "draws", "n_draws"),
            "parameters": conv_stats.get("parameters"),
            "sampler": first_key(diag, "sampler"),
            "tune": first_key(diag, "tune"),
            "n_cells": first_key(diag, "n_cells"),
            "n_patterns": first_key(diag, "n_patterns"),
            "n_groups": first_key(diag, "n_groups"),
            "n_params": first_key(diag, "n_params"),
            "exact": first_key(diag, "exact"),
            "classes": first_key(diag, "classes", default=[]),
            "levels": (config.get("model") or {}).get("levels"),
        },
        "diagnostic_sentences": N.diagnostics_sentences(
            diag,
            conv_stats,
            float(fit_targets["exact"]["rhat_max"]),
            float(fit_targets["exact"]["ess_min"]),
            "Exact fit" if ctx.get("privacy_mode") != "none" else "",
        )
        + (
            N.diagnostics_sentences(
                ctx.get("privacy_diagnostics"),
                conv_stats_p,
                float(fit_targets["privacy"]["rhat_max"]),
                float(fit_targets["privacy"]["ess_min"]),
                "Privacy fit (published)",
            )
            if ctx.get("privacy_mode") != "none"
            else []
        ),
        "fits": fits,
        "convergence_banners": N.convergence_banners(fits, ctx.get("privacy_mode")),
        "privacy_classes": first_key(ctx.get("privacy_diagnostics") or {}, "classes", default=[]),
        "privacy_centered_levels": first_key(
            ctx.get("privacy_diagnostics") or {}, "centered_levels", default=None
        ),
        "fits_summary": N.fits_summary_sentence(fits, ctx.get("privacy_mode")),
        "privacy_mode": ctx.get("privacy_mode"),
        "exact_behaviour_sentences": [
            (level, f"Source behaviour learned by the exact fit: {text}")
            for level, text in N.behaviour_sentences(behaviour)
        ],
        "behaviour_sentences": N.behaviour_sentences(behaviour)
        + (N.behaviour_sentences(private_behaviour, "Privacy fit") if both_fits else []),
        "noise": _records(noise),
        "ppc_summary": None
        if ppc is None or ppc.empty
        else {
            "patterns": len(ppc),
            "inside": float(ppc["inside"].mean()),
            "draws": ppc.attrs.get("draws"),
            "persons_outside": float(ppc.loc[~ppc["inside"], "observed"].sum()),
            "persons": float(ppc["observed"].sum()),
        },
        "ppc_misfits": _records(misfits),
        "ppc_sentences": N.ppc_sentences(ppc),
        "private_ppc_summary": None
        if private_ppc is None or private_ppc.empty
        else {
            "patterns": len(private_ppc),
            "inside": float(private_ppc["inside"].mean()),
            "draws": private_ppc.attrs.get("draws"),
            "persons_outside": float(private_ppc.loc[~private_ppc["inside"], "observed"].sum()),
            "persons": float(private_ppc["observed"].sum()),
        },
        "private_ppc_misfits": _records(private_misfits),
        "summary_findings": summary_findings,
        "summary_table": summary_table,
        "summary_headings": summary_headings,
        "study_tables": study_tables,
        "study_sentences": H.study_sentences(studies),
        "budget_sentences": [
            item for item in H.study_sentences(studies[1:]) if "published draws" in item[1]
        ],
        "study_root": ctx.get("calibration_study_root"),
        "published_files": files,
        "column_glossary": U.column_glossary(files),
        "reliability_rule": U.reliability_rule(metadata),
        "reliability_check": U.reliability_check(blocks),
        "district_example": example,
        "district_code": U.district_code(example),
        "census_moe_rule": first_key(
            first_key(metadata, "census_convention", default={}) or {}, "moe"
        ),
        "glossary": GLOSSARY,
        "code_commit": code_commit(),
        "published_sha256": first_key(metadata, "files_sha256", default={}) or {},
        "noise_sentences": noise_sentences,
        # Summary: the citizen error of the published estimates and whether their intervals
        # still cover (or, without an evaluation, that the cost is unmeasured).
        "summary_noise": noise_sentences[:1]
        + [item for item in noise_sentences if "Block citizens 90% intervals" in item[1]]
        + [
            item
            for item in noise_sentences
            if "are biased" in item[1] or "noncitizen totals are off" in item[1]
        ],
        "model_description": first_key(diag, "description", "model_description"),
        "size_sentences": N.block_size_sentences(
            blocks, int(settings["small_block"]), int(settings["large_block"])
        ),
        "counties": county_rows,
        "tracts": tract_rows,
        "table_limit": limit,
        "ledger": _records(ledger),
        "published_accuracy": _records(published_accuracy),
        "calibration_levels": calibration_rows,
        "comparison_rows": comparison_rows,
        "comparison_targets": comparison_facts.get("targets", []),
        "comparison_moe": comparison_facts.get("moe", {}),
        "calibration_counties": next(
            (row["units"] for row in calibration_rows if row["level"] == "county"), None
        ),
        "guarantee": first_key(privacy_statement, "guarantee"),
        "noise_note": first_key(privacy_statement, "noise_source_note"),
        "metrics": metric_rows,
        "coverage_sentences": N.coverage_sentences(curve, float(settings["coverage_tolerance"])),
        "method_sentences": N.method_sentences(metrics, methods),
        "person_cost": cost,
        "sensitivity_ran": ctx.get("sensitivity") is not None,
        "sensitivity_rows": _records(S.sensitivity_table(ctx.get("sensitivity"))),
        "sensitivity_sentences": N.sensitivity_sentences(
            S.sensitivity_table(ctx.get("sensitivity")), float(settings["coverage_tolerance"])
        ),
        "sensitivity_path": ctx.get("sensitivity_path"),
        "config_hash": first_key(metadata, "config_hash") or config_hash(config),
        "config_hash_origin": "published/metadata.json"
        if first_key(metadata, "config_hash")
        else "computed by the report from the run's config",
        "seed": config.get("seed", first_key(metadata, "seed")),
        "reference_date": config.get("reference_date"),
        "versions": _versions(metadata),
        "benchmarks": _records(bench),
        "total_seconds": float(bench["seconds"].sum()) if bench is not None else None,
        "missing": ctx.get("missing", []),
        "notes": ctx.get("notes", []),
        "css": (TEMPLATES / "report.css").read_text(encoding="utf-8"),
        "page_size": settings["page_size"],
        "methods": methods or list(METHODS),
    }
    return context, book


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(value, dict):
        for key, inner in value.items():
            out.update(_flat(inner, f"{prefix}{key}." if prefix or key else ""))
    elif isinstance(value, (int, float, str, bool)) or value is None:
        out[prefix.rstrip(".")] = value
    return out


def settings_from_config(config: dict) -> dict[str, Any]:
    """The report's settings: schema defaults under ``config['report']``."""
    return {**DEFAULT_SETTINGS, **(config.get("report") or {})}


def render_html(
    run_dir: str | Path,
    config: dict,
    bench_dir: str | Path | None = None,
    sensitivity_summary: str | Path | None = None,
    calibration_study: str | Path | None = None,
) -> Rendered:
    """Load the run and render the self-contained HTML report."""
    settings = settings_from_config(config)
    ctx = load_run(run_dir, config, bench_dir, sensitivity_summary, calibration_study)
    context, book = build_context(ctx, settings)
    html = _environment().get_template("report.html.j2").render(**context)
    return Rendered(
        html=html,
        figures=list(book.items.values()),
        sections=[s for s, _ in SECTIONS],
        missing=ctx["missing"],
    )


class _HarfBuzzNotice(logging.Filter):
    """Drop WeasyPrint's repeated notice that fontTools subsets fonts (harmless here)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "HarfBuzz" not in record.getMessage()


def html_to_pdf(html: str) -> bytes:
    """The same HTML, laid out for print by WeasyPrint (page size and numbers from the CSS)."""
    import weasyprint

    # WeasyPrint and fontTools log every step at INFO: keep the rule's log readable.
    for noisy in ("fontTools", "weasyprint.progress"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    weasy_log = logging.getLogger("weasyprint")
    if not any(isinstance(f, _HarfBuzzNotice) for f in weasy_log.filters):
        weasy_log.addFilter(_HarfBuzzNotice())

    # No base URL: every resource is inline, so nothing can be fetched from anywhere.
    return weasyprint.HTML(string=html, base_url=None).write_pdf()


def write_report(
    run_dir: str | Path,
    config: dict,
    html_path: str | Path,
    pdf_path: str | Path | None = None,
    bench_dir: str | Path | None = None,
    sensitivity_summary: str | Path | None = None,
    calibration_study: str | Path | None = None,
) -> Rendered:
    """Render and write ``report.html`` (and ``report.pdf``) atomically."""
    from pipeline_common.io import write_bytes, write_text

    rendered = render_html(run_dir, config, bench_dir, sensitivity_summary, calibration_study)
    write_text(rendered.html, html_path)
    log.info(
        "wrote %s (%d figures, %.1f kB)",
        html_path,
        len(rendered.figures),
        len(rendered.html) / 1024,
    )
    if pdf_path is not None:
        pdf = html_to_pdf(rendered.html)
        write_bytes(pdf, pdf_path)
        log.info("wrote %s (%.1f kB)", pdf_path, len(pdf) / 1024)
    return rendered


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m reports.render [--configfile ...] [--run-dir DIR] [--output DIR]``."""
    from pipeline_common.cli import config_of, stage_parser
    from pipeline_common.config import run_dir as config_run_dir
    from pipeline_common.logs import setup_logging

    parser = stage_parser("reports.render", __doc__.splitlines()[0])
    parser.add_argument("--run-dir", metavar="DIR", default=None, help="default results/{run}")
    parser.add_argument(
        "--output", metavar="DIR", default=None, help="output folder (default RUN_DIR/report)"
    )
    parser.add_argument(
        "--bench", metavar="DIR", default=None, help="benchmarks/{run} (default guessed)"
    )
    parser.add_argument("--sensitivity", default="results/sensitivity/summary_report.csv")
    parser.add_argument(
        "--calibration-study",
        default="results/calibration",
        help="folder of the calibration study (one subfolder per scenario; shown when present)",
    )
    parser.add_argument("--no-pdf", action="store_true")
    args = parser.parse_args(argv)
    setup_logging()
    config = config_of(args)
    run_dir = Path(args.run_dir) if args.run_dir else config_run_dir(config)
    out = Path(args.output) if args.output else run_dir / "report"
    bench = args.bench or (run_dir.parent.parent / "benchmarks" / run_dir.name)
    write_report(
        run_dir,
        config,
        out / "report.html",
        None if args.no_pdf else out / "report.pdf",
        bench,
        args.sensitivity,
        args.calibration_study,
    )


if __name__ == "__main__":
    from pipeline_common.errors import run_main

    run_main(main, "reports.render")
