"""Event filters for controllers (controller-runtime ``pkg/predicate``).

A predicate decides, per informer event, whether the event may wake the reconciler. Filtering
happens before anything is queued, so a dropped event costs one function call. Predicates are
an optimisation only: a reconciler is level-triggered and must be correct whichever events it
sees.

The common case is :class:`GenerationChangedPredicate`: the API server bumps
``metadata.generation`` only for spec changes, so status writes (often the controller's own) and
periodic resyncs do not cause another reconcile. Caveat kept from upstream: some built-in kinds
(Deployments) bump the generation for annotation changes too, and objects without a status
subresource bump it on every change.

Predicates compose with ``&``, ``|`` and ``~`` or :func:`And`, :func:`Or`, :func:`Not`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from opkit import labels as _labels

__all__ = [
    "And",
    "AnnotationChangedPredicate",
    "Funcs",
    "GenerationChangedPredicate",
    "LabelChangedPredicate",
    "LabelSelectorPredicate",
    "Not",
    "Or",
    "Predicate",
    "ResourceVersionChangedPredicate",
    "new_predicate_funcs",
]

Obj = dict[str, Any]


def _meta(obj: Obj) -> Mapping[str, Any]:
    meta = obj.get("metadata") if isinstance(obj, Mapping) else None
    return meta if isinstance(meta, Mapping) else {}


class Predicate:
    """Base predicate: lets every event through. Override the methods that should filter.

    ``create(obj)`` for an add (including the initial list), ``update(old, new)`` for a change
    or a resync (``old`` and ``new`` then carry the same resourceVersion), ``delete(obj)`` for a
    deletion; the object of a deletion noticed only on relist is the last known state.
    """

    def create(self, obj: Obj) -> bool:
        return True

    def update(self, old: Obj, new: Obj) -> bool:
        return True

    def delete(self, obj: Obj) -> bool:
        return True

    def __and__(self, other: Predicate) -> Predicate:
        return And(self, other)

    def __or__(self, other: Predicate) -> Predicate:
        return Or(self, other)

    def __invert__(self) -> Predicate:
        return Not(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Funcs(Predicate):
    """A predicate from optional functions; a missing function lets its events through."""

    def __init__(
        self,
        *,
        create: Callable[[Obj], bool] | None = None,
        update: Callable[[Obj, Obj], bool] | None = None,
        delete: Callable[[Obj], bool] | None = None,
    ) -> None:
        self._create = create
        self._update = update
        self._delete = delete

    def create(self, obj: Obj) -> bool:
        return self._create is None or bool(self._create(obj))

    def update(self, old: Obj, new: Obj) -> bool:
        return self._update is None or bool(self._update(old, new))

    def delete(self, obj: Obj) -> bool:
        return self._delete is None or bool(self._delete(obj))


def new_predicate_funcs(accept: Callable[[Obj], bool]) -> Predicate:
    """A predicate applying one object filter to every event (the new object on updates)."""
    return Funcs(create=accept, update=lambda _old, new: accept(new), delete=accept)


class GenerationChangedPredicate(Predicate):
    """Passes updates whose ``metadata.generation`` changed: spec changes, not status/metadata.

    Creates and deletes pass. Resyncs (same object twice) are dropped.
    """

    def update(self, old: Obj, new: Obj) -> bool:
        return _meta(old).get("generation") != _meta(new).get("generation")


class ResourceVersionChangedPredicate(Predicate):
    """Passes updates whose ``metadata.resourceVersion`` changed: drops resyncs only."""

    def update(self, old: Obj, new: Obj) -> bool:
        return _meta(old).get("resourceVersion") != _meta(new).get("resourceVersion")


class LabelChangedPredicate(Predicate):
    """Passes updates whose ``metadata.labels`` changed."""

    def update(self, old: Obj, new: Obj) -> bool:
        return (_meta(old).get("labels") or {}) != (_meta(new).get("labels") or {})


class AnnotationChangedPredicate(Predicate):
    """Passes updates whose ``metadata.annotations`` changed."""

    def update(self, old: Obj, new: Obj) -> bool:
        return (_meta(old).get("annotations") or {}) != (_meta(new).get("annotations") or {})


class LabelSelectorPredicate(Predicate):
    """Passes events of objects whose labels match ``selector`` (the new object on updates).

    ``selector`` is a selector string (``app=web,tier in (a,b)``), a parsed
    :class:`opkit.labels.Selector`, or a ``metav1.LabelSelector`` dict (``matchLabels``/
    ``matchExpressions``). An update that moves an object *out* of the selection is dropped:
    combine with another predicate (``|``) when a reconciler must see that transition.
    """

    def __init__(self, selector: str | _labels.Selector | Mapping[str, Any]) -> None:
        if isinstance(selector, str):
            self.selector = _labels.parse(selector)
        elif isinstance(selector, _labels.Selector):
            self.selector = selector
        else:
            self.selector = _labels.from_label_selector(selector)

    def _matches(self, obj: Obj) -> bool:
        return self.selector.matches(_meta(obj).get("labels") or {})

    def create(self, obj: Obj) -> bool:
        return self._matches(obj)

    def update(self, old: Obj, new: Obj) -> bool:
        return self._matches(new)

    def delete(self, obj: Obj) -> bool:
        return self._matches(obj)

    def __repr__(self) -> str:
        return f"LabelSelectorPredicate({str(self.selector)!r})"


class _Combination(Predicate):
    """Combines the answers of several predicates with ``_combine`` (``all`` or ``any``)."""

    _combine: Callable[[Iterable[bool]], bool]

    def __init__(self, *predicates: Predicate) -> None:
        self.predicates = predicates

    def create(self, obj: Obj) -> bool:
        return self._combine(p.create(obj) for p in self.predicates)

    def update(self, old: Obj, new: Obj) -> bool:
        return self._combine(p.update(old, new) for p in self.predicates)

    def delete(self, obj: Obj) -> bool:
        return self._combine(p.delete(obj) for p in self.predicates)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(map(repr, self.predicates))})"


class And(_Combination):
    """Passes an event only if every predicate passes it (short-circuits)."""

    _combine = staticmethod(all)


class Or(_Combination):
    """Passes an event if any predicate passes it (short-circuits)."""

    _combine = staticmethod(any)


class Not(Predicate):
    """Inverts a predicate."""

    def __init__(self, predicate: Predicate) -> None:
        self.predicate = predicate

    def create(self, obj: Obj) -> bool:
        return not self.predicate.create(obj)

    def update(self, old: Obj, new: Obj) -> bool:
        return not self.predicate.update(old, new)

    def delete(self, obj: Obj) -> bool:
        return not self.predicate.delete(obj)

    def __repr__(self) -> str:
        return f"Not({self.predicate!r})"
