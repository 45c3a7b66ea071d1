"""The district aggregation command against a hand computation, and its errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline_common.errors import InputError
from privacy.aggregate import aggregate, check_plan, main, read_districts, read_draws


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
    assert result.loc["A", "cit_est"] == a_citizens[9]  # inverted-CDF median of 20 values
    assert result.loc["A", "cit_lo90"] == a_citizens[0]  # ceil(0.05 * 20) - 1 = 0
    assert result.loc["A", "cit_hi90"] == a_citizens[18]  # ceil(0.95 * 20) - 1 = 18
    assert result.loc["A", "cit_moe"] == (a_citizens[18] - a_citizens[0] + 1) // 2
    assert result.loc["A", "noncit_est"] == 4 and result.loc["A", "blocks"] == 2
    assert result.loc["A", "noncit_moe"] == 0
    b_cvap = np.sort(1 + np.arange(20) // 2)
    assert result.loc["B", "cvap_est"] == b_cvap[9]
    # Summing block intervals would be wider than the interval of the sums.
    printed = capsys.readouterr().out
    assert printed.startswith("district,blocks,tot_est,cit_est,cit_moe,cit_lo90,cit_hi90")


def test_unknown_block_gives_a_clear_error(tmp_path, draws_file, capsys):
    districts = write_districts(tmp_path, "block_id,district\n999999999999999,A\n")
    assert main(["--draws", str(draws_file), "--districts", str(districts)]) == 2
    err = capsys.readouterr().err
    assert "districts.csv" in err and "block_id" in err and "Fix:" in err


def test_bad_district_files(tmp_path, draws_file):
    with pytest.raises(InputError, match="file not found"):
        read_districts(tmp_path / "nope.csv")
    with pytest.raises(InputError, match=r"cannot tell the block and district.*Fix: name them"):
        read_districts(write_districts(tmp_path, "code,ward,plan2\n120010001001000,A,B\n"))
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
    assert result["cit_hi90"].iloc[0] == 1 + 18


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


@pytest.fixture()
def zero_draws_file(tmp_path):
    """Draws of blocks in Alabama (state 01): GEOIDs with a leading zero."""
    rows = [
        {"draw": d, "block_id": b, "citizens": c + d, "noncitizens": 1, "cvap": c}
        for d in range(20)
        for b, c in (("010010201001000", 5), ("010010201001001", 7), ("010010201002000", 0))
    ]
    path = tmp_path / "zero_draws.parquet"
    pd.DataFrame(rows).to_parquet(path, index=False)
    return path


@pytest.mark.parametrize(
    "text",
    [
        # Dave's Redistricting style: comma, header GEOID20,District.
        "GEOID20,District\n010010201001000,01\n010010201001001,01\n010010201002000,02\n",
        # Census BAF style: pipe, header, quoted cells.
        '"BLOCKID"|"DISTRICT"\n"010010201001000"|"01"\n"010010201001001"|"01"\n'
        '"010010201002000"|"02"\n',
        # Maptitude style: pipe, no header, Windows line ends.
        "010010201001000|01\r\n010010201001001|01\r\n010010201002000|02\r\n",
        # Census-style GEO_ID with the summary-level prefix, tab delimited.
        "GEO_ID\tCD\n7500000US010010201001000\t01\n7500000US010010201001001\t01\n"
        "7500000US010010201002000\t02\n",
        # Districtr style: comma, header 'assignment', a byte-order mark.
        "\ufeffGEOID20,assignment\n010010201001000,01\n010010201001001,01\n010010201002000,02\n",
    ],
)
def test_block_assignment_files_round_trip_with_leading_zeros(tmp_path, zero_draws_file, text):
    plan = tmp_path / "plan.txt"
    plan.write_bytes(text.encode("utf-8"))
    districts = read_districts(plan)
    assert list(districts["block_id"]) == [
        "010010201001000",
        "010010201001001",
        "010010201002000",
    ]
    assert list(districts["district"]) == ["01", "01", "02"]  # district ids stay text too
    out = tmp_path / "out.csv"
    code = main(["--draws", str(zero_draws_file), "--districts", str(plan), "--output", str(out)])
    assert code == 0
    result = pd.read_csv(out, dtype={"district": str}).set_index("district")
    assert list(result.index) == ["01", "02"]
    assert result.loc["01", "cit_est"] == 12 + 2 * 9  # median of 12 + 2 d, d = 0..19
    assert result.loc["01", "tot_est"] == result.loc["01", "cit_est"] + 2
    assert result.loc["02", "cvap_est"] == 0 and result.loc["02", "blocks"] == 1


def test_lost_leading_zero_is_named(tmp_path, zero_draws_file):
    plan = write_districts(tmp_path, "GEOID20,District\n10010201001000,1\n")
    with pytest.raises(InputError, match=r"14 digits.*leading zero was lost.*Fix: export"):
        read_districts(plan)


def test_missing_duplicated_and_unknown_blocks_are_counted(tmp_path, zero_draws_file, capsys):
    draws = read_draws(zero_draws_file)
    # One block left out, one line repeated: counted warnings; the rest aggregates.
    plan = write_districts(tmp_path, "010010201001000|A\n010010201001000|A\n010010201001001|A\n")
    kept, warnings = check_plan(draws, read_districts(plan), str(plan))
    assert len(kept) == 2
    assert any("1 line(s) repeat" in w for w in warnings)
    assert any("1 block(s) of the draws are in no district" in w for w in warnings)
    # The command refuses a partial plan unless told to accept it.
    assert main(["--draws", str(zero_draws_file), "--districts", str(plan)]) == 2
    err = capsys.readouterr().err
    assert "1 block(s) of the draws are in no district" in err and "--allow-partial" in err
    assert main(["--draws", str(zero_draws_file), "--districts", str(plan), "--allow-partial"]) == 0
    err = capsys.readouterr().err
    assert (
        "warning: 1 block(s) of the draws are in no district (1 of them populated, 1 persons" in err
    )
    # A block in two districts: an error.
    both = write_districts(tmp_path, "010010201001000,A\n010010201001000,B\n")
    with pytest.raises(InputError, match="different districts"):
        read_districts(both)
    # Unknown blocks: an error, or a counted warning with --allow-unknown.
    unknown = write_districts(tmp_path, "010010201001000,A\n010010201009999,A\n")
    assert main(["--draws", str(zero_draws_file), "--districts", str(unknown)]) == 2
    assert "1 block(s) of the plan are not in the published draws" in capsys.readouterr().err
    assert (
        main(
            [
                "--draws",
                str(zero_draws_file),
                "--districts",
                str(unknown),
                "--allow-unknown",
                "--allow-partial",
            ]
        )
        == 0
    )
    assert "left out of their districts" in capsys.readouterr().err
