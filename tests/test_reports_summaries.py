"""Unit tests of the report's readers and summaries, on the upstream stages' real structures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reports import narrative as N
from reports import summaries as S
from reports.data import aggregate_draws, read_benchmarks

# Shaped like linkage.stage's withheld.json: reasons beside counts and policy facts.
WITHHELD = {
    "uscis_lpr": {
        "protected_1367": 4,
        "refugee_asylee": 7,
        "total_withheld": 11,
        "records_in": 628,
        "records_shared": 617,
        "records_linked": 592,
        "persons_linked": 590,
        "fields_dropped": ["ssn"],
        "authority": "8 U.S.C. 1103",
        "policy_origin": "synthetic.sources.uscis_lpr.policy",
        "notes": [],
        "values_nulled": {"dob_invalid": 3, "ssn_invalid": 0},
    },
    "totals": {"records_in": 628, "withheld": 11, "withheld_by_reason": {"protected_1367": 4}},
}


def _ctx(**extra):
    base = {
        "config": {"synthetic": {"uscis_window_start": "1973-01-01", "sources": {}}},
        "source_records": {"uscis_lpr": 628, "acs": 100},
        "link_counts": {"uscis_lpr": 500, "acs": 90},
        "withheld": WITHHELD,
        "linkage_eval": None,
    }
    base.update(extra)
    return base


def test_withheld_keeps_only_reasons():
    assert S.withheld_by_source(WITHHELD) == {
        "uscis_lpr": {"protected_1367": 4, "refugee_asylee": 7}
    }


def test_sources_table_prefers_linkage_counts():
    table = S.sources_table(_ctx()).set_index("source")
    row = table.loc["uscis_lpr"]
    assert row["records"] == 628 and row["withheld"] == 11 and row["shared"] == 617
    assert row["linked"] == 592
    assert row["linked_share"] == pytest.approx(592 / 617)
    assert row["authority"] == "8 U.S.C. 1103"
    assert "records from 1973-01-01" in row["coverage_window"]
    # A source absent from withheld.json falls back to the files: 90 links of 100 records.
    assert table.loc["acs", "linked_share"] == pytest.approx(0.9)
    # Values linkage nulled as impossible are shown, never taken for a withholding reason.
    assert row["values_nulled"] == "dates of birth: 3"
    assert table.loc["acs", "values_nulled"] == "none"


def test_recall_by_status_reads_nested_dicts():
    evaluation = {
        "sources": {
            "acs": {
                "recall_by_status": {
                    "lpr": {"linkable": 10, "tp": 5, "recall": 0.5},
                    "naturalized": {"recall": None},
                }
            }
        }
    }
    table = S.recall_by_status({"linkage_eval": evaluation})
    assert table.to_dict("records") == [{"source": "acs", "status": "lpr", "recall": 0.5}]


def test_ledger_of_privacy_stage():
    ledger = {
        "mode": "zcdp",
        "budget": {"rho": 2.0, "delta": 1e-10, "epsilon": 14.0},
        "measurements": [
            {
                "name": "a",
                "geo_level": "county",
                "rho": 0.5,
                "rho_running_total": 0.5,
                "noise_std": 1.2,
                "cells": 10,
            },
            {
                "name": "b",
                "geo_level": "block",
                "rho": 1.5,
                "rho_running_total": 2.0,
                "noise_std": 0.7,
                "cells": 40,
            },
        ],
        "total": {"rho": 2.0, "epsilon": 14.0, "delta": 1e-10},
        "remaining_rho": 0.0,
    }
    table = S.ledger_table(ledger)
    assert table["running_rho"].tolist() == [0.5, 2.0]
    assert table["sigma"].tolist() == [1.2, 0.7]
    params = S.privacy_parameters({"ledger": ledger})
    assert (params["rho"], params["epsilon"], params["delta"]) == (2.0, 14.0, 1e-10)
    assert "epsilon = 14" in N.privacy_sentences(params)[0][1]


def test_exact_run_is_labelled_without_guarantee():
    ledger = {
        "mode": "none",
        "measurements": [{"name": "block_detail", "rho": None}],
        "total": {"rho": None, "epsilon": None, "delta": None},
    }
    level, text = N.privacy_sentences(S.privacy_parameters({"ledger": ledger}))[0]
    assert level == "warn" and "no formal privacy guarantee" in text


def test_aggregate_draws_sums_draws_not_interval_ends():
    blocks = pd.DataFrame({"block_id": ["a", "b"], "tract_id": ["t", "t"], "population": [5, 7]})
    rng = np.random.default_rng(0)
    draws = pd.DataFrame(
        {
            "draw": np.repeat(np.arange(400), 2),
            "block_id": ["a", "b"] * 400,
            "citizens": rng.integers(0, 5, 800),
            "noncitizens": rng.integers(0, 3, 800),
            "cvap": rng.integers(0, 4, 800),
        }
    )
    table = aggregate_draws(draws, blocks, "tract_id").iloc[0]
    totals = draws.groupby("draw")["citizens"].sum()
    assert table["citizens_lo90"] == pytest.approx(totals.quantile(0.05))
    assert table["citizens_hi90"] == pytest.approx(totals.quantile(0.95))
    assert table["population"] == 12
    # The interval of a sum is narrower than the sum of the blocks' intervals.
    per_block = draws.groupby("block_id")["citizens"].quantile([0.05, 0.95]).unstack()
    assert (
        table["citizens_hi90"] - table["citizens_lo90"] < (per_block[0.95] - per_block[0.05]).sum()
    )


def test_coverage_sentences_follow_the_numbers():
    curve = pd.DataFrame(
        {"method": ["model"], "quantity": ["citizens"], "nominal": [0.9], "empirical": [0.97]}
    )
    level, text = N.coverage_sentences(curve, tolerance=0.03)[0]
    assert level == "warn" and "wider than they need to be" in text and "97.0%" in text
    curve["empirical"] = 0.91
    assert N.coverage_sentences(curve, tolerance=0.03)[0][0] == "ok"


def test_coverage_curve_reads_several_levels():
    evaluation = {
        "methods": {"model": {"citizens": {"coverage": {"0.5": 0.48, "90%": 0.88}, "mae": 1.0}}}
    }
    curve = S.coverage_curve({"estimates_eval": evaluation})
    assert sorted(curve["nominal"]) == [0.5, 0.9]
    assert S.coverage90(curve, "model", "citizens") == pytest.approx(0.88)


def test_category_base():
    assert S.category_base("noncitizen_old_lo") == "noncitizen"
    assert S.category_base("citizen_hi") == "citizen"
    assert S.category_base("none") == "none"


def test_benchmarks_are_read_per_step(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "fit.tsv").write_text("s\th:m:s\tmax_rss\n12.5\t0:00:12\t300\n")
    (tmp_path / "broken.tsv").write_text("")
    table = read_benchmarks(tmp_path)
    assert table.to_dict("records") == [
        {"stage": "model", "step": "model/fit", "seconds": 12.5, "max_rss_mb": 300.0}
    ]


def test_rank_variables_prefer_named_scalars():
    import xarray as xr

    from reports.figures import pick_rank_variables

    shape = {"chain": 2, "draw": 5}
    ds = xr.Dataset(
        {
            "intercept": (("chain", "draw"), np.zeros((2, 5))),
            "age_effect": (("chain", "draw", "age"), np.zeros((2, 5, 4))),
            "sigma_block": (("chain", "draw"), np.zeros((2, 5))),
            "sigma_tract": (("chain", "draw"), np.zeros((2, 5))),
            "block_effect": (("chain", "draw", "block"), np.zeros((2, 5, 50))),
            "other": (("chain", "draw"), np.zeros((2, 5))),
        },
        coords={k: range(v) for k, v in shape.items()},
    )
    chosen = pick_rank_variables(
        ds, limit=6, preferred=["intercept", "age_effect", "sigma_tract", "sigma_block"]
    )
    assert chosen[:3] == ["intercept", "sigma_tract", "sigma_block"]
    assert "age_effect" not in chosen and "block_effect" not in chosen
    assert chosen == ["intercept", "sigma_tract", "sigma_block", "other"]
