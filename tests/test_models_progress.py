"""Sampler progress of the fits (issue 18): logged now and then, draws unchanged."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pytest

from models.latent_class import SamplerProgress, compile_nutpie, progress_message, sample


def chains(done: int, total: int = 1600, divergences: int = 0, tuning: bool = True):
    """Two chains' ``nutpie.ChainProgress``-like records, ``done`` draws each."""
    return [
        SimpleNamespace(
            finished_draws=done, total_draws=total, divergences=divergences, tuning=tuning
        )
        for _ in range(2)
    ]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_message_counts_draws_divergences_and_time_left():
    line = progress_message("exact fit", 800, 3200, 3, False, 60.0)
    assert "exact fit: sampling, 800/3,200 draws (25%)" in line
    assert "3 divergences so far" in line
    assert "1 min 00 s elapsed" in line
    assert "about 3 min 00 s left" in line  # 2,400 draws left at 800 a minute
    assert progress_message("x", 3200, 3200, 0, False, 7_500.0).startswith("x: done, 3,200/3,200")
    assert "2 h 05 min elapsed" in progress_message("x", 3200, 3200, 0, False, 7_500.0)


def test_progress_is_logged_every_ten_seconds_and_at_the_end(caplog):
    clock = Clock()
    progress = SamplerProgress("privacy refit", every=10.0, clock=clock)
    with caplog.at_level(logging.INFO, logger="models.latent_class"):
        clock.now = 0.5
        progress(chains(0))  # nothing drawn yet: no line
        for second in range(1, 40):
            clock.now = float(second)
            progress(chains(second * 10, divergences=second // 20, tuning=second < 15))
        clock.now = 41.0
        progress(chains(1600, tuning=False))
        progress(chains(1600, tuning=False))  # nutpie may call again: said once
    lines = [r.getMessage() for r in caplog.records if r.name == "models.latent_class"]
    assert lines == progress.lines
    # The first draw, then every 10 s (1, 11, 21, 31), then done.
    assert len(lines) == 5
    assert lines[0].startswith("privacy refit: tuning, 20/3,200 draws")
    assert "sampling, 620/3,200" in lines[3] and "2 divergences" in lines[3]
    assert lines[-1].startswith("privacy refit: done, 3,200/3,200 draws (100%)")


def test_long_fits_log_less_often():
    clock = Clock()
    progress = SamplerProgress("fit", every=10.0, clock=clock)
    for second in range(1, 7 * 3600, 5):
        clock.now = float(second)
        progress(chains(1 + second // 100, total=10**6))
    # Every 10 s would be 2,520 lines; a twentieth of the elapsed time keeps it near 100.
    assert 60 <= len(progress.lines) <= 160


@pytest.fixture(scope="module")
def toy_model():
    import pymc as pm

    with pm.Model() as model:
        mu = pm.Normal("mu", 0.0, 1.0, shape=3)
        sigma = pm.HalfNormal("sigma", 1.0)
        pm.Normal("y", mu.sum(), sigma, observed=np.linspace(-1.0, 2.0, 20))
    return model, compile_nutpie(model)


def test_progress_leaves_the_draws_unchanged(toy_model, caplog):
    """Same compiled model and seed, with and without the progress callback: same draws."""
    model, compiled = toy_model
    kwargs = dict(sampler="nutpie", draws=400, tune=200, chains=2, seed=11, compiled=compiled)
    with caplog.at_level(logging.INFO, logger="models.latent_class"):
        logged, _ = sample(model, progress_label="toy fit", **kwargs)
    silent, _ = sample(model, **kwargs)
    for name in ("mu", "sigma"):
        assert np.array_equal(logged.posterior[name].values, silent.posterior[name].values)
    assert np.array_equal(
        logged.sample_stats["diverging"].values, silent.sample_stats["diverging"].values
    )
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("toy fit:")]
    assert lines and lines[-1].startswith("toy fit: done, 1,200/1,200 draws (100%)")
