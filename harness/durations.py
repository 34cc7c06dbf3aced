"""Go-style durations (``90s``, ``1m30s``, ``30m``, ``1.5h``, ``250ms``) at the edges.

Inside the harness a duration is a float number of seconds. Knative parses its
durations with Go's ``time.ParseDuration``; :func:`parse_duration` accepts the same
grammar (a sequence of decimal numbers, each with a unit ``ns``, ``us``/``µs``,
``ms``, ``s``, ``m``, ``h``, an optional leading sign, and the bare ``0``), and
:func:`format_duration` writes seconds back the way Go's ``Duration.String`` does.

Go keeps a duration as whole nanoseconds in an int64; :func:`parse_duration_ns` does
the same (fractions below a nanosecond are truncated, more than about 292 years is an
overflow), so checks such as "whole seconds" are exact integer arithmetic.
"""

from __future__ import annotations

import re
from decimal import Decimal

NS_PER_SECOND = 1_000_000_000
MAX_NS = 2**63 - 1
"""Largest Go ``time.Duration`` (about 292 years)."""

_UNITS_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # U+00B5 micro sign
    "μs": 1_000,  # U+03BC Greek mu
    "ms": 1_000_000,
    "s": NS_PER_SECOND,
    "m": 60 * NS_PER_SECOND,
    "h": 3600 * NS_PER_SECOND,
}
_NUMBER = r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+"
_UNIT = "|".join(sorted(_UNITS_NS, key=len, reverse=True))
"""The unit names, longest first so that ``ms`` is not read as ``m``."""
_PART = re.compile(f"({_NUMBER})({_UNIT})")

GO_DURATION_PATTERN = f"^[+-]?(?:0|(?:(?:{_NUMBER})(?:{_UNIT}))+)$"
"""The grammar of :func:`parse_duration_ns` as one regular expression (Python and
ECMA-262 alike), for the JSON Schemas: ``profile.schema.json`` gets it from
:func:`harness.profiles.profile_schema`, ``loadprofile.schema.json`` holds a copy that a
test compares with this one. Only the range (about 292 years) is beyond it."""
GO_DURATION_FORMAT = "go-duration"
"""The ``format`` that marks a Go-duration string in a JSON Schema, so that an error
about one can be told from others without reading the pattern."""
_EXAMPLES = "(e.g. '90s', '1m30s', '30m')"


class DurationError(ValueError):
    """A string that is not a Go duration."""


def parse_duration_ns(text: str) -> int:
    """Return the whole nanoseconds in a Go duration string, as Go's ``ParseDuration``.

    >>> parse_duration_ns("1.5s")
    1500000000
    """
    if not isinstance(text, str):
        raise DurationError(f"{text!r} is not a duration string {_EXAMPLES}")
    s = text
    if not s:
        raise DurationError(f"{text!r} is not a duration {_EXAMPLES}")
    negative = False
    if s[0] in "+-":
        negative = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise DurationError(f"{text!r} is not a duration {_EXAMPLES}")
    pos = 0
    total = 0
    while pos < len(s):
        m = _PART.match(s, pos)
        if not m:
            raise DurationError(f"{text!r} is not a duration {_EXAMPLES}")
        # Go truncates the fractional nanoseconds of each part.
        total += int(Decimal(m.group(1)) * _UNITS_NS[m.group(2)])
        if total > MAX_NS:
            raise DurationError(f"{text!r} is out of range for a duration (at most ~292 years)")
        pos = m.end()
    return -total if negative else total


def parse_duration(text: str) -> float:
    """Return the seconds in a Go duration string; raise :class:`DurationError` if malformed.

    >>> parse_duration("1m30s")
    90.0
    >>> parse_duration("0")
    0.0
    """
    return parse_duration_ns(text) / NS_PER_SECOND


def format_duration(seconds: float) -> str:
    """Write seconds as Go's ``Duration.String`` would (``90`` -> ``1m30s``, ``0`` -> ``0s``).

    >>> format_duration(3600)
    '1h0m0s'
    >>> format_duration(0.0015)
    '1.5ms'
    """
    return format_duration_ns(round(seconds * NS_PER_SECOND))


def format_duration_ns(ns: int) -> str:
    """Go's ``Duration.String`` for a whole number of nanoseconds."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < NS_PER_SECOND:
        for unit, scale in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if ns >= scale:
                return f"{sign}{_decimal(ns, scale)}{unit}"
    hours, rest = divmod(ns, 3600 * NS_PER_SECOND)
    minutes, rest = divmod(rest, 60 * NS_PER_SECOND)
    out = sign
    if hours:
        out += f"{hours}h"
    if hours or minutes:
        out += f"{minutes}m"
    return out + f"{_decimal(rest, NS_PER_SECOND)}s"


def _decimal(value: int, scale: int) -> str:
    """``value / scale`` written exactly, without trailing zeros (``1500, 1000`` -> ``1.5``)."""
    whole, frac = divmod(value, scale)
    if not frac:
        return str(whole)
    digits = len(str(scale)) - 1
    return f"{whole}.{frac:0{digits}d}".rstrip("0")
