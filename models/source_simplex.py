"""All sources' class-conditional probabilities as one vector of additive log-ratios.

Each (source, class) row is a probability vector over the source's categories with a Dirichlet
prior over the categories the class can show; categories impossible for the class by definition
(structural zeros) are fixed at a small false-link allowance ``eps`` and the possible ones share
``1 - n_impossible * eps``. A row with one possible category is fixed.

The free coordinates of every row are the log-ratios of its possible categories against a
reference category: by default the first possible one, and in the pipeline each row's most
probable category at the EM start (:func:`models.latent_class.modal_references`). Why: all
log-ratios of a row share the reference's log-probability, so a rare reference makes them move
together. Measured on the default scenario's exact fit with ``none`` as every row's reference:
naturalized citizens show ``none`` in Numident 1.5% of the time, their four Numident log-ratios
had posterior correlations 0.79-0.96, and in one run their bulk ESS fell to 293 (from 2,000-5,000
in another with the same geometry: the sampler's mass-matrix adaptation caught the correlation
in one run and not in the other). (PyMC's centred log-ratio is worse still: it ties every
coordinate to the mean log-probability.)

In these coordinates a ``Dirichlet(a)`` row has log-density ``sum_j a_j log q_j + const``
(the Dirichlet's ``sum (a_j - 1) log q_j`` plus the transform's log-Jacobian ``sum_j log q_j``),
so all rows together are one vector-valued random variable with a few array operations.
Why one variable: with a Dirichlet per source and class (nine on the default scenario), each
with its own transform, splits and joins, the compiled log-density had 327 nodes and numba took
about 100 s to compile it; see ``build_source_log_probs`` for what replaced them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln


@dataclass
class SourceSimplexLayout:
    """Where every (source, class, category) probability comes from.

    Rows are ``(source, class)`` pairs in source-major order; columns are categories, padded to
    the widest source.
    """

    n_classes: int
    n_categories: list[int]
    free_labels: list[str]  # "source:class:category" of each free coordinate
    logit_index: np.ndarray  # (rows, width): index into concat([free, [0]]) (reference: 0)
    possible: np.ndarray  # (rows, width) bool: category exists and is possible for the class
    impossible: np.ndarray  # (rows, width) bool: category exists and is a structural zero
    log_scale: np.ndarray  # (rows,): log(1 - n_impossible * eps)
    log_eps: float
    reference: np.ndarray  # (rows,): the category each row's log-ratios are taken against
    alpha: np.ndarray  # (rows, width): Dirichlet parameters (0 outside rows with free entries)
    log_normaliser: float  # sum over Dirichlet rows of lgamma(sum a) - sum lgamma(a)

    @property
    def n_free(self) -> int:
        return len(self.free_labels)

    @property
    def width(self) -> int:
        return self.possible.shape[1]

    def row(self, s: int, k: int) -> int:
        return s * self.n_classes + k

    def prior_mode(self) -> np.ndarray:
        """Free coordinates of each row's Dirichlet mean (``log a_j / a_ref``)."""
        out = np.zeros(self.n_free)
        rows, cols = np.nonzero((self.logit_index < self.n_free) & (self.alpha > 0))
        a = self.alpha
        out[self.logit_index[rows, cols]] = np.log(a[rows, cols] / a[rows, self.reference[rows]])
        return out

    def free_from_probabilities(self, thetas: list[np.ndarray]) -> np.ndarray:
        """Free coordinates of given probabilities (``thetas[s]``: k x C), e.g. a start point."""
        out = np.zeros(self.n_free)
        ref = self.reference
        for s, theta in enumerate(thetas):
            for k in range(self.n_classes):
                r = self.row(s, k)
                free = self.logit_index[r] < self.n_free
                cols = np.flatnonzero(free)
                out[self.logit_index[r, cols]] = np.log(theta[k, cols]) - np.log(theta[k, ref[r]])
        return out

    def log_probs(self, free, xp):
        """(rows x width) log-probabilities from the free coordinates (``xp``: numpy or
        ``pytensor.tensor``); entries outside a source's categories are 0."""
        log_q = self._log_q(free, xp)
        return xp.where(
            self.possible,
            self.log_scale[:, None] + log_q,
            xp.where(self.impossible, self.log_eps, 0.0),
        )

    def prior_logp(self, free, xp):
        """Joint Dirichlet log-density of all rows in the free coordinates (with Jacobian)."""
        return xp.sum(self.alpha * self._log_q(free, xp)) + self.log_normaliser

    def _log_q(self, free, xp):
        """Log of each row's Dirichlet variable (possible entries; 0 elsewhere)."""
        full = xp.concatenate([free, xp.zeros((1,))])[self.logit_index]
        # Impossible and padding entries drop out of the normaliser via a large negative logit.
        logits = xp.where(self.possible, full, -1e4)
        top = xp.max(logits, axis=1, keepdims=True)
        lse = top + xp.log(xp.sum(xp.exp(logits - top), axis=1, keepdims=True))
        return xp.where(self.possible, logits - lse, 0.0)

    def source_matrix(self, log_probs, s: int, xp):
        """Source ``s``'s probabilities (k x C) from :meth:`log_probs`."""
        rows = slice(self.row(s, 0), self.row(s, self.n_classes))
        return xp.exp(log_probs[rows, : self.n_categories[s]])

    def pattern_index(self, pattern_codes: np.ndarray) -> np.ndarray:
        """(patterns x sources x classes) flat indices into :meth:`log_probs`, so that the
        class-conditional log-probability of a pattern is a gather and a sum over sources."""
        n_sources = pattern_codes.shape[1]
        row = np.arange(n_sources)[:, None] * self.n_classes + np.arange(self.n_classes)[None]
        return row[None] * self.width + pattern_codes[:, :, None]


def source_simplex_layout(
    source_names: list[str],
    categories: list[list[str]],
    class_names: list[str],
    alpha: list[np.ndarray],
    impossible: list[np.ndarray],
    eps: float,
    reference: list[np.ndarray] | None = None,
    tie: list[np.ndarray] | None = None,
) -> SourceSimplexLayout:
    """The :class:`SourceSimplexLayout` of a problem's sources.

    ``impossible[s]`` is source ``s``'s (k x C) structural-zero mask; ``eps`` the probability
    an impossible category keeps (false links); ``reference[s][k]`` the category that class
    ``k``'s log-ratios of source ``s`` are taken against (default: the first possible one);
    ``tie[s][k]``: the earlier class whose probabilities of source ``s`` class ``k`` shares
    (itself: its own; a tied row has the same possible categories and no prior of its own).
    """
    k = len(class_names)
    width = max(len(c) for c in categories)
    n_rows = len(source_names) * k
    logit_index = np.zeros((n_rows, width), dtype=np.int64)
    possible = np.zeros((n_rows, width), dtype=bool)
    impossible_out = np.zeros((n_rows, width), dtype=bool)
    alpha_out = np.zeros((n_rows, width))
    log_scale = np.zeros(n_rows)
    labels: list[str] = []
    log_normaliser = 0.0
    reference_slots = []
    tied_rows = []
    for s, (name, cats) in enumerate(zip(source_names, categories, strict=True)):
        mask = np.asarray(impossible[s], dtype=bool)
        for c, cls in enumerate(class_names):
            r = s * k + c
            allowed = np.flatnonzero(~mask[c])
            if not len(allowed):
                raise ValueError(f"source {name!r}: class {cls!r} has no possible category")
            possible[r, allowed] = True
            impossible_out[r, : len(cats)] = mask[c]
            log_scale[r] = np.log1p(-eps * mask[c].sum())
            target = c if tie is None else int(tie[s][c])
            if target != c:
                if not 0 <= target < c or (mask[target] != mask[c]).any():
                    raise ValueError(
                        f"source {name!r}: class {cls!r} can only share the probabilities of an "
                        "earlier class with the same impossible categories"
                    )
                tied_rows.append((r, s * k + target))
                reference_slots.append((r, reference_slots[s * k + target][1]))
                continue
            ref = allowed[0] if reference is None else int(reference[s][c])
            if ref not in allowed:
                raise ValueError(
                    f"source {name!r}: reference category {ref} of class {cls!r} is impossible"
                )
            reference_slots.append((r, ref))
            if len(allowed) < 2:
                continue  # one possible category: fixed, no Dirichlet
            a = np.asarray(alpha[s][c, allowed], dtype=float)
            alpha_out[r, allowed] = a
            log_normaliser += float(gammaln(a.sum()) - gammaln(a).sum())
            for j in allowed[allowed != ref]:
                logit_index[r, j] = len(labels)
                labels.append(f"{name}:{cls}:{cats[j]}")
    # Reference, impossible and padding entries read the trailing fixed 0.
    n_free = len(labels)
    fixed = ~possible
    for r, j in reference_slots:
        fixed[r, j] = True
    logit_index[fixed] = n_free
    for r, target in tied_rows:
        logit_index[r] = logit_index[target]
    return SourceSimplexLayout(
        n_classes=k,
        n_categories=[len(c) for c in categories],
        free_labels=labels,
        logit_index=logit_index,
        possible=possible,
        impossible=impossible_out,
        log_scale=log_scale,
        log_eps=float(np.log(eps)),
        reference=np.array([j for _, j in reference_slots], dtype=np.int64),
        alpha=alpha_out,
        log_normaliser=log_normaliser,
    )
