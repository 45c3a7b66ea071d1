"""Publication: consistency of the published tables, no person-level content, same bytes."""

from __future__ import annotations

import inspect
import io
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline_common.config import load_config
from pipeline_common.errors import InputError
from privacy.evaluate import evaluate_published
from privacy.measure import measure
from privacy.publish import (
    hierarchical_rounding,
    interval,
    publish,
    round_to_totals,
    summarize,
    write_published,
)
from privacy.testing import fixture_draws, fixture_world

SSN = re.compile(rb"\b\d{3}-?\d{2}-?\d{4}\b")
A_NUMBER = re.compile(rb"\bA\d{9}\b")
PERSON_ID = re.compile(rb"P\d{9}")
HOUSEHOLD_ID = re.compile(rb"H\d{9}")
RECORD_ID = re.compile(rb"\b[A-Z]{2,6}-\d{9}\b")
DATE = re.compile(rb"\b(\d{4}-\d{2}-\d{2})\b")


def config_with(**privacy):
    return load_config(overrides={"run": "unit", "privacy": privacy})


@pytest.fixture(scope="module")
def world():
    world = fixture_world(np.random.default_rng(5))
    world["draws"] = fixture_draws(np.random.default_rng(6), world["persons"], draws=200)
    return world


def build(world, config):
    _, counts, ledger = measure(world["cells"], world["patterns"], config, world["geography"])
    diagnostics = {
        "max_rhat": 1.01,
        "min_ess_bulk": 412.0,
        "divergences": 0,
        "sampling_seconds": 12.3,
    }
    return publish(
        world["draws"], counts, ledger, diagnostics, config, squares(world["geography"])
    ), counts


def squares(geography):
    """The fixture geography with unit squares in a row (as world/geography.parquet has)."""
    return geography.assign(x=np.arange(len(geography)) + 0.5, y=0.5, width=1.0, height=1.0)


@pytest.fixture(scope="module")
def published(world, tmp_path_factory):
    files, counts = build(world, config_with())
    directory = tmp_path_factory.mktemp("published")
    write_published(files, directory)
    return directory, files, counts


def test_published_files_hold_no_person_level_data(world, published):
    directory, _, _ = published
    persons = world["persons"]
    names = {n.encode() for n in set(persons["first_name"]) | set(persons["last_name"])}
    dobs = set(persons["dob"].dt.strftime("%Y-%m-%d").str.encode("ascii"))
    paths = sorted(p for p in directory.rglob("*") if p.is_file())
    assert {p.name for p in paths} == {
        "blocks.csv",
        "blocks.parquet",
        "draws.parquet",
        "tracts.csv",
        "counties.csv",
        "cvap_blocks.csv",
        "cvap_block_groups.csv",
        "cvap_tracts.csv",
        "blocks.geojson",
        "metadata.json",
    }
    for path in paths:
        data = path.read_bytes()
        if path.suffix == ".parquet":
            # Scan the decoded values too (parquet pages are compressed).
            data += pd.read_parquet(path).to_csv(index=False).encode()
        upper = data.upper()
        assert not any(name in upper for name in names), path
        for pattern in (SSN, A_NUMBER, PERSON_ID, HOUSEHOLD_ID, RECORD_ID):
            assert not pattern.search(data), (path, pattern.pattern)
        assert not set(DATE.findall(data)) & dobs, path
    n_blocks = len(world["geography"])
    for path in paths:
        if path.suffix == ".csv" or path.name == "blocks.parquet":
            table = pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)
            assert len(table) <= n_blocks < len(persons), path
    draws = pd.read_parquet(directory / "draws.parquet")
    assert draws.groupby(["draw", "block_id"]).size().max() == 1


def test_published_numbers_are_consistent(world, published):
    directory, _, _ = published
    blocks = pd.read_csv(
        directory / "blocks.csv", dtype={"block_id": str, "tract_id": str, "county_id": str}
    )
    draws = pd.read_parquet(directory / "draws.parquet")
    tracts = pd.read_csv(directory / "tracts.csv", dtype={"tract_id": str, "county_id": str})
    counties = pd.read_csv(directory / "counties.csv", dtype={"county_id": str})
    assert len(blocks) == world["persons"]["block_id"].nunique() == len(world["geography"]) - 1
    assert draws["block_id"].nunique() == len(world["geography"])  # the empty block as zeros
    assert (blocks["citizens_est"] + blocks["noncitizens_est"] == blocks["population"]).all()
    assert (blocks["cvap_est"] <= blocks["citizens_est"]).all()
    for q in ("citizens", "noncitizens", "cvap"):
        assert (blocks[f"{q}_lo90"] <= blocks[f"{q}_est"]).all()
        assert (blocks[f"{q}_est"] <= blocks[f"{q}_hi90"]).all()
        assert (blocks[f"{q}_lo90"] >= 0).all()
        assert (blocks.groupby("tract_id")[f"{q}_est"].sum().values == tracts[f"{q}_est"]).all()
        assert (blocks.groupby("county_id")[f"{q}_est"].sum().values == counties[f"{q}_est"]).all()
    population = draws["block_id"].map(blocks.set_index("block_id")["population"]).fillna(0)
    assert (draws["citizens"] + draws["noncitizens"] == population).all()
    assert (draws["cvap"] <= draws["citizens"]).all() and (
        draws[["citizens", "cvap"]] >= 0
    ).all().all()
    assert set(blocks["reliability"]) <= {"high", "medium", "low", "empty"}
    assert (blocks["population"] > 0).all()
    # County intervals come from summed draws: much narrower than summed block intervals.
    summed_widths = blocks.groupby("county_id").apply(
        lambda g: (g["citizens_hi90"] - g["citizens_lo90"]).sum(), include_groups=False
    )
    widths = counties.set_index("county_id").eval("citizens_hi90 - citizens_lo90")
    assert (widths < summed_widths.loc[widths.index]).all()


def test_metadata_states_the_guarantee(published):
    _, files, _ = published
    meta = json.loads(files["metadata.json"])
    privacy = meta["privacy"]
    assert meta["privacy_protected"] is True
    assert privacy["unit"] == "person" and "change-one-pattern" in privacy["neighbouring_relation"]
    assert privacy["rho_total"] <= privacy["rho_budget"] * (1 + 1e-9)
    assert privacy["epsilon_at_delta"] == pytest.approx(10.03, abs=0.01)
    assert (
        privacy["noise_source"] == "seeded"
        and "synthetic data ONLY" in privacy["noise_source_note"]
    )
    assert {t["name"] for t in privacy["tables"]} == {"county_full", "block_coarse"}
    assert len(meta["config_hash"]) == 64 and meta["seed"] == 20200401
    assert "opendp" in meta["software"]
    assert "sampling_seconds" not in meta["diagnostics"]
    assert meta["diagnostics"]["max_rhat"] == 1.01


def test_same_seed_same_published_bytes(world, published):
    _, files, _ = published
    again, _ = build(world, config_with())
    assert files.keys() == again.keys()
    assert all(files[name] == again[name] for name in files)


def test_mode_none_is_labelled_unprotected(world):
    files, _ = build(world, config_with(mode="none"))
    meta = json.loads(files["metadata.json"])
    assert meta["privacy_protected"] is False
    assert "NO disclosure avoidance" in meta["warning"]
    blocks = pd.read_csv(io.BytesIO(files["blocks.csv"]))
    assert not blocks["privacy_protected"].any()


def test_publish_refuses_draws_missing_a_populated_block(world):
    config = config_with()
    _, counts, ledger = measure(world["cells"], world["patterns"], config, world["geography"])
    first_block = world["draws"]["block_id"].iloc[0]
    draws = world["draws"][world["draws"]["block_id"] != first_block]
    with pytest.raises(InputError, match=r"block_draws.*block_id.*missing"):
        publish(draws, counts, ledger, {}, config)


def test_intervals_from_draws():
    draws = np.repeat(np.arange(20)[:, None], 2, axis=1)  # uniform on 0..19
    low, high = interval(draws, "equal_tailed")
    assert list(low) == [0, 0] and list(high) == [18, 18]
    # P(0)=.5, P(1)=.3, P(2)=.15, P(3)=.05: mid-distribution .25, .65, .875, .975 -> [0, 2].
    skewed = np.repeat([0, 1, 2, 3], [50, 30, 15, 5])[:, None]
    assert [int(v[0]) for v in interval(skewed, "mid_p")] == [0, 2]
    point = np.zeros((100, 1), dtype=np.int64)
    assert [int(v[0]) for v in interval(point, "mid_p")] == [0, 0]


def test_round_to_totals_hits_each_group_total_with_floors_and_ceilings():
    rng = np.random.default_rng(3)
    values = rng.gamma(0.5, 2.0, size=500)
    group = rng.integers(0, 7, size=500)
    totals = np.rint(np.bincount(group, weights=values, minlength=7))
    rounded = round_to_totals(values, group, totals)
    assert (np.bincount(group, weights=rounded, minlength=7) == totals).all()
    assert ((rounded == np.floor(values)) | (rounded == np.ceil(values))).all()


def test_hierarchical_rounding_keeps_every_level_near_its_own_mean():
    rng = np.random.default_rng(4)
    means = rng.gamma(0.3, 1.0, size=600)  # rare counts: most block means well below one
    tract = np.sort(rng.integers(0, 30, size=600))
    county_of_tract = np.arange(30) // 10
    blocks = hierarchical_rounding(means, tract, county_of_tract)
    tract_sum = np.bincount(tract, weights=blocks, minlength=30)
    assert np.abs(tract_sum - np.bincount(tract, weights=means, minlength=30)).max() < 1.0
    county_mean = np.bincount(county_of_tract, weights=np.bincount(tract, weights=means))
    county_sum = np.bincount(county_of_tract, weights=tract_sum)
    assert np.abs(county_sum - county_mean).max() <= 0.5


def test_point_estimates_add_up_to_the_posterior_mean_of_a_rare_total():
    # 200 blocks of 20 persons, each with about 0.4 noncitizens: every block's median is 0, so
    # summed block medians would say 0 noncitizens where the posterior mean total is about 80.
    rng = np.random.default_rng(8)
    population = np.full(200, 20)
    noncitizens = rng.poisson(0.4, size=(400, 200))
    citizens = population[None, :] - noncitizens
    draws = {"citizens": citizens, "noncitizens": noncitizens, "cvap": citizens // 2}
    tract = np.arange(200) // 20
    out = summarize(draws, population, population // 2, "mid_p", tract, np.zeros(10, int))
    total = noncitizens.sum(axis=1)
    assert abs(out["noncitizens_est"].sum() - total.mean()) <= 1.0
    assert np.quantile(total, 0.05) <= out["noncitizens_est"].sum() <= np.quantile(total, 0.95)
    assert (out["noncitizens_lo90"] <= out["noncitizens_est"]).all()
    assert (out["noncitizens_est"] <= out["noncitizens_hi90"]).all()


def test_evaluation_of_published_tables(world, published):
    directory, _, _ = published
    blocks = pd.read_csv(
        directory / "blocks.csv", dtype={"block_id": str, "tract_id": str, "county_id": str}
    )
    truth = world["persons"][["person_id", "block_id", "age", "citizen"]]
    result = evaluate_published(blocks, truth, world["persons"][["person_id", "block_id"]])
    assert result["population_matches_truth_share"] == 1.0
    for quantity in ("citizens", "noncitizens", "cvap"):
        assert 0.0 <= result["block"][quantity]["coverage90"] <= 1.0
    # The fixture draws are centred on the truth: citizens should mostly be covered.
    assert result["block"]["citizens"]["coverage90"] >= 0.75
    assert set(result["county"]["citizens"]["relative_error"]) == set(blocks["county_id"])


TARGETS = {"rhat_max": 1.01, "ess_min": 400, "max_divergences": 0}
FAILURES = ["max R-hat 1.023 > 1.01", "min bulk ESS 79 < 400", "min tail ESS 46 < 400"]
UNCONVERGED = {
    "max_rhat": 1.023,
    "min_ess_bulk": 79.0,
    "min_ess_tail": 46.0,
    "divergences": 0,
    "converged": False,
    "convergence_targets": TARGETS,
    "convergence_failures": FAILURES,
    "attempts": [{"seconds": 1.0}, {"seconds": 2.0}, {"seconds": 4.0}],
}


def test_metadata_says_when_the_published_fit_did_not_converge(world):
    config = config_with()
    _, counts, ledger = measure(world["cells"], world["patterns"], config, world["geography"])
    files = publish(world["draws"], counts, ledger, UNCONVERGED, config)
    meta = json.loads(files["metadata.json"])
    assert meta["converged"] is False
    assert list(meta["convergence"]) == ["published_fit"]
    published = meta["convergence"]["published_fit"]
    assert published["fit"] == "privacy refit" and published["converged"] is False
    assert published["failures"] == FAILURES and published["attempts"] == 3
    assert published["targets"] == TARGETS
    assert meta["diagnostics"]["convergence_failures"] == FAILURES
    assert "attempts" not in meta["diagnostics"]  # per-attempt timings stay out
    warning = meta["convergence_warning"]
    assert "The published privacy refit did not converge after 3 sampling attempts" in warning
    assert "max R-hat 1.023 > 1.01" in warning and "exact fit" not in warning
    # A fit that met its targets: no warning.
    good = {**UNCONVERGED, "converged": True, "convergence_failures": [], "max_rhat": 1.004}
    files = publish(world["draws"], counts, ledger, good, config)
    meta = json.loads(files["metadata.json"])
    assert meta["converged"] is True and "convergence_warning" not in meta
    # Diagnostics written before the verdict existed are judged against model.convergence.
    old = {"max_rhat": 1.004, "min_ess_bulk": 900.0, "min_ess_tail": 700.0, "divergences": 3}
    meta = json.loads(publish(world["draws"], counts, ledger, old, config)["metadata.json"])
    assert meta["convergence"]["published_fit"]["failures"] == ["3 divergences > 0"]
    assert meta["converged"] is False


def test_metadata_holds_nothing_of_the_exact_fit_when_the_refit_is_published(world):
    """published/ is post-processing of the privacy measurements only: the exact fit (read
    from the confidential exact tables) leaves no entry there, not even its verdict."""
    assert "exact_diagnostics" not in inspect.signature(publish).parameters
    config = config_with()
    _, counts, ledger = measure(world["cells"], world["patterns"], config, world["geography"])
    good = {**UNCONVERGED, "converged": True, "convergence_failures": [], "max_rhat": 1.004}
    for diagnostics in (UNCONVERGED, good):
        meta = json.loads(
            publish(world["draws"], counts, ledger, diagnostics, config)["metadata.json"]
        )
        assert meta["privacy_protected"] is True
        assert set(meta["convergence"]) == {"published_fit"}
        assert meta["convergence"]["published_fit"]["fit"] == "privacy refit"
        assert "exact" not in json.dumps(meta["convergence"]).lower()
        assert "exact fit" not in meta.get("convergence_warning", "")
    # Under privacy mode none the published fit is the exact fit (metadata labelled unprotected).
    config = config_with(mode="none")
    _, counts, ledger = measure(world["cells"], world["patterns"], config, world["geography"])
    meta = json.loads(publish(world["draws"], counts, ledger, UNCONVERGED, config)["metadata.json"])
    assert meta["privacy_protected"] is False
    assert set(meta["convergence"]) == {"published_fit"}
    assert meta["convergence"]["published_fit"]["fit"] == "exact fit"
    assert "The published exact fit did not converge" in meta["convergence_warning"]


def test_publish_rule_does_not_read_the_exact_fit():
    """The Snakemake rule declares (and its script reads) only the published fit's files."""
    rules = Path(__file__).resolve().parent.parent / "workflow"
    text = (rules / "rules" / "privacy.smk").read_text()
    rule = text[text.index("rule publish:") : text.index("rule evaluate_published:")]
    inputs = rule[rule.index("input:") : rule.index("output:")]
    assert "model/diagnostics.json" not in inputs and "exact" not in inputs
    assert 'published_fit("diagnostics.json")' in inputs
    script = (rules / "scripts" / "privacy_publish.py").read_text()
    assert "exact" not in script and "model/diagnostics.json" not in script


def test_reliability_needs_size_for_high():
    """A zero-width interval on a 10-49-person block is not 'high' (issue 20)."""
    from privacy.publish import reliability

    rule = load_config()["privacy"]["reliability"]
    table = pd.DataFrame(
        {
            "population": [0, 5, 20, 20, 60, 60],
            "citizens_lo90": [0, 5, 20, 14, 60, 40],
            "citizens_hi90": [0, 5, 20, 20, 60, 60],
            "cvap_lo90": [0, 3, 15, 10, 45, 30],
            "cvap_hi90": [0, 3, 15, 15, 45, 45],
        }
    )
    flags = reliability(table, rule).tolist()
    # empty; too small; zero width but small -> medium; 30% wide -> medium; zero width and
    # large -> high; a third of the population wide -> low.
    assert flags == ["empty", "low", "medium", "medium", "high", "low"]
