"""Kubernetes label selectors with apimachinery's grammar, semantics and error texts.

The same parser serves the client side (informer indexes, Scale ``status.selector``) and
the embedded API server, where a :class:`SelectorError` message becomes the text of a
400 ``BadRequest`` — so messages follow ``k8s.io/apimachinery/pkg/labels`` word for word.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opkit._validation import label_value_errors, qualified_name_errors

__all__ = [
    "Everything",
    "Nothing",
    "Operator",
    "Requirement",
    "Selector",
    "SelectorError",
    "format_labels",
    "from_label_selector",
    "from_set",
    "go_quote",
    "parse",
    "requirement",
    "validate_label_key",
    "validate_label_value",
]


class SelectorError(ValueError):
    """A selector that does not parse or validate; ``str(err)`` is the upstream text."""


class Operator(enum.StrEnum):
    """Requirement operators; values are apimachinery's ``selection.Operator`` strings."""

    EQUALS = "="
    DOUBLE_EQUALS = "=="
    NOT_EQUALS = "!="
    IN = "in"
    NOT_IN = "notin"
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"
    GREATER_THAN = "gt"
    LESS_THAN = "lt"


_GO_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    '"': '\\"',
    "\\": "\\\\",
}


def go_quote(s: str) -> str:
    """Quote like Go's ``%q`` (printable Unicode kept, the rest escaped)."""
    out = ['"']
    for ch in s:
        esc = _GO_ESCAPES.get(ch)
        if esc is not None:
            out.append(esc)
        elif ch.isprintable():
            out.append(ch)
        else:
            code = ord(ch)
            if code < 0x80:
                out.append(f"\\x{code:02x}")
            elif code <= 0xFFFF:
                out.append(f"\\u{code:04x}")
            else:
                out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


# Label keys are qualified names (util/validation IsQualifiedName / IsValidLabelValue).
validate_label_key = qualified_name_errors
validate_label_value = label_value_errors


def _invalid(path: str, rendered_value: str, detail: str) -> str:
    """A ``field.Invalid`` error string: ``path: Invalid value: <v>: detail``."""
    return f"{path}: Invalid value: {rendered_value}: {detail}"


def _aggregate(errs: list[str]) -> str:
    """``utilerrors.NewAggregate(...).Error()``: one message bare, several bracketed."""
    unique = list(dict.fromkeys(errs))
    if len(unique) == 1:
        return unique[0]
    return "[" + ", ".join(unique) + "]"


_INT64_RE = re.compile(r"[+-]?[0-9]+")
_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1


def _parse_int64(s: str) -> int | None:
    if not _INT64_RE.fullmatch(s):
        return None
    n = int(s)
    return n if _INT64_MIN <= n <= _INT64_MAX else None


# --- requirements and selectors --------------------------------------------------------

_SET_OPS = frozenset({Operator.IN, Operator.NOT_IN})
_EXACT_OPS = frozenset({Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.NOT_EQUALS})
_UNARY_OPS = frozenset({Operator.EXISTS, Operator.DOES_NOT_EXIST})
_NUMERIC_OPS = frozenset({Operator.GREATER_THAN, Operator.LESS_THAN})
_OPERATOR_ORDER = ("in", "notin", "=", "==", "!=", "gt", "lt", "exists", "!")


@dataclass(frozen=True, slots=True)
class Requirement:
    """One ``key <op> values`` term. Build it with :func:`requirement` (which validates).

    ``values`` is sorted and de-duplicated, which is what the canonical string shows and
    what matching needs; upstream keeps insertion order but renders sorted.
    """

    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        if op is Operator.EXISTS:
            return self.key in labels
        if op is Operator.DOES_NOT_EXIST:
            return self.key not in labels
        if op in _NUMERIC_OPS:
            if self.key not in labels:
                return False
            have = _parse_int64(labels[self.key])
            want = _parse_int64(self.values[0]) if len(self.values) == 1 else None
            if have is None or want is None:
                return False
            return have > want if op is Operator.GREATER_THAN else have < want
        if self.key not in labels:
            # "!=" and "notin" select objects that lack the key; "=" and "in" do not.
            return op is Operator.NOT_EQUALS or op is Operator.NOT_IN
        hit = labels[self.key] in self.values
        return not hit if op is Operator.NOT_EQUALS or op is Operator.NOT_IN else hit

    def __str__(self) -> str:
        op = self.operator
        if op is Operator.EXISTS:
            return self.key
        if op is Operator.DOES_NOT_EXIST:
            return "!" + self.key
        joined = ",".join(self.values)
        if op in _SET_OPS:
            return f"{self.key} {op.value} ({joined})"
        sym = {Operator.GREATER_THAN: ">", Operator.LESS_THAN: "<"}.get(op, op.value)
        return f"{self.key}{sym}{joined}"


def _new_requirement(
    key: str, op: Operator, vals: Sequence[str], *, key_path: str = "key"
) -> Requirement:
    """``labels.NewRequirement``: validate everything, report all problems at once."""
    errs: list[str] = []
    key_errs = validate_label_key(key)
    if key_errs:
        errs.append(_invalid(key_path, go_quote(key), "; ".join(key_errs)))
    # Go renders the slice with json.Marshal; an empty one is nil there.
    rendered = json.dumps(list(vals), separators=(",", ":"), ensure_ascii=False) if vals else "null"
    if op in _SET_OPS:
        if not vals:
            errs.append(
                _invalid(
                    "values", rendered, "for 'in', 'notin' operators, values set can't be empty"
                )
            )
    elif op in _EXACT_OPS:
        if len(vals) != 1:
            errs.append(
                _invalid("values", rendered, "exact-match compatibility requires one single value")
            )
    elif op in _UNARY_OPS:
        if vals:
            errs.append(
                _invalid(
                    "values", rendered, "values set must be empty for exists and does not exist"
                )
            )
    else:  # gt / lt
        if len(vals) != 1:
            errs.append(
                _invalid(
                    "values", rendered, "for 'Gt', 'Lt' operators, exactly one value is required"
                )
            )
        for i, v in enumerate(vals):
            if _parse_int64(v) is None:
                errs.append(
                    _invalid(
                        f"values[{i}]",
                        go_quote(v),
                        "for 'Gt', 'Lt' operators, the value must be an integer",
                    )
                )
    for i, v in enumerate(vals):
        v_errs = validate_label_value(v)
        if v_errs:
            errs.append(_invalid(f"values[{i}][{key}]", go_quote(v), "; ".join(v_errs)))
    if errs:
        raise SelectorError(_aggregate(errs))
    return Requirement(key, op, tuple(sorted(set(vals))))


def requirement(key: str, operator: Operator | str, values: Iterable[str] = ()) -> Requirement:
    """Build a validated requirement (``labels.NewRequirement``); raises SelectorError."""
    try:
        op = Operator(operator)
    except ValueError:
        supported = ", ".join(go_quote(o) for o in _OPERATOR_ORDER)
        raise SelectorError(
            f"operator: Unsupported value: {go_quote(str(operator))}: supported values: {supported}"
        ) from None
    return _new_requirement(key, op, list(values))


@dataclass(frozen=True, slots=True)
class Selector:
    """An AND of requirements, sorted by key. Immutable and hashable.

    ``Nothing()`` is distinct from every parsed selector: it matches no object, is not
    empty, and renders as ``""`` (like upstream's ``nothingSelector``).
    """

    requirements: tuple[Requirement, ...] = ()
    nothing: bool = field(default=False)

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.nothing:
            return False
        ls: Mapping[str, str] = labels if labels is not None else {}
        return all(r.matches(ls) for r in self.requirements)

    def empty(self) -> bool:
        """True when the selector does not restrict anything (``Everything()``)."""
        return not self.nothing and not self.requirements

    def requires_exact_match(self, key: str) -> str | None:
        """The single value ``key`` must have (``k=v``, ``k==v``, ``k in (v)``), else None.

        Like upstream, only the first requirement on ``key`` is consulted.
        """
        for r in self.requirements:
            if r.key == key:
                exact = r.operator in (Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.IN)
                return r.values[0] if exact and len(r.values) == 1 else None
        return None

    def add(self, *reqs: Requirement) -> Selector:
        """A new selector with ``reqs`` ANDed in (``Nothing()`` stays nothing)."""
        if self.nothing:
            return self
        return Selector(tuple(sorted((*self.requirements, *reqs), key=_by_key)))

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)

    def __repr__(self) -> str:
        if self.nothing:
            return "Nothing()"
        return f"Selector({str(self)!r})"


def _by_key(r: Requirement) -> str:
    return r.key


_EVERYTHING = Selector()
_NOTHING = Selector(nothing=True)


def Everything() -> Selector:  # noqa: N802 - mirrors labels.Everything()
    """The selector that matches every object."""
    return _EVERYTHING


def Nothing() -> Selector:  # noqa: N802 - mirrors labels.Nothing()
    """The selector that matches no object."""
    return _NOTHING


def format_labels(labels: Mapping[str, str] | None) -> str:
    """``labels.Set.String()``: ``a=b,c=d`` with keys sorted."""
    if not labels:
        return ""
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def from_set(labels: Mapping[str, str] | None) -> Selector:
    """A selector requiring exactly these labels (``ValidatedSelectorFromSet``)."""
    if not labels:
        return _EVERYTHING
    reqs = [_new_requirement(k, Operator.EQUALS, [v]) for k, v in labels.items()]
    return Selector(tuple(sorted(reqs, key=_by_key)))


_LS_OPERATORS = {
    "In": Operator.IN,
    "NotIn": Operator.NOT_IN,
    "Exists": Operator.EXISTS,
    "DoesNotExist": Operator.DOES_NOT_EXIST,
}


def _get(obj: Mapping[str, Any], camel: str, snake: str) -> Any:
    # Accept both wire dicts and kubernetes-client ``to_dict()`` output.
    return obj[camel] if camel in obj else obj.get(snake)


def _str_list(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise SelectorError(f"{what}: must be a list of strings")
    return list(value)


def from_label_selector(sel: Mapping[str, Any] | None) -> Selector:
    """A ``metav1.LabelSelector`` dict as a Selector (``LabelSelectorAsSelector``).

    ``None`` selects nothing; ``{}`` (or only empty parts) selects everything.
    """
    if sel is None:
        return _NOTHING
    if not isinstance(sel, Mapping):
        raise SelectorError("label selector must be an object")
    match_labels = _get(sel, "matchLabels", "match_labels") or {}
    match_exprs = _get(sel, "matchExpressions", "match_expressions") or []
    if not isinstance(match_labels, Mapping):
        raise SelectorError("matchLabels: must be a map of strings")
    if not isinstance(match_exprs, list | tuple):
        raise SelectorError("matchExpressions: must be a list")
    if not match_labels and not match_exprs:
        return _EVERYTHING
    reqs: list[Requirement] = []
    for k in sorted(match_labels):
        v = match_labels[k]
        if not isinstance(k, str) or not isinstance(v, str):
            raise SelectorError("matchLabels: must be a map of strings")
        reqs.append(_new_requirement(k, Operator.EQUALS, [v]))
    for expr in match_exprs:
        if not isinstance(expr, Mapping):
            raise SelectorError("matchExpressions: each item must be an object")
        raw_op = expr.get("operator")
        op = _LS_OPERATORS.get(raw_op) if isinstance(raw_op, str) else None
        if op is None:
            shown = raw_op if isinstance(raw_op, str) else ""
            raise SelectorError(f"{go_quote(shown)} is not a valid label selector operator")
        key = expr.get("key")
        if not isinstance(key, str):
            key = ""
        reqs.append(_new_requirement(key, op, _str_list(expr.get("values"), "values")))
    return Selector(tuple(sorted(reqs, key=_by_key)))


# --- the string grammar (labels.Parse) -------------------------------------------------


class _Tok(enum.IntEnum):
    ERROR = 0
    EOS = 1
    CLOSED_PAR = 2
    COMMA = 3
    DOES_NOT_EXIST = 4
    DOUBLE_EQUALS = 5
    EQUALS = 6
    GREATER_THAN = 7
    IDENTIFIER = 8
    IN = 9
    LESS_THAN = 10
    NOT_EQUALS = 11
    NOT_IN = 12
    OPEN_PAR = 13


_STRING_TO_TOKEN = {
    ")": _Tok.CLOSED_PAR,
    ",": _Tok.COMMA,
    "!": _Tok.DOES_NOT_EXIST,
    "==": _Tok.DOUBLE_EQUALS,
    "=": _Tok.EQUALS,
    ">": _Tok.GREATER_THAN,
    "in": _Tok.IN,
    "<": _Tok.LESS_THAN,
    "!=": _Tok.NOT_EQUALS,
    "notin": _Tok.NOT_IN,
    "(": _Tok.OPEN_PAR,
}
_WHITESPACE = frozenset(" \t\r\n")
_SPECIAL = frozenset("=!(),><")
_BINARY_OPS_TEXT = "in, notin, =, ==, !=, gt, lt"


def _lex(s: str) -> list[tuple[_Tok, str]]:
    """Tokenise like upstream's Lexer, including NUL acting as an end marker."""
    items: list[tuple[_Tok, str]] = []
    n = len(s)
    i = 0
    while True:
        while i < n and s[i] in _WHITESPACE:
            i += 1
        if i >= n or s[i] == "\x00":
            items.append((_Tok.EOS, ""))
            return items
        if s[i] in _SPECIAL:
            two = s[i : i + 2]
            lit = two if two in ("==", "!=") else s[i]
            items.append((_STRING_TO_TOKEN[lit], lit))
            i += len(lit)
            continue
        start = i
        while i < n and s[i] not in _SPECIAL and s[i] not in _WHITESPACE and s[i] != "\x00":
            i += 1
        lit = s[start:i]
        if i < n and s[i] == "\x00":
            i += 1  # upstream consumes the NUL that ends an identifier
        items.append((_STRING_TO_TOKEN.get(lit, _Tok.IDENTIFIER), lit))


class _ParseError(Exception):
    pass


class _Parser:
    """Recursive descent over the token list, mirroring labels.Parser."""

    def __init__(self, selector: str) -> None:
        self.items = _lex(selector)
        self.pos = 0

    def _peek(self, values: bool) -> tuple[_Tok, str]:
        tok, lit = self.items[min(self.pos, len(self.items) - 1)]
        if values and tok in (_Tok.IN, _Tok.NOT_IN):
            tok = _Tok.IDENTIFIER  # "in"/"notin" are plain words where values go
        return tok, lit

    def _next(self, values: bool) -> tuple[_Tok, str]:
        item = self._peek(values)
        self.pos += 1
        return item

    def parse(self) -> list[Requirement]:
        reqs: list[Requirement] = []
        while True:
            tok, lit = self._peek(True)
            if tok in (_Tok.IDENTIFIER, _Tok.DOES_NOT_EXIST):
                try:
                    reqs.append(self._requirement())
                except (_ParseError, SelectorError) as e:
                    raise SelectorError(f"unable to parse requirement: {e}") from None
                t, lit2 = self._next(True)
                if t is _Tok.EOS:
                    return reqs
                if t is _Tok.COMMA:
                    t2, lit3 = self._peek(True)
                    if t2 not in (_Tok.IDENTIFIER, _Tok.DOES_NOT_EXIST):
                        raise SelectorError(f"found '{lit3}', expected: identifier after ','")
                else:
                    raise SelectorError(f"found '{lit2}', expected: ',' or 'end of string'")
            elif tok is _Tok.EOS:
                return reqs
            else:
                raise SelectorError(f"found '{lit}', expected: !, identifier, or 'end of string'")

    def _requirement(self) -> Requirement:
        key, op = self._key_and_inferred_operator()
        if op is not None:
            return _new_requirement(key, op, [])
        op = self._operator()
        values = self._set_values() if op in _SET_OPS else self._exact_value()
        return _new_requirement(key, op, sorted(values))

    def _key_and_inferred_operator(self) -> tuple[str, Operator | None]:
        op: Operator | None = None
        tok, lit = self._next(True)
        if tok is _Tok.DOES_NOT_EXIST:
            op = Operator.DOES_NOT_EXIST
            tok, lit = self._next(True)
        if tok is not _Tok.IDENTIFIER:
            raise _ParseError(f"found '{lit}', expected: identifier")
        errs = validate_label_key(lit)
        if errs:
            raise _ParseError(_invalid("<nil>", go_quote(lit), "; ".join(errs)))
        nxt, _ = self._peek(True)
        if nxt in (_Tok.EOS, _Tok.COMMA) and op is None:
            op = Operator.EXISTS
        return lit, op

    def _operator(self) -> Operator:
        tok, lit = self._next(False)
        op = {
            _Tok.IN: Operator.IN,
            _Tok.EQUALS: Operator.EQUALS,
            _Tok.DOUBLE_EQUALS: Operator.DOUBLE_EQUALS,
            _Tok.GREATER_THAN: Operator.GREATER_THAN,
            _Tok.LESS_THAN: Operator.LESS_THAN,
            _Tok.NOT_IN: Operator.NOT_IN,
            _Tok.NOT_EQUALS: Operator.NOT_EQUALS,
        }.get(tok)
        if op is None:
            raise _ParseError(f"found '{lit}', expected: {_BINARY_OPS_TEXT}")
        return op

    def _set_values(self) -> set[str]:
        tok, lit = self._next(True)
        if tok is not _Tok.OPEN_PAR:
            raise _ParseError(f"found '{lit}' expected: '('")
        tok, lit = self._peek(True)
        if tok in (_Tok.IDENTIFIER, _Tok.COMMA):
            values = self._identifiers()
            self._next(True)  # the ")" that ended the list
            return values
        if tok is _Tok.CLOSED_PAR:
            # "in ()" means the single empty value, as upstream.
            self._next(True)
            return {""}
        raise _ParseError(f"found '{lit}', expected: ',', ')' or identifier")

    def _identifiers(self) -> set[str]:
        values: set[str] = set()
        while True:
            tok, lit = self._next(True)
            if tok is _Tok.IDENTIFIER:
                values.add(lit)
                tok2, lit2 = self._peek(True)
                if tok2 is _Tok.COMMA:
                    continue
                if tok2 is _Tok.CLOSED_PAR:
                    return values
                raise _ParseError(f"found '{lit2}', expected: ',' or ')'")
            if tok is _Tok.COMMA:
                # Empty members: "(,a)", "(a,)" and "(a,,b)" all include "".
                if not values:
                    values.add("")
                tok2, _ = self._peek(True)
                if tok2 is _Tok.CLOSED_PAR:
                    values.add("")
                    return values
                if tok2 is _Tok.COMMA:
                    self._next(True)
                    values.add("")
                continue
            raise _ParseError(f"found '{lit}', expected: ',', or identifier")

    def _exact_value(self) -> set[str]:
        tok, _ = self._peek(True)
        if tok in (_Tok.EOS, _Tok.COMMA):
            return {""}
        tok, lit = self._next(True)
        if tok is _Tok.IDENTIFIER:
            return {lit}
        raise _ParseError(f"found '{lit}', expected: identifier")


def parse(selector: str) -> Selector:
    """Parse a label selector string (``labels.Parse``); raises SelectorError.

    ``""`` parses to ``Everything()``.
    """
    reqs = _Parser(selector).parse()
    if not reqs:
        return _EVERYTHING
    return Selector(tuple(sorted(reqs, key=_by_key)))
