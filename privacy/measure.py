"""Privacy measurements: the only view of the linked evidence the model may read.

``mode: zcdp`` (default) releases, for each configured table, every cell of the table's full
domain (geography x age group x pattern categories, zeros included) plus discrete Gaussian
noise, calibrated and accounted by OpenDP; a ledger refuses any table that would overspend the
budget. ``mode: none`` releases the exact block x age x full-pattern table (nonzero cells only)
and is labelled unprotected.

Privacy unit and neighbouring relation (what the guarantee is about): two tabulations are
neighbours when they differ in the evidence pattern of ONE person, that person's block and age
group unchanged. Frame counts by block and age group are public invariants (like census counts),
so they are published exactly. Each table counts every person once, so a change moves one unit
from one cell to another: L2 sensitivity sqrt(2) per table.

Run outside Snakemake: ``python -m privacy.measure --configfile config/scenarios/tiny.yaml``.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline_common.ages import age_group_labels
from pipeline_common.errors import InputError, require_columns
from pipeline_common.rng import stage_rng
from privacy.ledger import PrivacyLedger
from privacy.mechanisms import (
    add_noise as add_discrete_gaussian_noise,
)
from privacy.mechanisms import (
    calibrate_scale,
    discrete_gaussian_std,
    epsilon_at_delta,
    rho_of,
)

log = logging.getLogger(__name__)

L2_SENSITIVITY = math.sqrt(2.0)
NEIGHBOURING_RELATION = (
    "change-one-pattern: two inputs are neighbours when they differ in the evidence pattern "
    "(the linked administrative evidence) of exactly one person, whose block and age group stay "
    "the same; the frame counts by block and age group are invariant (public). Each table "
    "counts every person exactly once, so one change moves one unit between two cells of a "
    "table: L2 sensitivity sqrt(2) per table, d_in = sqrt(2) in every OpenDP privacy map."
)
PUBLIC_INFORMATION = [
    "frame (census enumeration) counts by block and age group (privacy/public_counts.parquet)",
    "the geography: block, tract and county identifiers",
    "the pattern dictionary (model/patterns.parquet: every combination of each source's fixed "
    "label vocabulary, enumerated from the config and never from the data, and their coarse "
    "groups), which defines each table's domain; neighbouring inputs have the same domain",
]
LIMITATIONS = [
    "Frame counts by block and age group are published exactly (invariants); the guarantee "
    "covers the evidence patterns given those counts, not a person's presence or age.",
]
GEO_COLUMNS = {"block": "block_id", "tract": "tract_id", "county": "county_id"}
MEASUREMENT_COLUMNS = [
    "table",
    "geo_level",
    "geo_id",
    "age_group",
    "pattern_level",
    "pattern_id",
    "value",
    "sigma",
]
CELLS_FILE = "model/cells.parquet"
PATTERNS_FILE = "model/patterns.parquet"
GEOGRAPHY_FILE = "world/geography.parquet"


def _check_cells(cells: pd.DataFrame, patterns: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    require_columns(
        cells, ["block_id", "tract_id", "county_id", "age_group", "pattern_id", "count"], CELLS_FILE
    )
    require_columns(patterns, ["pattern_id", "coarse_pattern_id"], PATTERNS_FILE)
    cells = cells.copy()
    cells["age_group"] = cells["age_group"].astype("string")
    unknown_ages = sorted(set(cells["age_group"].dropna()) - set(labels))
    if cells["age_group"].isna().any() or unknown_ages:
        raise InputError(
            CELLS_FILE,
            "age_group",
            f"values outside the configured age groups {labels}: {unknown_ages or ['<missing>']}",
            "tabulate every person into one of config['age_groups'] (impute missing ages)",
        )
    counts = pd.to_numeric(cells["count"], errors="coerce")
    if counts.isna().any() or (counts < 0).any() or (counts != np.floor(counts)).any():
        raise InputError(
            CELLS_FILE, "count", "counts must be nonnegative integers", "regenerate the cells"
        )
    cells["count"] = counts.astype(np.int64)
    if patterns["pattern_id"].duplicated().any():
        raise InputError(
            PATTERNS_FILE, "pattern_id", "duplicated pattern ids", "make pattern_id unique"
        )
    unknown = set(cells["pattern_id"]) - set(patterns["pattern_id"])
    if unknown:
        raise InputError(
            CELLS_FILE,
            "pattern_id",
            f"{len(unknown)} pattern ids not in {PATTERNS_FILE} (e.g. {sorted(unknown)[:3]})",
            "regenerate cells and patterns together",
        )
    return cells


def public_counts(
    cells: pd.DataFrame, labels: list[str], geography: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Frame counts by block and age group for every block x age group, zeros included.

    Blocks come from ``geography`` (public) when given, so blocks with nobody enumerated appear
    with population 0; otherwise from the cells.
    """
    if geography is not None:
        require_columns(geography, ["block_id", "tract_id", "county_id"], GEOGRAPHY_FILE)
        blocks = geography[["block_id", "tract_id", "county_id"]].drop_duplicates()
        missing = set(cells["block_id"]) - set(blocks["block_id"])
        if missing:
            raise InputError(
                CELLS_FILE,
                "block_id",
                f"{len(missing)} blocks not in {GEOGRAPHY_FILE} (e.g. {sorted(missing)[:3]})",
                "regenerate the cells from the same synthetic world as the geography",
            )
    else:
        blocks = cells[["block_id", "tract_id", "county_id"]].drop_duplicates()
    if blocks["block_id"].duplicated().any():
        raise InputError(
            GEOGRAPHY_FILE if geography is not None else CELLS_FILE,
            "block_id",
            "a block has more than one tract or county",
            "fix the geography so each block lies in one tract and one county",
        )
    blocks = blocks.sort_values("block_id").reset_index(drop=True)
    grid = blocks.merge(pd.DataFrame({"age_group": labels}), how="cross")
    sums = cells.groupby(["block_id", "age_group"], observed=True)["count"].sum().reset_index()
    out = grid.merge(sums, on=["block_id", "age_group"], how="left")
    out["population"] = out["count"].fillna(0).astype(np.int64)
    out["age_group"] = pd.Categorical(out["age_group"], categories=labels, ordered=True)
    out = out.sort_values(["block_id", "age_group"]).reset_index(drop=True)
    out["age_group"] = out["age_group"].astype(str)
    return out[["block_id", "tract_id", "county_id", "age_group", "population"]]


def exact_table(
    cells: pd.DataFrame,
    patterns: pd.DataFrame,
    counts: pd.DataFrame,
    labels: list[str],
    geo_level: str,
    pattern_level: str,
    include_zeros: bool = True,
) -> pd.DataFrame:
    """Exact counts of one table: geo x age group x pattern categories, sorted.

    With ``include_zeros`` every cell of the full domain is present (the domain comes from
    public information only: the geography in ``counts``, the age groups, the pattern
    dictionary), so which cells are nonzero is not revealed by which rows exist.
    """
    geo_column = GEO_COLUMNS[geo_level]
    pattern_column = "pattern_id" if pattern_level == "full" else "coarse_pattern_id"
    frame = cells
    if pattern_level == "coarse":
        frame = cells.merge(patterns[["pattern_id", "coarse_pattern_id"]], on="pattern_id")
    sums = (
        frame.groupby([geo_column, "age_group", pattern_column], observed=True)["count"]
        .sum()
        .rename("value")
        .reset_index()
        .rename(columns={geo_column: "geo_id", pattern_column: "pattern_id"})
    )
    if include_zeros:
        geo_ids = pd.DataFrame({"geo_id": sorted(counts[geo_column].unique())})
        pattern_ids = pd.DataFrame({"pattern_id": sorted(patterns[pattern_column].unique())})
        grid = geo_ids.merge(pd.DataFrame({"age_group": labels}), how="cross").merge(
            pattern_ids, how="cross"
        )
        sums = grid.merge(sums, on=["geo_id", "age_group", "pattern_id"], how="left")
        sums["value"] = sums["value"].fillna(0)
    sums["value"] = sums["value"].astype(np.int64)
    order = pd.Categorical(sums["age_group"], categories=labels, ordered=True)
    sums = (
        sums.assign(_age=order)
        .sort_values(["geo_id", "_age", "pattern_id"])
        .drop(columns="_age")
        .reset_index(drop=True)
    )
    sums.insert(0, "geo_level", geo_level)
    sums.insert(4, "pattern_level", pattern_level)
    return sums


def measure(
    cells: pd.DataFrame,
    patterns: pd.DataFrame,
    config: dict,
    geography: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Take the configured measurements.

    Parameters
    ----------
    cells, patterns
        ``model/cells.parquet`` and ``model/patterns.parquet`` (exact, internal).
    config
        The validated pipeline config (uses ``seed``, ``age_groups``, ``privacy``).
    geography
        ``world/geography.parquet`` (public) so that empty blocks are part of every domain.

    Returns
    -------
    measurements, public_counts, ledger
        The two tables of the contract and the ledger as JSON-ready data.

    Raises
    ------
    privacy.ledger.BudgetExceededError
        If the configured shares would spend more than ``privacy.rho``; raised before the table
        that would overspend is measured.
    """
    settings = config["privacy"]
    labels = age_group_labels(config["age_groups"])
    cells = _check_cells(cells, patterns, labels)
    counts = public_counts(cells, labels, geography)
    frames = []
    if settings["mode"] == "none":
        table = exact_table(cells, patterns, counts, labels, "block", "full", include_zeros=False)
        table.insert(0, "table", "block_detail")
        table["sigma"] = 0.0
        frames.append(table)
        ledger = {
            "mode": "none",
            "privacy_protected": False,
            "warning": "privacy.mode is 'none': measurements are EXACT, no privacy protection",
            "budget": None,
            "measurements": [
                {
                    "name": "block_detail",
                    "geo_level": "block",
                    "pattern_level": "full",
                    "cells": len(table),
                    "rho": None,
                    "scale": 0.0,
                    "note": "exact counts, nonzero cells only (no privacy loss bound)",
                }
            ],
            "total": {"rho": None, "epsilon": None, "delta": None},
            "remaining_rho": None,
        }
    else:
        ledger_account = PrivacyLedger(float(settings["rho"]), float(settings["delta"]))
        names = [spec["name"] for spec in settings["tables"]]
        if len(set(names)) != len(names):
            raise InputError(
                "config", "privacy.tables.name", f"table names repeat: {names}", "make them unique"
            )
        for spec in settings["tables"]:
            allocated = float(spec["share"]) * float(settings["rho"])
            try:
                scale = calibrate_scale(allocated, L2_SENSITIVITY)
            except Exception as exc:  # OpenDP cannot calibrate (e.g. rho so large it overflows)
                raise InputError(
                    "config",
                    "privacy.rho",
                    f"OpenDP cannot calibrate table '{spec['name']}' at rho={allocated:g} ({exc})",
                    "use a rho between 1e-6 and 100, or mode 'none' for exact tables",
                ) from None
            realized = rho_of(scale, L2_SENSITIVITY)
            table = exact_table(
                cells, patterns, counts, labels, spec["geo_level"], spec["pattern_level"]
            )
            # Charge before any noise is drawn: a refused table never touches the data.
            ledger_account.charge(
                spec["name"],
                realized,
                geo_level=spec["geo_level"],
                pattern_level=spec["pattern_level"],
                share=float(spec["share"]),
                rho_allocated=allocated,
                scale=scale,
                noise_std=discrete_gaussian_std(scale),
                l2_sensitivity=L2_SENSITIVITY,
                cells=len(table),
                mechanism="discrete Gaussian (OpenDP make_gaussian, integer counts, zCDP)",
                noise_source=settings["noise_source"],
            )
            rng = stage_rng(config["seed"], "privacy", spec["name"])
            table["value"] = add_discrete_gaussian_noise(
                table["value"].to_numpy(), scale, settings["noise_source"], rng
            )
            table.insert(0, "table", spec["name"])
            table["sigma"] = discrete_gaussian_std(scale)
            frames.append(table)
            log.info(
                "table %s: %d cells, scale %.4f, rho %.4f",
                spec["name"],
                len(table),
                scale,
                realized,
            )
        ledger = {
            "mode": "zcdp",
            "privacy_protected": True,
            "noise_source": settings["noise_source"],
            "unit": "person",
            "neighbouring_relation": NEIGHBOURING_RELATION,
            "public": PUBLIC_INFORMATION,
            "limitations": LIMITATIONS,
            **ledger_account.to_dict(),
        }
        ledger["budget"]["epsilon"] = epsilon_at_delta(float(settings["rho"]), settings["delta"])
    measurements = pd.concat(frames, ignore_index=True)[MEASUREMENT_COLUMNS]
    measurements["value"] = measurements["value"].astype(np.int64)
    measurements["sigma"] = measurements["sigma"].astype(np.float64)
    return measurements, counts, ledger


def main(argv: list[str] | None = None) -> None:
    """Command line: read the run's cells/patterns/geography, write the privacy outputs."""
    from pipeline_common.cli import config_of, stage_parser
    from pipeline_common.config import run_dir
    from pipeline_common.io import write_json, write_parquet
    from pipeline_common.logs import setup_logging

    parser = stage_parser("privacy.measure", __doc__.splitlines()[0])
    args = parser.parse_args(argv)
    setup_logging()
    config = config_of(args)
    root = run_dir(config)
    geography_path = root / GEOGRAPHY_FILE
    measurements, counts, ledger = measure(
        pd.read_parquet(root / CELLS_FILE),
        pd.read_parquet(root / PATTERNS_FILE),
        config,
        pd.read_parquet(geography_path) if geography_path.exists() else None,
    )
    write_parquet(measurements, Path(root, "privacy", "measurements.parquet"))
    write_parquet(counts, Path(root, "privacy", "public_counts.parquet"))
    write_json(ledger, Path(root, "privacy", "ledger.json"))


if __name__ == "__main__":
    from pipeline_common.errors import run_main

    run_main(main, "privacy.measure")
