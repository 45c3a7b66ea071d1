"""The citizenship model of this pipeline: measurements -> latent-class problem -> block draws.

Reads only what the privacy stage publishes to the model (``privacy/measurements.parquet``,
``privacy/public_counts.parquet``) and the pattern dictionary (``model/patterns.parquet``).

Classes: ``native_citizen`` (reference), ``naturalized``, ``lpr`` (lawful permanent residents)
and ``other_noncitizen`` (temporary lawful and unauthorized). Citizens = native + naturalized.
Noncitizens are two classes because sources are far from independent among them: an LPR has a
Numident record and an LPR grant together, a visitor or unauthorized resident usually neither.
With one noncitizen class the model read "Numident noncitizen, nothing else" and "no record at
all" wrongly (measured on the default scenario, exact cells: 4 classes vs 3, see docs/RESULTS.md).
With ``model.withheld_classes``, two more: ``naturalized_withheld`` and
``noncitizen_withheld``, persons the data-use policy hides from every DHS source (see
:data:`WITHHELD_CLASSES`); citizens then include ``naturalized_withheld``.

Priors that identify the classes (Dirichlet pseudo-counts per source, class and label; levels
``high``/``mid``/``low`` from config ``model.prior``):

- ``citizen`` evidence (Numident, passport, ACS "born citizen"): high for native-born, mid for
  naturalized (Numident updates, passports after naturalization), low for noncitizens
  (a passport never belongs to a noncitizen; only false links or misreports give one);
- ``naturalized`` evidence (USCIS naturalizations, ACS): high for the naturalized class only,
  low otherwise — this is what names the naturalized class;
- recent ``noncitizen`` evidence (Numident after the stale cutoff, CBP/ICE, ITIN, ACS): high for
  noncitizens, mid for naturalized (records go stale), low for native-born;
- stale Numident ``noncitizen`` (before the cutoff year): high for naturalized (people who
  got an SSN as noncitizens decades ago have often naturalized), mid for noncitizens, low for
  native-born;
- ``lpr`` (USCIS LPR grants): high for LPRs (this names the LPR class), mid for naturalized
  (every naturalized person was an LPR first), low for native-born and other noncitizens;
- ``unknown``, low-confidence links and ``none`` (no link): mid everywhere (no direction).

The numbers are pseudo-counts, so on ~150k persons the data dominate; they only break the
label symmetry and keep sparse tiny-scenario cells sensible.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from models.count_step import (
    BLOCK_POOLING,
    COUNT_BURN_IN,
    COUNT_SWEEPS,
    block_level_concentration,
    calibrate_to_margins,
    coarse_margins,
    coarse_split_shift,
    exchange_given_totals,
    full_table_membership,
    full_table_view,
    table_concentration,
)
from models.discrepancy import (
    bucket_citizen_share,
    draw_problem_tilts,
    problem_discrepancy,
    tilt_membership,
)
from models.latent_class import (
    AggregateTable,
    LatentClassProblem,
    class_probs_np,
    coarse_probs_np,
    coarse_weight_matrix,
    dirichlet_multinomial_rows,
    multinomial_rows,
    pattern_lik_np,
    stack_draws,
    theta_by_age_np,
)
from models.tabulate import (
    COARSE_PATTERNS,
    FLAGS,
    NONE,
    category_flag,
    coarse_of_flags,
    excluded_sources,
)
from pipeline_common.ages import adult_age_groups
from pipeline_common.errors import InputError, require_columns
from pipeline_common.sources import SOURCES as ALL_SOURCES

log = logging.getLogger(__name__)

SOURCES = list(ALL_SOURCES)
CLASSES = ["native_citizen", "naturalized", "lpr", "other_noncitizen"]
CITIZEN_CLASS_NAMES = ("native_citizen", "naturalized", "naturalized_withheld")

# Optional subclasses (``model.withheld_classes``) for persons whose DHS records are withheld by
# the data-use policy (refugees/asylees and 1367-protected persons: every record of theirs in
# these sources, so they show ``none`` in all of them at once). Each shares every other source's
# behaviour with its parent class. Why: sources are independent given the class only if the
# class explains the withholding. Measured on the default scenario: 2,422 of 23,795 naturalized
# citizens (10%) and 1,482 of 13,352 LPRs are withheld; 2,573 naturalized citizens had neither
# USCIS record against 467 expected if the two files' gaps were independent; among persons whose
# only record is an old Numident "noncitizen" entry, 50% of 35-64 year olds were citizens and
# the four-class model placed 20% in a citizen class.
WITHHELD_CLASSES = {"naturalized_withheld": "naturalized", "noncitizen_withheld": "lpr"}
WITHHOLDING_SOURCES = ("uscis_naturalizations", "uscis_lpr", "cbp_ice")


def model_classes(model_config: dict, noisy: bool = False) -> list[str]:
    """The model's latent classes: :data:`CLASSES`, plus :data:`WITHHELD_CLASSES` if asked.

    A fit to noisy measurements asks ``model.noisy_withheld_classes`` (``None``: the same as
    ``model.withheld_classes``). The noisy tables show the withheld persons only through one
    county table of full patterns; at rho 1 on the default scenario the refit with them had
    county citizen errors up to 0.98% (CVAP 1.39%) against 0.41% (0.56%) without them.
    """
    withheld = model_config.get("withheld_classes")
    if noisy and model_config.get("noisy_withheld_classes") is not None:
        withheld = model_config["noisy_withheld_classes"]
    return CLASSES + (list(WITHHELD_CLASSES) if withheld else [])


def citizen_class_indices(class_names: list[str]) -> list[int]:
    """Indices of the classes that are citizens."""
    return [k for k, name in enumerate(class_names) if name in CITIZEN_CLASS_NAMES]


# Plausibility of a label's base category for each class (see the module docstring).
_PLAUSIBILITY = {
    "citizen": ("high", "mid", "low", "low"),
    "naturalized": ("low", "high", "low", "low"),
    "noncitizen": ("low", "mid", "high", "high"),
    "noncitizen_old": ("low", "high", "mid", "mid"),
    "lpr": ("low", "mid", "high", "low"),
    "unknown": ("mid", "mid", "mid", "mid"),
}


# Categories impossible for a class by definition (law, not data): their probability is fixed
# at a small false-link allowance instead of learned. Without these the latent classes drift
# from their meaning — measured on the default scenario (exact cells): with learned
# probabilities the model gave persons holding a passport and a noncitizen Numident record a 26%
# (3 classes) or 38% (4 classes) chance of being citizens; all 460 of them were.
STRUCTURAL_ZEROS = {
    # A naturalization certificate belongs to a naturalized citizen.
    ("uscis_naturalizations", "naturalized_hi"): ("native_citizen", "lpr", "other_noncitizen"),
    # Passports are issued to citizens only.
    ("state_passports", "citizen_hi"): ("lpr", "other_noncitizen"),
    # An LPR grant is never made to a native-born citizen, and makes a person an LPR (or, after
    # naturalization, a naturalized citizen): never a temporary or unauthorized resident.
    ("uscis_lpr", "lpr_hi"): ("native_citizen", "other_noncitizen"),
    # A native-born citizen never applied for an SSN as a noncitizen, is never a CBP/ICE
    # noncitizen record (visa, admission, encounter) and never gets an ITIN (issued only to
    # persons who cannot have an SSN). Learned freely, the privacy refit put 1.5% of the
    # native-born in Numident-"noncitizen" patterns (exact fit 0.05%, truth 0) and 294 of
    # 2,015 children with noncitizen evidence in the native class (truth 1) on the default
    # run at rho 1 (diagnosis of 2026-12-03).
    ("ssa_numident", "noncitizen_hi"): ("native_citizen",),
    ("ssa_numident", "noncitizen_old_hi"): ("native_citizen",),
    ("cbp_ice", "noncitizen_hi"): ("native_citizen",),
    ("irs_itin", "noncitizen_hi"): ("native_citizen",),
}
STRUCTURAL_ZERO_PROBABILITY = 1e-4  # linkage precision >= 0.9998 measured on high-confidence links


def structural_zero_masks(
    sources: list[str], categories: list[list[str]], classes: list[str] = CLASSES
) -> list[np.ndarray]:
    """Per source, (classes x categories) True where :data:`STRUCTURAL_ZEROS` forbids; a
    withheld class can show nothing but ``none`` in a :data:`WITHHOLDING_SOURCES` source and
    has its parent class's zeros elsewhere."""
    masks = []
    for source, cats in zip(sources, categories, strict=True):
        mask = np.zeros((len(classes), len(cats)), dtype=bool)
        for (src, label), forbidden in STRUCTURAL_ZEROS.items():
            if src == source and label in cats:
                for cls in forbidden:
                    mask[classes.index(cls), cats.index(label)] = True
        for cls, parent in WITHHELD_CLASSES.items():
            if cls in classes:
                k = classes.index(cls)
                if source in WITHHOLDING_SOURCES:
                    mask[k] = [c != NONE for c in cats]
                else:
                    mask[k] = mask[classes.index(parent)]
        masks.append(mask)
    return masks


def withheld_logit_base(classes: list[str]) -> list[int] | None:
    """Per non-reference class, the non-reference class its prior logit is an offset from: a
    withheld class's from its parent's (its share follows the parent's across tracts)."""
    if not any(cls in classes for cls in WITHHELD_CLASSES):
        return None
    return [
        classes.index(WITHHELD_CLASSES[cls]) - 1 if cls in WITHHELD_CLASSES else -1
        for cls in classes[1:]
    ]


def withheld_class_ties(sources: list[str], classes: list[str]) -> list[np.ndarray] | None:
    """Per source, the class each class shares its probabilities with (``None``: no ties): a
    withheld class shares its parent's outside :data:`WITHHOLDING_SOURCES`."""
    if not any(cls in classes for cls in WITHHELD_CLASSES):
        return None
    ties = []
    for source in sources:
        tie = np.arange(len(classes))
        if source not in WITHHOLDING_SOURCES:
            for cls, parent in WITHHELD_CLASSES.items():
                if cls in classes:
                    tie[classes.index(cls)] = classes.index(parent)
        ties.append(tie)
    return ties


def model_sources(model_config: dict) -> list[str]:
    """Sources in the model's likelihood: :data:`SOURCES` minus ``model.exclude_sources``.

    An excluded source's pattern column is ``none`` for everyone (tabulation dropped its
    evidence), so leaving it out of the likelihood changes nothing but the parameter count.
    """
    excluded = set(excluded_sources(model_config, SOURCES))
    return [s for s in SOURCES if s not in excluded]


def label_prior(label: str, levels: dict[str, float]) -> np.ndarray:
    """Dirichlet pseudo-counts of one source label for each class."""
    if label == NONE or label.endswith("_lo"):
        return np.full(len(CLASSES), levels["mid"])
    base = label.removesuffix("_hi")
    base = base if base in _PLAUSIBILITY else base.split("_")[0]
    plaus = _PLAUSIBILITY.get(base, ("mid", "mid", "mid"))
    return np.array([levels[p] for p in plaus])


def _age_bounds_labels(public: pd.DataFrame, age_labels: list[str]) -> list[str]:
    extra = sorted(set(public["age_group"].astype(str)) - set(age_labels))
    if extra:
        raise InputError(
            "privacy/public_counts.parquet",
            "age_group",
            f"age groups {extra} are not in config age_groups {age_labels}",
            "run the privacy stage with the same age_groups",
        )
    return age_labels


def build_problem(
    measurements: pd.DataFrame,
    public_counts: pd.DataFrame,
    patterns: pd.DataFrame,
    model_config: dict,
    age_labels: list[str],
) -> tuple[LatentClassProblem, dict]:
    """The latent-class problem of this pipeline plus the lookup tables prediction needs."""
    require_columns(
        measurements,
        [
            "table",
            "geo_level",
            "geo_id",
            "age_group",
            "pattern_level",
            "pattern_id",
            "value",
            "sigma",
        ],
        "privacy/measurements.parquet",
    )
    require_columns(
        public_counts,
        ["block_id", "tract_id", "county_id", "age_group", "population"],
        "privacy/public_counts.parquet",
    )
    sources = model_sources(model_config)
    src_cols = [f"src_{s}" for s in sources]
    require_columns(
        patterns, ["pattern_id", "coarse_pattern_id", *src_cols], "model/patterns.parquet"
    )
    for source in sorted(set(SOURCES) - set(sources)):
        col = f"src_{source}"
        if col in patterns and (patterns[col].astype(str) != NONE).any():
            raise InputError(
                "model/patterns.parquet",
                col,
                "holds evidence although model.exclude_sources excludes the source",
                "rerun tabulation with the current config (snakemake -R tabulate)",
            )
    age_labels = _age_bounds_labels(public_counts, age_labels)
    levels_cfg = model_config["prior"]

    # Groups: block x age group, from the public counts (population > 0).
    public = public_counts.copy()
    public["age_group"] = public["age_group"].astype(str)
    public = public.loc[public["population"] > 0]
    public = public.sort_values(["county_id", "tract_id", "block_id", "age_group"]).reset_index(
        drop=True
    )
    groups = public[["block_id", "tract_id", "county_id", "age_group", "population"]]
    group_key = pd.MultiIndex.from_frame(groups[["block_id", "age_group"]])
    group_age = groups["age_group"].map({a: i for i, a in enumerate(age_labels)}).to_numpy()
    levels = []
    for level, col in (("county", "county_id"), ("tract", "tract_id"), ("block", "block_id")):
        if level in model_config["levels"]:
            labels, idx = np.unique(groups[col].to_numpy(), return_inverse=True)
            levels.append((level, idx.astype(np.int64), list(labels)))

    # Per-source categories (none first) and pattern codes.
    pats = patterns.sort_values("pattern_id").reset_index(drop=True)
    categories = []
    codes = np.zeros((len(pats), len(sources)), dtype=np.int64)
    from models.tabulate import label_order

    for s, col in enumerate(src_cols):
        cats = sorted(set(pats[col].astype(str)) | {NONE}, key=label_order)
        categories.append(cats)
        codes[:, s] = pats[col].astype(str).map({c: i for i, c in enumerate(cats)}).to_numpy()
    alpha = [np.stack([label_prior(c, levels_cfg) for c in cats], axis=1) for cats in categories]
    classes = model_classes(model_config, noisy=bool((measurements["sigma"] > 0).any()))
    parent_rows = [CLASSES.index(WITHHELD_CLASSES[c]) for c in classes[len(CLASSES) :]]
    alpha = [np.vstack([a, a[parent_rows]]) for a in alpha]  # withheld: the parent's prior
    pattern_index = pd.Series(np.arange(len(pats)), index=pats["pattern_id"].to_numpy())

    # Coarse algebra: flag index per category (0 = none), weights over flag subsets.
    category_flags = [
        np.array(
            [0 if category_flag(c) == NONE else 1 + FLAGS.index(category_flag(c)) for c in cats]
        )
        for cats in categories
    ]

    def coarse_of_mask(mask: int) -> str:
        return coarse_of_flags({f for i, f in enumerate(FLAGS) if (mask >> i) & 1})

    weights, labels = coarse_weight_matrix(len(FLAGS), coarse_of_mask)
    order = [labels.index(c) for c in COARSE_PATTERNS]
    coarse_weights = weights[order]

    m = measurements.copy()
    m["age_group"] = m["age_group"].astype(str)
    exact_block_full = (
        (m["geo_level"] == "block") & (m["pattern_level"] == "full") & (m["sigma"] <= 0)
    )
    cells = m.loc[exact_block_full & (m["value"] > 0)]
    gidx = group_key.get_indexer(pd.MultiIndex.from_frame(cells[["geo_id", "age_group"]]))
    if (gidx < 0).any():
        bad = cells.loc[gidx < 0].iloc[0]
        raise InputError(
            "privacy/measurements.parquet",
            "geo_id, age_group",
            f"block {bad['geo_id']} age {bad['age_group']} has counts but no public population",
            "rebuild privacy/public_counts.parquet from the same frame",
        )
    pidx = pattern_index.reindex(cells["pattern_id"].to_numpy()).to_numpy()
    if np.isnan(pidx).any():
        raise InputError(
            "privacy/measurements.parquet",
            "pattern_id",
            "pattern ids absent from model/patterns.parquet",
            "rebuild measurements from the current model/patterns.parquet",
        )

    aggregates = []
    for name, table in m.loc[~exact_block_full].groupby("table", sort=True):
        geo_level = table["geo_level"].iloc[0]
        level = table["pattern_level"].iloc[0]
        if table["geo_level"].nunique() != 1 or table["pattern_level"].nunique() != 1:
            raise InputError(
                "privacy/measurements.parquet",
                "table",
                f"table {name} mixes geo or pattern levels",
                "give each table one geo_level and one pattern_level",
            )
        geo_col = {"block": "block_id", "county": "county_id"}.get(geo_level)
        if geo_col is None:
            raise InputError(
                "privacy/measurements.parquet",
                "geo_level",
                f"unknown {geo_level!r}",
                "use block or county",
            )
        unit_of_group = pd.MultiIndex.from_frame(groups[[geo_col, "age_group"]])
        units = unit_of_group.unique()
        group_unit = units.get_indexer(unit_of_group)
        row_unit = units.get_indexer(pd.MultiIndex.from_frame(table[["geo_id", "age_group"]]))
        keep = row_unit >= 0  # a unit with no public population measures nothing
        if level == "full":
            row_pattern = pattern_index.reindex(table["pattern_id"].to_numpy()).to_numpy()
        else:
            row_pattern = table["pattern_id"].to_numpy().astype(float)
            row_pattern[(row_pattern < 0) | (row_pattern >= len(COARSE_PATTERNS))] = np.nan
        keep &= ~np.isnan(row_pattern)
        dispersion = None
        if geo_level == "block" and level == "coarse":
            dispersion = between_block_dispersion(
                value=table["value"].to_numpy()[keep].astype(float),
                sigma=table["sigma"].to_numpy()[keep].astype(float),
                row_unit=row_unit[keep],
                row_pattern=row_pattern[keep].astype(np.int64),
                group_unit=group_unit,
                groups=groups,
                n_patterns=len(COARSE_PATTERNS),
            )
            log.info(
                "table %s: between-block dispersion by coarse pattern %s",
                name,
                dict(zip(COARSE_PATTERNS, np.round(dispersion, 2).tolist(), strict=True)),
            )
        aggregates.append(
            AggregateTable(
                name=str(name),
                group_unit=group_unit.astype(np.int64),
                unit_labels=list(units),
                row_unit=row_unit[keep].astype(np.int64),
                row_pattern=row_pattern[keep].astype(np.int64),
                pattern_level=level,
                value=table["value"].to_numpy()[keep].astype(np.int64),
                sigma=table["sigma"].to_numpy()[keep].astype(float),
                geo_level=str(geo_level),
                dispersion=dispersion,
            )
        )

    problem = LatentClassProblem(
        source_names=list(sources),
        categories=categories,
        class_names=classes,
        pattern_codes=codes,
        alpha=alpha,
        n_groups=len(groups),
        cell_group=gidx.astype(np.int64),
        cell_pattern=pidx.astype(np.int64),
        cell_count=cells["value"].to_numpy().astype(np.int64),
        group_age=group_age.astype(np.int64),
        age_labels=list(age_labels),
        levels=levels,
        group_population=groups["population"].to_numpy().astype(np.int64),
        aggregates=aggregates,
        category_flags=category_flags,
        coarse_weights=coarse_weights,
        coarse_labels=list(COARSE_PATTERNS),
        prior_scales=dict(model_config.get("prior_scales", {})),
        centered_levels=fit_centered_levels(model_config, m, groups),
        structural_zeros=structural_zero_masks(list(sources), categories, classes),
        source_class_tie=withheld_class_ties(list(sources), classes),
        class_logit_base=withheld_logit_base(classes),
        structural_zero_prob=STRUCTURAL_ZERO_PROBABILITY,
        source_age_effects=bool(model_config.get("source_age_effects", False)),
        pattern_split_dispersion=_exact_split_dispersion(
            gidx, pidx.astype(np.int64), cells["value"].to_numpy(dtype=float), pats, groups
        ),
    )
    problem.validate()
    lookup = {"groups": groups, "adult": set(adult_age_groups_from_labels(age_labels))}
    log.info(
        "problem: %d groups, %d exact cells, %d aggregate tables (%s), %d patterns",
        problem.n_groups,
        len(problem.cell_count),
        len(aggregates),
        ", ".join(f"{a.name}:{len(a.value)}" for a in aggregates),
        problem.n_patterns,
    )
    return problem, lookup


def fit_centered_levels(model_config: dict, measurements: pd.DataFrame, groups: pd.DataFrame):
    """The levels whose effects this fit centres (``model.centered_levels`` when exact).

    With noisy measurements, ``model.noisy_centered_levels``; its default ``auto`` keeps a
    level of ``centered_levels`` centred when its median unit holds at least
    ``model.noisy_centering_threshold`` persons per unit of noise variance summed over the
    unit's block-level measurements. Centred effects mix well when each unit's data pin its
    logits down, non-centred ones when the prior dominates; the noise decides which (default
    scenario, tracts: 0.34 persons per unit of noise variance at rho 0.25, where centred tracts
    gave R-hat 1.027 and bulk ESS 82; 1.35 at rho 1 and 5.6 at rho 4, where they converged).
    """
    centered = tuple(model_config.get("centered_levels", ()))
    if (measurements["sigma"] <= 0).all():
        return centered
    noisy = model_config.get("noisy_centered_levels", "auto")
    if noisy != "auto":
        return tuple(noisy)
    threshold = float(model_config.get("noisy_centering_threshold", 0.7))
    block = measurements.loc[(measurements["geo_level"] == "block") & (measurements["sigma"] > 0)]
    # drop=False: a block is its own unit when blocks are the level.
    blocks = groups.drop_duplicates("block_id").set_index("block_id", drop=False)
    keep = []
    for level in centered:
        unit_of_block = blocks[f"{level}_id"]
        noise_variance = (block["sigma"] ** 2).groupby(block["geo_id"].map(unit_of_block)).sum()
        population = groups.groupby(f"{level}_id")["population"].sum()
        per_variance = population / noise_variance.reindex(population.index)
        median = float(np.median(per_variance.fillna(np.inf)))
        log.info(
            "%s: median %.2f persons per unit of block noise variance (centred at >= %.2f)",
            level,
            median,
            threshold,
        )
        if median >= threshold:
            keep.append(level)
    return tuple(keep)


def _exact_split_dispersion(
    cell_group: np.ndarray,
    cell_pattern: np.ndarray,
    cell_count: np.ndarray,
    patterns: pd.DataFrame,
    groups: pd.DataFrame,
) -> np.ndarray | None:
    """Per full pattern, the between-block dispersion of its coarse pattern's exact counts.

    Exact cells carry no noise, so :func:`between_block_dispersion` on the block x age x coarse
    counts (sigma 0) measures how much persons cluster in blocks beyond independence; the
    class split within a cell is assumed to cluster as much (households share status).
    """
    if not len(cell_count):
        return None
    n_coarse = len(COARSE_PATTERNS)
    coarse_of_pattern = patterns["coarse_pattern_id"].to_numpy().astype(np.int64)
    key = cell_group * n_coarse + coarse_of_pattern[cell_pattern]
    counts = np.bincount(key, weights=cell_count, minlength=len(groups) * n_coarse)
    rows = np.arange(len(counts))
    dispersion = between_block_dispersion(
        value=counts,
        sigma=np.zeros(len(counts)),
        row_unit=rows // n_coarse,
        row_pattern=rows % n_coarse,
        group_unit=np.arange(len(groups)),
        groups=groups,
        n_patterns=n_coarse,
    )
    log.info(
        "exact cells: between-block dispersion by coarse pattern %s",
        dict(zip(COARSE_PATTERNS, np.round(dispersion, 2).tolist(), strict=True)),
    )
    return dispersion[coarse_of_pattern]


def between_block_dispersion(
    value: np.ndarray,
    sigma: np.ndarray,
    row_unit: np.ndarray,
    row_pattern: np.ndarray,
    group_unit: np.ndarray,
    groups: pd.DataFrame,
    n_patterns: int,
) -> np.ndarray:
    """Per coarse pattern, the variance of noisy block counts over the binomial's (at least 1).

    The model has no block effects, so it implies ``Binomial(N, p)`` counts around each tract's
    share; real blocks vary more (1.0-4.1 times on the default run's exact counts). Method of
    moments on the noisy block x age measurements themselves (post-processing, no privacy
    cost): within tract x age x pattern, ``p`` is the pooled measured share; then per pattern
    ``(sum (y - N p)^2 - sum sigma^2) / sum N p (1 - p)``.
    """
    if not len(value):
        return np.ones(n_patterns)
    unit_population = np.bincount(
        group_unit,
        weights=groups["population"].to_numpy(dtype=float),
        minlength=int(max(group_unit.max(), row_unit.max())) + 1,
    )
    unit_tract = np.empty(len(unit_population), dtype=object)
    unit_tract[group_unit] = groups["tract_id"].to_numpy()
    unit_age = np.empty(len(unit_population), dtype=object)
    unit_age[group_unit] = groups["age_group"].to_numpy()
    population = unit_population[row_unit]
    pool = pd.MultiIndex.from_arrays(
        [unit_tract[row_unit], unit_age[row_unit], row_pattern]
    ).factorize()[0]
    pooled_count = np.bincount(pool, weights=value)
    pooled_population = np.bincount(pool, weights=population)
    share = np.clip(pooled_count / np.maximum(pooled_population, 1.0), 0.0, 1.0)[pool]
    binomial = population * share * (1.0 - share)
    excess = (value - population * share) ** 2 - sigma**2
    numerator = np.bincount(row_pattern, weights=excess, minlength=n_patterns)
    denominator = np.bincount(row_pattern, weights=binomial, minlength=n_patterns)
    ratio = np.where(denominator > 0, numerator / np.maximum(denominator, 1e-12), 1.0)
    return np.maximum(ratio, 1.0)


def coarse_of_patterns(problem: LatentClassProblem) -> np.ndarray:
    """Per full pattern, its coarse pattern's index in :data:`COARSE_PATTERNS`."""
    out = np.empty(problem.n_patterns, dtype=np.int64)
    for p, codes in enumerate(problem.pattern_codes):
        flags = {
            FLAGS[flag - 1]
            for flag in (problem.category_flags[s][c] for s, c in enumerate(codes))
            if flag > 0
        }
        out[p] = COARSE_PATTERNS.index(coarse_of_flags(flags))
    return out


def adult_age_groups_from_labels(labels: list[str]) -> list[str]:
    """Labels whose lower bound is at least 18 (parsed from ``lo-hi`` / ``lo+``)."""
    bounds = [int(lab.split("-")[0].rstrip("+")) for lab in labels]
    return adult_age_groups(bounds)


def predict_blocks(
    problem: LatentClassProblem,
    lookup: dict,
    idata,
    rng: np.random.Generator,
    n_draws: int | None = None,
    discrepancy: dict | None = None,
    count_sweeps: int = COUNT_SWEEPS,
) -> pd.DataFrame:
    """Posterior predictive block counts ``draw, block_id, citizens, noncitizens, cvap``.

    Per posterior draw: with an exact block table, per cell the class membership probabilities
    ``pi_{g,k} P(pattern | k)`` normalised, then a Dirichlet-multinomial of the cell count
    (variance: the multinomial's times ``problem.pattern_split_dispersion``). With a noisy
    coarse block table, the unknown true coarse counts are drawn first: per block x age x coarse
    pattern, on the integers from the model's ``Binomial(N, q)`` prior times the measurement's
    ``Normal(value, sigma^2)`` (:func:`sample_true_counts`), rescaled to the public population
    by largest remainders, then Gibbs sweeps that redraw each row given its population, the
    county table's measured coarse totals and the other rows of its block
    (:func:`models.count_step.exchange_given_totals`; the chain starts once and goes on from
    draw to draw, ``count_sweeps`` sweeps each); then a Dirichlet-multinomial by class
    membership given the coarse pattern (variance factor: the table's dispersion). Without any block table, a multinomial
    of the public population by ``pi``.
    """
    from models.latent_class import parameter_names

    draws = stack_draws(idata, parameter_names(problem))
    total = next(iter(draws.values())).shape[0]
    n_draws = total if not n_draws else min(n_draws, total)
    chosen = np.linspace(0, total - 1, n_draws).round().astype(int)
    groups = lookup["groups"]
    blocks, group_block = np.unique(groups["block_id"].to_numpy(), return_inverse=True)
    group_adult = groups["age_group"].isin(lookup["adult"]).to_numpy()
    pop = problem.group_population
    block_tables = [a for a in problem.aggregates if a.geo_level == "block"]
    coarse_block = next((a for a in block_tables if a.pattern_level == "coarse"), None)
    use_cells = len(problem.cell_count) > 0
    cit = citizen_class_indices(problem.class_names)
    full_view = None if use_cells else full_table_view(problem)
    disc = problem_discrepancy(problem, cit, discrepancy, full_view)
    citizen = np.isin(np.arange(problem.n_classes), cit)
    pattern_coarse = coarse_of_patterns(problem) if coarse_block is not None else None
    margins = (
        coarse_margins(problem, pattern_coarse, len(COARSE_PATTERNS))
        if coarse_block is not None and not use_cells
        else None
    )
    taus = []
    frames = []
    count_state = None
    for out_d, d in enumerate(chosen):
        pi = class_probs_np(problem, draws, d)
        if disc is not None:
            thetas = [
                theta_by_age_np(problem, draws, d, s) for s in range(len(problem.source_names))
            ]
        if use_cells:
            lik = pattern_lik_np(problem, draws, d)
            cell_age = problem.group_source_age[problem.cell_group]
            r = pi[problem.cell_group] * lik[cell_age, problem.cell_pattern]
            r /= r.sum(axis=1, keepdims=True)
            if disc is not None:
                cell_bucket = disc.buckets(
                    problem.cell_pattern, problem.group_age[problem.cell_group]
                )
                share = bucket_citizen_share(
                    cell_bucket, problem.cell_count, r, disc.citizen, disc.n_buckets
                )
                tilts, tau = draw_problem_tilts(disc, problem, pi, thetas, share, rng)
                taus.append(tau)
                r = tilt_membership(r, tilts[cell_bucket], disc.citizen)
            split = problem.pattern_split_dispersion
            by_class = dirichlet_multinomial_rows(
                rng, problem.cell_count, r, 1.0 if split is None else split[problem.cell_pattern]
            )
            unit_group = problem.cell_group
        elif coarse_block is not None:
            # P(coarse | class) at each group's age: (groups, n_coarse, k)
            q_gck = coarse_probs_np(problem, draws, d)[problem.group_source_age]
            n_coarse = q_gck.shape[1]
            unit_group = np.arange(problem.n_groups)
            # Unit of each group in the block table (one unit per group).
            group_of_unit = np.empty(problem.n_groups, dtype=np.int64)
            group_of_unit[coarse_block.group_unit] = np.arange(problem.n_groups)
            q = np.einsum("gk,gck->gc", pi, q_gck)
            y = np.full((problem.n_groups, n_coarse), np.nan)
            s2 = np.full((problem.n_groups, n_coarse), np.inf)
            g_rows = group_of_unit[coarse_block.row_unit]
            y[g_rows, coarse_block.row_pattern] = coarse_block.value
            s2[g_rows, coarse_block.row_pattern] = np.maximum(coarse_block.sigma, 1e-9) ** 2
            dispersion = 1.0 if coarse_block.dispersion is None else coarse_block.dispersion
            group_unit = margin = margin_var = None
            if margins is not None:
                group_unit, margin, margin_var = margins
                q = calibrate_to_margins(q, pop, group_unit, margin, margin_var, dispersion)
            if count_state is None or not count_sweeps:
                true_counts = sample_true_counts(rng, pop, q, y, s2, dispersion=dispersion)
                # A row whose independent draws are all zero starts from its prior shares
                # (rescaling zeros would split it evenly over the patterns).
                empty = true_counts.sum(axis=1) <= 0
                true_counts[empty] = q[empty] * pop[empty, None]
                counts = _rescale_rows(true_counts, pop)
                rounds = COUNT_BURN_IN + count_sweeps
            else:
                # The chain goes on from the previous draw's counts: their county totals are
                # already on the measured ones, which fresh starts need many sweeps to reach.
                counts = count_state
                rounds = count_sweeps
            if count_sweeps:
                pooled = BLOCK_POOLING and coarse_block is not None
                conc = (
                    block_level_concentration(y, s2, pop, q, group_block, len(blocks))
                    if pooled
                    else table_concentration(pop, q, dispersion)
                )
                counts = exchange_given_totals(
                    rng,
                    counts,
                    q,
                    y,
                    s2,
                    conc,
                    sweeps=rounds,
                    unit=group_unit,
                    margin=margin,
                    margin_var=margin_var,
                    block=group_block if pooled else None,
                )
                count_state = counts
            # Class membership given the coarse pattern: pi_k P(c | k), normalised.
            r = pi[:, None, :] * q_gck
            r /= np.maximum(r.sum(axis=2, keepdims=True), 1e-300)
            if full_view is not None:
                # The class split within each coarse pattern, moved to what the county table
                # of full patterns implies (with the survey tilts when drawn).
                member, weight = full_table_membership(
                    full_view, pi, pattern_lik_np(problem, draws, d)
                )
                if disc is not None:
                    table = full_view.table
                    row_bucket = disc.buckets(table.row_pattern, full_view.unit_age[table.row_unit])
                    share = bucket_citizen_share(
                        row_bucket, weight, member, disc.citizen, disc.n_buckets
                    )
                    tilts, tau = draw_problem_tilts(disc, problem, pi, thetas, share, rng)
                    taus.append(tau)
                    member = tilt_membership(member, tilts[row_bucket], citizen)
                shift = coarse_split_shift(
                    full_view, member, weight, pattern_coarse, counts, r, citizen
                )
                r = tilt_membership(
                    r.reshape(-1, problem.n_classes), shift.reshape(-1), citizen
                ).reshape(r.shape)
            # Persons of a block are not independent: households share status. The class
            # split within a coarse pattern is overdispersed like the coarse counts themselves
            # (the table's between-block dispersion). Measured on the default run's exact fit,
            # block squared errors were 1.6-3.4 times the multinomial variance within the
            # no_record, noncitizen and naturalized patterns.
            by_class = (
                dirichlet_multinomial_rows(
                    rng,
                    counts.reshape(-1),
                    r.reshape(-1, problem.n_classes),
                    np.broadcast_to(dispersion, counts.shape).reshape(-1),
                )
                .reshape(problem.n_groups, n_coarse, -1)
                .sum(axis=1)
            )
        else:
            unit_group = np.arange(problem.n_groups)
            by_class = multinomial_rows(rng, pop, pi)
        citizens_unit = by_class[:, cit].sum(axis=1)
        noncit_unit = by_class.sum(axis=1) - citizens_unit
        blk = group_block[unit_group]
        adult = group_adult[unit_group]
        nb = len(blocks)
        frames.append(
            pd.DataFrame(
                {
                    "draw": out_d,
                    "block_id": blocks,
                    "citizens": np.bincount(blk, weights=citizens_unit, minlength=nb),
                    "noncitizens": np.bincount(blk, weights=noncit_unit, minlength=nb),
                    "cvap": np.bincount(blk, weights=citizens_unit * adult, minlength=nb),
                }
            )
        )
    if taus:
        log.info(
            "discrepancy: %d survey-anchored buckets, tau median %.3f (90%%: %.3f-%.3f)",
            disc.n_buckets,
            float(np.median(taus)),
            float(np.quantile(taus, 0.05)),
            float(np.quantile(taus, 0.95)),
        )
    out = pd.concat(frames, ignore_index=True)
    for col in ("draw", "citizens", "noncitizens", "cvap"):
        out[col] = out[col].round().astype(np.int64)
    return out


def sample_true_counts(
    rng: np.random.Generator,
    population: np.ndarray,
    share: np.ndarray,
    measured: np.ndarray,
    noise_var: np.ndarray,
    half_window: int = 8,
    dispersion: np.ndarray | float = 1.0,
) -> np.ndarray:
    """Draw true cell counts given their noisy measurements, cell by cell, on the integers.

    Per cell the posterior ``P(n) ~ Prior(n; N, q) Normal(y; n, sigma^2)`` over the integers
    ``0..N`` in a window around its Gaussian approximation (an unmeasured cell, ``y`` NaN, draws
    from the prior). Drawing on the integers keeps rare cells unbiased: the earlier Gaussian
    draw clipped at 0 inflated rare patterns and biased block citizens down by about 2%.

    The prior is a beta-binomial with mean ``N q`` and variance ``dispersion`` times the
    binomial's (``dispersion`` per column, the table's :func:`between_block_dispersion`: blocks
    vary more than independent persons would). It replaced a binomial tempered by
    ``1 / dispersion``, whose mean is above ``N q`` for rare cells: on the default run its draws
    summed to 154,834 persons against a population of 150,831 before rows were rescaled, and the
    rescale took the excess out of the common patterns (diagnosis of 2026-12-03). Returns floats
    (rows are rescaled to the public population afterwards).
    """
    from scipy.special import betaln, gammaln

    n_pop = population.astype(float)[:, None] * np.ones_like(share)
    q = np.clip(share, 1e-9, 1 - 1e-9)
    dispersion = np.broadcast_to(np.asarray(dispersion, dtype=float), q.shape[1:])[None, :]
    dispersion = np.broadcast_to(dispersion, q.shape)
    # Beta-binomial with variance d N q (1 - q): (m + N) / (m + 1) = d, m = a + b.
    over = dispersion > 1.0 + 1e-9
    concentration = np.where(
        over, np.maximum((n_pop - dispersion) / np.maximum(dispersion - 1.0, 1e-9), 1e-3), np.inf
    )
    prior_mean = n_pop * q
    prior_var = np.maximum(dispersion * n_pop * q * (1 - q), 0.25)
    has_y = ~np.isnan(measured)
    post_var = np.where(has_y, 1 / (1 / prior_var + 1 / noise_var), prior_var)
    post_mean = np.where(
        has_y, post_var * (prior_mean / prior_var + np.nan_to_num(measured) / noise_var), prior_mean
    )
    p_draw = np.where(
        over,
        rng.beta(
            np.where(over, q * np.minimum(concentration, 1e12), 1.0),
            np.where(over, (1 - q) * np.minimum(concentration, 1e12), 1.0),
        ),
        q,
    )
    out = rng.binomial(
        population.astype(np.int64)[:, None] * np.ones_like(q, dtype=np.int64), p_draw
    )
    out = out.astype(float)
    rows, cols = np.nonzero(has_y)
    if len(rows):
        offsets = np.arange(-half_window, half_window + 1)
        centre = np.clip(np.rint(post_mean[rows, cols]), 0, n_pop[rows, cols])
        # Shift the window inside [0, N] so it always holds 2 * half_window + 1 candidates
        # where the population allows.
        low = np.clip(centre - half_window, 0, np.maximum(n_pop[rows, cols] - 2 * half_window, 0))
        cand = low[:, None] + (offsets + half_window)[None, :]
        nn = n_pop[rows, cols][:, None]
        valid = cand <= nn
        rest = np.maximum(nn - cand, 0)
        qq = q[rows, cols][:, None]
        conc = concentration[rows, cols][:, None]
        binomial = cand * np.log(qq) + rest * np.log1p(-qq)
        finite = np.isfinite(conc)
        a = np.where(finite, qq * np.where(finite, conc, 1.0), 1.0)
        b = np.where(finite, (1 - qq) * np.where(finite, conc, 1.0), 1.0)
        beta_binomial = betaln(cand + a, rest + b) - betaln(a, b)
        logp = (
            gammaln(nn + 1)
            - gammaln(cand + 1)
            - gammaln(rest + 1)
            + np.where(finite, beta_binomial, binomial)
            - 0.5 * (measured[rows, cols][:, None] - cand) ** 2 / noise_var[rows, cols][:, None]
        )
        logp = np.where(valid, logp, -np.inf)
        pick = np.argmax(logp + rng.gumbel(size=logp.shape), axis=1)
        out[rows, cols] = cand[np.arange(len(rows)), pick]
    return out


def _rescale_rows(values: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """Integer rows proportional to ``values`` summing to ``totals`` (largest remainders)."""
    sums = values.sum(axis=1, keepdims=True)
    share = np.where(sums > 0, values / np.where(sums > 0, sums, 1), 1.0 / values.shape[1])
    exact = share * totals[:, None]
    base = np.floor(exact).astype(np.int64)
    short = totals - base.sum(axis=1)
    order = np.argsort(-(exact - base), axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(values.shape[1])[None, :].repeat(len(values), 0), 1)
    return base + (ranks < short[:, None]).astype(np.int64)


def source_behaviour(problem: LatentClassProblem, idata) -> dict:
    """Per source and class: posterior mean and 90% interval of each category's probability."""
    out: dict = {}
    post = idata["posterior"]
    for s, name in enumerate(problem.source_names):
        arr = post[f"theta_{name}"].to_numpy()
        arr = arr.reshape(-1, *arr.shape[2:])  # (draws, k, C)
        out[name] = {
            cls: {
                cat: {
                    "mean": float(arr[:, k, c].mean()),
                    "lo90": float(np.quantile(arr[:, k, c], 0.05)),
                    "hi90": float(np.quantile(arr[:, k, c], 0.95)),
                }
                for c, cat in enumerate(problem.categories[s])
            }
            for k, cls in enumerate(problem.class_names)
        }
    return out


def top_parameters(problem: LatentClassProblem) -> list[str]:
    """The hierarchy's top parameters (for ESS/s comparisons)."""
    from models.latent_class import fixed_top_level, is_fixed_level

    skip = 1 if fixed_top_level(problem) is not None else 0
    return [
        "intercept",
        "age_effect",
        *[
            f"effect_{n}" if is_fixed_level(problem, labels) else f"sigma_{n}"
            for n, _, labels in problem.levels[skip:]
        ],
    ]
