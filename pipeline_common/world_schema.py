"""Declared schemas of the world files, checked where each file enters a stage.

A world file (``world/frame.parquet``, ``world/geography.parquet``,
``world/sources/{source}.parquet``) is written by the synthetic stage, or put there by a user who
brings their own frame and sources. Before a stage reads one, :func:`read_world_file` checks it
against the table :data:`WORLD_SCHEMAS` in two steps:

1. **Storage** (pyarrow): the file is a readable Parquet file (not truncated, not a CSV renamed
   to ``.parquet``), every required column is present, and each column is stored with a type of
   its kind: text as UTF-8 strings (an SSN stored as a float loses its leading zeros and every
   value would be nulled; a name stored as bytes is not text), dates as dates or ISO text (a date
   stored as an integer would be read as 1970-01-01), flags as booleans.
2. **Values** (pandera): identifiers unique and never null (frame rows sharing a ``person_id``
   would merge persons), status columns within their vocabulary (a Numident ``citizenship`` of
   ``"yes"`` would silently become ``unknown``), dates of status records not after the reference
   date.

Any violation raises :class:`~pipeline_common.errors.InputError` naming the file, the column, the
problem and the fix. Values the linkage stage may lose on purpose (an impossible date of birth,
an SSN of an invalid pattern) are not errors here: linkage nulls them and counts them in its
per-source report and log (``ssn_invalid``, ``dob_invalid``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline_common.errors import InputError

REGENERATE = "regenerate the world with the synthetic stage (./run.sh --forcerun synthetic_world)"


@dataclass(frozen=True)
class Field:
    """One column of a world file.

    Parameters
    ----------
    name
        Column name.
    kind
        ``text``, ``date``, ``flag``, ``integer`` or ``number``.
    required
        The column must be present.
    unique
        No two rows may share a value (and no value may be null).
    values
        The allowed non-null values (``None``: any).
    not_after_reference
        A date that may not lie after the config's reference date.
    """

    name: str
    kind: str
    required: bool = True
    unique: bool = False
    values: tuple[str, ...] | None = None
    not_after_reference: bool = False


def _identity(id_column: str, ssn: bool = False) -> tuple[Field, ...]:
    fields = [
        Field(id_column, "text", unique=True),
        Field("first_name", "text"),
        Field("last_name", "text"),
        Field("dob", "date"),
        Field("sex", "text", values=("F", "M")),
        Field("address", "text", required=False),
        Field("zip", "text", required=False),
    ]
    if ssn:
        fields.append(Field("ssn", "text", required=False))
    return tuple(fields)


_FLAGS = (Field("protected_1367", "flag"), Field("refugee_asylee", "flag"))

WORLD_SCHEMAS: dict[str, tuple[Field, ...]] = {
    "frame": (
        *_identity("person_id"),
        Field("household_id", "text", required=False),
        Field("block_id", "text"),
        Field("age", "number"),  # whole years; a float column with gaps is fine
    ),
    "geography": (
        Field("block_id", "text", unique=True),
        Field("block_group_id", "text"),
        Field("tract_id", "text"),
        Field("county_id", "text"),
    ),
    "ssa_numident": (
        *_identity("record_id", ssn=True),
        Field("citizenship", "text", values=("citizen", "noncitizen")),
        Field("application_date", "date", required=False, not_after_reference=True),
        Field("last_update_date", "date", required=False, not_after_reference=True),
    ),
    "uscis_naturalizations": (
        *_identity("record_id", ssn=True),
        Field("a_number", "text", required=False),
        Field("naturalization_date", "date", not_after_reference=True),
        *_FLAGS,
    ),
    "uscis_lpr": (
        *_identity("record_id", ssn=True),
        Field("a_number", "text", required=False),
        Field("lpr_grant_date", "date", not_after_reference=True),
        *_FLAGS,
    ),
    "cbp_ice": (
        *_identity("record_id"),
        Field("a_number", "text", required=False),
        Field("event_date", "date", not_after_reference=True),
        *_FLAGS,
    ),
    "state_passports": (
        *_identity("record_id", ssn=True),
        Field("issue_date", "date", not_after_reference=True),
    ),
    "irs_itin": (
        *_identity("record_id"),
        Field("itin", "text", required=False),
        Field("tax_year", "integer"),
    ),
    "acs": (
        *_identity("record_id"),
        Field("block_id", "text", required=False),
        Field("interview_date", "date", not_after_reference=True),
        Field("citizenship_response", "text", values=("born_citizen", "naturalized", "noncitizen")),
    ),
}

_KIND_TEST: dict[str, Callable[[pa.DataType], bool]] = {
    "text": lambda t: pa.types.is_string(t) or pa.types.is_large_string(t),
    "date": lambda t: (
        pa.types.is_date(t)
        or pa.types.is_timestamp(t)
        or pa.types.is_string(t)
        or pa.types.is_large_string(t)
    ),
    "flag": pa.types.is_boolean,
    "integer": pa.types.is_integer,
    "number": lambda t: pa.types.is_integer(t) or pa.types.is_floating(t),
}
_KIND_FIX = {
    "text": "store it as text (a string column; identifiers such as SSNs and ZIP codes keep "
    "their leading zeros only as text)",
    "date": "store it as a date column (or ISO text YYYY-MM-DD), never as numbers",
    "flag": "store it as a boolean column (true/false)",
    "integer": "store it as an integer column",
    "number": "store it as a numeric column",
}


def _storage_type(kind_type: pa.DataType) -> pa.DataType:
    """The value type of a dictionary-encoded column (pandas categoricals are stored so)."""
    return kind_type.value_type if pa.types.is_dictionary(kind_type) else kind_type


def read_parquet_checked(path: str | Path, what: str = "Parquet file") -> pa.Table:
    """Read a Parquet file, turning every way it can be broken into an :class:`InputError`."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "(file)", "file not found", f"give the path of a {what}")
    if path.is_dir():
        raise InputError(path, "(file)", "is a folder, not a file", f"give the path of a {what}")
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(size - 4, 0))
            tail = handle.read(4)
    except OSError as exc:
        raise InputError(path, "(file)", f"cannot be read ({exc.strerror})", "check it") from None
    if size == 0:
        raise InputError(path, "(file)", "the file is empty (0 bytes)", REGENERATE)
    if head != b"PAR1":
        looks_like = " (it looks like CSV text)" if b"," in head or head.isascii() else ""
        raise InputError(
            path,
            "(file)",
            f"not a Parquet file{looks_like}",
            f"write it with DataFrame.to_parquet (a CSV renamed to .parquet is not Parquet); "
            f"or {REGENERATE}",
        )
    if tail != b"PAR1":
        raise InputError(path, "(file)", "truncated Parquet file (no footer)", REGENERATE)
    try:
        return pq.read_table(path)
    except (pa.ArrowException, OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0][:200]
        raise InputError(path, "(file)", f"corrupt Parquet file ({reason})", REGENERATE) from None


def check_storage(table: pa.Table, kind: str, file: str) -> None:
    """Required columns present, each stored with a type of its kind (see module docstring)."""
    fields = WORLD_SCHEMAS[kind]
    names = set(table.column_names)
    missing = [f.name for f in fields if f.required and f.name not in names]
    if missing:
        status = [f.name for f in fields if f.name in missing and (f.values or f.kind == "date")]
        why = (
            f" (without {', '.join(status)} every record of this source would say nothing "
            "about status)"
            if status and kind not in ("frame", "geography")
            else ""
        )
        raise InputError(
            file,
            ", ".join(missing),
            f"required column(s) missing{why}; found: {', '.join(table.column_names)}",
            f"add the column(s), or {REGENERATE}",
        )
    for spec in fields:
        if spec.name not in names:
            continue
        stored = _storage_type(table.schema.field(spec.name).type)
        if pa.types.is_null(stored):
            continue  # an all-null column has no type to judge
        if not _KIND_TEST[spec.kind](stored):
            problem = f"stored as {stored}, expected {spec.kind}"
            if spec.kind == "date" and (
                pa.types.is_integer(stored) or pa.types.is_floating(stored)
            ):
                problem += " (numbers would be read as days or nanoseconds since 1970-01-01)"
            if spec.kind == "text" and pa.types.is_floating(stored):
                problem += " (a float loses leading zeros and cannot hold an identifier)"
            if spec.kind == "text" and (
                pa.types.is_binary(stored) or pa.types.is_large_binary(stored)
            ):
                problem += " (bytes, not UTF-8 text)"
            raise InputError(file, spec.name, problem, _KIND_FIX[spec.kind])
        if spec.kind == "text":
            try:
                table.column(spec.name).validate(full=True)
            except pa.ArrowInvalid:
                raise InputError(
                    file, spec.name, "holds bytes that are not UTF-8 text", "save the text as UTF-8"
                ) from None


def _pandera_schema(kind: str, columns: list[str]):
    import pandera.pandas as pa_schema

    checks = {}
    for spec in WORLD_SCHEMAS[kind]:
        if spec.name not in columns:
            continue
        column_checks = []
        if spec.values is not None:
            column_checks.append(pa_schema.Check.isin(list(spec.values)))
        checks[spec.name] = pa_schema.Column(
            checks=column_checks,
            nullable=not spec.unique,
            unique=spec.unique,
            required=False,
            coerce=False,
        )
    return pa_schema.DataFrameSchema(checks, strict=False)


def check_values(frame: pd.DataFrame, kind: str, file: str) -> None:
    """Unique identifiers and vocabularies of ``frame`` (pandera); raise the first violation."""
    import pandera.errors

    try:
        _pandera_schema(kind, list(frame.columns)).validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as errors:
        cases = errors.failure_cases
        column = str(cases["column"].iloc[0])
        failed = cases.loc[cases["column"] == column]
        check = str(failed["check"].iloc[0])
        examples = sorted({repr(v) for v in failed["failure_case"].iloc[:50]})[:3]
        spec = next(f for f in WORLD_SCHEMAS[kind] if f.name == column)
        if "unique" in check:
            n = int(frame[column].duplicated(keep=False).sum())
            raise InputError(
                file,
                column,
                f"{n} rows share a {column} with another row (e.g. {', '.join(examples)}); "
                f"each {column} must name one {'person' if column == 'person_id' else 'row'}",
                "give every row its own identifier (or drop the duplicated rows)",
            ) from None
        if "null" in check or "nullable" in check:
            n = int(frame[column].isna().sum())
            raise InputError(
                file, column, f"{n} row(s) without a {column}", "give every row an identifier"
            ) from None
        n = int((~frame[column].isin(spec.values or ()) & frame[column].notna()).sum())
        raise InputError(
            file,
            column,
            f"{n} value(s) outside {list(spec.values or ())} (e.g. {', '.join(examples)})",
            f"use only those values (null for unknown), or {REGENERATE}",
        ) from None


def check_dates(frame: pd.DataFrame, kind: str, file: str, reference_date: str | None) -> None:
    """Status dates that cannot be read, or lie after the reference date, are errors."""
    for spec in WORLD_SCHEMAS[kind]:
        if spec.kind != "date" or spec.name not in frame.columns:
            continue
        values = frame[spec.name]
        parsed = pd.to_datetime(values, errors="coerce", format="mixed")
        if not spec.not_after_reference:
            continue  # dates of birth: impossible ones are nulled and counted by linkage
        unreadable = values.notna() & parsed.isna()
        if unreadable.any():
            raise InputError(
                file,
                spec.name,
                f"{int(unreadable.sum())} value(s) are not dates (e.g. "
                f"{values[unreadable].iloc[0]!r})",
                "write dates as YYYY-MM-DD (null for unknown)",
            )
        if reference_date is not None:
            late = parsed > pd.Timestamp(dt.date.fromisoformat(str(reference_date)))
            if late.any():
                raise InputError(
                    file,
                    spec.name,
                    f"{int(late.sum())} date(s) after the reference date {reference_date} (e.g. "
                    f"{values[late].iloc[0]})",
                    "records must be dated on or before reference_date: fix the dates or the "
                    "config's reference_date",
                )


def read_world_file(
    path: str | Path,
    kind: str,
    reference_date: str | None = None,
    columns: list[str] | None = None,
) -> pd.DataFrame:
    """Read one world file after checking it against its declared schema.

    Parameters
    ----------
    path
        The Parquet file.
    kind
        ``frame``, ``geography`` or a source name (a key of :data:`WORLD_SCHEMAS`).
    reference_date
        The config's reference date: status records may not be dated after it.
    columns
        Return only these columns (all are checked).

    Returns
    -------
    pandas.DataFrame
        As ``pandas.read_parquet`` would return it.

    Raises
    ------
    InputError
        File, column, problem and fix of the first violation.
    """
    if kind not in WORLD_SCHEMAS:
        raise ValueError(f"no schema for world file kind {kind!r}; known: {sorted(WORLD_SCHEMAS)}")
    file = str(path)
    table = read_parquet_checked(path, f"world file ({kind})")
    check_storage(table, kind, file)
    frame = table.to_pandas()
    check_values(frame, kind, file)
    check_dates(frame, kind, file, reference_date)
    return frame[columns] if columns is not None else frame
