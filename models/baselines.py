"""Baselines (evaluation comparators) in the model's output shape.

Both read person-level evidence (never truth) and write ``draw, block_id, citizens,
noncitizens, cvap``.

(a) Record rule, as a verification system would decide: among a person's high-confidence
administrative links (ACS excluded: it is a survey answer, not a record) with a definitive
category (``citizen``/``naturalized`` -> citizen, ``noncitizen``/``lpr`` -> noncitizen) the most
recent ``as_of`` decides (a tie goes to citizen: naturalization supersedes older records).
Persons with no definitive record get the county's citizen share from public data: the real
Census CVAP table (ACS 2009-2013, ``cit_est / tot_est`` of the county's FIPS, which the synthetic
counties carry); the national share 0.93 if the county is not in the table. Draws: those persons
are Bernoulli(share) per draw; everyone else is fixed.

(b) Census-style: definitive records first (as in (a)); for everyone else a scikit-learn
classifier (logistic regression by default, or gradient boosting) trained on ACS respondents'
answers (citizen = born citizen or naturalized) with their administrative evidence labels and
age group as one-hot features. Block estimates are summed probabilities; draws come from a
bootstrap: each of ``bootstrap_fits`` classifiers is refitted on a resample of respondents, and
each draw takes one fit's probabilities and samples persons Bernoulli(p).

Both ignore the sources in ``model.exclude_sources`` (leave-one-source-out runs), as the model
does, so the comparison stays fair. With ``acs`` excluded the Census-style classifier has no
respondents to learn from and falls back to the national share for undecided persons.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from models.pipeline import SOURCES
from models.tabulate import drop_excluded_evidence, impute_age_groups
from pipeline_common.ages import adult_age_groups

log = logging.getLogger(__name__)

DEFINITIVE = {"citizen": True, "naturalized": True, "noncitizen": False, "lpr": False}
NATIONAL_CITIZEN_SHARE = 0.93


def county_citizen_share(county_ids: pd.Series, cvap_table: Path | None) -> pd.Series:
    """Public citizen share of each county (real Census table; national share if absent)."""
    shares: dict[str, float] = {}
    if cvap_table is not None and Path(cvap_table).exists():
        real = pd.read_csv(cvap_table, dtype={"fips": str})
        real = real.loc[real["tot_est"] > 0]
        shares = dict(zip(real["fips"], real["cit_est"] / real["tot_est"], strict=True))
    return county_ids.map(shares).fillna(NATIONAL_CITIZEN_SHARE).astype(float)


def record_rule_labels(
    evidence: pd.DataFrame, person_ids: pd.Series, threshold: float
) -> pd.Series:
    """Per person: True (citizen), False (noncitizen) or NA (no definitive record)."""
    ev = evidence.loc[
        (evidence["source"] != "acs")
        & evidence["category"].isin(list(DEFINITIVE))
        & (evidence["match_probability"] >= threshold)
    ].copy()
    ev["citizen"] = ev["category"].map(DEFINITIVE).astype(bool)
    ev["as_of"] = pd.to_datetime(ev["as_of"], errors="coerce")
    ev = ev.sort_values(
        ["person_id", "as_of", "citizen"], ascending=[True, False, False], na_position="last"
    )
    latest = ev.drop_duplicates("person_id").set_index("person_id")["citizen"]
    return pd.Series(person_ids.map(latest).to_numpy(), index=person_ids.index, dtype="boolean")


def _persons(frame, geography, age_bounds, reference_date) -> pd.DataFrame:
    persons = frame[["person_id", "block_id"]].copy()
    if "household_id" in frame.columns:
        persons["household_id"] = frame["household_id"]
    persons["age_group"] = (
        impute_age_groups(frame, age_bounds, reference_date).astype(str).to_numpy()
    )
    persons["adult"] = persons["age_group"].isin(adult_age_groups(age_bounds))
    return persons.merge(
        geography[["block_id", "tract_id", "county_id"]], on="block_id", how="left"
    )


def _draws_from_probabilities(
    persons: pd.DataFrame, prob_sets: list[np.ndarray], n_draws: int, rng: np.random.Generator
) -> pd.DataFrame:
    blocks, block_idx = np.unique(persons["block_id"].to_numpy(), return_inverse=True)
    adult = persons["adult"].to_numpy()
    frames = []
    total = np.bincount(block_idx, minlength=len(blocks))
    for d in range(n_draws):
        p = prob_sets[d % len(prob_sets)]
        citizen = rng.random(len(p)) < p
        cit = np.bincount(block_idx, weights=citizen, minlength=len(blocks)).astype(np.int64)
        frames.append(
            pd.DataFrame(
                {
                    "draw": d,
                    "block_id": blocks,
                    "citizens": cit,
                    "noncitizens": total - cit,
                    "cvap": np.bincount(block_idx, weights=citizen & adult, minlength=len(blocks)),
                }
            )
        )
    out = pd.concat(frames, ignore_index=True)
    for col in ("draw", "citizens", "noncitizens", "cvap"):
        out[col] = out[col].astype(np.int64)
    return out


def record_rule(
    evidence: pd.DataFrame,
    frame: pd.DataFrame,
    geography: pd.DataFrame,
    config: dict,
    rng: np.random.Generator,
    cvap_table: Path | None,
) -> pd.DataFrame:
    """Block draws of the record-rule baseline."""
    mc = config["model"]
    evidence = drop_excluded_evidence(evidence, mc, SOURCES)
    persons = _persons(frame, geography, config["age_groups"], config["reference_date"])
    labels = record_rule_labels(evidence, persons["person_id"], mc["high_confidence_threshold"])
    share = county_citizen_share(persons["county_id"], cvap_table).to_numpy()
    p = np.where(labels.isna(), share, labels.fillna(False).astype(float))
    log.info(
        "record rule: %d of %d persons without a definitive record",
        int(labels.isna().sum()),
        len(p),
    )
    return _draws_from_probabilities(persons, [p], mc["baselines"]["draws"], rng)


def _features(evidence: pd.DataFrame, persons: pd.DataFrame, threshold: float) -> pd.DataFrame:
    ev = evidence.loc[evidence["source"] != "acs"].copy()
    conf = np.where(ev["match_probability"] >= threshold, "hi", "lo")
    ev["label"] = ev["source"] + "=" + ev["category"].astype(str) + "_" + conf
    dummies = pd.crosstab(ev["person_id"], ev["label"]).clip(upper=1)
    feats = dummies.reindex(persons["person_id"]).fillna(0).reset_index(drop=True)
    ages = pd.get_dummies(persons["age_group"], prefix="age").reset_index(drop=True)
    return pd.concat([feats, ages.astype(float)], axis=1).astype(float)


def census_style(
    evidence: pd.DataFrame,
    frame: pd.DataFrame,
    geography: pd.DataFrame,
    config: dict,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Block draws of the Census-style baseline (records first, then a classifier)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    mc = config["model"]
    bc = mc["baselines"]
    evidence = drop_excluded_evidence(evidence, mc, SOURCES)
    persons = _persons(frame, geography, config["age_groups"], config["reference_date"])
    threshold = mc["high_confidence_threshold"]
    labels = record_rule_labels(evidence, persons["person_id"], threshold)
    acs = evidence.loc[
        (evidence["source"] == "acs")
        & evidence["category"].isin(["citizen", "naturalized", "noncitizen"])
    ].drop_duplicates("person_id")
    answer = persons["person_id"].map(
        acs.set_index("person_id")["category"].isin(["citizen", "naturalized"])
    )
    x_all = _features(evidence, persons, threshold).to_numpy()
    train = np.flatnonzero(answer.notna().to_numpy())
    y = answer.iloc[train].astype(bool).to_numpy()
    undecided = labels.isna().to_numpy()
    fixed = labels.fillna(False).astype(float).to_numpy()
    prob_sets = []
    for b in range(bc["bootstrap_fits"]):
        idx = train if b == 0 else rng.choice(train, size=len(train), replace=True)
        yy = y if b == 0 else answer.iloc[idx].astype(bool).to_numpy()
        if len(np.unique(yy)) < 2:
            p_hat = np.full(len(persons), float(yy.mean()) if len(yy) else NATIONAL_CITIZEN_SHARE)
        else:
            if bc["classifier"] == "gradient_boosting":
                clf = HistGradientBoostingClassifier(max_iter=100, random_state=b)
            else:
                clf = LogisticRegression(max_iter=500, C=1.0)
            clf.fit(x_all[idx], yy)
            p_hat = clf.predict_proba(x_all)[:, list(clf.classes_).index(True)]
        prob_sets.append(np.where(undecided, p_hat, fixed))
    log.info(
        "census-style: %d ACS respondents trained %d fits; %d persons classified",
        len(train),
        len(prob_sets),
        int(undecided.sum()),
    )
    return _draws_from_probabilities(persons, prob_sets, bc["draws"], rng)


# --- (c) Today's practice: the ACS direct estimate per block group, pushed down to blocks ----

ACS_QUANTITIES = {
    # Census CVAP convention name -> (persons counted, adults only)
    "tot": (None, False),
    "adu": (None, True),
    "cit": (True, False),
    "cvap": (True, True),
    "noncit": (False, False),
}
ACS_COLUMNS = ("block_id", "age", "citizenship_edited", "weight")


def _acs_indicators(acs: pd.DataFrame, source: str) -> dict[str, np.ndarray]:
    """Per ACS record: 0/1 indicator of each quantity of :data:`ACS_QUANTITIES`."""
    from pipeline_common.errors import require_columns
    from synthetic.sources import ACS_ANSWERS, CITIZEN_ANSWERS, replicate_weight_columns

    require_columns(acs, [*ACS_COLUMNS, *replicate_weight_columns()], source)
    answer = acs["citizenship_edited"].astype("object").to_numpy()
    unknown = ~pd.Series(answer).isin(ACS_ANSWERS).to_numpy()
    if unknown.any():
        from pipeline_common.errors import InputError

        raise InputError(
            source,
            "citizenship_edited",
            f"{int(unknown.sum())} records without an edited answer (e.g. {answer[unknown][:3]})",
            "regenerate the world: the ACS design allocates every item nonresponse",
        )
    citizen = np.isin(answer, CITIZEN_ANSWERS)
    adult = pd.to_numeric(acs["age"], errors="coerce").fillna(-1).to_numpy() >= 18
    out = {}
    for name, (citizen_wanted, adults_only) in ACS_QUANTITIES.items():
        keep = np.ones(len(acs), dtype=bool)
        if citizen_wanted is not None:
            keep &= citizen if citizen_wanted else ~citizen
        if adults_only:
            keep &= adult
        out[name] = keep.astype(float)
    return out


def acs_direct_estimates(
    acs: pd.DataFrame, block_group_ids: np.ndarray, source: str = "world/sources/acs.parquet"
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Direct weighted ACS estimates per block group, with replicate SEs and 90% MOEs.

    ``X = sum of weight x indicator`` over the block group's person records;
    ``SE = sqrt(4 / 80 sum_r (X_r - X)^2)`` with the replicate weights; ``MOE = 1.645 SE``
    (as the ACS publishes it). A block group without respondents gets 0 with SE 0.

    Parameters
    ----------
    acs
        The ACS file (``block_id, age, citizenship_edited, weight, rep_weight_1..80``).
    block_group_ids
        Every block group to estimate (12-character GEOIDs).
    source
        Name of the ACS file, for error messages.

    Returns
    -------
    (table, replicates)
        ``table``: ``block_group_id, respondents, households`` and for each quantity ``q`` of
        ``tot, adu, cit, cvap, noncit``: ``q_est, q_se, q_moe``; ``replicates``: quantity ->
        ``(n_block_groups, 80)`` replicate estimates (rows in ``block_group_ids`` order).
    """
    from synthetic.sources import ACS_MOE_Z, replicate_se, replicate_weight_columns

    indicators = _acs_indicators(acs, source)
    ids = pd.Index([str(b) for b in block_group_ids])
    code = ids.get_indexer(acs["block_id"].astype(str).str[:12])
    if (code < 0).any():
        from pipeline_common.errors import InputError

        bad = acs["block_id"].astype(str)[code < 0].unique()
        raise InputError(
            source,
            "block_id",
            f"{len(bad)} ACS blocks are not in the geography (e.g. {list(bad[:3])})",
            "use the ACS file and geography of the same run",
        )
    weight = acs["weight"].to_numpy(dtype=float)
    replicate_weights = acs[replicate_weight_columns()].to_numpy(dtype=float)
    table = pd.DataFrame({"block_group_id": ids.to_numpy()})
    table["respondents"] = np.bincount(code, minlength=len(ids))
    if "household_id" in acs.columns:
        households = acs.assign(_bg=code).drop_duplicates(["_bg", "household_id"])["_bg"]
        table["households"] = np.bincount(households.to_numpy(), minlength=len(ids))
    replicates = {}
    for name, indicator in indicators.items():
        estimate = np.bincount(code, weights=weight * indicator, minlength=len(ids))
        reps = np.zeros((len(ids), replicate_weights.shape[1]))
        np.add.at(reps, code, replicate_weights * indicator[:, None])
        se = replicate_se(estimate, reps)
        table[f"{name}_est"] = estimate
        table[f"{name}_se"] = se
        table[f"{name}_moe"] = ACS_MOE_Z * se
        replicates[name] = reps
    return table, replicates


def apportion(values: np.ndarray, group: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """Integers near ``values`` whose sums within each group equal the integer ``totals``.

    Largest remainders (Hamilton): floor every value, then hand each group's missing units to
    its largest fractional parts (ties to the lower index). Works row by row on 2-D input
    (rows: draws).
    """
    values = np.atleast_2d(values)
    totals = np.atleast_2d(totals)
    floors = np.floor(values)
    fraction = values - floors
    out = np.empty(values.shape, dtype=np.int64)
    n_groups = totals.shape[1]
    index = np.arange(values.shape[1])
    for row in range(values.shape[0]):
        missing = totals[row] - np.bincount(group, weights=floors[row], minlength=n_groups)
        order = np.lexsort((index, -fraction[row], group))
        starts = np.searchsorted(group[order], np.arange(n_groups))
        rank = np.empty(len(index), dtype=np.int64)
        rank[order] = index - starts[group[order]]
        out[row] = (floors[row] + (rank < np.rint(missing)[group])).astype(np.int64)
    return out


def acs_direct(
    acs: pd.DataFrame,
    frame: pd.DataFrame,
    geography: pd.DataFrame,
    config: dict,
    rng: np.random.Generator,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Block draws of the ACS direct baseline, and its block-group table.

    Today's practice: the direct ACS estimate of each block group (:func:`acs_direct_estimates`)
    is pushed down to its blocks in proportion to the census frame's population (citizens,
    noncitizens) or voting-age population (CVAP), as redistricting tools do with the Census
    CVAP special tabulation. Draws come from the block groups' sampling distribution: draw
    ``d`` is ``X + sqrt(4 / 80) sum_r g_dr (X_r - X)`` with ``g_d ~ N(0, I_80)``, a normal
    vector whose covariance is the replicate covariance (across quantities and block groups),
    rounded to whole persons and split to blocks by largest remainders. Draws are not
    truncated at zero (their mean stays the direct estimate, as users would use it); a block
    group of respondents all of one kind has SE 0.

    Returns
    -------
    (block_draws, block_groups)
        ``draw, block_id, citizens, noncitizens, cvap`` (int64; every block of the geography)
        and the block-group table of :func:`acs_direct_estimates` plus ``population, vap``
        (frame).
    """
    mc = config["model"]
    n_draws = int(mc["baselines"]["draws"])
    persons = _persons(frame, geography, config["age_groups"], config["reference_date"])
    blocks = geography[["block_id", "block_group_id"]].astype(str)
    blocks = blocks.sort_values("block_id", kind="stable").reset_index(drop=True)
    population = persons.groupby("block_id").size()
    vap = persons.loc[persons["adult"]].groupby("block_id").size()
    blocks["population"] = blocks["block_id"].map(population).fillna(0).to_numpy(np.int64)
    blocks["vap"] = blocks["block_id"].map(vap).fillna(0).to_numpy(np.int64)
    bg_ids, bg_code = np.unique(blocks["block_group_id"].to_numpy(), return_inverse=True)
    table, replicates = acs_direct_estimates(acs, bg_ids)
    table["population"] = np.bincount(bg_code, weights=blocks["population"], minlength=len(bg_ids))
    table["vap"] = np.bincount(bg_code, weights=blocks["vap"], minlength=len(bg_ids))
    table["population"] = table["population"].astype(np.int64)
    table["vap"] = table["vap"].astype(np.int64)

    def shares(weight_column: str) -> np.ndarray:
        weight = blocks[weight_column].to_numpy(dtype=float)
        total = np.bincount(bg_code, weights=weight, minlength=len(bg_ids))[bg_code]
        # A block group without any weight splits by population (no adults: no CVAP share).
        fallback = blocks["population"].to_numpy(dtype=float)
        fallback_total = np.bincount(bg_code, weights=fallback, minlength=len(bg_ids))[bg_code]
        equal = 1.0 / np.bincount(bg_code, minlength=len(bg_ids))[bg_code]
        return np.where(
            total > 0,
            weight / np.where(total > 0, total, 1),
            np.where(
                fallback_total > 0,
                fallback / np.where(fallback_total > 0, fallback_total, 1),
                equal,
            ),
        )

    normal = rng.standard_normal((n_draws, replicates["cit"].shape[1]))
    scale = np.sqrt(4.0 / replicates["cit"].shape[1])
    out = {
        "draw": np.repeat(np.arange(n_draws), len(blocks)),
        "block_id": np.tile(blocks["block_id"].to_numpy(), n_draws),
    }
    for quantity, name, split in (
        ("citizens", "cit", "population"),
        ("noncitizens", "noncit", "population"),
        ("cvap", "cvap", "vap"),
    ):
        estimate = table[f"{name}_est"].to_numpy(dtype=float)
        deviations = replicates[name] - estimate[:, None]
        bg_draws = np.rint(estimate[None, :] + scale * normal @ deviations.T)
        block_values = bg_draws[:, bg_code] * shares(split)[None, :]
        out[quantity] = apportion(block_values, bg_code, bg_draws).reshape(-1)
    draws = pd.DataFrame(out)
    for column in ("draw", "citizens", "noncitizens", "cvap"):
        draws[column] = draws[column].astype(np.int64)
    log.info(
        "acs direct: %d respondents in %d of %d block groups; %d draws",
        len(acs),
        int((table["respondents"] > 0).sum()),
        len(table),
        n_draws,
    )
    return draws, table


def acs_direct_stage(
    acs_path: str | Path,
    frame_path: str | Path,
    geography_path: str | Path,
    config: dict,
    draws_path: str | Path,
    table_path: str | Path,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read the ACS file, frame and geography; write the baseline's draws and block groups."""
    from pipeline_common.io import write_parquet
    from pipeline_common.rng import stage_rng
    from pipeline_common.world_schema import read_world_file

    reference = config.get("reference_date")
    draws, table = acs_direct(
        read_world_file(acs_path, "acs", reference),
        read_world_file(frame_path, "frame", reference),
        read_world_file(geography_path, "geography"),
        config,
        stage_rng(config["seed"], "model", "baseline", "acs_direct"),
    )
    write_parquet(draws, draws_path)
    write_parquet(table, table_path)
    return draws, table
