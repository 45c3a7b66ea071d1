"""One sensitivity point: reuse the baseline's upstream outputs, run the rest, score it."""

import subprocess
import time
from pathlib import Path

import yaml

from pipeline_common.config import load_config
from pipeline_common.io import write_json, write_text
from pipeline_common.logs import snakemake_log
from sensitivity.reuse import knob_stage, prepare_point
from sensitivity.score import METHOD_FILES, WORLD_FILES, fit_diagnostics, score_run_dir
from sensitivity.sweep import BASELINE_KNOB, baseline_run, knob_paths

snakemake = globals()["snakemake"]
log = snakemake_log(snakemake)
seed, knob, value = (
    int(snakemake.wildcards.seed),
    snakemake.wildcards.knob,
    snakemake.wildcards.value,
)
sensitivity = snakemake.params.sensitivity
started = time.perf_counter()

config = load_config(overrides=yaml.safe_load(Path(snakemake.input.config).read_text()))
run = config["run"]
results, bench = Path("results") / run, Path("benchmarks") / run
reuse = {"stage": "baseline run", "linked": [], "world_identical": [], "world_changed": []}
if knob != BASELINE_KNOB:
    base = baseline_run(sensitivity, seed)
    base_config_file = Path(snakemake.input.baseline[0]).with_name("config.yaml")
    base_config = load_config(overrides=yaml.safe_load(base_config_file.read_text()))
    reuse = prepare_point(
        Path("results") / base,
        Path("benchmarks") / base,
        results,
        bench,
        base_config,
        config,
        knob_paths(sensitivity, knob),
    )
    log.info(
        "%s: stage %s, %d upstream files linked from %s",
        run,
        reuse["stage"],
        len(reuse["linked"]),
        base,
    )
prepared = time.perf_counter() - started

# The files scoring reads (and the fits' diagnostics); --notemp keeps the standardized frame,
# which the other points of the replicate reuse.
targets = [str(results / rel) for rel in (*METHOD_FILES.values(), *WORLD_FILES.values())]
targets.append(str(results / "model" / "diagnostics.json"))
if config["privacy"]["mode"] != "none":
    targets.append(str(results / "privacy" / "model" / "diagnostics.json"))
cmd = [
    snakemake.params.python,
    "-m",
    "snakemake",
    "-s",
    str(snakemake.params.snakefile),
    "--directory",
    str(Path.cwd()),
    "--configfile",
    str(snakemake.input.config),
    "--cores",
    str(snakemake.threads),
    "--nolock",
    "--rerun-incomplete",
    "--notemp",
    *targets,
]
log.info("nested run: %s", " ".join(cmd))
with open(snakemake.log.nested, "w") as out:
    done = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False)
if done.returncode != 0:
    raise RuntimeError(
        f"nested run {run} failed (exit {done.returncode}); see {snakemake.log.nested}"
    )
nested = time.perf_counter() - started - prepared

scores = score_run_dir(results, seed)
scores.insert(0, "value", value)
scores.insert(0, "knob", knob)
scores.insert(0, "seed", seed)
write_text(
    scores.to_csv(index=False, float_format="%.6g", lineterminator="\n"), snakemake.output.scores
)
write_json(
    {
        "seed": seed,
        "knob": knob,
        "value": value,
        "run": run,
        "knob_stage": knob_stage(knob_paths(sensitivity, knob)) if knob != BASELINE_KNOB else None,
        "reuse": {
            "stage": reuse["stage"],
            "files_linked": len(reuse["linked"]),
            "world_identical": reuse["world_identical"],
            "world_changed": reuse["world_changed"],
            "linked": reuse["linked"],
        },
        "fits": fit_diagnostics(results, config["privacy"]["mode"]),
        "seconds": {
            "prepare": round(prepared, 2),
            "nested_run": round(nested, 2),
            "score": round(time.perf_counter() - started - prepared - nested, 2),
        },
    },
    snakemake.output.run,
)
log.info("%s scored: %d rows", run, len(scores))
