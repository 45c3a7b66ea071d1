"""The two general-purpose functions used as libraries (docs/LIBRARY.md).

- Latent-class core: ``class_prevalence`` on a simulated two-population, three-test table with
  known prevalences (its 90% intervals cover them), ``category_probabilities``, and the
  ``class_share_prior`` option (validated like the other options; a strong prior moves the
  share; with no data the share's posterior is the prior).
- Linker: ``many_to_many`` returns every one-to-one link and more, ``quiet`` silences Splink
  (no log records or output), ``return_pairs`` returns the scored pairs.

Fits use PyMC's NUTS with few draws on a single core, as ``test_models_latent_class.py``.
"""

from __future__ import annotations

import dataclasses
import datetime
import itertools
import logging

import numpy as np
import pandas as pd
import pytest

from models.latent_class import (
    build_model,
    category_probabilities,
    class_prevalence,
    diagnostics,
    em_estimates,
    problem_from_table,
    sample,
)
from pipeline_common.errors import InputError

TESTS = ["test_a", "test_b", "test_c"]
CLASSES = ["disease_free", "diseased"]
ALPHA = {t: np.array([[8.0, 2.0], [2.0, 8.0]]) for t in TESTS}
CATEGORIES = {t: ["neg", "pos"] for t in TESTS}
SENS, SPEC = np.array([0.9, 0.8, 0.7]), np.array([0.95, 0.9, 0.85])


def _pattern_probs(prevalence: float) -> np.ndarray:
    out = []
    for combo in itertools.product([0, 1], repeat=3):
        p_dis = np.prod([SENS[i] if c else 1 - SENS[i] for i, c in enumerate(combo)])
        p_free = np.prod([1 - SPEC[i] if c else SPEC[i] for i, c in enumerate(combo)])
        out.append(prevalence * p_dis + (1 - prevalence) * p_free)
    return np.array(out)


def _table(rng: np.random.Generator, prevalences: dict[str, float], n: int) -> pd.DataFrame:
    """One row per group x pattern of the three tests, counts drawn from the model."""
    rows = []
    for group, prevalence in prevalences.items():
        counts = rng.multinomial(n, _pattern_probs(prevalence))
        for combo, count in zip(itertools.product(["neg", "pos"], repeat=3), counts, strict=True):
            rows.append((group, *combo, int(count)))
    return pd.DataFrame(rows, columns=["site", *TESTS, "n"])


def _fit(problem, seed: int = 1):
    idata, _ = sample(
        build_model(problem),
        sampler="pymc",
        draws=300,
        tune=300,
        cores=1,
        seed=seed,
        warm_up=False,
    )
    return idata


# ------------------------------------------------------------------------------------------
# Latent-class core


PREVALENCES = {"north": 0.2, "south": 0.5}


@pytest.fixture(scope="module")
def grouped_fit():
    table = _table(np.random.default_rng(5), PREVALENCES, 800)
    problem = problem_from_table(
        table, TESTS, "n", CLASSES, alpha=ALPHA, group_column="site", categories=CATEGORIES
    )
    return problem, _fit(problem)


def test_class_prevalence_shape_and_coverage(grouped_fit):
    problem, idata = grouped_fit
    assert diagnostics(idata)["max_rhat"] < 1.05
    prevalence = class_prevalence(problem, idata)
    assert list(prevalence.columns) == ["group", "class", "mean", "lower", "upper"]
    assert list(prevalence["group"]) == ["all", "all", "north", "north", "south", "south"]
    assert list(prevalence["class"]) == CLASSES * 3
    assert (prevalence["lower"] <= prevalence["mean"]).all()
    assert (prevalence["mean"] <= prevalence["upper"]).all()
    np.testing.assert_allclose(prevalence.groupby("group")["mean"].sum(), 1.0)
    truth = {**PREVALENCES, "all": np.mean(list(PREVALENCES.values()))}  # equal group sizes
    wider = class_prevalence(problem, idata, interval=0.99)
    assert (wider["upper"] - wider["lower"] > prevalence["upper"] - prevalence["lower"]).all()
    covered = 0
    for interval, shares in ((0.9, prevalence), (0.99, wider)):
        diseased = shares.loc[shares["class"] == "diseased"].set_index("group")
        for group, value in truth.items():
            inside = diseased.loc[group, "lower"] <= value <= diseased.loc[group, "upper"]
            assert abs(diseased.loc[group, "mean"] - value) < 0.05, group
            if interval == 0.99:
                assert inside, group
            covered += int(inside) if interval == 0.9 else 0
    # Three calibrated 90% intervals all cover with probability about 0.75 (the south group
    # misses on this table: 0.504-0.579 against 0.5); two or more: about 0.97.
    assert covered >= 2


def test_category_probabilities_are_the_tests_accuracy(grouped_fit):
    problem, idata = grouped_fit
    accuracy = category_probabilities(problem, idata)
    assert list(accuracy.columns) == ["source", "class", "category", "mean", "lower", "upper"]
    assert len(accuracy) == 3 * 2 * 2
    np.testing.assert_allclose(accuracy.groupby(["source", "class"])["mean"].sum(), 1.0)
    sens = accuracy.query("`class` == 'diseased' and category == 'pos'")["mean"].to_numpy()
    spec = accuracy.query("`class` == 'disease_free' and category == 'neg'")["mean"].to_numpy()
    assert np.abs(sens - SENS).max() < 0.08 and np.abs(spec - SPEC).max() < 0.08


SHARE_PRIOR_CASES = [
    # (id, class_share_prior, prior_scales, field named, words of the problem)
    ("key_typo", {"disease_free": 1, "diseasd": 1}, None, "diseasd", "did you mean"),
    ("missing_class", {"disease_free": 1}, None, "class_share_prior", "no value"),
    ("not_positive", {"disease_free": 1, "diseased": 0}, None, "diseased", "positive"),
    ("not_a_number", {"disease_free": 1, "diseased": "2"}, None, "diseased", "not a number"),
    ("not_a_mapping", [1, 1], None, "class_share_prior", "not a mapping"),
    (
        "both_priors",
        {"disease_free": 1, "diseased": 1},
        {"intercept_sd": 1.0},
        "intercept_sd",
        "together",
    ),
]


@pytest.mark.parametrize(
    ("share_prior", "scales", "field", "problem"),
    [c[1:] for c in SHARE_PRIOR_CASES],
    ids=[c[0] for c in SHARE_PRIOR_CASES],
)
def test_class_share_prior_validated(share_prior, scales, field, problem):
    table = _table(np.random.default_rng(0), {"x": 0.3}, 50).drop(columns="site")
    with pytest.raises(InputError) as caught:
        problem_from_table(
            table, TESTS, "n", CLASSES, class_share_prior=share_prior, prior_scales=scales
        )
    assert field in caught.value.field, str(caught.value)
    assert problem in str(caught.value)


def test_strong_beta_prior_moves_the_share():
    """Beta(1600, 400) on the diseased share against 300 persons with prevalence 0.3."""
    import pymc as pm
    from scipy import stats

    table = _table(np.random.default_rng(7), {"x": 0.3}, 300).drop(columns="site")
    plain = problem_from_table(table, TESTS, "n", CLASSES, alpha=ALPHA, categories=CATEGORIES)
    data_share = em_estimates(plain)[1][0, 1]  # the data alone (EM, weak priors)
    assert abs(data_share - 0.3) < 0.08
    share_prior = {"disease_free": 400.0, "diseased": 1600.0}
    problem = problem_from_table(
        table,
        TESTS,
        "n",
        CLASSES,
        alpha=ALPHA,
        categories=CATEGORIES,
        class_share_prior=share_prior,
    )
    model = build_model(problem)
    idata, _ = sample(model, sampler="pymc", draws=300, tune=300, cores=1, seed=3, warm_up=False)
    moved = class_prevalence(problem, idata).set_index("class").loc["diseased", "mean"]
    assert moved > 0.6, moved
    # With no data the share's posterior is the prior: Beta(1600, 400) for the diseased share.
    with model:
        pm.set_data({"cell_count": np.zeros(len(problem.cell_count))})
    idata, _ = sample(model, sampler="pymc", draws=500, tune=300, cores=1, seed=4, warm_up=False)
    draws = 1 / (1 + np.exp(-idata["posterior"]["intercept"].to_numpy().ravel()))
    prior = stats.beta(1600, 400)
    assert abs(draws.mean() - prior.mean()) < 0.2 * prior.std()
    assert 0.8 < draws.std() / prior.std() < 1.25


def test_class_share_prior_is_exactly_dirichlet_without_data():
    """Three classes, Dirichlet(2, 3, 5): with zero counts the shares' posterior is the prior.

    Small concentrations tell the prior apart from a flat prior on the logits without the
    softmax Jacobian (that would be Dirichlet(1, 2, 4) on the shares).
    """
    import pymc as pm
    from scipy import stats

    classes = ["a", "b", "c"]
    table = pd.DataFrame({"rater": ["x", "y", "z"], "n": [5, 3, 2]})
    concentration = {"a": 2.0, "b": 3.0, "c": 5.0}
    problem = problem_from_table(table, ["rater"], "n", classes, class_share_prior=concentration)
    model = build_model(problem)
    with model:
        pm.set_data({"cell_count": np.zeros(len(problem.cell_count))})
    idata, _ = sample(model, sampler="pymc", draws=500, tune=300, cores=1, seed=5, warm_up=False)
    shares = class_prevalence(problem, idata, interval=0.5).set_index("class")
    total = sum(concentration.values())
    for name, c in concentration.items():
        marginal = stats.beta(c, total - c)
        assert abs(shares.loc[name, "mean"] - marginal.mean()) < 0.02, name
        q25, q75 = marginal.ppf([0.25, 0.75])
        assert (
            abs(shares.loc[name, "lower"] - q25) < 0.03
            and abs(shares.loc[name, "upper"] - q75) < 0.03
        )


# ------------------------------------------------------------------------------------------
# Linker

GIVEN = ["Ana", "Luis", "Mary", "John", "Sofia", "Wei", "Fatima", "Carlos", "Emma", "Olga"]
FAMILY = ["Perez", "Gomez", "Smith", "Nguyen", "Kowalski", "Chen", "Haddad", "Garcia", "Brown"]
FIELDS_A = {
    "unique_id": "a_id",
    "first_name": "given",
    "last_name": "family",
    "dob": "born",
    "zip": "zip",
}
FIELDS_B = {**FIELDS_A, "unique_id": "b_id"}


def _two_tables(rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table A (120 people, 8 of them entered twice) and B (90 of them, some typos)."""
    n = 120
    born = [
        (datetime.date(1940, 1, 1) + datetime.timedelta(int(d))).isoformat()
        for d in rng.integers(0, 60 * 365, n)
    ]
    people = pd.DataFrame(
        {
            "person": np.arange(n),
            "given": rng.choice(GIVEN, n),
            "family": rng.choice(FAMILY, n),
            "born": born,
            "zip": rng.integers(10000, 10020, n).astype(str),
        }
    )
    table_a = pd.concat([people, people.iloc[:8]], ignore_index=True)
    table_a.insert(0, "a_id", [f"A{i:03d}" for i in range(len(table_a))])
    table_b = people.iloc[rng.permutation(n)[:90]].reset_index(drop=True)
    typo = rng.random(len(table_b)) < 0.15
    table_b.loc[typo, "family"] = table_b.loc[typo, "family"].str[:-1]
    table_b.insert(0, "b_id", [f"B{i:03d}" for i in range(len(table_b))])
    return table_a, table_b


SETTINGS = dict(
    comparisons=["name", "dob", "location"],
    blocking_rules=["dob", "name_exact"],
    em_blocking_rules=["dob", "name_exact"],
    u_max_pairs=1e5,
)


@pytest.fixture(scope="module")
def tables():
    return _two_tables(np.random.default_rng(19))


def _pairs(links: pd.DataFrame) -> set[tuple[str, str]]:
    return set(zip(links["left_id"], links["right_id"], strict=True))


def test_many_to_many_returns_every_one_to_one_link_and_more(tables):
    from linkage.link import LinkSettings, link_any

    table_a, table_b = tables
    settings = LinkSettings(**SETTINGS)
    one, _ = link_any(table_a, table_b, FIELDS_A, FIELDS_B, settings)
    many, _ = link_any(
        table_a, table_b, FIELDS_A, FIELDS_B, dataclasses.replace(settings, many_to_many=True)
    )
    assert not one["right_id"].duplicated().any()
    assert _pairs(one) <= _pairs(many)
    assert len(many) > len(one)
    assert many["right_id"].duplicated().any()  # a record of B linked to both entries in A
    assert (many["match_probability"] >= settings.threshold).all()
    assert list(many.columns) == list(one.columns)
    truth = table_a.merge(table_b, on="person")
    assert _pairs(many) <= set(zip(truth["a_id"], truth["b_id"], strict=True))


def _splink_state() -> tuple:
    splink_logger = logging.getLogger("splink")
    return splink_logger.level, splink_logger.propagate, list(splink_logger.handlers)


def test_quiet_by_default_and_chatty_on_request(tables, capfd, caplog):
    from linkage.link import LinkSettings, link_any

    table_a, table_b = tables
    caplog.set_level(logging.DEBUG)
    before = _splink_state()
    link_any(table_a, table_b, FIELDS_A, FIELDS_B, LinkSettings(**SETTINGS))
    out, err = capfd.readouterr()
    splink_records = [r for r in caplog.records if r.name.startswith("splink")]
    assert not splink_records and not out and not err, (splink_records[:3], out, err)
    assert _splink_state() == before  # logging configuration restored
    # The same call with quiet=False does print Splink's chatter (so the check above can fail).
    link_any(table_a, table_b, FIELDS_A, FIELDS_B, LinkSettings(**SETTINGS, quiet=False))
    out, err = capfd.readouterr()
    chatty = [r for r in caplog.records if r.name.startswith("splink")]
    assert chatty or err


def test_scored_pairs_returned(tables):
    from linkage.link import LinkSettings, link_any

    table_a, table_b = tables
    settings = LinkSettings(**SETTINGS, return_pairs=True, pairs_threshold=0.0)
    links, info = link_any(table_a, table_b, FIELDS_A, FIELDS_B, settings)
    scored = info["scored_pairs"]
    assert list(scored.columns) == ["left_id", "right_id", "match_weight", "match_probability"]
    assert _pairs(links) <= _pairs(scored)
    assert len(scored) > len(links) and scored["match_probability"].min() < settings.threshold
    plain, info = link_any(table_a, table_b, FIELDS_A, FIELDS_B, LinkSettings(**SETTINGS))
    assert "scored_pairs" not in info
    assert _pairs(plain) == _pairs(links)  # a lower pairs_threshold leaves the links alone


@pytest.mark.parametrize("name", ["threshold", "pairs_threshold"])
def test_link_thresholds_validated(monkeypatch, tables, name):
    import linkage.link as link

    monkeypatch.setattr(link, "link_tables", lambda *a, **k: pytest.fail("linkage started"))
    settings = link.LinkSettings(**SETTINGS, **{name: 1.5})
    with pytest.raises(InputError, match=name):
        link.link_any(*tables, FIELDS_A, FIELDS_B, settings)
