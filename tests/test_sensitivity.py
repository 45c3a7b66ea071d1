"""Sensitivity sweeps: the grid, its overrides, reuse of upstream outputs, summary and report."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
import yaml

from pipeline_common.config import REPO_ROOT, load_config
from pipeline_common.errors import InputError
from sensitivity.point_config import check_paths, run_overrides
from sensitivity.report import statements, tornado_rows
from sensitivity.reuse import knob_stage, prepare_point
from sensitivity.score import KEYS, LEVELS, METRICS
from sensitivity.summary import (
    aggregate,
    calibration_verdicts,
    mae_growth,
    report_table,
    wide_summary,
)
from sensitivity.sweep import BASELINE_KNOB, load_sensitivity, replicate_seeds, sweep_table

SWEEP_FILES = ["config/sensitivity.yaml", "config/sensitivity_tiny.yaml"]


def _sweep(tmp_path, knobs: dict, base: str = "config/scenarios/tiny.yaml", **extra) -> dict:
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"base_scenario": base, "knobs": knobs, **extra}))
    return load_sensitivity(path)


@pytest.mark.parametrize("file", SWEEP_FILES)
def test_sweep_files_validate_and_every_knob_gives_a_valid_config(file):
    sensitivity = load_sensitivity(file)
    check_paths(sensitivity, file)
    table = sweep_table(sensitivity, file)
    seeds = replicate_seeds(sensitivity)
    n_values = sum(len(spec["values"]) for spec in sensitivity["knobs"].values())
    assert len(table) == len(seeds) * (1 + n_values)
    assert tuple(table.iloc[0]) == (str(seeds[0]), BASELINE_KNOB, "base")
    names = set()
    # Validation takes ~0.5 s a row: one value per knob, first seed.
    for _, knob, value in table.drop_duplicates("knob").itertuples(index=False):
        overrides = run_overrides(sensitivity, seeds[0], knob, value, file)
        names.add(overrides["run"])
        assert overrides["seed"] == seeds[0]
        assert overrides["run"].startswith(sensitivity["run_prefix"] + "-s")
        # Nested runs must never write into the standing runs.
        assert overrides["run"] not in {"default", "tiny", "small"}
    assert len(names) == table["knob"].nunique()


def test_default_grid_is_the_issue_grid():
    sensitivity = load_sensitivity("config/sensitivity.yaml")
    knobs = sensitivity["knobs"]
    assert sensitivity["replicates"] >= 3
    for source in ("uscis_naturalizations", "uscis_lpr", "cbp_ice", "state_passports"):
        (knob,) = [
            k for k, s in knobs.items() if s["paths"] == [f"synthetic.sources.{source}.coverage"]
        ]
        assert knobs[knob]["relative"] and knobs[knob]["values"] == [0.25, 0.5, 1]
    assert knobs["rho"]["values"] == [0.25, 1, 4]
    assert knobs["refugee_waiver"]["paths"] == ["linkage.refugee_asylee_waiver"]
    assert set(knobs["refugee_waiver"]["values"]) == {True, False}
    assert len(knobs["leave_out"]["values"]) == 7
    for knob in ("numident_update", "acs_misreport", "record_error_scale", "match_threshold"):
        assert len(knobs[knob]["values"]) >= 2


def test_overrides_set_relative_values_leave_out_and_seed(tmp_path):
    sensitivity = _sweep(
        tmp_path,
        {
            "passports": {
                "paths": ["synthetic.sources.state_passports.coverage"],
                "relative": True,
                "values": [0.25],
            },
            "waiver": {"paths": ["linkage.refugee_asylee_waiver"], "values": [True]},
            "leave_out": {
                "paths": ["model.exclude_sources"],
                "set": ["{value}"],
                "values": ["acs"],
            },
        },
        replicates=2,
    )
    assert replicate_seeds(sensitivity) == [1, 2]
    default = load_config("config/scenarios/tiny.yaml")
    base_coverage = default["synthetic"]["sources"]["state_passports"]["coverage"]
    passports = run_overrides(sensitivity, 2, "passports", "0.25")
    coverage = passports["synthetic"]["sources"]["state_passports"]["coverage"]
    assert coverage == pytest.approx(0.25 * base_coverage)
    assert passports["run"] == "sens-s2-passports-0.25" and passports["seed"] == 2
    # The base scenario's own settings are kept.
    assert passports["synthetic"]["counties"] == ["12086", "21111"]
    assert run_overrides(sensitivity, 1, "waiver", "true")["linkage"]["refugee_asylee_waiver"]
    leave_out = run_overrides(sensitivity, 1, "leave_out", "acs")
    assert leave_out["model"]["exclude_sources"] == ["acs"]
    assert "exclude_sources" not in run_overrides(sensitivity, 1, BASELINE_KNOB, "base")["model"]
    table = sweep_table(sensitivity)
    assert list(table["seed"].unique()) == ["1", "2"]
    assert list(table.loc[table["seed"] == "2", "knob"])[0] == BASELINE_KNOB


def test_overlays_are_merged_after_the_base(tmp_path):
    sensitivity = _sweep(
        tmp_path,
        {"rho": {"paths": ["privacy.rho"], "values": [4]}},
        overlays=["config/scenarios/lean.yaml"],
    )
    overrides = run_overrides(sensitivity, 1, "rho", "4")
    assert overrides["privacy"] == {"mode": "none", "rho": 4}
    assert overrides["model"]["predict_draws"] == 150


def test_a_typo_in_a_knob_path_is_an_error_before_any_run(tmp_path):
    sensitivity = _sweep(
        tmp_path, {"typo": {"paths": ["synthetic.sources.state_passports.coverge"], "values": [1]}}
    )
    with pytest.raises(InputError) as err:
        check_paths(sensitivity, "sweep.yaml")
    assert err.value.field == "knobs.typo.paths"
    assert "synthetic.sources.state_passports.coverge" in str(err.value)
    with pytest.raises(InputError):
        run_overrides(sensitivity, 1, "typo", "1", "sweep.yaml")
    relative_text = _sweep(
        tmp_path,
        {"bad": {"paths": ["privacy.mode"], "relative": True, "values": [2]}},
    )
    with pytest.raises(InputError) as err:
        check_paths(relative_text, "sweep.yaml")
    assert err.value.field == "knobs.bad.relative"


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
            run_overrides(sensitivity, 1, knob, value, "sweep.yaml")
        assert err.value.field == f"knobs.{knob}.values"


def test_sweep_table_rejects_file_name_delimiters_and_bad_schema(tmp_path):
    sensitivity = _sweep(tmp_path, {"k": {"paths": ["model.draws"], "values": ["a/b"]}})
    with pytest.raises(InputError, match="contains"):
        sweep_table(sensitivity)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"knobs": {"k": {"paths": ["model.draws"]}}}))
    with pytest.raises(InputError) as err:
        load_sensitivity(bad)
    assert "values" in str(err.value)


def test_knob_stage_is_the_earliest_section():
    assert knob_stage(["privacy.rho"]) == "privacy"
    assert knob_stage(["model.exclude_sources"]) == "model"
    assert knob_stage(["linkage.match_threshold", "privacy.rho"]) == "linkage"
    assert knob_stage(["synthetic.sources.acs.error_scale"]) == "synthetic"
    assert knob_stage(["seed"]) == "all"


# ------------------------------------------------------------------ reuse of upstream outputs

BASE_FILES = [
    "world/frame.parquet",
    "world/sources/acs.parquet",
    "truth/persons.parquet",
    "linkage/frame_std.parquet",
    "linkage/by_source/acs.parquet",
    "linkage/evidence.parquet",
    "evaluation/linkage.json",
    "model/cells.parquet",
    "model/block_draws.parquet",
    "evaluation/estimates.json",
    "baselines/record_rule/block_draws.parquet",
    "baselines/census_style/block_draws.parquet",
    "baselines/acs_direct/block_draws.parquet",
    "privacy/measurements.parquet",
    "published/draws.parquet",
]
BASE_BENCH = [
    "synthetic_world.tsv",
    "linkage/link_acs.tsv",
    "model/fit_model.tsv",
    "model/baseline_record_rule.tsv",
    "model/baseline_acs_direct.tsv",
    "privacy/fit.tsv",
]


def _base_run(tmp_path):
    results, bench = tmp_path / "results" / "base", tmp_path / "benchmarks" / "base"
    for rel in BASE_FILES:
        (results / rel).parent.mkdir(parents=True, exist_ok=True)
        (results / rel).write_text(rel)
    for rel in BASE_BENCH:
        (bench / rel).parent.mkdir(parents=True, exist_ok=True)
        (bench / rel).write_text("s\n1.0\n")
    return results, bench


def _linked(point, base, rel) -> bool:
    return (point / rel).exists() and os.stat(point / rel).st_ino == os.stat(base / rel).st_ino


@pytest.mark.parametrize(
    ("paths", "change", "reused", "rerun"),
    [
        # rho: no new world, no relinking, no exact refit, no baselines.
        (
            ["privacy.rho"],
            {"privacy": {"rho": 4}},
            ["truth/persons.parquet", "linkage/evidence.parquet", "model/block_draws.parquet"]
            + ["baselines/record_rule/block_draws.parquet", "evaluation/estimates.json"],
            ["privacy/measurements.parquet", "published/draws.parquet"],
        ),
        # Leave one source out: world and linkage reused; tabulation, fits and the baselines
        # that read the excluded sources rerun; today's ACS baseline does not read them.
        (
            ["model.exclude_sources"],
            {"model": {"exclude_sources": ["acs"]}},
            ["world/frame.parquet", "linkage/frame_std.parquet", "linkage/by_source/acs.parquet"]
            + ["evaluation/linkage.json", "baselines/acs_direct/block_draws.parquet"],
            ["model/cells.parquet", "baselines/record_rule/block_draws.parquet"],
        ),
        (
            ["linkage.match_threshold"],
            {"linkage": {"match_threshold": 0.5}},
            ["world/frame.parquet", "truth/persons.parquet"],
            ["linkage/evidence.parquet", "model/cells.parquet"],
        ),
    ],
)
def test_a_point_reuses_what_its_knob_leaves_alone(tmp_path, paths, change, reused, rerun):
    base_results, base_bench = _base_run(tmp_path)
    point_results, point_bench = tmp_path / "results" / "p", tmp_path / "benchmarks" / "p"
    base_config = {"run": "base", "seed": 1, "privacy": {"rho": 1}, "model": {}, "linkage": {}}
    point_config = {**base_config, "run": "p"}
    for section, values in change.items():
        point_config[section] = {**base_config[section], **values}
    report = prepare_point(
        base_results, base_bench, point_results, point_bench, base_config, point_config, paths
    )
    assert report["stage"] == knob_stage(paths)
    for rel in reused:
        assert _linked(point_results, base_results, rel), rel
    for rel in rerun:
        assert not (point_results / rel).exists(), rel
    # Benchmarks are outputs too: a reused output without its benchmark would rerun its rule.
    assert _linked(point_bench, base_bench, "synthetic_world.tsv")


def test_a_point_equal_to_the_baseline_reuses_everything_and_keeps_its_own_files(tmp_path):
    base_results, base_bench = _base_run(tmp_path)
    point_results, point_bench = tmp_path / "results" / "p", tmp_path / "benchmarks" / "p"
    (point_results / "published").mkdir(parents=True)
    (point_results / "published" / "draws.parquet").write_text("own")
    config = {"run": "base", "seed": 1, "privacy": {"rho": 1}}
    report = prepare_point(
        base_results,
        base_bench,
        point_results,
        point_bench,
        config,
        {**config, "run": "p"},
        ["privacy.rho"],
    )
    assert report["stage"] == "identical"
    for rel in BASE_FILES:
        if rel != "published/draws.parquet":
            assert _linked(point_results, base_results, rel), rel
    # An existing file is never replaced (an interrupted point resumes).
    assert (point_results / "published" / "draws.parquet").read_text() == "own"
    for rel in BASE_BENCH:
        assert _linked(point_bench, base_bench, rel)


# ------------------------------------------------------------------ summary and report

METHODS = ("exact", "published", "record_rule", "census_style", "acs_direct")


def _scores() -> pd.DataFrame:
    """Made-up scores of a sweep: baseline + passport coverage (2 values) + rho, 2 seeds."""
    rng = np.random.default_rng(3)
    points = [("baseline", "base", 1.0), ("passport_coverage", "0.25", 1.6)]
    points += [("passport_coverage", "1", 1.0), ("rho", "4", 0.8)]
    rows = []
    for seed in (1, 2):
        for knob, value, factor in points:
            for m, method in enumerate(METHODS):
                # Baselines' error grows faster than the model's as coverage falls.
                growth = factor if m < 2 else factor**2
                for level in LEVELS:
                    for quantity in ("citizens", "cvap", "noncitizens"):
                        coverage = 0.9 if knob != "rho" else 0.7
                        rows.append(
                            {
                                "seed": seed,
                                "knob": knob,
                                "value": value,
                                "method": method,
                                "level": level,
                                "quantity": quantity,
                                "mae": (1 + m) * growth + rng.normal(0, 0.01),
                                "rmse": 1.5 * (1 + m) * growth,
                                "bias": 0.1,
                                "coverage": coverage,
                                "pit_coverage": coverage,
                                "mean_width": 3.0,
                                "n_units": 40,
                            }
                        )
    return pd.DataFrame(rows)


def test_wide_summary_has_one_row_per_point_and_replicate():
    scores = _scores()
    runs = scores[list(KEYS)].drop_duplicates().assign(run="r", files_reused=3)
    wide = wide_summary(scores, runs)
    assert len(wide) == 2 * 4
    assert list(wide.columns[:3]) == list(KEYS)
    for method in METHODS:
        for level in LEVELS:
            for metric in METRICS:
                assert f"{method}.{level}.citizens.{metric}" in wide.columns
    row = wide[(wide["seed"] == 1) & (wide["knob"] == "rho")].iloc[0]
    expected = scores[
        (scores["seed"] == 1)
        & (scores["knob"] == "rho")
        & (scores["method"] == "exact")
        & (scores["level"] == "county")
        & (scores["quantity"] == "cvap")
    ]["mae"].iloc[0]
    assert row["exact.county.cvap.mae"] == pytest.approx(expected)
    assert row["files_reused"] == 3


def test_aggregate_mean_and_spread_over_replicates():
    scores = _scores()
    aggregated = aggregate(scores)
    one = aggregated[
        (aggregated["knob"] == "baseline")
        & (aggregated["method"] == "exact")
        & (aggregated["level"] == "block")
        & (aggregated["quantity"] == "citizens")
    ].iloc[0]
    values = scores[
        (scores["knob"] == "baseline")
        & (scores["method"] == "exact")
        & (scores["level"] == "block")
        & (scores["quantity"] == "citizens")
    ]["mae"]
    assert one["n_replicates"] == 2
    assert one["mae_mean"] == pytest.approx(values.mean())
    assert one["mae_sd"] == pytest.approx(values.std())
    assert one["mae_min"] == pytest.approx(values.min())
    assert one["n_units_total"] == 80
    assert one["coverage_pooled"] == pytest.approx(0.9)
    table = report_table(aggregated)
    assert set(table["method"]) == {"model", *METHODS[1:]}
    assert {"block_mae", "coverage90_pit", "mean_width90"} <= set(table.columns)


def test_statements_are_computed_from_the_summary():
    aggregated = aggregate(_scores())
    verdicts = calibration_verdicts(aggregated)
    assert not verdicts.loc[verdicts["knob"] == "rho", "calibrated"].any()
    assert verdicts.loc[verdicts["knob"] != "rho", "calibrated"].all()
    growth = mae_growth(aggregated, ["passport_coverage"])
    ratio = growth.set_index("method")["ratio"]
    assert ratio["record_rule"] > ratio["exact"]
    sentences = statements(aggregated)
    text = " ".join(t for _, t in sentences)
    assert "at 3 of 4 points" in text and "rho = 4" in text
    assert "Every baseline's error grows faster" in text
    assert [level for level, _ in sentences][:2] == ["warn", "warn"]


def test_levels_with_few_units_are_not_judged():
    scores = _scores().assign(n_units=5)
    verdicts = calibration_verdicts(aggregate(scores))
    assert (verdicts["verdict"] == "too few units").all()
    text = " ".join(t for _, t in statements(aggregate(scores)))
    assert "calibration is not judged" in text


def test_tornado_ranks_knobs_by_their_error_range():
    rows = tornado_rows(aggregate(_scores()))
    assert list(rows["bar"]) == ["passport coverage", "rho"]
    top = rows.iloc[0]
    assert top["mae_low"] == pytest.approx(0.0, abs=2) and top["mae_high"] > 50
    assert rows.iloc[1]["cov_low"] == pytest.approx(-20)


def test_report_renders_every_section(tmp_path):
    from sensitivity.report import render

    scores = _scores()
    runs = [
        {
            "seed": int(s),
            "knob": k,
            "value": v,
            "reuse": {"stage": "privacy", "files_linked": 5, "world_changed": []},
            "seconds": {"nested_run": 12.0},
        }
        for s, k, v in scores[list(KEYS)].drop_duplicates().itertuples(index=False)
    ]
    sensitivity = _sweep(
        tmp_path,
        {
            "passport_coverage": {
                "paths": ["synthetic.sources.state_passports.coverage"],
                "relative": True,
                "values": [0.25, 1],
            },
            "rho": {"paths": ["privacy.rho"], "values": [4]},
        },
        replicates=2,
    )
    html = render(scores, aggregate(scores), runs, sensitivity, "sweep.yaml", dpi=60)
    for needle in ("Where the model stays calibrated", "Which knob matters most", "rho = 4"):
        assert needle in html
    assert html.count("data:image/png;base64,") == 3


def test_paths_in_sweep_files_are_repository_relative():
    for file in SWEEP_FILES:
        sensitivity = load_sensitivity(file)
        assert (REPO_ROOT / sensitivity["base_scenario"]).exists()
        for overlay in sensitivity["overlays"]:
            assert (REPO_ROOT / overlay).exists()


def test_sweep_rules_are_included_but_never_part_of_a_normal_run():
    snakefile = (REPO_ROOT / "Snakefile").read_text()
    rules = (REPO_ROOT / "workflow" / "rules" / "sensitivity.smk").read_text()
    includes = [line for line in snakefile.splitlines() if line.startswith("include:")]
    assert includes[-1] == 'include: "workflow/rules/sensitivity.smk"'
    # Only the `sensitivity` target builds the sweep: nothing is added to `rule all`.
    assert "FINAL_TARGETS" not in rules


# ------------------------------------------------------------------ end to end (slow)


@pytest.mark.slow
def test_tiny_sweep_end_to_end(tmp_path):
    """config/sensitivity_tiny.yaml: two knobs (passport coverage at half the default, rho 4),
    two replicates, the lean overlay (no privacy refit, 150 prediction draws): four cold fits
    (each replicate's baseline and passport point), the rho points refit nothing."""
    import subprocess
    import sys

    workdir = tmp_path / "work"
    workdir.mkdir()
    for shared in ("config", "data"):
        (workdir / shared).symlink_to(REPO_ROOT / shared)
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO_ROOT / "Snakefile"),
        "--directory",
        str(workdir),
        "--cores",
        "2",
        "--nolock",
        "sensitivity",
    ]
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "SENSITIVITY_CONFIG": "config/sensitivity_tiny.yaml",
    }
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    assert done.returncode == 0, done.stderr[-6000:]
    check_tiny_sweep(workdir)


def check_tiny_sweep(workdir) -> None:
    """What the tiny sweep must have produced and reused (also usable on a manual run)."""
    from pipeline_common.sources import SOURCES

    out = workdir / "results" / "sensitivity-tiny"
    summary = pd.read_csv(out / "summary.csv", dtype={"knob": str, "value": str})
    assert len(summary) == 2 * 3
    assert set(summary["seed"]) == {1, 2}
    for method in METHODS:
        for level in LEVELS:
            column = f"{method}.{level}.citizens.mae"
            assert summary[column].notna().all() and (summary[column] >= 0).all(), column
    aggregated = pd.read_csv(out / "summary_aggregate.csv", dtype={"knob": str, "value": str})
    assert (aggregated["n_replicates"] == 2).all()
    assert (out / "report.pdf").read_bytes()[:4] == b"%PDF"
    assert "Where the model stays calibrated" in (out / "report.html").read_text()

    results = workdir / "results"
    for seed in (1, 2):
        base = results / f"sens-tiny-s{seed}-baseline-base"
        passports = results / f"sens-tiny-s{seed}-passport_coverage-0.5"
        rho = results / f"sens-tiny-s{seed}-rho-4"
        # Common random numbers: the same population (here: the same file) at every point.
        for point in (passports, rho):
            assert _linked(point, base, "truth/persons.parquet")
            assert _linked(point, base, "world/frame.parquet")
        # A passport point relinks passports only; a rho point reuses linkage and the fit.
        assert not _linked(passports, base, "world/sources/state_passports.parquet")
        assert not _linked(passports, base, "linkage/by_source/state_passports.parquet")
        for source in SOURCES:
            if source != "state_passports":
                assert _linked(passports, base, f"linkage/by_source/{source}.parquet"), source
        assert not _linked(passports, base, "model/posterior.nc")
        for rel in ("linkage/evidence.parquet", "model/posterior.nc", "model/block_draws.parquet"):
            assert _linked(rho, base, rel), rel
    # Replicates differ (different seeds, different worlds).
    assert (results / "sens-tiny-s1-baseline-base" / "truth" / "persons.parquet").read_bytes() != (
        results / "sens-tiny-s2-baseline-base" / "truth" / "persons.parquet"
    ).read_bytes()
