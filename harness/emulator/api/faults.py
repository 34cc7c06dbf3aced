"""Fault injection, switchable at run time from Python (tests, the chaos parts of suites).

:class:`Faults` holds the knobs the HTTP layer consults on every API request: added latency,
the share of requests answered 429 (with ``Retry-After``) or 500. The one-shot actions,
dropping every open watch and compacting the history so resumes get 410, act on the store
and are on :class:`~harness.emulator.api.process.Emulator` (``drop_watches()``, ``compact()``).
Decisions come from a seeded RNG, so a run with the same seed fails the same requests.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass


@dataclass
class FaultDecision:
    """What to do to one request: wait ``delay_s``, then answer ``status`` if set."""

    delay_s: float = 0.0
    status: int | None = None
    retry_after_s: int = 1


class Faults:
    """Run-time fault settings; every method is thread-safe."""

    def __init__(self, seed: int | None = 0) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self.latency_s = 0.0
        self.throttle_share = 0.0
        self.retry_after_s = 1
        self.error_share = 0.0
        self.include_watches = True
        self.injected = {429: 0, 500: 0}

    def set(self, *, latency_s: float | None = None, throttle_share: float | None = None,
            retry_after_s: int | None = None, error_share: float | None = None,
            include_watches: bool | None = None) -> None:
        """Change some knobs; shares are fractions in [0, 1]."""
        with self._lock:
            for name, value in (("throttle_share", throttle_share),
                                ("error_share", error_share)):
                if value is not None and not 0.0 <= value <= 1.0:
                    raise ValueError(f"{name} must be within [0, 1], got {value}")
            if latency_s is not None:
                if latency_s < 0:
                    raise ValueError(f"latency_s must be >= 0, got {latency_s}")
                self.latency_s = latency_s
            if throttle_share is not None:
                self.throttle_share = throttle_share
            if retry_after_s is not None:
                self.retry_after_s = retry_after_s
            if error_share is not None:
                self.error_share = error_share
            if include_watches is not None:
                self.include_watches = include_watches

    def clear(self) -> None:
        """Back to a healthy server."""
        self.set(latency_s=0.0, throttle_share=0.0, error_share=0.0, retry_after_s=1,
                 include_watches=True)

    def decide(self, *, is_watch: bool) -> FaultDecision:
        with self._lock:
            decision = FaultDecision(delay_s=self.latency_s, retry_after_s=self.retry_after_s)
            if is_watch and not self.include_watches:
                return decision
            roll = self._rng.random()
            if roll < self.throttle_share:
                decision.status = 429
            elif roll < self.throttle_share + self.error_share:
                decision.status = 500
            if decision.status is not None:
                self.injected[decision.status] += 1
            return decision
