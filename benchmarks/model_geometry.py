"""Posterior geometry of the model at its mode: what a diagonal mass matrix will face.

Finds the MAP of the exact fit (L-BFGS on PyMC's compiled log-density and gradient), takes the
Hessian by central differences of the gradient, and prints the condition number of the implied
posterior correlation matrix with its worst eigenvectors. ``sqrt(condition)`` is roughly the
number of leapfrog steps NUTS needs per draw with a diagonal mass matrix. A minute on the default
scenario instead of a failed half-hour fit (docs/DEVELOPING.md). Not meaningful for centred
effects with weak data, whose mode sits at ``sigma -> 0``.

    python benchmarks/model_geometry.py [--levels county,tract] [--centered tract] [config...]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.optimize as so

from models.latent_class import build_model
from models.stage import _problem
from pipeline_common.config import load_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="*")
    parser.add_argument("--levels", default=None, help="comma-separated model.levels")
    parser.add_argument("--centered", default=None, help="comma-separated centered_levels")
    args = parser.parse_args()
    cfg = load_config(*args.scenario)
    if args.levels is not None:
        cfg["model"]["levels"] = args.levels.split(",")
    if args.centered is not None:
        cfg["model"]["centered_levels"] = [c for c in args.centered.split(",") if c]
    root = f"results/{cfg['run']}"
    problem, _ = _problem(
        f"{root}/model/exact_measurements.parquet",
        f"{root}/model/public_counts.parquet",
        f"{root}/model/patterns.parquet",
        cfg,
    )
    model = build_model(problem)
    fn = model.logp_dlogp_function(ravel_inputs=True)
    fn.set_extra_values({})
    point = model.initial_point()
    names = [v.name for v in fn._grad_vars]
    sizes = [np.size(point[n]) for n in names]
    labels = np.repeat(names, sizes)
    x0 = np.concatenate([np.ravel(point[n]) for n in names])

    def negative(x):
        logp, grad = fn(x)
        return -float(logp), -np.asarray(grad)

    start = time.perf_counter()
    res = so.minimize(negative, x0, jac=True, method="L-BFGS-B", options={"maxiter": 5000})
    print(f"mode: -logp {res.fun:.2f}, {res.nit} iterations, {time.perf_counter() - start:.1f} s")
    n, h = len(res.x), 1e-5
    hessian = np.zeros((n, n))
    for i in range(n):
        step = np.zeros(n)
        step[i] = h
        hessian[:, i] = (negative(res.x + step)[1] - negative(res.x - step)[1]) / (2 * h)
    hessian = (hessian + hessian.T) / 2
    cov = np.linalg.inv(hessian)
    sd = np.sqrt(np.clip(np.diag(cov), 1e-300, None))
    values, vectors = np.linalg.eigh(cov / np.outer(sd, sd))
    condition = values.max() / values.min()
    print(
        f"{n} parameters; posterior correlation condition {condition:.0f} (sqrt {condition**0.5:.1f})"
    )
    for j in (0, 1, 2, -1):
        top = np.argsort(-np.abs(vectors[:, j]))[:6]
        parts = ", ".join(f"{labels[t]} {vectors[t, j]:+.2f}" for t in top)
        print(f"  eigenvalue {values[j]:.4g}: {parts}")


if __name__ == "__main__":
    main()
