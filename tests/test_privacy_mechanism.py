"""The discrete Gaussian noise as the privacy stage adds it: distribution, calibration, epsilon."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from privacy.mechanisms import (
    add_noise,
    calibrate_scale,
    discrete_gaussian_pmf,
    discrete_gaussian_std,
    epsilon_at_delta,
    rho_of,
)

DRAWS = 20_000
SQRT2 = math.sqrt(2.0)


def chi_square_p(noise: np.ndarray, scale: float) -> float:
    """p-value of noise against the discrete Gaussian pmf of ``scale``; tails pooled (E >= 5)."""
    support, probs = discrete_gaussian_pmf(scale)
    expected = probs * len(noise)
    inside = expected >= 5
    low, high = support[inside][0], support[inside][-1]
    # Bins: (-inf, low], low+1 .. high-1, [high, inf): every expected count >= 5.
    edges_values = np.arange(low, high + 1)
    observed = np.array(
        [np.sum(noise <= low)]
        + [np.sum(noise == v) for v in edges_values[1:-1]]
        + [np.sum(noise >= high)]
    )
    cdf = np.cumsum(probs)
    p_low = cdf[support == low][0]
    p_high = 1.0 - cdf[support == high - 1][0]
    middle = probs[(support > low) & (support < high)]
    expected = np.concatenate([[p_low], middle, [p_high]]) * len(noise)
    assert expected.min() >= 5
    return float(stats.chisquare(observed, expected * observed.sum() / expected.sum()).pvalue)


@pytest.fixture(scope="module", params=["seeded", "opendp"])
def noise(request):
    scale = calibrate_scale(1.0 / 9.0, SQRT2)  # sigma 3 at rho 1/9 with sensitivity sqrt(2)
    rng = np.random.default_rng(20200401)
    return (
        request.param,
        scale,
        add_noise(np.zeros(DRAWS, dtype=np.int64), scale, request.param, rng),
    )


def test_noise_matches_discrete_gaussian_of_stated_scale(noise):
    source, scale, values = noise
    assert scale == pytest.approx(3.0, rel=1e-9)
    p = chi_square_p(values, scale)
    print(f"{source}: chi-square p at the stated scale {scale:.4f}: {p:.4g}")
    assert p > 0.001
    assert values.std() == pytest.approx(scale, rel=0.03)


@pytest.mark.parametrize("factor", [1.3, 0.7])
def test_same_test_rejects_a_30_percent_wrong_scale(noise, factor):
    source, scale, values = noise
    p = chi_square_p(values, scale * factor)
    print(f"{source}: chi-square p at {factor} x scale: {p:.3g}")
    assert p < 0.001


def test_seeded_noise_is_reproducible():
    zeros = np.zeros(1000, dtype=np.int64)
    first = add_noise(zeros, 2.0, "seeded", np.random.default_rng(7))
    again = add_noise(zeros, 2.0, "seeded", np.random.default_rng(7))
    other = add_noise(zeros, 2.0, "seeded", np.random.default_rng(8))
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_calibration_and_accounting_agree_with_the_zcdp_formula():
    for rho in (0.05, 0.25, 0.75, 2.0):
        scale = calibrate_scale(rho, SQRT2)
        # Discrete Gaussian: rho = Delta^2 / (2 sigma^2) = 1 / sigma^2 at Delta = sqrt(2).
        assert scale == pytest.approx(1.0 / math.sqrt(rho), rel=1e-6)
        assert rho_of(scale, SQRT2) <= rho * (1 + 1e-12)
    assert discrete_gaussian_std(2.0) == pytest.approx(2.0, rel=1e-9)


def test_epsilon_of_the_2020_census_budget():
    assert epsilon_at_delta((542 / 339) ** 2, 1e-10) == pytest.approx(17.14, abs=0.01)
    assert epsilon_at_delta(1.0, 1e-10) == pytest.approx(10.03, abs=0.01)


def test_unknown_noise_source_is_refused():
    with pytest.raises(ValueError, match="noise_source"):
        add_noise(np.zeros(3, dtype=np.int64), 1.0, "urandom", None)
