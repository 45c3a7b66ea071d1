"""Standardization of identity fields before linkage: names, dates, SSNs, addresses.

Every function is vectorized over a pandas Series. String clean-up is done once per distinct value
(names and addresses repeat a lot), so it stays fast on millions of records.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

import pandas as pd

# Common English given-name nicknames -> canonical form. Both sides of a comparison are mapped, so
# "BOB" and "ROBERT" agree on the canonical level of the name comparison.
NICKNAMES: dict[str, str] = {
    "AL": "ALBERT",
    "ABBY": "ABIGAIL",
    "ALEX": "ALEXANDER",
    "ANDY": "ANDREW",
    "DREW": "ANDREW",
    "TONY": "ANTHONY",
    "BEN": "BENJAMIN",
    "BENNY": "BENJAMIN",
    "BETH": "ELIZABETH",
    "BETTY": "ELIZABETH",
    "LIZ": "ELIZABETH",
    "LIZZIE": "ELIZABETH",
    "ELIZA": "ELIZABETH",
    "BILL": "WILLIAM",
    "BILLY": "WILLIAM",
    "WILL": "WILLIAM",
    "WILLIE": "WILLIAM",
    "LIAM": "WILLIAM",
    "BOB": "ROBERT",
    "BOBBY": "ROBERT",
    "ROB": "ROBERT",
    "ROBBIE": "ROBERT",
    "BERT": "ROBERT",
    "CATHY": "CATHERINE",
    "KATE": "KATHERINE",
    "KATHY": "KATHERINE",
    "KATIE": "KATHERINE",
    "KAT": "KATHERINE",
    "CHRIS": "CHRISTOPHER",
    "CHRISTY": "CHRISTINE",
    "CHUCK": "CHARLES",
    "CHARLIE": "CHARLES",
    "DAN": "DANIEL",
    "DANNY": "DANIEL",
    "DAVE": "DAVID",
    "DAVY": "DAVID",
    "DEBBIE": "DEBORAH",
    "DEB": "DEBORAH",
    "DICK": "RICHARD",
    "RICH": "RICHARD",
    "RICK": "RICHARD",
    "RICKY": "RICHARD",
    "DON": "DONALD",
    "DONNY": "DONALD",
    "ED": "EDWARD",
    "EDDIE": "EDWARD",
    "TED": "EDWARD",
    "FRANK": "FRANCIS",
    "FRED": "FREDERICK",
    "GREG": "GREGORY",
    "HANK": "HENRY",
    "HARRY": "HENRY",
    "JACK": "JOHN",
    "JOHNNY": "JOHN",
    "JIM": "JAMES",
    "JIMMY": "JAMES",
    "JAMIE": "JAMES",
    "JEFF": "JEFFREY",
    "JENNY": "JENNIFER",
    "JEN": "JENNIFER",
    "JERRY": "GERALD",
    "JOE": "JOSEPH",
    "JOEY": "JOSEPH",
    "JON": "JONATHAN",
    "JOSH": "JOSHUA",
    "KEN": "KENNETH",
    "KENNY": "KENNETH",
    "LARRY": "LAWRENCE",
    "LEN": "LEONARD",
    "LENNY": "LEONARD",
    "MAGGIE": "MARGARET",
    "MEG": "MARGARET",
    "PEGGY": "MARGARET",
    "MARGE": "MARGARET",
    "MANDY": "AMANDA",
    "MATT": "MATTHEW",
    "MIKE": "MICHAEL",
    "MICKEY": "MICHAEL",
    "NATE": "NATHAN",
    "NICK": "NICHOLAS",
    "PAT": "PATRICIA",
    "PATTY": "PATRICIA",
    "TRISH": "PATRICIA",
    "PETE": "PETER",
    "PHIL": "PHILIP",
    "RAY": "RAYMOND",
    "RON": "RONALD",
    "RONNIE": "RONALD",
    "SAM": "SAMUEL",
    "SAMMY": "SAMUEL",
    "SANDY": "SANDRA",
    "STEVE": "STEVEN",
    "STEPHEN": "STEVEN",
    "SUE": "SUSAN",
    "SUSIE": "SUSAN",
    "TOM": "THOMAS",
    "TOMMY": "THOMAS",
    "TIM": "TIMOTHY",
    "VICKY": "VICTORIA",
    "VAL": "VALERIE",
    "ZACH": "ZACHARY",
    "GABE": "GABRIEL",
    "JOSE": "JOSE",
    "PEPE": "JOSE",
    "PACO": "FRANCISCO",
    "PANCHO": "FRANCISCO",
    "LUPE": "GUADALUPE",
    "CHUY": "JESUS",
    "LALO": "EDUARDO",
    "MEMO": "GUILLERMO",
    "BETO": "ALBERTO",
    "NACHO": "IGNACIO",
    "CHELO": "CONSUELO",
    "CONCHA": "CONCEPCION",
}

# Surname particles that belong to the next word ("DE LA CRUZ" is one surname, not "DE").
SURNAME_PARTICLES = frozenset(
    {"DE", "DEL", "LA", "LAS", "LOS", "DA", "DAS", "DO", "DOS", "DI", "VAN", "VON", "DER", "DEN"}
)
NAME_SUFFIXES = frozenset({"JR", "SR", "II", "III", "IV"})

# USPS-style abbreviations (Publication 28) for street suffixes, directions and unit designators.
ADDRESS_ABBREVIATIONS: dict[str, str] = {
    "STREET": "ST",
    "STR": "ST",
    "AVENUE": "AVE",
    "AV": "AVE",
    "AVEN": "AVE",
    "ROAD": "RD",
    "DRIVE": "DR",
    "DRV": "DR",
    "LANE": "LN",
    "BOULEVARD": "BLVD",
    "BOUL": "BLVD",
    "COURT": "CT",
    "PLACE": "PL",
    "TERRACE": "TER",
    "CIRCLE": "CIR",
    "PARKWAY": "PKWY",
    "HIGHWAY": "HWY",
    "TRAIL": "TRL",
    "SQUARE": "SQ",
    "WAY": "WAY",
    "ALLEY": "ALY",
    "CRESCENT": "CRES",
    "EXPRESSWAY": "EXPY",
    "FREEWAY": "FWY",
    "HEIGHTS": "HTS",
    "POINT": "PT",
    "RIDGE": "RDG",
    "PIKE": "PIKE",
    "LOOP": "LOOP",
    "COVE": "CV",
    "CREEK": "CRK",
    "ESTATES": "EST",
    "GARDENS": "GDNS",
    "MOUNT": "MT",
    "MOUNTAIN": "MTN",
    "CENTER": "CTR",
    "PLAZA": "PLZ",
    "STATION": "STA",
    "VIEW": "VW",
    "VILLAGE": "VLG",
    "APARTMENT": "APT",
    "APARTAMENTO": "APT",
    "SUITE": "STE",
    "UNIT": "UNIT",
    "BUILDING": "BLDG",
    "FLOOR": "FL",
    "ROOM": "RM",
    "NUMBER": "",
    "NO": "",
    "NORTH": "N",
    "SOUTH": "S",
    "EAST": "E",
    "WEST": "W",
    "NORTHEAST": "NE",
    "NORTHWEST": "NW",
    "SOUTHEAST": "SE",
    "SOUTHWEST": "SW",
}

_NON_ALNUM = re.compile(r"[^A-Z0-9 ]+")
_NON_ALPHA = re.compile(r"[^A-Z ]+")
_SPACES = re.compile(r"\s+")


def _per_unique(series: pd.Series, func: Callable[[str], str | None]) -> pd.Series:
    """Apply ``func`` once per distinct non-null value; nulls and empty results become null."""
    values = series.astype("string")
    uniques = values.dropna().unique()
    mapping = {value: func(value) for value in uniques}
    out = values.map(mapping, na_action="ignore").astype("string")
    return out.mask(out == "")


def strip_accents(text: str) -> str:
    """Remove diacritics: ``"Muñoz"`` -> ``"Munoz"`` (NFKD, then drop combining marks)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def clean_name_text(text: str) -> str:
    """Upper case, no accents, hyphens/dots/apostrophes as word breaks, letters and spaces only."""
    text = strip_accents(text).upper()
    text = text.replace("'", "").replace("’", "")  # O'BRIEN -> OBRIEN
    text = _NON_ALPHA.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


def _surname_tokens(text: str) -> list[str]:
    """Split a cleaned surname into surname units, gluing particles to the following word."""
    words = [w for w in text.split(" ") if w and w not in NAME_SUFFIXES]
    units: list[str] = []
    pending: list[str] = []
    for word in words:
        if word in SURNAME_PARTICLES:
            pending.append(word)
            continue
        units.append("".join([*pending, word]))
        pending = []
    if pending:  # a surname made only of particles ("DE LA"): keep it as one unit
        units.append("".join(pending))
    return units


def standardize_first_name(series: pd.Series) -> pd.DataFrame:
    """Standardized given names.

    Returns
    -------
    DataFrame with ``first_name`` (cleaned, first word only: middle names dropped),
    ``first_name_full`` (all words, no spaces) and ``first_name_canon`` (nickname-resolved).
    """

    def first_word(text: str) -> str:
        words = [w for w in clean_name_text(text).split(" ") if w and w not in NAME_SUFFIXES]
        return words[0] if words else ""

    first = _per_unique(series, first_word)
    full = _per_unique(series, lambda t: clean_name_text(t).replace(" ", ""))
    canon = first.map(lambda v: NICKNAMES.get(v, v), na_action="ignore").astype("string")
    return pd.DataFrame({"first_name": first, "first_name_full": full, "first_name_canon": canon})


def standardize_last_name(series: pd.Series) -> pd.DataFrame:
    """Standardized surnames, keeping compound and double surnames comparable.

    Returns
    -------
    DataFrame with ``last_name`` (full surname, spaces and hyphens removed: ``"GARCIA-LOPEZ"``
    and ``"Garcia Lopez"`` both give ``GARCIALOPEZ``), ``last_name_first`` (first surname unit,
    ``GARCIA``; particles kept: ``"de la Cruz"`` -> ``DELACRUZ``) and ``last_name_last`` (last
    unit, ``LOPEZ``, for a record that kept only the second surname).
    """
    cleaned = _per_unique(series, clean_name_text)
    full = _per_unique(cleaned, lambda t: "".join(_surname_tokens(t)))
    first = _per_unique(cleaned, lambda t: next(iter(_surname_tokens(t)), ""))
    last = _per_unique(cleaned, lambda t: (_surname_tokens(t) or [""])[-1])
    return pd.DataFrame({"last_name": full, "last_name_first": first, "last_name_last": last})


def soundex(text: str) -> str:
    """American Soundex code (letter + 3 digits) of an upper-case ASCII word."""
    codes = {
        **dict.fromkeys("BFPV", "1"),
        **dict.fromkeys("CGJKQSXZ", "2"),
        **dict.fromkeys("DT", "3"),
        "L": "4",
        **dict.fromkeys("MN", "5"),
        "R": "6",
    }
    letters = [c for c in text if "A" <= c <= "Z"]
    if not letters:
        return ""
    out = [letters[0]]
    previous = codes.get(letters[0], "")
    for char in letters[1:]:
        code = codes.get(char, "")
        if code and code != previous:
            out.append(code)
        if char not in "HW":  # H and W do not separate equal codes; vowels do
            previous = code
    return ("".join(out) + "000")[:4]


def soundex_series(series: pd.Series) -> pd.Series:
    """Soundex of each value of a standardized name series (null stays null)."""
    return _per_unique(series, soundex)


def standardize_dob(
    series: pd.Series, reference_date: str | pd.Timestamp, earliest: str = "1890-01-01"
) -> pd.DataFrame:
    """Parse dates of birth; impossible dates become null and are flagged.

    Impossible: unparseable text (e.g. 1990-02-30), before ``earliest`` or after the reference
    date.

    Returns
    -------
    DataFrame with ``dob`` (ISO ``YYYY-MM-DD`` string or null), ``birth_year``, ``birth_month``,
    ``birth_day`` (nullable ints) and ``dob_invalid`` (bool: a value was given but is impossible).
    """
    given = series.notna()
    parsed = pd.to_datetime(series, errors="coerce", format="mixed")
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_localize(None)
    reference = pd.Timestamp(reference_date)
    in_range = (parsed >= pd.Timestamp(earliest)) & (parsed <= reference)
    parsed = parsed.where(in_range)
    dob = parsed.dt.strftime("%Y-%m-%d").astype("string")
    return pd.DataFrame(
        {
            "dob": dob,
            "birth_year": parsed.dt.year.astype("Int64"),
            "birth_month": parsed.dt.month.astype("Int64"),
            "birth_day": parsed.dt.day.astype("Int64"),
            "dob_invalid": (given & parsed.isna()).to_numpy(),
        },
        index=series.index,
    )


def standardize_ssn(series: pd.Series, accept_synthetic_9xx: bool = True) -> pd.Series:
    """Format SSNs as 9 digits; invalid patterns become null.

    Invalid: not 9 digits, area 000 or 666, group 00, serial 0000, and area 900-999. Area 9xx is
    never issued as an SSN (ITINs live there: group 50-65, 70-88, 90-92, 94-99). This lab's
    synthetic SSNs deliberately use area 900-999 with group 01-65 so that they can never be
    real: with ``accept_synthetic_9xx`` those are kept, while ITIN-shaped values (area 9xx with
    group 70-99) are still nulled.
    """
    digits = series.astype("string").str.replace(r"[^0-9]", "", regex=True)
    valid = digits.str.len() == 9
    area = pd.to_numeric(digits.str[:3], errors="coerce")
    group = pd.to_numeric(digits.str[3:5], errors="coerce")
    serial = pd.to_numeric(digits.str[5:], errors="coerce")
    valid &= (area != 0) & (area != 666) & (group != 0) & (serial != 0)
    area_9xx = area >= 900
    if accept_synthetic_9xx:
        valid &= ~area_9xx | (group <= 65)
    else:
        valid &= ~area_9xx
    return digits.where(valid.fillna(False)).astype("string")


def _clean_address(text: str) -> str:
    text = strip_accents(text).upper().replace("#", " APT ")
    text = _NON_ALNUM.sub(" ", text)
    words = [ADDRESS_ABBREVIATIONS.get(w, w) for w in text.split()]
    return " ".join(w for w in words if w)


def standardize_address(series: pd.Series) -> pd.DataFrame:
    """Upper case, no punctuation, USPS abbreviations (``Street`` -> ``ST``, ``Avenue`` -> ``AVE``).

    Returns
    -------
    DataFrame with ``address`` (standardized) and ``house_number`` (leading number or null).
    """
    address = _per_unique(series, _clean_address)
    house = address.str.extract(r"^(\d+)\b", expand=False).astype("string")
    return pd.DataFrame({"address": address, "house_number": house})


def standardize_zip(series: pd.Series) -> pd.Series:
    """Postal code digits: US ZIP+4 trimmed to five digits; 3-4 digit codes (e.g. FEBRL's
    Australian postcodes) kept as they are; anything else becomes null."""
    digits = series.astype("string").str.replace(r"[^0-9]", "", regex=True)
    digits = digits.where(digits.str.len() < 5, digits.str[:5])
    return digits.where(digits.str.len() >= 3).astype("string")


def standardize_sex(series: pd.Series) -> pd.Series:
    """``F``/``M`` from common spellings (female/male/f/m/1/2); anything else null."""
    text = series.astype("string").str.strip().str.upper().str[:1]
    text = text.replace({"1": "M", "2": "F"})
    return text.where(text.isin(["F", "M"])).astype("string")


IDENTITY_COLUMNS = ("first_name", "last_name", "dob", "sex", "ssn", "address", "zip", "block_id")


def standardize_identity(
    table: pd.DataFrame,
    id_column: str,
    reference_date: str,
    accept_synthetic_9xx: bool = True,
) -> pd.DataFrame:
    """Standardize every identity column ``table`` has into the linkage schema.

    Columns absent from ``table`` come out as all-null, so a source and the frame always share
    one schema. ``unique_id`` is the original ``id_column``; ``other_id`` is a free identifier
    compared as text (FEBRL's ``soc_sec_id``), never validated as an SSN.
    """
    index = table.index

    def column(name: str) -> pd.Series:
        if name in table.columns:
            return table[name]
        return pd.Series(pd.NA, index=index, dtype="string")

    out = pd.DataFrame({"unique_id": table[id_column].astype("string")}, index=index)
    out = out.join(standardize_first_name(column("first_name")))
    out = out.join(standardize_last_name(column("last_name")))
    out["first_name_sx"] = soundex_series(out["first_name"])
    out["last_name_sx"] = soundex_series(out["last_name_first"])
    out = out.join(standardize_dob(column("dob"), reference_date))
    out["sex"] = standardize_sex(column("sex"))
    out["ssn"] = standardize_ssn(column("ssn"), accept_synthetic_9xx)
    out = out.join(standardize_address(column("address")))
    out["zip"] = standardize_zip(column("zip"))
    block = column("block_id").astype("string").str.strip()
    out["block_id"] = block.mask(block == "")
    other = column("other_id").astype("string").str.replace(r"[^0-9A-Za-z]", "", regex=True)
    out["other_id"] = other.mask(other == "")
    return out.reset_index(drop=True)


__all__ = [
    "ADDRESS_ABBREVIATIONS",
    "NICKNAMES",
    "soundex",
    "standardize_address",
    "standardize_dob",
    "standardize_first_name",
    "standardize_identity",
    "standardize_last_name",
    "standardize_sex",
    "standardize_ssn",
    "standardize_zip",
    "strip_accents",
]
