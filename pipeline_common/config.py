"""Load and validate the pipeline config outside Snakemake (tests, ``__main__`` entry points).

Snakemake validates with the same JSON schema in the Snakefile, so both paths give the same
defaults and the same errors.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from pipeline_common.errors import InputError

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = REPO_ROOT / "config" / "config.yaml"
SCHEMA = REPO_ROOT / "workflow" / "schemas" / "config.schema.yaml"
STAGES = ("synthetic", "linkage", "model", "privacy", "report")


def deep_merge(base: dict, override: dict) -> dict:
    """Return ``base`` updated recursively by ``override`` (as Snakemake merges configfiles)."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def validate_config(
    config: dict,
    source: str = "config",
    files: list[str | Path] | None = None,
    check_paths: bool = False,
) -> dict:
    """Validate ``config`` against the schema in place, filling defaults; then check its meaning.

    Parameters
    ----------
    config
        The merged config.
    source
        What to name as the config file when ``files`` is not given.
    files
        The config files merged into ``config``, in order: errors name the one that set the key.
    check_paths
        Also check paths relative to the working directory (the Snakefile, run in the repo).

    Raises
    ------
    InputError
        Naming the config file, the full dotted key (``synthetic.status.lpr``), what is wrong
        and the fix, without the schema (see :mod:`pipeline_common.config_checks` for the
        cross-field rules).
    """
    from snakemake.utils import validate

    from pipeline_common.config_checks import ConfigOrigin, check_config_meaning

    origin = ConfigOrigin(files) if files else (lambda key: source)
    # Same order as Snakemake would: the root, then each stage's section against its own schema.
    checks = [(config, SCHEMA, "")]
    try:
        validate(config, str(SCHEMA), set_default=True)
        for stage in STAGES:
            checks.append((config[stage], SCHEMA.parent / f"{stage}.schema.yaml", f"{stage}."))
            validate(config[stage], str(checks[-1][1]), set_default=True)
    except Exception as exc:
        cause = validation_error_of(exc)
        if cause is None:
            raise
        _, schema_file, prefix = checks[-1]
        path = [str(p) for p in cause.absolute_path]
        extra = unexpected_keys(cause)
        fix = f"set '%s' to a value allowed by {schema_file.relative_to(REPO_ROOT)}"
        if extra:
            # Name the unexpected key itself, so the file that set it can be found.
            path.append(extra[0])
            fix = (
                "remove or correct '%s' (the keys allowed are listed in "
                + str(schema_file.relative_to(REPO_ROOT))
                + ")"
            )
        key = (prefix + ".".join(path)).rstrip(".") or "(top level)"
        raise InputError(origin(key), key, short_message(cause), fix % key) from None
    check_config_meaning(config, origin, check_paths)
    return config


def short_message(error: jsonschema.ValidationError, limit: int = 200) -> str:
    """The validator's message without the instance dump that long values produce."""
    if error.validator == "additionalProperties":
        extra = unexpected_keys(error)
        if extra:
            from pipeline_common.config_checks import suggestion

            allowed = list(error.schema.get("properties", {}))
            hints = "".join(suggestion(str(name), allowed) for name in extra[:1])
            return f"unknown key(s) {extra}{hints}"
    message = error.message
    return message if len(message) <= limit else message[: limit - 3] + "..."


def unexpected_keys(error: jsonschema.ValidationError) -> list[str]:
    """Keys an ``additionalProperties: false`` error refused (empty for other errors)."""
    if error.validator != "additionalProperties" or not isinstance(error.instance, dict):
        return []
    allowed = set(error.schema.get("properties", {}))
    patterns = list(error.schema.get("patternProperties", {}))
    import re

    return sorted(
        str(k)
        for k in error.instance
        if k not in allowed and not any(re.search(p, str(k)) for p in patterns)
    )


def validation_error_of(exc: BaseException) -> jsonschema.ValidationError | None:
    """The jsonschema error inside what ``snakemake.utils.validate`` raised (it wraps it)."""
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, jsonschema.ValidationError):
        cause = cause.__cause__ or cause.__context__
    return cause


def read_config_file(path: str | Path) -> dict:
    """One YAML config file as a dict.

    Raises
    ------
    InputError
        If the file is missing, unreadable, not YAML or not a mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(
            path,
            "(file)",
            "config file not found" if not path.exists() else "not a file",
            "give the path of a YAML config file, e.g. config/scenarios/tiny.yaml",
        )
    try:
        content = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise InputError(path, "(file)", "not UTF-8 text", "save the file as UTF-8") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise InputError(
            path, "(file)", f"not valid YAML{line}", "fix the YAML syntax (indentation, colons)"
        ) from None
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise InputError(
            path,
            "(top level)",
            f"a config file must be a mapping of keys, got {type(content).__name__}",
            "write 'key: value' lines (see config/config.yaml)",
        )
    return content


def load_config(*paths: str | Path, overrides: dict | None = None) -> dict:
    """Load ``config/config.yaml``, merge scenario files and ``overrides``, validate.

    Parameters
    ----------
    paths
        Scenario YAML files merged over the default config, in order.
    overrides
        A dict merged last (handy in tests).
    """
    config: dict[str, Any] = read_config_file(DEFAULT_CONFIG)
    files: list[str | Path] = [DEFAULT_CONFIG]
    for path in paths:
        config = deep_merge(config, read_config_file(path))
        files.append(path)
    if overrides:
        config = deep_merge(config, overrides)
        files.append(_OverridesFile(overrides))
    return validate_config(config, files=files)


class _OverridesFile(str):
    """Stands for the ``overrides`` dict of :func:`load_config` among the config files."""

    def __new__(cls, overrides: dict) -> _OverridesFile:
        text = super().__new__(cls, "overrides")
        text.content = overrides
        return text


def config_hash(config: dict) -> str:
    """SHA-256 of the canonical JSON of ``config`` (keys sorted), as a hex string."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def run_dir(config: dict) -> Path:
    """``results/{run}`` for this config, relative to the working directory."""
    return Path("results") / config["run"]
