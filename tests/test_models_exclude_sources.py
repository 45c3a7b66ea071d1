"""``model.exclude_sources``: tabulation, the model's problem and the baselines ignore a source."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.baselines import census_style, record_rule
from models.pipeline import SOURCES, build_problem, model_sources
from models.tabulate import (
    exact_measurements_from_cells,
    excluded_sources,
    public_counts_from_cells,
    tabulate,
)
from pipeline_common.config import load_config
from pipeline_common.errors import InputError

AGE_BOUNDS = [0, 18, 35, 65]
AGE_LABELS = ["0-17", "18-34", "35-64", "65+"]
BLOCKS = ["120860001001000", "120860001001001"]
MODEL_CONFIG = {
    "high_confidence_threshold": 0.9,
    "stale_split": {"ssa_numident": ["noncitizen"]},
    "stale_cutoff_year": 2000,
    "prior": {"high": 8.0, "mid": 2.0, "low": 1.0},
    "levels": ["county", "tract", "block"],
    "prior_scales": {"intercept_mu": -2.0, "intercept_sd": 2.0},
    "baselines": {"classifier": "logistic", "bootstrap_fits": 3, "draws": 30},
}


def _world(n: int = 60, seed: int = 3):
    """Persons with Numident, passport and ACS evidence in two blocks."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "person_id": [f"P{i:09d}" for i in range(n)],
            "household_id": [f"H{i // 2:09d}" for i in range(n)],
            "block_id": [BLOCKS[i % 2] for i in range(n)],
            "age": rng.integers(0, 90, n),
        }
    )
    rows = []
    for i, person in enumerate(frame["person_id"]):
        if i % 3:
            rows.append((person, "ssa_numident", "citizen" if i % 5 else "noncitizen"))
        if i % 2 == 0:
            rows.append((person, "state_passports", "citizen"))
        if i % 4 == 0:
            rows.append((person, "acs", "citizen" if i % 8 else "noncitizen"))
    evidence = pd.DataFrame(rows, columns=["person_id", "source", "category"])
    evidence["as_of"] = pd.Timestamp("2015-01-01")
    evidence["match_probability"] = 0.99
    geography = pd.DataFrame(
        {"block_id": BLOCKS, "tract_id": BLOCKS[0][:11], "county_id": BLOCKS[0][:5]}
    )
    return frame, evidence, geography


def _tabulate(exclude: list[str]):
    frame, evidence, geography = _world()
    config = {**MODEL_CONFIG, "exclude_sources": exclude}
    return tabulate(evidence, frame, geography, SOURCES, config, AGE_BOUNDS, "2020-04-01")


def test_excluded_source_is_all_none_and_shapes_stay():
    cells_all, patterns_all = _tabulate([])
    cells, patterns = _tabulate(["state_passports"])
    assert list(cells.columns) == list(cells_all.columns)
    assert list(patterns.columns) == list(patterns_all.columns)
    assert (patterns_all["src_state_passports"] != "none").any()
    assert (patterns["src_state_passports"] == "none").all()
    assert (cells["src_state_passports"] == "none").all()
    assert cells["count"].sum() == cells_all["count"].sum() == 60
    # Other sources are untouched: same Numident and ACS labels per person count.
    for source in ("ssa_numident", "acs"):
        col = f"src_{source}"
        assert cells.groupby(col)["count"].sum().equals(cells_all.groupby(col)["count"].sum())
    # Fewer distinct patterns: passport holders merge with their passport-less twins.
    assert len(patterns) < len(patterns_all)


def test_unknown_excluded_source_is_an_input_error():
    with pytest.raises(InputError) as err:
        _tabulate(["state_passport"])
    assert err.value.field == "model.exclude_sources"
    assert "state_passport" in str(err.value)
    with pytest.raises(InputError, match="model.exclude_sources"):
        model_sources({"exclude_sources": ["nope"]})
    assert excluded_sources({}, SOURCES) == []


def test_schema_default_and_validation():
    assert load_config()["model"]["exclude_sources"] == []
    with pytest.raises(InputError, match="model.exclude_sources"):
        load_config(overrides={"model": {"exclude_sources": ["passports"]}})


def _problem(exclude_model: list[str], exclude_tabulation: list[str]):
    cells, patterns = _tabulate(exclude_tabulation)
    return build_problem(
        exact_measurements_from_cells(cells),
        public_counts_from_cells(cells),
        patterns,
        {**MODEL_CONFIG, "exclude_sources": exclude_model},
        AGE_LABELS,
    )[0]


def test_model_leaves_the_excluded_source_out_of_the_likelihood():
    full = _problem([], [])
    left_out = _problem(["state_passports"], ["state_passports"])
    assert full.source_names == SOURCES
    assert left_out.source_names == [s for s in SOURCES if s != "state_passports"]
    assert left_out.pattern_codes.shape[1] == len(SOURCES) - 1
    assert len(left_out.categories) == len(left_out.alpha) == len(SOURCES) - 1
    assert left_out.cell_count.sum() == full.cell_count.sum()


def test_model_refuses_patterns_tabulated_without_the_exclusion():
    with pytest.raises(InputError) as err:
        _problem(["state_passports"], [])
    assert err.value.field == "src_state_passports"


def _baseline_config(exclude: list[str]) -> dict:
    return {
        "model": {**MODEL_CONFIG, "exclude_sources": exclude},
        "age_groups": AGE_BOUNDS,
        "reference_date": "2020-04-01",
    }


def test_record_rule_ignores_an_excluded_source():
    frame, evidence, geography = _world()
    passports_only = evidence.loc[evidence["source"] == "state_passports"]
    kept = record_rule(
        passports_only, frame, geography, _baseline_config([]), np.random.default_rng(1), None
    )
    # 30 passport holders are definitive citizens in every draw.
    assert (kept.groupby("draw")["citizens"].sum() >= 30).all()
    dropped = record_rule(
        passports_only,
        frame,
        geography,
        _baseline_config(["state_passports"]),
        np.random.default_rng(1),
        None,
    )
    # Without passports nobody has a definitive record: everyone is a Bernoulli(0.93) draw.
    per_draw = dropped.groupby("draw")["citizens"].sum()
    assert per_draw.nunique() > 1
    assert per_draw.mean() == pytest.approx(0.93 * 60, abs=4)


def test_census_style_without_acs_falls_back_to_the_national_share():
    frame, evidence, geography = _world()
    draws = census_style(
        evidence, frame, geography, _baseline_config(["acs"]), np.random.default_rng(2)
    )
    assert draws["draw"].nunique() == 30
    totals = (draws["citizens"] + draws["noncitizens"]).groupby(draws["draw"]).sum()
    assert (totals == 60).all()
    with pytest.raises(InputError, match="model.exclude_sources"):
        census_style(evidence, frame, geography, _baseline_config(["x"]), np.random.default_rng(2))
