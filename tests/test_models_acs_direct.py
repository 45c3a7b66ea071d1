"""The ACS direct baseline: block-group estimates and MOEs by hand, draws in the baselines'
shape, splitting as the tools split; the comparison's targets and MOE coverage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.baselines import acs_direct, acs_direct_estimates, apportion
from models.comparison import acs_moe_coverage, check_targets
from pipeline_common.config import load_config
from synthetic.sources import replicate_weight_columns, sdr_factors

BG_A, BG_B = "010010201001", "010010201002"


def toy_acs() -> pd.DataFrame:
    """Six person records in two block groups, weights 10 and SDR replicate weights."""
    rows = [
        # block, household, age, answer
        (BG_A + "000", "HU1", 40, "born_citizen"),
        (BG_A + "000", "HU1", 10, "born_citizen"),
        (BG_A + "001", "HU2", 30, "noncitizen"),
        (BG_A + "001", "HU3", 50, "naturalized"),
        (BG_B + "000", "HU4", 20, "noncitizen"),
        (BG_B + "000", "HU4", 70, "born_citizen"),
    ]
    acs = pd.DataFrame(rows, columns=["block_id", "household_id", "age", "citizenship_edited"])
    acs["weight"] = 10.0
    households = sorted(acs["household_id"].unique())
    factors = sdr_factors(len(households), start=0)
    unit = acs["household_id"].map({h: i for i, h in enumerate(households)}).to_numpy()
    replicate = pd.DataFrame(10.0 * factors[unit], columns=replicate_weight_columns())
    return pd.concat([acs, replicate], axis=1)


def test_block_group_estimates_and_moe_by_hand():
    acs = toy_acs()
    table, replicates = acs_direct_estimates(acs, np.array([BG_A, BG_B, "010010201003"]))
    table = table.set_index("block_group_id")
    assert table.loc[BG_A, "cit_est"] == 30.0  # three citizens x 10
    assert table.loc[BG_A, "cvap_est"] == 20.0  # the child is not voting age
    assert table.loc[BG_A, "noncit_est"] == 10.0
    assert table.loc[BG_B, "tot_est"] == 20.0 and table.loc[BG_B, "adu_est"] == 20.0
    assert table.loc[BG_A, "respondents"] == 4 and table.loc[BG_A, "households"] == 3
    # SE by hand: 4/80 sum_r (X_r - X)^2 with X_r = sum of replicate weights of citizens.
    citizens = acs["citizenship_edited"].isin(["born_citizen", "naturalized"]).to_numpy()
    in_a = acs["block_id"].str[:12].eq(BG_A).to_numpy()
    reps = acs[replicate_weight_columns()].to_numpy()[citizens & in_a].sum(axis=0)
    se = np.sqrt(4 / 80 * ((reps - 30.0) ** 2).sum())
    assert table.loc[BG_A, "cit_se"] == pytest.approx(se)
    assert table.loc[BG_A, "cit_moe"] == pytest.approx(1.645 * se)
    assert replicates["cit"].shape == (3, 80)
    # A block group without respondents: 0 with MOE 0.
    assert table.loc["010010201003", ["cit_est", "cit_moe"]].tolist() == [0.0, 0.0]


def test_baseline_shape_and_split():
    acs = toy_acs()
    geography = pd.DataFrame(
        {
            "block_id": [BG_A + "000", BG_A + "001", BG_B + "000"],
            "block_group_id": [BG_A, BG_A, BG_B],
            "tract_id": [BG_A[:11]] * 3,
            "county_id": ["01001"] * 3,
        }
    )
    # Frame: 30 / 10 persons in block group A's blocks (adults 20 / 10), 5 in B's.
    ages = [40] * 20 + [5] * 10 + [40] * 10 + [40] * 5
    frame = pd.DataFrame(
        {
            "person_id": [f"P{i:09d}" for i in range(len(ages))],
            "household_id": [f"H{i:09d}" for i in range(len(ages))],
            "block_id": [BG_A + "000"] * 30 + [BG_A + "001"] * 10 + [BG_B + "000"] * 5,
            "age": pd.array(ages, dtype="Int64"),
        }
    )
    config = load_config(overrides={"model": {"baselines": {"draws": 400}}})
    draws, table = acs_direct(acs, frame, geography, config, np.random.default_rng(3))
    assert list(draws.columns) == ["draw", "block_id", "citizens", "noncitizens", "cvap"]
    assert all(draws[c].dtype == np.int64 for c in ("draw", "citizens", "noncitizens", "cvap"))
    assert draws["draw"].nunique() == 400
    assert draws.groupby("draw").size().eq(3).all()
    means = draws.groupby("block_id")[["citizens", "cvap"]].mean()
    # Citizens split by population (30:10 in A), CVAP by voting-age population (20:10).
    assert means.loc[BG_A + "000", "citizens"] == pytest.approx(30 * 0.75, abs=1.5)
    assert means.loc[BG_A + "001", "citizens"] == pytest.approx(30 * 0.25, abs=1.0)
    assert means.loc[BG_A + "000", "cvap"] == pytest.approx(20 * 2 / 3, abs=1.5)
    # Each draw's blocks add up to its block-group draw (whole persons).
    per_bg = draws.assign(bg=draws["block_id"].str[:12]).groupby(["draw", "bg"])["citizens"]
    assert per_bg.sum().groupby("bg").std()[BG_A] > 0
    assert table.set_index("block_group_id").loc[BG_A, "population"] == 40


def test_apportion_keeps_totals():
    values = np.array([[1.4, 2.6, 0.5, 0.5], [-0.3, 1.3, 2.0, 0.0]])
    group = np.array([0, 0, 1, 1])
    totals = np.array([[4, 1], [1, 2]])
    out = apportion(values, group, totals)
    assert (np.stack([out[:, :2].sum(axis=1), out[:, 2:].sum(axis=1)], axis=1) == totals).all()
    assert np.all(np.abs(out - values) < 1)


def test_moe_coverage_and_targets():
    table = pd.DataFrame(
        {
            "block_group_id": [BG_A, BG_B],
            "respondents": [4, 0],
            "cit_est": [30.0, 0.0],
            "cit_moe": [5.0, 0.0],
            "cvap_est": [20.0, 0.0],
            "cvap_moe": [1.0, 0.0],
            "noncit_est": [10.0, 0.0],
            "noncit_moe": [2.0, 0.0],
        }
    )
    truth = pd.DataFrame(
        {
            "person_id": [f"P{i}" for i in range(40)],
            "block_id": [BG_A + "000"] * 34 + [BG_B + "000"] * 6,
            "tract_id": BG_A[:11],
            "county_id": "01001",
            "citizen": [True] * 28 + [False] * 6 + [True] * 6,
            "age": 40,
        }
    )
    moe = acs_moe_coverage(table, truth, truth["person_id"])
    # A: 28 citizens, 30 +- 5 covers; B: 6 citizens, 0 +- 0 does not.
    assert moe["citizens"]["coverage"] == 0.5 and moe["citizens"]["zero_moe_share"] == 0.5
    assert moe["cvap"]["coverage"] == 0.0  # 28 adults vs 20 +- 1, 6 vs 0 +- 0
    rows = []
    for method, mae, width, coverage in (
        ("published", 1.0, 10.0, 0.9),
        ("acs_direct", 3.0, 20.0, 0.8),
    ):
        for level in ("block", "block_group", "district_1000", "district_3000"):
            for quantity in ("citizens", "cvap"):
                rows.append(
                    {
                        "method": method,
                        "level": level,
                        "quantity": quantity,
                        "mae": mae,
                        "mean_width": width,
                        "coverage": coverage,
                        "mean_population": 100.0,
                    }
                )
    moe["citizens"]["mean_width"] = moe["cvap"]["mean_width"] = 12.0
    targets = check_targets(pd.DataFrame(rows), moe)
    assert targets["block_mae_at_most_half_of_acs_direct"]["met"]
    assert targets["block_group_width_and_coverage"]["met"]
    # The 10,000 and 30,000 levels are absent: NaN MAE is not "below".
    assert not targets["districts_1000_30000_mae_below_acs_direct"]["met"]
