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

import math
from dataclasses import dataclass

import numba
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
    further 0.6 posterior sd, so it is not used. Nor is a draw of each cell from its
    measurement truncated at 0 per posterior draw (to carry the table's noise into the split):
    on the small study (8 replicates, observed dictionary) it left the county intervals' width
    unchanged (1.4% of the total) and moved county errors by -0.2 to -0.5 sd.
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


# Gibbs sweeps of :func:`exchange_given_totals` per posterior draw, each 15 pairwise draws over
# the block x age table. The chain starts once, from independent per-cell draws, with
# COUNT_BURN_IN extra sweeps, and goes on from one posterior draw to the next. On the default
# world (rho 1) two sweeps from fresh starts left the citizen pattern's county totals +83
# persons (3.3 sd) above the truth, eight +43: the summed totals move slowly towards the
# measured ones.
COUNT_SWEEPS = 2
COUNT_BURN_IN = 10
# Rows of one block (its age groups) drawn as sharing one Dirichlet draw of coarse shares
# (:func:`exchange_given_totals` ``block``). On the small study (8 replicates, rho 1) it raised
# the published block randomized-PIT coverage from 0.854 / 0.872 (citizens / CVAP) to
# 0.879 / 0.887 and cut the block MAE from 1.24 to 1.18.
BLOCK_POOLING = True


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
    unit: np.ndarray | None = None,
    margin: np.ndarray | None = None,
    margin_var: np.ndarray | None = None,
    block: np.ndarray | None = None,
) -> np.ndarray:
    """Redraw each row's coarse counts from their posterior given that they sum to its population
    and, when given, that each unit's column totals were measured.

    Prior: per row ``DirichletMultinomial(N, c q)`` (``q`` the row's coarse shares, ``c``
    :func:`table_concentration`; multinomial when ``c`` is inf); likelihood: each measured cell
    ``Normal(y, sigma^2)`` (NaN: unmeasured) and, per unit (county x age) and pattern, the
    measured total ``Normal(margin, margin_var)`` of its rows' counts. Systematic-scan Gibbs over
    pairs of patterns and rows in turn: given everything else, a row's pair total ``m`` is fixed
    and its first count is drawn exactly from ``BetaBinomial(m, c q_i, c q_j)`` times the two
    cells' and the two unit totals' likelihoods (every split when ``m <= 64``, else a window of
    at least 8 sd around the approximate posterior mean). Row totals never change.

    Why the unit totals: each block's measurements are noisy (sd 1-3 persons per cell), and
    their noise summed over a county's blocks is hundreds of persons, while the county table
    measures the same totals to within tens. Rows drawn independently inherited the summed
    noise: on the default world at rho 1 the citizen pattern's county totals came out +274 to
    +634 persons above the truth with a posterior sd of about 90 (z 3-6.5).

    Parameters
    ----------
    counts
        (rows x patterns) integer starting counts; each row sums to its population.
    share
        (rows x patterns) prior shares, rows summing to 1.
    measured, noise_var
        (rows x patterns) noisy measurements (NaN: none) and their noise variances.
    unit, margin, margin_var
        Per row its unit (-1: none), and (units x patterns) the measured unit totals and their
        noise variances (0 or inf: unmeasured). All three or none.
    block
        Per row its block: the rows of a block share one Dirichlet draw of their shares
        (collapsed: the Polya urn of the block's other rows, each pattern's count weighted by
        ``q_r / pbar_b`` for the row's own age profile); ``concentration`` is then the block's.
    """
    counts = np.ascontiguousarray(counts, dtype=np.int64).copy()
    n_rows, n_cols = counts.shape
    q = np.clip(np.asarray(share, dtype=float), 1e-9, None)
    q = q / q.sum(axis=1, keepdims=True)
    finite = bool(np.isfinite(concentration))
    alpha = np.ascontiguousarray(q * (concentration if finite else 1.0))
    has_y = ~np.isnan(measured)
    y = np.ascontiguousarray(np.where(has_y, measured, 0.0))
    precision = np.ascontiguousarray(
        np.where(has_y, 1.0 / np.where(has_y, np.maximum(noise_var, 1e-12), 1.0), 0.0)
    )
    if unit is None:
        row_unit = np.full(n_rows, -1, dtype=np.int64)
        unit_margin = np.zeros((1, n_cols))
        unit_precision = np.zeros((1, n_cols))
    else:
        row_unit = np.ascontiguousarray(unit, dtype=np.int64)
        unit_margin = np.ascontiguousarray(margin, dtype=float)
        usable = np.isfinite(margin_var) & (margin_var > 0)
        unit_precision = np.where(usable, 1.0 / np.where(usable, margin_var, 1.0), 0.0)
    unit_total = np.zeros(unit_margin.shape)
    covered = row_unit >= 0
    np.add.at(unit_total, row_unit[covered], counts[covered])
    if block is None or not finite:
        row_block = np.full(n_rows, -1, dtype=np.int64)
        block_total = np.zeros((1, n_cols))
        block_scale = np.zeros((1, n_cols))
    else:
        row_block = np.ascontiguousarray(block, dtype=np.int64)
        n_blocks = int(row_block.max()) + 1
        population = counts.sum(axis=1).astype(float)
        pbar = np.zeros((n_blocks, n_cols))
        np.add.at(pbar, row_block, population[:, None] * q)
        pbar /= np.maximum(pbar.sum(axis=1, keepdims=True), 1e-300)
        block_scale = np.ascontiguousarray(q / np.maximum(pbar[row_block], 1e-12))
        block_total = np.zeros((n_blocks, n_cols))
        np.add.at(block_total, row_block, counts.astype(float))
    pairs = np.array([(i, j) for i in range(n_cols) for j in range(i + 1, n_cols)], np.int64)
    order = np.stack([rng.permutation(len(pairs)) for _ in range(sweeps)]).astype(np.int64)
    uniforms = rng.random((sweeps, len(pairs), n_rows))
    _gibbs_pairs(
        counts,
        alpha,
        np.log(q),
        finite,
        float(concentration) if finite else 0.0,
        y,
        precision,
        row_unit,
        unit_total,
        unit_margin,
        np.ascontiguousarray(unit_precision),
        row_block,
        block_total,
        block_scale,
        pairs,
        order,
        uniforms,
    )
    return counts


@numba.njit(cache=True)
def _gibbs_pairs(
    counts,
    alpha,
    log_q,
    finite,
    concentration,
    y,
    precision,
    row_unit,
    unit_total,
    unit_margin,
    unit_precision,
    row_block,
    block_total,
    block_scale,
    pairs,
    order,
    uniforms,
):  # pragma: no cover - compiled; exercised through exchange_given_totals
    """Sequential pair-exchange Gibbs sweeps in place (see :func:`exchange_given_totals`)."""
    n_rows = counts.shape[0]
    logp = np.empty(4096)
    for s in range(order.shape[0]):
        for k in range(order.shape[1]):
            p = order[s, k]
            i = pairs[p, 0]
            j = pairs[p, 1]
            for r in range(n_rows):
                m = counts[r, i] + counts[r, j]
                if m == 0:
                    continue
                u = row_unit[r]
                alpha_i = alpha[r, i]
                alpha_j = alpha[r, j]
                bl = row_block[r]
                if bl >= 0:
                    alpha_i += (block_total[bl, i] - counts[r, i]) * block_scale[r, i]
                    alpha_j += (block_total[bl, j] - counts[r, j]) * block_scale[r, j]
                    alpha_i = max(alpha_i, 1e-9)
                    alpha_j = max(alpha_j, 1e-9)
                rest_i = 0.0
                rest_j = 0.0
                up_i = 0.0
                up_j = 0.0
                if u >= 0:
                    up_i = unit_precision[u, i]
                    up_j = unit_precision[u, j]
                    rest_i = unit_total[u, i] - counts[r, i] - unit_margin[u, i]
                    rest_j = unit_total[u, j] - counts[r, j] - unit_margin[u, j]
                if m <= 64:
                    low = 0
                    high = m
                else:
                    # Window: the Gaussian approximation's mean +- 8 sd (at least +- 8).
                    mf = float(m)
                    share_i = alpha_i / (alpha_i + alpha_j)
                    factor = (mf + concentration) / (1.0 + concentration) if finite else 1.0
                    prior_var = max(mf * share_i * (1.0 - share_i) * factor, 0.25)
                    prec = 1.0 / prior_var + precision[r, i] + precision[r, j] + up_i + up_j
                    centre = (
                        mf * share_i / prior_var
                        + y[r, i] * precision[r, i]
                        + (mf - y[r, j]) * precision[r, j]
                        - rest_i * up_i
                        + (mf + rest_j) * up_j
                    ) / prec
                    half = max(8, int(np.ceil(8.0 / np.sqrt(prec))))
                    half = min(half, 2000)
                    c = int(np.rint(min(max(centre, 0.0), mf)))
                    low = max(0, c - half)
                    high = min(m, c + half)
                # Log prior at ``low`` from lgamma, then by its ratio between neighbours
                # (four logs a step instead of four lgammas).
                a = float(low)
                b = float(m - low)
                prior = -math.lgamma(a + 1.0) - math.lgamma(b + 1.0)
                if finite:
                    prior += math.lgamma(a + alpha_i) + math.lgamma(b + alpha_j)
                else:
                    prior += a * log_q[r, i] + b * log_q[r, j]
                best = -np.inf
                for n in range(low, high + 1):
                    a = float(n)
                    b = float(m - n)
                    lp = prior
                    lp -= 0.5 * (y[r, i] - a) ** 2 * precision[r, i]
                    lp -= 0.5 * (y[r, j] - b) ** 2 * precision[r, j]
                    if u >= 0:
                        lp -= 0.5 * (rest_i + a) ** 2 * up_i
                        lp -= 0.5 * (rest_j + b) ** 2 * up_j
                    logp[n - low] = lp
                    if lp > best:
                        best = lp
                    if n < high:
                        prior += math.log(b) - math.log(a + 1.0)
                        if finite:
                            prior += math.log(a + alpha_i) - math.log(b - 1.0 + alpha_j)
                        else:
                            prior += log_q[r, i] - log_q[r, j]
                total = 0.0
                for n in range(high - low + 1):
                    logp[n] = np.exp(logp[n] - best)
                    total += logp[n]
                target = uniforms[s, k, r] * total
                pick = high
                acc = 0.0
                for n in range(high - low + 1):
                    acc += logp[n]
                    if acc >= target:
                        pick = low + n
                        break
                if bl >= 0:
                    block_total[bl, i] += pick - counts[r, i]
                    block_total[bl, j] += (m - pick) - counts[r, j]
                if u >= 0:
                    unit_total[u, i] += pick - counts[r, i]
                    unit_total[u, j] += (m - pick) - counts[r, j]
                counts[r, i] = pick
                counts[r, j] = m - pick


def _overdispersion(m: np.ndarray, concentration: float) -> np.ndarray:
    """Variance factor ``(m + c) / (1 + c)`` of a Dirichlet-multinomial split of ``m``."""
    if not np.isfinite(concentration):
        return np.ones_like(m, dtype=float)
    return (m + concentration) / (1.0 + concentration)


def block_level_concentration(
    counts_measured: np.ndarray,
    noise_var: np.ndarray,
    population: np.ndarray,
    share: np.ndarray,
    row_block: np.ndarray,
    n_blocks: int,
) -> float:
    """Dirichlet concentration of a block's coarse shares around its rows' prior shares.

    Persons of one block share households and streets across age groups, so the coarse counts
    of a block's age rows deviate from the model together: on a small world the citizen
    pattern's block sums varied 1.55 times the sd a row-independent prior implies, against
    1.12 for single rows (:data:`BLOCK_POOLING`). Method of moments on the noisy block table summed to blocks
    (post-processing): per pattern ``(sum (y_b - E_b)^2 - sum sigma_b^2) / sum E_b (1 - E_b /
    N_b)`` with ``E_b`` the rows' expected counts, then the concentration whose
    Dirichlet-multinomial variance matches it pooled over blocks (:func:`table_concentration`).
    """
    measured = ~np.isnan(counts_measured)
    y_rows = np.where(measured, counts_measured, 0.0)
    var_rows = np.where(measured, noise_var, 0.0)
    expected_rows = population[:, None] * share
    # Only rows measured in every pattern enter (the others have no block sum to compare).
    whole = measured.all(axis=1)

    def by_block(values: np.ndarray) -> np.ndarray:
        out = np.zeros((n_blocks, values.shape[1]))
        np.add.at(out, row_block[whole], values[whole])
        return out

    y = by_block(y_rows)
    v = by_block(var_rows)
    e = by_block(expected_rows)
    n = by_block(population[:, None].astype(float))[:, 0]
    keep = n > 0
    p = e[keep] / n[keep, None]
    binomial = n[keep, None] * p * (1 - p)
    excess = ((y[keep] - e[keep]) ** 2 - v[keep]).sum(axis=0)
    ratio = np.where(
        binomial.sum(axis=0) > 0, excess / np.maximum(binomial.sum(axis=0), 1e-12), 1.0
    )
    ratio = np.maximum(ratio, 1.0)
    return table_concentration(n[keep], p, ratio)
