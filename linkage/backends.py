"""The database Splink runs on: DuckDB (default, in-process) or Spark (config ``linkage.backend``).

:func:`make_db_api` builds Splink's database API from the linkage config; :data:`SQL_FUNCTIONS`
names the string functions the comparison SQL of :mod:`linkage.link` uses, per backend (DuckDB's
``jaro_winkler_similarity`` is Spark's ``jaro_winkler``, a UDF from the jar Splink ships).

Spark runs in whatever ``linkage.spark.master`` says (``local[*]`` when null): one JVM started
once per Python process and reused by every linkage in it (:func:`spark_session`). It needs
``pyspark`` (the project's ``spark`` extra) and a Java runtime (17 or newer for Spark 4);
:func:`spark_unavailable` says what is missing, and the config checks refuse ``backend: spark``
with that reason before any job starts.
"""

from __future__ import annotations

import atexit
import importlib.util
import logging
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

log = logging.getLogger(__name__)

BACKENDS = ("duckdb", "spark")
# SQL function names of each backend, by the placeholder the comparison SQL uses. They equal
# Splink's dialect names (tests/test_linkage_spark.py checks that).
SQL_FUNCTIONS: dict[str, dict[str, str]] = {
    "duckdb": {
        "jaro_winkler": "jaro_winkler_similarity",
        "damerau_levenshtein": "damerau_levenshtein",
        "levenshtein": "levenshtein",
    },
    "spark": {
        "jaro_winkler": "jaro_winkler",
        "damerau_levenshtein": "damerau_levenshtein",
        "levenshtein": "levenshtein",
    },
}
# Defaults of linkage.spark (the schema holds the same; these serve callers without a schema).
SPARK_DEFAULTS = {
    "master": None,
    "num_partitions": 8,
    "break_lineage_method": "persist",
    "checkpoint_dir": None,
    "driver_memory": "4g",
}
MIN_JAVA = 17  # Spark 4 runs on Java 17 or 21


def sql_functions(backend: str) -> dict[str, str]:
    """``{placeholder: function name}`` for ``backend`` (``duckdb`` or ``spark``)."""
    if backend not in SQL_FUNCTIONS:
        raise ValueError(f"unknown linkage backend {backend!r}; use one of {BACKENDS}")
    return SQL_FUNCTIONS[backend]


def fill_functions(sql: str, backend: str) -> str:
    """``sql`` with every ``{placeholder}`` of :data:`SQL_FUNCTIONS` replaced for ``backend``."""
    for placeholder, name in sql_functions(backend).items():
        sql = sql.replace("{" + placeholder + "}", name)
    return sql


# --- what Spark needs ------------------------------------------------------------------------


def java_executable() -> str | None:
    """The ``java`` PySpark would start: ``$JAVA_HOME/bin/java``, else the one on ``PATH``."""
    home = os.environ.get("JAVA_HOME")
    if home:
        candidate = os.path.join(home, "bin", "java")
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("java")


def java_major_version(java: str) -> int | None:
    """The major version ``java -version`` reports (``17`` for 17.0.15, ``8`` for 1.8), or None."""
    try:
        done = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(r'version "(\d+)(?:\.(\d+))?', done.stderr + done.stdout)
    if not found:
        return None
    major = int(found.group(1))
    return int(found.group(2) or 0) if major == 1 else major


def pyspark_unavailable() -> str | None:
    """Why pyspark cannot be imported here, or None."""
    if importlib.util.find_spec("pyspark") is None:
        return (
            "pyspark is not installed (install the project's spark extra: "
            "pip install -e '.[spark]', which tools/ensure_env.sh does)"
        )
    return None


def java_unavailable() -> str | None:
    """Why no Java runtime Spark 4 can use is here (none, or older than 17), or None."""
    java = java_executable()
    if java is None:
        return (
            "no Java runtime (java is not on PATH and JAVA_HOME is unset; on Debian or Ubuntu "
            "tools/ensure_java.sh installs default-jre-headless)"
        )
    major = java_major_version(java)
    if major is None:
        return f"{java} -version did not run or report a version"
    if major < MIN_JAVA:
        return f"{java} is Java {major}; Spark 4 needs Java {MIN_JAVA} or newer"
    return None


def spark_unavailable() -> str | None:
    """Why the Spark backend cannot run here (pyspark or Java missing or too old), or None."""
    missing = [reason for reason in (pyspark_unavailable(), java_unavailable()) if reason]
    return "; ".join(missing) or None


# --- database APIs ---------------------------------------------------------------------------


@dataclass
class DatabaseBackend:
    """Splink's database API for one linkage, and how to hand it tables and release it."""

    name: str
    db_api: object
    to_input: Callable[[pd.DataFrame], object]
    close: Callable[[], None]


def spark_settings(linkage_config: dict) -> dict:
    """``linkage.spark`` with defaults filled (``master`` null -> ``local[*]``)."""
    settings = {**SPARK_DEFAULTS, **(linkage_config.get("spark") or {})}
    settings["master"] = settings["master"] or "local[*]"
    return settings


_CHECKPOINT_DIRS: list[str] = []


def _temporary_checkpoint_dir() -> str:
    if not _CHECKPOINT_DIRS:
        path = tempfile.mkdtemp(prefix="cvap-spark-checkpoints-")
        _CHECKPOINT_DIRS.append(path)
        atexit.register(shutil.rmtree, path, ignore_errors=True)
    return _CHECKPOINT_DIRS[0]


def spark_session(settings: dict):
    """The process's Spark session for linkage, started on first use (with Splink's UDF jar).

    A session already running in the process is reused (``getOrCreate``): the master and the
    driver memory are fixed when the JVM starts, the shuffle partitions are set on each call.
    """
    from pyspark.sql import SparkSession
    from splink.backends.spark import similarity_jar_location

    partitions = str(int(settings["num_partitions"]))
    session = (
        SparkSession.builder.master(settings["master"])
        .appName("cvap-lab-linkage")
        .config("spark.jars", similarity_jar_location())
        .config("spark.driver.memory", settings["driver_memory"])
        .config("spark.sql.shuffle.partitions", partitions)
        .config("spark.default.parallelism", partitions)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    session.conf.set("spark.sql.shuffle.partitions", partitions)
    session.sparkContext.setLogLevel("ERROR")
    checkpoint_dir = settings.get("checkpoint_dir") or _temporary_checkpoint_dir()
    os.makedirs(checkpoint_dir, exist_ok=True)
    session.sparkContext.setCheckpointDir(checkpoint_dir)
    return session


def _arrow_for_spark(table: pd.DataFrame):
    """``table`` as an Arrow table whose all-null columns are strings, not Spark's NullType."""
    import pyarrow as pa

    arrow = pa.Table.from_pandas(table, preserve_index=False)
    for i, column in enumerate(arrow.schema):
        if pa.types.is_null(column.type):
            arrow = arrow.set_column(i, column.name, arrow.column(i).cast(pa.string()))
    return arrow


def make_db_api(linkage_config: dict) -> DatabaseBackend:
    """Splink's database API for the ``linkage`` section of the config.

    Parameters
    ----------
    linkage_config
        Keys read: ``backend`` (``duckdb`` by default or ``spark``); for DuckDB ``threads`` and
        ``duckdb_memory_limit``; for Spark ``spark.{master, num_partitions,
        break_lineage_method, checkpoint_dir, driver_memory}``.

    Returns
    -------
    DatabaseBackend
        ``db_api`` for ``Linker``; ``to_input`` turns a pandas table into what ``db_api.register``
        takes; ``close`` releases the DuckDB connection, or the cached Spark tables (the Spark
        session stays up for the next linkage in the process).

    Raises
    ------
    RuntimeError
        ``backend: spark`` where pyspark or Java is missing (the config checks say so earlier).
    """
    backend = linkage_config.get("backend") or "duckdb"
    sql_functions(backend)  # unknown names fail here
    if backend == "duckdb":
        import duckdb
        from splink import DuckDBAPI

        duckdb_config: dict = {"threads": int(linkage_config.get("threads", 2))}
        memory_limit = linkage_config.get("duckdb_memory_limit", "4GB")
        if memory_limit:
            # Past the limit DuckDB spills to its temporary directory instead of growing.
            duckdb_config["memory_limit"] = memory_limit
        connection = duckdb.connect(config=duckdb_config)
        return DatabaseBackend(
            "duckdb", DuckDBAPI(connection=connection), lambda t: t, connection.close
        )

    reason = spark_unavailable()
    if reason:
        raise RuntimeError(f"linkage.backend is spark but {reason}")
    from splink import SparkAPI

    settings = spark_settings(linkage_config)
    session = spark_session(settings)
    db_api = SparkAPI(
        spark_session=session,
        break_lineage_method=settings["break_lineage_method"],
        num_partitions_on_repartition=int(settings["num_partitions"]),
    )
    log.info(
        "Splink on Spark %s (master %s, %s partitions, break lineage by %s)",
        session.version,
        settings["master"],
        settings["num_partitions"],
        settings["break_lineage_method"],
    )

    def to_input(table: pd.DataFrame):
        return session.createDataFrame(_arrow_for_spark(table))

    def close() -> None:
        # The session outlives this linkage: drop its tables (the next linkage registers its
        # own 'frame' and 'source') and the cached intermediate results.
        for table in session.catalog.listTables():
            if table.isTemporary:
                session.catalog.dropTempView(table.name)
        session.catalog.clearCache()

    return DatabaseBackend("spark", db_api, to_input, close)
