"""The true population: households, persons, ages, sex, status classes, dates and flags.

Generation per county:

1. Households of realistic composition (singles, couples, couples with children, single
   parents, multigenerational families, roommates) are drawn until the county's blocks are
   filled; the share of households with children is solved so that the county's adult share
   matches the real table.
2. Every household is given the statuses it *would* have as an immigrant household (a
   foreign-born householder of a county-specific status mix; spouses, elders, lodgers drawn
   around it; children born abroad only if born before the householder arrived).
3. Immigrant households are chosen by weighted sampling without replacement (weights = the
   block's noncitizen propensity) until the county's noncitizen total is reached, so the
   county's noncitizen share follows the table while noncitizens cluster by tract and block.
   All other households are native-born citizens.
4. Dates: arrival, LPR grant (after arrival), naturalization (at least 5 years after the LPR
   grant, before the reference date); flags ``protected_1367`` and ``refugee_asylee``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

STATUS_NAMES = ("native_citizen", "naturalized", "lpr", "temporary", "unauthorized")
NATIVE, NATURALIZED, LPR, TEMPORARY, UNAUTHORIZED = range(5)
FOREIGN_STATUSES = ("naturalized", "lpr", "temporary", "unauthorized")
ROLE_NAMES = ("householder", "spouse", "child", "parent", "other_relative", "nonrelative")
HEAD, SPOUSE, CHILD, PARENT, OTHER_RELATIVE, NONRELATIVE = range(6)
HOUSEHOLD_TYPES = (
    "single",
    "couple",
    "roommates",
    "couple_children",
    "single_parent",
    "multigenerational",
)
DAYS_PER_YEAR = 365.2425

# Adult age bands (lower bound, upper bound, weight) of US adults, ACS 2019 (rounded).
ADULT_AGE_BANDS = np.array(
    [
        (18, 25, 0.12),
        (25, 35, 0.18),
        (35, 45, 0.165),
        (45, 55, 0.165),
        (55, 65, 0.165),
        (65, 75, 0.12),
        (75, 85, 0.06),
        (85, 100, 0.025),
    ]
)


def _draw_adult_ages(n: int, rng: np.random.Generator) -> np.ndarray:
    weights = ADULT_AGE_BANDS[:, 2] / ADULT_AGE_BANDS[:, 2].sum()
    band = rng.choice(len(weights), size=n, p=weights)
    lo, hi = ADULT_AGE_BANDS[band, 0], ADULT_AGE_BANDS[band, 1]
    return lo + (hi - lo) * rng.random(n)


def county_status_mix(noncitizen_share: float, status_cfg: dict) -> np.ndarray:
    """Shares of all residents by status for one county (native, nat, lpr, temp, unauth).

    Noncitizens follow the county's real share, split into LPR / temporary / unauthorized by
    the national proportions; naturalized citizens scale with the county's foreign-born
    level (national naturalized share x county noncitizen share / national noncitizen share).
    """
    national = np.array(
        [
            status_cfg["naturalized"],
            status_cfg["lpr"],
            status_cfg["temporary"],
            status_cfg["unauthorized"],
        ]
    )
    national_noncit = national[1:].sum()
    noncit = national[1:] / national_noncit * noncitizen_share
    naturalized = min(national[0] * noncitizen_share / national_noncit, 0.95 - noncitizen_share)
    native = 1.0 - naturalized - noncit.sum()
    return np.array([native, naturalized, *noncit])


def _household_composition(hh_cfg: dict) -> dict[str, np.ndarray]:
    """Expected adults and children per household type (for solving the child share)."""
    kids_mean = 1.0 + float(hh_cfg["extra_children_mean"])
    adult_child = float(hh_cfg["adult_child_probability"])
    spouse_multi = float(hh_cfg["multigenerational_spouse_probability"])
    roommates = 1.0 + float(hh_cfg["roommates_extra_mean"])
    adults = np.array(
        [1.0, 2.0, 1.0 + roommates, 2.0 + adult_child, 1.0 + adult_child, 1.0 + spouse_multi + 1.5]
    )
    children = np.array([0.0, 0.0, 0.0, kids_mean, kids_mean, kids_mean])
    return {"adults": adults, "children": children}


def household_type_probabilities(child_share: float, hh_cfg: dict) -> np.ndarray:
    """Probabilities of the six household types that give ``child_share`` children.

    Within households without children and within households with children, the relative
    weights are the config's ``type_weights``; the split between the two groups is solved
    so that expected children / expected persons equals ``child_share``.
    """
    weights = np.array([float(hh_cfg["type_weights"][t]) for t in HOUSEHOLD_TYPES])
    comp = _household_composition(hh_cfg)
    without = weights * (comp["children"] == 0)
    with_ = weights * (comp["children"] > 0)
    without, with_ = without / without.sum(), with_ / with_.sum()
    a_n = (without * comp["adults"]).sum()
    a_k = (with_ * comp["adults"]).sum()
    k = (with_ * comp["children"]).sum()
    c = float(np.clip(child_share, 0.0, 0.6))
    t = c * a_n / (k * (1.0 - c) - c * a_k + c * a_n)
    t = float(np.clip(t, 0.0, 1.0))
    return t * with_ + (1.0 - t) * without


def _years_in_us(status: np.ndarray, cfg: dict, rng: np.random.Generator) -> np.ndarray:
    """Years since arrival by status (gamma draws; naturalized at least the 5-year wait)."""
    years = np.zeros(len(status))
    arrival_cfg = cfg["arrival"]
    for code, name in enumerate(STATUS_NAMES):
        if code == NATIVE:
            continue
        mask = status == code
        mean = float(arrival_cfg[f"{name}_mean_years"])
        shape = 2.0
        years[mask] = rng.gamma(shape, mean / shape, int(mask.sum()))
    nat = status == NATURALIZED
    years[nat] += 5.5
    return years


def build_population(
    blocks: pd.DataFrame,
    targets: pd.DataFrame,
    cfg: dict,
    reference_date: np.datetime64,
    rng: np.random.Generator,
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Households and persons of every county, with true statuses and dates.

    Parameters
    ----------
    blocks
        From :func:`synthetic.geography.build_blocks`.
    targets
        From :func:`synthetic.geography.county_targets`.
    cfg
        The ``synthetic`` config section.
    reference_date
        Census day (``datetime64[D]``).
    rng
        The population stream.

    Returns
    -------
    persons
        One row per person (internal columns; see :func:`synthetic.world.truth_persons`).
    households
        One row per household: ``household_index, block_index, county_index, type,
        immigrant``.
    diagnostics
        Per-county targets and realized shares.
    """
    hh_cfg = cfg["households"]
    person_parts: list[dict[str, np.ndarray]] = []
    hh_parts: list[dict[str, np.ndarray]] = []
    diagnostics: dict = {"counties": {}}
    hh_offset = 0
    block_index_all = np.arange(len(blocks))
    for county_index, county in targets.iterrows():
        in_county = blocks["county_index"].to_numpy() == county_index
        county_blocks = block_index_all[in_county]
        block_targets = blocks["target_persons"].to_numpy()[in_county]
        propensity = blocks["propensity"].to_numpy()[in_county]
        persons_target = int(block_targets.sum())
        type_p = household_type_probabilities(1.0 - float(county["adult_share"]), hh_cfg)
        comp = _household_composition(hh_cfg)
        mean_size = float((type_p * (comp["adults"] + comp["children"])).sum())
        n_hh = int(persons_target / mean_size * 1.25) + 20
        hh_type = rng.choice(len(HOUSEHOLD_TYPES), size=n_hh, p=type_p)
        all_roles, sizes = _draw_members(hh_type, hh_cfg, rng)
        start = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        keep = start < persons_target  # a prefix: households fill the county's blocks in order
        hh_type, sizes, start = hh_type[keep], sizes[keep], start[keep]
        roles = all_roles[: int(sizes.sum())]
        n_kept = len(sizes)
        block_cum = np.cumsum(block_targets)
        hh_block_local = np.minimum(
            np.searchsorted(block_cum, start, side="right"), len(block_cum) - 1
        )
        person_hh_local = np.repeat(np.arange(n_kept), sizes)
        part = _people(hh_type, sizes, roles, person_hh_local, hh_cfg, rng)
        # Weighted sampling without replacement (Efraimidis-Spirakis keys): households of
        # high-propensity blocks come first; take them until the noncitizen total is reached.
        weight = propensity[hh_block_local]
        keys = np.log(rng.random(n_kept)) / np.maximum(weight, 1e-12)
        order = np.argsort(-keys, kind="stable")
        target_noncit = float(county["noncitizen_share"]) * len(roles)
        mix = county_status_mix(float(county["noncitizen_share"]), cfg["status"])
        target_naturalized = mix[NATURALIZED] * len(roles)
        # Naturalized citizens are not selected on directly: calibrate their weight in the
        # immigrant mix (a few rounds) so the county's naturalized total lands on its target.
        # Common random numbers across rounds, so the boost moves the result smoothly.
        # Children who are noncitizens: the table's total minus its adult noncitizens.
        minor = part["age"] < 18
        target_child_noncit = max(
            target_noncit - float(county["adult_noncitizen_share"]) * float((~minor).sum()), 0.0
        )
        status_seed = int(rng.integers(0, 2**63 - 1))
        naturalized_boost = 1.0
        parent_years_factor = 1.0
        for _ in range(8):
            status, years = _immigrant_statuses(
                part,
                sizes,
                county,
                cfg,
                np.random.default_rng(status_seed),
                naturalized_boost,
                parent_years_factor,
            )
            noncit_if_immigrant = np.bincount(
                person_hh_local, weights=(status >= LPR).astype(float), minlength=n_kept
            )
            immigrant_hh = _take_until(order, noncit_if_immigrant, target_noncit)
            chosen = immigrant_hh[person_hh_local]
            realized_naturalized = float(((status == NATURALIZED) & chosen).sum())
            realized_child_noncit = float(((status >= LPR) & chosen & minor).sum())
            nat_ratio = target_naturalized / max(realized_naturalized, 1.0)
            child_ratio = realized_child_noncit / max(target_child_noncit, 1.0)
            nat_done = abs(nat_ratio - 1.0) < 0.01 or target_naturalized < 20
            child_done = abs(child_ratio - 1.0) < 0.03 or target_child_noncit < 20
            if nat_done and child_done:
                break
            if not nat_done:
                naturalized_boost *= nat_ratio
            if not child_done:
                parent_years_factor = float(
                    np.clip(parent_years_factor * child_ratio**0.7, 0.2, 5.0)
                )
        immigrant_person = immigrant_hh[person_hh_local]
        status = np.where(immigrant_person, status, NATIVE)
        years = np.where(status == NATIVE, 0.0, years)
        part["status"] = status.astype(np.int8)
        part["years_in_us"] = years
        part["household_index"] = person_hh_local + hh_offset
        part["block_index"] = county_blocks[hh_block_local[person_hh_local]]
        part["county_index"] = np.full(len(roles), county_index, dtype=np.int64)
        person_parts.append(part)
        hh_parts.append(
            {
                "household_index": np.arange(n_kept) + hh_offset,
                "block_index": county_blocks[hh_block_local],
                "county_index": np.full(n_kept, county_index),
                "type": hh_type,
                "immigrant": immigrant_hh,
            }
        )
        hh_offset += n_kept
        n = len(roles)
        adults = part["age"] >= 18
        noncit = status >= LPR
        diagnostics["counties"][str(county["county_id"])] = {
            "geoname": str(county["geoname"]),
            "persons": int(n),
            "target_noncitizen_share": float(county["noncitizen_share"]),
            "realized_noncitizen_share": float(noncit.mean()),
            "target_adult_share": float(county["adult_share"]),
            "realized_adult_share": float(adults.mean()),
            "target_adult_noncitizen_share": float(county["adult_noncitizen_share"]),
            "realized_adult_noncitizen_share": float(noncit[adults].mean())
            if adults.any()
            else 0.0,
            "realized_status_shares": {
                name: float((status == code).mean()) for code, name in enumerate(STATUS_NAMES)
            },
            "immigrant_household_share": float(immigrant_hh.mean()),
            "households": int(n_kept),
        }
    persons = pd.DataFrame(
        {k: np.concatenate([p[k] for p in person_parts]) for k in person_parts[0]}
    )
    households = pd.DataFrame({k: np.concatenate([h[k] for h in hh_parts]) for k in hh_parts[0]})
    _dates_and_flags(persons, cfg, reference_date, rng)
    return persons, households, diagnostics


def _take_until(order: np.ndarray, counts: np.ndarray, target: float) -> np.ndarray:
    """Households taken in ``order`` until their ``counts`` sum closest to ``target``."""
    n = len(order)
    taken = np.zeros(n, dtype=bool)
    if n == 0 or target <= 0:
        return taken
    cumulative = np.cumsum(counts[order])
    n_take = int(np.searchsorted(cumulative, target, side="left"))
    if n_take >= n:
        n_take = n
    elif n_take == 0:
        n_take = 1 if abs(cumulative[0] - target) < target else 0
    elif abs(cumulative[n_take] - target) < abs(cumulative[n_take - 1] - target):
        n_take += 1  # the household that crosses the target lands closer to it
    taken[order[:n_take]] = True
    return taken


def _draw_members(
    hh_type: np.ndarray, hh_cfg: dict, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Roles of every household's members, householder first; and household sizes.

    Adult children carry the code ``CHILD + 10`` (turned into ``CHILD`` by :func:`_people`,
    which gives them adult ages).
    """
    n = len(hh_type)
    kids = 1 + rng.poisson(float(hh_cfg["extra_children_mean"]), n)
    family = (hh_type == 3) | (hh_type == 4)
    multigen = hh_type == 5
    n_kids = np.where(family | multigen, kids, 0)
    n_adult_child = (family & (rng.random(n) < float(hh_cfg["adult_child_probability"]))).astype(
        np.int64
    )
    n_spouse = (
        (hh_type == 1)
        | (hh_type == 3)
        | (multigen & (rng.random(n) < float(hh_cfg["multigenerational_spouse_probability"])))
    ).astype(np.int64)
    n_parent = np.where(multigen, 1 + (rng.random(n) < 0.5), 0)
    n_others = np.where(hh_type == 2, 1 + rng.poisson(float(hh_cfg["roommates_extra_mean"]), n), 0)
    other_role = np.where(rng.random(n) < 0.35, OTHER_RELATIVE, NONRELATIVE)
    counts = [np.ones(n, dtype=np.int64), n_spouse, n_adult_child, n_kids, n_parent, n_others]
    codes = [HEAD, SPOUSE, CHILD + 10, CHILD, PARENT, None]
    hh_parts, role_parts, rank_parts = [], [], []
    for rank, (count, code) in enumerate(zip(counts, codes, strict=True)):
        who = np.repeat(np.arange(n), count)
        hh_parts.append(who)
        role_parts.append(other_role[who] if code is None else np.full(len(who), code))
        rank_parts.append(np.full(len(who), rank))
    hh_all = np.concatenate(hh_parts)
    order = np.lexsort((np.concatenate(rank_parts), hh_all))
    roles = np.concatenate(role_parts)[order].astype(np.int8)
    sizes = np.sum(counts, axis=0)
    return roles, sizes


def _people(
    hh_type: np.ndarray,
    sizes: np.ndarray,
    roles: np.ndarray,
    person_hh: np.ndarray,
    hh_cfg: dict,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Ages and sex of every member, consistent within the household."""
    n = len(roles)
    n_hh = len(sizes)
    adult_child = roles == CHILD + 10
    roles = np.where(adult_child, CHILD, roles).astype(np.int8)
    minor = (roles == CHILD) & ~adult_child
    age = np.zeros(n)
    age[minor] = 18.0 * rng.random(int(minor.sum()))
    age[adult_child] = 18.0 + 12.0 * rng.random(int(adult_child.sum()))
    oldest_child = np.zeros(n_hh)
    child_idx = np.flatnonzero(roles == CHILD)
    np.maximum.at(oldest_child, person_hh[child_idx], age[child_idx])
    has_child = np.zeros(n_hh, dtype=bool)
    has_child[person_hh[child_idx]] = True
    head_idx = np.cumsum(np.concatenate([[0], sizes[:-1]]))
    free_head = _draw_adult_ages(n_hh, rng)
    parent_gap = 18.0 + rng.gamma(3.0, 4.0, n_hh)  # mother's / father's age at the oldest birth
    head_age = np.where(has_child, oldest_child + parent_gap, free_head)
    # Multigenerational: the householder's own parents live there: householder at most 75.
    head_age = np.where(hh_type == 5, np.minimum(head_age, 70.0), head_age)
    head_age = np.clip(head_age, 18.0, 99.0)
    age[head_idx] = head_age
    hh_head_age = head_age[person_hh]
    spouse = roles == SPOUSE
    age[spouse] = np.clip(
        hh_head_age[spouse] + rng.normal(-1.5, 4.0, int(spouse.sum())), 18.0, 99.0
    )
    elder = roles == PARENT
    age[elder] = np.clip(
        hh_head_age[elder] + 20.0 + rng.gamma(3.0, 3.0, int(elder.sum())), 40.0, 102.0
    )
    other = (roles == OTHER_RELATIVE) | (roles == NONRELATIVE)
    age[other] = np.clip(hh_head_age[other] + rng.normal(0.0, 8.0, int(other.sum())), 18.0, 95.0)
    # Sex: householders half and half; spouses mostly of the other sex; others 51% male.
    head_sex_male = rng.random(n_hh) < 0.5
    male = rng.random(n) < 0.51
    male[head_idx] = head_sex_male
    spouse_opposite = rng.random(n) < 0.96
    male[spouse] = np.where(
        spouse_opposite[spouse], ~head_sex_male[person_hh[spouse]], male[spouse]
    )
    return {"role": roles, "age_exact": age, "age": np.floor(age).astype(np.int64), "male": male}


def _immigrant_statuses(
    part: dict[str, np.ndarray],
    sizes: np.ndarray,
    county: pd.Series,
    cfg: dict,
    rng: np.random.Generator,
    naturalized_boost: float = 1.0,
    parent_years_factor: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Statuses and years in the US every member would have in an immigrant household.

    Calibration knobs: ``naturalized_boost`` multiplies the naturalized weight of the
    foreign-born mix (naturalized persons are not selected on directly);
    ``parent_years_factor`` multiplies the years in the US of householders with minor
    children (longer -> more children born in the US), which sets the split of noncitizens
    between adults and children.
    """
    roles = part["role"]
    age = part["age_exact"]
    n = len(roles)
    n_hh = len(sizes)
    person_hh = np.repeat(np.arange(n_hh), sizes)
    mix = county_status_mix(float(county["noncitizen_share"]), cfg["status"])
    foreign_mix = mix[1:] * np.array([naturalized_boost, 1.0, 1.0, 1.0])
    foreign_mix = foreign_mix / foreign_mix.sum()

    def draw(k: int) -> np.ndarray:
        return (1 + rng.choice(4, size=k, p=foreign_mix)).astype(np.int8)

    hh_cfg = cfg["households"]
    status = draw(n)
    head_idx = np.cumsum(np.concatenate([[0], sizes[:-1]]))
    head_status = status[head_idx]
    spouse = roles == SPOUSE
    same = rng.random(n) < float(hh_cfg["spouse_same_status_probability"])
    status = np.where(spouse & same, head_status[person_hh], status)
    native_spouse = spouse & (rng.random(n) < float(hh_cfg["immigrant_spouse_native_probability"]))
    other = (roles == NONRELATIVE) | (roles == OTHER_RELATIVE)
    native_other = other & (rng.random(n) < float(hh_cfg["immigrant_lodger_native_probability"]))
    status = np.where(native_spouse | native_other, NATIVE, status)
    years = _years_in_us(status, cfg, rng)
    minor_child = (roles == CHILD) & (age < 18)
    has_minor = np.zeros(n_hh, dtype=bool)
    has_minor[person_hh[minor_child]] = True
    head_years = np.where(has_minor, years[head_idx] * parent_years_factor, years[head_idx])
    head_years = np.minimum(head_years, age[head_idx] - 0.05)
    years[head_idx] = head_years
    # Spouses who share the householder's status mostly came together.
    together = spouse & same & (rng.random(n) < 0.7)
    years = np.where(together, head_years[person_hh], years)
    # Children: born abroad (before the householder arrived) or in the US (native citizens).
    child = roles == CHILD
    born_abroad = child & (age > head_years[person_hh])
    child_status = head_status[person_hh]
    status = np.where(child & ~born_abroad, NATIVE, status)
    status = np.where(born_abroad, child_status, status)
    years = np.where(born_abroad, np.minimum(head_years[person_hh], age - 0.01), years)
    years = np.where(status == NATIVE, 0.0, np.clip(years, 0.05, np.maximum(age - 0.01, 0.05)))
    # Naturalization needs >= 5 years after the LPR grant: those who cannot have had the time
    # are still LPRs.
    too_recent = (status == NATURALIZED) & (years < 5.3)
    status = np.where(too_recent, LPR, status).astype(np.int8)
    return status, years


def _dates_and_flags(
    persons: pd.DataFrame, cfg: dict, reference_date: np.datetime64, rng: np.random.Generator
) -> None:
    """Add ``dob, arrival_date, lpr_date, naturalization_date``, birth country codes and flags."""
    n = len(persons)
    ref = reference_date.astype("datetime64[D]").astype(np.int64)
    age_days = np.floor(persons["age_exact"].to_numpy() * DAYS_PER_YEAR).astype(np.int64)
    dob = ref - age_days
    persons["dob"] = dob.astype("datetime64[D]")
    # Age at the reference date from the date of birth (calendar arithmetic).
    persons["age"] = _age_on(persons["dob"].to_numpy(), reference_date)
    status = persons["status"].to_numpy()
    years = persons["years_in_us"].to_numpy()
    foreign = status != NATIVE
    arrival = ref - np.floor(years * DAYS_PER_YEAR).astype(np.int64)
    arrival = np.maximum(arrival, dob + 1)
    lpr = np.full(n, np.iinfo(np.int64).min)
    nat = np.full(n, np.iinfo(np.int64).min)
    flags_cfg = cfg["flags"]
    refugee = np.zeros(n, dtype=bool)
    protected = np.zeros(n, dtype=bool)
    for code, name in enumerate(STATUS_NAMES):
        if code == NATIVE:
            continue
        mask = status == code
        k = int(mask.sum())
        refugee[mask] = rng.random(k) < float(flags_cfg["refugee_asylee_rate"][name])
        protected[mask] = rng.random(k) < float(flags_cfg["protected_1367_rate"][name])
    arrival_cfg = cfg["arrival"]
    gap_mean = float(arrival_cfg["lpr_adjustment_mean_years"]) * DAYS_PER_YEAR
    gap = rng.exponential(gap_mean, n)
    gap = np.where(
        refugee, DAYS_PER_YEAR + rng.exponential(90.0, n), gap
    )  # refugees adjust after a year
    five = int(np.ceil(5 * DAYS_PER_YEAR))
    natm = status == NATURALIZED
    # Naturalized: LPR grant leaves room for the 5-year wait before the reference date.
    room = ref - arrival - five - 1
    lpr_nat = arrival + np.minimum(gap, np.maximum(room, 0)).astype(np.int64)
    wait = rng.exponential(float(arrival_cfg["naturalization_wait_mean_years"]) * DAYS_PER_YEAR, n)
    nat_date = (
        lpr_nat + five + np.minimum(wait, np.maximum(ref - lpr_nat - five, 0)).astype(np.int64)
    )
    lprm = status == LPR
    lpr_lpr = arrival + np.minimum(gap, 0.95 * (ref - arrival)).astype(np.int64)
    # The grant comes at least a day after arrival (arrival < LPR grant, strictly).
    lpr_nat = np.maximum(lpr_nat, arrival + 1)
    nat_date = np.maximum(nat_date, lpr_nat + five)
    lpr_lpr = np.minimum(np.maximum(lpr_lpr, arrival + 1), ref)
    lpr = np.where(natm, lpr_nat, np.where(lprm, lpr_lpr, lpr))
    nat = np.where(natm, nat_date, nat)
    nat_dt = nat.astype("datetime64[D]")
    lpr_dt = lpr.astype("datetime64[D]")
    persons["arrival_date"] = np.where(foreign, arrival, np.iinfo(np.int64).min).astype(
        "datetime64[D]"
    )
    persons["lpr_date"] = lpr_dt
    persons["naturalization_date"] = nat_dt
    persons["refugee_asylee"] = refugee
    persons["protected_1367"] = protected


def _age_on(dob: np.ndarray, on: np.datetime64) -> np.ndarray:
    """Completed years of age on date ``on`` for ``datetime64[D]`` birth dates."""
    dob = dob.astype("datetime64[D]")
    by = dob.astype("datetime64[Y]").astype(np.int64) + 1970
    bm = dob.astype("datetime64[M]").astype(np.int64) % 12
    bd = (dob - dob.astype("datetime64[M]")).astype(np.int64)
    on = np.datetime64(on, "D")
    oy = int(on.astype("datetime64[Y]").astype(np.int64)) + 1970
    om = int(on.astype("datetime64[M]").astype(np.int64)) % 12
    od = int((on - on.astype("datetime64[M]")).astype(np.int64))
    before_birthday = (om < bm) | ((om == bm) & (od < bd))
    return (oy - by - before_birthday).astype(np.int64)
