"""Publication: post-process the model's block draws into the public tables and metadata.

Everything here is post-processing of the privacy measurements (the model read only those and
the public counts), so it spends no privacy budget. Post-processing makes every draw:
integral and nonnegative; citizens + noncitizens = the block's (public) population;
max(0, citizens - minors) <= cvap <= min(citizens, adults). Point estimates are posterior
means rounded top-down (:func:`hierarchical_rounding`): the county's mean is rounded, its tracts'
means are rounded to integers that add up to it, and their blocks' means likewise, so every
level's estimate is its own posterior mean to within one person and tracts and counties are
exact sums of blocks. (Sums of block medians, used before, are biased for rare quantities: the
median of a right-skewed block noncitizen count is below its mean, and summed over 200 blocks
with a few noncitizens each the county total fell to a fifth of its posterior mean.) 90%
intervals come from the draws (tracts and counties: quantiles of summed draws).

Run outside Snakemake: ``python -m privacy.publish --configfile config/scenarios/tiny.yaml``.
"""

from __future__ import annotations

import hashlib
import io
import platform
import re
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline_common.ages import adult_age_groups, age_group_labels
from pipeline_common.config import config_hash
from pipeline_common.convergence import convergence_targets, failure_sentence, fit_status
from pipeline_common.errors import InputError, require_columns

QUANTITIES = ("citizens", "noncitizens", "cvap")
INTERVAL_LEVEL = 0.90
DRAWS_FILE = "model/block_draws.parquet"
COUNTS_FILE = "privacy/public_counts.parquet"
PACKAGES = ("numpy", "pandas", "pyarrow", "scipy", "opendp", "pymc", "arviz", "snakemake")
# Keys of model/diagnostics.json that vary between identical runs (timings) or could carry
# dates are left out of the metadata, so the published bytes are reproducible.
VOLATILE_KEY = re.compile(r"second|time|duration|date|host|path|elapsed", re.I)
UNPROTECTED_WARNING = (
    "WARNING: privacy.mode is 'none'. These estimates were computed from EXACT tabulations of "
    "linked administrative records with NO disclosure avoidance. They are for research on "
    "synthetic data only and must not be released as if privacy-protected."
)


def draws_to_arrays(
    block_draws: pd.DataFrame, block_ids: np.ndarray, population: np.ndarray
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Reshape long draws into ``(n_draws, n_blocks)`` arrays in ``block_ids`` order.

    Blocks with population 0 that the model left out are filled with zeros; a populated block
    missing from any draw, a duplicated (draw, block) or an unknown block id is an error.
    """
    require_columns(block_draws, ["draw", "block_id", *QUANTITIES], DRAWS_FILE)
    draw_ids = np.sort(block_draws["draw"].unique())
    block_index = pd.Index(block_ids).get_indexer(block_draws["block_id"])
    if (block_index < 0).any():
        unknown = block_draws.loc[block_index < 0, "block_id"].unique()
        raise InputError(
            DRAWS_FILE,
            "block_id",
            f"{len(unknown)} block ids not in {COUNTS_FILE} (e.g. {list(unknown[:3])})",
            "rerun the model on this run's privacy outputs",
        )
    draw_index = pd.Index(draw_ids).get_indexer(block_draws["draw"])
    seen = np.zeros((len(draw_ids), len(block_ids)), dtype=np.int32)
    np.add.at(seen, (draw_index, block_index), 1)
    if (seen > 1).any():
        raise InputError(
            DRAWS_FILE, "draw, block_id", "a (draw, block) pair appears twice", "deduplicate"
        )
    missing = (seen == 0) & (population[None, :] > 0)
    if missing.any():
        example = block_ids[np.nonzero(missing.any(axis=0))[0][0]]
        raise InputError(
            DRAWS_FILE,
            "block_id",
            f"populated block {example} is missing from {int(missing.any(axis=1).sum())} draws",
            "write every populated block in every draw",
        )
    arrays = {}
    for quantity in QUANTITIES:
        values = pd.to_numeric(block_draws[quantity], errors="coerce")
        if values.isna().any():
            raise InputError(DRAWS_FILE, quantity, "missing or non-numeric values", "fix the model")
        array = np.zeros((len(draw_ids), len(block_ids)), dtype=np.float64)
        array[draw_index, block_index] = values.to_numpy(dtype=np.float64)
        arrays[quantity] = array
    return draw_ids, arrays


def postprocess(
    arrays: dict[str, np.ndarray], population: np.ndarray, adults: np.ndarray
) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Make draws integral, nonnegative and consistent with the public counts.

    Returns the post-processed int64 arrays and how many values each step changed.
    """
    minors = population - adults
    raw_citizens = arrays["citizens"]
    citizens = np.clip(np.rint(raw_citizens), 0, population[None, :]).astype(np.int64)
    noncitizens = population[None, :] - citizens
    cvap_low = np.maximum(0, citizens - minors[None, :])
    cvap_high = np.minimum(citizens, adults[None, :])
    cvap = np.clip(np.rint(arrays["cvap"]), cvap_low, cvap_high).astype(np.int64)
    changed = {
        "citizens": int((citizens != raw_citizens).sum()),
        "noncitizens": int((noncitizens != arrays["noncitizens"]).sum()),
        "cvap": int((cvap != arrays["cvap"]).sum()),
        "values": int(raw_citizens.size),
    }
    return {"citizens": citizens, "noncitizens": noncitizens, "cvap": cvap}, changed


def interval(draws: np.ndarray, method: str = "equal_tailed") -> tuple[np.ndarray, np.ndarray]:
    """90% interval per column of integer ``draws`` (rows are draws).

    ``equal_tailed``: inverted-CDF 5% and 95% quantiles (each tail holds at most 5%).
    ``mid_p``: lower bound the smallest value whose mid-distribution F(x) - p(x)/2 reaches
    0.05, upper bound the largest whose mid-distribution is at most 0.95 (falls back to the
    median when a column is too concentrated for either).
    """
    tail = (1.0 - INTERVAL_LEVEL) / 2.0
    if method == "equal_tailed":
        low, high = np.quantile(draws, [tail, 1.0 - tail], axis=0, method="inverted_cdf")
        return low.astype(np.int64), high.astype(np.int64)
    if method != "mid_p":
        raise ValueError(f"unknown interval method {method!r}")
    n = draws.shape[0]
    ordered = np.sort(draws, axis=0)
    position = np.arange(n)[:, None]
    # First and last position of each sorted value's run: P(X < v) and P(X <= v).
    starts = np.vstack([np.ones((1, ordered.shape[1]), bool), ordered[1:] != ordered[:-1]])
    ends = np.vstack([ordered[1:] != ordered[:-1], np.ones((1, ordered.shape[1]), bool)])
    first = np.maximum.accumulate(np.where(starts, position, 0), axis=0)
    last = np.flip(
        np.minimum.accumulate(np.flip(np.where(ends, position, n - 1), axis=0), axis=0), axis=0
    )
    mid = (first + last + 1) / (2.0 * n)  # F(v) - p(v)/2, nondecreasing down the rows
    median = np.quantile(draws, 0.5, axis=0, method="inverted_cdf").astype(np.int64)
    columns = np.arange(ordered.shape[1])
    reaches = mid >= tail
    low = np.where(reaches.any(axis=0), ordered[reaches.argmax(axis=0), columns], median)
    below = mid <= 1.0 - tail
    last_below = n - 1 - np.flip(below, axis=0).argmax(axis=0)
    high = np.where(below.any(axis=0), ordered[last_below, columns], median)
    return np.minimum(low, median).astype(np.int64), np.maximum(high, median).astype(np.int64)


def round_to_totals(values: np.ndarray, group: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """Round nonnegative ``values`` to integers whose sum within each group is ``totals[group]``.

    Largest remainders: every value is floored, then each group's missing units go to its
    largest fractional parts (ties to the lower index, so the result is deterministic). Each
    result is the floor or the ceiling of its value, provided each total lies between the
    group's sums of floors and of ceilings (true when it is the rounded group sum, or was itself
    rounded this way from a coarser level).
    """
    floors = np.floor(values)
    fraction = values - floors
    missing = totals - np.bincount(group, weights=floors, minlength=len(totals))
    # Rank within group by descending fraction: sort by group, then by -fraction, then index.
    order = np.lexsort((np.arange(len(values)), -fraction, group))
    starts = np.searchsorted(group[order], np.arange(len(totals)))
    rank = np.empty(len(values), dtype=np.int64)
    rank[order] = np.arange(len(values)) - starts[group[order]]
    return (floors + (rank < np.rint(missing)[group])).astype(np.int64)


def hierarchical_rounding(
    means: np.ndarray, tract_codes: np.ndarray, county_of_tract: np.ndarray
) -> np.ndarray:
    """Integer block estimates from block posterior means, consistent at every level.

    Each county total is its rounded posterior mean; its tracts' totals are their means rounded
    to add up to it; blocks are rounded to add up to their tract. So a tract's or county's
    estimate (the sum of its blocks) is within one person of its own posterior mean.
    """
    n_tracts = int(tract_codes.max()) + 1 if len(tract_codes) else 0
    tract_means = np.bincount(tract_codes, weights=means, minlength=n_tracts)
    n_counties = int(county_of_tract.max()) + 1 if n_tracts else 0
    county_totals = np.rint(np.bincount(county_of_tract, weights=tract_means, minlength=n_counties))
    tract_totals = round_to_totals(tract_means, county_of_tract, county_totals)
    return round_to_totals(means, tract_codes, tract_totals)


def summarize(
    draws: dict[str, np.ndarray],
    population: np.ndarray,
    adults: np.ndarray,
    method: str,
    tract_codes: np.ndarray,
    county_of_tract: np.ndarray,
) -> dict[str, np.ndarray]:
    """Consistent integer point estimates and 90% intervals for each quantity.

    Estimates are posterior means rounded top-down (:func:`hierarchical_rounding`; block ``b``
    is in tract ``tract_codes[b]``, tract ``t`` in county ``county_of_tract[t]``). cvap is then clipped into its bounds given the
    citizen estimate, which moves it only where rounding put it one person out.
    """
    minors = population - adults
    citizens = hierarchical_rounding(draws["citizens"].mean(axis=0), tract_codes, county_of_tract)
    cvap = hierarchical_rounding(draws["cvap"].mean(axis=0), tract_codes, county_of_tract)
    cvap = np.clip(cvap, np.maximum(0, citizens - minors), np.minimum(citizens, adults))
    estimates = {"citizens": citizens, "noncitizens": population - citizens, "cvap": cvap}
    out: dict[str, np.ndarray] = {}
    for quantity in QUANTITIES:
        low, high = interval(draws[quantity], method)
        out[f"{quantity}_est"] = estimates[quantity]
        # An estimate outside its interval (possible for sums) widens the interval to hold it.
        out[f"{quantity}_lo90"] = np.minimum(low, estimates[quantity])
        out[f"{quantity}_hi90"] = np.maximum(high, estimates[quantity])
    return out


def reliability(table: pd.DataFrame, rule: dict) -> pd.Series:
    """Flag each row high / medium / low / empty (see the schema's 'reliability' rule)."""
    population = table["population"].to_numpy()
    width = np.maximum(
        table["citizens_hi90"] - table["citizens_lo90"], table["cvap_hi90"] - table["cvap_lo90"]
    ).to_numpy()
    relative = width / np.maximum(population, 1)
    flag = np.where(
        relative <= rule["high_max_relative_width"],
        "high",
        np.where(relative <= rule["medium_max_relative_width"], "medium", "low"),
    )
    # A narrow interval on a small block is the model's certainty, not a measurement's: a block
    # of 10-49 persons whose every draw agrees (a zero-width interval) was flagged 'high' although
    # the published fit's block intervals are too narrow (randomized PIT 0.85) and its
    # assumptions are rejected by the predictive check. 'high' needs high_min_population too.
    high_min = rule["high_min_population"]
    flag = np.where((flag == "high") & (population < high_min), "medium", flag)
    flag = np.where(population < rule["min_population"], "low", flag)
    flag = np.where(population == 0, "empty", flag)
    return pd.Series(flag, index=table.index, dtype="object")


def _group_sums(
    draws: dict[str, np.ndarray], block_table: pd.DataFrame, key: str, method: str
) -> pd.DataFrame:
    """Tract or county table: estimates = sums of block estimates, intervals from summed draws."""
    codes, uniques = pd.factorize(block_table[key], sort=True)
    # Columns grouped contiguously, then summed per group (exact integer sums, fast).
    order = np.argsort(codes, kind="stable")
    starts = np.searchsorted(codes[order], np.arange(len(uniques)))
    out = pd.DataFrame({key: uniques})
    if key == "tract_id":
        out["county_id"] = block_table.groupby("tract_id")["county_id"].first().loc[uniques].values
    out["population"] = block_table.groupby(key)["population"].sum().loc[uniques].values
    for quantity in QUANTITIES:
        summed = np.add.reduceat(draws[quantity][:, order], starts, axis=1)
        low, high = interval(summed, method)
        estimate = block_table.groupby(key)[f"{quantity}_est"].sum().loc[uniques].to_numpy()
        out[f"{quantity}_est"] = estimate
        out[f"{quantity}_lo90"] = np.minimum(low, estimate)
        out[f"{quantity}_hi90"] = np.maximum(high, estimate)
    return out


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            versions[package] = importlib_metadata.version(package)
        except importlib_metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def diagnostics_summary(diagnostics: dict) -> dict[str, Any]:
    """Scalar model diagnostics, without timings (they differ between identical runs), and the
    convergence failures (plain sentences) when the fit missed a target."""
    summary = {
        key: value
        for key, value in diagnostics.items()
        if isinstance(value, (int, float, bool)) and not VOLATILE_KEY.search(key)
    }
    if "convergence_failures" in diagnostics:
        summary["convergence_failures"] = list(diagnostics["convergence_failures"] or [])
    return summary


def convergence_statement(diagnostics: dict, config: dict, protected: bool) -> dict[str, Any]:
    """Whether the published fit met its convergence targets.

    ``{"converged": bool, "fits": {"published_fit": {fit, converged, failures, targets,
    attempts}}, "warning": <plain text, only when it missed a target>}``. The fit's own verdict
    in its ``diagnostics.json`` is used; diagnostics written before it existed are judged
    against ``model.convergence``. Only the published fit is stated: the exact fit read the
    confidential exact tables, so nothing of it (not even its verdict) goes under
    ``published/`` (its ``model/diagnostics.json``, log, the report and the end of the run
    state it). Under privacy mode none the published fit is the exact fit.
    """
    name = "privacy refit" if protected else "exact fit"
    own = bool(diagnostics) and "converged" in diagnostics
    own = own and bool(diagnostics.get("convergence_targets"))
    status = fit_status(diagnostics, None if own else convergence_targets(config))
    published = {
        "fit": name,
        "converged": status["converged"],
        "failures": status["failures"],
        "targets": status["targets"],
        "attempts": status.get("attempts"),
    }
    out: dict[str, Any] = {
        "converged": published["converged"],
        "fits": {"published_fit": published},
    }
    if published["converged"] is False:
        missed = failure_sentence(f"the published {name}", published)
        out["warning"] = (
            f"WARNING: {missed[0].upper()}{missed[1:]}. Estimates and interval ends of a fit "
            "that did not converge are not reliable."
        )
    return out


def privacy_statement(ledger: dict, config: dict) -> dict[str, Any]:
    """The guarantee and parameters, as stated in metadata.json."""
    if not ledger.get("privacy_protected", False):
        return {
            "privacy_protected": False,
            "mode": "none",
            "warning": UNPROTECTED_WARNING,
            "guarantee": "none: the model read exact counts",
        }
    seeded = ledger["noise_source"] == "seeded"
    tables = [
        {
            key: entry[key]
            for key in (
                "name",
                "geo_level",
                "pattern_level",
                "cells",
                "share",
                "rho",
                "epsilon",
                "scale",
                "noise_std",
                "l2_sensitivity",
            )
        }
        for entry in ledger["measurements"]
    ]
    total = ledger["total"]
    return {
        "privacy_protected": True,
        "mode": "zcdp",
        "definition": "zero-concentrated differential privacy (rho-zCDP)",
        "unit": "person",
        "neighbouring_relation": ledger["neighbouring_relation"],
        "public_invariants": ledger["public"],
        "limitations": ledger.get("limitations", []),
        "mechanism": "discrete Gaussian on every cell of each table (zeros included), "
        "scale calibrated and privacy loss computed by OpenDP",
        "tables": tables,
        "rho_total": total["rho"],
        "rho_budget": ledger["budget"]["rho"],
        "delta": total["delta"],
        "epsilon_at_delta": total["epsilon"],
        "epsilon_conversion": "OpenDP make_zCDP_to_approxDP + make_fix_delta",
        "noise_source": ledger["noise_source"],
        "noise_source_note": (
            "seeded: noise drawn exactly from the discrete Gaussian with a numpy generator "
            "seeded from the pipeline seed, so runs are reproducible. For reproducible research "
            "on synthetic data ONLY: anyone with the seed can remove the noise, so this is not "
            "a valid differentially private release."
            if seeded
            else "opendp: noise sampled by OpenDP from a cryptographically secure generator; "
            "runs are not byte-reproducible."
        ),
        "guarantee": (
            f"The privacy measurements satisfy rho-zCDP with rho = {total['rho']:.6g} "
            f"((epsilon = {total['epsilon']:.4g}, delta = {total['delta']:.0e})-DP) for the unit "
            "'person' under the change-one-pattern neighbouring relation, given the public "
            "invariants; every published number is post-processing of those measurements and "
            "the invariants."
            + (
                " Valid only if noise_source is 'opendp' (seeded noise is reproducible)."
                if seeded
                else ""
            )
        ),
    }


def _csv_bytes(table: pd.DataFrame) -> bytes:
    buffer = io.StringIO()
    table.to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue().encode("utf-8")


def _parquet_bytes(table: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    table.to_parquet(buffer, index=False, engine="pyarrow", compression="zstd")
    return buffer.getvalue()


def publish(
    block_draws: pd.DataFrame,
    counts: pd.DataFrame,
    ledger: dict,
    diagnostics: dict,
    config: dict,
    geography: pd.DataFrame | None = None,
    county_table: pd.DataFrame | None = None,
) -> dict[str, bytes]:
    """Build every published file.

    Parameters
    ----------
    block_draws
        ``model/block_draws.parquet`` (draw, block_id, citizens, noncitizens, cvap).
    counts
        ``privacy/public_counts.parquet``.
    ledger, diagnostics
        ``privacy/ledger.json`` and the published fit's ``diagnostics.json``
        (``privacy/model/``, or ``model/`` under privacy mode none).
    config
        The validated pipeline config.
    geography
        ``world/geography.parquet`` (public): with it, ``blocks.geojson`` is written too.
    county_table
        The vendored Census county CVAP table (``fips, geoname``): county names for the
        ``geoname`` column of the Census-convention files (``County {fips}`` without it).

    Returns
    -------
    dict
        File name (under ``published/``) -> bytes: blocks.csv, blocks.parquet, draws.parquet,
        tracts.csv, counties.csv, cvap_blocks.csv, cvap_block_groups.csv, cvap_tracts.csv
        (:mod:`privacy.census_convention`), blocks.geojson (with ``geography``) and
        metadata.json.
    """
    from pipeline_common.io import dumps_json
    from privacy import census_convention as cc

    require_columns(
        counts, ["block_id", "tract_id", "county_id", "age_group", "population"], COUNTS_FILE
    )
    settings = config["privacy"]
    adult_labels = adult_age_groups(config["age_groups"])
    unknown_ages = set(counts["age_group"]) - set(age_group_labels(config["age_groups"]))
    if unknown_ages:
        raise InputError(
            COUNTS_FILE, "age_group", f"unknown age groups {sorted(unknown_ages)}", "rerun privacy"
        )
    blocks = (
        counts.groupby("block_id", sort=True)
        .agg(
            tract_id=("tract_id", "first"),
            county_id=("county_id", "first"),
            population=("population", "sum"),
        )
        .reset_index()
    )
    adults = (
        counts[counts["age_group"].isin(adult_labels)]
        .groupby("block_id")["population"]
        .sum()
        .reindex(blocks["block_id"], fill_value=0)
        .to_numpy(dtype=np.int64)
    )
    population = blocks["population"].to_numpy(dtype=np.int64)
    block_ids = blocks["block_id"].to_numpy()
    draw_ids, raw = draws_to_arrays(block_draws, block_ids, population)
    draws, changed = postprocess(raw, population, adults)

    method = settings["interval_method"]
    tract_codes, tract_ids = pd.factorize(blocks["tract_id"], sort=True)
    county_of_tract = pd.factorize(
        blocks.groupby("tract_id")["county_id"].first().loc[tract_ids], sort=True
    )[0]
    estimates = summarize(draws, population, adults, method, tract_codes, county_of_tract)
    block_table = pd.concat([blocks, pd.DataFrame(estimates)], axis=1)
    block_table["reliability"] = reliability(block_table, settings["reliability"])
    tracts = _group_sums(draws, block_table, "tract_id", method)
    counties = _group_sums(draws, block_table, "county_id", method)

    long_draws = pd.DataFrame(
        {
            "draw": np.repeat(draw_ids, len(block_ids)).astype(np.int32),
            "block_id": np.tile(block_ids, len(draw_ids)),
            **{q: draws[q].reshape(-1).astype(np.int32) for q in QUANTITIES},
        }
    )
    # A visible label on every table row: False when the model read exact counts (mode none).
    protected = bool(ledger.get("privacy_protected", False))
    for table in (block_table, tracts, counties):
        table["privacy_protected"] = protected
    # Blocks with nobody enumerated are known zeros: left out of the block table (one row per
    # estimated block), kept in the draws so that district files listing them aggregate.
    populated = block_table.loc[block_table["population"] > 0].reset_index(drop=True)
    files = {
        "blocks.csv": _csv_bytes(populated),
        "blocks.parquet": _parquet_bytes(populated),
        "draws.parquet": _parquet_bytes(long_draws),
        "tracts.csv": _csv_bytes(tracts),
        "counties.csv": _csv_bytes(counties),
    }
    # The same estimates in the Census CVAP special tabulation's convention (and as GeoJSON),
    # for the tools redistricting analysts already use.
    names = cc.county_names_from_table(county_table)
    adults_of = pd.Series(adults, index=block_ids)
    with_groups = block_table.assign(block_group_id=block_table["block_id"].astype(str).str[:12])
    block_groups = _group_sums(draws, with_groups, "block_group_id", method)
    group_adults = adults_of.groupby(adults_of.index.astype(str).str[:12]).sum()
    tract_adults = adults_of.groupby(block_table["tract_id"].to_numpy()).sum()
    census_blocks = cc.census_table(
        populated, "block_id", "block", adults_of.loc[populated["block_id"]].to_numpy(), names
    )
    files["cvap_blocks.csv"] = _csv_bytes(census_blocks)
    files["cvap_block_groups.csv"] = _csv_bytes(
        cc.census_table(
            block_groups,
            "block_group_id",
            "block_group",
            group_adults.loc[block_groups["block_group_id"]].to_numpy(),
            names,
        )
    )
    files["cvap_tracts.csv"] = _csv_bytes(
        cc.census_table(
            tracts, "tract_id", "tract", tract_adults.loc[tracts["tract_id"]].to_numpy(), names
        )
    )
    if geography is not None:
        files["blocks.geojson"] = cc.blocks_geojson(census_blocks, geography)
    privacy = privacy_statement(ledger, config)
    convergence = convergence_statement(diagnostics, config, privacy["privacy_protected"])
    meta = {
        "title": "Block-level citizens, noncitizens and CVAP estimated from linked administrative "
        "records (synthetic population)",
        "run": config["run"],
        "config_hash": config_hash(config),
        "seed": config["seed"],
        "reference_date": config["reference_date"],
        "software": _versions(),
        "privacy_protected": privacy["privacy_protected"],
        "privacy": privacy,
        "estimates": {
            "point": "posterior mean of post-processed draws, rounded top-down so that blocks "
            "add up to tracts and tracts to counties, each level within one person of its own "
            "posterior mean (cvap then clipped into its bounds)",
            "interval": f"{INTERVAL_LEVEL:.0%} posterior interval from the draws, method "
            f"'{method}'; tracts and counties from summed block draws",
            "coverage_of_files": "blocks.csv/parquet: blocks with population > 0 (blocks "
            "with no enumerated person are all zeros and omitted); draws.parquet: every block of "
            "the geography, zeros included; tracts.csv and counties.csv: every tract and county",
            "consistency": "citizens + noncitizens = population per block in every draw; "
            "max(0, citizens - minors) <= cvap <= min(citizens, adults); tract and county "
            "estimates are sums of block estimates",
            "post_processing_changes": changed,
            "draws": len(draw_ids),
            "blocks": len(populated),
            "blocks_zero_population_omitted": int((population == 0).sum()),
            "blocks_in_draws": len(block_ids),
            "tracts": len(tracts),
            "counties": len(counties),
        },
        "census_convention": {
            "files": sorted(name for name in files if name.startswith("cvap_"))
            + (["blocks.geojson"] if "blocks.geojson" in files else []),
            "columns": list(cc.CENSUS_COLUMNS),
            "geoid": "zero-padded GEOID string: 15 characters for blocks, 12 for block groups, "
            "11 for tracts (no summary-level prefix); one line per geography (lnnumber 1, "
            "lntitle Total)",
            "estimates": "cit_est, cvap_est, noncit_est are the published estimates (blocks.csv, "
            "tracts.csv; block groups are sums of their blocks); tot_est and adu_est the census "
            "frame's population and voting-age population",
            "moe": cc.MOE_RULE,
            "geojson": "blocks.geojson: one polygon per published block (the synthetic "
            "geography's unit squares), properties as in cvap_blocks.csv. The synthetic plane "
            f"is not a real place: coordinates are its units x {cc.DEGREES_PER_UNIT} placed as "
            "longitude/latitude degrees from (0, 0), so GIS software reads them as WGS 84.",
        },
        "reliability_rule": {
            "measure": "max(citizens, cvap) 90% interval width / population",
            **settings["reliability"],
        },
        "converged": convergence["converged"],
        "convergence": convergence["fits"],
        "diagnostics": diagnostics_summary(diagnostics),
        "files_sha256": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()},
    }
    if not privacy["privacy_protected"]:
        meta["warning"] = UNPROTECTED_WARNING
    if "warning" in convergence:
        meta["convergence_warning"] = convergence["warning"]
    files["metadata.json"] = dumps_json(meta).encode("utf-8")
    return files


def write_published(files: dict[str, bytes], directory: str | Path) -> None:
    """Write the published files atomically into ``directory``."""
    from pipeline_common.io import write_bytes

    for name, data in files.items():
        write_bytes(data, Path(directory) / name)


def main(argv: list[str] | None = None) -> None:
    """Command line: publish a run whose model outputs exist."""
    from pipeline_common.cli import config_of, stage_parser
    from pipeline_common.config import run_dir
    from pipeline_common.io import read_json
    from pipeline_common.logs import setup_logging

    parser = stage_parser("privacy.publish", __doc__.splitlines()[0])
    args = parser.parse_args(argv)
    setup_logging()
    config = config_of(args)
    root = run_dir(config)
    # The published fit, as the Snakemake rule reads it (common.smk::published_fit): the
    # privacy refit, or the exact fit only under privacy mode none.
    fit = root / "model" if config["privacy"]["mode"] == "none" else root / "privacy" / "model"
    files = publish(
        pd.read_parquet(fit / "block_draws.parquet"),
        pd.read_parquet(root / COUNTS_FILE),
        read_json(root / "privacy" / "ledger.json"),
        read_json(fit / "diagnostics.json"),
        config,
        pd.read_parquet(root / "world" / "geography.parquet"),
        pd.read_csv(
            Path(config["data_dir"]) / "census_cvap" / "cvap_acs2009_2013_county_totals.csv",
            dtype={"fips": str},
        ),
    )
    write_published(files, root / "published")


if __name__ == "__main__":
    from pipeline_common.errors import run_main

    run_main(main, "privacy.publish")
