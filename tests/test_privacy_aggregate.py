"""The district aggregation command against a hand computation, and its errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline_common.errors import InputError
from privacy.aggregate import aggregate, main, read_districts, read_draws


@pytest.fixture()
def draws_file(tmp_path):
    # 20 draws, 3 blocks; block sums differ per draw so the quantiles are easy to hand-check.
    rows = []
    for draw in range(20):
        for block, base in (
            ("120010001001000", 10),
            ("120010001001001", 5),
            ("120010001001002", 1),
        ):
            rows.append(
                {
                    "draw": draw,
                    "block_id": block,
                    "citizens": base + draw,
                    "noncitizens": 2,
                    "cvap": base + draw // 2,
                }
            )
    path = tmp_path / "draws.parquet"
    pd.DataFrame(rows).to_parquet(path, index=False)
    return path


def write_districts(tmp_path, text):
    path = tmp_path / "districts.csv"
    path.write_text(text)
    return path


def test_district_intervals_come_from_summed_draws(tmp_path, draws_file, capsys):
    districts = write_districts(
        tmp_path,
        "block_id,district\n120010001001000,A\n120010001001001,A\n120010001001002,B\n",
    )
    out = tmp_path / "out.csv"
    assert (
        main(["--draws", str(draws_file), "--districts", str(districts), "--output", str(out)]) == 0
    )
    result = pd.read_csv(out).set_index("district")
    # Hand computation: district A citizens per draw = 15 + 2 * draw, draw 0..19.
    a_citizens = np.sort(15 + 2 * np.arange(20))
    assert result.loc["A", "citizens_est"] == a_citizens[9]  # inverted-CDF median of 20 values
    assert result.loc["A", "citizens_lo90"] == a_citizens[0]  # ceil(0.05 * 20) - 1 = 0
    assert result.loc["A", "citizens_hi90"] == a_citizens[18]  # ceil(0.95 * 20) - 1 = 18
    assert result.loc["A", "noncitizens_est"] == 4 and result.loc["A", "blocks"] == 2
    b_cvap = np.sort(1 + np.arange(20) // 2)
    assert result.loc["B", "cvap_est"] == b_cvap[9]
    # Summing block intervals would be wider than the interval of the sums.
    printed = capsys.readouterr().out
    assert printed.startswith("district,blocks,citizens_est")


def test_unknown_block_gives_a_clear_error(tmp_path, draws_file, capsys):
    districts = write_districts(tmp_path, "block_id,district\n999999999999999,A\n")
    assert main(["--draws", str(draws_file), "--districts", str(districts)]) == 2
    err = capsys.readouterr().err
    assert "districts.csv" in err and "block_id" in err and "Fix:" in err


def test_bad_district_files(tmp_path, draws_file):
    with pytest.raises(InputError, match="file not found"):
        read_districts(tmp_path / "nope.csv")
    with pytest.raises(InputError, match=r"field 'district'.*missing.*Fix: add a header"):
        read_districts(write_districts(tmp_path, "block_id,ward\n120010001001000,A\n"))
    with pytest.raises(InputError, match="more than once"):
        read_districts(
            write_districts(tmp_path, "block_id,district\n120010001001000,A\n120010001001000,B\n")
        )
    with pytest.raises(InputError, match="file not found"):
        read_draws(tmp_path / "missing.parquet")


def test_missing_draw_columns(tmp_path):
    path = tmp_path / "draws.parquet"
    pd.DataFrame({"draw": [0], "block_id": ["1"]}).to_parquet(path)
    with pytest.raises(InputError, match="citizens"):
        read_draws(path)


def test_aggregate_function_matches_cli(draws_file):
    draws = read_draws(draws_file)
    districts = pd.DataFrame({"block_id": ["120010001001002"], "district": ["B"]})
    result = aggregate(draws, districts)
    assert result["citizens_hi90"].iloc[0] == 1 + 18


def test_module_entry_point_reports_missing_file(tmp_path):
    import subprocess
    import sys

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "privacy.aggregate",
            "--draws",
            str(tmp_path / "none.parquet"),
            "--districts",
            str(tmp_path / "d.csv"),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "file not found" in done.stderr and "Traceback" not in done.stderr
