"""A small synthetic world built to the contract, for linkage tests and benchmarks.

It is *not* the synthetic stage: it exists so the linkage stage can be tested alone (and
benchmarked at scale when the synthetic stage is unavailable). Record errors mimic the design:
typos, nicknames, swapped names, double surnames, day/month swaps, missing values, stale
addresses, within-source duplicates.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FIRST_F = np.array(
    ["MARY", "PATRICIA", "JENNIFER", "LINDA", "ELIZABETH", "MARIA", "SUSAN", "MARGARET", "SOFIA",
     "JOSEFINA", "ANA", "LUCIA", "MEI", "PRIYA", "FATIMA", "OLGA", "CHLOE", "EMMA", "OLIVIA",
     "ISABELLA", "GUADALUPE", "KATHERINE", "SANDRA", "NGUYET", "AISHA", "HANNAH", "GRACE", "ZOE"]
)  # fmt: skip
FIRST_M = np.array(
    ["JAMES", "ROBERT", "JOHN", "MICHAEL", "WILLIAM", "DAVID", "RICHARD", "JOSEPH", "THOMAS",
     "JOSE", "JUAN", "LUIS", "CARLOS", "WEI", "RAJ", "MOHAMMED", "IVAN", "LIAM", "NOAH", "ETHAN",
     "FRANCISCO", "ANTHONY", "DANIEL", "MINH", "OMAR", "SAMUEL", "HENRY", "OSCAR"]
)  # fmt: skip
LAST = np.array(
    ["SMITH", "JOHNSON", "WILLIAMS", "BROWN", "JONES", "GARCIA", "MILLER", "DAVIS", "RODRIGUEZ",
     "MARTINEZ", "HERNANDEZ", "LOPEZ", "GONZALEZ", "WILSON", "ANDERSON", "THOMAS", "TAYLOR",
     "MOORE", "JACKSON", "MARTIN", "LEE", "PEREZ", "THOMPSON", "WHITE", "HARRIS", "SANCHEZ",
     "CLARK", "RAMIREZ", "LEWIS", "ROBINSON", "NGUYEN", "PATEL", "KIM", "CHEN", "MUÑOZ",
     "DE LA CRUZ", "O'BRIEN", "IVANOV", "KOWALSKI", "MÜLLER", "SCHMIDT", "ROSSI", "SILVA",
     "YAMAMOTO", "HASSAN", "OKAFOR", "NOVAK", "PETERSEN", "FISCHER", "CASTILLO"]
)  # fmt: skip
NICK = {"ROBERT": "BOB", "WILLIAM": "BILL", "MICHAEL": "MIKE", "JAMES": "JIM", "JOSEPH": "JOE",
        "RICHARD": "RICK", "THOMAS": "TOM", "ELIZABETH": "LIZ", "KATHERINE": "KATE",
        "DANIEL": "DAN", "ANTHONY": "TONY", "MARGARET": "PEGGY", "PATRICIA": "PAT",
        "SAMUEL": "SAM", "DAVID": "DAVE"}  # fmt: skip
STREETS = np.array(
    ["MAIN", "OAK", "PINE", "MAPLE", "CEDAR", "ELM", "LAKE", "HILL", "PARK", "RIVER"]
)
SUFFIXES = np.array(["Street", "Avenue", "Road", "Drive", "Lane", "Court"])
STATUSES = np.array(["native_citizen", "naturalized", "lpr", "temporary", "unauthorized"])
STATUS_P = np.array([0.80, 0.08, 0.05, 0.02, 0.05])
SOURCE_CODES = {
    "ssa_numident": "SSA",
    "uscis_naturalizations": "NAT",
    "uscis_lpr": "LPR",
    "cbp_ice": "CBP",
    "state_passports": "PPT",
    "irs_itin": "ITN",
    "acs": "ACS",
}


def _typo(rng: np.random.Generator, values: np.ndarray, rate: float) -> np.ndarray:
    """Replace one letter of a share ``rate`` of the names."""
    out = values.astype(object).copy()
    hit = np.flatnonzero(rng.random(len(out)) < rate)
    letters = rng.integers(0, 26, len(hit))
    for i, k in zip(hit, letters, strict=True):
        text = out[i]
        if isinstance(text, str) and len(text) > 2:
            pos = 1 + (k % (len(text) - 1))
            out[i] = text[:pos] + chr(65 + k) + text[pos + 1 :]
    return out


def make_world(n_persons: int, rng: np.random.Generator) -> dict[str, pd.DataFrame]:
    """Frame, sources and truth for ``n_persons`` persons (dict keyed by file stem).

    Keys: ``frame``, ``truth_persons``, ``truth_records`` and one per source name.
    """
    n = n_persons
    ids = np.array([f"P{i:09d}" for i in range(n)])
    sex = np.where(rng.random(n) < 0.5, "F", "M")
    first = np.where(sex == "F", rng.choice(FIRST_F, n), rng.choice(FIRST_M, n))
    last = rng.choice(LAST, n)
    double = rng.random(n) < 0.05
    last = np.where(
        double, np.char.add(np.char.add(last.astype(str), "-"), rng.choice(LAST, n)), last
    )
    dob = pd.Timestamp("1935-01-01") + pd.to_timedelta(rng.integers(0, 365 * 84, n), unit="D")
    status = rng.choice(STATUSES, n, p=STATUS_P)
    household = rng.integers(0, max(n // 2, 1), n)
    house_no = 1 + household % 997
    street = STREETS[household % len(STREETS)]
    suffix = SUFFIXES[(household // 7) % len(SUFFIXES)]
    address = pd.Series(house_no.astype(str)) + " " + pd.Series(street) + " " + pd.Series(suffix)
    zips = np.array([f"{33000 + h % 20:05d}" for h in household])
    block = np.array([f"12086{h % 50:06d}{h % 13:04d}" for h in household])
    protected = (status != "native_citizen") & (rng.random(n) < 0.01)
    refugee = np.isin(status, ["lpr", "temporary", "naturalized"]) & (rng.random(n) < 0.03)
    ssn = np.array(
        [f"{a}{g:02d}{s:04d}" for a, g, s in zip(
            rng.integers(900, 1000, n), rng.integers(1, 66, n), rng.integers(1, 10000, n), strict=True
        )]
    )  # fmt: skip
    persons = pd.DataFrame(
        {
            "person_id": ids,
            "household_id": np.array([f"H{h:09d}" for h in household]),
            "block_id": block,
            "first_name": first,
            "last_name": last,
            "sex": sex,
            "dob": dob.date,
            "status": status,
            "citizen": np.isin(status, ["native_citizen", "naturalized"]),
            "protected_1367": protected,
            "refugee_asylee": refugee,
            "address": address.to_numpy(),
            "zip": zips,
            "ssn": ssn,
        }
    )
    persons["age"] = (pd.Timestamp("2020-04-01") - pd.to_datetime(persons["dob"])).dt.days // 365

    # Census frame: 3% not enumerated; proxy errors.
    enumerated = rng.random(n) >= 0.03
    frame = persons.loc[enumerated].copy()
    m = len(frame)
    frame["first_name"] = _typo(rng, frame["first_name"].to_numpy(), 0.03)
    frame.loc[rng.random(m) < 0.02, "dob"] = None
    frame.loc[rng.random(m) < 0.01, "sex"] = None
    frame["relationship"] = "householder"
    frame = frame[
        ["person_id", "household_id", "block_id", "first_name", "last_name", "sex", "dob", "age",
         "relationship", "address", "zip"]
    ].reset_index(drop=True)  # fmt: skip

    has_ssn = np.isin(status, ["native_citizen", "naturalized", "lpr"]) | (
        (status == "temporary") & (rng.random(n) < 0.5)
    )
    members = {
        "ssa_numident": has_ssn,
        "uscis_naturalizations": (status == "naturalized") & (rng.random(n) < 0.9),
        "uscis_lpr": np.isin(status, ["lpr", "naturalized"]) & (rng.random(n) < 0.9),
        "cbp_ice": np.isin(status, ["temporary", "unauthorized", "lpr"]) & (rng.random(n) < 0.7),
        "state_passports": np.isin(status, ["native_citizen", "naturalized"])
        & (rng.random(n) < 0.5),
        "irs_itin": (status == "unauthorized") & (rng.random(n) < 0.4),
        "acs": rng.random(n) < 0.12,
    }
    out: dict[str, pd.DataFrame] = {"frame": frame}
    truth_records = []
    for source, member in members.items():
        rows = persons.loc[member].copy()
        if source == "cbp_ice":  # within-source duplicates
            rows = pd.concat([rows, rows.sample(frac=0.15, random_state=rng)], ignore_index=True)
        k = len(rows)
        nick = rng.random(k) < 0.05
        rows["first_name"] = np.where(
            nick, rows["first_name"].map(lambda v: NICK.get(v, v)), rows["first_name"]
        )
        rows["first_name"] = _typo(rng, rows["first_name"].to_numpy(), 0.03)
        rows["last_name"] = _typo(rng, rows["last_name"].to_numpy(), 0.02)
        swap = rng.random(k) < 0.01
        rows.loc[swap, ["first_name", "last_name"]] = rows.loc[
            swap, ["last_name", "first_name"]
        ].to_numpy()
        dates = pd.to_datetime(rows["dob"])
        dm = (rng.random(k) < 0.02) & (dates.dt.day <= 12)
        swapped = pd.to_datetime(
            {"year": dates.dt.year, "month": dates.dt.day.clip(upper=12), "day": dates.dt.month}
        )
        rows["dob"] = np.where(dm, swapped.dt.date, dates.dt.date)
        rows.loc[rng.random(k) < (0.5 if source == "irs_itin" else 0.01), "dob"] = None
        stale = rng.random(k) < 0.2
        rows.loc[stale, "address"] = "1 OLD ROAD"
        rows["first_name"] = rows["first_name"].astype(str).str.title()
        rows["record_id"] = [f"{SOURCE_CODES[source]}-{i:09d}" for i in range(k)]
        keep = ["record_id", "first_name", "last_name", "dob", "sex", "address", "zip"]
        if source in ("ssa_numident", "state_passports"):
            keep.append("ssn")
        if source in ("uscis_naturalizations", "uscis_lpr"):
            rows.loc[rng.random(k) < 0.5, "ssn"] = None
            keep += ["ssn", "a_number"]
            rows["a_number"] = [f"A{i:09d}" for i in range(k)]
        if source in ("uscis_naturalizations", "uscis_lpr", "cbp_ice"):
            keep += ["protected_1367", "refugee_asylee"]
        if source == "ssa_numident":
            rows["citizenship"] = np.where(
                rows["status"] == "native_citizen", "citizen", "noncitizen"
            )
            rows.loc[rng.random(k) < 0.1, "citizenship"] = None
            rows["application_date"] = pd.Timestamp("2000-01-01").date()
            rows["last_update_date"] = None
            keep += ["citizenship", "application_date", "last_update_date"]
        extra = {
            "uscis_naturalizations": ("naturalization_date", "2010-06-01"),
            "uscis_lpr": ("lpr_grant_date", "2005-03-01"),
            "cbp_ice": ("event_date", "2016-08-01"),
            "state_passports": ("issue_date", "2015-05-05"),
            "acs": ("interview_date", "2019-07-01"),
        }
        if source in extra:
            name, value = extra[source]
            rows[name] = pd.Timestamp(value).date()
            keep.append(name)
        if source == "irs_itin":
            rows["tax_year"] = 2018
            keep.append("tax_year")
        if source == "acs":
            rows["citizenship_response"] = np.select(
                [rows["status"] == "native_citizen", rows["status"] == "naturalized"],
                ["born_citizen", "naturalized"],
                "noncitizen",
            )
            keep += ["citizenship_response", "block_id"]
        out[source] = rows[keep].reset_index(drop=True)
        truth_records.append(
            pd.DataFrame(
                {"source": source, "record_id": rows["record_id"], "person_id": rows["person_id"]}
            )
        )
    out["truth_records"] = pd.concat(truth_records, ignore_index=True)
    out["truth_persons"] = persons[
        ["person_id", "household_id", "block_id", "age", "dob", "sex", "status", "citizen",
         "protected_1367", "refugee_asylee"]
    ]  # fmt: skip
    return out


def write_world(world: dict[str, pd.DataFrame], results: str) -> None:
    """Write ``make_world`` output under ``results/`` in the contract's layout."""
    from pathlib import Path

    root = Path(results)
    (root / "world" / "sources").mkdir(parents=True, exist_ok=True)
    (root / "truth").mkdir(parents=True, exist_ok=True)
    world["frame"].to_parquet(root / "world" / "frame.parquet", index=False)
    world["truth_persons"].to_parquet(root / "truth" / "persons.parquet", index=False)
    world["truth_records"].to_parquet(root / "truth" / "records.parquet", index=False)
    for source in SOURCE_CODES:
        world[source].to_parquet(root / "world" / "sources" / f"{source}.parquet", index=False)
