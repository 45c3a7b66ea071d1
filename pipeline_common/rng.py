"""Seeded generators: one independent, reproducible stream per stage (and sub-stream)."""

from __future__ import annotations

import hashlib

import numpy as np


def _key(name: str) -> int:
    # A stable digest, not Python's salted hash(), so streams are the same in every process.
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")


def stage_rng(seed: int, *names: str) -> np.random.Generator:
    """Return a generator for ``seed`` and a path of stream names (e.g. "synthetic", "ssa").

    Streams with different names are statistically independent; the same seed and names give
    the same stream in every run.
    """
    return np.random.default_rng(np.random.SeedSequence([int(seed), *(_key(n) for n in names)]))
