"""The joint source-probability vector: probabilities, prior density and Jacobian."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from models.source_simplex import source_simplex_layout

CLASSES = ["a", "b", "c"]
EPS = 1e-4
SOURCES = ["s0", "s1", "s2"]
CATEGORIES = [["none", "x", "y", "z"], ["none", "p", "q"], ["none", "r"]]


def three_sources(alpha, impossible, **options):
    """The layout of the three test sources (``options``: reference, tie)."""
    return source_simplex_layout(SOURCES, CATEGORIES, CLASSES, alpha, impossible, EPS, **options)


@pytest.fixture
def layout():
    rng = np.random.default_rng(5)
    # Source 0: 4 categories, nothing impossible; source 1: 3 categories, class "a" can show only
    # its first, class "b" not its last; source 2: 2 categories.
    impossible = [
        np.zeros((3, 4), bool),
        np.array([[False, True, True], [False, False, True], [False, False, False]]),
        np.zeros((3, 2), bool),
    ]
    alpha = [rng.uniform(0.5, 5.0, (3, c)) for c in (4, 3, 2)]
    return (
        three_sources(alpha, impossible),
        alpha,
        impossible,
    )


def test_free_coordinates_and_probabilities(layout):
    lay, _, impossible = layout
    # 3 + 3 + 3 (source 0) + 0 + 1 + 2 (source 1) + 1 + 1 + 1 (source 2)
    assert lay.n_free == 15
    assert "s1:b:p" in lay.free_labels and "s1:a:p" not in lay.free_labels
    free = np.random.default_rng(1).normal(0, 1, lay.n_free)
    log_probs = lay.log_probs(free, np)
    for s in range(3):
        theta = lay.source_matrix(log_probs, s, np)
        np.testing.assert_allclose(theta.sum(axis=1), 1.0, rtol=1e-12)
        np.testing.assert_allclose(theta[impossible[s]], EPS)
    # A row with one possible category is fixed at 1 - 2 eps.
    assert lay.source_matrix(log_probs, 1, np)[0, 0] == pytest.approx(1 - 2 * EPS)
    # Round trip through the start-point helper.
    thetas = [lay.source_matrix(log_probs, s, np) for s in range(3)]
    np.testing.assert_allclose(lay.free_from_probabilities(thetas), free, atol=1e-10)


def test_prior_is_the_dirichlet_density_with_the_log_ratio_jacobian(layout):
    lay, alpha, impossible = layout
    free = np.random.default_rng(2).normal(0, 1, lay.n_free)
    expected = 0.0
    for s in range(3):
        theta = lay.source_matrix(lay.log_probs(free, np), s, np)
        for k in range(3):
            allowed = np.flatnonzero(~impossible[s][k])
            if len(allowed) < 2:
                continue
            q = theta[k, allowed] / theta[k, allowed].sum()
            # Jacobian of q[1:] with respect to this row's free coordinates, by differences.
            r = lay.row(s, k)
            idx = lay.logit_index[r, allowed[1:]]
            jac = np.empty((len(idx), len(idx)))
            for j, i in enumerate(idx):
                step = np.zeros(lay.n_free)
                step[i] = 1e-6
                up = lay.source_matrix(lay.log_probs(free + step, np), s, np)[k, allowed]
                down = lay.source_matrix(lay.log_probs(free - step, np), s, np)[k, allowed]
                jac[:, j] = (up / up.sum() - down / down.sum())[1:] / 2e-6
            log_jac = np.linalg.slogdet(jac)[1]
            expected += stats.dirichlet.logpdf(q, alpha[s][k, allowed]) + log_jac
    assert lay.prior_logp(free, np) == pytest.approx(expected, rel=1e-6)


def test_prior_mode_is_the_dirichlet_mean(layout):
    lay, alpha, impossible = layout
    theta = lay.source_matrix(lay.log_probs(lay.prior_mode(), np), 0, np)
    np.testing.assert_allclose(theta, alpha[0] / alpha[0].sum(axis=1, keepdims=True))


def test_pattern_log_likelihood_is_a_gather(layout):
    lay, _, _ = layout
    free = np.random.default_rng(3).normal(0, 1, lay.n_free)
    log_probs = lay.log_probs(free, np)
    codes = np.array([[0, 0, 0], [3, 2, 1], [1, 1, 0]])
    got = np.exp(log_probs.ravel()[lay.pattern_index(codes)].sum(axis=1))
    thetas = [lay.source_matrix(log_probs, s, np) for s in range(3)]
    want = np.ones((3, 3))
    for s in range(3):
        want *= thetas[s][:, codes[:, s]].T
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_a_class_with_no_possible_category_is_an_error():
    with pytest.raises(ValueError, match="class 'b' has no possible category"):
        source_simplex_layout(
            ["s0"],
            [["none", "x"]],
            ["a", "b"],
            [np.ones((2, 2))],
            [np.array([[False, False], [True, True]])],
            EPS,
        )


def test_reference_choice_changes_coordinates_not_the_density(layout):
    lay, alpha, impossible = layout
    thetas = [
        lay.source_matrix(
            lay.log_probs(np.random.default_rng(4).normal(0, 1, lay.n_free), np), s, np
        )
        for s in range(3)
    ]
    # The most probable possible category of every row as its reference.
    reference = [
        np.argmax(np.where(m, -1.0, t), axis=1) for m, t in zip(impossible, thetas, strict=True)
    ]
    other = three_sources(alpha, impossible, reference=reference)
    free = other.free_from_probabilities(thetas)
    for s in range(3):
        np.testing.assert_allclose(other.source_matrix(other.log_probs(free, np), s, np), thetas[s])
    assert other.prior_logp(free, np) == pytest.approx(
        lay.prior_logp(lay.free_from_probabilities(thetas), np), rel=1e-10
    )
    with pytest.raises(ValueError, match="reference category 1 of class 'a' is impossible"):
        source_simplex_layout(
            ["s1"],
            [["none", "p", "q"]],
            CLASSES,
            [alpha[1]],
            [impossible[1]],
            EPS,
            [np.array([1, 0, 0])],
        )


def test_a_tied_class_shares_its_parents_probabilities_and_prior(layout):
    lay, alpha, impossible = layout
    # Class "c" shares class "b"'s row of source 0 (same impossible categories: none).
    tie = [np.array([0, 1, 1]), np.arange(3), np.arange(3)]
    tied = three_sources(alpha, impossible, tie=tie)
    assert tied.n_free == lay.n_free - 3
    assert not any(label.startswith("s0:c:") for label in tied.free_labels)
    free = np.random.default_rng(6).normal(0, 1, tied.n_free)
    theta = tied.source_matrix(tied.log_probs(free, np), 0, np)
    np.testing.assert_array_equal(theta[2], theta[1])
    # The tied row adds no prior of its own: the density is that of the untied rows.
    assert np.isfinite(tied.prior_logp(free, np))
    assert np.isfinite(tied.prior_mode()).all()
    with pytest.raises(ValueError, match="only share the probabilities of an earlier class"):
        source_simplex_layout(
            ["s1"],
            [["none", "p", "q"]],
            CLASSES,
            [alpha[1]],
            [impossible[1]],
            EPS,
            tie=[np.array([0, 0, 2])],
        )
