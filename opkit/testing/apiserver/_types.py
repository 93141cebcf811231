"""What the server knows about one served resource: names, scope, subresources, schema.

Shared by the registry (which builds these), the request pipeline (which routes by them)
and the store (which keys storage by :attr:`ResourceType.storage`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ResourceType", "ScaleSpec"]

Obj = dict[str, Any]


@dataclass(frozen=True)
class ScaleSpec:
    """JSON paths (``.spec.replicas``) behind a ``/scale`` subresource."""

    spec_replicas_path: str
    status_replicas_path: str
    label_selector_path: str | None = None


@dataclass
class ResourceType:
    """One served group/version/resource.

    ``storage`` names the bucket objects live in; two types sharing a bucket are two views
    of one stored object (core/v1 and events.k8s.io/v1 Events). ``to_storage`` and
    ``from_storage`` convert between this view and the stored form; ``None`` means the
    stored form is this view's form.
    """

    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    list_kind: str = ""
    short_names: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    verbs: list[str] = field(
        default_factory=lambda: [
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ]
    )
    has_status: bool = False
    scale: ScaleSpec | None = None
    tracks_generation: bool = False
    is_custom: bool = False
    # For custom resources: the compiled structural schema (opkit.testing.apiserver._schema)
    schema: Any = None
    printer_columns: list[dict[str, Any]] = field(default_factory=list)
    storage: str = ""
    to_storage: Callable[[Obj], Obj] | None = None
    from_storage: Callable[[Obj], Obj] | None = None
    # Name of the owning CRD for custom resources.
    crd_name: str = ""

    def __post_init__(self) -> None:
        if not self.list_kind:
            self.list_kind = self.kind + "List"
        if not self.storage:
            self.storage = f"{self.group}/{self.plural}"

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """``statefulsets.apps`` or ``pods``: the name used in error messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural
