"""Documentation findings: where a documented claim cannot hold on Knative, and why.

A :class:`Finding` is data, not an exception: an id, a severity, the documentation's
words, what Knative actually does, and the arithmetic that links the two. Findings are
derived from the numbers (the profile's claims against the knobs it documents, using
Knative's formulas from ``knative-kpa.md``), never keyed on a profile's name: a profile
whose stable window is 240 s gets no "panic over 24 s" finding, because
round(240 s x 10 %) = 24 s.

Severities: ``error`` (the claim cannot hold on Knative), ``warning`` (it holds only in a
different sense than written), ``info`` (it works, but is outdated or imprecise).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from typing import Any

from harness.durations import format_duration, parse_duration
from harness.knobs import ANNOTATION_BY_FULL_NAME, PREFIX, REMOVED_CONFIG_KEYS
from harness.params import TICK_INTERVAL, KPAParams
from harness.profiles import Profile

SEVERITIES = ("error", "warning", "info")


@dataclass(frozen=True, slots=True)
class Finding:
    """One documented claim held against Knative's behaviour."""

    id: str
    severity: str
    claim: str
    """What the documentation says (its words, or the key it sets)."""
    knative: str
    """What Knative does instead."""
    arithmetic: str
    """The numbers that show it."""
    side: str = "documented"
    """``documented`` (the profile) or ``configured`` (the live ConfigMap/revision)."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _d(seconds: float) -> str:
    """Seconds for people: ``180s`` below 10 minutes, else Go style without zero tails."""
    if abs(seconds) < 600:
        return f"{seconds:g}s"
    text = format_duration(seconds)
    for tail in ("m0s", "h0m"):
        if text.endswith(tail):
            text = text[: -len(tail) + 1]
    return text


def _quote(profile: Profile, claim: str, fallback: str) -> str:
    return str(profile.claims.get(claim, {}).get("quote", fallback))


def _num(raw: Any) -> float:
    return float(str(raw).rstrip("%x "))


def documentation_findings(profile: Profile, documented: KPAParams) -> list[Finding]:
    """Every finding for a profile, given the knobs it documents (resolved on their own)."""
    out: list[Finding] = []
    p = documented
    claims = profile.claims

    # 1. Removed ConfigMap keys (tick-interval), in the table or in the prose.
    for key, why in REMOVED_CONFIG_KEYS.items():
        raw = profile.config.get(key, claims.get(key, {}).get("value"))
        if raw is None:
            continue
        shown = str(raw)
        out.append(
            Finding(
                id=key,
                severity="error",
                claim=_quote(profile, key, f"{key}: {shown}"),
                knative=f"{key} is not a Knative key: {why}",
                arithmetic=(
                    f"decisions every {_d(TICK_INTERVAL)}, not every {shown}: "
                    f"{_ratio(shown)} decider ticks per documented interval"
                ),
            )
        )

    # 2. Panic window: round(stable x pct / 100), at least 1 s.
    claimed = profile.claim_seconds("panic-window")
    if claimed is not None and not math.isclose(claimed, p.panic_window):
        pct, stable = p.panic_window_percentage, p.stable_window
        out.append(
            Finding(
                id="panic-window",
                severity="error",
                claim=_quote(profile, "panic-window", f"panic window {_d(claimed)}"),
                knative="the panic window is round(stable-window x panic-window-percentage / 100)",
                arithmetic=(
                    f"round({_d(stable)} x {pct:g}%) = {_d(p.panic_window)}, not {_d(claimed)}; "
                    f"{_d(claimed)} needs panic-window-percentage {claimed / stable * 100:.1f} "
                    f"at {_d(stable)}, or a stable window of {_d(claimed * 100 / pct)} at {pct:g}%"
                ),
            )
        )

    # 3. A stable window in the prose that is not the one configured.
    prose = profile.claim_seconds("stable-window")
    if prose is not None and not math.isclose(prose, p.stable_window):
        pct = p.panic_window_percentage
        prose_panic = max(1.0, math.floor(prose * pct / 100 + 0.5))
        out.append(
            Finding(
                id="stable-window",
                severity="error",
                claim=_quote(profile, "stable-window", f"stable window {_d(prose)}"),
                knative=f"the stable window in force is {_d(p.stable_window)}",
                arithmetic=(
                    f"{_d(prose)} != stable-window {_d(p.stable_window)}; at {pct:g}% a "
                    f"{_d(prose)} window would give a {_d(prose_panic)} panic window "
                    f"(round({prose * pct / 100:g}s))"
                ),
            )
        )

    # 4. "Exceeds ... by X %": Knative's threshold is a ratio, not an excess.
    thr = claims.get("panic-threshold")
    if thr is not None and thr.get("subject") == "excess":
        excess = _num(thr["value"])
        if not math.isclose(1 + excess / 100, p.panic_threshold):
            out.append(
                Finding(
                    id="panic-threshold",
                    severity="warning",
                    claim=str(thr["quote"]),
                    knative=(
                        "panic starts when ceil(panic average / target) >= threshold x ready "
                        "pods: the load is threshold % OF the scaled-for volume"
                    ),
                    arithmetic=(
                        f"panic-threshold-percentage {p.panic_threshold_percentage:g} -> load "
                        f"{p.panic_threshold:g}x capacity = an excess of "
                        f"{(p.panic_threshold - 1) * 100:g}%, not {excess:g}% "
                        f"(that would be {1 + excess / 100:g}x)"
                    ),
                )
            )

    # 5. The period of the rate limits: per decider tick, not per documented interval.
    period = profile.claim_seconds("rate-period")
    if period is not None and not math.isclose(period, TICK_INTERVAL):
        r, up, down = 10, p.max_scale_up_rate, p.max_scale_down_rate
        per_delay = (
            f"; with scale-down-delay {_d(p.scale_down_delay)} about one pod per "
            f"{_d(p.scale_down_delay)}"
            if p.scale_down_delay > 0
            else ""
        )
        out.append(
            Finding(
                id="rate-period",
                severity="warning",
                claim=_quote(profile, "rate-period", f"rates per {_d(period)}"),
                knative=f"max-scale-up/down-rate bound each {_d(TICK_INTERVAL)} decider tick",
                arithmetic=(
                    f"from {r} ready pods one tick may go up to ceil({up:g} x {r}) = "
                    f"{math.ceil(up * r)} or down to floor({r}/{down:g}) = {math.floor(r / down)}, "
                    f"every {_d(TICK_INTERVAL)}, not every {_d(period)}{per_delay}"
                ),
            )
        )

    # 6. "Scale down by at most X %": floor(R / rate) removes 1 - 1/rate.
    step = claims.get("scale-down-step")
    if step is not None:
        claimed_pct = _num(step["value"])
        real_pct = (1 - 1 / p.max_scale_down_rate) * 100
        if abs(claimed_pct - real_pct) >= 0.5:
            out.append(
                Finding(
                    id="scale-down-step",
                    severity="info",
                    claim=str(step["quote"]),
                    knative="one tick may scale down to floor(ready / max-scale-down-rate)",
                    arithmetic=(
                        f"1 - 1/{p.max_scale_down_rate:g} = {real_pct:.1f}% per tick, not "
                        f"{claimed_pct:g}%; below {_one_pod_limit(p.max_scale_down_rate)} "
                        "ready pods that is exactly one pod per tick"
                    ),
                )
            )

    # 7. Headroom: 100 % - target utilization.
    head = claims.get("headroom")
    if head is not None:
        real = (1 - p.container_concurrency_target_percentage) * 100
        if abs(_num(head["value"]) - real) >= 0.5:
            out.append(
                Finding(
                    id="headroom",
                    severity="error",
                    claim=str(head["quote"]),
                    knative="headroom is 100% - container-concurrency-target-percentage",
                    arithmetic=f"100% - {p.container_concurrency_target_percentage * 100:g}% "
                    f"= {real:g}%, not {_num(head['value']):g}%",
                )
            )

    # 8. Time from the last request to zero pods.
    out.extend(_scale_to_zero(profile, p))

    # 9. Legacy camelCase annotation keys named by the documentation.
    for cid, claim in claims.items():
        key = claim.get("key")
        if isinstance(key, str):
            out.extend(_alias_findings([key], side="documented", quote=str(claim["quote"]),
                                       value=claim.get("value"), params=p, source=cid))  # fmt: skip
    out.extend(_alias_findings([*profile.annotations, *profile.inferenceservice.get(
        "annotations", {})], side="documented", params=p))  # fmt: skip
    return out


def _ratio(shown: str) -> str:
    try:
        return f"{parse_duration(shown) / TICK_INTERVAL:g}"
    except ValueError:
        return "?"


def _one_pod_limit(rate: float) -> int:
    """Smallest N where floor(N / rate) < N - 1 (the first step of more than one pod)."""
    n = 2
    while math.floor(n / rate) >= n - 1 and n < 10_000:
        n += 1
    return n


def time_to_zero(p: KPAParams) -> tuple[float, float]:
    """Seconds from the last request to 0 replicas, from 1 pod: (earliest, latest).

    A stable window of zero load, then the scale-down delay, then the last pod is kept
    ``retention`` (the activator fast path skips the grace) and at most
    ``max(grace, retention)`` (``knative-kpa.md`` §8-9, §11 d).
    """
    base = p.stable_window + p.scale_down_delay
    return (
        base + p.scale_to_zero_pod_retention_period,
        base + max(p.scale_to_zero_grace_period, p.scale_to_zero_pod_retention_period),
    )


def _scale_to_zero(profile: Profile, p: KPAParams) -> list[Finding]:
    claim = profile.claims.get("scale-to-zero-after")
    if claim is None:
        return []
    lo_c = profile.claim_seconds("scale-to-zero-after", "min")
    hi_c = profile.claim_seconds("scale-to-zero-after", "max")
    if lo_c is None or hi_c is None:
        v = profile.claim_seconds("scale-to-zero-after")
        lo_c = hi_c = v
    if lo_c is None or hi_c is None:
        return []
    if p.min_scale > 0 or not p.enable_scale_to_zero:
        return [
            Finding(
                id="scale-to-zero-after",
                severity="error",
                claim=str(claim["quote"]),
                knative="this configuration never scales to zero",
                arithmetic=f"min-scale {p.min_scale}, enable-scale-to-zero "
                f"{str(p.enable_scale_to_zero).lower()}",
            )
        ]
    lo, hi = time_to_zero(p)
    if lo_c <= lo and hi <= hi_c:
        return []
    return [
        Finding(
            id="scale-to-zero-after",
            severity="error",
            claim=str(claim["quote"]),
            knative=(
                "zero needs a stable window of zero load, then the scale-down delay, then "
                "the last pod is kept for the retention period (at most max(grace, retention))"
            ),
            arithmetic=(
                f"{_d(p.stable_window)} + {_d(p.scale_down_delay)} + "
                f"{_d(p.scale_to_zero_pod_retention_period)} = {_d(lo)}"
                + (f" to {_d(hi)}" if hi != lo else "")
                + f" after the last request (from 1 pod), not {_d(lo_c)} to {_d(hi_c)}"
            ),
        )
    ]


def _alias_findings(
    keys: Iterable[str],
    *,
    side: str,
    params: KPAParams,
    quote: str | None = None,
    value: Any = None,
    source: str | None = None,
) -> list[Finding]:
    out = []
    for raw in keys:
        full = raw if "/" in raw else PREFIX + raw
        knob = ANNOTATION_BY_FULL_NAME.get(full)
        if knob is None or full == PREFIX + knob.name:
            continue
        extra = ""
        if knob.field == "scale_to_zero_pod_retention_period" and value is not None:
            changed = _replace_seconds(params, knob.field, str(value))
            if changed is not None:
                lo, _ = time_to_zero(changed)
                extra = f"; with {value} zero comes about {_d(lo)} after the last request"
        out.append(
            Finding(
                id="legacy-annotation",
                severity="info",
                claim=quote or full,
                knative=(
                    f"{full} is a legacy camelCase alias since Knative v1.1; the canonical key "
                    f"is {PREFIX + knob.name}, which wins when both are present"
                ),
                arithmetic=f"alias still parsed and validated the same way{extra}",
                side=side,
            )
        )
    return out


def _replace_seconds(p: KPAParams, name: str, raw: str) -> KPAParams | None:
    try:
        return replace(p, **{name: parse_duration(raw)})
    except ValueError:
        return None


def configuration_findings(
    ignored_keys: Iterable[str], aliases_used: Iterable[tuple[str, str]], params: KPAParams
) -> list[Finding]:
    """Findings about the configured side: keys Knative ignores, legacy annotation keys."""
    out = []
    for key in ignored_keys:
        why = REMOVED_CONFIG_KEYS.get(key, "Knative does not know this key and ignores it")
        out.append(
            Finding(
                id=key if key in REMOVED_CONFIG_KEYS else "ignored-key",
                severity="warning",
                claim=f"{key} is set",
                knative=why,
                arithmetic="no effect on any decision",
                side="configured",
            )
        )
    out.extend(_alias_findings([a for a, _ in aliases_used], side="configured", params=params))
    return out
