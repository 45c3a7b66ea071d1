"""What a linked record says about its person's status: category and as-of date per source."""

from __future__ import annotations

import pandas as pd

CATEGORIES = ("citizen", "naturalized", "noncitizen", "lpr", "unknown")
# Most informative first: used to pick one record when a person has several in one source.
_KNOWN_FIRST = {"citizen": 0, "naturalized": 0, "noncitizen": 0, "lpr": 0, "unknown": 1}


def _date(table: pd.DataFrame, column: str) -> pd.Series:
    if column not in table.columns:
        return pd.Series(pd.NaT, index=table.index, dtype="datetime64[ns]")
    return pd.to_datetime(table[column], errors="coerce").astype("datetime64[ns]")


def _text(table: pd.DataFrame, column: str) -> pd.Series:
    if column not in table.columns:
        return pd.Series(pd.NA, index=table.index, dtype="string")
    return table[column].astype("string").str.strip().str.lower()


def record_categories(source: str, records: pd.DataFrame) -> pd.DataFrame:
    """Category and as-of date each record of ``source`` states.

    Mapping: ``ssa_numident`` citizenship citizen/noncitizen/null -> citizen/noncitizen/unknown,
    as of the last update (else the application date); ``uscis_naturalizations`` ->
    naturalized (naturalization date); ``uscis_lpr`` -> lpr (grant date); ``cbp_ice`` ->
    noncitizen (event date); ``state_passports`` -> citizen (issue date); ``irs_itin`` ->
    noncitizen (31 December of the tax year); ``acs`` born_citizen/naturalized/noncitizen/null
    -> citizen/naturalized/noncitizen/unknown (interview date). A value outside these maps to
    ``unknown``.

    Returns
    -------
    DataFrame ``record_id, category, as_of`` (``as_of`` a datetime64 date, NaT when unknown).
    """
    n = len(records)
    index = records.index
    if source == "ssa_numident":
        category = _text(records, "citizenship").map(
            {"citizen": "citizen", "noncitizen": "noncitizen"}
        )
        as_of = _date(records, "last_update_date").fillna(_date(records, "application_date"))
    elif source == "uscis_naturalizations":
        category = pd.Series("naturalized", index=index)
        as_of = _date(records, "naturalization_date")
    elif source == "uscis_lpr":
        category = pd.Series("lpr", index=index)
        as_of = _date(records, "lpr_grant_date")
    elif source == "cbp_ice":
        category = pd.Series("noncitizen", index=index)
        as_of = _date(records, "event_date")
    elif source == "state_passports":
        category = pd.Series("citizen", index=index)
        as_of = _date(records, "issue_date")
    elif source == "irs_itin":
        category = pd.Series("noncitizen", index=index)
        if "tax_year" in records.columns:
            year = pd.to_numeric(records["tax_year"], errors="coerce").astype("Int64")
            text = year.astype("string") + "-12-31"
            as_of = pd.to_datetime(text, errors="coerce").astype("datetime64[ns]")
        else:
            as_of = pd.Series(pd.NaT, index=index, dtype="datetime64[ns]")
    elif source == "acs":
        category = _text(records, "citizenship_response").map(
            {"born_citizen": "citizen", "naturalized": "naturalized", "noncitizen": "noncitizen"}
        )
        as_of = _date(records, "interview_date")
    else:
        raise ValueError(f"unknown source {source!r}")
    category = pd.Series(category, index=index).astype("string").fillna("unknown")
    assert len(category) == n
    return pd.DataFrame(
        {"record_id": records["record_id"].astype("string"), "category": category, "as_of": as_of}
    ).reset_index(drop=True)


def evidence_from_links(links: pd.DataFrame) -> pd.DataFrame:
    """One evidence row per person and source from links carrying ``category`` and ``as_of``.

    When a person has several linked records in one source (within-source duplicates), keep the
    most informative: a stated status beats ``unknown``; then the most recent ``as_of`` (the
    status closest to the reference date); then the highest match probability; then the lowest
    record id (for determinism).

    Returns
    -------
    DataFrame ``person_id, source, category, as_of, match_probability, record_id, n_records``.
    """
    table = links.copy()
    table["_known"] = table["category"].map(_KNOWN_FIRST).fillna(1)
    table["_as_of"] = table["as_of"].fillna(pd.Timestamp.min)
    table = table.sort_values(
        ["person_id", "source", "_known", "_as_of", "match_probability", "record_id"],
        ascending=[True, True, True, False, False, True],
        kind="stable",
    )
    counts = table.groupby(["person_id", "source"], sort=False)["record_id"].transform("size")
    table["n_records"] = counts.astype("int64")
    evidence = table.drop_duplicates(["person_id", "source"], keep="first")
    evidence = evidence[
        ["person_id", "source", "category", "as_of", "match_probability", "record_id", "n_records"]
    ]
    evidence = evidence.assign(as_of=pd.to_datetime(evidence["as_of"]).dt.date)
    return evidence.sort_values(["person_id", "source"], kind="stable").reset_index(drop=True)
