"""Calibration at every level (models.calibration) and the calibration study benchmark.

(a) district sums, quantiles, coverage and PIT of a 6-block x 4-draw table, by hand;
(b) compact districts: consecutive blocks in GEOID order, cut at the target population;
(c) pooling replicates; (d) the study on two replicates of the tiny scenario (slow).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.calibration import (
    block_geography,
    compact_districts,
    level_names,
    pool_replicates,
    score_levels,
    score_unit_draws,
    summarize_levels,
    unit_assignments,
)
from pipeline_common.errors import InputError

REPO = Path(__file__).resolve().parent.parent

# Six blocks in two counties; block 4 is empty (population 0, never scored).
BLOCK_IDS = [
    "120860001001001",
    "120860001001002",
    "120860001002001",
    "120860002001001",
    "211110001001001",
    "211110001001002",
]
POPULATION = [100, 150, 80, 0, 120, 60]
CITIZEN_DRAWS = [[10, 12, 11, 13], [20, 18, 22, 19], [5, 7, 6, 6], [0, 0, 0, 0]]
CITIZEN_DRAWS += [[30, 28, 33, 31], [8, 9, 7, 10]]
CITIZEN_TRUTH = [11, 21, 6, 0, 35, 9]


def _geography() -> pd.DataFrame:
    # No block-group column: the block group is the first 12 characters of the GEOID.
    return pd.DataFrame(
        {
            "block_id": BLOCK_IDS,
            "tract_id": [b[:11] for b in BLOCK_IDS],
            "county_id": [b[:5] for b in BLOCK_IDS],
        }
    )


def _blocks() -> pd.DataFrame:
    # Rows shuffled: order must come from the GEOIDs.
    order = [3, 0, 5, 1, 4, 2]
    return block_geography(
        _geography().iloc[order], pd.Series(POPULATION, index=BLOCK_IDS).iloc[order]
    )


def _draws() -> pd.DataFrame:
    rows = []
    for block, citizen_draws in zip(BLOCK_IDS, CITIZEN_DRAWS, strict=True):
        for draw, citizens in enumerate(citizen_draws):
            # noncitizens: one per draw and block; CVAP: citizens minus 2 (at least 0).
            rows.append(
                {
                    "draw": draw,
                    "block_id": block,
                    "citizens": citizens,
                    "noncitizens": 1 if citizens else 0,
                    "cvap": max(citizens - 2, 0),
                }
            )
    return pd.DataFrame(rows)


def _truth() -> pd.DataFrame:
    # Block 4 (empty) has no truth row, as truth_blocks gives none for it.
    keep = [i for i, p in enumerate(POPULATION) if p > 0]
    return pd.DataFrame(
        {
            "block_id": [BLOCK_IDS[i] for i in keep],
            "citizens": [CITIZEN_TRUTH[i] for i in keep],
            "noncitizens": [1] * len(keep),
            "cvap": [CITIZEN_TRUTH[i] - 2 for i in keep],
        }
    )


def _scored(target: int = 250) -> pd.DataFrame:
    return score_levels(
        _draws(), _truth(), _blocks(), np.random.default_rng(7), district_targets=(target,)
    )


# (a) aggregation against a hand computation ------------------------------------------------


def test_block_geography_derives_block_groups_and_sorts():
    blocks = _blocks()
    assert blocks["block_id"].tolist() == BLOCK_IDS
    assert blocks["block_group_id"].tolist() == [b[:12] for b in BLOCK_IDS]
    assert blocks["population"].tolist() == POPULATION


def test_district_sums_quantiles_coverage_and_pit_by_hand():
    units = _scored()
    citizens = units[units["quantity"] == "citizens"].set_index(["level", "unit"])
    # Target 250 in GEOID order: blocks 1+2 reach 250 (district 0); blocks 3, 4 (empty), 5
    # reach 200 and block 6 brings 260 (district 1, across the county line).
    # District 0 draws: 10+20, 12+18, 11+22, 13+19 = 30, 30, 33, 32; truth 11 + 21 = 32.
    d0 = citizens.loc[("district_250", "D250-0000")]
    assert d0["n_blocks"] == 2 and d0["population"] == 250
    assert d0["estimate"] == pytest.approx(31.25)
    # inverted_cdf with 4 draws: 5% -> the smallest draw, 95% -> the largest.
    assert (d0["lo90"], d0["hi90"], d0["truth"]) == (30, 33, 32)
    assert bool(d0["covered"])
    # P(X < 32) = 2/4, P(X = 32) = 1/4: u in [0.5, 0.75].
    assert 0.5 <= d0["pit"] <= 0.75
    # District 1 draws: 5+0+30+8, 7+0+28+9, 6+0+33+7, 6+0+31+10 = 43, 44, 46, 47; truth 50.
    d1 = citizens.loc[("district_250", "D250-0001")]
    assert d1["n_blocks"] == 4 and d1["population"] == 260
    assert (d1["estimate"], d1["lo90"], d1["hi90"], d1["truth"]) == (45, 43, 47, 50)
    assert not d1["covered"]
    assert d1["pit"] == 1.0 and not d1["pit_covered"]  # every draw below the truth
    # Run total: 73, 74, 79, 79 against 82.
    total = citizens.loc[("total", "total")]
    assert (total["estimate"], total["lo90"], total["hi90"], total["truth"]) == (
        76.25,
        73,
        79,
        82,
    )
    assert not total["covered"]
    # Counties: 12086 = blocks 1-4: 35, 37, 39, 38 against 38 (covered);
    # 21111 = blocks 5-6: 38, 37, 40, 41 against 44 (missed).
    c1, c2 = citizens.loc[("county", "12086")], citizens.loc[("county", "21111")]
    assert (c1["lo90"], c1["hi90"], c1["truth"], bool(c1["covered"])) == (35, 39, 38, True)
    assert (c2["lo90"], c2["hi90"], c2["truth"], bool(c2["covered"])) == (37, 41, 44, False)
    # Level summary: coverage 1 of 2 districts, bias (-0.75 - 5) / 2, width (3 + 4) / 2.
    summary = summarize_levels(units).set_index(["level", "quantity"])
    s = summary.loc[("district_250", "citizens")]
    assert s["n_units"] == 2
    assert s["coverage"] == 0.5
    assert s["coverage_se"] == pytest.approx(math.sqrt(0.25 / 2))
    assert s["bias"] == pytest.approx(-2.875)
    assert s["mae"] == pytest.approx(2.875)
    assert s["rel_bias_sum"] == pytest.approx(-5.75 / 82)
    assert s["mean_width"] == pytest.approx(3.5)
    assert s["mean_population"] == pytest.approx(255)


def test_empty_units_are_not_scored_and_every_level_is_present():
    units = _scored()
    assert list(dict.fromkeys(units["level"])) == level_names((250,))
    blocks = units[(units["level"] == "block") & (units["quantity"] == "cvap")]
    assert BLOCK_IDS[3] not in set(blocks["unit"])  # population 0
    assert len(blocks) == 5
    tracts = units[(units["level"] == "tract") & (units["quantity"] == "citizens")]
    assert sorted(tracts["unit"]) == ["12086000100", "21111000100"]  # 12086000200 is empty
    # The block-level truth is the input truth, the estimate the mean of the block's draws.
    b5 = units[(units["level"] == "block") & (units["unit"] == BLOCK_IDS[4])]
    b5 = b5.set_index("quantity")
    assert b5.loc["citizens", "truth"] == 35 and b5.loc["citizens", "estimate"] == 30.5
    assert b5.loc["cvap", "truth"] == 33 and b5.loc["noncitizens", "truth"] == 1


def test_randomized_pit_by_hand():
    # Unit 1: draws 30, 30, 33, 32, truth 32 -> u = 2/4 + V / 4; unit 2: truth 29 -> u = 0;
    # unit 3: truth 30 -> u = 0 + V * 2/4.
    summed = np.array([[30, 30, 33, 32], [30, 30, 33, 32], [30, 30, 33, 32]])
    truth = np.array([32, 29, 30])
    v = np.random.default_rng(11).random(3)
    result = score_unit_draws(summed, truth, np.random.default_rng(11))
    np.testing.assert_allclose(result["pit"], [0.5 + v[0] / 4, 0.0, v[2] / 2])
    assert result["covered"].tolist() == [True, False, True]
    assert result["pit_covered"].tolist() == [
        0.05 <= 0.5 + v[0] / 4 <= 0.95,
        False,
        0.05 <= v[2] / 2 <= 0.95,
    ]
    np.testing.assert_array_equal(result["lo90"], [30, 30, 30])
    np.testing.assert_array_equal(result["hi90"], [33, 33, 33])


def test_quantiles_are_inclusive_draw_values():
    # 20 draws 1..20: inverted_cdf 5% = the 1st value, 95% = the 19th.
    summed = np.arange(1, 21)[None, :]
    result = score_unit_draws(summed, np.array([19]), np.random.default_rng(0))
    assert (result["lo90"][0], result["hi90"][0]) == (1, 19)
    assert bool(result["covered"][0])  # the truth on the bound counts as covered


def test_levels_agree_with_pandas_sums_on_a_random_world():
    rng = np.random.default_rng(3)
    n_blocks, n_draws = 40, 50
    ids = [f"1208600{t:02d}00{g}{b:03d}" for t in range(4) for g in (1, 2) for b in range(5)]
    geography = pd.DataFrame({"block_id": ids, "tract_id": [i[:11] for i in ids]})
    geography["county_id"] = geography["block_id"].str[:5]
    geography["block_group_id"] = geography["block_id"].str[:12]
    population = pd.Series(rng.integers(0, 60, n_blocks), index=ids)
    draws = pd.DataFrame(
        {
            "draw": np.tile(np.arange(n_draws), n_blocks),
            "block_id": np.repeat(ids, n_draws),
            "citizens": rng.poisson(10, n_blocks * n_draws),
            "noncitizens": rng.poisson(3, n_blocks * n_draws),
            "cvap": rng.poisson(7, n_blocks * n_draws),
        }
    )
    truth = pd.DataFrame({"block_id": ids, "citizens": rng.poisson(10, n_blocks)})
    truth["noncitizens"], truth["cvap"] = 3, 7
    truth.loc[(population == 0).to_numpy(), ["citizens", "noncitizens", "cvap"]] = 0
    units = score_levels(draws, truth, block_geography(geography, population), rng, (200,))
    populated = population[population > 0].index
    expected_draws = (
        draws[draws["block_id"].isin(populated)]
        .assign(tract=lambda d: d["block_id"].str[:11])
        .groupby(["tract", "draw"])["citizens"]
        .sum()
        .unstack()
    )
    got = units[(units["level"] == "tract") & (units["quantity"] == "citizens")].set_index("unit")
    for tract, row in expected_draws.iterrows():
        values = row.to_numpy()
        assert got.loc[tract, "estimate"] == pytest.approx(values.mean())
        assert got.loc[tract, "lo90"] == np.quantile(values, 0.05, method="inverted_cdf")
        assert got.loc[tract, "hi90"] == np.quantile(values, 0.95, method="inverted_cdf")
    # Every level sums the same run total of truth.
    sums = units[units["quantity"] == "citizens"].groupby("level")["truth"].sum()
    assert (sums == truth.set_index("block_id").loc[populated, "citizens"].sum()).all()


def test_draws_naming_unknown_or_missing_blocks_are_refused():
    draws = _draws()
    stray = draws.iloc[:1].assign(block_id="999990001001001")
    with pytest.raises(InputError, match="not in the geography"):
        score_levels(pd.concat([draws, stray]), _truth(), _blocks(), np.random.default_rng(0))
    without_block_1 = draws[draws["block_id"] != BLOCK_IDS[0]]
    with pytest.raises(InputError, match="populated blocks have no draws"):
        score_levels(without_block_1, _truth(), _blocks(), np.random.default_rng(0))
    with pytest.raises(InputError, match="cvap"):
        score_levels(draws.drop(columns="cvap"), _truth(), _blocks(), np.random.default_rng(0))


# (b) compact districts ---------------------------------------------------------------------


def _district_blocks(populations: list[int]) -> pd.DataFrame:
    ids = [f"12086000100{1 + i // 10}{i % 10:03d}" for i in range(len(populations))]
    # Given in reverse order: districts follow the GEOIDs, not the rows.
    return pd.DataFrame({"block_id": ids, "population": populations}).iloc[::-1]


def test_compact_districts_cut_when_running_population_reaches_target():
    blocks = _district_blocks([40, 70, 0, 30, 100, 5, 95, 60, 60])
    districts = compact_districts(blocks, 100)
    # 40+70 = 110 -> close; 0+30+100 = 130 -> close; 5+95 = 100 -> close (reaching counts);
    # 60+60 = 120 -> close.
    assert districts.tolist() == [0, 0, 1, 1, 1, 2, 2, 3, 3]
    assert districts.index.tolist() == sorted(blocks["block_id"])
    sizes = blocks.set_index("block_id")["population"].groupby(districts).sum()
    assert (sizes >= 100).all()


def test_compact_districts_small_remainder_joins_the_last_district():
    # 60+60 closes; the remainder 30 (< 50) joins district 0.
    assert compact_districts(_district_blocks([60, 60, 30]), 100).tolist() == [0, 0, 0]
    # A remainder of at least half the target is a district of its own.
    assert compact_districts(_district_blocks([60, 60, 50]), 100).tolist() == [0, 0, 1]
    # A target above the whole population: one district.
    assert compact_districts(_district_blocks([10, 20]), 1000).tolist() == [0, 0]


def test_districts_are_runs_of_consecutive_blocks_of_whole_block_groups():
    rng = np.random.default_rng(5)
    ids = sorted(
        f"{c}0001{t:02d}{g}{b:03d}"
        for c in ("12086", "21111")
        for t in range(5)
        for g in range(1, 4)
        for b in range(6)
    )
    blocks = block_geography(
        pd.DataFrame(
            {"block_id": ids, "tract_id": [i[:11] for i in ids], "county_id": [i[:5] for i in ids]}
        ),
        pd.Series(rng.integers(0, 40, len(ids)), index=ids),
    )
    units = unit_assignments(blocks, (300, 3000))
    for level in ("district_300", "district_3000"):
        labels = units[level].to_numpy()
        # Each district is one run: labels never come back once left.
        runs = [labels[0]] + [b for a, b in zip(labels, labels[1:], strict=False) if a != b]
        assert len(runs) == len(set(runs))
    # Districts hold whole block groups except where a cut falls inside one: at most one
    # split block group per cut.
    cuts = units["district_3000"].nunique() - 1
    split = units.groupby("block_group")["district_3000"].nunique().gt(1).sum()
    assert split <= cuts


# (c) pooling -------------------------------------------------------------------------------


def _unit_rows(method, replicate, level, covered, pit_covered, errors, widths, truths):
    return pd.DataFrame(
        {
            "method": method,
            "replicate": replicate,
            "level": level,
            "quantity": "citizens",
            "unit": [f"u{i}" for i in range(len(covered))],
            "n_blocks": 1,
            "population": [100 * (i + 1) for i in range(len(covered))],
            "estimate": np.add(truths, errors),
            "lo90": 0,
            "hi90": 0,
            "truth": truths,
            "error": errors,
            "width": widths,
            "pit": 0.5,
            "covered": covered,
            "pit_covered": pit_covered,
        }
    )


def test_pool_replicates_by_hand():
    units = pd.concat(
        [
            _unit_rows(
                "exact", 1, "county", [True, False], [True, True], [1, -3], [4, 6], [10, 20]
            ),
            _unit_rows("exact", 2, "county", [True, True], [False, True], [2, 0], [2, 4], [30, 40]),
            _unit_rows("exact", 1, "total", [False], [False], [-2], [10], [30]),
            _unit_rows("exact", 2, "total", [True], [True], [2], [6], [70]),
            _unit_rows("published", 1, "total", [True], [True], [1], [8], [30]),
            _unit_rows("published", 2, "total", [True], [True], [0], [8], [70]),
        ],
        ignore_index=True,
    )
    pooled = pool_replicates(units)
    assert pooled[["method", "level"]].values.tolist() == [
        ["exact", "county"],
        ["exact", "total"],
        ["published", "total"],
    ]
    county = pooled.iloc[0]
    assert county["n_units"] == 4 and county["n_replicates"] == 2
    assert county["coverage"] == 0.75
    assert county["coverage_se"] == pytest.approx(math.sqrt(0.75 * 0.25 / 4))
    assert county["pit_coverage"] == 0.75
    assert county["bias"] == pytest.approx(0.0)
    assert county["mae"] == pytest.approx(1.5)
    assert county["rel_bias_sum"] == pytest.approx(0.0)
    assert county["mean_width"] == pytest.approx(4.0)
    assert pd.isna(county["replicates_covered"])
    total = pooled.iloc[1]
    assert total["replicates_covered"] == 1 and total["n_replicates"] == 2
    assert total["coverage"] == 0.5
    assert total["rel_bias_sum"] == pytest.approx(0.0)
    assert pooled.iloc[2]["replicates_covered"] == 2
    # Wilson 95% interval: 3 of 4 -> (0.301, 0.954); all of n -> lower bound n / (n + z^2).
    assert county["coverage_lo95"] == pytest.approx(0.3006, abs=1e-4)
    assert county["coverage_hi95"] == pytest.approx(0.9544, abs=1e-4)
    assert pooled.iloc[2]["coverage_lo95"] == pytest.approx(2 / (2 + 1.96**2))
    assert pooled.iloc[2]["coverage_hi95"] == 1.0
    with pytest.raises(ValueError, match="replicate"):
        pool_replicates(units.drop(columns="replicate"))


# (d) the study on two tiny replicates ------------------------------------------------------


@pytest.mark.slow
def test_calibration_study_on_two_tiny_replicates(tmp_path):
    # The Snakemake working directory is a scratch folder, as in test_workflow.py. This test
    # checks the study's machinery, not the model, and must fit the suite's time, so there is
    # no privacy refit: publication then reads the exact fit, and the test compiles two models,
    # not four (a cold tiny compile takes 2-3 minutes). Fewer prediction draws than tiny's;
    # sampling draws stay (fewer than the ESS target only makes the fit sample again).
    lean = tmp_path / "lean.yaml"
    lean.write_text("model:\n  predict_draws: 150\nprivacy:\n  mode: none\n")
    out = tmp_path / "study"
    cmd = [
        sys.executable,
        str(REPO / "benchmarks" / "calibration_study.py"),
        "--scenario",
        "tiny",
        "--seeds",
        "1",
        "2",
        "--configfile",
        str(lean),
        "--workdir",
        str(tmp_path / "work"),
        "--out",
        str(out),
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    assert done.returncode == 0, (done.stdout + done.stderr)[-6000:]
    for name in ("calibration.csv", "calibration.json", "units.parquet", "coverage_by_size.png"):
        assert (out / name).stat().st_size > 0, name
    pooled = pd.read_csv(out / "calibration.csv")
    expected = level_names()
    for method in ("published", "exact"):
        part = pooled[pooled["method"] == method]
        assert set(part["level"]) == set(expected), method
        assert (part["n_replicates"] == 2).all()
        for quantity in ("citizens", "noncitizens", "cvap"):
            block = part[(part["level"] == "block") & (part["quantity"] == quantity)].iloc[0]
            assert 0.5 <= block["coverage"] <= 1.0, (method, quantity, block["coverage"])
            assert 0.5 <= block["pit_coverage"] <= 1.0, (method, quantity)
    document = json.loads((out / "calibration.json").read_text())
    assert set(document["replicates"]) == {"calib_tiny-lean_s1", "calib_tiny-lean_s2"}
    for replicate in document["replicates"].values():
        assert set(replicate["convergence"]) == {"exact", "published"}
        # Without the refit the published draws come from the exact fit.
        assert replicate["convergence"]["published"]["file"] == "model/diagnostics.json"
        assert replicate["convergence"]["exact"]["max_rhat"] is not None
        assert replicate["wall_seconds"] > 0
    units = pd.read_parquet(out / "units.parquet")
    assert set(units["replicate"]) == {1, 2}
    assert "MISSED" in done.stdout or "ok" in done.stdout
    # Neither the report nor the baselines are built: the study asks for what it scores only.
    run_dir = tmp_path / "work" / "results" / "calib_tiny-lean_s1"
    assert not (run_dir / "report").exists() and not (run_dir / "baselines").exists()
    published = pd.read_parquet(run_dir / "published" / "draws.parquet")
    assert len(published) == len(pd.read_parquet(run_dir / "model" / "block_draws.parquet"))
    # Scoring again without running: same pooled table; a missing run is a clear error.
    again = subprocess.run([*cmd, "--score-only"], capture_output=True, text=True, env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    pd.testing.assert_frame_equal(pd.read_csv(out / "calibration.csv"), pooled)
    missing = subprocess.run(
        [*cmd[:5], "3", *cmd[7:], "--score-only"], capture_output=True, text=True, env=env
    )
    assert missing.returncode == 2
    assert "calib_tiny-lean_s3" in missing.stderr and "Traceback" not in missing.stderr
