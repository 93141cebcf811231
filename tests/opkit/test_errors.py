"""opkit.errors: mapping HTTP answers to typed errors."""

from __future__ import annotations

import json
import pickle
from typing import Any

import pytest

from opkit import errors


def status(code: int, reason: str, message: str = "boom", **details: Any) -> str:
    return json.dumps(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "details": details,
            "code": code,
        }
    )


@pytest.mark.parametrize(
    ("code", "reason", "cls"),
    [
        (400, "BadRequest", errors.BadRequest),
        (401, "Unauthorized", errors.Unauthorized),
        (403, "Forbidden", errors.Forbidden),
        (404, "NotFound", errors.NotFound),
        (405, "MethodNotAllowed", errors.MethodNotAllowed),
        (406, "NotAcceptable", errors.NotAcceptable),
        (409, "AlreadyExists", errors.AlreadyExists),
        (409, "Conflict", errors.Conflict),
        (410, "Expired", errors.Gone),
        (410, "Gone", errors.Gone),
        (415, "UnsupportedMediaType", errors.UnsupportedMediaType),
        (422, "Invalid", errors.Invalid),
        (429, "TooManyRequests", errors.TooManyRequests),
        (500, "InternalError", errors.ServerError),
        (503, "ServiceUnavailable", errors.ServiceUnavailable),
        (504, "Timeout", errors.Timeout),
        (500, "ServerTimeout", errors.Timeout),
    ],
)
def test_reason_picks_the_class(code: int, reason: str, cls: type[errors.ApiError]) -> None:
    err = errors.from_status(code, status(code, reason, "the message"), {})
    assert type(err) is cls
    assert err.status == code
    assert err.code == code
    assert err.reason == reason
    assert err.message == "the message"
    assert err.body["kind"] == "Status"


def test_reason_wins_over_code() -> None:
    # A 409 is AlreadyExists or Conflict only by its reason.
    assert isinstance(errors.from_status(409, status(409, "AlreadyExists")), errors.AlreadyExists)
    assert isinstance(errors.from_status(409, status(409, "Conflict")), errors.Conflict)
    # An unknown reason falls back to the code.
    err = errors.from_status(404, status(404, "SomethingNew"))
    assert isinstance(err, errors.NotFound)
    assert err.reason == "SomethingNew"


@pytest.mark.parametrize(
    ("code", "cls", "reason"),
    [
        (404, errors.NotFound, "NotFound"),
        (409, errors.Conflict, "Conflict"),
        (410, errors.Gone, "Gone"),
        (502, errors.ServerError, ""),
        (500, errors.ServerError, "InternalError"),
        (418, errors.ApiError, ""),
    ],
)
def test_code_fallback_for_non_status_bodies(
    code: int, cls: type[errors.ApiError], reason: str
) -> None:
    err = errors.from_status(code, b"<html>upstream proxy failure</html>\n", None)
    assert type(err) is cls
    assert err.reason == reason
    assert err.message == "<html>upstream proxy failure</html>"
    assert err.body == {}


def test_subclass_relations() -> None:
    assert issubclass(errors.Timeout, errors.ServerError)
    assert issubclass(errors.ServiceUnavailable, errors.ServerError)
    assert issubclass(errors.ApiError, errors.KubernetesError)
    assert issubclass(errors.WatchStalled, errors.ReadTimeout)
    assert issubclass(errors.ReadTimeout, errors.TransportError)
    assert issubclass(errors.ConnectionFailed, errors.TransportError)
    assert not issubclass(errors.TransportError, errors.ApiError)
    assert issubclass(errors.NoMatch, LookupError)
    assert errors.Expired is errors.Gone


def test_details_and_causes() -> None:
    body = status(
        422,
        "Invalid",
        'ConfigMap "x" is invalid: data: Required value',
        name="x",
        kind="ConfigMap",
        causes=[{"reason": "FieldValueRequired", "message": "Required value", "field": "data"}],
    )
    err = errors.from_status(422, body)
    assert isinstance(err, errors.Invalid)
    assert err.details["name"] == "x"
    assert err.causes == [
        {"reason": "FieldValueRequired", "message": "Required value", "field": "data"}
    ]


def test_retry_after_from_header_then_details() -> None:
    err = errors.from_status(429, status(429, "TooManyRequests", retryAfterSeconds=7), {})
    assert err.retry_after == 7.0
    err = errors.from_status(
        429, status(429, "TooManyRequests", retryAfterSeconds=7), {"retry-after": "2"}
    )
    assert err.retry_after == 2.0
    err = errors.from_status(503, "", {"Retry-After": "3"})
    assert isinstance(err, errors.ServiceUnavailable)
    assert err.retry_after == 3.0
    assert errors.from_status(500, status(500, "InternalError"), {}).retry_after is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("5", 5.0),
        (" 1.5 ", 1.5),
        ("0", 0.0),
        ("-1", None),
        ("soon", None),
        ("nan", None),
        (None, None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert errors.parse_retry_after(value) == expected


def test_too_large_resource_version() -> None:
    by_cause = errors.from_status(
        504,
        status(
            504,
            "Timeout",
            "Timeout: Too large resource version: 99, current: 5",
            causes=[{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
        ),
    )
    assert errors.is_too_large_resource_version(by_cause)
    by_message = errors.from_status(
        504, status(504, "Timeout", "Timeout: Too large resource version: 99, current: 5")
    )
    assert errors.is_too_large_resource_version(by_message)
    assert not errors.is_too_large_resource_version(errors.from_status(504, status(504, "Timeout")))
    assert not errors.is_too_large_resource_version(ValueError("x"))


def test_pickle_round_trip_keeps_type_and_fields() -> None:
    err = errors.from_status(409, status(409, "Conflict", "stale", name="x"), {"Retry-After": "1"})
    copy = pickle.loads(pickle.dumps(err))
    assert type(copy) is errors.Conflict
    assert (copy.status, copy.reason, copy.message, copy.retry_after) == (
        409,
        "Conflict",
        "stale",
        1.0,
    )
    assert copy.details == {"name": "x"}


def test_str_mentions_code_reason_and_message() -> None:
    err = errors.from_status(404, status(404, "NotFound", 'pods "x" not found'))
    assert str(err) == '404 NotFound: pods "x" not found'
    transport = errors.ConnectionFailed("refused", request_sent=False)
    assert transport.request_sent is False
    assert errors.ReadTimeout("slow").request_sent is True
