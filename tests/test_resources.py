"""Every rule's scheduler resources: declared in the rule files, grown with the world's size."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline_common.config import load_config
from pipeline_common.resources import (
    DEFAULT_PERSONS,
    NEEDS,
    expected_persons,
    memory_limit_mb,
    resource_table,
    rule_resources,
)

REPO = Path(__file__).resolve().parent.parent
RULE_FILES = [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]


def rule_blocks() -> dict[str, str]:
    """Rule name -> its text, over the Snakefile and every rule file."""
    blocks = {}
    for path in RULE_FILES:
        text = path.read_text(encoding="utf-8")
        starts = list(re.finditer(r"^rule (\w+):", text, flags=re.MULTILINE))
        for k, match in enumerate(starts):
            end = starts[k + 1].start() if k + 1 < len(starts) else len(text)
            # A rule ends at the first line that is not indented (or is a comment at column 0).
            body = re.split(r"\n(?=[^\s])", text[match.start() : end], maxsplit=1)[0]
            blocks[match.group(1)] = body
    return blocks


def test_every_job_rule_declares_threads_memory_and_runtime():
    blocks = rule_blocks()
    assert len(blocks) >= 25
    local = {name for name, body in blocks.items() if "localrule: True" in body}
    assert local == {"all", "sensitivity"}, "only target rules run on the submitting machine"
    for name, body in blocks.items():
        if name in local:
            continue
        assert re.search(r"^    threads: ", body, flags=re.MULTILINE), f"{name}: no threads"
        assert f'mem_mb=RESOURCES["{name}"].mem_mb' in body, f"{name}: no mem_mb"
        assert f'runtime=RESOURCES["{name}"].runtime' in body, f"{name}: no runtime"
    assert set(NEEDS) == set(blocks) - local, "NEEDS lists exactly the job rules"


def test_default_persons_is_the_default_world():
    assert expected_persons(load_config(), REPO) == DEFAULT_PERSONS


def test_resources_grow_with_the_world():
    tiny = resource_table(load_config(REPO / "config/scenarios/tiny.yaml"), REPO)
    default = resource_table(load_config(), REPO)
    million = resource_table(load_config(REPO / "config/scenarios/million.yaml"), REPO)
    for rule in ("synthetic_world", "linkage_link_numident", "fit_model", "privacy_predict"):
        assert tiny[rule].mem_mb <= default[rule].mem_mb < million[rule].mem_mb, rule
        assert tiny[rule].runtime <= default[rule].runtime < million[rule].runtime, rule
    # Sensitivity points run the sweep's own base scenario, not this config's world.
    assert million["sensitivity_run"] == default["sensitivity_run"]
    # The fits follow cells (persons ** 0.6), the world follows persons.
    fit_growth = (million["fit_model"].mem_mb - 2000) / (default["fit_model"].mem_mb - 2000)
    world_growth = (million["synthetic_world"].mem_mb - 500) / (
        default["synthetic_world"].mem_mb - 500
    )
    assert fit_growth < world_growth


def test_linkage_memory_is_capped_by_duckdb_limit():
    persons = 6_400_000
    capped = rule_resources("linkage_link_numident", persons, "4GB")
    uncapped = rule_resources("linkage_link_numident", persons, None)
    assert uncapped.mem_mb - capped.mem_mb > 20_000
    python_side = 1000 + 300 * persons / DEFAULT_PERSONS
    assert capped.mem_mb == pytest.approx(python_side + 4000, abs=100)


@pytest.mark.parametrize(
    ("text", "mb"), [("4GB", 4000), ("512 MiB", 536.870912), ("1.5 gb", 1500), (None, None)]
)
def test_memory_limit_mb(text, mb):
    assert memory_limit_mb(text) == (None if mb is None else pytest.approx(mb))


def test_memory_limit_mb_refuses_nonsense():
    with pytest.raises(ValueError):
        memory_limit_mb("lots")
