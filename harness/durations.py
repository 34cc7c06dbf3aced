"""Go-style durations (``90s``, ``1m30s``, ``30m``, ``1.5h``, ``250ms``) at the edges.

Inside the harness a duration is a float number of seconds. Knative parses its
durations with Go's ``time.ParseDuration``; :func:`parse_duration` accepts the same
grammar (a sequence of decimal numbers, each with a unit ``ns``, ``us``/``µs``,
``ms``, ``s``, ``m``, ``h``, an optional leading sign, and the bare ``0``), and
:func:`format_duration` writes seconds back the way Go's ``Duration.String`` does.
"""

from __future__ import annotations

import math
import re

_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


class DurationError(ValueError):
    """A string that is not a Go duration."""


def parse_duration(text: str) -> float:
    """Return the seconds in a Go duration string; raise :class:`DurationError` if malformed.

    >>> parse_duration("1m30s")
    90.0
    >>> parse_duration("0")
    0.0
    """
    if not isinstance(text, str):
        raise DurationError(f"{text!r} is not a duration string (e.g. '90s', '1m30s')")
    s = text.strip()
    if s != text or not s:
        raise DurationError(f"{text!r} is not a duration (e.g. '90s', '1m30s', '30m')")
    sign = 1.0
    if s[0] in "+-":
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    if s == "0":
        return 0.0
    pos = 0
    total = 0.0
    while pos < len(s):
        m = _PART.match(s, pos)
        if not m:
            raise DurationError(f"{text!r} is not a duration (e.g. '90s', '1m30s', '30m')")
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos == 0:
        raise DurationError(f"{text!r} is not a duration (e.g. '90s', '1m30s', '30m')")
    return sign * total


def format_duration(seconds: float) -> str:
    """Write seconds as Go's ``Duration.String`` would (``90`` -> ``1m30s``, ``0`` -> ``0s``)."""
    if seconds == 0:
        return "0s"
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    if seconds < 1:
        for unit, scale in (("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
            if seconds >= scale:
                return f"{sign}{_trim(seconds / scale)}{unit}"
        return f"{sign}{_trim(seconds / 1e-9)}ns"
    hours = int(seconds // 3600)
    minutes = int((seconds - hours * 3600) // 60)
    rest = seconds - hours * 3600 - minutes * 60
    out = sign
    if hours:
        out += f"{hours}h"
    if hours or minutes:
        out += f"{minutes}m"
    return out + f"{_trim(rest)}s"


def _trim(value: float) -> str:
    value = round(value, 9)
    if math.isclose(value, round(value)):
        return str(int(round(value)))
    return f"{value:.9f}".rstrip("0").rstrip(".")
