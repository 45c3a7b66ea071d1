"""Age groups shared by tabulation, model, publication and evaluation."""

from __future__ import annotations

import numpy as np
import pandas as pd

DEFAULT_AGE_BOUNDS = (0, 18, 35, 65)
VOTING_AGE = 18


def age_group_labels(bounds: list[int] | tuple[int, ...] = DEFAULT_AGE_BOUNDS) -> list[str]:
    """Labels such as ``0-17``, ``18-34``, ``65+`` for ascending lower ``bounds``."""
    bounds = list(bounds)
    labels = [f"{lo}-{hi - 1}" for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
    return [*labels, f"{bounds[-1]}+"]


def assign_age_group(
    age: pd.Series | np.ndarray, bounds: list[int] | tuple[int, ...] = DEFAULT_AGE_BOUNDS
) -> pd.Categorical:
    """Map ages to ordered categorical age-group labels; missing ages stay missing."""
    bounds = list(bounds)
    if bounds[0] != 0 or VOTING_AGE not in bounds or sorted(bounds) != bounds:
        raise ValueError(f"age_groups must start at 0, ascend and include {VOTING_AGE}: {bounds}")
    edges = [*bounds, np.inf]
    return pd.cut(
        pd.Series(age, dtype="float64"),
        bins=edges,
        right=False,
        labels=age_group_labels(bounds),
    ).array


def adult_age_groups(bounds: list[int] | tuple[int, ...] = DEFAULT_AGE_BOUNDS) -> list[str]:
    """Labels of the age groups at or above voting age."""
    labels = age_group_labels(bounds)
    return [lab for lo, lab in zip(bounds, labels, strict=True) if lo >= VOTING_AGE]
