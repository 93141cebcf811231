"""Tests for opkit.predicates (controller-runtime pkg/predicate semantics)."""

from __future__ import annotations

from typing import Any

import pytest

from opkit.labels import SelectorError
from opkit.predicates import (
    And,
    AnnotationChangedPredicate,
    Funcs,
    GenerationChangedPredicate,
    LabelChangedPredicate,
    LabelSelectorPredicate,
    Not,
    Or,
    Predicate,
    ResourceVersionChangedPredicate,
    new_predicate_funcs,
)


def obj(
    generation: int = 1,
    rv: str = "1",
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "a", "generation": generation, "resourceVersion": rv}
    if labels is not None:
        meta["labels"] = labels
    if annotations is not None:
        meta["annotations"] = annotations
    return {"metadata": meta}


def test_base_predicate_passes_everything() -> None:
    p = Predicate()
    assert p.create(obj()) and p.update(obj(), obj()) and p.delete(obj())


def test_generation_changed() -> None:
    p = GenerationChangedPredicate()
    assert p.update(obj(generation=1), obj(generation=2))
    assert not p.update(obj(generation=1, rv="1"), obj(generation=1, rv="2"))  # status/metadata
    assert not p.update(obj(), obj())  # resync
    assert p.create(obj()) and p.delete(obj())


def test_resource_version_label_annotation_changed() -> None:
    assert ResourceVersionChangedPredicate().update(obj(rv="1"), obj(rv="2"))
    assert not ResourceVersionChangedPredicate().update(obj(rv="1"), obj(rv="1"))
    assert LabelChangedPredicate().update(obj(labels={"a": "1"}), obj(labels={"a": "2"}))
    assert not LabelChangedPredicate().update(obj(labels={}), obj())  # {} == absent
    assert AnnotationChangedPredicate().update(obj(), obj(annotations={"x": "y"}))
    assert not AnnotationChangedPredicate().update(
        obj(rv="1", annotations={"x": "y"}), obj(rv="2", annotations={"x": "y"})
    )


def test_label_selector_predicate() -> None:
    p = LabelSelectorPredicate("app=web,tier in (a,b)")
    hit, miss = obj(labels={"app": "web", "tier": "a"}), obj(labels={"app": "db"})
    assert p.create(hit) and not p.create(miss)
    assert p.update(miss, hit) and not p.update(hit, miss)
    assert p.delete(hit) and not p.delete(obj())
    assert LabelSelectorPredicate({"matchLabels": {"app": "web"}}).create(hit)
    assert "app=web" in repr(p)
    with pytest.raises(SelectorError):
        LabelSelectorPredicate("app in (")


def test_funcs_and_new_predicate_funcs() -> None:
    only_updates_to_b = Funcs(update=lambda old, new: new["metadata"]["name"] == "b")
    assert only_updates_to_b.create(obj())
    assert not only_updates_to_b.update(obj(), obj())
    named_a = new_predicate_funcs(lambda o: o["metadata"]["name"] == "a")
    other = {"metadata": {"name": "b"}}
    assert named_a.create(obj()) and not named_a.create(other)
    assert named_a.update(other, obj()) and not named_a.update(obj(), other)
    assert named_a.delete(obj()) and not named_a.delete(other)


def test_combinators() -> None:
    gen, labels = GenerationChangedPredicate(), LabelChangedPredicate()
    old, new = obj(generation=1, labels={"a": "1"}), obj(generation=1, labels={"a": "2"})
    assert Or(gen, labels).update(old, new)
    assert (gen | labels).update(old, new)
    assert not And(gen, labels).update(old, new)
    assert not (gen & labels).update(old, new)
    assert Not(gen).update(old, new)
    assert (~gen).update(old, new)
    assert not Not(Predicate()).create(obj())
    assert And().create(obj()) and not Or().create(obj())  # empty: all() / any()
    assert repr(gen & ~labels) == (
        "And(GenerationChangedPredicate(), Not(LabelChangedPredicate()))"
    )
