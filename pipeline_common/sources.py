"""The administrative sources of the pipeline, in the order every stage lists them."""

SOURCES: tuple[str, ...] = (
    "ssa_numident",
    "uscis_naturalizations",
    "uscis_lpr",
    "cbp_ice",
    "state_passports",
    "irs_itin",
    "acs",
)
