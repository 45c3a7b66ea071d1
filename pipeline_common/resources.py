"""What each rule asks a scheduler for: memory (``mem_mb``) and wall time (``runtime``, minutes).

Read by ``workflow/rules/common.smk`` at parse time, so every rule's ``resources:`` follow the
scenario's size. The size is the number of persons the scenario's world will hold, known before
any job runs: the county table's populations of ``synthetic.counties`` times
``synthetic.scale`` (as :func:`synthetic.geography.county_targets` rounds them).

Each rule's need is ``fixed + variable * (persons / DEFAULT_PERSONS) ** exponent``: equal to
``fixed + variable`` on the default scenario, and growing with the world's size as the rule's
work does. Exponents:

- 1 for work that grows with persons (world, tabulation, baselines, evaluations, publication);
- 0.6 for memory of the fits and predictions, which follows cells, not persons: ten times the
  persons gave four times the cells (docs/RESULTS.md, "Cost follows cells"; log 4 / log 10 = 0.6);
- 0.8 for the fits' wall time: the gradient costs about as much as the cells, leapfrog steps
  per draw grew 9 -> 15 from 100k to 1M persons, and tract parameters grow with persons;
- 1.5 for linkage wall time: the date-of-birth blocking rule pairs every frame person with
  every record of the same date of birth, so blocked pairs grow faster than persons.

Figures behind the default values (docs/RESULTS.md): the 1M-person world in 17 s at
2.0 GB peak; the linkage stage on a 1M-person world in 578 s at 6.4 GB peak (Numident 195 s);
the default run's exact fit 157 s (4-5 minutes on a busy machine, up to three sampling
attempts), prediction 20 s; on the ``small`` scenario (a fifth of the default's persons) the
refit's prediction with the count step 313 s. Runtimes are set at several times these figures:
a job that outlives its ``runtime`` is killed by a cluster scheduler, while one that asks too
much only waits longer. The whole 1M-person world (frame, seven sources, truth) held 2.0 GB,
about 300 MB per default-sized world: a rule that reads part of the world and its products
grows by 300-500 MB per default world. Memory was not measured per rule at the default size;
``benchmarks/bench_pipeline.py`` prints every rule's ``max_rss`` to check (and revise) these
values.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from pathlib import Path

# Persons of the default scenario's world (config/config.yaml: four counties x 0.035).
DEFAULT_PERSONS = 150_829
COUNTY_TABLE = "census_cvap/cvap_acs2009_2013_county_totals.csv"


@dataclass(frozen=True)
class Need:
    """A rule's memory (MB) and wall time (minutes): ``(fixed, variable)`` and exponents."""

    mem_mb: tuple[float, float]
    runtime: tuple[float, float]
    mem_exponent: float = 1.0
    runtime_exponent: float = 1.0


@dataclass(frozen=True)
class Resources:
    """What one rule declares: ``mem_mb`` (MB) and ``runtime`` (minutes)."""

    mem_mb: int
    runtime: int


CELLS = 0.6  # memory exponent of work that follows cells (fits, predictions, measurements)
FIT_TIME = 0.8  # wall-time exponent of the fits
PAIRS = 1.5  # wall-time exponent of linkage (blocked pairs)

NEEDS: dict[str, Need] = {
    "synthetic_world": Need(mem_mb=(500, 300), runtime=(5, 0.5)),
    "linkage_standardize_frame": Need(mem_mb=(800, 300), runtime=(5, 1)),
    # Linkage jobs: DuckDB's part is capped by linkage.duckdb_memory_limit (see
    # linkage_memory_mb); these are the Python side (frames, links) and the run time.
    "linkage_link_numident": Need(mem_mb=(1000, 300), runtime=(5, 2), runtime_exponent=PAIRS),
    "linkage_link_source": Need(mem_mb=(1000, 200), runtime=(5, 1), runtime_exponent=PAIRS),
    "linkage_link_source_with_pik": Need(
        mem_mb=(1000, 200), runtime=(5, 1), runtime_exponent=PAIRS
    ),
    "linkage_combine": Need(mem_mb=(800, 300), runtime=(5, 1)),
    "evaluate_linkage": Need(mem_mb=(1000, 400), runtime=(5, 1)),
    "tabulate": Need(mem_mb=(800, 300), runtime=(5, 1)),
    "exact_tables": Need(mem_mb=(800, 200), runtime=(5, 1), mem_exponent=CELLS),
    "fit_model": Need(
        mem_mb=(2000, 1500), runtime=(10, 20), mem_exponent=CELLS, runtime_exponent=FIT_TIME
    ),
    "predict_blocks": Need(
        mem_mb=(1000, 1500), runtime=(5, 5), mem_exponent=CELLS, runtime_exponent=CELLS
    ),
    "baseline_record_rule": Need(mem_mb=(1000, 400), runtime=(5, 2)),
    "baseline_census_style": Need(mem_mb=(1500, 400), runtime=(5, 5)),
    "baseline_acs_direct": Need(mem_mb=(1000, 400), runtime=(5, 3)),
    "evaluate_estimates": Need(mem_mb=(1000, 400), runtime=(5, 1)),
    "privacy_measure": Need(mem_mb=(1000, 500), runtime=(5, 1), mem_exponent=CELLS),
    "privacy_fit": Need(
        mem_mb=(2000, 1500), runtime=(10, 25), mem_exponent=CELLS, runtime_exponent=FIT_TIME
    ),
    # The count step walks every block x age row per draw: its time grows with persons.
    "privacy_predict": Need(mem_mb=(1500, 2000), runtime=(10, 30), mem_exponent=CELLS),
    "publish": Need(mem_mb=(1500, 400), runtime=(5, 3)),
    "evaluate_published": Need(mem_mb=(1000, 300), runtime=(5, 1)),
    "evaluate_calibration": Need(mem_mb=(1500, 500), runtime=(5, 3)),
    "evaluate_comparison": Need(mem_mb=(1500, 500), runtime=(5, 3)),
    "report": Need(mem_mb=(2000, 400), runtime=(10, 5)),
    # Sensitivity rules do not follow this config's world: their runs have the sweep's own
    # base scenario (``small`` by default, a nested pipeline of 9-14 minutes a point).
    "sensitivity_config": Need(mem_mb=(500, 0), runtime=(5, 0)),
    "sensitivity_run": Need(mem_mb=(12000, 0), runtime=(240, 0)),
    "sensitivity_summary": Need(mem_mb=(1000, 0), runtime=(5, 0)),
    "sensitivity_report": Need(mem_mb=(2000, 0), runtime=(10, 0)),
}

LINKAGE_RULES = ("linkage_link_numident", "linkage_link_source", "linkage_link_source_with_pik")
# DuckDB's working memory per default-sized world, before its limit caps it (1M persons:
# about 4 GB of the 6.4 GB peak measured for the linkage stage).
DUCKDB_MB_PER_DEFAULT_WORLD = 600

_UNITS_MB = {
    "KB": 1e-3,
    "MB": 1.0,
    "GB": 1e3,
    "TB": 1e6,
    "KIB": 1024 / 1e6,
    "MIB": 1024**2 / 1e6,
    "GIB": 1024**3 / 1e6,
    "TIB": 1024**4 / 1e6,
}


def expected_persons(config: dict, base_dir: str | Path = ".") -> int:
    """Persons the scenario's world will hold: county populations x ``synthetic.scale``.

    Counties missing from the table count 0 here (the synthetic stage refuses them).
    """
    table = Path(base_dir) / config["data_dir"] / COUNTY_TABLE
    counties = set(config["synthetic"]["counties"])
    scale = float(config["synthetic"]["scale"])
    persons = 0
    with open(table, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["fips"] in counties:
                persons += max(round(float(row["tot_est"]) * scale), 1)
    return persons


def memory_limit_mb(limit: str | None) -> float | None:
    """DuckDB's memory limit (``"4GB"``, ``"512 MiB"``) in MB; ``None`` when unset."""
    if limit is None:
        return None
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGT]i?B)\s*", str(limit), re.IGNORECASE)
    if not match:
        raise ValueError(f"not a memory size: {limit!r}")
    return float(match.group(1)) * _UNITS_MB[match.group(2).upper()]


def _grow(fixed_variable: tuple[float, float], ratio: float, exponent: float) -> float:
    fixed, variable = fixed_variable
    return fixed + variable * ratio**exponent


def rule_resources(rule: str, persons: int, duckdb_memory_limit: str | None = None) -> Resources:
    """``mem_mb`` (rounded up to 100 MB) and ``runtime`` (whole minutes) of ``rule``.

    ``duckdb_memory_limit`` (``linkage.duckdb_memory_limit``) caps the DuckDB part of the
    linkage jobs' memory (DuckDB spills to disk past it); ``None`` leaves it uncapped.
    """
    need = NEEDS[rule]
    ratio = max(persons, 1) / DEFAULT_PERSONS
    mem = _grow(need.mem_mb, ratio, need.mem_exponent)
    if rule in LINKAGE_RULES:
        duckdb = DUCKDB_MB_PER_DEFAULT_WORLD * ratio
        cap = memory_limit_mb(duckdb_memory_limit)
        mem += duckdb if cap is None else min(duckdb, cap)
    runtime = _grow(need.runtime, ratio, need.runtime_exponent)
    return Resources(mem_mb=int(math.ceil(mem / 100) * 100), runtime=int(math.ceil(runtime)))


def resource_table(config: dict, base_dir: str | Path = ".") -> dict[str, Resources]:
    """Every rule's :class:`Resources` for ``config``'s scenario."""
    persons = expected_persons(config, base_dir)
    limit = config["linkage"].get("duckdb_memory_limit")
    return {rule: rule_resources(rule, persons, limit) for rule in NEEDS}
