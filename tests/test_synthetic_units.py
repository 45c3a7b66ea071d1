"""Unit tests of the synthetic stage's building blocks (no world generation)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline_common.config import load_config
from synthetic import errors
from synthetic.geography import _hilbert_xy, build_blocks, county_targets, load_county_table
from synthetic.identities import (
    COUNTRIES,
    LOCALES,
    country_weights,
    make_a_numbers,
    make_itins,
    make_ssns,
    name_pools,
    sample_identities,
    unique_integers,
)
from synthetic.population import (
    HOUSEHOLD_TYPES,
    _age_on,
    _household_composition,
    county_status_mix,
    household_type_probabilities,
)


@pytest.fixture(scope="module")
def cfg() -> dict:
    return load_config()["synthetic"]


def test_county_status_mix(cfg):
    national_noncit = (
        cfg["status"]["lpr"] + cfg["status"]["temporary"] + cfg["status"]["unauthorized"]
    )
    mix = county_status_mix(national_noncit, cfg["status"])
    # At the national noncitizen level the mix is the national default.
    assert mix[1:] == pytest.approx(
        [cfg["status"][k] for k in ("naturalized", "lpr", "temporary", "unauthorized")]
    )
    assert mix.sum() == pytest.approx(1.0)
    high = county_status_mix(0.25, cfg["status"])
    assert high[2:].sum() == pytest.approx(0.25)
    assert high[1] > mix[1]  # naturalized scale with the foreign-born level
    assert high[2] / high[4] == pytest.approx(cfg["status"]["lpr"] / cfg["status"]["unauthorized"])


@pytest.mark.parametrize("child_share", [0.15, 0.22, 0.3])
def test_household_types_solve_child_share(cfg, child_share):
    hh = cfg["households"]
    p = household_type_probabilities(child_share, hh)
    comp = _household_composition(hh)
    assert p.sum() == pytest.approx(1.0) and (p >= 0).all()
    expected = (p * comp["children"]).sum() / (p * (comp["adults"] + comp["children"])).sum()
    assert expected == pytest.approx(child_share, abs=1e-9)
    assert len(p) == len(HOUSEHOLD_TYPES)


def test_blocks_ids_sizes_and_propensity(cfg):
    table = load_county_table("data")
    targets = county_targets(table, ["12086", "21111"], 0.01, "t")
    blocks = build_blocks(targets, cfg["geography"], np.random.default_rng(3))
    for row in targets.itertuples():
        assert (
            blocks.loc[blocks["county_id"] == row.county_id, "target_persons"].sum() == row.persons
        )
    assert blocks["block_id"].str.fullmatch(r"\d{15}").all() and blocks["block_id"].is_unique
    assert (blocks["block_id"].str[:11] == blocks["tract_id"]).all()
    assert blocks["target_persons"].min() >= cfg["geography"]["block_size_min"]
    # Gamma x lognormal propensities: positive, right-skewed (a long tail of high blocks).
    assert (blocks["propensity"] > 0).all()
    assert blocks["propensity"].median() < blocks["propensity"].mean()
    tract_sizes = blocks.groupby("tract_id").size()
    per_tract = (
        cfg["geography"]["blocks_per_block_group"] * cfg["geography"]["block_groups_per_tract"]
    )
    for _, sizes in tract_sizes.groupby(tract_sizes.index.str[:5]):
        assert (sizes.iloc[:-1] == per_tract).all() and sizes.iloc[-1] <= per_tract


def test_hilbert_steps_are_adjacent():
    x, y = _hilbert_xy(4, np.arange(256))
    steps = np.abs(np.diff(x)) + np.abs(np.diff(y))
    assert (steps == 1).all()
    assert len(set(zip(x.tolist(), y.tolist(), strict=True))) == 256


def test_age_on_reference_date():
    dob = np.array(["2000-04-01", "2000-04-02", "1999-12-31", "2020-04-01"], dtype="datetime64[D]")
    assert _age_on(dob, np.datetime64("2020-04-01")).tolist() == [20, 19, 20, 0]


def test_identifier_makers():
    rng = np.random.default_rng(1)
    ssns = pd.Series(make_ssns(5000, rng))
    assert ssns.is_unique and ssns.str.fullmatch(r"9\d\d-(0[1-9]|[1-4]\d)-\d{4}").all()
    assert not (ssns.str[-4:] == "0000").any()
    itins = pd.Series(make_itins(500, rng))
    assert itins.str.fullmatch(r"9\d\d-(7\d|8[0-8])-\d{4}").all()
    a_numbers = pd.Series(make_a_numbers(500, rng))
    assert a_numbers.str.fullmatch(r"A\d{9}").all() and a_numbers.is_unique
    values = unique_integers(1000, 3000, rng)
    assert len(np.unique(values)) == 1000 and values.max() < 3000
    with pytest.raises(ValueError):
        unique_integers(10, 12, rng)


def test_name_pools_are_latin_script():
    for locale in LOCALES:
        pools = name_pools(locale)
        for names, probs in pools.values():
            assert probs.sum() == pytest.approx(1.0)
            # Latin script (accents allowed): no CJK, Cyrillic, Devanagari.
            assert all(
                all(
                    ord(ch) < 0x250 or ch in "’ạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹđĐƯưƠơ"
                    for ch in n
                )
                for n in names
            ), locale
    assert name_pools("en_US") is name_pools("en_US")  # read once, cached


def test_country_weights():
    base = country_weights({})
    tilted = country_weights({"Cuba": 10.0})
    cuba = [c[0] for c in COUNTRIES].index("Cuba")
    assert base.sum() == pytest.approx(1.0) and tilted[cuba] > 5 * base[cuba]
    with pytest.raises(ValueError, match="Atlantis"):
        country_weights({"Atlantis": 2.0})


def test_sample_identities_shape():
    sample = sample_identities(2000, np.random.default_rng(5))
    assert len(sample) == 2000 and sample.notna().all().all()
    assert sample["birth_country"].eq("United States").mean() > 0.7


# --- record errors ---------------------------------------------------------------------------


def test_typo_is_one_edit():
    rng = np.random.default_rng(0)
    names = np.array(["Gonzalez"] * 400, dtype=object)
    edited = errors.apply_typos(names, 1.0, rng)
    changed = edited != names
    assert changed.mean() > 0.9  # a transposition of equal letters can leave it unchanged
    for value in edited:
        assert value[0] == "G" and abs(len(value) - len("Gonzalez")) <= 1


def test_nicknames_and_nulls():
    rng = np.random.default_rng(0)
    first = np.array(["William", "Zoe"] * 100, dtype=object)
    out = errors.apply_nicknames(first, 1.0, rng)
    assert set(out) == {"Bill", "Zoe"}
    dates = np.array(["2000-01-05"] * 1000, dtype="datetime64[D]")
    nulled = errors.null_out(dates, 0.3, rng)
    assert 0.25 < np.isnat(nulled).mean() < 0.35


def test_swap_day_month_only_when_valid():
    rng = np.random.default_rng(0)
    dob = np.array(["1990-03-07", "1990-03-25", "1990-05-05"], dtype="datetime64[D]")
    out = errors.swap_day_month(dob, 1.0, rng)
    assert out.tolist()[0] == np.datetime64("1990-07-03").astype(object)
    assert out[1] == dob[1] and out[2] == dob[2]


def test_wrong_ssn_digit_keeps_synthetic_shape():
    rng = np.random.default_rng(0)
    ssns = make_ssns(3000, rng)
    out = pd.Series(errors.wrong_ssn_digit(ssns, 1.0, rng))
    assert (out != pd.Series(ssns)).all()
    assert out.str.fullmatch(r"9\d\d-(0[1-9]|[1-4]\d)-\d{4}").all()
    assert not (out.str[-4:] == "0000").any()
    differing = [
        sum(a != b for a, b in zip(x, y, strict=True)) for x, y in zip(ssns, out, strict=True)
    ]
    assert set(differing) <= {1, 2}  # one digit (two only when a 0000 serial was avoided)
