"""Entry points of the model stage (called by the thin Snakemake scripts and by ``__main__``).

``python -m models.stage [scenario.yaml ...]`` runs fit, prediction, baselines and evaluation
on ``results/{run}`` outside Snakemake (tabulation: ``python -m models.tabulate``).
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from models.latent_class import (
    build_model,
    count_free_parameters,
    diagnostics,
    modal_reference_start,
    sample,
)
from models.pipeline import build_problem, predict_blocks, source_behaviour, top_parameters
from pipeline_common.ages import age_group_labels
from pipeline_common.io import atomic_path, write_json, write_parquet
from pipeline_common.rng import stage_rng

log = logging.getLogger(__name__)


def _problem(measurements_path, public_counts_path, patterns_path, config):
    return build_problem(
        pd.read_parquet(measurements_path),
        pd.read_parquet(public_counts_path),
        pd.read_parquet(patterns_path),
        config["model"],
        age_group_labels(config["age_groups"]),
    )


def write_datatree(tree, path) -> None:
    """Write a PyMC DataTree to netCDF (h5netcdf) atomically; drops object-typed stats."""
    for node in tree.subtree:
        ds = node.to_dataset()
        drop = [v for v in ds.data_vars if ds[v].dtype == object]
        if drop:
            node.dataset = ds.drop_vars(drop)
    with atomic_path(path) as tmp:
        tree.to_netcdf(tmp, engine="h5netcdf")


def use_private_compile_cache() -> None:
    """Give this process (and the samplers' child processes) its own empty PyTensor cache.

    The end-to-end determinism test failed in the full suite (same seed, different draws) while
    two workflow runs shared ``~/.pytensor``. A private cache per fit makes every fit start from
    the same, empty, state. With PyMC's NUTS the sampler's warm-up run
    (:func:`models.latent_class.sample`) then fills it before the chain processes start, which is
    still needed (without it even the exact fit's draws differed); nutpie compiles once, in this
    process, and needs none. It costs a cold compile per fit (numba: 2-3 minutes per tiny fit).
    A cache shared by a working directory's fits was tried and failed the determinism test.
    Must run before PyTensor is imported; afterwards it only logs that it cannot apply.
    """
    if "pytensor" in sys.modules:
        log.warning("PyTensor already imported: the shared compile cache is used")
        return
    # base_compiledir, not compiledir: PyTensor 3's default linker is numba, whose cache lives
    # in base_compiledir/numba (a private compiledir alone left it shared, and the end-to-end
    # determinism test still failed when two workflow runs shared it).
    use_private_pytensor_dirs("base_compiledir", "generated_src_dir")
    # A fresh cache logs every compiler probe at INFO; keep the fit log readable.
    logging.getLogger("pytensor").setLevel(logging.WARNING)


def use_private_pytensor_dirs(*flags: str) -> None:
    """Point each PyTensor directory flag in ``flags`` at a private directory removed at exit.

    Appended to ``PYTENSOR_FLAGS``, so it must run before PyTensor is imported.
    ``generated_src_dir`` matters on its own: without it the numba linker leaves one source file
    per compiled function in the system temporary directory (110k files after a day of fits).
    """
    directory = tempfile.mkdtemp(prefix="pytensor-")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    private = [f"{flag}={directory}/{flag}" for flag in flags]
    os.environ["PYTENSOR_FLAGS"] = ",".join(
        filter(None, [os.environ.get("PYTENSOR_FLAGS", ""), *private])
    )


def fit_stage(
    measurements_path, public_counts_path, patterns_path, config, posterior_path, diagnostics_path
) -> dict:
    """Fit the model; write the posterior and the diagnostics; return the diagnostics."""
    use_private_compile_cache()
    mc = config["model"]
    start = time.perf_counter()
    problem, _ = _problem(measurements_path, public_counts_path, patterns_path, config)
    initvals = modal_reference_start(problem)
    model = build_model(problem)
    seed = int(stage_rng(config["seed"], "model", "sample").integers(2**31))
    idata, seconds = sample(
        model,
        sampler=mc["sampler"],
        draws=mc["draws"],
        tune=mc["tune"],
        chains=mc["chains"],
        target_accept=mc["target_accept"],
        seed=seed,
        adaptation=mc["adaptation"],
        initvals=initvals,
    )
    diag = diagnostics(idata)
    top = diagnostics(idata, top_parameters(problem))
    stats = idata["sample_stats"]
    m = pd.read_parquet(measurements_path, columns=["table", "geo_level", "pattern_level", "sigma"])
    tables = (
        m.groupby("table")
        .agg(
            geo_level=("geo_level", "first"),
            pattern_level=("pattern_level", "first"),
            rows=("sigma", "size"),
            sigma=("sigma", "max"),
        )
        .reset_index()
        .to_dict(orient="records")
    )
    diag.update(
        {
            "sampler": mc["sampler"],
            "sampling_seconds": seconds,
            "fit_seconds": time.perf_counter() - start,
            "chains": mc["chains"],
            "draws": mc["draws"],
            "tune": mc["tune"],
            "adaptation": mc["adaptation"] if mc["sampler"] == "nutpie" else None,
            "centered_levels": list(problem.centered_levels),
            "n_cells": len(problem.cell_count),
            "n_groups": problem.n_groups,
            "n_patterns": problem.n_patterns,
            "n_params": count_free_parameters(model),
            "n_aggregate_rows": int(sum(len(a.value) for a in problem.aggregates)),
            "measurement_tables": tables,
            "exact": bool((m["sigma"] <= 0).all()),
            "top_parameters": {
                **top,
                "names": top_parameters(problem),
                "min_ess_bulk_per_second": top["min_ess_bulk"] / seconds,
            },
            "mean_tree_steps": float(stats["n_steps"].mean())
            if "n_steps" in stats
            else float(stats["tree_size"].mean())
            if "tree_size" in stats
            else None,
            "classes": problem.class_names,
            "source_behaviour": source_behaviour(problem, idata),
        }
    )
    log.info(
        "fit: max R-hat %.3f, min bulk ESS %.0f, min tail ESS %.0f, %d divergences, %.1f s",
        diag["max_rhat"],
        diag["min_ess_bulk"],
        diag["min_ess_tail"],
        diag["divergences"],
        seconds,
    )
    write_datatree(idata, posterior_path)
    write_json(diag, diagnostics_path)
    return diag


def predict_stage(
    measurements_path, public_counts_path, patterns_path, posterior_path, config, output_path
) -> pd.DataFrame:
    """Posterior predictive block counts from a saved posterior."""
    import xarray as xr

    problem, lookup = _problem(measurements_path, public_counts_path, patterns_path, config)
    start = time.perf_counter()
    with xr.open_datatree(posterior_path, engine="h5netcdf") as tree:
        tree = tree.load()
    draws = predict_blocks(
        problem,
        lookup,
        tree,
        stage_rng(config["seed"], "model", "predict"),
        n_draws=config["model"]["predict_draws"] or None,
    )
    log.info("predicted %d block draws in %.1f s", len(draws), time.perf_counter() - start)
    write_parquet(draws, output_path)
    return draws


def baseline_stage(
    method, evidence_path, frame_path, geography_path, config, cvap_table, output_path
) -> pd.DataFrame:
    """One baseline's block draws."""
    from models import baselines

    evidence = pd.read_parquet(evidence_path)
    frame = pd.read_parquet(frame_path)
    geography = pd.read_parquet(geography_path)
    rng = stage_rng(config["seed"], "model", "baseline", method)
    if method == "record_rule":
        draws = baselines.record_rule(
            evidence, frame, geography, config, rng, Path(cvap_table) if cvap_table else None
        )
    elif method == "census_style":
        draws = baselines.census_style(evidence, frame, geography, config, rng)
    else:
        raise ValueError(f"unknown baseline {method!r}")
    write_parquet(draws, output_path)
    return draws


def evaluate_stage(
    method_paths: dict, truth_path, frame_path, evidence_path, config, output_path
) -> dict:
    """``evaluation/estimates.json`` (the only reader of truth in this stage)."""
    from models.evaluate import evaluate

    doc = evaluate(
        {name: pd.read_parquet(path) for name, path in method_paths.items()},
        pd.read_parquet(truth_path),
        pd.read_parquet(frame_path, columns=["person_id", "block_id"]),
        pd.read_parquet(evidence_path),
        config["model"]["high_confidence_threshold"],
        stage_rng(config["seed"], "model", "evaluate"),
    )
    write_json(doc, output_path)
    return doc


def _main(argv: list[str] | None = None) -> None:  # pragma: no cover - manual entry point
    import argparse

    from pipeline_common.config import load_config
    from pipeline_common.logs import setup_logging

    parser = argparse.ArgumentParser(description="Run the model stage on results/{run}.")
    parser.add_argument("scenario", nargs="*")
    args = parser.parse_args(argv)
    setup_logging()
    cfg = load_config(*args.scenario)
    root = Path("results") / cfg["run"]
    inputs = (
        root / "privacy/measurements.parquet",
        root / "privacy/public_counts.parquet",
        root / "model/patterns.parquet",
    )
    fit_stage(*inputs, cfg, root / "model/posterior.nc", root / "model/diagnostics.json")
    predict_stage(*inputs, root / "model/posterior.nc", cfg, root / "model/block_draws.parquet")
    np.seterr(all="ignore")


if __name__ == "__main__":  # pragma: no cover
    _main()
