"""The scale scenarios (issue 18): valid configs of the size they promise.

They are never run by the tests (a million persons, a state); `snakemake -n` plans them, and
``tests/test_cluster_profile.py`` checks the cluster profile on the tiny scenario.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from pipeline_common.config import load_config, validate_config
from pipeline_common.resources import expected_persons
from synthetic.geography import county_targets, load_county_table

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = REPO / "config" / "scenarios"
COUNTY_TABLE = REPO / "data" / "census_cvap" / "cvap_acs2009_2013_county_totals.csv"


@pytest.mark.parametrize("scenario", sorted(p.name for p in SCENARIOS.glob("*.yaml")))
def test_every_scenario_passes_the_config_checks(scenario, monkeypatch):
    config = load_config(SCENARIOS / scenario)
    # The Snakefile's checks, data_dir included (relative to the repository).
    monkeypatch.chdir(REPO)
    validate_config(
        config, files=["config/config.yaml", f"config/scenarios/{scenario}"], check_paths=True
    )


def test_million_is_the_default_counties_at_a_million_persons():
    default, million = load_config(), load_config(SCENARIOS / "million.yaml")
    assert million["run"] == "million"
    assert million["synthetic"]["counties"] == default["synthetic"]["counties"]
    assert expected_persons(million, REPO) == pytest.approx(1_000_000, rel=0.001)
    # Only the size differs from the default scenario.
    million["synthetic"]["scale"] = default["synthetic"]["scale"]
    million["run"] = default["run"]
    assert million == default


def test_state_is_every_county_of_one_mid_size_state():
    state = load_config(SCENARIOS / "state.yaml")
    counties = state["synthetic"]["counties"]
    states = {c[:2] for c in counties}
    assert len(states) == 1
    with open(COUNTY_TABLE, newline="", encoding="utf-8") as handle:
        in_table = [row["fips"] for row in csv.DictReader(handle) if row["fips"][:2] in states]
    assert counties == in_table
    persons = expected_persons(state, REPO)
    assert 5_000_000 <= persons <= 10_000_000
    # The synthetic stage accepts every county (its own check of the table).
    targets = county_targets(load_county_table(REPO / "data"), counties, 1.0, "table")
    assert int(targets["persons"].sum()) == persons
