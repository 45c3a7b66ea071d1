"""Aggregate published block draws to user-defined districts, with 90% intervals.

Usage::

    cvap-aggregate --draws results/default/published/draws.parquet \
        --districts my_districts.csv --output district_estimates.csv

The districts file is a CSV with columns ``block_id`` and ``district``. For each district the
block draws are summed per draw, and the estimate (posterior median) and 90% interval are read
from those summed draws: intervals are NOT sums of block intervals, which would be far too wide.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline_common.errors import InputError

QUANTITIES = ("citizens", "noncitizens", "cvap")
TAIL = 0.05


def read_districts(path: str | Path) -> pd.DataFrame:
    """Read and check a block-to-district CSV (columns ``block_id``, ``district``)."""
    path = Path(path)
    if not path.exists():
        raise InputError(
            path,
            "(file)",
            "file not found",
            "give the path of a CSV with columns block_id, district",
        )
    try:
        table = pd.read_csv(path, dtype=str)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(
            path, "(file)", f"not a readable CSV ({exc})", "save it as UTF-8 CSV"
        ) from None
    missing = [c for c in ("block_id", "district") if c not in table.columns]
    if missing:
        raise InputError(
            path,
            ", ".join(missing),
            f"required column(s) missing (found: {', '.join(table.columns)})",
            "add a header line 'block_id,district' and one row per block",
        )
    table["block_id"] = table["block_id"].str.strip()
    if table["block_id"].isna().any() or table["district"].isna().any():
        raise InputError(path, "block_id, district", "empty values", "fill every row")
    duplicated = table["block_id"].duplicated()
    if duplicated.any():
        raise InputError(
            path,
            "block_id",
            f"block {table.loc[duplicated, 'block_id'].iloc[0]} is assigned more than once",
            "assign each block to exactly one district",
        )
    return table[["block_id", "district"]]


def read_draws(path: str | Path) -> pd.DataFrame:
    """Read published block draws and check their columns."""
    path = Path(path)
    if not path.exists():
        raise InputError(
            path, "(file)", "file not found", "give the path of a published draws.parquet"
        )
    draws = pd.read_parquet(path)
    missing = [c for c in ("draw", "block_id", *QUANTITIES) if c not in draws.columns]
    if missing:
        raise InputError(
            path,
            ", ".join(missing),
            "required column(s) missing",
            "use published/draws.parquet from this pipeline",
        )
    draws["block_id"] = draws["block_id"].astype(str)
    return draws


def aggregate(
    draws: pd.DataFrame, districts: pd.DataFrame, districts_file: str = "districts file"
) -> pd.DataFrame:
    """District estimates: per-draw sums, then the median and the 5% / 95% quantiles.

    Raises
    ------
    InputError
        If the district file names blocks that are not in the draws.
    """
    known = set(draws["block_id"].unique())
    unknown = sorted(set(districts["block_id"]) - known)
    if unknown:
        raise InputError(
            districts_file,
            "block_id",
            f"{len(unknown)} block ids not in the published draws (e.g. {unknown[:3]})",
            "use 15-digit census block ids of this release (published/blocks.csv lists them)",
        )
    joined = draws.merge(districts, on="block_id", how="inner")
    sums = joined.groupby(["district", "draw"], sort=True)[list(QUANTITIES)].sum()
    out = []
    for district, per_draw in sums.groupby(level="district", sort=True):
        row: dict = {
            "district": district,
            "blocks": int((districts["district"] == district).sum()),
        }
        for quantity in QUANTITIES:
            values = per_draw[quantity].to_numpy()
            row[f"{quantity}_est"] = int(np.quantile(values, 0.5, method="inverted_cdf"))
            row[f"{quantity}_lo90"] = int(np.quantile(values, TAIL, method="inverted_cdf"))
            row[f"{quantity}_hi90"] = int(np.quantile(values, 1 - TAIL, method="inverted_cdf"))
        out.append(row)
    return pd.DataFrame(out)


def main(argv: list[str] | None = None) -> int:
    """Console script ``cvap-aggregate``; returns the exit status."""
    parser = argparse.ArgumentParser(prog="cvap-aggregate", description=__doc__.splitlines()[0])
    parser.add_argument("--draws", required=True, help="published/draws.parquet")
    parser.add_argument("--districts", required=True, help="CSV with columns block_id, district")
    parser.add_argument("--output", help="CSV to write the district estimates to")
    args = parser.parse_args(argv)
    try:
        districts = read_districts(args.districts)
        result = aggregate(read_draws(args.draws), districts, args.districts)
    except InputError as error:
        print(f"cvap-aggregate: error: {error}", file=sys.stderr)
        return 2
    text = result.to_csv(index=False, lineterminator="\n")
    print(text, end="")
    if args.output:
        from pipeline_common.io import write_text

        write_text(text, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
