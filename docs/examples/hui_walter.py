"""The latent-class core as a library: two tests, two populations, no gold standard.

Hui and Walter (1980) compared the Mantoux and Tine tuberculin tests in two populations
(Biometrics 36(1):167-171). Neither test is a gold standard; with two populations of different
prevalence and test accuracy assumed the same in both, the model is identified. Run from the
repository root (about 1-2 minutes, mostly compilation):

    .venv/bin/python docs/examples/hui_walter.py
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import expit

from models.latent_class import (
    build_model,
    category_probabilities,
    class_prevalence,
    diagnostics,
    problem_from_table,
    sample,
)

# One row per population x pattern of the two tests, with the number of persons.
TABLE = pd.DataFrame(
    {
        "population": ["1"] * 4 + ["2"] * 4,
        "mantoux": ["pos", "pos", "neg", "neg"] * 2,
        "tine": ["pos", "neg", "pos", "neg"] * 2,
        "n": [14, 4, 9, 528, 887, 31, 37, 367],
    }
)
CLASSES = ["uninfected", "infected"]
# Rows: classes (uninfected, infected); columns: categories (neg, pos). A weak prior (5 persons'
# worth) that a test is more often positive for the infected: it names the classes.
ALPHA = {test: np.array([[4.0, 1.0], [1.0, 4.0]]) for test in ("mantoux", "tine")}


def maximum_likelihood(table: pd.DataFrame) -> dict[str, float]:
    """Hui-Walter maximum-likelihood estimates, for comparison (6 parameters, 6 df)."""
    pops = sorted(table["population"].unique())

    def cell_probs(x: np.ndarray, pop: int) -> np.ndarray:
        prev = expit(x[pop])
        se_m, se_t, sp_m, sp_t = expit(x[2:])
        out = []
        for m, t in zip(table["mantoux"][:4], table["tine"][:4], strict=True):
            p_inf = (se_m if m == "pos" else 1 - se_m) * (se_t if t == "pos" else 1 - se_t)
            p_un = (1 - sp_m if m == "pos" else sp_m) * (1 - sp_t if t == "pos" else sp_t)
            out.append(prev * p_inf + (1 - prev) * p_un)
        return np.array(out)

    def nll(x: np.ndarray) -> float:
        total = 0.0
        for i, pop in enumerate(pops):
            counts = table.loc[table["population"] == pop, "n"].to_numpy()
            total -= counts @ np.log(cell_probs(x, i))
        return total

    fit = minimize(
        nll,
        np.array([-2.0, 1.0, 2.0, 2.0, 2.0, 2.0]),
        method="Nelder-Mead",
        options={"xatol": 1e-8, "fatol": 1e-10, "maxiter": 20000},
    )
    values = expit(fit.x)
    names = ["prevalence 1", "prevalence 2", "Se mantoux", "Se tine", "Sp mantoux", "Sp tine"]
    return {name: round(float(v), 4) for name, v in zip(names, values, strict=True)}


def main() -> None:
    for name in ("pymc", "pymc.sampling.mcmc"):  # PyMC's progress lines on stderr
        logging.getLogger(name).setLevel(logging.ERROR)
    pd.set_option("display.width", 100)
    problem = problem_from_table(
        TABLE,
        source_columns=["mantoux", "tine"],
        count_column="n",
        class_names=CLASSES,
        alpha=ALPHA,
        group_column="population",
        categories={"mantoux": ["neg", "pos"], "tine": ["neg", "pos"]},
        # Beta(1, 1): a uniform prior on each population's share of uninfected persons.
        class_share_prior={"uninfected": 1.0, "infected": 1.0},
    )
    idata, _ = sample(
        build_model(problem),
        sampler="pymc",
        draws=1000,
        tune=1000,
        chains=2,
        cores=1,
        seed=20,
        warm_up=False,
    )
    print("diagnostics:", {k: round(v, 3) for k, v in diagnostics(idata).items()})
    print("\nClass shares (posterior mean, 90% interval):")
    print(class_prevalence(problem, idata).round(4).to_string(index=False))
    accuracy = category_probabilities(problem, idata)
    # Sensitivity: P(pos | infected); specificity: P(neg | uninfected).
    keep = ((accuracy["class"] == "infected") & (accuracy["category"] == "pos")) | (
        (accuracy["class"] == "uninfected") & (accuracy["category"] == "neg")
    )
    accuracy = accuracy.loc[keep].assign(
        measure=lambda d: np.where(d["class"] == "infected", "sensitivity", "specificity")
    )
    print("\nTest accuracy (posterior mean, 90% interval):")
    print(accuracy[["source", "measure", "mean", "lower", "upper"]].round(4).to_string(index=False))
    print("\nMaximum likelihood, for comparison:", maximum_likelihood(TABLE))


if __name__ == "__main__":
    main()
