"""What the JSON schema cannot say: cross-field rules of the config, checked before any job.

The schema checks each key on its own (type, range, allowed values). The rules here relate keys
to each other or to the world outside the config: shares that must not add up to more than one,
a minimum that must not exceed its maximum, age groups that must contain the voting age, privacy
budget shares, the withholding lists, keys inside free-form maps (``model.prior_scales``,
``model.stale_split``), a run name that must stay inside ``results/``, dates that must exist,
and a linkage backend this machine can run (Spark needs pyspark and Java).

Every violation is an :class:`~pipeline_common.errors.InputError` naming the config file that
set the key (the last one that set it, or the default config), the full dotted key, the problem
and the fix. All violations are collected first and reported together, so one run shows them all.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import yaml

from pipeline_common.errors import InputError
from pipeline_common.sources import SOURCES

VOTING_AGE = 18
STATUS_SHARES = ("naturalized", "lpr", "temporary", "unauthorized")
ALWAYS_WITHHELD = "protected_1367"
# Keys the latent-class core reads from model.prior_scales ({level}_sd for each level).
PRIOR_SCALE_KEYS = (
    "intercept_mu",
    "intercept_sd",
    "age_sd",
    "level_sd",
    "county_sd",
    "tract_sd",
    "block_sd",
    "min_random_units",
    "source_age_sd",
)
# (minimum key, maximum key): dotted keys whose values must satisfy minimum <= maximum.
MIN_MAX_PAIRS = (
    ("synthetic.geography.block_size_min", "synthetic.geography.block_size_max"),
    (
        "privacy.reliability.high_max_relative_width",
        "privacy.reliability.medium_max_relative_width",
    ),
    ("report.small_block", "report.large_block"),
)
DATE_KEYS = (
    "reference_date",
    "synthetic.uscis_window_start",
    "synthetic.cbp_ice_window_start",
)
EARLIEST_DATE = dt.date(1900, 1, 1)
LATEST_DATE = dt.date(2100, 12, 31)
# Float round-off slack for shares that add up to exactly 1.
SLACK = 1e-9


class ConfigOrigin:
    """Which config file set a dotted key (the last of the files that set it).

    Parameters
    ----------
    files
        The config files in the order they were merged (default config first); an entry
        with a ``content`` dict attribute stands for in-memory overrides.
    """

    def __init__(self, files: Iterable[str | Path]) -> None:
        self.files = [str(f) for f in files]
        self._loaded: list[dict] = []
        for file in files:
            preloaded = getattr(file, "content", None)  # an in-memory overrides dict
            if isinstance(preloaded, dict):
                self._loaded.append(preloaded)
                continue
            try:
                self._loaded.append(yaml.safe_load(Path(file).read_text(encoding="utf-8")) or {})
            except (OSError, yaml.YAMLError, UnicodeDecodeError):
                self._loaded.append({})

    def __call__(self, key: str) -> str:
        """The file that set ``key`` last (else the first file, whose defaults fill it)."""
        parts = key.split(".")
        found = None
        for file, content in zip(self.files, self._loaded, strict=True):
            node: Any = content
            for part in parts:
                if isinstance(node, dict) and part in node:
                    node = node[part]
                elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                    node = node[int(part)]
                else:
                    break
            else:
                found = file
        if found is not None:
            return found
        return self.files[0] if self.files else "config"


def _get(config: dict, key: str) -> Any:
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def suggestion(name: str, allowed: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for a misspelt ``name``, or an empty string."""
    close = difflib.get_close_matches(name, list(allowed), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _check_run(config: dict, problems: list[tuple[str, str, str]]) -> None:
    run = config.get("run")
    if not isinstance(run, str):
        return
    fix = "use a plain folder name such as 'tiny' or 'my_run' (letters, digits, '_', '-', '.')"
    posix, windows = PurePosixPath(run), PureWindowsPath(run)
    if (
        run.strip(".") == ""
        or run.startswith(".")
        or posix.is_absolute()
        or windows.is_absolute()
        or len(posix.parts) != 1
        or len(windows.parts) != 1
    ):
        problems.append(
            ("run", f"{run!r} would write outside results/ (outputs go to results/{{run}}/)", fix)
        )
        return
    results = Path("results").resolve()
    target = (results / run).resolve()
    if target.parent != results:
        problems.append(("run", f"{run!r} resolves outside results/ ({target})", fix))


def _check_dates(config: dict, problems: list[tuple[str, str, str]]) -> dict[str, dt.date]:
    dates = {}
    for key in DATE_KEYS:
        value = _get(config, key)
        if value is None:
            continue
        try:
            date = dt.date.fromisoformat(str(value))
        except ValueError:
            problems.append(
                (key, f"{value!r} is not a calendar date", "give an existing date as YYYY-MM-DD")
            )
            continue
        if not EARLIEST_DATE <= date <= LATEST_DATE:
            problems.append(
                (
                    key,
                    f"{value} is outside {EARLIEST_DATE} .. {LATEST_DATE}",
                    "give a date in that range (the default reference date is 2020-04-01)",
                )
            )
            continue
        dates[key] = date
    reference = dates.get("reference_date")
    for key in DATE_KEYS[1:]:
        if reference is not None and key in dates and dates[key] > reference:
            problems.append(
                (
                    key,
                    f"{dates[key]} is after reference_date {reference}: the source would hold "
                    "no record",
                    "set it before reference_date",
                )
            )
    return dates


def _check_age_groups(config: dict, problems: list[tuple[str, str, str]]) -> None:
    bounds = config.get("age_groups")
    if not isinstance(bounds, list) or not all(isinstance(b, int) for b in bounds):
        return
    fix = "list ascending lower bounds starting at 0 and including 18, e.g. [0, 18, 35, 65]"
    if not bounds or bounds[0] != 0:
        problems.append(("age_groups", f"{bounds} does not start at 0", fix))
    if any(low >= high for low, high in zip(bounds, bounds[1:], strict=False)):
        problems.append(("age_groups", f"{bounds} is not strictly ascending", fix))
    if VOTING_AGE not in bounds:
        problems.append(
            (
                "age_groups",
                f"{bounds} has no group starting at {VOTING_AGE}, so CVAP (citizens aged 18 or "
                "more) cannot be tabulated",
                fix,
            )
        )


def _check_status(config: dict, problems: list[tuple[str, str, str]]) -> None:
    status = _get(config, "synthetic.status") or {}
    values = {k: status[k] for k in STATUS_SHARES if isinstance(status.get(k), (int, float))}
    total = sum(values.values())
    if total > 1 + SLACK:
        listed = ", ".join(f"{k} {v:g}" for k, v in values.items())
        problems.append(
            (
                "synthetic.status",
                f"the shares of all residents add up to {total:g} > 1 ({listed}); native-born "
                "citizens are the rest",
                "lower them so that naturalized + lpr + temporary + unauthorized <= 1",
            )
        )


def _check_min_max(config: dict, problems: list[tuple[str, str, str]]) -> None:
    for low_key, high_key in MIN_MAX_PAIRS:
        low, high = _get(config, low_key), _get(config, high_key)
        if isinstance(low, (int, float)) and isinstance(high, (int, float)) and low > high:
            problems.append(
                (
                    low_key,
                    f"{low:g} is above {high_key} = {high:g}",
                    f"set {low_key} <= {high_key}",
                )
            )


def _check_privacy(config: dict, problems: list[tuple[str, str, str]]) -> None:
    privacy = config.get("privacy") or {}
    tables = privacy.get("tables") or []
    if privacy.get("mode", "zcdp") != "zcdp" or not isinstance(tables, list):
        return
    shares = [t.get("share") for t in tables if isinstance(t, dict)]
    shares = [s for s in shares if isinstance(s, (int, float))]
    if sum(shares) > 1 + SLACK:
        problems.append(
            (
                "privacy.tables",
                f"the tables' shares add up to {sum(shares):g} > 1: they would spend "
                f"{sum(shares) * float(privacy.get('rho', 1.0)):g} of a budget rho = "
                f"{privacy.get('rho', 1.0)}",
                "lower privacy.tables[*].share so that they add up to at most 1",
            )
        )
    names = [t.get("name") for t in tables if isinstance(t, dict)]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        problems.append(
            ("privacy.tables", f"table name(s) {repeated} repeated", "give each table its own name")
        )


def _check_withholding(config: dict, problems: list[tuple[str, str, str]]) -> None:
    lists = [("linkage.default_withhold", _get(config, "linkage.default_withhold"))]
    for source, settings in (_get(config, "synthetic.sources") or {}).items():
        if isinstance(settings, dict) and isinstance(settings.get("policy"), dict):
            key = f"synthetic.sources.{source}.policy.withhold"
            lists.append((key, settings["policy"].get("withhold")))
    for key, withhold in lists:
        if isinstance(withhold, list) and ALWAYS_WITHHELD not in withhold:
            problems.append(
                (
                    key,
                    f"{withhold} does not withhold '{ALWAYS_WITHHELD}': records protected by "
                    "8 U.S.C. 1367 must never be used, whatever the configuration",
                    f"add '{ALWAYS_WITHHELD}' to {key}",
                )
            )


def _check_maps(config: dict, problems: list[tuple[str, str, str]]) -> None:
    scales = _get(config, "model.prior_scales")
    if isinstance(scales, dict):
        for name in scales:
            if name not in PRIOR_SCALE_KEYS:
                problems.append(
                    (
                        f"model.prior_scales.{name}",
                        f"unknown prior scale{suggestion(name, PRIOR_SCALE_KEYS)}",
                        f"use only {', '.join(PRIOR_SCALE_KEYS)}",
                    )
                )
        for name in ("intercept_sd", "age_sd", "level_sd", "county_sd", "tract_sd", "block_sd"):
            value = scales.get(name)
            if isinstance(value, (int, float)) and value <= 0:
                problems.append(
                    (
                        f"model.prior_scales.{name}",
                        f"{value:g} is not a positive scale",
                        "give a standard deviation > 0",
                    )
                )
        units = scales.get("min_random_units")
        if units is not None and (not float(units).is_integer() or units < 1):
            problems.append(
                (
                    "model.prior_scales.min_random_units",
                    f"{units!r} is not a whole number of units >= 1",
                    "give an integer such as 8",
                )
            )
    stale = _get(config, "model.stale_split")
    if isinstance(stale, dict):
        for name in stale:
            if name not in SOURCES:
                problems.append(
                    (
                        f"model.stale_split.{name}",
                        f"unknown source{suggestion(name, SOURCES)}",
                        f"use source names: {', '.join(SOURCES)}",
                    )
                )


def _check_birth_countries(config: dict, problems: list[tuple[str, str, str]]) -> None:
    tilt = _get(config, "synthetic.birth_country_tilt")
    if not isinstance(tilt, dict) or not tilt:
        return
    from synthetic.identities import COUNTRIES

    known = [c[0] for c in COUNTRIES]
    for state, countries in tilt.items():
        for country in countries if isinstance(countries, dict) else {}:
            if country not in known:
                problems.append(
                    (
                        f"synthetic.birth_country_tilt.{state}.{country}",
                        f"unknown birth country{suggestion(str(country), known)}",
                        f"use countries of synthetic/identities.py COUNTRIES: {', '.join(known)}",
                    )
                )


def _check_data_dir(config: dict, problems: list[tuple[str, str, str]]) -> None:
    data_dir = config.get("data_dir")
    if isinstance(data_dir, str) and not (Path(data_dir) / "census_cvap").is_dir():
        problems.append(
            (
                "data_dir",
                f"{data_dir!r} holds no census_cvap/ folder (the real county tables)",
                "point data_dir at the folder that holds census_cvap/ (the repository's data/)",
            )
        )


def _check_linkage_backend(config: dict, problems: list[tuple[str, str, str]]) -> None:
    # Spark needs pyspark and a Java runtime: say so before any job, not in a linkage job's log.
    if _get(config, "linkage.backend") != "spark":
        return
    from linkage.backends import spark_unavailable

    reason = spark_unavailable()
    if reason:
        problems.append(
            (
                "linkage.backend",
                f"'spark' cannot run here: {reason}",
                "install what is missing (tools/ensure_env.sh installs pyspark, "
                "tools/ensure_java.sh a Java runtime) or set linkage.backend: duckdb",
            )
        )


CHECKS: tuple[Callable[[dict, list[tuple[str, str, str]]], Any], ...] = (
    _check_run,
    _check_dates,
    _check_age_groups,
    _check_status,
    _check_min_max,
    _check_privacy,
    _check_withholding,
    _check_maps,
    _check_birth_countries,
    _check_linkage_backend,
)
# Checks of paths relative to the working directory: only where that is the repository (the
# Snakefile), not for load_config() called from anywhere.
PATH_CHECKS = (_check_data_dir,)


class ConfigErrors(InputError):
    """Several config problems at once; ``errors`` holds each as an :class:`InputError`."""

    def __init__(self, errors: list[InputError]) -> None:
        first = errors[0]
        super().__init__(first.file, first.field, first.problem, first.fix)
        self.errors = errors
        self.args = ("\n".join(str(e) for e in errors),)

    def __str__(self) -> str:
        return self.args[0]


def check_config_meaning(
    config: dict,
    origin: ConfigOrigin | Callable[[str], str] | None = None,
    check_paths: bool = False,
) -> None:
    """Check the cross-field rules of a schema-valid ``config``.

    Parameters
    ----------
    config
        The merged config, defaults filled in.
    origin
        Maps a dotted key to the config file that set it (:class:`ConfigOrigin`).
    check_paths
        Also check paths relative to the working directory (``data_dir``).

    Raises
    ------
    InputError
        One problem (or :class:`ConfigErrors` for several): file, dotted key, problem, fix.
    """
    problems: list[tuple[str, str, str]] = []
    for check in (*CHECKS, *(PATH_CHECKS if check_paths else ())):
        check(config, problems)
    if not problems:
        return
    where = origin or (lambda key: "config")
    errors = [InputError(where(key), key, problem, fix) for key, problem, fix in problems]
    if len(errors) == 1:
        raise errors[0]
    raise ConfigErrors(errors)
