"""The one command-line convention of every module's ``__main__`` (docs/DEVELOPING.md).

``python -m <package>.<module> [--configfile PATH [PATH ...]] [--name PATH ...]``:

- ``--configfile``: scenario YAML files merged, in order, over ``config/config.yaml`` (the
  spelling and the meaning of Snakemake's ``--configfile``; none: the default scenario). The
  module reads and writes the run's files where the workflow does (``results/{run}``).
- Every other input or output is a named option (``--run-dir``, ``--output``, ...), never a
  positional argument, so nothing written after ``--configfile`` is taken for a path it did not
  mean (the Snakemake pitfall of docs/DEVELOPING.md).
- A user's mistake is one line on stderr and exit status 2: run ``main`` through
  :func:`pipeline_common.errors.run_main`.
"""

from __future__ import annotations

import argparse


def stage_parser(module: str, description: str) -> argparse.ArgumentParser:
    """An argument parser for ``python -m {module}`` with the ``--configfile`` option.

    Parameters
    ----------
    module
        The dotted module name (the ``prog`` of the help text).
    description
        One line on what the command does.
    """
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=description)
    parser.add_argument(
        "--configfile",
        nargs="+",
        action="extend",
        default=[],
        metavar="PATH",
        help="scenario YAML files merged in order over config/config.yaml "
        "(default: none, the default scenario)",
    )
    return parser


def config_of(args: argparse.Namespace) -> dict:
    """The validated config of the parsed ``--configfile`` files."""
    from pipeline_common.config import load_config

    return load_config(*args.configfile)
