"""Synthetic geography: real counties, scaled, split into tracts, block groups and blocks.

Counties come from the Census CVAP county table (ACS 2009-2013): each county keeps its real
total, adult share, noncitizen share and adult noncitizen share, scaled by one factor. Blocks
have realistic sizes (lognormal, tens of persons with a tail of a few hundred) and carry a
noncitizen *propensity* (tract gamma x block lognormal) that later clusters immigrant
households: many blocks with none, a long tail of blocks with many.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline_common.errors import InputError

COUNTY_TABLE = "census_cvap/cvap_acs2009_2013_county_totals.csv"
COUNTY_COLUMNS = (
    "fips",
    "geoname",
    "tot_est",
    "adu_est",
    "cit_est",
    "cvap_est",
    "noncit_share",
    "adult_noncit_share",
)


def load_county_table(data_dir: str | Path) -> pd.DataFrame:
    """Read the real county CVAP table (fips kept as 5-character text).

    Raises
    ------
    InputError
        If the file is missing or lacks a required column.
    """
    path = Path(data_dir) / COUNTY_TABLE
    if not path.exists():
        raise InputError(
            str(path),
            "data_dir",
            "the county CVAP table does not exist",
            "set data_dir to the folder that holds census_cvap/",
        )
    table = pd.read_csv(path, dtype={"fips": str})
    missing = [c for c in COUNTY_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(
            str(path),
            ", ".join(missing),
            "required column(s) missing",
            "restore the vendored Census CVAP table",
        )
    table["fips"] = table["fips"].str.zfill(5)
    return table


def county_targets(
    table: pd.DataFrame, counties: list[str], scale: float, file: str
) -> pd.DataFrame:
    """Scaled targets of the chosen counties: persons, adults, noncitizens (all and adult).

    Parameters
    ----------
    table
        From :func:`load_county_table`.
    counties
        5-digit FIPS codes, in the order they are generated.
    scale
        Persons per real person (e.g. 0.03).
    file
        Name of the table, for error messages.

    Returns
    -------
    DataFrame with one row per county: ``county_id, geoname, persons, adult_share,
    noncitizen_share, adult_noncitizen_share, child_noncitizen_share`` (the last is the share
    of children who are noncitizens, implied by the table's total and adult shares).
    """
    indexed = table.set_index("fips")
    unknown = [c for c in counties if c not in indexed.index]
    if unknown:
        raise InputError(
            file,
            "synthetic.counties",
            f"FIPS code(s) {unknown} not in the county table",
            "use 5-digit state+county FIPS codes present in census_cvap (e.g. '12086')",
        )
    if len(set(counties)) != len(counties):
        raise InputError(file, "synthetic.counties", "a county is listed twice", "list each once")
    rows = indexed.loc[counties]
    persons = np.maximum(np.rint(rows["tot_est"].to_numpy(float) * scale).astype(np.int64), 1)
    adult_share = (rows["adu_est"] / rows["tot_est"]).to_numpy(float)
    noncit = rows["noncit_share"].to_numpy(float)
    adult_noncit = rows["adult_noncit_share"].to_numpy(float)
    child_share = 1.0 - adult_share
    # Children who are noncitizens: total noncitizens minus adult noncitizens, per child.
    child_noncit = np.clip(
        (noncit - adult_noncit * adult_share) / np.maximum(child_share, 1e-9), 0.0, 1.0
    )
    return pd.DataFrame(
        {
            "county_id": list(counties),
            "geoname": rows["geoname"].to_numpy(),
            "persons": persons,
            "adult_share": adult_share,
            "noncitizen_share": noncit,
            "adult_noncitizen_share": adult_noncit,
            "child_noncitizen_share": child_noncit,
        }
    )


def build_blocks(targets: pd.DataFrame, geo_cfg: dict, rng: np.random.Generator) -> pd.DataFrame:
    """Blocks of each county with a target size and a noncitizen propensity.

    Block sizes are lognormal (median ``block_size_median``, log-sd ``block_size_sigma``,
    capped at ``block_size_max``), drawn until the county's persons are covered; the last
    block absorbs the remainder. Consecutive blocks form block groups and tracts (so tracts
    are contiguous in the layout). The propensity is a tract gamma (shape
    ``tract_propensity_shape``, mean 1) times a block lognormal (log-sd
    ``block_propensity_sigma``, mean 1).

    Returns
    -------
    DataFrame ``block_id, block_group_id, tract_id, county_id, county_index, target_persons,
    propensity`` in geographic order.
    """
    median = float(geo_cfg["block_size_median"])
    sigma = float(geo_cfg["block_size_sigma"])
    size_max = int(geo_cfg["block_size_max"])
    size_min = int(geo_cfg["block_size_min"])
    per_bg = int(geo_cfg["blocks_per_block_group"])
    bg_per_tract = int(geo_cfg["block_groups_per_tract"])
    frames = []
    for county_index, (county_id, persons) in enumerate(
        zip(targets["county_id"], targets["persons"], strict=True)
    ):
        mean_size = median * np.exp(sigma**2 / 2)
        n_draw = int(persons / mean_size * 1.3) + 10
        sizes = np.clip(
            np.rint(median * np.exp(sigma * rng.standard_normal(n_draw))), size_min, size_max
        )
        sizes = sizes.astype(np.int64)
        cumulative = np.cumsum(sizes)
        while cumulative[-1] < persons:  # rare: draw more
            extra = np.clip(
                np.rint(median * np.exp(sigma * rng.standard_normal(n_draw))), size_min, size_max
            )
            sizes = np.concatenate([sizes, extra.astype(np.int64)])
            cumulative = np.cumsum(sizes)
        n_blocks = int(np.searchsorted(cumulative, persons, side="left")) + 1
        sizes = sizes[:n_blocks].copy()
        sizes[-1] = persons - (cumulative[n_blocks - 2] if n_blocks > 1 else 0)
        if n_blocks > 1 and sizes[-1] < size_min:  # fold a tiny remainder into the previous block
            sizes[-2] += sizes[-1]
            sizes = sizes[:-1]
            n_blocks -= 1
        blocks_per_tract = per_bg * bg_per_tract
        position = np.arange(n_blocks)
        tract_index = position // blocks_per_tract
        bg_index = (position % blocks_per_tract) // per_bg
        block_in_bg = position % per_bg
        n_tracts = int(tract_index[-1]) + 1
        # Tract codes like real ones (0001.00 -> "000100"), spaced as the Bureau spaces them.
        tract_codes = np.array([f"{(t + 1) * 100:06d}" for t in range(n_tracts)])
        tract_id = np.char.add(county_id, tract_codes[tract_index])
        bg_digit = (bg_index + 1).astype(str)
        block_group_id = np.char.add(tract_id, bg_digit)
        block_number = np.char.zfill((block_in_bg + 1).astype(str), 3)
        block_id = np.char.add(block_group_id, block_number)
        tract_shape = float(geo_cfg["tract_propensity_shape"])
        block_sigma = float(geo_cfg["block_propensity_sigma"])
        tract_effect = rng.gamma(tract_shape, 1.0 / tract_shape, n_tracts)
        block_effect = np.exp(block_sigma * rng.standard_normal(n_blocks) - block_sigma**2 / 2)
        frames.append(
            pd.DataFrame(
                {
                    "block_id": block_id.astype(object),
                    "block_group_id": block_group_id.astype(object),
                    "tract_id": tract_id.astype(object),
                    "county_id": county_id,
                    "county_index": county_index,
                    "target_persons": sizes,
                    "propensity": tract_effect[tract_index] * block_effect,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _hilbert_xy(order: int, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cell (x, y) of positions ``index`` along a Hilbert curve on a 2**order square."""
    x = np.zeros_like(index)
    y = np.zeros_like(index)
    t = index.copy()
    s = 1
    side = 1 << order
    while s < side:
        rx = 1 & (t // 2)
        ry = 1 & (t ^ rx)
        # rotate
        flip = ry == 0
        swap_x = np.where(flip & (rx == 1), s - 1 - x, x)
        swap_y = np.where(flip & (rx == 1), s - 1 - y, y)
        x, y = np.where(flip, swap_y, swap_x), np.where(flip, swap_x, swap_y)
        x = x + s * rx
        y = y + s * ry
        t //= 4
        s *= 2
    return x, y


def layout_geography(blocks: pd.DataFrame, gap: float = 4.0) -> pd.DataFrame:
    """Synthetic map coordinates: each county a square plane, blocks as unit squares.

    Blocks are placed along a Hilbert curve in geographic order, so every tract (a run of
    consecutive blocks) is a contiguous, compact region. Counties sit side by side with
    ``gap`` units between them.

    Returns
    -------
    DataFrame ``block_id, block_group_id, tract_id, county_id, x, y, width, height``
    (``x, y`` the centre of the block's square).
    """
    pieces = []
    offset = 0.0
    for _, county in blocks.groupby("county_index", sort=True):
        n = len(county)
        order = max(int(np.ceil(np.log2(np.sqrt(n)))), 0) if n > 1 else 0
        # Fewer cells than the square holds: the Hilbert prefix stays compact.
        cx, cy = _hilbert_xy(order, np.arange(n, dtype=np.int64))
        pieces.append(
            pd.DataFrame(
                {
                    "block_id": county["block_id"].to_numpy(),
                    "block_group_id": county["block_group_id"].to_numpy(),
                    "tract_id": county["tract_id"].to_numpy(),
                    "county_id": county["county_id"].to_numpy(),
                    "x": offset + cx.astype(float) + 0.5,
                    "y": cy.astype(float) + 0.5,
                    "width": 1.0,
                    "height": 1.0,
                }
            )
        )
        offset += float(cx.max() + 1) + gap
    return pd.concat(pieces, ignore_index=True)
