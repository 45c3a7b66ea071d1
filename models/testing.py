"""A simulator of the model stage's inputs, drawn from the model itself (fixtures, benchmarks).

Nothing here is used by the pipeline. It lives in the package, not in ``tests/fixtures``,
because ``benchmarks/bench_model.py`` fits the model to its draws too (benchmarks import
installed packages only).

Produces, to the contract, ``cells``, ``patterns``, ``public_counts`` and exact
``measurements`` for a synthetic geography, plus the true block counts and generating
parameters. Persons are drawn per group (block x age) from the class prior, then each source's
label independently given the class (the model's own assumptions).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.pipeline import CLASSES, SOURCES
from models.tabulate import (
    COARSE_PATTERNS,
    FLAGS,
    NONE,
    category_flag,
    coarse_of_flags,
    label_order,
)

AGE_LABELS = ["0-17", "18-34", "35-64", "65+"]

# P(label | class) per source; columns: native, naturalized, LPR, other noncitizen. Labels that
# the model treats as structural zeros get the model's false-link allowance (1e-4).
DEFAULT_THETA: dict[str, dict[str, tuple[float, float, float, float]]] = {
    "ssa_numident": {
        NONE: (0.1048, 0.10, 0.15, 0.80),
        "citizen_hi": (0.80, 0.35, 0.01, 0.01),
        "noncitizen_hi": (0.0001, 0.15, 0.55, 0.12),
        "noncitizen_old_hi": (0.0001, 0.30, 0.25, 0.03),
        "unknown_hi": (0.08, 0.05, 0.03, 0.02),
        "citizen_lo": (0.015, 0.05, 0.01, 0.02),
    },
    "uscis_naturalizations": {
        NONE: (0.9999, 0.25, 0.9999, 0.9999),
        "naturalized_hi": (0.0001, 0.75, 0.0001, 0.0001),
    },
    "uscis_lpr": {NONE: (0.9999, 0.35, 0.10, 0.9999), "lpr_hi": (0.0001, 0.65, 0.90, 0.0001)},
    "cbp_ice": {NONE: (0.9999, 0.97, 0.85, 0.60), "noncitizen_hi": (0.0001, 0.03, 0.15, 0.40)},
    "state_passports": {
        NONE: (0.50, 0.55, 0.9999, 0.9999),
        "citizen_hi": (0.50, 0.45, 0.0001, 0.0001),
    },
    "irs_itin": {
        NONE: (0.9994, 0.99, 0.97, 0.75),
        "noncitizen_hi": (0.0001, 0.008, 0.02, 0.20),
        "noncitizen_lo": (0.0005, 0.002, 0.01, 0.05),
    },
    "acs": {
        NONE: (0.90, 0.90, 0.92, 0.92),
        "citizen_hi": (0.095, 0.01, 0.01, 0.01),
        "naturalized_hi": (0.001, 0.085, 0.005, 0.005),
        "noncitizen_hi": (0.001, 0.003, 0.06, 0.06),
        "unknown_hi": (0.003, 0.002, 0.005, 0.005),
    },
}


def simulate(
    rng: np.random.Generator,
    n_persons: int = 5000,
    n_counties: int = 2,
    tracts_per_county: int = 4,
    blocks_per_tract: int = 12,
    theta: dict | None = None,
    intercept: tuple[float, ...] = (-2.3, -2.6, -2.4),
    age_effect: np.ndarray | None = None,
    sigmas: dict[str, tuple[float, ...]] | None = None,
) -> dict:
    """Simulate a world as the model sees it.

    Returns
    -------
    dict with ``cells, patterns, public_counts, measurements, truth_blocks, truth_groups,
    parameters``.
    """
    theta = theta or DEFAULT_THETA
    n_nonref = len(CLASSES) - 1
    sigmas = sigmas or {
        "county": (0.3, 0.3, 0.3),
        "tract": (0.4, 0.5, 0.5),
        "block": (0.5, 0.8, 0.8),
    }
    age_effect = (
        np.array([[-0.4, -0.6, -0.6], [0.1, 0.3, 0.6], [0.3, 0.3, 0.3], [0.0, 0.0, -0.3]])
        if age_effect is None
        else np.asarray(age_effect)
    )
    age_effect = age_effect - age_effect.mean(axis=0, keepdims=True)
    n_blocks = n_counties * tracts_per_county * blocks_per_tract
    county = np.repeat(np.arange(n_counties), tracts_per_county * blocks_per_tract)
    tract = np.repeat(np.arange(n_counties * tracts_per_county), blocks_per_tract)
    county_ids = np.array([f"{12000 + 2 * c + 1:05d}" for c in range(n_counties)])
    tract_ids = np.array(
        [
            f"{county_ids[t // tracts_per_county]}{t % tracts_per_county + 100:06d}"
            for t in range(n_blocks // blocks_per_tract)
        ]
    )
    block_ids = np.array(
        [f"{tract_ids[tract[b]]}1{b % blocks_per_tract:03d}" for b in range(n_blocks)]
    )
    effects = np.zeros((n_blocks, n_nonref))
    for level, idx in (("county", county), ("tract", tract), ("block", np.arange(n_blocks))):
        z = rng.standard_normal((idx.max() + 1, n_nonref))
        effects += z[idx] * np.asarray(sigmas[level])[None, :]
    # Persons: block sizes vary; age shares fixed.
    block_weight = rng.gamma(4.0, 1.0, n_blocks)
    person_block = rng.choice(n_blocks, size=n_persons, p=block_weight / block_weight.sum())
    person_age = rng.choice(len(AGE_LABELS), size=n_persons, p=[0.22, 0.23, 0.38, 0.17])
    eta = np.column_stack(
        [np.zeros(n_persons)]
        + [
            intercept[j] + age_effect[person_age, j] + effects[person_block, j]
            for j in range(n_nonref)
        ]
    )
    probs = np.exp(eta - eta.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    cum = probs.cumsum(axis=1)
    person_class = (rng.random(n_persons)[:, None] > cum).sum(axis=1).clip(0, n_nonref)
    labels = {}
    for source in SOURCES:
        cats = sorted(theta[source], key=label_order)
        table = np.array([theta[source][c] for c in cats]).T  # (k, C)
        table = table / table.sum(axis=1, keepdims=True)
        cum_s = table[person_class].cumsum(axis=1)
        code = (rng.random(n_persons)[:, None] > cum_s).sum(axis=1).clip(0, len(cats) - 1)
        labels[f"src_{source}"] = np.array(cats, dtype=object)[code]
    persons = pd.DataFrame(labels)
    src_cols = list(labels)
    persons["block_id"] = block_ids[person_block]
    persons["age_group"] = np.array(AGE_LABELS)[person_age]
    persons["class"] = person_class
    uniq = persons[src_cols].drop_duplicates()
    uniq = uniq.assign(_k=uniq.apply(lambda r: tuple(label_order(v) for v in r), axis=1))
    uniq = uniq.sort_values("_k").drop(columns="_k").reset_index(drop=True)
    uniq.insert(0, "pattern_id", np.arange(len(uniq), dtype=np.int64))
    flags = [frozenset(category_flag(v) for v in row) - {NONE} for row in uniq[src_cols].to_numpy()]
    coarse = [coarse_of_flags(f) for f in flags]
    uniq.insert(
        1, "coarse_pattern_id", np.array([COARSE_PATTERNS.index(c) for c in coarse], np.int64)
    )
    uniq.insert(2, "coarse_pattern", coarse)
    uniq.insert(3, "flags", [",".join(sorted(f)) for f in flags])
    persons = persons.merge(uniq[["pattern_id", *src_cols]], on=src_cols, how="left")
    geo = pd.DataFrame(
        {"block_id": block_ids, "tract_id": tract_ids[tract], "county_id": county_ids[county]}
    )
    cells = (
        persons.groupby(["block_id", "age_group", "pattern_id"])
        .size()
        .rename("count")
        .reset_index()
    )
    cells = cells.merge(geo, on="block_id").merge(uniq[["pattern_id", *src_cols]], on="pattern_id")
    cells["count"] = cells["count"].astype(np.int64)
    cells = cells[
        ["block_id", "tract_id", "county_id", "age_group", "pattern_id", "count", *src_cols]
    ]
    cells = cells.sort_values(["block_id", "age_group", "pattern_id"]).reset_index(drop=True)
    public = (
        persons.groupby(["block_id", "age_group"]).size().rename("population").reset_index()
    ).merge(geo, on="block_id")
    public = public[["block_id", "tract_id", "county_id", "age_group", "population"]]
    from models.tabulate import exact_measurements_from_cells

    measurements = exact_measurements_from_cells(cells)
    persons["citizen"] = persons["class"] < 2
    persons["adult"] = persons["age_group"] != "0-17"
    truth_blocks = (
        persons.assign(
            citizens=persons["citizen"].astype(int),
            noncitizens=(~persons["citizen"]).astype(int),
            cvap=(persons["citizen"] & persons["adult"]).astype(int),
        )
        .groupby("block_id")[["citizens", "noncitizens", "cvap"]]
        .sum()
        .reset_index()
        .merge(geo, on="block_id")
    )
    return {
        "cells": cells,
        "patterns": uniq,
        "public_counts": public,
        "measurements": measurements,
        "truth_blocks": truth_blocks,
        "persons": persons,
        "parameters": {
            "theta": theta,
            "classes": CLASSES,
            "intercept": intercept,
            "age_effect": age_effect.tolist(),
            "sigmas": sigmas,
        },
    }


def noisy_measurements(
    cells: pd.DataFrame,
    patterns: pd.DataFrame,
    rng: np.random.Generator,
    county_sigma: float = 3.0,
    block_sigma: float = 2.0,
) -> pd.DataFrame:
    """A zCDP-like measurement set: county x age x full pattern + block x age x coarse pattern.

    Rounded Gaussian noise stands in for the discrete Gaussian (same variance to first order).
    """
    pat = patterns.set_index("pattern_id")["coarse_pattern_id"]
    county = cells.groupby(["county_id", "age_group", "pattern_id"])["count"].sum()
    full_index = pd.MultiIndex.from_product(
        [cells["county_id"].unique(), cells["age_group"].unique(), patterns["pattern_id"]],
        names=["county_id", "age_group", "pattern_id"],
    )
    county = county.reindex(full_index, fill_value=0).reset_index()
    blocks = cells.assign(coarse=cells["pattern_id"].map(pat))
    block = blocks.groupby(["block_id", "age_group", "coarse"])["count"].sum()
    bidx = pd.MultiIndex.from_product(
        [cells["block_id"].unique(), cells["age_group"].unique(), range(len(COARSE_PATTERNS))],
        names=["block_id", "age_group", "coarse"],
    )
    block = block.reindex(bidx, fill_value=0).reset_index()
    noisy = [
        pd.DataFrame(
            {
                "table": "county_full",
                "geo_level": "county",
                "geo_id": county["county_id"],
                "age_group": county["age_group"],
                "pattern_level": "full",
                "pattern_id": county["pattern_id"].astype(np.int64),
                "value": (
                    county["count"] + np.round(rng.normal(0, county_sigma, len(county)))
                ).astype(np.int64),
                "sigma": county_sigma,
            }
        ),
        pd.DataFrame(
            {
                "table": "block_coarse",
                "geo_level": "block",
                "geo_id": block["block_id"],
                "age_group": block["age_group"],
                "pattern_level": "coarse",
                "pattern_id": block["coarse"].astype(np.int64),
                "value": (block["count"] + np.round(rng.normal(0, block_sigma, len(block)))).astype(
                    np.int64
                ),
                "sigma": block_sigma,
            }
        ),
    ]
    return pd.concat(noisy, ignore_index=True)


__all__ = ["AGE_LABELS", "DEFAULT_THETA", "FLAGS", "noisy_measurements", "simulate"]
