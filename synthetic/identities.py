"""Identities: names by birthplace (Faker locales), synthetic SSNs, ITINs, A-numbers, addresses.

Faker is used only as a source of word lists: each locale's first-name and last-name lists
(and their weights, where the provider has them) are read once and cached; numpy draws every
person's name by index. Faker is never called per person.

Identifiers can never be real ones:

- SSNs: area 900-999 (never issued by the SSA) with group 01-49, which is not an ITIN group
  (ITINs use groups 50-65, 70-88, 90-92, 94-99); serial 0001-9999.
- ITINs: area 900-999 with group 70-88, the IRS's ITIN shape.
- A-numbers: ``A`` + 9 digits.
"""

from __future__ import annotations

import importlib
from functools import cache

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from synthetic.population import CHILD, HEAD, NATIVE, NONRELATIVE, OTHER_RELATIVE, PARENT, SPOUSE

US = "United States"

# Birth countries of the foreign-born (share of the US foreign-born, ACS 2019, rounded; the
# listed countries renormalized) and the Faker locales of their first and last names. Latin
# script locales only; Chinese and Japanese names use Faker's romanized lists.
COUNTRIES: tuple[tuple[str, float, str, str], ...] = (
    ("Mexico", 24.3, "es_MX", "es_MX"),
    ("India", 6.0, "en_IN", "en_IN"),
    ("China", 5.2, "zh_CN", "zh_CN"),
    ("Philippines", 4.5, "en_US", "es_ES"),  # English given names, Spanish-origin surnames
    ("El Salvador", 3.1, "es_MX", "es_MX"),
    ("Vietnam", 3.0, "vi_VN", "vi_VN"),
    ("Cuba", 3.0, "es_ES", "es_ES"),
    ("Dominican Republic", 2.6, "es_ES", "es_CO"),
    ("Guatemala", 2.1, "es_MX", "es_MX"),
    ("Colombia", 1.8, "es_CO", "es_CO"),
    ("Canada", 1.8, "en_US", "en_GB"),
    ("Jamaica", 1.7, "en_GB", "en_GB"),
    ("Honduras", 1.5, "es_MX", "es_CO"),
    ("Haiti", 1.5, "fr_FR", "fr_FR"),
    ("United Kingdom", 1.5, "en_GB", "en_GB"),
    ("Germany", 1.2, "de_DE", "de_DE"),
    ("Brazil", 1.1, "pt_BR", "pt_BR"),
    ("Venezuela", 1.0, "es_AR", "es_CO"),
    ("Peru", 1.0, "es_AR", "es_MX"),
    ("Ecuador", 1.0, "es_CO", "es_MX"),
    ("Nigeria", 0.9, "yo_NG", "yo_NG"),
    ("Pakistan", 0.9, "en_PK", "en_PK"),
    ("Japan", 0.7, "ja_JP", "ja_JP"),
    ("Italy", 0.6, "it_IT", "it_IT"),
    ("Portugal", 0.4, "pt_PT", "pt_PT"),
)
COUNTRY_NAMES = (US, *(c[0] for c in COUNTRIES))
# Name heritage of native-born households (first names mostly American, surnames by heritage).
NATIVE_HERITAGE: tuple[tuple[str, float], ...] = (
    ("en_US", 0.80),
    ("es_MX", 0.11),
    ("es_CO", 0.02),
    ("de_DE", 0.02),
    ("it_IT", 0.015),
    ("fr_FR", 0.01),
    ("en_IN", 0.01),
    ("zh_CN", 0.01),
    ("vi_VN", 0.005),
)
LOCALES = tuple(
    sorted({c[2] for c in COUNTRIES} | {c[3] for c in COUNTRIES} | {h[0] for h in NATIVE_HERITAGE})
)
# Two-letter postal codes by state FIPS (for ZIP ranges from Faker's en_US address provider).
STATE_ABBR = {
    "01": "AL", "02": "AK", "04": "AZ", "05": "AR", "06": "CA", "08": "CO", "09": "CT",
    "10": "DE", "11": "DC", "12": "FL", "13": "GA", "15": "HI", "16": "ID", "17": "IL",
    "18": "IN", "19": "IA", "20": "KS", "21": "KY", "22": "LA", "23": "ME", "24": "MD",
    "25": "MA", "26": "MI", "27": "MN", "28": "MS", "29": "MO", "30": "MT", "31": "NE",
    "32": "NV", "33": "NH", "34": "NJ", "35": "NM", "36": "NY", "37": "NC", "38": "ND",
    "39": "OH", "40": "OK", "41": "OR", "42": "PA", "44": "RI", "45": "SC", "46": "SD",
    "47": "TN", "48": "TX", "49": "UT", "50": "VT", "51": "VA", "53": "WA", "54": "WV",
    "55": "WI", "56": "WY",
}  # fmt: skip


def country_weights(tilt: dict[str, float]) -> np.ndarray:
    """Birth-country probabilities of the foreign-born: national shares times ``tilt``.

    Raises
    ------
    ValueError
        If ``tilt`` names a country not in :data:`COUNTRIES`.
    """
    unknown = sorted(set(tilt) - {c[0] for c in COUNTRIES})
    if unknown:
        raise ValueError(f"unknown birth countries {unknown}; known: {[c[0] for c in COUNTRIES]}")
    weights = np.array([c[1] * float(tilt.get(c[0], 1.0)) for c in COUNTRIES])
    return weights / weights.sum()


def _weighted(values) -> tuple[np.ndarray, np.ndarray]:
    """Names and probabilities from a Faker list (equal weights) or OrderedDict (weights)."""
    if isinstance(values, dict):
        names = np.array(list(values.keys()), dtype=object)
        weights = np.array(list(values.values()), dtype=float)
    else:
        names = np.array(list(values), dtype=object)
        weights = np.ones(len(names))
    return names, weights / weights.sum()


@cache
def name_pools(locale: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """First names (by sex) and last names of one Faker locale, read once and cached.

    Returns
    -------
    dict with ``male``, ``female`` and ``last``: each ``(names, probabilities)``.
    """
    provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
    if hasattr(provider, "first_romanized_names"):  # zh_CN, ja_JP: romanized names only
        first = _weighted(provider.first_romanized_names)
        return {"male": first, "female": first, "last": _weighted(provider.last_romanized_names)}
    male = getattr(provider, "first_names_male", None) or provider.first_names
    female = getattr(provider, "first_names_female", None) or provider.first_names
    pools = {
        "male": _weighted(male),
        "female": _weighted(female),
        "last": _weighted(provider.last_names),
    }
    for key, (names, _probs) in pools.items():
        if len(names) < 5:
            raise ValueError(f"Faker locale {locale} has too few {key} names ({len(names)})")
    return pools


@cache
def street_pool() -> np.ndarray:
    """Street names ('Maple Avenue'-like) from Faker's en_US word lists, read once."""
    person = importlib.import_module("faker.providers.person.en_US").Provider
    address = importlib.import_module("faker.providers.address.en_US").Provider
    stems = sorted(set(list(person.last_names)[:400]) | set(list(person.first_names_female)[:100]))
    suffixes = list(address.street_suffixes)
    common = ["Street", "Avenue", "Road", "Drive", "Lane", "Court", "Place", "Way", "Boulevard"]
    # Common suffixes dominate, as on real maps; the rest of Faker's list gives variety.
    combos = [f"{s} {suf}" for s in stems for suf in common]
    combos += [f"{s} {suffixes[i % len(suffixes)]}" for i, s in enumerate(stems)]
    return np.array(combos, dtype=object)


def _draw_from_pool(
    pool: tuple[np.ndarray, np.ndarray], k: int, rng: np.random.Generator
) -> np.ndarray:
    names, probs = pool
    return names[rng.choice(len(names), size=k, p=probs)]


def draw_names(
    locale_index: np.ndarray, male: np.ndarray, kind: str, rng: np.random.Generator
) -> np.ndarray:
    """Names of each person from the pool of their locale (``kind``: 'first' or 'last')."""
    out = np.empty(len(locale_index), dtype=object)
    for li, locale in enumerate(LOCALES):
        mask = locale_index == li
        if not mask.any():
            continue
        pools = name_pools(locale)
        if kind == "last":
            out[mask] = _draw_from_pool(pools["last"], int(mask.sum()), rng)
        else:
            for sex_mask, key in ((male, "male"), (~male, "female")):
                sub = mask & sex_mask
                if sub.any():
                    out[sub] = _draw_from_pool(pools[key], int(sub.sum()), rng)
    return out


def unique_integers(n: int, space: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` distinct integers from ``[0, space)`` in random order."""
    if n > space // 2:
        raise ValueError(f"cannot draw {n} distinct values from a space of {space}")
    draws = rng.integers(0, space, size=int(n * 1.05) + 16)
    while True:
        _, first = np.unique(draws, return_index=True)
        first.sort()
        if len(first) >= n:
            return draws[first[:n]]
        draws = np.concatenate([draws, rng.integers(0, space, size=n)])


SSN_GROUPS = 49  # groups 01-49
ITIN_GROUPS = np.array([*range(70, 89)])


def make_ssns(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` distinct synthetic SSNs ``9AA-GG-SSSS`` (area 900-999, group 01-49)."""
    k = unique_integers(n, 100 * SSN_GROUPS * 9999, rng)
    area = 900 + k // (SSN_GROUPS * 9999)
    group = 1 + (k // 9999) % SSN_GROUPS
    serial = 1 + k % 9999
    return _format_ssn(area, group, serial)


def make_itins(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` distinct synthetic ITINs ``9AA-GG-SSSS`` with group 70-88."""
    k = unique_integers(n, 100 * len(ITIN_GROUPS) * 10000, rng)
    area = 900 + k // (len(ITIN_GROUPS) * 10000)
    group = ITIN_GROUPS[(k // 10000) % len(ITIN_GROUPS)]
    serial = k % 10000
    return _format_ssn(area, group, serial)


def _digits(values: np.ndarray, width: int) -> pa.Array:
    return pc.utf8_lpad(pa.array(np.asarray(values, dtype=np.int64)).cast(pa.string()), width, "0")


def _format_ssn(area: np.ndarray, group: np.ndarray, serial: np.ndarray) -> np.ndarray:
    """``AAA-GG-SSSS`` strings (vectorized with Arrow compute)."""
    joined = pc.binary_join_element_wise(
        _digits(area, 3), _digits(group, 2), _digits(serial, 4), "-"
    )
    return joined.to_numpy(zero_copy_only=False).astype(object)


def make_a_numbers(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` distinct A-numbers ``A`` + 9 digits (A010000000-A229999999)."""
    k = 10_000_000 + unique_integers(n, 220_000_000, rng)
    joined = pc.binary_join_element_wise("A", _digits(k, 9), "")
    return joined.to_numpy(zero_copy_only=False).astype(object)


def sample_identities(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """``n`` stand-alone identities the vectorized way (for benchmarks against Faker-per-row).

    Same fields as a naive Faker-per-row generator: first and last name (locale by birth
    country), date of birth, sex, SSN, street address, ZIP and birth country.
    """
    weights = country_weights({})
    foreign = rng.random(n) < 0.14
    country = np.where(foreign, 1 + rng.choice(len(COUNTRIES), size=n, p=weights), 0)
    locale_pos = {loc: i for i, loc in enumerate(LOCALES)}
    first_loc = np.array([locale_pos["en_US"], *(locale_pos[c[2]] for c in COUNTRIES)])[country]
    last_loc = np.array([locale_pos["en_US"], *(locale_pos[c[3]] for c in COUNTRIES)])[country]
    male = rng.random(n) < 0.5
    streets = street_pool()
    number = rng.integers(1, 9999, n)
    address = pc.binary_join_element_wise(
        pa.array(number).cast(pa.string()), pa.array(streets[rng.integers(0, len(streets), n)]), " "
    )
    dob = np.datetime64("2020-04-01") - rng.integers(0, 100 * 365, n).astype("timedelta64[D]")
    return pd.DataFrame(
        {
            "first_name": draw_names(first_loc, male, "first", rng),
            "last_name": draw_names(last_loc, male, "last", rng),
            "dob": dob,
            "sex": np.where(male, "M", "F"),
            "ssn": make_ssns(n, rng),
            "address": address.to_numpy(zero_copy_only=False),
            "zip": _digits(rng.integers(1000, 99999, n), 5).to_numpy(zero_copy_only=False),
            "birth_country": np.array(COUNTRY_NAMES, dtype=object)[country],
        }
    )


def assign_identities(
    persons: pd.DataFrame,
    households: pd.DataFrame,
    blocks: pd.DataFrame,
    cfg: dict,
    rng: np.random.Generator,
) -> None:
    """Add birth country, names, SSN/ITIN/A-number holdings and addresses to ``persons``.

    Adds columns ``birth_country, first_name, last_name, second_surname, ssn, itin,
    a_number, address, zip, previous_address, previous_zip`` (in place) and ``address, zip``
    to ``households``.
    """
    n = len(persons)
    status = persons["status"].to_numpy()
    role = persons["role"].to_numpy()
    hh = persons["household_index"].to_numpy()
    male = persons["male"].to_numpy()
    n_hh = len(households)
    foreign = status != NATIVE
    # Country of each household (the householder's), and of each foreign-born member, with
    # the national mix tilted by state (Cubans in Florida, Dominicans in New York, ...).
    hh_state = blocks["county_id"].to_numpy(dtype=str)[households["block_index"].to_numpy()]
    hh_state = np.array([c[:2] for c in hh_state.tolist()], dtype=object)
    hh_country = np.zeros(n_hh, dtype=np.int64)
    own_country = np.zeros(n, dtype=np.int64)
    person_state = hh_state[hh]
    for state in sorted(set(hh_state.tolist())):
        weights = country_weights(cfg["birth_country_tilt"].get(state, {}))
        in_state = hh_state == state
        hh_country[in_state] = 1 + rng.choice(len(COUNTRIES), size=int(in_state.sum()), p=weights)
        people = person_state == state
        own_country[people] = 1 + rng.choice(len(COUNTRIES), size=int(people.sum()), p=weights)
    person_country = hh_country[hh]
    independent = ((role == SPOUSE) & (rng.random(n) < 0.15)) | (role == NONRELATIVE)
    person_country = np.where(independent, own_country, person_country)
    birth_country = np.where(foreign, person_country, 0)
    persons["birth_country"] = np.array(COUNTRY_NAMES, dtype=object)[birth_country]

    locale_pos = {loc: i for i, loc in enumerate(LOCALES)}
    first_loc_of_country = np.array([locale_pos["en_US"], *(locale_pos[c[2]] for c in COUNTRIES)])
    last_loc_of_country = np.array([locale_pos["en_US"], *(locale_pos[c[3]] for c in COUNTRIES)])
    heritage_p = np.array([h[1] for h in NATIVE_HERITAGE])
    hh_heritage = np.array([locale_pos[h[0]] for h in NATIVE_HERITAGE])[
        rng.choice(len(NATIVE_HERITAGE), size=n_hh, p=heritage_p / heritage_p.sum())
    ]
    immigrant_hh = households["immigrant"].to_numpy()
    # Surname locale of each household: the householder's country, or the native heritage.
    hh_last_loc = np.where(immigrant_hh, last_loc_of_country[hh_country], hh_heritage)
    hh_first_loc = np.where(immigrant_hh, first_loc_of_country[hh_country], hh_heritage)
    us_first = rng.random(n) < np.where(immigrant_hh[hh], 0.5, 0.75)
    first_loc = np.where(
        foreign,
        first_loc_of_country[person_country],
        np.where(us_first, locale_pos["en_US"], hh_first_loc[hh]),
    )
    own_last_loc = np.where(foreign, last_loc_of_country[person_country], hh_last_loc[hh])
    first = draw_names(first_loc, male, "first", rng)
    own_last = draw_names(own_last_loc, male, "last", rng)
    second = draw_names(own_last_loc, male, "last", rng)
    head_pos = np.flatnonzero(role == HEAD)
    hh_surname = np.empty(n_hh, dtype=object)
    hh_surname[hh[head_pos]] = own_last[head_pos]
    share_p = np.select(
        [role == SPOUSE, role == CHILD, role == PARENT, role == OTHER_RELATIVE],
        [0.7, 0.95, 0.35, 0.5],
        default=0.0,
    )
    shares = rng.random(n) < share_p
    last = np.where(shares, hh_surname[hh], own_last)
    persons["first_name"] = first
    persons["last_name"] = last
    persons["second_surname"] = second
    persons["birth_surname"] = own_last  # before taking the household's surname (marriage)
    persons["name_locale"] = np.array(LOCALES, dtype=object)[first_loc]
    # Spanish / Portuguese naming (two surnames): records may carry both.
    iberian_locale = np.array([loc[:2] in ("es", "pt") for loc in LOCALES])
    persons["iberian_name"] = iberian_locale[own_last_loc]

    # Identifiers held (truth): SSN by status and age; ITIN for some of those without one.
    id_cfg = cfg["identifiers"]
    names = ("native_citizen", "naturalized", "lpr", "temporary", "unauthorized")
    ssn_p = np.array([float(id_cfg["ssn_holding"][s]) for s in names])[status]
    child = persons["age"].to_numpy() < 18
    ssn_p = np.where(
        child & (status == NATIVE),
        np.minimum(ssn_p, float(id_cfg["ssn_holding_native_child"])),
        ssn_p,
    )
    has_ssn = rng.random(n) < ssn_p
    ssn = np.full(n, None, dtype=object)
    ssn[has_ssn] = make_ssns(int(has_ssn.sum()), rng)
    itin_p = np.where(
        child, float(id_cfg["itin_holding_dependent"]), float(id_cfg["itin_holding_adult"])
    )
    has_itin = foreign & (status >= 3) & ~has_ssn & (rng.random(n) < itin_p)
    itin = np.full(n, None, dtype=object)
    itin[has_itin] = make_itins(int(has_itin.sum()), rng)
    a_p = np.select(
        [status == 1, status == 2, status == 3, status == 4],
        [1.0, 1.0, float(id_cfg["a_number_temporary"]), float(id_cfg["a_number_unauthorized"])],
        default=0.0,
    )
    has_a = rng.random(n) < a_p
    a_number = np.full(n, None, dtype=object)
    a_number[has_a] = make_a_numbers(int(has_a.sum()), rng)
    persons["ssn"] = ssn
    persons["itin"] = itin
    persons["a_number"] = a_number

    _addresses(persons, households, blocks, cfg, rng)


def _addresses(
    persons: pd.DataFrame,
    households: pd.DataFrame,
    blocks: pd.DataFrame,
    cfg: dict,
    rng: np.random.Generator,
) -> None:
    """House number + street per household (apartments in large blocks); ZIP per tract group."""
    streets = street_pool()
    n_blocks = len(blocks)
    block_streets = rng.integers(0, len(streets), size=(n_blocks, 2))
    block_base = 100 * rng.integers(1, 99, size=n_blocks)
    hh_block = households["block_index"].to_numpy()
    n_hh = len(households)
    # Rank of each household within its block (households are stored block by block).
    order = np.argsort(hh_block, kind="stable")
    sorted_blocks = hh_block[order]
    first_of_block = np.searchsorted(sorted_blocks, sorted_blocks, side="left")
    rank = np.empty(n_hh, dtype=np.int64)
    rank[order] = np.arange(n_hh) - first_of_block
    apartment_block = blocks["target_persons"].to_numpy() >= int(
        cfg["geography"]["apartment_block_persons"]
    )
    side = rng.integers(0, 2, size=n_hh)
    street = streets[block_streets[hh_block, side]]
    apartment = apartment_block[hh_block]
    number = np.where(apartment, block_base[hh_block] + 1, block_base[hh_block] + 2 * rank + side)
    unit = rank + 101
    street_line = pc.binary_join_element_wise(
        pa.array(number).cast(pa.string()), pa.array(street, type=pa.string()), " "
    )
    with_unit = pc.binary_join_element_wise(street_line, pa.array(unit).cast(pa.string()), " Apt ")
    address = pc.if_else(pa.array(apartment), with_unit, street_line)
    address = address.to_numpy(zero_copy_only=False).astype(object)
    # ZIP codes: a run of tracts shares one; ranges follow each state's real ZIP range.
    zip_of_block = _zips(blocks, int(cfg["geography"]["tracts_per_zip"]))
    hh_zip = zip_of_block[hh_block]
    households["address"] = address
    households["zip"] = hh_zip
    hh = persons["household_index"].to_numpy()
    persons["address"] = address[hh]
    persons["zip"] = hh_zip[hh]
    # A previous address (used by stale records): another household's, anywhere in the world.
    previous = (hh + 1 + rng.integers(0, max(n_hh - 1, 1), size=len(persons))) % n_hh
    persons["previous_address"] = address[previous]
    persons["previous_zip"] = hh_zip[previous]


def _zips(blocks: pd.DataFrame, tracts_per_zip: int) -> np.ndarray:
    address = importlib.import_module("faker.providers.address.en_US").Provider
    out = np.empty(len(blocks), dtype=object)
    for county_id, rows in blocks.groupby("county_id", sort=False):
        state = STATE_ABBR.get(str(county_id)[:2])
        lo, hi = address.states_postcode.get(state, (600, 999)) if state else (600, 999)
        tract_codes, tract_index = np.unique(
            rows["tract_id"].to_numpy(dtype=str), return_inverse=True
        )
        n_zips = int(tract_index.max()) // tracts_per_zip + 1
        span = max(hi - lo - n_zips, 1)
        base = lo + (int(county_id[2:]) * 37) % span
        zips = np.array([f"{min(base + i, hi):05d}" for i in range(n_zips)], dtype=object)
        out[rows.index.to_numpy()] = zips[tract_index // tracts_per_zip]
    return out
