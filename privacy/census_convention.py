"""The published estimates in the Census CVAP special tabulation's convention, and as GeoJSON.

Redistricting tools read the Census Bureau's CVAP special tabulation of the ACS (columns
``geoname, lntitle, geoid, lnnumber, tot_est, tot_moe, adu_est, adu_moe, cit_est, cit_moe,
cvap_est, cvap_moe``; one row per geography and line, line 1 being the total). The files built
here follow it, with ``noncit_est, noncit_moe`` appended, one line (``lnnumber`` 1, ``lntitle``
"Total") per geography:

- ``geoid``: the GEOID as a zero-padded string of 15 (blocks), 12 (block groups) or 11 (tracts)
  characters (no summary-level prefix);
- ``tot_est``, ``adu_est``: the census frame's population and voting-age population (public
  counts, published exactly), so ``tot_moe`` and ``adu_moe`` are 0;
- ``cit_est``, ``cvap_est``, ``noncit_est``: the published estimates (posterior means rounded
  top-down; block groups are sums of their blocks, as tracts are);
- ``*_moe``: half the width of the published 90% interval (the 5% and 95% quantiles of the
  draws, summed draws for block groups and tracts), rounded up to a whole person:
  ``ceil((hi90 - lo90) / 2)``. The interval need not be symmetric about the estimate, so
  ``est +- moe`` is the ACS-style reading of it, not the interval itself (``blocks.csv`` and
  ``tracts.csv`` keep ``*_lo90`` / ``*_hi90``).

``blocks.geojson``: a FeatureCollection with one polygon per published block (the synthetic
geography's unit squares) and the block file's columns as properties. The synthetic plane is
not a real place: its coordinates are placed as longitude / latitude degrees with one block
= :data:`DEGREES_PER_UNIT` degree from (0, 0), so GIS software opens the file as WGS 84
(RFC 7946) with sensible shapes.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from pipeline_common.errors import InputError, require_columns

CENSUS_COLUMNS = (
    "geoname",
    "lntitle",
    "geoid",
    "lnnumber",
    "tot_est",
    "tot_moe",
    "adu_est",
    "adu_moe",
    "cit_est",
    "cit_moe",
    "cvap_est",
    "cvap_moe",
    "noncit_est",
    "noncit_moe",
)
# Census name -> this project's quantity.
CENSUS_QUANTITIES = {"cit": "citizens", "cvap": "cvap", "noncit": "noncitizens"}
GEOID_LENGTHS = {"block": 15, "block_group": 12, "tract": 11}
DEGREES_PER_UNIT = 0.001
MOE_RULE = (
    "cit_moe, cvap_moe, noncit_moe = ceil((hi90 - lo90) / 2): half the width of the published "
    "90% interval (5% and 95% quantiles of the posterior draws; of summed block draws for "
    "block groups and tracts), rounded up to a whole person. tot_moe and adu_moe are 0: "
    "population and voting-age population are the census frame's counts, published exactly."
)


def moe_from_interval(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Half the width of ``[low, high]``, rounded up to an integer."""
    width = np.asarray(high, dtype=np.int64) - np.asarray(low, dtype=np.int64)
    return (width + 1) // 2


def tract_name(tract_code: str) -> str:
    """``"000100"`` -> ``"1"``; ``"000101"`` -> ``"1.01"`` (the Census tract name)."""
    whole, decimal = int(tract_code[:4]), tract_code[4:]
    return f"{whole}" if decimal == "00" else f"{whole}.{decimal}"


def geonames(geoids: pd.Series, level: str, county_names: dict[str, str]) -> pd.Series:
    """Census-style names: ``Block 1001, Block Group 1, Census Tract 1, X County, State``."""
    county = geoids.str[:5].map(lambda c: county_names.get(c, f"County {c}"))
    tract = "Census Tract " + geoids.str[5:11].map(tract_name)
    parts = [tract, county]
    if level in ("block_group", "block"):
        parts.insert(0, "Block Group " + geoids.str[11:12])
    if level == "block":
        parts.insert(0, "Block " + geoids.str[11:15])
    out = parts[0]
    for part in parts[1:]:
        out = out + ", " + part
    return out


def census_table(
    table: pd.DataFrame,
    id_column: str,
    level: str,
    adults: np.ndarray,
    county_names: dict[str, str] | None = None,
) -> pd.DataFrame:
    """One level's published table in the Census CVAP convention.

    Parameters
    ----------
    table
        ``{id_column}, population`` and ``{q}_est, {q}_lo90, {q}_hi90`` for ``citizens,
        noncitizens, cvap`` (a published block, block-group or tract table).
    id_column
        ``block_id``, ``block_group_id`` or ``tract_id``.
    level
        ``block``, ``block_group`` or ``tract`` (GEOID length 15, 12 or 11).
    adults
        Voting-age population of each row (frame counts).
    county_names
        County FIPS -> name (``"Miami-Dade County, Florida"``); ``"County {fips}"`` if absent.

    Raises
    ------
    InputError
        If a GEOID does not have the level's length.
    """
    require_columns(table, [id_column, "population"], f"published {level} table")
    geoid = table[id_column].astype(str)
    length = GEOID_LENGTHS[level]
    wrong = geoid.str.len() != length
    if wrong.any():
        raise InputError(
            f"published {level} table",
            id_column,
            f"GEOID {geoid[wrong].iloc[0]!r} is not {length} characters",
            "keep GEOIDs as zero-padded strings",
        )
    out = pd.DataFrame(
        {
            "geoname": geonames(geoid, level, county_names or {}).to_numpy(),
            "lntitle": "Total",
            "geoid": geoid.to_numpy(),
            "lnnumber": 1,
            "tot_est": table["population"].to_numpy(dtype=np.int64),
            "tot_moe": 0,
            "adu_est": np.asarray(adults, dtype=np.int64),
            "adu_moe": 0,
        }
    )
    for name, quantity in CENSUS_QUANTITIES.items():
        out[f"{name}_est"] = table[f"{quantity}_est"].to_numpy(dtype=np.int64)
        out[f"{name}_moe"] = moe_from_interval(
            table[f"{quantity}_lo90"].to_numpy(), table[f"{quantity}_hi90"].to_numpy()
        )
    return out[list(CENSUS_COLUMNS)]


def blocks_geojson(census_blocks: pd.DataFrame, geography: pd.DataFrame) -> bytes:
    """``blocks.geojson``: one polygon per row of ``census_blocks`` (its columns as properties).

    Parameters
    ----------
    census_blocks
        :func:`census_table` of the blocks.
    geography
        ``world/geography.parquet`` (``block_id, x, y, width, height``: each block's square).

    Raises
    ------
    InputError
        If a published block has no square in the geography.
    """
    require_columns(geography, ["block_id", "x", "y", "width", "height"], "world/geography.parquet")
    squares = geography.assign(block_id=geography["block_id"].astype(str)).set_index("block_id")
    missing = pd.Index(census_blocks["geoid"]).difference(squares.index)
    if len(missing):
        raise InputError(
            "world/geography.parquet",
            "block_id",
            f"{len(missing)} published blocks have no square (e.g. {list(missing[:3])})",
            "publish with the geography of the same run",
        )
    box = squares.loc[census_blocks["geoid"], ["x", "y", "width", "height"]].to_numpy(float)
    x0 = np.round((box[:, 0] - box[:, 2] / 2) * DEGREES_PER_UNIT, 6)
    x1 = np.round((box[:, 0] + box[:, 2] / 2) * DEGREES_PER_UNIT, 6)
    y0 = np.round((box[:, 1] - box[:, 3] / 2) * DEGREES_PER_UNIT, 6)
    y1 = np.round((box[:, 1] + box[:, 3] / 2) * DEGREES_PER_UNIT, 6)
    properties = census_blocks.astype(object).to_dict(orient="records")
    features = []
    for i, props in enumerate(properties):
        # Exterior ring counter-clockwise, first point repeated (RFC 7946, section 3.1.6).
        ring = [
            [float(x0[i]), float(y0[i])],
            [float(x1[i]), float(y0[i])],
            [float(x1[i]), float(y1[i])],
            [float(x0[i]), float(y1[i])],
            [float(x0[i]), float(y0[i])],
        ]
        features.append(
            {
                "type": "Feature",
                "id": props["geoid"],
                "properties": {
                    k: (v.item() if isinstance(v, np.generic) else v) for k, v in props.items()
                },
                "geometry": {"type": "Polygon", "coordinates": [ring]},
            }
        )
    collection = {
        "type": "FeatureCollection",
        "name": "cvap_blocks",
        "features": features,
    }
    return (json.dumps(collection, ensure_ascii=False, separators=(",", ":")) + "\n").encode(
        "utf-8"
    )


def county_names_from_table(table: pd.DataFrame | None) -> dict[str, str]:
    """FIPS -> geoname of the vendored Census county table (``fips, geoname``), if given."""
    if table is None or not {"fips", "geoname"} <= set(table.columns):
        return {}
    return dict(
        zip(table["fips"].astype(str).str.zfill(5), table["geoname"].astype(str), strict=True)
    )
