""" "Using these estimates": what each published file holds, the reliability rule, and a
district worked from the draws with the same code as ``cvap-aggregate``.

Nothing here is typed by hand about the run: file names and columns are read from
``published/``, the rule from ``published/metadata.json``, and the worked example is computed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# What each published file is for (the writer: privacy/publish.py; docs/CONTRACTS.md).
FILE_NOTES = {
    "blocks.csv": "one row per block with at least one enumerated person: the estimates, "
    "their 90% intervals and the reliability flag",
    "blocks.parquet": "the same table as blocks.csv, typed",
    "tracts.csv": "tracts: sums of their blocks' estimates; intervals from summed draws",
    "counties.csv": "counties, as tracts",
    "draws.parquet": "posterior draws of every block's counts (zeros included): sum these per "
    "district, never the interval ends",
    "cvap_blocks.csv": "blocks in the Census CVAP special tabulation's convention",
    "cvap_block_groups.csv": "block groups (sums of blocks) in the Census CVAP convention",
    "cvap_tracts.csv": "tracts in the Census CVAP convention",
    "blocks.geojson": "the block table with each block's square, for QGIS or geopandas",
    "metadata.json": "config hash, seed, software versions, privacy guarantee, reliability rule, "
    "convergence of the published fit, file checksums",
}
COLUMN_NOTES = {
    "block_id": "block GEOID (15-character string; keep it as text)",
    "tract_id": "tract GEOID (11 characters)",
    "county_id": "county FIPS (5 characters)",
    "population": "enumerated persons (census frame; published exactly)",
    "draw": "draw number (all blocks share it: sum within a draw)",
    "reliability": "high / medium / low / empty (rule below)",
    "privacy_protected": "true when the numbers are post-processing of the noisy measurements",
    "geoid": "zero-padded GEOID string",
    "tot_est": "enumerated persons",
    "adu_est": "persons aged 18 or more (census frame)",
    "citizens": "citizens in this draw",
    "noncitizens": "noncitizens in this draw",
    "cvap": "citizens aged 18 or more in this draw",
}
SUFFIX_NOTES = {
    "_est": "estimate (posterior mean, rounded so that blocks add up to tracts and counties)",
    "_lo90": "lower end of the 90% interval (5% quantile of the draws)",
    "_hi90": "upper end of the 90% interval (95% quantile)",
    "_moe": "margin of error: half the 90% interval's width, rounded up",
}


def _columns(path: Path) -> tuple[list[str], int | None]:
    """Column names and row count of a published file (None rows: not a table)."""
    if path.suffix == ".csv":
        frame = pd.read_csv(path, dtype=str)
        return list(frame.columns), len(frame)
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        meta = pq.ParquetFile(path)
        return list(meta.schema_arrow.names), meta.metadata.num_rows
    if path.suffix == ".geojson":
        data = json.loads(path.read_text(encoding="utf-8"))
        features = data.get("features") or []
        props = list((features[0].get("properties") or {}).keys()) if features else []
        return props, len(features)
    if path.suffix == ".json":
        return list(json.loads(path.read_text(encoding="utf-8")).keys()), None
    return [], None


def describe_column(name: str) -> str:
    """A column's meaning from its name (suffix conventions of the published files)."""
    if name in COLUMN_NOTES:
        return COLUMN_NOTES[name]
    for suffix, note in SUFFIX_NOTES.items():
        if name.endswith(suffix):
            stem = name[: -len(suffix)]
            what = {
                "citizens": "citizens",
                "cit": "citizens",
                "noncitizens": "noncitizens",
                "noncit": "noncitizens",
                "cvap": "CVAP",
            }.get(stem, stem.replace("_", " "))
            return f"{what}: {note}"
    return ""


def published_files(published_dir: str | Path) -> list[dict[str, Any]]:
    """One row per file in ``published/``: name, rows, what it is, its columns."""
    published_dir = Path(published_dir)
    if not published_dir.is_dir():
        return []
    rows = []
    order = list(FILE_NOTES)
    files = sorted(
        (p for p in published_dir.iterdir() if p.is_file()),
        key=lambda p: (order.index(p.name) if p.name in order else len(order), p.name),
    )
    for path in files:
        try:
            columns, n_rows = _columns(path)
        except Exception:  # an unreadable file is listed without its columns
            columns, n_rows = [], None
        rows.append(
            {
                "file": path.name,
                "rows": n_rows,
                "what": FILE_NOTES.get(path.name, ""),
                "columns": columns,
                "column_text": ", ".join(columns) if path.suffix != ".json" else "",
            }
        )
    return rows


def column_glossary(files: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Each distinct column of the published tables once, with its meaning."""
    seen: dict[str, str] = {}
    for row in files:
        if row["file"].endswith(".json"):
            continue
        for column in row["columns"]:
            if column not in seen:
                seen[column] = describe_column(column)
    return [{"column": c, "meaning": m} for c, m in seen.items() if m]


def reliability_rule(metadata: dict) -> dict[str, Any] | None:
    """The published rule, in words, from ``metadata.json``."""
    rule = (metadata or {}).get("reliability_rule")
    if not isinstance(rule, dict):
        return None
    high = rule.get("high_max_relative_width")
    medium = rule.get("medium_max_relative_width")
    min_pop = rule.get("min_population")
    high_min = rule.get("high_min_population")
    parts = [
        f"relative width = {rule.get('measure', 'interval width / population')}",
        f"'high': relative width at most {high:.0%}"
        + (f" and at least {high_min:,} persons" if high_min else ""),
        f"'medium': relative width at most {medium:.0%}"
        + (
            f" (and blocks of {min_pop:,}-{high_min - 1:,} persons that would be 'high')"
            if high_min
            else ""
        ),
        "'low': wider, or fewer than " + f"{min_pop:,} persons",
        "'empty': nobody enumerated",
    ]
    return {"text": "; ".join(parts) + ".", "rule": rule, "has_size_floor": bool(high_min)}


def reliability_check(blocks: pd.DataFrame) -> list[dict[str, Any]]:
    """Blocks per flag with their population range and the share with zero-width intervals."""
    if "reliability" not in blocks:
        return []
    width = np.maximum(
        blocks["citizens_hi90"] - blocks["citizens_lo90"], blocks["cvap_hi90"] - blocks["cvap_lo90"]
    )
    out = []
    for flag in ("high", "medium", "low", "empty"):
        mask = blocks["reliability"].astype(str) == flag
        if not mask.any():
            continue
        pop = blocks.loc[mask, "population"]
        out.append(
            {
                "flag": flag,
                "blocks": int(mask.sum()),
                "persons_min": int(pop.min()),
                "persons_median": float(pop.median()),
                "zero_width": int((width[mask] == 0).sum()),
                "under_50": int((pop < 50).sum()),
            }
        )
    return out


def district_example(
    draws: pd.DataFrame | None, blocks: pd.DataFrame, target: int = 1000
) -> dict[str, Any] | None:
    """A worked district: consecutive blocks in GEOID order of the most populous tract's county
    until ``target`` persons, aggregated by :func:`privacy.aggregate.aggregate` (the code of
    ``cvap-aggregate``), beside the wrong answer (summing the blocks' interval ends)."""
    if draws is None or draws.empty or blocks.empty:
        return None
    from privacy.aggregate import aggregate

    ordered = blocks.sort_values("block_id")
    ordered = ordered[ordered["population"] > 0]
    county = ordered.groupby("county_id")["population"].sum().idxmax()
    part = ordered[ordered["county_id"] == county]
    # Start at the first tract boundary so the example is a whole neighbourhood.
    cumulative = part["population"].cumsum()
    chosen = part[cumulative.shift(fill_value=0) < target]
    if chosen.empty:
        return None
    plan = pd.DataFrame({"block_id": chosen["block_id"].astype(str), "district": "example"})
    needed = draws[draws["block_id"].astype(str).isin(set(plan["block_id"]))].assign(
        block_id=lambda d: d["block_id"].astype(str)
    )
    result = aggregate(needed, plan).iloc[0]
    sums = chosen[[c for c in chosen.columns if c.endswith(("_est", "_lo90", "_hi90"))]].sum()
    return {
        "blocks": len(chosen),
        "first": str(chosen["block_id"].iloc[0]),
        "last": str(chosen["block_id"].iloc[-1]),
        "population": int(chosen["population"].sum()),
        "draws": int(draws["draw"].nunique()),
        "rows": [
            {
                "quantity": label,
                "median": int(result[f"{name}_est"]),
                "lo90": int(result[f"{name}_lo90"]),
                "hi90": int(result[f"{name}_hi90"]),
                "moe": int(result[f"{name}_moe"]),
                "sum_est": int(sums[f"{quantity}_est"]),
                "naive_lo": int(sums[f"{quantity}_lo90"]),
                "naive_hi": int(sums[f"{quantity}_hi90"]),
            }
            for name, quantity, label in (
                ("cit", "citizens", "citizens"),
                ("cvap", "cvap", "CVAP"),
                ("noncit", "noncitizens", "noncitizens"),
            )
        ],
    }


def district_code(example: dict[str, Any] | None) -> str:
    """The recipe in pandas, as a user would type it (block ids of the worked example)."""
    first = example["first"] if example else "<first block GEOID>"
    last = example["last"] if example else "<last block GEOID>"
    return (
        "import numpy as np, pandas as pd\n"
        'draws = pd.read_parquet("published/draws.parquet")\n'
        f'mine = draws[draws["block_id"].between("{first}", "{last}")]  # your district\n'
        'per_draw = mine.groupby("draw")[["citizens", "cvap"]].sum()  # one total per draw\n'
        "low, median, high = np.quantile(per_draw, [0.05, 0.5, 0.95], axis=0,\n"
        '                                method="inverted_cdf")  # as cvap-aggregate does'
    )
