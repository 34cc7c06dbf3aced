"""Go-style durations: parsing as ``time.ParseDuration`` does, formatting as ``Duration.String``."""

from __future__ import annotations

import re

import pytest

from harness.durations import (
    GO_DURATION_FORMAT,
    GO_DURATION_PATTERN,
    DurationError,
    format_duration,
    parse_duration,
    parse_duration_ns,
)
from harness.files import load_schema
from harness.profiles import profile_schema

ACCEPTED = [
    pytest.param("0", 0.0, id="bare zero"),
    pytest.param("+0", 0.0, id="signed zero"),
    pytest.param("90s", 90.0, id="seconds"),
    pytest.param("1m30s", 90.0, id="minutes and seconds"),
    pytest.param("30m", 1800.0, id="minutes"),
    pytest.param("1.5h", 5400.0, id="fractional hours"),
    pytest.param("250ms", 0.25, id="milliseconds"),
    pytest.param("1.s", 1.0, id="trailing dot"),
    pytest.param(".5s", 0.5, id="leading dot"),
    pytest.param("-1m", -60.0, id="negative"),
    pytest.param("1h0m0s", 3600.0, id="Go's own output round-trips"),
    pytest.param("2us", 2e-6, id="us"),
    pytest.param("2µs", 2e-6, id="micro sign"),
    pytest.param("2μs", 2e-6, id="greek mu"),
    pytest.param("3ns", 3e-9, id="nanoseconds"),
    pytest.param("1s500ms", 1.5, id="mixed units"),
]


@pytest.mark.parametrize(("text", "seconds"), ACCEPTED)
def test_parse_duration_accepts_go_syntax(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds, abs=1e-12)


REJECTED = [
    pytest.param("", id="empty"),
    pytest.param("10", id="number without unit"),
    pytest.param("1.5", id="fraction without unit"),
    pytest.param("s", id="unit without number"),
    pytest.param("-", id="sign alone"),
    pytest.param("1S", id="units are case sensitive"),
    pytest.param("1h 30m", id="space inside"),
    pytest.param(" 1s", id="leading space"),
    pytest.param("1d", id="days are not a Go unit"),
    pytest.param("1e3s", id="no exponent"),
    pytest.param("3000000h", id="overflows int64 nanoseconds"),
]


@pytest.mark.parametrize("text", REJECTED)
def test_parse_duration_rejects_what_go_rejects(text: str) -> None:
    with pytest.raises(DurationError):
        parse_duration(text)


def test_parse_duration_rejects_non_strings() -> None:
    with pytest.raises(DurationError):
        parse_duration(90)  # type: ignore[arg-type]


def test_fractional_nanoseconds_are_truncated_like_go() -> None:
    assert parse_duration_ns("1.9ns") == 1
    assert parse_duration_ns("0.1s") == 100_000_000


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        pytest.param(0, "0s", id="zero"),
        pytest.param(90, "1m30s", id="minutes"),
        pytest.param(3600, "1h0m0s", id="hour keeps zero minutes and seconds"),
        pytest.param(1800, "30m0s", id="half hour"),
        pytest.param(1.5, "1.5s", id="fractional seconds"),
        pytest.param(0.25, "250ms", id="milliseconds"),
        pytest.param(0.0015, "1.5ms", id="fractional milliseconds"),
        pytest.param(2e-6, "2µs", id="microseconds"),
        pytest.param(1e-9, "1ns", id="nanosecond"),
        pytest.param(-90, "-1m30s", id="negative"),
        pytest.param(119.9999999999, "2m0s", id="float noise does not give 1m60s"),
        pytest.param(3600.000000001, "1h0m0.000000001s", id="nanosecond precision"),
    ],
)
def test_format_duration_matches_go_string(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("text", ["1m30s", "1h0m0s", "250ms", "6s", "34m0s"])
def test_format_then_parse_round_trips(text: str) -> None:
    assert format_duration(parse_duration(text)) == text


@pytest.mark.parametrize("text", [p.values[0] for p in (*ACCEPTED, *REJECTED)])
def test_the_pattern_is_the_parsers_grammar(text: str) -> None:
    """The JSON Schemas' pattern accepts exactly what the parser does (bar the range)."""
    try:
        parse_duration_ns(text)
        parses = True
    except DurationError as exc:
        parses = "out of range" in str(exc)
    assert bool(re.fullmatch(GO_DURATION_PATTERN, text)) == parses


def _patterns(node: object) -> list[tuple[str, object]]:
    """Every (pattern, format) pair in a JSON Schema."""
    out = []
    if isinstance(node, dict):
        if "pattern" in node:
            out.append((node["pattern"], node.get("format")))
        for v in node.values():
            out.extend(_patterns(v))
    elif isinstance(node, list):
        for v in node:
            out.extend(_patterns(v))
    return out


@pytest.mark.parametrize("schema", ["loadprofile.schema.json", "profile.schema.json"])
def test_every_duration_pattern_in_the_schemas_is_the_one_grammar(schema: str) -> None:
    """A pattern that mentions a time unit is the one from :mod:`harness.durations`."""
    doc = profile_schema() if schema == "profile.schema.json" else load_schema(schema)
    durations = [(p, f) for p, f in _patterns(doc) if "ms|" in p or "(s|" in p]
    assert durations
    assert {p for p, _ in durations} == {GO_DURATION_PATTERN}
    if schema == "loadprofile.schema.json":
        assert {f for _, f in durations} == {GO_DURATION_FORMAT}
