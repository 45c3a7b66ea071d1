"""A privacy-loss ledger that refuses any measurement that would overspend the zCDP budget.

zCDP composes additively: the rho of a release is the sum of the rho of its measurements. The
ledger is charged BEFORE a measurement is taken, so an over-budget request never touches data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from privacy.mechanisms import epsilon_at_delta

# Relative slack for float round-off when shares sum to exactly 1.
BUDGET_TOLERANCE = 1e-9


class BudgetExceededError(RuntimeError):
    """A measurement was refused because it would exceed the configured rho budget."""


@dataclass
class PrivacyLedger:
    """Running account of zCDP privacy loss against a fixed budget.

    Parameters
    ----------
    budget_rho
        Total rho the release may spend (``privacy.rho``).
    delta
        Delta at which epsilon is reported beside rho.
    """

    budget_rho: float
    delta: float
    entries: list[dict[str, Any]] = field(default_factory=list)

    @property
    def spent_rho(self) -> float:
        """Rho spent so far."""
        return float(sum(entry["rho"] for entry in self.entries))

    @property
    def remaining_rho(self) -> float:
        """Rho left in the budget (never negative)."""
        return max(0.0, self.budget_rho - self.spent_rho)

    def charge(self, name: str, rho: float, **details: Any) -> dict[str, Any]:
        """Record a measurement of privacy loss ``rho``; refuse it if the budget would be exceeded.

        Raises
        ------
        BudgetExceededError
            If ``spent + rho`` exceeds the budget; nothing is recorded.
        """
        if not rho >= 0:
            raise ValueError(f"rho of '{name}' must be nonnegative, got {rho}")
        total = self.spent_rho + rho
        if total > self.budget_rho * (1.0 + BUDGET_TOLERANCE):
            raise BudgetExceededError(
                f"privacy budget exceeded: measurement '{name}' asks for rho={rho:.6g} but only "
                f"{self.remaining_rho:.6g} of the budget rho={self.budget_rho:.6g} remains "
                f"(already spent {self.spent_rho:.6g}). Fix: lower the shares in "
                "'privacy.tables' so they sum to at most 1, or raise 'privacy.rho'."
            )
        entry = {
            "name": name,
            "rho": float(rho),
            "epsilon": epsilon_at_delta(rho, self.delta),
            "rho_running_total": float(total),
            "epsilon_running_total": epsilon_at_delta(total, self.delta),
            **details,
        }
        self.entries.append(entry)
        return entry

    def to_dict(self) -> dict[str, Any]:
        """The ledger as JSON-ready data (budget, every measurement, totals, remaining)."""
        return {
            "budget": {
                "rho": float(self.budget_rho),
                "delta": float(self.delta),
                "epsilon": epsilon_at_delta(self.budget_rho, self.delta),
            },
            "measurements": list(self.entries),
            "total": {
                "rho": self.spent_rho,
                "epsilon": epsilon_at_delta(self.spent_rho, self.delta),
                "delta": float(self.delta),
            },
            "remaining_rho": self.remaining_rho,
        }
