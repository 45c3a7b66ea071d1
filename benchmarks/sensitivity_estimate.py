"""Estimate a sensitivity sweep's wall time from per-rule benchmark files of earlier runs.

Usage::

    .venv/bin/python benchmarks/sensitivity_estimate.py --sweep config/sensitivity.yaml \\
        --runs benchmarks/calib_small_s1 ... benchmarks/calib_small_s8 \\
        --baselines-from benchmarks/default --baselines-scale 0.2

An estimate, not a measurement: each point's cost is the sum of the median Snakemake benchmark
times (``s``) of the rules its knob reruns (``sensitivity.reuse``), over the
runs given, plus a per-point overhead (nested Snakemake start and scoring). Rules run one after
another in this sum; inside a nested run two cores let some run side by side, so the real wall
time can be lower, while a busier machine makes it higher. Baseline rules missing from
``--runs`` are taken from ``--baselines-from`` times ``--baselines-scale`` (e.g. the default
run's, scaled by the small scenario's persons: 0.007 / 0.035 = 0.2).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from pipeline_common.sources import SOURCES  # noqa: E402
from sensitivity.point_config import resolved_run_config  # noqa: E402
from sensitivity.reuse import knob_stage  # noqa: E402
from sensitivity.sweep import (  # noqa: E402
    BASELINE_KNOB,
    load_sensitivity,
    replicate_seeds,
    sweep_table,
)

MODEL_RULES = ("model/tabulate", "model/exact_tables", "model/fit_model", "model/predict_blocks")
PRIVACY_RULES = ("privacy/measure", "privacy/fit", "privacy/predict", "privacy/publish")
BASELINE_RULES = tuple(f"model/baseline_{m}" for m in ("record_rule", "census_style"))
ACS_RULE = "model/baseline_acs_direct"


def rule_seconds(bench_dirs: list[Path]) -> dict[str, float]:
    """Median ``s`` per rule (benchmark path without ``.tsv``) over the runs."""
    times: dict[str, list[float]] = {}
    for folder in bench_dirs:
        for table in folder.rglob("*.tsv"):
            rule = str(table.relative_to(folder).with_suffix(""))
            times.setdefault(rule, []).append(float(pd.read_csv(table, sep="\t")["s"].sum()))
    return {rule: statistics.median(values) for rule, values in times.items()}


def point_rules(stage: str, changed_sources: set[str], config: dict) -> list[str]:
    """The rules a point reruns, by its knob's stage (see sensitivity.reuse)."""
    if stage == "identical":
        return []
    privacy = list(PRIVACY_RULES) if config["privacy"]["mode"] != "none" else ["privacy/publish"]
    if stage in ("privacy", "report"):
        return privacy
    model = [*MODEL_RULES, *privacy, *BASELINE_RULES]
    if stage == "model":
        return model
    linkage_all = [
        "linkage/standardize_frame",
        *(f"linkage/link_{s}" for s in SOURCES),
        "linkage/combine",
    ]
    if stage == "linkage":
        return [*linkage_all, *model, ACS_RULE]
    # synthetic: the world, the changed sources' linkage (PIK sources follow the Numident).
    linkage = config["linkage"]
    pik = set(linkage["pik_sources"]) if linkage["pik_from_ssa"] else set()
    relink = set(changed_sources)
    if "ssa_numident" in relink:
        relink |= pik
    rules = ["synthetic_world", *(f"linkage/link_{s}" for s in sorted(relink)), "linkage/combine"]
    if "acs" in changed_sources:
        rules.append(ACS_RULE)
    return [*rules, *model]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", default="config/sensitivity.yaml")
    parser.add_argument("--runs", nargs="+", type=Path, required=True, help="benchmarks/{run}")
    parser.add_argument("--baselines-from", type=Path, default=None)
    parser.add_argument("--baselines-scale", type=float, default=1.0)
    parser.add_argument(
        "--overhead", type=float, default=30.0, help="seconds per point (start, scoring)"
    )
    args = parser.parse_args(argv)
    sensitivity = load_sensitivity(args.sweep)
    seconds = rule_seconds(args.runs)
    if args.baselines_from is not None:
        extra = rule_seconds([args.baselines_from])
        for rule in (*BASELINE_RULES, ACS_RULE):
            if rule not in seconds and rule in extra:
                seconds[rule] = extra[rule] * args.baselines_scale
    missing = set()
    base_config = resolved_run_config(sensitivity, 1, BASELINE_KNOB, "base", args.sweep)
    all_rules = [
        "synthetic_world",
        "linkage/standardize_frame",
        *(f"linkage/link_{s}" for s in SOURCES),
        "linkage/combine",
        *MODEL_RULES,
        *PRIVACY_RULES,
        *BASELINE_RULES,
        ACS_RULE,
    ]
    rows = []
    table = sweep_table(sensitivity, args.sweep)
    first = table[table["seed"] == str(replicate_seeds(sensitivity)[0])]
    for _, knob, value in first.itertuples(index=False):
        if knob == BASELINE_KNOB:
            rules = all_rules
            stage = "baseline run"
        else:
            config = resolved_run_config(sensitivity, 1, knob, value, args.sweep)
            paths = sensitivity["knobs"][knob]["paths"]
            same = {k: v for k, v in config.items() if k != "run"} == {
                k: v for k, v in base_config.items() if k != "run"
            }
            stage = "identical" if same else knob_stage(paths)
            changed = {p.split(".")[2] for p in paths if p.startswith("synthetic.sources.")}
            rules = point_rules(stage, changed, config)
        missing |= {r for r in rules if r not in seconds}
        cost = sum(seconds.get(r, 0.0) for r in rules) + args.overhead
        rows.append({"knob": knob, "value": value, "stage": stage, "seconds": cost})
    points = pd.DataFrame(rows)
    per_replicate = points["seconds"].sum()
    replicates = len(replicate_seeds(sensitivity))
    print(points.to_string(index=False, float_format=lambda v: f"{v:.0f}"))
    print(
        f"\nESTIMATE (sum of median rule times, not measured): {per_replicate / 60:.0f} min per "
        f"replicate, {per_replicate * replicates / 3600:.1f} h for {replicates} replicates"
    )
    if missing:
        print(f"rules without a benchmark (counted as 0 s): {sorted(missing)}")


if __name__ == "__main__":
    main()
