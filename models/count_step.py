"""The published count step's ties to the county table of full patterns.

The noise-aware refit sees blocks only through noisy coarse patterns (six per block and age
group) and learns the split of classes within them from a smooth model. The county x age x
full-pattern table measures, to within tens of persons, two things that model gets wrong in
a way every block shares (measured on the default run at rho 1, 2026-12-03):

- *how many persons each coarse pattern holds* per county and age group: the refit implied
  4,100 persons under 35 whose only evidence is "unknown" against 10 true;
- *how those persons split into classes*: a full pattern ("Numident noncitizen record, LPR
  grant") says far more than its coarse pattern ("noncitizen evidence"), and the exact fit reads
  full patterns.

:func:`calibrate_to_margins` rakes the block prior of the coarse counts to the first;
:func:`coarse_split_shift` moves each block's class split within a coarse pattern to the
second. Both read only the noisy measurements (post-processing, no privacy cost).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass
class FullTableView:
    """A full-pattern table above blocks, with what prediction needs to read it."""

    table: object
    unit_weights: sp.csr_matrix  # (units x groups) population weights, rows sum to 1
    unit_age: np.ndarray  # per unit, its age group
    unit_source_age: np.ndarray  # per unit, its row in the source probabilities' age axis


def unit_weight_matrix(
    group_unit: np.ndarray, population: np.ndarray, n_units: int
) -> sp.csr_matrix:
    """(units x groups) population weights averaging groups into their unit (rows sum to 1)."""
    covered = np.flatnonzero(group_unit >= 0)
    pop = population[covered].astype(float)
    unit_pop = np.bincount(group_unit[covered], weights=pop, minlength=n_units)
    w = pop / np.maximum(unit_pop[group_unit[covered]], 1.0)
    return sp.csr_matrix((w, (group_unit[covered], covered)), shape=(n_units, len(group_unit)))


def full_table_view(problem) -> FullTableView | None:
    """The largest full-pattern table of ``problem`` (None: there is none)."""
    from models.latent_class import unit_source_age

    full = [a for a in problem.aggregates if a.pattern_level == "full"]
    if not full:
        return None
    table = max(full, key=lambda a: len(a.value))
    n_units = len(table.unit_labels)
    group_age = (
        problem.group_age if problem.group_age is not None else np.zeros(problem.n_groups, int)
    )
    unit_age = np.zeros(n_units, dtype=np.int64)
    covered = table.group_unit >= 0
    unit_age[table.group_unit[covered]] = group_age[covered]
    return FullTableView(
        table=table,
        unit_weights=unit_weight_matrix(table.group_unit, problem.group_population, n_units),
        unit_age=unit_age,
        unit_source_age=unit_source_age(problem, table),
    )


def full_table_membership(
    view: FullTableView, pi: np.ndarray, lik: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per row of the full-pattern table: class membership (rows x k) given its unit's class
    shares and its full pattern, and its weight (the noisy count, not clipped).

    The weights enter only sums (totals and citizen totals per unit and coarse pattern, or per
    survey bucket), so the unclipped noisy counts keep those sums unbiased; the ratios read from
    them are clipped instead. Clipping at 0 added about 0.8 noise sd of phantom persons to each
    empty cell: 1,600-1,800 persons (5-6%) on each small world's county table with the observed
    pattern dictionary, and many more once the dictionary is enumerated from the label
    vocabularies (800 patterns, most of them empty: on the tiny world about as many phantom
    persons as real ones). Measured on the tiny world (rho 1, 2026-12-03), published block MAE
    of citizens: observed dictionary, clipped 1.40 (bias -0.90); enumerated, clipped 1.59
    (-1.13); enumerated, unclipped 1.39 (-0.75). An empirical-Bayes posterior per cell was
    tried before on one small world (2026-12-03) and raised the published citizen total by a
    further 0.6 posterior sd, so it is not used.
    """
    table = view.table
    units = table.row_unit
    src_age = view.unit_source_age[units] if lik.shape[0] > 1 else np.zeros(len(units), int)
    member = (view.unit_weights @ pi)[units] * lik[src_age, table.row_pattern]
    member /= np.maximum(member.sum(axis=1, keepdims=True), 1e-300)
    return member, table.value.astype(float)


def coarse_split_shift(
    view: FullTableView,
    member: np.ndarray,
    weight: np.ndarray,
    coarse_of_pattern: np.ndarray,
    group_counts: np.ndarray,
    group_membership: np.ndarray,
    citizen: np.ndarray,
) -> np.ndarray:
    """Per group and coarse pattern, the citizen log-odds shift that moves the blocks' class
    split within each coarse pattern to the split the full-pattern table implies for their
    county x age unit (groups x n_coarse; 0 where either side has no persons).

    Parameters
    ----------
    member, weight
        :func:`full_table_membership` (possibly tilted by the survey discrepancy).
    group_counts
        (groups x n_coarse) the blocks' coarse counts of this draw.
    group_membership
        (groups x n_coarse x k) the blocks' class membership given the coarse pattern.
    """
    table = view.table
    n_units = len(table.unit_labels)
    n_coarse = group_counts.shape[1]
    size = n_units * n_coarse
    key = table.row_unit * n_coarse + coarse_of_pattern[table.row_pattern]
    total = np.bincount(key, weights=weight, minlength=size)
    full_cit = np.bincount(key, weights=weight * member[:, citizen].sum(axis=1), minlength=size)
    group_unit = table.group_unit
    covered = group_unit >= 0
    gkey = (group_unit[covered][:, None] * n_coarse + np.arange(n_coarse)[None, :]).ravel()
    counts = group_counts[covered].astype(float)
    block_total = np.bincount(gkey, weights=counts.ravel(), minlength=size)
    block_cit = np.bincount(
        gkey,
        weights=(counts * group_membership[covered][:, :, citizen].sum(axis=2)).ravel(),
        minlength=size,
    )
    eps = 1e-6
    defined = (total > 0) & (block_total > 0)
    s_full = np.clip(full_cit / np.maximum(total, 1e-300), eps, 1 - eps)
    s_block = np.clip(block_cit / np.maximum(block_total, 1e-300), eps, 1 - eps)
    shift = np.where(
        defined, np.log(s_full / (1 - s_full)) - np.log(s_block / (1 - s_block)), 0.0
    ).reshape(n_units, n_coarse)
    out = np.zeros(group_counts.shape)
    out[covered] = shift[group_unit[covered]]
    return out


def coarse_margins(
    problem, pattern_coarse: np.ndarray, n_coarse: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """From the largest measured table above blocks (full or coarse patterns): per group its
    unit, and per unit and coarse pattern the measured total and its noise variance."""
    tables = [a for a in problem.aggregates if a.geo_level != "block"]
    if not tables:
        return None
    table = max(tables, key=lambda a: len(a.value))
    coarse = (
        pattern_coarse[table.row_pattern] if table.pattern_level == "full" else table.row_pattern
    )
    n_units = len(table.unit_labels)
    key = table.row_unit * n_coarse + coarse
    size = n_units * n_coarse
    margin = np.bincount(key, weights=table.value.astype(float), minlength=size)
    # Every (unit, coarse) total sums its measured cells; a cell never measured is not there.
    variance = np.bincount(key, weights=table.sigma.astype(float) ** 2, minlength=size)
    return (
        table.group_unit,
        margin.reshape(n_units, n_coarse),
        variance.reshape(n_units, n_coarse),
    )


def calibrate_to_margins(
    share: np.ndarray,
    population: np.ndarray,
    group_unit: np.ndarray,
    margin: np.ndarray,
    margin_var: np.ndarray,
    dispersion: np.ndarray | float = 1.0,
    iterations: int = 30,
) -> np.ndarray:
    """Group x coarse shares ``share`` raked so that each unit's expected coarse totals match
    a measured unit table, as far as the measurement's precision says.

    The refit's shares are smooth in age and geography and miss what its conditional
    independence cannot express (on the default run at rho 1 it implied 4,100 persons under 35
    whose only evidence is "unknown" against 10 true), while the county x age x full-pattern
    table measures those totals to within tens of persons. Per unit and coarse pattern the
    target is the precision-weighted mean of the model's expected total (variance: the
    ``dispersion``-times binomial of its groups) and the measured total (variance
    ``margin_var``, the summed noise variance of its cells); then iterative proportional fitting
    of the groups' shares to the targets and to their own rows (each row still sums to 1).

    Parameters
    ----------
    share
        (groups x coarse) prior shares, rows summing to 1.
    group_unit
        Per group its unit in the measured table (-1: not covered, left unchanged).
    margin, margin_var
        (units x coarse) measured totals and their noise variances.
    """
    out = share.copy()
    covered = group_unit >= 0
    if not covered.any():
        return out
    unit = group_unit[covered]
    n_units, n_coarse = margin.shape
    pop = population[covered].astype(float)[:, None]
    q = share[covered]
    key = (unit[:, None] * n_coarse + np.arange(n_coarse)[None, :]).ravel()

    def unit_sums(values: np.ndarray) -> np.ndarray:
        return np.bincount(key, weights=values.ravel(), minlength=n_units * n_coarse).reshape(
            n_units, n_coarse
        )

    expected = unit_sums(pop * q)
    model_var = np.maximum(unit_sums(dispersion * pop * q * (1 - q)), 0.25)
    margin_var = np.maximum(margin_var, 1e-6)
    target = (expected / model_var + margin / margin_var) / (1 / model_var + 1 / margin_var)
    target = np.clip(target, 0.0, None)
    unit_pop = np.bincount(unit, weights=pop[:, 0], minlength=n_units)[:, None]
    target *= unit_pop / np.maximum(target.sum(axis=1, keepdims=True), 1e-12)
    factor = np.ones((n_units, n_coarse))
    for _ in range(iterations):
        raked = q * factor[unit]
        raked /= np.maximum(raked.sum(axis=1, keepdims=True), 1e-300)
        now = unit_sums(pop * raked)
        factor *= np.where(now > 0, target / np.maximum(now, 1e-300), 1.0)
    raked = q * factor[unit]
    out[covered] = raked / np.maximum(raked.sum(axis=1, keepdims=True), 1e-300)
    return out


# Gibbs sweeps of :func:`exchange_given_totals` per posterior draw. One removed the bias of the
# rescaled independent draws on a small world (citizen pattern -211 -> +32 of 19,254 persons;
# four: +44); two for margin. Each sweep is 15 pairwise draws over the block x age table.
COUNT_SWEEPS = 2


def table_concentration(
    population: np.ndarray, share: np.ndarray, dispersion: np.ndarray | float
) -> float:
    """One Dirichlet-multinomial concentration ``c`` for a table of block x age rows.

    A row of ``N`` persons drawn Dirichlet-multinomial with concentration ``c`` has variance
    ``(N + c) / (1 + c)`` times the multinomial's. The table's between-block dispersion is one
    such ratio per coarse pattern, pooled over rows of every size (weights ``N q (1 - q)``);
    ``c`` is the concentration whose implied ratio, pooled the same way, equals it (``inf``:
    no overdispersion). A constant ratio per row would instead make rows smaller than the ratio
    all-or-nothing, which pushes persons into the commonest pattern once rows must sum to
    their population.
    """
    n = population.astype(float)[:, None]
    q = np.clip(share, 0.0, 1.0)
    weight = n * q * (1 - q)
    total = float(weight.sum())
    if total <= 0:
        return float("inf")
    disp = np.broadcast_to(np.asarray(dispersion, dtype=float), q.shape)
    target = float((disp * weight).sum() / total)
    if target <= 1.0 + 1e-9:
        return float("inf")

    def implied(log_c: float) -> float:
        return float((_overdispersion(n, 10.0**log_c) * weight).sum() / total)

    # implied() falls from about max N (c -> 0) to 1 (c -> inf): bisection on log10 c.
    low, high = -6.0, 9.0
    if implied(low) <= target:
        return 10.0**low
    for _ in range(60):
        mid = 0.5 * (low + high)
        low, high = (mid, high) if implied(mid) > target else (low, mid)
    return 10.0 ** (0.5 * (low + high))


def exchange_given_totals(
    rng: np.random.Generator,
    counts: np.ndarray,
    share: np.ndarray,
    measured: np.ndarray,
    noise_var: np.ndarray,
    concentration: float,
    sweeps: int = 4,
    half_window: int = 4,
) -> np.ndarray:
    """Redraw each row's coarse counts from their posterior given that they sum to its population.

    Prior: per row ``DirichletMultinomial(N, c q)`` (``q`` the row's coarse shares, ``c``
    :func:`table_concentration`; multinomial when ``c`` is inf); likelihood: each measured cell
    ``Normal(y, sigma^2)`` (NaN: unmeasured). Gibbs sweeps over pairs of patterns: given the
    rest of the row, the pair's total ``m`` is fixed and the first count is drawn exactly from
    ``BetaBinomial(m, c q_i, c q_j)`` times the two cells' likelihoods, on a window of
    ``2 half_window + 1`` integers around its current value. Row totals never change.

    Independent per-cell draws rescaled to the row's population (the earlier step) biased the
    commonest pattern: on a small world the citizen pattern lost 290 persons (1.5%) to rare
    patterns, and rows whose draws were all zero were split uniformly.

    Parameters
    ----------
    counts
        (rows x patterns) integer starting counts; each row sums to its population.
    share
        (rows x patterns) prior shares, rows summing to 1.
    measured, noise_var
        (rows x patterns) noisy measurements (NaN: none) and their noise variances.
    """
    from scipy.special import gammaln

    counts = np.asarray(counts, dtype=np.int64).copy()
    n_cols = counts.shape[1]
    q = np.clip(share, 1e-9, None)
    q = q / q.sum(axis=1, keepdims=True)
    finite = bool(np.isfinite(concentration))
    alpha = q * (concentration if finite else 1.0)
    has_y = ~np.isnan(measured)
    y = np.where(has_y, measured, 0.0)
    precision = np.where(has_y, 1.0 / np.where(has_y, np.maximum(noise_var, 1e-12), 1.0), 0.0)
    pairs = [(i, j) for i in range(n_cols) for j in range(i + 1, n_cols)]
    # Wide enough for 5 posterior sd of any pair's split (unmeasured rows: the prior's).
    population = counts.sum(axis=1).astype(float)
    widest = np.sqrt(0.25 * population * _overdispersion(population, concentration)).max(initial=0)
    width = (
        2 * max(half_window, int(np.ceil(5 * widest))) + 1
        if (~has_y).any()
        else 2 * half_window + 1
    )
    offsets = np.arange(width)
    for _ in range(sweeps):
        for p in rng.permutation(len(pairs)):
            i, j = pairs[p]
            m_all = counts[:, i] + counts[:, j]
            # Only rows where the pair holds someone can change.
            act = np.flatnonzero(m_all > 0)
            if not len(act):
                continue
            m = m_all[act]
            qi, qj = q[act, i], q[act, j]
            centre = _pair_centre(
                m,
                qi,
                qj,
                concentration,
                y[act, i],
                y[act, j],
                precision[act, i],
                precision[act, j],
            )
            low = np.clip(
                np.rint(centre).astype(np.int64) - width // 2,
                0,
                np.maximum(m - width + 1, 0),
            )
            cand_i = low[:, None] + offsets[None, :]
            valid = cand_i <= m[:, None]
            cand_i = np.minimum(cand_i, m[:, None]).astype(float)
            cand_j = m[:, None] - cand_i
            logp = -gammaln(cand_i + 1.0) - gammaln(cand_j + 1.0)
            if finite:
                a_i, a_j = alpha[act, i][:, None], alpha[act, j][:, None]
                logp += gammaln(cand_i + a_i) + gammaln(cand_j + a_j)
            else:
                p_i = (qi / (qi + qj))[:, None]
                logp += cand_i * np.log(p_i) + cand_j * np.log1p(-p_i)
            logp -= 0.5 * (y[act, i][:, None] - cand_i) ** 2 * precision[act, i][:, None]
            logp -= 0.5 * (y[act, j][:, None] - cand_j) ** 2 * precision[act, j][:, None]
            logp = np.where(valid, logp, -np.inf)
            pick = np.argmax(logp + rng.gumbel(size=logp.shape), axis=1)
            new_i = cand_i[np.arange(len(act)), pick].astype(np.int64)
            counts[act, i] = new_i
            counts[act, j] = m - new_i
    return counts


def _overdispersion(m: np.ndarray, concentration: float) -> np.ndarray:
    """Variance factor ``(m + c) / (1 + c)`` of a Dirichlet-multinomial split of ``m``."""
    if not np.isfinite(concentration):
        return np.ones_like(m, dtype=float)
    return (m + concentration) / (1.0 + concentration)


def _pair_centre(m, q_i, q_j, concentration, y_i, y_j, prec_i, prec_j) -> np.ndarray:
    """Approximate posterior mean of the first count of a pair with total ``m``: the prior
    split's mean and variance combined with both cells' measurements (Gaussian approximation;
    it only places the window)."""
    m = m.astype(float)
    p = q_i / (q_i + q_j)
    prior_var = np.maximum(m * p * (1 - p) * _overdispersion(m, concentration), 0.25)
    precision = 1.0 / prior_var + prec_i + prec_j
    centre = (m * p / prior_var + y_i * prec_i + (m - y_j) * prec_j) / precision
    return np.clip(centre, 0.0, m)
