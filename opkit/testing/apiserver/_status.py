"""The Status object and the API errors that produce it (apimachinery api/errors).

Every non-2xx answer of the embedded server is an :class:`APIError` turned into a Status
body by :meth:`APIError.status`.
"""

from __future__ import annotations

from typing import Any

from ._fielderrors import FieldError

__all__ = [
    "APIError",
    "already_exists",
    "bad_request",
    "conflict",
    "expired",
    "forbidden",
    "internal_error",
    "invalid",
    "method_not_allowed",
    "not_acceptable",
    "not_found",
    "status_success",
    "too_many_requests",
    "unsupported_media_type",
]

_REASON_TEXT = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


class APIError(Exception):
    """An error answer: HTTP code, Status reason, message and details."""

    def __init__(
        self,
        code: int,
        message: str,
        reason: str | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or _REASON_TEXT.get(code, "Unknown")
        self.details = details or {}
        self.headers = headers or {}

    def status(self) -> dict[str, Any]:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "details": self.details,
            "code": self.code,
        }


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def _details(name: str | None, group: str, kind: str, **extra: Any) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if name is not None:
        d["name"] = name
    if group:
        d["group"] = group
    if kind:
        d["kind"] = kind
    d.update(extra)
    return d


def not_found(resource: str, group: str, name: str) -> APIError:
    """``pods "x" not found``; ``details.kind`` is the plural resource."""
    return APIError(
        404,
        f'{_qualified(resource, group)} "{name}" not found',
        "NotFound",
        _details(name, group, resource),
    )


def already_exists(resource: str, group: str, name: str, extra: str = "") -> APIError:
    msg = f'{_qualified(resource, group)} "{name}" already exists{extra}'
    return APIError(409, msg, "AlreadyExists", _details(name, group, resource))


def conflict(resource: str, group: str, name: str, detail: str | None = None) -> APIError:
    text = detail or (
        "the object has been modified; please apply your changes to the latest version "
        "and try again"
    )
    msg = f'Operation cannot be fulfilled on {_qualified(resource, group)} "{name}": {text}'
    return APIError(409, msg, "Conflict", _details(name, group, resource))


def invalid(kind: str, group: str, name: str, errors: list[FieldError]) -> APIError:
    """422 ``Kind[.group] "name" is invalid: e1`` or ``...: [e1, e2]``."""
    texts = [str(e) for e in errors]
    joined = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    msg = f'{_qualified(kind, group)} "{name}" is invalid: {joined}'
    return APIError(
        422, msg, "Invalid", _details(name, group, kind, causes=[e.cause() for e in errors])
    )


def bad_request(message: str) -> APIError:
    return APIError(400, message, "BadRequest")


def forbidden(
    resource: str, group: str, name: str, detail: str, causes: list[dict[str, Any]] | None = None
) -> APIError:
    msg = f'{_qualified(resource, group)} "{name}" is forbidden: {detail}'
    extra = {"causes": causes} if causes else {}
    return APIError(403, msg, "Forbidden", _details(name, group, resource, **extra))


def method_not_allowed(verb: str, resource: str) -> APIError:
    return APIError(
        405, f'{verb} is not supported on resources of kind "{resource}"', "MethodNotAllowed"
    )


def unsupported_media_type(accepted: list[str]) -> APIError:
    return APIError(
        415,
        "the body of the request was in an unknown format - accepted media types include: "
        + ", ".join(accepted),
        "UnsupportedMediaType",
    )


def not_acceptable(accepted: list[str]) -> APIError:
    return APIError(
        406, "only the following media types are accepted: " + ", ".join(accepted), "NotAcceptable"
    )


def expired(message: str) -> APIError:
    return APIError(410, message, "Expired")


def too_many_requests(retry_after: int, message: str = "") -> APIError:
    return APIError(
        429,
        message or "Too many requests, please try again later.",
        "TooManyRequests",
        {"retryAfterSeconds": retry_after},
        {"Retry-After": str(retry_after)},
    )


def internal_error(message: str) -> APIError:
    return APIError(500, f"Internal error occurred: {message}", "InternalError")


def status_success(resource: str, group: str, name: str, uid: str) -> dict[str, Any]:
    """The ``Status {status: Success}`` body a finished DELETE returns (ERR-3)."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": _details(name, group, resource, uid=uid),
    }
