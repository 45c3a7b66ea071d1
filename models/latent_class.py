"""Generic Bayesian latent-class model on count tables (PyMC 6).

The core knows nothing of citizenship: it takes

- per source (test, rater, register) a list of observed categories and, per class, a Dirichlet
  prior over them (``alpha``);
- a pattern dictionary: for each evidence pattern, the category code of every source;
- groups (e.g. block x age group) with an optional age index and nested random-effect levels
  (e.g. county, tract, block) for the class prior;
- an exact table of ``(group, pattern, count)`` cells, and/or aggregated noisy tables
  (``value ~ Normal(mu, mu (1 - p) + sigma^2)``) at coarser geography or coarser patterns.

Every person has a latent class; per source the observed category is class-conditionally
categorical and sources are independent given the class. The class is marginalised per cell in
probability space (product of per-source probabilities per pattern, one log per cell), weighted by
the cell count: ``sum_c n_c log sum_k pi_{g(c),k} prod_s theta_{s,k,x_{p(c),s}}``.

Class prior: multinomial logit with the first class as reference:
``eta_{g,k} = intercept_k + age_{a(g),k} + sum_levels u_{l, idx_l(g), k}``. The age effect is a
``ZeroSumNormal`` beside the intercept (the field notes found that necessary for R-hat). A top
level with few units (counties) gets one intercept per unit. Random effects ``u_l`` sum to zero
within their parent unit and are written in an orthonormal basis of that subspace
(:class:`NestedZeroSumBasis`), centred (``Normal(0, sigma_l)`` coordinates, for units with much
data such as tracts) or non-centred (``sigma_l * Normal(0, 1)``). Dirichlet source parameters are
additive log-ratios against the ``none`` category, all sources in one vector
(:mod:`models.source_simplex`).
Together these took the condition number of the posterior correlation at the mode, default
scenario with county and tract levels, from 39,000 to 288.

As a library (docs/LIBRARY.md): :func:`problem_from_table` -> :func:`build_model` ->
:func:`sample` -> :func:`diagnostics`, :func:`class_prevalence`, :func:`category_probabilities`.
"""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from models.source_simplex import SourceSimplexLayout, source_simplex_layout

log = logging.getLogger(__name__)


@dataclass
class AggregateTable:
    """A measured table over aggregation units (e.g. county x age) with known noise.

    Parameters
    ----------
    name
        Table name (from the measurements file).
    group_unit
        For every group, the unit it belongs to in this table (``-1``: not covered).
    unit_labels
        Labels of the units (e.g. ``(county_id, age_group)``).
    row_unit, row_pattern
        Per measured row: the unit and the (full or coarse) pattern code.
    pattern_level
        ``full`` or ``coarse``.
    value, sigma
        Measured (noisy) counts and the noise standard deviation (0 for exact).
    dispersion
        Per pattern code, how many times the binomial variance the counts show between units
        (``None``: 1). The noisy likelihood's variance is ``dispersion N p (1 - p) + sigma^2``.
    """

    name: str
    group_unit: np.ndarray
    unit_labels: list
    row_unit: np.ndarray
    row_pattern: np.ndarray
    pattern_level: str
    value: np.ndarray
    sigma: np.ndarray
    geo_level: str = ""
    dispersion: np.ndarray | None = None


@dataclass
class LatentClassProblem:
    """Everything the model needs (see the module docstring)."""

    source_names: list[str]
    categories: list[list[str]]
    class_names: list[str]
    pattern_codes: np.ndarray
    alpha: list[np.ndarray]
    n_groups: int
    cell_group: np.ndarray
    cell_pattern: np.ndarray
    cell_count: np.ndarray
    group_age: np.ndarray | None = None
    age_labels: list[str] | None = None
    levels: list[tuple[str, np.ndarray, list]] = field(default_factory=list)
    group_population: np.ndarray | None = None
    aggregates: list[AggregateTable] = field(default_factory=list)
    # Coarse patterns: per source, the flag index of each category (0 = raises no flag);
    # coarse_weights (n_coarse x 2^n_flags) maps "P(flags raised subset of G)" to P(coarse).
    category_flags: list[np.ndarray] | None = None
    coarse_weights: np.ndarray | None = None
    coarse_labels: list[str] | None = None
    prior_scales: dict = field(default_factory=dict)
    centered_levels: tuple[str, ...] = ()
    # Per source, (k x C) True where a category is impossible for a class by definition (e.g. a
    # naturalization certificate for a native-born citizen); its probability is fixed at
    # ``structural_zero_prob`` (room for false links) instead of being learned.
    structural_zeros: list[np.ndarray] | None = None
    structural_zero_prob: float = 1e-4
    # Per source, (k,) the category each class's log-ratios are taken against (None: the first
    # possible); set by :func:`modal_references`. A reparametrisation only: the prior and
    # posterior over probabilities do not change.
    source_reference: list[np.ndarray] | None = None
    # Per source, (k,) the class whose probabilities each class shares (itself: its own), e.g.
    # a subclass that differs from its parent class in some sources only.
    source_class_tie: list[np.ndarray] | None = None
    # Per non-reference class, the non-reference class (index into class_names[1:]) whose
    # class-prior logit its own is an offset from (-1: none), e.g. a subclass whose share moves
    # with its parent's across tracts. None: all logits against the reference class alone.
    class_logit_base: list[int] | None = None
    # Source behaviour varies by age group (needs group_age): per source, class and age group,
    # log-ratios = the class's pooled log-ratios + a sum-to-zero-over-age deviation.
    source_age_effects: bool = False
    # Per pattern, how many times the multinomial variance the class split of a cell shows
    # (persons of a household share status); used by posterior prediction only. None: 1.
    pattern_split_dispersion: np.ndarray | None = None
    # Dirichlet concentration on the class shares, one value per class in class order (None: the
    # logit-normal prior of ``intercept_mu``/``intercept_sd``). It replaces the intercept's prior:
    # see :func:`problem_from_table` (``class_share_prior``) for what it means with groups.
    class_share_prior: np.ndarray | None = None

    @property
    def n_source_ages(self) -> int:
        """Age groups the source probabilities vary over (1: the same at every age)."""
        if self.source_age_effects and self.group_age is not None:
            return len(self.age_labels) if self.age_labels else int(self.group_age.max()) + 1
        return 1

    @property
    def group_source_age(self) -> np.ndarray:
        """Per group, its row in the age axis of the source probabilities."""
        if self.n_source_ages == 1:
            return np.zeros(self.n_groups, dtype=np.int64)
        return np.asarray(self.group_age, dtype=np.int64)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def n_patterns(self) -> int:
        return int(self.pattern_codes.shape[0])

    def validate(self) -> None:
        """Check shapes (raises ``ValueError`` with what is wrong)."""
        k = self.n_classes
        if k < 2:
            raise ValueError("need at least two classes")
        if self.pattern_codes.shape[1] != len(self.source_names):
            raise ValueError("pattern_codes must have one column per source")
        for s, (cats, a) in enumerate(zip(self.categories, self.alpha, strict=True)):
            if a.shape != (k, len(cats)):
                raise ValueError(f"alpha of source {s} has shape {a.shape}, want {(k, len(cats))}")
            if self.pattern_codes[:, s].max(initial=0) >= len(cats):
                raise ValueError(f"pattern code out of range for source {self.source_names[s]}")
        for name, arr in (("cell_group", self.cell_group), ("cell_pattern", self.cell_pattern)):
            if len(arr) and (arr.min() < 0):
                raise ValueError(f"{name} has negative entries")
        if len(self.cell_group) and self.cell_group.max() >= self.n_groups:
            raise ValueError("cell_group out of range")
        if len(self.cell_pattern) and self.cell_pattern.max() >= self.n_patterns:
            raise ValueError("cell_pattern out of range")
        if self.source_age_effects and self.group_age is None:
            raise ValueError("source_age_effects needs group_age")
        check_prior_scales(
            self.prior_scales, [name for name, _, _ in self.levels], "LatentClassProblem"
        )
        if self.class_share_prior is not None:
            share_prior = np.asarray(self.class_share_prior, dtype=float)
            if share_prior.shape != (k,) or not np.all(share_prior > 0):
                raise ValueError(f"class_share_prior must be {k} positive numbers (one per class)")
            if class_logit_map(self) is not None:
                raise ValueError("class_share_prior cannot be combined with class_logit_base")


# --------------------------------------------------------------------------------------------
# Coarse-pattern algebra (shared by the PyMC graph and numpy prediction)


def coarse_weight_matrix(n_flags: int, coarse_of_subset) -> tuple[np.ndarray, list[str]]:
    """Linear map from ``S_G`` (prob. that only flags in G are raised) to P(coarse pattern).

    ``S_G = prod_s P(flag(x_s) in G or none)``; the probability that exactly the flags ``F``
    are raised is ``sum_{G subset F} (-1)^{|F|-|G|} S_G`` (inclusion-exclusion). Subsets are
    bitmasks ``0 .. 2^n_flags - 1``.
    """
    subsets = range(2**n_flags)
    labels: list[str] = []
    exact_to_coarse = []
    for mask in subsets:
        c = coarse_of_subset(mask)
        if c not in labels:
            labels.append(c)
        exact_to_coarse.append(labels.index(c))
    weights = np.zeros((len(labels), 2**n_flags))
    for f_mask in subsets:
        for g_mask in subsets:
            if g_mask & ~f_mask:
                continue
            sign = (-1) ** (bin(f_mask).count("1") - bin(g_mask).count("1"))
            weights[exact_to_coarse[f_mask], g_mask] += sign
    return weights, labels


def _subset_masks(category_flags: np.ndarray, n_flags: int) -> np.ndarray:
    """(2^n_flags, n_categories) 0/1: category allowed when only flags in G may be raised."""
    out = np.zeros((2**n_flags, len(category_flags)))
    for g in range(2**n_flags):
        for c, f in enumerate(category_flags):
            out[g, c] = 1.0 if f == 0 or (g >> (f - 1)) & 1 else 0.0
    return out


def n_flags_of(problem: LatentClassProblem) -> int:
    return int(np.log2(problem.coarse_weights.shape[1]))


# --------------------------------------------------------------------------------------------
# PyMC model


def zero_mask(problem: LatentClassProblem, s: int) -> np.ndarray:
    """(k x C) structural-zero mask of source ``s`` (all False without one)."""
    if problem.structural_zeros is None:
        return np.zeros(problem.alpha[s].shape, dtype=bool)
    return np.asarray(problem.structural_zeros[s], dtype=bool)


def source_layout(problem: LatentClassProblem) -> SourceSimplexLayout:
    """The problem's source probabilities as one vector of log-ratios (see
    :mod:`models.source_simplex`)."""
    return source_simplex_layout(
        problem.source_names,
        problem.categories,
        problem.class_names,
        problem.alpha,
        [zero_mask(problem, s) for s in range(len(problem.source_names))],
        problem.structural_zero_prob,
        problem.source_reference,
        problem.source_class_tie,
    )


def modal_references(problem: LatentClassProblem, theta: list[np.ndarray]) -> list[np.ndarray]:
    """Per source and class, the possible category with the highest probability in ``theta``
    (e.g. :func:`em_estimates`): the best-determined reference for the log-ratios."""
    refs = []
    for s, t in enumerate(theta):
        masked = np.where(zero_mask(problem, s), -np.inf, np.asarray(t, dtype=float))
        refs.append(np.argmax(masked, axis=1).astype(np.int64))
    return refs


def source_probabilities(problem: LatentClassProblem, layout: SourceSimplexLayout):
    """All sources' probabilities: ``(log_probs, thetas)``.

    ``theta_logratio`` holds every free log-ratio, with the joint Dirichlet prior of
    :mod:`models.source_simplex` (potential ``theta_prior``); ``log_probs`` is the
    (source x class rows, categories) table of log-probabilities and ``thetas[s]`` the
    deterministic ``theta_{source}`` (k x C).
    """
    import pymc as pm
    import pytensor.tensor as pt

    model = pm.modelcontext(None)
    if layout.n_free:
        model.add_coord("theta_free", layout.free_labels)
        # A flat base measure plus the joint prior as a potential, not a CustomDist: PyMC's
        # NUTS warm-up pickles the model into a child process, where a CustomDist's logp
        # registration does not exist.
        free = pm.Flat("theta_logratio", dims="theta_free", initval=layout.prior_mode())
        pm.Potential("theta_prior", layout.prior_logp(free, pt))
    else:
        free = pt.zeros((0,))
    log_probs = layout.log_probs(free, pt)
    thetas = [
        pm.Deterministic(
            f"theta_{name}",
            layout.source_matrix(log_probs, s, pt),
            dims=("class", f"cat_{name}"),
        )
        for s, name in enumerate(problem.source_names)
    ]
    return log_probs, thetas


def age_deviation_entries(problem: LatentClassProblem, s: int) -> tuple[np.ndarray, np.ndarray]:
    """``(class, category)`` entries of source ``s`` that get an age deviation.

    Every possible category of a class except its reference (the first possible one, ``none``
    in this pipeline), and none in a class with a single possible category.
    """
    possible = ~zero_mask(problem, s)
    free = possible.copy()
    for k in range(free.shape[0]):
        allowed = np.flatnonzero(possible[k])
        free[k, allowed[:1]] = False
    return np.nonzero(free)


def age_varying_probabilities(problem: LatentClassProblem, s: int, theta):
    """``theta_{source}_by_age`` (age x k x C) around the pooled ``theta_{source}`` (k x C).

    Why: sources behave differently by age within a class. Measured on the default scenario's
    exact fit with age-free source probabilities, among persons whose only record is a Numident
    "noncitizen" the model put 30% of children but 9% of 35-64 year olds in a citizen class,
    against 7% and 15% in truth: a child's stale Numident entry (derived citizenship) and an
    adult's (naturalized without telling SSA) are different events. Log-ratios against the
    class's reference category get a ``ZeroSumNormal`` deviation over age groups (scale
    ``source_age_sd``, default 1: a factor of e per standard deviation), so ``theta_{source}``
    stays the pooled behaviour and rare class x age combinations shrink towards it.
    Measured on that fit, it barely moved the error (27% of those children placed in a
    citizen class) and mixed worse (R-hat 1.041, bulk ESS 68), so the pipeline leaves it off.
    """
    import pymc as pm
    import pytensor.tensor as pt

    name = problem.source_names[s]
    n_age = problem.n_source_ages
    mask = zero_mask(problem, s)
    ks, cs = age_deviation_entries(problem, s)
    if not len(ks):
        return pt.repeat(theta[None], n_age, axis=0)
    model = pm.modelcontext(None)
    coord = f"{name}_age_free"
    model.add_coord(
        coord,
        [
            f"{problem.class_names[k]}:{problem.categories[s][c]}"
            for k, c in zip(ks, cs, strict=True)
        ],
    )
    sd = float(problem.prior_scales.get("source_age_sd", 1.0))
    dev = pm.ZeroSumNormal(f"age_dev_{name}", sigma=sd, dims=(coord, "age"))
    full = pt.set_subtensor(pt.zeros((n_age, *mask.shape))[:, ks, cs], dev.T)
    logit = pt.log(theta)[None] + full
    logit = logit - pt.max(logit, axis=-1, keepdims=True)
    expo = pt.exp(logit) * (~mask)[None].astype("float64")
    eps = problem.structural_zero_prob
    scale = (1.0 - eps * mask.sum(axis=1))[None, :, None]
    by_age = expo / pt.sum(expo, axis=-1, keepdims=True) * scale + eps * mask[None]
    return pm.Deterministic(f"theta_{name}_by_age", by_age, dims=("age", "class", f"cat_{name}"))


def _apply_zeros(problem: LatentClassProblem, s: int, theta: np.ndarray) -> np.ndarray:
    mask = zero_mask(problem, s)
    if not mask.any():
        return theta
    eps = problem.structural_zero_prob
    out = np.where(mask, 0.0, theta)
    out = out / out.sum(axis=1, keepdims=True) * (1.0 - eps * mask.sum(axis=1, keepdims=True))
    return np.where(mask, eps, out)


def build_model(problem: LatentClassProblem):
    """The PyMC model of ``problem`` (see the module docstring).

    Parameters
    ----------
    problem
        E.g. from :func:`problem_from_table`; checked with :meth:`LatentClassProblem.validate`.

    Returns
    -------
    pymc.Model
        Free variables ``theta_logratio`` (all sources' log-ratios) and ``intercept`` (the
        non-reference classes' logits against the first class; per top-level unit with few
        groups), plus random effects for groups (``sigma_group``, ``z_group``); deterministic
        ``theta_{source}`` (classes x categories: ``P(category | class)``). Sample it with
        :func:`sample`; the exact cell counts are the data ``cell_count``
        (``pm.set_data`` refits new counts without rebuilding).
    """
    import pymc as pm
    import pytensor.tensor as pt

    from models.cell_loglik import cell_mixture_loglik

    problem.validate()
    scales = {
        "intercept_mu": 0.0,
        "intercept_sd": 2.5,
        "age_sd": 1.0,
        "level_sd": 1.0,
        **problem.prior_scales,
    }
    coords = {"class": problem.class_names, "class_nonref": problem.class_names[1:]}
    for s, name in enumerate(problem.source_names):
        coords[f"cat_{name}"] = problem.categories[s]
    if problem.group_age is not None:
        coords["age"] = problem.age_labels
    for name, _, labels in problem.levels:
        coords[name] = [str(x) for x in labels]

    with pm.Model(coords=coords) as model:
        layout = source_layout(problem)
        log_probs, thetas = source_probabilities(problem, layout)
        n_age = problem.n_source_ages
        codes = problem.pattern_codes
        # Class-conditional probability of every observed pattern: product over sources.
        if n_age > 1:
            thetas = [age_varying_probabilities(problem, s, t) for s, t in enumerate(thetas)]
            lik = thetas[0][:, :, codes[:, 0]]
            for s in range(1, len(thetas)):
                lik = lik * thetas[s][:, :, codes[:, s]]
            lik = lik.transpose(0, 2, 1)  # (n_age, n_patterns, k)
        else:
            thetas = [t[None] for t in thetas]  # (1, k, C): one age row
            # As a sum of gathered log-probabilities: one gather instead of a product of
            # seven, and one scatter-add in the gradient.
            index = layout.pattern_index(codes)
            lik = pt.exp(pt.sum(log_probs.ravel()[index], axis=1))[None]

        top = fixed_top_level(problem)
        if problem.class_share_prior is not None:
            intercept = class_share_intercept(problem, top)
            unit_value = intercept[None, :] if top is None else intercept.T
        elif top is None:
            intercept = pm.Normal(
                "intercept", scales["intercept_mu"], scales["intercept_sd"], dims="class_nonref"
            )
            unit_value = intercept[None, :]  # one root unit
        else:
            # Few top units (e.g. 2-5 counties): one intercept per unit. An overall intercept
            # beside a sum-to-zero county effect is correlated with it when counties differ in
            # size (measured on the default scenario: the worst-conditioned posterior
            # direction once the tract effects were reparametrised).
            intercept = pm.Normal(
                "intercept",
                scales["intercept_mu"],
                scales["intercept_sd"],
                dims=("class_nonref", top[0]),
            )
            unit_value = intercept.T
        # Walk down the levels, carrying each unit's class-prior logits (before age).
        for level, (name, _, labels) in enumerate(problem.levels):
            sd = scales.get(f"{name}_sd", scales["level_sd"])
            if level == 0 and top is not None:
                continue
            parent = parent_of_units(problem, level)
            if is_fixed_level(problem, labels):
                # Too few units to learn a variance: a sum-to-zero effect with a fixed scale.
                eff = pm.ZeroSumNormal(f"effect_{name}", sigma=sd, dims=("class_nonref", name))
                unit_value = unit_value[parent] + eff.T
                continue
            cols = varying_classes(problem)
            dim = "class_nonref" if cols is None else "class_varying"
            if cols is not None and dim not in model.coords:
                model.add_coord(dim, [problem.class_names[1 + j] for j in cols])
            sigma = pm.HalfNormal(f"sigma_{name}", sd, dims=dim)
            if name in problem.centered_levels:
                # Centred, units with much data each (tracts): each unit's logits around its
                # parent's. Measured on the default scenario, this mixed better than centred
                # effects constrained to sum to zero, whose constraint couples the county
                # intercepts with every tract (bulk ESS 233 -> see docs/RESULTS.md, "Model").
                inherited = unit_value[parent]
                eta = pm.Normal(
                    f"eta_{name}",
                    varying_part(problem, inherited),
                    sigma[None, :],
                    dims=(name, dim),
                )
                unit_value = set_varying(problem, inherited, eta, pt)
                continue
            basis = nested_zero_sum_basis(problem, level)
            coords_free = f"{name}_free"
            model.add_coord(coords_free, np.arange(basis.n_free))
            z = pm.Normal(f"z_{name}", 0.0, 1.0, dims=(coords_free, dim))
            inherited = unit_value[parent]
            effect = basis.expand(z * sigma[None, :], pt)
            unit_value = set_varying(
                problem, inherited, varying_part(problem, inherited) + effect, pt
            )
        age = None
        if problem.group_age is not None:
            age = pm.ZeroSumNormal(
                "age_effect", sigma=scales["age_sd"], dims=("class_nonref", "age")
            )
            age = age.T
        pi = group_class_shares(problem, unit_value, age, pt)  # (n_groups, k)

        if len(problem.cell_count):
            # Each cell reads its pattern's row at its group's source-age row.
            n_pat = problem.n_patterns
            cell_row = problem.cell_pattern.astype(np.int64)
            if n_age > 1:
                cell_row = problem.group_source_age[problem.cell_group] * n_pat + cell_row
            # Counts as data, so a compiled model can be refitted on new counts (SBC).
            counts = pm.Data("cell_count", problem.cell_count.astype("float64"))
            pm.Potential(
                "cells_loglik",
                cell_mixture_loglik(
                    pi, lik.reshape((n_age * n_pat, -1)), problem.cell_group, cell_row, counts
                ),
            )

        coarse = None
        if problem.aggregates and problem.coarse_weights is not None:
            n_flags = n_flags_of(problem)
            s_g = None
            for s in range(len(thetas)):
                masks = _subset_masks(problem.category_flags[s], n_flags)  # (2^F, C_s)
                term = pt.dot(thetas[s], masks.T)  # (n_age, k, 2^F)
                s_g = term if s_g is None else s_g * term
            # (n_age, n_coarse, k)
            coarse = pt.dot(s_g, problem.coarse_weights.T).transpose(0, 2, 1)
            coarse = pt.clip(coarse, 1e-12, 1.0)

        for table in problem.aggregates:
            covered = np.flatnonzero(table.group_unit >= 0)
            n_units = len(table.unit_labels)
            pop = problem.group_population[covered].astype("float64")
            unit_pop = np.bincount(table.group_unit[covered], weights=pop, minlength=n_units)
            unit_of_covered = table.group_unit[covered]
            if len(covered) == n_units and len(np.unique(unit_of_covered)) == n_units:
                # One group per unit (e.g. block x age tables): a gather, no aggregation.
                order = np.empty(n_units, dtype=np.int64)
                order[unit_of_covered] = covered
                unit_pi = pi[order]
            else:
                # Population-weighted mean of the groups' class shares, as one dense product
                # (units x groups): much faster to differentiate than a scatter-add.
                weights = np.zeros((n_units, problem.n_groups))
                weights[unit_of_covered, covered] = pop / np.maximum(unit_pop, 1.0)[unit_of_covered]
                unit_pi = pt.dot(weights, pi)
            by_pattern = lik if table.pattern_level == "full" else coarse
            # Dense (age x units x patterns) probabilities, then one flat gather of the measured
            # rows (each unit read at its own age).
            unit_pattern = pt.stack([pt.dot(unit_pi, by_pattern[a].T) for a in range(n_age)])
            n_pat = int(
                problem.n_patterns if table.pattern_level == "full" else len(problem.coarse_weights)
            )
            row_age = unit_source_age(problem, table)[table.row_unit]
            p_row = unit_pattern.ravel()[
                (row_age * n_units + table.row_unit) * n_pat + table.row_pattern
            ]
            p_row = pt.clip(p_row, 1e-12, 1.0)
            n_row = unit_pop[table.row_unit]
            exact = table.sigma <= 0
            if exact.any():
                e = np.flatnonzero(exact)
                pm.Potential(
                    f"{table.name}_exact_loglik",
                    pt.dot(table.value[e].astype("float64"), pt.log(p_row[e])),
                )
            if (~exact).any():
                g = np.flatnonzero(~exact)
                mu = n_row[g] * p_row[g]
                # Overdispersion (AggregateTable.dispersion): real counts vary between units
                # more than the binomial the model implies. With the variance tied to the mean
                # alone, the likelihood bought variance by inflating mu.
                scale = 1.0 if table.dispersion is None else table.dispersion[table.row_pattern[g]]
                var = scale * mu * (1.0 - p_row[g]) + table.sigma[g] ** 2 + 1e-6
                pm.Potential(
                    f"{table.name}_noisy_loglik",
                    pt.sum(
                        -0.5 * pt.log(2 * np.pi * var)
                        - 0.5 * (table.value[g].astype("float64") - mu) ** 2 / var
                    ),
                )
    return model


def class_share_intercept(problem: LatentClassProblem, top):
    """The class-prior intercept under a Dirichlet prior on the class shares (inside a model).

    The intercept holds the logits of the non-reference classes against the first class
    (``pi = softmax([0, intercept])``). If ``pi ~ Dirichlet(c)``, those logits have the density
    ``prod_k pi_k^c_k / B(c)`` (the Jacobian of the softmax is ``prod_k pi_k``), so a flat
    intercept plus that log-density as a potential is exactly the Dirichlet prior on ``pi``.
    ``top`` (:func:`fixed_top_level`): with one intercept per top unit (few groups), each unit's
    shares get the prior independently. Being a potential, this prior cannot be forward-sampled
    (``pm.sample_prior_predictive``); sampling the model with zero counts draws from it.
    """
    import pymc as pm
    import pytensor.tensor as pt

    concentration = np.asarray(problem.class_share_prior, dtype="float64")
    if top is None:
        intercept = pm.Flat("intercept", dims="class_nonref")
        logits = pt.concatenate([pt.zeros((1,)), intercept])
        log_shares = logits - pt.logsumexp(logits)
        pm.Potential("class_share_prior", pt.dot(concentration, log_shares))
        return intercept
    intercept = pm.Flat("intercept", dims=("class_nonref", top[0]))
    logits = pt.concatenate([pt.zeros((1, len(top[2]))), intercept], axis=0)
    log_shares = logits - pt.logsumexp(logits, axis=0, keepdims=True)
    pm.Potential("class_share_prior", pt.sum(concentration[:, None] * log_shares))
    return intercept


def unit_source_age(problem: LatentClassProblem, table: AggregateTable) -> np.ndarray:
    """Per unit of ``table``, its row in the age axis of the source probabilities.

    With age-varying sources every unit must hold one age group (e.g. county x age units).
    """
    n_units = len(table.unit_labels)
    out = np.zeros(n_units, dtype=np.int64)
    if problem.n_source_ages == 1:
        return out
    covered = table.group_unit >= 0
    ages = problem.group_source_age[covered]
    units = table.group_unit[covered]
    out[units] = ages
    if (out[units] != ages).any():
        raise ValueError(
            f"table {table.name}: a unit spans several age groups, which age-varying source "
            "probabilities cannot read; measure it by age group or set source_age_effects false"
        )
    return out


def em_start(
    problem: LatentClassProblem,
    iterations: int = 300,
    estimates: tuple[list[np.ndarray], np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """A labelled starting point: EM (MAP under the Dirichlet priors) from the prior means.

    Latent-class posteriors have label-switched modes; a chain that starts near a swapped
    mode stays there (measured on the tiny scenario: one of two chains swapped native and
    noncitizen). EM started at the prior means (which carry the labels) climbs to the labelled
    mode; NUTS starts there. Geography is ignored here (one class share per age group).
    ``estimates``: the output of :func:`em_estimates`, if already computed.
    """
    theta, share = estimates if estimates is not None else em_estimates(problem, iterations)
    return _start_point(problem, theta, share)


def modal_reference_start(problem: LatentClassProblem) -> dict[str, np.ndarray]:
    """The pipeline's start: EM estimates, then each source row's log-ratio reference set to its
    modal EM category (on ``problem``: call before :func:`build_model`), then the EM point."""
    estimates = em_estimates(problem)
    problem.source_reference = modal_references(problem, estimates[0])
    return em_start(problem, estimates=estimates)


def em_estimates(
    problem: LatentClassProblem, iterations: int = 300
) -> tuple[list[np.ndarray], np.ndarray]:
    """EM estimates of the source probabilities (per source, k x C) and class shares per age
    group (n_age x k), as used by :func:`em_start`."""
    k = problem.n_classes
    theta = [
        _apply_zeros(problem, s, a / a.sum(axis=1, keepdims=True))
        for s, a in enumerate(problem.alpha)
    ]
    ages = problem.group_age if problem.group_age is not None else np.zeros(problem.n_groups, int)
    n_age = int(ages.max()) + 1
    cell_age = ages[problem.cell_group] if len(problem.cell_count) else np.zeros(0, int)
    counts = problem.cell_count.astype(float)
    if not len(counts):  # aggregate tables only: EM over the pooled full-pattern rows, if any
        full = [a for a in problem.aggregates if a.pattern_level == "full"]
        if not full:
            return theta, np.full((n_age, k), 1.0 / k)
        a = full[0]
        unit_age = np.zeros(len(a.unit_labels), dtype=int)
        unit_age[a.group_unit[a.group_unit >= 0]] = ages[a.group_unit >= 0]
        cell_age, counts = unit_age[a.row_unit], np.clip(a.value, 0, None).astype(float)
        patterns = a.row_pattern
    else:
        patterns = problem.cell_pattern
    # EM ignores geography, so cells of one age group and pattern share their responsibilities:
    # iterate over the (age, pattern) totals (default scenario: 67,293 cells -> 600 rows, EM
    # 14.6 s -> well under a second).
    n_pat = problem.n_patterns
    totals = np.bincount(cell_age * n_pat + patterns, weights=counts, minlength=n_age * n_pat)
    rows = np.flatnonzero(totals)
    cell_age, patterns, counts = rows // n_pat, rows % n_pat, totals[rows]
    mu0 = float(problem.prior_scales.get("intercept_mu", 0.0))
    share = np.tile(np.r_[1.0, np.full(k - 1, np.exp(mu0))], (n_age, 1))
    share /= share.sum(axis=1, keepdims=True)
    for _ in range(iterations):
        lik = np.ones((problem.n_patterns, k))
        for s in range(len(theta)):
            lik *= theta[s][:, problem.pattern_codes[:, s]].T
        r = share[cell_age] * lik[patterns]
        r /= np.maximum(r.sum(axis=1, keepdims=True), 1e-300)
        w = r * counts[:, None]
        share = np.zeros((n_age, k))
        np.add.at(share, cell_age, w)
        share = (share + 1.0) / (share + 1.0).sum(axis=1, keepdims=True)
        for s in range(len(theta)):
            tot = np.zeros_like(theta[s])
            codes = problem.pattern_codes[patterns, s]
            for c in range(tot.shape[1]):
                tot[:, c] = w[codes == c].sum(axis=0)
            post = tot + np.maximum(problem.alpha[s] - 1.0, 0.0) + 1e-3
            tie = problem.source_class_tie[s] if problem.source_class_tie else np.arange(k)
            for c in np.flatnonzero(tie != np.arange(k)):  # a tied class pools with its target
                post[tie[c]] += tot[c]
            post = post[tie]
            theta[s] = _apply_zeros(problem, s, post / post.sum(axis=1, keepdims=True))
    return theta, share


def _start_point(problem, theta, share) -> dict[str, np.ndarray]:
    theta = [
        np.clip(t, 1e-4, None) / np.clip(t, 1e-4, None).sum(axis=1, keepdims=True) for t in theta
    ]
    logit = np.log(share[:, 1:]) - np.log(share[:, :1])  # (n_age, k-1)
    logit_map = class_logit_map(problem)
    if logit_map is not None:  # model coordinates: offsets from the base classes
        logit = logit @ np.linalg.inv(logit_map)
    point = {}
    layout = source_layout(problem)
    if layout.n_free:
        point["theta_logratio"] = layout.free_from_probabilities(theta)
    if problem.n_source_ages > 1:
        for s, name in enumerate(problem.source_names):
            ks, _ = age_deviation_entries(problem, s)
            if len(ks):
                point[f"age_dev_{name}"] = np.zeros((len(ks), problem.n_source_ages))
    point["intercept"] = logit.mean(axis=0)
    top = fixed_top_level(problem)
    if top is not None:
        point["intercept"] = np.repeat(point["intercept"][:, None], len(top[2]), axis=1)
    if problem.group_age is not None:
        point["age_effect"] = (logit - logit.mean(axis=0, keepdims=True)).T
    return point


def fixed_top_level(problem: LatentClassProblem):
    """The first level if it has too few units for a random effect (it gets one intercept per
    unit instead of an overall intercept), else ``None``."""
    if problem.levels and is_fixed_level(problem, problem.levels[0][2]):
        return problem.levels[0]
    return None


def is_fixed_level(problem: LatentClassProblem, labels) -> bool:
    """Whether a level has too few units for a random effect (see ``min_random_units``)."""
    return len(labels) < int(problem.prior_scales.get("min_random_units", 8))


@dataclass
class NestedZeroSumBasis:
    """An orthonormal basis of effects that sum to zero within each parent unit.

    A level with ``n_p`` units in parent ``p`` has ``n_p - 1`` free coordinates per parent
    (``n_free`` in all). :meth:`expand` maps free coordinates to unit effects with PyMC's
    ``ZeroSumNormal`` construction (a Householder reflection per parent), so iid ``Normal(0, s)``
    coordinates give exactly a sum-to-zero-within-parent normal effect of scale ``s``.

    Why: tract effects that sum to zero only overall form a ridge with the county effects, and
    an effect centred by subtracting its parent mean leaves the mean direction of every parent
    unidentified (held by the prior alone). Measured on the default scenario (Hessian at the
    mode, county + tract levels): the posterior correlation matrix had condition number 39,000
    (about 200 leapfrog steps per draw for a diagonal mass matrix) with the subtract-the-mean
    form, the unidentified directions and the scale-times-effect funnel leading.
    """

    n_units: int
    n_free: int
    free_parent: np.ndarray  # parent of each free coordinate
    parent_size: np.ndarray  # units per parent
    unit_row: np.ndarray  # row of each unit in concat([free values, last values])

    def expand(self, free, xp):
        """Unit effects ``(n_units, m)`` from free coordinates ``(n_free, m)``.

        ``xp`` is ``numpy`` or ``pytensor.tensor``.
        """
        n_parents = len(self.parent_size)
        root = np.sqrt(self.parent_size.astype(float))[:, None]
        if xp is np:
            sums = np.zeros((n_parents, free.shape[1]))
            np.add.at(sums, self.free_parent, free)
        else:
            sums = xp.zeros((n_parents, free.shape[1]))
            sums = xp.inc_subtensor(sums[self.free_parent], free)
        norm = sums / (root + self.parent_size[:, None])
        last = -sums / root  # the unit that closes each parent
        rows = xp.concatenate([free - norm[self.free_parent], last], axis=0)
        return rows[self.unit_row]


def parent_of_units(problem: LatentClassProblem, level: int) -> np.ndarray:
    """Parent unit of every unit of ``problem.levels[level]`` (zeros at the top level)."""
    _, idx, labels = problem.levels[level]
    parent_of_unit = np.zeros(len(labels), dtype=np.int64)
    if level > 0:
        _, parent_idx, _ = problem.levels[level - 1]
        parent_of_unit[idx] = parent_idx
    return parent_of_unit


def group_unit_of_last_level(problem: LatentClassProblem) -> np.ndarray:
    """Unit of the finest level for every group (zeros without levels)."""
    if not problem.levels:
        return np.zeros(problem.n_groups, dtype=np.int64)
    return problem.levels[-1][1]


def nested_zero_sum_basis(problem: LatentClassProblem, level: int) -> NestedZeroSumBasis:
    """The :class:`NestedZeroSumBasis` of ``problem.levels[level]`` (top level: one parent)."""
    _, _, labels = problem.levels[level]
    n_units = len(labels)
    parent_of_unit = parent_of_units(problem, level)
    n_parents = int(parent_of_unit.max()) + 1 if n_units else 0
    parent_size = np.bincount(parent_of_unit, minlength=n_parents)
    order = np.argsort(parent_of_unit, kind="stable")
    sorted_parent = parent_of_unit[order]
    is_last = np.r_[sorted_parent[1:] != sorted_parent[:-1], True]
    free_units = order[~is_last]
    last_units = order[is_last]  # one per non-empty parent, in parent order
    unit_row = np.empty(n_units, dtype=np.int64)
    unit_row[free_units] = np.arange(len(free_units))
    # Rows after the free values: one "last" row per parent (empty parents hold none).
    unit_row[last_units] = len(free_units) + parent_of_unit[last_units]
    present = parent_size > 0
    if not present.all():  # keep parents dense so ``last`` rows line up with parent ids
        raise ValueError(f"level {labels!r}: every parent unit must hold at least one unit")
    return NestedZeroSumBasis(
        n_units=n_units,
        n_free=len(free_units),
        free_parent=parent_of_unit[free_units],
        parent_size=parent_size,
        unit_row=unit_row,
    )


def count_free_parameters(model) -> int:
    """Number of unconstrained parameters."""
    return int(sum(np.prod(v.shape) for v in model.initial_point().values()))


def _duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``2 h 07 min``."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def progress_message(
    label: str,
    done: int,
    total: int,
    divergences: int,
    tuning: bool,
    elapsed: float,
) -> str:
    """One progress line: draws done of total (all chains, tuning included), divergences so far,
    elapsed time and the time left at the rate so far."""
    share = done / total if total else 1.0
    left = elapsed * (total - done) / done if done else float("nan")
    phase = "tuning" if tuning else "sampling"
    if done >= total:
        phase = "done"
    eta = _duration(left) if left == left else "unknown"
    return (
        f"{label}: {phase}, {done:,}/{total:,} draws ({share:.0%}), {divergences} divergences "
        f"so far (tuning included), {_duration(elapsed)} elapsed, about {eta} left"
    )


def _stderr_is_logged() -> bool:
    """Whether the root logger already writes to the terminal (stderr or stdout)."""
    import sys

    return any(
        isinstance(h, logging.StreamHandler)
        and not isinstance(h, logging.FileHandler)
        and getattr(h, "stream", None) in (sys.stderr, sys.stdout)
        for h in logging.getLogger().handlers
    )


def log_and_echo(message: str) -> None:
    """Log ``message`` (the rule's log) and echo it to stderr (the terminal) when the root
    logger does not already write there."""
    log.info(message)
    if not _stderr_is_logged():
        import sys

        print(time.strftime("%H:%M:%S ") + message, file=sys.stderr, flush=True)


class SamplerProgress:
    """nutpie ``progress_callback``: logs the sampler's progress now and then.

    nutpie calls it from a background thread every ``progress_rate`` ms with one
    ``ChainProgress`` per chain (``finished_draws``, ``total_draws``, ``divergences``,
    ``tuning``); it only reads them, so the draws are those of a run without it (checked:
    ``tests/test_models_progress.py``). A line goes to this module's logger (the rule's log) and,
    when the root logger does not already write to the terminal, to stderr (Snakemake shows a
    job's stderr): at the first draw, then once ``every`` seconds have passed since the last
    line, or a twentieth of the time elapsed so far when that is longer (about 100 lines for a
    7-hour fit instead of 2,500), and when every chain has finished.
    """

    def __init__(self, label: str, every: float = 10.0, clock=time.perf_counter) -> None:
        self.label = label
        self.every = every
        self.clock = clock
        self.start = clock()
        self.last: float | None = None
        self.finished = False
        self.lines: list[str] = []

    def __call__(self, progress) -> None:
        now = self.clock()
        done = sum(int(p.finished_draws) for p in progress)
        total = sum(int(p.total_draws) for p in progress)
        finished = total > 0 and done >= total
        if self.finished or (done == 0 and not finished):
            return
        elapsed = now - self.start
        due = self.last is None or now - self.last >= max(self.every, elapsed / 20)
        if not (due or finished):
            return
        self.last, self.finished = now, finished
        message = progress_message(
            self.label,
            done,
            total,
            sum(int(p.divergences) for p in progress),
            any(bool(p.tuning) for p in progress),
            elapsed,
        )
        self.lines.append(message)
        log_and_echo(message)


def compile_nutpie(model, initvals: dict | None = None):
    """Compile ``model`` for nutpie (numba), starting every chain at ``initvals``.

    The compile is most of a small fit's cost (2 minutes cold on the tiny scenario): pass the
    result to :func:`sample` as ``compiled`` to sample the same model again without it (a retry
    of :func:`models.stage.sample_until_converged`). The same compiled model and seed give the
    same draws (checked: three samplings of one compiled model, seeds a, b, a).
    """
    import nutpie

    return nutpie.compile_pymc_model(
        model,
        initial_points=initvals,
        # Jitter only what the labelled start does not fix (random effects, scales).
        jitter_rvs={v for v in model.free_RVs if not initvals or v.name not in initvals},
    )


def sample(
    model,
    sampler: str = "nutpie",
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 2,
    cores: int = 2,
    target_accept: float = 0.9,
    seed: int = 0,
    progressbar: bool = False,
    adaptation: str = "diag",
    initvals: dict | None = None,
    warm_up: bool = True,
    compiled=None,
    progress_label: str | None = None,
    progress_every: float = 10.0,
):
    """Sample with nutpie or PyMC's NUTS; returns ``(DataTree, seconds)`` (compile included).

    ``warm_up`` (pymc only): first sample one draw in a separate process (see
    :func:`warm_compile_cache`), so that the draws do not depend on PyTensor's compile cache.
    A second sampling in the same process finds the cache warm and needs no warm-up.

    ``adaptation`` (nutpie only): ``diag`` or ``low_rank`` mass-matrix adaptation.
    ``initvals``: a start point (e.g. :func:`em_start`), shared by all chains.
    ``compiled`` (nutpie only): the model as :func:`compile_nutpie` compiled it (with the same
    ``initvals``); compiled here when ``None``.
    ``progress_label`` (nutpie only): log the sampler's progress under this name about every
    ``progress_every`` seconds (:class:`SamplerProgress`); ``None`` logs none.
    """
    import pymc as pm

    if sampler not in ("nutpie", "pymc"):
        raise ValueError(f"sampler must be 'nutpie' or 'pymc', got {sampler!r}")
    start = time.perf_counter()
    if sampler == "nutpie":
        import nutpie

        if compiled is None:
            compiled = compile_nutpie(model, initvals)
        compiled_at = time.perf_counter()
        progress = {}
        if progress_label is not None:
            progress = {
                "progress_callback": SamplerProgress(progress_label, every=progress_every),
                "progress_rate": 1000,  # ms between calls; the callback logs less often
            }
        idata = nutpie.sample(
            compiled,
            draws=draws,
            tune=tune,
            chains=chains,
            cores=cores,
            seed=seed,
            save_warmup=False,
            progress_bar=progressbar,
            target_accept=target_accept,
            adaptation=adaptation,
            **progress,
        )
        seconds = time.perf_counter() - start
        log.info(
            "nutpie: compiled in %.1f s, sampled in %.1f s",
            compiled_at - start,
            seconds - (compiled_at - start),
        )
        return idata, seconds
    with model:
        kwargs = dict(
            draws=draws,
            tune=tune,
            chains=chains,
            target_accept=target_accept,
            random_seed=seed,
            progressbar=progressbar,
            nuts_sampler=sampler,
        )
        kwargs["cores"] = cores
        kwargs["compute_convergence_checks"] = False
        if initvals:
            kwargs["initvals"] = initvals
            kwargs["init"] = "adapt_diag"
        if warm_up:
            warm_compile_cache(model, kwargs)
        idata = pm.sample(**kwargs)
    seconds = time.perf_counter() - start
    log.info("sampled with %s in %.1f s", sampler, seconds)
    return idata, seconds


def warm_compile_cache(model, sample_kwargs: dict) -> None:
    """Sample one draw of ``model`` in a child process, to fill PyTensor's compile cache.

    Measured: with the same seed, a process that starts with a cold PyTensor compile cache
    draws different (equally valid) samples from one that starts warm — the compiled graph
    differs in the last bits — so the first run on a fresh machine did not reproduce. After a
    throw-away run in another process the cache is warm and every run draws the same samples.
    """
    import subprocess
    import sys
    import tempfile

    import cloudpickle

    kwargs = {**sample_kwargs, "draws": 1, "tune": 1, "random_seed": 0}
    with tempfile.TemporaryDirectory() as tmp:
        job = Path(tmp) / "job.pkl"
        job.write_bytes(cloudpickle.dumps((model, kwargs)))
        code = (
            "import pickle, sys, pymc as pm\n"
            "model, kwargs = pickle.load(open(sys.argv[1], 'rb'))\n"
            "with model:\n    pm.sample(**kwargs)\n"
        )
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", code, str(job)], capture_output=True, text=True
        )
    if done.returncode != 0:
        raise RuntimeError(f"compile warm-up failed:\n{done.stderr[-3000:]}")
    log.info("compile cache warmed in %.1f s", time.perf_counter() - start)


# --------------------------------------------------------------------------------------------
# numpy mirror of the graph, for posterior prediction


def stack_draws(idata, names: list[str]) -> dict[str, np.ndarray]:
    """Posterior arrays of ``names`` with chain and draw stacked into a leading axis."""
    post = idata["posterior"]
    out = {}
    for name in names:
        if name in post:
            arr = post[name].to_numpy()
            out[name] = arr.reshape(-1, *arr.shape[2:])
    return out


def class_probs_np(problem: LatentClassProblem, draws: dict[str, np.ndarray], d: int) -> np.ndarray:
    """``pi`` (n_groups x k) of draw ``d``."""
    intercept = draws["intercept"][d]
    top = fixed_top_level(problem)
    unit_value = intercept[None, :] if top is None else intercept.T
    for level, (name, _, labels) in enumerate(problem.levels):
        if level == 0 and top is not None:
            continue
        parent = parent_of_units(problem, level)
        if is_fixed_level(problem, labels):
            unit_value = unit_value[parent] + draws[f"effect_{name}"][d].T
        elif name in problem.centered_levels:
            unit_value = set_varying(problem, unit_value[parent], draws[f"eta_{name}"][d], np)
        else:
            free = draws[f"z_{name}"][d] * draws[f"sigma_{name}"][d][None, :]
            effect = nested_zero_sum_basis(problem, level).expand(free, np)
            inherited = unit_value[parent]
            unit_value = set_varying(
                problem, inherited, varying_part(problem, inherited) + effect, np
            )
    age = draws["age_effect"][d].T if problem.group_age is not None else None
    return group_class_shares(problem, unit_value, age, np)


def group_class_shares(problem: LatentClassProblem, unit_value, age_value, xp):
    """Class shares per group: softmax of ``[0, unit logits + age logits]`` (n_groups x k).

    ``unit_value`` (units of the finest level x k-1) and ``age_value`` (ages x k-1, or None);
    ``xp`` is ``numpy`` or ``pytensor.tensor``. The exponentials are taken per unit and per age
    and multiplied per group (exp(a + b) = exp(a) exp(b)): thousands of exponentials instead of
    one per group and class, which were a quarter of the default scenario's gradient time.
    Each factor is shifted by its row maximum, so neither overflows.
    """

    logit_map = class_logit_map(problem)

    def row_exp(logits):
        if logit_map is not None:
            logits = xp.dot(logits, logit_map)
        full = xp.concatenate([xp.zeros((logits.shape[0], 1)), logits], axis=1)
        return xp.exp(full - xp.max(full, axis=1, keepdims=True))

    expo = row_exp(unit_value)[group_unit_of_last_level(problem)]
    if age_value is not None:
        expo = expo * row_exp(age_value)[problem.group_age]
    return expo / xp.sum(expo, axis=1, keepdims=True)


def varying_classes(problem: LatentClassProblem) -> np.ndarray | None:
    """Non-reference classes with random effects below the top level (None: all of them).

    A class whose logit is an offset from a base class (``problem.class_logit_base``) follows
    its base across units: its offset varies by top-level unit and age only. Measured on the
    default scenario with withheld classes, an own centred tract effect on the offset (sigma
    near zero) gave max R-hat 1.25 and 165 divergences.
    """
    if class_logit_map(problem) is None:
        return None
    return np.array([j for j, b in enumerate(problem.class_logit_base) if b < 0], dtype=np.int64)


def set_varying(problem: LatentClassProblem, inherited, values, xp):
    """``inherited`` (units x k-1) with the :func:`varying_classes` columns set to ``values``."""
    cols = varying_classes(problem)
    if cols is None:
        return values
    if xp is np:
        out = np.array(inherited, dtype=float, copy=True)
        out[:, cols] = values
        return out
    return xp.set_subtensor(inherited[:, cols], values)


def varying_part(problem: LatentClassProblem, values):
    """The :func:`varying_classes` columns of ``values`` (units x k-1; numpy or PyTensor)."""
    cols = varying_classes(problem)
    return values if cols is None else values[:, cols]


def class_logit_map(problem: LatentClassProblem) -> np.ndarray | None:
    """(k-1 x k-1) matrix taking the model's class-prior coordinates to logits against the
    reference class (``problem.class_logit_base``), or None for the identity."""
    if not problem.class_logit_base or all(b < 0 for b in problem.class_logit_base):
        return None
    n = problem.n_classes - 1
    mapping = np.eye(n)
    for j, base in enumerate(problem.class_logit_base):
        if base >= 0:
            if problem.class_logit_base[base] >= 0 or base == j:
                raise ValueError("class_logit_base: a base class must not have a base itself")
            mapping[base, j] = 1.0
    return mapping


def theta_by_age_np(
    problem: LatentClassProblem, draws: dict[str, np.ndarray], d: int, s: int
) -> np.ndarray:
    """Source ``s``'s probabilities (n_source_ages x k x C) of draw ``d``."""
    name = problem.source_names[s]
    if problem.n_source_ages > 1 and f"theta_{name}_by_age" in draws:
        return draws[f"theta_{name}_by_age"][d]
    return draws[f"theta_{name}"][d][None]


def pattern_lik_np(problem: LatentClassProblem, draws: dict[str, np.ndarray], d: int) -> np.ndarray:
    """P(pattern | class) (n_source_ages x n_patterns x k) of draw ``d``.

    Index the first axis with ``problem.group_source_age`` of a group.
    """
    lik = np.ones((problem.n_source_ages, problem.n_patterns, problem.n_classes))
    for s in range(len(problem.source_names)):
        theta = theta_by_age_np(problem, draws, d, s)
        lik *= theta[:, :, problem.pattern_codes[:, s]].transpose(0, 2, 1)
    return lik


def coarse_probs_np(
    problem: LatentClassProblem, draws: dict[str, np.ndarray], d: int
) -> np.ndarray:
    """P(coarse pattern | class) (n_source_ages x n_coarse x k) of draw ``d``."""
    n_flags = n_flags_of(problem)
    s_g = np.ones((problem.n_source_ages, problem.n_classes, 2**n_flags))
    for s in range(len(problem.source_names)):
        masks = _subset_masks(problem.category_flags[s], n_flags)
        s_g = s_g * (theta_by_age_np(problem, draws, d, s) @ masks.T)
    return np.clip((s_g @ problem.coarse_weights.T).transpose(0, 2, 1), 0.0, 1.0)


def parameter_names(problem: LatentClassProblem) -> list[str]:
    names = [f"theta_{s}" for s in problem.source_names] + ["intercept"]
    if problem.n_source_ages > 1:
        names += [f"theta_{s}_by_age" for s in problem.source_names]
    if problem.group_age is not None:
        names.append("age_effect")
    for level, (name, _, labels) in enumerate(problem.levels):
        if level == 0 and fixed_top_level(problem) is not None:
            continue
        if is_fixed_level(problem, labels):
            names.append(f"effect_{name}")
        elif name in problem.centered_levels:
            names += [f"sigma_{name}", f"eta_{name}"]
        else:
            names += [f"sigma_{name}", f"z_{name}"]
    return names


def multinomial_rows(rng: np.random.Generator, n: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """One multinomial draw per row (vectorised by conditional binomials)."""
    n = np.asarray(n, dtype=np.int64)
    out = np.zeros(probs.shape, dtype=np.int64)
    remaining = n.copy()
    left = np.ones(len(n))
    for j in range(probs.shape[1] - 1):
        p = np.clip(probs[:, j] / np.maximum(left, 1e-300), 0.0, 1.0)
        out[:, j] = rng.binomial(remaining, p)
        remaining -= out[:, j]
        left -= probs[:, j]
    out[:, -1] = remaining
    return out


def dirichlet_multinomial_rows(
    rng: np.random.Generator, n: np.ndarray, probs: np.ndarray, variance_factor: np.ndarray
) -> np.ndarray:
    """Per row a Dirichlet-multinomial draw whose variance is ``variance_factor`` times the
    multinomial's (rows with a factor <= 1, or with ``n`` <= the factor, are multinomial).

    With ``Dirichlet(a0 probs)`` mixing, ``Var = n p (1 - p) (n + a0) / (1 + a0)``, so
    ``a0 = (n - f) / (f - 1)`` gives the factor ``f``.
    """
    n = np.asarray(n, dtype=np.int64)
    factor = np.broadcast_to(np.asarray(variance_factor, dtype=float), n.shape)
    mixed = (factor > 1.0) & (n > factor)
    probs = np.array(probs, dtype=float)
    if mixed.any():
        a0 = (n[mixed] - factor[mixed]) / (factor[mixed] - 1.0)
        shape = np.maximum(a0[:, None] * probs[mixed], 1e-12)
        gam = rng.gamma(shape)
        total = gam.sum(axis=1, keepdims=True)
        # A row whose gammas all underflow keeps its mean probabilities.
        probs[mixed] = np.where(total > 0, gam / np.maximum(total, 1e-300), probs[mixed])
    return multinomial_rows(rng, n, probs)


# --------------------------------------------------------------------------------------------
# Diagnostics and convenience entry point for any latent-class table


def diagnostics(idata, var_names: list[str] | None = None) -> dict:
    """Max R-hat (rank), min bulk/tail ESS over ``var_names`` and divergences.

    Returns
    -------
    dict
        ``max_rhat``, ``min_ess_bulk``, ``min_ess_tail`` over every element of the posterior
        variables ``var_names`` (all when ``None``), and ``divergences`` (count). Rules of thumb:
        R-hat below 1.01, bulk ESS above 400, no divergences.
    """
    import arviz as az

    post = idata["posterior"].to_dataset()
    names = var_names or list(post.data_vars)
    names = [n for n in names if n in post]
    sub = post[names]
    rhat = az.rhat(sub, method="rank")
    ess_bulk = az.ess(sub, method="bulk")
    ess_tail = az.ess(sub, method="tail")

    def _agg(ds, fn):
        vals = [float(fn(ds[v].to_numpy())) for v in ds.data_vars if ds[v].size]
        vals = [v for v in vals if np.isfinite(v)]
        return fn(np.array(vals)) if vals else float("nan")

    divergences = 0
    if "sample_stats" in idata.children and "diverging" in idata["sample_stats"]:
        divergences = int(idata["sample_stats"]["diverging"].to_numpy().sum())
    return {
        "max_rhat": float(_agg(rhat, np.nanmax)),
        "min_ess_bulk": float(_agg(ess_bulk, np.nanmin)),
        "min_ess_tail": float(_agg(ess_tail, np.nanmin)),
        "divergences": divergences,
    }


PRIOR_SCALE_KEYS = (
    "intercept_mu",
    "intercept_sd",
    "age_sd",
    "level_sd",
    "county_sd",
    "tract_sd",
    "block_sd",
    "min_random_units",
    "source_age_sd",
)


def check_prior_scales(prior_scales: dict, level_names: list[str], where: str) -> None:
    """Unknown keys of ``prior_scales`` are errors (a typo would silently keep the default).

    Allowed: :data:`PRIOR_SCALE_KEYS` and ``{level}_sd`` for each level name.
    """
    from pipeline_common.config_checks import suggestion
    from pipeline_common.errors import InputError

    allowed = list(dict.fromkeys([*PRIOR_SCALE_KEYS, *(f"{n}_sd" for n in level_names)]))
    for key, value in prior_scales.items():
        if key not in allowed:
            raise InputError(
                where,
                f"prior_scales.{key}",
                f"unknown prior scale{suggestion(str(key), allowed)}",
                f"use only {', '.join(allowed)}",
            )
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise InputError(
                where, f"prior_scales.{key}", f"{value!r} is not a number", "give a number"
            )


def check_table_labels(
    table: pd.DataFrame,
    source_columns: list[str],
    count_column: str,
    class_names: list[str],
    alpha: dict[str, np.ndarray] | None,
    group_column: str | None,
    categories: dict[str, list] | None,
    prior_scales: dict | None,
    where: str = "problem_from_table",
) -> None:
    """Check the inputs of :func:`problem_from_table` before anything is built or sampled.

    Raises
    ------
    InputError
        A column the table lacks, a missing label, a label outside the declared categories,
        repeated categories or classes, counts that are not non-negative whole numbers, an
        ``alpha`` or ``categories`` key that is not a source column, an ``alpha`` of the wrong
        shape, or an unknown ``prior_scales`` key.
    """
    from pipeline_common.config_checks import suggestion
    from pipeline_common.errors import InputError

    file = f"{where}: table"
    columns = [str(c) for c in table.columns]
    named = [*source_columns, count_column, *([group_column] if group_column else [])]
    for column in named:
        if column not in table.columns:
            raise InputError(
                file,
                str(column),
                f"column not in the table{suggestion(str(column), columns)}; columns: "
                f"{', '.join(columns)}",
                "name an existing column",
            )
    if len(set(source_columns)) != len(source_columns) or not source_columns:
        raise InputError(where, "source_columns", "empty or repeated", "list each source once")
    if len(class_names) < 2 or len(set(class_names)) != len(class_names):
        raise InputError(
            where, "class_names", f"{class_names}: need two or more distinct classes", "fix them"
        )
    counts = pd.to_numeric(table[count_column], errors="coerce")
    bad = counts.isna() | (counts < 0) | (counts.round() != counts)
    if bad.any():
        raise InputError(
            file,
            count_column,
            f"{int(bad.sum())} count(s) are not non-negative whole numbers (e.g. "
            f"{table[count_column][bad].iloc[0]!r})",
            "give a count >= 0 on every row",
        )
    for name, mapping in (("alpha", alpha or {}), ("categories", categories or {})):
        for key in mapping:
            if key not in source_columns:
                raise InputError(
                    where,
                    f"{name}[{key!r}]",
                    f"not one of source_columns{suggestion(str(key), source_columns)}",
                    f"key {name} by the source columns {source_columns}",
                )
    for column in source_columns:
        labels = table[column]
        if labels.isna().any():
            raise InputError(
                file,
                str(column),
                f"{int(labels.isna().sum())} row(s) without a label",
                "give every row a label (an explicit category such as 'missing' for no answer)",
            )
        if categories and column in categories:
            declared = list(categories[column])
            if len(set(declared)) != len(declared):
                raise InputError(
                    where, f"categories[{column!r}]", f"{declared} repeats a category", "fix it"
                )
            unknown = sorted({str(v) for v in labels.unique()} - {str(v) for v in declared})
            if unknown:
                raise InputError(
                    file,
                    str(column),
                    f"label(s) {unknown[:5]} are not among the declared categories {declared}",
                    f"declare every label in categories[{column!r}] or fix the labels",
                )
        n_categories = len(categories[column]) if categories and column in categories else None
        if n_categories is None:
            n_categories = labels.nunique()
        if alpha and column in alpha:
            shape = np.shape(alpha[column])
            if shape != (len(class_names), n_categories):
                raise InputError(
                    where,
                    f"alpha[{column!r}]",
                    f"shape {shape}, expected (classes, categories) = "
                    f"{(len(class_names), n_categories)}",
                    "give one row per class and one column per category, in category order",
                )
            if not np.all(np.asarray(alpha[column], dtype=float) > 0):
                raise InputError(
                    where, f"alpha[{column!r}]", "holds values <= 0", "give pseudo-counts > 0"
                )
    check_prior_scales(prior_scales or {}, ["group"] if group_column else [], where)


def check_class_share_prior(
    class_share_prior: dict | None,
    class_names: list[str],
    prior_scales: dict | None,
    where: str = "problem_from_table",
) -> None:
    """Check the ``class_share_prior`` option of :func:`problem_from_table`.

    Raises
    ------
    InputError
        Not a mapping, a key that is not a class name (with the nearest name), a class without
        a value, a value that is not a positive number, or ``intercept_mu``/``intercept_sd`` in
        ``prior_scales`` as well (both would set the prior of the class shares).
    """
    from pipeline_common.config_checks import suggestion
    from pipeline_common.errors import InputError

    if class_share_prior is None:
        return
    if not isinstance(class_share_prior, dict):
        raise InputError(
            where,
            "class_share_prior",
            f"{class_share_prior!r} is not a mapping",
            "give {class name: concentration}, e.g. {'diseased': 2, 'healthy': 8}",
        )
    names = [str(c) for c in class_names]
    for key, value in class_share_prior.items():
        if str(key) not in names:
            raise InputError(
                where,
                f"class_share_prior[{key!r}]",
                f"not one of class_names{suggestion(str(key), names)}",
                f"key class_share_prior by the class names {names}",
            )
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
            raise InputError(
                where, f"class_share_prior[{key!r}]", f"{value!r} is not a number", "give one"
            )
        if not np.isfinite(value) or value <= 0:
            raise InputError(
                where,
                f"class_share_prior[{key!r}]",
                f"{value!r} is not a positive number",
                "give a concentration > 0 (a pseudo-count of persons)",
            )
    missing = [c for c in names if c not in {str(k) for k in class_share_prior}]
    if missing:
        raise InputError(
            where,
            "class_share_prior",
            f"no value for class(es) {missing}",
            "give every class a concentration",
        )
    both = [k for k in ("intercept_mu", "intercept_sd") if k in (prior_scales or {})]
    if both:
        raise InputError(
            where,
            f"prior_scales.{both[0]}",
            "set together with class_share_prior; both would set the prior of the class shares",
            "give one of them",
        )


def problem_from_table(
    table: pd.DataFrame,
    source_columns: list[str],
    count_column: str,
    class_names: list[str],
    alpha: dict[str, np.ndarray] | None = None,
    group_column: str | None = None,
    categories: dict[str, list] | None = None,
    prior_scales: dict | None = None,
    class_share_prior: dict[str, float] | None = None,
) -> LatentClassProblem:
    """A latent-class problem from any count table, e.g. diagnostic tests without a gold standard.

    The model: every person belongs to one latent class (e.g. diseased / disease-free); given
    the class, each source (a test, rater or register) reports one of its categories with
    class-specific probabilities, independently of the other sources; a group's persons fall in
    the classes with the group's class shares. Source probabilities are the same in every group
    (with two groups and two tests, the Hui-Walter design).

    Parameters
    ----------
    table
        One row per group x pattern: the label each source gave (one column per source), the
        group (if ``group_column``) and the number of persons with that pattern in that group
        (``count_column``). Patterns nobody has may be left out; rows with count 0 are
        dropped; rows repeating a group and pattern add up. E.g. for two tests::

            test_a  test_b  n
            pos     pos     40
            pos     neg     10
            neg     pos      5
            neg     neg     45

    source_columns
        The columns holding the sources' labels. A missing label is an error: code "no answer"
        as a category of its own.
    count_column
        The column of counts (non-negative whole numbers).
    class_names
        The latent classes, two or more. Their order is the row order of every ``alpha`` and
        of the model's ``class`` coordinate; the first class is the reference of the class
        shares' logits (``intercept`` holds the logits of the other classes against it).
    alpha
        ``{source column: array}``, the Dirichlet prior of each source's category
        probabilities, shape ``(len(class_names), number of categories)``: row ``k`` is the
        prior of ``P(category | class k)`` for that source, one column per category in the
        order of ``categories[source]`` (by default the sorted labels). A row's values are
        pseudo-counts: its normalised row is the prior mean, its sum the prior's weight in
        persons. Sources not given get ones (a uniform prior). Uniform priors leave the classes
        unnamed (any relabelling fits as well): give at least one source a prior saying which
        class is which, e.g. ``[[8, 2], [2, 8]]`` over ``("neg", "pos")`` for classes
        ``("disease_free", "diseased")`` (a test is more often positive for the diseased).
        Then ``theta_{source}[k, c]`` in the posterior is ``P(category c | class k)``: for a
        test with categories ``("neg", "pos")``, ``theta[diseased, pos]`` is its sensitivity
        and ``theta[disease_free, neg]`` its specificity.
    group_column
        Optional column of group labels (populations, sites, strata). Each group gets class
        shares of its own. With fewer than ``min_random_units`` groups (default 8) every group
        has its own intercept with the prior below; with more, the intercept is the centre of
        the groups and group effects (summing to zero) vary with a scale ``sigma_group ~
        HalfNormal(group_sd)``. Without a group column all rows share one set of class shares.
    categories
        ``{source column: ordered list of labels}``: the categories of a source, in the order
        of its ``alpha`` columns; may include labels no row has. A label in the table outside
        this list is an error. Sources not given: the sorted distinct labels of the column.
    prior_scales
        Numbers for the class-share prior (unknown keys are an error):

        - ``intercept_mu`` (0.0), ``intercept_sd`` (2.5): each non-reference class's logit
          against the first class is ``Normal(intercept_mu, intercept_sd)`` (per group with
          few groups);
        - ``group_sd`` (default ``level_sd``, 1.0): the half-normal scale of the spread of
          the group logits when groups are random (see ``group_column``);
        - ``min_random_units`` (8): fewest groups that get a random effect;
        - ``age_sd``, ``county_sd``, ``tract_sd``, ``block_sd``, ``source_age_sd``: accepted
          for the pipeline's problems, no effect on a table problem.
    class_share_prior
        ``{class name: concentration}`` for every class: a Dirichlet prior on the class shares
        instead of the logit-normal one (do not also give ``intercept_mu``/``intercept_sd``).
        With two classes ``{first: a, second: b}`` puts a ``Beta(a, b)`` prior on the first
        class's share; ``a + b`` is the prior's weight in persons. Without groups, or with
        fewer than ``min_random_units`` groups, each set of class shares (each group's) has
        this prior independently (the classical Hui-Walter priors). With random groups it is
        the prior of the centre's shares: those of a group whose effect is zero (the
        logit-scale centre of the groups, not their population-weighted mean). It is a flat
        intercept plus the Dirichlet log-density as a potential (exact, softmax Jacobian
        included), so ``pm.sample_prior_predictive`` cannot draw from it.

    Returns
    -------
    LatentClassProblem
        Pass it to :func:`build_model`, sample with :func:`sample`, check with
        :func:`diagnostics`, and read the results with :func:`class_prevalence` (class shares
        overall and per group) and :func:`category_probabilities` (each source's
        ``P(category | class)``).

    Raises
    ------
    InputError
        Before anything is built (see :func:`check_table_labels` and
        :func:`check_class_share_prior`): misspelt columns, missing labels, labels that do not
        match the declared ``categories``, unknown ``alpha``, ``prior_scales`` or
        ``class_share_prior`` keys, an ``alpha`` of the wrong shape.

    Examples
    --------
    >>> problem = problem_from_table(table, ["test_a", "test_b"], "n", ["healthy", "ill"],
    ...                              alpha={"test_a": [[8, 2], [2, 8]]})  # doctest: +SKIP
    >>> idata, seconds = sample(build_model(problem), sampler="pymc", seed=1)  # doctest: +SKIP
    >>> class_prevalence(problem, idata)  # doctest: +SKIP
    """
    check_table_labels(
        table,
        source_columns,
        count_column,
        class_names,
        alpha,
        group_column,
        categories,
        prior_scales,
    )
    check_class_share_prior(class_share_prior, class_names, prior_scales)
    # Categories from every row (as check_table_labels counted them for alpha's shape), before
    # rows with count 0 are dropped.
    cats = {c: list((categories or {}).get(c, sorted(table[c].unique()))) for c in source_columns}
    table = table.loc[table[count_column] > 0].reset_index(drop=True)
    pats = table[source_columns].drop_duplicates().reset_index(drop=True)
    codes = np.column_stack(
        [pats[c].map({v: i for i, v in enumerate(cats[c])}) for c in source_columns]
    )
    key = table[source_columns].merge(pats.reset_index(), on=source_columns, how="left")["index"]
    k = len(class_names)
    alphas = [
        np.asarray(alpha[c], dtype=float) if alpha and c in alpha else np.ones((k, len(cats[c])))
        for c in source_columns
    ]
    levels = []
    if group_column is not None:
        labels, idx = np.unique(table[group_column].to_numpy(), return_inverse=True)
        n_groups = len(labels)
        levels = [("group", np.arange(n_groups), list(labels))]
        cell_group = idx
    else:
        n_groups = 1
        cell_group = np.zeros(len(table), dtype=np.int64)
    share_prior = None
    if class_share_prior is not None:
        by_name = {str(name): float(v) for name, v in class_share_prior.items()}
        share_prior = np.array([by_name[str(c)] for c in class_names])
    return LatentClassProblem(
        source_names=[str(c) for c in source_columns],
        categories=[list(map(str, cats[c])) for c in source_columns],
        class_names=class_names,
        pattern_codes=codes.astype(np.int64),
        alpha=alphas,
        n_groups=n_groups,
        cell_group=cell_group.astype(np.int64),
        cell_pattern=key.to_numpy().astype(np.int64),
        cell_count=table[count_column].to_numpy().astype(np.int64),
        levels=levels,
        prior_scales=prior_scales or {},
        class_share_prior=share_prior,
    )


def _interval_columns(draws: np.ndarray, interval: float) -> dict[str, np.ndarray]:
    """Posterior mean and equal-tailed ``interval`` bounds over the first axis of ``draws``."""
    tail = (1.0 - interval) / 2.0
    lower, upper = np.quantile(draws, [tail, 1.0 - tail], axis=0)
    return {"mean": draws.mean(axis=0), "lower": lower, "upper": upper}


def _check_interval(interval: float) -> None:
    if not 0.0 < float(interval) < 1.0:
        raise ValueError(f"interval must be between 0 and 1, got {interval!r}")


def class_prevalence(problem: LatentClassProblem, idata, interval: float = 0.9) -> pd.DataFrame:
    """Class shares (prevalences) of a fitted problem, overall and per group.

    Parameters
    ----------
    problem
        The problem the model was built from (e.g. :func:`problem_from_table`).
    idata
        The posterior from :func:`sample` of :func:`build_model` of ``problem``.
    interval
        Probability of the equal-tailed posterior interval (0.9: the 5% and 95% quantiles).

    Returns
    -------
    pandas.DataFrame
        Columns ``group, class, mean, lower, upper``: the posterior mean and interval of the
        share of each class. Rows with ``group == "all"`` come first: the share in the whole
        table, each group weighted by its number of persons in the table (with no group
        column, the only rows). Then one row per group (its label as a string) and class,
        when the problem has more than one group. Each group's shares sum to 1 in every draw.
    """
    _check_interval(interval)
    draws = stack_draws(idata, parameter_names(problem))
    n_draws = len(draws["intercept"])
    shares = np.stack([class_probs_np(problem, draws, d) for d in range(n_draws)])
    weights = np.bincount(
        problem.cell_group, weights=problem.cell_count.astype(float), minlength=problem.n_groups
    )
    weights = weights / max(weights.sum(), 1.0)
    overall = np.einsum("dgk,g->dk", shares, weights)
    k = problem.n_classes
    frames = [pd.DataFrame({"group": "all", "class": problem.class_names})]
    frames[0] = frames[0].assign(**_interval_columns(overall, interval))
    if problem.n_groups > 1:
        # A table problem's groups are its one level's units; otherwise groups are numbered.
        labels = [str(g) for g in range(problem.n_groups)]
        if problem.levels and len(problem.levels[-1][2]) == problem.n_groups:
            labels = [str(x) for x in problem.levels[-1][2]]
        per_group = _interval_columns(shares, interval)  # each (groups x k)
        frames.append(
            pd.DataFrame(
                {
                    "group": np.repeat(labels, k),
                    "class": np.tile(problem.class_names, problem.n_groups),
                    **{name: values.ravel() for name, values in per_group.items()},
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def category_probabilities(
    problem: LatentClassProblem, idata, interval: float = 0.9
) -> pd.DataFrame:
    """Each source's ``P(category | class)`` of a fitted problem (e.g. sensitivities).

    Parameters
    ----------
    problem, idata, interval
        As for :func:`class_prevalence`.

    Returns
    -------
    pandas.DataFrame
        Columns ``source, class, category, mean, lower, upper``, one row per source, class and
        category: the posterior mean and equal-tailed interval of the probability that the
        source reports the category for a person of the class (``theta_{source}``). For a
        test with categories ``neg``/``pos``, the row (diseased, pos) is its sensitivity and
        (disease-free, neg) its specificity.
    """
    _check_interval(interval)
    draws = stack_draws(idata, [f"theta_{name}" for name in problem.source_names])
    frames = []
    for s, name in enumerate(problem.source_names):
        theta = draws[f"theta_{name}"]  # (draws, k, C)
        n_cat = len(problem.categories[s])
        frames.append(
            pd.DataFrame(
                {
                    "source": name,
                    "class": np.repeat(problem.class_names, n_cat),
                    "category": np.tile(problem.categories[s], problem.n_classes),
                    **{k: v.ravel() for k, v in _interval_columns(theta, interval).items()},
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def all_patterns(categories: list[list[str]]) -> np.ndarray:
    """Every combination of category codes (for small problems and tests)."""
    return np.array(list(itertools.product(*[range(len(c)) for c in categories])), dtype=np.int64)
