"""The report presents both model fits (exact and privacy), what the noise costs, and a
posterior predictive check it computes itself; checked on the fixture run."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import xarray as xr

from pipeline_common.config import load_config
from reports.data import open_posterior
from reports.ppc import exact_fit_ppc
from reports.render import render_html
from tests.fixtures.report_run import write_fixture_run


@pytest.fixture(scope="module")
def config():
    return load_config(overrides={"report": {"dpi": 150}})


@pytest.fixture(scope="module")
def fixture_run(tmp_path_factory):
    return write_fixture_run(tmp_path_factory.mktemp("fits") / "results" / "fx")


@pytest.fixture(scope="module")
def rendered(fixture_run, config):
    return render_html(fixture_run, config)


def test_diagnostics_table_has_both_fits(rendered):
    html = rendered.html
    assert "Exact fit (model/)" in html and "Privacy fit (privacy/model/)" in html
    # The fixture's privacy fit has 2 divergences and ESS 288: the report must say so.
    assert "Privacy fit (published): 2 divergent transitions" in html
    assert "Privacy fit (published): smallest bulk ESS is 288 draws" in html
    assert "Exact fit: no divergent transitions." in html


def test_summary_says_plainly_that_the_privacy_fit_did_not_converge(rendered):
    html = rendered.html
    # Near the top (a banner before the summary), and first among the summary's findings.
    banner = html.index("NOT CONVERGED — privacy fit (published) missed its convergence targets")
    assert banner < html.index('<section id="summary">')
    summary = html[html.index('<section id="summary">') : html.index('<section id="sources">')]
    findings = summary[summary.index('<ul class="findings">') :]
    first = findings[findings.index("<li") : findings.index("</li>")]
    assert first.startswith('<li class="miss">Published (privacy) fit did NOT converge')
    assert "min bulk ESS 288 &lt; 400" in first and "2 divergences &gt; 0" in first
    # No check mark beside a miss: the privacy fit has no "ok" finding in the summary.
    assert '<li class="ok">Published (privacy) fit' not in summary
    assert '<li class="ok">Exact fit converged' in summary
    assert '<strong class="miss">NO</strong>' in html


def test_noise_cost_compares_exact_fit_with_published(rendered):
    html = rendered.html
    keys = {figure["key"] for figure in rendered.figures}
    assert "noise_cost" in keys
    # Fixture: exact-fit block MAE 1.20 (estimates.json), published 1.40 (published.json);
    # inclusive coverage 93.0% against 88.0%.
    assert "1.20 → <strong>1.40</strong>" in html
    assert "93.0% → <strong>88.0%</strong>" in html
    assert "1.20 persons for the exact fit and 1.40 for the published estimates (+17%)" in html


def test_missing_privacy_fit_and_published_metrics_are_reported(tmp_path, config):
    run_dir = write_fixture_run(tmp_path / "results" / "fx")
    (run_dir / "privacy" / "model" / "diagnostics.json").unlink()
    path = run_dir / "evaluation" / "published.json"
    published = json.loads(path.read_text())
    published["block"] = {}
    path.write_text(json.dumps(published))
    result = render_html(run_dir, config)
    assert any(path.endswith("privacy/model/diagnostics.json") for path in result.missing)
    assert "diagnostics.json not found" in result.html
    # Without block metrics of the published tables the noise cost is not measured: said so.
    assert "noise_cost" not in {figure["key"] for figure in result.figures}
    assert "cost of the privacy noise in accuracy is not measured" in result.html


def test_privacy_mode_none_has_no_privacy_fit(tmp_path):
    config = load_config(overrides={"privacy": {"mode": "none"}, "report": {"dpi": 150}})
    run_dir = write_fixture_run(tmp_path / "results" / "fx")
    shutil.rmtree(run_dir / "privacy" / "model")
    result = render_html(run_dir, config)
    assert not any("privacy/model" in path for path in result.missing)
    assert "Privacy fit (privacy/model/)" not in result.html
    assert "Exact fit (model/)" in result.html


def test_ppc_is_drawn_and_explained(rendered):
    assert "ppc" in {figure["key"] for figure in rendered.figures}
    assert "fall inside their" in rendered.html


def test_ppc_detects_a_wrong_source_behaviour(fixture_run, config):
    posterior = open_posterior(fixture_run / "model" / "posterior.nc", [])
    good = exact_fit_ppc(fixture_run, config, posterior)
    assert good is not None and good["inside"].mean() > 0.85
    # The same posterior with the Numident's categories reversed for every class no longer
    # reproduces the data: most heavy patterns fall outside their replicated intervals.
    ds = posterior["posterior"].to_dataset()
    theta = ds["theta_ssa_numident"]
    ds["theta_ssa_numident"] = theta.copy(data=theta.to_numpy()[..., ::-1])
    wrong = exact_fit_ppc(fixture_run, config, xr.DataTree.from_dict({"posterior": ds}))
    assert wrong["inside"].mean() < good["inside"].mean() - 0.2

    def heavy_inside(table):
        return table.loc[table["observed"] >= np.quantile(table["observed"], 0.9), "inside"].mean()

    assert heavy_inside(wrong) < heavy_inside(good) - 0.3


def test_sensitivity_absent_says_how_to_produce_it(rendered):
    assert "snakemake sensitivity --cores 2 --nolock" in rendered.html


def test_linked_share_truth_weights_statuses_and_linked_records():
    from reports.summaries import source_behaviour

    ctx = {
        "posterior": None,
        "diagnostics": {
            "source_behaviour": {
                "cbp_ice": {"noncitizen": {"none": {"mean": 0.6}, "noncitizen_hi": {"mean": 0.4}}}
            }
        },
        "parameters": {
            "realized": {
                "source_coverage_by_status": {
                    "cbp_ice": {"lpr": 0.5, "temporary": 1.0, "unauthorized": 0.0}
                },
                "status_shares": {"lpr": 0.5, "temporary": 0.25, "unauthorized": 0.25},
            }
        },
        "withheld": {"cbp_ice": {"records_in": 100, "records_linked": 80}},
    }
    table = source_behaviour(ctx).set_index("label")
    row = table.loc["CBP / ICE links | noncitizen"]
    # Coverage of noncitizens (0.5*0.5 + 1.0*0.25 + 0) / 1.0 = 0.5, times 80/100 linked.
    assert row["truth"] == pytest.approx(0.4)
    assert row["mean"] == pytest.approx(0.4)


def test_calibration_curve_separates_honest_from_overconfident_draws():
    import pandas as pd

    from reports.calibration import LEVELS, coverage_curve

    rng = np.random.default_rng(3)
    rate = rng.uniform(5, 40, 3000)
    blocks = [f"B{i:05d}" for i in range(len(rate))]
    truth = pd.DataFrame(
        {"block_id": blocks, "citizens": rng.poisson(rate), "cvap": rng.poisson(rate / 2)}
    )

    def draws(spread: float) -> pd.DataFrame:
        values = rng.poisson(rate[:, None], (len(rate), 200))
        values = np.round(rate[:, None] + spread * (values - rate[:, None]))
        return pd.DataFrame(
            {
                "draw": np.tile(np.arange(200), len(rate)),
                "block_id": np.repeat(blocks, 200),
                "citizens": values.ravel(),
                "cvap": np.round(values.ravel() / 2),
            }
        )

    honest = pd.DataFrame(coverage_curve(draws(1.0), truth, rng, "honest"))
    narrow = pd.DataFrame(coverage_curve(draws(0.3), truth, rng, "narrow"))
    for level in LEVELS:
        got = honest[(honest["quantity"] == "citizens") & (honest["nominal"] == level)]
        assert got["empirical"].iloc[0] == pytest.approx(level, abs=0.04)
        too_narrow = narrow[(narrow["quantity"] == "citizens") & (narrow["nominal"] == level)]
        assert too_narrow["empirical"].iloc[0] < level - 0.15


def test_fixture_report_draws_the_multi_level_calibration(rendered):
    assert "from the block draws and the synthetic truth" in rendered.html
