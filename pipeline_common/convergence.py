"""Convergence targets of a fit, and saying plainly when a fit missed them.

One check serves every stage that judges a fit: the model stage (which samples again until the
targets are met, see :func:`models.stage.sample_until_converged`), publication
(``published/metadata.json``, the published fit only), the report's summary and the end-of-run
warning of the Snakefile (:func:`end_of_run_warning`). The targets are ``model.convergence`` in
the config (``workflow/schemas/model.schema.yaml``); a fit's ``diagnostics.json`` records the
targets it was held to (``convergence_targets``), whether it met them (``converged``) and why not
(``convergence_failures``, plain sentences such as ``"max R-hat 1.023 > 1.01"``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

# Keep equal to the defaults of model.convergence in workflow/schemas/model.schema.yaml (a test
# checks): used when a config was built without schema validation (benchmarks, hand-made dicts).
DEFAULTS: dict[str, Any] = {
    "rhat_max": 1.01,
    "ess_min": 400,
    "max_divergences": 0,
    "max_attempts": 3,
    "on_failure": "warn",
}
TARGET_KEYS = ("rhat_max", "ess_min", "max_divergences")


class ConvergenceError(RuntimeError):
    """A fit missed its convergence targets and ``model.convergence.on_failure`` is ``error``."""


def convergence_settings(config: dict) -> dict[str, Any]:
    """``model.convergence`` of ``config`` with the schema defaults filled in."""
    given = ((config or {}).get("model") or {}).get("convergence") or {}
    return {**DEFAULTS, **given}


def convergence_targets(config: dict) -> dict[str, float]:
    """The targets alone (``rhat_max``, ``ess_min``, ``max_divergences``) of ``config``."""
    settings = convergence_settings(config)
    return {key: settings[key] for key in TARGET_KEYS}


def _number(value) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _rhat_text(value: float, threshold: float) -> str:
    # 3 decimals unless rounding would print a miss as the threshold itself (1.0104 > 1.01).
    text = f"{value:.3f}"
    return text if float(text) > threshold else f"{value:.4f}"


def convergence_failures(diagnostics: dict, targets: dict) -> list[str]:
    """Plain sentences, one per missed target; empty when every target is met.

    ``diagnostics`` holds ``max_rhat``, ``min_ess_bulk``, ``min_ess_tail`` and ``divergences``
    (as :func:`models.latent_class.diagnostics` returns them). R-hat is NaN only when no
    parameter has one (structural constants are skipped before the maximum): that is a miss,
    as is any figure that is missing.
    """
    rhat_max = float(targets["rhat_max"])
    ess_min = float(targets["ess_min"])
    max_div = int(targets["max_divergences"])
    failures = []
    rhat = _number(diagnostics.get("max_rhat"))
    if rhat is None or math.isnan(rhat):
        failures.append(f"max R-hat not computed (target <= {rhat_max:g})")
    elif rhat > rhat_max:
        failures.append(f"max R-hat {_rhat_text(rhat, rhat_max)} > {rhat_max:g}")
    for key, name in (("min_ess_bulk", "bulk"), ("min_ess_tail", "tail")):
        ess = _number(diagnostics.get(key))
        if ess is None or math.isnan(ess):
            failures.append(f"min {name} ESS not computed (target >= {ess_min:,.0f})")
        elif ess < ess_min:
            failures.append(f"min {name} ESS {ess:,.0f} < {ess_min:,.0f}")
    divergences = _number(diagnostics.get("divergences"))
    if divergences is None:
        failures.append(f"divergences not counted (target <= {max_div})")
    elif divergences > max_div:
        failures.append(f"{int(divergences):,} divergences > {max_div}")
    return failures


def fit_status(diagnostics: dict | None, targets: dict | None = None) -> dict[str, Any]:
    """Whether a fit converged: ``{available, converged, failures, targets, attempts}``.

    The verdict the model stage wrote into ``diagnostics.json`` when it is there and no
    ``targets`` are imposed; otherwise recomputed from the figures against ``targets`` (or the
    file's own ``convergence_targets``, or the defaults), so older diagnostics are judged too.
    """
    if not diagnostics:
        return {"available": False, "converged": None, "failures": [], "targets": targets}
    own = diagnostics.get("convergence_targets")
    if targets is None and "converged" in diagnostics and own:
        failures = list(diagnostics.get("convergence_failures") or [])
        converged = bool(diagnostics["converged"])
        targets = own
    else:
        targets = targets or own or {key: DEFAULTS[key] for key in TARGET_KEYS}
        failures = convergence_failures(diagnostics, targets)
        converged = not failures
    attempts = diagnostics.get("attempts")
    return {
        "available": True,
        "converged": converged,
        "failures": failures,
        "targets": dict(targets),
        "attempts": len(attempts) if isinstance(attempts, list) else None,
    }


def failure_sentence(fit: str, status: dict) -> str:
    """``"{fit} did not converge: ...; ... (after 3 sampling attempts)"``."""
    attempts = status.get("attempts")
    after = f" after {attempts} sampling attempts" if attempts and attempts > 1 else ""
    return f"{fit} did not converge{after}: " + "; ".join(status["failures"])


FIX = (
    "raise model.draws and model.tune (longer chains and warm-up), or "
    "model.convergence.max_attempts (more automatic retries, each with more draws and twice "
    "the tuning), "
    "then rerun the fit (--forcerun fit_model / privacy_fit)"
)


def failure_message(fit: str, status: dict, settings: dict, draws: int, tune: int) -> str:
    """The error of a fit that missed its targets under ``on_failure: error``: fit, targets, fix."""
    targets = status["targets"]
    return (
        f"{failure_sentence(fit, status)}. Targets (model.convergence): max R-hat <= "
        f"{targets['rhat_max']:g}, bulk and tail ESS >= {targets['ess_min']:,.0f}, divergences "
        f"<= {targets['max_divergences']}. Fix: {FIX} (now draws {draws}, tune {tune}, "
        f"max_attempts {settings['max_attempts']}); or set model.convergence.on_failure: warn "
        "to keep the fit with a warning."
    )


def read_fit_statuses(fits: dict[str, str | Path]) -> dict[str, dict]:
    """:func:`fit_status` of each existing ``diagnostics.json`` in ``{fit name: path}``."""
    out = {}
    for name, path in fits.items():
        path = Path(path)
        if not path.is_file():
            continue
        try:
            diagnostics = json.loads(path.read_text())
        except (OSError, ValueError):
            out[name] = {
                "available": False,
                "converged": None,
                "failures": [f"{path} could not be read"],
                "path": str(path),
            }
            continue
        out[name] = {**fit_status(diagnostics), "path": str(path)}
    return out


def run_fits(results_dir: str | Path, privacy_mode: str) -> dict[str, Path]:
    """``{fit name: diagnostics.json}`` of a run's fits (``results/{run}``)."""
    results = Path(results_dir)
    if privacy_mode == "none":
        return {"Exact fit (model/, published)": results / "model" / "diagnostics.json"}
    return {
        "Exact fit (model/)": results / "model" / "diagnostics.json",
        "Privacy refit (privacy/model/, published)": results / "privacy/model/diagnostics.json",
    }


def end_of_run_warning(fits: dict[str, str | Path]) -> str | None:
    """A loud warning naming every fit in ``{fit name: diagnostics.json}`` that missed a target.

    ``None`` when every existing fit converged (or none exists). The Snakefile's ``onsuccess:``
    handler prints it last, where a user looks when the run ends.
    """
    lines = []
    for name, status in read_fit_statuses(fits).items():
        if status["converged"] is False or not status["available"]:
            lines.append(f"  - {failure_sentence(name, status)} ({status['path']})")
    if not lines:
        return None
    bar = "!" * 78
    return "\n".join(
        [
            bar,
            "WARNING: a model fit did NOT converge; its estimates and interval ends are not "
            "reliable.",
            *lines,
            f"Fix: {FIX}. The targets are model.convergence (rhat_max, ess_min, "
            "max_divergences); model.convergence.on_failure: error makes this an error.",
            bar,
        ]
    )
