"""Errors that tell the user what to fix instead of a traceback from deep inside a library."""

from __future__ import annotations


class InputError(ValueError):
    """Bad input: names the file, the field and the fix.

    Parameters
    ----------
    file
        The file (or config) that holds the bad value.
    field
        The column, key or field at fault.
    problem
        What is wrong with it.
    fix
        What the user should do.
    """

    def __init__(self, file: str, field: str, problem: str, fix: str) -> None:
        self.file, self.field, self.problem, self.fix = str(file), field, problem, fix
        super().__init__(f"{file}: field '{field}': {problem}. Fix: {fix}")


def require_columns(frame, columns, file: str) -> None:
    """Raise :class:`InputError` if ``frame`` lacks any of ``columns``."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(
            file,
            ", ".join(missing),
            f"required column(s) missing (found: {', '.join(map(str, frame.columns))})",
            "regenerate the file with the upstream stage of this pipeline",
        )
