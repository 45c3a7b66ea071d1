"""The linkage stage: policy, standardization, Splink linkage per source, combined outputs.

Order (a PVS-like design): ``ssa_numident`` is linked to the census frame first on name, date
of birth, sex and address; each linked frame person receives the Numident SSN as a protected
identification key (PIK). The other SSN-bearing sources (passports, USCIS records with an SSN)
are then linked with the PIK as one more comparison and blocking key.

Run outside Snakemake (whole stage on an existing world)::

    .venv/bin/python -m linkage.stage [--configfile scenario.yaml ...]
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pandas as pd

from linkage.evidence import evidence_from_links, record_categories
from linkage.link import LinkSettings, best_links, link_tables
from linkage.policy import apply_policy, resolve_policy
from linkage.standardize import standardize_identity
from pipeline_common.errors import InputError, require_columns
from pipeline_common.rng import stage_rng
from pipeline_common.world_schema import read_world_file

log = logging.getLogger(__name__)

PIK_SOURCE = "ssa_numident"
FRAME_COLUMNS = ["person_id", "first_name", "last_name", "sex", "dob"]
LINK_OUTPUT_COLUMNS = [
    "source",
    "record_id",
    "person_id",
    "match_probability",
    "match_weight",
    "link_pass",
    "category",
    "as_of",
]


def link_settings(config: dict, source: str) -> LinkSettings:
    """The :class:`LinkSettings` for ``source``: global ``linkage`` keys, then its overrides."""
    cfg = config.get("linkage", {})
    per_source = cfg.get("sources", {}).get(source, {}) or {}
    defaults = LinkSettings()

    def pick(key: str, fallback):
        value = per_source.get(key)
        if value is None:
            value = cfg.get(key)
        return fallback if value is None else value

    # The seed of u sampling: a stable number per (master seed, source) from the stage stream.
    seed = int(stage_rng(int(config.get("seed", 0)), "linkage", source).integers(0, 2**31 - 1))
    return LinkSettings(
        comparisons=list(pick("comparisons", defaults.comparisons)),
        blocking_rules=list(pick("blocking_rules", defaults.blocking_rules)),
        em_blocking_rules=list(pick("em_blocking_rules", defaults.em_blocking_rules)),
        threshold=float(pick("match_threshold", defaults.threshold)),
        u_max_pairs=float(pick("u_max_pairs", defaults.u_max_pairs)),
        em_max_pairs=pick("em_max_pairs", defaults.em_max_pairs),
        em_max_iterations=int(pick("em_max_iterations", defaults.em_max_iterations)),
        seed=seed,
        threads=int(cfg.get("threads", defaults.threads)),
        memory_limit=cfg.get("duckdb_memory_limit", defaults.memory_limit),
        backend=cfg.get("backend") or defaults.backend,
        spark=dict(cfg.get("spark") or {}),
    )


def standardized_frame(
    frame: pd.DataFrame, config: dict, pik: pd.DataFrame | None = None, file: str = "frame"
) -> pd.DataFrame:
    """The census frame in the linkage schema (no SSN: the census does not collect it), with
    the PIK as ``ssn`` when given."""
    require_columns(frame, FRAME_COLUMNS, file)
    cfg = config.get("linkage", {})
    table = frame.drop(columns=[c for c in ("ssn",) if c in frame.columns])
    std = standardize_identity(
        table,
        "person_id",
        config.get("reference_date", "2020-04-01"),
        bool(cfg.get("accept_synthetic_ssn_9xx", True)),
    )
    invalid = int(std["dob_invalid"].sum())
    if invalid:
        log.warning(
            "%s: %d of %d persons hold impossible dates of birth, nulled before linkage",
            file,
            invalid,
            len(std),
        )
    return attach_pik(std, pik)


def attach_pik(frame_std: pd.DataFrame, pik: pd.DataFrame | None) -> pd.DataFrame:
    """The standardized frame with ``ssn`` = the person's PIK (null without one)."""
    out = frame_std.drop(columns=["ssn"]) if "ssn" in frame_std.columns else frame_std
    if pik is None or not len(pik):
        return out.assign(ssn=pd.Series(pd.NA, index=out.index, dtype="string"))
    keyed = pik[["person_id", "ssn"]].rename(columns={"person_id": "unique_id"})
    keyed = keyed.astype({"unique_id": "string", "ssn": "string"})
    return out.merge(keyed, on="unique_id", how="left")


def count_invalid_values(shared: pd.DataFrame, std: pd.DataFrame, source: str) -> dict[str, int]:
    """Given values that standardization nulled as impossible, counted and logged.

    Parameters
    ----------
    shared
        The records as linkage reads them (after the policy).
    std
        Their standardized form (:func:`linkage.standardize.standardize_identity`), row-aligned.
    source
        Source name for the log.

    Returns
    -------
    dict
        ``dob_invalid`` (impossible dates of birth) and ``ssn_invalid`` (SSNs of an invalid
        pattern), which go into ``linkage/by_source/{source}.json``; each nonzero count is
        also a WARNING in the log. Nothing is dropped or coerced without a count.
    """
    counts = {
        "dob_invalid": int(std["dob_invalid"].sum()),
        "ssn_invalid": (
            int((shared["ssn"].notna().to_numpy() & std["ssn"].isna().to_numpy()).sum())
            if "ssn" in shared.columns
            else 0
        ),
    }
    for what, column in (("dates of birth", "dob_invalid"), ("SSNs", "ssn_invalid")):
        if counts[column]:
            log.warning(
                "%s: %d of %d records hold impossible %s, nulled before linkage (%s in %s)",
                source,
                counts[column],
                len(shared),
                what,
                column,
                f"linkage/by_source/{source}.json",
            )
    return counts


def link_source(
    frame: pd.DataFrame | None,
    records: pd.DataFrame,
    source: str,
    config: dict,
    pik: pd.DataFrame | None = None,
    file: str | None = None,
    frame_std: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, dict]:
    """Link one source to the census frame, policy first.

    Parameters
    ----------
    frame
        ``world/frame.parquet``.
    records
        ``world/sources/{source}.parquet`` as read (population flags included: the policy
        removes withheld records here, before anything else reads them).
    source
        Source name.
    config
        The pipeline config.
    pik
        ``person_id, ssn`` from the Numident linkage, or None.
    frame_std
        The frame already standardized (:func:`standardized_frame` without PIK), to skip
        doing it again for every source; ``frame`` is then not read.

    Returns
    -------
    (links, report)
        ``links``: one row per linked record (``LINK_OUTPUT_COLUMNS``). ``report``: policy
        counts, link counts, settings used, trained parameters and timings.
    """
    file = file or f"world/sources/{source}.parquet"
    started = time.perf_counter()
    policy = resolve_policy(config, source)
    shared, counts = apply_policy(records, policy, file)
    del records  # nothing below may read a withheld record
    cfg = config.get("linkage", {})
    settings = link_settings(config, source)
    source_std = standardize_identity(
        shared,
        "record_id",
        config.get("reference_date", "2020-04-01"),
        bool(cfg.get("accept_synthetic_ssn_9xx", True)),
    )
    use_pik = pik if (cfg.get("pik_from_ssa", True) and source != PIK_SOURCE) else None
    if frame_std is None:
        if frame is None:
            raise ValueError("link_source needs the frame or the standardized frame")
        frame_std = standardized_frame(frame, config, use_pik)
    else:
        frame_std = attach_pik(frame_std, use_pik)
    report: dict = {"source": source, **counts}
    report.update(count_invalid_values(shared, source_std, source))
    if len(source_std) == 0:
        pairs = pd.DataFrame(columns=["left_id", "right_id", "match_weight", "match_probability"])
        info: dict = {"note": "no records shared"}
    else:
        pairs, info = link_tables(frame_std, source_std, settings)
    chosen = best_links(pairs, settings.threshold, source_std)
    categories = record_categories(source, shared)
    links = chosen.rename(columns={"left_id": "person_id", "right_id": "record_id"}).merge(
        categories, on="record_id", how="left"
    )
    links.insert(0, "source", source)
    links = links[LINK_OUTPUT_COLUMNS].sort_values("record_id", kind="stable")
    links = links.reset_index(drop=True)
    report.update(
        {
            "records_linked": len(links),
            "records_linked_as_duplicates": int((links["link_pass"] == 2).sum()),
            "persons_linked": int(links["person_id"].nunique()),
            "link_rate": round(len(links) / len(shared), 4) if len(shared) else None,
            "threshold": settings.threshold,
            "used_pik": use_pik is not None,
            "seconds": round(time.perf_counter() - started, 2),
            **info,
        }
    )
    log.info(
        "%s: %d records in, %d withheld, %d linked (%.1f s)",
        source,
        counts["records_in"],
        counts["withheld_total"],
        len(links),
        report["seconds"],
    )
    return links, report


def pik_from_links(links: pd.DataFrame, numident: pd.DataFrame, config: dict) -> pd.DataFrame:
    """``person_id, ssn``: the Numident SSN of each linked frame person (its best record)."""
    cfg = config.get("linkage", {})
    std = standardize_identity(
        numident[["record_id", "ssn"]] if "ssn" in numident.columns else numident[["record_id"]],
        "record_id",
        config.get("reference_date", "2020-04-01"),
        bool(cfg.get("accept_synthetic_ssn_9xx", True)),
    )[["unique_id", "ssn"]].rename(columns={"unique_id": "record_id"})
    table = links.merge(std, on="record_id", how="inner").dropna(subset=["ssn"])
    table = table.sort_values(
        ["person_id", "match_probability", "record_id"], ascending=[True, False, True]
    )
    pik = table.drop_duplicates("person_id")[["person_id", "ssn"]]
    return pik.reset_index(drop=True)


def combine(
    by_source: list[pd.DataFrame], reports: list[dict]
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Contract outputs from the per-source results.

    Returns
    -------
    (links, evidence, withheld)
        ``links``: ``source, record_id, person_id, match_probability`` (+ ``match_weight,
        link_pass``); ``evidence``: one row per person and source (see
        :func:`linkage.evidence.evidence_from_links`); ``withheld``: ``{source: {reason: n,
        ...}, "totals": {...}}``.
    """
    all_links = (
        pd.concat(by_source, ignore_index=True)
        if by_source
        else pd.DataFrame(columns=LINK_OUTPUT_COLUMNS)
    )
    duplicated = all_links.duplicated(["source", "record_id"])
    if duplicated.any():
        raise InputError(
            "linkage/by_source",
            "record_id",
            f"{int(duplicated.sum())} records linked twice",
            "rerun the linkage rules",
        )
    links = all_links[
        ["source", "record_id", "person_id", "match_probability", "match_weight", "link_pass"]
    ].sort_values(["source", "record_id"], kind="stable")
    evidence = evidence_from_links(all_links)
    withheld: dict = {}
    totals = {"records_in": 0, "withheld": 0, "records_shared": 0, "records_linked": 0}
    by_reason: dict[str, int] = {}
    nulled: dict[str, int] = {}
    for report in sorted(reports, key=lambda r: r["source"]):
        entry = dict(report["withheld"])
        entry.update(
            {
                "total_withheld": report["withheld_total"],
                "records_in": report["records_in"],
                "records_shared": report["records_shared"],
                "records_linked": report["records_linked"],
                "persons_linked": report["persons_linked"],
                "fields_dropped": report["fields_dropped"],
                "authority": report["authority"],
                "policy_origin": report["policy_origin"],
                "notes": report["notes"],
                # Given values linkage nulled as impossible (kept as records, never dropped).
                "values_nulled": {
                    key: int(report.get(key, 0)) for key in ("dob_invalid", "ssn_invalid")
                },
            }
        )
        withheld[report["source"]] = entry
        totals["records_in"] += report["records_in"]
        totals["withheld"] += report["withheld_total"]
        totals["records_shared"] += report["records_shared"]
        totals["records_linked"] += report["records_linked"]
        for reason, n in report["withheld"].items():
            by_reason[reason] = by_reason.get(reason, 0) + n
        for key, n in entry["values_nulled"].items():
            nulled[key] = nulled.get(key, 0) + n
    totals["withheld_by_reason"] = by_reason
    totals["values_nulled"] = nulled
    withheld["totals"] = totals
    return links.reset_index(drop=True), evidence, withheld


def run_stage(config: dict, results: Path, sources: list[str]) -> dict:
    """Run the whole stage on ``results/world`` (outside Snakemake); return timings."""
    from pipeline_common.io import write_json, write_parquet

    timings = {}
    reference = config.get("reference_date")
    frame = read_world_file(results / "world" / "frame.parquet", "frame", reference)
    frame_std = standardized_frame(frame, config)
    by_source, reports = [], []
    pik = None
    ordered = [PIK_SOURCE, *[s for s in sources if s != PIK_SOURCE]]
    for source in ordered:
        path = results / "world" / "sources" / f"{source}.parquet"
        if not path.exists():
            continue
        records = read_world_file(path, source, reference)
        links, report = link_source(frame, records, source, config, pik, str(path), frame_std)
        if source == PIK_SOURCE:
            pik = pik_from_links(links, records, config)
        by_source.append(links)
        reports.append(report)
        timings[source] = report["seconds"]
    links, evidence, withheld = combine(by_source, reports)
    out = results / "linkage"
    write_parquet(links, out / "links.parquet")
    write_parquet(evidence, out / "evidence.parquet")
    write_json(withheld, out / "withheld.json")
    return timings


def main(argv: list[str] | None = None) -> None:
    """``python -m linkage.stage [--configfile scenario.yaml ...]``: the stage on ``results/{run}``."""
    from pipeline_common.cli import config_of, stage_parser
    from pipeline_common.config import run_dir
    from pipeline_common.logs import setup_logging

    args = stage_parser("linkage.stage", __doc__.splitlines()[0]).parse_args(argv)
    setup_logging()
    config = config_of(args)
    from linkage.policy import DEFAULT_PERMITTED_FIELDS

    timings = run_stage(config, run_dir(config), list(DEFAULT_PERMITTED_FIELDS))
    log.info("seconds per source: %s", timings)


if __name__ == "__main__":
    from pipeline_common.errors import run_main

    run_main(main, "linkage.stage")
