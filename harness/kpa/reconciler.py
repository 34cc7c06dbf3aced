"""The KPA reconciler: bounds, scale-to-zero gates, PA state and SKS mode (``knative-kpa.md`` §7-9).

:meth:`Reconciler.reconcile` is one pass of ``ReconcileKind`` in
``pkg/reconciler/autoscaling/kpa/kpa.go`` with ``scale``/``handleScaleToZero`` from
``scaler.go``, in virtual time:

1. A decider value < 0 (unknown) changes nothing unless the PA is Activating.
2. Bounds: min (ignored when unreachable) raised to an initial-scale above 1 until
   ``ScaleTargetInitialized``; max (0 = unlimited).
3. ``handleScaleToZero`` when the bounded value is 0: ``enable-scale-to-zero=false`` -> 1;
   Activating -> wait (``want = -1``, re-enqueued after a whole activation timeout) until
   the activation timeout has passed, then 0; Active -> hold 1 pod until Active for a
   stable window, then report ``want = 0`` without scaling (the PA goes Inactive, SKS ->
   Proxy, the last pod stays; a PA whose SKS is already in Proxy is re-enqueued after
   3 s); Inactive -> scale to 0 once ``InactiveFor >= max(grace, retention)``, or once
   retention has passed and the SKS has been in Proxy for >= grace (the fast path);
   otherwise re-enqueue.
4. SKS mode: Serve only when ``want > 0`` and ``EBC >= 0``; otherwise Proxy (an unknown
   want keeps the activator in the path in any PA state).
5. ``status.desiredScale`` follows want, but an unknown want (-1) keeps a known value
   (``computeStatus``); the PA Active condition from ready pods and want
   (``computeActiveCondition``).

Simplifications: the activator probe of an Inactive PA always succeeds at once (a failed
probe only waits longer, and the grace period bounds that wait); there is one
Deployment whose ``spec.replicas`` is :attr:`Reconciler.replicas`; the progress deadline
is a single number (``activation_timeout``, default 600 s + 30 s).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from harness.params import KPAParams

__all__ = ["PAState", "Reconciler", "ReconcileResult", "SKSMode"]

SCALE_UNKNOWN = -1
PROXY_REQUEUE = 3.0
"""Re-enqueue of an Active PA that may go Inactive while its SKS is already in Proxy."""
DEFAULT_ACTIVATION_TIMEOUT = 600.0 + 30.0
"""Default progress deadline (600 s) plus ``activationTimeoutBuffer`` (30 s)."""


class PAState(StrEnum):
    """The PodAutoscaler's ``Active`` condition."""

    ACTIVE = "Active"
    """Active=True."""
    ACTIVATING = "Activating"
    """Active=Unknown, reason Queued: requests are buffered while pods come up."""
    INACTIVE = "Inactive"
    """Active=False (NoTraffic or TimedOut)."""


class SKSMode(StrEnum):
    """ServerlessService mode: who the public endpoints are."""

    SERVE = "Serve"
    PROXY = "Proxy"


@dataclass(frozen=True, slots=True)
class ReconcileResult:
    want: int
    """PA ``status.desiredScale``: -1 unknown, else the scale asked for."""
    replicas: int
    """Deployment ``spec.replicas`` after this pass."""
    requeue_after: float | None
    """Seconds after which the PA is reconciled again (None: only on events)."""


class Reconciler:
    """State the KPA reconciler keeps on the PA, the SKS and the Deployment."""

    def __init__(
        self,
        params: KPAParams,
        *,
        replicas: int,
        state: PAState,
        state_since: float,
        sks_mode: SKSMode,
        proxy_since: float | None,
        initialized: bool,
        reachable: bool = True,
        activation_timeout: float = DEFAULT_ACTIVATION_TIMEOUT,
    ) -> None:
        self.params = params
        self.replicas = replicas
        self.state = state
        self.state_since = state_since
        self.sks_mode = sks_mode
        self.proxy_since = proxy_since
        self.initialized = initialized
        self.reachable = reachable
        self.activation_timeout = activation_timeout
        self.want = SCALE_UNKNOWN
        """The scale the latest pass asked for (-1 unknown)."""
        self.desired_scale = SCALE_UNKNOWN
        """PA ``status.desiredScale``: ``want``, except that an unknown want keeps a known
        value (``computeStatus`` in ``kpa.go``)."""
        self.reason = ""
        """Reason of the latest Active=False (NoTraffic / TimedOut)."""

    # --- helpers -------------------------------------------------------------
    def min_scale(self) -> int:
        """``ScaleBounds`` min: ignored when the revision is unreachable."""
        return self.params.min_scale if self.reachable else 0

    def active_threshold(self) -> int:
        """Ready pods for Active: ``max(min, initial)`` until initialised, then ``max(min, 1)``."""
        lo = self.min_scale()
        if not self.initialized:
            return max(lo, self.params.initial_scale)
        return max(lo, 1)

    def _set_state(self, state: PAState, now: float, reason: str = "") -> None:
        if state is not self.state:
            self.state = state
            self.state_since = now
        if state is PAState.INACTIVE:
            self.reason = reason

    # --- one pass --------------------------------------------------------------
    def reconcile(self, now: float, decider_desired: int, ebc: int, ready: int) -> ReconcileResult:
        """One reconcile at ``now`` of the decider's latest ``desired`` and ``ebc``."""
        want, apply, requeue = self._scale(now, decider_desired)
        if apply:
            self.replicas = want
        # SKS mode.
        # kpa.go: Proxy unless the scale is known and positive and EBC >= 0 (an unknown
        # scale keeps the activator in the path whatever the PA state).
        proxy = not (want > 0 and ebc >= 0)
        mode = SKSMode.PROXY if proxy else SKSMode.SERVE
        if mode is not self.sks_mode:
            self.sks_mode = mode
            self.proxy_since = now if proxy else None
        self.want = want
        if not (want == SCALE_UNKNOWN and self.desired_scale >= 0):
            self.desired_scale = want
        self._compute_active(now, want, ready)
        return ReconcileResult(want, self.replicas, requeue)

    def _scale(self, now: float, desired: int) -> tuple[int, bool, float | None]:
        """``scaler.scale``: (want, whether to patch replicas, requeue delay)."""
        if desired < 0 and self.state is not PAState.ACTIVATING:
            return desired, False, None
        p = self.params
        lo = self.min_scale()
        hi = p.max_scale
        if p.initial_scale > 1 and not self.initialized and self.reachable:
            lo = max(lo, p.initial_scale)  # scaler.go: only an initial scale above 1 counts
        if desired < lo:
            desired = lo
        elif hi > 0 and desired > hi:
            desired = hi
        if desired != 0:
            return desired, True, None
        return self._handle_scale_to_zero(now)

    def _handle_scale_to_zero(self, now: float) -> tuple[int, bool, float | None]:
        p = self.params
        if not p.enable_scale_to_zero:
            return 1, True, None
        state = self.state
        if state is PAState.ACTIVATING:
            activating_for = now - self.state_since
            if activating_for > self.activation_timeout:
                return 0, True, None
            # scaler.go re-enqueues after the whole timeout, not what is left of it
            return SCALE_UNKNOWN, False, self.activation_timeout
        if state is PAState.ACTIVE:
            active_for = now - self.state_since
            if active_for >= p.stable_window:
                # want 0 -> Inactive, SKS -> Proxy; keep the pod. Already in Proxy: the SKS
                # will not change, so scaler.go re-enqueues the PA itself after 3 s.
                return 0, False, PROXY_REQUEUE if self.sks_mode is SKSMode.PROXY else None
            return 1, True, p.stable_window - active_for
        # Inactive: the activator is (assumed) confirmed in the path.
        retention = p.scale_to_zero_pod_retention_period if self.reachable else 0.0
        grace = p.scale_to_zero_grace_period
        inactive_for = now - self.state_since
        if inactive_for >= max(grace, retention):
            return 0, True, None
        if retention > 0 and inactive_for < retention:
            return 0, False, retention - inactive_for
        proxy_for = (
            now - self.proxy_since
            if self.sks_mode is SKSMode.PROXY and self.proxy_since is not None
            else 0.0
        )
        if grace - proxy_for <= 0:
            return 0, True, None  # fast path
        return 0, False, grace - proxy_for

    def _compute_active(self, now: float, want: int, ready: int) -> None:
        min_ready = self.active_threshold()
        if ready >= min_ready:
            self.initialized = True
        state = self.state
        if want == 0 or min_ready == 0:
            if state is PAState.ACTIVATING and min_ready > 0:
                self._set_state(PAState.INACTIVE, now, "TimedOut")
            else:
                self._set_state(PAState.INACTIVE, now, "NoTraffic")
        elif ready < min_ready:
            if want > 0 or state is not PAState.INACTIVE:
                self._set_state(PAState.ACTIVATING, now)
            else:
                self._set_state(PAState.INACTIVE, now, "NoTraffic")
        elif want > 0 or state is not PAState.INACTIVE:
            self._set_state(PAState.ACTIVE, now)

