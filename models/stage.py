"""Entry points of the model stage (called by the thin Snakemake scripts and by ``__main__``).

``python -m models.stage [--configfile scenario.yaml ...]`` runs fit, prediction, baselines and evaluation
on ``results/{run}`` outside Snakemake (tabulation: ``python -m models.tabulate``).
"""

from __future__ import annotations

import atexit
import logging
import math
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
    compile_nutpie,
    count_free_parameters,
    diagnostics,
    log_and_echo,
    modal_reference_start,
    sample,
)
from models.pipeline import build_problem, predict_blocks, source_behaviour, top_parameters
from pipeline_common.ages import age_group_labels
from pipeline_common.convergence import (
    ConvergenceError,
    convergence_failures,
    convergence_settings,
    failure_message,
    failure_sentence,
)
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


# A retry multiplies the draws by ess_min / (smallest ESS), within these bounds (ESS grows about
# linearly with draws once the chains mix; R-hat alone missing gets the lower bound).
DRAWS_FACTOR_MIN = 2
DRAWS_FACTOR_MAX = 4
TARGET_ACCEPT_MAX = 0.99


def attempt_seed(seed: int, attempt: int) -> int:
    """The sampler seed of ``attempt`` (1-based): the first keeps the stage's historical seed."""
    names = ("model", "sample") if attempt == 1 else ("model", "sample", f"attempt-{attempt}")
    return int(stage_rng(seed, *names).integers(2**31))


def next_attempt(previous: dict, failed: dict, targets: dict) -> dict:
    """``draws``, ``tune``, ``target_accept`` of the attempt after ``previous`` missed a target.

    ``failed`` is the previous attempt's diagnostics. R-hat or ESS missed: more draws (factor
    ``ess_min / min ESS``, between 2 and 4) and twice the tuning (a better-adapted mass matrix
    and step size is what most often fixes disagreeing chains). Divergences: target acceptance
    halfway to 1 (0.8 -> 0.9 -> 0.95, smaller steps) and twice the tuning.
    """
    draws, tune = int(previous["draws"]), int(previous["tune"])
    target_accept = float(previous["target_accept"])
    failures = convergence_failures(failed, targets)
    mixing = [f for f in failures if "R-hat" in f or "ESS" in f]
    diverged = [f for f in failures if "divergences" in f]
    if mixing:
        ess = [
            float(failed[k])
            for k in ("min_ess_bulk", "min_ess_tail")
            if failed.get(k) is not None and math.isfinite(float(failed[k])) and failed[k] > 0
        ]
        factor = math.ceil(float(targets["ess_min"]) / min(ess)) if ess else DRAWS_FACTOR_MIN
        draws *= min(DRAWS_FACTOR_MAX, max(DRAWS_FACTOR_MIN, factor))
    if diverged:
        target_accept = min(TARGET_ACCEPT_MAX, round(1 - (1 - target_accept) / 2, 6))
    return {"draws": draws, "tune": tune * 2, "target_accept": target_accept}


def _finite(value):
    value = float(value)
    return value if math.isfinite(value) else None


def sample_until_converged(
    model, mc: dict, seed: int, initvals: dict | None, fit: str = "fit"
) -> tuple[object, list[dict], float]:
    """Sample ``model`` until its diagnostics meet ``mc["convergence"]`` or attempts run out.

    Returns ``(idata, attempts, compile_seconds)``: the posterior of the last attempt (the
    first that met every target, or the last one tried), one record per attempt (``draws``,
    ``tune``, ``target_accept``, ``seed``, ``max_rhat``, ``min_ess_bulk``, ``min_ess_tail``,
    ``divergences``, ``seconds``, ``failures``) and the seconds nutpie spent compiling.

    The model is compiled once (nutpie) and sampled again from scratch on a miss (nutpie cannot
    extend a finished chain); each attempt's seed is :func:`attempt_seed`, so the same config
    and seed give the same attempts and the same draws.
    """
    settings = convergence_settings({"model": mc})
    targets = {key: settings[key] for key in ("rhat_max", "ess_min", "max_divergences")}
    compiled, compile_seconds = None, 0.0
    if mc["sampler"] == "nutpie":
        log_and_echo(
            f"{fit}: compiling the model for nutpie (numba, a fresh cache: about 2 minutes cold, "
            "longer on a busy machine); no sampler progress is shown until it is done"
        )
        start = time.perf_counter()
        compiled = compile_nutpie(model, initvals)
        compile_seconds = time.perf_counter() - start
        log_and_echo(f"{fit}: nutpie compiled the model in {compile_seconds:.1f} s")
    plan = {"draws": mc["draws"], "tune": mc["tune"], "target_accept": mc["target_accept"]}
    attempts: list[dict] = []
    for attempt in range(1, int(settings["max_attempts"]) + 1):
        attempt_seed_value = attempt_seed(seed, attempt)
        idata, seconds = sample(
            model,
            sampler=mc["sampler"],
            draws=plan["draws"],
            tune=plan["tune"],
            chains=mc["chains"],
            target_accept=plan["target_accept"],
            seed=attempt_seed_value,
            adaptation=mc["adaptation"],
            initvals=initvals,
            # PyMC's NUTS: the first attempt fills the compile cache in a child process; later
            # attempts find it warm (the same in every run, so the draws stay reproducible).
            warm_up=attempt == 1,
            compiled=compiled,
            # nutpie: draws done, divergences, elapsed and time left, about every 10 s.
            progress_label=f"{fit}, attempt {attempt}/{int(settings['max_attempts'])}",
        )
        diag = diagnostics(idata)
        failures = convergence_failures(diag, targets)
        attempts.append(
            {
                "attempt": attempt,
                **plan,
                "seed": attempt_seed_value,
                "max_rhat": _finite(diag["max_rhat"]),
                "min_ess_bulk": _finite(diag["min_ess_bulk"]),
                "min_ess_tail": _finite(diag["min_ess_tail"]),
                "divergences": int(diag["divergences"]),
                "seconds": seconds,
                "failures": failures,
            }
        )
        log.info(
            "%s, attempt %d/%d (%d draws, %d tuning, target_accept %.3g, seed %d): max R-hat "
            "%.4f, min bulk ESS %.0f, min tail ESS %.0f, %d divergences, %.1f s: %s",
            fit,
            attempt,
            settings["max_attempts"],
            plan["draws"],
            plan["tune"],
            plan["target_accept"],
            attempt_seed_value,
            diag["max_rhat"],
            diag["min_ess_bulk"],
            diag["min_ess_tail"],
            diag["divergences"],
            seconds,
            "; ".join(failures) if failures else "targets met",
        )
        if not failures:
            break
        if attempt < settings["max_attempts"]:
            plan = next_attempt(plan, diag, targets)
            log.info(
                "%s: sampling again with %d draws, %d tuning, target_accept %.3g",
                fit,
                plan["draws"],
                plan["tune"],
                plan["target_accept"],
            )
    return idata, attempts, compile_seconds


def fit_stage(
    measurements_path, public_counts_path, patterns_path, config, posterior_path, diagnostics_path
) -> dict:
    """Fit the model; write the posterior and the diagnostics; return the diagnostics.

    Samples again while a convergence target of ``model.convergence`` is missed (see
    :func:`sample_until_converged`). A fit that still misses one is logged as a WARNING and
    written with ``converged: false``; with ``on_failure: error`` it raises
    :class:`~pipeline_common.convergence.ConvergenceError` after writing its files.
    """
    use_private_compile_cache()
    mc = config["model"]
    settings = convergence_settings(config)
    targets = {key: settings[key] for key in ("rhat_max", "ess_min", "max_divergences")}
    start = time.perf_counter()
    problem, _ = _problem(measurements_path, public_counts_path, patterns_path, config)
    initvals = modal_reference_start(problem)
    model = build_model(problem)
    m = pd.read_parquet(measurements_path, columns=["table", "geo_level", "pattern_level", "sigma"])
    exact = bool((m["sigma"] <= 0).all())
    fit = f"{'exact fit' if exact else 'privacy refit'} ({Path(diagnostics_path).parent}/)"
    idata, attempts, compile_seconds = sample_until_converged(
        model, mc, config["seed"], initvals, fit
    )
    seconds = compile_seconds + sum(a["seconds"] for a in attempts)
    kept = attempts[-1]
    diag = diagnostics(idata)
    top = diagnostics(idata, top_parameters(problem))
    stats = idata["sample_stats"]
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
            "compile_seconds": compile_seconds,
            "chains": mc["chains"],
            "draws": kept["draws"],
            "tune": kept["tune"],
            "target_accept": kept["target_accept"],
            "seed": kept["seed"],
            "fit": "exact" if exact else "privacy",
            "converged": not kept["failures"],
            "convergence_targets": targets,
            "convergence_failures": kept["failures"],
            "attempts": attempts,
            "adaptation": mc["adaptation"] if mc["sampler"] == "nutpie" else None,
            "centered_levels": list(problem.centered_levels),
            "n_cells": len(problem.cell_count),
            "n_groups": problem.n_groups,
            "n_patterns": problem.n_patterns,
            "n_params": count_free_parameters(model),
            "n_aggregate_rows": int(sum(len(a.value) for a in problem.aggregates)),
            "measurement_tables": tables,
            "exact": exact,
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
    status = {
        "converged": diag["converged"],
        "failures": kept["failures"],
        "targets": targets,
        "attempts": len(attempts),
    }
    if not status["converged"]:
        log.warning(
            "%s. Its estimates and interval ends are not reliable: raise model.draws / "
            "model.tune or model.convergence.max_attempts.",
            failure_sentence(fit, status),
        )
    write_datatree(idata, posterior_path)
    write_json(diag, diagnostics_path)
    if not status["converged"] and settings["on_failure"] == "error":
        message = failure_message(fit, status, settings, mc["draws"], mc["tune"])
        log.error(message)
        raise ConvergenceError(message)
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
        discrepancy=config["model"].get("discrepancy"),
    )
    log.info("predicted %d block draws in %.1f s", len(draws), time.perf_counter() - start)
    write_parquet(draws, output_path)
    return draws


def baseline_stage(
    method, evidence_path, frame_path, geography_path, config, cvap_table, output_path
) -> pd.DataFrame:
    """One baseline's block draws."""
    from models import baselines
    from pipeline_common.world_schema import read_world_file

    evidence = pd.read_parquet(evidence_path)
    frame = read_world_file(frame_path, "frame", config.get("reference_date"))
    geography = read_world_file(geography_path, "geography")
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


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - manual entry point
    """``python -m models.stage [--configfile scenario.yaml ...]``: fit and predict on
    ``results/{run}``."""
    from pipeline_common.cli import config_of, stage_parser
    from pipeline_common.logs import setup_logging

    parser = stage_parser("models.stage", "Run the model stage on results/{run}.")
    args = parser.parse_args(argv)
    setup_logging()
    cfg = config_of(args)
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
    from pipeline_common.errors import run_main

    run_main(main, "models.stage")
