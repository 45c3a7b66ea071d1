"""A small, fake run directory built to docs/CONTRACTS.md, for tests and for trying the report.

The numbers are random but shaped like a real run (a few counties, tracts and blocks; all seven
sources; evaluation and privacy files). It lets the report be developed and tested without
running the upstream stages. ``python -m reports.fixture OUT_DIR`` writes one.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from pipeline_common.io import write_json, write_parquet, write_text
from reports.data import QUANTITIES, SOURCES, aggregate_draws

STATUSES = ("native_citizen", "naturalized", "lpr", "temporary", "unauthorized")


def _geography(rng: np.random.Generator, counties: tuple[str, ...]) -> pd.DataFrame:
    rows = []
    for c_index, county in enumerate(counties):
        for t in range(3):
            tract = f"{county}{100 + t:06d}"
            for b in range(12):
                block = f"{tract}{1 + b // 6}{b:03d}"
                rows.append(
                    {
                        "block_id": block,
                        "block_group_id": block[:12],
                        "tract_id": tract,
                        "county_id": county,
                        "x": c_index * 10.0 + t * 3.0 + (b % 3) + 0.5,
                        "y": float(b // 3) + 0.5,
                        "width": 1.0,
                        "height": 1.0,
                    }
                )
    return pd.DataFrame(rows)


def _blocks(rng: np.random.Generator, geography: pd.DataFrame) -> pd.DataFrame:
    blocks = geography[["block_id", "tract_id", "county_id"]].copy()
    population = rng.lognormal(3.5, 0.9, len(blocks)).round().astype(int) + 1
    share = np.clip(rng.beta(1.2, 8, len(blocks)), 0, 1)
    noncitizens = np.round(population * share).astype(int)
    citizens = population - noncitizens
    cvap = np.round(citizens * rng.uniform(0.6, 0.8, len(blocks))).astype(int)
    blocks["population"] = population
    for name, est in (("citizens", citizens), ("noncitizens", noncitizens), ("cvap", cvap)):
        half = np.ceil(1.64 * np.sqrt(est + 1) + 1).astype(int)
        blocks[f"{name}_est"] = est
        blocks[f"{name}_lo90"] = np.maximum(est - half, 0)
        blocks[f"{name}_hi90"] = est + half
    width = blocks["noncitizens_hi90"] - blocks["noncitizens_lo90"]
    relative = width / blocks["population"]
    blocks["reliability"] = np.where(
        relative <= 0.2, "high", np.where(relative <= 0.5, "medium", "low")
    )
    return blocks


def _draws(rng: np.random.Generator, blocks: pd.DataFrame, n_draws: int = 60) -> pd.DataFrame:
    parts = []
    for draw in range(n_draws):
        part = {"draw": draw, "block_id": blocks["block_id"]}
        for q in QUANTITIES:
            part[q] = np.maximum(
                rng.normal(blocks[f"{q}_est"], np.sqrt(blocks[f"{q}_est"] + 1)).round(), 0
            ).astype(int)
        parts.append(pd.DataFrame(part))
    return pd.concat(parts, ignore_index=True)


def _posterior(rng: np.random.Generator) -> xr.DataTree:
    chains, draws = 4, 150
    ds = xr.Dataset(
        {
            "intercept": (("chain", "draw"), rng.normal(-2, 0.1, (chains, draws))),
            "sigma_block": (("chain", "draw"), np.abs(rng.normal(0.5, 0.05, (chains, draws)))),
            "age_effect": (
                ("chain", "draw", "age_group"),
                rng.normal(0, 0.2, (chains, draws, 4)),
            ),
        },
        coords={
            "chain": np.arange(chains),
            "draw": np.arange(draws),
            "age_group": ["0-17", "18-34", "35-64", "65+"],
        },
    )
    return xr.DataTree.from_dict({"posterior": ds})


AGE_GROUPS = ("0-17", "18-34", "35-64", "65+")


def _truth_persons(rng: np.random.Generator, run_dir: Path, blocks: pd.DataFrame) -> None:
    """``truth/persons.parquet`` and ``world/frame.parquet`` whose block counts are one more
    draw of the fixture's draw distribution (so the fixture's intervals are calibrated)."""
    rows = []
    for block in blocks.itertuples():
        citizens = max(0, round(rng.normal(block.citizens_est, np.sqrt(block.citizens_est + 1))))
        noncitizens = max(0, int(block.population) - citizens)
        for citizen, count in ((True, citizens), (False, noncitizens)):
            for _ in range(count):
                rows.append(
                    (block.block_id, block.tract_id, block.county_id, citizen, rng.integers(0, 90))
                )
    truth = pd.DataFrame(rows, columns=["block_id", "tract_id", "county_id", "citizen", "age"])
    truth.insert(0, "person_id", [f"P{i:09d}" for i in range(len(truth))])
    write_parquet(truth, run_dir / "truth" / "persons.parquet")
    write_parquet(truth[["person_id", "block_id"]], run_dir / "world" / "frame.parquet")


def _exact_tables_and_parameters(
    rng: np.random.Generator,
    run_dir: Path,
    geography: pd.DataFrame,
    thetas: dict,
    posterior: xr.Dataset,
) -> xr.Dataset:
    """Write the exact fit's tables (``model/exact_measurements.parquet``,
    ``model/public_counts.parquet``, ``model/patterns.parquet``) simulated from the fixture's
    source behaviours, and return ``posterior`` with the class-mix parameters the model's
    numpy mirror reads (so the report's posterior predictive check runs on the fixture)."""
    from models.latent_class import (
        fixed_top_level,
        is_fixed_level,
        nested_zero_sum_basis,
        parameter_names,
    )
    from models.pipeline import CLASSES, build_problem
    from pipeline_common.config import load_config

    # naturalized, LPR, other noncitizens against native citizens
    intercept = np.array([-1.6, -2.0, -1.9])
    class_share = np.exp(np.r_[0.0, intercept]) / np.exp(np.r_[0.0, intercept]).sum()
    rows, persons = [], []
    for block in geography.itertuples():
        for age in AGE_GROUPS:
            n = int(rng.integers(0, 25))
            if n:
                rows.append((block.block_id, block.tract_id, block.county_id, age, n))
                persons.append(np.repeat([[len(rows) - 1]], n, axis=0))
    public = pd.DataFrame(
        rows, columns=["block_id", "tract_id", "county_id", "age_group", "population"]
    )
    group = np.concatenate(persons)[:, 0]
    klass = rng.choice(len(CLASSES), size=len(group), p=class_share)
    codes = np.zeros((len(group), len(SOURCES)), dtype=np.int64)
    for s, source in enumerate(SOURCES):
        draws, cats = thetas[source]
        probs = draws.mean(axis=(0, 1))  # (class, category)
        cdf = probs.cumsum(axis=1)[klass]
        codes[:, s] = (rng.random(len(group))[:, None] > cdf).sum(axis=1).clip(0, len(cats) - 1)
    unique, pattern = np.unique(codes, axis=0, return_inverse=True)
    patterns = pd.DataFrame(
        {
            "pattern_id": np.arange(len(unique)),
            "coarse_pattern_id": 0,
            **{
                f"src_{source}": [thetas[source][1][c] for c in unique[:, s]]
                for s, source in enumerate(SOURCES)
            },
        }
    )
    cells = (
        pd.DataFrame({"group": group, "pattern_id": pattern.ravel()})
        .value_counts()
        .rename("value")
        .reset_index()
    )
    measurements = pd.DataFrame(
        {
            "table": "exact_block_full",
            "geo_level": "block",
            "geo_id": public["block_id"].to_numpy()[cells["group"]],
            "age_group": public["age_group"].to_numpy()[cells["group"]],
            "pattern_level": "full",
            "pattern_id": cells["pattern_id"].astype(np.int64),
            "value": cells["value"].astype(np.int64),
            "sigma": 0.0,
        }
    )
    model_dir = run_dir / "model"
    write_parquet(measurements, model_dir / "exact_measurements.parquet")
    write_parquet(public, model_dir / "public_counts.parquet")
    write_parquet(patterns, model_dir / "patterns.parquet")

    # Class-mix parameters of the right shapes for the problem those tables make.
    config = load_config()
    problem, _ = build_problem(measurements, public, patterns, config["model"], list(AGE_GROUPS))
    chains, draws = 4, 150
    shape = (chains, draws)
    out = posterior.drop_vars(list(posterior.data_vars))
    sizes = {name: len(labels) for name, _, labels in problem.levels}
    free_sizes = {
        name: nested_zero_sum_basis(problem, level).n_free
        for level, (name, _, labels) in enumerate(problem.levels)
        if not is_fixed_level(problem, labels)
    }
    top = fixed_top_level(problem)
    n_nonref = len(CLASSES) - 1
    coords = {}
    for name in parameter_names(problem):
        if name.startswith("theta_"):
            continue
        if name == "intercept" and top is None:
            value = intercept + rng.normal(0, 0.05, (*shape, n_nonref))
            dims = ("class_nonref",)
        elif name == "intercept":
            n_top = len(top[2])
            value = intercept[:, None] + rng.normal(0, 0.05, (*shape, n_nonref, n_top))
            dims = ("class_nonref", top[0])
        elif name == "age_effect":
            value = rng.normal(0, 0.05, (*shape, n_nonref, len(AGE_GROUPS)))
            dims = ("class_nonref", "age")
        elif name.startswith("eta_"):
            level = name.removeprefix("eta_")
            value = intercept + rng.normal(0, 0.05, (*shape, sizes[level], n_nonref))
            dims = (level, "class_nonref")
        elif name.startswith("effect_"):
            level = name.removeprefix("effect_")
            value = rng.normal(0, 0.05, (*shape, n_nonref, sizes[level]))
            dims = ("class_nonref", level)
        elif name.startswith("z_"):
            level = name.removeprefix("z_")
            value = rng.normal(0, 1, (*shape, free_sizes[level], n_nonref))
            dims = (f"{level}_free", "class_nonref")
            coords[f"{level}_free"] = np.arange(free_sizes[level])
        else:  # sigma_<level>
            value = np.abs(rng.normal(0.05, 0.01, (*shape, n_nonref)))
            dims = ("class_nonref",)
        out[name] = xr.DataArray(value, dims=("chain", "draw", *dims))
    return out.assign_coords(
        class_nonref=CLASSES[1:],
        age=list(AGE_GROUPS),
        **{name: list(labels) for name, _, labels in problem.levels},
        **coords,
    )


def write_fixture_run(
    run_dir: str | Path, seed: int = 7, bench_dir: str | Path | None = None
) -> Path:
    """Write a fake ``results/{run}`` folder (and benchmark files) to ``run_dir``."""
    rng = np.random.default_rng(seed)
    run_dir = Path(run_dir)
    geography = _geography(rng, ("12086", "06037"))
    write_parquet(geography, run_dir / "world" / "geography.parquet")

    records = {s: int(n) for s, n in zip(SOURCES, rng.integers(40, 900, len(SOURCES)), strict=True)}
    for source, n in records.items():
        frame = pd.DataFrame({"record_id": [f"X-{i:09d}" for i in range(n)]})
        write_parquet(frame, run_dir / "world" / "sources" / f"{source}.parquet")

    link_rows = []
    for source, n in records.items():
        linked = int(n * rng.uniform(0.6, 0.95))
        probability = np.clip(1 - rng.beta(0.4, 8, linked), 0, 1)
        link_rows.append(pd.DataFrame({"source": source, "match_probability": probability}))
    links = pd.concat(link_rows, ignore_index=True)
    links.insert(1, "record_id", [f"X-{i:09d}" for i in range(len(links))])
    links.insert(2, "person_id", [f"P{i:09d}" for i in range(len(links))])
    write_parquet(links, run_dir / "linkage" / "links.parquet")

    withheld: dict = {}
    totals = {"records_in": 0, "withheld": 0, "records_shared": 0, "records_linked": 0}
    for source, n in records.items():
        reasons = (
            {"protected_1367": int(rng.integers(0, 5)), "refugee_asylee": int(rng.integers(0, 9))}
            if source in ("uscis_naturalizations", "uscis_lpr", "cbp_ice")
            else {}
        )
        linked = int((links["source"] == source).sum())
        withheld[source] = {
            **reasons,
            "total_withheld": sum(reasons.values()),
            "records_in": n,
            "records_shared": n - sum(reasons.values()),
            "records_linked": linked,
            "persons_linked": linked,
            "fields_dropped": ["a_number"] if source == "cbp_ice" else [],
            "authority": f"fixture authority of {source}",
            "policy_origin": "linkage.default_withhold",
            "notes": [],
        }
        totals["records_in"] += n
        totals["withheld"] += sum(reasons.values())
        totals["records_shared"] += n - sum(reasons.values())
        totals["records_linked"] += linked
    withheld["totals"] = totals
    write_json(withheld, run_dir / "linkage" / "withheld.json")

    edges = [round(x, 2) for x in np.linspace(0, 1, 21)]
    linkage_eval = {"sources": {}}
    for source in SOURCES:
        true_links = rng.integers(0, 5, 20)
        true_links[-3:] += rng.integers(50, 400, 3)
        false_links = rng.integers(0, 3, 20)
        linkage_eval["sources"][source] = {
            "precision": float(rng.uniform(0.95, 1.0)),
            "recall": float(rng.uniform(0.7, 0.98)),
            "f1": float(rng.uniform(0.8, 0.99)),
            "recall_by_status": {
                s: {"linkable": 50, "tp": 40, "recall": float(rng.uniform(0.5, 1.0))}
                for s in STATUSES
            },
            "match_probability_histogram": {
                "edges": edges,
                "true_links": true_links.tolist(),
                "false_links": false_links.tolist(),
            },
        }
    write_json(linkage_eval, run_dir / "evaluation" / "linkage.json")

    categories = {
        "ssa_numident": ["none", "citizen_hi", "noncitizen_hi", "noncitizen_old_hi", "unknown_hi"],
        "acs": ["none", "citizen_hi", "naturalized_hi", "noncitizen_hi"],
    }
    from models.pipeline import CLASSES

    classes = list(CLASSES)
    thetas = {}
    behaviour: dict = {}
    for source in SOURCES:
        cats = categories.get(source, ["none", "citizen_hi", "noncitizen_lo"])
        # "No link" most likely, as in a real run: few distinct evidence patterns.
        concentration = np.r_[12.0, np.full(len(cats) - 1, 1.5)]
        probs = rng.dirichlet(concentration, size=len(classes))
        draws = np.stack([rng.dirichlet(p * 400, size=(4, 150)) for p in probs], axis=2)
        thetas[source] = (draws, cats)
        behaviour[source] = {
            klass: {
                cat: {
                    "mean": float(draws[:, :, k, c].mean()),
                    "lo90": float(np.quantile(draws[:, :, k, c], 0.05)),
                    "hi90": float(np.quantile(draws[:, :, k, c], 0.95)),
                }
                for c, cat in enumerate(cats)
            }
            for k, klass in enumerate(classes)
        }
    diagnostics = {
        "max_rhat": 1.006,
        "min_ess_bulk": 412.0,
        "min_ess_tail": 405.0,
        "divergences": 0,
        "sampling_seconds": 12.5,
        "chains": 4,
        "draws": 150,
        "classes": classes,
        "top_parameters": {"names": ["intercept", "age_effect", "sigma_block"]},
        "source_behaviour": behaviour,
    }
    write_json(diagnostics, run_dir / "model" / "diagnostics.json")
    nat = thetas["ssa_numident"][0][:, :, 1, :]
    numident_truth = float(((nat[..., 2] + nat[..., 3]) / nat[..., 1:].sum(-1)).mean())
    write_json(
        {
            "realized": {
                "numident_naturalized_marked_noncitizen_share": numident_truth,
                "status_shares": {
                    "native_citizen": 0.62,
                    "naturalized": 0.18,
                    "lpr": 0.09,
                    "temporary": 0.02,
                    "unauthorized": 0.09,
                },
            },
            "synthetic": {
                "sources": {
                    "acs": {
                        "misreport_citizen": {"lpr": 0.05, "temporary": 0.08, "unauthorized": 0.15}
                    }
                }
            },
        },
        run_dir / "truth" / "parameters.json",
    )
    tree = _posterior(rng)
    posterior = tree["posterior"].to_dataset()
    posterior = _exact_tables_and_parameters(rng, run_dir, geography, thetas, posterior)
    for source, (draws, cats) in thetas.items():
        posterior[f"theta_{source}"] = xr.DataArray(
            draws,
            dims=("chain", "draw", "class", f"cat_{source}"),
            coords={"class": classes, f"cat_{source}": cats},
        )
    xr.DataTree.from_dict({"posterior": posterior}).to_netcdf(
        run_dir / "model" / "posterior.nc", engine="h5netcdf"
    )

    # The privacy fit: the same model refitted to noisy measurements (wider behaviour draws,
    # slightly worse sampler numbers), as privacy_fit writes under privacy/model/.
    private = xr.Dataset()
    for source, (draws, cats) in thetas.items():
        noisy = np.stack(
            [
                rng.dirichlet(draws[:, :, k, :].mean(axis=(0, 1)) * 120, size=(4, 150))
                for k in range(len(classes))
            ],
            axis=2,
        )
        private[f"theta_{source}"] = xr.DataArray(
            noisy,
            dims=("chain", "draw", "class", f"cat_{source}"),
            coords={"class": classes, f"cat_{source}": cats},
        )
    (run_dir / "privacy" / "model").mkdir(parents=True, exist_ok=True)
    xr.DataTree.from_dict({"posterior": private}).to_netcdf(
        run_dir / "privacy" / "model" / "posterior.nc", engine="h5netcdf"
    )
    write_json(
        {
            **diagnostics,
            "max_rhat": 1.013,
            "min_ess_bulk": 288.0,
            "min_ess_tail": 301.0,
            "divergences": 2,
            "sampling_seconds": 19.0,
            "exact": False,
            # As the model stage writes it for a fit that missed its targets after 3 attempts.
            "converged": False,
            "convergence_targets": {"rhat_max": 1.01, "ess_min": 400, "max_divergences": 0},
            "convergence_failures": [
                "max R-hat 1.013 > 1.01",
                "min bulk ESS 288 < 400",
                "min tail ESS 301 < 400",
                "2 divergences > 0",
            ],
            "attempts": [{"attempt": k} for k in (1, 2, 3)],
        },
        run_dir / "privacy" / "model" / "diagnostics.json",
    )

    ledger = {
        "mode": "zcdp",
        "privacy_protected": True,
        "budget": {"rho": 2.0, "delta": 1e-10, "epsilon": 14.3},
        "measurements": [
            {
                "name": "county_detail",
                "geo_level": "county",
                "pattern_level": "full",
                "rho": 0.5,
                "epsilon": 5.9,
                "rho_running_total": 0.5,
                "noise_std": 1.0,
                "cells": 480,
                "mechanism": "discrete Gaussian (OpenDP make_gaussian, zCDP)",
            },
            {
                "name": "block_coarse",
                "geo_level": "block",
                "pattern_level": "coarse",
                "rho": 1.5,
                "epsilon": 11.6,
                "rho_running_total": 2.0,
                "noise_std": 0.58,
                "cells": 2880,
                "mechanism": "discrete Gaussian (OpenDP make_gaussian, zCDP)",
            },
        ],
        "total": {"rho": 2.0, "epsilon": 14.3, "delta": 1e-10},
        "remaining_rho": 0.0,
    }
    write_json(ledger, run_dir / "privacy" / "ledger.json")

    blocks = _blocks(rng, geography)
    published = run_dir / "published"
    write_text(blocks.to_csv(index=False), published / "blocks.csv")
    write_parquet(blocks, published / "blocks.parquet")
    draws = _draws(rng, blocks)
    write_parquet(draws, published / "draws.parquet")
    # The exact fit's block draws (model/): the published ones before the privacy noise.
    exact_draws = _draws(rng, blocks)
    write_parquet(exact_draws, run_dir / "model" / "block_draws.parquet")
    for method in ("record_rule", "census_style"):
        write_parquet(_draws(rng, blocks), run_dir / "baselines" / method / "block_draws.parquet")
    _truth_persons(rng, run_dir, blocks)
    for name, level in (("tracts", "tract_id"), ("counties", "county_id")):
        table = aggregate_draws(draws, blocks, level).drop(columns="blocks")
        write_text(table.to_csv(index=False), published / f"{name}.csv")
    # evaluation/calibration.json as the evaluate_calibration rule writes it, scored on the
    # fixture's own draws and truth (small districts: the fixture has about 3,000 persons).
    from models.calibration_stage import evaluate_calibration

    calibration = evaluate_calibration(
        {"published": draws, "exact": exact_draws},
        pd.read_parquet(run_dir / "truth" / "persons.parquet"),
        pd.read_parquet(run_dir / "world" / "frame.parquet"),
        geography,
        seed,
        district_targets=(100, 300, 1_000),
    )
    write_json({"run": run_dir.name, **calibration}, run_dir / "evaluation" / "calibration.json")
    # evaluation/comparison.json as the evaluate_comparison rule writes it: every method against
    # an ACS-direct-like baseline (its own generator, so the fixture's other numbers stay put).
    _write_comparison(run_dir, geography, blocks, draws, exact_draws, seed)
    write_json(
        {
            "blocks": len(blocks),
            "population_matches_truth_share": 1.0,
            "block": {
                q: {"coverage90": 0.88, "mae": 1.4, "rmse": 2.2, "bias": -0.1, "mean_width90": 7.0}
                for q in QUANTITIES
            },
            "tract": {
                q: {"max_abs_relative_error": 0.05, "mean_abs_relative_error": 0.02}
                for q in QUANTITIES
            },
            "county": {
                q: {
                    "max_abs_relative_error": 0.01,
                    "mean_abs_relative_error": 0.008,
                    "relative_error": {"12086": 0.008, "06037": -0.007},
                }
                for q in QUANTITIES
            },
        },
        run_dir / "evaluation" / "published.json",
    )
    write_json(
        {
            "config_hash": "ab12" * 16,
            "seed": seed,
            "run": run_dir.name,
            "versions": {"python": "3.12.1", "pymc": "6.4.0", "opendp": "0.16.0"},
            "privacy": ledger,
            "diagnostics": {"max_rhat": 1.006, "divergences": 0},
        },
        published / "metadata.json",
    )

    # Shaped like models/evaluate.py's output.
    methods = {}
    for method, scale in (("model", 1.0), ("record_rule", 2.3), ("census_style", 1.6)):
        methods[method] = {}
        for quantity in QUANTITIES:
            methods[method][quantity] = {
                "block_mae": 1.2 * scale,
                "block_rmse": 2.0 * scale,
                "block_bias": -0.1 * scale,
                "coverage90_pit": 0.86 if method == "model" else round(0.55 / scale, 3),
                "coverage90_inclusive": 0.93 if method == "model" else round(0.6 / scale, 3),
                "mean_width90": 6.0 * scale,
                "tract_mean_abs_rel_error": 0.02 * scale,
                "county_max_abs_rel_error": 0.006 * scale,
                "counties": {},
                "n_blocks": len(geography),
            }
    estimates_eval = {
        "methods": methods,
        "summary": {},
        "record_rule_cost": {
            "persons": 3120,
            "no_definitive_record": 150,
            "citizens_labelled_noncitizen": 41,
            "naturalized_labelled_noncitizen": 38,
            "noncitizens_labelled_citizen": 3,
            "by_status": {"naturalized": {"persons": 400}},
        },
        "truth_population": "enumerated persons (frame)",
    }
    write_json(estimates_eval, run_dir / "evaluation" / "estimates.json")

    if bench_dir is not None:
        for step, seconds in (
            ("synthetic_world", 3.2),
            ("linkage", 8.7),
            ("model_fit", 21.0),
            ("privacy_measure", 0.8),
            ("evaluate", 1.1),
        ):
            write_text(
                "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
                f"{seconds}\t0:00:{int(seconds):02d}\t210.5\t900.1\t200.0\t201.0\t0\t1\t90\t"
                f"{seconds}\n",
                Path(bench_dir) / f"{step}.tsv",
            )
    return run_dir


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m reports.fixture OUT_RUN_DIR [--bench DIR]``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run_dir")
    parser.add_argument("--bench", default=None)
    args = parser.parse_args(argv)
    write_fixture_run(args.run_dir, bench_dir=args.bench)


if __name__ == "__main__":
    main()


def _write_comparison(run_dir, geography, blocks, draws, exact_draws, seed) -> None:
    """``baselines/acs_direct/*`` and ``evaluation/comparison.json`` of the fixture run."""
    from models.comparison import compare

    acs_rng = np.random.default_rng(seed + 15)
    acs_draws = _draws(acs_rng, blocks)
    # A noisier "survey" baseline: each block's draws spread around its mean.
    for quantity in ("citizens", "noncitizens", "cvap"):
        noise = acs_rng.normal(0.0, 3.0, len(acs_draws))
        acs_draws[quantity] = np.maximum(0, np.rint(acs_draws[quantity] + noise)).astype(np.int64)
    write_parquet(acs_draws, run_dir / "baselines" / "acs_direct" / "block_draws.parquet")
    summed = acs_draws.assign(block_group_id=acs_draws["block_id"].astype(str).str[:12])
    per_draw = summed.groupby(["block_group_id", "draw"])[["citizens", "noncitizens", "cvap"]].sum()
    stats = per_draw.groupby(level="block_group_id").agg(["mean", "std"])
    table = pd.DataFrame({"block_group_id": stats.index, "respondents": 20})
    for name, quantity in (("cit", "citizens"), ("noncit", "noncitizens"), ("cvap", "cvap")):
        table[f"{name}_est"] = stats[(quantity, "mean")].to_numpy()
        table[f"{name}_moe"] = 1.645 * stats[(quantity, "std")].fillna(0).to_numpy()
    write_parquet(table, run_dir / "baselines" / "acs_direct" / "block_groups.parquet")
    methods = {
        "published": draws,
        "exact": exact_draws,
        "acs_direct": acs_draws,
        **{
            m: pd.read_parquet(run_dir / "baselines" / m / "block_draws.parquet")
            for m in ("record_rule", "census_style")
        },
    }
    document, _, _ = compare(
        methods,
        table,
        pd.read_parquet(run_dir / "truth" / "persons.parquet"),
        pd.read_parquet(run_dir / "world" / "frame.parquet"),
        geography,
        seed,
    )
    write_json({"run": run_dir.name, **document}, run_dir / "evaluation" / "comparison.json")
