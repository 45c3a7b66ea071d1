"""Input resolution of the Snakemake ``report`` rule (kept out of the rule file, as lint asks)."""

from __future__ import annotations

from pathlib import Path


def producers(workflow, path: str) -> list:
    """Rules of ``workflow`` (other than report and sensitivity rules) that produce ``path``."""
    return [
        rule
        for rule in workflow.rules
        if not rule.name.startswith(("report", "sensitivity")) and rule.is_producer(path)
    ]


def report_inputs(workflow, wanted: dict[str, str], bench_prefix: str) -> dict[str, str]:
    """The report's inputs that some rule of ``workflow`` produces (or that already exist).

    An input without a producer (a stage still being written) is left out rather than breaking
    the DAG; the report then lists it under "Inputs not available". The benchmark files of the
    rules producing the inputs are inputs too (fixed paths under ``bench_prefix`` only; those
    with wildcards are found by globbing the benchmark folder at run time).
    """
    inputs = {}
    for name, path in wanted.items():
        makers = producers(workflow, path)
        if makers or Path(path).exists():
            inputs[name] = path
        for rule in makers:
            bench = str(rule.benchmark) if rule.benchmark else ""
            if bench.startswith(bench_prefix) and "{" not in bench:
                inputs[f"bench_{rule.name}"] = bench
    return inputs
