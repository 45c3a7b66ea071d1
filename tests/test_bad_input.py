"""Bad input never passes silently: each case ends in an InputError naming the file (or the
function's table) and the key or column, with a fix, and leaves every output as it was.

Fast by design: no model fit, no linkage run, no pipeline run.
"""

from __future__ import annotations

import os
import stat
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from pipeline_common.config import load_config
from pipeline_common.errors import InputError
from pipeline_common.world_schema import read_world_file
from privacy.aggregate import main as aggregate_main

REFERENCE = "2020-04-01"


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes (to prove nothing was written or changed)."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


# ------------------------------------------------------------------------------------------
# Config: cross-field rules, typos in maps, run names, dates, unreadable files.

CONFIG_CASES = [
    ("status_sum", {"synthetic": {"status": {"naturalized": 0.7, "lpr": 0.4}}}, "synthetic.status"),
    (
        "block_size_min_max",
        {"synthetic": {"geography": {"block_size_min": 60, "block_size_max": 20}}},
        "synthetic.geography.block_size_min",
    ),
    (
        "reliability_min_max",
        {
            "privacy": {
                "reliability": {"high_max_relative_width": 0.5, "medium_max_relative_width": 0.2}
            }
        },
        "privacy.reliability.high_max_relative_width",
    ),
    ("report_blocks", {"report": {"small_block": 200, "large_block": 100}}, "report.small_block"),
    ("age_groups_no_18", {"age_groups": [0, 21, 65]}, "age_groups"),
    ("age_groups_not_0", {"age_groups": [5, 18, 65]}, "age_groups"),
    ("age_groups_order", {"age_groups": [0, 35, 18]}, "age_groups"),
    (
        "budget_shares",
        {
            "privacy": {
                "tables": [
                    {"name": "a", "geo_level": "county", "pattern_level": "full", "share": 0.5},
                    {"name": "b", "geo_level": "block", "pattern_level": "coarse", "share": 0.75},
                ]
            }
        },
        "privacy.tables",
    ),
    (
        "table_names",
        {
            "privacy": {
                "tables": [
                    {"name": "a", "geo_level": "county", "pattern_level": "full", "share": 0.25},
                    {"name": "a", "geo_level": "block", "pattern_level": "coarse", "share": 0.75},
                ]
            }
        },
        "privacy.tables",
    ),
    (
        "default_withhold",
        {"linkage": {"default_withhold": ["refugee_asylee"]}},
        "linkage.default_withhold",
    ),
    (
        "source_withhold",
        {"synthetic": {"sources": {"uscis_lpr": {"policy": {"withhold": ["refugee_asylee"]}}}}},
        "synthetic.sources.uscis_lpr.policy.withhold",
    ),
    (
        "prior_scales_typo",
        {"model": {"prior_scales": {"tract_sdd": 1.0}}},
        "prior_scales.tract_sdd",
    ),
    ("prior_scales_sign", {"model": {"prior_scales": {"age_sd": -1.0}}}, "prior_scales.age_sd"),
    (
        "stale_split_typo",
        {"model": {"stale_split": {"ssa_numidnet": ["noncitizen"]}}},
        "stale_split.ssa_numidnet",
    ),
    (
        "birth_country_typo",
        {"synthetic": {"birth_country_tilt": {"12": {"Cubaa": 3.0}}}},
        "synthetic.birth_country_tilt.12.Cubaa",
    ),
    ("run_dotdot", {"run": ".."}, "run"),
    ("run_dot", {"run": "."}, "run"),
    ("run_hidden", {"run": ".hidden"}, "run"),
    ("run_absolute", {"run": "/tmp/elsewhere"}, "run"),
    ("reference_date_feb30", {"reference_date": "2020-02-30"}, "reference_date"),
    ("reference_date_range", {"reference_date": "1850-04-01"}, "reference_date"),
    (
        "window_after_reference",
        {"synthetic": {"cbp_ice_window_start": "2024-01-01"}},
        "synthetic.cbp_ice_window_start",
    ),
    ("unknown_stage_key", {"synthetic": {"statuss": {"lpr": 0.1}}}, "synthetic.statuss"),
    ("unknown_root_key", {"seeed": 3}, "seeed"),
]


@pytest.mark.parametrize(
    ("override", "key"), [c[1:] for c in CONFIG_CASES], ids=[c[0] for c in CONFIG_CASES]
)
def test_bad_config_names_file_and_key(tmp_path, monkeypatch, override, key):
    scenario = tmp_path / "my_scenario.yaml"
    scenario.write_text(yaml.safe_dump(override))
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    with pytest.raises(InputError) as caught:
        load_config(scenario)
    message = str(caught.value)
    assert "my_scenario.yaml" in message, message
    assert key in message, message
    assert "Fix:" in message
    assert len(message.splitlines()) <= 3, "no schema dump"
    assert snapshot(tmp_path) == before
    assert not (tmp_path / "results").exists()


def test_data_dir_checked_where_paths_mean_something(tmp_path):
    from pipeline_common.config import validate_config

    scenario = tmp_path / "data.yaml"
    scenario.write_text("data_dir: no/such/folder\n")
    config = {"data_dir": "no/such/folder"}
    with pytest.raises(InputError) as caught:
        validate_config(config, files=[scenario], check_paths=True)
    assert "data.yaml" in str(caught.value) and "'data_dir'" in str(caught.value)


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("missing.yaml", None, "not found"),
        ("broken.yaml", "run: [unclosed\n  seed: 1\n", "not valid YAML"),
        ("list.yaml", "- run\n- seed\n", "mapping"),
        ("latin1.yaml", b"run: caf\xe9\n", "UTF-8"),
    ],
)
def test_unreadable_config_file_is_named(tmp_path, name, content, problem):
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    with pytest.raises(InputError) as caught:
        load_config(path)
    assert name in str(caught.value) and problem in str(caught.value)


def test_snakefile_refuses_bad_config_before_any_job(tmp_path):
    """The Snakefile runs the same checks: exit 1, one line, nothing written."""
    import subprocess
    import sys

    repo = Path(__file__).resolve().parent.parent
    scenario = tmp_path / "escape.yaml"
    scenario.write_text('run: ".."\n')
    before = sorted(p.name for p in repo.iterdir())
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "snakemake"),
            "-n",
            "--cores",
            "1",
            "--configfile",
            str(scenario),
        ],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "escape.yaml" in done.stderr and "'run'" in done.stderr
    assert "Traceback" not in done.stderr and "Failed validating" not in done.stderr
    assert sorted(p.name for p in repo.iterdir()) == before


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("nope.yaml", None, "not found"),
        ("broken.yaml", "run: [unclosed\n  seed: 1\n", "not valid YAML"),
    ],
)
def test_run_sh_refuses_unusable_config_file(tmp_path, name, content, problem):
    import subprocess

    repo = Path(__file__).resolve().parent.parent
    if content is not None:
        (tmp_path / name).write_text(content)
    done = subprocess.run(
        [str(repo / "run.sh"), "-n", "--configfile", str(tmp_path / name)],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert name in done.stderr and problem in done.stderr
    assert "Traceback" not in done.stderr


# ------------------------------------------------------------------------------------------
# World files: storage types, columns, vocabularies, unique ids, broken files.


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "person_id": ["p1", "p2", "p3"],
            "household_id": ["h1", "h1", "h2"],
            "block_id": ["120860001001000"] * 3,
            "first_name": ["Ana", "Luis", "Mary"],
            "last_name": ["Perez", "Perez", "Smith"],
            "sex": ["F", "M", "F"],
            "dob": pd.to_datetime(["1980-01-02", "1979-05-06", "2001-07-08"]).date,
            "age": [40, 40, 18],
            "address": ["1 Main St"] * 3,
            "zip": ["33101"] * 3,
        }
    )


def _numident() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "record_id": ["n1", "n2", "n3"],
            "first_name": ["Ana", "Luis", "Mary"],
            "last_name": ["Perez", "Perez", "Smith"],
            "dob": pd.to_datetime(["1980-01-02", "1979-05-06", "2001-07-08"]).date,
            "sex": ["F", "M", "F"],
            "address": ["1 Main St"] * 3,
            "zip": ["33101"] * 3,
            "ssn": ["900-12-3456", "900-22-3456", "900-32-3456"],
            "citizenship": ["citizen", "noncitizen", None],
            "application_date": pd.to_datetime(["1998-01-01"] * 3).date,
            "last_update_date": pd.to_datetime(["2005-01-01"] * 3).date,
        }
    )


def _naturalizations() -> pd.DataFrame:
    table = _numident().drop(columns=["citizenship", "application_date", "last_update_date"])
    return table.assign(
        a_number=["A1", "A2", "A3"],
        naturalization_date=pd.to_datetime(["2010-01-01"] * 3).date,
        protected_1367=[False, False, True],
        refugee_asylee=[False, True, False],
    )


def _acs() -> pd.DataFrame:
    table = _numident().drop(columns=["ssn", "citizenship", "application_date", "last_update_date"])
    return table.assign(
        interview_date=pd.to_datetime(["2018-01-01"] * 3).date,
        citizenship_response=["born_citizen", "naturalized", None],
    )


def _geography() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "block_id": ["120860001001000", "120860001001001"],
            "block_group_id": ["120860001001"] * 2,
            "tract_id": ["12086000100"] * 2,
            "county_id": ["12086"] * 2,
        }
    )


def _write(table: pd.DataFrame, path: Path) -> Path:
    table.to_parquet(path, index=False)
    return path


def _binary_names(path: Path) -> Path:
    table = pa.Table.from_pandas(_frame(), preserve_index=False)
    names = pa.array([b"Ana", b"Lu\xefs", b"\xff\xfe"], type=pa.binary())
    table = table.set_column(table.schema.get_field_index("first_name"), "first_name", names)
    pq.write_table(table, path)
    return path


def _invalid_utf8_strings(path: Path) -> Path:
    table = pa.Table.from_pandas(_frame(), preserve_index=False)
    raw = pa.array([b"Ana", b"Lu\xefs", b"\xff\xfe"], type=pa.binary()).view(pa.string())
    table = table.set_column(table.schema.get_field_index("last_name"), "last_name", raw)
    pq.write_table(table, path)
    return path


def _truncated(path: Path) -> Path:
    _write(_frame(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _corrupt_footer(path: Path) -> Path:
    _write(_frame(), path)
    data = bytearray(path.read_bytes())
    data[-12:-4] = b"\x00" * 8  # footer length and metadata destroyed, magic bytes kept
    path.write_bytes(bytes(data))
    return path


WORLD_CASES = [
    # (id, kind, make(path) -> path, field named, words of the problem)
    (
        "numident_without_status",
        "ssa_numident",
        lambda p: _write(_numident().drop(columns=["citizenship"]), p),
        "citizenship",
        "missing",
    ),
    (
        "acs_without_status",
        "acs",
        lambda p: _write(_acs().drop(columns=["citizenship_response"]), p),
        "citizenship_response",
        "missing",
    ),
    (
        "naturalizations_without_date",
        "uscis_naturalizations",
        lambda p: _write(_naturalizations().drop(columns=["naturalization_date"]), p),
        "naturalization_date",
        "missing",
    ),
    (
        "dhs_without_flag",
        "uscis_naturalizations",
        lambda p: _write(_naturalizations().drop(columns=["protected_1367"]), p),
        "protected_1367",
        "missing",
    ),
    (
        "dob_as_integer",
        "frame",
        lambda p: _write(_frame().assign(dob=[19800102, 19790506, 20010708]), p),
        "dob",
        "1970",
    ),
    (
        "date_as_float",
        "ssa_numident",
        lambda p: _write(_numident().assign(last_update_date=[1.1e9, 1.2e9, 1.3e9]), p),
        "last_update_date",
        "expected date",
    ),
    (
        "ssn_as_float",
        "ssa_numident",
        lambda p: _write(_numident().assign(ssn=[900123456.0, 900223456.0, np.nan]), p),
        "ssn",
        "leading zeros",
    ),
    (
        "age_as_text",
        "frame",
        lambda p: _write(_frame().assign(age=["40", "forty", "18"]), p),
        "age",
        "expected number",
    ),
    (
        "person_id_shared",
        "frame",
        lambda p: _write(_frame().assign(person_id=["p1", "p1", "p1"]), p),
        "person_id",
        "share",
    ),
    (
        "person_id_missing",
        "frame",
        lambda p: _write(_frame().assign(person_id=["p1", None, "p3"]), p),
        "person_id",
        "without",
    ),
    (
        "record_id_shared",
        "ssa_numident",
        lambda p: _write(_numident().assign(record_id=["n1", "n1", "n3"]), p),
        "record_id",
        "share",
    ),
    (
        "block_id_shared",
        "geography",
        lambda p: _write(_geography().assign(block_id=["120860001001000"] * 2), p),
        "block_id",
        "share",
    ),
    (
        "citizenship_vocabulary",
        "ssa_numident",
        lambda p: _write(_numident().assign(citizenship=["yes", "no", "citizen"]), p),
        "citizenship",
        "outside",
    ),
    (
        "acs_vocabulary",
        "acs",
        lambda p: _write(_acs().assign(citizenship_response=["Citizen", "naturalized", None]), p),
        "citizenship_response",
        "outside",
    ),
    (
        "sex_vocabulary",
        "frame",
        lambda p: _write(_frame().assign(sex=["F", "X", "M"]), p),
        "sex",
        "outside",
    ),
    (
        "flag_as_text",
        "uscis_naturalizations",
        lambda p: _write(_naturalizations().assign(refugee_asylee=["no", "yes", "no"]), p),
        "refugee_asylee",
        "expected flag",
    ),
    (
        "tax_year_as_text",
        "irs_itin",
        lambda p: _write(
            _acs()
            .drop(columns=["interview_date", "citizenship_response"])
            .assign(itin=["9", "9", "9"], tax_year=["2019", "2018", "2017"]),
            p,
        ),
        "tax_year",
        "expected integer",
    ),
    (
        "status_date_after_reference",
        "uscis_naturalizations",
        lambda p: _write(
            _naturalizations().assign(
                naturalization_date=pd.to_datetime(["2010-01-01", "2031-01-01", "2010-01-01"]).date
            ),
            p,
        ),
        "naturalization_date",
        "after the reference date",
    ),
    (
        "status_date_unreadable",
        "uscis_naturalizations",
        lambda p: _write(
            _naturalizations().assign(naturalization_date=["2010-01-01", "soon", None]), p
        ),
        "naturalization_date",
        "not dates",
    ),
    ("names_as_bytes", "frame", _binary_names, "first_name", "UTF-8"),
    ("names_not_utf8", "frame", _invalid_utf8_strings, "last_name", "UTF-8"),
    (
        "csv_saved_as_parquet",
        "frame",
        lambda p: (p.write_text(_frame().to_csv(index=False)), p)[1],
        "(file)",
        "not a Parquet file",
    ),
    ("truncated", "frame", _truncated, "(file)", "truncated"),
    ("corrupt_footer", "frame", _corrupt_footer, "(file)", "corrupt"),
    ("empty_file", "geography", lambda p: (p.write_bytes(b""), p)[1], "(file)", "empty"),
    ("missing_file", "geography", lambda p: p, "(file)", "not found"),
    ("folder", "geography", lambda p: (p.mkdir(), p)[1], "(file)", "folder"),
]


@pytest.mark.parametrize(
    ("kind", "make", "field", "problem"),
    [c[1:] for c in WORLD_CASES],
    ids=[c[0] for c in WORLD_CASES],
)
def test_bad_world_file_names_file_field_and_fix(tmp_path, kind, make, field, problem):
    world = tmp_path / "world"
    world.mkdir()
    path = make(world / f"{kind}.parquet")
    before = snapshot(tmp_path)
    with pytest.raises(InputError) as caught:
        read_world_file(path, kind, REFERENCE)
    error = caught.value
    assert error.file == str(path)
    assert field in error.field, str(error)
    assert problem in str(error), str(error)
    assert error.fix
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    ("kind", "table"),
    [
        ("frame", _frame),
        ("ssa_numident", _numident),
        ("uscis_naturalizations", _naturalizations),
        ("acs", _acs),
        ("geography", _geography),
    ],
)
def test_good_world_files_read_as_pandas_reads_them(tmp_path, kind, table):
    path = _write(table(), tmp_path / f"{kind}.parquet")
    pd.testing.assert_frame_equal(read_world_file(path, kind, REFERENCE), pd.read_parquet(path))


def test_invalid_ssns_and_dates_are_counted_not_dropped_silently(caplog):
    """Impossible values are nulled by linkage standardization; the count reaches the log."""
    from linkage.stage import standardized_frame

    frame = _frame().assign(dob=["1980-01-02", "1990-02-30", "2031-01-01"])
    with caplog.at_level("WARNING"):
        standardized_frame(frame, {"reference_date": REFERENCE}, file="world/frame.parquet")
    assert "2 of 3 persons hold impossible dates of birth" in caplog.text


def test_invalid_ssns_in_a_source_are_counted(caplog):
    from linkage.stage import count_invalid_values
    from linkage.standardize import standardize_identity

    records = _numident().assign(
        ssn=["900-12-3456", "000-12-3456", "666-00-0000"], dob=["1980-01-02", "1980-13-40", None]
    )
    std = standardize_identity(records, "record_id", REFERENCE)
    with caplog.at_level("WARNING"):
        counts = count_invalid_values(records, std, "ssa_numident")
    assert counts == {"dob_invalid": 1, "ssn_invalid": 2}
    assert "2 of 3 records hold impossible SSNs" in caplog.text
    assert "linkage/by_source/ssa_numident.json" in caplog.text


# ------------------------------------------------------------------------------------------
# cvap-aggregate: partial, empty and unreadable plans; unusable outputs.


@pytest.fixture()
def draws_file(tmp_path):
    rows = [
        {"draw": d, "block_id": b, "citizens": 5 + d, "noncitizens": 1, "cvap": 4}
        for d in range(10)
        for b in ("010010201001000", "010010201001001", "010010201002000")
    ]
    return _write(pd.DataFrame(rows), tmp_path / "draws.parquet")


FULL_PLAN = "GEOID20,District\n010010201001000,1\n010010201001001,1\n010010201002000,2\n"
AGGREGATE_CASES = [
    # (id, plan text or bytes, draws maker or None, --output kind, words of the message)
    ("partial_plan", "GEOID20,District\n010010201001000,1\n", None, "file", "in no district"),
    ("header_only_plan", "GEOID20,District\n", None, "file", "no block lines"),
    ("empty_plan", "", None, "file", "empty"),
    ("blank_lines_plan", "\n\n  \n", None, "file", "empty"),
    (
        "latin1_plan",
        "GEOID20,Distrito\n010010201001000,Peñón\n".encode("latin-1"),
        None,
        "file",
        "UTF-8",
    ),
    ("parquet_as_plan", b"PAR1\x00\x00\x15\x04", None, "file", "NUL bytes"),
    ("unknown_blocks_only", "999999999999999,1\n", None, "file", "not in the published draws"),
    (
        "draws_csv_as_parquet",
        FULL_PLAN,
        lambda p: (p.write_text("draw,block_id\n0,1\n"), p)[1],
        "file",
        "not a Parquet file",
    ),
    (
        "draws_truncated",
        FULL_PLAN,
        lambda p: (p.write_bytes(p.read_bytes()[:100]), p)[1],
        "file",
        "truncated",
    ),
    (
        "draws_without_rows",
        FULL_PLAN,
        lambda p: _write(pd.read_parquet(p).iloc[:0], p),
        "file",
        "no draws",
    ),
    ("output_is_folder", FULL_PLAN, None, "folder", "folder"),
    ("output_parent_is_file", FULL_PLAN, None, "under_file", "not a folder"),
    ("output_trailing_slash", FULL_PLAN, None, "slash", "folder"),
]


@pytest.mark.parametrize(
    ("plan", "draws_change", "output_kind", "problem"),
    [c[1:] for c in AGGREGATE_CASES],
    ids=[c[0] for c in AGGREGATE_CASES],
)
def test_cvap_aggregate_refuses_bad_input_and_leaves_output(
    tmp_path, draws_file, capsys, plan, draws_change, output_kind, problem
):
    plan_path = tmp_path / "plan.csv"
    plan_path.write_bytes(plan.encode() if isinstance(plan, str) else plan)
    if draws_change is not None:
        draws_change(draws_file)
    if output_kind == "file":
        output = tmp_path / "out" / "districts.csv"
        output.parent.mkdir()
        output.write_text("previous result\n")
    elif output_kind == "folder":
        output = tmp_path / "out"
        output.mkdir()
    elif output_kind == "under_file":
        (tmp_path / "a_file").write_text("x")
        output = tmp_path / "a_file" / "districts.csv"
    else:
        output = str(tmp_path / "out_dir") + os.sep
    before = snapshot(tmp_path)
    args = ["--draws", str(draws_file), "--districts", str(plan_path), "--output", str(output)]
    assert aggregate_main(args) == 2
    captured = capsys.readouterr()
    assert problem in captured.err, captured.err
    named = "--output" if output_kind != "file" else None
    assert (named or "plan.csv" if draws_change is None else "draws.parquet") in captured.err
    assert "Fix:" in captured.err and "Traceback" not in captured.err
    assert captured.out == ""
    assert snapshot(tmp_path) == before


def test_cvap_aggregate_unwritable_output_folder(tmp_path, draws_file, capsys):
    if os.geteuid() == 0:
        pytest.skip("root can write anywhere")
    plan = tmp_path / "plan.csv"
    plan.write_text(FULL_PLAN)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        args = ["--draws", str(draws_file), "--districts", str(plan)]
        assert aggregate_main([*args, "--output", str(locked / "d.csv")]) == 2
        assert "not writable" in capsys.readouterr().err
    finally:
        locked.chmod(stat.S_IRWXU)


def test_cvap_aggregate_write_failure_is_one_line(tmp_path, draws_file, capsys, monkeypatch):
    """A disk that refuses the write at the last moment (full, read-only): a clear error."""
    import pipeline_common.io

    def refuse(text, path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(pipeline_common.io, "write_text", refuse)
    plan = tmp_path / "plan.csv"
    plan.write_text(FULL_PLAN)
    output = tmp_path / "d.csv"
    args = ["--draws", str(draws_file), "--districts", str(plan), "--output", str(output)]
    assert aggregate_main(args) == 2
    captured = capsys.readouterr()
    assert "--output" in captured.err and "Permission denied" in captured.err
    assert captured.out == "" and not output.exists()


def test_cvap_aggregate_partial_plan_allowed_with_a_count(tmp_path, draws_file, capsys):
    plan = tmp_path / "plan.csv"
    plan.write_text("GEOID20,District\n010010201001000,1\n")
    args = ["--draws", str(draws_file), "--districts", str(plan), "--allow-partial"]
    assert aggregate_main(args) == 0
    assert "warning: 2 block(s) of the draws are in no district" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------
# The latent-class core: labels, categories, option keys, columns; errors before any sampling.


def _diagnostic_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "test_a": ["pos", "pos", "neg", "neg"],
            "test_b": ["pos", "neg", "pos", "neg"],
            "n": [40, 10, 5, 45],
        }
    )


LATENT_CASES = [
    # (id, changes to problem_from_table's arguments, field named, words of the problem)
    ("label_not_declared", {"categories": {"test_a": ["neg", "positive"]}}, "test_a", "declared"),
    ("missing_label", {"table": "missing_label"}, "test_b", "without a label"),
    ("alpha_key_typo", {"alpha": {"test_c": np.ones((2, 2))}}, "alpha['test_c']", "did you mean"),
    ("alpha_shape", {"alpha": {"test_a": np.ones((3, 2))}}, "alpha['test_a']", "shape"),
    (
        "prior_scales_typo",
        {"prior_scales": {"intercept_sdd": 1.0}},
        "prior_scales.intercept_sdd",
        "did you mean",
    ),
    ("misspelt_source_column", {"source_columns": ["test_a", "tset_b"]}, "tset_b", "not in"),
    ("misspelt_count_column", {"count_column": "count"}, "count", "not in"),
    ("negative_count", {"table": "negative_count"}, "n", "non-negative"),
    (
        "categories_key_typo",
        {"categories": {"tst_a": ["neg", "pos"]}},
        "categories['tst_a']",
        "not one",
    ),
    ("one_class", {"class_names": ["only"]}, "class_names", "two or more"),
]


@pytest.mark.parametrize(
    ("changes", "field", "problem"),
    [c[1:] for c in LATENT_CASES],
    ids=[c[0] for c in LATENT_CASES],
)
def test_latent_class_core_validates_before_sampling(monkeypatch, changes, field, problem):
    import models.latent_class as lc

    def no_sampling(*args, **kwargs):
        raise AssertionError("sampling started on bad input")

    monkeypatch.setattr(lc, "sample", no_sampling)
    monkeypatch.setattr(lc, "build_model", no_sampling)
    table = _diagnostic_table()
    if changes.get("table") == "missing_label":
        table.loc[1, "test_b"] = None
    elif changes.get("table") == "negative_count":
        table.loc[2, "n"] = -5
    arguments = {
        "table": table,
        "source_columns": ["test_a", "test_b"],
        "count_column": "n",
        "class_names": ["diseased", "healthy"],
        **{k: v for k, v in changes.items() if k != "table"},
    }
    with pytest.raises(InputError) as caught:
        lc.problem_from_table(**arguments)
    assert field in caught.value.field, str(caught.value)
    assert problem in str(caught.value)
    assert "problem_from_table" in caught.value.file


def test_latent_class_problem_refuses_unknown_prior_scale():
    import models.latent_class as lc

    problem = lc.problem_from_table(
        _diagnostic_table(), ["test_a", "test_b"], "n", ["diseased", "healthy"]
    )
    problem.prior_scales = {"age_sdd": 1.0}
    with pytest.raises(InputError, match=r"prior_scales\.age_sdd.*did you mean 'age_sd'"):
        problem.validate()


# ------------------------------------------------------------------------------------------
# The general linker: field mapping, ids, identifier shapes; errors before any linkage.


def _people(ids=("a1", "a2", "a3")) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "rec_id": list(ids),
            "given": ["Ana", "Luis", "Mary"],
            "surname": ["Perez", "Gomez", "Smith"],
            "born": ["1980-01-02", "1979-05-06", "2001-07-08"],
            "ssn": ["900-12-3456", "900-22-3456", "900-32-3456"],
            "badge": ["530421", "771203", "102938"],
        }
    )


FIELDS = {
    "unique_id": "rec_id",
    "first_name": "given",
    "last_name": "surname",
    "dob": "born",
    "ssn": "ssn",
}
LINKER_CASES = [
    # (id, left table changes, left fields changes, settings comparisons, field, problem)
    (
        "misspelt_column",
        None,
        {"last_name": "surnmae"},
        None,
        "last_name",
        "did you mean 'surname'",
    ),
    ("unknown_field", None, {"firstname": "given"}, None, "firstname", "not a linkage field"),
    ("duplicate_ids", ("a1", "a1", "a3"), None, None, "unique_id", "share an id"),
    ("missing_ids", ("a1", None, "a3"), None, None, "unique_id", "without an id"),
    ("no_id", None, {"unique_id": None}, None, "unique_id", "no id column"),
    ("ssn_of_other_shape", None, {"ssn": "badge"}, None, "ssn (badge)", "other_id"),
    ("dob_not_dates", None, {"dob": "given"}, None, "dob (given)", "not dates"),
    ("unknown_comparison", None, None, ["name", "dobb"], "comparisons", "unknown"),
]


@pytest.mark.parametrize(
    ("ids", "field_changes", "comparisons", "field", "problem"),
    [c[1:] for c in LINKER_CASES],
    ids=[c[0] for c in LINKER_CASES],
)
def test_general_linker_validates_before_linking(
    monkeypatch, ids, field_changes, comparisons, field, problem
):
    import linkage.link as link

    def no_linking(*args, **kwargs):
        raise AssertionError("linkage started on bad input")

    monkeypatch.setattr(link, "link_tables", no_linking)
    left = _people(ids) if ids else _people()
    fields = dict(FIELDS)
    for key, value in (field_changes or {}).items():
        if value is None:
            fields.pop(key)
        else:
            fields.pop(key.replace("firstname", "first_name"), None)
            fields[key] = value
    settings = link.LinkSettings(
        comparisons=comparisons or ["name", "dob", "ssn"], blocking_rules=["dob", "name_exact"]
    )
    with pytest.raises(InputError) as caught:
        link.link_any(left, _people(), fields, FIELDS, settings)
    assert field in caught.value.field, str(caught.value)
    assert problem in str(caught.value)


def test_general_linker_warns_about_unused_mapped_field(monkeypatch):
    import linkage.link as link

    monkeypatch.setattr(link, "link_tables", lambda *a, **k: (_ for _ in ()).throw(StopIteration))
    settings = link.LinkSettings(comparisons=["name", "dob"], blocking_rules=["dob"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(StopIteration):  # reached linkage: the mapping itself is valid
            link.link_any(_people(), _people(), FIELDS, FIELDS, settings)
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert any("['ssn']" in m and "no comparison or blocking rule" in m for m in messages)


# ------------------------------------------------------------------------------------------
# Command-line entry points: a user's mistake is one line and exit status 2.


@pytest.mark.parametrize(
    ("module", "args", "named"),
    [
        ("linkage.stage", ["--configfile", "no_such_scenario.yaml"], "no_such_scenario.yaml"),
        ("privacy.aggregate", ["--draws", "d.parquet", "--districts", "p.csv"], "p.csv"),
    ],
)
def test_entry_points_give_one_line_errors(tmp_path, module, args, named):
    import subprocess
    import sys

    repo = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(repo)},
    )
    assert done.returncode == 2
    assert named in done.stderr and "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []
