"""Sentences generated from the numbers, so the report's words cannot drift from its figures.

Each function returns a list of ``(level, text)`` pairs; ``level`` is ``"ok"``, ``"warn"`` or
``"info"`` and styles the sentence. Thresholds are config keys (``report.*``), not constants.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from reports.style import METHOD_LABELS
from reports.summaries import (
    COUNTY_KEYS,
    MAE_KEYS,
    STATUS_LABELS,
    TRACT_KEYS,
    coverage90,
    metric,
)

Sentence = tuple[str, str]


def _pct(value: float, digits: int = 1) -> str:
    return f"{value * 100:.{digits}f}%"


def coverage_sentences(curve: pd.DataFrame, tolerance: float) -> list[Sentence]:
    """Is the model's 90% interval coverage on target? Say so, with the numbers."""
    out = []
    for quantity in ("citizens", "cvap"):
        value = coverage90(curve, "model", quantity)
        if value is None:
            continue
        gap = value - 0.90
        if abs(gap) <= tolerance:
            out.append(
                (
                    "ok",
                    f"Model (exact fit) 90% intervals for block {quantity} covered the true "
                    f"count in {_pct(value)} of blocks (randomized PIT), within "
                    f"{_pct(tolerance, 0)} of the nominal 90% at block level (sums of blocks: "
                    "see the calibration at every level below).",
                )
            )
        elif gap < 0:
            out.append(
                (
                    "warn",
                    f"Model (exact fit) 90% intervals for block {quantity} covered the "
                    f"true count in only {_pct(value)} of blocks (randomized PIT; {_pct(-gap)} "
                    "below nominal): the "
                    "intervals are too narrow and overstate the precision of the estimates.",
                )
            )
        else:
            out.append(
                (
                    "warn",
                    f"Model (exact fit) 90% intervals for block {quantity} covered the "
                    f"true count in {_pct(value)} of blocks (randomized PIT; {_pct(gap)} above "
                    "nominal): the "
                    "intervals are wider than they need to be (conservative).",
                )
            )
    for method in ("record_rule", "census_style"):
        value = coverage90(curve, method, "citizens")
        if value is not None and value < 0.9 - tolerance:
            out.append(
                (
                    "info",
                    f"The {METHOD_LABELS.get(method, method)} baseline's intervals "
                    f"covered {_pct(value)} of blocks' true citizen counts.",
                )
            )
    if not out:
        out.append(
            (
                "warn",
                "The evaluation file gives no interval coverage: the honesty of the "
                "intervals could not be checked in this run.",
            )
        )
    return out


def method_sentences(metrics: pd.DataFrame, methods: list[str]) -> list[Sentence]:
    """The model's block and county errors against each baseline, as ratios."""
    out = []
    model_mae = metric(metrics, "model", "citizens", *MAE_KEYS)
    if model_mae is None:
        return [("warn", "No block-level error of the model was evaluated.")]
    for method in methods:
        if method == "model":
            continue
        other = metric(metrics, method, "citizens", *MAE_KEYS)
        if other is None:
            continue
        label = METHOD_LABELS.get(method, method)
        if model_mae < other:
            out.append(
                (
                    "ok",
                    f"Block citizens: the model's mean absolute error "
                    f"({model_mae:.2f} persons) is {other / max(model_mae, 1e-12):.1f} times "
                    f"smaller than the {label}'s ({other:.2f}).",
                )
            )
        else:
            out.append(
                (
                    "warn",
                    f"Block citizens: the model's mean absolute error "
                    f"({model_mae:.2f} persons) is not smaller than the {label}'s "
                    f"({other:.2f}); the model adds no accuracy over this baseline here.",
                )
            )
    noncitizen_tract = metric(metrics, "model", "noncitizens", *TRACT_KEYS)
    if noncitizen_tract is not None and abs(noncitizen_tract) > 0.2:
        out.append(
            (
                "warn",
                f"Tract noncitizen totals are off by {_pct(abs(noncitizen_tract))} on average "
                "(relative error): noncitizen counts are small, so relative errors are large; "
                "read noncitizen estimates for small areas with their intervals.",
            )
        )
    for level, keys in (("tract", TRACT_KEYS), ("county", COUNTY_KEYS)):
        value = metric(metrics, "model", "citizens", *keys)
        if value is not None:
            out.append(
                (
                    "info",
                    f"At {level} level the model's citizen totals are off by "
                    f"{_pct(abs(value), 2)} on average (relative error).",
                )
            )
    return out


def diagnostics_sentences(
    diagnostics: dict | None, stats: dict, rhat_max: float, ess_min: float, fit: str = ""
) -> list[Sentence]:
    """Sampler health from a fit's ``diagnostics.json`` (or computed from the posterior).

    ``fit`` names the fit ("Exact fit", "Privacy fit") at the start of each sentence.
    """
    out = _diagnostics_sentences(diagnostics, stats, rhat_max, ess_min)
    if fit:
        out = [(level, f"{fit}: {text[0].lower()}{text[1:]}") for level, text in out]
    return out


def _diagnostics_sentences(
    diagnostics: dict | None, stats: dict, rhat_max: float, ess_min: float
) -> list[Sentence]:
    diagnostics = diagnostics or {}
    rhat = diagnostics.get("max_rhat", stats.get("max_rhat"))
    ess = diagnostics.get("min_ess_bulk", stats.get("min_ess_bulk"))
    divergences = diagnostics.get("divergences")
    out = []
    if rhat is not None:
        level = "ok" if rhat <= rhat_max else "warn"
        verdict = (
            "the chains agree"
            if level == "ok"
            else "some chains disagree: treat the estimates with caution and sample longer"
        )
        out.append((level, f"Largest R-hat is {rhat:.3f} (threshold {rhat_max}): {verdict}."))
    if ess is not None:
        level = "ok" if ess >= ess_min else "warn"
        verdict = "enough for stable intervals" if level == "ok" else "low: interval ends are noisy"
        out.append(
            (level, f"Smallest bulk ESS is {ess:,.0f} draws (target {ess_min:,.0f}): {verdict}.")
        )
    tail = diagnostics.get("min_ess_tail")
    if tail is not None:
        level = "ok" if tail >= ess_min else "warn"
        verdict = (
            "enough for stable 5% and 95% quantiles"
            if level == "ok"
            else "low: the 90% interval ends are noisy"
        )
        out.append(
            (level, f"Smallest tail ESS is {tail:,.0f} draws (target {ess_min:,.0f}): {verdict}.")
        )
    if divergences is not None:
        if int(divergences) == 0:
            out.append(("ok", "No divergent transitions."))
        else:
            out.append(
                (
                    "warn",
                    f"{int(divergences):,} divergent transitions: the sampler did not "
                    "explore all of the posterior; estimates may be biased.",
                )
            )
    if stats.get("parameters"):
        over = stats.get("share_rhat_over_1_01", 0.0)
        out.append(
            (
                "warn" if stats["max_rhat"] > rhat_max else "info",
                f"Recomputed by the report over all {stats['parameters']:,} scalar entries of "
                "the saved posterior ("
                + (
                    f"the {int(diagnostics['n_params']):,} free parameters and the quantities "
                    "derived from them"
                    if diagnostics.get("n_params")
                    else "free parameters and derived quantities"
                )
                + f", constants with undefined R-hat left out): largest R-hat {stats['max_rhat']:.3f} "
                f"({_pct(over)} above 1.01), smallest bulk ESS {stats['min_ess_bulk']:,.0f}.",
            )
        )
    if not out:
        out.append(("warn", "No sampler diagnostics were available."))
    return out


def noise_sentences(table: pd.DataFrame, tolerance: float) -> list[Sentence]:
    """What the privacy noise cost, from ``summaries.noise_cost``: the exact-fit model against
    the published estimates, on block error, coverage, width and county totals."""
    if table is None or table.empty:
        return [
            (
                "warn",
                "The exact fit and the published estimates could not both be evaluated: the "
                "cost of the privacy noise in accuracy is not measured in this run.",
            )
        ]

    def value(quantity: str, key: str) -> tuple[float | None, float | None]:
        hit = table[(table["quantity"] == quantity) & (table["metric"] == key)]
        if not len(hit):
            return None, None
        row = hit.iloc[0]
        exact = None if pd.isna(row["exact"]) else float(row["exact"])
        published = None if pd.isna(row["published"]) else float(row["published"])
        return exact, published

    out = []
    # noncitizens = population - citizens with population public and exact: same block errors.
    for quantity in ("citizens", "cvap"):
        exact, published = value(quantity, "mae")
        if exact is None or published is None:
            continue
        ratio = published / exact if exact > 0 else float("inf")
        level = "warn" if ratio > 1.25 else ("ok" if ratio <= 1.05 else "info")
        out.append(
            (
                level,
                f"Block {quantity}: mean absolute error {exact:.2f} persons for the exact fit "
                f"and {published:.2f} for the published estimates ({_signed_pct(ratio - 1)})"
                + (
                    ": most of the published error comes from the privacy noise, not the model"
                    if ratio > 2
                    else ""
                )
                + ".",
            )
        )
    for quantity in ("citizens", "cvap"):
        exact, published = value(quantity, "coverage90")
        if published is None:
            continue
        w_exact, w_published = value(quantity, "width")
        widths = (
            f"; mean width {w_exact:.1f} → {w_published:.1f} persons"
            if w_exact is not None and w_published is not None
            else ""
        )
        low = published < 0.9 - tolerance
        exact_text = f"{_pct(exact)} for the exact fit, " if exact is not None else ""
        out.append(
            (
                "warn" if low else "info",
                f"Block {quantity} equal-tailed 90% intervals, read inclusively, held the truth "
                f"in {exact_text}{_pct(published)} for the published estimates{widths}. This "
                "measure over-covers small counts even when a model is right; the block "
                "calibration measure is the randomized PIT (summary and section on "
                "calibration at every level).",
            )
        )
    exact, published = value("citizens", "bias")
    mae = value("citizens", "mae")[1]
    if published is not None and mae and abs(published) > 0.3 * mae:
        direction = "under" if published < 0 else "over"
        exact_text = f" (exact fit {exact:+.2f})" if exact is not None else ""
        out.append(
            (
                "warn",
                f"The published block citizen estimates are biased: on average {published:+.2f} "
                f"persons per block{exact_text}, so summed over many blocks they "
                f"{direction}state citizens; the bias adds up in larger areas where random "
                "errors cancel.",
            )
        )
    tract = value("noncitizens", "tract")[1]
    county = value("noncitizens", "county_mean")[1]
    if tract is not None and tract > 0.1:
        county_text = f" and county totals by {_pct(county)}" if county is not None else ""
        out.append(
            (
                "warn",
                f"Published noncitizen totals are off by {_pct(tract)} on average at tract "
                f"level{county_text} (mean absolute relative error): noncitizens are few, so "
                "their relative errors are large; read small-area noncitizen estimates only "
                "with their intervals.",
            )
        )
    exact, published = value("citizens", "county_mean")
    if exact is not None and published is not None:
        out.append(
            (
                "info",
                f"County citizen totals: mean absolute relative error {_pct(exact, 2)} "
                f"(exact fit) against {_pct(published, 2)} (published).",
            )
        )
    return out


def _signed_pct(change: float) -> str:
    if not np.isfinite(change):
        return "the exact fit's error is zero"
    return f"{'+' if change >= 0 else '−'}{abs(change) * 100:.0f}%"


def behaviour_sentences(behaviour: pd.DataFrame, fit: str = "") -> list[Sentence]:
    """Does each estimated source behaviour agree with the value that generated the data?

    With ``fit`` (e.g. "Privacy fit") only the behaviours it learned wrongly are listed, after
    one sentence counting those it learned right.
    """
    table = behaviour.dropna(subset=["mean", "truth"])
    if table.empty:
        return [
            (
                "info",
                "No estimated source behaviour could be matched with a generating value "
                "(the model's diagnostics or the truth parameters lack them).",
            )
        ]
    out, right = [], 0
    for _, row in table.iterrows():
        has_interval = pd.notna(row["lo90"]) and pd.notna(row["hi90"])
        inside = has_interval and row["lo90"] <= row["truth"] <= row["hi90"]
        right += int(inside)
        if fit and inside:
            continue
        interval = (
            f" (90% interval {_pct(row['lo90'])}–{_pct(row['hi90'])})"
            if has_interval
            else " (no interval: posterior draws not available)"
        )
        verdict = (
            "inside the interval"
            if inside
            else "outside the interval: learned wrongly"
            if has_interval
            else "compare by eye"
        )
        prefix = f"{fit}: " if fit else ""
        out.append(
            (
                "ok" if inside else ("warn" if has_interval else "info"),
                f"{prefix}{row['label']}: estimated {_pct(row['mean'])}{interval}, "
                f"generating value {_pct(row['truth'])}, {verdict}.",
            )
        )
    if fit:
        out.insert(
            0,
            (
                "ok" if right == len(table) else "info",
                f"{fit}: {right} of {len(table)} behaviours have the generating value inside "
                "their 90% interval.",
            ),
        )
    return out


def linkage_sentences(sources: pd.DataFrame, recall: pd.DataFrame) -> list[Sentence]:
    """Weakest linkage: lowest recall by source and by true status."""
    out = []
    table = sources.dropna(subset=["recall"])
    if not table.empty:
        worst = table.loc[table["recall"].idxmin()]
        out.append(
            (
                "info",
                f"Lowest recall: {worst['Source']} ({_pct(worst['recall'])} of its "
                "true records linked).",
            )
        )
        if table["precision"].notna().any():
            worst_p = table.loc[table["precision"].idxmin()]
            out.append(
                (
                    "info",
                    f"Lowest precision: {worst_p['Source']} "
                    f"({_pct(worst_p['precision'])} of its links are correct).",
                )
            )
    if not recall.empty:
        by_status = recall.groupby("status")["recall"].mean().sort_values()
        low = by_status.index[0]
        high = by_status.index[-1]
        out.append(
            (
                "warn" if by_status.iloc[-1] - by_status.iloc[0] > 0.1 else "info",
                f"Averaged over sources, recall is lowest for "
                f"{STATUS_LABELS.get(low, low).lower()} persons ({_pct(by_status.iloc[0])}) "
                f"and highest for {STATUS_LABELS.get(high, high).lower()} persons "
                f"({_pct(by_status.iloc[-1])})"
                + (
                    ": missed links are not at random, which is why the model treats 'no link' "
                    "as evidence that depends on the true class."
                    if by_status.iloc[-1] - by_status.iloc[0] > 0.05
                    else ": a small spread, so missed links say little about a person's status "
                    "here (the model still lets 'no link' depend on the class)."
                ),
            )
        )
    return out


def _blocks(count: int) -> str:
    return f"{count:,} block has" if count == 1 else f"{count:,} blocks have"


def block_size_sentences(blocks: pd.DataFrame, small: int, large: int) -> list[Sentence]:
    """How much wider intervals are (relative to population) in small blocks than large."""
    width = (blocks["noncitizens_hi90"] - blocks["noncitizens_lo90"]).astype(float)
    population = blocks["population"].astype(float)
    relative = width / population.where(population > 0)
    small_mask, large_mask = population < small, population >= large
    out = []
    if small_mask.any():
        small_width = float(relative[small_mask].median())
        wide = small_width >= 0.25
        advice = (
            " Use them only summed into larger areas (the published draws allow that)."
            if wide
            else " Narrow intervals on tiny blocks deserve scrutiny: check their coverage below."
        )
        out.append(
            (
                "warn" if wide else "info",
                f"{_blocks(int(small_mask.sum()))} fewer than {small} persons; "
                f"{'their' if small_mask.sum() != 1 else 'its'} median 90% interval for "
                f"noncitizens spans {_pct(small_width, 0)} of the block's population." + advice,
            )
        )
    if large_mask.any():
        out.append(
            (
                "info",
                f"In the {int(large_mask.sum()):,} blocks of {large} or more persons "
                f"the median interval spans {_pct(float(relative[large_mask].median()), 0)} "
                "of the population.",
            )
        )
    if "reliability" in blocks:
        counts = blocks["reliability"].astype(str).str.lower().value_counts()
        order = [lvl for lvl in ("high", "medium", "low", "empty") if lvl in counts]
        order += [lvl for lvl in counts.index if lvl not in order]
        parts = ", ".join(f"{int(counts[lvl]):,} {lvl}" for lvl in order)
        low = int(counts.get("low", 0))
        out.append(
            (
                "warn" if low / max(len(blocks), 1) > 0.25 else "info",
                f"Published reliability flags: {parts} (of {len(blocks):,} blocks); "
                f"{_pct(low / max(len(blocks), 1))} are flagged low.",
            )
        )
    return out


def privacy_sentences(params: dict) -> list[Sentence]:
    """State the guarantee (or its absence) in plain words."""
    mode = (params.get("mode") or "unknown").lower()
    if mode in ("none", "exact", "off"):
        return [
            (
                "warn",
                "Privacy mode is 'none': the model read exact tables, so these results "
                "carry no formal privacy guarantee (a research run; never publish them).",
            )
        ]
    parts = []
    if params.get("rho") is not None:
        parts.append(f"rho = {params['rho']:.3g} (zCDP)")
    if params.get("epsilon") is not None:
        delta = params.get("delta")
        parts.append(
            f"epsilon = {params['epsilon']:.3g}" + (f" at delta = {delta:.0e}" if delta else "")
        )
    if not parts:
        return [("warn", "The privacy ledger states no budget.")]
    out = [
        (
            "info",
            "The published estimates are post-processing of noisy measurements with a total "
            "privacy loss of " + ", ".join(parts) + ".",
        )
    ]
    if str(params.get("noise_source") or "").lower() == "seeded":
        out.append(
            (
                "warn",
                "The noise was drawn from a generator seeded by the pipeline seed, so runs are "
                "reproducible; anyone with the seed can remove it. This run demonstrates the "
                "mechanism but is NOT a valid differentially private release.",
            )
        )
    for limitation in params.get("limitations") or []:
        out.append(("warn", f"Limitation stated by the privacy stage: {limitation}"))
    return out


def largest(values: dict, n: int = 1) -> list:
    """Keys of the ``n`` largest values (helper for templates)."""
    return [k for k, _ in sorted(values.items(), key=lambda kv: -kv[1])[:n]]


def share_zero(values: pd.Series) -> float:
    """Share of zeros (used to describe how clustered noncitizens are)."""
    return float(np.mean(values.to_numpy() == 0)) if len(values) else float("nan")


def sensitivity_sentences(table: pd.DataFrame, tolerance: float) -> list[Sentence]:
    """Where the sweep shows the model losing to a baseline or its intervals going wrong."""
    if table is None or table.empty:
        return []

    def name(row) -> str:
        if row["knob"] == "baseline":
            return "the unchanged run"
        return f"{row['knob'].replace('_', ' ')} = {row['value'].replace('_', ' ')}"

    out = []
    worse, narrow = [], []
    for _, row in table.iterrows():
        baselines = [
            row[c] for c in ("record_rule_mae", "census_style_mae") if c in row and pd.notna(row[c])
        ]
        if pd.notna(row["model_mae"]) and baselines and row["model_mae"] > min(baselines):
            worse.append(f"{name(row)} ({row['model_mae']:.2f} vs {min(baselines):.2f})")
        if pd.notna(row["model_coverage"]) and row["model_coverage"] < 0.9 - tolerance:
            narrow.append(f"{name(row)} ({_pct(row['model_coverage'])})")
    runs = len(table)
    if worse:
        out.append(
            (
                "warn",
                f"In {len(worse)} of {runs} sweep runs the model's block citizen MAE is larger "
                "than the best baseline's: " + "; ".join(worse) + ".",
            )
        )
    else:
        out.append(("ok", f"In all {runs} sweep runs the model's block MAE beats both baselines."))
    if narrow:
        out.append(
            (
                "warn",
                f"Model 90% intervals are too narrow (coverage below {_pct(0.9 - tolerance, 0)}) "
                "in " + "; ".join(narrow) + ".",
            )
        )
    else:
        out.append(("ok", "Model 90% coverage stays within tolerance in every sweep run."))
    return out


FIT_NAMES = {"exact": "Exact fit", "privacy": "Privacy fit (published)"}
FIX = "sample longer (model.draws, model.tune or model.convergence.max_attempts) and rerun the fit"


def _fit_name(fit: dict, privacy_mode: str | None = None) -> str:
    if fit.get("fit") == "exact" and privacy_mode == "none":
        return "Exact fit (published)"
    return FIT_NAMES.get(fit.get("fit"), str(fit.get("label") or fit.get("fit") or "Fit"))


def _attempts(fit: dict) -> str:
    attempts = fit.get("attempts")
    return f" after {attempts} sampling attempts" if attempts and attempts > 1 else ""


def fits_summary_sentence(fits: list[dict], privacy_mode: str | None = None) -> list[Sentence]:
    """One sentence per fit on whether it met its convergence targets (for the summary).

    A fit that missed a target gets a warning that names the missed targets (never a check
    mark); a fit that met them all gets its figures and the targets.
    """
    out: list[Sentence] = []
    for fit in fits:
        name = _fit_name(fit, privacy_mode)
        if not fit.get("available"):
            out.append(
                ("warn", f"{name}: diagnostics.json not found, so its convergence is unknown.")
            )
            continue
        targets = fit.get("targets") or {}
        if fit.get("converged") is False:
            out.append(
                (
                    "warn",
                    f"{name} did NOT converge{_attempts(fit)}: "
                    + "; ".join(fit.get("failures") or [])
                    + ". Its estimates and interval ends are not reliable: "
                    + FIX
                    + ".",
                )
            )
            continue
        bits = []
        if fit.get("max_rhat") is not None:
            bits.append(f"largest R-hat {fit['max_rhat']:.3f}")
        if fit.get("min_ess_bulk") is not None:
            tail = fit.get("min_ess_tail")
            bits.append(
                f"smallest bulk ESS {fit['min_ess_bulk']:,.0f}"
                + (f" and tail ESS {tail:,.0f}" if tail is not None else "")
            )
        if fit.get("divergences") is not None:
            div = int(fit["divergences"])
            bits.append("no divergences" if div == 0 else f"{div:,} divergences")
        goal = (
            f" (targets: R-hat ≤ {targets['rhat_max']:g}, ESS ≥ {targets['ess_min']:,.0f}, "
            f"divergences ≤ {targets['max_divergences']})"
            if targets
            else ""
        )
        out.append(("ok", f"{name} converged{_attempts(fit)}: " + ", ".join(bits) + goal + "."))
    return out


def convergence_banners(fits: list[dict], privacy_mode: str | None = None) -> list[str]:
    """Plain banners for the top of the report, one per fit that missed a convergence target."""
    out = []
    for fit in fits:
        if fit.get("available") and fit.get("converged") is False:
            name = _fit_name(fit, privacy_mode)
            out.append(
                f"NOT CONVERGED — {name[0].lower()}{name[1:]} missed its convergence targets"
                f"{_attempts(fit)}: "
                + "; ".join(fit.get("failures") or [])
                + f". Its estimates and interval ends are not reliable; {FIX}."
            )
    return out


def ppc_sentences(ppc: pd.DataFrame | None) -> list[Sentence]:
    """The posterior predictive check in one sentence (for the summary)."""
    if ppc is None or ppc.empty:
        return [("info", "No posterior predictive check could be computed in this run.")]
    inside = float(ppc["inside"].mean())
    share = float(ppc.loc[~ppc["inside"], "observed"].sum() / max(ppc["observed"].sum(), 1))
    if inside >= 0.85:
        return [
            (
                "ok",
                f"Posterior predictive check: {_pct(inside)} of evidence patterns fall inside "
                "their replicated 90% interval; the model reproduces the joint answers of the "
                "sources.",
            )
        ]
    return [
        (
            "warn",
            f"Posterior predictive check: only {_pct(inside)} of evidence patterns fall inside "
            f"their replicated 90% interval (patterns outside hold {_pct(share)} of persons): "
            "the sources are not independent given the latent class as the model assumes, so "
            "its intervals may be too narrow.",
        )
    ]
