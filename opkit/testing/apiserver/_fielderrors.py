"""Field errors in apimachinery's wording, so 422 messages read like a real server's.

The type strings and value quoting follow `util/validation/field/errors.go`: strings are
quoted Go-style (%q), numbers and booleans are printed bare.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

__all__ = ["FieldError", "format_value"]

_TYPE_TEXT = {
    "FieldValueRequired": "Required value",
    "FieldValueInvalid": "Invalid value",
    "FieldValueNotSupported": "Unsupported value",
    "FieldValueTypeInvalid": "Invalid value",
    "FieldValueForbidden": "Forbidden",
    "FieldValueTooLong": "Too long",
    "FieldValueTooMany": "Too many",
    "FieldValueDuplicate": "Duplicate value",
    "FieldValueNotFound": "Not found",
    "InternalError": "Internal error",
}

_NO_VALUE = object()


def format_value(value: Any) -> str:
    """Render a bad value the way Go's %v/%q does in field errors."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, int | float):
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)
    if value is None:
        return "null"
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


@dataclass
class FieldError:
    """One validation failure at a field path such as ``spec.replicas``.

    ``reason`` is the cause type (``FieldValueRequired``, ``FieldValueInvalid``, ...);
    ``detail`` is the free text after the type; ``value`` is the offending value when the
    type text shows one (Invalid, Unsupported, Duplicate, NotFound).
    """

    reason: str
    field: str
    detail: str = ""
    value: Any = dc_field(default=_NO_VALUE)
    supported: list[str] | None = None

    @property
    def has_value(self) -> bool:
        return self.value is not _NO_VALUE

    def message(self) -> str:
        """The text after the field path: ``Invalid value: 5: must be ...``."""
        text = _TYPE_TEXT.get(self.reason, self.reason)
        if self.reason == "FieldValueNotSupported":
            text = f"{text}: {format_value(self.value)}"
            if self.supported:
                quoted = ", ".join(json.dumps(s) for s in self.supported)
                text = f"{text}: supported values: {quoted}"
            elif self.detail:
                text = f"{text}: {self.detail}"
            return text
        if self.has_value and self.reason in (
            "FieldValueInvalid",
            "FieldValueTypeInvalid",
            "FieldValueDuplicate",
            "FieldValueNotFound",
            "FieldValueTooMany",
        ):
            text = f"{text}: {format_value(self.value)}"
        if self.detail:
            text = f"{text}: {self.detail}"
        return text

    def __str__(self) -> str:
        return f"{self.field}: {self.message()}" if self.field else self.message()

    def cause(self) -> dict[str, Any]:
        """The Status ``details.causes`` entry."""
        return {"reason": self.reason, "message": self.message(), "field": self.field}

    @classmethod
    def required(cls, path: str, detail: str = "") -> FieldError:
        return cls("FieldValueRequired", path, detail)

    @classmethod
    def invalid(cls, path: str, value: Any, detail: str = "") -> FieldError:
        return cls("FieldValueInvalid", path, detail, value)

    @classmethod
    def type_invalid(cls, path: str, value: Any, detail: str = "") -> FieldError:
        return cls("FieldValueTypeInvalid", path, detail, value)

    @classmethod
    def not_supported(cls, path: str, value: Any, supported: list[str]) -> FieldError:
        return cls("FieldValueNotSupported", path, "", value, supported)

    @classmethod
    def forbidden(cls, path: str, detail: str) -> FieldError:
        return cls("FieldValueForbidden", path, detail)

    @classmethod
    def too_long(cls, path: str, max_len: int) -> FieldError:
        return cls("FieldValueTooLong", path, f"may not be more than {max_len} bytes")

    @classmethod
    def too_many(cls, path: str, actual: int, max_items: int) -> FieldError:
        return cls("FieldValueTooMany", path, f"must have at most {max_items} items", actual)

    @classmethod
    def duplicate(cls, path: str, value: Any) -> FieldError:
        return cls("FieldValueDuplicate", path, "", value)
