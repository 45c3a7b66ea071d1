"""Evaluation against the quarantined truth (the only module of this stage that reads it).

For every method (``model``, ``record_rule``, ``census_style``) and quantity (``citizens``,
``noncitizens``, ``cvap``): block MAE and RMSE of the posterior mean, 90% interval coverage by
randomized PIT (``u = F(y-1) + V (F(y) - F(y-1))``, covered when ``0.05 <= u <= 0.95``) and by
inclusive percentiles (for comparison: discrete counts over-cover), mean interval width, tract
and county relative errors, county totals against truth. Plus the person-level cost of the
record rule. The truth is restricted to enumerated persons (the frame): every method estimates
the frame population, whose block x age counts are public.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.baselines import record_rule_labels

QUANTITIES = ("citizens", "noncitizens", "cvap")


def truth_blocks(truth: pd.DataFrame, frame_ids: pd.Series | None = None) -> pd.DataFrame:
    """True block counts (optionally only of frame persons)."""
    t = truth if frame_ids is None else truth.loc[truth["person_id"].isin(frame_ids)]
    citizen = t["citizen"].astype(bool)
    adult = pd.to_numeric(t["age"], errors="coerce").fillna(0) >= 18
    return (
        t.assign(
            citizens=citizen.astype(int),
            noncitizens=(~citizen).astype(int),
            cvap=(citizen & adult).astype(int),
        )
        .groupby(["block_id", "tract_id", "county_id"])[list(QUANTITIES)]
        .sum()
        .reset_index()
    )


def randomized_pit(draws: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Randomized PIT of integer ``y`` (n,) under integer ``draws`` (n, n_draws)."""
    below = (draws < y[:, None]).mean(axis=1)
    at_or_below = (draws <= y[:, None]).mean(axis=1)
    return below + rng.random(len(y)) * (at_or_below - below)


def method_metrics(
    block_draws: pd.DataFrame, truth: pd.DataFrame, rng: np.random.Generator, level: float = 0.9
) -> dict:
    """Metrics of one method's block draws against ``truth`` (from :func:`truth_blocks`)."""
    lo_q, hi_q = (1 - level) / 2, 1 - (1 - level) / 2
    out = {}
    geo = truth.set_index("block_id")[["tract_id", "county_id"]]
    blocks = truth["block_id"].to_numpy()
    for q in QUANTITIES:
        wide = block_draws.pivot(index="block_id", columns="draw", values=q)
        wide = wide.reindex(blocks).fillna(0)
        d = wide.to_numpy()
        y = truth[q].to_numpy()
        est = d.mean(axis=1)
        lo, hi = np.quantile(d, lo_q, axis=1), np.quantile(d, hi_q, axis=1)
        u = randomized_pit(d, y, rng)
        err = est - y
        by = pd.DataFrame({"est": est, "y": y}, index=blocks).join(geo)
        tract = by.groupby("tract_id")[["est", "y"]].sum()
        county = by.groupby("county_id")[["est", "y"]].sum()
        county_draws = (
            pd.DataFrame(d, index=blocks).join(geo["county_id"]).groupby("county_id").sum()
        )
        county_lo = county_draws.quantile(lo_q, axis=1)
        county_hi = county_draws.quantile(hi_q, axis=1)

        def rel(frame):
            return (frame["est"] - frame["y"]) / frame["y"].where(frame["y"] > 0)

        out[q] = {
            "block_mae": float(np.abs(err).mean()),
            "block_rmse": float(np.sqrt((err**2).mean())),
            "block_bias": float(err.mean()),
            "coverage90_pit": float(((u >= lo_q) & (u <= hi_q)).mean()),
            "coverage90_inclusive": float(((lo <= y) & (y <= hi)).mean()),
            "mean_width90": float((hi - lo).mean()),
            "tract_mean_abs_rel_error": float(rel(tract).abs().mean()),
            "county_max_abs_rel_error": float(rel(county).abs().max()),
            "counties": {
                str(c): {
                    "estimate": float(county.loc[c, "est"]),
                    "truth": int(county.loc[c, "y"]),
                    "rel_error": float(rel(county).loc[c]) if county.loc[c, "y"] > 0 else None,
                    "lo90": float(county_lo.loc[c]),
                    "hi90": float(county_hi.loc[c]),
                }
                for c in county.index
            },
            "n_blocks": len(y),
        }
    return out


def record_rule_cost(
    evidence: pd.DataFrame, truth: pd.DataFrame, frame_ids: pd.Series, threshold: float
) -> dict:
    """Person-level errors of the record rule among persons it decides (and how many it can't)."""
    t = truth.loc[truth["person_id"].isin(frame_ids)].reset_index(drop=True)
    labels = record_rule_labels(evidence, t["person_id"], threshold)
    citizen = t["citizen"].astype(bool).to_numpy()
    decided = labels.notna().to_numpy()
    lab = labels.fillna(False).astype(bool).to_numpy()
    status = t["status"].astype(str).to_numpy()
    by_status = {}
    for s in np.unique(status):
        m = status == s
        by_status[s] = {
            "persons": int(m.sum()),
            "no_definitive_record": int((m & ~decided).sum()),
            "labelled_citizen": int((m & decided & lab).sum()),
            "labelled_noncitizen": int((m & decided & ~lab).sum()),
        }
    return {
        "persons": len(t),
        "no_definitive_record": int((~decided).sum()),
        "citizens_labelled_noncitizen": int((citizen & decided & ~lab).sum()),
        "naturalized_labelled_noncitizen": int(((status == "naturalized") & decided & ~lab).sum()),
        "noncitizens_labelled_citizen": int((~citizen & decided & lab).sum()),
        "by_status": by_status,
    }


def evaluate(
    methods: dict[str, pd.DataFrame],
    truth: pd.DataFrame,
    frame: pd.DataFrame,
    evidence: pd.DataFrame,
    threshold: float,
    rng: np.random.Generator,
) -> dict:
    """The ``evaluation/estimates.json`` document."""
    tb = truth_blocks(truth, frame["person_id"])
    # Blocks in the frame with no truth rows cannot happen; blocks with estimates but no frame
    # persons are dropped (nothing to estimate).
    results = {name: method_metrics(draws, tb, rng) for name, draws in methods.items()}
    summary = {}
    for q in ("citizens", "cvap"):
        base = [results[m][q]["block_mae"] for m in results if m != "model"]
        if "model" in results and base:
            best = min(base)
            summary[q] = {
                "model_block_mae": results["model"][q]["block_mae"],
                "best_baseline_block_mae": best,
                "mae_reduction_vs_best_baseline": 1 - results["model"][q]["block_mae"] / best
                if best > 0
                else None,
            }
    return {
        "methods": results,
        "summary": summary,
        "record_rule_cost": record_rule_cost(evidence, truth, frame["person_id"], threshold),
        "truth_population": "enumerated persons (frame)",
    }
