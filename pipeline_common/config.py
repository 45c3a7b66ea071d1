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


def validate_config(config: dict, source: str = "config") -> dict:
    """Validate ``config`` against the schema in place, filling defaults; return it.

    Raises
    ------
    InputError
        Naming the offending key path and the rule it broke.
    """
    from snakemake.utils import validate

    # Same order as the Snakefile: the root, then each stage's section against its own schema.
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
        key = prefix + ".".join(str(p) for p in cause.absolute_path) or "(top level)"
        raise InputError(
            source,
            key.rstrip(".") or "(top level)",
            cause.message,
            f"set '{key.rstrip('.')}' to a value allowed by {schema_file.relative_to(REPO_ROOT)}",
        ) from None
    return config


def validation_error_of(exc: BaseException) -> jsonschema.ValidationError | None:
    """The jsonschema error inside what ``snakemake.utils.validate`` raised (it wraps it)."""
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, jsonschema.ValidationError):
        cause = cause.__cause__ or cause.__context__
    return cause


def load_config(*paths: str | Path, overrides: dict | None = None) -> dict:
    """Load ``config/config.yaml``, merge scenario files and ``overrides``, validate.

    Parameters
    ----------
    paths
        Scenario YAML files merged over the default config, in order.
    overrides
        A dict merged last (handy in tests).
    """
    config: dict[str, Any] = yaml.safe_load(DEFAULT_CONFIG.read_text()) or {}
    sources = [str(DEFAULT_CONFIG)]
    for path in paths:
        config = deep_merge(config, yaml.safe_load(Path(path).read_text()) or {})
        sources.append(str(path))
    if overrides:
        config = deep_merge(config, overrides)
        sources.append("overrides")
    return validate_config(config, source=" + ".join(sources))


def config_hash(config: dict) -> str:
    """SHA-256 of the canonical JSON of ``config`` (keys sorted), as a hex string."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def run_dir(config: dict) -> Path:
    """``results/{run}`` for this config, relative to the working directory."""
    return Path("results") / config["run"]
