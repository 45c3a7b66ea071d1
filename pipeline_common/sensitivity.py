"""Sensitivity analyses: one-at-a-time sweeps of config knobs and leave-one-source-out runs.

``config/sensitivity.yaml`` names each knob's config path and the values to try. The sweep is a
table with one row per (knob, value), driven by ``snakemake.utils.Paramspace``; each row is a
full pipeline run on the base scenario with that one value changed. The summary gathers each
run's evaluation into one table: bias, error, interval coverage and width against each knob.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from pipeline_common.config import deep_merge, load_config
from pipeline_common.errors import InputError
from pipeline_common.io import read_json

BASELINE_KNOB = "baseline"


def sweep_table(sensitivity: dict) -> pd.DataFrame:
    """One row per run: ``knob`` and ``value`` (as text), the unchanged baseline first."""
    rows = [{"knob": BASELINE_KNOB, "value": "base"}]
    for knob, spec in sensitivity["knobs"].items():
        for value in spec["values"]:
            rows.append({"knob": knob, "value": str(value)})
    table = pd.DataFrame(rows, columns=["knob", "value"])
    bad = table["value"].str.contains(r"[/~\s]", regex=True) | table["knob"].str.contains(
        r"[/~\s-]", regex=True
    )
    if bad.any():
        raise InputError(
            "config/sensitivity.yaml",
            f"knobs.{table.loc[bad, 'knob'].iloc[0]}.values",
            f"knob or value {table.loc[bad, 'value'].iloc[0]!r} contains '/', '~', '-' or a space",
            "use plain numbers or names without those characters (they delimit file names)",
        )
    return table


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


def run_overrides(sensitivity: dict, knob: str, value: str) -> dict:
    """Config overrides (merged over the base scenario) for one sweep row."""
    base = yaml.safe_load(Path(sensitivity["base_scenario"]).read_text()) or {}
    overrides = copy.deepcopy(base)
    overrides["run"] = f"sens-{knob}-{value}"
    if knob != BASELINE_KNOB:
        spec = sensitivity["knobs"][knob]
        parsed = yaml.safe_load(value)
        for path in spec["paths"]:
            _set_path(overrides, path, _substitute(spec.get("set", parsed), value))
    # Validate the merged config now, so a bad knob fails before any run starts.
    load_config(overrides=overrides)
    return overrides


def summarize(runs: list[dict]) -> pd.DataFrame:
    """Gather each run's evaluation files into one tidy table.

    Parameters
    ----------
    runs
        Dicts with ``knob``, ``value``, ``estimates`` (path to evaluation/estimates.json) and
        ``published`` (path to evaluation/published.json).
    """
    rows = []
    for run in runs:
        estimates = read_json(run["estimates"])
        for method, by_quantity in estimates.get("methods", estimates).items():
            if not isinstance(by_quantity, dict):
                continue
            for quantity in ("citizens", "cvap"):
                metrics = by_quantity.get(quantity)
                if not isinstance(metrics, dict):
                    continue
                row = {"knob": run["knob"], "value": run["value"], "method": method,
                       "quantity": quantity}
                row.update({k: v for k, v in metrics.items() if isinstance(v, (int, float))})
                rows.append(row)
    return pd.DataFrame(rows)
