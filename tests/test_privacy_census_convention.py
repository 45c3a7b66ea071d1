"""The Census-convention files and the block GeoJSON."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

from pipeline_common.errors import InputError
from privacy.census_convention import (
    CENSUS_COLUMNS,
    blocks_geojson,
    census_table,
    geonames,
    moe_from_interval,
    tract_name,
)

BLOCKS = ["010010201001000", "010010201001001", "010010202002000"]


def published_blocks() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "block_id": BLOCKS,
            "population": [10, 20, 5],
            "citizens_est": [9, 15, 5],
            "citizens_lo90": [8, 12, 5],
            "citizens_hi90": [10, 19, 5],
            "noncitizens_est": [1, 5, 0],
            "noncitizens_lo90": [0, 1, 0],
            "noncitizens_hi90": [2, 8, 0],
            "cvap_est": [7, 10, 4],
            "cvap_lo90": [6, 8, 3],
            "cvap_hi90": [8, 13, 5],
        }
    )


def test_census_table_columns_geoids_and_moe():
    table = census_table(
        published_blocks(),
        "block_id",
        "block",
        np.array([8, 12, 4]),
        {"01001": "Autauga County, Alabama"},
    )
    assert tuple(table.columns) == CENSUS_COLUMNS
    assert list(table["geoid"]) == BLOCKS
    assert list(table["cit_moe"]) == [1, 4, 0]  # ceil((hi - lo) / 2)
    assert list(table["tot_moe"]) == [0, 0, 0] and list(table["adu_est"]) == [8, 12, 4]
    assert table["geoname"].iloc[0] == (
        "Block 1000, Block Group 1, Census Tract 201, Autauga County, Alabama"
    )
    # Written and read back as a user's script would: GEOIDs stay 15-character strings.
    text = table.to_csv(index=False)
    back = pd.read_csv(io.StringIO(text), dtype={"geoid": str})
    assert list(back["geoid"]) == BLOCKS


def test_geoid_length_is_checked_and_names():
    bad = published_blocks().assign(block_id=["10010201001000", *BLOCKS[1:]])
    with pytest.raises(InputError, match="not 15 characters"):
        census_table(bad, "block_id", "block", np.zeros(3))
    assert tract_name("000100") == "1" and tract_name("020105") == "201.05"
    names = geonames(pd.Series(["010010201001"]), "block_group", {})
    assert names.iloc[0] == "Block Group 1, Census Tract 201, County 01001"
    assert list(moe_from_interval(np.array([0, 3]), np.array([0, 6]))) == [0, 2]


def test_geojson_is_valid_rfc7946():
    table = census_table(published_blocks(), "block_id", "block", np.array([8, 12, 4]))
    geography = pd.DataFrame(
        {"block_id": BLOCKS, "x": [0.5, 1.5, 10.5], "y": [0.5, 0.5, 3.5]}
    ).assign(width=1.0, height=1.0)
    data = json.loads(blocks_geojson(table, geography))
    assert data["type"] == "FeatureCollection" and len(data["features"]) == 3
    for feature, geoid in zip(data["features"], BLOCKS, strict=True):
        assert feature["type"] == "Feature"
        assert feature["properties"]["geoid"] == geoid  # a string, leading zero kept
        assert set(feature["properties"]) == set(CENSUS_COLUMNS)
        geometry = feature["geometry"]
        assert geometry["type"] == "Polygon" and len(geometry["coordinates"]) == 1
        ring = np.array(geometry["coordinates"][0])
        assert ring.shape == (5, 2) and (ring[0] == ring[-1]).all()
        # Exterior ring counter-clockwise: positive shoelace area.
        area = 0.5 * np.sum(ring[:-1, 0] * ring[1:, 1] - ring[1:, 0] * ring[:-1, 1])
        assert area > 0
        assert (np.abs(ring[:, 0]) <= 180).all() and (np.abs(ring[:, 1]) <= 90).all()
    with pytest.raises(InputError, match="no square"):
        blocks_geojson(table, geography.iloc[:2])


def test_geojson_opens_with_a_standard_reader(tmp_path):
    reader = pytest.importorskip("pyogrio", reason="no GDAL-based reader installed")
    table = census_table(published_blocks(), "block_id", "block", np.array([8, 12, 4]))
    geography = pd.DataFrame(
        {"block_id": BLOCKS, "x": [0.5, 1.5, 10.5], "y": [0.5, 0.5, 3.5]}
    ).assign(width=1.0, height=1.0)
    path = tmp_path / "blocks.geojson"
    path.write_bytes(blocks_geojson(table, geography))
    # GDAL's GeoJSON driver (what QGIS and geopandas use), without geopandas itself.
    info = reader.read_info(path)
    assert info["features"] == 3 and info["geometry_type"] == "Polygon"
    assert info["crs"] == "EPSG:4326"
    meta, _, geometry, fields = reader.raw.read(path)
    columns = list(meta["fields"])
    assert set(CENSUS_COLUMNS) <= set(columns)
    assert list(fields[columns.index("geoid")]) == BLOCKS  # text: leading zeros kept
    assert list(fields[columns.index("cit_moe")]) == [1, 4, 0]
    assert all(g is not None for g in geometry)
