"""The noisy tables' domain is data-independent: neighbouring inputs, one person apart with a
rare evidence pattern, get the same pattern dictionary and the same measured cells."""

from __future__ import annotations

import pandas as pd
import pytest

from models.pipeline import SOURCES
from models.tabulate import enumerate_patterns, source_vocabulary, tabulate
from pipeline_common.config import load_config
from pipeline_common.errors import InputError
from privacy.measure import LIMITATIONS, PUBLIC_INFORMATION, measure

B1, B2 = "120860001001000", "120860001001001"


def _world(rare_person: bool):
    """Four persons; with ``rare_person``, a fifth whose evidence no one else shares."""
    ids = [f"P{i:09d}" for i in range(5 if rare_person else 4)]
    frame = pd.DataFrame(
        {
            "person_id": ids,
            "household_id": ["H1"] * len(ids),
            "block_id": [B1, B1, B2, B2, B2][: len(ids)],
            "age": [40, 10, 70, 30, 50][: len(ids)],
        }
    )
    rows = [
        ("P000000000", "ssa_numident", "citizen", "2001-01-01"),
        ("P000000000", "state_passports", "citizen", "2015-01-01"),
        ("P000000002", "ssa_numident", "noncitizen", "2010-01-01"),
        ("P000000003", "cbp_ice", "noncitizen", "2019-01-01"),
    ]
    if rare_person:
        # A pattern no one else has: Numident "unknown", a naturalization, an ITIN, an ACS answer.
        rows += [
            ("P000000004", "ssa_numident", "unknown", "1999-01-01"),
            ("P000000004", "uscis_naturalizations", "naturalized", "2012-01-01"),
            ("P000000004", "irs_itin", "noncitizen", "2018-12-31"),
            ("P000000004", "acs", "noncitizen", "2018-06-01"),
        ]
    evidence = pd.DataFrame(rows, columns=["person_id", "source", "category", "as_of"])
    evidence["as_of"] = pd.to_datetime(evidence["as_of"])
    evidence["match_probability"] = 0.99
    geography = pd.DataFrame(
        {
            "block_id": [B1, B2],
            "block_group_id": [B1[:12]] * 2,
            "tract_id": [B1[:11]] * 2,
            "county_id": ["12086"] * 2,
        }
    )
    return evidence, frame, geography


@pytest.fixture(scope="module")
def config():
    return load_config(overrides={"run": "unit"})


def _tabulate(config, rare_person: bool):
    evidence, frame, geography = _world(rare_person)
    cells, patterns = tabulate(
        evidence,
        frame,
        geography,
        SOURCES,
        config["model"],
        config["age_groups"],
        config["reference_date"],
        config["linkage"],
    )
    return cells, patterns, geography


def test_neighbouring_inputs_have_the_same_domain(config):
    cells_a, patterns_a, geography = _tabulate(config, rare_person=False)
    cells_b, patterns_b, _ = _tabulate(config, rare_person=True)
    pd.testing.assert_frame_equal(patterns_a, patterns_b)
    # The rare person's pattern is in the dictionary of the world without them.
    rare = cells_b.loc[~cells_b["pattern_id"].isin(cells_a["pattern_id"]), "pattern_id"]
    assert len(rare) == 1 and rare.iloc[0] in set(patterns_a["pattern_id"])
    keys = ["table", "geo_level", "geo_id", "age_group", "pattern_level", "pattern_id"]
    measured_a, _, ledger_a = measure(cells_a, patterns_a, config, geography)
    measured_b, _, _ = measure(cells_b, patterns_b, config, geography)
    pd.testing.assert_frame_equal(measured_a[keys], measured_b[keys])
    county = measured_a.loc[measured_a["geo_level"] == "county"]
    assert len(county) == len(config["age_groups"]) * len(patterns_a)  # one county
    assert not any("pattern dictionary" in text for text in ledger_a["limitations"])


def test_default_dictionary_size_and_order(config):
    patterns = enumerate_patterns(SOURCES, config["model"], config["linkage"])
    # Numident 5 labels (citizen, noncitizen, noncitizen_old, unknown; none), ACS 5, others 2.
    assert len(patterns) == 5 * 2**5 * 5 == 800
    assert (patterns.iloc[0][[f"src_{s}" for s in SOURCES]] == "none").all()
    assert patterns["pattern_id"].tolist() == list(range(800))
    assert not patterns.duplicated([f"src_{s}" for s in SOURCES]).any()


def test_low_confidence_labels_follow_the_thresholds(config):
    model = config["model"]
    assert "citizen_lo" not in source_vocabulary("state_passports", model, config["linkage"])
    lower = {**config["linkage"], "sources": {"state_passports": {"match_threshold": 0.5}}}
    assert "citizen_lo" in source_vocabulary("state_passports", model, lower)
    excluded = {**model, "exclude_sources": ["acs"]}
    assert source_vocabulary("acs", excluded, config["linkage"]) == ["none"]


def test_evidence_outside_the_vocabulary_is_an_error(config):
    evidence, frame, geography = _world(rare_person=False)
    evidence.loc[0, "match_probability"] = 0.5  # a link below the configured threshold
    with pytest.raises(InputError, match=r"src_ssa_numident.*citizen_lo.*outside the vocabulary"):
        tabulate(
            evidence,
            frame,
            geography,
            SOURCES,
            config["model"],
            config["age_groups"],
            config["reference_date"],
            config["linkage"],
        )


def test_public_information_says_the_dictionary_is_enumerated():
    assert any("never from the data" in text for text in PUBLIC_INFORMATION)
    assert not any("NOT protected" in text for text in LIMITATIONS)


def test_empty_cells_of_the_larger_domain_add_no_phantom_persons():
    """Noisy counts of empty cells weigh in unclipped: their noise averages out in the sums."""
    from types import SimpleNamespace

    import numpy as np
    import scipy.sparse as sp

    from models.count_step import full_table_membership
    from models.discrepancy import bucket_citizen_share

    values = np.array([40, 2, -3, 1, -2])  # one occupied cell, four empty ones with noise
    table = SimpleNamespace(row_unit=np.zeros(5, int), row_pattern=np.arange(5), value=values)
    view = SimpleNamespace(
        table=table, unit_weights=sp.csr_matrix(np.ones((1, 1))), unit_source_age=np.zeros(1, int)
    )
    lik = np.full((1, 5, 2), 0.5)
    member, weight = full_table_membership(view, np.array([[0.5, 0.5]]), lik)
    assert weight.sum() == values.sum() == 38  # clipped, the empty cells would add 3 persons
    assert np.allclose(member.sum(axis=1), 1.0)
    share = bucket_citizen_share(
        np.array([0, 0, 1, 1, 1]), weight, np.tile([0.0, 1.0], (5, 1)), np.array([False, True]), 2
    )
    assert share[0] == 1.0 and np.isnan(share[1])  # the bucket of negative total: no persons
