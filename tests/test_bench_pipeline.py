"""benchmarks/bench_pipeline.py: every rule's benchmark file is read and named after its rule.

No timing here (timings are the script's output, never a test's): the tables are built from
benchmark files written by the test.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pandas as pd
import pytest

from pipeline_common.config import load_config
from pipeline_common.resources import NEEDS
from pipeline_common.sources import SOURCES

REPO = Path(__file__).resolve().parent.parent
SPEC = importlib.util.spec_from_file_location(
    "bench_pipeline", REPO / "benchmarks/bench_pipeline.py"
)
bench = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(bench)

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def benchmark_paths() -> dict[str, str]:
    """Benchmark file (under benchmarks/{run}/, no suffix) -> rule, from the rule files."""
    config = load_config()
    pik = set(config["linkage"]["pik_sources"])
    found = {}
    for path in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        text = path.read_text(encoding="utf-8")
        for rule, body in re.findall(r"^rule (\w+):\n(.*?)(?=^rule |\Z)", text, re.S | re.M):
            match = re.search(r'f"\{BENCH\}/([^"]+)\.tsv"', body)
            if not match:
                continue
            name = match.group(1)
            if "{{source}}" not in name:
                found[name] = rule
                continue
            for source in SOURCES:
                wanted = "linkage_link_source_with_pik" if source in pik else "linkage_link_source"
                if source != "ssa_numident" and rule == wanted:
                    found[name.replace("{{source}}", source)] = rule
    return found


def test_every_benchmark_file_is_named_after_its_rule():
    paths = benchmark_paths()
    config = load_config()
    rules = {bench.rule_of(name, config) for name in paths}
    assert {bench.rule_of(name, config) for name in paths} == set(paths.values())
    assert all(bench.rule_of(name, config) == rule for name, rule in paths.items())
    # Every job rule of a normal run is there (the sensitivity rules write elsewhere).
    assert rules == {rule for rule in NEEDS if not rule.startswith("sensitivity")}


def write_run(workdir: Path, run: str, persons: int, seconds: dict[str, float]) -> None:
    for name, wall in seconds.items():
        path = workdir / "benchmarks" / run / f"{name}.tsv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(HEADER + f"{wall}\t0:00:01\t{wall * 10}\t1\t1\t1\t0\t0\t50\t{wall / 2}\n")
    frame = workdir / "results" / run / "world" / "frame.parquet"
    frame.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"person_id": range(persons)}).to_parquet(frame)


def test_tables_stages_and_ratios(tmp_path):
    tiny, small = (
        load_config(REPO / "config/scenarios/tiny.yaml"),
        load_config(REPO / "config/scenarios/small.yaml"),
    )
    bench.prepare_workdir(tmp_path)
    write_run(tmp_path, "tiny", 100, {"synthetic_world": 2.0, "model/fit_model": 10.0})
    write_run(tmp_path, "small", 400, {"synthetic_world": 4.0, "model/fit_model": 100.0})
    base = bench.scenario_table("tiny", tmp_path, 15.0, tiny)
    table = bench.with_ratios(bench.scenario_table("small", tmp_path, 110.0, small), base)
    rows = table.set_index(["level", "name"])
    fit = rows.loc[("rule", "model/fit_model")]
    assert fit["rule"] == "fit_model" and fit["max_rss_mb"] == 1000 and fit["cpu_s"] == 50
    assert fit["wall_ratio"] == 10 and fit["wall_ratio_per_person_ratio"] == 2.5
    assert fit["persons_per_s"] == 4 and fit["over_declared"] == ""
    assert rows.loc[("stage", "model"), "wall_s"] == 100
    assert rows.loc[("total", "sum of rules"), "wall_s"] == 104
    assert rows.loc[("total", "run wall (snakemake)"), "wall_ratio"] == pytest.approx(110 / 15)
    # A job past its declared memory (10 GB) and wall time (16.7 min) is marked.
    write_run(tmp_path, "small", 400, {"model/fit_model": 1000.0})
    over = bench.scenario_table("small", tmp_path, None, small).set_index("name")
    assert over.loc["model/fit_model", "over_declared"] == "memory+runtime"
