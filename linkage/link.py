"""Fellegi-Sunter linkage of two standardized tables with Splink 5 (DuckDB or Spark backend).

:func:`link_tables` links any two tables already in the linkage schema
(:func:`linkage.standardize.standardize_identity`); :func:`link_any` does the field mapping
and standardization first (used by the FEBRL benchmark). :func:`best_links` turns scored pairs
into links where each right-hand record has at most one left-hand person.

The comparison SQL names string functions by placeholders (``{jaro_winkler}``,
``{damerau_levenshtein}``, ``{levenshtein}``), filled for the backend by
:func:`linkage.backends.fill_functions` (``LinkSettings.backend``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field

import pandas as pd

from linkage.backends import fill_functions, make_db_api
from linkage.standardize import standardize_identity

log = logging.getLogger(__name__)

LEFT_NAME = "frame"
RIGHT_NAME = "source"

# Surname agreement tolerant of double surnames: full, first unit, or last unit on either side.
_SURNAME_MATCH = (
    "(last_name_l = last_name_r OR last_name_first_l = last_name_first_r"
    " OR last_name_l = last_name_first_r OR last_name_first_l = last_name_r"
    " OR last_name_last_l = last_name_r"
    " OR last_name_l = last_name_last_r)"
)
_FIRST_MATCH = "(first_name_canon_l = first_name_canon_r OR first_name_full_l = first_name_full_r)"
# The same person's double surname cut to its first unit ("GARCIA LOPEZ" / "GARCIA").
_FIRST_SURNAME_MATCH = "(last_name_first_l = last_name_first_r)"


def _jw(column: str) -> str:
    return f"{{jaro_winkler}}({column}_l, {column}_r)"


# Comparisons: name -> list of (label, sql, starting m probability). The first level is the null
# level. Starting m values matter only where EM cannot estimate them (small sources).
COMPARISONS: dict[str, list[tuple[str, str, float | None]]] = {
    "name": [
        (
            "null",
            "(first_name_l IS NULL AND last_name_l IS NULL)"
            " OR (first_name_r IS NULL AND last_name_r IS NULL)",
            None,
        ),
        ("exact first and last", "first_name_l = first_name_r AND last_name_l = last_name_r", 0.8),
        (
            "given name (or nickname) and first surname agree",
            f"{_FIRST_MATCH} AND {_FIRST_SURNAME_MATCH}",
            0.06,
        ),
        (
            "given name agrees, surnames share another unit",
            f"{_FIRST_MATCH} AND {_SURNAME_MATCH}",
            0.01,
        ),
        (
            "first and last swapped",
            "first_name_l = last_name_first_r AND last_name_first_l = first_name_r",
            0.01,
        ),
        (
            "both similar (Jaro-Winkler >= 0.88)",
            f"{_jw('first_name_canon')} >= 0.88 AND ({_jw('last_name')} >= 0.88 OR {_SURNAME_MATCH})",
            0.06,
        ),
        (
            "surname agrees, given name missing",
            f"(first_name_l IS NULL OR first_name_r IS NULL) AND {_SURNAME_MATCH}",
            0.005,
        ),
        (
            "given name agrees, surname missing",
            f"(last_name_l IS NULL OR last_name_r IS NULL) AND {_FIRST_MATCH}",
            0.003,
        ),
        (
            "surname agrees, first initial agrees",
            f"({_SURNAME_MATCH} OR {_jw('last_name')} >= 0.92)"
            " AND substr(first_name_l, 1, 1) = substr(first_name_r, 1, 1)",
            0.02,
        ),
        ("surname agrees", f"{_SURNAME_MATCH} OR {_jw('last_name')} >= 0.92", 0.02),
        ("first name agrees", f"{_FIRST_MATCH} OR {_jw('first_name')} >= 0.92", 0.02),
        ("else", "ELSE", 0.01),
    ],
    "dob": [
        ("null", "dob_l IS NULL OR dob_r IS NULL", None),
        ("exact", "dob_l = dob_r", 0.85),
        (
            "day and month swapped",
            "birth_year_l = birth_year_r AND birth_month_l = birth_day_r"
            " AND birth_day_l = birth_month_r",
            0.03,
        ),
        ("one edit (typo or transposition)", "{damerau_levenshtein}(dob_l, dob_r) <= 1", 0.06),
        (
            "two of year, month, day agree",
            "(birth_year_l = birth_year_r AND (birth_month_l = birth_month_r"
            " OR birth_day_l = birth_day_r)) OR (birth_month_l = birth_month_r"
            " AND birth_day_l = birth_day_r AND abs(birth_year_l - birth_year_r) <= 2)",
            0.04,
        ),
        ("else", "ELSE", 0.02),
    ],
    "sex": [
        ("null", "sex_l IS NULL OR sex_r IS NULL", None),
        ("exact", "sex_l = sex_r", 0.97),
        ("else", "ELSE", 0.03),
    ],
    "ssn": [
        ("null", "ssn_l IS NULL OR ssn_r IS NULL", None),
        ("exact", "ssn_l = ssn_r", 0.9),
        ("one edit", "{damerau_levenshtein}(ssn_l, ssn_r) <= 1", 0.06),
        ("else", "ELSE", 0.04),
    ],
    "other_id": [
        ("null", "other_id_l IS NULL OR other_id_r IS NULL", None),
        ("exact", "other_id_l = other_id_r", 0.9),
        ("one edit", "{damerau_levenshtein}(other_id_l, other_id_r) <= 1", 0.06),
        ("else", "ELSE", 0.04),
    ],
    # Address, block and ZIP say the same thing (where a person lives): one comparison, so their
    # agreement is not counted twice.
    "location": [
        (
            "null",
            "(address_l IS NULL OR address_r IS NULL) AND (zip_l IS NULL OR zip_r IS NULL)"
            " AND (block_id_l IS NULL OR block_id_r IS NULL)",
            None,
        ),
        ("address exact", "address_l = address_r", 0.6),
        (
            "address similar",
            f"{_jw('address')} >= 0.9 OR (house_number_l = house_number_r"
            " AND {levenshtein}(address_l, address_r) <= 3)",
            0.1,
        ),
        ("same block", "block_id_l = block_id_r", 0.05),
        ("same zip", "zip_l = zip_r", 0.1),
        ("else", "ELSE", 0.15),
    ],
}

# Columns each comparison needs non-null on both sides to be worth including.
COMPARISON_COLUMNS: dict[str, tuple[str, ...]] = {
    "name": ("first_name", "last_name"),
    "dob": ("dob",),
    "sex": ("sex",),
    "ssn": ("ssn",),
    "other_id": ("other_id",),
    "location": ("address", "zip", "block_id"),
}

# Blocking rules: name -> (SQL, columns that must be non-null on both sides for it to be useful).
BLOCKING_RULES: dict[str, tuple[str, tuple[str, ...]]] = {
    "dob": ("l.dob = r.dob", ("dob",)),
    "name_year": (
        "l.first_name_sx = r.first_name_sx AND l.last_name_sx = r.last_name_sx"
        " AND l.birth_year = r.birth_year",
        ("first_name_sx", "last_name_sx", "birth_year"),
    ),
    "name_swap_year": (
        "l.first_name_sx = r.last_name_sx AND l.last_name_sx = r.first_name_sx"
        " AND l.birth_year = r.birth_year",
        ("first_name_sx", "last_name_sx", "birth_year"),
    ),
    "name_exact": (
        "l.first_name = r.first_name AND l.last_name = r.last_name",
        ("first_name", "last_name"),
    ),
    "zip_last": ("l.zip = r.zip AND l.last_name_sx = r.last_name_sx", ("zip", "last_name_sx")),
    "zip_first": ("l.zip = r.zip AND l.first_name_sx = r.first_name_sx", ("zip", "first_name_sx")),
    "zip_last_initial": (
        "l.zip = r.zip AND l.last_name_sx = r.last_name_sx"
        " AND substr(l.first_name, 1, 1) = substr(r.first_name, 1, 1)",
        ("zip", "last_name_sx", "first_name"),
    ),
    "address_first": (
        "l.address = r.address AND l.first_name_sx = r.first_name_sx",
        ("address", "first_name_sx"),
    ),
    "block_last": (
        "l.block_id = r.block_id AND l.last_name_sx = r.last_name_sx",
        ("block_id", "last_name_sx"),
    ),
    "block_first": (
        "l.block_id = r.block_id AND l.first_name_sx = r.first_name_sx",
        ("block_id", "first_name_sx"),
    ),
    "address": ("l.address = r.address", ("address",)),
    "ssn": ("l.ssn = r.ssn", ("ssn",)),
    "other_id": ("l.other_id = r.other_id", ("other_id",)),
}


@dataclass
class LinkSettings:
    """How to link one pair of tables (one source to the frame, or any two tables).

    The pipeline sets the fields from its ``linkage`` config (:func:`linkage.stage.link_settings`);
    a library user builds one directly, e.g.
    ``LinkSettings(comparisons=["name", "dob"], blocking_rules=["dob", "name_exact"])``.
    Comparisons or rules whose columns are empty on either side are left out (``info`` says
    which were used).

    Attributes
    ----------
    comparisons
        Fellegi-Sunter comparisons, each with its own agreement levels (:data:`COMPARISONS`):
        ``name`` (first and last name: exact, nickname, swapped, Jaro-Winkler similar, one
        missing, ...), ``dob`` (exact, day/month swapped, one edit, two of three parts),
        ``sex``, ``ssn`` and ``other_id`` (exact, one edit), ``location`` (address exact or
        similar, same block, same ZIP: one comparison, so that living in one place is not
        counted twice). A comparison reads the linkage fields of the same name
        (``location``: ``address``, ``zip``, ``block_id``).
    blocking_rules
        Which pairs are scored at all: the union of the pairs each rule admits
        (:data:`BLOCKING_RULES`), e.g. ``dob`` (same date of birth), ``name_exact`` (same first
        and last name), ``name_year`` (same Soundex of both names and birth year),
        ``name_swap_year``, ``zip_last``, ``zip_first``, ``zip_last_initial``,
        ``address_first``, ``block_last``, ``block_first``, ``address``, ``ssn``,
        ``other_id``. A true match that no rule admits cannot be found.
    em_blocking_rules
        Blocking rules on which the m probabilities (how often true matches agree at each
        level) are trained by expectation-maximisation, one session per rule; a session that
        fails (too few pairs in small tables) keeps the starting m values (``info`` lists the
        rules that trained).
    threshold
        Match probability at or above which a scored pair may become a link.
    u_max_pairs
        Random pairs sampled (in one chunk) to estimate the u probabilities (how often
        non-matches agree by chance). A level never seen among them gets ``u = 3 /
        u_max_pairs`` (the rule of three) instead of Splink's generic default.
    em_max_pairs
        Most blocked pairs read by one EM session (``None``: all).
    em_max_iterations
        EM iterations per session.
    seed
        Seed of the u sampling: the same tables and settings give the same links.
    threads
        DuckDB threads.
    expected_match_share
        Share of the smaller table's records expected to have a match in the other; sets the
        prior probability that two random records match, ``share * min(n_l, n_r) / (n_l n_r)``
        (at most 0.5).
    memory_limit
        DuckDB memory limit (e.g. ``"4GB"``); past it DuckDB spills to disk. ``None``: DuckDB's
        default.
    many_to_many
        :func:`link_any` only. ``False`` (default): at most one link per right-hand record and
        one per left-hand record (plus right-hand within-source duplicates), as
        :func:`best_links`. ``True``: every scored pair at or above ``threshold`` is a link, so
        a record may link to several (duplicates on either side, or ambiguous candidates).
    quiet
        :func:`link_any` only. ``True`` (default): Splink's log lines and warnings (untrained
        levels, EM sampling notes: 15-20 lines per call on small tables) and this module's
        per-step warnings are silenced for the duration of the call; what they report is in
        ``info``. Logging and warning settings are restored afterwards. ``False``: Splink logs
        at WARNING.
    return_pairs
        :func:`link_any` only. ``True``: ``info["scored_pairs"]`` holds the scored pairs
        (``left_id, right_id, match_weight, match_probability``) at or above
        ``pairs_threshold``, e.g. to choose a threshold or draw a precision-recall curve.
    pairs_threshold
        :func:`link_any` only, with ``return_pairs``: lowest match probability of a returned
        pair (``None``: ``threshold``; ``0``: every blocked pair). Below ``threshold`` Splink
        scores more pairs; the links still use ``threshold``.
    """

    comparisons: list[str] = field(
        default_factory=lambda: ["name", "dob", "sex", "ssn", "location"]
    )
    blocking_rules: list[str] = field(
        default_factory=lambda: [
            "dob",
            "name_year",
            "name_swap_year",
            "name_exact",
            "zip_last_initial",
            "address_first",
            "block_last",
            "ssn",
        ]
    )
    em_blocking_rules: list[str] = field(default_factory=lambda: ["dob", "name_exact"])
    threshold: float = 0.9
    u_max_pairs: float = 2e6
    em_max_pairs: float | None = 2e6
    em_max_iterations: int = 25
    seed: int = 0
    threads: int = 2
    expected_match_share: float = 0.9
    memory_limit: str | None = "4GB"
    # Options of the library entry point link_any (link_tables and the pipeline ignore them).
    many_to_many: bool = False
    quiet: bool = True
    return_pairs: bool = False
    pairs_threshold: float | None = None
    # Splink's database: "duckdb" (threads, memory_limit) or "spark" (the linkage.spark keys).
    backend: str = "duckdb"
    spark: dict = field(default_factory=dict)


def _usable(table: pd.DataFrame, columns: tuple[str, ...]) -> bool:
    """True if any of ``columns`` has a non-null value in ``table``."""
    return any(c in table.columns and table[c].notna().any() for c in columns)


def _both_usable(left: pd.DataFrame, right: pd.DataFrame, columns: tuple[str, ...]) -> bool:
    # A comparison is worth including when any of its columns is filled on both sides.
    return _usable(left, columns) and _usable(right, columns)


def _blocking_usable(left: pd.DataFrame, right: pd.DataFrame, columns: tuple[str, ...]) -> bool:
    return all(_usable(left, (c,)) and _usable(right, (c,)) for c in columns)


def build_settings(
    left: pd.DataFrame, right: pd.DataFrame, settings: LinkSettings
) -> tuple[dict, list[str], list[str], list[str]]:
    """The Splink settings dict, with comparisons and rules the data can support.

    Returns
    -------
    (settings_dict, comparisons used, prediction blocking rules used, EM blocking rules used)
    """
    unknown = [c for c in settings.comparisons if c not in COMPARISONS]
    unknown += [
        b for b in settings.blocking_rules + settings.em_blocking_rules if b not in BLOCKING_RULES
    ]
    if unknown:
        raise ValueError(
            f"unknown comparison or blocking rule names: {unknown}; "
            f"comparisons: {sorted(COMPARISONS)}, blocking rules: {sorted(BLOCKING_RULES)}"
        )
    comparisons = [
        c for c in settings.comparisons if _both_usable(left, right, COMPARISON_COLUMNS[c])
    ]
    rules = [
        b for b in settings.blocking_rules if _blocking_usable(left, right, BLOCKING_RULES[b][1])
    ]
    em_rules = [
        b for b in settings.em_blocking_rules if _blocking_usable(left, right, BLOCKING_RULES[b][1])
    ]
    if not comparisons or not rules:
        raise ValueError(
            "no usable comparison or blocking rule: the two tables share no non-null "
            f"identity field among {settings.comparisons}"
        )
    comparison_dicts = []
    for name in comparisons:
        levels = []
        for i, (label, sql, m) in enumerate(COMPARISONS[name]):
            level: dict = {
                "sql_condition": fill_functions(sql, settings.backend),
                "label_for_charts": label,
            }
            if i == 0:
                level["is_null_level"] = True
            elif m is not None:
                level["m_probability"] = m
            levels.append(level)
        comparison_dicts.append(
            {
                "output_column_name": name,
                "comparison_description": name,
                "comparison_levels": levels,
            }
        )
    n_left, n_right = max(len(left), 1), max(len(right), 1)
    prior = min(0.5, settings.expected_match_share * min(n_left, n_right) / (n_left * n_right))
    splink_settings = {
        "link_type": "link_only",
        "unique_id_column_name": "unique_id",
        "comparisons": comparison_dicts,
        "blocking_rules_to_generate_predictions": [
            {"blocking_rule": BLOCKING_RULES[b][0]} for b in rules
        ],
        "probability_two_random_records_match": prior,
        "max_iterations": settings.em_max_iterations,
        "retain_matching_columns": False,
        "retain_intermediate_calculation_columns": False,
    }
    return splink_settings, comparisons, rules, em_rules


def register_for_splink(backend, table: pd.DataFrame, name: str):
    """Hand one table to Splink. Every record Splink ever sees passes through here.

    ``backend`` is a :class:`linkage.backends.DatabaseBackend`: DuckDB takes the pandas table,
    Spark a Spark DataFrame made from it.
    """
    return backend.db_api.register(backend.to_input(table), dataset_display_name=name)


LINK_COLUMNS = (
    "unique_id",
    "first_name",
    "first_name_full",
    "first_name_canon",
    "last_name",
    "last_name_first",
    "last_name_last",
    "first_name_sx",
    "last_name_sx",
    "dob",
    "birth_year",
    "birth_month",
    "birth_day",
    "sex",
    "ssn",
    "address",
    "house_number",
    "zip",
    "block_id",
    "other_id",
)


def link_tables(
    left: pd.DataFrame, right: pd.DataFrame, settings: LinkSettings
) -> tuple[pd.DataFrame, dict]:
    """Score candidate pairs between two standardized tables (link only).

    Parameters
    ----------
    left, right
        Tables in the linkage schema (``unique_id`` unique within each table).
    settings
        Comparisons, blocking rules, training sizes, seed and the backend (DuckDB threads and
        memory, or Spark's settings).

    Returns
    -------
    (pairs, info)
        ``pairs``: ``left_id, right_id, match_weight, match_probability`` for every blocked pair
        at or above ``settings.threshold`` (sorted, so output is deterministic). ``info``: what
        was used and the trained m/u parameters, with timings.
    """
    started = time.perf_counter()
    left = left.loc[:, list(LINK_COLUMNS)]
    right = right.loc[:, list(LINK_COLUMNS)]
    built = build_settings(left, right, settings)
    backend = make_db_api(
        {
            "backend": settings.backend,
            "threads": settings.threads,
            "duckdb_memory_limit": settings.memory_limit,
            "spark": settings.spark,
        }
    )
    try:
        return _link_registered(backend, left, right, settings, built, started)
    finally:
        backend.close()


def _link_registered(
    backend, left: pd.DataFrame, right: pd.DataFrame, settings: LinkSettings, built, started
) -> tuple[pd.DataFrame, dict]:
    """:func:`link_tables` once the backend is up (split off so the backend is always closed)."""
    from splink import Linker

    splink_settings, comparisons, rules, em_rules = built
    sdf_left = register_for_splink(backend, left, LEFT_NAME)
    sdf_right = register_for_splink(backend, right, RIGHT_NAME)
    linker = Linker([sdf_left, sdf_right], splink_settings, log_level=logging.WARNING)

    # One chunk, no early stop: Splink's probe/early-stop path gave u values for rare levels
    # (nickname, swapped names) hundreds of times their true rate on the default world.
    linker.training.estimate_u_using_random_sampling(
        max_pairs=settings.u_max_pairs, seed=settings.seed, min_count_per_level=None, num_chunks=1
    )
    floored = _floor_unobserved_u(linker, settings.u_max_pairs)
    trained_rules = []
    for rule in em_rules:
        try:
            linker.training.estimate_parameters_using_expectation_maximisation(
                BLOCKING_RULES[rule][0],
                estimate_without_term_frequencies=True,
                max_pairs=settings.em_max_pairs,
            )
            trained_rules.append(rule)
        except Exception as exc:  # too few pairs in a small source: keep the starting m values
            log.warning("EM on blocking rule %s skipped: %s", rule, exc)
    trained_at = time.perf_counter()

    predictions = linker.inference.predict(
        threshold_match_probability=settings.threshold, warning_mode="never"
    )
    scored = predictions.as_pandas_dataframe()
    predicted_at = time.perf_counter()
    left_is_l = scored["source_dataset_l"] == LEFT_NAME
    pairs = pd.DataFrame(
        {
            "left_id": scored["unique_id_l"].where(left_is_l, scored["unique_id_r"]),
            "right_id": scored["unique_id_r"].where(left_is_l, scored["unique_id_l"]),
            "match_weight": scored["match_weight"].astype("float64"),
            "match_probability": scored["match_probability"].astype("float64"),
        }
    )
    pairs = pairs.sort_values(["right_id", "left_id"], kind="stable").reset_index(drop=True)
    levels = _level_weights(linker)
    info = {
        "left_records": len(left),
        "right_records": len(right),
        "comparisons": comparisons,
        "blocking_rules": rules,
        "em_blocking_rules": trained_rules,
        "u_floored_levels": floored,
        "pairs_scored_above_threshold": len(pairs),
        "train_seconds": round(trained_at - started, 2),
        "predict_seconds": round(predicted_at - trained_at, 2),
        "model": levels,
        "backend": backend.name,
    }
    return pairs, info


def _floor_unobserved_u(linker, pairs_sampled: float) -> list[str]:
    """Give levels never seen among the random pairs u = 3 / pairs sampled, and fix it.

    Splink leaves such a level without a trained u and then falls back to a generic default
    (1/1280 for the second level of a 9-level comparison): on the default world that made
    "given name and first surname agree" worth 5.8 bits instead of about 15, and lost 3% of
    the CBP links. Zero events in N pairs put the 95% upper bound of the rate at 3/N (the rule
    of three): a conservative u. Fixing it stops later EM sessions resetting it. Uses Splink
    internals (``_settings_obj``, ``_trained_u_median``, ``_fix_u_probability``) as of 5.0.
    """
    floor = 3.0 / float(pairs_sampled)
    floored = []
    for comparison in linker._settings_obj.comparisons:
        for level in comparison._comparison_levels_excluding_null:
            if level._trained_u_median is None:
                level.u_probability = floor
                level._fix_u_probability = True
                floored.append(f"{comparison.output_column_name}: {level.label_for_charts}")
    return floored


def _level_weights(linker) -> dict:
    """m, u and match weight of every comparison level as used for prediction."""
    out = {}
    for comparison in linker._settings_obj.comparisons:
        levels = []
        for level in comparison.comparison_levels:
            if level.is_null_level:
                continue
            levels.append(
                {
                    "label": level.label_for_charts,
                    "m": level.m_probability,
                    "u": level.u_probability,
                    "weight": level._match_weight,
                }
            )
        out[comparison.output_column_name] = levels
    return out


def _prefix_of(a: pd.Series, b: pd.Series) -> bool:
    """One given name starts the other (KIM / KIMBERLY), both at least two letters."""
    x, y = a.get("first_name"), b.get("first_name")
    if pd.isna(x) or pd.isna(y) or min(len(x), len(y)) < 2:
        return False
    return bool(x.startswith(y) or y.startswith(x))


def _duplicate_of(a: pd.Series, b: pd.Series) -> bool:
    """Whether two right-hand records look like one person's duplicates.

    They must agree on the given name (nickname-resolved, Soundex, or one a prefix of the
    other), and on at least one of date of birth, surname (Soundex) or identifier. Siblings
    (twins included) differ in the given name, so their records are not taken as duplicates.
    """

    def same(column: str) -> bool:
        x, y = a.get(column), b.get(column)
        return bool(pd.notna(x) and pd.notna(y) and x == y)

    first = same("first_name_canon") or same("first_name_sx") or _prefix_of(a, b)
    other = same("dob") or same("last_name_sx") or same("ssn") or same("other_id")
    return first and other


def best_links(
    pairs: pd.DataFrame,
    threshold: float,
    right: pd.DataFrame | None = None,
    allow_right_duplicates: bool = True,
) -> pd.DataFrame:
    """One link per right-hand record, from scored pairs.

    The left table (the census frame) is duplicate-free; the right one (a source) is not: one
    person may have two CBP records. Links are chosen in two passes:

    1. Greedy one-to-one: pairs at or above ``threshold`` in decreasing match weight (ties by
       ids); a pair is kept when neither its record nor its person is linked yet. This is
       :meth:`splink.Linker.clustering.cluster_using_single_best_links` with both sides
       duplicate-free, done in pandas so the tie rule is ours and explicit.
    2. Duplicates: a record left unlinked whose best candidate person already holds a record of
       this source is linked to that person too when the two records look like duplicates of
       one person (:func:`_duplicate_of`); otherwise it stays unlinked (better no link than a
       sibling's).

    Each record gets at most one person. A person gets at most one record, except for records
    accepted as within-source duplicates.

    Returns
    -------
    DataFrame ``left_id, right_id, match_probability, match_weight, link_pass`` sorted by
    ``right_id``.
    """
    candidates = pairs.loc[pairs["match_probability"] >= threshold]
    candidates = candidates.sort_values(
        ["match_weight", "right_id", "left_id"], ascending=[False, True, True], kind="stable"
    )
    used_left: set[str] = set()
    used_right: set[str] = set()
    chosen = []
    for row in candidates.itertuples(index=False):
        if row.left_id in used_left or row.right_id in used_right:
            continue
        used_left.add(row.left_id)
        used_right.add(row.right_id)
        chosen.append((row.left_id, row.right_id, row.match_probability, row.match_weight, 1))
    if allow_right_duplicates and right is not None and len(candidates):
        record_of_person = {left_id: right_id for left_id, right_id, *_ in chosen}
        by_id = right.set_index("unique_id")
        rest = candidates.loc[~candidates["right_id"].isin(used_right)]
        best = rest.drop_duplicates("right_id", keep="first")  # sorted by weight: best first
        for row in best.itertuples(index=False):
            holder = record_of_person.get(row.left_id)
            if holder is None:
                continue
            if _duplicate_of(by_id.loc[row.right_id], by_id.loc[holder]):
                chosen.append(
                    (row.left_id, row.right_id, row.match_probability, row.match_weight, 2)
                )
    links = pd.DataFrame(
        chosen, columns=["left_id", "right_id", "match_probability", "match_weight", "link_pass"]
    )
    return links.sort_values("right_id", kind="stable").reset_index(drop=True)


@contextlib.contextmanager
def quiet_splink() -> Iterator[None]:
    """Silence Splink's log records and warnings (and this module's) inside the block.

    Splink's ``Linker`` sets its logger's level and, when no handler would receive its records,
    gives it a handler of its own on stderr. Here the ``splink`` logger gets a handler that
    drops records and stops propagating, so nothing reaches stderr or the root handlers; its
    handlers, level and propagation are restored afterwards. Warnings raised from Splink's
    modules are ignored within :func:`warnings.catch_warnings` (which restores the filters).
    """
    splink_logger = logging.getLogger("splink")
    saved_level, saved_propagate = splink_logger.level, splink_logger.propagate
    saved_handlers = list(splink_logger.handlers)
    own_level = log.level
    sink = logging.NullHandler()
    for handler in saved_handlers:
        splink_logger.removeHandler(handler)
    splink_logger.addHandler(sink)
    splink_logger.propagate = False
    log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module="splink")
            yield
    finally:
        splink_logger.removeHandler(sink)
        for handler in saved_handlers:
            splink_logger.addHandler(handler)
        splink_logger.setLevel(saved_level)
        splink_logger.propagate = saved_propagate
        log.setLevel(own_level)


def check_link_options(settings: LinkSettings) -> None:
    """Check the :func:`link_any` options of ``settings``.

    Raises
    ------
    InputError
        ``threshold`` or ``pairs_threshold`` outside 0-1.
    """
    from pipeline_common.errors import InputError

    for name in ("threshold", "pairs_threshold"):
        value = getattr(settings, name)
        if value is None and name == "pairs_threshold":
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise InputError(
                "LinkSettings", name, f"{value!r} is not a probability", "give a number in 0-1"
            )


def link_any(
    left_raw: pd.DataFrame,
    right_raw: pd.DataFrame,
    left_fields: dict[str, str],
    right_fields: dict[str, str],
    settings: LinkSettings,
    reference_date: str = "2020-04-01",
    accept_synthetic_9xx: bool = True,
) -> tuple[pd.DataFrame, dict]:
    """Link any two tables of person records, given how their columns map to linkage fields.

    Maps and standardizes both tables (:func:`linkage.standardize.standardize_identity`:
    upper case, accents and punctuation removed, nicknames resolved, dates parsed), trains a
    Fellegi-Sunter model on them (u by random sampling, m by EM; :func:`link_tables`), scores
    the blocked pairs and keeps links (:func:`best_links`, or every pair above the threshold
    with ``settings.many_to_many``). Link only: records are never linked within one table.

    Parameters
    ----------
    left_raw, right_raw
        The tables as they come, one record per row.
    left_fields, right_fields
        ``{linkage field: column}``; linkage fields: ``unique_id`` (required), ``first_name``,
        ``last_name``, ``dob``, ``sex``, ``ssn``, ``address``, ``zip``, ``block_id``,
        ``other_id``. A column may be a list of columns joined by spaces (e.g. street number
        and street name): pass ``"col_a+col_b"``.
    settings
        Comparisons, blocking rules, training sizes, threshold and the options of this function
        (``many_to_many``, ``quiet``, ``return_pairs``, ``pairs_threshold``): see
        :class:`LinkSettings`.
    reference_date
        ``YYYY-MM-DD``: dates of birth after it are treated as errors (nulled).
    accept_synthetic_9xx
        Accept SSNs of area 9xx (this project's synthetic SSNs); real SSNs never start with 9.

    Returns
    -------
    (links, info)
        ``links``: DataFrame ``left_id, right_id, match_probability, match_weight, link_pass``
        sorted by ``right_id`` (ids as strings). One-to-one (default): at most one link per
        right-hand record; ``link_pass`` 1 for the greedy one-to-one pass, 2 for a right-hand
        record linked as a duplicate of another linked to the same person. With
        ``many_to_many``: every pair at or above ``threshold``, ``link_pass`` 0.
        ``info``: dict of what was used and learned: ``left_records``, ``right_records``,
        ``comparisons``, ``blocking_rules``, ``em_blocking_rules`` (those that trained),
        ``u_floored_levels``, ``pairs_scored_above_threshold`` (at the threshold Splink
        predicted at), ``train_seconds``, ``predict_seconds``, ``model`` (m, u and match weight
        of every comparison level); with ``return_pairs`` also ``scored_pairs`` (a DataFrame,
        see :class:`LinkSettings`).

    Raises
    ------
    InputError
        Before any linkage work: an unknown linkage field or comparison name, a mapped column
        the table lacks (with the nearest column name), duplicate or missing ids, a mapped
        identifier whose values are mostly not of its shape (e.g. 7-digit numbers mapped to
        ``ssn``: map them to ``other_id``), or a threshold outside 0-1. A mapped field that no
        comparison or blocking rule reads is a ``UserWarning``.
    """
    check_link_options(settings)
    for side, table, fields in (
        ("left", left_raw, left_fields),
        ("right", right_raw, right_fields),
    ):
        check_field_mapping(table, fields, side, settings)
    left_mapped = _map_fields(left_raw, left_fields)
    right_mapped = _map_fields(right_raw, right_fields)
    left = standardize_identity(left_mapped, "unique_id", reference_date, accept_synthetic_9xx)
    right = standardize_identity(right_mapped, "unique_id", reference_date, accept_synthetic_9xx)
    for side, mapped, std, fields in (
        ("left", left_mapped, left, left_fields),
        ("right", right_mapped, right, right_fields),
    ):
        check_standardized(mapped, std, fields, side)
    pairs_threshold = settings.threshold
    if settings.return_pairs and settings.pairs_threshold is not None:
        pairs_threshold = float(settings.pairs_threshold)
    # Score down to the lower of the two thresholds; links still use settings.threshold.
    scoring = dataclasses.replace(settings, threshold=min(settings.threshold, pairs_threshold))
    with quiet_splink() if settings.quiet else contextlib.nullcontext():
        pairs, info = link_tables(left, right, scoring)
    if settings.many_to_many:
        links = pairs.loc[pairs["match_probability"] >= settings.threshold]
        links = links.loc[:, ["left_id", "right_id", "match_probability", "match_weight"]]
        links = links.assign(link_pass=0).reset_index(drop=True)
    else:
        links = best_links(pairs, settings.threshold, right)
    if settings.return_pairs:
        info["scored_pairs"] = pairs.loc[pairs["match_probability"] >= pairs_threshold]
        info["scored_pairs"] = info["scored_pairs"].reset_index(drop=True)
    return links, info


LINKAGE_FIELDS = (
    "unique_id",
    "first_name",
    "last_name",
    "dob",
    "sex",
    "ssn",
    "address",
    "zip",
    "block_id",
    "other_id",
)
# Share of a mapped field's given values that standardization may null before the mapping is
# judged wrong (an identifier of another shape, dates in another format).
MAX_NULLED_SHARE = 0.5


def _nearest(name: str, names) -> str:
    import difflib

    close = difflib.get_close_matches(str(name), [str(n) for n in names], n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""


def check_field_mapping(
    table: pd.DataFrame, fields: dict[str, str], side: str, settings: LinkSettings
) -> None:
    """Check one side's ``{linkage field: column}`` mapping against its table and the settings.

    Raises
    ------
    InputError
        Unknown linkage field or comparison/blocking rule, a column the table lacks, no
        ``unique_id``, or ids that are missing or repeated.
    """
    import warnings

    from pipeline_common.errors import InputError

    where = f"link_any {side} table"
    unknown_rules = [c for c in settings.comparisons if c not in COMPARISONS]
    unknown_rules += [
        b for b in settings.blocking_rules + settings.em_blocking_rules if b not in BLOCKING_RULES
    ]
    if unknown_rules:
        allowed = [*COMPARISONS, *BLOCKING_RULES]
        raise InputError(
            "LinkSettings",
            "comparisons/blocking_rules",
            f"unknown name(s) {unknown_rules}{_nearest(unknown_rules[0], allowed)}",
            f"use comparisons {sorted(COMPARISONS)} and blocking rules {sorted(BLOCKING_RULES)}",
        )
    if "unique_id" not in fields:
        raise InputError(
            where, "unique_id", "the field mapping names no id column", "map unique_id to it"
        )
    for target, spec in fields.items():
        if target not in LINKAGE_FIELDS:
            raise InputError(
                where,
                target,
                f"not a linkage field{_nearest(target, LINKAGE_FIELDS)}",
                f"map only {', '.join(LINKAGE_FIELDS)}",
            )
        if not isinstance(spec, str) or not spec:
            raise InputError(where, target, f"column spec {spec!r} is not a column name", "fix it")
        for part in spec.split("+"):
            if part not in table.columns:
                raise InputError(
                    where,
                    target,
                    f"column {part!r} not in the table{_nearest(part, table.columns)}; "
                    f"columns: {', '.join(map(str, table.columns))}",
                    "map the field to an existing column",
                )
    ids = table[fields["unique_id"]]
    if ids.isna().any():
        raise InputError(
            where,
            f"unique_id ({fields['unique_id']})",
            f"{int(ids.isna().sum())} row(s) without an id",
            "give every row an id",
        )
    repeated = ids.astype("string").duplicated(keep=False)
    if repeated.any():
        raise InputError(
            where,
            f"unique_id ({fields['unique_id']})",
            f"{int(repeated.sum())} rows share an id with another row (e.g. "
            f"{ids[repeated].iloc[0]!r})",
            "give every row its own id (links are reported by id)",
        )
    # Standardized columns the settings read, traced back to the field each comes from.
    derived = {"first_name_sx": "first_name", "last_name_sx": "last_name", "birth_year": "dob"}
    read = {c for name in settings.comparisons for c in COMPARISON_COLUMNS.get(name, ())}
    read |= {
        c
        for rule in settings.blocking_rules + settings.em_blocking_rules
        for c in BLOCKING_RULES.get(rule, ("", ()))[1]
    }
    used = {derived.get(c, c) for c in read}
    unused = [f for f in fields if f != "unique_id" and f not in used]
    if unused:
        message = (
            f"{where}: field(s) {unused} are mapped but no comparison or blocking rule of the "
            f"settings reads them (comparisons: {settings.comparisons}); add a comparison that "
            "uses them, or drop them from the mapping"
        )
        log.warning(message)
        warnings.warn(message, UserWarning, stacklevel=3)


def check_standardized(
    mapped: pd.DataFrame, std: pd.DataFrame, fields: dict[str, str], side: str
) -> None:
    """A mapped field whose given values standardization mostly nulls is a wrong mapping.

    Raises
    ------
    InputError
        Naming the field, its column, how many values were lost and an example.
    """
    from pipeline_common.errors import InputError

    hints = {
        "ssn": "9-digit SSNs; map another identifier to other_id (compared as text)",
        "dob": "dates (YYYY-MM-DD or another unambiguous format), not after reference_date",
        "sex": "F/M (female/male, f/m, 1/2)",
        "zip": "postal codes of 3 to 9 digits",
    }
    for target, column in fields.items():
        if target not in hints:
            continue
        given = mapped[target].notna() & (mapped[target].astype("string").str.strip() != "")
        given = given.fillna(False).to_numpy(dtype=bool)
        lost = given & std[target].isna().to_numpy()
        if given.sum() and lost.sum() > MAX_NULLED_SHARE * given.sum():
            example = mapped[target].to_numpy()[lost][0]
            raise InputError(
                f"link_any {side} table",
                f"{target} ({column})",
                f"{int(lost.sum())} of {int(given.sum())} values are not {hints[target]} "
                f"(e.g. {example!r}); the comparison would be dropped",
                f"map {target} to a column of {hints[target]}",
            )


def _map_fields(table: pd.DataFrame, fields: dict[str, str]) -> pd.DataFrame:
    if "unique_id" not in fields:
        raise ValueError("the field mapping must name the unique_id column")
    out = {}
    for target, spec in fields.items():
        parts = spec.split("+")
        text = table[parts[0]].astype("string")
        for part in parts[1:]:
            text = text.str.cat(table[part].astype("string"), sep=" ", na_rep="").str.strip()
        out[target] = text
    return pd.DataFrame(out)
