"""Linkage on a small world with known truth: quality, one-to-one links, evidence, evaluation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from linkage.evaluate import evaluate_linkage
from linkage.evidence import evidence_from_links, record_categories
from linkage.link import best_links
from linkage.policy import apply_policy, resolve_policy
from linkage.stage import combine, link_source, pik_from_links
from tests.fixtures.linkage_world import make_world

SOURCES = ("ssa_numident", "cbp_ice", "uscis_lpr")
CONFIG = {
    "seed": 3,
    "reference_date": "2020-04-01",
    "linkage": {"u_max_pairs": 100_000, "em_max_pairs": 100_000},
}


@pytest.fixture(scope="module")
def linked():
    world = make_world(1500, np.random.default_rng(2024))
    by_source, reports, entered = [], [], {}
    pik = None
    for source in SOURCES:
        links, report = link_source(world["frame"], world[source], source, CONFIG, pik)
        if source == "ssa_numident":
            pik = pik_from_links(links, world[source], CONFIG)
        by_source.append(links)
        reports.append(report)
        shared, _ = apply_policy(world[source], resolve_policy(CONFIG, source))
        entered[source] = shared["record_id"]
    links, evidence, withheld = combine(by_source, reports)
    evaluation = evaluate_linkage(
        links,
        entered,
        withheld,
        world["frame"]["person_id"],
        world["truth_records"],
        world["truth_persons"],
    )
    return world, links, evidence, withheld, evaluation, reports


def test_small_world_links_with_high_precision_and_recall(linked):
    *_, evaluation, _ = linked
    for source in SOURCES:
        entry = evaluation["sources"][source]
        assert entry["linkable_records"] > 50, source
        assert entry["precision"] >= 0.99, (source, entry)
        assert entry["recall"] >= 0.95, (source, entry)


def test_pik_used_for_ssn_sources(linked):
    *_, reports = linked
    by_name = {r["source"]: r for r in reports}
    assert not by_name["ssa_numident"]["used_pik"]
    assert by_name["uscis_lpr"]["used_pik"] and "ssn" in by_name["uscis_lpr"]["comparisons"]


def test_each_record_links_to_at_most_one_person(linked):
    _, links, *_ = linked
    assert not links.duplicated(["source", "record_id"]).any()
    # A person holds several records of one source only as within-source duplicates.
    multi = links.loc[links.duplicated(["source", "person_id"], keep=False)]
    first_pass = multi.loc[multi["link_pass"] == 1]
    assert not first_pass.duplicated(["source", "person_id"]).any()
    assert list(links.columns[:4]) == ["source", "record_id", "person_id", "match_probability"]


def test_cbp_duplicates_are_linked_to_the_same_person(linked):
    world, links, *_ = linked
    truth = world["truth_records"]
    cbp = truth.loc[truth["source"] == "cbp_ice"]
    dup_persons = cbp.loc[cbp.duplicated("person_id", keep=False), "person_id"]
    dup_records = cbp.loc[cbp["person_id"].isin(dup_persons)]
    got = dup_records.merge(links, on="record_id", suffixes=("_true", ""))
    assert len(got) > 10
    assert (got["person_id"] == got["person_id_true"]).mean() >= 0.95


def test_evidence_one_row_per_person_and_source(linked):
    _, links, evidence, withheld, *_ = linked
    assert not evidence.duplicated(["person_id", "source"]).any()
    assert set(evidence["category"]) <= {"citizen", "naturalized", "noncitizen", "lpr", "unknown"}
    assert set(evidence.loc[evidence["source"] == "uscis_lpr", "category"]) == {"lpr"}
    assert set(withheld) == {*SOURCES, "totals"}
    assert withheld["totals"]["records_linked"] == len(links)


def test_best_links_duplicates_versus_siblings():
    right = pd.DataFrame(
        {
            "unique_id": ["R1", "R2", "R3"],
            "first_name_canon": ["ANA", "ANA", "LUIS"],
            "first_name_sx": ["A500", "A500", "L200"],
            "dob": ["1990-01-01", "1990-01-01", "1990-01-01"],
            "last_name_sx": ["G620", "G620", "G620"],
            "ssn": [None, None, None],
            "other_id": [None, None, None],
        }
    )
    pairs = pd.DataFrame(
        {
            "left_id": ["P1", "P1", "P1"],
            "right_id": ["R1", "R2", "R3"],
            "match_weight": [20.0, 18.0, 15.0],
            "match_probability": [0.999, 0.998, 0.99],
        }
    )
    links = best_links(pairs, 0.9, right)
    # R2 duplicates R1 (same person, one person holds both); R3 is a twin brother: unlinked.
    assert links["right_id"].tolist() == ["R1", "R2"]
    assert links["link_pass"].tolist() == [1, 2]
    strict = best_links(pairs, 0.9, right, allow_right_duplicates=False)
    assert strict["right_id"].tolist() == ["R1"]
    assert best_links(pairs, 0.9995, right).empty


def test_category_mapping():
    ssa = pd.DataFrame(
        {
            "record_id": ["S1", "S2", "S3"],
            "citizenship": ["citizen", "noncitizen", None],
            "application_date": ["2000-01-01"] * 3,
            "last_update_date": ["2010-05-05", None, None],
        }
    )
    out = record_categories("ssa_numident", ssa)
    assert out["category"].tolist() == ["citizen", "noncitizen", "unknown"]
    assert out["as_of"].dt.strftime("%Y-%m-%d").tolist()[:2] == ["2010-05-05", "2000-01-01"]
    acs = pd.DataFrame(
        {
            "record_id": ["A1", "A2", "A3", "A4"],
            "citizenship_response": ["born_citizen", "naturalized", "noncitizen", None],
            "interview_date": ["2019-01-01"] * 4,
        }
    )
    assert record_categories("acs", acs)["category"].tolist() == [
        "citizen",
        "naturalized",
        "noncitizen",
        "unknown",
    ]
    itin = pd.DataFrame({"record_id": ["I1"], "tax_year": [2018]})
    row = record_categories("irs_itin", itin).iloc[0]
    assert row["category"] == "noncitizen" and str(row["as_of"].date()) == "2018-12-31"
    for source, category in [
        ("uscis_naturalizations", "naturalized"),
        ("uscis_lpr", "lpr"),
        ("cbp_ice", "noncitizen"),
        ("state_passports", "citizen"),
    ]:
        assert record_categories(source, pd.DataFrame({"record_id": ["X"]}))["category"][0] == (
            category
        )


def test_evidence_prefers_known_then_recent():
    links = pd.DataFrame(
        {
            "source": ["cbp_ice", "cbp_ice", "ssa_numident", "ssa_numident"],
            "record_id": ["C1", "C2", "S1", "S2"],
            "person_id": ["P1", "P1", "P1", "P1"],
            "match_probability": [0.99, 0.95, 0.999, 0.95],
            "category": ["noncitizen", "noncitizen", "unknown", "citizen"],
            "as_of": pd.to_datetime(["2014-01-01", "2018-01-01", "2019-01-01", "2001-01-01"]),
        }
    )
    evidence = evidence_from_links(links).set_index("source")
    assert evidence.loc["cbp_ice", "record_id"] == "C2"  # most recent
    assert evidence.loc["ssa_numident", "record_id"] == "S2"  # a stated status beats unknown
    assert evidence.loc["cbp_ice", "n_records"] == 2


def test_evaluation_counts_on_a_handmade_case():
    links = pd.DataFrame(
        {
            "source": ["acs", "acs"],
            "record_id": ["A1", "A2"],
            "person_id": ["P1", "P9"],
            "match_probability": [0.99, 0.95],
            "match_weight": [20.0, 5.0],
        }
    )
    truth_records = pd.DataFrame(
        {
            "source": ["acs"] * 4,
            "record_id": ["A1", "A2", "A3", "A4"],
            "person_id": ["P1", "P2", "P3", "P4"],
        }
    )
    persons = pd.DataFrame(
        {
            "person_id": ["P1", "P2", "P3", "P4", "P9"],
            "status": ["native_citizen", "lpr", "lpr", "unauthorized", "native_citizen"],
        }
    )
    entered = {"acs": pd.Series(["A1", "A2", "A3"])}  # A4 was withheld
    frame_ids = pd.Series(["P1", "P2", "P9"])  # P3 not enumerated: A3 cannot link
    result = evaluate_linkage(links, entered, {}, frame_ids, truth_records, persons)
    acs = result["sources"]["acs"]
    assert (acs["tp"], acs["fp"], acs["fn"], acs["linkable_records"]) == (1, 1, 1, 2)
    assert acs["precision"] == 0.5 and acs["recall"] == 0.5
    assert acs["records_withheld"] == 1
    assert acs["recall_by_status"]["lpr"] == {"linkable": 1, "tp": 0, "recall": 0.0}
    assert acs["recall_by_status"]["native_citizen"]["recall"] == 1.0


def test_same_config_same_links(linked):
    world, links, *_ = linked
    again, _ = link_source(world["frame"], world["cbp_ice"], "cbp_ice", CONFIG)
    first = links.loc[links["source"] == "cbp_ice"].reset_index(drop=True)
    pd.testing.assert_frame_equal(
        first[["record_id", "person_id", "match_probability"]],
        again[["record_id", "person_id", "match_probability"]],
    )
