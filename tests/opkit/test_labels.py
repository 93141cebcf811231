"""Label selectors: grammar, semantics, canonical strings and upstream error texts."""

from __future__ import annotations

from typing import Any

import pytest

from opkit.labels import (
    Everything,
    Nothing,
    Operator,
    Requirement,
    Selector,
    SelectorError,
    format_labels,
    from_label_selector,
    from_set,
    go_quote,
    parse,
    requirement,
    validate_label_key,
    validate_label_value,
)

QNAME_RULE = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
    "an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
VALUE_RULE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
    "or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
SUBDOMAIN_RULE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
    "or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)


# --- parsing and canonical strings ----------------------------------------------------------


def test_pyclient_example_parses_and_matches() -> None:
    sel = parse("a=b,c in (d,e),!f")
    assert str(sel) == "a=b,c in (d,e),!f"
    assert [r.key for r in sel.requirements] == ["a", "c", "f"]
    assert sel.matches({"a": "b", "c": "e"})
    assert not sel.matches({"a": "b", "c": "e", "f": "x"})
    assert not sel.matches({"a": "b"})
    assert not sel.matches({"a": "x", "c": "d"})


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("", ""),
        ("   ", ""),
        ("a=b", "a=b"),
        ("a==b", "a==b"),
        ("a!=b", "a!=b"),
        ("a", "a"),
        ("!a", "!a"),
        ("a=", "a="),
        ("a==", "a=="),
        ("a!=", "a!="),
        ("a = b", "a=b"),
        ("\ta\n!=\r b ", "a!=b"),
        ("x in (b,a)", "x in (a,b)"),
        ("x in(b,a)", "x in (a,b)"),
        ("  x   in   (  b ,  a , a  )  ", "x in (a,b)"),
        ("x notin (a)", "x notin (a)"),
        ("x in ()", "x in ()"),
        ("x notin ()", "x notin ()"),
        ("x in (a,)", "x in (,a)"),
        ("x in (,a)", "x in (,a)"),
        ("x in (a,,b)", "x in (,a,b)"),
        ("x in (,)", "x in ()"),
        ("x in (foo,,baz),y,z notin ()", "x in (,baz,foo),y,z notin ()"),
        ("z,y,x", "x,y,z"),
        ("b=1,a=2,!c", "a=2,b=1,!c"),
        ("in in (in,notin)", "in in (in,notin)"),
        ("notin notin (in)", "notin notin (in)"),
        ("k=in", "k=in"),
        ("x>1", "x>1"),
        ("x<5", "x<5"),
        (
            "example.com/app=web,app.kubernetes.io/name=x",
            "app.kubernetes.io/name=x,example.com/app=web",
        ),
        ("a=b, c=d", "a=b,c=d"),
    ],
)
def test_canonical_string(text: str, canonical: str) -> None:
    sel = parse(text)
    assert str(sel) == canonical
    # The canonical form parses back to the same selector.
    assert parse(canonical) == sel


def test_requirements_are_sorted_stably_by_key() -> None:
    sel = parse("b,a!=1,a=2")
    assert [(r.key, r.operator) for r in sel.requirements] == [
        ("a", Operator.NOT_EQUALS),
        ("a", Operator.EQUALS),
        ("b", Operator.EXISTS),
    ]


def test_requirement_fields() -> None:
    (req,) = parse("tier in (web, api, web)").requirements
    assert req == Requirement("tier", Operator.IN, ("api", "web"))
    assert str(req) == "tier in (api,web)"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
        (
            "env IN (a)",
            "unable to parse requirement: found 'IN', expected: in, notin, =, ==, !=, gt, lt",
        ),
        ("a=b,", "found '', expected: identifier after ','"),
        ("a=b,,c", "found ',', expected: identifier after ','"),
        (",a", "found ',', expected: !, identifier, or 'end of string'"),
        ("=a", "found '=', expected: !, identifier, or 'end of string'"),
        ("(a)", "found '(', expected: !, identifier, or 'end of string'"),
        ("a=b=c", "found '=', expected: ',' or 'end of string'"),
        ("a=b c", "found 'c', expected: ',' or 'end of string'"),
        ("!a=b", "found '=', expected: ',' or 'end of string'"),
        ("!", "unable to parse requirement: found '', expected: identifier"),
        ("!!a", "unable to parse requirement: found '!', expected: identifier"),
        ("a==(", "unable to parse requirement: found '(', expected: identifier"),
        ("a=(b)", "unable to parse requirement: found '(', expected: identifier"),
        ("x in a", "unable to parse requirement: found 'a' expected: '('"),
        ("x in (", "unable to parse requirement: found '', expected: ',', ')' or identifier"),
        ("x in (=)", "unable to parse requirement: found '=', expected: ',', ')' or identifier"),
        ("x in (a b)", "unable to parse requirement: found 'b', expected: ',' or ')'"),
        ("x in (a", "unable to parse requirement: found '', expected: ',' or ')'"),
        ("x in (a,=)", "unable to parse requirement: found '=', expected: ',', or identifier"),
        ("x notin", "unable to parse requirement: found '' expected: '('"),
    ],
)
def test_syntax_errors(text: str, message: str) -> None:
    with pytest.raises(SelectorError) as exc:
        parse(text)
    assert str(exc.value) == message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "Foo_=b",
            f'unable to parse requirement: <nil>: Invalid value: "Foo_": name part {QNAME_RULE}',
        ),
        ("-a", f'unable to parse requirement: <nil>: Invalid value: "-a": name part {QNAME_RULE}'),
        (
            "app:web",
            f'unable to parse requirement: <nil>: Invalid value: "app:web": name part {QNAME_RULE}',
        ),
        (
            "a/b/c=d",
            'unable to parse requirement: <nil>: Invalid value: "a/b/c": a qualified name '
            f"{QNAME_RULE} with an optional DNS subdomain prefix and '/' "
            "(e.g. 'example.com/MyName')",
        ),
        (
            "app.kubernetes_io/name=x",
            'unable to parse requirement: <nil>: Invalid value: "app.kubernetes_io/name": '
            f"prefix part {SUBDOMAIN_RULE}",
        ),
        (
            "/a",
            'unable to parse requirement: <nil>: Invalid value: "/a": '
            "prefix part must be non-empty",
        ),
        (
            "a/",
            'unable to parse requirement: <nil>: Invalid value: "a/": name part must be non-empty; '
            f"name part {QNAME_RULE}",
        ),
        (
            "k=-bad",
            f'unable to parse requirement: values[0][k]: Invalid value: "-bad": {VALUE_RULE}',
        ),
        (
            "k in (ok,-b,-a)",
            f'unable to parse requirement: [values[0][k]: Invalid value: "-a": {VALUE_RULE}, '
            f'values[1][k]: Invalid value: "-b": {VALUE_RULE}]',
        ),
        (
            "x>qa",
            "unable to parse requirement: values[0]: Invalid value: \"qa\": for 'Gt', 'Lt' "
            "operators, the value must be an integer",
        ),
    ],
)
def test_validation_errors(text: str, message: str) -> None:
    with pytest.raises(SelectorError) as exc:
        parse(text)
    assert str(exc.value) == message


def test_key_and_value_length_limits() -> None:
    assert str(parse("a" * 63 + "=" + "b" * 63)) == "a" * 63 + "=" + "b" * 63
    prefix = ".".join(["a" * 63] * 3) + ".abc"  # 195 chars: fine
    assert parse(f"{prefix}/n").requirements[0].key == f"{prefix}/n"
    with pytest.raises(SelectorError, match="name part must be no more than 63 characters"):
        parse("a" * 64)
    with pytest.raises(
        SelectorError, match=r'Invalid value: "b{64}": must be no more than 63 char'
    ):
        parse("a=" + "b" * 64)
    long_prefix = ".".join(["a" * 63] * 4) + ".ab"  # 257 chars
    with pytest.raises(SelectorError, match="prefix part must be no more than 253 characters"):
        parse(f"{long_prefix}/n")


def test_nul_ends_the_input_after_whitespace() -> None:
    # Upstream's lexer treats a NUL byte as end-of-string.
    assert str(parse("a=b \x00 ignored garbage (")) == "a=b"


# --- semantics ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("k=v", {"k": "v"}, True),
        ("k=v", {"k": "w"}, False),
        ("k=v", {}, False),
        ("k==v", {"k": "v"}, True),
        ("k==v", {}, False),
        ("k=", {"k": ""}, True),
        ("k=", {}, False),
        ("k!=v", {"k": "w"}, True),
        ("k!=v", {"k": "v"}, False),
        ("k!=v", {}, True),
        ("k!=", {}, True),
        ("k!=", {"k": ""}, False),
        ("k in (a,b)", {"k": "b"}, True),
        ("k in (a,b)", {"k": "c"}, False),
        ("k in (a,b)", {}, False),
        ("k in ()", {"k": ""}, True),
        ("k in ()", {}, False),
        ("k notin (a,b)", {"k": "c"}, True),
        ("k notin (a,b)", {"k": "a"}, False),
        ("k notin (a,b)", {}, True),
        ("k", {"k": ""}, True),
        ("k", {"other": "x"}, False),
        ("!k", {}, True),
        ("!k", {"k": ""}, False),
        ("k>5", {"k": "6"}, True),
        ("k>5", {"k": "5"}, False),
        ("k>5", {"k": "+7"}, True),
        ("k>5", {"k": "abc"}, False),
        ("k>5", {}, False),
        ("k<5", {"k": "-1"}, True),
        ("k<5", {"k": "5"}, False),
        ("k<5", {"k": "99999999999999999999"}, False),
        ("", {}, True),
        ("", {"a": "b"}, True),
    ],
)
def test_operator_semantics(text: str, labels: dict[str, str], expected: bool) -> None:
    assert parse(text).matches(labels) is expected


def test_matches_none_labels_as_empty() -> None:
    assert parse("!a").matches(None)
    assert parse("a notin (x)").matches(None)
    assert not parse("a").matches(None)


def test_everything_and_nothing() -> None:
    assert Everything().empty()
    assert Everything().matches({"x": "y"})
    assert Everything().matches(None)
    assert str(Everything()) == ""
    assert parse("") == Everything()
    assert not Nothing().empty()
    assert not Nothing().matches({})
    assert not Nothing().matches(None)
    assert str(Nothing()) == ""
    assert Nothing() != Everything()
    assert not parse("a").empty()


def test_selector_is_immutable_and_hashable() -> None:
    sel = parse("b=1,a in (y,x)")
    assert hash(sel) == hash(parse("a in (x,y),b=1"))
    assert sel == parse("a in (x,y),b=1")
    assert len({sel, parse("a in (x,y),b=1"), Everything(), Nothing()}) == 3
    with pytest.raises(AttributeError):
        sel.requirements = ()  # type: ignore[misc]
    assert isinstance(sel, Selector)
    assert isinstance(sel.requirements, tuple)


def test_requires_exact_match() -> None:
    sel = parse("a=1,b==2,c in (3),d in (4,5),e!=6,f")
    assert sel.requires_exact_match("a") == "1"
    assert sel.requires_exact_match("b") == "2"
    assert sel.requires_exact_match("c") == "3"
    assert sel.requires_exact_match("d") is None
    assert sel.requires_exact_match("e") is None
    assert sel.requires_exact_match("f") is None
    assert sel.requires_exact_match("zzz") is None
    assert parse("a=").requires_exact_match("a") == ""
    assert Nothing().requires_exact_match("a") is None


def test_add_keeps_order_and_nothing() -> None:
    sel = parse("b=1").add(requirement("a", "exists"), requirement("c", Operator.IN, ["x"]))
    assert str(sel) == "a,b=1,c in (x)"
    assert Nothing().add(requirement("a", "exists")) == Nothing()


def test_repr_is_informative() -> None:
    assert repr(parse("a=b")) == "Selector('a=b')"
    assert repr(Nothing()) == "Nothing()"


# --- requirement() and from_set() ----------------------------------------------------------


def test_requirement_validation() -> None:
    assert str(requirement("k", "notin", ["b", "a", "b"])) == "k notin (a,b)"
    with pytest.raises(SelectorError) as exc:
        requirement("k", "=", ["a", "b"])
    assert str(exc.value) == (
        'values: Invalid value: ["a","b"]: exact-match compatibility requires one single value'
    )
    with pytest.raises(SelectorError) as exc:
        requirement("k", "gt", [])
    assert str(exc.value) == (
        "values: Invalid value: null: for 'Gt', 'Lt' operators, exactly one value is required"
    )
    with pytest.raises(SelectorError) as exc:
        requirement("k", "like", ["a"])
    assert str(exc.value) == (
        'operator: Unsupported value: "like": supported values: "in", "notin", "=", "==", '
        '"!=", "gt", "lt", "exists", "!"'
    )


def test_from_set() -> None:
    sel = from_set({"b": "2", "a": "1"})
    assert str(sel) == "a=1,b=2"
    assert sel.matches({"a": "1", "b": "2", "c": "3"})
    assert not sel.matches({"a": "1"})
    assert from_set({}) == Everything()
    assert from_set(None) == Everything()
    with pytest.raises(SelectorError, match=r'^key: Invalid value: "a b": name part'):
        from_set({"a b": "x"})


def test_format_labels() -> None:
    assert format_labels({"c": "d", "a": "b"}) == "a=b,c=d"
    assert format_labels({}) == ""
    assert format_labels(None) == ""
    assert format_labels({"k": ""}) == "k="
    assert parse(format_labels({"x": "1", "y": ""})).matches({"x": "1", "y": ""})


# --- from_label_selector -------------------------------------------------------------------


def test_label_selector_none_and_empty() -> None:
    assert from_label_selector(None) == Nothing()
    assert from_label_selector({}) == Everything()
    assert from_label_selector({"matchLabels": {}, "matchExpressions": []}) == Everything()
    assert from_label_selector({"matchLabels": None, "matchExpressions": None}) == Everything()


def test_label_selector_all_operators() -> None:
    sel = from_label_selector(
        {
            "matchLabels": {"app": "web", "tier": "front"},
            "matchExpressions": [
                {"key": "env", "operator": "In", "values": ["prod", "dev", "prod"]},
                {"key": "zone", "operator": "NotIn", "values": ["b"]},
                {"key": "managed", "operator": "Exists"},
                {"key": "legacy", "operator": "DoesNotExist", "values": []},
            ],
        }
    )
    assert str(sel) == "app=web,env in (dev,prod),!legacy,managed,tier=front,zone notin (b)"
    base = {"app": "web", "tier": "front", "env": "dev", "managed": ""}
    assert sel.matches(base)
    assert sel.matches({**base, "zone": "a"})
    assert not sel.matches({**base, "zone": "b"})
    assert not sel.matches({**base, "legacy": "1"})
    assert not sel.matches({k: v for k, v in base.items() if k != "managed"})
    assert not sel.matches({**base, "env": "qa"})
    assert not sel.matches({**base, "app": "db"})
    assert sel.requires_exact_match("app") == "web"


def test_label_selector_snake_case_from_client_models() -> None:
    sel = from_label_selector(
        {"match_labels": {"a": "b"}, "match_expressions": [{"key": "c", "operator": "Exists"}]}
    )
    assert str(sel) == "a=b,c"


def test_label_selector_equivalent_to_parsed_string() -> None:
    ls = {
        "matchLabels": {"a": "b"},
        "matchExpressions": [{"key": "c", "operator": "In", "values": ["e", "d"]}],
    }
    assert str(from_label_selector(ls)) == str(parse("a=b,c in (d,e)"))
    assert from_label_selector(ls) == parse("c in (e,d),a=b")


@pytest.mark.parametrize(
    ("sel", "message"),
    [
        (
            {"matchExpressions": [{"key": "a", "operator": "In"}]},
            "values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "NotIn", "values": []}]},
            "values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
            'values: Invalid value: ["x"]: values set must be empty for exists and does not exist',
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "DoesNotExist", "values": ["x", "y"]}]},
            'values: Invalid value: ["x","y"]: values set must be empty for exists and does not '
            "exist",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "Seriously"}]},
            '"Seriously" is not a valid label selector operator',
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "in", "values": ["x"]}]},
            '"in" is not a valid label selector operator',
        ),
        (
            {"matchExpressions": [{"key": "a"}]},
            '"" is not a valid label selector operator',
        ),
        (
            {"matchLabels": {"app": "demo-{nginx}"}},
            f'values[0][app]: Invalid value: "demo-{{nginx}}": {VALUE_RULE}',
        ),
        (
            {"matchLabels": {"bad key": "x"}},
            f'key: Invalid value: "bad key": name part {QNAME_RULE}',
        ),
        (
            {"matchExpressions": [{"key": "", "operator": "Exists"}]},
            f'key: Invalid value: "": name part must be non-empty; name part {QNAME_RULE}',
        ),
        (
            {"matchExpressions": [{"key": "a b", "operator": "In"}]},
            f'[key: Invalid value: "a b": name part {QNAME_RULE}, values: Invalid value: null: '
            "for 'in', 'notin' operators, values set can't be empty]",
        ),
    ],
)
def test_label_selector_errors(sel: dict[str, Any], message: str) -> None:
    with pytest.raises(SelectorError) as exc:
        from_label_selector(sel)
    assert str(exc.value) == message


@pytest.mark.parametrize(
    "sel",
    [
        {"matchLabels": ["a"]},
        {"matchLabels": {"a": 1}},
        {"matchExpressions": {"key": "a"}},
        {"matchExpressions": ["a"]},
        {"matchExpressions": [{"key": "a", "operator": "In", "values": [1]}]},
        {"matchExpressions": [{"key": "a", "operator": "In", "values": "abc"}]},
    ],
)
def test_label_selector_shape_errors(sel: dict[str, Any]) -> None:
    with pytest.raises(SelectorError):
        from_label_selector(sel)


# --- helpers ---------------------------------------------------------------------------


def test_validators_return_problem_lists() -> None:
    assert validate_label_key("example.com/my-app_1.x") == []
    assert validate_label_key("a") == []
    assert validate_label_key("") == ["name part must be non-empty", f"name part {QNAME_RULE}"]
    assert validate_label_value("") == []
    assert validate_label_value("My_Value-1.2") == []
    assert validate_label_value("a b") == [VALUE_RULE]


def test_go_quote() -> None:
    assert go_quote("plain") == '"plain"'
    assert go_quote('a"b\\c') == '"a\\"b\\\\c"'
    assert go_quote("tab\there\n") == '"tab\\there\\n"'
    assert go_quote("\x01") == '"\\x01"'
    assert go_quote("héllo") == '"héllo"'
