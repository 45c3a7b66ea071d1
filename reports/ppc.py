"""Posterior predictive check of the exact fit, computed by the report from the saved posterior.

The model stage does not write replicated data, so the report replicates it: for a thinned set
of posterior draws, each block x age group's public population is spread over the evidence
patterns by the model's own probabilities (``pi_g`` of the latent classes times
``P(pattern | class)``, the numpy mirror in :mod:`models.latent_class`), one multinomial per
group. Summed over groups, each pattern's replicated total is compared with its observed total in
the exact cells. Patterns are joint answers of all sources, so the check tests the model's
local-independence assumption, not only the per-source margins it fits almost by construction.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

# Keep the check cheap: at most this many group x pattern x draw cells are replicated.
MAX_WORK = 2.5e8


SHORT_SOURCES = {
    "ssa_numident": "Numident",
    "uscis_naturalizations": "USCIS nat.",
    "uscis_lpr": "USCIS LPR",
    "cbp_ice": "CBP/ICE",
    "state_passports": "passport",
    "irs_itin": "ITIN",
    "acs": "ACS",
}


def pattern_label(problem, pattern: int) -> str:
    """What each linked source says in ``pattern`` (sources without a link left out)."""
    parts = []
    for s, source in enumerate(problem.source_names):
        category = problem.categories[s][problem.pattern_codes[pattern, s]]
        if category != "none":
            parts.append(f"{SHORT_SOURCES.get(source, source)}: {category}")
    return "; ".join(parts) or "no link to any source"


def pattern_ppc(
    problem,
    posterior,
    rng: np.random.Generator,
    n_draws: int = 100,
    observed: np.ndarray | None = None,
    noise_sd: np.ndarray | None = None,
) -> pd.DataFrame | None:
    """``pattern, observed, replicated, lo90, hi90, inside`` per evidence pattern.

    Parameters
    ----------
    problem
        The exact fit's :class:`models.latent_class.LatentClassProblem` (exact cells).
    posterior
        The exact fit's posterior DataTree.
    rng
        Generator for the replicated multinomials.
    n_draws
        Posterior draws used at most (evenly thinned).
    observed
        Observed total per pattern (default: the exact cells of ``problem``). The privacy fit
        is checked against the noisy totals it read.
    noise_sd
        Standard deviation of the noise in each ``observed`` total: replicated totals get the
        same noise, so that like is compared with like.
    """
    from models.latent_class import class_probs_np, parameter_names, pattern_lik_np, stack_draws

    if posterior is None or len(problem.cell_count) == 0 or problem.group_population is None:
        return None
    draws = stack_draws(posterior, parameter_names(problem))
    if not draws:
        return None
    total = next(iter(draws.values())).shape[0]
    per_draw = problem.n_groups * problem.n_patterns
    n_draws = int(max(20, min(n_draws, total, MAX_WORK // max(per_draw, 1))))
    chosen = np.linspace(0, total - 1, min(n_draws, total)).round().astype(int)
    population = np.asarray(problem.group_population, dtype=np.int64)
    replicated = np.zeros((len(chosen), problem.n_patterns))
    for row, d in enumerate(chosen):
        pi = class_probs_np(problem, draws, d)  # (groups, classes)
        lik = pattern_lik_np(problem, draws, d)  # (ages, patterns, classes)
        probs = np.empty((problem.n_groups, problem.n_patterns))
        for age, at_age in enumerate(lik):
            rows = problem.group_source_age == age
            probs[rows] = pi[rows] @ at_age.T
        probs /= probs.sum(axis=1, keepdims=True)
        replicated[row] = rng.multinomial(population, probs).sum(axis=0)
    if noise_sd is not None:
        replicated += rng.normal(0.0, 1.0, replicated.shape) * noise_sd
    if observed is None:
        observed = np.bincount(
            problem.cell_pattern, weights=problem.cell_count, minlength=problem.n_patterns
        )
    lo, hi = np.quantile(replicated, [0.05, 0.95], axis=0)
    table = pd.DataFrame(
        {
            "pattern": np.arange(problem.n_patterns),
            "observed": observed,
            "replicated": replicated.mean(axis=0),
            "lo90": lo,
            "hi90": hi,
        }
    )
    table["label"] = [pattern_label(problem, p) for p in range(problem.n_patterns)]
    table["inside"] = (table["observed"] >= table["lo90"]) & (table["observed"] <= table["hi90"])
    # How far outside its interval each pattern lies, in interval widths (0 inside).
    width = np.maximum(table["hi90"] - table["lo90"], 1.0)
    table["miss"] = (
        np.maximum(table["lo90"] - table["observed"], 0)
        + np.maximum(table["observed"] - table["hi90"], 0)
    ) / width
    table.attrs["draws"] = len(chosen)
    return table[(table["observed"] > 0) | (table["hi90"] > 0)].reset_index(drop=True)


def exact_fit_ppc(run_dir: str | Path, config: dict, posterior) -> pd.DataFrame | None:
    """The pattern check for ``results/{run}``'s exact fit (None if its tables are absent)."""
    from models.stage import _problem
    from pipeline_common.rng import stage_rng

    model_dir = Path(run_dir) / "model"
    paths = [
        model_dir / name
        for name in ("exact_measurements.parquet", "public_counts.parquet", "patterns.parquet")
    ]
    if posterior is None or not all(path.exists() for path in paths):
        return None
    # The classes of the fit on file, not of the current config (a run fitted before a class
    # option changed still gets its check).
    from models.pipeline import WITHHELD_CLASSES

    post = posterior["posterior"]
    if "class" in post.coords:
        fitted = {str(c) for c in post.coords["class"].values}
        withheld = any(name in fitted for name in WITHHELD_CLASSES)
        config = {**config, "model": {**config["model"], "withheld_classes": withheld}}
    problem, _ = _problem(*paths, config)
    return pattern_ppc(problem, posterior, stage_rng(config.get("seed", 0), "report", "ppc"))


def privacy_fit_ppc(run_dir: str | Path, config: dict, posterior) -> pd.DataFrame | None:
    """The same pattern check for the privacy fit (the published one), against its own data.

    The privacy fit read noisy tables; its only table of full evidence patterns is the county x
    age group x pattern measurement. Observed: that table summed over counties and age groups
    (noisy, as the fit saw it); replicated: the privacy fit's posterior spread over the same
    public block x age populations, plus discrete-Gaussian-sized noise of the same variance.
    The privacy fit has the four main classes (``model.noisy_withheld_classes``), so the problem
    is built without the withheld subclasses unless its posterior has them.
    """
    from models.pipeline import WITHHELD_CLASSES
    from models.stage import _problem
    from pipeline_common.rng import stage_rng

    run_dir = Path(run_dir)
    paths = [
        run_dir / "model" / name
        for name in ("exact_measurements.parquet", "public_counts.parquet", "patterns.parquet")
    ]
    measurements_path = run_dir / "privacy" / "measurements.parquet"
    if posterior is None or not all(p.exists() for p in [*paths, measurements_path]):
        return None
    post = posterior["posterior"]
    fitted = {str(c) for c in post.coords["class"].values} if "class" in post.coords else set()
    withheld = any(name in fitted for name in WITHHELD_CLASSES)
    config = {**config, "model": {**config["model"], "withheld_classes": withheld}}
    problem, _ = _problem(*paths, config)
    patterns = pd.read_parquet(paths[2]).sort_values("pattern_id").reset_index(drop=True)
    # The problem's patterns are patterns.parquet's rows in pattern_id order; check, never assume.
    for s, source in enumerate(problem.source_names):
        column = f"src_{source}"
        if column not in patterns or len(patterns) != problem.n_patterns:
            return None
        names = np.asarray(problem.categories[s], dtype=object)[problem.pattern_codes[:, s]]
        if not np.array_equal(names.astype(str), patterns[column].astype(str).to_numpy()):
            return None
    measured = pd.read_parquet(measurements_path)
    full = measured[measured["pattern_level"] == "full"]
    if full.empty:
        return None
    observed = (
        full.groupby("pattern_id")["value"].sum().reindex(patterns["pattern_id"], fill_value=0)
    )
    noise_var = (
        (full["sigma"] ** 2).groupby(full["pattern_id"]).sum().reindex(patterns["pattern_id"])
    )
    return pattern_ppc(
        problem,
        posterior,
        stage_rng(config.get("seed", 0), "report", "ppc", "privacy"),
        n_draws=60,
        observed=observed.to_numpy(dtype=float),
        noise_sd=np.sqrt(noise_var.fillna(0).to_numpy(dtype=float)),
    )
