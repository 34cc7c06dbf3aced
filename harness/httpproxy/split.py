"""A traffic split: smooth weighted round-robin (nginx's) over targets weighted by percent.

Any run of ``sum(weights)`` picks matches the weights exactly (Envoy's weighted clusters,
which Kourier programs, pick at random with the same mean); both ingresses split with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class WeightedRoundRobin(Generic[T]):
    """Picks targets in proportion to their integer weights (zero-weight ones never)."""

    __slots__ = ("targets", "weights", "current", "total")

    def __init__(self, targets: Sequence[tuple[T, int]]) -> None:
        self.targets = [key for key, _ in targets]
        self.weights = [int(w) for _, w in targets]
        self.current = [0] * len(self.targets)
        self.total = sum(self.weights)

    def pick(self) -> T:
        current, weights = self.current, self.weights
        best = 0
        for i, w in enumerate(weights):
            current[i] += w
            if current[i] > current[best]:
                best = i
        current[best] -= self.total
        return self.targets[best]
