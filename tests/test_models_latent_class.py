"""The generic latent-class core on non-pipeline data, and simulation-based calibration.

- Three diagnostic tests with no gold standard (simulated, known sensitivities and
  specificities): the core recovers them within their 90% intervals.
- SBC: data drawn from the model's own prior, posterior ranks of the true parameters uniform
  (chi-square at a lenient level). The model is compiled once and refitted on new counts.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from scipy import stats

from models.latent_class import (
    build_model,
    diagnostics,
    problem_from_table,
    sample,
)

TESTS = ["test_a", "test_b", "test_c"]
# Class 0 = disease-free, class 1 = diseased; categories ("neg", "pos").
# Identifying prior: a test is more often positive for the diseased than for the disease-free.
ALPHA = {t: np.array([[8.0, 2.0], [2.0, 8.0]]) for t in TESTS}


def _table(counts: np.ndarray) -> pd.DataFrame:
    combos = list(itertools.product(["neg", "pos"], repeat=3))
    table = pd.DataFrame(combos, columns=TESTS)
    table["n"] = counts
    return table


def _pattern_probs(prevalence: float, sens: np.ndarray, spec: np.ndarray) -> np.ndarray:
    out = []
    for combo in itertools.product([0, 1], repeat=3):
        p_dis = np.prod([sens[i] if c else 1 - sens[i] for i, c in enumerate(combo)])
        p_free = np.prod([1 - spec[i] if c else spec[i] for i, c in enumerate(combo)])
        out.append(prevalence * p_dis + (1 - prevalence) * p_free)
    return np.array(out)


def test_three_diagnostic_tests_without_gold_standard():
    rng = np.random.default_rng(11)
    prevalence, sens, spec = 0.3, np.array([0.9, 0.8, 0.7]), np.array([0.95, 0.9, 0.85])
    counts = rng.multinomial(3000, _pattern_probs(prevalence, sens, spec))
    table = _table(counts)
    problem = problem_from_table(
        table,
        TESTS,
        "n",
        ["disease_free", "diseased"],
        alpha=ALPHA,
        categories={t: ["neg", "pos"] for t in TESTS},
    )
    # PyMC's NUTS here: its compiled C is cached on disk, nutpie's numba compile is not.
    idata, _ = sample(build_model(problem), sampler="pymc", draws=400, tune=400, cores=1, seed=1)
    diag = diagnostics(idata)
    assert diag["max_rhat"] < 1.05 and diag["divergences"] == 0
    post = idata["posterior"]
    logit = post["intercept"].to_numpy().ravel()
    prev_draws = 1 / (1 + np.exp(-logit))
    lo, hi = np.quantile(prev_draws, [0.01, 0.99])
    assert lo <= prevalence <= hi
    assert abs(prev_draws.mean() - prevalence) < 0.04
    inside = 0
    for i, t in enumerate(TESTS):
        th = post[f"theta_{t}"].to_numpy().reshape(-1, 2, 2)
        for value, draws in ((sens[i], th[:, 1, 1]), (spec[i], th[:, 0, 0])):
            lo, hi = np.quantile(draws, [0.05, 0.95])
            inside += lo <= value <= hi
            assert abs(draws.mean() - value) < 0.08
    # Of 6 calibrated 90% intervals, 4 or more cover with probability 0.98 (5 or more: 0.89,
    # too tight for a test); the mean-error bound above catches a biased fit.
    assert inside >= 4


def test_simulation_based_calibration():
    """SBC: 20 replications of a 3-test, 2-class model on 300 persons (PyMC NUTS, ~1-3 min)."""
    import pymc as pm

    rng = np.random.default_rng(2024)
    n_reps, n_persons, n_keep = 20, 300, 99
    problem = problem_from_table(
        _table(np.full(8, 10)),
        TESTS,
        "n",
        ["disease_free", "diseased"],
        alpha=ALPHA,
        categories={t: ["neg", "pos"] for t in TESTS},
        prior_scales={"intercept_mu": -1.0, "intercept_sd": 1.0},
    )
    model = build_model(problem)
    codes = problem.pattern_codes
    names = ["intercept", *[f"{t}_pos_{k}" for t in TESTS for k in (0, 1)]]
    ranks = {name: [] for name in names}
    for rep in range(n_reps):
        # Draw the truth from the prior, then data from the model.
        truth_int = rng.normal(-1.0, 1.0)
        thetas = {t: np.vstack([rng.dirichlet(a) for a in ALPHA[t]]) for t in TESTS}
        prev = 1 / (1 + np.exp(-truth_int))
        lik = np.ones((len(codes), 2))
        for s, t in enumerate(TESTS):
            lik *= thetas[t][:, codes[:, s]].T
        counts = rng.multinomial(n_persons, lik @ np.array([1 - prev, prev]))
        with model:
            pm.set_data({"cell_count": counts.astype(float)})
        idata, _ = sample(model, sampler="pymc", draws=250, tune=250, chains=2, cores=1, seed=rep)
        post = idata["posterior"]
        keep = np.linspace(0, 499, n_keep).astype(int)
        draws_int = post["intercept"].to_numpy().reshape(-1)[keep]
        ranks["intercept"].append(int((draws_int < truth_int).sum()))
        for t in TESTS:
            th = post[f"theta_{t}"].to_numpy().reshape(-1, 2, 2)[keep]
            for k in (0, 1):
                ranks[f"{t}_pos_{k}"].append(int((th[:, k, 1] < thetas[t][k, 1]).sum()))
    # Ranks 0..n_keep uniform: chi-square over 4 bins per parameter (Bonferroni over 7) and a
    # KS test of all ranks pooled, at lenient levels.
    pvalues = {}
    for name, r in ranks.items():
        hist = np.bincount(np.minimum(np.array(r) * 4 // (n_keep + 1), 3), minlength=4)
        pvalues[name] = stats.chisquare(hist).pvalue
    pooled = np.concatenate([(np.array(r) + 0.5) / (n_keep + 1) for r in ranks.values()])
    ks = stats.kstest(pooled, "uniform").pvalue
    print("SBC p-values", pvalues, "pooled KS", ks)
    assert min(pvalues.values()) > 0.001 / len(ranks), pvalues
    assert ks > 0.001, ks
