"""Data-use policy: withheld records never reach the linker; 1367 can never be switched off."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

import linkage.link
from linkage.policy import apply_policy, check_policies, resolve_policy
from linkage.stage import link_source
from pipeline_common.config import load_config
from pipeline_common.errors import InputError
from tests.fixtures.linkage_world import make_world


def _config(**linkage_keys) -> dict:
    return {"seed": 7, "reference_date": "2020-04-01", "linkage": {**linkage_keys}}


def test_policy_without_1367_is_refused_naming_the_key():
    config = _config()
    config["synthetic"] = {
        "sources": {"cbp_ice": {"policy": {"authority": "x", "withhold": ["refugee_asylee"]}}}
    }
    with pytest.raises(InputError) as caught:
        resolve_policy(config, "cbp_ice")
    assert caught.value.field == "synthetic.sources.cbp_ice.policy.withhold"
    assert "protected_1367" in str(caught.value)
    with pytest.raises(InputError, match="synthetic.sources.cbp_ice.policy.withhold"):
        check_policies(config, ["ssa_numident", "cbp_ice"])


def test_default_withhold_without_1367_is_refused_naming_the_key():
    # No synthetic policy for the source: the linkage stage's own default applies.
    config = _config(default_withhold=["refugee_asylee"])
    with pytest.raises(InputError) as caught:
        check_policies(config, ["uscis_lpr"])
    assert caught.value.field == "linkage.default_withhold"


def test_shipped_configs_withhold_1367_everywhere():
    config = load_config()
    policies = check_policies(config, list(config["synthetic"].get("sources", {})) or ["acs"])
    assert all("protected_1367" in p.withhold for p in policies.values())
    # The synthetic schema refuses this too; the linkage check holds even without it.
    broken = copy.deepcopy(config)
    broken["synthetic"]["sources"]["uscis_lpr"]["policy"]["withhold"] = ["refugee_asylee"]
    with pytest.raises(InputError, match="synthetic.sources.uscis_lpr.policy.withhold"):
        check_policies(broken, ["uscis_lpr"])


def test_waiver_releases_refugees_but_never_1367():
    policy = resolve_policy(_config(refugee_asylee_waiver=True), "uscis_lpr")
    assert policy.withhold == ("protected_1367",)
    policy = resolve_policy(_config(), "uscis_lpr")
    assert set(policy.withhold) == {"protected_1367", "refugee_asylee"}


def test_apply_policy_counts_and_drops_fields():
    records = pd.DataFrame(
        {
            "record_id": ["L-1", "L-2", "L-3", "L-4"],
            "first_name": ["A", "B", "C", "D"],
            "secret_note": ["x", "y", "z", "w"],
            "protected_1367": [True, False, False, True],
            "refugee_asylee": [False, True, False, True],
        }
    )
    config = _config()
    config["synthetic"] = {
        "sources": {
            "uscis_lpr": {
                "policy": {
                    "authority": "8 U.S.C. 1367; 8 CFR 208.6",
                    "permitted_fields": ["first_name"],
                    "withhold": ["protected_1367", "refugee_asylee"],
                }
            }
        }
    }
    shared, counts = apply_policy(records, resolve_policy(config, "uscis_lpr"))
    assert shared["record_id"].tolist() == ["L-3"]
    assert list(shared.columns) == ["record_id", "first_name"]
    assert counts["withheld"] == {"protected_1367": 2, "refugee_asylee": 2}
    assert counts["withheld_total"] == 3 and counts["records_shared"] == 1
    assert counts["fields_dropped"] == ["secret_note"]


def test_dhs_source_without_flag_column_is_refused():
    records = pd.DataFrame({"record_id": ["C-1"], "first_name": ["A"]})
    with pytest.raises(InputError, match="protected_1367"):
        apply_policy(records, resolve_policy(_config(), "cbp_ice"), "cbp_ice.parquet")


def test_withheld_records_never_reach_the_linker(monkeypatch):
    world = make_world(400, np.random.default_rng(11))
    records = world["cbp_ice"].copy()
    records.loc[records.index[:5], "protected_1367"] = True
    records.loc[records.index[5:9], "refugee_asylee"] = True
    withheld_ids = set(records.loc[records.index[:9], "record_id"])
    seen: list[pd.DataFrame] = []
    real_register = linkage.link.register_for_splink

    def spy(db_api, table, name):
        seen.append(table.copy())
        return real_register(db_api, table, name)

    monkeypatch.setattr(linkage.link, "register_for_splink", spy)
    links, report = link_source(world["frame"], records, "cbp_ice", _config())
    handed = set().union(*(set(t["unique_id"]) for t in seen))
    assert len(seen) == 2  # the frame and the source, nothing else
    assert not withheld_ids & handed
    assert not withheld_ids & set(links["record_id"])
    assert report["withheld_total"] >= 9
    # Flags are policy inputs, never linkage fields.
    assert not {"protected_1367", "refugee_asylee"} & set(seen[1].columns)
