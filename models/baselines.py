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
