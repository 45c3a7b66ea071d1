"""Sensitivity analyses: one-at-a-time sweeps of config knobs and leave-one-source-out runs.

``config/sensitivity.yaml`` names each knob's config path and the values to try. The sweep is a
table with one row per (knob, value), driven by ``snakemake.utils.Paramspace``; each row is a
full pipeline run on the base scenario with that one value changed (run name
``{run_prefix}-{knob}-{value}``, outputs under ``results/{run}/``), plus one unchanged baseline
run. The summary gathers each run's evaluation (``evaluation/estimates.json`` for the model and
both baselines, ``evaluation/published.json`` for the published, noise-added estimates) into one
tidy table: bias, error, interval coverage and width against each knob; a figure and a small
self-contained HTML page show it.
"""

from __future__ import annotations

import base64
import copy
import functools
import html
import io
import math
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from pipeline_common.config import REPO_ROOT, load_config, validation_error_of
from pipeline_common.errors import InputError
from pipeline_common.io import read_json

BASELINE_KNOB = "baseline"
BASELINE_VALUE = "base"
DEFAULT_FILE = "config/sensitivity.yaml"
SCHEMA = REPO_ROOT / "workflow" / "schemas" / "sensitivity.schema.yaml"

#: Methods of ``evaluation/estimates.json``, then the published (noise-added) model estimates.
METHODS = ("model", "record_rule", "census_style", "published")
QUANTITIES = ("citizens", "cvap", "noncitizens")
#: Metric columns of the summary (names as in ``evaluation/estimates.json``).
METRICS = (
    "block_bias",
    "block_mae",
    "block_rmse",
    "coverage90_pit",
    "coverage90_inclusive",
    "mean_width90",
    "county_max_abs_rel_error",
    "tract_mean_abs_rel_error",
    "n_blocks",
)
#: ``evaluation/published.json`` key -> summary column.
_PUBLISHED_BLOCK_KEYS = {
    "bias": "block_bias",
    "mae": "block_mae",
    "rmse": "block_rmse",
    # The published intervals are plain lo90/hi90 bounds: an inclusive check, not a PIT.
    "coverage90": "coverage90_inclusive",
    "mean_width90": "mean_width90",
}
METHOD_COLOURS = {
    "model": "#1f77b4",
    "record_rule": "#d62728",
    "census_style": "#2ca02c",
    "published": "#9467bd",
}


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


def sweep_table(sensitivity: dict, file: str = DEFAULT_FILE) -> pd.DataFrame:
    """One row per run: ``knob`` and ``value`` (as text), the unchanged baseline first."""
    rows = [{"knob": BASELINE_KNOB, "value": BASELINE_VALUE}]
    for knob, spec in sensitivity["knobs"].items():
        if knob == BASELINE_KNOB:
            raise InputError(file, f"knobs.{knob}", "the name is reserved", "rename the knob")
        for value in spec["values"]:
            rows.append({"knob": str(knob), "value": str(value)})
    table = pd.DataFrame(rows, columns=["knob", "value"])
    bad = table["value"].str.contains(r"[/~\s]", regex=True) | table["knob"].str.contains(
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


def run_name(sensitivity: dict, knob: str, value: str) -> str:
    """Run name (``results/{run}``) of one sweep row."""
    return f"{sensitivity.get('run_prefix', 'sens')}-{knob}-{value}"


def _has_path(config: dict, dotted: str) -> bool:
    node: Any = config
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
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


@functools.lru_cache(maxsize=8)
def _resolved_base(base_file: str, mtime_ns: int) -> dict:
    """The validated config of a base scenario (cached: validation takes about a second)."""
    del mtime_ns  # part of the cache key only: an edited file is read again
    return load_config(base_file)


def run_overrides(sensitivity: dict, knob: str, value: str, file: str = DEFAULT_FILE) -> dict:
    """Config overrides (merged over ``config/config.yaml``) for one sweep row.

    The base scenario with ``run`` set to :func:`run_name` and, unless this is the baseline
    row, every path of the knob set to the value (parsed as YAML, so ``0.25`` is a number) or
    to the knob's ``set`` template with ``{value}`` substituted.

    Raises
    ------
    InputError
        Naming ``knobs.{knob}.paths`` if a path is not a key of the resolved config, or
        ``knobs.{knob}.values`` if the value makes the config invalid.
    """
    base_file = _resolve(sensitivity.get("base_scenario", "config/scenarios/small.yaml"))
    if not base_file.exists():
        raise InputError(file, "base_scenario", f"{base_file} does not exist", "name a scenario")
    base = yaml.safe_load(base_file.read_text()) or {}
    overrides = copy.deepcopy(base)
    overrides["run"] = run_name(sensitivity, knob, value)
    if knob != BASELINE_KNOB:
        if knob not in sensitivity["knobs"]:
            raise InputError(file, "knobs", f"no knob {knob!r}", "use a knob of the sweep file")
        spec = sensitivity["knobs"][knob]
        # Every path must already be a key of the resolved config (defaults filled in): a
        # typo would otherwise add a new key that nothing reads and the run would be a no-op.
        resolved = _resolved_base(str(base_file), base_file.stat().st_mtime_ns)
        for path in spec["paths"]:
            if not _has_path(resolved, path):
                raise InputError(
                    file,
                    f"knobs.{knob}.paths",
                    f"{path!r} is not a key of the config",
                    "use a dotted path of config/config.yaml (see workflow/schemas/*.yaml)",
                )
        parsed = yaml.safe_load(value)
        for path in spec["paths"]:
            _set_path(overrides, path, _substitute(spec.get("set", parsed), value))
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


def _numbers(mapping: dict, keys: dict[str, str] | None = None) -> dict[str, float]:
    """Numeric entries of ``mapping`` (renamed by ``keys`` when given)."""
    out = {}
    for key, value in mapping.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if keys is None:
            out[key] = float(value)
        elif key in keys:
            out[keys[key]] = float(value)
    return out


def _read(path: str | Path, what: str) -> dict:
    if not Path(path).exists():
        raise InputError(str(path), "(file)", f"{what} is missing", "rerun the sensitivity run")
    doc = read_json(path)
    if not isinstance(doc, dict):
        raise InputError(str(path), "(top level)", "is not a JSON object", "rerun the run")
    return doc


def summarize(runs: list[dict]) -> pd.DataFrame:
    """Gather each run's evaluation files into one tidy table.

    Parameters
    ----------
    runs
        Dicts with ``knob``, ``value``, ``estimates`` (path to ``evaluation/estimates.json``)
        and optionally ``published`` (path to ``evaluation/published.json``).

    Returns
    -------
    pandas.DataFrame
        One row per (knob, value, method, quantity), in the order of ``runs``, methods
        ``model, record_rule, census_style`` (from estimates.json) and ``published`` (the
        noise-added published estimates), quantities ``citizens, cvap, noncitizens``; columns
        :data:`METRICS` (missing metrics are NaN; the published intervals have an inclusive
        coverage only) and ``block_mae_vs_baseline`` (block MAE minus the baseline run's for
        the same method and quantity).
    """
    rows = []
    for run in runs:
        key = {"knob": str(run["knob"]), "value": str(run["value"])}
        estimates = _read(run["estimates"], "evaluation/estimates.json")
        methods = estimates.get("methods")
        if not isinstance(methods, dict):
            raise InputError(
                str(run["estimates"]), "methods", "missing", "rerun the model evaluation"
            )
        for method in [m for m in METHODS if m in methods] + sorted(set(methods) - set(METHODS)):
            for quantity in QUANTITIES:
                metrics = methods[method].get(quantity)
                if isinstance(metrics, dict):
                    rows.append(
                        {**key, "method": method, "quantity": quantity, **_numbers(metrics)}
                    )
        if run.get("published") is None:
            continue
        published = _read(run["published"], "evaluation/published.json")
        for quantity in QUANTITIES:
            block = published.get("block", {}).get(quantity)
            if not isinstance(block, dict):
                continue
            row = {**key, "method": "published", "quantity": quantity}
            row.update(_numbers(block, _PUBLISHED_BLOCK_KEYS))
            county = published.get("county", {}).get(quantity, {})
            tract = published.get("tract", {}).get(quantity, {})
            row.update(_numbers(county, {"max_abs_relative_error": "county_max_abs_rel_error"}))
            row.update(_numbers(tract, {"mean_abs_relative_error": "tract_mean_abs_rel_error"}))
            if isinstance(published.get("blocks"), int):
                row["n_blocks"] = float(published["blocks"])
            rows.append(row)
    columns = ["knob", "value", "method", "quantity", *METRICS]
    table = pd.DataFrame(rows)
    extra = [c for c in table.columns if c not in columns]
    table = table.reindex(columns=columns + sorted(extra))
    base = table.loc[table["knob"] == BASELINE_KNOB].drop_duplicates(["method", "quantity"])
    base_mae = base.set_index(["method", "quantity"])["block_mae"]
    index = pd.MultiIndex.from_frame(table[["method", "quantity"]])
    table["block_mae_vs_baseline"] = table["block_mae"].to_numpy() - base_mae.reindex(
        index
    ).to_numpy(dtype=float)
    return table.reset_index(drop=True)


def _value_order(values: list[str]) -> list[str]:
    """Numbers ascending, otherwise the order of the sweep file."""
    try:
        return sorted(values, key=float)
    except ValueError:
        return values


def summary_figure_png(summary: pd.DataFrame, quantity: str = "citizens", dpi: int = 120) -> bytes:
    """One panel per knob: block MAE of every method (top) and the model's 90% coverage (bottom).

    x is the knob's value; dashed horizontal lines are the baseline run (same colour per
    method); the grey dotted line of the coverage row is the nominal 90%.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    part = summary.loc[summary["quantity"] == quantity]
    knobs = [k for k in dict.fromkeys(part["knob"]) if k != BASELINE_KNOB]
    base = part.loc[part["knob"] == BASELINE_KNOB]
    methods = [m for m in ("model", "record_rule", "census_style") if m in set(part["method"])]
    cols = max(1, min(len(knobs), 3))
    blocks = max(1, math.ceil(len(knobs) / cols))
    fig, axes = plt.subplots(
        2 * blocks,
        cols,
        figsize=(4.2 * cols, 5.4 * blocks),
        squeeze=False,
        gridspec_kw={"height_ratios": [3, 2] * blocks},
    )
    for k in range(blocks * cols):
        block, j = divmod(k, cols)
        ax_mae, ax_cov = axes[2 * block, j], axes[2 * block + 1, j]
        if k >= len(knobs):
            ax_mae.set_visible(False)
            ax_cov.set_visible(False)
            continue
        knob = knobs[k]
        rows = part.loc[part["knob"] == knob]
        values = _value_order(list(dict.fromkeys(rows["value"])))
        x = range(len(values))
        for method in methods:
            colour = METHOD_COLOURS.get(method, "black")
            by_value = rows.loc[rows["method"] == method].set_index("value")["block_mae"]
            ax_mae.plot(x, by_value.reindex(values).to_numpy(), "o-", color=colour, label=method)
            ref = base.loc[base["method"] == method, "block_mae"]
            if len(ref):
                ax_mae.axhline(float(ref.iloc[0]), color=colour, ls="--", lw=1, alpha=0.7)
        cov = rows.loc[rows["method"] == "model"].set_index("value")["coverage90_pit"]
        ax_cov.plot(x, cov.reindex(values).to_numpy(), "s-", color=METHOD_COLOURS["model"])
        ref = base.loc[base["method"] == "model", "coverage90_pit"]
        if len(ref):
            ax_cov.axhline(float(ref.iloc[0]), color=METHOD_COLOURS["model"], ls="--", lw=1)
        ax_cov.axhline(0.9, color="grey", ls=":", lw=1)
        ax_cov.set_ylim(0, 1.02)
        ax_mae.set_ylim(bottom=0)
        ax_mae.set_title(knob.replace("_", " "), fontsize=10)
        for ax in (ax_mae, ax_cov):
            ax.set_xticks(list(x))
            ax.set_xticklabels([v.replace("_", "\n") for v in values], fontsize=8)
            ax.grid(alpha=0.3)
            ax.set_xlim(-0.5, len(values) - 0.5)
        if j == 0:
            ax_mae.set_ylabel(f"block MAE, {quantity}\n(persons)")
            ax_cov.set_ylabel("model 90% coverage\n(randomized PIT)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if handles:
        handles.append(plt.Line2D([], [], color="black", ls="--", lw=1))
        labels.append("baseline run")
        handles.append(plt.Line2D([], [], color="grey", ls=":", lw=1))
        labels.append("nominal 90%")
        fig.legend(handles, labels, loc="upper center", ncol=len(labels), fontsize=9)
    if not knobs:
        axes[0, 0].set_visible(True)
        axes[0, 0].text(0.5, 0.5, "no knobs in the sweep", ha="center", va="center")
    fig.tight_layout(rect=(0, 0, 1, 0.95 if blocks == 1 else 0.97))
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def summary_html(summary: pd.DataFrame, figure_png: bytes, title: str = "Sensitivity") -> str:
    """A self-contained page: the figure (embedded PNG) and the summary table."""
    shown = summary.copy()
    for column in ("coverage90_pit", "coverage90_inclusive"):
        if column in shown:
            shown[column] = shown[column].map(lambda v: "" if pd.isna(v) else f"{v:.1%}")
    table = shown.to_html(
        index=False, float_format=lambda v: f"{v:.4g}", na_rep="", classes="summary", border=0
    )
    image = base64.b64encode(figure_png).decode("ascii")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; color: #222; }}
table.summary {{ border-collapse: collapse; font-size: 12px; }}
table.summary th, table.summary td {{ padding: 2px 8px; border-bottom: 1px solid #ddd; }}
table.summary td {{ text-align: right; }}
img {{ max-width: 100%; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>Each knob is changed one at a time on the base scenario; the <code>baseline</code> run
changes nothing. Methods: <code>model</code> (the latent-class model), the baselines
<code>record_rule</code> and <code>census_style</code>, and <code>published</code> (the model's
estimates after the privacy noise, as released). Block metrics compare each method's block
estimates with the synthetic truth:
bias and MAE in persons, 90% coverage by randomized PIT (the published, noise-added intervals
have an inclusive coverage only), mean width of the 90% interval, and the largest county
relative error. <code>block_mae_vs_baseline</code> is the change of block MAE against the
baseline run (negative is better).</p>
<img alt="Block MAE and 90% coverage against each knob" src="data:image/png;base64,{image}">
<h2>Summary table</h2>
{table}
</body></html>
"""
