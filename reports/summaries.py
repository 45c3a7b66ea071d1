"""Turn the loaded run (``reports.data.load_run``) into tidy tables the report shows.

Upstream JSON files are read tolerantly: a few spellings of each key are accepted (the first
found wins, see ``first_key``), so a renamed key shows as an empty cell instead of a crash. What
could not be found is listed in the report's "inputs not available" note.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from pipeline_common.convergence import convergence_targets, fit_status
from reports.data import METHODS, QUANTITIES, SOURCES, first_key, numeric

SOURCE_LABELS = {
    "ssa_numident": "SSA Numident",
    "uscis_naturalizations": "USCIS naturalizations",
    "uscis_lpr": "USCIS LPR grants",
    "cbp_ice": "CBP / ICE",
    "state_passports": "State Dept passports",
    "irs_itin": "IRS ITIN",
    "acs": "ACS (survey)",
}
STATUS_LABELS = {
    "native_citizen": "Native-born citizen",
    "naturalized": "Naturalized citizen",
    "lpr": "LPR",
    "temporary": "Temporary lawful",
    "unauthorized": "Unauthorized",
}
POPULATION_LABELS = {
    "protected_1367": "8 U.S.C. 1367 (VAWA/T/U)",
    "refugee_asylee": "refugee/asylee (8 CFR 208.6)",
}


def source_label(source: str) -> str:
    """Readable name of a source."""
    return SOURCE_LABELS.get(source, source)


def _per_source(mapping: Any) -> dict[str, Any]:
    """The per-source part of a JSON file: ``{"sources": {...}}``, ``{"by_source": ...}``,
    a list of ``{"source": ...}`` rows, or the top level itself."""
    if isinstance(mapping, dict):
        inner = first_key(mapping, "sources", "by_source", "per_source")
        if inner is not None:
            return _per_source(inner)
        return {k: v for k, v in mapping.items() if k in SOURCES}
    if isinstance(mapping, list):
        return {row["source"]: row for row in mapping if isinstance(row, dict) and "source" in row}
    return {}


NOT_REASONS = (
    "records_",
    "persons_",
    "total",
    "fields_",
    "authority",
    "policy_",
    "notes",
    "values_",
)
NULLED_LABELS = {"dob_invalid": "dates of birth", "ssn_invalid": "SSNs"}


def withheld_by_source(withheld: Any) -> dict[str, dict[str, int]]:
    """``{source: {reason: count}}`` from ``linkage/withheld.json``.

    The linkage stage writes ``{source: {reason: n, total_withheld, records_in,
    records_shared, records_linked, ...}, totals: {...}}``: only the reason counts are kept.
    """
    out = {}
    for source, entry in _per_source(withheld).items():
        if isinstance(entry, dict):
            reasons = entry.get("withheld") if isinstance(entry.get("withheld"), dict) else entry
            out[source] = {
                r: int(v)
                for r, v in reasons.items()
                if numeric(v) is not None and not str(r).startswith(NOT_REASONS)
            }
        elif numeric(entry) is not None:
            out[source] = {"unspecified": int(entry)}
    return out


def withheld_entry(withheld: Any, source: str) -> dict:
    """The linkage stage's whole per-source entry of ``withheld.json`` (counts and policy)."""
    entry = _per_source(withheld).get(source)
    return entry if isinstance(entry, dict) else {}


def _policy(config: dict, source: str) -> dict:
    sources_cfg = (config.get("synthetic") or {}).get("sources") or {}
    source_cfg = sources_cfg.get(source) if isinstance(sources_cfg.get(source), dict) else {}
    return source_cfg.get("policy") or {}, source_cfg


WINDOW_KEYS = {
    "uscis_naturalizations": "uscis_window_start",
    "uscis_lpr": "uscis_window_start",
    "cbp_ice": "cbp_ice_window_start",
}


def _coverage_window(config: dict, source: str, source_cfg: dict) -> str:
    """A source's coverage: its record window (``synthetic.*_window_start``), the start year of
    a field, and the share of eligible persons it holds (``synthetic.sources.<s>.coverage``)."""
    synthetic = config.get("synthetic") or {}
    parts = []
    window_key = WINDOW_KEYS.get(source)
    if window_key and synthetic.get(window_key):
        parts.append(f"records from {synthetic[window_key]}")
    for key, value in sorted(source_cfg.items()):
        if key.endswith("_start_year") and numeric(value) is not None:
            parts.append(f"{key.removesuffix('_start_year').replace('_', ' ')} from {int(value)}")
    coverage = numeric(source_cfg.get("coverage"))
    if coverage is not None:
        parts.append(f"holds {coverage:.0%} of eligible persons")
    return "; ".join(parts) if parts else "not stated in config"


def _linkage_policy(config: dict, source: str) -> dict:
    """The policy the linkage stage applies (its resolver), or the raw config if unavailable."""
    try:
        from linkage.policy import resolve_policy

        policy = resolve_policy(config, source)
        return {
            "authority": policy.authority,
            "permitted_fields": list(policy.permitted_fields or []),
            "withhold": list(policy.withhold),
            "origin": policy.origin,
        }
    except Exception:  # the linkage package is optional for the report: fall back to config
        policy, _ = _policy(config, source)
        return dict(policy)


def sources_table(ctx: dict) -> pd.DataFrame:
    """One row per source: policy, coverage window, records, links, withheld, linkage quality.

    Counts come from the linkage stage's ``withheld.json`` entry where it has them (records in,
    shared after the policy, linked); otherwise from the source files and ``links.parquet``.
    """
    withheld = withheld_by_source(ctx.get("withheld"))
    quality = _per_source(ctx.get("linkage_eval"))
    rows = []
    for source in SOURCES:
        policy = _linkage_policy(ctx["config"], source)
        _, source_cfg = _policy(ctx["config"], source)
        entry = withheld_entry(ctx.get("withheld"), source)
        records = numeric(entry.get("records_in"))
        records = records if records is not None else ctx["source_records"].get(source)
        linked = numeric(entry.get("records_linked"))
        linked = linked if linked is not None else ctx["link_counts"].get(source)
        reasons = withheld.get(source, {})
        withheld_total = numeric(entry.get("total_withheld"))
        if withheld_total is None:
            withheld_total = sum(reasons.values()) if reasons else 0
        shared = numeric(entry.get("records_shared"))
        if shared is None and records is not None:
            shared = records - withheld_total
        q = quality.get(source, {}) if isinstance(quality.get(source), dict) else {}
        dropped = entry.get("fields_dropped") or []
        nulled = entry.get("values_nulled") if isinstance(entry.get("values_nulled"), dict) else {}
        rows.append(
            {
                "source": source,
                "Source": source_label(source),
                "authority": entry.get("authority")
                or policy.get("authority")
                or "not stated in config",
                "permitted_fields": ", ".join(policy.get("permitted_fields") or [])
                or "not restricted in config",
                "fields_dropped": ", ".join(map(str, dropped)) if dropped else "none",
                "withhold_policy": ", ".join(
                    POPULATION_LABELS.get(p, p) for p in policy.get("withhold") or []
                )
                or "—",
                "coverage_window": _coverage_window(ctx["config"], source, source_cfg),
                "records": records,
                "withheld": withheld_total,
                "withheld_reasons": ", ".join(
                    f"{POPULATION_LABELS.get(r, r)}: {v:,}" for r, v in reasons.items() if v
                )
                or "none",
                "values_nulled": ", ".join(
                    f"{NULLED_LABELS.get(k, k)}: {int(v):,}"
                    for k, v in nulled.items()
                    if numeric(v)
                )
                or "none",
                "shared": shared,
                "linked": linked,
                "linked_share": (linked / shared) if linked is not None and shared else None,
                "precision": numeric(first_key(q, "precision")),
                "recall": numeric(first_key(q, "recall")),
                "f1": numeric(first_key(q, "f1", "F1")),
            }
        )
    return pd.DataFrame(rows)


def link_histograms(ctx: dict) -> tuple[str, dict[str, dict]]:
    """Per source ``{edges, true_links, false_links}`` from ``evaluation/linkage.json``.

    Returns ``("weight", ...)`` for match-weight histograms (log2 Bayes factor, evenly spaced:
    the informative scale) when every source has one, else ``("probability", ...)``.
    """
    per_source = _per_source(ctx.get("linkage_eval"))
    for kind, key in (
        ("weight", "match_weight_histogram"),
        ("probability", "match_probability_histogram"),
    ):
        out = {}
        for source, q in per_source.items():
            hist = first_key(q, key) if isinstance(q, dict) else None
            if isinstance(hist, dict) and {"edges", "true_links", "false_links"} <= set(hist):
                out[source] = hist
        if out and len(out) == len(per_source):
            return kind, out
    return "probability", {}


def recall_by_status(ctx: dict) -> pd.DataFrame:
    """Recall (share of a source's true records linked) by source x true status."""
    rows = []
    for source, q in _per_source(ctx.get("linkage_eval")).items():
        by_status = first_key(q, "recall_by_status", "recall_by_true_status", "by_status")
        if not isinstance(by_status, dict):
            continue
        for status, value in by_status.items():
            value = first_key(value, "recall") if isinstance(value, dict) else value
            if numeric(value) is not None:
                rows.append({"source": source, "status": status, "recall": numeric(value)})
    return pd.DataFrame(rows, columns=["source", "status", "recall"])


def method_metrics(ctx: dict) -> pd.DataFrame:
    """Tidy ``method, quantity, metric, value`` from ``evaluation/estimates.json``."""
    ev = ctx.get("estimates_eval") or {}
    methods = first_key(ev, "methods", default=ev)
    rows = []
    for method, by_quantity in (methods or {}).items():
        if not isinstance(by_quantity, dict):
            continue
        for quantity, metrics in by_quantity.items():
            if not isinstance(metrics, dict):
                continue
            county_mean = _county_mean_abs(metrics)
            if county_mean is not None and "county_mean_abs_rel_error" not in metrics:
                # Derived from the per-county entries, so county error reads as a mean
                # (like the tract one) rather than the worst county.
                metrics = {**metrics, "county_mean_abs_rel_error": county_mean}
            for metric, value in metrics.items():
                if numeric(value) is not None:
                    rows.append(
                        {
                            "method": method,
                            "quantity": quantity,
                            "metric": metric,
                            "value": numeric(value),
                        }
                    )
    return pd.DataFrame(rows, columns=["method", "quantity", "metric", "value"])


def metric(metrics: pd.DataFrame, method: str, quantity: str, *names: str) -> float | None:
    """One number from ``method_metrics`` (the first of ``names`` present)."""
    for name in names:
        hit = metrics[
            (metrics["method"] == method)
            & (metrics["quantity"] == quantity)
            & (metrics["metric"] == name)
        ]
        if len(hit):
            return float(hit["value"].iloc[0])
    return None


# Key spellings accepted for each metric (the model stage's evaluate.py names first).
COVERAGE90_KEYS = ("coverage90_pit", "coverage90", "coverage_90", "coverage", "coverage_pit90")
WIDTH_KEYS = ("mean_width90", "mean_width", "width", "width90")
MAE_KEYS = ("block_mae", "mae", "MAE")
RMSE_KEYS = ("block_rmse", "rmse", "RMSE")
TRACT_KEYS = ("tract_mean_abs_rel_error", "tract_rel_error", "tract_relative_error")
COUNTY_KEYS = (
    "county_mean_abs_rel_error",
    "county_rel_error",
    "county_relative_error",
    "county_max_abs_rel_error",
)


def coverage_curve(ctx: dict) -> pd.DataFrame:
    """Empirical vs nominal interval coverage by method and quantity.

    Reads a ``coverage`` mapping ``{nominal: empirical}`` per method and quantity when present
    (several levels), else the single 90% number.
    """
    ev = ctx.get("estimates_eval") or {}
    methods = first_key(ev, "methods", default=ev)
    rows = []
    for method, by_quantity in (methods or {}).items():
        if not isinstance(by_quantity, dict):
            continue
        for quantity, metrics in by_quantity.items():
            if not isinstance(metrics, dict):
                continue
            levels = first_key(
                metrics, "coverage_levels", "coverage_by_level", "coverage_pit", "coverage"
            )
            if isinstance(levels, dict):
                for nominal, empirical in levels.items():
                    nominal_value = numeric(str(nominal).rstrip("%"))
                    if nominal_value is not None and numeric(empirical) is not None:
                        if nominal_value > 1:
                            nominal_value /= 100
                        rows.append(
                            {
                                "method": method,
                                "quantity": quantity,
                                "nominal": nominal_value,
                                "empirical": numeric(empirical),
                            }
                        )
            else:
                value = numeric(first_key(metrics, *COVERAGE90_KEYS))
                if value is not None:
                    rows.append(
                        {"method": method, "quantity": quantity, "nominal": 0.9, "empirical": value}
                    )
    return pd.DataFrame(rows, columns=["method", "quantity", "nominal", "empirical"])


def coverage90(curve: pd.DataFrame, method: str, quantity: str) -> float | None:
    """The empirical coverage of nominal 90% intervals, if evaluated."""
    hit = curve[
        (curve["method"] == method)
        & (curve["quantity"] == quantity)
        & (np.isclose(curve["nominal"], 0.9))
    ]
    return float(hit["empirical"].iloc[0]) if len(hit) else None


def person_cost(ctx: dict) -> dict[str, float]:
    """Person-level misclassification cost of the record rule (numbers only)."""
    ev = ctx.get("estimates_eval") or {}
    cost = first_key(
        ev, "record_rule_cost", "record_rule_person_cost", "person_cost", "person_level_cost"
    )
    if cost is None:
        rule = first_key(first_key(ev, "methods", default=ev) or {}, "record_rule") or {}
        cost = first_key(rule, "person_cost", "person_level_cost")
    if isinstance(cost, dict):
        return {k: numeric(v) for k, v in cost.items() if numeric(v) is not None}
    return {}


def category_base(label: str) -> str:
    """Base evidence category of a model label: ``noncitizen_old_lo`` -> ``noncitizen``."""
    base = str(label)
    for suffix in ("_hi", "_lo"):
        base = base.removesuffix(suffix)
    return base.removesuffix("_old")


def behaviour_table(diagnostics: Any) -> pd.DataFrame:
    """``source, latent_class, category, mean, lo90, hi90`` from ``model/diagnostics.json``.

    The model stage writes ``source_behaviour: {source: {class: {category: {mean, lo90,
    hi90}}}}``; a list of flat rows is accepted too.
    """
    columns = ["source", "latent_class", "category", "mean", "lo90", "hi90"]
    raw = first_key(diagnostics or {}, "source_behaviour", "source_behavior")
    rows = []
    if isinstance(raw, dict):
        for source, by_class in raw.items():
            for klass, by_category in (by_class or {}).items():
                for category, stats in (by_category or {}).items():
                    if isinstance(stats, dict):
                        rows.append(
                            {
                                "source": source,
                                "latent_class": klass,
                                "category": category,
                                **{k: numeric(stats.get(k)) for k in columns[3:]},
                            }
                        )
    elif isinstance(raw, list):
        for row in raw:
            if isinstance(row, dict):
                rows.append(
                    {
                        "source": row.get("source"),
                        "latent_class": row.get("latent_class", row.get("class")),
                        "category": row.get("category"),
                        **{k: numeric(row.get(k)) for k in columns[3:]},
                    }
                )
    return pd.DataFrame(rows, columns=columns)


def _posterior_conditional(
    posterior, source: str, klass: str, numerator: set[str], denominator: set[str]
) -> np.ndarray | None:
    """Draws of P(category in numerator | class, category in denominator) from ``theta_<s>``."""
    if posterior is None or "posterior" not in posterior.children:
        return None
    ds = posterior["posterior"].to_dataset()
    name = f"theta_{source}"
    if name not in ds:
        return None
    theta = ds[name]
    class_dim = next((d for d in theta.dims if d == "class"), None)
    cat_dim = next((d for d in theta.dims if str(d).startswith("cat")), None)
    if class_dim is None or cat_dim is None or klass not in theta[class_dim].values.tolist():
        return None
    labels = [str(c) for c in theta[cat_dim].values.tolist()]
    num = [i for i, c in enumerate(labels) if category_base(c) in numerator]
    den = [i for i, c in enumerate(labels) if category_base(c) in denominator]
    if not num or not den:
        return None
    sub = theta.sel({class_dim: klass}).stack(sample=("chain", "draw")).transpose(cat_dim, ...)
    values = sub.to_numpy()
    denominator_draws = values[den].sum(axis=0)
    return values[num].sum(axis=0) / np.where(denominator_draws > 0, denominator_draws, np.nan)


def _truth_value(parameters: Any, path: str) -> float | None:
    node = parameters
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return numeric(node)


# Truth statuses behind each latent class (the model's noncitizen classes; "noncitizen" is the
# single noncitizen class of a 3-class model).
CLASS_STATUSES = {
    "native_citizen": ("native_citizen",),
    "naturalized": ("naturalized",),
    "lpr": ("lpr",),
    "other_noncitizen": ("temporary", "unauthorized"),
    "noncitizen": ("lpr", "temporary", "unauthorized"),
}


def _acs_misreport(klass: str):
    """Generating share of a noncitizen class answering 'citizen' in the ACS, by status mix."""

    def truth(parameters: Any) -> float | None:
        rates = _truth_value_dict(parameters, "synthetic.sources.acs.misreport_citizen")
        shares = _truth_value_dict(parameters, "realized.status_shares")
        statuses = [s for s in CLASS_STATUSES[klass] if s in rates and s in shares]
        weight = sum(shares[s] for s in statuses)
        if not statuses or weight <= 0:
            return None
        return sum(rates[s] * shares[s] for s in statuses) / weight

    return truth


def _truth_value_dict(parameters: Any, path: str) -> dict[str, float]:
    node = parameters
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return {}
        node = node[key]
    return (
        {k: float(v) for k, v in node.items() if numeric(v) is not None}
        if isinstance(node, dict)
        else {}
    )


# Source behaviours whose generating value is known from truth/parameters.json, stated
# conditionally on a link (the model's probabilities include the chance of no link at all).
BEHAVIOUR_CHECKS = (
    {
        "label": "Numident says noncitizen | naturalized citizen, linked",
        "source": "ssa_numident",
        "latent_class": "naturalized",
        "numerator": {"noncitizen"},
        "denominator": {"citizen", "naturalized", "noncitizen", "lpr", "unknown"},
        "truth": lambda p: _truth_value(p, "realized.numident_naturalized_marked_noncitizen_share"),
        "truth_note": "realized share of naturalized Numident holders recorded as noncitizen",
    },
    *(
        {
            "label": f"ACS says citizen | {words}, linked and answered",
            "source": "acs",
            "latent_class": klass,
            "numerator": {"citizen", "naturalized"},
            "denominator": {"citizen", "naturalized", "noncitizen", "lpr"},
            "truth": _acs_misreport(klass),
            "truth_note": "misreport_citizen rates weighted by the realized status mix",
        }
        for klass, words in (
            ("noncitizen", "noncitizen"),
            ("lpr", "LPR"),
            ("other_noncitizen", "other noncitizen"),
        )
    ),
)


LINKED = {"citizen", "naturalized", "noncitizen", "lpr", "unknown"}


def _coverage_truth(source: str, klass: str):
    """Generating share of persons of latent class ``klass`` whom ``source`` holds a record of
    (``realized.source_coverage_by_status``; a class of several statuses weighted by shares)."""

    def truth(parameters: Any) -> float | None:
        coverage = _truth_value_dict(parameters, f"realized.source_coverage_by_status.{source}")
        shares = _truth_value_dict(parameters, "realized.status_shares")
        statuses = [s for s in CLASS_STATUSES[klass] if s in coverage]
        if len(statuses) == 1:
            return coverage[statuses[0]]
        statuses = [s for s in statuses if s in shares]
        weight = sum(shares[s] for s in statuses)
        if not statuses or weight <= 0:
            return None
        return sum(coverage[s] * shares[s] for s in statuses) / weight

    return truth


CLASS_WORDS = {
    "native_citizen": "native-born citizen",
    "naturalized": "naturalized citizen",
    "noncitizen": "noncitizen",
    "lpr": "LPR",
    "other_noncitizen": "other noncitizen",
}
COVERAGE_CHECKS = (
    ("state_passports", "native_citizen"),
    ("state_passports", "naturalized"),
    ("uscis_naturalizations", "naturalized"),
    ("uscis_lpr", "lpr"),
    ("cbp_ice", "noncitizen"),
    ("cbp_ice", "other_noncitizen"),
    ("irs_itin", "noncitizen"),
    ("irs_itin", "other_noncitizen"),
)
BEHAVIOUR_CHECKS = BEHAVIOUR_CHECKS + tuple(
    {
        "label": f"{SOURCE_LABELS[source]} links | {CLASS_WORDS[klass]}",
        "source": source,
        "latent_class": klass,
        "numerator": LINKED,
        "denominator": LINKED | {"none"},
        "truth": _coverage_truth(source, klass),
        "truth_note": "realized share of the class the source holds a record of, times the "
        "source's share of records that were shared and linked",
        "adjust_linked": True,
    }
    for source, klass in COVERAGE_CHECKS
)


def source_behaviour(ctx: dict, fit: str = "exact") -> pd.DataFrame:
    """Estimated source behaviours (posterior mean, 90% interval) beside generating values.

    Each check in ``BEHAVIOUR_CHECKS`` is computed from the posterior draws of
    ``theta_<source>`` when the fit's ``posterior.nc`` has them, else as a ratio of the
    posterior means in its ``diagnostics.json`` (then without an interval). ``fit`` is
    ``"exact"`` (``model/``) or ``"privacy"`` (``privacy/model/``).
    """
    prefix = "" if fit == "exact" else "privacy_"
    table = behaviour_table(ctx.get(f"{prefix}diagnostics"))
    parameters = ctx.get("parameters") or {}
    rows = []
    for check in BEHAVIOUR_CHECKS:
        truth = check["truth"](parameters)
        if truth is not None and check.get("adjust_linked"):
            # Records withheld by policy or not linked never reach the model: the generating
            # value of a linked share is the coverage times the linked share of records.
            entry = withheld_entry(ctx.get("withheld"), check["source"])
            records, linked = numeric(entry.get("records_in")), numeric(entry.get("records_linked"))
            truth = truth * linked / records if records and linked is not None else None
        draws = _posterior_conditional(
            ctx.get(f"{prefix}posterior"),
            check["source"],
            check["latent_class"],
            check["numerator"],
            check["denominator"],
        )
        mean = lo = hi = None
        if draws is not None and np.isfinite(draws).any():
            finite = draws[np.isfinite(draws)]
            mean, lo, hi = (
                float(finite.mean()),
                float(np.quantile(finite, 0.05)),
                float(np.quantile(finite, 0.95)),
            )
        elif not table.empty:
            part = table[
                (table["source"] == check["source"])
                & (table["latent_class"] == check["latent_class"])
            ]
            bases = part["category"].map(category_base)
            den = part.loc[bases.isin(check["denominator"]), "mean"].sum()
            if den > 0:
                mean = float(part.loc[bases.isin(check["numerator"]), "mean"].sum() / den)
        if mean is None:
            continue
        rows.append(
            {
                "label": check["label"],
                "mean": mean,
                "lo90": lo,
                "hi90": hi,
                "truth": truth,
                "truth_note": check["truth_note"],
                "fit": fit,
            }
        )
    return pd.DataFrame(
        rows, columns=["label", "mean", "lo90", "hi90", "truth", "truth_note", "fit"]
    )


def ledger_table(ledger: Any) -> pd.DataFrame:
    """The privacy ledger's measurements: name, rho, noise sigma, running total of rho."""
    if not isinstance(ledger, dict):
        return pd.DataFrame()
    entries = first_key(ledger, "measurements", "entries", "ledger", default=[])
    if isinstance(entries, dict):
        entries = [
            {"name": k, **v} if isinstance(v, dict) else {"name": k, "rho": v}
            for k, v in entries.items()
        ]
    rows = []
    running = 0.0
    for entry in entries or []:
        if not isinstance(entry, dict):
            continue
        rho = numeric(first_key(entry, "rho"))
        stated = numeric(
            first_key(entry, "rho_running_total", "running_rho", "rho_running", "running_total")
        )
        running = stated if stated is not None else running + (rho or 0.0)
        name = first_key(entry, "name", "measurement", "table", default="")
        detail = [str(entry[k]) for k in ("geo_level", "pattern_level") if k in entry]
        rows.append(
            {
                "measurement": " / ".join([str(name), *detail]) if detail else str(name),
                "rho": rho,
                "epsilon": numeric(first_key(entry, "epsilon")),
                "sigma": numeric(first_key(entry, "noise_std", "sigma", "noise_scale", "scale")),
                "cells": numeric(first_key(entry, "cells")),
                "running_rho": running,
            }
        )
    return pd.DataFrame(rows)


def privacy_parameters(ctx: dict) -> dict[str, Any]:
    """Mode, spent and budgeted rho, epsilon and delta from the ledger (or the metadata).

    The privacy stage's ledger holds ``mode``, ``budget: {rho, delta, epsilon}`` and
    ``total: {rho, epsilon, delta}`` (spent); flat keys are accepted too.
    """
    ledger = ctx.get("ledger") or first_key(ctx.get("metadata") or {}, "privacy") or {}
    total = first_key(ledger, "total", default={}) or {}
    budget = first_key(ledger, "budget", default={}) or {}
    mode = first_key(ledger, "mode", "privacy_mode", default="unknown")
    rho = numeric(first_key(total, "rho")) if isinstance(total, dict) else None
    rho = rho if rho is not None else numeric(first_key(ledger, "rho_total", "total_rho", "rho"))
    epsilon = numeric(first_key(total, "epsilon")) if isinstance(total, dict) else None
    epsilon = epsilon if epsilon is not None else numeric(first_key(ledger, "epsilon"))
    delta = numeric(first_key(total, "delta")) if isinstance(total, dict) else None
    delta = delta if delta is not None else numeric(first_key(budget, "delta"))
    delta = delta if delta is not None else numeric(first_key(ledger, "delta"))
    return {
        "mode": str(mode),
        "protected": first_key(ledger, "privacy_protected"),
        "rho": rho,
        "epsilon": epsilon,
        "delta": delta,
        "budget_rho": numeric(first_key(budget, "rho")) if isinstance(budget, dict) else None,
        "remaining_rho": numeric(first_key(ledger, "remaining_rho")),
        "mechanism": first_key(
            (first_key(ledger, "measurements", default=[{}]) or [{}])[0], "mechanism"
        ),
        "warning": first_key(ledger, "warning"),
        "noise_source": first_key(ledger, "noise_source"),
        "neighbouring_relation": first_key(ledger, "neighbouring_relation"),
        "public": list(first_key(ledger, "public", default=[]) or []),
        "limitations": list(first_key(ledger, "limitations", default=[]) or []),
    }


def headline(ctx: dict) -> pd.DataFrame:
    """Totals over the whole run for citizens, noncitizens and CVAP with 90% intervals.

    The intervals come from the county table (one county: its row; several: summed draws when
    the report computed them, else summing county intervals is *not* done and they are blank).
    """
    counties = ctx["counties"]
    overall = ctx.get("overall")
    rows = []
    for quantity in QUANTITIES:
        if overall is not None:
            est, lo, hi = (overall[f"{quantity}_{s}"] for s in ("est", "lo90", "hi90"))
        elif len(counties) == 1 and f"{quantity}_lo90" in counties:
            row = counties.iloc[0]
            est, lo, hi = (row[f"{quantity}_{s}"] for s in ("est", "lo90", "hi90"))
        else:
            est, lo, hi = ctx["blocks"][f"{quantity}_est"].sum(), None, None
        rows.append(
            {
                "quantity": quantity,
                "estimate": numeric(est),
                "lo90": numeric(lo),
                "hi90": numeric(hi),
            }
        )
    return pd.DataFrame(rows)


def methods_present(metrics: pd.DataFrame) -> list[str]:
    """Methods in the evaluation, in the report's canonical order."""
    present = list(dict.fromkeys(metrics["method"]))
    return [m for m in METHODS if m in present] + [m for m in present if m not in METHODS]


def published_accuracy(published_eval: Any) -> pd.DataFrame:
    """Accuracy of the published (post-privacy) tables from ``evaluation/published.json``:
    one row per quantity with block coverage, MAE, RMSE, bias, width and the mean absolute
    relative error of tract and county sums."""
    if not isinstance(published_eval, dict):
        return pd.DataFrame()
    block = first_key(published_eval, "block", default={}) or {}
    rows = []
    for quantity in QUANTITIES:
        b = block.get(quantity) if isinstance(block.get(quantity), dict) else {}
        tract = (published_eval.get("tract") or {}).get(quantity) or {}
        county = (published_eval.get("county") or {}).get(quantity) or {}
        if not (b or tract or county):
            continue
        rows.append(
            {
                "quantity": quantity,
                "coverage90": numeric(first_key(b, *COVERAGE90_KEYS)),
                "mae": numeric(first_key(b, *MAE_KEYS)),
                "rmse": numeric(first_key(b, *RMSE_KEYS)),
                "bias": numeric(first_key(b, "bias")),
                "width": numeric(first_key(b, *WIDTH_KEYS)),
                "tract": numeric(first_key(tract, "mean_abs_relative_error", *TRACT_KEYS)),
                "county": numeric(first_key(county, "mean_abs_relative_error", *COUNTY_KEYS)),
            }
        )
    return pd.DataFrame(rows)


FIT_LABELS = {
    "exact": "Exact fit (model/)",
    "privacy": "Privacy fit (privacy/model/)",
}


def report_targets(config: dict, settings: dict) -> tuple[dict[str, Any], bool]:
    """The convergence targets the report judges fits by, and whether the report imposes them.

    ``model.convergence`` (what each fit was held to), unless ``report.rhat_max`` or
    ``report.ess_min`` is set: then those replace the model's and every fit is judged again.
    """
    targets = convergence_targets(config or {})
    imposed = {
        key: float(settings[key])
        for key in ("rhat_max", "ess_min")
        if settings.get(key) is not None
    }
    return {**targets, **imposed}, bool(imposed)


def fit_convergence(diag: dict | None, targets: dict, imposed: bool = False) -> dict[str, Any]:
    """A fit's convergence verdict: its own (``diagnostics.json``) unless the report imposes
    targets or the file predates the verdict, then recomputed against ``targets``."""
    own = isinstance(diag, dict) and "converged" in diag and bool(diag.get("convergence_targets"))
    return fit_status(
        diag if isinstance(diag, dict) else None, None if own and not imposed else targets
    )


def fit_diagnostics(
    ctx: dict, targets: dict | None = None, imposed: bool = False
) -> list[dict[str, Any]]:
    """One row of sampler diagnostics per fit: the exact fit, and the privacy fit if made.

    The privacy fit is the one publication reads, so its row matters as much as the exact
    fit's; under privacy mode none it does not exist and the row says publication used the
    exact fit. Each row says whether the fit met its convergence targets (``converged``,
    ``failures``, ``targets``; see :func:`fit_convergence`).
    """
    if targets is None:
        targets = convergence_targets(ctx.get("config") or {})
    rows = []
    fits = [("exact", ctx.get("diagnostics"), "exact block x age x pattern cells")]
    if ctx.get("privacy_mode", "unknown") != "none":
        fits.append(
            ("privacy", ctx.get("privacy_diagnostics"), "noisy zCDP measurements (published)")
        )
    for fit, diag, reads in fits:
        diag = diag if isinstance(diag, dict) else {}
        tables = first_key(diag, "measurement_tables", default=[]) or []
        noisy = [t for t in tables if isinstance(t, dict) and (numeric(t.get("sigma")) or 0) > 0]
        if noisy:
            reads = "noisy tables: " + "; ".join(
                f"{t.get('table', '?')} ({int(numeric(t.get('rows')) or 0):,} cells, "
                f"noise s.d. {numeric(t.get('sigma')):.3g})"
                for t in noisy
            )
        elif numeric(first_key(diag, "n_cells")):
            reads = f"exact block × age × pattern cells ({int(diag['n_cells']):,})"
        rows.append(
            {
                "fit": fit,
                "label": FIT_LABELS[fit],
                "reads": reads,
                "available": bool(diag),
                "max_rhat": numeric(first_key(diag, "max_rhat")),
                "min_ess_bulk": numeric(first_key(diag, "min_ess_bulk")),
                "min_ess_tail": numeric(first_key(diag, "min_ess_tail")),
                "divergences": numeric(first_key(diag, "divergences")),
                "chains": numeric(first_key(diag, "chains", "n_chains")),
                "draws": numeric(first_key(diag, "draws", "n_draws")),
                "sampling_seconds": numeric(first_key(diag, "sampling_seconds")),
                "n_cells": numeric(first_key(diag, "n_cells")),
                "exact": first_key(diag, "exact"),
                **{
                    key: value
                    for key, value in fit_convergence(diag, targets, imposed).items()
                    if key != "available"
                },
            }
        )
    return rows


def _county_mean_abs(by_quantity: dict) -> float | None:
    """Mean absolute relative county error from estimates.json's per-county entries."""
    counties = first_key(by_quantity, "counties", default={}) or {}
    errors = [
        abs(numeric(c.get("rel_error")))
        for c in counties.values()
        if isinstance(c, dict) and numeric(c.get("rel_error")) is not None
    ]
    return float(np.mean(errors)) if errors else None


# What the noise costs: the same metric of the exact fit (estimates.json, method "model") and of
# the published blocks (published.json). Coverage compares the inclusive interval check, which
# is what published.json computes (estimates.json's PIT coverage has no published counterpart).
NOISE_METRICS = (
    ("mae", "Block MAE (persons)", ("block_mae",), ("mae",)),
    ("rmse", "Block RMSE (persons)", ("block_rmse",), ("rmse",)),
    ("bias", "Block bias (persons, est. − true)", ("block_bias",), ("bias",)),
    (
        "coverage90",
        "Block 90% coverage, equal-tailed (inclusive)",
        ("coverage90_inclusive",),
        ("coverage90",),
    ),
    ("width", "Mean 90% width (persons)", ("mean_width90",), ("mean_width90",)),
    ("tract", "Tract mean abs. rel. error", ("tract_mean_abs_rel_error",), ()),
    ("county_mean", "County mean abs. rel. error", (), ()),
    ("county_max", "County max abs. rel. error", ("county_max_abs_rel_error",), ()),
)


def noise_cost(ctx: dict) -> pd.DataFrame:
    """``quantity, metric, label, exact, published, change``: the exact-fit model against the
    published (noisy, post-processed) estimates, metric by metric, against the same truth."""
    columns = ["quantity", "metric", "label", "exact", "published", "change"]
    ev = ctx.get("estimates_eval") or {}
    model = (first_key(ev, "methods", default=ev) or {}).get("model") or {}
    pub = ctx.get("published_eval")
    if not isinstance(pub, dict) or not model:
        return pd.DataFrame(columns=columns)
    rows = []
    for quantity in QUANTITIES:
        exact_q = model.get(quantity) if isinstance(model.get(quantity), dict) else {}
        block = (pub.get("block") or {}).get(quantity) or {}
        tract = (pub.get("tract") or {}).get(quantity) or {}
        county = (pub.get("county") or {}).get(quantity) or {}
        if not exact_q or not block:
            continue
        for key, label, exact_keys, published_keys in NOISE_METRICS:
            exact = numeric(first_key(exact_q, *exact_keys)) if exact_keys else None
            if key == "county_mean":
                exact = _county_mean_abs(exact_q)
                published = numeric(first_key(county, "mean_abs_relative_error"))
            elif key == "tract":
                published = numeric(first_key(tract, "mean_abs_relative_error"))
            elif key == "county_max":
                published = numeric(first_key(county, "max_abs_relative_error"))
            else:
                published = numeric(first_key(block, *published_keys))
            if exact is None and published is None:
                continue
            change = published - exact if exact is not None and published is not None else None
            rows.append(
                {
                    "quantity": quantity,
                    "metric": key,
                    "label": label,
                    "exact": exact,
                    "published": published,
                    "change": change,
                }
            )
    return pd.DataFrame(rows, columns=columns)


def sensitivity_table(summary: pd.DataFrame | None, quantity: str = "citizens") -> pd.DataFrame:
    """One row per sweep run (knob, value) for ``quantity``: the model's block MAE, 90%
    coverage, interval width and county error beside the baselines' block MAE.

    ``results/sensitivity/summary_report.csv`` holds the sweep's block-level replicate means;
    the report shows this compact view (every level and method: ``summary.csv`` and the
    sweep's own report beside it).
    """
    columns = [
        "knob",
        "value",
        "model_mae",
        "model_coverage",
        "model_width",
        "model_county",
        "record_rule_mae",
        "census_style_mae",
    ]
    if summary is None or summary.empty or not {"knob", "value"} <= set(summary.columns):
        return pd.DataFrame(columns=columns)
    part = summary
    if "quantity" in part:
        part = part[part["quantity"].astype(str) == quantity]
    if "method" not in part:
        part = part.assign(method="model")

    def pick(frame: pd.DataFrame, keys: tuple[str, ...]) -> pd.Series:
        name = next((k for k in keys if k in frame), None)
        return frame[name] if name else pd.Series(np.nan, index=frame.index)

    rows = []
    for (knob, value), group in part.groupby(["knob", "value"], sort=False):
        by_method = {m: g for m, g in group.groupby("method")}
        model = by_method.get("model")
        row = {"knob": str(knob), "value": str(value)}
        if model is not None:
            row["model_mae"] = numeric(pick(model, MAE_KEYS).iloc[0])
            row["model_coverage"] = numeric(pick(model, COVERAGE90_KEYS).iloc[0])
            row["model_width"] = numeric(pick(model, WIDTH_KEYS).iloc[0])
            row["model_county"] = numeric(pick(model, COUNTY_KEYS).iloc[0])
        for method in ("record_rule", "census_style"):
            if method in by_method:
                row[f"{method}_mae"] = numeric(pick(by_method[method], MAE_KEYS).iloc[0])
        rows.append(row)
    table = pd.DataFrame(rows, columns=columns)
    # The unchanged baseline run first, then knobs in the file's order.
    order = (table["knob"] != "baseline").astype(int)
    return table.assign(_o=order).sort_values("_o", kind="stable").drop(columns="_o")


# ---------------------------------------------------------------- calibration at every level

CALIBRATION_COLUMNS = (
    ("published", "citizens"),
    ("published", "cvap"),
    ("exact", "citizens"),
    ("exact", "cvap"),
)
CALIBRATION_BAND = (0.85, 0.95)
# Levels listed with the count of covered units beside the share (a handful of units each).
FEW_UNITS = 10


def calibration_level_label(level: str) -> str:
    """``district_3000`` -> ``districts of ~3,000 persons``; ``block_group`` -> ``block group``."""
    if level.startswith("district_"):
        return f"districts of ~{int(level.split('_', 1)[1]):,} persons"
    return {"total": "run total"}.get(level, level.replace("_", " "))


def _band_reachable(n_units: int, band: tuple[float, float]) -> bool:
    """Whether some share k / n of ``n_units`` units lies in the band (not with 4 counties)."""
    return any(band[0] <= k / n_units <= band[1] for k in range(n_units + 1))


def _calibration_cell(
    row: dict | None, level: str, band: tuple[float, float], key: str = "coverage"
) -> dict[str, Any]:
    """One table cell: the coverage text, and whether it missed the band (plain words)."""
    coverage = numeric(row.get(key)) if row else None
    if coverage is None:
        return {"text": "–", "missed": False, "unreachable": False}
    n_units = int(numeric(row.get("n_units")) or 0)
    if level == "total":
        covered = coverage >= 1
        return {"text": "covered" if covered else "", "missed": not covered, "unreachable": False}
    missed = not band[0] <= coverage <= band[1]
    text = f"{coverage:.1%}"
    if 0 < n_units <= FEW_UNITS:
        text += f" ({round(coverage * n_units)}/{n_units})"
    return {
        "text": text,
        "missed": missed,
        "unreachable": missed and n_units > 0 and not _band_reachable(n_units, band),
    }


def calibration_levels(calibration_eval: Any) -> tuple[list[dict], pd.DataFrame]:
    """The report's table of ``evaluation/calibration.json``, and its rows for the figure.

    Table rows: one per level (block twice: equal-tailed interval and randomized PIT) with
    ``label, level, units, persons`` and ``cells`` for published and exact x citizens and CVAP:
    ``text`` (coverage; the run total: ``covered``), ``missed`` (outside the 0.85-0.95 band, or
    the run total not covered) and ``unreachable`` (too few units for any share to lie in the
    band). The second value is the summary table (``method, level, quantity, coverage, ...``).
    """
    if not isinstance(calibration_eval, dict) or not calibration_eval.get("summary"):
        return [], pd.DataFrame()
    summary = pd.DataFrame(calibration_eval["summary"])
    band = tuple(calibration_eval.get("coverage_target") or CALIBRATION_BAND)
    by_key = {(r["method"], r["level"], r["quantity"]): r for r in summary.to_dict("records")}
    levels = calibration_eval.get("levels") or list(dict.fromkeys(summary["level"]))
    rows = []
    for level in levels:
        present = summary[summary["level"] == level]
        if present.empty:
            continue
        first = present.iloc[0]
        variants = [("coverage", calibration_level_label(level))]
        if level == "block":
            variants = [
                ("coverage", "block (equal-tailed interval)"),
                ("pit_coverage", "block (randomized PIT)"),
            ]
        for key, label in variants:
            rows.append(
                {
                    "label": label,
                    "level": level,
                    "units": int(first["n_units"]),
                    "persons": numeric(first.get("mean_population")),
                    "cells": [
                        _calibration_cell(by_key.get((m, level, q)), level, band, key)
                        for m, q in CALIBRATION_COLUMNS
                    ],
                }
            )
    return rows, summary


COMPARISON_METHODS = ("published", "exact", "acs_direct", "census_style", "record_rule")
COMPARISON_LEVELS = (
    "block",
    "block_group",
    "tract",
    "district_1000",
    "district_3000",
    "district_10000",
    "district_30000",
    "county",
)


def comparison_tables(comparison_eval: Any) -> tuple[list[dict], pd.DataFrame, dict]:
    """The report's view of ``evaluation/comparison.json``.

    Returns
    -------
    (rows, summary, facts)
        ``rows``: one per level and quantity (citizens, CVAP) with ``label, quantity, units,
        persons`` and ``mae`` / ``coverage`` / ``width`` lists in :data:`COMPARISON_METHODS`
        order (None where a method is absent); ``summary``: the JSON's summary table;
        ``facts``: ``targets`` (name, met, sentence) and ``moe`` (the ACS baseline's own
        block-group MOE coverage per quantity).
    """
    if not isinstance(comparison_eval, dict) or not comparison_eval.get("summary"):
        return [], pd.DataFrame(), {}
    summary = pd.DataFrame(comparison_eval["summary"])
    by_key = {(r["method"], r["level"], r["quantity"]): r for r in summary.to_dict("records")}
    rows = []
    for level in COMPARISON_LEVELS:
        for quantity in ("citizens", "cvap"):
            present = [by_key.get((m, level, quantity)) for m in COMPARISON_METHODS]
            first = next((r for r in present if r), None)
            if first is None:
                continue
            rows.append(
                {
                    "label": calibration_level_label(level),
                    "quantity": "citizens" if quantity == "citizens" else "CVAP",
                    "units": int(first["n_units"]),
                    "persons": numeric(first.get("mean_population")),
                    "mae": [numeric(r.get("mae")) if r else None for r in present],
                    "coverage": [numeric(r.get("coverage")) if r else None for r in present],
                    "width": [numeric(r.get("mean_width")) if r else None for r in present],
                }
            )
    targets = comparison_eval.get("targets") or {}
    sentences = []
    block = (targets.get("block_mae_at_most_half_of_acs_direct") or {}).get("quantities") or {}
    for quantity, entry in block.items():
        sentences.append(
            {
                "met": bool(entry.get("met")),
                "text": f"Block MAE of {quantity}: published {entry.get('published_mae', 0):.2f} "
                f"against {entry.get('acs_direct_mae', 0):.2f} for the ACS disaggregation "
                "(target: at most half).",
            }
        )
    group = (targets.get("block_group_width_and_coverage") or {}).get("quantities") or {}
    for quantity, entry in group.items():
        sentences.append(
            {
                "met": bool(entry.get("met")),
                "text": f"Block groups, {quantity}: published 90% intervals "
                f"{entry.get('published_mean_width', 0):.1f} persons wide on average against "
                f"{entry.get('acs_moe_interval_mean_width', 0):.1f} for the ACS estimate +- MOE; "
                f"published coverage {entry.get('published_coverage', 0):.3f} "
                "(target: no wider, coverage 0.85-0.95).",
            }
        )
    districts = targets.get("districts_1000_30000_mae_below_acs_direct") or {}
    for quantity, entry in (districts.get("quantities") or {}).items():
        sizes = entry.get("sizes") or {}
        detail = "; ".join(
            f"~{int(level.split('_')[1]):,}: {v.get('published_mae', 0):.1f} vs "
            f"{v.get('acs_direct_mae', 0):.1f}"
            for level, v in sizes.items()
        )
        sentences.append(
            {
                "met": bool(entry.get("met")),
                "text": f"Compact districts, {quantity} MAE published vs ACS ({detail}) "
                "(target: below at every size).",
            }
        )
    moe = comparison_eval.get("acs_direct_moe_coverage") or {}
    return rows, summary, {"targets": sentences, "moe": moe}
