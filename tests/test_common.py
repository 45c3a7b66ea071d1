"""Tests of the shared helpers: atomic writes, config validation, seeded streams, age groups."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pipeline_common.ages import adult_age_groups, age_group_labels, assign_age_group
from pipeline_common.config import config_hash, deep_merge, load_config
from pipeline_common.errors import InputError, require_columns
from pipeline_common.io import atomic_path, read_json, write_json, write_parquet
from pipeline_common.rng import stage_rng


def test_atomic_write_keeps_old_file_when_writer_fails(tmp_path):
    target = tmp_path / "out.json"
    write_json({"a": 1}, target)
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half-written")
        raise RuntimeError("crash mid-write")
    assert read_json(target) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_write_parquet_is_byte_identical_for_same_frame(tmp_path):
    frame = pd.DataFrame({"x": np.arange(100), "y": ["a", "b"] * 50})
    write_parquet(frame, tmp_path / "a.parquet")
    write_parquet(frame, tmp_path / "b.parquet")
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()


def test_write_json_refuses_nan(tmp_path):
    with pytest.raises(ValueError):
        write_json({"x": float("nan")}, tmp_path / "x.json")
    assert not (tmp_path / "x.json").exists()


def test_json_handles_numpy_scalars(tmp_path):
    write_json({"n": np.int64(3), "f": np.float32(0.5), "b": np.bool_(True)}, tmp_path / "x.json")
    assert json.loads((tmp_path / "x.json").read_text()) == {"n": 3, "f": 0.5, "b": True}


def test_stage_streams_are_reproducible_and_independent():
    a1 = stage_rng(7, "synthetic").integers(0, 1_000_000, 5)
    a2 = stage_rng(7, "synthetic").integers(0, 1_000_000, 5)
    b = stage_rng(7, "linkage").integers(0, 1_000_000, 5)
    c = stage_rng(8, "synthetic").integers(0, 1_000_000, 5)
    assert np.array_equal(a1, a2)
    assert not np.array_equal(a1, b)
    assert not np.array_equal(a1, c)


def test_age_groups_split_at_voting_age():
    assert age_group_labels([0, 18, 35, 65]) == ["0-17", "18-34", "35-64", "65+"]
    groups = assign_age_group(pd.Series([0, 17, 18, 64, 65, 101, None]), [0, 18, 35, 65])
    assert list(groups[:6]) == ["0-17", "0-17", "18-34", "35-64", "65+", "65+"]
    assert pd.isna(groups[6])
    assert adult_age_groups([0, 18, 35, 65]) == ["18-34", "35-64", "65+"]
    with pytest.raises(ValueError, match="18"):
        assign_age_group(pd.Series([1]), [0, 21])


def test_default_config_validates_and_fills_defaults():
    config = load_config()
    assert config["run"] == "default"
    assert config["reference_date"] == "2020-04-01"
    for stage in ("synthetic", "linkage", "model", "privacy", "report"):
        assert isinstance(config[stage], dict)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ({"seed": -3}, "seed"),
        ({"run": "bad name/x"}, "run"),
        ({"age_groups": "0,18"}, "age_groups"),
    ],
)
def test_bad_config_value_names_the_key(override, key):
    with pytest.raises(InputError) as err:
        load_config(overrides=override)
    assert f"'{key}'" in str(err.value)
    assert "Fix:" in str(err.value)


def test_unknown_stage_key_is_refused():
    with pytest.raises(InputError, match="synthetic"):
        load_config(overrides={"synthetic": {"no_such_knob": 1}})


def test_deep_merge_and_hash():
    base = {"a": {"b": 1, "c": 2}, "d": 3}
    merged = deep_merge(base, {"a": {"b": 5}})
    assert merged == {"a": {"b": 5, "c": 2}, "d": 3}
    assert base["a"]["b"] == 1
    assert config_hash({"x": 1, "y": 2}) == config_hash({"y": 2, "x": 1})
    assert config_hash({"x": 1}) != config_hash({"x": 2})


def test_require_columns_names_file_and_field():
    with pytest.raises(InputError, match=r"frame.parquet: field 'dob'"):
        require_columns(pd.DataFrame({"a": [1]}), ["a", "dob"], "frame.parquet")
