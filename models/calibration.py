"""Calibration of block posterior draws at every level a user sums them to.

Redistricting analysts use block estimates only through sums, so the intervals must be honest
for any set of blocks, not only block by block. This module scores a draws table
(``draw, block_id, citizens, noncitizens, cvap``: ``published/draws.parquet`` or
``model/block_draws.parquet``) against the true block counts at these levels:

``block``, ``block_group``, ``tract``, compact districts ``district_300`` ... ``district_30000``
(runs of consecutive blocks in GEOID order, cut when their frame population reaches the target;
see :func:`compact_districts`), ``county`` and ``total`` (the whole run).

For each level, quantity and unit (a set of blocks) the block draws are summed draw by draw;
the unit's estimate is the posterior mean of the summed draws, its 90% interval the 5% and 95%
quantiles of the summed draws (``inverted_cdf``: actual draw values, as ``cvap-aggregate``
publishes them), and it is covered when ``lo <= truth <= hi``. Equal-tailed intervals of
discrete counts over-cover, so each unit also gets a randomized PIT value
``u = P(X < t) + V P(X = t)`` with ``V ~ Uniform(0, 1)`` (:func:`models.evaluate.randomized_pit`);
``0.05 <= u <= 0.95`` is the PIT coverage of a calibrated forecast, 90% in expectation.

Only evaluation code calls this module: it reads the truth. Units without frame population
(empty blocks) are not scored: their counts are zero by construction.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from models.evaluate import QUANTITIES, randomized_pit
from pipeline_common.errors import InputError

DISTRICT_TARGETS: tuple[int, ...] = (300, 1_000, 3_000, 10_000, 30_000)
INTERVAL_LEVEL = 0.9
# The quantile rule of cvap-aggregate (privacy.aggregate.aggregate): bounds are draw values.
QUANTILE_METHOD = "inverted_cdf"
# Block-group ids are the first 12 characters of a 15-character block GEOID.
BLOCK_GROUP_ID_LENGTH = 12
UNIT_COLUMNS = (
    "level",
    "quantity",
    "unit",
    "n_blocks",
    "population",
    "estimate",
    "lo90",
    "hi90",
    "truth",
    "error",
    "width",
    "pit",
    "covered",
    "pit_covered",
)


def district_level(target: int) -> str:
    """Level name of compact districts of about ``target`` persons (``district_300``)."""
    return f"district_{int(target)}"


def level_names(district_targets: Sequence[int] = DISTRICT_TARGETS) -> list[str]:
    """Levels from the smallest to the largest unit, in scoring (and table) order."""
    return [
        "block",
        "block_group",
        "tract",
        *(district_level(t) for t in district_targets),
        "county",
        "total",
    ]


def block_geography(geography: pd.DataFrame, population: pd.Series) -> pd.DataFrame:
    """The block table the scoring needs, in GEOID order.

    Parameters
    ----------
    geography
        One row per block with ``block_id, tract_id, county_id`` and optionally
        ``block_group_id`` (``world/geography.parquet``). Without a block-group column the
        block group is the first 12 characters of the 15-character block GEOID.
    population
        Frame population per block, indexed by ``block_id`` (public counts). Blocks missing
        from it have population 0.

    Returns
    -------
    pandas.DataFrame
        ``block_id, block_group_id, tract_id, county_id, population`` (strings and int),
        sorted by ``block_id``.
    """
    table = geography.copy()
    for column in ("block_id", "tract_id", "county_id"):
        if column not in table.columns:
            raise InputError(
                "geography table",
                column,
                f"required column missing (found: {', '.join(map(str, table.columns))})",
                "pass world/geography.parquet of the run",
            )
        table[column] = table[column].astype(str)
    if "block_group_id" not in table.columns:
        table["block_group_id"] = table["block_id"].str[:BLOCK_GROUP_ID_LENGTH]
    table["block_group_id"] = table["block_group_id"].astype(str)
    if table["block_id"].duplicated().any():
        duplicate = table.loc[table["block_id"].duplicated(), "block_id"].iloc[0]
        raise InputError(
            "geography table", "block_id", f"block {duplicate} listed twice", "one row per block"
        )
    population = population.copy()
    population.index = population.index.astype(str)
    table["population"] = table["block_id"].map(population).fillna(0).astype(np.int64).to_numpy()
    columns = ["block_id", "block_group_id", "tract_id", "county_id", "population"]
    return table[columns].sort_values("block_id", kind="stable").reset_index(drop=True)


def compact_districts(blocks: pd.DataFrame, target: int) -> pd.Series:
    """Compact districts of about ``target`` persons: runs of consecutive blocks by GEOID.

    Blocks are taken in GEOID order (so a district is made of whole block groups and tracts
    wherever they are smaller than the target, as real districts are); a district is closed
    as soon as its population reaches ``target``. A last run that stays below half the target
    joins the district before it (a remainder of a few persons is not a district).

    Parameters
    ----------
    blocks
        ``block_id, population`` (one row per block).
    target
        District population at which a district is closed (>= 1).

    Returns
    -------
    pandas.Series
        District number (0, 1, ...) per block, indexed by ``block_id`` in GEOID order.
    """
    if target < 1:
        raise ValueError(f"district target must be at least 1 person, not {target}")
    ordered = blocks.sort_values("block_id", kind="stable")
    population = ordered["population"].to_numpy(dtype=np.int64)
    district = np.empty(len(population), dtype=np.int64)
    current, running = 0, 0
    for i, persons in enumerate(population):
        district[i] = current
        running += int(persons)
        if running >= target:
            current, running = current + 1, 0
    # `running` now holds the population of the open (last) run, if any.
    if 0 < running < target / 2 and current > 0:
        district[district == current] = current - 1
    return pd.Series(district, index=ordered["block_id"].to_numpy(), name=district_level(target))


def unit_assignments(
    blocks: pd.DataFrame, district_targets: Sequence[int] = DISTRICT_TARGETS
) -> pd.DataFrame:
    """The unit of every block at every level.

    Parameters
    ----------
    blocks
        The output of :func:`block_geography`.
    district_targets
        Target populations of the compact-district levels.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``block_id`` (GEOID order), one string column per level of
        :func:`level_names`.
    """
    blocks = blocks.sort_values("block_id", kind="stable")
    index = pd.Index(blocks["block_id"].to_numpy(), name="block_id")
    units = pd.DataFrame(
        {
            "block": blocks["block_id"].to_numpy(),
            "block_group": blocks["block_group_id"].to_numpy(),
            "tract": blocks["tract_id"].to_numpy(),
        },
        index=index,
    )
    for target in district_targets:
        number = compact_districts(blocks, target).reindex(index)
        width = max(4, len(str(int(number.max()) if len(number) else 0)))
        units[district_level(target)] = [f"D{target}-{n:0{width}d}" for n in number]
    units["county"] = blocks["county_id"].to_numpy()
    units["total"] = "total"
    return units[level_names(district_targets)]


def draw_matrices(
    draws: pd.DataFrame, block_ids: Sequence[str], source: str = "draws table"
) -> dict[str, np.ndarray]:
    """Block x draw matrices of each quantity, rows in the order of ``block_ids``.

    Blocks of ``block_ids`` without draws get zeros (the caller checks that they are empty);
    blocks in the draws but not in ``block_ids`` are an error.

    Raises
    ------
    InputError
        If columns are missing, the draws name unknown blocks, or a block has a draw twice.
    """
    missing = [c for c in ("draw", "block_id", *QUANTITIES) if c not in draws.columns]
    if missing:
        raise InputError(
            source,
            ", ".join(missing),
            "required column(s) missing",
            "use published/draws.parquet or model/block_draws.parquet of this pipeline",
        )
    ids = pd.Index([str(b) for b in block_ids])
    frame = draws.assign(block_id=draws["block_id"].astype(str))
    unknown = pd.Index(frame["block_id"].unique()).difference(ids)
    if len(unknown):
        raise InputError(
            source,
            "block_id",
            f"{len(unknown)} blocks not in the geography (e.g. {list(unknown[:3])})",
            "score draws and geography of the same run",
        )
    if frame.duplicated(["block_id", "draw"]).any():
        raise InputError(
            source, "draw, block_id", "a block has the same draw twice", "one row per draw/block"
        )
    out = {}
    for quantity in QUANTITIES:
        wide = frame.pivot(index="block_id", columns="draw", values=quantity)
        wide = wide.reindex(ids)
        # A block with some draws but not all is a broken table, not an empty block.
        partial = wide.isna().any(axis=1) & wide.notna().any(axis=1)
        if partial.any():
            raise InputError(
                source,
                quantity,
                f"block {partial[partial].index[0]} lacks some draws",
                "regenerate the draws (every block has every draw)",
            )
        out[quantity] = wide.fillna(0).to_numpy(dtype=np.int64)
    return out


def sum_draws(matrix: np.ndarray, unit_codes: np.ndarray, n_units: int) -> np.ndarray:
    """Sum the rows of a block x draw ``matrix`` into ``n_units`` units, draw by draw."""
    summed = np.zeros((n_units, matrix.shape[1]), dtype=np.int64)
    np.add.at(summed, unit_codes, matrix)
    return summed


def score_unit_draws(
    summed: np.ndarray,
    truth: np.ndarray,
    rng: np.random.Generator,
    level: float = INTERVAL_LEVEL,
) -> dict[str, np.ndarray]:
    """Estimate, equal-tailed interval, coverage and randomized PIT of each unit.

    Parameters
    ----------
    summed
        Unit x draw matrix of summed integer draws.
    truth
        True count of each unit.
    rng
        Source of the PIT's uniform ``V`` (one number per unit, in row order).
    level
        Nominal interval level (0.9: the 5% and 95% quantiles).

    Returns
    -------
    dict
        Arrays ``estimate, lo90, hi90, truth, error, width, pit, covered, pit_covered``.
    """
    tail = (1 - level) / 2
    truth = np.asarray(truth, dtype=np.int64)
    estimate = summed.mean(axis=1)
    lo, hi = np.quantile(summed, [tail, 1 - tail], axis=1, method=QUANTILE_METHOD)
    pit = randomized_pit(summed, truth, rng)
    return {
        "estimate": estimate,
        "lo90": lo,
        "hi90": hi,
        "truth": truth,
        "error": estimate - truth,
        "width": hi - lo,
        "pit": pit,
        "covered": (lo <= truth) & (truth <= hi),
        "pit_covered": (pit >= tail) & (pit <= 1 - tail),
    }


def score_levels(
    draws: pd.DataFrame,
    truth: pd.DataFrame,
    blocks: pd.DataFrame,
    rng: np.random.Generator,
    district_targets: Sequence[int] = DISTRICT_TARGETS,
    level: float = INTERVAL_LEVEL,
    draws_source: str = "draws table",
) -> pd.DataFrame:
    """Score one run's block draws against the truth at every level.

    Parameters
    ----------
    draws
        ``draw, block_id, citizens, noncitizens, cvap`` (one row per draw and block).
    truth
        True counts per block: ``block_id, citizens, noncitizens, cvap``
        (:func:`models.evaluate.truth_blocks`); blocks missing from it count zero.
    blocks
        :func:`block_geography` of the run (its population decides the districts and which
        units are scored: those with population > 0).
    rng
        Source of the randomized PIT. Uniforms are drawn level by level (in
        :func:`level_names` order), quantity by quantity (``citizens, noncitizens, cvap``),
        one per scored unit in unit order, so results are reproducible from the seed.
    district_targets
        Target populations of the compact-district levels.
    level
        Nominal interval level.
    draws_source
        Name of the draws file, for error messages.

    Returns
    -------
    pandas.DataFrame
        One row per level, quantity and unit with the columns of ``UNIT_COLUMNS``.

    Raises
    ------
    InputError
        If the draws or the truth do not match the geography.
    """
    blocks = blocks.sort_values("block_id", kind="stable").reset_index(drop=True)
    block_ids = blocks["block_id"].to_numpy()
    matrices = draw_matrices(draws, block_ids, draws_source)
    with_draws = set(draws["block_id"].astype(str))
    populated = blocks["population"].to_numpy() > 0
    lacking = [b for b, p in zip(block_ids, populated, strict=True) if p and b not in with_draws]
    if lacking:
        raise InputError(
            draws_source,
            "block_id",
            f"{len(lacking)} populated blocks have no draws (e.g. {lacking[:3]})",
            "score the draws of the same run as the geography and frame",
        )
    truth_table = truth.assign(block_id=truth["block_id"].astype(str)).set_index("block_id")
    unknown = truth_table.index.difference(pd.Index(block_ids))
    if len(unknown):
        raise InputError(
            "truth",
            "block_id",
            f"{len(unknown)} blocks not in the geography (e.g. {list(unknown[:3])})",
            "score truth and geography of the same run",
        )
    true_counts = truth_table.reindex(block_ids)[list(QUANTITIES)].fillna(0).astype(np.int64)
    persons_without_frame = (~populated) & (true_counts.to_numpy().sum(axis=1) > 0)
    if persons_without_frame.any():
        raise InputError(
            "truth",
            "block_id",
            f"block {block_ids[persons_without_frame.argmax()]} has true persons but no frame "
            "population",
            "restrict the truth to frame persons (models.evaluate.truth_blocks with frame ids)",
        )
    units = unit_assignments(blocks, district_targets)
    population = blocks["population"].to_numpy(dtype=np.int64)
    frames = []
    for level_name in level_names(district_targets):
        codes, labels = pd.factorize(units[level_name].to_numpy(), sort=True)
        n_units = len(labels)
        unit_population = np.bincount(codes, weights=population, minlength=n_units)
        n_blocks = np.bincount(codes, minlength=n_units)
        scored = unit_population > 0
        for quantity in QUANTITIES:
            summed = sum_draws(matrices[quantity], codes, n_units)[scored]
            unit_truth = np.bincount(
                codes, weights=true_counts[quantity].to_numpy(), minlength=n_units
            )[scored]
            result = score_unit_draws(summed, np.rint(unit_truth).astype(np.int64), rng, level)
            frames.append(
                pd.DataFrame(
                    {
                        "level": level_name,
                        "quantity": quantity,
                        "unit": np.asarray(labels, dtype=object)[scored],
                        "n_blocks": n_blocks[scored].astype(np.int64),
                        "population": unit_population[scored].astype(np.int64),
                        **result,
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)[list(UNIT_COLUMNS)]


def wilson_interval(covered: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (stays inside [0, 1], also at 0 or n)."""
    if n == 0:
        return math.nan, math.nan
    p = covered / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _summary_row(units: pd.DataFrame) -> dict:
    """Coverage, bias, error and width of a set of scored units (one level and quantity)."""
    n = len(units)
    n_covered = int(units["covered"].sum())
    coverage = n_covered / n if n else math.nan
    truth_sum = float(units["truth"].sum())
    low, high = wilson_interval(n_covered, n)
    return {
        "n_units": n,
        "coverage": coverage,
        # Binomial, as if units were independent: units of one replicate share the model's
        # errors, so these understate the uncertainty of the pooled coverage.
        "coverage_se": math.sqrt(coverage * (1 - coverage) / n) if n else math.nan,
        "coverage_lo95": low,
        "coverage_hi95": high,
        "pit_coverage": float(units["pit_covered"].mean()) if n else math.nan,
        "bias": float(units["error"].mean()) if n else math.nan,
        # The same at every level of a run (each level partitions the same blocks): the
        # relative error of the run total, pooled.
        "rel_bias_sum": float(units["error"].sum()) / truth_sum if truth_sum > 0 else math.nan,
        "mae": float(units["error"].abs().mean()) if n else math.nan,
        "rmse": float(np.sqrt(np.mean(np.square(units["error"].to_numpy(dtype=float)))))
        if n
        else math.nan,
        "mean_width": float(units["width"].mean()) if n else math.nan,
        "rel_width": float(units["width"].sum()) / truth_sum if truth_sum > 0 else math.nan,
        "mean_population": float(units["population"].mean()) if n else math.nan,
    }


def _ordered(table: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Sort a per-level table by level order (small to large units), then quantity order."""
    level_rank = {name: i for i, name in enumerate(_levels_in(table))}
    quantity_rank = {q: i for i, q in enumerate(QUANTITIES)}
    rank = table.assign(
        _level=table["level"].map(level_rank), _quantity=table["quantity"].map(quantity_rank)
    )
    sort_keys = [k for k in keys if k not in ("level", "quantity")] + ["_level", "_quantity"]
    return rank.sort_values(sort_keys, kind="stable").drop(columns=["_level", "_quantity"])


def _levels_in(table: pd.DataFrame) -> list[str]:
    """The levels present in ``table``, in level order (districts by their target)."""
    present = set(table["level"])
    targets = sorted(int(name.split("_")[1]) for name in present if name.startswith("district_"))
    return [name for name in level_names(targets) if name in present]


def summarize_levels(units: pd.DataFrame) -> pd.DataFrame:
    """Per level and quantity of one run's :func:`score_levels` table: coverage and errors.

    Returns
    -------
    pandas.DataFrame
        ``level, quantity, n_units, coverage, coverage_se, coverage_lo95, coverage_hi95,
        pit_coverage, bias, rel_bias_sum, mae, rmse, mean_width, rel_width, mean_population``.
    """
    rows = [
        {"level": level_name, "quantity": quantity, **_summary_row(group)}
        for (level_name, quantity), group in units.groupby(["level", "quantity"], sort=False)
    ]
    return _ordered(pd.DataFrame(rows), ["level", "quantity"]).reset_index(drop=True)


def pool_replicates(units: pd.DataFrame) -> pd.DataFrame:
    """Pool several replicates' unit tables into one row per method, level and quantity.

    Pooling is what makes the county and run-total levels measurable: one run has a handful
    of counties and a single total.

    Parameters
    ----------
    units
        :func:`score_levels` rows of every replicate and method, with the extra columns
        ``method`` and ``replicate``.

    Returns
    -------
    pandas.DataFrame
        ``method, level, quantity, n_units, n_replicates, coverage, coverage_se`` (binomial
        standard error), ``coverage_lo95, coverage_hi95`` (Wilson 95% interval), ``pit_coverage,
        bias, rel_bias_sum, mae, mean_width, rel_width`` (summed widths over summed truth),
        ``mean_population, replicates_covered`` (only for ``total``: replicates whose run-total
        interval holds the truth; missing elsewhere).
    """
    for column in ("method", "replicate"):
        if column not in units.columns:
            raise ValueError(f"pool_replicates needs a '{column}' column in the unit table")
    rows = []
    for (method, level_name, quantity), group in units.groupby(
        ["method", "level", "quantity"], sort=False
    ):
        row = {
            "method": method,
            "level": level_name,
            "quantity": quantity,
            **_summary_row(group),
            "n_replicates": int(group["replicate"].nunique()),
        }
        if level_name == "total":
            # One total per replicate: covered replicates out of n_replicates.
            row["replicates_covered"] = int(group.groupby("replicate")["covered"].all().sum())
        rows.append(row)
    pooled = pd.DataFrame(rows)
    if "replicates_covered" not in pooled.columns:
        pooled["replicates_covered"] = pd.NA
    pooled["replicates_covered"] = pooled["replicates_covered"].astype("Int64")
    columns = [
        "method",
        "level",
        "quantity",
        "n_units",
        "n_replicates",
        "coverage",
        "coverage_se",
        "coverage_lo95",
        "coverage_hi95",
        "pit_coverage",
        "bias",
        "rel_bias_sum",
        "mae",
        "mean_width",
        "rel_width",
        "mean_population",
        "replicates_covered",
    ]
    method_order = {m: i for i, m in enumerate(dict.fromkeys(units["method"]))}
    pooled = _ordered(pooled, ["method", "level", "quantity"])
    pooled = pooled.sort_values(
        "method", key=lambda s: s.map(method_order), kind="stable"
    ).reset_index(drop=True)
    return pooled[columns]
