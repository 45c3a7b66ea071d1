"""The latent-class log-likelihood of a table of cells, as one PyTensor op with its gradient.

Every cell ``c`` is a group ``g[c]`` (whose class shares are ``pi[g[c]]``), a row ``r[c]`` of the
class-conditional pattern probabilities ``lik`` and a count ``n[c]``; the latent class is
summed out::

    loglik = sum_c n[c] * log(sum_k pi[g[c], k] * lik[r[c], k])

Written with PyTensor's generic ops this is two gathers whose gradients are two scatter-adds.
Here value and gradient are a single loop each, with numba implementations for nutpie and
PyMC's numba linker, and numpy ``perform`` methods for every other mode. On the default
scenario (67k cells), together with per-unit exponentials in
:func:`models.latent_class.group_class_shares`, logp + gradient went from 2.5 to 1.6 ms.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType, disconnected_type, grad_not_implemented
from pytensor.graph.basic import Apply, Variable
from pytensor.graph.op import Op
from pytensor.link.numba.dispatch.basic import numba_njit, register_funcify_default_op_cache_key

__all__ = ["cell_mixture_loglik"]


def _as_inputs(pi, lik, group, row, counts):
    def index(x):
        return pt.as_tensor_variable(x if isinstance(x, Variable) else np.asarray(x, np.int64))

    return [
        pt.as_tensor_variable(pi).astype("float64"),
        pt.as_tensor_variable(lik).astype("float64"),
        index(group),
        index(row),
        pt.as_tensor_variable(counts).astype("float64"),
    ]


def _mixture(pi, lik, group, row) -> np.ndarray:
    return np.einsum("ck,ck->c", pi[group], lik[row])


class CellMixtureLogLik(Op):
    """``sum_c n[c] log(sum_k pi[g[c], k] lik[r[c], k])`` (a scalar) and ``n[c] / mix[c]``.

    The second output is what the gradient needs per cell; returning it saves the gradient
    recomputing every cell's mixture.
    """

    __props__ = ()

    def make_node(self, pi, lik, group, row, counts):
        inputs = _as_inputs(pi, lik, group, row, counts)
        return Apply(self, inputs, [pt.scalar(dtype="float64"), pt.vector(dtype="float64")])

    def perform(self, node, inputs, output_storage):
        pi, lik, group, row, counts = inputs
        mix = _mixture(pi, lik, group, row)
        output_storage[0][0] = np.asarray(counts @ np.log(mix))
        output_storage[1][0] = counts / mix

    def pullback(self, inputs, outputs, output_grads):
        out_grad, weight_grad = output_grads
        if not isinstance(weight_grad.type, DisconnectedType):
            raise NotImplementedError("the per-cell weights of CellMixtureLogLik have no gradient")
        pi, lik, group, row, counts = inputs
        grad_pi, grad_lik = CellMixtureLogLikGrad()(pi, lik, group, row, outputs[1])
        return [
            out_grad * grad_pi,
            out_grad * grad_lik,
            disconnected_type(),
            disconnected_type(),
            grad_not_implemented(self, 4, counts, "counts are data"),
        ]

    def connection_pattern(self, node):
        return [[True, True], [True, True], [False, False], [False, False], [True, True]]


class CellMixtureLogLikGrad(Op):
    """Gradient of :class:`CellMixtureLogLik` with respect to ``pi`` and ``lik``.

    Takes the per-cell weights ``n[c] / mix[c]`` in place of the counts.
    """

    __props__ = ()

    def make_node(self, pi, lik, group, row, weight):
        inputs = _as_inputs(pi, lik, group, row, weight)
        return Apply(self, inputs, [inputs[0].type(), inputs[1].type()])

    def perform(self, node, inputs, output_storage):
        pi, lik, group, row, weight = inputs
        k = pi.shape[1]
        grad_pi = np.stack(
            [np.bincount(group, weight * lik[row, j], minlength=len(pi)) for j in range(k)], axis=1
        )
        grad_lik = np.stack(
            [np.bincount(row, weight * pi[group, j], minlength=len(lik)) for j in range(k)], axis=1
        )
        output_storage[0][0] = grad_pi
        output_storage[1][0] = grad_lik


@register_funcify_default_op_cache_key(CellMixtureLogLik)
def _numba_cell_mixture_loglik(op, node, **kwargs):
    @numba_njit
    def cell_mixture_loglik(pi, lik, group, row, counts):
        total = 0.0
        n_class = pi.shape[1]
        weight = np.empty(group.shape[0], dtype=np.float64)
        for c in range(group.shape[0]):
            mix = 0.0
            for k in range(n_class):
                mix += pi[group[c], k] * lik[row[c], k]
            total += counts[c] * np.log(mix)
            weight[c] = counts[c] / mix
        return np.array(total, dtype=np.float64), weight

    return cell_mixture_loglik


@register_funcify_default_op_cache_key(CellMixtureLogLikGrad)
def _numba_cell_mixture_loglik_grad(op, node, **kwargs):
    @numba_njit
    def cell_mixture_loglik_grad(pi, lik, group, row, weight):
        grad_pi = np.zeros_like(pi)
        grad_lik = np.zeros_like(lik)
        n_class = pi.shape[1]
        for c in range(group.shape[0]):
            g = group[c]
            r = row[c]
            for k in range(n_class):
                grad_pi[g, k] += weight[c] * lik[r, k]
                grad_lik[r, k] += weight[c] * pi[g, k]
        return grad_pi, grad_lik

    return cell_mixture_loglik_grad


def cell_mixture_loglik(pi, lik, group, row, counts):
    """Symbolic ``sum_c counts[c] * log(sum_k pi[group[c], k] * lik[row[c], k])``.

    Parameters
    ----------
    pi : tensor, shape (n_groups, n_classes)
        Class shares per group.
    lik : tensor, shape (n_rows, n_classes)
        Class-conditional probability of each row's evidence pattern.
    group, row : int arrays, shape (n_cells,)
        Each cell's group and row (constants).
    counts : tensor, shape (n_cells,)
        Persons per cell (data: no gradient).
    """
    return CellMixtureLogLik()(pi, lik, group, row, counts)[0]
