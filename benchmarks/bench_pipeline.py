"""Run a scenario end to end and print each stage's wall time, CPU time and peak memory.

Usage (from the repository root; the baseline scenario runs in the same invocation)::

    nice -n 10 .venv/bin/python benchmarks/bench_pipeline.py --scenario million
    nice -n 10 .venv/bin/python benchmarks/bench_pipeline.py --scenario tiny --no-baseline
    nice -n 10 .venv/bin/python benchmarks/bench_pipeline.py --scenario small --baseline tiny

Each scenario is a whole Snakemake run (``--forceall``: every rule, so every time is
measured) in a scratch working directory (``--workdir``, default ``benchmarks/pipeline_runs``,
git-ignored; ``config`` and ``data`` are linked into it), never in the repository's own
``results/``. The figures come from the rules' Snakemake benchmark files
(``benchmarks/{run}/**/*.tsv`` under that directory; every rule has one): ``s`` (wall
seconds), ``cpu_time`` (user + system seconds of the job's processes) and ``max_rss`` (peak
resident memory of the job's processes, MiB). Printed per rule, per stage (wall and CPU summed
over the stage's rules, memory the largest rule's) and for the whole run (the Snakemake call's
own wall time, shorter than the sum of rules when two jobs run at once), with persons per
second (frame persons / wall seconds) and ratios to the baseline scenario. Each rule is also
set against what it declares to a scheduler (``pipeline_common/resources.py``): a rule whose
peak memory or wall time passes its declaration is marked ``OVER``.

``--reuse`` skips the runs and reads the benchmark files already in the working directory
(e.g. of a run made with the cluster profile). The table is written beside the run's rule
benchmarks, as ``benchmarks/{run}/bench_pipeline.csv`` and ``.json`` in the working directory.
Exit status: 0, or 1 when a Snakemake run fails.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from pipeline_common.config import load_config  # noqa: E402
from pipeline_common.resources import resource_table  # noqa: E402

SCENARIOS = ("default", "million", "state", "small", "tiny")
# Benchmark file (under benchmarks/{run}/, without .tsv) -> rule, where the names differ.
RULE_OF_BENCHMARK = {
    "linkage/standardize_frame": "linkage_standardize_frame",
    "linkage/link_ssa_numident": "linkage_link_numident",
    "linkage/combine": "linkage_combine",
    "linkage/evaluate": "evaluate_linkage",
    "privacy/measure": "privacy_measure",
    "privacy/fit": "privacy_fit",
    "privacy/predict": "privacy_predict",
    "privacy/publish": "publish",
    "report/report": "report",
}
COLUMNS = [
    "scenario",
    "run",
    "level",
    "name",
    "rule",
    "wall_s",
    "cpu_s",
    "max_rss_mb",
    "persons",
    "persons_per_s",
    "declared_mem_mb",
    "declared_runtime_min",
    "over_declared",
    "baseline_wall_s",
    "wall_ratio",
    "cpu_ratio",
    "rss_ratio",
    "wall_ratio_per_person_ratio",
]


def scenario_file(scenario: str) -> Path | None:
    """The scenario's YAML (``None`` for the default: config/config.yaml is the Snakefile's)."""
    if scenario.endswith((".yaml", ".yml")):
        return Path(scenario).resolve()
    if scenario == "default":
        return None
    return REPO / "config" / "scenarios" / f"{scenario}.yaml"


def scenario_config(scenario: str) -> dict:
    path = scenario_file(scenario)
    return load_config(*([path] if path else []))


def prepare_workdir(workdir: Path) -> None:
    """A working directory other than the repository needs its ``config`` and ``data``."""
    workdir.mkdir(parents=True, exist_ok=True)
    for shared in ("config", "data"):
        if not (workdir / shared).exists():
            (workdir / shared).symlink_to(REPO / shared)


def snakemake_executable() -> Path:
    beside = Path(sys.executable).with_name("snakemake")
    return beside if beside.exists() else REPO / ".venv" / "bin" / "snakemake"


def run_scenario(
    scenario: str, workdir: Path, cores: int, extra: list[str], log_path: Path
) -> tuple[int, float]:
    """Run the whole workflow for ``scenario`` (every rule); return exit status and wall s."""
    path = scenario_file(scenario)
    # Targets and options before --configfile: it takes several values.
    cmd = [
        str(snakemake_executable()),
        "-s",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--cores",
        str(cores),
        "--forceall",
        *extra,
        *(["--configfile", str(path)] if path else []),
    ]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    log_path.parent.mkdir(parents=True, exist_ok=True)
    print(f"[{scenario}] {' '.join(cmd)}\n[{scenario}] Snakemake log: {log_path}", flush=True)
    start = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:
        done = subprocess.run(cmd, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - start
    print(f"[{scenario}] exit {done.returncode} after {seconds:.0f} s", flush=True)
    return done.returncode, seconds


def rule_of(benchmark: str, config: dict) -> str:
    """The rule that wrote ``benchmark`` (its path under benchmarks/{run}/, no suffix)."""
    if benchmark in RULE_OF_BENCHMARK:
        return RULE_OF_BENCHMARK[benchmark]
    stage, _, name = benchmark.rpartition("/")
    if stage == "linkage" and name.startswith("link_"):
        linkage = config["linkage"]
        pik = linkage["pik_sources"] if linkage["pik_from_ssa"] else []
        return "linkage_link_source_with_pik" if name[5:] in pik else "linkage_link_source"
    return name


def stage_of(benchmark: str) -> str:
    """The stage: the benchmark's folder (``linkage``, ``model``, ...), else its own name."""
    return benchmark.split("/", 1)[0] if "/" in benchmark else benchmark.split("_", 1)[0]


def frame_persons(workdir: Path, run: str) -> int:
    """Persons of the census frame (its Parquet row count)."""
    return pq.ParquetFile(workdir / "results" / run / "world" / "frame.parquet").metadata.num_rows


def _number(value) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return math.nan
    return value


def read_benchmarks(workdir: Path, run: str, config: dict) -> pd.DataFrame:
    """One row per rule job: ``benchmark, stage, rule, wall_s, cpu_s, max_rss_mb``.

    A job benchmarked several times (``repeat``) counts its mean; ``NA`` (a job too short to
    sample) is read as missing.
    """
    folder = workdir / "benchmarks" / run
    rows = []
    for table in sorted(folder.rglob("*.tsv")):
        name = table.relative_to(folder).with_suffix("").as_posix()
        frame = pd.read_csv(table, sep="\t", na_values=["NA", "-"])
        rows.append(
            {
                "benchmark": name,
                "stage": stage_of(name),
                "rule": rule_of(name, config),
                "wall_s": _number(frame["s"].mean()),
                "cpu_s": _number(frame["cpu_time"].mean()),
                "max_rss_mb": _number(frame["max_rss"].max()),
            }
        )
    if not rows:
        raise SystemExit(f"no benchmark files under {folder}: run the scenario first")
    return pd.DataFrame(rows)


def scenario_table(
    scenario: str, workdir: Path, run_seconds: float | None, config: dict
) -> pd.DataFrame:
    """Rule, stage and total rows of one scenario (before the baseline ratios)."""
    run = config["run"]
    jobs = read_benchmarks(workdir, run, config)
    persons = frame_persons(workdir, run)
    declared = resource_table(config, workdir)
    rows = []
    for job in jobs.itertuples(index=False):
        need = declared.get(job.rule)
        over = []
        if need and job.max_rss_mb > need.mem_mb:
            over.append("memory")
        if need and job.wall_s > need.runtime * 60:
            over.append("runtime")
        rows.append(
            {
                "level": "rule",
                "name": job.benchmark,
                "rule": job.rule,
                "wall_s": job.wall_s,
                "cpu_s": job.cpu_s,
                "max_rss_mb": job.max_rss_mb,
                "declared_mem_mb": need.mem_mb if need else math.nan,
                "declared_runtime_min": need.runtime if need else math.nan,
                "over_declared": "+".join(over),
            }
        )
    for stage, group in jobs.groupby("stage", sort=False):
        rows.append(
            {
                "level": "stage",
                "name": stage,
                "rule": "",
                "wall_s": group["wall_s"].sum(),
                "cpu_s": group["cpu_s"].sum(),
                "max_rss_mb": group["max_rss_mb"].max(),
                "over_declared": "",
            }
        )
    rows.append(
        {
            "level": "total",
            "name": "sum of rules",
            "rule": "",
            "wall_s": jobs["wall_s"].sum(),
            "cpu_s": jobs["cpu_s"].sum(),
            "max_rss_mb": jobs["max_rss_mb"].max(),
            "over_declared": "",
        }
    )
    if run_seconds is not None:
        rows.append(
            {
                "level": "total",
                "name": "run wall (snakemake)",
                "rule": "",
                "wall_s": run_seconds,
                "cpu_s": jobs["cpu_s"].sum(),
                "max_rss_mb": jobs["max_rss_mb"].max(),
                "over_declared": "",
            }
        )
    table = pd.DataFrame(rows)
    table.insert(0, "run", run)
    table.insert(0, "scenario", scenario)
    table["persons"] = persons
    table["persons_per_s"] = persons / table["wall_s"]
    return table.reindex(columns=[c for c in COLUMNS if not c.startswith(("baseline", "wall_r"))])


def with_ratios(table: pd.DataFrame, baseline: pd.DataFrame | None) -> pd.DataFrame:
    """Add the baseline's wall time and the scenario / baseline ratios (matched by name)."""
    table = table.copy()
    if baseline is None:
        return table.reindex(columns=COLUMNS)
    base = baseline.set_index(["level", "name"])
    key = pd.MultiIndex.from_frame(table[["level", "name"]])
    for column, ratio in (("wall_s", "wall_ratio"), ("cpu_s", "cpu_ratio")):
        table[ratio] = table[column].to_numpy() / base[column].reindex(key).to_numpy()
    table["rss_ratio"] = table["max_rss_mb"].to_numpy() / base["max_rss_mb"].reindex(key).to_numpy()
    table["baseline_wall_s"] = base["wall_s"].reindex(key).to_numpy()
    persons_ratio = table["persons"].iloc[0] / baseline["persons"].iloc[0]
    # 1: time grows as the persons do; below 1: slower than the persons (fixed costs, cells).
    table["wall_ratio_per_person_ratio"] = table["wall_ratio"] / persons_ratio
    return table.reindex(columns=COLUMNS)


def _fmt(value, spec: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return format(value, spec)


def print_table(table: pd.DataFrame, baseline_name: str | None) -> None:
    first = table.iloc[0]
    print(f"\n== {first['scenario']} (run {first['run']}): {int(first['persons']):,} frame persons")
    header = (
        f"{'level':6} {'name':34} {'wall s':>9} {'CPU s':>9} {'max RSS MB':>11} {'persons/s':>11}"
    )
    header += f" {'declared':>15}"
    if baseline_name:
        header += f" {'x ' + baseline_name + ' wall':>16} {'per person':>10}"
    print(header)
    for row in table.itertuples(index=False):
        declared = (
            f"{row.declared_mem_mb:.0f} MB/{row.declared_runtime_min:.0f}m"
            if row.level == "rule" and math.isfinite(row.declared_mem_mb)
            else ""
        )
        line = (
            f"{row.level:6} {row.name:34} {_fmt(row.wall_s, '9.1f')} {_fmt(row.cpu_s, '9.1f')} "
            f"{_fmt(row.max_rss_mb, '11.0f')} {_fmt(row.persons_per_s, '11,.0f')} {declared:>15}"
        )
        if baseline_name:
            line += (
                f" {_fmt(row.wall_ratio, '16.2f')} {_fmt(row.wall_ratio_per_person_ratio, '10.2f')}"
            )
        if row.over_declared:
            line += f"  OVER ({row.over_declared})"
        print(line)


def write_outputs(table: pd.DataFrame, meta: dict, workdir: Path, run: str) -> tuple[Path, Path]:
    folder = workdir / "benchmarks" / run
    folder.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = folder / "bench_pipeline.csv", folder / "bench_pipeline.json"
    table.to_csv(csv_path, index=False)
    records = json.loads(table.to_json(orient="records"))
    json_path.write_text(json.dumps({**meta, "rows": records}, indent=2) + "\n", encoding="utf-8")
    return csv_path, json_path


def earlier_run_seconds(workdir: Path, run: str) -> float | None:
    """The Snakemake wall time an earlier invocation wrote for ``run`` (``--reuse``)."""
    path = workdir / "benchmarks" / run / "bench_pipeline.json"
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("run_wall_s")
    except (OSError, ValueError):
        return None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--scenario", default="default", help=f"one of {', '.join(SCENARIOS)} or a YAML file"
    )
    parser.add_argument(
        "--baseline", default="default", help="scenario run beside it for ratios (default)"
    )
    parser.add_argument("--no-baseline", action="store_true", help="run no baseline scenario")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=REPO / "benchmarks" / "pipeline_runs",
        help="scratch working directory (benchmarks/pipeline_runs)",
    )
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument(
        "--reuse", action="store_true", help="run nothing: read the benchmark files already there"
    )
    parser.add_argument(
        "--snakemake-arg",
        action="append",
        default=[],
        help="extra Snakemake argument (repeatable), e.g. --snakemake-arg=--profile=...",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = args.workdir.resolve()
    baseline = None if args.no_baseline else args.baseline
    order = [args.scenario] + ([baseline] if baseline and baseline != args.scenario else [])
    configs = {name: scenario_config(name) for name in order}
    runs = [configs[name]["run"] for name in order]
    if len(set(runs)) != len(runs):
        raise SystemExit(f"scenarios {order} share a run name ({runs}): they would overwrite")
    prepare_workdir(workdir)
    seconds: dict[str, float | None] = {}
    for name in order:
        if args.reuse:
            seconds[name] = earlier_run_seconds(workdir, configs[name]["run"])
            continue
        log_path = workdir / "logs" / configs[name]["run"] / "bench_pipeline.snakemake.log"
        status, seconds[name] = run_scenario(
            name, workdir, args.cores, args.snakemake_arg, log_path
        )
        if status != 0:
            print(f"[{name}] Snakemake failed: see {log_path}", file=sys.stderr)
            return 1
    tables = {name: scenario_table(name, workdir, seconds[name], configs[name]) for name in order}
    base_table = tables.get(baseline) if baseline else None
    for name in order:
        ratio_base = None if name == baseline and name != args.scenario else base_table
        table = with_ratios(tables[name], ratio_base)
        label = baseline if ratio_base is not None else None
        print_table(table, label)
        meta = {
            "scenario": name,
            "run": configs[name]["run"],
            "baseline": baseline if ratio_base is not None else None,
            "workdir": str(workdir),
            "cores": args.cores,
            "run_wall_s": seconds[name],
            "persons": int(table["persons"].iloc[0]),
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "load_average": os.getloadavg(),
        }
        csv_path, json_path = write_outputs(table, meta, workdir, configs[name]["run"])
        print(f"written: {csv_path}\n         {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
