"""Tabulation: person-level evidence -> cells of block x age group x evidence pattern.

A person's *evidence pattern* holds, per source, one label:

- ``none``: no linked record from that source;
- ``{category}_hi`` / ``{category}_lo``: the linked record's category (``citizen``,
  ``naturalized``, ``noncitizen``, ``lpr``, ``unknown``) split by link confidence
  (``match_probability >= model.high_confidence_threshold`` is high);
- for the categories listed in ``model.stale_split`` (default: the Numident's
  ``noncitizen``), a high-confidence label is further split by record age:
  ``noncitizen_old_hi`` when the record's ``as_of`` year is before ``model.stale_cutoff_year``
  (an old "noncitizen" is weak evidence: the person had decades to naturalize) and
  ``noncitizen_hi`` otherwise.

Missing ages (rule, deterministic): age from ``dob`` at the reference date when ``dob`` is known;
otherwise the person takes the most common age group of the enumerated persons with a known age
in the same household, then in the same block, then ``18-34`` only if the block has no known
age at all (never seen in practice). The public population counts built from the same rule
therefore add up to the frame.

Excluded sources (``model.exclude_sources``, for leave-one-source-out sensitivity runs): their
evidence rows are dropped before tabulation, so their ``src_{source}`` column is ``none`` for
everyone. Every column and shape downstream stays the same; the model then leaves the source out
of the likelihood (``models.pipeline.model_sources``) and the baselines ignore it too.

The pattern dictionary is enumerated, never read off the data: every combination of each
source's label vocabulary (:func:`source_vocabulary`), which follows from the categories a
source can state (:data:`SOURCE_CATEGORIES`, fixed by :mod:`linkage.evidence`) and from the
config alone (low-confidence labels exist only when a source's ``linkage`` match threshold is
below ``model.high_confidence_threshold``; ``_old_hi`` labels only for ``model.stale_split``;
an excluded source has ``none`` only). The dictionary defines the domain of the privacy stage's
noisy tables, so it must not depend on who is in the data: two neighbouring inputs get the same
dictionary, the same pattern ids and the same table domains. With the default config that is
5 x 2^5 x 5 = 800 patterns (Numident 5 labels, ACS 5, the five single-category sources 2
each); with low-confidence labels possible in every source, 8 x 3^5 x 9 = 17,496.

Coarse patterns (for noisy block-level tables) are a function of which *flags* a pattern
raises: ``nat`` (any high-confidence naturalized evidence), ``cit`` (high-confidence citizen),
``non`` (high-confidence noncitizen or LPR, recent or old), ``unk`` (unknown category or a
low-confidence link). See :data:`COARSE_PATTERNS` and :func:`coarse_of_flags`; the model
computes coarse-pattern probabilities exactly from the same flags (inclusion-exclusion).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from pipeline_common.ages import age_group_labels, assign_age_group
from pipeline_common.errors import InputError, require_columns

log = logging.getLogger(__name__)

NONE = "none"
CATEGORIES = ("citizen", "naturalized", "noncitizen", "lpr", "unknown")
FLAGS = ("nat", "cit", "non", "unk")
COARSE_PATTERNS = ("no_record", "naturalized", "citizen", "conflict", "noncitizen", "weak_only")
# What each source's records can state (linkage.evidence.record_categories): a fixed vocabulary,
# the same whatever the data hold.
SOURCE_CATEGORIES: dict[str, tuple[str, ...]] = {
    "ssa_numident": ("citizen", "noncitizen", "unknown"),
    "uscis_naturalizations": ("naturalized",),
    "uscis_lpr": ("lpr",),
    "cbp_ice": ("noncitizen",),
    "state_passports": ("citizen",),
    "irs_itin": ("noncitizen",),
    "acs": ("citizen", "naturalized", "noncitizen", "unknown"),
}


def excluded_sources(model_config: dict, sources: list[str], file: str = "config") -> list[str]:
    """Sources named in ``model.exclude_sources`` (empty when the key is absent).

    Raises
    ------
    InputError
        If a name is not one of ``sources``.
    """
    excluded = [str(s) for s in (model_config.get("exclude_sources") or [])]
    unknown = sorted(set(excluded) - set(sources))
    if unknown:
        raise InputError(
            file,
            "model.exclude_sources",
            f"unknown sources {unknown}",
            f"list only names among {list(sources)}",
        )
    return excluded


def drop_excluded_evidence(
    evidence: pd.DataFrame, model_config: dict, sources: list[str]
) -> pd.DataFrame:
    """``evidence`` without the rows of the sources in ``model.exclude_sources``."""
    excluded = excluded_sources(model_config, sources)
    if not excluded:
        return evidence
    keep = ~evidence["source"].isin(excluded)
    log.info(
        "model.exclude_sources %s: dropped %d of %d evidence rows",
        excluded,
        int((~keep).sum()),
        len(evidence),
    )
    return evidence.loc[keep]


def category_flag(label: str) -> str:
    """Flag raised by one source label (``none`` raises none)."""
    if label == NONE:
        return NONE
    if label.endswith("_lo") or label.startswith("unknown"):
        return "unk"
    if label.startswith("naturalized"):
        return "nat"
    if label.startswith("citizen"):
        return "cit"
    if label.startswith(("noncitizen", "lpr")):
        return "non"
    raise ValueError(f"unknown evidence label {label!r}")


def coarse_of_flags(flags: frozenset[str] | set[str]) -> str:
    """Coarse pattern of a set of raised flags (keeps what matters for citizenship)."""
    if not flags:
        return "no_record"
    if "nat" in flags:
        return "naturalized"
    if "cit" in flags:
        return "conflict" if "non" in flags else "citizen"
    if "non" in flags:
        return "noncitizen"
    return "weak_only"


def source_labels(category: str, confidence_high: bool, stale: bool) -> str:
    """Label of one linked record."""
    if not confidence_high:
        return f"{category}_lo"
    return f"{category}_old_hi" if stale else f"{category}_hi"


def label_order(label: str) -> tuple[int, int]:
    """Stable order of labels: ``none`` first, then categories, high before low confidence."""
    if label == NONE:
        return (-1, 0)
    base = label.rsplit("_", 1)[0]
    stale = base.endswith("_old")
    base = base.removesuffix("_old")
    rank = CATEGORIES.index(base) if base in CATEGORIES else len(CATEGORIES)
    return (rank, {"hi": 0, "lo": 2}[label.rsplit("_", 1)[1]] + int(stale))


def low_confidence_possible(source: str, linkage_config: dict | None, high: float) -> bool:
    """Can a link of ``source`` have a match probability below ``high``?

    Only if its match threshold (``linkage.sources.{source}.match_threshold``, else
    ``linkage.match_threshold``) is below ``high``: links are made at or above the threshold.
    Without a linkage config, assume it can.
    """
    if linkage_config is None:
        return True
    override = ((linkage_config.get("sources") or {}).get(source) or {}).get("match_threshold")
    threshold = override if override is not None else linkage_config.get("match_threshold")
    return threshold is None or float(threshold) < high


def source_vocabulary(
    source: str, model_config: dict, linkage_config: dict | None = None
) -> list[str]:
    """Every label ``source`` can show in a pattern, in :func:`label_order`; from the config.

    Raises
    ------
    InputError
        If ``source`` has no declared category vocabulary.
    """
    if source not in SOURCE_CATEGORIES:
        raise InputError(
            "config",
            "model sources",
            f"no label vocabulary for source {source!r}",
            f"declare its categories in models.tabulate.SOURCE_CATEGORIES ({list(SOURCE_CATEGORIES)})",
        )
    if source in (model_config.get("exclude_sources") or []):
        return [NONE]
    high = float(model_config["high_confidence_threshold"])
    stale = set((model_config.get("stale_split") or {}).get(source, []))
    low = low_confidence_possible(source, linkage_config, high)
    labels = [NONE]
    for category in SOURCE_CATEGORIES[source]:
        labels.append(source_labels(category, True, False))
        if category in stale:
            labels.append(source_labels(category, True, True))
        if low:
            labels.append(source_labels(category, False, False))
    return sorted(labels, key=label_order)


def enumerate_patterns(
    sources: list[str], model_config: dict, linkage_config: dict | None = None
) -> pd.DataFrame:
    """The pattern dictionary: every combination of the sources' vocabularies.

    Returns
    -------
    pandas.DataFrame
        ``pattern_id, coarse_pattern_id, coarse_pattern, flags, src_{source}...``, the all-none
        pattern first, in :func:`label_order` of each source in turn. It depends on the config
        only, never on the data.
    """
    vocabularies = [source_vocabulary(s, model_config, linkage_config) for s in sources]
    sizes = [len(v) for v in vocabularies]
    # Cartesian product in lexicographic order of each vocabulary (itertools.product order).
    codes = np.indices(sizes).reshape(len(sizes), -1).T
    table = pd.DataFrame(
        {
            f"src_{source}": np.asarray(vocab, dtype=object)[codes[:, i]]
            for i, (source, vocab) in enumerate(zip(sources, vocabularies, strict=True))
        }
    )
    flag_of = [{label: category_flag(label) for label in vocab} for vocab in vocabularies]
    flags = [
        frozenset(flag_of[i][label] for i, label in enumerate(row)) - {NONE}
        for row in table.to_numpy()
    ]
    coarse = [coarse_of_flags(f) for f in flags]
    table.insert(0, "pattern_id", np.arange(len(table), dtype=np.int64))
    table.insert(1, "coarse_pattern_id", np.array([COARSE_PATTERNS.index(c) for c in coarse]))
    table.insert(2, "coarse_pattern", coarse)
    table.insert(3, "flags", [",".join(sorted(f)) for f in flags])
    table["coarse_pattern_id"] = table["coarse_pattern_id"].astype(np.int64)
    return table


def impute_age_groups(frame: pd.DataFrame, bounds: list[int], reference_date: str) -> pd.Series:
    """Age group of every frame person, with the documented rule for missing ages."""
    age = pd.to_numeric(frame["age"], errors="coerce").astype("float64")
    if "dob" in frame.columns:
        dob = pd.to_datetime(frame["dob"], errors="coerce")
        ref = pd.Timestamp(reference_date)
        from_dob = (
            ref.year
            - dob.dt.year
            - ((dob.dt.month > ref.month) | ((dob.dt.month == ref.month) & (dob.dt.day > ref.day)))
        ).astype("float64")
        age = age.fillna(from_dob.where(from_dob >= 0))
    groups = pd.Series(assign_age_group(age.to_numpy(), bounds), index=frame.index).astype("object")
    labels = age_group_labels(bounds)
    missing = groups.isna()
    if missing.any():
        known = pd.DataFrame({"g": groups, "block_id": frame["block_id"]})
        if "household_id" in frame.columns:
            known["household_id"] = frame["household_id"]
        order = {lab: i for i, lab in enumerate(labels)}

        def modal(keys: str) -> pd.Series:
            counts = known.dropna(subset=["g"]).groupby([keys, "g"]).size().reset_index(name="n")
            counts["rank"] = counts["g"].map(order)
            # Most common group; ties go to the younger group (deterministic).
            counts = counts.sort_values([keys, "n", "rank"], ascending=[True, False, True])
            return counts.drop_duplicates(keys).set_index(keys)["g"]

        for keys in ("household_id", "block_id"):
            if keys in known.columns:
                fill = known.loc[groups.isna(), keys].map(modal(keys))
                groups = groups.fillna(fill)
        groups = groups.fillna(labels[1])
        log.info("imputed the age group of %d persons with missing age", int(missing.sum()))
    return pd.Series(pd.Categorical(groups, categories=labels, ordered=True), index=frame.index)


def person_patterns(
    evidence: pd.DataFrame,
    person_ids: pd.Series,
    sources: list[str],
    high_confidence_threshold: float,
    stale_split: dict[str, list[str]],
    stale_cutoff_year: int,
    file: str = "linkage/evidence.parquet",
) -> pd.DataFrame:
    """Per person (rows aligned with ``person_ids``), one label column ``src_{source}``."""
    require_columns(
        evidence, ["person_id", "source", "category", "as_of", "match_probability"], file
    )
    bad = ~evidence["category"].isin(CATEGORIES)
    if bad.any():
        raise InputError(
            file,
            "category",
            f"unexpected categories {sorted(evidence.loc[bad, 'category'].astype(str).unique())}",
            f"use one of {list(CATEGORIES)}",
        )
    unknown_sources = sorted(set(evidence["source"]) - set(sources))
    if unknown_sources:
        raise InputError(file, "source", f"unknown sources {unknown_sources}", f"use {sources}")
    ev = evidence.loc[evidence["person_id"].isin(person_ids)].copy()
    # One row per person x source is the contract; keep the most confident link if not.
    ev = ev.sort_values(["person_id", "source", "match_probability"], ascending=[True, True, False])
    ev = ev.drop_duplicates(["person_id", "source"])
    year = pd.to_datetime(ev["as_of"], errors="coerce").dt.year
    stale = np.zeros(len(ev), dtype=bool)
    for source, cats in stale_split.items():
        stale |= (
            (ev["source"] == source).to_numpy()
            & ev["category"].isin(cats).to_numpy()
            & (year < stale_cutoff_year).fillna(False).to_numpy()
        )
    high = ev["match_probability"].to_numpy(dtype=float) >= high_confidence_threshold
    labels = [
        source_labels(c, h, s)
        for c, h, s in zip(ev["category"].astype(str), high, stale, strict=True)
    ]
    ev["label"] = labels
    wide = ev.pivot(index="person_id", columns="source", values="label")
    out = pd.DataFrame(index=pd.Index(person_ids, name="person_id"))
    for source in sources:
        col = wide[source] if source in wide.columns else pd.Series(dtype=object)
        out[f"src_{source}"] = col.reindex(out.index).fillna(NONE).to_numpy()
    return out.reset_index(drop=True)


def tabulate(
    evidence: pd.DataFrame,
    frame: pd.DataFrame,
    geography: pd.DataFrame,
    sources: list[str],
    model_config: dict,
    age_bounds: list[int],
    reference_date: str,
    linkage_config: dict | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cells and the pattern dictionary.

    ``linkage_config`` (the config's ``linkage`` section) tells which labels links can carry
    (:func:`source_vocabulary`); without it every label of every vocabulary is possible.

    Returns
    -------
    cells
        ``block_id, tract_id, county_id, age_group, pattern_id, count, src_{source}...``
        (only non-empty cells), sorted by block, age group, pattern.
    patterns
        ``pattern_id, coarse_pattern_id, coarse_pattern, flags, src_{source}...``: every
        pattern of :func:`enumerate_patterns`, with or without persons.
    """
    require_columns(frame, ["person_id", "block_id", "age"], "world/frame.parquet")
    require_columns(geography, ["block_id", "tract_id", "county_id"], "world/geography.parquet")
    missing_blocks = set(frame["block_id"]) - set(geography["block_id"])
    if missing_blocks:
        raise InputError(
            "world/geography.parquet",
            "block_id",
            f"{len(missing_blocks)} frame blocks are absent (e.g. {sorted(missing_blocks)[:3]})",
            "regenerate the synthetic world so geography covers every frame block",
        )
    frame = frame.reset_index(drop=True)
    age_group = impute_age_groups(frame, age_bounds, reference_date)
    # Excluded sources keep their src_ column (all "none"): shapes downstream stay stable.
    evidence = drop_excluded_evidence(evidence, model_config, sources)
    pats = person_patterns(
        evidence,
        frame["person_id"],
        sources,
        float(model_config["high_confidence_threshold"]),
        dict(model_config["stale_split"]),
        int(model_config["stale_cutoff_year"]),
    )
    src_cols = [f"src_{s}" for s in sources]
    pats["block_id"] = frame["block_id"].to_numpy()
    pats["age_group"] = age_group.to_numpy()
    # Pattern dictionary: enumerated from the vocabularies (data-independent, see above).
    uniq = enumerate_patterns(sources, model_config, linkage_config)
    unknown = pats[src_cols].merge(uniq[src_cols], on=src_cols, how="left", indicator=True)
    outside = (unknown["_merge"] == "left_only").to_numpy()
    if outside.any():
        row = pats.loc[outside, src_cols].iloc[0]
        vocab = {c: list(uniq[c].unique()) for c in src_cols}
        column = next(c for c in src_cols if row[c] not in vocab[c])
        raise InputError(
            "linkage/evidence.parquet",
            column,
            f"{int(outside.sum())} person(s) show label {row[column]!r}, outside the "
            f"vocabulary the config allows ({vocab[column]})",
            "rerun linkage with this config (a link below the match threshold, or a category "
            "the source cannot state, means evidence and config disagree)",
        )
    with_id = pats.merge(uniq[["pattern_id", *src_cols]], on=src_cols, how="left")
    cells = (
        with_id.groupby(["block_id", "age_group", "pattern_id"], observed=True)
        .size()
        .rename("count")
        .reset_index()
    )
    cells = cells.loc[cells["count"] > 0]
    geo = geography[["block_id", "tract_id", "county_id"]].drop_duplicates("block_id")
    cells = cells.merge(geo, on="block_id", how="left")
    cells = cells.merge(uniq[["pattern_id", *src_cols]], on="pattern_id", how="left")
    cells["age_group"] = cells["age_group"].astype(str)
    cells["count"] = cells["count"].astype(np.int64)
    cells = cells[
        ["block_id", "tract_id", "county_id", "age_group", "pattern_id", "count", *src_cols]
    ]
    cells = cells.sort_values(["block_id", "age_group", "pattern_id"]).reset_index(drop=True)
    log.info("tabulated %d persons into %d cells, %d patterns", len(frame), len(cells), len(uniq))
    return cells, uniq


def public_counts_from_cells(cells: pd.DataFrame) -> pd.DataFrame:
    """Block x age-group population (what the privacy stage publishes as invariants)."""
    return (
        cells.groupby(["block_id", "tract_id", "county_id", "age_group"], observed=True)["count"]
        .sum()
        .rename("population")
        .reset_index()
    )


def exact_measurements_from_cells(cells: pd.DataFrame) -> pd.DataFrame:
    """The ``privacy.mode: none`` measurement table (exact block x age x full pattern)."""
    return pd.DataFrame(
        {
            "table": "block_full",
            "geo_level": "block",
            "geo_id": cells["block_id"].to_numpy(),
            "age_group": cells["age_group"].to_numpy(),
            "pattern_level": "full",
            "pattern_id": cells["pattern_id"].to_numpy(np.int64),
            "value": cells["count"].to_numpy(np.int64),
            "sigma": 0.0,
        }
    )


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - manual entry point
    """``python -m models.tabulate [--configfile scenario.yaml ...]``: the cells and patterns of
    ``results/{run}``."""
    from pipeline_common.cli import config_of, stage_parser
    from pipeline_common.config import run_dir
    from pipeline_common.io import write_parquet
    from pipeline_common.logs import setup_logging

    parser = stage_parser("models.tabulate", __doc__.splitlines()[0])
    args = parser.parse_args(argv)
    setup_logging()
    cfg = config_of(args)
    root = run_dir(cfg)
    from models.pipeline import SOURCES

    cells_, patterns_ = tabulate(
        pd.read_parquet(root / "linkage/evidence.parquet"),
        pd.read_parquet(root / "world/frame.parquet"),
        pd.read_parquet(root / "world/geography.parquet"),
        SOURCES,
        cfg["model"],
        cfg["age_groups"],
        cfg["reference_date"],
        cfg["linkage"],
    )
    write_parquet(cells_, root / "model/cells.parquet")
    write_parquet(patterns_, root / "model/patterns.parquet")


if __name__ == "__main__":  # pragma: no cover
    from pipeline_common.errors import run_main

    run_main(main, "models.tabulate")
