"""Convergence targets: the check, the retry loop (with a fake sampler), the fit stage's verdict,
and the plain warnings (report summary, end of the run). Fast: nothing is sampled."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml

import models.stage as stage
from pipeline_common.config import load_config
from pipeline_common.convergence import (
    DEFAULTS,
    ConvergenceError,
    convergence_failures,
    convergence_settings,
    end_of_run_warning,
    fit_status,
    run_fits,
)
from pipeline_common.rng import stage_rng
from privacy.publish import convergence_statement
from reports.narrative import convergence_banners, fits_summary_sentence

TARGETS = {"rhat_max": 1.01, "ess_min": 400, "max_divergences": 0}
GOOD = {"max_rhat": 1.004, "min_ess_bulk": 1386.0, "min_ess_tail": 862.0, "divergences": 0}
# The privacy refit of issue 14: only metadata.json said so.
BAD = {"max_rhat": 1.023, "min_ess_bulk": 79.0, "min_ess_tail": 46.0, "divergences": 0}


# ------------------------------------------------------------------ the check


def test_targets_met_gives_no_failure():
    assert convergence_failures(GOOD, TARGETS) == []
    # On the threshold is a pass.
    edge = {"max_rhat": 1.01, "min_ess_bulk": 400.0, "min_ess_tail": 400.0, "divergences": 0}
    assert convergence_failures(edge, TARGETS) == []


def test_each_missed_target_is_a_plain_sentence():
    assert convergence_failures(BAD, TARGETS) == [
        "max R-hat 1.023 > 1.01",
        "min bulk ESS 79 < 400",
        "min tail ESS 46 < 400",
    ]
    diverged = {**GOOD, "divergences": 3}
    assert convergence_failures(diverged, TARGETS) == ["3 divergences > 0"]
    assert convergence_failures(diverged, {**TARGETS, "max_divergences": 5}) == []
    # A miss that rounds to the threshold at 3 decimals is printed with 4.
    assert convergence_failures({**GOOD, "max_rhat": 1.0104}, TARGETS) == [
        "max R-hat 1.0104 > 1.01"
    ]


def test_undefined_or_missing_figures_are_misses():
    # R-hat is NaN only when every parameter is a structural constant: nothing was checked.
    failures = convergence_failures({**GOOD, "max_rhat": float("nan")}, TARGETS)
    assert failures == ["max R-hat not computed (target <= 1.01)"]
    failures = convergence_failures({"max_rhat": 1.0, "divergences": 0}, TARGETS)
    assert [f.split(" not computed")[0] for f in failures] == ["min bulk ESS", "min tail ESS"]


def test_schema_defaults_match_the_code_defaults():
    schema = yaml.safe_load(Path("workflow/schemas/model.schema.yaml").read_text())
    properties = schema["properties"]["convergence"]["properties"]
    assert {key: spec["default"] for key, spec in properties.items()} == DEFAULTS
    config = load_config()
    assert config["model"]["convergence"] == DEFAULTS
    # The report judges by the model's targets unless told otherwise.
    assert config["report"]["rhat_max"] is None and config["report"]["ess_min"] is None
    assert convergence_settings({}) == DEFAULTS


def test_fit_status_uses_the_fit_verdict_or_recomputes():
    written = {**BAD, "converged": False, "convergence_targets": TARGETS}
    written["convergence_failures"] = ["max R-hat 1.023 > 1.01"]
    written["attempts"] = [{}, {}, {}]
    status = fit_status(written)
    assert status["converged"] is False and status["attempts"] == 3
    assert status["failures"] == ["max R-hat 1.023 > 1.01"]
    # Older diagnostics without a verdict are judged against the targets given.
    assert fit_status(GOOD, TARGETS)["converged"] is True
    assert fit_status(BAD, TARGETS)["failures"][0] == "max R-hat 1.023 > 1.01"
    assert fit_status(None)["available"] is False


# ------------------------------------------------------------------ the retry loop


def test_next_attempt_samples_longer_and_raises_target_accept_after_divergences():
    plan = {"draws": 1300, "tune": 300, "target_accept": 0.8}
    # R-hat alone: twice the draws, twice the tuning, same target acceptance.
    rhat_only = {**GOOD, "max_rhat": 1.02}
    assert stage.next_attempt(plan, rhat_only, TARGETS) == {
        "draws": 2600,
        "tune": 600,
        "target_accept": 0.8,
    }
    # ESS 79 against 400: 400 / 46 (the smaller) is 8.7, capped at 4.
    assert stage.next_attempt(plan, BAD, TARGETS)["draws"] == 5200
    # ESS 300 against 400: the factor is at least 2.
    assert stage.next_attempt(plan, {**GOOD, "min_ess_bulk": 300.0}, TARGETS)["draws"] == 2600
    # Divergences alone: smaller steps, longer tuning, the same draws; 0.8 -> 0.9 -> 0.95.
    diverged = {**GOOD, "divergences": 4}
    second = stage.next_attempt(plan, diverged, TARGETS)
    assert second == {"draws": 1300, "tune": 600, "target_accept": 0.9}
    third = stage.next_attempt(second, diverged, TARGETS)
    assert third["target_accept"] == pytest.approx(0.95) and third["tune"] == 1200
    assert stage.next_attempt({**plan, "target_accept": 0.985}, diverged, TARGETS)[
        "target_accept"
    ] == pytest.approx(0.99)


def test_attempt_seeds_are_deterministic_and_the_first_is_the_historical_one():
    first = int(stage_rng(20200401, "model", "sample").integers(2**31))
    assert stage.attempt_seed(20200401, 1) == first
    seeds = [stage.attempt_seed(20200401, k) for k in (1, 2, 3)]
    assert seeds == [stage.attempt_seed(20200401, k) for k in (1, 2, 3)]
    assert len(set(seeds)) == 3
    assert stage.attempt_seed(7, 2) != stage.attempt_seed(8, 2)


class FakeSampler:
    """Stands in for ``models.latent_class.sample``: each call returns the next diagnostics."""

    def __init__(self, outcomes):
        self.outcomes = list(outcomes)
        self.calls: list[dict] = []
        self.compiles = 0

    def compile(self, model, initvals):
        self.compiles += 1
        return "compiled-model"

    def sample(self, model, **kwargs):
        self.calls.append(kwargs)
        diag = self.outcomes[min(len(self.calls), len(self.outcomes)) - 1]
        idata = {
            "diag": dict(diag),
            "call": len(self.calls),
            "sample_stats": {"n_steps": np.array([3.0, 5.0])},
        }
        return idata, 10.0 * len(self.calls)


@pytest.fixture
def fake_sampler(monkeypatch):
    def install(outcomes):
        fake = FakeSampler(outcomes)
        monkeypatch.setattr(stage, "sample", fake.sample)
        monkeypatch.setattr(stage, "compile_nutpie", fake.compile)
        monkeypatch.setattr(stage, "diagnostics", lambda idata, names=None: dict(idata["diag"]))
        return fake

    return install


MODEL_SETTINGS = {
    "sampler": "nutpie",
    "draws": 300,
    "tune": 300,
    "chains": 2,
    "target_accept": 0.8,
    "adaptation": "diag",
}


def test_retry_samples_again_with_more_draws_then_stops(fake_sampler):
    fake = fake_sampler([{**BAD, "divergences": 2}, GOOD, GOOD])
    mc = {**MODEL_SETTINGS, "convergence": {**DEFAULTS, "max_attempts": 3}}
    idata, attempts, _ = stage.sample_until_converged("model", mc, 11, {"x": 0}, "test fit")
    assert len(fake.calls) == 2 and idata["call"] == 2  # stopped at the first success
    assert fake.compiles == 1  # compiled once, reused by the retry
    assert all(call["compiled"] == "compiled-model" for call in fake.calls)
    first, second = fake.calls
    assert (first["draws"], first["tune"], first["target_accept"]) == (300, 300, 0.8)
    assert second["draws"] == 1200 and second["tune"] == 600  # ESS 46 of 400: 4x
    assert second["target_accept"] == pytest.approx(0.9)  # it diverged
    assert [call["seed"] for call in fake.calls] == [stage.attempt_seed(11, k) for k in (1, 2)]
    assert attempts[0]["failures"] and attempts[1]["failures"] == []
    assert [a["draws"] for a in attempts] == [300, 1200]
    assert attempts[0]["min_ess_tail"] == 46.0 and attempts[1]["seconds"] == 20.0
    # Same config and seed: the same attempts (seeds, draws, target acceptance).
    again = fake_sampler([{**BAD, "divergences": 2}, GOOD, GOOD])
    stage.sample_until_converged("model", mc, 11, {"x": 0}, "test fit")
    assert again.calls == fake.calls


def test_retry_gives_up_after_max_attempts_and_keeps_the_last(fake_sampler):
    fake = fake_sampler([BAD])
    mc = {**MODEL_SETTINGS, "sampler": "pymc", "convergence": {**DEFAULTS, "max_attempts": 2}}
    idata, attempts, compile_seconds = stage.sample_until_converged("m", mc, 3, None)
    assert len(attempts) == 2 and idata["call"] == 2
    assert fake.compiles == 0 and compile_seconds == 0.0  # PyMC compiles inside pm.sample
    assert [call["warm_up"] for call in fake.calls] == [True, False]  # warm cache on retry
    assert all(a["failures"] for a in attempts)
    one = fake_sampler([BAD])
    mc["convergence"]["max_attempts"] = 1
    stage.sample_until_converged("m", mc, 3, None)
    assert len(one.calls) == 1


# ------------------------------------------------------------------ the fit stage's verdict


@pytest.fixture
def fit_world(tmp_path, monkeypatch, fake_sampler):
    """``fit_stage`` on a stand-in problem: everything but the verdict is faked."""
    problem = SimpleNamespace(
        centered_levels=["tract"],
        cell_count=np.ones(5),
        n_groups=3,
        n_patterns=2,
        aggregates=[],
        class_names=["a", "b"],
    )
    monkeypatch.setattr(stage, "use_private_compile_cache", lambda: None)
    monkeypatch.setattr(stage, "_problem", lambda *args: (problem, None))
    monkeypatch.setattr(stage, "modal_reference_start", lambda p: {})
    monkeypatch.setattr(stage, "build_model", lambda p: "model")
    monkeypatch.setattr(stage, "count_free_parameters", lambda m: 7)
    monkeypatch.setattr(stage, "top_parameters", lambda p: ["intercept"])
    monkeypatch.setattr(stage, "source_behaviour", lambda p, i: {})
    monkeypatch.setattr(stage, "write_datatree", lambda idata, path: Path(path).write_text("nc"))
    measurements = tmp_path / "measurements.parquet"
    table = {"table": ["block_coarse"], "geo_level": ["block"], "pattern_level": ["coarse"]}
    pd.DataFrame({**table, "sigma": [1.2]}).to_parquet(measurements)
    config = load_config(overrides={"model": {"sampler": "nutpie", "draws": 300, "tune": 300}})

    def run(outcomes, **convergence):
        config["model"]["convergence"].update(convergence)
        fake_sampler(outcomes)
        diagnostics = tmp_path / "privacy" / "model" / "diagnostics.json"
        diagnostics.parent.mkdir(parents=True, exist_ok=True)
        args = (measurements, "counts", "patterns", config, tmp_path / "posterior.nc")
        return args, diagnostics

    return run


def test_fit_that_misses_is_written_and_logged_plainly(fit_world, caplog):
    args, path = fit_world([BAD], max_attempts=2)
    with caplog.at_level(logging.INFO, logger="models.stage"):
        diag = stage.fit_stage(*args, path)
    written = json.loads(path.read_text())
    assert written["converged"] is False and diag["converged"] is False
    assert written["convergence_targets"] == TARGETS
    assert written["convergence_failures"] == [
        "max R-hat 1.023 > 1.01",
        "min bulk ESS 79 < 400",
        "min tail ESS 46 < 400",
    ]
    assert [a["draws"] for a in written["attempts"]] == [300, 1200]
    assert written["draws"] == 1200 and written["fit"] == "privacy"
    assert set(written["attempts"][0]) >= {
        "draws",
        "tune",
        "target_accept",
        "max_rhat",
        "min_ess_bulk",
        "min_ess_tail",
        "divergences",
        "seconds",
    }
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "privacy refit" in warnings[0]
    assert "did not converge after 2 sampling attempts" in warnings[0]
    assert "max R-hat 1.023 > 1.01" in warnings[0]


def test_fit_that_converges_says_so(fit_world):
    args, path = fit_world([BAD, GOOD])
    diag = stage.fit_stage(*args, path)
    assert diag["converged"] is True and diag["convergence_failures"] == []
    assert len(diag["attempts"]) == 2 and diag["draws"] == 1200


def test_on_failure_error_fails_the_fit_with_the_fix(fit_world):
    args, path = fit_world([BAD], max_attempts=1, on_failure="error")
    with pytest.raises(ConvergenceError) as error:
        stage.fit_stage(*args, path)
    message = str(error.value)
    assert "privacy refit" in message and "did not converge" in message
    assert "max R-hat 1.023 > 1.01" in message and "min tail ESS 46 < 400" in message
    assert "max R-hat <= 1.01" in message and "ESS >= 400" in message
    assert "model.draws" in message and "model.convergence.max_attempts" in message
    # The diagnostics are still written, for whoever looks.
    assert json.loads(path.read_text())["converged"] is False


# ------------------------------------------------------------------ what the user reads


def _fit_row(fit, diag, converged, failures, attempts=None):
    return {
        "fit": fit,
        "available": True,
        **diag,
        "converged": converged,
        "failures": failures,
        "targets": TARGETS,
        "attempts": attempts,
    }


def test_summary_says_plainly_which_fit_missed():
    fits = [
        _fit_row("exact", GOOD, True, []),
        _fit_row("privacy", BAD, False, convergence_failures(BAD, TARGETS), attempts=3),
    ]
    sentences = fits_summary_sentence(fits)
    assert [level for level, _ in sentences] == ["ok", "warn"]
    exact, privacy = (text for _, text in sentences)
    assert exact.startswith("Exact fit converged: largest R-hat 1.004")
    assert privacy.startswith("Privacy fit (published) did NOT converge after 3 sampling attempts")
    assert "max R-hat 1.023 > 1.01; min bulk ESS 79 < 400; min tail ESS 46 < 400" in privacy
    banners = convergence_banners(fits)
    assert len(banners) == 1 and banners[0].startswith("NOT CONVERGED — privacy fit (published)")
    # Under privacy mode none the exact fit is the published one.
    fits[0] = _fit_row("exact", BAD, False, ["max R-hat 1.023 > 1.01"])
    assert "Exact fit (published) did NOT converge" in fits_summary_sentence(fits[:1], "none")[0][1]
    missing = fits_summary_sentence([{"fit": "privacy", "available": False}])
    assert missing[0][0] == "warn" and "unknown" in missing[0][1]


def _write_diagnostics(path: Path, diag: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(diag))
    return path


def test_end_of_run_warning_names_the_fit_and_the_targets(tmp_path):
    results = tmp_path / "results" / "tiny"
    exact = _write_diagnostics(results / "model" / "diagnostics.json", GOOD)
    assert end_of_run_warning(run_fits(results, "zcdp")) is None  # no privacy fit yet: quiet
    private = {
        **BAD,
        "converged": False,
        "convergence_targets": TARGETS,
        "convergence_failures": convergence_failures(BAD, TARGETS),
        "attempts": [{}, {}, {}],
    }
    _write_diagnostics(results / "privacy" / "model" / "diagnostics.json", private)
    message = end_of_run_warning(run_fits(results, "zcdp"))
    assert message is not None and "WARNING" in message
    assert "Privacy refit (privacy/model/, published) did not converge after 3" in message
    assert "max R-hat 1.023 > 1.01; min bulk ESS 79 < 400; min tail ESS 46 < 400" in message
    assert "Exact fit" not in message  # it converged
    assert "model.draws" in message and "on_failure: error" in message
    # A diagnostics file of older code (no verdict) is judged against the default targets.
    _write_diagnostics(exact, {**GOOD, "divergences": 5})
    message = end_of_run_warning(run_fits(results, "zcdp"))
    assert "Exact fit (model/) did not converge: 5 divergences > 0" in message
    # Privacy mode none: only the exact fit, the published one.
    assert list(run_fits(results, "none")) == ["Exact fit (model/, published)"]


def test_exact_fit_verdict_is_stated_outside_published(tmp_path):
    """An exact fit that missed is said at the end of the run and in the report's summary, never
    in published/metadata.json (post-processing of the privacy measurements only)."""
    results = tmp_path / "results" / "tiny"
    exact = {**BAD, "divergences": 5}
    _write_diagnostics(results / "model" / "diagnostics.json", exact)
    private = {
        **GOOD,
        "converged": True,
        "convergence_targets": TARGETS,
        "convergence_failures": [],
    }
    _write_diagnostics(results / "privacy" / "model" / "diagnostics.json", private)
    message = end_of_run_warning(run_fits(results, "zcdp"))
    assert "Exact fit (model/) did not converge: max R-hat 1.023 > 1.01" in message
    assert "Privacy refit" not in message
    failures = convergence_failures(exact, TARGETS)
    fits = [_fit_row("exact", exact, False, failures), _fit_row("privacy", GOOD, True, [])]
    assert [level for level, _ in fits_summary_sentence(fits)] == ["warn", "ok"]
    # What publication states: the published (privacy) fit alone.
    statement = convergence_statement(private, load_config(), protected=True)
    assert statement["converged"] is True and set(statement["fits"]) == {"published_fit"}
    assert statement["fits"]["published_fit"]["fit"] == "privacy refit"
    assert "warning" not in statement
    # Under privacy mode none the published fit is the exact fit: its miss is stated there.
    statement = convergence_statement(exact, load_config(), protected=False)
    assert statement["fits"]["published_fit"]["fit"] == "exact fit"
    assert statement["converged"] is False
    assert statement["warning"].startswith("WARNING: The published exact fit did not converge")
