"""Aggregate published block draws to user-defined districts, with 90% intervals.

Usage::

    cvap-aggregate --draws results/default/published/draws.parquet \
        --districts plan.csv --output district_estimates.csv

The districts file is a block assignment file as redistricting tools export it (Dave's
Redistricting, Districtr, Maptitude, the Census Bureau's BAF format): one block per line with
its district, comma or pipe (or tab) delimited, with or without a header row. With a header, the
block column is the one named ``block_id``, ``GEOID20``, ``GEOID``, ``BLOCKID`` ... and the
district column the one named ``district``, ``DISTRICT``, ``assignment`` ... (or the other
column of a two-column file); without one, the first column is the block and the second the
district. GEOIDs are read as text, so leading zeros stay; a 14-digit GEOID (a leading zero lost
by a spreadsheet) is an error that says so; a Census summary-level prefix (``7500000US``) is
removed.

For each district the block draws are summed per draw; the estimate is the median of the
summed draws and the 90% interval their 5% and 95% quantiles (intervals are NOT sums of block
intervals, which would be far too wide). Output columns follow the Census CVAP convention:
``district, blocks, tot_est`` and for ``cit``, ``cvap``, ``noncit``: ``_est, _moe, _lo90,
_hi90``, with ``_moe = ceil((hi90 - lo90) / 2)`` (half the width of the 90% interval, as in
the published ``cvap_*.csv`` files).

Checks (never a silent drop): a block in the plan twice with different districts is an error,
twice with the same district a counted warning (kept once); blocks of the plan unknown to the
draws are an error (``--allow-unknown``: a counted warning, and they are left out); blocks of the
draws that no district holds are an error naming them and the persons they hold, since the
districts' sums would then be partial (``--allow-partial``: a counted warning, e.g. for a plan of
one county out of several); a plan without any block line (empty, or a header only) is an error.
``--output`` must name a file in a writable folder; it is written atomically and only after every
check passed, so a refused plan leaves an existing output untouched.
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline_common.errors import InputError

QUANTITIES = ("citizens", "noncitizens", "cvap")
# Census CVAP names of the quantities, in output order.
CENSUS_NAMES = {"cit": "citizens", "cvap": "cvap", "noncit": "noncitizens"}
TAIL = 0.05
GEOID_LENGTH = 15
BLOCK_COLUMNS = (
    "block_id",
    "geoid20",
    "geoid",
    "geoid10",
    "geoid_20",
    "blockid",
    "blockid20",
    "block_geoid",
    "geocode",
    "geo_id",
    "block",
)
DISTRICT_COLUMNS = (
    "district",
    "district_id",
    "districtid",
    "assignment",
    "dist",
    "district_number",
    "cd",
    "sldu",
    "sldl",
    "ward",
    "plan",
    "value",
)
DIGITS = re.compile(r"^\d+$")


def _read_text(path: Path) -> str:
    if not path.exists():
        raise InputError(
            path,
            "(file)",
            "file not found",
            "give the path of a block assignment file (block GEOID and district per line)",
        )
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(path, "(file)", f"not UTF-8 text ({exc})", "save it as UTF-8") from None


def _delimiter(first_line: str, path: Path) -> str:
    for delimiter in ("|", ",", "\t", ";"):
        if delimiter in first_line:
            return delimiter
    raise InputError(
        path,
        "(delimiter)",
        f"the first line {first_line[:60]!r} has no comma, pipe or tab between block and district",
        "export the plan as a block assignment file: GEOID and district per line, comma or "
        "pipe delimited",
    )


def _pick(columns: list[str], names: tuple[str, ...]) -> str | None:
    lowered = {c.strip().lower(): c for c in columns}
    return next((lowered[n] for n in names if n in lowered), None)


def read_districts(path: str | Path) -> pd.DataFrame:
    """Read and check a block assignment file (see the module docstring).

    Returns
    -------
    pandas.DataFrame
        ``block_id, district`` (strings), one row per line of the file (duplicates kept for
        :func:`check_plan` to count), with ``attrs["notes"]`` listing what was read how.

    Raises
    ------
    InputError
        Unreadable file, no delimiter, no recognisable columns, empty values, GEOIDs that are
        not 15 digits, or a block assigned to two different districts.
    """
    path = Path(path)
    text = _read_text(path)
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise InputError(path, "(file)", "the file is empty", "export the plan again")
    if "\x00" in text:
        raise InputError(
            path,
            "(file)",
            "holds NUL bytes: not a text file (a Parquet or spreadsheet file?)",
            "export the plan as CSV text: block GEOID and district per line",
        )
    delimiter = _delimiter(lines[0], path)
    rows = list(csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter))
    first = [cell.strip() for cell in rows[0]]
    has_header = not any(DIGITS.match(cell) for cell in first)
    notes = [f"delimiter {delimiter!r}, {'a header row' if has_header else 'no header row'}"]
    if has_header:
        columns = first
        block_column = _pick(columns, BLOCK_COLUMNS)
        district_column = _pick(columns, DISTRICT_COLUMNS)
        if len(columns) == 2:
            if block_column is None and district_column is not None:
                block_column = next(c for c in columns if c != district_column)
            if district_column is None and block_column is not None:
                district_column = next(c for c in columns if c != block_column)
        if block_column is None or district_column is None or block_column == district_column:
            raise InputError(
                path,
                "block_id, district",
                f"cannot tell the block and district columns apart (found: {', '.join(columns)})",
                "name them e.g. 'GEOID20' and 'District', or drop the header row and put the "
                "block GEOID first and the district second",
            )
        block_index, district_index = columns.index(block_column), columns.index(district_column)
        notes.append(f"block column {block_column!r}, district column {district_column!r}")
    else:
        if len(first) < 2:
            raise InputError(
                path, "(columns)", "one column per line", "put block GEOID and district per line"
            )
        block_index, district_index = 0, 1
        if len(first) > 2:
            notes.append(f"{len(first) - 2} further column(s) ignored")
    body = rows[1:] if has_header else rows
    if not body:
        raise InputError(
            path,
            "(file)",
            "the plan has a header row but no block lines",
            "export the plan again with one line per block (block GEOID and district)",
        )
    width = max(block_index, district_index) + 1
    narrow = [i for i, row in enumerate(body) if len(row) < width]
    if narrow:
        raise InputError(
            path,
            "(columns)",
            f"{len(narrow)} line(s) hold fewer fields than the block and district columns "
            f"need (e.g. line {narrow[0] + 1 + int(has_header)})",
            "give every line a block GEOID and a district",
        )
    table = pd.DataFrame(
        {
            "block_id": [row[block_index].strip() for row in body],
            "district": [row[district_index].strip() for row in body],
        },
        dtype=object,
    )
    # Census files write GEOIDs with a summary-level prefix (7500000US + 15 digits for blocks).
    prefixed = table["block_id"].str.fullmatch(r"\d{7}US\d{15}")
    if prefixed.any():
        table.loc[prefixed, "block_id"] = table.loc[prefixed, "block_id"].str[-GEOID_LENGTH:]
        notes.append(f"{int(prefixed.sum())} GEOID(s) had a summary-level prefix, removed")
    line_number = np.arange(len(table)) + 1 + int(has_header)
    empty = (table["block_id"] == "") | (table["district"] == "")
    if empty.any():
        raise InputError(
            path,
            "block_id, district",
            f"{int(empty.sum())} line(s) with an empty block or district (e.g. line "
            f"{line_number[empty.to_numpy()][0]})",
            "fill every line",
        )
    _check_geoids(table["block_id"], line_number, path)
    conflicting = table.drop_duplicates().duplicated("block_id", keep=False)
    if conflicting.any():
        block = table.loc[conflicting, "block_id"].iloc[0]
        districts = sorted(table.loc[table["block_id"] == block, "district"].unique())
        raise InputError(
            path,
            "block_id",
            f"{table.loc[conflicting, 'block_id'].nunique()} block(s) are assigned more than "
            f"once to different districts (e.g. {block} in {', '.join(districts)})",
            "assign each block to exactly one district",
        )
    table.attrs["notes"] = notes
    return table


def _check_geoids(block_ids: pd.Series, line_number: np.ndarray, path: Path) -> None:
    """Every block id must be a 15-digit GEOID kept as text."""
    digits = block_ids.str.fullmatch(r"\d+").to_numpy(dtype=bool)
    length = block_ids.str.len().to_numpy()
    lost_zero = digits & (length == GEOID_LENGTH - 1)
    if lost_zero.any():
        raise InputError(
            path,
            "block_id",
            f"{int(lost_zero.sum())} GEOID(s) have 14 digits, e.g. {block_ids[lost_zero].iloc[0]} "
            f"on line {line_number[lost_zero][0]}: the leading zero was lost (a spreadsheet read "
            "the GEOID as a number)",
            "export the plan again keeping GEOIDs as text (15 digits, e.g. 010010201001000)",
        )
    bad = ~(digits & (length == GEOID_LENGTH))
    if bad.any():
        raise InputError(
            path,
            "block_id",
            f"{int(bad.sum())} block id(s) are not 15-digit census block GEOIDs, e.g. "
            f"{block_ids[bad].iloc[0]!r} on line {line_number[bad][0]}",
            "use 15-digit block GEOIDs (state, county, tract, block); published/blocks.csv "
            "lists them",
        )


def read_draws(path: str | Path) -> pd.DataFrame:
    """Read published block draws and check their columns.

    Raises
    ------
    InputError
        Missing, empty, corrupt or non-Parquet file, missing columns, or no draws.
    """
    from pipeline_common.world_schema import read_parquet_checked

    path = Path(path)
    if not path.exists():
        raise InputError(
            path, "(file)", "file not found", "give the path of a published draws.parquet"
        )
    draws = read_parquet_checked(path, "published draws.parquet").to_pandas()
    missing = [c for c in ("draw", "block_id", *QUANTITIES) if c not in draws.columns]
    if missing:
        raise InputError(
            path,
            ", ".join(missing),
            "required column(s) missing",
            "use published/draws.parquet from this pipeline",
        )
    if draws.empty:
        raise InputError(
            path, "(rows)", "holds no draws", "use published/draws.parquet of a finished run"
        )
    not_numeric = [c for c in ("draw", *QUANTITIES) if not pd.api.types.is_numeric_dtype(draws[c])]
    if not_numeric:
        raise InputError(
            path,
            ", ".join(not_numeric),
            "not numeric",
            "use published/draws.parquet from this pipeline",
        )
    draws["block_id"] = draws["block_id"].astype(str)
    return draws


def check_plan(
    draws: pd.DataFrame,
    districts: pd.DataFrame,
    districts_file: str = "districts file",
    allow_unknown: bool = False,
    allow_partial: bool = True,
) -> tuple[pd.DataFrame, list[str]]:
    """Match a plan to the draws: the blocks to aggregate, and counted warnings.

    Parameters
    ----------
    allow_unknown
        Leave out plan blocks unknown to the draws (counted) instead of refusing the plan.
    allow_partial
        Accept blocks of the draws that no district holds (counted) instead of refusing the
        plan. The command line refuses them unless ``--allow-partial``.

    Returns
    -------
    (plan, warnings)
        One row per assigned block known to the draws, and one sentence per problem that is
        not an error: repeated lines, unknown blocks (with ``allow_unknown``), blocks of the
        draws in no district (with ``allow_partial``, and the persons they hold).

    Raises
    ------
    InputError
        If the plan names blocks that are not in the draws (unless ``allow_unknown``), leaves
        blocks of the draws out of every district (unless ``allow_partial``), or assigns no
        block at all.
    """
    warnings = []
    repeated = districts.duplicated(["block_id", "district"])
    if repeated.any():
        warnings.append(
            f"{int(repeated.sum())} line(s) repeat a block already assigned to the same "
            f"district (e.g. {districts.loc[repeated, 'block_id'].iloc[0]}); counted once"
        )
    plan = districts.loc[~repeated, ["block_id", "district"]]
    known = pd.Index(draws["block_id"].unique())
    unknown = plan.loc[~plan["block_id"].isin(known), "block_id"]
    if len(unknown):
        message = (
            f"{len(unknown)} block(s) of the plan are not in the published draws "
            f"(e.g. {list(unknown.iloc[:3])})"
        )
        if not allow_unknown:
            raise InputError(
                districts_file,
                "block_id",
                message,
                "use 15-digit census block ids of this release (published/blocks.csv lists "
                "them), or pass --allow-unknown to leave them out with a warning",
            )
        warnings.append(f"{message}; left out of their districts (--allow-unknown)")
        plan = plan.loc[plan["block_id"].isin(known)]
    if plan.empty:
        raise InputError(
            districts_file,
            "block_id",
            "no block of the plan is in the published draws: nothing to aggregate",
            "use a plan of this release's blocks (published/blocks.csv lists them)",
        )
    unassigned = known.difference(pd.Index(plan["block_id"]))
    if len(unassigned):
        first_draw = draws.loc[draws["draw"] == draws["draw"].min()].set_index("block_id")
        persons = (first_draw["citizens"] + first_draw["noncitizens"]).reindex(unassigned)
        populated = int((persons > 0).sum())
        message = (
            f"{len(unassigned)} block(s) of the draws are in no district ({populated} of them "
            f"populated, {int(persons.sum())} persons; e.g. {list(unassigned[:3])})"
        )
        if not allow_partial:
            raise InputError(
                districts_file,
                "block_id",
                f"{message}: the plan is partial, and districts that should hold them would "
                "publish partial sums",
                "assign every block of published/blocks.csv to a district, or pass "
                "--allow-partial to leave them out with a counted warning",
            )
        warnings.append(f"{message}; they are in no district's estimate (--allow-partial)")
    return plan.reset_index(drop=True), warnings


def aggregate(
    draws: pd.DataFrame, districts: pd.DataFrame, districts_file: str = "districts file"
) -> pd.DataFrame:
    """District estimates: per-draw sums, then the median and the 5% / 95% quantiles.

    Parameters
    ----------
    draws
        ``draw, block_id, citizens, noncitizens, cvap``.
    districts
        ``block_id, district``; every block must be in ``draws`` (:func:`check_plan`).

    Returns
    -------
    pandas.DataFrame
        ``district, blocks, tot_est`` and ``{cit,cvap,noncit}_{est,moe,lo90,hi90}``.

    Raises
    ------
    InputError
        If the district file names blocks that are not in the draws.
    """
    plan, _ = check_plan(draws, districts.drop_duplicates(["block_id", "district"]), districts_file)
    joined = draws.merge(plan, on="block_id", how="inner")
    sums = joined.groupby(["district", "draw"], sort=True)[list(QUANTITIES)].sum()
    blocks = plan.groupby("district").size()
    out = []
    for district, per_draw in sums.groupby(level="district", sort=True):
        total = (per_draw["citizens"] + per_draw["noncitizens"]).to_numpy()
        row: dict = {
            "district": district,
            "blocks": int(blocks.loc[district]),
            "tot_est": int(np.quantile(total, 0.5, method="inverted_cdf")),
        }
        for name, quantity in CENSUS_NAMES.items():
            values = per_draw[quantity].to_numpy()
            low = int(np.quantile(values, TAIL, method="inverted_cdf"))
            high = int(np.quantile(values, 1 - TAIL, method="inverted_cdf"))
            row[f"{name}_est"] = int(np.quantile(values, 0.5, method="inverted_cdf"))
            row[f"{name}_moe"] = (high - low + 1) // 2
            row[f"{name}_lo90"] = low
            row[f"{name}_hi90"] = high
        out.append(row)
    return pd.DataFrame(out)


def main(argv: list[str] | None = None) -> int:
    """Console script ``cvap-aggregate``; returns the exit status."""
    parser = argparse.ArgumentParser(prog="cvap-aggregate", description=__doc__.splitlines()[0])
    parser.add_argument("--draws", required=True, help="published/draws.parquet")
    parser.add_argument(
        "--districts",
        required=True,
        help="block assignment file: block GEOID and district per line, comma or pipe "
        "delimited, with or without a header",
    )
    parser.add_argument("--output", help="CSV to write the district estimates to")
    parser.add_argument(
        "--allow-partial",
        action="store_true",
        help="accept (with a counted warning) a plan that leaves blocks of the draws out of "
        "every district instead of stopping",
    )
    parser.add_argument(
        "--allow-unknown",
        action="store_true",
        help="leave out (with a counted warning) plan blocks that are not in the draws "
        "instead of stopping",
    )
    args = parser.parse_args(argv)
    try:
        if args.output:
            check_output(args.output)
        districts = read_districts(args.districts)
        draws = read_draws(args.draws)
        plan, warnings = check_plan(
            draws, districts, args.districts, args.allow_unknown, args.allow_partial
        )
        result = aggregate(draws, plan, args.districts)
        text = result.to_csv(index=False, lineterminator="\n")
        if args.output:
            from pipeline_common.io import write_text

            try:
                write_text(text, args.output)
            except OSError as exc:
                raise InputError(
                    args.output,
                    "--output",
                    f"cannot be written ({exc.strerror or exc})",
                    "name a file in a folder you can write to",
                ) from None
    except InputError as error:
        print(f"cvap-aggregate: error: {error}", file=sys.stderr)
        return 2
    for note in districts.attrs.get("notes", []):
        print(f"cvap-aggregate: read {args.districts}: {note}", file=sys.stderr)
    for warning in warnings:
        print(f"cvap-aggregate: warning: {warning}", file=sys.stderr)
    print(text, end="")
    return 0


def check_output(output: str | Path) -> None:
    """``--output`` must name a file (not a folder) in a folder that exists or can be made
    and is writable.

    Raises
    ------
    InputError
        Naming ``--output`` and the path.
    """
    import os

    path = Path(output)
    fix = "name a CSV file in a folder you can write to, e.g. --output districts.csv"
    if str(output).endswith(("/", os.sep)) or path.is_dir():
        raise InputError(path, "--output", "names a folder, not a file", fix)
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(path, "--output", f"{parent} is a file, not a folder", fix)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(path, "--output", f"the folder {parent} is not writable", fix)
    if path.exists() and not os.access(path, os.W_OK):
        raise InputError(path, "--output", "the file is not writable", fix)


if __name__ == "__main__":
    sys.exit(main())
