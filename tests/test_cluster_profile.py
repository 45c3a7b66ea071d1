"""The SLURM profile (workflow/profiles/slurm) plans the whole tiny workflow in a dry run.

A dry run submits nothing (no ``sbatch`` needed): it checks that the profile parses with
``snakemake-executor-plugin-slurm`` installed, that every rule of a normal run is planned, and
that each job carries the SLURM account and partition and its own memory and wall time.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from pipeline_common.resources import NEEDS
from pipeline_common.sources import SOURCES

REPO = Path(__file__).resolve().parent.parent
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
PROFILE = REPO / "workflow" / "profiles" / "slurm"
LONG_JOBS = {"fit_model", "privacy_fit", "privacy_predict"}


def dry_run(workdir: Path) -> subprocess.CompletedProcess:
    for shared in ("config", "data"):
        (workdir / shared).symlink_to(REPO / shared)
    cmd = [
        str(SNAKEMAKE),
        "-s",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--dry-run",
        "--profile",
        str(PROFILE),
        "--configfile",
        "config/scenarios/tiny.yaml",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, env=env, timeout=300)


def job_stats(output: str) -> dict[str, int]:
    """Rule -> count from Snakemake's 'Job stats' table."""
    table = output.split("Job stats:", 1)[1]
    return {
        rule: int(count)
        for rule, count in re.findall(r"^(\w+)\s+(\d+)$", table, flags=re.MULTILINE)
        if rule != "total"
    }


def job_resources(output: str) -> dict[str, str]:
    """Rule -> its job's ``resources:`` line (the last job of a rule with several)."""
    found = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", output):
        name = re.match(r"(?:local)?rule (\w+):", block)
        line = re.search(r"^\s+resources: (.*)$", block, flags=re.MULTILINE)
        if name and line:
            found[name.group(1)] = line.group(1)
    return found


def test_slurm_profile_plans_every_rule(tmp_path):
    done = dry_run(tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    assert f"Using profile {PROFILE}" in output
    stats = job_stats(output)
    expected = {rule for rule in NEEDS if not rule.startswith("sensitivity")} | {"all"}
    assert set(stats) == expected
    # Seven sources: one Numident job, the others one job each.
    linkage_jobs = ("linkage_link_numident", "linkage_link_source", "linkage_link_source_with_pik")
    assert sum(stats[rule] for rule in linkage_jobs) == len(SOURCES)
    resources = job_resources(output)
    for rule in expected - {"all"}:
        line = resources[rule]
        assert "slurm_account=CHANGE-ME-account" in line, rule
        assert re.search(r"\bmem_mb=\d+", line) and re.search(r"\bruntime=\d+", line), rule
        partition = "CHANGE-ME-long-partition" if rule in LONG_JOBS else "CHANGE-ME-partition"
        assert f"slurm_partition={partition}," in line + ",", rule
    # Nothing ran: a dry run writes no results.
    assert not (tmp_path / "results").exists()
