"""Administrative sources: one table per agency, as that agency would hold its records.

Each ``make_<source>`` function takes the true persons (with identities), the ``synthetic``
config, the reference date and a generator, and returns a DataFrame with the source's fields
plus an internal ``person_index`` column (the truth link, removed before the source is
written). Identity fields carry record errors (see :mod:`synthetic.errors`); coverage, date
windows and staleness follow the config.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from synthetic import errors
from synthetic.population import (
    DAYS_PER_YEAR,
    LPR,
    NATIVE,
    NATURALIZED,
    STATUS_NAMES,
    TEMPORARY,
    UNAUTHORIZED,
)

NAT = np.datetime64("NaT", "D")
DHS_SOURCES = ("uscis_naturalizations", "uscis_lpr", "cbp_ice")
# Sources whose records carry an SSN field (often null in the USCIS files).
SSN_SOURCES = ("ssa_numident", "uscis_naturalizations", "uscis_lpr", "state_passports")
RECORD_CODES = {
    "ssa_numident": "SSA",
    "uscis_naturalizations": "NAT",
    "uscis_lpr": "LPR",
    "cbp_ice": "CBP",
    "state_passports": "PPT",
    "irs_itin": "ITIN",
    "acs": "ACS",
}


def _days(years: float | np.ndarray) -> np.ndarray:
    return np.floor(np.asarray(years) * DAYS_PER_YEAR).astype("timedelta64[D]")


def _uniform_dates(lo: np.ndarray, hi: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A uniform date in ``[lo, hi]`` per row (``hi >= lo`` assumed)."""
    lo_i = lo.astype("datetime64[D]").astype(np.int64)
    hi_i = hi.astype("datetime64[D]").astype(np.int64)
    span = np.maximum(hi_i - lo_i, 0)
    return (lo_i + np.floor(rng.random(len(lo_i)) * (span + 1)).astype(np.int64)).astype(
        "datetime64[D]"
    )


def identity_fields(
    persons: pd.DataFrame,
    idx: np.ndarray,
    cfg: dict,
    source: str,
    rng: np.random.Generator,
    with_ssn: bool,
    last_names: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Identity columns of the records of persons ``idx``, with this source's errors.

    ``last_names`` (aligned with ``idx``) replaces the persons' current surnames (e.g. the
    surname the agency holds from before a marriage).

    The source's ``error_scale`` multiplies every rate in ``synthetic.rates``;
    ``missing_dob``, ``missing_ssn``, ``missing_address`` and ``stale_address`` are per
    source.
    """
    rates = cfg["rates"]
    scfg = cfg["sources"][source]
    scale = float(scfg["error_scale"])
    n = len(idx)

    def rate(key: str) -> float:
        return float(rates[key]) * scale

    # Immigrants' records are harder: transliterated names are spelled several ways and most
    # countries write dates day first, so typos and day/month swaps are more frequent.
    foreign = persons["status"].to_numpy()[idx] != NATIVE
    foreign_factor = np.where(foreign, float(rates["foreign_born_multiplier"]), 1.0)

    first = persons["first_name"].to_numpy()[idx]
    last = persons["last_name"].to_numpy()[idx] if last_names is None else last_names
    second = persons["second_surname"].to_numpy()[idx]
    iberian = persons["iberian_name"].to_numpy()[idx]
    first = errors.apply_nicknames(first, rate("nickname"), rng)
    # Double surnames: Spanish and Portuguese naming, the second surname appended.
    double = np.flatnonzero(errors.pick(n, rate("double_surname"), rng) & iberian)
    last = last.copy()
    last[double] = last[double] + " " + second[double]
    swap = errors.pick(n, rate("name_swap"), rng)
    first, last = np.where(swap, last, first), np.where(swap, first, last)
    first = errors.apply_typos(first, rate("typo") * foreign_factor, rng)
    last = errors.apply_typos(last, rate("typo") * foreign_factor, rng)
    dob = persons["dob"].to_numpy()[idx].astype("datetime64[D]")
    dob = errors.swap_day_month(dob, rate("dob_day_month_swap") * foreign_factor, rng)
    dob = errors.shift_year(dob, rate("dob_year_error"), rng)
    dob = errors.null_out(dob, float(scfg["missing_dob"]), rng)
    male = persons["male"].to_numpy()[idx]
    male = np.where(errors.pick(n, rate("sex_error"), rng), ~male, male)
    sex = np.where(male, "M", "F").astype(object)
    sex = errors.null_out(sex, float(scfg["missing_sex"]), rng)
    stale = errors.pick(n, float(scfg["stale_address"]), rng)
    address = np.where(
        stale, persons["previous_address"].to_numpy()[idx], persons["address"].to_numpy()[idx]
    )
    zip_code = np.where(
        stale, persons["previous_zip"].to_numpy()[idx], persons["zip"].to_numpy()[idx]
    )
    address = errors.apply_typos(address, rate("typo"), rng)
    no_address = errors.pick(n, float(scfg["missing_address"]), rng)
    address = np.where(no_address, None, address)
    zip_code = np.where(no_address, None, zip_code)
    out = {
        "first_name": first,
        "last_name": last,
        "dob": dob,
        "sex": sex,
        "address": address,
        "zip": zip_code,
    }
    if with_ssn:
        ssn = persons["ssn"].to_numpy()[idx]
        ssn = errors.wrong_ssn_digit(ssn, rate("ssn_digit_error"), rng)
        out["ssn"] = errors.null_out(ssn, float(scfg["missing_ssn"]), rng)
    return out


def _covered(mask: np.ndarray, coverage: float, rng: np.random.Generator) -> np.ndarray:
    return np.flatnonzero(mask & (rng.random(len(mask)) < coverage))


def _finish(
    persons: pd.DataFrame,
    idx: np.ndarray,
    fields: dict,
    cfg: dict,
    source: str,
    rng: np.random.Generator,
    last_names: np.ndarray | None = None,
) -> pd.DataFrame:
    """Assemble a source table: duplicates first (errors then drawn independently), flags."""
    scfg = cfg["sources"][source]
    # Duplicates are second records of the same persons, with their own errors.
    dup = np.flatnonzero(
        errors.pick(len(idx), float(cfg["rates"]["duplicate"]) * float(scfg["error_scale"]), rng)
    )
    all_idx = np.concatenate([idx, idx[dup]])
    status_fields = {k: np.concatenate([v, v[dup]]) for k, v in fields.items()}
    held_last = None if last_names is None else np.concatenate([last_names, last_names[dup]])
    identity = identity_fields(persons, all_idx, cfg, source, rng, source in SSN_SOURCES, held_last)
    table = pd.DataFrame({"person_index": all_idx, **identity, **status_fields})
    if source in DHS_SOURCES:
        table["protected_1367"] = persons["protected_1367"].to_numpy()[all_idx]
        table["refugee_asylee"] = persons["refugee_asylee"].to_numpy()[all_idx]
    return table


def make_ssa_numident(
    persons: pd.DataFrame, cfg: dict, ref: np.datetime64, rng: np.random.Generator
) -> pd.DataFrame:
    """The Numident: every SSN holder; citizenship as stated at application, rarely updated."""
    scfg = cfg["sources"]["ssa_numident"]
    has_ssn = persons["ssn"].notna().to_numpy()
    idx = _covered(has_ssn, float(scfg["coverage"]), rng)
    status = persons["status"].to_numpy()[idx]
    dob = persons["dob"].to_numpy()[idx].astype("datetime64[D]")
    arrival = persons["arrival_date"].to_numpy()[idx].astype("datetime64[D]")
    nat_date = persons["naturalization_date"].to_numpy()[idx].astype("datetime64[D]")
    n = len(idx)
    at_birth_year = np.datetime64(f"{int(scfg['enumeration_at_birth_year'])}-01-01", "D")
    native = status == NATIVE
    teen = dob + _days(14.0 + rng.gamma(2.0, 1.5, n))
    infant = dob + rng.integers(7, 120, n).astype("timedelta64[D]")
    native_app = np.where(dob >= at_birth_year, infant, teen)
    foreign_app = arrival + _days(rng.exponential(float(scfg["application_delay_mean_years"]), n))
    application = np.where(native, native_app, foreign_app)
    application = np.minimum(np.maximum(application, dob), ref)
    citizen_at_application = native | (~np.isnat(nat_date) & (application >= nat_date))
    citizenship = np.where(citizen_at_application, "citizen", "noncitizen").astype(object)
    field_start = np.datetime64(f"{int(scfg['citizenship_field_start_year'])}-01-01", "D")
    old = (application < field_start) & errors.pick(
        n, float(scfg["pre_field_citizenship_missing"]), rng
    )
    citizenship[old] = None
    # Naturalized persons whose record says noncitizen: updated only if they told SSA.
    stale_candidates = (status == NATURALIZED) & (citizenship == "noncitizen")
    updated = stale_candidates & errors.pick(n, float(scfg["naturalized_update_probability"]), rng)
    update_date = np.minimum(nat_date + _days(rng.exponential(1.0, n)), ref)
    citizenship[updated] = "citizen"
    other_update = errors.pick(n, float(scfg["other_update_probability"]), rng) & ~updated
    other_date = _uniform_dates(application, np.full(n, ref), rng)
    # An update for another reason (name change, replacement card) may fill a missing field.
    citizenship[other_update & old & native] = "citizen"
    last_update = np.where(updated, update_date, np.where(other_update, other_date, NAT))
    place = persons["birth_country"].to_numpy()[idx]
    fields = {
        "citizenship": citizenship,
        "application_date": application,
        "last_update_date": last_update,
        "place_of_birth": place,
    }
    # Persons whose surname changed (mostly at marriage) and who never told SSA: the Numident
    # still holds the surname of their application.
    current = persons["last_name"].to_numpy()[idx]
    birth = persons["birth_surname"].to_numpy()[idx]
    changed = (current != birth) & (persons["age"].to_numpy()[idx] >= 18)
    kept_old = changed & errors.pick(n, float(scfg["surname_change_not_reported"]), rng)
    held_last = np.where(kept_old, birth, current)
    return _finish(persons, idx, fields, cfg, "ssa_numident", rng, held_last)


def make_uscis_naturalizations(
    persons: pd.DataFrame, cfg: dict, ref: np.datetime64, rng: np.random.Generator
) -> pd.DataFrame:
    """Naturalization records since the USCIS window start."""
    scfg = cfg["sources"]["uscis_naturalizations"]
    start = np.datetime64(cfg["uscis_window_start"], "D")
    nat_date = persons["naturalization_date"].to_numpy().astype("datetime64[D]")
    eligible = ~np.isnat(nat_date) & (nat_date >= start) & (nat_date <= ref)
    idx = _covered(eligible, float(scfg["coverage"]), rng)
    a_number = errors.null_out(
        persons["a_number"].to_numpy()[idx], float(scfg["missing_a_number"]), rng
    )
    fields = {
        "a_number": a_number,
        "naturalization_date": nat_date[idx],
        "country_of_birth": persons["birth_country"].to_numpy()[idx],
    }
    return _finish(persons, idx, fields, cfg, "uscis_naturalizations", rng)


CLASSES = np.array(["family", "employment", "diversity", "other"], dtype=object)


def make_uscis_lpr(
    persons: pd.DataFrame, cfg: dict, ref: np.datetime64, rng: np.random.Generator
) -> pd.DataFrame:
    """LPR grants since the USCIS window start (including those who later naturalized)."""
    scfg = cfg["sources"]["uscis_lpr"]
    start = np.datetime64(cfg["uscis_window_start"], "D")
    lpr_date = persons["lpr_date"].to_numpy().astype("datetime64[D]")
    eligible = ~np.isnat(lpr_date) & (lpr_date >= start) & (lpr_date <= ref)
    idx = _covered(eligible, float(scfg["coverage"]), rng)
    n = len(idx)
    klass = CLASSES[rng.choice(4, size=n, p=[0.66, 0.15, 0.05, 0.14])]
    klass = np.where(persons["refugee_asylee"].to_numpy()[idx], "refugee_asylee", klass)
    fields = {
        "a_number": errors.null_out(
            persons["a_number"].to_numpy()[idx], float(scfg["missing_a_number"]), rng
        ),
        "lpr_grant_date": lpr_date[idx],
        "class_of_admission": klass.astype(object),
        "country_of_birth": persons["birth_country"].to_numpy()[idx],
    }
    return _finish(persons, idx, fields, cfg, "uscis_lpr", rng)


def make_cbp_ice(
    persons: pd.DataFrame, cfg: dict, ref: np.datetime64, rng: np.random.Generator
) -> pd.DataFrame:
    """Entries, admissions, re-entries and encounters since the CBP/ICE window start."""
    scfg = cfg["sources"]["cbp_ice"]
    start = np.datetime64(cfg["cbp_ice_window_start"], "D")
    status = persons["status"].to_numpy()
    arrival = persons["arrival_date"].to_numpy().astype("datetime64[D]")
    n = len(persons)
    foreign = status != NATIVE
    recent = foreign & ~np.isnat(arrival) & (arrival >= start) & (arrival <= ref)
    lawful = recent & (status != UNAUTHORIZED)
    entry_p = np.where(
        status == UNAUTHORIZED, float(scfg["unauthorized_entry_coverage"]), float(scfg["coverage"])
    )
    entry = recent & (rng.random(n) < entry_p)
    event_idx = [np.flatnonzero(entry)]
    event_date = [arrival[entry]]
    event_type = [np.where(lawful[entry], "admission", "apprehension").astype(object)]
    window_lo = np.maximum(arrival, start)
    # Repeat admissions of temporary residents; re-entries of LPRs after travel.
    for mask, mean, label in (
        (foreign & (status == TEMPORARY), float(scfg["temporary_extra_events_mean"]), "admission"),
        (
            foreign & ((status == LPR) | (status == NATURALIZED)),
            float(scfg["reentry_events_mean"]),
            "reentry",
        ),
    ):
        k = np.where(mask, rng.poisson(mean, n), 0)
        who = np.repeat(np.arange(n), k)
        if len(who):
            lo = np.minimum(window_lo[who], ref)
            event_idx.append(who)
            event_date.append(_uniform_dates(lo, np.full(len(who), ref), rng))
            event_type.append(np.full(len(who), label, dtype=object))
    # Naturalized persons' re-entries are as citizens: not in a noncitizen file after naturalizing.
    # Interior encounters (ICE) of unauthorized residents who arrived before the window.
    earlier = (
        foreign
        & (status == UNAUTHORIZED)
        & ~recent
        & (rng.random(n) < float(scfg["interior_encounter_rate"]))
    )
    who = np.flatnonzero(earlier)
    event_idx.append(who)
    event_date.append(_uniform_dates(np.full(len(who), start), np.full(len(who), ref), rng))
    event_type.append(np.full(len(who), "encounter", dtype=object))
    idx = np.concatenate(event_idx)
    dates = np.concatenate(event_date)
    types = np.concatenate(event_type)
    nat_date = persons["naturalization_date"].to_numpy().astype("datetime64[D]")[idx]
    keep = np.isnat(nat_date) | (dates < nat_date)
    idx, dates, types = idx[keep], dates[keep], types[keep]
    order = np.lexsort((dates, idx))
    idx, dates, types = idx[order], dates[order], types[order]
    fields = {
        "a_number": errors.null_out(
            persons["a_number"].to_numpy()[idx], float(scfg["missing_a_number"]), rng
        ),
        "event_date": dates,
        "event_type": types,
        "country_of_citizenship": persons["birth_country"].to_numpy()[idx],
    }
    return _finish(persons, idx, fields, cfg, "cbp_ice", rng)


def make_state_passports(
    persons: pd.DataFrame, cfg: dict, ref: np.datetime64, rng: np.random.Generator
) -> pd.DataFrame:
    """Valid US passports of citizens (issued in the last 10 years, 5 for children)."""
    scfg = cfg["sources"]["state_passports"]
    status = persons["status"].to_numpy()
    age = persons["age"].to_numpy()
    citizen = (status == NATIVE) | (status == NATURALIZED)
    p = np.where(
        status == NATURALIZED,
        float(scfg["coverage_naturalized"]),
        np.where(age < 18, float(scfg["coverage_child"]), float(scfg["coverage"])),
    )
    idx = np.flatnonzero(citizen & (rng.random(len(persons)) < p))
    dob = persons["dob"].to_numpy().astype("datetime64[D]")[idx]
    nat_date = persons["naturalization_date"].to_numpy().astype("datetime64[D]")[idx]
    validity = np.where(age[idx] < 16, 5.0, 10.0)
    lo = np.maximum(ref - _days(validity), dob + np.timedelta64(30, "D"))
    lo = np.where(np.isnat(nat_date), lo, np.maximum(lo, nat_date + np.timedelta64(30, "D")))
    lo = np.minimum(lo, ref)
    fields = {"issue_date": _uniform_dates(lo, np.full(len(idx), ref), rng)}
    return _finish(persons, idx, fields, cfg, "state_passports", rng)


def make_irs_itin(
    persons: pd.DataFrame, cfg: dict, ref: np.datetime64, rng: np.random.Generator
) -> pd.DataFrame:
    """ITIN filers: persons without an SSN who file (or are dependents on) a tax return."""
    scfg = cfg["sources"]["irs_itin"]
    has_itin = persons["itin"].notna().to_numpy()
    idx = _covered(has_itin, float(scfg["coverage"]), rng)
    ref_year = int(str(ref)[:4])
    span = int(scfg["tax_years"])
    tax_year = ref_year - 1 - rng.integers(0, span, len(idx))
    fields = {"itin": persons["itin"].to_numpy()[idx], "tax_year": tax_year.astype(np.int64)}
    return _finish(persons, idx, fields, cfg, "irs_itin", rng)


def make_acs(
    persons: pd.DataFrame,
    households: pd.DataFrame,
    block_ids: np.ndarray,
    cfg: dict,
    ref: np.datetime64,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """ACS person records of the sampled households, answered as of the interview date."""
    scfg = cfg["sources"]["acs"]
    n_hh = len(households)
    sampled = rng.random(n_hh) < float(scfg["coverage"])
    interview_hh = _uniform_dates(
        np.full(n_hh, ref - _days(5.0)), np.full(n_hh, ref - np.timedelta64(1, "D")), rng
    )
    hh = persons["household_index"].to_numpy()
    interview = interview_hh[hh]
    dob = persons["dob"].to_numpy().astype("datetime64[D]")
    arrival = persons["arrival_date"].to_numpy().astype("datetime64[D]")
    present = sampled[hh] & (dob <= interview) & (np.isnat(arrival) | (arrival <= interview))
    idx = np.flatnonzero(present)
    status = persons["status"].to_numpy()[idx]
    nat_date = persons["naturalization_date"].to_numpy().astype("datetime64[D]")[idx]
    when = interview[idx]
    naturalized_then = (status == NATURALIZED) & (nat_date <= when)
    truth = np.where(
        status == NATIVE, "born_citizen", np.where(naturalized_then, "naturalized", "noncitizen")
    )
    n = len(idx)
    misreport_p = np.zeros(n)
    for code, name in enumerate(STATUS_NAMES):
        misreport_p[status == code] = float(scfg["misreport_citizen"][name])
    misreport = rng.random(n) < misreport_p
    # Noncitizens misreporting say "naturalized" or "born_citizen"; citizens say the other citizen answer.
    claim = np.where(rng.random(n) < 0.5, "born_citizen", "naturalized")
    answer = np.where(
        misreport,
        np.where(
            truth == "noncitizen",
            claim,
            np.where(truth == "born_citizen", "naturalized", "born_citizen"),
        ),
        truth,
    ).astype(object)
    answer = errors.null_out(answer, float(scfg["item_nonresponse"]), rng)
    # Design fields need no random draw (the sample and the answers above are unchanged):
    # the survey's own household serial, in geographic order (persons are sorted by block and
    # household, and ``idx`` ascends), the age the respondent gave at the interview and the
    # annual panel (1 = the earliest of the five years) of the interview.
    serial = pd.factorize(hh[idx])[0] + 1
    age = _age_on_dates(persons["dob"].to_numpy()[idx], when)
    years_before = (ref - when).astype(np.int64) / DAYS_PER_YEAR
    panel = np.clip(ACS_PANELS - np.floor(years_before).astype(np.int64), 1, ACS_PANELS)
    fields = {
        "block_id": block_ids[persons["block_index"].to_numpy()[idx]],
        "interview_date": when,
        "citizenship_response": answer,
        "household_id": np.char.add("HU", np.char.zfill(serial.astype(str), 9)).astype(object),
        "age": age,
        "panel": panel.astype(np.int64),
    }
    return _finish(persons, idx, fields, cfg, "acs", rng)


def _age_on_dates(dob: np.ndarray, on: np.ndarray) -> np.ndarray:
    """Completed years of age of each birth date ``dob`` on its own date ``on``."""
    dob = np.asarray(dob).astype("datetime64[D]")
    on = np.asarray(on).astype("datetime64[D]")

    def parts(d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        year = d.astype("datetime64[Y]").astype(np.int64) + 1970
        month = d.astype("datetime64[M]").astype(np.int64) % 12
        day = (d - d.astype("datetime64[M]")).astype(np.int64)
        return year, month, day

    by, bm, bd = parts(dob)
    oy, om, od = parts(on)
    before_birthday = (om < bm) | ((om == bm) & (od < bd))
    return (oy - by - before_birthday).astype(np.int64)


# --- The ACS sample design: weights and successive-difference replicate weights -------------
#
# Sample: every household is in the five-year sample with probability ``coverage`` and is
# interviewed in one of five annual panels (uniform interview date over the five years before
# the reference date), so each panel samples ``coverage / 5`` of households, as the ACS samples
# about 2.5% of addresses a year and pools five years. Base weight: ``1 / coverage`` per person.
# Final weight: the base weight ratio-adjusted within county x age group (age at interview, the
# config's age groups) to the census frame's counts (public, like the population estimates the
# ACS controls to), so weighted persons add up to the frame in every county. Citizenship item
# nonresponse is allocated by a hot deck (a random donor of the same county and age group), as
# the ACS allocates it: ``citizenship_edited`` and the flag ``citizenship_allocated``.
# Replicates: successive difference replication (Fay and Train 1995) with 80 replicates and the
# ACS's factors: unit k takes rows k and k + 1 (cyclic, from a random start) of an 80 x 80
# Hadamard matrix, factor 1 + 2^-1.5 (a_k,r - a_k+1,r) (0.29, 1 or 1.71), each replicate
# ratio-adjusted like the full sample; variance 4 / 80 sum_r (X_r - X)^2; 90% MOE 1.645 x SE.
# The ACS samples addresses systematically from a geographically sorted list and orders its
# sample the same way; this synthetic survey samples households independently (Bernoulli), so
# the number sampled in a block group varies and SDR over the *sample* order misses that part of
# the variance (measured on the default world: total-population MOEs covered 0.67 of block
# groups instead of 0.90). Here k is the household's position in the address frame (every
# household of the world in geographic order, sampled or not): the same SDR estimator applied to
# the expanded values of the whole frame, whose expectation under Bernoulli sampling is the
# design variance plus half the sum of squared neighbour differences (a few percent
# conservative). With it the same check covered 0.90.

ACS_PANELS = 5
ACS_REPLICATES = 80
SDR_COEFFICIENT = 2.0**-1.5
ACS_VARIANCE_FACTOR = 4.0 / ACS_REPLICATES
ACS_MOE_Z = 1.645
CITIZEN_ANSWERS = ("born_citizen", "naturalized")
ACS_ANSWERS = ("born_citizen", "naturalized", "noncitizen")


def replicate_weight_columns(replicates: int = ACS_REPLICATES) -> list[str]:
    """Names of the replicate weight columns: ``rep_weight_1`` ... ``rep_weight_80``."""
    return [f"rep_weight_{r}" for r in range(1, replicates + 1)]


def _legendre(a: np.ndarray, q: int) -> np.ndarray:
    """Legendre symbol of ``a`` modulo the odd prime ``q`` (0, 1 or -1)."""
    squares = np.zeros(q, dtype=np.int64)
    squares[(np.arange(1, q) ** 2) % q] = 1
    out = np.where(squares[a % q] == 1, 1, -1)
    return np.where(a % q == 0, 0, out)


def hadamard(order: int = ACS_REPLICATES) -> np.ndarray:
    """A Hadamard matrix of ``order`` (a power of two times 1, or times 20 for 80, 40, ...).

    80 = 4 x 20: Sylvester's construction of order 4 (or any power of two) times Paley's
    construction I of order 20 (q = 19, a prime with q = 3 mod 4).
    """
    power, paley = order, 1
    if order % 20 == 0 and (order // 20) & (order // 20 - 1) == 0:
        power, paley = order // 20, 20
    if power & (power - 1):
        raise ValueError(f"no Hadamard construction here for order {order}")
    matrix = np.ones((1, 1), dtype=np.int64)
    while matrix.shape[0] < power:
        matrix = np.block([[matrix, matrix], [matrix, -matrix]])
    if paley == 20:
        q = 19
        jacobsthal = _legendre(np.subtract.outer(np.arange(q), np.arange(q)) * -1, q)
        core = np.zeros((q + 1, q + 1), dtype=np.int64)
        core[0, 1:] = 1
        core[1:, 0] = -1
        core[1:, 1:] = jacobsthal
        matrix = np.kron(matrix, core + np.eye(q + 1, dtype=np.int64))
    if not np.array_equal(matrix @ matrix.T, order * np.eye(order, dtype=np.int64)):
        raise AssertionError(f"Hadamard construction of order {order} is not orthogonal")
    return matrix


def sdr_factors(
    positions: int | np.ndarray, start: int, replicates: int = ACS_REPLICATES
) -> np.ndarray:
    """Successive-difference replicate factors of units at ``positions`` of a sort order.

    The unit at position ``k`` takes Hadamard rows ``(start + k) mod R`` and
    ``(start + k + 1) mod R``; its factor in replicate ``r`` is
    ``1 + 2^-1.5 (a[row1, r] - a[row2, r])``.

    Parameters
    ----------
    positions
        Each unit's position in the sort order, or a count ``n`` for positions ``0 .. n-1``.
    start
        Row offset (drawn at random by the design).
    replicates
        Number of replicates (a Hadamard order; 80 as in the ACS).

    Returns
    -------
    numpy.ndarray
        ``(n_units, replicates)`` factors in {1 - 2^-0.5, 1, 1 + 2^-0.5}.
    """
    a = hadamard(replicates)
    if np.ndim(positions) == 0:
        k = np.arange(int(positions), dtype=np.int64)
    else:
        k = np.asarray(positions, dtype=np.int64)
    row1 = (start + k) % replicates
    row2 = (start + k + 1) % replicates
    return 1.0 + SDR_COEFFICIENT * (a[row1] - a[row2])


def replicate_se(estimate: np.ndarray, replicate_estimates: np.ndarray) -> np.ndarray:
    """Replicate standard error ``sqrt(4 / R sum_r (X_r - X)^2)`` (last axis: replicates)."""
    estimate = np.asarray(estimate, dtype=float)
    deviations = np.asarray(replicate_estimates, dtype=float) - estimate[..., None]
    factor = 4.0 / deviations.shape[-1]
    return np.sqrt(factor * (deviations**2).sum(axis=-1))


def ratio_calibrate(
    weights: np.ndarray, county: np.ndarray, cell: np.ndarray, controls: pd.Series
) -> np.ndarray:
    """Ratio-adjust ``weights`` (n x k columns) within cells to control totals.

    Parameters
    ----------
    weights
        ``(n, k)`` weights (the full sample and replicates as columns).
    county, cell
        Per record: county id and cell id (county x age group) as strings.
    controls
        Control total per cell, indexed by cell id ``"{county}|{age group}"``.

    A cell without records hands its control to the other cells of its county (their weights
    are scaled so the county total is met), so every county's weighted total is its control
    total whenever the county has any record.
    """
    weights = np.asarray(weights, dtype=float)
    cells, cell_code = np.unique(cell, return_inverse=True)
    sums = np.zeros((len(cells), weights.shape[1]))
    np.add.at(sums, cell_code, weights)
    target = controls.reindex(cells).fillna(0.0).to_numpy(dtype=float)
    factor = np.divide(target[:, None], sums, out=np.ones_like(sums), where=sums > 0)
    adjusted = weights * factor[cell_code]
    # Counties whose control cells lack records: scale to the county control total.
    control_county = pd.Series(controls.to_numpy(dtype=float), index=controls.index)
    county_totals = control_county.groupby(control_county.index.str.split("|").str[0]).sum()
    counties, county_code = np.unique(county, return_inverse=True)
    county_sums = np.zeros((len(counties), weights.shape[1]))
    np.add.at(county_sums, county_code, adjusted)
    wanted = county_totals.reindex(counties).fillna(0.0).to_numpy(dtype=float)
    scale = np.divide(
        wanted[:, None], county_sums, out=np.ones_like(county_sums), where=county_sums > 0
    )
    return adjusted * scale[county_code]


def frame_controls(frame: pd.DataFrame, age_bounds: list[int]) -> pd.Series:
    """Census-frame persons per county x age group (``"{county}|{group}"``).

    Persons whose age the frame lacks are spread over their county's age groups in proportion
    to the known ages, so the controls add up to the frame in every county.
    """
    from pipeline_common.ages import assign_age_group

    county = frame["block_id"].astype(str).str[:5].to_numpy()
    group = pd.Series(
        assign_age_group(
            pd.to_numeric(frame["age"], errors="coerce").astype("float64").to_numpy(), age_bounds
        )
    ).astype("object")
    known = pd.DataFrame({"county": county, "group": group}).dropna()
    counts = known.groupby(["county", "group"]).size().astype(float)
    county_of_cell = counts.index.get_level_values("county")
    all_persons = pd.Series(county).value_counts().astype(float).reindex(county_of_cell)
    with_age = counts.groupby(level="county").sum().reindex(county_of_cell)
    counts = counts * (all_persons.to_numpy() / with_age.to_numpy())
    counts.index = [f"{c}|{g}" for c, g in counts.index]
    return counts.sort_index()


def acs_design(
    acs: pd.DataFrame,
    frame: pd.DataFrame,
    coverage: float,
    age_bounds: list[int],
    rng: np.random.Generator,
    frame_position: np.ndarray | None = None,
) -> pd.DataFrame:
    """Add the survey's estimation fields to the ACS person records (see the notes above).

    Parameters
    ----------
    acs
        :func:`make_acs` output (``block_id, household_id, age, citizenship_response``...).
    frame
        The census frame (``block_id, age``): the control totals.
    coverage
        Household sampling rate over the five years (``synthetic.sources.acs.coverage``).
    age_bounds
        ``config["age_groups"]``.
    rng
        The design's own stream (replicate start row, hot-deck donors), so adding the design
        changes no other draw of the world.
    frame_position
        Per record: its household's position in the address frame (all households in
        geographic order), the order of the successive differences. Without it, the sampled
        households' own geographic order (block, serial) is used, which understates the
        variance of a Bernoulli sample (see the notes above).

    Returns
    -------
    pandas.DataFrame
        ``acs`` with ``citizenship_edited, citizenship_allocated, base_weight, weight`` and
        ``rep_weight_1`` ... ``rep_weight_80``.
    """
    from pipeline_common.ages import assign_age_group

    out = acs.copy()
    n = len(out)
    county = out["block_id"].astype(str).str[:5].to_numpy()
    group = np.asarray(
        pd.Series(assign_age_group(out["age"].to_numpy(float), age_bounds)).astype(str)
    )
    cell = np.char.add(np.char.add(county.astype(str), "|"), group.astype(str))
    # Hot-deck allocation of citizenship item nonresponse: a random donor of the same cell
    # (county x age group), else of the county, else of the whole sample.
    answer = out["citizenship_response"].to_numpy(dtype=object)
    answered = pd.notna(answer)
    edited = answer.copy()
    missing = np.flatnonzero(~answered)
    for keys in (cell, county, np.zeros(n, dtype=np.int64).astype(str)):
        if not len(missing):
            break
        donors = pd.Series(np.flatnonzero(answered)).groupby(keys[answered]).agg(list)
        has_donor = np.array([k in donors.index for k in keys[missing]], dtype=bool)
        for i in missing[has_donor]:
            pool = donors[keys[i]]
            edited[i] = answer[pool[int(rng.integers(len(pool)))]]
        missing = missing[~has_donor]
    out["citizenship_edited"] = edited
    out["citizenship_allocated"] = ~answered
    base = 1.0 / float(coverage) if coverage > 0 else 0.0
    out["base_weight"] = np.full(n, base)
    start = int(rng.integers(ACS_REPLICATES))
    if frame_position is None:
        # Sampled households in geographic order (block, then serial).
        households = out[["block_id", "household_id"]].astype(str).drop_duplicates()
        households = households.sort_values(["block_id", "household_id"], kind="stable")
        rank = pd.Series(np.arange(len(households)), index=households["household_id"].to_numpy())
        frame_position = rank.reindex(out["household_id"].astype(str)).to_numpy()
    factors = sdr_factors(np.asarray(frame_position, dtype=np.int64), start)
    columns = np.column_stack([np.full(n, base), base * factors])
    calibrated = ratio_calibrate(columns, county, cell, frame_controls(frame, age_bounds))
    out["weight"] = calibrated[:, 0]
    replicate = pd.DataFrame(calibrated[:, 1:], columns=replicate_weight_columns(), index=out.index)
    return pd.concat([out, replicate], axis=1)
