"""The sweep: one knob at a time, replicated, on common random numbers.

``config/sensitivity.yaml`` names each knob's config paths and the values to try. The sweep is
a table with one row per (replicate seed, knob, value), driven by
``snakemake.utils.Paramspace``; each row is a pipeline run on the base scenario with that seed
and that one value changed (run name ``{run_prefix}-s{seed}-{knob}-{value}``, outputs under
``results/{run}/``), plus one unchanged baseline run per seed that the other points of the
replicate reuse (:mod:`sensitivity.reuse`). All points of a replicate share the seed, and the
synthetic world draws every part from a stream of its own, so the population is the same at
every point of a replicate (common random numbers).

This module reads and checks the sweep file and builds the sweep table and the run names. The
config of one row is :mod:`sensitivity.point_config`; scoring :mod:`sensitivity.score`; the
summary :mod:`sensitivity.summary`; the report :mod:`sensitivity.report`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from pipeline_common.config import REPO_ROOT, validation_error_of
from pipeline_common.errors import InputError

BASELINE_KNOB = "baseline"
BASELINE_VALUE = "base"
DEFAULT_FILE = "config/sensitivity.yaml"
SCHEMA = REPO_ROOT / "workflow" / "schemas" / "sensitivity.schema.yaml"


def repo_path(path: str | Path) -> Path:
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

    file = repo_path(path)
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
