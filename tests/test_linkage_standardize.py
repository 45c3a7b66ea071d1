"""Standardization of names, dates, SSNs and addresses before linkage."""

from __future__ import annotations

import pandas as pd
import pytest

from linkage.standardize import (
    soundex,
    standardize_address,
    standardize_dob,
    standardize_first_name,
    standardize_identity,
    standardize_last_name,
    standardize_sex,
    standardize_ssn,
    standardize_zip,
    strip_accents,
)


def test_accents_case_and_punctuation():
    assert strip_accents("Muñoz Ibáñez Müller") == "Munoz Ibanez Muller"
    last = standardize_last_name(pd.Series(["  muñoz ", "O'Brien", "St. John"]))
    assert last["last_name"].tolist() == ["MUNOZ", "OBRIEN", "STJOHN"]


def test_compound_and_double_surnames_keep_first_and_full():
    last = standardize_last_name(
        pd.Series(["García-López", "Garcia Lopez", "de la Cruz Reyes", "Smith Jr."])
    )
    assert last["last_name"].tolist() == ["GARCIALOPEZ", "GARCIALOPEZ", "DELACRUZREYES", "SMITH"]
    assert last["last_name_first"].tolist() == ["GARCIA", "GARCIA", "DELACRUZ", "SMITH"]
    assert last["last_name_last"].tolist() == ["LOPEZ", "LOPEZ", "REYES", "SMITH"]


def test_first_names_nicknames_and_middle_names():
    first = standardize_first_name(pd.Series(["Bob", "robert", "José María", None, "  "]))
    assert first["first_name"].tolist()[:3] == ["BOB", "ROBERT", "JOSE"]
    assert first["first_name_canon"].tolist()[:2] == ["ROBERT", "ROBERT"]
    assert first["first_name_full"].iloc[2] == "JOSEMARIA"
    assert first["first_name"].isna().tolist()[3:] == [True, True]


def test_soundex_reference_values():
    assert soundex("ROBERT") == soundex("RUPERT") == "R163"
    assert soundex("ASHCRAFT") == "A261"
    assert soundex("TYMCZAK") == "T522"
    assert soundex("") == ""


def test_dates_parsed_and_impossible_dates_flagged():
    out = standardize_dob(
        pd.Series(["1980-05-04", "1990-02-30", None, "2031-01-01", "1850-01-01", "not a date"]),
        "2020-04-01",
    )
    assert out["dob"].iloc[0] == "1980-05-04"
    assert out["birth_year"].iloc[0] == 1980 and out["birth_day"].iloc[0] == 4
    assert out["dob"].iloc[1:].isna().all()
    assert out["dob_invalid"].tolist() == [False, True, False, True, True, True]


def test_dates_from_date_objects():
    dates = pd.Series([pd.Timestamp("1975-12-31").date(), None])
    out = standardize_dob(dates, "2020-04-01")
    assert out["dob"].iloc[0] == "1975-12-31" and pd.isna(out["dob"].iloc[1])


@pytest.mark.parametrize(
    ("raw", "lab", "strict"),
    [
        ("123-45-6789", "123456789", "123456789"),
        ("000-12-3456", None, None),  # area 000
        ("666-12-3456", None, None),  # area 666
        ("123-00-3456", None, None),  # group 00
        ("123-45-0000", None, None),  # serial 0000
        ("912-34-5678", "912345678", None),  # the lab's synthetic SSN range
        ("912-74-5678", None, None),  # ITIN-shaped: 9xx with group 70-88
        ("12345678", None, None),  # eight digits
    ],
)
def test_ssn_rules(raw, lab, strict):
    got_lab = standardize_ssn(pd.Series([raw]), accept_synthetic_9xx=True).iloc[0]
    got_strict = standardize_ssn(pd.Series([raw]), accept_synthetic_9xx=False).iloc[0]
    assert (None if pd.isna(got_lab) else got_lab) == lab
    assert (None if pd.isna(got_strict) else got_strict) == strict


def test_addresses_abbreviated():
    out = standardize_address(
        pd.Series(["123 Main Street, Apt. 4", "123 MAIN ST APT 4", "45 North Oak Avenue #2"])
    )
    assert out["address"].iloc[0] == out["address"].iloc[1] == "123 MAIN ST APT 4"
    assert out["address"].iloc[2] == "45 N OAK AVE APT 2"
    assert out["house_number"].tolist() == ["123", "123", "45"]


def test_zip_and_sex():
    assert standardize_zip(pd.Series(["33101-1234", "331", "x"])).tolist()[:2] == ["33101", "331"]
    assert standardize_sex(pd.Series(["female", "M", "1", "?"])).tolist()[:3] == ["F", "M", "M"]


def test_identity_schema_has_every_column_even_when_absent():
    table = pd.DataFrame({"record_id": ["A-1"], "first_name": ["Ann"]})
    out = standardize_identity(table, "record_id", "2020-04-01")
    for column in ("last_name", "dob", "ssn", "address", "zip", "block_id", "other_id"):
        assert column in out.columns and out[column].isna().all()
    assert out["unique_id"].tolist() == ["A-1"]
