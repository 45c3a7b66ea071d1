"""The config of one sweep row: the base scenario and overlays with one knob set.

Every knob path must be a key of the resolved base config (:func:`check_paths`: a typo would
otherwise add a key that nothing reads), and a value that makes the config invalid fails here,
with the knob named, before any run starts (:func:`run_overrides`). The rows themselves are
:mod:`sensitivity.sweep`.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import yaml

from pipeline_common.config import deep_merge, load_config
from pipeline_common.errors import InputError
from sensitivity.sweep import BASELINE_KNOB, DEFAULT_FILE, repo_path, run_name


def _get_path(config: dict, dotted: str) -> Any:
    node: Any = config
    for key in dotted.split("."):
        node = node[key]
    return node


def _has_path(config: dict, dotted: str) -> bool:
    """Whether every key of ``dotted`` exists, each in the mapping the previous one names."""
    try:
        _get_path(config, dotted)
    except (KeyError, TypeError):  # a missing key, or a key under a number, string or list
        return False
    return True


def _set_path(config: dict, dotted: str, value: Any) -> None:
    node = config
    *parents, leaf = dotted.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value


def _substitute(template: Any, value: str) -> Any:
    """Replace ``{value}`` in a string, or in each string of a list, by ``value``."""
    if isinstance(template, str):
        return template.replace("{value}", value)
    if isinstance(template, list):
        return [_substitute(item, value) for item in template]
    return template


def base_files(sensitivity: dict, file: str = DEFAULT_FILE) -> list[Path]:
    """The base scenario and the overlays, as files merged over ``config/config.yaml``."""
    files = [sensitivity.get("base_scenario", "config/scenarios/small.yaml")]
    files += list(sensitivity.get("overlays") or [])
    out = []
    for i, name in enumerate(files):
        path = repo_path(name)
        if not path.exists():
            key = "base_scenario" if i == 0 else f"overlays.{i - 1}"
            raise InputError(file, key, f"{name} does not exist", "name a scenario file")
        out.append(path)
    return out


def base_overrides(sensitivity: dict, file: str = DEFAULT_FILE) -> dict:
    """The base scenario with the overlays merged (what every run starts from)."""
    merged: dict = {}
    for path in base_files(sensitivity, file):
        merged = deep_merge(merged, yaml.safe_load(path.read_text()) or {})
    return merged


@functools.lru_cache(maxsize=8)
def _resolved(files: tuple[str, ...], mtimes: tuple[int, ...]) -> dict:
    """The validated config of the base files (cached: validation takes about a second)."""
    del mtimes  # part of the cache key only: an edited file is read again
    return load_config(*files)


def resolved_base(sensitivity: dict, file: str = DEFAULT_FILE) -> dict:
    """The validated config of the base scenario and overlays (defaults filled in)."""
    files = base_files(sensitivity, file)
    return copy.deepcopy(
        _resolved(tuple(str(p) for p in files), tuple(p.stat().st_mtime_ns for p in files))
    )


def check_paths(sensitivity: dict, file: str = DEFAULT_FILE) -> None:
    """Every knob path must be a key of the resolved config; relative knobs need numbers there.

    A typo would otherwise add a key that nothing reads and the point would silently equal the
    baseline.

    Raises
    ------
    InputError
        Naming ``knobs.{knob}.paths`` and the path.
    """
    resolved = resolved_base(sensitivity, file)
    for knob, spec in sensitivity["knobs"].items():
        for path in spec["paths"]:
            if not _has_path(resolved, path):
                raise InputError(
                    file,
                    f"knobs.{knob}.paths",
                    f"{path!r} is not a key of the config",
                    "use a dotted path of config/config.yaml (see workflow/schemas/*.yaml)",
                )
            if spec.get("relative"):
                base = _get_path(resolved, path)
                if isinstance(base, bool) or not isinstance(base, (int, float)):
                    raise InputError(
                        file,
                        f"knobs.{knob}.relative",
                        f"{path!r} holds {base!r}, not a number to scale",
                        "drop `relative` or name a numeric key",
                    )


def run_overrides(
    sensitivity: dict, seed: int | str, knob: str, value: str, file: str = DEFAULT_FILE
) -> dict:
    """Config overrides (merged over ``config/config.yaml``) for one sweep row.

    The base scenario and overlays with ``run`` set to :func:`run_name`, ``seed`` to the
    replicate seed and, unless this is the baseline row, every path of the knob set to the
    value (parsed as YAML, so ``0.25`` is a number), to the base value times the value
    (``relative: true``), or to the knob's ``set`` template with ``{value}`` substituted.

    Raises
    ------
    InputError
        Naming ``knobs.{knob}.paths`` if a path is not a key of the resolved config, or
        ``knobs.{knob}.values`` if the value makes the config invalid.
    """
    overrides = base_overrides(sensitivity, file)
    overrides["run"] = run_name(sensitivity, seed, knob, value)
    overrides["seed"] = int(seed)
    if knob != BASELINE_KNOB:
        if knob not in sensitivity["knobs"]:
            raise InputError(file, "knobs", f"no knob {knob!r}", "use a knob of the sweep file")
        spec = sensitivity["knobs"][knob]
        check_paths({"knobs": {knob: spec}, **_base_keys(sensitivity)}, file)
        resolved = resolved_base(sensitivity, file)
        parsed = yaml.safe_load(value)
        for path in spec["paths"]:
            if "set" in spec:
                new = _substitute(spec["set"], value)
            elif spec.get("relative"):
                new = _get_path(resolved, path) * parsed
                new = round(float(new), 12)
            else:
                new = parsed
            _set_path(overrides, path, new)
    # Validate the merged config now, so a bad value fails before any run starts.
    try:
        load_config(overrides=overrides)
    except InputError as exc:
        raise InputError(
            file,
            f"knobs.{knob}.values",
            f"value {value!r} makes the config invalid ({exc.field}: {exc.problem})",
            exc.fix,
        ) from None
    return overrides


def _base_keys(sensitivity: dict) -> dict:
    return {k: sensitivity[k] for k in ("base_scenario", "overlays") if k in sensitivity}


def resolved_run_config(
    sensitivity: dict, seed: int | str, knob: str, value: str, file: str = DEFAULT_FILE
) -> dict:
    """The validated config of one sweep row (defaults filled in)."""
    return load_config(overrides=run_overrides(sensitivity, seed, knob, value, file))
