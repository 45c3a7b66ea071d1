"""Splink's Spark backend (``linkage.backend: spark``) against DuckDB on the tiny world.

The Numident (name, date of birth, sex, address: every SQL function the comparisons use) and
the passports (linked with the Numident PIK: the SSN comparison and blocking) are linked once
with each backend, Spark in local mode; the two must agree on precision and recall within
0.005. The Spark session starts once for the module (its JVM is the slow part) and is stopped
at the end.

Needs pyspark (the project's ``spark`` extra, installed by ``tools/ensure_env.sh``) and a Java
runtime (``tools/ensure_java.sh``, called by ``test.sh``). Only a missing Java skips the
comparison, with the reason; a missing pyspark fails it.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

import linkage.backends as backends
from linkage.evaluate import evaluate_linkage
from linkage.link import LinkSettings, build_settings
from linkage.policy import apply_policy, resolve_policy
from linkage.stage import combine, link_source, pik_from_links, standardized_frame
from linkage.standardize import standardize_identity
from pipeline_common.config import load_config
from pipeline_common.errors import InputError
from synthetic.world import generate_world
from tests.fixtures.linkage_world import make_world

pytestmark = pytest.mark.spark

REPO = Path(__file__).resolve().parent.parent
TINY = REPO / "config" / "scenarios" / "tiny.yaml"
SOURCES = ("ssa_numident", "state_passports")
TOLERANCE = 0.005
# Spark in local mode on two cores, one shuffle partition per core: the tiny world is a few
# thousand rows, and every extra partition is one more task per query.
SPARK = {"master": "local[2]", "num_partitions": 2, "driver_memory": "1g"}


def _link(world, config: dict) -> tuple[dict, list[dict], float]:
    """Link SOURCES as the stage does (Numident first, its PIK for passports); evaluate."""
    started = time.perf_counter()
    frame_std = standardized_frame(world.frame, config)
    by_source, reports, entered = [], [], {}
    pik = None
    for source in SOURCES:
        links, report = link_source(
            world.frame, world.sources[source], source, config, pik, frame_std=frame_std
        )
        if source == "ssa_numident":
            pik = pik_from_links(links, world.sources[source], config)
        by_source.append(links)
        reports.append(report)
        shared, _ = apply_policy(world.sources[source], resolve_policy(config, source))
        entered[source] = shared["record_id"]
    links, _, withheld = combine(by_source, reports)
    evaluation = evaluate_linkage(
        links, entered, withheld, world.frame["person_id"], world.records, world.persons
    )
    return evaluation, reports, time.perf_counter() - started


@pytest.fixture(scope="module")
def both_backends():
    java_missing = backends.java_unavailable()
    if java_missing:
        pytest.skip(f"Spark backend not tested: {java_missing}")
    assert backends.pyspark_unavailable() is None, backends.pyspark_unavailable()
    config = load_config(TINY)
    world = generate_world(config)
    # The module's Spark session, started here and reused by every Spark linkage below
    # (make_db_api's getOrCreate). Whole-stage code generation compiles Java for each of
    # Splink's many small queries; on tables this size interpreting them is faster.
    session = backends.spark_session(backends.spark_settings({"spark": SPARK}))
    session.conf.set("spark.sql.codegen.wholeStage", "false")
    results = {}
    for backend in ("duckdb", "spark"):
        run = copy.deepcopy(config)
        run["linkage"]["backend"] = backend
        run["linkage"]["spark"] = {**run["linkage"]["spark"], **SPARK}
        results[backend] = _link(world, run)
    yield results
    session.stop()


def test_spark_precision_and_recall_match_duckdb(both_backends):
    figures = {
        backend: (evaluation["overall"]["precision"], evaluation["overall"]["recall"], seconds)
        for backend, (evaluation, _, seconds) in both_backends.items()
    }
    summary = ", ".join(
        f"{backend}: P {p:.5f} R {r:.5f} ({seconds:.0f} s)"
        for backend, (p, r, seconds) in figures.items()
    )
    print(summary)
    (p_duck, r_duck, _), (p_spark, r_spark, _) = figures["duckdb"], figures["spark"]
    # Both good (so two equally broken linkages cannot pass), and equal within the tolerance.
    assert min(p_duck, p_spark) >= 0.99 and min(r_duck, r_spark) >= 0.95, summary
    assert abs(p_spark - p_duck) <= TOLERANCE, summary
    assert abs(r_spark - r_duck) <= TOLERANCE, summary
    for source in SOURCES:
        duck = both_backends["duckdb"][0]["sources"][source]
        spark = both_backends["spark"][0]["sources"][source]
        assert abs(spark["recall"] - duck["recall"]) <= 2 * TOLERANCE, (source, summary)


def test_spark_ran_every_comparison_and_the_pik(both_backends):
    for backend, (_, reports, _) in both_backends.items():
        by_source = {r["source"]: r for r in reports}
        assert all(r["backend"] == backend for r in reports)
        numident, passports = by_source["ssa_numident"], by_source["state_passports"]
        assert {"name", "dob", "sex", "location"} <= set(numident["comparisons"])
        assert passports["used_pik"] and "ssn" in passports["comparisons"]
    spark_levels = {r["source"]: r["model"] for r in both_backends["spark"][1]}
    # The Spark UDFs scored: the Jaro-Winkler and edit-distance levels got trained u values.
    name_levels = {level["label"]: level for level in spark_levels["ssa_numident"]["name"]}
    assert name_levels["both similar (Jaro-Winkler >= 0.88)"]["u"] > 0


# --- no Spark needed below --------------------------------------------------------------------


def test_sql_function_names_are_splinks_dialect_names():
    from splink.internals.dialects import DuckDBDialect, SparkDialect

    for backend, dialect in (("duckdb", DuckDBDialect()), ("spark", SparkDialect())):
        names = backends.sql_functions(backend)
        assert names["jaro_winkler"] == dialect.jaro_winkler_function_name
        assert names["damerau_levenshtein"] == dialect.damerau_levenshtein_function_name
        assert names["levenshtein"] == dialect.levenshtein_function_name
    spark_sql = backends.fill_functions("{jaro_winkler}(a_l, a_r) >= 0.9", "spark")
    assert spark_sql == "jaro_winkler(a_l, a_r) >= 0.9"


def test_comparison_sql_names_each_backends_functions():
    world = make_world(60, np.random.default_rng(1))
    left = standardize_identity(world["frame"], "person_id", "2020-04-01", True)
    right = standardize_identity(world["ssa_numident"], "record_id", "2020-04-01", True)
    for backend in backends.BACKENDS:
        splink_settings, *_ = build_settings(left, right, LinkSettings(backend=backend))
        sql = " ".join(
            level["sql_condition"]
            for comparison in splink_settings["comparisons"]
            for level in comparison["comparison_levels"]
        )
        assert "{" not in sql, sql  # every placeholder filled
        for function in backends.sql_functions(backend).values():
            assert f"{function}(" in sql, (backend, function)
    assert "jaro_winkler_similarity" not in sql  # the last one was Spark


def test_spark_master_null_runs_local_on_every_core():
    config = load_config(TINY)
    assert config["linkage"]["backend"] == "duckdb"
    assert config["linkage"]["spark"]["master"] is None
    assert backends.spark_settings(config["linkage"])["master"] == "local[*]"
    assert backends.spark_settings({"spark": {"master": "local[2]"}})["master"] == "local[2]"


@pytest.mark.parametrize(
    ("missing", "named"), [("java", "Java runtime"), ("pyspark", "pyspark is not installed")]
)
def test_config_refuses_spark_where_it_cannot_run(tmp_path, monkeypatch, missing, named):
    if missing == "java":
        monkeypatch.setattr(backends, "java_executable", lambda: None)
    else:
        monkeypatch.setattr(backends, "pyspark_unavailable", lambda: f"{named} (test)")
    scenario = tmp_path / "spark.yaml"
    scenario.write_text(yaml.safe_dump({"linkage": {"backend": "spark"}}))
    with pytest.raises(InputError) as caught:
        load_config(scenario)
    message = str(caught.value)
    assert "spark.yaml" in message and "linkage.backend" in message, message
    assert named in message and "Fix:" in message, message
    # DuckDB needs neither: the same machine runs the default backend.
    scenario.write_text(yaml.safe_dump({"linkage": {"backend": "duckdb"}}))
    assert load_config(scenario)["linkage"]["backend"] == "duckdb"
