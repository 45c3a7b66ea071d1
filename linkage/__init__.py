"""Linkage stage: data-use policy, standardization, Splink linkage of each source to the census
frame, one-to-one best links, per-person evidence, and quality against truth (evaluation only).

Modules: :mod:`linkage.policy`, :mod:`linkage.standardize`, :mod:`linkage.link` (the general
two-table linker), :mod:`linkage.evidence`, :mod:`linkage.stage` (the stage, runnable as
``python -m linkage.stage``), :mod:`linkage.evaluate`. (The contract
world the linkage tests use alone is ``tests/fixtures/linkage_world.py``.)
"""
