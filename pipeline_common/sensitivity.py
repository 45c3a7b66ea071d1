"""Sensitivity sweeps: one knob at a time, replicated, on common random numbers.

``config/sensitivity.yaml`` names each knob's config paths and the values to try. The sweep is
a table with one row per (replicate seed, knob, value), driven by
``snakemake.utils.Paramspace``; each row is a pipeline run on the base scenario with that seed
and that one value changed (run name ``{run_prefix}-s{seed}-{knob}-{value}``, outputs under
``results/{run}/``), plus one unchanged baseline run per seed that the other points of the
replicate reuse (``pipeline_common.sensitivity_reuse``). All points of a replicate share the
seed, and the synthetic world draws every part from a stream of its own, so the population is
the same at every point of a replicate (common random numbers).

This module is the configuration side: reading and checking the sweep file, the sweep table,
the config overrides of one row. Scoring is :mod:`models.sensitivity`; the report is
:mod:`reports.sensitivity_report`.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from pipeline_common.config import REPO_ROOT, deep_merge, load_config, validation_error_of
from pipeline_common.errors import InputError

BASELINE_KNOB = "baseline"
BASELINE_VALUE = "base"
DEFAULT_FILE = "config/sensitivity.yaml"
SCHEMA = REPO_ROOT / "workflow" / "schemas" / "sensitivity.schema.yaml"
#: Config sections in pipeline order: a knob's earliest section decides what a point reuses.
STAGES = ("synthetic", "linkage", "model", "privacy", "report")


def _resolve(path: str | Path) -> Path:
    """A repository-relative path works from any working directory."""
    path = Path(path)
    return path if path.is_absolute() or path.exists() else REPO_ROOT / path


def load_sensitivity(path: str | Path = DEFAULT_FILE) -> dict:
    """Read and validate a sweep file (defaults filled in).

    Raises
    ------
    InputError
        If the file is missing or breaks ``workflow/schemas/sensitivity.schema.yaml``.
    """
    from snakemake.utils import validate

    file = _resolve(path)
    if not file.exists():
        raise InputError(str(path), "(file)", "does not exist", f"create it (see {DEFAULT_FILE})")
    sensitivity = yaml.safe_load(file.read_text()) or {}
    try:
        validate(sensitivity, str(SCHEMA), set_default=True)
    except Exception as exc:
        cause = validation_error_of(exc)
        if cause is None:
            raise
        key = ".".join(str(p) for p in cause.absolute_path) or "(top level)"
        raise InputError(
            str(path), key, cause.message, f"follow {SCHEMA.relative_to(REPO_ROOT)}"
        ) from None
    return sensitivity


def replicate_seeds(sensitivity: dict) -> list[int]:
    """The replicate seeds: ``seeds`` if given, else ``1..replicates``."""
    if sensitivity.get("seeds"):
        return [int(s) for s in sensitivity["seeds"]]
    return list(range(1, int(sensitivity.get("replicates", 3)) + 1))


def value_text(value: Any) -> str:
    """A knob value as it appears in run names and tables (YAML booleans as ``true``/``false``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def sweep_table(sensitivity: dict, file: str = DEFAULT_FILE) -> pd.DataFrame:
    """One row per run: ``seed``, ``knob`` and ``value`` (as text), each seed's baseline first.

    Raises
    ------
    InputError
        On a reserved knob name, a file-name delimiter in a knob or value, a value listed twice
        or duplicate seeds.
    """
    seeds = replicate_seeds(sensitivity)
    if len(set(seeds)) != len(seeds):
        raise InputError(file, "seeds", "a seed is listed twice", "list each seed once")
    points = []
    for knob, spec in sensitivity["knobs"].items():
        if knob == BASELINE_KNOB:
            raise InputError(file, f"knobs.{knob}", "the name is reserved", "rename the knob")
        for value in spec["values"]:
            points.append({"knob": str(knob), "value": value_text(value)})
    rows = []
    for seed in seeds:
        rows.append({"seed": str(seed), "knob": BASELINE_KNOB, "value": BASELINE_VALUE})
        rows += [{"seed": str(seed), **point} for point in points]
    table = pd.DataFrame(rows, columns=["seed", "knob", "value"])
    bad = table["value"].str.contains(r"[/~\s-]", regex=True) | table["knob"].str.contains(
        r"[/~\s-]", regex=True
    )
    if bad.any():
        raise InputError(
            file,
            f"knobs.{table.loc[bad, 'knob'].iloc[0]}.values",
            f"knob or value {table.loc[bad, 'value'].iloc[0]!r} contains '/', '~', '-' or a space",
            "use plain numbers or names without those characters (they delimit file names)",
        )
    duplicated = table.duplicated()
    if duplicated.any():
        row = table.loc[duplicated].iloc[0]
        raise InputError(
            file, f"knobs.{row['knob']}.values", f"value {row['value']!r} twice", "list it once"
        )
    return table


def run_name(sensitivity: dict, seed: int | str, knob: str, value: str) -> str:
    """Run name (``results/{run}``) of one sweep row."""
    return f"{sensitivity.get('run_prefix', 'sens')}-s{seed}-{knob}-{value}"


def baseline_run(sensitivity: dict, seed: int | str) -> str:
    """Run name of the unchanged run of replicate ``seed`` (the run other points reuse)."""
    return run_name(sensitivity, seed, BASELINE_KNOB, BASELINE_VALUE)


def baseline_point(summary_dir: str, seed: int | str, knob: str) -> list[str]:
    """The ``run.json`` of replicate ``seed``'s baseline point (none for the baseline itself):
    a point's rule waits for it, since the point reuses the baseline run's outputs."""
    if knob == BASELINE_KNOB:
        return []
    return [f"{summary_dir}/seed~{seed}/knob~{BASELINE_KNOB}/value~{BASELINE_VALUE}/run.json"]


def _has_path(config: dict, dotted: str) -> bool:
    node: Any = config
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True


def _get_path(config: dict, dotted: str) -> Any:
    node: Any = config
    for key in dotted.split("."):
        node = node[key]
    return node


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
        path = _resolve(name)
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


def knob_stage(paths: list[str]) -> str:
    """The earliest pipeline section among dotted ``paths`` (``seed`` and the like: ``all``)."""
    sections = [p.split(".")[0] for p in paths]
    ranks = [STAGES.index(s) if s in STAGES else -1 for s in sections]
    return "all" if min(ranks) < 0 else STAGES[min(ranks)]


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


def knob_paths(sensitivity: dict, knob: str) -> list[str]:
    """The dotted paths a knob sets (none for the baseline row)."""
    if knob == BASELINE_KNOB:
        return []
    return list(sensitivity["knobs"][knob]["paths"])


def knob_labels(sensitivity: dict) -> dict[str, str]:
    """Knob name -> its description (the knob name when there is none)."""
    return {
        knob: str(spec.get("description") or knob) for knob, spec in sensitivity["knobs"].items()
    }
