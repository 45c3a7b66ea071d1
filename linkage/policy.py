"""Data-use policy: applied to a source before any of its records is read for linkage.

A policy (``config["synthetic"]["sources"][source]["policy"]``) names the source's legal
authority, the fields it may share and the populations it must withhold. Records of persons
protected by 8 U.S.C. 1367 (VAWA, T and U applicants) are withheld always, whatever the config
says: a config that tries otherwise is refused. Refugee and asylee records (8 CFR 208.6) are
withheld unless ``linkage.refugee_asylee_waiver`` is true.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from pipeline_common.errors import InputError

ALWAYS_WITHHELD = "protected_1367"
WAIVABLE = "refugee_asylee"
KNOWN_POPULATIONS = (ALWAYS_WITHHELD, WAIVABLE)
# Sources whose agency knows these populations (the flags travel with their records).
DHS_SOURCES = frozenset({"uscis_naturalizations", "uscis_lpr", "cbp_ice"})

# Fields each source may share for linkage and evidence when the synthetic config gives no policy.
DEFAULT_PERMITTED_FIELDS: dict[str, list[str]] = {
    "ssa_numident": [
        "first_name",
        "last_name",
        "dob",
        "sex",
        "ssn",
        "address",
        "zip",
        "citizenship",
        "application_date",
        "last_update_date",
        "place_of_birth",
    ],
    "uscis_naturalizations": [
        "first_name",
        "last_name",
        "dob",
        "sex",
        "ssn",
        "a_number",
        "address",
        "zip",
        "naturalization_date",
        "country_of_birth",
    ],
    "uscis_lpr": [
        "first_name",
        "last_name",
        "dob",
        "sex",
        "ssn",
        "a_number",
        "address",
        "zip",
        "lpr_grant_date",
        "class_of_admission",
        "country_of_birth",
    ],
    "cbp_ice": [
        "first_name",
        "last_name",
        "dob",
        "sex",
        "a_number",
        "address",
        "zip",
        "event_date",
        "event_type",
        "country_of_citizenship",
    ],
    "state_passports": [
        "first_name",
        "last_name",
        "dob",
        "sex",
        "ssn",
        "address",
        "zip",
        "issue_date",
    ],
    "irs_itin": ["first_name", "last_name", "dob", "sex", "itin", "address", "zip", "tax_year"],
    "acs": [
        "first_name",
        "last_name",
        "dob",
        "sex",
        "address",
        "zip",
        "block_id",
        "interview_date",
        "citizenship_response",
    ],
}


@dataclass(frozen=True)
class Policy:
    """The data-use policy in force for one source, after the linkage stage's rules."""

    source: str
    authority: str
    permitted_fields: tuple[str, ...] | None
    withhold: tuple[str, ...]
    origin: str  # where it came from: the config key, or the linkage default
    notes: list[str] = field(default_factory=list, compare=False)


def resolve_policy(config: dict, source: str) -> Policy:
    """The policy for ``source`` from the config, with the linkage stage's rules applied.

    Raises
    ------
    InputError
        If a policy (or ``linkage.default_withhold``) does not withhold ``protected_1367``, or
        names an unknown population.
    """
    linkage_cfg = config.get("linkage", {})
    waiver = bool(linkage_cfg.get("refugee_asylee_waiver", False))
    policy_cfg = (
        config.get("synthetic", {}).get("sources", {}).get(source, {}).get("policy")
        if isinstance(config.get("synthetic", {}).get("sources", {}).get(source), dict)
        else None
    )
    if policy_cfg:
        key = f"synthetic.sources.{source}.policy.withhold"
        withhold = list(policy_cfg.get("withhold", linkage_cfg.get("default_withhold", [])))
        permitted = policy_cfg.get("permitted_fields")
        authority = str(policy_cfg.get("authority", "unspecified"))
        origin = f"synthetic.sources.{source}.policy"
    else:
        key = "linkage.default_withhold"
        withhold = list(linkage_cfg.get("default_withhold", list(KNOWN_POPULATIONS)))
        permitted = None
        authority = "unspecified (linkage default policy)"
        origin = "linkage.default_withhold"
    unknown = sorted(set(withhold) - set(KNOWN_POPULATIONS))
    if unknown:
        raise InputError(
            "config",
            key,
            f"unknown population(s) to withhold: {unknown}",
            f"use only {list(KNOWN_POPULATIONS)}",
        )
    if ALWAYS_WITHHELD not in withhold:
        raise InputError(
            "config",
            key,
            f"does not withhold '{ALWAYS_WITHHELD}': records protected by 8 U.S.C. 1367 "
            "must never be used for linkage, whatever the configuration",
            f"add '{ALWAYS_WITHHELD}' to {key}",
        )
    notes = []
    if WAIVABLE in withhold and waiver:
        withhold.remove(WAIVABLE)
        notes.append("refugee/asylee records used under linkage.refugee_asylee_waiver")
    if permitted is None:
        permitted = DEFAULT_PERMITTED_FIELDS.get(source)
    return Policy(
        source=source,
        authority=authority,
        permitted_fields=tuple(permitted) if permitted is not None else None,
        withhold=tuple(dict.fromkeys(withhold)),
        origin=origin,
        notes=notes,
    )


def apply_policy(
    records: pd.DataFrame, policy: Policy, file: str = "source"
) -> tuple[pd.DataFrame, dict]:
    """Remove withheld populations and unpermitted fields from a source's records.

    Parameters
    ----------
    records
        The source file as read (``record_id`` plus fields, plus the agency's population flags).
    policy
        From :func:`resolve_policy`.
    file
        Name used in error messages.

    Returns
    -------
    (shared, counts)
        ``shared``: the records and fields linkage may read (flags dropped). ``counts``:
        ``{"records_in", "withheld": {population: n}, "withheld_total", "records_shared",
        "fields_dropped": [...]}``. A record in two withheld populations counts once in
        ``withheld_total`` and under each population.

    Raises
    ------
    InputError
        If a DHS source lacks a flag column its policy needs (withholding cannot be proven).
    """
    if "record_id" not in records.columns:
        raise InputError(file, "record_id", "missing", "regenerate the source file")
    keep = pd.Series(True, index=records.index)
    withheld: dict[str, int] = {}
    for population in policy.withhold:
        if population not in records.columns:
            if policy.source in DHS_SOURCES:
                raise InputError(
                    file,
                    population,
                    "flag column missing, so its withheld population cannot be removed",
                    "regenerate the source with the synthetic stage (DHS sources carry "
                    "protected_1367 and refugee_asylee)",
                )
            # A non-DHS agency does not know who is in these populations: nothing to remove.
            withheld[population] = 0
            continue
        flag = records[population].fillna(False).astype(bool)
        withheld[population] = int(flag.sum())
        keep &= ~flag
    shared = records.loc[keep]
    flags = [c for c in KNOWN_POPULATIONS if c in shared.columns]
    allowed = (
        set(shared.columns) - set(flags)
        if policy.permitted_fields is None
        else {"record_id", *policy.permitted_fields} - set(flags)
    )
    columns = [c for c in shared.columns if c in allowed]
    dropped = sorted(set(shared.columns) - set(columns) - set(flags))
    counts = {
        "records_in": len(records),
        "withheld": withheld,
        "withheld_total": int((~keep).sum()),
        "records_shared": int(keep.sum()),
        "fields_dropped": dropped,
        "authority": policy.authority,
        "policy_origin": policy.origin,
        "notes": list(policy.notes),
    }
    return shared[columns].reset_index(drop=True), counts


def check_policies(config: dict, sources: list[str]) -> dict[str, Policy]:
    """Resolve every source's policy up front, so a bad config fails before any work starts.

    Raises
    ------
    InputError
        As :func:`resolve_policy` (e.g. a policy that does not withhold ``protected_1367``).
    """
    return {source: resolve_policy(config, source) for source in sources}
