"""Small synthetic inputs built to the contract, for tests and benchmarks of the privacy stage.

Nothing here is used by the pipeline: it stands in for the upstream stages (persons, cells,
patterns, geography, model draws) so the privacy stage can be exercised on its own. It lives
in the package, not in ``tests/fixtures``, because ``benchmarks/bench_privacy.py`` builds its
worlds with it too (benchmarks import installed packages only).
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from pipeline_common.ages import age_group_labels, assign_age_group

FIXTURE_SOURCES = ("ssa_numident", "uscis_naturalizations", "state_passports")
LABELS = ("none", "citizen", "noncitizen")
FIRST_NAMES = np.array(["MARGARET", "OSWALDO", "HIROSHI", "LAKSHMI", "BARNABY", "FENELLA"])
LAST_NAMES = np.array(["THORNBURY", "QUINTERO", "WATANABE", "RAGHAVAN", "PEMBERTON", "ASKEW"])


def fixture_world(
    rng: np.random.Generator,
    counties: int = 2,
    tracts_per_county: int = 2,
    blocks_per_tract: int = 5,
    mean_block_size: float = 30.0,
    age_bounds: tuple[int, ...] = (0, 18, 35, 65),
) -> dict[str, pd.DataFrame]:
    """Persons (truth-like and frame-like), geography, cells and patterns of a toy world."""
    county_ids = [f"{12001 + 2 * c:05d}" for c in range(counties)]
    geo = []
    for county in county_ids:
        for t in range(tracts_per_county):
            tract = f"{county}{100 + t:06d}"
            for b in range(blocks_per_tract):
                geo.append(
                    {"block_id": f"{tract}{1000 + b:04d}", "tract_id": tract, "county_id": county}
                )
    geography = pd.DataFrame(geo)
    # One empty block: public geography knows it, the frame does not.
    sizes = rng.poisson(mean_block_size, len(geography))
    sizes[-1] = 0
    block_of_person = np.repeat(geography.index.to_numpy(), sizes)
    n = len(block_of_person)
    ages = rng.integers(0, 90, n)
    noncitizen_share = rng.beta(1.0, 6.0, len(geography))[block_of_person]
    citizen = rng.random(n) >= noncitizen_share
    persons = pd.DataFrame(
        {
            "person_id": [f"P{i:09d}" for i in range(1, n + 1)],
            "household_id": [f"H{i // 3:09d}" for i in range(1, n + 1)],
            "block_id": geography["block_id"].to_numpy()[block_of_person],
            "tract_id": geography["tract_id"].to_numpy()[block_of_person],
            "county_id": geography["county_id"].to_numpy()[block_of_person],
            "first_name": rng.choice(FIRST_NAMES, n),
            "last_name": rng.choice(LAST_NAMES, n),
            "dob": pd.to_datetime("2020-04-01") - pd.to_timedelta(ages * 365 + 17, unit="D"),
            "age": ages,
            "citizen": citizen,
        }
    )
    # Evidence: each source links with some probability and mostly tells the truth.
    evidence = {}
    for source in FIXTURE_SOURCES:
        linked = rng.random(n) < 0.7
        truthful = rng.random(n) < 0.9
        said_citizen = np.where(truthful, citizen, ~citizen)
        evidence[f"src_{source}"] = np.where(
            linked, np.where(said_citizen, "citizen", "noncitizen"), "none"
        )
    combos = list(itertools.product(LABELS, repeat=len(FIXTURE_SOURCES)))
    patterns = pd.DataFrame(combos, columns=[f"src_{s}" for s in FIXTURE_SOURCES])
    patterns.insert(0, "pattern_id", np.arange(len(combos), dtype=np.int64))
    says = patterns[[f"src_{s}" for s in FIXTURE_SOURCES]]
    any_cit = (says == "citizen").any(axis=1)
    any_non = (says == "noncitizen").any(axis=1)
    patterns.insert(
        1, "coarse_pattern_id", np.select([any_cit & any_non, any_cit, any_non], [3, 1, 2], 0)
    )
    key = pd.DataFrame(evidence).merge(patterns, how="left")
    persons["pattern_id"] = key["pattern_id"].to_numpy()
    persons["age_group"] = pd.Series(assign_age_group(ages, age_bounds)).astype(str).to_numpy()
    cells = (
        persons.groupby(["block_id", "tract_id", "county_id", "age_group", "pattern_id"])
        .size()
        .rename("count")
        .reset_index()
        .merge(patterns.drop(columns="coarse_pattern_id"), on="pattern_id")
    )
    assert set(cells["age_group"]) <= set(age_group_labels(age_bounds))
    return {"persons": persons, "geography": geography, "cells": cells, "patterns": patterns}


def fixture_draws(
    rng: np.random.Generator, persons: pd.DataFrame, draws: int = 200
) -> pd.DataFrame:
    """Model-like block draws: calibrated binomial draws around each block's true counts."""
    per_block = persons.assign(adult=persons["age"] >= 18).groupby("block_id")
    table = pd.DataFrame(
        {
            "population": per_block.size(),
            "citizens": per_block["citizen"].sum(),
            "adults": per_block["adult"].sum(),
        }
    ).reset_index()
    out = []
    for draw in range(draws):
        # Posterior for the share of citizens (Beta), then counts: roughly calibrated.
        share = rng.beta(table["citizens"] + 0.5, table["population"] - table["citizens"] + 0.5)
        citizens = rng.binomial(table["population"], share)
        adult_share = table["adults"] / table["population"]
        cvap = rng.binomial(citizens, adult_share)
        out.append(
            pd.DataFrame(
                {
                    "draw": draw,
                    "block_id": table["block_id"],
                    "citizens": citizens,
                    "noncitizens": table["population"] - citizens,
                    "cvap": cvap,
                }
            )
        )
    return pd.concat(out, ignore_index=True)
