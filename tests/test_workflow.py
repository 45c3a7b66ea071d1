"""End-to-end: the whole workflow on the tiny scenario, in a scratch working directory.

Checks the contract files exist, nothing person-level reaches ``published/``, only evaluation
and reports read the truth, and a full rerun with the same seed gives identical published bytes.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from pipeline_common.sources import SOURCES

REPO = Path(__file__).resolve().parent.parent
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
RUN = "tiny"

CONTRACT_FILES = [
    "world/frame.parquet",
    "world/geography.parquet",
    *(f"world/sources/{s}.parquet" for s in SOURCES),
    "truth/persons.parquet",
    "truth/records.parquet",
    "linkage/links.parquet",
    "linkage/evidence.parquet",
    "linkage/withheld.json",
    "evaluation/linkage.json",
    "model/cells.parquet",
    "model/block_draws.parquet",
    "model/diagnostics.json",
    "privacy/model/block_draws.parquet",
    "privacy/model/diagnostics.json",
    "evaluation/estimates.json",
    "evaluation/calibration.json",
    "evaluation/comparison.json",
    "evaluation/comparison.csv",
    "evaluation/gain_over_acs.png",
    "baselines/acs_direct/block_draws.parquet",
    "baselines/acs_direct/block_groups.parquet",
    "privacy/ledger.json",
    "published/blocks.csv",
    "published/blocks.parquet",
    "published/draws.parquet",
    "published/cvap_blocks.csv",
    "published/cvap_block_groups.csv",
    "published/cvap_tracts.csv",
    "published/blocks.geojson",
    "published/metadata.json",
    "report/report.html",
    "report/report.pdf",
]


def run_workflow(workdir: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [
        str(SNAKEMAKE),
        "-s",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--cores",
        "2",
        "--configfile",
        "config/scenarios/tiny.yaml",
        *extra,
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("workflow")
    for shared in ("config", "data"):
        (workdir / shared).symlink_to(REPO / shared)
    done = run_workflow(workdir)
    assert done.returncode == 0, done.stderr[-6000:]
    return workdir


def test_contract_files_exist(tiny_run):
    results = tiny_run / "results" / RUN
    missing = [f for f in CONTRACT_FILES if not (results / f).exists()]
    assert not missing, f"missing outputs: {missing}"


def test_every_rule_logged_and_benchmarked(tiny_run):
    assert any((tiny_run / "logs" / RUN).rglob("*.log"))
    assert any((tiny_run / "benchmarks" / RUN).rglob("*.tsv"))


def _published_tables(published: Path):
    for path in sorted(published.rglob("*")):
        if path.suffix == ".parquet":
            yield path, pd.read_parquet(path)
        elif path.suffix == ".csv":
            yield path, pd.read_csv(path, dtype=str)


def test_nothing_person_level_is_published(tiny_run):
    results = tiny_run / "results" / RUN
    published = results / "published"
    frame = pd.read_parquet(results / "world" / "frame.parquet")
    n_blocks = frame["block_id"].nunique()
    forbidden_columns = {
        "person_id",
        "household_id",
        "record_id",
        "first_name",
        "last_name",
        "dob",
        "ssn",
        "a_number",
        "itin",
        "address",
    }
    id_pattern = re.compile(r"\b(?:P\d{9}|H\d{9}|[A-Z]{2,6}-\d{9}|A\d{9}|\d{3}-\d{2}-\d{4})\b")
    names = set(frame["first_name"].dropna().str.upper()) | set(
        frame["last_name"].dropna().str.upper()
    )
    names = {n for n in names if len(n) >= 4}
    for path, table in _published_tables(published):
        assert not forbidden_columns & set(table.columns), path
        if "draw" not in table.columns:
            assert len(table) <= n_blocks, f"{path} has more rows than blocks"
        text_values = table.select_dtypes(include=["object", "string"])
        for column in text_values:
            values = text_values[column].dropna().astype(str)
            assert not values.str.contains(id_pattern).any(), (path, column)
            assert not set(values.str.upper()) & names, (path, column)
    # Raw scan of every text file (JSON, CSV) for identifiers and dates of birth.
    reference_date = "2020-04-01"
    dobs = set(pd.to_datetime(frame["dob"].dropna()).dt.strftime("%Y-%m-%d")) - {reference_date}
    date_pattern = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
    for path in published.rglob("*"):
        if path.suffix in {".json", ".geojson", ".csv", ".txt", ".md"}:
            text = path.read_text()
            assert not id_pattern.search(text), path
            assert not set(date_pattern.findall(text)) & dobs, path


def test_census_convention_files_and_acs_baseline(tiny_run):
    """The ACS-style files match the published tables; the ACS baseline matches its file."""
    import json

    import numpy as np

    results = tiny_run / "results" / RUN
    published = results / "published"
    blocks = pd.read_csv(published / "blocks.csv", dtype={"block_id": str})
    for name, length in (("blocks", 15), ("block_groups", 12), ("tracts", 11)):
        table = pd.read_csv(published / f"cvap_{name}.csv", dtype={"geoid": str})
        assert (table["geoid"].str.len() == length).all(), name
        assert table["geoid"].str.fullmatch(r"\d+").all(), name
        assert (table["cit_est"] + table["noncit_est"] == table["tot_est"]).all(), name
        assert (table[["cit_moe", "cvap_moe", "noncit_moe"]] >= 0).all().all(), name
        assert table["cit_est"].sum() == blocks["citizens_est"].sum(), name
    census_blocks = pd.read_csv(published / "cvap_blocks.csv", dtype={"geoid": str})
    assert list(census_blocks["geoid"]) == list(blocks["block_id"])
    assert (census_blocks["cit_est"].to_numpy() == blocks["citizens_est"].to_numpy()).all()
    moe = (blocks["citizens_hi90"] - blocks["citizens_lo90"] + 1) // 2
    assert (census_blocks["cit_moe"].to_numpy() == moe.to_numpy()).all()
    geojson = json.loads((published / "blocks.geojson").read_text())
    assert geojson["type"] == "FeatureCollection"
    assert [f["properties"]["geoid"] for f in geojson["features"]] == list(blocks["block_id"])
    metadata = json.loads((published / "metadata.json").read_text())
    assert "half the width" in metadata["census_convention"]["moe"]
    # The baseline's block-group estimates, recomputed from the ACS file and its weights.
    acs = pd.read_parquet(results / "world" / "sources" / "acs.parquet")
    table = pd.read_parquet(results / "baselines" / "acs_direct" / "block_groups.parquet")
    citizen = acs["citizenship_edited"].isin(["born_citizen", "naturalized"])
    adult = acs["age"] >= 18
    bg = acs["block_id"].str[:12]
    for column, mask in (("cit_est", citizen), ("cvap_est", citizen & adult)):
        direct = acs["weight"].where(mask, 0.0).groupby(bg).sum()
        got = table.set_index("block_group_id")[column]
        assert np.allclose(got.reindex(direct.index), direct), column
    frame = pd.read_parquet(results / "world" / "frame.parquet", columns=["block_id"])
    assert abs(acs["weight"].sum() - len(frame)) < 1e-6
    comparison = json.loads((results / "evaluation" / "comparison.json").read_text())
    methods = {row["method"] for row in comparison["summary"]}
    assert methods == {"published", "exact", "record_rule", "census_style", "acs_direct"}
    assert set(comparison["targets"]) == {
        "block_mae_at_most_half_of_acs_direct",
        "block_group_width_and_coverage",
        "districts_1000_30000_mae_below_acs_direct",
    }
    assert 0 <= comparison["acs_direct_moe_coverage"]["citizens"]["coverage"] <= 1


def test_truth_is_read_only_by_evaluation_and_reports():
    rule_pattern = re.compile(r"^rule (\w+):\n(.*?)(?=^rule |\Z)", re.S | re.M)
    readers = []
    for rules in (REPO / "workflow" / "rules").glob("*.smk"):
        for name, body in rule_pattern.findall(rules.read_text()):
            inputs = body.split("output:")[0]
            if "truth/" in inputs or "TRUTH" in inputs:
                readers.append(name)
    allowed = re.compile(r"^(evaluate|report|sensitivity)")
    assert readers, "expected evaluation rules to read the truth"
    assert all(allowed.match(r) for r in readers), readers


def _digests(root: Path) -> dict[Path, str]:
    return {
        p.relative_to(root): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _kill_during_fit(workdir: Path, timeout: float = 1500.0) -> None:
    """Start a full rerun and SIGKILL its whole process group once the exact fit is sampling.

    The signal is the hard kind (no clean-up handlers run): what a power loss or an OOM killer
    does to a long fit.
    """
    log = workdir / "logs" / RUN / "model" / "fit_model.log"
    log.unlink(missing_ok=True)  # the first run's log already says the model compiled
    cmd = [
        str(SNAKEMAKE),
        "-s",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--cores",
        "2",
        "--configfile",
        "config/scenarios/tiny.yaml",
        "--forceall",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True
    )
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if log.exists() and "compiled the model" in log.read_text(errors="replace"):
                break
            if process.poll() is not None:
                pytest.fail("the run ended before its exact fit started sampling")
            time.sleep(0.5)
        else:
            pytest.fail(f"the exact fit did not start sampling within {timeout:.0f} s")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_same_seed_same_published_bytes_even_after_a_kill_mid_fit(tiny_run):
    """A second run, SIGKILLed while the exact fit samples and then resumed as the README says
    (``--unlock``, then the same command), publishes the same bytes as the first run: the run is
    deterministic, nothing half-written survives the kill, and the resumed run redoes the fit."""
    results = tiny_run / "results" / RUN
    published = results / "published"
    first = _digests(results)
    shutil.rmtree(results)
    _kill_during_fit(tiny_run)
    # Outputs are written atomically: the killed fit left neither of its outputs, nor anything
    # downstream of it.
    assert not (results / "model" / "posterior.nc").exists()
    assert not (results / "model" / "diagnostics.json").exists()
    assert not published.exists()
    unlocked = run_workflow(tiny_run, "--unlock")
    assert unlocked.returncode == 0, unlocked.stderr[-3000:]
    again = run_workflow(tiny_run)
    assert again.returncode == 0, again.stderr[-6000:]
    assert "rule fit_model" in again.stdout + again.stderr
    second = _digests(results)
    pub = Path("published")
    assert {k for k in first if pub in k.parents} == {k for k in second if pub in k.parents}
    differing = [str(k) for k in first if pub in k.parents and first[k] != second.get(k)]
    # Upstream files that differ too locate the first non-deterministic stage (timings in
    # diagnostics and benchmark-like JSON differ legitimately).
    upstream = sorted(str(k) for k in first if pub not in k.parents and first[k] != second.get(k))
    assert not differing, (
        f"published files differ between an uninterrupted run and a killed-then-resumed one: "
        f"{differing}; upstream files that differ: {upstream}"
    )
    assert published.is_dir()
