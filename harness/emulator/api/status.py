"""Kubernetes ``Status`` errors: one exception type that the store raises and the HTTP
layer turns into a ``kind: Status`` body with the same ``code``, ``reason`` and ``message``.

Controllers calling the store in-process catch :class:`ApiError` and read ``.code`` /
``.reason`` exactly as a client reads an ``ApiException``.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A failed API call, carrying what a ``kind: Status`` body would say."""

    def __init__(self, code: int, reason: str, message: str, *,
                 details: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def to_status(self) -> dict[str, Any]:
        return status_body(self.code, self.reason, self.message, self.details)


def status_body(code: int, reason: str, message: str,
                details: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {},
                            "status": "Failure" if code >= 300 else "Success",
                            "message": message, "code": code}
    if reason:
        body["reason"] = reason
    if details:
        body["details"] = details
    return body


def _details(name: str, group: str, kind: str) -> dict[str, Any]:
    return {"name": name, "group": group, "kind": kind}


def not_found(group: str, plural: str, name: str) -> ApiError:
    res = f"{plural}.{group}" if group else plural
    return ApiError(404, "NotFound", f'{res} "{name}" not found',
                    details=_details(name, group, plural))


def already_exists(group: str, plural: str, name: str) -> ApiError:
    res = f"{plural}.{group}" if group else plural
    return ApiError(409, "AlreadyExists", f'{res} "{name}" already exists',
                    details=_details(name, group, plural))


def conflict(group: str, plural: str, name: str) -> ApiError:
    res = f"{plural}.{group}" if group else plural
    return ApiError(
        409, "Conflict",
        f'Operation cannot be fulfilled on {res} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again",
        details=_details(name, group, plural))


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def invalid(kind: str, name: str, message: str, group: str = "") -> ApiError:
    return ApiError(422, "Invalid", f'{kind} "{name}" is invalid: {message}',
                    details=_details(name, group, kind))


def expired(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def unsupported_media_type(content_type: str) -> ApiError:
    return ApiError(415, "UnsupportedMediaType",
                    f"the body of the request was in an unknown format - accepted media types "
                    f"include: application/json-patch+json, application/merge-patch+json; "
                    f"got {content_type}")


def method_not_allowed(message: str) -> ApiError:
    return ApiError(405, "MethodNotAllowed", message)


def forbidden(message: str) -> ApiError:
    return ApiError(403, "Forbidden", message)
