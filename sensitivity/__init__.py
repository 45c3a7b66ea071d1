"""Sensitivity stage: sweeps of one knob at a time on replicated, common-random-number runs.

Run on purpose only (``snakemake sensitivity``; nothing in ``rule all`` depends on it).
Modules, in the order a sweep uses them:

- :mod:`sensitivity.sweep`: the sweep file and its table of (seed, knob, value) rows (the
  Snakemake ``Paramspace``), run names;
- :mod:`sensitivity.point_config`: the config overrides of one row (checked before any run);
- :mod:`sensitivity.reuse`: which of the replicate baseline's outputs a point hard-links
  instead of rebuilding (by its knob's earliest config section);
- :mod:`sensitivity.score`: one point's scores against its own truth;
- :mod:`sensitivity.summary`: the tables over points and replicates, and the verdicts;
- :mod:`sensitivity.report`: the sweep's HTML and PDF report.
"""
