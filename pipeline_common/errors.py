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


def run_main(main, prog: str) -> None:
    """Run a command-line ``main()`` so that a user's mistake is one line, not a traceback.

    An :class:`InputError`, or a file that is missing, is a folder or cannot be opened, prints
    ``{prog}: error: ...`` to stderr and exits with status 2; anything else (a bug) keeps its
    traceback. ``main``'s integer return value is the exit status.
    """
    import sys

    try:
        status = main()
    except InputError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        sys.exit(2)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as error:
        where = error.filename or "(file)"
        print(
            f"{prog}: error: {where}: {error.strerror or error}. Fix: check the path "
            "(run the pipeline first for files under results/)",
            file=sys.stderr,
        )
        sys.exit(2)
    sys.exit(status if isinstance(status, int) else 0)
