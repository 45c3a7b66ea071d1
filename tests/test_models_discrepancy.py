"""The survey-anchored discrepancy (models.discrepancy) and the published count step's margins."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from models.count_step import calibrate_to_margins
from models.discrepancy import (
    DiscrepancyGrid,
    SurveyRows,
    admin_pattern_ids,
    draw_tilts,
    tilt_likelihood,
    tilt_membership,
)
from models.pipeline import sample_true_counts


def logit(p):
    return np.log(p / (1 - p))


def one_bucket_rows(n_cit: float, n_non: float) -> tuple[SurveyRows, np.ndarray]:
    """Two survey rows of one bucket: respondents answering citizen and noncitizen."""
    rows = SurveyRows(
        unit_weights=sp.csr_matrix(np.ones((2, 1))),
        pattern=np.array([0, 1]),
        source_age=np.zeros(2, dtype=np.int64),
        bucket=np.zeros(2, dtype=np.int64),
        count=np.array([n_cit, n_non]),
    )
    # Survey categories: none, citizen answer, noncitizen answer.
    survey_code = np.array([1, 2])
    return rows, survey_code


def test_tilt_recovers_a_shifted_class_split():
    # The model says 30% citizens in the bucket; the respondents (accurate answers, everyone
    # responds) say 50%: the tilt is logit(0.5) - logit(0.3).
    rows, code = one_bucket_rows(500, 500)
    pi = np.array([[0.3, 0.7]])
    admin_lik = np.ones((1, 2, 2))
    theta = np.array([[[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])
    citizen = np.array([True, False])
    grids = DiscrepancyGrid.default()
    ll, _ = tilt_likelihood(rows, pi, admin_lik, theta, code, citizen, grids.delta, 1)
    rng = np.random.default_rng(0)
    tilts = np.array([draw_tilts(ll, grids, rng)[0][0] for _ in range(400)])
    assert abs(tilts.mean() - (logit(0.5) - logit(0.3))) < 0.05
    # 1,000 respondents: sd of a log-odds near 1 / sqrt(n p (1 - p)) = 0.063.
    assert 0.04 < tilts.std() < 0.09


def test_misreporting_is_accounted_for():
    # Truth 40% citizens; 20% of noncitizens answer "citizen": 52% citizen answers. With the
    # misreporting in the survey's probabilities the tilt lands on 40%, not 52%.
    rows, code = one_bucket_rows(520, 480)
    pi = np.array([[0.4, 0.6]])
    theta = np.array([[[0.0, 1.0, 0.0], [0.0, 0.2, 0.8]]])
    ll, _ = tilt_likelihood(
        rows,
        pi,
        np.ones((1, 2, 2)),
        theta,
        code,
        np.array([True, False]),
        DiscrepancyGrid.default().delta,
        1,
    )
    grids = DiscrepancyGrid.default()
    rng = np.random.default_rng(1)
    tilts = np.array([draw_tilts(ll, grids, rng)[0][0] for _ in range(300)])
    assert abs(tilts.mean()) < 0.1


def test_buckets_without_respondents_draw_from_the_prior_scale_the_data_show():
    # Ten informed buckets whose tilts spread with sd ~0.5 and ten without data: the empty
    # buckets' tilts spread like the informed ones (tau learned), not like the half-normal prior.
    rng = np.random.default_rng(2)
    grids = DiscrepancyGrid.default()
    true = rng.normal(0, 0.5, 40)
    ll = np.zeros((80, len(grids.delta)))
    ll[:40] = -0.5 * (grids.delta[None, :] - true[:, None]) ** 2 / 0.05**2
    empty = []
    taus = []
    for _ in range(200):
        tilts, tau = draw_tilts(ll, grids, rng)
        empty.append(tilts[40:])
        taus.append(tau)
    assert 0.3 < np.median(taus) < 0.8
    assert 0.3 < np.std(np.concatenate(empty)) < 0.8


def test_tilt_membership_moves_citizen_log_odds():
    m = np.array([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]])
    out = tilt_membership(m, np.array([np.log(3.0), 2.0]), np.array([True, True, False]))
    np.testing.assert_allclose(out.sum(axis=1), 1.0)
    # Citizen odds 0.5 / 0.5 = 1 -> 3; within the citizen classes the split is kept.
    np.testing.assert_allclose(out[0, :2].sum() / out[0, 2], 3.0)
    np.testing.assert_allclose(out[0, 0] / out[0, 1], 2 / 3)
    np.testing.assert_allclose(out[1], [1.0, 0.0, 0.0])  # a certain member stays certain


def test_admin_patterns_ignore_the_survey_column():
    codes = np.array([[0, 1, 0], [0, 1, 2], [1, 0, 0], [0, 1, 1]])
    ids = admin_pattern_ids(codes, survey=2)
    assert ids[0] == ids[1] == ids[3] and ids[2] != ids[0]


def test_margins_pull_shares_by_precision():
    share = np.array([[0.9, 0.1], [0.9, 0.1], [0.5, 0.5]])
    pop = np.array([100, 100, 50])
    unit = np.array([0, 0, 1])
    margin = np.array([[140.0, 60.0], [25.0, 25.0]])
    exact = calibrate_to_margins(share, pop, unit, margin, np.full((2, 2), 1e-6))
    np.testing.assert_allclose((exact[:2] * pop[:2, None]).sum(axis=0), [140, 60], rtol=1e-6)
    np.testing.assert_allclose(exact.sum(axis=1), 1.0)
    vague = calibrate_to_margins(share, pop, unit, margin, np.full((2, 2), 1e9))
    np.testing.assert_allclose(vague, share, atol=1e-6)
    # An uncovered group is left alone.
    part = calibrate_to_margins(share, pop, np.array([0, 0, -1]), margin, np.full((2, 2), 1e-6))
    np.testing.assert_allclose(part[2], share[2])


def test_overdispersed_prior_keeps_the_mean():
    # Rare cells under an overdispersed prior: the mean stays N q (the tempered binomial it
    # replaced put it well above).
    rng = np.random.default_rng(3)
    n = 20000
    pop = np.full(n, 40)
    share = np.tile([[0.02, 0.98]], (n, 1))
    draws = sample_true_counts(
        rng, pop, share, np.full((n, 2), np.nan), np.ones((n, 2)), dispersion=np.array([3.0, 3.0])
    )
    assert abs(draws[:, 0].mean() - 0.8) < 0.05
    assert 1.8 < draws[:, 0].var() / (40 * 0.02 * 0.98) < 4.0
    # Measured cells: a precise measurement wins.
    measured = np.tile([[5.0, 35.0]], (n, 1))
    near = sample_true_counts(rng, pop, share, measured, np.full((n, 2), 0.01), dispersion=3.0)
    assert np.all(near[:, 0] == 5)
