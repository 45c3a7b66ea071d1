"""Tabulation: evidence patterns, stale split, link confidence, missing ages, coarse patterns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.latent_class import coarse_weight_matrix
from models.pipeline import SOURCES
from models.tabulate import (
    COARSE_PATTERNS,
    FLAGS,
    coarse_of_flags,
    exact_measurements_from_cells,
    public_counts_from_cells,
    tabulate,
)
from pipeline_common.errors import InputError

CONFIG = {
    "high_confidence_threshold": 0.9,
    "stale_split": {"ssa_numident": ["noncitizen"]},
    "stale_cutoff_year": 2000,
}
B1, B2 = "120860001001000", "120860001001001"


def _fixture():
    frame = pd.DataFrame(
        {
            "person_id": [f"P{i:09d}" for i in range(6)],
            "household_id": ["H000000001"] * 3 + ["H000000002"] * 3,
            "block_id": [B1, B1, B1, B2, B2, B2],
            "age": [40, 10, None, 70, 30, None],
            "dob": [None, None, "1990-06-01", None, None, None],
        }
    )
    evidence = pd.DataFrame(
        {
            "person_id": ["P000000000", "P000000000", "P000000001", "P000000003", "P000000004"],
            "source": [
                "ssa_numident",
                "state_passports",
                "ssa_numident",
                "ssa_numident",
                "cbp_ice",
            ],
            "category": ["citizen", "citizen", "noncitizen", "noncitizen", "noncitizen"],
            "as_of": pd.to_datetime(
                ["2001-01-01", "2015-01-01", "1985-01-01", "2010-01-01", "2019-01-01"]
            ),
            "match_probability": [0.99, 0.95, 0.97, 0.5, 0.99],
        }
    )
    geography = pd.DataFrame(
        {
            "block_id": [B1, B2],
            "block_group_id": [B1[:12]] * 2,
            "tract_id": [B1[:11]] * 2,
            "county_id": ["12086"] * 2,
        }
    )
    return frame, evidence, geography


def test_cells_patterns_and_labels():
    frame, evidence, geography = _fixture()
    cells, patterns = tabulate(
        evidence, frame, geography, SOURCES, CONFIG, [0, 18, 35, 65], "2020-04-01"
    )
    assert cells["count"].sum() == len(frame)
    assert set(cells.columns) >= {
        "block_id",
        "tract_id",
        "county_id",
        "age_group",
        "pattern_id",
        "count",
    }
    by_person = {
        "P000000001": "noncitizen_old_hi",  # 1985 Numident noncitizen: before the cutoff
        "P000000003": "noncitizen_lo",  # low-confidence link
    }
    labels = set(patterns["src_ssa_numident"])
    assert set(by_person.values()) <= labels
    # The no-record pattern exists, comes first and is coarse 'no_record'.
    first = patterns.iloc[0]
    assert all(first[f"src_{s}"] == "none" for s in SOURCES)
    assert first["coarse_pattern"] == "no_record"
    coarse = dict(
        zip(
            patterns["src_state_passports"] + "|" + patterns["src_ssa_numident"],
            patterns["coarse_pattern"],
            strict=True,
        )
    )
    assert coarse["citizen_hi|citizen_hi"] == "citizen"
    assert coarse["none|noncitizen_lo"] == "weak_only"


def test_missing_age_rule():
    frame, evidence, geography = _fixture()
    cells, _ = tabulate(evidence, frame, geography, SOURCES, CONFIG, [0, 18, 35, 65], "2020-04-01")
    by_block = cells.groupby(["block_id", "age_group"])["count"].sum().to_dict()
    # Person 2: dob 1990-06-01 -> 29 at reference date -> 18-34.
    assert by_block[(B1, "18-34")] == 1
    # Person 5: household 2 has 65+ and 18-34 once each; the tie goes to the younger group.
    assert by_block[(B2, "18-34")] == 2
    pub = public_counts_from_cells(cells)
    assert pub["population"].sum() == 6
    meas = exact_measurements_from_cells(cells)
    assert (meas["sigma"] == 0).all() and meas["value"].sum() == 6


def test_bad_category_is_an_input_error():
    frame, evidence, geography = _fixture()
    evidence.loc[0, "category"] = "martian"
    with pytest.raises(InputError, match="category"):
        tabulate(evidence, frame, geography, SOURCES, CONFIG, [0, 18, 35, 65], "2020-04-01")


def test_coarse_weights_match_enumeration():
    """Inclusion-exclusion over flag subsets equals brute-force enumeration of patterns."""
    rng = np.random.default_rng(3)

    def coarse_of_mask(mask):
        return coarse_of_flags({f for i, f in enumerate(FLAGS) if (mask >> i) & 1})

    weights, labels = coarse_weight_matrix(len(FLAGS), coarse_of_mask)
    # Three sources with categories flagged (0 = none): random probabilities.
    flags = [np.array([0, 1, 2]), np.array([0, 3, 4]), np.array([0, 2, 3, 4])]
    probs = [rng.dirichlet(np.ones(len(f))) for f in flags]
    from models.latent_class import _subset_masks

    s_g = np.ones(2 ** len(FLAGS))
    for f, p in zip(flags, probs, strict=True):
        s_g *= _subset_masks(f, len(FLAGS)) @ p
    via_weights = dict(zip(labels, weights @ s_g, strict=True))
    brute = dict.fromkeys(COARSE_PATTERNS, 0.0)
    import itertools

    for combo in itertools.product(*[range(len(f)) for f in flags]):
        raised = {FLAGS[f[c] - 1] for f, c in zip(flags, combo, strict=True) if f[c] > 0}
        brute[coarse_of_flags(raised)] += np.prod([p[c] for p, c in zip(probs, combo, strict=True)])
    for label, value in via_weights.items():
        assert value == pytest.approx(brute[label], abs=1e-12)
    assert sum(via_weights.values()) == pytest.approx(1.0)
