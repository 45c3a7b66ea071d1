"""The published count step: coarse counts drawn given their rows' populations."""

from __future__ import annotations

import numpy as np
import pytest

from models.count_step import exchange_given_totals, table_concentration


def _rescaled_start(rng, population, share):
    """Multinomial starting counts (rows sum to their population)."""
    return np.stack([rng.multinomial(n, p) for n, p in zip(population, share, strict=True)])


def test_concentration_matches_the_dispersion_of_equal_rows():
    population = np.full(50, 20)
    share = np.tile([0.7, 0.2, 0.1], (50, 1))
    c = table_concentration(population, share, 3.0)
    # Rows of 20 persons: (N + c) / (1 + c) = 3  ->  c = 8.5.
    assert c == pytest.approx(8.5, rel=1e-6)
    assert table_concentration(population, share, 1.0) == float("inf")


def test_exchange_keeps_row_totals_and_follows_exact_measurements():
    rng = np.random.default_rng(1)
    truth = np.array([[5, 0, 3, 2], [0, 1, 0, 0], [12, 4, 0, 1]])
    share = np.tile([0.4, 0.3, 0.2, 0.1], (3, 1))
    start = _rescaled_start(rng, truth.sum(axis=1), share)
    out = exchange_given_totals(
        rng, start, share, truth.astype(float), np.full(truth.shape, 1e-4), 10.0, sweeps=6
    )
    np.testing.assert_array_equal(out.sum(axis=1), truth.sum(axis=1))
    np.testing.assert_array_equal(out, truth)


def test_exchange_without_measurements_draws_the_prior():
    rng = np.random.default_rng(2)
    rows, share_row = 4000, np.array([0.75, 0.15, 0.07, 0.03])
    population = rng.integers(1, 30, rows)
    share = np.tile(share_row, (rows, 1))
    # Start far from the prior: everyone in the last pattern.
    start = np.zeros((rows, 4), dtype=np.int64)
    start[:, 3] = population
    nan = np.full(start.shape, np.nan)
    out = exchange_given_totals(rng, start, share, nan, np.ones(start.shape), 5.0, sweeps=8)
    np.testing.assert_array_equal(out.sum(axis=1), population)
    expected = population.sum() * share_row
    # Each column total is a sum of independent Dirichlet-multinomial counts: within 4 sd.
    n = population[:, None].astype(float)
    sd = np.sqrt((n * share_row * (1 - share_row) * (n + 5.0) / 6.0).sum(axis=0))
    assert (np.abs(out.sum(axis=0) - expected) < 4 * sd).all(), (out.sum(axis=0), expected, sd)


def test_noisy_rows_summed_are_unbiased_where_rescaling_was_not():
    """Rows of small blocks measured with noise: summed draws stay on the truth."""
    rng = np.random.default_rng(3)
    rows = 3000
    share_row = np.array([0.8, 0.1, 0.06, 0.04])
    population = rng.integers(1, 25, rows)
    share = np.tile(share_row, (rows, 1))
    truth = np.stack([rng.multinomial(n, share_row) for n in population])
    sigma = 1.15
    measured = truth + rng.normal(0, sigma, truth.shape)
    start = _rescaled_start(rng, population, share)
    draws = [
        exchange_given_totals(
            rng, start, share, measured, np.full(truth.shape, sigma**2), np.inf, sweeps=4
        ).sum(axis=0)
        for _ in range(20)
    ]
    mean = np.mean(draws, axis=0)
    spread = np.std(draws, axis=0)
    # The posterior of each column total is centred on the truth: within 4 posterior sd.
    assert (np.abs(mean - truth.sum(axis=0)) < 4 * spread + 1).all(), (mean, truth.sum(axis=0))


def test_measured_unit_totals_pull_the_summed_rows_to_them():
    """Rows measured with noise whose summed noise is large: a precise unit total keeps the
    drawn sums on it, where rows drawn alone carry their summed noise."""
    rng = np.random.default_rng(4)
    rows, share_row = 2000, np.array([0.8, 0.12, 0.08])
    population = rng.integers(2, 20, rows)
    share = np.tile(share_row, (rows, 1))
    truth = np.stack([rng.multinomial(n, share_row) for n in population])
    sigma = 2.5
    # A common offset in every cell's noise: the summed noise is far outside its sd.
    measured = truth + rng.normal(0.6, sigma, truth.shape)
    unit = np.arange(rows) % 2
    margin = np.stack([truth[unit == u].sum(axis=0) for u in (0, 1)]).astype(float)
    margin_var = np.full(margin.shape, 25.0)
    start = _rescaled_start(rng, population, share)
    noise = np.full(truth.shape, sigma**2)
    alone = exchange_given_totals(rng, start, share, measured, noise, np.inf, sweeps=3)
    tied = exchange_given_totals(
        rng,
        start,
        share,
        measured,
        noise,
        np.inf,
        sweeps=3,
        unit=unit,
        margin=margin,
        margin_var=margin_var,
    )
    np.testing.assert_array_equal(tied.sum(axis=1), population)
    tied_sums = np.stack([tied[unit == u].sum(axis=0) for u in (0, 1)])
    alone_sums = np.stack([alone[unit == u].sum(axis=0) for u in (0, 1)])
    # Tied: within 4 margin sd of each unit total; alone: the shared offset shows.
    assert (np.abs(tied_sums - margin) < 20).all(), (tied_sums, margin)
    assert np.abs(alone_sums - margin).max() > 40, (alone_sums, margin)


def test_rows_of_one_block_share_its_dirichlet_draw():
    """Without measurements, pooled rows draw the block prior: the block sums vary as one
    Dirichlet-multinomial of the block's population, each row as one of its own."""
    rng = np.random.default_rng(5)
    n_blocks, rows_per_block, persons = 3000, 3, 5
    share_row = np.array([0.6, 0.3, 0.1])
    block = np.repeat(np.arange(n_blocks), rows_per_block)
    population = np.full(len(block), persons)
    share = np.tile(share_row, (len(block), 1))
    start = _rescaled_start(rng, population, share)
    nan = np.full(start.shape, np.nan)
    c = 4.0
    out = exchange_given_totals(
        rng, start, share, nan, np.ones(start.shape), c, sweeps=20, block=block
    )
    np.testing.assert_array_equal(out.sum(axis=1), population)
    sums = np.stack([np.bincount(block, weights=out[:, k]) for k in range(3)], axis=1)
    n_block = rows_per_block * persons

    def dm_var(n):
        return n * share_row * (1 - share_row) * (n + c) / (1 + c)

    # Variance estimates from 3,000 blocks / 9,000 rows: within 10%; independent rows would
    # give the block sums 3 x dm_var(5), 46% of dm_var(15) here.
    np.testing.assert_allclose(sums.var(axis=0), dm_var(n_block), rtol=0.1)
    np.testing.assert_allclose(out.var(axis=0), dm_var(persons), rtol=0.1)
