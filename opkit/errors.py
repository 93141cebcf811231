"""Typed errors for everything :mod:`opkit.client` can raise.

An API answer that is not 2xx becomes an :class:`ApiError` subclass chosen from the Status
``reason`` first and the HTTP code second (the same order apimachinery's ``errors.ReasonForError``
checks use), so ``except errors.NotFound`` works whatever the server put in the message.
Failures where no HTTP answer arrived are :class:`TransportError` subclasses; they say whether the
request may have reached the server, which is what decides if a write may be retried.
"""

# The exception names follow apimachinery's reasons (NotFound, Conflict, ...), not "...Error".
# ruff: noqa: N818

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

__all__ = [
    "AlreadyExists",
    "ApiError",
    "BadRequest",
    "Conflict",
    "ConnectionFailed",
    "Expired",
    "Forbidden",
    "Gone",
    "Invalid",
    "KubernetesError",
    "MethodNotAllowed",
    "NoMatch",
    "NotAcceptable",
    "NotFound",
    "ReadTimeout",
    "ServerError",
    "ServiceUnavailable",
    "Timeout",
    "TooManyRequests",
    "TransportError",
    "Unauthorized",
    "UnsupportedMediaType",
    "WatchStalled",
    "from_status",
    "is_too_large_resource_version",
    "parse_retry_after",
]


class KubernetesError(Exception):
    """Base of every error raised while talking to the API server."""


class ApiError(KubernetesError):
    """The server answered with a non-2xx status (a ``Status`` object in most cases)."""

    def __init__(
        self,
        status: int,
        reason: str = "",
        message: str = "",
        *,
        body: dict[str, Any] | None = None,
        retry_after: float | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.status = status
        self.reason = reason
        self.message = message
        self.body: dict[str, Any] = body if body is not None else {}
        self.retry_after = retry_after
        self.details: dict[str, Any] = details if details is not None else {}
        super().__init__(f"{status} {reason}: {message}" if reason else f"{status}: {message}")

    @property
    def code(self) -> int:
        """Alias of :attr:`status` (the name the Status object uses)."""
        return self.status

    @property
    def causes(self) -> list[dict[str, Any]]:
        """``details.causes`` (field errors of an Invalid, apply conflicts, ...)."""
        causes = self.details.get("causes")
        return list(causes) if isinstance(causes, list) else []

    def __reduce__(self) -> tuple[Any, ...]:
        state = {
            "status": self.status,
            "reason": self.reason,
            "message": self.message,
            "body": self.body,
            "retry_after": self.retry_after,
            "details": self.details,
        }
        return (_rebuild, (type(self), state))


def _rebuild(cls: type[ApiError], state: dict[str, Any]) -> ApiError:
    """Unpickle an ApiError (errors cross process boundaries in multiprocessing tests)."""
    return cls(**state)


class BadRequest(ApiError):
    """400: malformed body, bad selector, strict decoding failure."""


class Unauthorized(ApiError):
    """401: the credentials were rejected."""


class Forbidden(ApiError):
    """403: RBAC denial or a namespace being terminated."""


class NotFound(ApiError):
    """404: the object (or the resource type) does not exist."""


class MethodNotAllowed(ApiError):
    """405: the verb is not served for this resource."""


class NotAcceptable(ApiError):
    """406: none of the requested response media types is served."""


class AlreadyExists(ApiError):
    """409 with reason AlreadyExists: create of a name that is taken."""


class Conflict(ApiError):
    """409 with reason Conflict: a stale resourceVersion or a failed precondition."""


class Gone(ApiError):
    """410 (reasons Gone/Expired): the requested resourceVersion is compacted; relist."""


Expired = Gone


class UnsupportedMediaType(ApiError):
    """415: the server does not accept this body content type (e.g. strategic merge on a CR)."""


class Invalid(ApiError):
    """422: validation failed; :attr:`causes` lists the fields."""


class TooManyRequests(ApiError):
    """429: rejected before any processing; :attr:`retry_after` says when to come back."""


class ServerError(ApiError):
    """5xx: the server failed; for writes the outcome is unknown unless it sent Retry-After."""


class ServiceUnavailable(ServerError):
    """503: with Retry-After the server did nothing and the request may be repeated."""


class Timeout(ServerError):
    """504 / reason Timeout (e.g. "Too large resource version") or reason ServerTimeout."""


class NoMatch(KubernetesError, LookupError):
    """Discovery has no resource for the asked kind or resource name."""


class TransportError(KubernetesError):
    """No HTTP answer arrived.

    ``request_sent`` is False only when the failure happened before any byte of the request
    left (connection refused, DNS, connect timeout); then the server certainly did nothing.
    """

    request_sent: bool = True

    def __init__(self, message: str, *, request_sent: bool = True) -> None:
        super().__init__(message)
        self.message = message
        self.request_sent = request_sent


class ConnectionFailed(TransportError):
    """The connection could not be made, or broke before the answer was complete."""


class ReadTimeout(TransportError):
    """No data arrived within the client read timeout; the outcome of a write is unknown."""


class WatchStalled(ReadTimeout):
    """A watch stream was silent for longer than its read timeout (a dead TCP path)."""


_BY_REASON: dict[str, type[ApiError]] = {
    "BadRequest": BadRequest,
    "Unauthorized": Unauthorized,
    "Forbidden": Forbidden,
    "NotFound": NotFound,
    "MethodNotAllowed": MethodNotAllowed,
    "NotAcceptable": NotAcceptable,
    "AlreadyExists": AlreadyExists,
    "Conflict": Conflict,
    "Gone": Gone,
    "Expired": Gone,
    "UnsupportedMediaType": UnsupportedMediaType,
    "Invalid": Invalid,
    "TooManyRequests": TooManyRequests,
    "InternalError": ServerError,
    "ServiceUnavailable": ServiceUnavailable,
    "Timeout": Timeout,
    "ServerTimeout": Timeout,
}

_BY_CODE: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    406: NotAcceptable,
    409: Conflict,
    410: Gone,
    415: UnsupportedMediaType,
    422: Invalid,
    429: TooManyRequests,
    503: ServiceUnavailable,
    504: Timeout,
}


def _class_for(code: int, reason: str) -> type[ApiError]:
    cls = _BY_REASON.get(reason)
    if cls is not None:
        return cls
    cls = _BY_CODE.get(code)
    if cls is not None:
        return cls
    if code >= 500:
        return ServerError
    return ApiError


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds form only, as the apiserver sends)."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    if math.isnan(seconds) or math.isinf(seconds) or seconds < 0:
        return None
    return seconds


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    value = headers.get(name)
    if value is not None:
        return value
    lower = name.lower()
    for key, val in headers.items():
        if key.lower() == lower:
            return val
    return None


def from_status(
    code: int,
    body_text: str | bytes | None,
    headers: Mapping[str, str] | None = None,
) -> ApiError:
    """Build the typed error for an HTTP answer.

    ``body_text`` is normally a Status object in JSON; anything else becomes the message.
    ``retry_after`` comes from the Retry-After header, else ``details.retryAfterSeconds``.
    """
    if isinstance(body_text, bytes):
        body_text = body_text.decode("utf-8", errors="replace")
    body: dict[str, Any] = {}
    if body_text:
        try:
            parsed = json.loads(body_text)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            body = parsed
    is_status = body.get("kind") == "Status"
    reason = str(body.get("reason") or "") if is_status else ""
    message = str(body.get("message") or "") if is_status else (body_text or "").strip()
    details = body.get("details") if is_status else None
    if not isinstance(details, dict):
        details = {}
    if is_status and isinstance(body.get("code"), int) and body["code"] and not code:
        code = body["code"]
    retry_after = parse_retry_after(_header(headers, "Retry-After"))
    if retry_after is None:
        raw = details.get("retryAfterSeconds")
        if isinstance(raw, int | float) and raw > 0:
            retry_after = float(raw)
    cls = _class_for(code, reason)
    if not reason:
        reason = _default_reason(cls, code)
    return cls(code, reason, message, body=body, retry_after=retry_after, details=details)


def _default_reason(cls: type[ApiError], code: int) -> str:
    for reason, candidate in _BY_REASON.items():
        if candidate is cls and _BY_CODE.get(code) is cls:
            return reason
    if code == 500:
        return "InternalError"
    return ""


def is_too_large_resource_version(err: BaseException) -> bool:
    """True for the "Too large resource version" Timeout (the server has not caught up yet)."""
    if not isinstance(err, ApiError):
        return False
    if any(c.get("reason") == "ResourceVersionTooLarge" for c in err.causes):
        return True
    return isinstance(err, Timeout) and "Too large resource version" in err.message
