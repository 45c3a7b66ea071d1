"""The synthetic world: geography, true population, census frame, sources and truth tables.

``generate_world(config)`` builds everything in memory; ``write_world(world, run_dir)`` writes
the contract files (docs/CONTRACTS.md) atomically. Run outside Snakemake with::

    python -m synthetic.world --configfile config/scenarios/tiny.yaml
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline_common.io import write_json, write_parquet
from pipeline_common.rng import stage_rng
from pipeline_common.sources import SOURCES
from synthetic import errors, sources
from synthetic.geography import build_blocks, county_targets, layout_geography, load_county_table
from synthetic.identities import assign_identities
from synthetic.population import (
    NATIVE,
    NATURALIZED,
    ROLE_NAMES,
    STATUS_NAMES,
    _age_on,
    build_population,
    county_status_mix,
)

log = logging.getLogger(__name__)

DATE_COLUMNS = (
    "dob",
    "application_date",
    "last_update_date",
    "naturalization_date",
    "lpr_grant_date",
    "event_date",
    "issue_date",
    "interview_date",
    "arrival_date",
    "lpr_date",
)


@dataclass
class World:
    """Every table of the synthetic world (contract columns, ready to write)."""

    frame: pd.DataFrame
    geography: pd.DataFrame
    sources: dict[str, pd.DataFrame]
    persons: pd.DataFrame
    records: pd.DataFrame
    parameters: dict = field(default_factory=dict)


def format_ids(prefix: str, numbers: np.ndarray) -> pd.Series:
    """Identifiers ``prefix`` + 9-digit zero-padded ``numbers`` (vectorized, Arrow strings)."""
    digits = pc.utf8_lpad(pa.array(np.asarray(numbers, dtype=np.int64)).cast(pa.string()), 9, "0")
    joined = pc.binary_join_element_wise(prefix, digits, "")
    return pd.Series(pd.arrays.ArrowStringArray(joined.cast(pa.large_string())))


def _date_series(values: np.ndarray) -> pd.Series:
    """A date32 column (nulls where NaT) that pandas writes to Parquet as a DATE."""
    array = pa.array(np.asarray(values).astype("datetime64[D]"), type=pa.date32(), from_pandas=True)
    return pd.Series(pd.arrays.ArrowExtensionArray(array))


def _as_output(table: pd.DataFrame) -> pd.DataFrame:
    """Dates to date32, text to pandas strings, leaving numbers and booleans alone."""
    out = {}
    table = table.reset_index(drop=True)
    for column in table.columns:
        series = table[column]
        if column in DATE_COLUMNS or series.dtype.kind == "M":
            out[column] = _date_series(series.to_numpy())
        elif series.dtype == object:
            # Arrow-backed strings convert to Parquet without a per-value pass; readers get
            # pandas' ordinary "string" dtype back.
            strings = pa.array(series.to_numpy(), type=pa.large_string(), from_pandas=True)
            out[column] = pd.Series(pd.arrays.ArrowStringArray(strings))
        else:
            out[column] = series
    return pd.DataFrame(out)


def make_frame(
    persons: pd.DataFrame, cfg: dict, ref: np.datetime64, rng: np.random.Generator
) -> pd.DataFrame:
    """The census frame: everyone enumerated, with proxy-answer and keying errors.

    In a ``proxy_household_rate`` share of households a neighbour or relative answered for
    the non-householders: their first names, surnames, dates of birth and sex go missing
    at the ``proxy_missing_*`` rates, and some birth years are misstated. Age is as
    enumerated: from the recorded date of birth, or a proxy estimate when the date is missing
    (and null when no age was given either).
    """
    fcfg = cfg["frame"]
    n = len(persons)
    hh = persons["household_index"].to_numpy()
    n_hh = int(hh.max()) + 1 if n else 0
    proxy_hh = rng.random(n_hh) < float(fcfg["proxy_household_rate"])
    role = persons["role"].to_numpy()
    proxy = proxy_hh[hh] & (role != 0)
    first = persons["first_name"].to_numpy().copy()
    last = persons["last_name"].to_numpy().copy()
    first = errors.apply_typos(first, float(fcfg["typo"]), rng)
    last = errors.apply_typos(last, float(fcfg["typo"]), rng)
    first = errors.apply_nicknames(first, float(fcfg["nickname"]), rng)
    # Proxies misspell names they only heard: an extra typo in first and last names.
    garbled_name = proxy & errors.pick(n, float(fcfg["proxy_garbled_name"]), rng)
    first[garbled_name] = errors.apply_typos(first[garbled_name], 1.0, rng)
    last[garbled_name] = errors.apply_typos(last[garbled_name], 1.0, rng)
    first[proxy & errors.pick(n, float(fcfg["proxy_missing_first_name"]), rng)] = None
    last[proxy & errors.pick(n, float(fcfg["proxy_missing_last_name"]), rng)] = None
    dob = persons["dob"].to_numpy().astype("datetime64[D]")
    dob = errors.swap_day_month(dob, float(fcfg["dob_day_month_swap"]), rng)
    garbled = proxy & errors.pick(n, float(fcfg["proxy_garbled_dob"]), rng)
    shift = rng.integers(1, 4, n) * np.where(rng.random(n) < 0.5, -365, 365)
    dob = np.where(garbled, dob + shift.astype("timedelta64[D]"), dob)
    dob_missing = proxy & errors.pick(n, float(fcfg["proxy_missing_dob"]), rng)
    dob = np.where(dob_missing, np.datetime64("NaT", "D"), dob)
    true_age = persons["age"].to_numpy()
    age = np.where(np.isnat(dob), true_age, _age_on(np.where(np.isnat(dob), ref, dob), ref)).astype(
        float
    )
    # Proxy respondents guess ages of those whose date of birth they do not know.
    guess = np.rint(true_age + rng.normal(0.0, float(fcfg["proxy_age_error_sd"]), n))
    age = np.where(dob_missing, np.maximum(guess, 0), age)
    no_age = dob_missing & errors.pick(n, float(fcfg["proxy_missing_age"]), rng)
    age_out = pd.array(np.where(no_age, 0, age).astype(np.int64), dtype="Int64")
    age_out[no_age] = pd.NA
    sex = np.where(persons["male"].to_numpy(), "M", "F").astype(object)
    sex[proxy & errors.pick(n, float(fcfg["proxy_missing_sex"]), rng)] = None
    return pd.DataFrame(
        {
            "person_id": persons["person_id"].to_numpy(),
            "household_id": persons["household_id"].to_numpy(),
            "block_id": persons["block_id"].to_numpy(),
            "first_name": first,
            "last_name": last,
            "sex": sex,
            "dob": dob,
            "age": age_out,
            "relationship": np.array(ROLE_NAMES, dtype=object)[role],
            "address": persons["address"].to_numpy(),
            "zip": persons["zip"].to_numpy(),
        }
    )


def truth_persons(persons: pd.DataFrame) -> pd.DataFrame:
    """The quarantined truth table (contract columns first, then identifiers)."""
    status = persons["status"].to_numpy()
    return pd.DataFrame(
        {
            "person_id": persons["person_id"].to_numpy(),
            "household_id": persons["household_id"].to_numpy(),
            "block_id": persons["block_id"].to_numpy(),
            "block_group_id": persons["block_group_id"].to_numpy(),
            "tract_id": persons["tract_id"].to_numpy(),
            "county_id": persons["county_id"].to_numpy(),
            "age": persons["age"].to_numpy().astype(np.int64),
            "dob": persons["dob"].to_numpy(),
            "sex": np.where(persons["male"].to_numpy(), "M", "F").astype(object),
            "status": np.array(STATUS_NAMES, dtype=object)[status],
            "citizen": (status == NATIVE) | (status == NATURALIZED),
            "birth_country": persons["birth_country"].to_numpy(),
            "arrival_date": persons["arrival_date"].to_numpy(),
            "lpr_date": persons["lpr_date"].to_numpy(),
            "naturalization_date": persons["naturalization_date"].to_numpy(),
            "protected_1367": persons["protected_1367"].to_numpy(),
            "refugee_asylee": persons["refugee_asylee"].to_numpy(),
            "relationship": np.array(ROLE_NAMES, dtype=object)[persons["role"].to_numpy()],
            "first_name": persons["first_name"].to_numpy(),
            "last_name": persons["last_name"].to_numpy(),
            "birth_surname": persons["birth_surname"].to_numpy(),
            "ssn": persons["ssn"].to_numpy(),
            "itin": persons["itin"].to_numpy(),
            "a_number": persons["a_number"].to_numpy(),
        }
    )


def generate_world(config: dict) -> World:
    """Generate the whole synthetic world from a validated config.

    Every random draw comes from ``stage_rng(config["seed"], "synthetic", <part>)``, one
    stream per part, so the same config gives the same world byte for byte.
    """
    cfg = config["synthetic"]
    seed = int(config["seed"])
    ref = np.datetime64(str(config["reference_date"]), "D")
    started = time.perf_counter()
    table_path = str(Path(config["data_dir"]) / "census_cvap")
    table = load_county_table(config["data_dir"])
    targets = county_targets(
        table, [str(c) for c in cfg["counties"]], float(cfg["scale"]), table_path
    )
    blocks = build_blocks(targets, cfg["geography"], stage_rng(seed, "synthetic", "geography"))
    persons, households, diagnostics = build_population(
        blocks, targets, cfg, ref, stage_rng(seed, "synthetic", "population")
    )
    # A block whose households all started in its neighbour stays empty: keep populated
    # blocks only (unpopulated blocks are not tabulated) and renumber the block index.
    populated = np.zeros(len(blocks), dtype=bool)
    populated[households["block_index"].to_numpy()] = True
    new_index = np.cumsum(populated) - 1
    blocks = blocks[populated].reset_index(drop=True)
    persons["block_index"] = new_index[persons["block_index"].to_numpy()]
    households["block_index"] = new_index[households["block_index"].to_numpy()]
    geography = layout_geography(blocks)
    # Persons in block order, households in order of appearance: ids follow geography.
    persons = persons.sort_values(
        ["block_index", "household_index", "role"], kind="stable"
    ).reset_index(drop=True)
    assign_identities(persons, households, blocks, cfg, stage_rng(seed, "synthetic", "identities"))
    n = len(persons)
    hh_new = pd.factorize(persons["household_index"].to_numpy())[0]
    persons["person_id"] = format_ids("P", np.arange(1, n + 1))
    persons["household_id"] = format_ids("H", hh_new + 1)
    block_index = persons["block_index"].to_numpy()
    for column in ("block_id", "block_group_id", "tract_id", "county_id"):
        persons[column] = blocks[column].to_numpy()[block_index]
    log.info(
        "population: %d persons in %d households, %d blocks (%.1f s)",
        n,
        len(households),
        len(blocks),
        time.perf_counter() - started,
    )

    frame = make_frame(persons, cfg, ref, stage_rng(seed, "synthetic", "frame"))
    makers = {
        "ssa_numident": sources.make_ssa_numident,
        "uscis_naturalizations": sources.make_uscis_naturalizations,
        "uscis_lpr": sources.make_uscis_lpr,
        "cbp_ice": sources.make_cbp_ice,
        "state_passports": sources.make_state_passports,
        "irs_itin": sources.make_irs_itin,
    }
    source_tables: dict[str, pd.DataFrame] = {}
    record_parts = []
    person_ids = pa.array(persons["person_id"].array)
    numident_stats: dict = {}
    source_persons: dict[str, int] = {}
    coverage_by_status: dict[str, dict] = {}
    status_codes = persons["status"].to_numpy()
    household_position = pd.factorize(persons["household_index"].to_numpy())[0]
    for name in SOURCES:
        rng = stage_rng(seed, "synthetic", "source", name)
        if name == "acs":
            table_ = sources.make_acs(
                persons, households, blocks["block_id"].to_numpy(), cfg, ref, rng
            )
            # Weights, replicate weights and allocation come from a stream of their own, so
            # the sample, the answers and every other table are the same as without them.
            table_ = sources.acs_design(
                table_,
                frame,
                float(cfg["sources"]["acs"]["coverage"]),
                list(config["age_groups"]),
                stage_rng(seed, "synthetic", "source", "acs", "design"),
                # Successive differences run over the address frame: every household in
                # geographic order (persons are sorted by block and household).
                household_position[table_["person_index"].to_numpy()],
            )
        else:
            table_ = makers[name](persons, cfg, ref, rng)
        # Shuffle so record order says nothing about persons; ids in shuffled order.
        table_ = table_.iloc[rng.permutation(len(table_))].reset_index(drop=True)
        code = sources.RECORD_CODES[name]
        record_ids = format_ids(f"{code}-", np.arange(1, len(table_) + 1))
        person_index = table_["person_index"].to_numpy()
        record_parts.append(
            pd.DataFrame(
                {
                    "source": pd.Series(name, index=record_ids.index, dtype="string[pyarrow]"),
                    "record_id": record_ids,
                    "person_id": pd.Series(
                        pd.arrays.ArrowStringArray(
                            person_ids.take(pa.array(person_index)).cast(pa.large_string())
                        )
                    ),
                }
            )
        )
        covered = np.unique(person_index)
        source_persons[name] = int(len(covered))
        has_record = np.zeros(len(persons), dtype=bool)
        has_record[covered] = True
        coverage_by_status[name] = {
            status_name: float(has_record[status_codes == code].mean())
            if (status_codes == code).any()
            else None
            for code, status_name in enumerate(STATUS_NAMES)
        }
        if name == "ssa_numident":
            numident_stats = _numident_stats(table_, persons)
        table_ = table_.drop(columns="person_index")
        table_.insert(0, "record_id", record_ids)
        source_tables[name] = _as_output(table_)
    records = pd.concat(record_parts, ignore_index=True)
    parameters = _parameters(
        config, targets, persons, diagnostics, source_tables, blocks, numident_stats, source_persons
    )
    parameters["realized"]["source_coverage_by_status"] = coverage_by_status
    world = World(
        frame=_as_output(frame),
        geography=geography,
        sources=source_tables,
        persons=_as_output(truth_persons(persons)),
        records=records,
        parameters=parameters,
    )
    log.info("world generated in %.1f s", time.perf_counter() - started)
    return world


def _numident_stats(numident: pd.DataFrame, persons: pd.DataFrame) -> dict:
    """Realized staleness of the Numident (from its records before the truth link is dropped)."""
    status = persons["status"].to_numpy()[numident["person_index"].to_numpy()]
    citizenship = pd.Series(numident["citizenship"].to_numpy(), dtype="string")
    naturalized = status == NATURALIZED
    nat_citizenship = citizenship[naturalized]
    has_nat = bool(naturalized.any())
    return {
        "numident_naturalized_marked_noncitizen_share": float(
            (nat_citizenship == "noncitizen").mean()
        )
        if has_nat
        else None,
        "numident_naturalized_missing_citizenship_share": float(nat_citizenship.isna().mean())
        if has_nat
        else None,
        "numident_citizenship_missing_share": float(citizenship.isna().mean()),
    }


def _parameters(
    config: dict,
    targets: pd.DataFrame,
    persons: pd.DataFrame,
    diagnostics: dict,
    source_tables: dict[str, pd.DataFrame],
    blocks: pd.DataFrame,
    numident_stats: dict,
    source_persons: dict[str, int],
) -> dict:
    """Generating rates used and realized shares, for 'estimated vs generating' comparisons."""
    cfg = config["synthetic"]
    status = persons["status"].to_numpy()
    realized = {
        "persons": int(len(persons)),
        "households": int(persons["household_index"].nunique()),
        "blocks": int(len(blocks)),
        "tracts": int(blocks["tract_id"].nunique()),
        "status_shares": {
            name: float((status == code).mean()) for code, name in enumerate(STATUS_NAMES)
        },
        "adult_share": float((persons["age"].to_numpy() >= 18).mean()),
        "protected_1367_share": float(persons["protected_1367"].mean()),
        "refugee_asylee_share": float(persons["refugee_asylee"].mean()),
        **numident_stats,
        "source_records": {name: int(len(t)) for name, t in source_tables.items()},
        "source_persons": source_persons,
        "counties": diagnostics["counties"],
    }
    mixes = {
        str(row.county_id): dict(
            zip(
                STATUS_NAMES,
                county_status_mix(float(row.noncitizen_share), cfg["status"]).tolist(),
                strict=True,
            )
        )
        for row in targets.itertuples()
    }
    return {
        "seed": int(config["seed"]),
        "reference_date": str(config["reference_date"]),
        "synthetic": cfg,
        "county_status_mix": mixes,
        "realized": realized,
    }


def write_world(world: World, run_dir: str | Path) -> dict[str, Path]:
    """Write every world and truth file under ``run_dir`` (atomically); return their paths."""
    run_dir = Path(run_dir)
    paths = {
        "frame": run_dir / "world" / "frame.parquet",
        "geography": run_dir / "world" / "geography.parquet",
        "persons": run_dir / "truth" / "persons.parquet",
        "records": run_dir / "truth" / "records.parquet",
        "parameters": run_dir / "truth" / "parameters.json",
    }
    write_parquet(world.frame, paths["frame"])
    write_parquet(world.geography, paths["geography"])
    for name, table in world.sources.items():
        paths[name] = run_dir / "world" / "sources" / f"{name}.parquet"
        write_parquet(table, paths[name])
    write_parquet(world.persons, paths["persons"])
    write_parquet(world.records, paths["records"])
    write_json(world.parameters, paths["parameters"])
    return paths


def main(argv: list[str] | None = None) -> None:
    """Generate and write the world of a config (``results/{run}`` unless ``--output``)."""
    from pipeline_common.cli import config_of, stage_parser
    from pipeline_common.config import run_dir
    from pipeline_common.logs import setup_logging

    parser = stage_parser("synthetic.world", __doc__.splitlines()[0])
    parser.add_argument(
        "--output", metavar="DIR", default=None, help="run folder (default results/{run})"
    )
    args = parser.parse_args(argv)
    setup_logging()
    config = config_of(args)
    world = generate_world(config)
    out = Path(args.output) if args.output else run_dir(config)
    write_world(world, out)
    log.info("wrote the world to %s", out)


if __name__ == "__main__":
    from pipeline_common.errors import run_main

    run_main(main, "synthetic.world")
