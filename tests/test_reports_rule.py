"""The Snakemake ``report`` rule renders both outputs for a fixture run (only that rule runs)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pypdf
import pytest

from tests.fixtures.report_run import write_fixture_run

REPO = Path(__file__).resolve().parent.parent
SNAKEMAKE = Path(sys.executable).with_name("snakemake")


def _snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [
        str(SNAKEMAKE),
        "-s",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--nolock",
        *args,
        "--configfile",
        "config/scenarios/tiny.yaml",
        "fx.yaml",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, cwd=workdir)


@pytest.mark.slow
def test_report_rule_on_fixture(tmp_path):
    for shared in ("config", "data"):
        (tmp_path / shared).symlink_to(REPO / shared)
    (tmp_path / "fx.yaml").write_text("run: fx\nreport:\n  dpi: 150\n")
    write_fixture_run(tmp_path / "results" / "fx", bench_dir=tmp_path / "benchmarks" / "fx")
    target = "results/fx/report/report.html"
    # Only the report rule may run: inputs the fixture lacks (other stages' benchmark files,
    # whose names are theirs to choose) are created as minimal benchmark tables.
    dry = _snakemake(tmp_path, target, "--allowed-rules", "report", "-n")
    for missing in re.findall(r"^\s+(benchmarks/fx/\S+\.tsv)$", dry.stdout + dry.stderr, re.M):
        path = tmp_path / missing
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("s\th:m:s\n1.0\t0:00:01\n")
    done = _snakemake(tmp_path, target, "--allowed-rules", "report", "--cores", "1")
    assert done.returncode == 0, done.stderr[-4000:]
    report_dir = tmp_path / "results" / "fx" / "report"
    html = (report_dir / "report.html").read_text()
    assert "<h2>10. Reproducibility</h2>" in html
    reader = pypdf.PdfReader(report_dir / "report.pdf")
    assert len(reader.pages) >= 9
    assert (tmp_path / "benchmarks" / "fx" / "report" / "report.tsv").exists()
    assert (tmp_path / "logs" / "fx" / "report" / "report.log").exists()
