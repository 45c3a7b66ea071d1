"""Calibration study: the pipeline on replicate worlds, intervals scored at every level.

Usage::

    .venv/bin/python benchmarks/calibration_study.py --scenario small --replicates 8
    .venv/bin/python benchmarks/calibration_study.py --scenario default --seeds 1 2 3 \\
        --configfile config/scenarios/rho_4.yaml

For each replicate seed it writes a config overlay (``run: calib_{scenario}_s{seed}``,
``seed: {seed}``) and runs Snakemake for the files scoring needs only (world, truth, both fits'
draws and diagnostics; not the baselines nor the report). Finished replicates are skipped by
Snakemake, so an interrupted study resumes; ``--score-only`` scores existing runs without
running anything. Each replicate's ``published/draws.parquet`` (method ``published``) and
``model/block_draws.parquet`` (method ``exact``) are scored against the truth by
:mod:`models.calibration` at block, block-group, tract, compact-district (about 300 to 30,000
persons), county and run-total level. Outputs under ``--out``:

- ``calibration.csv``: pooled coverage (binomial SE), PIT coverage, bias, MAE, width per method,
  level and quantity;
- ``units.parquet``: every scored unit of every replicate;
- ``calibration.json``: the pooled table, the targets met or missed, and per replicate the
  convergence of both fits (max R-hat, min bulk/tail ESS, divergences), run totals and times;
- ``coverage_by_size.png``: 90% coverage against mean aggregate population.

Reads the truth: an evaluation script, run on purpose. Exit status 2 on bad input (a missing
run or file, a bad config), 1 when a replicate's Snakemake run fails.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from models.calibration import (  # noqa: E402
    DISTRICT_TARGETS,
    block_geography,
    level_names,
    pool_replicates,
    score_levels,
)
from models.calibration_plot import write_coverage_figure  # noqa: E402
from models.calibration_stage import records  # noqa: E402
from models.evaluate import QUANTITIES, truth_blocks  # noqa: E402
from pipeline_common.config import load_config  # noqa: E402
from pipeline_common.errors import InputError  # noqa: E402
from pipeline_common.io import read_json, write_json, write_parquet, write_text  # noqa: E402
from pipeline_common.rng import stage_rng  # noqa: E402
from privacy.aggregate import read_draws  # noqa: E402

# Method -> block draws under results/{run}/.
METHODS = {"published": "published/draws.parquet", "exact": "model/block_draws.parquet"}
# Method -> the diagnostics of the fit its draws come from (published: the noise-aware refit,
# or the exact fit under privacy mode none).
FIT_DIAGNOSTICS = {
    "exact": "model/diagnostics.json",
    "published": "privacy/model/diagnostics.json",
}
# Targets of issue 14 (pooled over replicates).
COVERAGE_TARGET = (0.85, 0.95)
TOTAL_TARGET = 7 / 8  # share of replicates whose run-total interval holds the truth
CONVERGENCE_TARGET = {"max_rhat": 1.01, "min_ess_bulk": 400, "min_ess_tail": 400, "divergences": 0}
MISSED = "MISSED"


def scenario_file(scenario: str) -> Path:
    """``config/scenarios/{scenario}.yaml`` for a name, or the path itself."""
    path = Path(scenario)
    if path.suffix in (".yaml", ".yml"):
        return path.resolve()
    if scenario == "default":
        return REPO / "config" / "config.yaml"
    return REPO / "config" / "scenarios" / f"{scenario}.yaml"


def study_label(scenario: str, configfiles: list[Path]) -> str:
    """``small`` or ``small-rho_4``: names the runs and the default output folder."""
    stem = Path(scenario).stem if scenario.endswith((".yaml", ".yml")) else scenario
    return "-".join([stem, *(p.stem for p in configfiles)])


def run_name(label: str, seed: int) -> str:
    """Run name of one replicate (``calib_small_s3``)."""
    return f"calib_{label}_s{seed}"


def required_files(config: dict) -> list[str]:
    """Files under ``results/{run}/`` the scoring reads (the Snakemake targets)."""
    files = [
        "truth/persons.parquet",
        "world/frame.parquet",
        "world/geography.parquet",
        *METHODS.values(),
        FIT_DIAGNOSTICS["exact"],
    ]
    if config["privacy"]["mode"] != "none":
        files.append(FIT_DIAGNOSTICS["published"])
    return files


def check_files(run_dir: Path, files: list[str], fix: str) -> None:
    """Raise :class:`InputError` naming the first missing file."""
    if not run_dir.is_dir():
        raise InputError(run_dir, "(folder)", "run folder not found", fix)
    for name in files:
        if not (run_dir / name).exists():
            raise InputError(run_dir / name, "(file)", "file not found", fix)


def snakemake_executable() -> Path:
    """The environment's ``snakemake`` (beside this Python)."""
    beside = Path(sys.executable).with_name("snakemake")
    return beside if beside.exists() else REPO / ".venv" / "bin" / "snakemake"


def prepare_workdir(workdir: Path) -> None:
    """A working directory other than the repository needs its ``config`` and ``data``."""
    workdir.mkdir(parents=True, exist_ok=True)
    if workdir.resolve() == REPO:
        return
    for shared in ("config", "data"):
        if not (workdir / shared).exists():
            (workdir / shared).symlink_to(REPO / shared)


def run_replicate(
    workdir: Path,
    configfiles: list[Path],
    targets: list[str],
    log_path: Path,
    cores: int,
    nolock: bool,
    forcerun: list[str] | None = None,
) -> tuple[int, float]:
    """Run Snakemake for ``targets``; return its exit status and wall seconds."""
    # Targets before --configfile: it takes several values (docs/DEVELOPING.md).
    cmd = [
        str(snakemake_executable()),
        "-s",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--cores",
        str(cores),
        *(["--nolock"] if nolock else []),
        *targets,
        *(["--forcerun", *forcerun] if forcerun else []),
        "--configfile",
        *(str(p) for p in configfiles),
    ]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    log_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:
        log.write(" ".join(cmd) + "\n")
        log.flush()
        done = subprocess.run(cmd, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
    return done.returncode, time.perf_counter() - start


# Folders a study on another privacy budget shares with its base study: the world, the truth,
# linkage and the exact fit do not depend on the budget.
UPSTREAM_FOLDERS = ("world", "truth", "linkage", "model")


def reuse_upstream(source: Path, target: Path) -> bool:
    """Hard-link the budget-independent outputs of run ``source`` into a new run ``target``.

    A study of another ``privacy.rho`` then reruns only the privacy measurement, the refit and
    what follows (Snakemake sees the linked files with their times, and has no record of other
    parameters for them). Nothing happens when ``target`` exists or ``source`` is incomplete.
    Returns whether files were linked.
    """
    if target.exists() or not all((source / f).is_dir() for f in UPSTREAM_FOLDERS):
        return False
    staging = target.with_name(target.name + ".linking")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for folder in UPSTREAM_FOLDERS:
        shutil.copytree(source / folder, staging / folder, copy_function=os.link)
    staging.rename(target)
    return True


def modification_times(run_dir: Path, files: list[str]) -> dict[str, float | None]:
    """Modification time of each target (None when missing): did a Snakemake run build any?"""
    return {
        name: (run_dir / name).stat().st_mtime if (run_dir / name).exists() else None
        for name in files
    }


def rule_seconds(bench_dir: Path) -> float | None:
    """Sum of the Snakemake benchmark wall times (``s``) of one run's rules."""
    tables = sorted(bench_dir.rglob("*.tsv")) if bench_dir.is_dir() else []
    total = 0.0
    for table in tables:
        try:
            total += float(pd.read_csv(table, sep="\t")["s"].sum())
        except (KeyError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError):
            continue
    return total if tables else None


def convergence(run_dir: Path, config: dict) -> dict:
    """Max R-hat, min bulk/tail ESS and divergences of both fits, with the targets met or not."""
    out = {}
    for method, relative in FIT_DIAGNOSTICS.items():
        if method == "published" and config["privacy"]["mode"] == "none":
            relative = FIT_DIAGNOSTICS["exact"]
        diag = read_json(run_dir / relative)
        entry = {"file": relative}
        for key in CONVERGENCE_TARGET:
            value = diag.get(key)
            entry[key] = None if value is None or not math.isfinite(value) else value
        entry["fit_seconds"] = diag.get("fit_seconds")
        # Written by fits that resample until converged (absent from older diagnostics).
        entry["pipeline_converged"] = diag.get("converged")
        attempts = diag.get("attempts")
        entry["sampling_attempts"] = len(attempts) if isinstance(attempts, list) else None
        entry["missed"] = [
            key
            for key, limit in CONVERGENCE_TARGET.items()
            if entry[key] is None
            or (entry[key] > limit if key in ("max_rhat", "divergences") else entry[key] < limit)
        ]
        out[method] = entry
    return out


def score_replicate(run_dir: Path, seed: int) -> pd.DataFrame:
    """Unit-level scores of both methods of one replicate run."""
    frame = pd.read_parquet(run_dir / "world/frame.parquet", columns=["person_id", "block_id"])
    population = frame.groupby(frame["block_id"].astype(str)).size()
    blocks = block_geography(pd.read_parquet(run_dir / "world/geography.parquet"), population)
    truth = truth_blocks(
        pd.read_parquet(
            run_dir / "truth/persons.parquet",
            columns=["person_id", "block_id", "tract_id", "county_id", "citizen", "age"],
        ),
        frame["person_id"],
    )
    tables = []
    for method, relative in METHODS.items():
        units = score_levels(
            read_draws(run_dir / relative),
            truth,
            blocks,
            stage_rng(seed, "calibration", method),
            draws_source=str(run_dir / relative),
        )
        tables.append(units.assign(method=method, replicate=seed, run=run_dir.name))
    return pd.concat(tables, ignore_index=True)


def target_status(pooled: pd.DataFrame) -> pd.DataFrame:
    """Per pooled row: the target and whether it was met (``ok``) or ``MISSED``."""
    low, high = COVERAGE_TARGET
    rows = []
    for row in pooled.itertuples(index=False):
        if row.level == "total":
            share = row.replicates_covered / row.n_replicates
            met = share >= TOTAL_TARGET
            target = f">= {TOTAL_TARGET:.3f} of replicates"
        else:
            met = low <= row.coverage <= high
            target = f"{low:.2f}-{high:.2f}"
        rows.append({"target": target, "status": "ok" if met else MISSED})
    return pd.concat([pooled.reset_index(drop=True), pd.DataFrame(rows)], axis=1)


def coverage_figure(pooled: pd.DataFrame, path: Path) -> None:
    """Coverage against mean aggregate population, one panel per quantity, written atomically
    (:func:`models.calibration_plot.write_coverage_figure`, shared with the pipeline's
    ``evaluate_calibration`` rule and the report)."""
    write_coverage_figure(pooled, path, band=COVERAGE_TARGET)


def cell(value: float, status: str | None = None, digits: int = 3) -> str:
    """A table cell: the number, and ``MISSED`` beside it when a target was missed."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    text = f"{value:.{digits}f}"
    return f"{text} {MISSED}" if status == MISSED else text


def print_summary(checked: pd.DataFrame, replicates: dict) -> None:
    """Compact tables: coverage per method and level, run totals, convergence per replicate."""
    lines = []
    for method, part in checked.groupby("method", sort=False):
        rows = []
        for level_name, group in part.groupby("level", sort=False):
            by_q = group.set_index("quantity")
            first = by_q.iloc[0]
            row = {
                "level": level_name,
                "units": int(first["n_units"]),
                "persons": f"{first['mean_population']:,.0f}",
            }
            for q in QUANTITIES:
                r = by_q.loc[q]
                if level_name == "total":
                    covered = f"{int(r['replicates_covered'])}/{int(r['n_replicates'])}"
                    row[q] = covered + (f" {MISSED}" if r["status"] == MISSED else "")
                else:
                    row[q] = cell(r["coverage"], r["status"]) + f" ±{r['coverage_se']:.3f}"
                row[f"{q[:4]}. width%"] = cell(100 * r["rel_width"], digits=2)
            rows.append(row)
            if level_name == "block":
                pit = {"level": "block (PIT)", "units": rows[-1]["units"], "persons": ""}
                for q in QUANTITIES:
                    value = float(by_q.loc[q, "pit_coverage"])
                    ok = COVERAGE_TARGET[0] <= value <= COVERAGE_TARGET[1]
                    pit[q] = cell(value, None if ok else MISSED)
                    pit[f"{q[:4]}. width%"] = ""
                rows.append(pit)
        total = part[part["level"] == "total"].set_index("quantity")
        lines.append(
            f"\n{method}: 90% coverage ± binomial SE (target 0.85-0.95; total: replicates "
            "covered, target >= 7 of 8) and mean width in % of the mean truth"
        )
        lines.append(pd.DataFrame(rows).to_string(index=False))
        bias = ", ".join(f"{q} {100 * total.loc[q, 'rel_bias_sum']:+.2f}%" for q in QUANTITIES)
        lines.append(f"  relative bias of the summed estimates (all replicates): {bias}")
    lines.append("\nconvergence per replicate (targets: R-hat <= 1.01, ESS >= 400, 0 divergences)")
    conv_rows = []
    for name, info in replicates.items():
        for method, c in info["convergence"].items():
            missed = set(c["missed"])
            conv_rows.append(
                {
                    "run": name,
                    "fit": method,
                    "max R-hat": cell(c["max_rhat"], MISSED if "max_rhat" in missed else None),
                    "min bulk ESS": cell(
                        c["min_ess_bulk"], MISSED if "min_ess_bulk" in missed else None, 0
                    ),
                    "min tail ESS": cell(
                        c["min_ess_tail"], MISSED if "min_ess_tail" in missed else None, 0
                    ),
                    "divergences": str(c["divergences"])
                    + (f" {MISSED}" if "divergences" in missed else ""),
                    "wall s": cell(info["wall_seconds"], digits=0),
                    "rules s (sum)": cell(info["rule_seconds"], digits=0),
                }
            )
    lines.append(pd.DataFrame(conv_rows).to_string(index=False))
    print("\n".join(lines))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenario", default="small", help="scenario name or YAML (small)")
    parser.add_argument("--replicates", type=int, default=8, help="seeds 1..R (default 8)")
    parser.add_argument("--seeds", type=int, nargs="+", help="replicate seeds (instead of 1..R)")
    parser.add_argument(
        "--configfile",
        type=Path,
        action="append",
        default=[],
        help="extra config YAML merged after the scenario (repeatable; names the runs)",
    )
    parser.add_argument("--out", type=Path, help="output folder (results/calibration/{label})")
    parser.add_argument(
        "--workdir", type=Path, default=REPO, help="Snakemake working directory (the repository)"
    )
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument(
        "--nolock", action="store_true", help="pass --nolock (another run uses the workdir)"
    )
    parser.add_argument(
        "--score-only", action="store_true", help="score existing runs; run nothing"
    )
    parser.add_argument(
        "--reuse-upstream",
        metavar="LABEL",
        help="start each new replicate from the world, linkage and exact fit of study LABEL's "
        "replicate of the same seed (hard links): for studies that change only privacy.rho",
    )
    parser.add_argument(
        "--forcerun",
        nargs="+",
        metavar="RULE",
        help="rules Snakemake reruns in every replicate (e.g. privacy_predict after a change "
        "to prediction code, which Snakemake does not see)",
    )
    args = parser.parse_args(argv)
    if args.seeds is None:
        if args.replicates < 1:
            parser.error("--replicates must be at least 1")
        args.seeds = list(range(1, args.replicates + 1))
    if len(set(args.seeds)) != len(args.seeds):
        parser.error("--seeds must be distinct")
    return args


def study(args: argparse.Namespace) -> int:
    """Run (unless ``--score-only``) and score every replicate; write and print the results."""
    workdir = args.workdir.resolve()
    scenario = scenario_file(args.scenario)
    extra = [p.resolve() for p in args.configfile]
    for path in [scenario, *extra]:
        if not path.exists():
            raise InputError(
                path,
                "(file)",
                "config file not found",
                "give a scenario name of config/scenarios/ or an existing YAML file",
            )
    label = study_label(args.scenario, args.configfile)
    out = (args.out or workdir / "results" / "calibration" / label).resolve()
    replicates: dict[str, dict] = {}
    unit_tables = []
    for seed in args.seeds:
        name = run_name(label, seed)
        overlay = out / "configs" / f"{name}.yaml"
        write_text(yaml.safe_dump({"run": name, "seed": int(seed)}, sort_keys=True), overlay)
        configfiles = [scenario, *extra, overlay]
        config = load_config(*[p for p in configfiles if p != REPO / "config" / "config.yaml"])
        files = required_files(config)
        run_dir = workdir / "results" / name
        record_path = out / "runs" / f"{name}.json"
        if not args.score_only:
            prepare_workdir(workdir)
            log_path = out / "logs" / f"{name}.log"
            print(f"{name}: snakemake (log: {log_path}) ...", flush=True)
            if args.reuse_upstream and reuse_upstream(
                workdir / "results" / run_name(args.reuse_upstream, seed), run_dir
            ):
                print(
                    f"{name}: world, linkage and exact fit linked from "
                    f"{run_name(args.reuse_upstream, seed)}",
                    flush=True,
                )
            before = modification_times(run_dir, files)
            status, seconds = run_replicate(
                workdir,
                configfiles,
                [f"results/{name}/{f}" for f in files],
                log_path,
                args.cores,
                args.nolock,
                args.forcerun,
            )
            if status != 0:
                text = log_path.read_text(encoding="utf-8", errors="replace")
                print(text[-3000:], file=sys.stderr)
                hint = (
                    " Another Snakemake run holds the working directory's lock: wait for it, "
                    "or pass --nolock (different run names do not collide)."
                    if "LockException" in text or "cannot be locked" in text
                    else ""
                )
                print(
                    f"calibration_study: error: the Snakemake run of {name} failed (exit "
                    f"{status}); see {log_path}.{hint} Fix the cause and rerun: finished "
                    "replicates are kept.",
                    file=sys.stderr,
                )
                return 1
            built = modification_times(run_dir, files) != before
            print(f"{name}: {'built' if built else 'up to date'} in {seconds:.0f} s", flush=True)
            # A resumed run with nothing to build keeps the time of the run that built it.
            if built or not record_path.exists():
                write_json({"wall_seconds": round(seconds, 1), "built": built}, record_path)
        check_files(
            run_dir,
            files,
            "run the study without --score-only to build it "
            f"(or: snakemake --configfile {scenario} {overlay})",
        )
        units = score_replicate(run_dir, seed)
        unit_tables.append(units)
        totals = units[units["level"] == "total"]
        replicates[name] = {
            "seed": int(seed),
            "wall_seconds": read_json(record_path)["wall_seconds"]
            if record_path.exists()
            else None,
            "rule_seconds": rule_seconds(workdir / "benchmarks" / name),
            "convergence": convergence(run_dir, config),
            "run_total": records(
                totals[["method", "quantity", "estimate", "lo90", "hi90", "truth", "covered"]]
            ),
        }
    units = pd.concat(unit_tables, ignore_index=True)
    pooled = pool_replicates(units)
    checked = target_status(pooled)
    write_parquet(units, out / "units.parquet")
    write_text(
        pooled.to_csv(index=False, lineterminator="\n", float_format="%.6g"),
        out / "calibration.csv",
    )
    write_json(
        {
            "scenario": str(
                scenario.relative_to(REPO) if scenario.is_relative_to(REPO) else scenario
            ),
            "configfiles": [str(p) for p in args.configfile],
            "seeds": [int(s) for s in args.seeds],
            "levels": level_names(DISTRICT_TARGETS),
            "methods": METHODS,
            "interval": "5% and 95% quantiles (inverted_cdf) of the summed draws; covered when "
            "lo90 <= truth <= hi90",
            "targets": {
                "coverage": list(COVERAGE_TARGET),
                "total_replicates_covered_share": TOTAL_TARGET,
                "convergence": CONVERGENCE_TARGET,
            },
            "pooled": records(checked),
            "replicates": replicates,
        },
        out / "calibration.json",
    )
    coverage_figure(pooled, out / "coverage_by_size.png")
    print(
        f"\nCalibration study {label}: {len(args.seeds)} replicates (seeds {args.seeds}) -> {out}"
    )
    print_summary(checked, replicates)
    print("\nwritten: calibration.csv, calibration.json, units.parquet, coverage_by_size.png")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return study(args)
    except InputError as error:
        print(f"calibration_study: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
