"""The discrete Gaussian mechanism: calibration and accounting by OpenDP, two noise sources.

OpenDP builds every measurement (``make_gaussian`` on a vector of integer counts under the L2
distance gives the discrete Gaussian under zero-concentrated DP), calibrates its scale for a
target rho with ``binary_search_param``, and states the privacy loss of a given sensitivity with
``.map(d_in)``. The noise itself comes from one of two sources:

``opendp``
    The OpenDP measurement is invoked: exact sampling from a cryptographically secure generator.
    Sound for a real release, but it cannot be seeded, so two runs differ.
``seeded``
    The same discrete Gaussian (same scale) sampled exactly by inverse CDF from a seeded
    ``numpy.random.Generator``. Reproducible bytes for research on synthetic data; NOT a valid
    DP release (the noise is predictable from the seed).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

NOISE_SOURCES = ("seeded", "opendp")
# The support is cut where the remaining two-sided tail mass is below this.
TAIL_MASS = 1e-15


def _dp():
    import opendp.prelude as dp

    dp.enable_features("contrib")
    return dp


def make_count_measurement(scale: float):
    """OpenDP discrete Gaussian measurement on a vector of integer counts (zCDP, L2 distance)."""
    dp = _dp()
    return dp.m.make_gaussian(
        dp.vector_domain(dp.atom_domain(T="i64")), dp.l2_distance(T="f64"), scale=float(scale)
    )


def rho_of(scale: float, l2_sensitivity: float) -> float:
    """zCDP rho of the discrete Gaussian of ``scale`` at ``l2_sensitivity``, from OpenDP's map."""
    return float(make_count_measurement(scale).map(float(l2_sensitivity)))


def calibrate_scale(rho: float, l2_sensitivity: float) -> float:
    """Smallest scale whose OpenDP privacy map at ``l2_sensitivity`` is at most ``rho``."""
    if not rho > 0:
        raise ValueError(f"rho must be positive, got {rho}")
    dp = _dp()
    return float(
        dp.binary_search_param(
            make_count_measurement, d_in=float(l2_sensitivity), d_out=float(rho), T=float
        )
    )


def epsilon_at_delta(rho: float, delta: float) -> float:
    """Epsilon of a rho-zCDP release at ``delta`` with OpenDP's conversion.

    ``make_zCDP_to_approxDP`` then ``make_fix_delta`` applied to a Gaussian measurement whose
    map equals ``rho`` (scale 1, d_in = sqrt(2 rho)), so any rho can be converted.
    """
    if rho == 0:
        return 0.0
    dp = _dp()
    fixed = dp.c.make_fix_delta(
        dp.c.make_zCDP_to_approxDP(make_count_measurement(1.0)), float(delta)
    )
    epsilon, _ = fixed.map(math.sqrt(2.0 * rho))
    return float(epsilon)


@lru_cache(maxsize=64)
def discrete_gaussian_pmf(scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Support and probabilities of the discrete Gaussian N_Z(0, scale^2), truncated.

    ``p(x) proportional to exp(-x^2 / (2 scale^2))`` on the integers (the distribution OpenDP
    samples), cut at the smallest ``|x| = T`` whose two-sided tail mass is below ``TAIL_MASS``.
    """
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale}")
    # exp(-T^2/(2 s^2)) < TAIL_MASS * small factor at T = s*sqrt(2 ln(1/TAIL_MASS)) + 2.
    bound = int(math.ceil(scale * math.sqrt(2.0 * math.log(1.0 / TAIL_MASS)))) + 2
    support = np.arange(-bound, bound + 1, dtype=np.int64)
    weights = np.exp(-(support.astype(np.float64) ** 2) / (2.0 * scale * scale))
    return support, weights / weights.sum()


def discrete_gaussian_std(scale: float) -> float:
    """Standard deviation of the discrete Gaussian (equal to ``scale`` within 1e-9 for scale >= 1)."""
    support, probs = discrete_gaussian_pmf(float(scale))
    return float(math.sqrt(np.sum(probs * support.astype(np.float64) ** 2)))


def sample_discrete_gaussian(rng: np.random.Generator, scale: float, size: int) -> np.ndarray:
    """Exact inverse-CDF draws of the (truncated) discrete Gaussian from a seeded generator."""
    support, probs = discrete_gaussian_pmf(float(scale))
    cdf = np.cumsum(probs)
    cdf[-1] = 1.0
    index = np.searchsorted(cdf, rng.random(size), side="right")
    return support[np.minimum(index, len(support) - 1)]


def add_noise(
    counts: np.ndarray, scale: float, noise_source: str, rng: np.random.Generator | None
) -> np.ndarray:
    """Return ``counts`` plus discrete Gaussian noise of ``scale`` from ``noise_source``."""
    counts = np.asarray(counts, dtype=np.int64)
    if noise_source == "seeded":
        if rng is None:
            raise ValueError("noise_source 'seeded' needs a numpy Generator")
        return counts + sample_discrete_gaussian(rng, scale, counts.size)
    if noise_source == "opendp":
        measurement = make_count_measurement(scale)
        return np.asarray(measurement(counts.tolist()), dtype=np.int64)
    raise ValueError(f"noise_source must be one of {NOISE_SOURCES}, got {noise_source!r}")
