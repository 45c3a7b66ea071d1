"""The summary page's facts, each taken from one evaluation file and said in one sentence.

Every number on the summary page comes from here, and every sentence names its measure:

* block calibration of both fits: the randomized PIT of ``evaluation/calibration.json`` (the
  same measure for the published draws and the exact fit; equal-tailed intervals of small
  counts over-cover, so they are not the block measure);
* coverage of summed blocks (block groups, tracts, compact districts, counties, the run total):
  ``evaluation/calibration.json``, and, pooled over replicate worlds, the calibration study
  (``results/calibration/{scenario}/calibration.json``) when it exists;
* accuracy: ``evaluation/published.json`` (the published numbers), ``evaluation/estimates.json``
  (exact fit, record rule, Census-style) and ``evaluation/comparison.json`` (ACS direct);
* convergence: each fit's ``diagnostics.json`` (via :func:`reports.summaries.fit_diagnostics`).

Sentences are ``(level, text)``: ``ok`` (a target met: green check), ``miss`` (a target missed:
red cross), ``warn`` (a weakness without a formal target) and ``info``. A check mark is never
given to a number outside its target.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from reports.data import first_key, numeric

Sentence = tuple[str, str]
BAND = (0.85, 0.95)
GOAL = (0.88, 0.92)
# Levels with at most this many units are shown as "k of n".
FEW_UNITS = 10
QUANTITY_LABELS = {"citizens": "citizens", "noncitizens": "noncitizens", "cvap": "CVAP"}
SUM_LEVELS = (
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


def _pct(value: float, digits: int = 1) -> str:
    return f"{value * 100:.{digits}f}%"


def level_label(level: str, plural: bool = True) -> str:
    """``district_3000`` -> ``districts of ~3,000``; ``block_group`` -> ``block groups``."""
    if level.startswith("district_"):
        return f"districts of ~{int(level.split('_', 1)[1]):,}"
    names = {
        "block": "blocks",
        "block_group": "block groups",
        "tract": "tracts",
        "county": "counties",
        "total": "run total",
    }
    name = names.get(level, level.replace("_", " "))
    return name if plural or level == "total" else name.rstrip("s")


def _rows(evaluation: Any, key: str = "summary") -> dict[tuple[str, str, str], dict]:
    if not isinstance(evaluation, dict):
        return {}
    return {
        (r["method"], r["level"], r["quantity"]): r
        for r in evaluation.get(key) or []
        if isinstance(r, dict) and {"method", "level", "quantity"} <= set(r)
    }


def band_of(evaluation: Any) -> tuple[float, float]:
    """The coverage target of a calibration file (0.85-0.95 unless it says otherwise)."""
    band = first_key(evaluation or {}, "coverage_target") or first_key(
        first_key(evaluation or {}, "targets", default={}) or {}, "coverage"
    )
    return tuple(band) if band else BAND


def _in(value: float, band: tuple[float, float]) -> bool:
    return band[0] - 1e-9 <= value <= band[1] + 1e-9


def cell(row: dict | None, level: str, band: tuple[float, float], units: list | None = None):
    """One summary-table cell: ``text`` and ``mark`` (``ok``, ``miss`` or None).

    Block: randomized PIT coverage. Few units (at most 10): ``k of n``. Run total of one world:
    the error and whether the interval held the truth; of a study: replicates covered.
    """
    if not row:
        return {"text": "–", "mark": None}
    n_units = int(numeric(row.get("n_units")) or 0)
    if level == "total":
        covered = row.get("replicates_covered")
        if covered is not None:
            n_rep = int(numeric(row.get("n_replicates")) or n_units)
            share = first_key(row, "target") or ""
            need = 0.875 if "0.875" in str(share) else 7 / 8
            ok = covered >= need * n_rep - 1e-9
            return {"text": f"{int(covered)} of {n_rep} covered", "mark": "ok" if ok else "miss"}
        unit = next(
            (
                u
                for u in units or []
                if u.get("method") == row["method"] and u.get("quantity") == row["quantity"]
            ),
            None,
        )
        ok = bool(numeric(row.get("coverage")))
        if unit is not None and numeric(unit.get("truth")):
            error = numeric(unit["estimate"]) - numeric(unit["truth"])
            rel = error / numeric(unit["truth"])
            text = f"{error:+,.0f} ({rel:+.2%}), {'inside' if ok else 'outside'}"
        else:
            text = "covered" if ok else "not covered"
        return {"text": text, "mark": "ok" if ok else "miss"}
    key = "pit_coverage" if level == "block" else "coverage"
    value = numeric(row.get(key))
    if value is None:
        return {"text": "–", "mark": None}
    text = _pct(value)
    mark = "ok" if _in(value, band) else "miss"
    if 0 < n_units <= FEW_UNITS:
        text = f"{round(value * n_units)} of {n_units}"
        # With a handful of units, all covered is no evidence of intervals too wide (5 of 5
        # happens 59% of the time at 90%): no mark. Too few covered is still a miss.
        if value > band[1]:
            mark = None
    return {"text": text, "mark": mark}


def calibration_table(calibration_eval: Any) -> tuple[list[dict], list[str]]:
    """Rows of the summary's calibration table (this run) and its column headings: published
    citizens / CVAP and exact fit citizens / CVAP, block (randomized PIT) to run total. The
    calibration study has its own tables (:func:`study_table`)."""
    rows_by_key = _rows(calibration_eval)
    if not rows_by_key:
        return [], []
    band = band_of(calibration_eval)
    units = (calibration_eval or {}).get("units") or {}
    columns = [
        ("published", "citizens"),
        ("published", "cvap"),
        ("exact", "citizens"),
        ("exact", "cvap"),
    ]
    headings = ["Published: citizens", "Published: CVAP", "Exact fit: citizens", "Exact fit: CVAP"]
    out = []
    for level in ("block", *SUM_LEVELS):
        cells = [
            cell(rows_by_key.get((m, level, q)), level, band, units.get(level)) for m, q in columns
        ]
        if all(c["text"] == "–" for c in cells):
            continue
        first = rows_by_key.get(("published", level, "citizens")) or {}
        out.append(
            {
                "level": level,
                "label": "blocks (randomized PIT)" if level == "block" else level_label(level),
                "units": numeric(first.get("n_units")),
                "persons": numeric(first.get("mean_population")),
                "cells": cells,
            }
        )
    return out, headings


def with_published(metrics: pd.DataFrame, published_eval: Any) -> pd.DataFrame:
    """``reports.summaries.method_metrics`` plus the published estimates as a method (from
    ``evaluation/published.json``), so that accuracy tables and figures compare the product
    itself with the baselines, not only the exact fit."""
    block = (published_eval or {}).get("block") if isinstance(published_eval, dict) else None
    if not block or metrics is None:
        return metrics
    rows = []
    for quantity in ("citizens", "noncitizens", "cvap"):
        b = block.get(quantity) or {}
        tract = ((published_eval.get("tract") or {}).get(quantity)) or {}
        county = ((published_eval.get("county") or {}).get(quantity)) or {}
        for name, value in (
            ("block_mae", b.get("mae")),
            ("block_rmse", b.get("rmse")),
            ("block_bias", b.get("bias")),
            ("mean_width90", b.get("mean_width90")),
            ("tract_mean_abs_rel_error", tract.get("mean_abs_relative_error")),
            ("county_mean_abs_rel_error", county.get("mean_abs_relative_error")),
        ):
            if numeric(value) is not None:
                rows.append(
                    {"method": "published", "quantity": quantity, "metric": name, "value": value}
                )
    if not rows:
        return metrics
    return pd.concat([metrics, pd.DataFrame(rows)], ignore_index=True)


def with_block_pit(curve: pd.DataFrame, calibration_eval: Any) -> pd.DataFrame:
    """The exact fit's 90% block coverage taken from ``evaluation/calibration.json`` (as the
    summary gives it), so the report states one randomized-PIT figure per fit, not two draws
    of the randomization from two files."""
    rows = _rows(calibration_eval)
    if curve is None or curve.empty or not rows:
        return curve
    curve = curve.copy()
    published = [
        {"method": "published", "quantity": q, "nominal": 0.9, "empirical": value}
        for q in ("citizens", "noncitizens", "cvap")
        if (value := numeric((rows.get(("published", "block", q)) or {}).get("pit_coverage")))
        is not None
    ]
    if published and not (curve["method"] == "published").any():
        curve = pd.concat([curve, pd.DataFrame(published)], ignore_index=True)
    for quantity in ("citizens", "noncitizens", "cvap"):
        value = numeric((rows.get(("exact", "block", quantity)) or {}).get("pit_coverage"))
        mask = (
            (curve["method"] == "model")
            & (curve["quantity"] == quantity)
            & ((curve["nominal"] - 0.9).abs() < 1e-9)
        )
        if value is not None and mask.any():
            curve.loc[mask, "empirical"] = value
    return curve


def study_table(study: dict) -> list[dict]:
    """A calibration study's pooled table: published and exact, citizens and CVAP per level."""
    rows = _rows(study.get("data"), "pooled")
    band = band_of(study.get("data"))
    out = []
    for level in ("block", *SUM_LEVELS):
        cells = [
            cell(rows.get((m, level, q)), level, band)
            for m in ("published", "exact")
            for q in ("citizens", "cvap")
        ]
        if all(c["text"] == "–" for c in cells):
            continue
        first = rows.get(("published", level, "citizens")) or {}
        out.append(
            {
                "level": level,
                "label": "blocks (randomized PIT)" if level == "block" else level_label(level),
                "persons": numeric(first.get("mean_population")),
                "cells": cells,
            }
        )
    return out


# ---------------------------------------------------------------- sentences


def block_calibration_sentences(calibration_eval: Any) -> list[Sentence]:
    """Block calibration of each fit, randomized PIT, one figure per fit and quantity."""
    rows = _rows(calibration_eval)
    band = band_of(calibration_eval)
    out = []
    for method, name in (("published", "Published estimates"), ("exact", "Exact fit")):
        values = {
            q: numeric((rows.get((method, "block", q)) or {}).get("pit_coverage"))
            for q in ("citizens", "cvap")
        }
        if any(v is None for v in values.values()):
            continue
        missed = [q for q, v in values.items() if not _in(v, band)]
        off_goal = [q for q, v in values.items() if not _in(v, GOAL)]
        level = "miss" if missed else ("warn" if off_goal else "ok")
        verdict = (
            f"outside the {_pct(band[0], 0)}–{_pct(band[1], 0)} target: the intervals are "
            + ("too narrow" if min(values.values()) < band[0] else "too wide")
            if missed
            else (
                f"inside the {_pct(band[0], 0)}–{_pct(band[1], 0)} target but outside the "
                f"{_pct(GOAL[0], 0)}–{_pct(GOAL[1], 0)} goal: somewhat too "
                + ("narrow" if min(values.values()) < GOAL[0] else "wide")
                if off_goal
                else f"inside the {_pct(GOAL[0], 0)}–{_pct(GOAL[1], 0)} goal"
            )
        )
        n_blocks = int(numeric((rows.get((method, "block", "citizens")) or {}).get("n_units")) or 0)
        out.append(
            (
                level,
                f"{name}, blocks: 90% intervals hold the truth for {_pct(values['citizens'])} "
                f"of {n_blocks:,} blocks for citizens and {_pct(values['cvap'])} for CVAP "
                f"(randomized PIT, the measure used for both fits), {verdict}.",
            )
        )
    return out


def summed_sentences(calibration_eval: Any) -> list[Sentence]:
    """Coverage of summed blocks in this run, one digest per fit: levels missed of levels
    scored, the worst, and the run total's error (the table beside it has every level)."""
    rows = _rows(calibration_eval)
    if not rows:
        return [
            (
                "warn",
                "Coverage of summed blocks (districts, counties, the run total) was not "
                "evaluated in this run (evaluation/calibration.json is missing).",
            )
        ]
    band = band_of(calibration_eval)
    units = (calibration_eval or {}).get("units") or {}
    target = f"{_pct(band[0], 0)}–{_pct(band[1], 0)}"
    out = []
    for method, name in (("published", "Published estimates"), ("exact", "Exact fit")):
        parts, any_miss = [], False
        for quantity in ("citizens", "cvap"):
            scored, missed = 0, []
            for level in SUM_LEVELS[:-1]:
                row = rows.get((method, level, quantity))
                if not row:
                    continue
                scored += 1
                c = cell(row, level, band)
                if c["mark"] == "miss":
                    missed.append(f"{level_label(level)} {c['text']}")
            total = rows.get((method, "total", quantity))
            total_text = ""
            if total:
                c = cell(total, "total", band, units.get("total"))
                any_miss |= c["mark"] == "miss"
                total_text = f"; run total {c['text']} its interval"
            if not scored:
                continue
            any_miss |= bool(missed)
            parts.append(
                f"{QUANTITY_LABELS[quantity]}: {len(missed)} of {scored} levels outside the "
                f"{target} target" + (f" ({', '.join(missed)})" if missed else "") + total_text
            )
        if parts:
            out.append(
                (
                    "miss" if any_miss else "ok",
                    f"{name}, sums of blocks from block groups to counties (this run): "
                    + "; ".join(parts)
                    + ".",
                )
            )
    return out


def study_sentences(studies: list[dict]) -> list[Sentence]:
    """The pooled calibration study, one sentence per study folder (published draws)."""
    out = []
    for study in studies:
        data = study.get("data") or {}
        rows = _rows(data, "pooled")
        if not rows:
            continue
        band = band_of(data)
        n_rep = len(data.get("seeds") or []) or int(
            numeric((rows.get(("published", "total", "citizens")) or {}).get("n_replicates")) or 0
        )
        for method, name in (("published", "published draws"), ("exact", "exact fit")):
            parts, missed = [], []
            for level in ("block", *SUM_LEVELS):
                values = []
                for quantity in ("citizens", "cvap"):
                    row = rows.get((method, level, quantity))
                    if not row:
                        continue
                    c = cell(row, level, band)
                    values.append(c["text"])
                    if c["mark"] == "miss":
                        missed.append((level_label(level), QUANTITY_LABELS[quantity]))
                if values:
                    label = "blocks (PIT)" if level == "block" else level_label(level)
                    parts.append(f"{label} {' / '.join(dict.fromkeys(values))}")
            if not parts:
                continue
            bias = [
                numeric((rows.get((method, "total", q)) or {}).get("rel_bias_sum"))
                for q in ("citizens", "cvap")
            ]
            bias_text = (
                f" Summed bias {bias[0]:+.2%} citizens, {bias[1]:+.2%} CVAP."
                if all(b is not None for b in bias)
                else ""
            )
            out.append(
                (
                    "miss" if missed else "ok",
                    f"Calibration study '{study['name']}' ({n_rep} replicate worlds pooled), "
                    f"{name}, citizens / CVAP: "
                    + "; ".join(parts)
                    + "."
                    + (
                        " Outside the target: "
                        + ", ".join(
                            f"{lvl} ({' and '.join(q for l2, q in missed if l2 == lvl)})"
                            for lvl in dict.fromkeys(lvl for lvl, _ in missed)
                        )
                        + "."
                        if missed
                        else " Every level on target."
                    )
                    + bias_text,
                )
            )
    return out


def accuracy_sentences(
    published_eval: Any, estimates_eval: Any, comparison_eval: Any
) -> list[Sentence]:
    """Block MAE of the published numbers against the exact fit and every baseline."""
    methods = first_key(estimates_eval or {}, "methods", default=estimates_eval) or {}
    comparison = _rows(comparison_eval)
    out = []
    for quantity in ("citizens", "cvap"):
        published = numeric(
            (((published_eval or {}).get("block") or {}).get(quantity) or {}).get("mae")
        )
        if published is None:
            continue
        others = {}
        for method, label in (
            ("model", "exact fit"),
            ("census_style", "Census-style baseline"),
            ("record_rule", "record rule"),
        ):
            value = numeric(((methods.get(method) or {}).get(quantity) or {}).get("block_mae"))
            if value is not None:
                others[label] = value
        acs = numeric((comparison.get(("acs_direct", "block", quantity)) or {}).get("mae"))
        if acs is not None:
            others["ACS block-group disaggregation (acs_direct)"] = acs
        listing = "; ".join(f"{label} {value:.2f}" for label, value in others.items())
        worse = [
            label for label, value in others.items() if label != "exact fit" and value < published
        ]
        text = (
            f"Block {QUANTITY_LABELS[quantity]}: the published estimates' mean absolute error "
            f"is {published:.2f} persons per block, against {listing}."
        )
        if worse:
            text += (
                " The published block estimates are less accurate than the "
                + " and the ".join(worse)
                + (
                    " (both baselines read the exact linked records, with no privacy noise)"
                    if all("ACS" not in w for w in worse)
                    else ""
                )
                + "."
            )
        level = "warn" if worse else "info"
        if acs is not None:
            target_met = published <= 0.5 * acs
            level = "miss" if not target_met else ("warn" if worse else "ok")
            text += f" Target (at most half the ACS disaggregation's, {0.5 * acs:.2f}): " + (
                "met." if target_met else "missed."
            )
        out.append((level, text))
    if out and not comparison:
        out.append(
            (
                "warn",
                "The ACS block-group disaggregation users rely on today (acs_direct) was not "
                "evaluated in this run (evaluation/comparison.json is missing), so the "
                "published estimates are not compared with it here.",
            )
        )
    return out


def convergence_sentences(fits: list[dict], privacy_mode: str | None = None) -> list[Sentence]:
    """Both fits' convergence, plainly: R-hat, bulk and tail ESS, divergences, verdict."""
    out = []
    # The published fit first: its draws are the product.
    for fit in sorted(fits, key=lambda f: f.get("fit") != "privacy"):
        name = (
            "Published (privacy) fit"
            if fit.get("fit") == "privacy"
            else ("Exact fit (published)" if privacy_mode == "none" else "Exact fit")
        )
        if not fit.get("available"):
            out.append(("miss", f"{name}: diagnostics.json not found; convergence unknown."))
            continue
        targets = fit.get("targets") or {}
        bits = []
        for key, label, fmt in (
            ("max_rhat", "max R-hat", "{:.3f}"),
            ("min_ess_bulk", "min bulk ESS", "{:,.0f}"),
            ("min_ess_tail", "min tail ESS", "{:,.0f}"),
            ("divergences", "divergences", "{:,.0f}"),
        ):
            if fit.get(key) is not None:
                bits.append(f"{label} {fmt.format(fit[key])}")
        attempts = fit.get("attempts")
        attempts_text = f", after {attempts} sampling attempts" if attempts and attempts > 1 else ""
        goal = (
            f" (targets: R-hat ≤ {targets['rhat_max']:g}, bulk and tail ESS ≥ "
            f"{targets['ess_min']:,.0f}, "
            + (
                "no divergences)"
                if not targets["max_divergences"]
                else f"at most {targets['max_divergences']} divergences)"
            )
            if {"rhat_max", "ess_min", "max_divergences"} <= set(targets)
            else ""
        )
        if fit.get("converged") is False:
            failures = "; ".join(fit.get("failures") or [])
            out.append(
                (
                    "miss",
                    f"{name} did NOT converge{attempts_text}: "
                    + ", ".join(bits)
                    + goal
                    + (f"; missed: {failures}" if failures else "")
                    + ". Its estimates and interval ends are not reliable.",
                )
            )
        else:
            out.append(("ok", f"{name} converged{attempts_text}: " + ", ".join(bits) + goal + "."))
    return out


def ppc_sentence(name: str, ppc: pd.DataFrame | None, observed: str) -> list[Sentence]:
    """One fit's posterior predictive check of evidence patterns."""
    if ppc is None or ppc.empty:
        return []
    inside = float(ppc["inside"].mean())
    persons = float(ppc.loc[~ppc["inside"], "observed"].sum() / max(ppc["observed"].sum(), 1))
    level = "ok" if inside >= BAND[0] else "miss"
    return [
        (
            level,
            f"Posterior predictive check, {name}: {_pct(inside)} of {len(ppc):,} evidence "
            f"patterns ({observed}) fall inside their replicated 90% interval (about 90% "
            f"expected); the patterns outside hold {_pct(persons)} of persons"
            + (
                ". The sources are not independent given the latent class, as the model "
                "assumes: its intervals rest on an assumption the data reject."
                if level == "miss"
                else "."
            ),
        )
    ]


def behaviour_sentence(name: str, behaviour: pd.DataFrame) -> list[Sentence]:
    """How many source behaviours with a known generating value a fit learned wrongly."""
    if behaviour is None or behaviour.empty:
        return []
    table = behaviour.dropna(subset=["mean", "truth", "lo90", "hi90"])
    if table.empty:
        return []
    outside = table[(table["truth"] < table["lo90"]) | (table["truth"] > table["hi90"])]
    return [
        (
            "miss" if len(outside) else "ok",
            f"Source behaviours, {name}: {len(outside)} of {len(table)} with a known generating "
            "value lie outside their 90% interval"
            + (
                " (learned wrongly: " + "; ".join(outside["label"].astype(str).head(9)) + ")."
                if len(outside)
                else "."
            ),
        )
    ]


def reliability_sentence(blocks: pd.DataFrame, rule: dict | None) -> list[Sentence]:
    """Counts of the published reliability flags and what the rule is."""
    if "reliability" not in blocks:
        return []
    counts = blocks["reliability"].astype(str).str.lower().value_counts()
    parts = ", ".join(
        f"{int(counts[k]):,} {k}" for k in ("high", "medium", "low", "empty") if k in counts
    )
    text = f"Published reliability flags: {parts} of {len(blocks):,} blocks (rule under 'Using these estimates')."
    level = "info"
    rule = rule or {}
    if rule and "high_min_population" not in rule:
        width = (
            (blocks["citizens_hi90"] - blocks["citizens_lo90"])
            .clip(lower=0)
            .combine(blocks["cvap_hi90"] - blocks["cvap_lo90"], max)
        )
        small_high = (blocks["reliability"].astype(str) == "high") & (blocks["population"] < 50)
        zero = small_high & (width == 0)
        if small_high.any():
            level = "warn"
            text += (
                f" This run's rule predates the minimum size for 'high': {int(small_high.sum()):,} "
                f"blocks of fewer than 50 persons are flagged high, {int(zero.sum()):,} of them "
                "with zero-width intervals; the current rule flags them medium at best."
            )
    return [(level, text)]


def privacy_sentence(privacy: dict) -> list[Sentence]:
    """The guarantee in plain words."""
    mode = str(privacy.get("mode") or "").lower()
    if mode in ("none", "exact", "off"):
        return [("warn", "Privacy mode 'none': no formal privacy protection; never publish.")]
    rho, eps, delta = privacy.get("rho"), privacy.get("epsilon"), privacy.get("delta")
    if rho is None:
        return []
    text = (
        f"Privacy: rho = {rho:.3g} zero-concentrated differential privacy"
        + (f" (epsilon = {eps:.4g} at delta = {delta:.0e})" if eps and delta else "")
        + ": roughly, any published outcome becomes at most "
        + (f"e^{eps:.4g} times" if eps else "a rho-bounded factor")
        + " more or less likely"
        + " when one person's administrative evidence changes (except with probability delta)."
    )
    level = "info"
    if str(privacy.get("noise_source") or "").lower() == "seeded":
        level = "warn"
        text += (
            " The noise here is seeded for reproducible research, so this run is NOT a valid "
            "private release."
        )
    return [(level, text)]


def summary_findings(
    *,
    calibration_eval: Any,
    studies: list[dict],
    published_eval: Any,
    estimates_eval: Any,
    comparison_eval: Any,
    fits: list[dict],
    privacy_mode: str | None,
    ppcs: list[tuple[str, pd.DataFrame | None, str]],
    behaviours: list[tuple[str, pd.DataFrame]],
    blocks: pd.DataFrame,
    reliability_rule: dict | None,
    privacy: dict,
) -> tuple[list[Sentence], list[Sentence]]:
    """Every sentence of the summary page, in reading order: convergence and block
    calibration (before the coverage table), then sums of blocks, the study, accuracy,
    predictive checks, source behaviours, reliability and privacy."""
    first: list[Sentence] = []
    first += convergence_sentences(fits, privacy_mode)
    first += block_calibration_sentences(calibration_eval)
    out: list[Sentence] = []
    out += summed_sentences(calibration_eval)
    out += study_sentences(studies[:1])
    out += accuracy_sentences(published_eval, estimates_eval, comparison_eval)
    for name, ppc, observed in ppcs:
        out += ppc_sentence(name, ppc, observed)
    for name, behaviour in behaviours:
        out += behaviour_sentence(name, behaviour)
    out += reliability_sentence(blocks, reliability_rule)
    out += privacy_sentence(privacy)
    return first, out


def load_studies(root: str | Path | None) -> list[dict]:
    """Calibration studies under ``root`` (``results/calibration``): one per folder holding a
    ``calibration.json``, the plain scenario first (``small`` before ``small-rho_4``)."""
    import json

    if root is None or not Path(root).is_dir():
        return []
    out = []
    for path in sorted(
        Path(root).glob("*/calibration.json"), key=lambda p: (len(p.parent.name), p.parent.name)
    ):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not data.get("pooled"):
            continue
        out.append({"name": path.parent.name, "path": str(path), "data": data})
    return out
