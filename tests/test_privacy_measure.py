"""Privacy measurements, public counts and the budget ledger on a toy world built to contract."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from pipeline_common.config import load_config
from pipeline_common.errors import InputError
from privacy.ledger import BudgetExceededError, PrivacyLedger
from privacy.measure import MEASUREMENT_COLUMNS, exact_table, measure, public_counts
from privacy.testing import fixture_world


@pytest.fixture(scope="module")
def world():
    return fixture_world(np.random.default_rng(11))


def config_with(**privacy):
    return load_config(overrides={"run": "unit", "privacy": privacy})


def test_ledger_refuses_an_over_budget_request_and_records_nothing():
    ledger = PrivacyLedger(budget_rho=1.0, delta=1e-10)
    ledger.charge("a", 0.6)
    with pytest.raises(BudgetExceededError, match=r"budget exceeded.*'b'.*remains.*Fix"):
        ledger.charge("b", 0.5)
    assert ledger.spent_rho == pytest.approx(0.6)
    ledger.charge("c", 0.4)  # exactly the remaining budget is allowed
    assert ledger.spent_rho <= 1.0 * (1 + 1e-9)
    assert ledger.remaining_rho == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(BudgetExceededError):
        ledger.charge("d", 1e-6)
    running = [e["rho_running_total"] for e in ledger.to_dict()["measurements"]]
    assert running == sorted(running) and max(running) <= 1.0 + 1e-9


def test_measure_refuses_shares_over_budget_before_measuring(world):
    tables = [
        {"name": "county_full", "geo_level": "county", "pattern_level": "full", "share": 0.7},
        {"name": "block_coarse", "geo_level": "block", "pattern_level": "coarse", "share": 0.5},
    ]
    # The config check refuses such shares before any job; the ledger refuses them again if a
    # config reaches the privacy stage some other way.
    with pytest.raises(InputError, match=r"privacy\.tables.*add up to 1\.2"):
        config_with(tables=tables)
    config = config_with()
    config["privacy"]["tables"] = tables
    with pytest.raises(BudgetExceededError, match="block_coarse"):
        measure(world["cells"], world["patterns"], config, world["geography"])


def test_zcdp_tables_cover_the_full_domain_with_noise(world):
    config = config_with()
    measurements, counts, ledger = measure(
        world["cells"], world["patterns"], config, world["geography"]
    )
    assert list(measurements.columns) == MEASUREMENT_COLUMNS
    assert measurements["value"].dtype == np.int64
    n_blocks, n_counties = len(world["geography"]), world["geography"]["county_id"].nunique()
    n_full, n_coarse = len(world["patterns"]), world["patterns"]["coarse_pattern_id"].nunique()
    sizes = measurements.groupby("table").size()
    # Every cell of geo x age x pattern categories, zeros included (the empty block too).
    assert sizes["county_full"] == n_counties * 4 * n_full
    assert sizes["block_coarse"] == n_blocks * 4 * n_coarse
    assert (measurements["value"] < 0).any(), "noise on zero cells must be able to go negative"
    sigma = measurements.groupby("table")["sigma"].first()
    assert sigma["block_coarse"] == pytest.approx(1 / math.sqrt(0.75), rel=1e-6)
    assert sigma["county_full"] == pytest.approx(2.0, rel=1e-6)
    # Noise is centred: the noisy total per table is close to the true total.
    for _table, values in measurements.groupby("table")["value"]:
        assert abs(values.sum() - world["cells"]["count"].sum()) < 6 * sigma.max() * math.sqrt(
            len(values)
        )
    assert ledger["total"]["rho"] <= ledger["budget"]["rho"] * (1 + 1e-9)
    assert ledger["total"]["epsilon"] == pytest.approx(10.03, abs=0.01)
    assert [m["name"] for m in ledger["measurements"]] == ["county_full", "block_coarse"]
    # Public counts: every block x age group, zeros included, summing to the frame.
    assert len(counts) == n_blocks * 4
    assert counts["population"].sum() == len(world["persons"])
    empty = world["geography"]["block_id"].iloc[-1]
    assert counts.loc[counts["block_id"] == empty, "population"].eq(0).all()


def test_mode_none_is_exact_and_labelled(world):
    measurements, _, ledger = measure(
        world["cells"], world["patterns"], config_with(mode="none"), world["geography"]
    )
    assert set(measurements["table"]) == {"block_detail"}
    assert (measurements["sigma"] == 0).all()
    assert (measurements["value"] > 0).all()  # zeros omitted: nothing is protected
    exact = world["cells"].groupby(["block_id", "age_group", "pattern_id"])["count"].sum()
    got = measurements.set_index(["geo_id", "age_group", "pattern_id"])["value"]
    assert {tuple(map(str, k)): v for k, v in got.items()} == {
        tuple(map(str, k)): v for k, v in exact.items()
    }
    assert ledger["privacy_protected"] is False


def test_same_seed_same_measurements_other_seed_differs(world):
    first = measure(world["cells"], world["patterns"], config_with(), world["geography"])[0]
    again = measure(world["cells"], world["patterns"], config_with(), world["geography"])[0]
    other_config = load_config(overrides={"run": "unit", "seed": 7})
    other = measure(world["cells"], world["patterns"], other_config, world["geography"])[0]
    pd.testing.assert_frame_equal(first, again)
    assert not first["value"].equals(other["value"])


def test_bad_cells_give_clear_errors(world):
    cells = world["cells"].drop(columns="count")
    with pytest.raises(InputError, match=r"model/cells.parquet.*count"):
        measure(cells, world["patterns"], config_with(), world["geography"])
    cells = world["cells"].assign(age_group="adults")
    with pytest.raises(InputError, match="age_group"):
        measure(cells, world["patterns"], config_with(), world["geography"])
    patterns = world["patterns"].iloc[1:]
    with pytest.raises(InputError, match="pattern_id"):
        measure(world["cells"], patterns, config_with(), world["geography"])


def test_opendp_noise_source_measures_the_same_domain(world):
    seeded, _, _ = measure(world["cells"], world["patterns"], config_with(), world["geography"])
    secure, _, ledger = measure(
        world["cells"], world["patterns"], config_with(noise_source="opendp"), world["geography"]
    )
    assert ledger["noise_source"] == "opendp"
    columns = ["table", "geo_id", "age_group", "pattern_id", "sigma"]
    pd.testing.assert_frame_equal(seeded[columns], secure[columns])
    labels = ["0-17", "18-34", "35-64", "65+"]
    counts = public_counts(world["cells"], labels, world["geography"])
    exact = exact_table(world["cells"], world["patterns"], counts, labels, "block", "coarse")
    # Noise is present, centred and of the stated size (sigma 1.15 on block cells).
    block = secure["table"] == "block_coarse"
    noise = secure.loc[block, "value"].to_numpy() - exact["value"].to_numpy()
    assert 0.8 < noise.std() < 1.5 and abs(noise.mean()) < 0.3
