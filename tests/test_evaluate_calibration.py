"""One run's calibration at every level (models.calibration_stage, rule evaluate_calibration)
and its section of the report, on tiny hand-made draws and truth."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from models.calibration_stage import calibration_stage, evaluate_calibration
from pipeline_common.errors import InputError
from reports.summaries import calibration_levels

N_DRAWS = 20
# Two counties, one tract each, two blocks per tract (block GEOID = tract + 4 digits).
BLOCKS = {
    "120860001001000": ("12086000100", "12086"),
    "120860001001001": ("12086000100", "12086"),
    "060370001001000": ("06037000100", "06037"),
    "060370001001001": ("06037000100", "06037"),
}
# True citizens / noncitizens per block (every person an adult, so CVAP = citizens).
TRUE_COUNTS = {
    "120860001001000": (10, 2),
    "120860001001001": (5, 1),
    "060370001001000": (8, 0),
    "060370001001001": (4, 3),
}


def _geography() -> pd.DataFrame:
    return pd.DataFrame(
        [{"block_id": b, "tract_id": t, "county_id": c} for b, (t, c) in BLOCKS.items()]
    )


def _persons() -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = []
    for block, (citizens, noncitizens) in TRUE_COUNTS.items():
        tract, county = BLOCKS[block]
        rows += [(block, tract, county, True, 40)] * citizens
        rows += [(block, tract, county, False, 40)] * noncitizens
    truth = pd.DataFrame(rows, columns=["block_id", "tract_id", "county_id", "citizen", "age"])
    truth.insert(0, "person_id", [f"P{i:09d}" for i in range(len(truth))])
    return truth, truth[["person_id", "block_id"]].copy()


def _draws(citizen_shift: dict[str, np.ndarray]) -> pd.DataFrame:
    """Draws of each block: truth + the block's per-draw shift for citizens and CVAP."""
    rows = []
    for block, (citizens, noncitizens) in TRUE_COUNTS.items():
        shift = citizen_shift.get(block, np.zeros(N_DRAWS, dtype=int))
        for draw in range(N_DRAWS):
            c = citizens + int(shift[draw])
            rows.append((draw, block, c, noncitizens, c))
    return pd.DataFrame(rows, columns=["draw", "block_id", "citizens", "noncitizens", "cvap"])


# Exact draws: every draw the truth, except one block whose draws all sit 3 above it.
EXACT = _draws({"060370001001001": np.full(N_DRAWS, 3)})
# Published draws: spread -2..+2 around the truth in every block (all covered), but the first
# block's draws all sit 10 below it (so the run total, -16 to -4, misses too).
SPREAD = np.tile(np.array([-2, -1, 0, 1, 2]), N_DRAWS // 5)
PUBLISHED = _draws(
    {
        "120860001001000": np.full(N_DRAWS, -10),
        "120860001001001": SPREAD,
        "060370001001000": SPREAD,
        "060370001001001": SPREAD,
    }
)


@pytest.fixture(scope="module")
def result() -> dict:
    truth, frame = _persons()
    return evaluate_calibration(
        {"published": PUBLISHED, "exact": EXACT},
        truth,
        frame,
        _geography(),
        seed=3,
        district_targets=(10, 20),
    )


def _row(result: dict, method: str, level: str, quantity: str) -> dict:
    (row,) = [
        r
        for r in result["summary"]
        if (r["method"], r["level"], r["quantity"]) == (method, level, quantity)
    ]
    return row


def test_levels_and_methods(result):
    assert result["levels"] == [
        "block",
        "block_group",
        "tract",
        "district_10",
        "district_20",
        "county",
        "total",
    ]
    assert set(result["methods"]) == {"published", "exact"}
    keys = {(r["method"], r["level"], r["quantity"]) for r in result["summary"]}
    assert len(keys) == 2 * 7 * 3 == len(result["summary"])


def test_coverage_by_hand(result):
    # Exact: one of four blocks missed (its draws all 3 above the truth) -> 0.75, missed.
    block = _row(result, "exact", "block", "citizens")
    assert block["n_units"] == 4
    assert block["coverage"] == pytest.approx(0.75)
    assert block["status"] == "missed"
    # Noncitizen draws equal the truth everywhere: every unit covered at every level.
    for level in result["levels"]:
        assert _row(result, "exact", level, "noncitizens")["coverage"] == 1.0
    # Counties: 12086 exact, 06037 3 above -> 1 of 2 covered; the run total (3 above) missed.
    county = _row(result, "exact", "county", "citizens")
    assert (county["n_units"], county["coverage"]) == (2, 0.5)
    total = _row(result, "exact", "total", "cvap")
    assert total["coverage"] == 0.0 and total["status"] == "missed"
    assert total["bias"] == pytest.approx(3.0)
    assert total["rel_bias_sum"] == pytest.approx(3 / 27)
    # Published: the first block 10 below (missed), the rest spread around the truth.
    assert _row(result, "published", "block", "citizens")["coverage"] == pytest.approx(0.75)
    assert _row(result, "published", "total", "citizens")["status"] == "missed"
    # The mean width of a block's 5%-95% interval: 0 for the shifted block, 4 for the others.
    assert _row(result, "published", "block", "citizens")["mean_width"] == pytest.approx(3.0)


def test_status_uses_the_band(result):
    for row in result["summary"]:
        if row["level"] == "total":
            assert row["status"] == ("covered" if row["coverage"] == 1 else "missed")
        else:
            inside = 0.85 <= row["coverage"] <= 0.95
            assert row["status"] == ("ok" if inside else "missed"), row
        assert (row["pit_status"] is None) == (row["level"] != "block")


def test_county_and_total_units_listed(result):
    counties = result["units"]["county"]
    assert len(counties) == 2 * 3 * 2  # methods x quantities x counties
    exact = {
        r["unit"]: r for r in counties if r["method"] == "exact" and r["quantity"] == "citizens"
    }
    assert exact["12086"]["truth"] == 15 and exact["12086"]["estimate"] == 15.0
    assert exact["12086"]["covered"] is True
    assert exact["06037"]["truth"] == 12
    assert (exact["06037"]["lo90"], exact["06037"]["hi90"]) == (15, 15)
    assert exact["06037"]["covered"] is False
    totals = result["units"]["total"]
    assert {(r["method"], r["quantity"]) for r in totals} == {
        (m, q) for m in ("published", "exact") for q in ("citizens", "noncitizens", "cvap")
    }
    assert all(r["truth"] == 27 for r in totals if r["quantity"] == "citizens")


def test_json_safe_and_deterministic(result):
    text = json.dumps(result, allow_nan=False)
    truth, frame = _persons()
    again = evaluate_calibration(
        {"published": PUBLISHED, "exact": EXACT},
        truth,
        frame,
        _geography(),
        seed=3,
        district_targets=(10, 20),
    )
    assert json.dumps(again, allow_nan=False) == text


def test_stage_writes_json_and_figure(tmp_path):
    truth, frame = _persons()
    paths = {
        "published": tmp_path / "published.parquet",
        "exact": tmp_path / "exact.parquet",
    }
    PUBLISHED.to_parquet(paths["published"])
    EXACT.to_parquet(paths["exact"])
    truth.to_parquet(tmp_path / "truth.parquet")
    frame.to_parquet(tmp_path / "frame.parquet")
    _geography().to_parquet(tmp_path / "geography.parquet")
    out = tmp_path / "evaluation"
    written = calibration_stage(
        paths,
        tmp_path / "truth.parquet",
        tmp_path / "frame.parquet",
        tmp_path / "geography.parquet",
        out / "calibration.json",
        out / "calibration_levels.png",
        seed=3,
        run="fx",
    )
    on_disk = json.loads((out / "calibration.json").read_text())
    assert on_disk["run"] == "fx" and on_disk["summary"] == written["summary"]
    assert (out / "calibration_levels.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_draws_of_unknown_blocks_are_an_input_error():
    truth, frame = _persons()
    bad = EXACT.assign(block_id=EXACT["block_id"].replace("060370001001001", "999999999999999"))
    with pytest.raises(InputError):
        evaluate_calibration({"exact": bad}, truth, frame, _geography(), seed=3)


def test_report_table_says_missed_in_words(result):
    rows, summary = calibration_levels(result)
    assert not summary.empty
    labels = [r["label"] for r in rows]
    assert labels[:2] == ["block (equal-tailed interval)", "block (randomized PIT)"]
    assert labels[-2:] == ["county", "run total"]
    by_label = {r["label"]: r for r in rows}
    # Columns: published citizens, published CVAP, exact citizens, exact CVAP.
    block = by_label["block (equal-tailed interval)"]["cells"]
    assert block[2]["missed"] and block[2]["text"].startswith("75.0%")
    total = by_label["run total"]["cells"]
    assert [c["missed"] for c in total] == [True, True, True, True]
    assert all(c["text"] == "" for c in total)  # never "covered" beside a missed total
    county = by_label["county"]["cells"]
    # Two counties: no share of 2 lies in 0.85-0.95, which the table marks.
    assert county[2]["text"] == "50.0% (1/2)" and county[2]["unreachable"]
    # Every cell either missed or inside the band: nothing in between is shown as fine.
    for row in rows:
        for cell in row["cells"]:
            if not cell["missed"] and row["level"] != "total":
                share = float(cell["text"].split("%")[0]) / 100
                assert 0.85 <= share <= 0.95


def test_report_table_without_file():
    for missing in (None, {}, {"summary": []}):
        rows, summary = calibration_levels(missing)
        assert rows == [] and summary.empty
