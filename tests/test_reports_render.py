"""The report renders for a fixture run built to docs/CONTRACTS.md: HTML and PDF checked."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pypdf
import pytest

from pipeline_common.config import load_config
from pipeline_common.errors import InputError
from reports.render import SECTIONS, write_report
from tests.fixtures.report_run import write_fixture_run

REPO = Path(__file__).resolve().parent.parent
TINY = REPO / "config" / "scenarios" / "tiny.yaml"


@pytest.fixture(scope="module")
def config():
    # Lower dpi keeps the test fast; the figure count and text do not depend on it.
    return load_config(TINY, overrides={"report": {"dpi": 150}})


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, config):
    root = tmp_path_factory.mktemp("report")
    run_dir = write_fixture_run(root / "results" / "fx", bench_dir=root / "benchmarks" / "fx")
    out = run_dir / "report"
    result = write_report(
        run_dir,
        config,
        out / "report.html",
        out / "report.pdf",
        bench_dir=root / "benchmarks" / "fx",
        sensitivity_summary=root / "results" / "sensitivity" / "summary.csv",
    )
    return {
        "run_dir": run_dir,
        "result": result,
        "html": (out / "report.html").read_text(),
        "pdf": out / "report.pdf",
    }


def test_html_has_every_section(rendered):
    html = rendered["html"]
    for section_id, title in SECTIONS:
        assert f'<section id="{section_id}">' in html, section_id
        assert re.search(rf"<h2>\d+\. {re.escape(title)}</h2>", html), title


def test_html_is_self_contained(rendered):
    html = rendered["html"]
    assert "http://" not in html and "https://" not in html
    for attribute, value in re.findall(r"\b(src|href)\s*=\s*[\"']([^\"']*)[\"']", html):
        if attribute == "src":
            assert value.startswith("data:image/"), value[:60]
        else:
            assert value.startswith("#"), value
    assert "<link" not in html and "@import" not in html and "url(" not in html


def test_html_embeds_every_figure(rendered):
    html = rendered["html"]
    figures = rendered["result"].figures
    assert len(figures) >= 14
    images = re.findall(r'<img src="data:image/png;base64,', html)
    assert len(images) == len(figures)
    for figure in figures:
        assert f"Figure {figure['number']}. {figure['title']}." in html
        # Printed at its own width: a figure must fit the 6.7 in text width of A4 and Letter.
        assert 2.0 <= figure["width_in"] <= 6.9, figure["key"]


def _drawn_images(reader: pypdf.PdfReader) -> set[str]:
    """Names of image XObjects a page actually draws (WeasyPrint shares one resource dict)."""
    drawn = set()
    for page in reader.pages:
        xobjects = page["/Resources"].get("/XObject")
        if xobjects is None:
            continue
        xobjects = xobjects.get_object()
        content = page.get_contents().get_data().decode("latin-1")
        for name in re.findall(r"(/[^\s/]+)\s+Do\b", content):
            if name in xobjects and xobjects[name].get_object().get("/Subtype") == "/Image":
                drawn.add(name)
    return drawn


def test_pdf_pages_text_and_images(rendered):
    reader = pypdf.PdfReader(rendered["pdf"])
    text = "\n".join(page.extract_text() for page in reader.pages)
    # Each numbered section starts on a new page in print.
    assert len(reader.pages) >= len(SECTIONS)
    for number, (_, title) in enumerate(SECTIONS, start=1):
        assert f"{number}. {title}" in text, title
    for figure in rendered["result"].figures:
        assert f"Figure {figure['number']}." in text
    assert f"Page 1 of {len(reader.pages)}" in text
    assert len(_drawn_images(reader)) == len(rendered["result"].figures)


def test_report_says_what_is_weak(rendered):
    html = rendered["html"]
    # The exact fit's block coverage (randomized PIT, evaluation/calibration.json) is said in
    # words with the number; below 87% the intervals are called too narrow.
    calibration = json.loads((rendered["run_dir"] / "evaluation" / "calibration.json").read_text())
    pit = next(
        r["pit_coverage"]
        for r in calibration["summary"]
        if (r["method"], r["level"], r["quantity"]) == ("exact", "block", "citizens")
    )
    only = "only " if pit < 0.87 else ""
    assert f"covered the true count in {only}{pit:.1%} of blocks (randomized PIT" in html
    if pit < 0.87:
        assert "too narrow" in html
    # Absent optional inputs are named, never silently skipped.
    assert "sensitivity analysis was not run" in html
    # The published tables' own accuracy is shown (fixture: 88% block coverage).
    assert "Block 90% coverage" in html and "88.0%" in html


def test_calibration_at_every_level_section(rendered):
    html = rendered["html"]
    start = html.index('id="calibration-levels"')
    section = html[start : html.index('id="calibration-study"', start)]
    assert "Calibration at every level users sum to" in section
    assert "benchmarks/calibration_study.py" in section
    assert 'id="fig-calibration_levels"' in section
    # The equal-tailed block check is named as such, beside the PIT it is not judged by.
    assert "read inclusively" in section and "randomized PIT" in section
    # The table is printed once, in the summary: levels from block to run total, both fits,
    # a red cross where a target is missed.
    summary = html[html.index('<section id="summary">') : html.index('<section id="using">')]
    table = summary[summary.index("summary-cal") :]
    table = table[: table.index("</table>")]
    for label in ("blocks (randomized PIT)", "block groups", "tracts", "counties", "run total"):
        assert f"<td>{label}" in table, label
    assert '<span class="mark miss">✗</span>' in table
    assert html.count('class="numbers compact summary-cal"') == 1


def test_missing_optional_inputs_are_listed(tmp_path, config):
    run_dir = write_fixture_run(tmp_path / "results" / "fx")
    (run_dir / "model" / "posterior.nc").unlink()
    (run_dir / "evaluation" / "linkage.json").unlink()
    result = write_report(run_dir, config, tmp_path / "out" / "report.html")
    html = (tmp_path / "out" / "report.html").read_text()
    assert any(path.endswith("model/posterior.nc") for path in result.missing)
    assert "not found: <code>" in html and "evaluation/linkage.json" in html
    keys = {figure["key"] for figure in result.figures}
    assert "rank" not in keys and "linkage_quality" not in keys
    assert "map_share" in keys


def test_coverage_on_target_is_called_honest(tmp_path, config):
    run_dir = write_fixture_run(tmp_path / "results" / "fx")
    # The exact fit's block PIT coverage is read from evaluation/calibration.json (one figure
    # per fit, the same file as the published fit's); estimates.json agrees with it.
    path = run_dir / "evaluation" / "estimates.json"
    estimates = json.loads(path.read_text())
    for quantity in ("citizens", "cvap"):
        estimates["methods"]["model"][quantity]["coverage90_pit"] = 0.905
    path.write_text(json.dumps(estimates))
    path = run_dir / "evaluation" / "calibration.json"
    calibration = json.loads(path.read_text())
    for row in calibration["summary"]:
        if row["method"] == "exact" and row["level"] == "block":
            row["pit_coverage"] = 0.905
    path.write_text(json.dumps(calibration))
    write_report(run_dir, config, tmp_path / "out" / "report.html")
    html = (tmp_path / "out" / "report.html").read_text()
    assert "in 90.5% of blocks (randomized PIT), within 3% of the nominal" in html
    assert "covered the true count in only" not in html
    assert "Exact fit, blocks: 90% intervals hold the truth for 90.5%" in html


def test_broken_published_table_names_file_and_field(tmp_path, config):
    run_dir = write_fixture_run(tmp_path / "results" / "fx")
    blocks = run_dir / "published" / "blocks.csv"
    lines = blocks.read_text().splitlines()
    header = lines[0].replace("cvap_hi90", "cvap_upper")
    blocks.write_text("\n".join([header, *lines[1:]]) + "\n")
    with pytest.raises(InputError, match=r"blocks\.csv.*cvap_hi90"):
        write_report(run_dir, config, tmp_path / "out" / "report.html")


TINY_RUN = REPO / "results" / "tiny"


@pytest.mark.skipif(
    not (TINY_RUN / "published" / "blocks.csv").exists(), reason="no tiny run in results/"
)
def test_renders_the_tiny_run_when_present(tmp_path, config):
    result = write_report(
        TINY_RUN,
        config,
        tmp_path / "report.html",
        tmp_path / "report.pdf",
        bench_dir=REPO / "benchmarks" / "tiny",
    )
    assert len(result.figures) >= 8
    reader = pypdf.PdfReader(tmp_path / "report.pdf")
    assert len(reader.pages) >= len(SECTIONS)


def test_fixture_copy_is_independent(tmp_path):
    # Guard for the tests above: the fixture writer makes a fresh folder each time.
    first = write_fixture_run(tmp_path / "a")
    second = tmp_path / "b"
    shutil.copytree(first, second)
    assert (second / "published" / "blocks.csv").read_bytes() == (
        first / "published" / "blocks.csv"
    ).read_bytes()


def test_no_person_level_identifier_in_report(rendered):
    html = rendered["html"]
    assert not re.search(r"\b(P\d{9}|H\d{9}|[A-Z]{1,6}-\d{9})\b", html)


def test_same_inputs_same_html(rendered, config, tmp_path):
    again = write_report(
        rendered["run_dir"],
        config,
        tmp_path / "again.html",
        bench_dir=rendered["run_dir"].parent.parent / "benchmarks" / "fx",
    )
    assert again.html == rendered["html"]


def test_sensitivity_section_when_summary_exists(tmp_path, config):
    run_dir = write_fixture_run(tmp_path / "results" / "fx")
    rows = []
    for knob, values in (("baseline", ["base"]), ("acs_misreport", ["0.5", "2"])):
        for value in values:
            for method in ("model", "record_rule"):
                rows.append(
                    {
                        "knob": knob,
                        "value": value,
                        "method": method,
                        "quantity": "citizens",
                        "block_mae": 1.0 + len(rows) / 10,
                        "coverage90_pit": 0.9 - len(rows) / 100,
                    }
                )
    summary = tmp_path / "summary.csv"
    pd.DataFrame(rows).to_csv(summary, index=False)
    result = write_report(run_dir, config, tmp_path / "out.html", sensitivity_summary=summary)
    html = (tmp_path / "out.html").read_text()
    assert "sensitivity analysis was not run" not in html
    assert "sensitivity" in {figure["key"] for figure in result.figures}
    assert "acs misreport" in html
    # The model's coverage in the acs_misreport=2 run (86%) is below 90% - 3%: said in words.
    assert "too narrow (coverage below 87%) in acs misreport = 2 (86.0%)" in html


# ---------------------------------------------------------------- the summary against its files

NUMBER = r"[+\-−]?[\d,]+(?:\.\d+)?"


def _num(text: str) -> float:
    return float(text.replace(",", "").replace("−", "-"))


def _summary_text(pdf_path) -> str:
    """The summary page's text as the PDF holds it (pypdf), whitespace collapsed."""
    reader = pypdf.PdfReader(pdf_path)
    text = re.sub(r"\s+", " ", " ".join(page.extract_text() for page in reader.pages))
    return text[text.index("What the evaluation says") : text.index("What is published")]


def headline_contradictions(text: str, run_dir: Path) -> tuple[list[str], int]:
    """Numbers of the summary that differ from the evaluation file they come from.

    Returns the contradictions and how many numbers were checked. Each number is found by the
    sentence that states it and compared, at the printed precision, with its file:
    block randomized-PIT coverage of both fits (evaluation/calibration.json), block MAE of
    the published estimates and of every baseline (published.json, estimates.json,
    comparison.json), both fits' convergence (diagnostics.json) and the run total's error.
    """
    evaluation = run_dir / "evaluation"
    calibration = json.loads((evaluation / "calibration.json").read_text())
    rows = {(r["method"], r["level"], r["quantity"]): r for r in calibration["summary"]}
    published = json.loads((evaluation / "published.json").read_text())
    estimates = json.loads((evaluation / "estimates.json").read_text())["methods"]
    comparison_path = evaluation / "comparison.json"
    comparison = (
        {
            (r["method"], r["level"], r["quantity"]): r
            for r in json.loads(comparison_path.read_text())["summary"]
        }
        if comparison_path.exists()
        else {}
    )
    bad, checked = [], 0

    def check(what: str, printed: str, expected: float, fmt: str) -> None:
        nonlocal checked
        checked += 1
        if printed != format(expected, fmt):
            bad.append(f"{what}: report says {printed}, file says {format(expected, fmt)}")

    # Block calibration, randomized PIT, one figure per fit.
    pattern = (
        r"(Published estimates|Exact fit), blocks: 90% intervals hold the truth for "
        r"(\d+\.\d)% of ([\d,]+) blocks for citizens and (\d+\.\d)% for CVAP"
    )
    found = re.findall(pattern, text)
    assert {f[0] for f in found} == {"Published estimates", "Exact fit"}, found
    for name, cit, n_blocks, cvap in found:
        method = "published" if name.startswith("Published") else "exact"
        check(
            f"{method} block PIT citizens",
            cit,
            rows[(method, "block", "citizens")]["pit_coverage"] * 100,
            ".1f",
        )
        check(
            f"{method} block PIT CVAP",
            cvap,
            rows[(method, "block", "cvap")]["pit_coverage"] * 100,
            ".1f",
        )
        check(f"{method} blocks", n_blocks, rows[(method, "block", "citizens")]["n_units"], ",.0f")
    # Block accuracy against every baseline.
    labels = {
        "exact fit": estimates["model"],
        "Census-style baseline": estimates["census_style"],
        "record rule": estimates["record_rule"],
    }
    for quantity, label in (("citizens", "citizens"), ("cvap", "CVAP")):
        match = re.search(
            rf"Block {label}: the published estimates' mean absolute error is (\d+\.\d\d) "
            r"persons per block, against (.*?)\. ",
            text,
        )
        assert match, f"no accuracy sentence for {label}"
        check(
            f"published MAE {quantity}", match.group(1), published["block"][quantity]["mae"], ".2f"
        )
        for other, methods in labels.items():
            value = re.search(rf"{re.escape(other)} (\d+\.\d\d)", match.group(2))
            assert value, f"{other} missing from the {label} accuracy sentence"
            check(f"{other} MAE {quantity}", value.group(1), methods[quantity]["block_mae"], ".2f")
        if comparison:
            value = re.search(r"\(acs_direct\) (\d+\.\d\d)", match.group(2))
            assert value, "acs_direct missing although comparison.json exists"
            check(
                f"acs_direct MAE {quantity}",
                value.group(1),
                comparison[("acs_direct", "block", quantity)]["mae"],
                ".2f",
            )
    # Convergence of both fits.
    for name, path in (
        ("Published (privacy) fit", run_dir / "privacy" / "model" / "diagnostics.json"),
        ("Exact fit", run_dir / "model" / "diagnostics.json"),
    ):
        match = re.search(
            rf"{re.escape(name)} (?:did NOT converge|converged)[^:]*: max R-hat (\d\.\d{{3}}), "
            r"min bulk ESS ([\d,]+), min tail ESS ([\d,]+), divergences ([\d,]+)",
            text,
        )
        assert match, f"no convergence sentence for {name}"
        diag = json.loads(path.read_text())
        check(f"{name} R-hat", match.group(1), diag["max_rhat"], ".3f")
        check(f"{name} bulk ESS", match.group(2), diag["min_ess_bulk"], ",.0f")
        check(f"{name} tail ESS", match.group(3), diag["min_ess_tail"], ",.0f")
        check(f"{name} divergences", match.group(4), diag["divergences"], ",.0f")
        converged = "did NOT converge" not in text[match.start() : match.end()]
        if converged != bool(diag.get("converged", True)):
            bad.append(f"{name}: report and diagnostics.json disagree on convergence")
    # The run total's error, published and exact, citizens and CVAP (this run).
    totals = {(u["method"], u["quantity"]): u for u in calibration["units"]["total"]}
    for method, name in (("published", "Published estimates"), ("exact", "Exact fit")):
        sentence = re.search(rf"{name}, sums of blocks.*?\.(?= [A-Z✓✗!•]|$)", text)
        assert sentence, f"no sums-of-blocks sentence for {name}"
        errors = re.findall(rf"run total ({NUMBER}) \(", sentence.group(0))
        assert len(errors) == 2, sentence.group(0)
        for printed, quantity in zip(errors, ("citizens", "cvap"), strict=True):
            unit = totals[(method, quantity)]
            check(
                f"{method} run total {quantity}",
                printed.replace("−", "-"),
                unit["estimate"] - unit["truth"],
                "+,.0f",
            )
    return bad, checked


def test_pdf_headline_numbers_match_the_evaluation_files(rendered):
    """Issue 20: the summary's numbers, read from the rendered PDF, are those of the files."""
    text = _summary_text(rendered["pdf"])
    bad, checked = headline_contradictions(text, rendered["run_dir"])
    assert checked >= 28
    assert not bad, bad


def test_headline_check_catches_a_contradiction(rendered, tmp_path):
    """The same check against doctored files must fail: it can catch a report that drifts."""
    text = _summary_text(rendered["pdf"])
    run_dir = tmp_path / "fx"
    for part in ("evaluation", "model", "privacy/model"):
        (run_dir / part).mkdir(parents=True)
    for name in ("calibration.json", "published.json", "estimates.json", "comparison.json"):
        source = rendered["run_dir"] / "evaluation" / name
        if source.exists():
            shutil.copy(source, run_dir / "evaluation" / name)
    for part in ("model", "privacy/model"):
        shutil.copy(rendered["run_dir"] / part / "diagnostics.json", run_dir / part)
    path = run_dir / "evaluation" / "calibration.json"
    calibration = json.loads(path.read_text())
    for row in calibration["summary"]:
        if (row["method"], row["level"]) == ("published", "block"):
            row["pit_coverage"] = row["pit_coverage"] + 0.02
    path.write_text(json.dumps(calibration))
    path = run_dir / "evaluation" / "published.json"
    published = json.loads(path.read_text())
    published["block"]["citizens"]["mae"] += 0.5
    path.write_text(json.dumps(published))
    bad, _ = headline_contradictions(text, run_dir)
    assert any("published block PIT citizens" in b for b in bad), bad
    assert any("published MAE citizens" in b for b in bad), bad


def test_summary_marks_agree_with_the_targets(rendered):
    """A check mark never stands beside a number outside its target, a cross never beside
    one inside (summary table, HTML)."""
    html = rendered["html"]
    table = html[html.index('class="numbers compact summary-cal"') :]
    table = table[: table.index("</table>")]
    cells = re.findall(r'<td class="num">([^<]*)(?:<span class="mark (ok|miss)">)?', table)
    checked = 0
    for text, mark in cells:
        value = re.fullmatch(r"(\d+\.\d)%", text.strip())
        if not value:
            continue
        share = float(value.group(1)) / 100
        checked += 1
        inside = 0.85 - 1e-9 <= share <= 0.95 + 1e-9
        assert mark == ("ok" if inside else "miss"), (text, mark)
    assert checked >= 8


def test_calibration_study_is_shown_when_present(tmp_path, config):
    """A study folder (results/calibration/{name}/calibration.json) gets its figure, table and
    sentences, with its numbers; without one the report says how to run it."""
    from reports.render import render_html

    run_dir = write_fixture_run(tmp_path / "results" / "fx")
    summary = json.loads((run_dir / "evaluation" / "calibration.json").read_text())["summary"]
    pooled = [
        {
            **row,
            "n_replicates": 2,
            "replicates_covered": 2 if row["level"] == "total" else None,
            "target": ">= 0.875 of replicates" if row["level"] == "total" else "0.85-0.95",
        }
        for row in summary
    ]
    study = tmp_path / "calibration" / "tiny"
    study.mkdir(parents=True)
    (study / "calibration.json").write_text(
        json.dumps({"pooled": pooled, "seeds": [1, 2], "scenario": "config/scenarios/tiny.yaml"})
    )
    import html as html_lib

    html = html_lib.unescape(
        render_html(run_dir, config, calibration_study=tmp_path / "calibration").html
    )
    assert 'id="fig-study_0"' in html
    assert "Calibration study 'tiny' (2 replicate worlds pooled)" in html
    row = next(
        r
        for r in pooled
        if (r["method"], r["level"], r["quantity"]) == ("published", "block", "citizens")
    )
    assert f"blocks (PIT) {row['pit_coverage']:.1%}" in html
    assert "2 of 2 covered" in html
    html = render_html(run_dir, config, calibration_study=tmp_path / "nowhere").html
    assert "No calibration study was found" in html
