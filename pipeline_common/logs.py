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


def snakemake_log(snakemake) -> logging.Logger:
    """Set up logging from a Snakemake script's ``snakemake`` object (first log file)."""
    log = snakemake.log[0] if len(snakemake.log) else None
    return setup_logging(log)
