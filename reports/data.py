"""Load a run directory (``results/{run}``) into the plain data the report is drawn from.

Every reader here is tolerant of *missing optional* files (the report then says in words what
was not available) but strict about *malformed* files: a file that exists and lacks a required
column raises :class:`pipeline_common.errors.InputError` naming the file, the field and the fix.
Person-level inputs (``linkage/links.parquet``) are reduced to distributions on load; no row
that identifies a person is kept in the context.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline_common.errors import InputError, require_columns
from pipeline_common.sources import SOURCES

log = logging.getLogger(__name__)

QUANTITIES = ("citizens", "noncitizens", "cvap")
METHODS = ("model", "record_rule", "census_style")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(
            str(path), "(file)", f"not valid JSON ({exc})", "rerun the stage that writes it"
        ) from None


def _optional_json(path: Path, missing: list[str]) -> Any | None:
    if path.exists():
        return _read_json(path)
    missing.append(str(path))
    return None


def _optional_parquet(
    path: Path, missing: list[str], columns: Iterable[str] | None = None
) -> pd.DataFrame | None:
    if not path.exists():
        missing.append(str(path))
        return None
    frame = pd.read_parquet(path, columns=list(columns) if columns else None)
    return frame


def _require_file(path: Path) -> Path:
    if not path.exists():
        raise InputError(
            str(path),
            "(file)",
            "required input of the report is missing",
            "build it first, e.g. `snakemake --cores 2 <path>`",
        )
    return path


def numeric(value: Any) -> float | None:
    """``value`` as a float if it is a finite number, else None."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) else None


def first_key(mapping: dict | None, *names: str, default: Any = None) -> Any:
    """The value of the first of ``names`` present in ``mapping`` (upstream naming varies)."""
    if not isinstance(mapping, dict):
        return default
    for name in names:
        if name in mapping and mapping[name] is not None:
            return mapping[name]
    return default


# ---------------------------------------------------------------- published tables


def read_published_blocks(published_dir: Path) -> pd.DataFrame:
    """``published/blocks.csv`` with ids as text and the contract's columns checked."""
    path = _require_file(published_dir / "blocks.csv")
    blocks = pd.read_csv(
        path, dtype={"block_id": str, "tract_id": str, "county_id": str, "reliability": str}
    )
    required = ["block_id", "tract_id", "county_id", "population"]
    required += [f"{q}_{s}" for q in QUANTITIES for s in ("est", "lo90", "hi90")]
    require_columns(blocks, required, str(path))
    return blocks


def aggregate_draws(
    draws: pd.DataFrame, blocks: pd.DataFrame, level: str, interval: float = 0.90
) -> pd.DataFrame:
    """Sum block draws to ``level`` (``tract_id``/``county_id``) and summarise each draw total.

    Summing draws (not interval ends) keeps the right uncertainty for any set of blocks. The
    estimate is the sum of the blocks' published estimates when ``blocks`` has them (as the
    privacy stage publishes tracts and counties), and the interval is widened to contain it.
    """
    keys = blocks[["block_id", level]].drop_duplicates()
    merged = draws.merge(keys, on="block_id", how="inner")
    totals = merged.groupby([level, "draw"], sort=True)[list(QUANTITIES)].sum()
    lo, hi = (1 - interval) / 2, 1 - (1 - interval) / 2
    grouped = totals.groupby(level)
    out = pd.DataFrame(index=grouped.size().index)
    for quantity in QUANTITIES:
        if f"{quantity}_est" in blocks:
            # As published: the estimate of an area is the sum of its blocks' estimates.
            estimate = blocks.groupby(level)[f"{quantity}_est"].sum()
        else:
            estimate = grouped[quantity].median()
        out[f"{quantity}_est"] = estimate
        out[f"{quantity}_lo90"] = np.minimum(grouped[quantity].quantile(lo), estimate)
        out[f"{quantity}_hi90"] = np.maximum(grouped[quantity].quantile(hi), estimate)
    out["population"] = blocks.groupby(level)["population"].sum()
    out["blocks"] = blocks.groupby(level)["block_id"].nunique()
    return out.reset_index()


def read_published_draws(published_dir: Path) -> pd.DataFrame | None:
    """``published/draws.parquet`` (block draws) if published, else None."""
    path = published_dir / "draws.parquet"
    if not path.exists():
        return None
    draws = pd.read_parquet(path)
    require_columns(draws, ["draw", "block_id", *QUANTITIES], str(path))
    draws["block_id"] = draws["block_id"].astype(str)
    return draws


def published_area_table(
    published_dir: Path,
    name: str,
    level: str,
    blocks: pd.DataFrame,
    draws: pd.DataFrame | None,
    notes: list[str],
) -> pd.DataFrame:
    """Tract or county table: the published CSV when present, else summed from block draws.

    When neither exists the interval columns cannot be known; the block estimates are summed
    and the intervals left empty (the report says so).
    """
    path = published_dir / f"{name}.csv"
    if path.exists():
        table = pd.read_csv(path, dtype={"tract_id": str, "county_id": str, "block_id": str})
        require_columns(table, [level, "citizens_est", "noncitizens_est"], str(path))
        return table
    if draws is not None:
        notes.append(
            f"published/{name}.csv is absent; the {name} table's 90% intervals were computed "
            "here by summing the published block draws (published/draws.parquet)."
        )
        return aggregate_draws(draws, blocks, level)
    notes.append(
        f"published/{name}.csv and published/draws.parquet are both absent: {name} totals are "
        "sums of block estimates, without intervals."
    )
    sums = blocks.groupby(level)[["population", *(f"{q}_est" for q in QUANTITIES)]].sum()
    return sums.reset_index()


def overall_totals(blocks: pd.DataFrame, draws: pd.DataFrame | None) -> dict | None:
    """Run-wide totals with 90% intervals from summed draws (None without draws)."""
    if draws is None:
        return None
    everything = blocks.assign(all="all")
    return aggregate_draws(draws, everything, "all").iloc[0].to_dict()


# ---------------------------------------------------------------- other stages


def source_record_counts(sources_dir: Path, missing: list[str]) -> dict[str, int]:
    """Records held by each source (row counts read from Parquet metadata, not the rows)."""
    import pyarrow.parquet as pq

    counts = {}
    for source in SOURCES:
        path = sources_dir / f"{source}.parquet"
        if path.exists():
            counts[source] = int(pq.ParquetFile(path).metadata.num_rows)
        else:
            missing.append(str(path))
    return counts


def link_summary(links: pd.DataFrame | None) -> tuple[dict[str, int], pd.DataFrame | None]:
    """Links per source and the match probabilities by source (no identifiers kept)."""
    if links is None:
        return {}, None
    require_columns(links, ["source", "match_probability"], "linkage/links.parquet")
    probabilities = links[["source", "match_probability"]].copy()
    probabilities["source"] = probabilities["source"].astype(str)
    counts = probabilities.groupby("source").size().astype(int).to_dict()
    return counts, probabilities


def read_benchmarks(bench_dir: Path | None) -> pd.DataFrame | None:
    """Run time per rule from Snakemake benchmark files (``s`` column), one row per file.

    The rule's name is the file's path under ``bench_dir`` without ``.tsv`` (wildcards kept).
    """
    if bench_dir is None or not Path(bench_dir).is_dir():
        return None
    rows = []
    for path in sorted(Path(bench_dir).rglob("*.tsv")):
        try:
            table = pd.read_csv(path, sep="\t")
        except (pd.errors.EmptyDataError, pd.errors.ParserError):
            continue
        if "s" not in table.columns or table.empty:
            continue
        name = str(path.relative_to(bench_dir).with_suffix(""))
        stage = name.split("/", 1)[0] if "/" in name else name.split("_", 1)[0]
        if stage == "report":
            continue  # the report's own benchmark is from a previous run of this rule
        row = {"stage": stage, "step": name, "seconds": float(table["s"].mean())}
        if "max_rss" in table.columns:
            row["max_rss_mb"] = numeric(table["max_rss"].mean())
        rows.append(row)
    if not rows:
        return None
    table = pd.DataFrame(rows)
    stage_total = table.groupby("stage")["seconds"].transform("sum")
    return (
        table.assign(stage_seconds=stage_total)
        .sort_values(["stage_seconds", "seconds"], ascending=False, ignore_index=True)
        .drop(columns="stage_seconds")
    )


THETA_ONLY = "theta_"


def exact_fit_block_means(path: Path) -> pd.DataFrame | None:
    """Posterior mean per block of the exact fit (``model/block_draws.parquet``), or None.

    Only used to show how far the privacy noise moves each block's published estimate.
    """
    if not path.exists():
        return None
    draws = pd.read_parquet(path, columns=["block_id", *QUANTITIES])
    draws["block_id"] = draws["block_id"].astype(str)
    return draws.groupby("block_id", sort=True)[list(QUANTITIES)].mean().reset_index()


def open_posterior(path: Path, missing: list[str], only_prefix: str | None = None):
    """The posterior DataTree (``xr.open_datatree`` with h5netcdf), or None if absent.

    With ``only_prefix`` only the posterior variables whose names start with it are loaded
    (the privacy fit is read for its source behaviour only, not its block effects).
    """
    if not path.exists():
        missing.append(str(path))
        return None
    import xarray as xr

    try:
        tree = xr.open_datatree(path, engine="h5netcdf")
        if only_prefix is not None and "posterior" in tree.children:
            ds = tree["posterior"].to_dataset()
            keep = [name for name in ds.data_vars if str(name).startswith(only_prefix)]
            return xr.DataTree.from_dict({"posterior": ds[keep].load()})
        return tree.load()
    except Exception as exc:
        raise InputError(
            str(path), "(file)", f"cannot be read as a netCDF DataTree ({exc})", "rerun the model"
        ) from None


def load_run(
    run_dir: str | Path,
    config: dict,
    bench_dir: str | Path | None = None,
    sensitivity_summary: str | Path | None = None,
    calibration_study: str | Path | None = None,
) -> dict[str, Any]:
    """Everything the report shows, read from ``run_dir`` (= ``results/{run}``).

    Parameters
    ----------
    run_dir
        The run's results folder.
    config
        The validated pipeline config (the source policies live in it).
    bench_dir
        ``benchmarks/{run}``: Snakemake benchmark files of the run's rules (optional).
    sensitivity_summary
        ``results/sensitivity/summary_report.csv`` if the sensitivity analysis ran (optional).
    calibration_study
        ``results/calibration``: the calibration study's folders (one per scenario and
        budget, each with a ``calibration.json``), shown when present (optional).

    Returns
    -------
    dict
        Keys named after the inputs; ``missing`` lists optional files that were absent and
        ``notes`` says how the report worked around them.
    """
    run_dir = Path(run_dir)
    missing: list[str] = []
    notes: list[str] = []
    published = run_dir / "published"

    blocks = read_published_blocks(published)
    draws = read_published_draws(published)
    geography_path = _require_file(run_dir / "world" / "geography.parquet")
    geography = pd.read_parquet(geography_path)
    require_columns(geography, ["block_id", "tract_id", "county_id", "x", "y"], str(geography_path))
    geography["block_id"] = geography["block_id"].astype(str)

    links = _optional_parquet(
        run_dir / "linkage" / "links.parquet", missing, ["source", "match_probability"]
    )
    link_counts, match_probabilities = link_summary(links)

    sensitivity = None
    if sensitivity_summary is not None and Path(sensitivity_summary).exists():
        sensitivity = pd.read_csv(sensitivity_summary)

    # Two fits of the same model: model/ on the exact cells (evaluated against the baselines,
    # never published) and privacy/model/ on the noisy measurements (published/ comes from it).
    # Under privacy mode none the second is not made, and its absence is not a gap.
    privacy_mode = str((config.get("privacy") or {}).get("mode", "unknown")).lower()
    private_fit = run_dir / "privacy" / "model"
    privacy_diagnostics = privacy_posterior = None
    if privacy_mode != "none":
        privacy_diagnostics = _optional_json(private_fit / "diagnostics.json", missing)
        if (private_fit / "posterior.nc").exists():
            # The whole posterior: its diagnostics, rank plots and predictive check are drawn
            # like the exact fit's (the published estimates come from this fit).
            privacy_posterior = open_posterior(private_fit / "posterior.nc", missing)

    from reports.headline import load_studies

    context = {
        "run_dir": str(run_dir),
        "config": config,
        "blocks": blocks,
        "draws": draws,
        "geography": geography,
        "tracts": published_area_table(published, "tracts", "tract_id", blocks, draws, notes),
        "counties": published_area_table(published, "counties", "county_id", blocks, draws, notes),
        "overall": overall_totals(blocks, draws),
        "metadata": _optional_json(published / "metadata.json", missing) or {},
        "source_records": source_record_counts(run_dir / "world" / "sources", missing),
        "link_counts": link_counts,
        "match_probabilities": match_probabilities,
        "withheld": _optional_json(run_dir / "linkage" / "withheld.json", missing),
        "linkage_eval": _optional_json(run_dir / "evaluation" / "linkage.json", missing),
        "diagnostics": _optional_json(run_dir / "model" / "diagnostics.json", missing),
        "posterior": open_posterior(run_dir / "model" / "posterior.nc", missing),
        "privacy_mode": privacy_mode,
        "privacy_diagnostics": privacy_diagnostics,
        "privacy_posterior": privacy_posterior,
        "parameters": _optional_json(run_dir / "truth" / "parameters.json", missing),
        "ledger": _optional_json(run_dir / "privacy" / "ledger.json", missing),
        "estimates_eval": _optional_json(run_dir / "evaluation" / "estimates.json", missing),
        "published_eval": _optional_json(run_dir / "evaluation" / "published.json", missing),
        "calibration_eval": _optional_json(run_dir / "evaluation" / "calibration.json", missing),
        "comparison_eval": _optional_json(run_dir / "evaluation" / "comparison.json", missing),
        "benchmarks": read_benchmarks(Path(bench_dir) if bench_dir else None),
        "sensitivity": sensitivity,
        "sensitivity_path": str(sensitivity_summary) if sensitivity is not None else None,
        "calibration_studies": load_studies(calibration_study),
        "calibration_study_root": str(calibration_study) if calibration_study else None,
        "missing": missing,
        "notes": notes,
    }
    from reports.ppc import exact_fit_ppc, privacy_fit_ppc

    context["exact_blocks"] = exact_fit_block_means(run_dir / "model" / "block_draws.parquet")
    from reports.calibration import run_calibration

    try:
        context["calibration"] = run_calibration(run_dir, int(config.get("seed", 0)))
    except Exception as exc:  # optional: the 90% coverage from the evaluation is still shown
        log.warning("calibration curve not computed: %s", exc)
        notes.append(f"The multi-level calibration curve could not be computed: {exc}")
        context["calibration"] = None
    try:
        context["ppc"] = exact_fit_ppc(run_dir, config, context["posterior"])
    except Exception as exc:  # optional check: the report says why it is missing, never fails
        log.warning("posterior predictive check not computed: %s", exc)
        notes.append(f"The posterior predictive check could not be computed: {exc}")
        context["ppc"] = None
    try:
        context["privacy_ppc"] = privacy_fit_ppc(run_dir, config, privacy_posterior)
    except Exception as exc:  # optional check, as above
        log.warning("posterior predictive check of the privacy fit not computed: %s", exc)
        notes.append(f"The privacy fit's posterior predictive check could not be computed: {exc}")
        context["privacy_ppc"] = None
    for path in missing:
        log.warning("report input not found (the report says so): %s", path)
    return context
