"""The pipeline model on data simulated from the model: recovery, predictions, noisy tables,
baselines and evaluation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.baselines import census_style, record_rule, record_rule_labels
from models.evaluate import evaluate, randomized_pit
from models.latent_class import (
    build_model,
    diagnostics,
    em_start,
    modal_reference_start,
    sample,
)
from models.pipeline import (
    between_block_dispersion,
    build_problem,
    predict_blocks,
    sample_true_counts,
)
from models.testing import AGE_LABELS, DEFAULT_THETA, noisy_measurements, simulate

MODEL_CONFIG = {
    "prior": {"high": 8.0, "mid": 2.0, "low": 1.0},
    # The default configuration's hierarchy (block effects are optional and slow to mix).
    "levels": ["county", "tract"],
    "centered_levels": ["tract"],
    "prior_scales": {"intercept_mu": -2.0, "intercept_sd": 2.0, "county_sd": 1.0},
}


@pytest.fixture(scope="module")
def world():
    return simulate(
        np.random.default_rng(7),
        n_persons=6000,
        n_counties=2,
        tracts_per_county=4,
        blocks_per_tract=8,
    )


def _fit(problem, seed=1, draws=300):
    initvals = modal_reference_start(problem)  # as models.stage.fit_stage starts
    model = build_model(problem)
    idata, _ = sample(
        model,
        sampler="pymc",
        draws=draws,
        tune=draws,
        chains=2,
        cores=1,
        seed=seed,
        initvals=initvals,
    )
    return idata


@pytest.fixture(scope="module")
def exact_fit(world):
    # Non-centred tracts: this world has 4 tracts of ~750 persons per county, too little data for
    # the centred form (PyMC NUTS, seeds 1-3: 19, 5 and 2 divergences, R-hat up to 1.057;
    # non-centred: 0 divergences, R-hat 1.018-1.037). The pipeline picks centring by data strength.
    config = {**MODEL_CONFIG, "centered_levels": []}
    problem, lookup = build_problem(
        world["measurements"], world["public_counts"], world["patterns"], config, AGE_LABELS
    )
    return problem, lookup, _fit(problem)


def test_recovery_of_source_behaviour(exact_fit):
    problem, _, idata = exact_fit
    diag = diagnostics(idata)
    assert diag["max_rhat"] < 1.05, diag
    post = idata["posterior"]
    inside, total, worst = 0, 0, 0.0
    for s, source in enumerate(problem.source_names):
        n_classes = problem.n_classes
        draws = (
            post[f"theta_{source}"].to_numpy().reshape(-1, n_classes, len(problem.categories[s]))
        )
        for c, cat in enumerate(problem.categories[s]):
            true = np.array(DEFAULT_THETA[source][cat]) / np.array(
                [sum(v[k] for v in DEFAULT_THETA[source].values()) for k in range(n_classes)]
            )
            for k in range(n_classes):
                lo, hi = np.quantile(draws[:, k, c], [0.05, 0.95])
                inside += lo <= true[k] <= hi
                total += 1
                worst = max(worst, abs(draws[:, k, c].mean() - true[k]))
    # 90% intervals: allow sampling variation, but most must cover the generating values.
    assert inside / total >= 0.75, (inside, total)
    assert worst < 0.1


def test_block_predictions_cover_truth(world, exact_fit):
    problem, lookup, idata = exact_fit
    draws = predict_blocks(problem, lookup, idata, np.random.default_rng(3), n_draws=200)
    assert list(draws.columns) == ["draw", "block_id", "citizens", "noncitizens", "cvap"]
    assert all(draws[c].dtype == np.int64 for c in ("draw", "citizens", "noncitizens", "cvap"))
    pop = world["public_counts"].groupby("block_id")["population"].sum()
    totals = draws.assign(t=draws["citizens"] + draws["noncitizens"]).groupby("block_id")["t"]
    assert (totals.min() == pop.reindex(totals.min().index)).all()
    assert (draws["cvap"] <= draws["citizens"]).all()
    truth = world["truth_blocks"].set_index("block_id")
    wide = draws.pivot(index="block_id", columns="draw", values="citizens").reindex(truth.index)
    u = randomized_pit(wide.to_numpy(), truth["citizens"].to_numpy(), np.random.default_rng(0))
    coverage = ((u >= 0.05) & (u <= 0.95)).mean()
    assert 0.75 <= coverage <= 1.0, coverage


def test_noisy_tables_fit_and_predict(world):
    rng = np.random.default_rng(5)
    noisy = noisy_measurements(
        world["cells"], world["patterns"], rng, county_sigma=3.0, block_sigma=2.0
    )
    problem, lookup = build_problem(
        noisy, world["public_counts"], world["patterns"], MODEL_CONFIG, AGE_LABELS
    )
    assert len(problem.cell_count) == 0 and len(problem.aggregates) == 2
    block_table = next(a for a in problem.aggregates if a.geo_level == "block")
    # One overdispersion factor per coarse pattern of the block table, estimated from the noisy
    # measurements: at least 1, and finite.
    assert block_table.dispersion.shape == (len(problem.coarse_labels),)
    assert np.isfinite(block_table.dispersion).all() and (block_table.dispersion >= 1).all()
    idata = _fit(problem, seed=2, draws=200)
    draws = predict_blocks(problem, lookup, idata, np.random.default_rng(4), n_draws=100)
    pop = world["public_counts"].groupby("block_id")["population"].sum()
    totals = (draws["citizens"] + draws["noncitizens"]).groupby(draws["block_id"]).max()
    assert (totals == pop.reindex(totals.index)).all()
    truth = world["truth_blocks"].set_index("block_id")
    est = draws.groupby("block_id")["citizens"].mean().reindex(truth.index)
    county_est = est.groupby(truth["county_id"]).sum()
    county_true = truth.groupby("county_id")["citizens"].sum()
    assert ((county_est - county_true).abs() / county_true).max() < 0.05
    wide = draws.pivot(index="block_id", columns="draw", values="citizens").reindex(truth.index)
    u = randomized_pit(wide.to_numpy(), truth["citizens"].to_numpy(), np.random.default_rng(0))
    assert ((u >= 0.05) & (u <= 0.95)).mean() >= 0.7


def test_overdispersed_prior_leans_towards_the_measurement():
    rng = np.random.default_rng(1)
    population = np.full(4000, 30)
    share = np.full((4000, 1), 0.1)  # prior mean 3 persons
    measured = np.full((4000, 1), 8.0)
    noise = np.full((4000, 1), 1.0)
    binomial = sample_true_counts(rng, population, share, measured, noise).mean()
    wider = sample_true_counts(rng, population, share, measured, noise, dispersion=4.0).mean()
    assert 3.0 < binomial < wider < 8.0


def test_between_block_dispersion_recovers_overdispersion():
    rng = np.random.default_rng(2)
    n_blocks, population = 3000, 40
    # Blocks of one tract whose shares vary (beta, mean 0.2): variance well above the binomial.
    share = rng.beta(2.0, 8.0, size=n_blocks)
    counts = rng.binomial(population, share)
    noisy = counts + rng.normal(0, 1.5, size=n_blocks)
    groups = pd.DataFrame(
        {"tract_id": "T", "age_group": "18-34", "population": np.full(n_blocks, population)}
    )
    units = np.arange(n_blocks)
    dispersion = between_block_dispersion(
        noisy, np.full(n_blocks, 1.5), units, np.zeros(n_blocks, int), units, groups, 2
    )
    # Beta-binomial: 1 + (N - 1) / (a + b + 1) = 1 + 39 / 11 = 4.5.
    assert 3.8 < dispersion[0] < 5.2
    assert dispersion[1] == 1.0  # no rows: binomial


def _person_world(n=400, seed=9):
    rng = np.random.default_rng(seed)
    blocks = [f"1208600010010{i:02d}" for i in range(8)]
    status = rng.choice(
        ["native_citizen", "naturalized", "lpr", "unauthorized"], n, p=[0.7, 0.12, 0.1, 0.08]
    )
    persons = pd.DataFrame(
        {
            "person_id": [f"P{i:09d}" for i in range(n)],
            "household_id": [f"H{i // 3:09d}" for i in range(n)],
            "block_id": rng.choice(blocks, n),
            "age": rng.integers(0, 90, n),
            "status": status,
        }
    )
    persons["citizen"] = persons["status"].isin(["native_citizen", "naturalized"])
    rows = []
    for p, s in zip(persons["person_id"], persons["status"], strict=True):
        if s == "native_citizen" and rng.random() < 0.9:
            rows.append((p, "ssa_numident", "citizen", "1990-01-01"))
        if s == "naturalized":
            rows.append((p, "ssa_numident", "noncitizen", "1995-01-01"))
            if rng.random() < 0.7:
                rows.append((p, "uscis_naturalizations", "naturalized", "2010-01-01"))
        if s == "lpr":
            rows.append((p, "uscis_lpr", "lpr", "2012-01-01"))
        if rng.random() < 0.3:
            answer = {"native_citizen": "citizen", "naturalized": "naturalized"}.get(
                s, "noncitizen"
            )
            rows.append((p, "acs", answer, "2019-01-01"))
    evidence = pd.DataFrame(rows, columns=["person_id", "source", "category", "as_of"])
    evidence["as_of"] = pd.to_datetime(evidence["as_of"])
    evidence["match_probability"] = 0.99
    geography = pd.DataFrame({"block_id": blocks, "tract_id": "12086000100", "county_id": "12086"})
    truth = persons.merge(geography, on="block_id")
    return persons, evidence, geography, truth


def test_record_rule_and_census_style_baselines():
    persons, evidence, geography, truth = _person_world()
    frame = persons[["person_id", "household_id", "block_id", "age"]]
    labels = record_rule_labels(evidence, persons["person_id"], 0.9)
    # Naturalized without a USCIS record keep their stale Numident "noncitizen".
    nat = persons["status"] == "naturalized"
    assert (labels[nat] == False).sum() > 0  # noqa: E712
    assert labels[persons["status"] == "unauthorized"].isna().all()
    config = {
        "model": {
            "high_confidence_threshold": 0.9,
            "baselines": {"classifier": "logistic", "bootstrap_fits": 3, "draws": 30},
        },
        "age_groups": [0, 18, 35, 65],
        "reference_date": "2020-04-01",
    }
    rng = np.random.default_rng(1)
    rr = record_rule(evidence, frame, geography, config, rng, None)
    cs = census_style(evidence, frame, geography, config, rng)
    for draws in (rr, cs):
        assert draws["draw"].nunique() == 30
        tot = (draws["citizens"] + draws["noncitizens"]).groupby(draws["block_id"]).first()
        assert tot.sum() == len(persons)
    doc = evaluate({"record_rule": rr, "census_style": cs}, truth, frame, evidence, 0.9, rng)
    cost = doc["record_rule_cost"]
    assert cost["naturalized_labelled_noncitizen"] == int((nat & (labels == False)).sum())  # noqa: E712
    m = doc["methods"]["census_style"]["citizens"]
    assert 0 <= m["coverage90_pit"] <= 1 and m["block_mae"] >= 0
    assert set(m["counties"]) == {"12086"}


@pytest.mark.parametrize("option", ["source_age_effects", "withheld_classes"])
def test_numpy_mirror_matches_the_graph(world, option):
    """Prediction's numpy mirror reads the same probabilities the fitted graph used (with
    age-varying sources; with withheld classes, whose logits are offsets from their parents'
    and have no tract effects of their own)."""
    import pytensor

    from models.latent_class import class_probs_np, parameter_names, pattern_lik_np

    config = {**MODEL_CONFIG, option: True}
    problem, _ = build_problem(
        world["measurements"], world["public_counts"], world["patterns"], config, AGE_LABELS
    )
    model = build_model(problem)
    rng = np.random.default_rng(11)
    point = {k: v + rng.normal(0, 0.3, v.shape) for k, v in model.initial_point().items()}
    names = [n for n in parameter_names(problem) if n in model.named_vars]
    graphs = model.replace_rvs_by_values([model[n] for n in names] + [model["cells_loglik"]])
    fn = pytensor.function(model.value_vars, graphs, mode="FAST_COMPILE", on_unused_input="ignore")
    outs = fn(*[point[v.name] for v in model.value_vars])
    draws = {n: np.asarray(v)[None] for n, v in zip(names, outs[:-1], strict=True)}
    if option == "source_age_effects":
        assert problem.n_source_ages == len(AGE_LABELS)
        assert all(f"theta_{s}_by_age" in names for s in ("ssa_numident", "acs"))
        # Deviations moved the per-age probabilities away from the pooled ones.
        by_age = draws["theta_ssa_numident_by_age"][0]
        assert np.abs(by_age - draws["theta_ssa_numident"][0][None]).max() > 1e-3
        np.testing.assert_allclose(by_age.sum(axis=-1), 1.0, atol=1e-9)
    else:
        # Tract effects for the three non-reference main classes only.
        assert draws["eta_tract"].shape[-1] == 3 and draws["intercept"].shape[1] == 5
    pi = class_probs_np(problem, draws, 0)
    lik = pattern_lik_np(problem, draws, 0)
    cell_lik = lik[problem.group_source_age[problem.cell_group], problem.cell_pattern]
    mix = (pi[problem.cell_group] * cell_lik).sum(axis=1)
    np.testing.assert_allclose(np.dot(problem.cell_count, np.log(mix)), outs[-1], rtol=1e-9)


def test_dirichlet_multinomial_split_has_the_requested_variance():
    from models.latent_class import dirichlet_multinomial_rows

    rng = np.random.default_rng(3)
    rows = 40_000
    n = np.full(rows, 30)
    probs = np.tile([0.7, 0.2, 0.1], (rows, 1))
    factor = np.where(np.arange(rows) < rows // 2, 2.5, 1.0)
    draws = dirichlet_multinomial_rows(rng, n, probs, factor)
    assert (draws.sum(axis=1) == n).all() and (draws >= 0).all()
    binomial = 30 * 0.7 * 0.3
    mixed, plain = draws[: rows // 2, 0], draws[rows // 2 :, 0]
    assert abs(mixed.mean() - 21.0) < 0.1 and abs(plain.mean() - 21.0) < 0.1
    assert mixed.var() / binomial == pytest.approx(2.5, rel=0.05)
    assert plain.var() / binomial == pytest.approx(1.0, rel=0.05)
    # A row with fewer persons than the factor cannot be overdispersed: multinomial.
    small = dirichlet_multinomial_rows(rng, np.full(rows, 2), probs, 2.5)
    assert small[:, 0].var() / (2 * 0.7 * 0.3) == pytest.approx(1.0, rel=0.05)


def test_noisy_fits_centre_a_level_only_when_the_noise_is_small():
    from models.pipeline import fit_centered_levels

    # Two tracts of 2 blocks x 2 age groups, 100 persons per group: 400 persons per tract.
    groups = pd.DataFrame(
        {
            "block_id": np.repeat(["b1", "b2", "b3", "b4"], 2),
            "tract_id": np.repeat(["t1", "t2"], 4),
            "county_id": "c1",
            "age_group": ["0-17", "18+"] * 4,
            "population": 100,
        }
    )

    def measured(sigma: float) -> pd.DataFrame:
        # Six coarse patterns per block x age: 24 rows per tract.
        rows = groups[["block_id", "age_group"]].loc[groups.index.repeat(6)]
        return pd.DataFrame(
            {"geo_level": "block", "geo_id": rows["block_id"].to_numpy(), "sigma": sigma}
        )

    config = {"centered_levels": ["tract"], "noisy_centering_threshold": 0.7}
    assert fit_centered_levels(config, measured(0.0), groups) == ("tract",)
    # 400 persons / (24 x 4.0) = 4.2 persons per unit of noise variance: centred.
    assert fit_centered_levels(config, measured(2.0), groups) == ("tract",)
    # 400 / (24 x 36) = 0.46: non-centred.
    assert fit_centered_levels(config, measured(6.0), groups) == ()
    fixed = {**config, "noisy_centered_levels": ["tract"]}
    assert fit_centered_levels(fixed, measured(6.0), groups) == ("tract",)


def test_noisy_centring_rule_accepts_blocks_as_the_level():
    from models.pipeline import fit_centered_levels

    groups = pd.DataFrame(
        {
            "block_id": ["b1", "b2"],
            "tract_id": "t1",
            "county_id": "c1",
            "age_group": "18+",
            "population": 100,
        }
    )
    noisy = pd.DataFrame({"geo_level": "block", "geo_id": ["b1", "b2"], "sigma": 1.0})
    # 100 persons per unit of noise variance in each block: centred.
    assert fit_centered_levels({"centered_levels": ["block"]}, noisy, groups) == ("block",)


def test_withheld_classes_see_nothing_in_dhs_sources_and_share_the_rest(world):
    from models.latent_class import em_estimates
    from models.pipeline import WITHHOLDING_SOURCES, citizen_class_indices

    config = {**MODEL_CONFIG, "withheld_classes": True}
    problem, _ = build_problem(
        world["measurements"], world["public_counts"], world["patterns"], config, AGE_LABELS
    )
    names = problem.class_names
    assert names[4:] == ["naturalized_withheld", "noncitizen_withheld"]
    assert citizen_class_indices(names) == [0, 1, 4]
    theta, share = em_estimates(problem)
    for s, source in enumerate(problem.source_names):
        none = problem.categories[s].index("none")
        if source in WITHHOLDING_SOURCES:
            # Only "none" is possible (the rest keeps the false-link allowance).
            assert theta[s][4, none] > 0.999 and theta[s][5, none] > 0.999
        else:
            np.testing.assert_array_equal(theta[s][4], theta[s][1])
            np.testing.assert_array_equal(theta[s][5], theta[s][2])
    # The model builds, and its start point is finite.
    model = build_model(problem)
    start = em_start(problem, estimates=(theta, share))
    point = model.initial_point()
    point.update({name: start[name] for name in ("theta_logratio", "intercept")})
    logp = model.compile_logp()(point)
    assert np.isfinite(logp)


@pytest.mark.parametrize(
    ("noisy_setting", "exact_classes", "noisy_classes"),
    [(False, 6, 4), (None, 6, 6), (True, 6, 6)],
)
def test_noisy_refit_has_its_own_withheld_classes_switch(
    world, noisy_setting, exact_classes, noisy_classes
):
    """``noisy_withheld_classes`` applies to noisy measurements only (None: follow the exact)."""
    config = {**MODEL_CONFIG, "withheld_classes": True, "noisy_withheld_classes": noisy_setting}
    noisy = noisy_measurements(world["cells"], world["patterns"], np.random.default_rng(3))
    sizes = []
    for measurements in (world["measurements"], noisy):
        problem, _ = build_problem(
            measurements, world["public_counts"], world["patterns"], config, AGE_LABELS
        )
        sizes.append(len(problem.class_names))
    assert sizes == [exact_classes, noisy_classes]
