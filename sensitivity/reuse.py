"""Cost that follows the knob: a sweep point reuses every upstream output its knob leaves alone.

Every point of a replicate is a run of the pipeline in its own folder (``results/{run}/``,
``benchmarks/{run}/``). Before Snakemake runs a point, :func:`prepare_point` hard-links into
that folder the outputs of the replicate's baseline run that the knob cannot change; Snakemake
then sees them with the baseline's modification times (and no record of other parameters) and
builds only what is missing or older than its inputs. What is reused follows the knob's
earliest config section (:func:`knob_stage`):

==============  ===========================================================================
``privacy``     world, truth, linkage, the exact fit, every baseline: only the privacy
                measurement, the noisy refit and publication run again.
``model``       world, truth, linkage, and the baselines whose inputs the knob leaves alone
                (leave-one-source-out: ``acs_direct``): tabulation and both fits run again.
``linkage``     world and truth: linkage and everything after it run again.
``synthetic``   the world is generated again (seconds); every world and truth file that comes
                out byte-identical to the baseline's is replaced by a link to it (with common
                random numbers that is the population, the frame and every source the knob
                does not touch), and so is each source's linkage whose inputs are identical: a
                passport-coverage point relinks passports only.
==============  ===========================================================================

A point whose resolved config equals the baseline's (e.g. coverage at 100% of default) links
everything and runs nothing. Links are only made where the point has no file yet, so an
interrupted point resumes. Hard links share data, not names: a rule that rewrites an output
replaces the link (the pipeline writes atomically), never the baseline's file.
"""

from __future__ import annotations

import filecmp
import logging
import os
from collections.abc import Iterable
from pathlib import Path

from pipeline_common.sources import SOURCES

log = logging.getLogger(__name__)

#: Config sections in pipeline order: a knob's earliest section decides what a point reuses.
STAGES = ("synthetic", "linkage", "model", "privacy", "report")

BASELINE_METHODS = ("record_rule", "census_style", "acs_direct")
#: Config keys the record-rule and Census-style baselines read.
BASELINE_KEYS = ("model.baselines", "model.high_confidence_threshold", "model.exclude_sources")
#: Per unit of work: (files or folders under results/{run}, under benchmarks/{run}).
WORLD = (("world", "truth"), ("synthetic_world.tsv",))
LINKAGE = (("linkage", "evaluation/linkage.json"), ("linkage",))
EXACT_MODEL = (
    ("model", "evaluation/estimates.json"),
    (
        "model/tabulate.tsv",
        "model/exact_tables.tsv",
        "model/fit_model.tsv",
        "model/predict_blocks.tsv",
        "model/evaluate_estimates.tsv",
    ),
)
FRAME_STD = (("linkage/frame_std.parquet",), ("linkage/standardize_frame.tsv",))


def knob_stage(paths: list[str]) -> str:
    """The earliest pipeline section among dotted ``paths`` (``seed`` and the like: ``all``)."""
    sections = [p.split(".")[0] for p in paths]
    ranks = [STAGES.index(s) if s in STAGES else -1 for s in sections]
    return "all" if min(ranks) < 0 else STAGES[min(ranks)]


def baseline_unit(method: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Results and benchmark paths of one baseline method."""
    return (f"baselines/{method}",), (f"model/baseline_{method}.tsv",)


def link_unit(source: Path, target: Path, relative: Iterable[str]) -> list[str]:
    """Hard-link files (or every file of folders) ``relative`` from ``source`` to ``target``.

    Files the target already has are left alone. Returns the relative paths linked.
    """
    linked = []
    for rel in relative:
        src = source / rel
        files = sorted(p for p in src.rglob("*") if p.is_file()) if src.is_dir() else [src]
        for file in files:
            if not file.exists():
                continue
            dst = target / file.relative_to(source)
            if dst.exists():
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.link(file, dst)
            linked.append(str(file.relative_to(source)))
    return linked


def _touches(paths: list[str], keys: Iterable[str]) -> bool:
    """Whether a dotted path equals or lies under (or above) one of ``keys``."""
    return any(
        p == k or p.startswith(k + ".") or k.startswith(p + ".") for p in paths for k in keys
    )


def _without_run(config: dict) -> dict:
    return {k: v for k, v in config.items() if k != "run"}


def world_files(results: Path) -> list[str]:
    """Relative paths of the world and truth files of a run."""
    return sorted(
        str(p.relative_to(results))
        for folder in WORLD[0]
        for p in (results / folder).rglob("*")
        if p.is_file()
    )


def _regenerate_world(config: dict, base: Path, point: Path) -> dict[str, bool]:
    """Generate the point's world; replace files identical to the baseline's by links.

    Returns relative path -> identical to the baseline's file.
    """
    from synthetic.world import generate_world, write_world

    if not (point / "world" / "frame.parquet").exists():
        write_world(generate_world(config), point)
    identical = {}
    for rel in world_files(point):
        same = (base / rel).exists() and filecmp.cmp(point / rel, base / rel, shallow=False)
        identical[rel] = same
        if same and os.stat(point / rel).st_ino != os.stat(base / rel).st_ino:
            (point / rel).unlink()
            os.link(base / rel, point / rel)
    return identical


def prepare_point(
    base_results: Path,
    base_bench: Path,
    point_results: Path,
    point_bench: Path,
    base_config: dict,
    point_config: dict,
    paths: list[str],
) -> dict:
    """Link the baseline's outputs that the point's knob cannot change into the point's run.

    Parameters
    ----------
    base_results, base_bench
        ``results/{baseline run}`` and ``benchmarks/{baseline run}`` (complete).
    point_results, point_bench
        The point's folders (created as needed).
    base_config, point_config
        Resolved configs of both runs.
    paths
        The knob's dotted config paths (empty for the baseline row).

    Returns
    -------
    dict
        ``stage`` (what decided the reuse: ``identical`` when the configs are equal),
        ``linked`` (results files linked), ``world_identical`` and ``world_changed`` (for a
        synthetic knob: world files equal to and different from the baseline's).
    """
    base_results, base_bench = Path(base_results), Path(base_bench)
    point_results, point_bench = Path(point_results), Path(point_bench)
    report: dict = {"linked": [], "world_identical": [], "world_changed": []}

    def reuse(unit: tuple[tuple[str, ...], tuple[str, ...]]) -> None:
        report["linked"] += link_unit(base_results, point_results, unit[0])
        link_unit(base_bench, point_bench, unit[1])

    if _without_run(base_config) == _without_run(point_config):
        report["stage"] = "identical"
        reuse(((".",), (".",)))
        return report

    stage = knob_stage(paths) if paths else "all"
    report["stage"] = stage
    if stage in ("privacy", "report"):
        for unit in (WORLD, LINKAGE, EXACT_MODEL, *map(baseline_unit, BASELINE_METHODS)):
            reuse(unit)
    elif stage == "model":
        for unit in (WORLD, LINKAGE):
            reuse(unit)
        if not _touches(paths, ("model.baselines",)):
            reuse(baseline_unit("acs_direct"))
        if not _touches(paths, BASELINE_KEYS):
            for method in ("record_rule", "census_style"):
                reuse(baseline_unit(method))
    elif stage == "linkage":
        reuse(WORLD)
    elif stage == "synthetic":
        identical = _regenerate_world(point_config, base_results, point_results)
        report["world_identical"] = sorted(k for k, v in identical.items() if v)
        report["world_changed"] = sorted(k for k, v in identical.items() if not v)
        link_unit(base_bench, point_bench, WORLD[1])
        _reuse_linkage(identical, point_config, reuse)
        if all(
            identical.get(f"world/{name}", False)
            for name in ("sources/acs.parquet", "frame.parquet", "geography.parquet")
        ):
            reuse(baseline_unit("acs_direct"))
    log.info(
        "stage %s: %d files reused; world files changed: %s",
        stage,
        len(report["linked"]),
        report["world_changed"] or "none",
    )
    return report


def _reuse_linkage(identical: dict[str, bool], config: dict, reuse) -> None:
    """Reuse each source's linkage whose inputs (frame, its records, the PIK) are identical."""
    if not identical.get("world/frame.parquet", False):
        return
    reuse(FRAME_STD)
    linkage = config["linkage"]
    pik_sources = set(linkage["pik_sources"]) if linkage["pik_from_ssa"] else set()
    numident_same = identical.get("world/sources/ssa_numident.parquet", False)
    for source in SOURCES:
        if not identical.get(f"world/sources/{source}.parquet", False):
            continue
        if source in pik_sources and not numident_same:
            continue
        files = (f"linkage/by_source/{source}.parquet", f"linkage/by_source/{source}.json")
        if source == "ssa_numident":
            files += ("linkage/pik.parquet",)
        reuse((files, (f"linkage/link_{source}.tsv",)))
