"""Keeping credentials out of logs and reports.

:func:`redact` masks secrets in text: AWS access key ids and secret keys, bearer and
basic ``Authorization`` headers, JWTs (service-account tokens), kubeconfig
``token``/``client-key-data``/``client-certificate-data``/``password`` fields, URL
userinfo (``https://user:pass@host``) and ``key=value`` pairs whose key names a secret.
:func:`redact_object` does the same for parsed data (dicts from YAML/JSON, a Secret's
``data``), by key name and by value. :class:`RedactingFilter` applies :func:`redact` to
every log record; :func:`install` puts it on the root logger's handlers (the logging
setup calls it once).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

MASK = "***"

SECRET_KEY = re.compile(
    r"(?i)(secret|token|password|passwd|credential|private[-_]?key|access[-_]?key|"
    r"api[-_]?key|client[-_]key[-_]data|client[-_]certificate[-_]data|session[-_]key|"
    r"authorization)")
"""A key name whose value is a secret (``AWS_SECRET_ACCESS_KEY``, ``token``...)."""

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # key: value / key=value / "key": "value" with a secret-ish key
    (re.compile(
        r"""(?ix)
        (?P<key>["']?[\w.-]*(?:secret|token|password|passwd|credential|private[-_]?key|
            access[-_]?key[-_]?id|access[-_]?key|api[-_]?key|client-key-data|
            client-certificate-data|session[-_]?key)[\w.-]*["']?)
        (?P<sep>\s*[:=]\s*)
        (?P<q>["']?)(?P<value>[^\s"',;}]+)"""),
     r"\g<key>\g<sep>\g<q>" + MASK),
    # Authorization: Bearer xxx / Basic xxx
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 " + MASK),
    # JWTs
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), MASK),
    # AWS access key ids
    (re.compile(r"\b(AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}\b"), MASK),
    # URL userinfo
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@"), r"\1" + MASK + "@"),
    # PEM private keys
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----",
                re.S), MASK),
)


def redact(text: str) -> str:
    """``text`` with every recognised secret replaced by ``***``."""
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


def redact_object(obj: Any, *, _secret: bool = False) -> Any:
    """A copy of parsed data with secret values masked: values under secret-named keys,
    every value of a Secret's ``data``/``stringData``, and secrets inside strings."""
    if isinstance(obj, Mapping):
        is_secret_kind = obj.get("kind") == "Secret"
        out: dict[Any, Any] = {}
        for k, v in obj.items():
            if _secret or (isinstance(k, str) and SECRET_KEY.search(k)) or (
                    is_secret_kind and k in ("data", "stringData")):
                out[k] = _mask_all(v)
            else:
                out[k] = redact_object(v)
        return out
    if isinstance(obj, list | tuple):
        return type(obj)(redact_object(v) for v in obj)
    if isinstance(obj, str):
        return redact(obj)
    return obj


def _mask_all(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _mask_all(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_all(v) for v in value]
    if value is None or isinstance(value, bool):
        return value
    return MASK


class RedactingFilter(logging.Filter):
    """Rewrites each record's message (arguments merged in) through :func:`redact`."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format: leave it to logging
            return True
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg = cleaned
            record.args = None
        if record.exc_info or record.exc_text:
            # another handler may have formatted (and cached) the traceback already
            text = record.exc_text or logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact(text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def install(logger: logging.Logger | None = None) -> RedactingFilter:
    """Add one :class:`RedactingFilter` to ``logger`` (root by default) and to each of
    its handlers (filters on a logger do not see records propagated from children,
    handler filters do). Idempotent."""
    target = logger or logging.getLogger()
    for existing in target.filters:
        if isinstance(existing, RedactingFilter):
            flt = existing
            break
    else:
        flt = RedactingFilter()
        target.addFilter(flt)
    for handler in target.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(flt)
    return flt
