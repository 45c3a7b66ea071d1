"""The ACS sample design: weights add up to the frame, replicate SEs against a hand computation,
and the design's own random stream leaves the rest of the world unchanged."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline_common.ages import assign_age_group
from pipeline_common.config import load_config
from synthetic import sources
from synthetic.sources import (
    ACS_REPLICATES,
    acs_design,
    hadamard,
    ratio_calibrate,
    replicate_se,
    replicate_weight_columns,
    sdr_factors,
)
from synthetic.world import generate_world


@pytest.fixture(scope="module")
def tiny_world():
    return generate_world(load_config("config/scenarios/tiny.yaml"))


def test_hadamard_80_is_orthogonal():
    a = hadamard(80)
    assert a.shape == (80, 80) and set(np.unique(a)) == {-1, 1}
    assert np.array_equal(a @ a.T, 80 * np.eye(80, dtype=np.int64))
    with pytest.raises(ValueError):
        hadamard(12 * 7)


def test_sdr_factors_are_the_acs_values():
    factors = sdr_factors(200, start=5)
    assert factors.shape == (200, ACS_REPLICATES)
    assert np.allclose(np.unique(factors.round(6)), [1 - 2**-0.5, 1.0, 1 + 2**-0.5])
    # Each replicate keeps the expected total: the factors average 1 over a full cycle.
    assert np.allclose(sdr_factors(ACS_REPLICATES, 0).mean(axis=0), 1.0)


def test_replicate_se_matches_the_successive_difference_formula():
    # Seven households in sort order, weight 10, with y persons of interest each.
    y = np.array([3.0, 0.0, 2.0, 2.0, 5.0, 1.0, 0.0])
    weight = 10.0
    factors = sdr_factors(len(y), start=11)
    estimate = (weight * y).sum()
    replicates = (weight * factors * y[:, None]).sum(axis=0)
    se = replicate_se(np.array([estimate]), replicates[None, :])[0]
    # By hand: with fewer units than replicates, SDR gives v = 1/2 sum_k w^2 (y_k - y_k-1)^2
    # over k = 1..n+1 with y_0 = y_n+1 = 0 (each Hadamard row meets two neighbours).
    padded = np.concatenate([[0.0], y, [0.0]])
    hand = np.sqrt(0.5 * (weight**2) * (np.diff(padded) ** 2).sum())
    assert se == pytest.approx(hand, rel=1e-12)
    # And the general formula 4/R sum (X_r - X)^2.
    assert se == pytest.approx(np.sqrt(4 / 80 * ((replicates - estimate) ** 2).sum()))


def test_ratio_calibration_meets_every_county_total():
    weights = np.ones((5, 2)) * [[2.0, 3.0]]
    county = np.array(["A", "A", "A", "B", "B"])
    cell = np.array(["A|0-17", "A|18+", "A|18+", "B|18+", "B|18+"])
    # County B's 0-17 cell has no respondent: its control goes to B's other cells.
    controls = pd.Series({"A|0-17": 4.0, "A|18+": 6.0, "B|0-17": 1.0, "B|18+": 5.0})
    out = ratio_calibrate(weights, county, cell, controls)
    for column in range(2):
        assert out[:3, column].sum() == pytest.approx(10.0)
        assert out[3:, column].sum() == pytest.approx(6.0)
        assert out[0, column] == pytest.approx(4.0)


def test_weights_sum_to_the_frame(tiny_world):
    acs = tiny_world.sources["acs"]
    frame = tiny_world.frame
    county = acs["block_id"].str[:5]
    per_county = acs.groupby(county)["weight"].sum()
    frame_county = frame.groupby(frame["block_id"].str[:5]).size()
    assert np.allclose(per_county.to_numpy(), frame_county.loc[per_county.index].to_numpy())
    for column in replicate_weight_columns():
        assert acs[column].sum() == pytest.approx(len(frame))
    coverage = 0.12
    assert np.allclose(acs["base_weight"], 1 / coverage)
    # Households: everyone of one household shares its replicate factors (and panel).
    by_household = acs.groupby("household_id")
    assert (by_household["panel"].nunique() == 1).all()
    ratio = acs["rep_weight_1"] / acs["weight"]
    groups = pd.Series(assign_age_group(acs["age"].to_numpy(float), [0, 18, 35, 65]))
    county_cell = county + "|" + groups.astype(str).to_numpy()
    assert ratio.groupby([acs["household_id"], county_cell]).nunique().max() == 1
    assert set(acs["panel"]) <= {1, 2, 3, 4, 5}
    # Item nonresponse is allocated, the answer kept.
    assert acs["citizenship_edited"].notna().all()
    assert (acs["citizenship_allocated"] == acs["citizenship_response"].isna()).all()
    answered = acs["citizenship_response"].notna()
    assert (
        acs.loc[answered, "citizenship_edited"] == acs.loc[answered, "citizenship_response"]
    ).all()


def test_design_stream_changes_nothing_else(tiny_world, monkeypatch):
    monkeypatch.setattr(sources, "acs_design", lambda table, *args: table)
    without = generate_world(load_config("config/scenarios/tiny.yaml"))
    for name, table in without.sources.items():
        pd.testing.assert_frame_equal(table, tiny_world.sources[name][table.columns])
    pd.testing.assert_frame_equal(without.frame, tiny_world.frame)
    pd.testing.assert_frame_equal(without.persons, tiny_world.persons)


def test_design_is_reproducible(tiny_world):
    acs = tiny_world.sources["acs"]
    base = acs.drop(columns=[c for c in acs.columns if "weight" in c or "edited" in c])
    frame = tiny_world.frame
    one = acs_design(base, frame, 0.12, [0, 18, 35, 65], np.random.default_rng(1))
    two = acs_design(base, frame, 0.12, [0, 18, 35, 65], np.random.default_rng(1))
    pd.testing.assert_frame_equal(one, two)


def test_sdr_over_the_address_frame_estimates_the_bernoulli_variance():
    """Households sampled independently: SDR over frame positions is (nearly) unbiased for the
    design variance of a total; SDR over the sample's own order misses most of it."""
    rng = np.random.default_rng(0)
    sizes = 1.0 + rng.poisson(1.5, 1_500)
    p, weight, n_rep = 0.12, 1 / 0.12, 600
    sampled = rng.random((n_rep, len(sizes))) < p
    true_variance = (1 - p) / p * (sizes**2).sum()
    frame_factors = sdr_factors(len(sizes), start=3)
    estimates = sampled @ (weight * sizes)
    frame_reps = sampled @ (weight * sizes[:, None] * frame_factors)
    frame_var = replicate_se(estimates, frame_reps) ** 2
    sample_var = np.empty(n_rep)
    for i, mask in enumerate(sampled):
        factors = sdr_factors(int(mask.sum()), start=3)
        reps = (weight * sizes[mask][:, None] * factors).sum(axis=0)
        sample_var[i] = replicate_se(np.array([estimates[i]]), reps[None, :])[0] ** 2
    assert np.var(estimates) == pytest.approx(true_variance, rel=0.15)
    assert 0.95 < frame_var.mean() / true_variance < 1.15
    assert sample_var.mean() / true_variance < 0.5
