"""Common random numbers: within a replicate the population is the same at every sweep point.

The synthetic world draws the population, the frame and each source from streams of their own
(``stage_rng(seed, "synthetic", part)``), so a knob of one source must leave
``truth/persons.parquet`` byte-identical and every other source unchanged. Checked on the tiny
scenario for every synthetic knob of the default grid, at its smallest value (world
generation only, no fits).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from pipeline_common.config import load_config
from sensitivity.point_config import run_overrides
from sensitivity.reuse import knob_stage
from sensitivity.sweep import BASELINE_KNOB, load_sensitivity, value_text
from synthetic.world import generate_world, write_world

SEED = 2


def _grid_on_tiny(tmp_path: Path) -> dict:
    """The default grid's synthetic knobs on the tiny scenario."""
    grid = load_sensitivity("config/sensitivity.yaml")
    knobs = {
        name: {**spec, "values": [min(spec["values"])]}
        for name, spec in grid["knobs"].items()
        if knob_stage(spec["paths"]) == "synthetic"
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"base_scenario": "config/scenarios/tiny.yaml", "knobs": knobs}))
    return load_sensitivity(path)


def _world(tmp_path: Path, sweep: dict, knob: str, value: str) -> Path:
    config = load_config(overrides=run_overrides(sweep, SEED, knob, value))
    out = tmp_path / f"{knob}-{value}"
    write_world(generate_world(config), out)
    return out


def test_population_is_byte_identical_across_the_synthetic_knobs(tmp_path):
    sweep = _grid_on_tiny(tmp_path)
    assert len(sweep["knobs"]) >= 6  # four coverages, Numident, ACS misreporting, record errors
    base = _world(tmp_path, sweep, BASELINE_KNOB, "base")
    persons = (base / "truth" / "persons.parquet").read_bytes()
    frame = (base / "world" / "frame.parquet").read_bytes()
    base_config = load_config(overrides=run_overrides(sweep, SEED, BASELINE_KNOB, "base"))
    sources = {p.name: p.read_bytes() for p in (base / "world" / "sources").glob("*.parquet")}
    assert len(sources) == 7
    for knob, spec in sweep["knobs"].items():
        touched = {path.split(".")[2] for path in spec["paths"]}
        for value in spec["values"]:
            point = _world(tmp_path, sweep, knob, value_text(value))
            label = f"{knob}={value}"
            assert (point / "truth" / "persons.parquet").read_bytes() == persons, label
            assert (point / "world" / "frame.parquet").read_bytes() == frame, label
            changed = {
                name.removesuffix(".parquet")
                for name, data in sources.items()
                if (point / "world" / "sources" / name).read_bytes() != data
            }
            # Only the sources the knob names may change, and a value that changes the
            # config must change one of them (the knob is read, not a no-op).
            assert changed <= touched, label
            config = load_config(overrides=run_overrides(sweep, SEED, knob, value_text(value)))
            if config["synthetic"] != base_config["synthetic"]:
                assert changed, f"{label} changed no source"
