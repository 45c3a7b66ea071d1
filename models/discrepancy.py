"""Survey-anchored discrepancy: the class split of each administrative evidence pattern may
differ from what the latent-class model implies, by an amount the survey answers measure.

Why
---
The latent-class model assumes sources are independent given the class. Where that fails (one
class holding persons who behave differently, linkage failures shared across sources, records
that age with the person) the model's class split of an evidence pattern is off by a few
points, and it is off *in every block at once*: an error that is invisible per block and
dominant in every district sum, while the posterior of the shared parameters is far too sure of
itself (measured on the default scenario: the run total's parameter sd was 37 noncitizens while
pattern shares were off by 1-10 points).

What
----
Each persons' *administrative pattern* is its evidence pattern without the survey (ACS) column.
Per administrative pattern ``a`` and age group ``g`` (a *bucket* ``b``) the class membership of
its persons is the model's, tilted on the citizen-vs-noncitizen log-odds by ``delta_b``::

    P(k | a, g, delta) ~ pi_gk P(a | k) exp(delta_b [k is a citizen class])

with ``delta_b ~ Normal(0, tau^2)`` and ``tau`` from a half-normal prior. ``delta_b`` is
learned from the survey respondents of the bucket: under the model their answers follow
``P(answer | a, g, responded, delta) = sum_k P(k | a, g, delta) P(answer | k) /
sum_k P(k | a, g, delta) P(responded | k)``, the survey's answer probabilities being the fitted
model's (so misreporting is accounted for). The survey samples households at random, so within
a bucket respondents and non-respondents share their class split; the tilt learned from the
first carries to the second.

Computation: a *cut* posterior. For each posterior draw of the model's parameters, ``tau`` and
every ``delta_b`` are drawn exactly on grids from their conditional posterior given that draw
and the survey answers (no refit, no MCMC): ``tau`` from its grid posterior with the deltas
integrated out, then each ``delta_b`` given ``tau``. A bucket without respondents draws its
``delta_b`` from the prior, so patterns the survey cannot check carry the spread the checkable
ones show. Because ``delta_b`` is shared by every block, its uncertainty is shared too: sums
of blocks widen where, and as much as, the survey says the model may be wrong.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.special import logsumexp

log = logging.getLogger(__name__)

SURVEY_SOURCE = "acs"


@dataclass
class DiscrepancyGrid:
    """Grids of the cut posterior (log-odds tilt ``delta`` and its scale ``tau``)."""

    delta: np.ndarray
    tau: np.ndarray
    tau_log_prior: np.ndarray

    @classmethod
    def default(cls, tau_prior_sd: float = 1.0) -> DiscrepancyGrid:
        """``delta`` on [-4, 4] by 0.04; ``tau`` geometric on [0.04, 3] with a half-normal
        prior of scale ``tau_prior_sd`` (weights include the grid's spacing)."""
        delta = np.linspace(-4.0, 4.0, 201)
        tau = np.geomspace(0.04, 3.0, 30)
        # Half-normal density times d tau (geometric grid: d tau proportional to tau).
        log_prior = -0.5 * (tau / tau_prior_sd) ** 2 + np.log(tau)
        return cls(delta=delta, tau=tau, tau_log_prior=log_prior - logsumexp(log_prior))


@dataclass
class SurveyRows:
    """The survey respondents the discrepancy learns from, as weighted rows.

    ``unit_weights`` (rows x groups, sparse) averages the groups' class shares into each row's
    unit (a group itself for exact cells; a county x age unit for a county table).
    """

    unit_weights: sp.csr_matrix
    pattern: np.ndarray
    source_age: np.ndarray
    bucket: np.ndarray
    count: np.ndarray
    noise_var: np.ndarray | None = None  # per row, the count's noise variance (None: exact)


def survey_index(source_names: list[str]) -> int | None:
    """Column of the survey source, or None when it is not in the model (e.g. left out)."""
    return source_names.index(SURVEY_SOURCE) if SURVEY_SOURCE in source_names else None


def admin_pattern_ids(pattern_codes: np.ndarray, survey: int) -> np.ndarray:
    """Per full pattern, the id of its administrative pattern (the codes without the survey)."""
    admin = np.delete(pattern_codes, survey, axis=1)
    _, ids = np.unique(admin, axis=0, return_inverse=True)
    return ids.reshape(-1).astype(np.int64)


def bucket_ids(admin_ids: np.ndarray, ages: np.ndarray, n_ages: int) -> np.ndarray:
    """Bucket of (administrative pattern, age group)."""
    return admin_ids.astype(np.int64) * n_ages + ages.astype(np.int64)


def tilt_likelihood(
    rows: SurveyRows,
    pi: np.ndarray,
    admin_lik: np.ndarray,
    survey_theta: np.ndarray,
    survey_code: np.ndarray,
    citizen: np.ndarray,
    grid: np.ndarray,
    n_buckets: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Log-likelihood of the survey answers per bucket on the ``delta`` grid (buckets x grid),
    and the respondents per bucket (noisy counts: less three noise standard deviations of their
    sum).

    Parameters
    ----------
    pi
        Class shares per group (groups x k).
    admin_lik
        P(administrative pattern | class) (source ages x patterns x k).
    survey_theta
        The survey's answer probabilities (source ages x k x categories); category 0 is
        ``none`` (no survey record).
    survey_code
        Per full pattern, its survey category.
    citizen
        Boolean (k,) mask of the citizen classes.
    """
    weight = rows.unit_weights @ pi  # (rows, k)
    weight = weight * admin_lik[rows.source_age, rows.pattern]
    theta = survey_theta[rows.source_age]  # (rows, k, C)
    answer = np.take_along_axis(theta, survey_code[rows.pattern][:, None, None], axis=2)[:, :, 0]
    responded = 1.0 - theta[:, :, 0]
    a_cit = (weight * answer)[:, citizen].sum(axis=1)
    a_non = (weight * answer)[:, ~citizen].sum(axis=1)
    b_cit = (weight * responded)[:, citizen].sum(axis=1)
    b_non = (weight * responded)[:, ~citizen].sum(axis=1)
    e = np.exp(grid)[None, :]
    tiny = 1e-300
    ll = np.log(e * a_cit[:, None] + a_non[:, None] + tiny) - np.log(
        e * b_cit[:, None] + b_non[:, None] + tiny
    )
    ll *= rows.count[:, None]
    summing = sp.csr_matrix(
        (np.ones(len(rows.bucket)), (rows.bucket, np.arange(len(rows.bucket)))),
        shape=(n_buckets, len(rows.bucket)),
    )
    respondents = summing @ rows.count
    if rows.noise_var is not None:
        # Noisy counts: only what stands out of the noise counts as respondents (three noise
        # standard deviations of the bucket's sum are taken off).
        respondents = respondents - 3.0 * np.sqrt(summing @ rows.noise_var)
    return np.asarray(summing @ ll), respondents


def draw_tilts(
    loglik: np.ndarray,
    grids: DiscrepancyGrid,
    rng: np.random.Generator,
    respondents: np.ndarray | None = None,
    uncertain: np.ndarray | None = None,
    min_respondents: float = 5.0,
) -> tuple[np.ndarray, float]:
    """One draw of ``(delta per bucket, tau)`` from the grid posterior.

    ``loglik`` (buckets x delta grid): the survey log-likelihood of each bucket. A bucket
    learns from its respondents when it has at least ``min_respondents`` of them (noisy counts
    summed: fewer, and noise can outweigh the answers); otherwise it draws from the prior with
    the learned ``tau``. Buckets not ``uncertain`` (the model's class split is all but certain,
    e.g. passport holders) get no tilt and do not inform ``tau``: a rare answer against a
    definitional record (a misreport, a false link, a noisy count) would otherwise push their
    tilt, and with it ``tau``, to the grid's edge.
    """
    n_buckets = len(loglik)
    if respondents is None:
        respondents = np.where(np.any(loglik != 0.0, axis=1), np.inf, 0.0)
    if uncertain is None:
        uncertain = np.ones(n_buckets, dtype=bool)
    delta = grids.delta
    step = delta[1] - delta[0]
    # log N(delta; 0, tau^2) on the grid, normalised over the grid (tau x grid).
    log_prior = -0.5 * (delta[None, :] / grids.tau[:, None]) ** 2
    log_prior -= logsumexp(log_prior, axis=1, keepdims=True)
    learns = uncertain & (respondents >= min_respondents)
    loglik = np.where(learns[:, None], loglik, 0.0)
    informed = np.flatnonzero(learns)
    ll = loglik[informed]
    # Marginal log-likelihood of every informed bucket at every tau: (tau, buckets).
    marginal = logsumexp(ll[None, :, :] + log_prior[:, None, :], axis=2)
    log_post_tau = grids.tau_log_prior + marginal.sum(axis=1)
    t = _categorical(rng, log_post_tau[None, :])[0]
    log_post = loglik + log_prior[t][None, :]
    pick = _categorical(rng, log_post)
    tilts = delta[pick] + rng.uniform(-0.5 * step, 0.5 * step, size=len(pick))
    return np.where(uncertain, tilts, 0.0), float(grids.tau[t])


def _categorical(rng: np.random.Generator, log_weights: np.ndarray) -> np.ndarray:
    """Per row, an index drawn with probabilities proportional to ``exp(log_weights)``."""
    return np.argmax(log_weights + rng.gumbel(size=log_weights.shape), axis=1)


def tilt_membership(membership: np.ndarray, tilts: np.ndarray, citizen: np.ndarray) -> np.ndarray:
    """Membership rows (n x k) tilted by ``tilts`` (n,) on the citizen log-odds, normalised."""
    out = membership * np.where(citizen[None, :], np.exp(tilts)[:, None], 1.0)
    return out / np.maximum(out.sum(axis=1, keepdims=True), 1e-300)


# --------------------------------------------------------------------------------------------
# The latent-class problem's side: which rows the survey answers come from, and the tilt per
# draw for exact cells or for coarse block counts.


@dataclass
class ProblemDiscrepancy:
    """What prediction needs to draw and apply the tilts of one problem."""

    survey: int
    citizen: np.ndarray
    admin_ids: np.ndarray
    n_ages: int
    rows: SurveyRows
    grids: DiscrepancyGrid
    # A bucket whose citizen share is within ``certain`` of 0 or 1 gets no tilt.
    certain: float = 0.01
    min_respondents: float = 5.0

    @property
    def n_buckets(self) -> int:
        return int(self.admin_ids.max(initial=0) + 1) * self.n_ages

    def buckets(self, patterns: np.ndarray, ages: np.ndarray) -> np.ndarray:
        """Bucket of each (full pattern, age group) pair."""
        return bucket_ids(self.admin_ids[patterns], ages, self.n_ages)


def problem_discrepancy(
    problem, citizen_classes: list[int], settings: dict | None, full_view=None
) -> ProblemDiscrepancy | None:
    """The survey rows of ``problem`` (its exact cells; without them, the full-pattern table
    ``full_view`` of :func:`models.count_step.full_table_view`), or None when the discrepancy
    is switched off or no survey answers reach the model."""
    settings = settings or {}
    if not settings.get("enabled", True):
        return None
    survey = survey_index(problem.source_names)
    if survey is None:
        log.warning(
            "discrepancy: the survey source %r is not in the model; intervals carry no "
            "survey-measured discrepancy",
            SURVEY_SOURCE,
        )
        return None
    citizen = np.zeros(problem.n_classes, dtype=bool)
    citizen[citizen_classes] = True
    admin = admin_pattern_ids(problem.pattern_codes, survey)
    n_ages = int(problem.group_age.max()) + 1 if problem.group_age is not None else 1
    group_age = (
        problem.group_age if problem.group_age is not None else np.zeros(problem.n_groups, int)
    )
    survey_code = problem.pattern_codes[:, survey]
    grids = DiscrepancyGrid.default(float(settings.get("tau_prior_sd", 1.0)))
    tuning = {
        "certain": float(settings.get("certain_share", 0.01)),
        "min_respondents": float(settings.get("min_respondents", 5.0)),
    }
    if len(problem.cell_count):
        keep = np.flatnonzero(survey_code[problem.cell_pattern] != 0)
        groups = problem.cell_group[keep]
        rows = SurveyRows(
            unit_weights=sp.csr_matrix(
                (np.ones(len(keep)), (np.arange(len(keep)), groups)),
                shape=(len(keep), problem.n_groups),
            ),
            pattern=problem.cell_pattern[keep],
            source_age=problem.group_source_age[groups],
            bucket=bucket_ids(admin[problem.cell_pattern[keep]], group_age[groups], n_ages),
            count=problem.cell_count[keep].astype(float),
        )
        return ProblemDiscrepancy(survey, citizen, admin, n_ages, rows, grids, **tuning)
    if full_view is None:
        log.warning("discrepancy: no full-pattern table measures survey answers; none drawn")
        return None
    table = full_view.table
    keep = np.flatnonzero(survey_code[table.row_pattern] != 0)
    units = table.row_unit[keep]
    rows = SurveyRows(
        unit_weights=full_view.unit_weights[units],
        pattern=table.row_pattern[keep],
        source_age=full_view.unit_source_age[units],
        bucket=bucket_ids(admin[table.row_pattern[keep]], full_view.unit_age[units], n_ages),
        # Noisy counts, unclipped: the log-likelihood is linear in them, so zero-mean noise
        # leaves it unbiased (clipping at zero would invent respondents in empty cells).
        count=table.value[keep].astype(float),
        noise_var=table.sigma[keep].astype(float) ** 2,
    )
    return ProblemDiscrepancy(survey, citizen, admin, n_ages, rows, grids, **tuning)


def admin_likelihood(problem, thetas: list[np.ndarray], survey: int) -> np.ndarray:
    """P(administrative pattern | class) (source ages x patterns x k) from per-source
    probabilities ``thetas`` (each source ages x k x categories)."""
    lik = np.ones((thetas[0].shape[0], problem.n_patterns, problem.n_classes))
    for s, theta in enumerate(thetas):
        if s != survey:
            lik *= theta[:, :, problem.pattern_codes[:, s]].transpose(0, 2, 1)
    return lik


def draw_problem_tilts(
    disc: ProblemDiscrepancy,
    problem,
    pi: np.ndarray,
    thetas: list[np.ndarray],
    citizen_share: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, float]:
    """One draw of the bucket tilts given one posterior draw (``pi``, per-source ``thetas``)
    and the model's citizen share of each bucket (:func:`bucket_citizen_share`)."""
    loglik, respondents = tilt_likelihood(
        disc.rows,
        pi,
        admin_likelihood(problem, thetas, disc.survey),
        thetas[disc.survey],
        problem.pattern_codes[:, disc.survey],
        disc.citizen,
        disc.grids.delta,
        disc.n_buckets,
    )
    uncertain = (citizen_share > disc.certain) & (citizen_share < 1.0 - disc.certain)
    return draw_tilts(loglik, disc.grids, rng, respondents, uncertain, disc.min_respondents)


def bucket_citizen_share(
    bucket: np.ndarray, weight: np.ndarray, membership: np.ndarray, citizen: np.ndarray, n: int
) -> np.ndarray:
    """Per bucket, the model's citizen share of its persons (NaN: no persons).

    ``weight`` may hold unclipped noisy counts (some negative): the sums stay unbiased and the
    share is clipped to [0, 1].
    """
    total = np.bincount(bucket, weights=weight, minlength=n)
    cit = np.bincount(bucket, weights=weight * membership[:, citizen].sum(axis=1), minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, np.clip(cit / total, 0.0, 1.0), np.nan)
