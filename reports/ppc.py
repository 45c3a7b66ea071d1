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
    problem, posterior, rng: np.random.Generator, n_draws: int = 100
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
