"""Logging for stage scripts: to the rule's log file (Snakemake) or stderr (``__main__``)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path


def setup_logging(log_path: str | Path | None = None, level: int = logging.INFO) -> logging.Logger:
    """Send the root logger to ``log_path`` (created) or to stderr; return the root logger."""
    handlers: list[logging.Handler]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers = [logging.FileHandler(log_path, mode="w", encoding="utf-8")]
    else:
        handlers = [logging.StreamHandler(sys.stderr)]
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )
    logging.captureWarnings(True)
    return logging.getLogger()


def _report_input_errors(exc_type, exc, tb) -> None:
    """``sys.excepthook`` of stage scripts: a user's mistake is a message, not a traceback."""
    from pipeline_common.errors import InputError

    if isinstance(exc, InputError):
        logging.getLogger("input").error("input error: %s", exc)
        sys.stderr.write(f"input error: {exc}\n")
        return
    sys.__excepthook__(exc_type, exc, tb)


def snakemake_log(snakemake) -> logging.Logger:
    """Set up logging from a Snakemake script's ``snakemake`` object (first log file).

    An :class:`~pipeline_common.errors.InputError` that ends the script is written to the log
    and to stderr as one line (file, field, problem, fix) instead of a traceback; the script
    still exits with status 1, so the rule fails.
    """
    log = snakemake.log[0] if len(snakemake.log) else None
    sys.excepthook = _report_input_errors
    return setup_logging(log)
