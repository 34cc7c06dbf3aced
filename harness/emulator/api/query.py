"""Query-parameter parsing with the API server's words (Go's ``strconv`` rules)."""

from __future__ import annotations

from harness.emulator.api.status import bad_request

_TRUE = {"1", "t", "T", "true", "TRUE", "True"}
_FALSE = {"0", "f", "F", "false", "FALSE", "False"}


def parse_bool(value: str | None, name: str) -> bool | None:
    """Go's ``strconv.ParseBool``: v30-v36 send ``True``, v37 ``true``."""
    if value is None or value == "":
        return None
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise bad_request(f"invalid boolean value {value!r} for {name}")


def parse_int(value: str | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise bad_request(f"invalid integer value {value!r} for {name}") from exc
