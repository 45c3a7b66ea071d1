"""The fused cell log-likelihood op: value and gradient, numpy and numba implementations."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.gradient import verify_grad

from models.cell_loglik import cell_mixture_loglik


@pytest.fixture(scope="module")
def cells():
    rng = np.random.default_rng(5)
    n_groups, n_rows, n_cells, k = 40, 15, 300, 4
    return {
        "pi": rng.dirichlet(np.ones(k), n_groups),
        "lik": rng.uniform(0.01, 1.0, (n_rows, k)),
        "group": rng.integers(0, n_groups, n_cells),
        # Every row used, some rows twice in a group: the scatter must add, not overwrite.
        "row": np.concatenate([np.arange(n_rows), rng.integers(0, n_rows, n_cells - n_rows)]),
        "counts": rng.integers(1, 9, n_cells).astype(float),
    }


def reference(pi, lik, group, row, counts):
    return counts @ np.log((pi[group] * lik[row]).sum(axis=1))


def test_value_and_gradient_match_the_plain_formula(cells):
    c = cells
    pi, lik = pt.dmatrix("pi"), pt.dmatrix("lik")
    out = cell_mixture_loglik(pi, lik, c["group"], c["row"], c["counts"])
    plain = pt.dot(c["counts"], pt.log(pt.sum(pi[c["group"]] * lik[c["row"]], axis=1)))
    want = pytensor.function([pi, lik], [plain, *pt.grad(plain, [pi, lik])], mode="FAST_COMPILE")
    expected = want(c["pi"], c["lik"])
    assert expected[0] == pytest.approx(reference(**c), rel=1e-12)
    for mode in ("FAST_COMPILE", "NUMBA"):
        got = pytensor.function([pi, lik], [out, *pt.grad(out, [pi, lik])], mode=mode)
        values = got(c["pi"], c["lik"])
        for g, e in zip(values, expected, strict=True):
            np.testing.assert_allclose(g, e, rtol=1e-10, err_msg=mode)


def test_gradient_matches_finite_differences(cells):
    c = cells
    verify_grad(
        lambda pi, lik: cell_mixture_loglik(pi, lik, c["group"], c["row"], c["counts"]),
        [c["pi"], c["lik"]],
        rng=np.random.default_rng(1),
    )


def test_counts_are_data_not_parameters(cells):
    c = cells
    counts = pt.dvector("counts")
    out = cell_mixture_loglik(c["pi"], c["lik"], c["group"], c["row"], counts)
    with pytest.raises(Exception, match="counts are data"):
        pytensor.function([counts], pt.grad(out, counts), mode="FAST_COMPILE")(c["counts"])
