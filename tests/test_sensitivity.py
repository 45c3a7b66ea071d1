"""Sensitivity sweeps: sweep table, run overrides, summary table, figure and HTML page."""

from __future__ import annotations

import io
import json

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
import yaml

from pipeline_common.config import REPO_ROOT
from pipeline_common.errors import InputError
from pipeline_common.sensitivity import (
    BASELINE_KNOB,
    METRICS,
    load_sensitivity,
    run_overrides,
    summarize,
    summary_figure_png,
    summary_html,
    sweep_table,
)

SWEEP_FILES = ["config/sensitivity.yaml", "config/sensitivity_tiny.yaml"]


def _sweep(tmp_path, knobs: dict, base: str = "config/scenarios/tiny.yaml") -> dict:
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"base_scenario": base, "knobs": knobs}))
    return load_sensitivity(path)


@pytest.mark.parametrize("file", SWEEP_FILES)
def test_sweep_files_validate_and_every_row_gives_a_valid_config(file):
    sensitivity = load_sensitivity(file)
    table = sweep_table(sensitivity, file)
    n_values = sum(len(spec["values"]) for spec in sensitivity["knobs"].values())
    assert len(table) == 1 + n_values
    assert tuple(table.iloc[0]) == (BASELINE_KNOB, "base")
    if len(table) > 4:  # validation takes ~0.5 s a row: check one value per knob here
        table = table.drop_duplicates("knob")
    names = set()
    for knob, value in table.itertuples(index=False):
        overrides = run_overrides(sensitivity, knob, value, file)
        names.add(overrides["run"])
        assert overrides["run"].startswith(sensitivity["run_prefix"] + "-")
        # Nested runs must never write into the standing runs.
        assert overrides["run"] not in {"default", "tiny", "small"}
    assert len(names) == len(table)
    assert not sweep_table(sensitivity, file).duplicated().any()


def test_tiny_sweep_is_separate_from_the_full_sweep():
    full, tiny = (load_sensitivity(f) for f in SWEEP_FILES)
    assert full["summary_dir"] != tiny["summary_dir"]
    assert full["run_prefix"] != tiny["run_prefix"]


def test_overrides_set_values_and_leave_out(tmp_path):
    sensitivity = _sweep(
        tmp_path,
        {
            "passports": {
                "paths": ["synthetic.sources.state_passports.coverage"],
                "values": [0.25],
            },
            "leave_out": {
                "paths": ["model.exclude_sources"],
                "set": ["{value}"],
                "values": ["acs"],
            },
        },
    )
    passports = run_overrides(sensitivity, "passports", "0.25")
    assert passports["synthetic"]["sources"]["state_passports"]["coverage"] == 0.25
    assert passports["run"] == "sens-passports-0.25"
    # The base scenario's own settings are kept.
    assert passports["synthetic"]["counties"] == ["12086", "21111"]
    leave_out = run_overrides(sensitivity, "leave_out", "acs")
    assert leave_out["model"]["exclude_sources"] == ["acs"]
    assert "exclude_sources" not in run_overrides(sensitivity, BASELINE_KNOB, "base")["model"]


def test_bad_knob_path_is_an_input_error_naming_it(tmp_path):
    sensitivity = _sweep(
        tmp_path, {"typo": {"paths": ["synthetic.sources.state_passports.coverge"], "values": [1]}}
    )
    with pytest.raises(InputError) as err:
        run_overrides(sensitivity, "typo", "1", "sweep.yaml")
    assert err.value.field == "knobs.typo.paths"
    assert "synthetic.sources.state_passports.coverge" in str(err.value)


def test_bad_values_are_input_errors_naming_the_knob(tmp_path):
    sensitivity = _sweep(
        tmp_path,
        {
            "passports": {"paths": ["synthetic.sources.state_passports.coverage"], "values": [7]},
            "leave_out": {"paths": ["model.exclude_sources"], "set": ["{value}"], "values": ["x"]},
        },
    )
    for knob, value in (("passports", "7"), ("leave_out", "x")):
        with pytest.raises(InputError) as err:
            run_overrides(sensitivity, knob, value, "sweep.yaml")
        assert err.value.field == f"knobs.{knob}.values"
    assert "model.exclude_sources" in str(err.value)


def test_sweep_table_rejects_file_name_delimiters_and_bad_schema(tmp_path):
    sensitivity = _sweep(tmp_path, {"k": {"paths": ["model.draws"], "values": ["a/b"]}})
    with pytest.raises(InputError, match="contains"):
        sweep_table(sensitivity)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"knobs": {"k": {"paths": ["model.draws"]}}}))
    with pytest.raises(InputError) as err:
        load_sensitivity(bad)
    assert "values" in str(err.value)


# ------------------------------------------------------------------ summary


def _metrics(mae: float, coverage: float) -> dict:
    return {
        "block_bias": -mae / 2,
        "block_mae": mae,
        "block_rmse": mae * 1.4,
        "coverage90_pit": coverage,
        "coverage90_inclusive": min(1.0, coverage + 0.03),
        "mean_width90": 4 * mae,
        "county_max_abs_rel_error": mae / 100,
        "tract_mean_abs_rel_error": mae / 50,
        "n_blocks": 87,
        "counties": {"12086": {"estimate": 1.0, "rel_error": 0.01}},
    }


def _write_run(tmp_path, name: str, scale: float) -> dict:
    folder = tmp_path / name
    folder.mkdir()
    methods = {
        method: {q: _metrics(scale * (i + 1), 0.9 - i / 10) for q in ("citizens", "cvap")}
        for i, method in enumerate(("model", "record_rule", "census_style"))
    }
    estimates = {"methods": methods, "summary": {"citizens": {"model_block_mae": 1.0}}}
    published = {
        "blocks": 87,
        "block": {
            q: {"bias": 0.1, "mae": scale, "rmse": 2.0, "coverage90": 0.88, "mean_width90": 5.0}
            for q in ("citizens", "cvap", "noncitizens")
        },
        "county": {
            q: {"max_abs_relative_error": 0.03, "relative_error": {"12086": -0.03}}
            for q in ("citizens", "cvap", "noncitizens")
        },
        "tract": {
            q: {"mean_abs_relative_error": 0.02} for q in ("citizens", "cvap", "noncitizens")
        },
    }
    (folder / "estimates.json").write_text(json.dumps(estimates))
    (folder / "published.json").write_text(json.dumps(published))
    return {"estimates": folder / "estimates.json", "published": folder / "published.json"}


@pytest.fixture
def summary(tmp_path):
    runs = [
        {"knob": "baseline", "value": "base", **_write_run(tmp_path, "b", 1.0)},
        {"knob": "passport_coverage", "value": "0.7", **_write_run(tmp_path, "p7", 1.5)},
        {"knob": "passport_coverage", "value": "0.25", **_write_run(tmp_path, "p2", 2.0)},
        {"knob": "leave_out", "value": "state_passports", **_write_run(tmp_path, "lo", 3.0)},
    ]
    return summarize(runs)


def test_summarize_reads_the_real_structure(summary):
    # 4 runs x (3 methods x 2 quantities + published x 3 quantities)
    assert len(summary) == 4 * (3 * 2 + 3)
    assert not summary.duplicated(["knob", "value", "method", "quantity"]).any()
    assert list(summary.columns[:4]) == ["knob", "value", "method", "quantity"]
    assert set(METRICS) <= set(summary.columns)
    row = summary.query("knob == 'passport_coverage' and value == '0.25'")
    model = row.query("method == 'model' and quantity == 'cvap'").iloc[0]
    assert model["block_mae"] == pytest.approx(2.0)
    assert model["block_bias"] == pytest.approx(-1.0)
    assert model["block_rmse"] == pytest.approx(2.8)
    assert model["coverage90_pit"] == pytest.approx(0.9)
    assert model["county_max_abs_rel_error"] == pytest.approx(0.02)
    census = row.query("method == 'census_style' and quantity == 'citizens'").iloc[0]
    assert census["block_mae"] == pytest.approx(6.0)
    assert census["coverage90_pit"] == pytest.approx(0.7)
    # Against the baseline run's MAE of the same method and quantity (3.0 for census-style).
    assert census["block_mae_vs_baseline"] == pytest.approx(3.0)
    published = row.query("method == 'published' and quantity == 'noncitizens'").iloc[0]
    assert published["block_mae"] == pytest.approx(2.0)
    assert np.isnan(published["coverage90_pit"])
    assert published["coverage90_inclusive"] == pytest.approx(0.88)
    assert published["county_max_abs_rel_error"] == pytest.approx(0.03)
    assert published["tract_mean_abs_rel_error"] == pytest.approx(0.02)
    assert (summary.query("knob == 'baseline'")["block_mae_vs_baseline"] == 0).all()
    # The CSV round trip keeps values as text-keyed rows.
    again = pd.read_csv(io.StringIO(summary.to_csv(index=False)), dtype={"value": str})
    assert list(again["value"].unique()) == ["base", "0.7", "0.25", "state_passports"]


def test_summarize_names_a_missing_file(tmp_path):
    with pytest.raises(InputError, match="estimates.json"):
        summarize([{"knob": "k", "value": "1", "estimates": tmp_path / "nope/estimates.json"}])


def test_summary_figure_is_a_png_and_the_page_embeds_it(summary):
    png = summary_figure_png(summary)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(io.BytesIO(png), format="png")
    assert image.shape[0] > 300 and image.shape[1] > 600
    assert summary_figure_png(summary) == png  # deterministic bytes
    page = summary_html(summary, png, title="Sensitivity test")
    assert page.startswith("<!DOCTYPE html>")
    assert "data:image/png;base64," in page
    assert "state_passports" in page and "Sensitivity test" in page
    assert "<script" not in page and "http" not in page.split("<style>")[0]


def test_paths_in_sweep_files_are_repository_relative():
    for file in SWEEP_FILES:
        assert (REPO_ROOT / load_sensitivity(file)["base_scenario"]).exists()


def test_sweep_rules_are_included_but_never_part_of_a_normal_run():
    snakefile = (REPO_ROOT / "Snakefile").read_text()
    rules = (REPO_ROOT / "workflow" / "rules" / "sensitivity.smk").read_text()
    includes = [line for line in snakefile.splitlines() if line.startswith("include:")]
    assert includes[-1] == 'include: "workflow/rules/sensitivity.smk"'
    # Only the `sensitivity` target builds the sweep: nothing is added to `rule all`.
    assert "FINAL_TARGETS" not in rules
