"""Check 1, configuration: the cluster's effective knobs against the profile.

Fails when any knob the profile documents has a different effective value on the
cluster (``Resolved.differences``). Documentation findings (:mod:`harness.findings`)
are listed as evidence but never fail this verdict: they are faults of the page, judged
by :mod:`harness.checks.documentation`.
"""

from __future__ import annotations

import pandas as pd

from harness.checks.verdict import FAIL, PASS, Verdict, skip
from harness.resolve import Resolved

CHECK = "configuration"
CLAIM = "the cluster's autoscaler is configured as the profile documents"


def check_configuration(resolved: Resolved) -> Verdict:
    """Effective value of every documented knob vs the profile, plus findings."""
    key = f"profile {resolved.profile.name}" if resolved.profile is not None else "profile"
    if resolved.documented is None:
        return skip(CHECK, CLAIM, key, "no profile given: nothing documented to compare")
    rows = [
        {
            "kind": "difference",
            "id": d.field,
            "key": resolved.keys.get(d.field, d.field),
            "documented": str(d.documented),
            "configured": str(d.configured),
            "detail": f"{d.documented_source} -> {d.configured_source}",
        }
        for d in resolved.differences
    ]
    errors = 0
    for f in resolved.findings:
        errors += f.severity == "error"
        rows.append(
            {
                "kind": f"finding ({f.severity})",
                "id": f.id,
                "key": f.side,
                "documented": f.claim,
                "configured": f.knative,
                "detail": f.arithmetic,
            }
        )
    ndiff = len(resolved.differences)
    observed = (
        f"{ndiff} knob(s) differ from the profile; {len(resolved.findings)} documentation "
        f"finding(s), {errors} error(s)"
    )
    why = ""
    status = PASS
    if ndiff:
        status = FAIL
        first = resolved.differences[0]
        why = (
            f"{first.field}: documented {first.documented}, configured {first.configured}"
            + (f" (and {ndiff - 1} more)" if ndiff > 1 else "")
        )
    return Verdict(
        check=CHECK,
        claim=CLAIM,
        claim_key=key,
        status=status,
        expected="every documented knob has its documented effective value",
        observed=observed,
        why=why,
        numbers={"differences": float(ndiff), "findings": float(len(resolved.findings)),
                 "finding_errors": float(errors)},
        evidence=pd.DataFrame(rows),
    )
