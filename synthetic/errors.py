"""Record errors, injected vectorized: each error picks its rows with one Bernoulli draw per row
and edits only those rows (so the cost grows with the number of errors, not of records).

Errors: typos (substitution, deletion, insertion, transposition), nicknames, swapped first and
last names, double surnames, swapped day and month of birth, year-of-birth slips, sex slips,
wrong SSN digits, stale addresses, missing values, within-source duplicates.
"""

from __future__ import annotations

import numpy as np

# Formal given name -> a common nickname (English and Spanish usage).
NICKNAMES: dict[str, str] = {
    "William": "Bill", "Robert": "Bob", "Richard": "Rick", "James": "Jim", "John": "Jack",
    "Michael": "Mike", "Joseph": "Joe", "Thomas": "Tom", "Charles": "Charlie",
    "Christopher": "Chris", "Daniel": "Dan", "Matthew": "Matt", "Anthony": "Tony",
    "Donald": "Don", "Steven": "Steve", "Andrew": "Andy", "Joshua": "Josh", "Kenneth": "Ken",
    "Edward": "Ed", "Ronald": "Ron", "Timothy": "Tim", "Jeffrey": "Jeff", "Benjamin": "Ben",
    "Samuel": "Sam", "Gregory": "Greg", "Alexander": "Alex", "Patrick": "Pat",
    "Nicholas": "Nick", "Jonathan": "Jon", "David": "Dave", "Elizabeth": "Liz",
    "Jennifer": "Jenny", "Margaret": "Maggie", "Katherine": "Kate", "Catherine": "Cathy",
    "Patricia": "Patty", "Barbara": "Barb", "Susan": "Sue", "Deborah": "Debbie",
    "Rebecca": "Becky", "Kimberly": "Kim", "Jessica": "Jess", "Christina": "Tina",
    "Victoria": "Vicky", "Abigail": "Abby", "Samantha": "Sam", "Alexandra": "Alex",
    "Francisco": "Paco", "José": "Pepe", "Guadalupe": "Lupe", "Roberto": "Beto",
    "Alejandro": "Alex", "Jesús": "Chuy", "Manuel": "Manolo", "Ignacio": "Nacho",
    "Enrique": "Quique", "Dolores": "Lola", "Eduardo": "Lalo", "Rosario": "Chayo",
}  # fmt: skip
LOWER = np.array(list("abcdefghijklmnopqrstuvwxyz"))


def pick(n: int, rate: float | np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask: each of ``n`` rows chosen with probability ``rate`` (scalar or per row)."""
    if np.all(np.asarray(rate) <= 0):
        return np.zeros(n, dtype=bool)
    return rng.random(n) < np.minimum(rate, 1.0)


def typo(text: str, kind: int, where: float, letter: str) -> str:
    """One keyboard-style edit inside ``text`` (never the first letter, never empty).

    ``kind``: 0 substitution, 1 deletion, 2 insertion, 3 transposition; ``where`` in [0, 1)
    picks the position; ``letter`` is the letter substituted or inserted.
    """
    if len(text) < 3:
        return text + letter
    pos = 1 + int(where * (len(text) - 1))
    if kind == 0:
        return text[:pos] + letter + text[pos + 1 :]
    if kind == 1:
        return text[:pos] + text[pos + 1 :]
    if kind == 2:
        return text[:pos] + letter + text[pos:]
    if pos < len(text) - 1:
        return text[:pos] + text[pos + 1] + text[pos] + text[pos + 2 :]
    return text[:pos] + letter


def apply_typos(
    values: np.ndarray, rate: float | np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Copy of ``values`` with a typo in a ``rate`` share of the non-null entries.

    The random parts of every edit are drawn at once; only the string surgery is per value.
    """
    out = values.copy()
    chosen = np.flatnonzero(pick(len(values), rate, rng))
    k = len(chosen)
    if k == 0:
        return out
    kinds = rng.integers(0, 4, k).tolist()
    where = rng.random(k).tolist()
    letters = LOWER[rng.integers(0, len(LOWER), k)].tolist()
    for i, kind, pos, letter in zip(chosen.tolist(), kinds, where, letters, strict=True):
        text = out[i]
        if isinstance(text, str) and text:
            out[i] = typo(text, kind, pos, letter)
    return out


def apply_nicknames(first: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    """Replace a ``rate`` share of first names that have a common nickname by the nickname."""
    out = first.copy()
    for i in np.flatnonzero(pick(len(first), rate, rng)):
        nick = NICKNAMES.get(out[i]) if isinstance(out[i], str) else None
        if nick:
            out[i] = nick
    return out


def swap_day_month(
    dob: np.ndarray, rate: float | np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Swap day and month of birth (only where the day is a valid month and differs)."""
    out = dob.copy()
    chosen = pick(len(dob), rate, rng) & ~np.isnat(dob)
    if not chosen.any():
        return out
    d = dob[chosen]
    year = d.astype("datetime64[Y]")
    month = d.astype("datetime64[M]").astype(np.int64) % 12 + 1
    day = (d - d.astype("datetime64[M]")).astype(np.int64) + 1
    ok = (day <= 12) & (day != month)
    swapped = year.astype("datetime64[M]") + (day - 1).astype("timedelta64[M]")
    swapped = swapped.astype("datetime64[D]") + (np.minimum(month, 28) - 1).astype("timedelta64[D]")
    out[np.flatnonzero(chosen)[ok]] = swapped[ok]
    return out


def shift_year(dob: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    """Move the date of birth by one year (either way) for a ``rate`` share of rows."""
    out = dob.copy()
    chosen = pick(len(dob), rate, rng) & ~np.isnat(dob)
    sign = np.where(rng.random(int(chosen.sum())) < 0.5, -365, 365)
    out[chosen] = out[chosen] + sign.astype("timedelta64[D]")
    return out


def wrong_ssn_digit(ssn: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    """Change one digit of a ``rate`` share of ``9AA-GG-SSSS`` strings.

    Only the last two area digits and the serial change, so a corrupted synthetic SSN is
    still a never-issued 9xx number with group 01-49 (never ITIN-shaped) and a nonzero serial.
    """
    out = ssn.copy()
    for i in np.flatnonzero(pick(len(ssn), rate, rng)):
        value = out[i]
        if not isinstance(value, str) or len(value) != 11:
            continue
        pos = (1, 2, 7, 8, 9, 10)[int(rng.integers(0, 6))]
        digit = str((int(value[pos]) + int(rng.integers(1, 10))) % 10)
        changed = value[:pos] + digit + value[pos + 1 :]
        if changed[7:] == "0000":
            changed = changed[:10] + "1"
        out[i] = changed
    return out


def null_out(values: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    """Copy of ``values`` with a ``rate`` share set to missing (None or NaT)."""
    out = values.copy()
    chosen = pick(len(values), rate, rng)
    if out.dtype.kind == "M":
        out[chosen] = np.datetime64("NaT", "D")
    else:
        out[chosen] = None
    return out
