"""Decoding of the ``[]byte`` fields of Secrets and ConfigMaps, as Go's typed decoding does it.

A real server never stores what a client wrote into ``Secret.data`` or
``ConfigMap.binaryData``: the JSON string is base64-decoded into bytes (failing the whole
request on bad input) and encoded again on the way out, and ``Secret.stringData`` only exists
on the wire: the v1 -> internal conversion merges it into ``data`` and drops it. Storing the
request verbatim would let operators read back values no cluster would ever return.
"""

from __future__ import annotations

import base64
from typing import Any

__all__ = ["base64_error", "decode_bytes_fields"]

Obj = dict[str, Any]

_ALPHABET = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
_NEWLINES = (0x0A, 0x0D)
_PAD = 0x3D


def base64_error(text: str) -> int | None:
    """Offset of the first byte ``base64.StdEncoding`` rejects in ``text``, None when valid.

    Mirrors Go's decoder (padding required, CR/LF ignored anywhere, nothing after the
    padding), whose ``CorruptInputError`` offset is what upstream reports.
    """
    src = text.encode("utf-8", "surrogatepass")
    n = len(src)
    si = 0
    while True:
        j = 0
        while j < 4:
            if si == n:
                return None if j == 0 else si - j
            ch = src[si]
            si += 1
            if ch in _ALPHABET:
                j += 1
                continue
            if ch in _NEWLINES:
                continue
            if ch != _PAD or j < 2:
                return si - 1
            if j == 2:  # "==" expected; the first "=" is consumed
                while si < n and src[si] in _NEWLINES:
                    si += 1
                if si == n:
                    return n
                if src[si] != _PAD:
                    return si - 1
                si += 1
            while si < n and src[si] in _NEWLINES:
                si += 1
            return si if si < n else None


def _canonical(text: str) -> bytes:
    return base64.b64decode(text.replace("\n", "").replace("\r", ""))


def _decode_map(obj: Obj, field: str) -> str | None:
    """Re-encode the values of ``obj[field]`` canonically; the error detail, if any."""
    values = obj.get(field)
    if not isinstance(values, dict):
        return None
    for key, value in values.items():
        if not isinstance(value, str):
            continue  # a type error: typed decoding reports it
        offset = base64_error(value)
        if offset is not None:
            return f"illegal base64 data at input byte {offset}"
        values[key] = base64.b64encode(_canonical(value)).decode("ascii")
    return None


def decode_bytes_fields(kind: str, obj: Obj) -> str | None:
    """Decode a core/v1 Secret or ConfigMap in place; the decoding error text, if any.

    Secret ``stringData`` entries are base64-encoded into ``data`` (winning over a ``data``
    key of the same name) and ``stringData`` is removed, as ``Convert_v1_Secret_To_core_Secret``
    does on every create, update and patch.
    """
    if kind == "Secret":
        err = _decode_map(obj, "data")
        if err is not None:
            return err
        string_data = obj.get("stringData")
        if string_data is None:
            obj.pop("stringData", None)
        elif isinstance(string_data, dict) and all(
            v is None or isinstance(v, str) for v in string_data.values()
        ):
            # (anything else is a type error that typed decoding reports)
            obj.pop("stringData")
            if string_data:
                data = obj.get("data")
                if not isinstance(data, dict):
                    data = obj["data"] = {}
                for key, value in string_data.items():
                    raw = (value or "").encode("utf-8", "surrogatepass")
                    data[key] = base64.b64encode(raw).decode("ascii")
        return None
    if kind == "ConfigMap":
        return _decode_map(obj, "binaryData")
    return None
