"""Kind <-> resource mapping from the API server's discovery documents (a RESTMapper).

Reads the legacy discovery format (``/api``, ``/apis`` and one ``APIResourceList`` per
group-version), which every server serves. Documents are fetched lazily -- asking for
``apps/v1`` ``Deployment`` reads only ``/apis/apps/v1`` -- and cached. A miss refetches the
documents involved, so a CRD registered at runtime is found, but never more often than every
``min_refresh_interval`` seconds per document, so repeated lookups of a kind that does not exist
do not hammer the server.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from opkit import errors
from opkit.clock import REAL_CLOCK, Clock

__all__ = ["APIResource", "RESTMapper", "Subresource", "split_api_version"]


@dataclass(frozen=True)
class Subresource:
    """A subresource such as ``status`` or ``scale`` and the kind it speaks."""

    name: str
    kind: str
    group: str
    version: str
    verbs: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


@dataclass(frozen=True)
class APIResource:
    """One resource type: where it lives (group/version/plural) and what it holds (kind)."""

    group: str
    version: str
    name: str
    kind: str
    namespaced: bool
    singular_name: str = ""
    verbs: tuple[str, ...] = ()
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[Subresource, ...] = field(default=())

    @property
    def plural(self) -> str:
        return self.name

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """``plural.group`` (just ``plural`` for the core group), as kubectl prints it."""
        return f"{self.name}.{self.group}" if self.group else self.name

    def subresource(self, name: str) -> Subresource | None:
        for sub in self.subresources:
            if sub.name == name:
                return sub
        return None

    def has_subresource(self, name: str) -> bool:
        return self.subresource(name) is not None


def split_api_version(api_version: str) -> tuple[str, str]:
    """``"apps/v1"`` -> ``("apps", "v1")``; ``"v1"`` -> ``("", "v1")``."""
    if not api_version:
        raise ValueError("apiVersion is empty")
    group, sep, version = api_version.rpartition("/")
    if sep and not group:
        raise ValueError(f"invalid apiVersion {api_version!r}")
    return group, version


def _gv_path(group: str, version: str) -> str:
    return f"/api/{version}" if not group else f"/apis/{group}/{version}"


def _parse_resource_list(doc: dict[str, Any], group: str, version: str) -> list[APIResource]:
    entries = [r for r in doc.get("resources") or [] if isinstance(r, dict)]
    subs: dict[str, list[Subresource]] = {}
    for entry in entries:
        name = str(entry.get("name") or "")
        parent, sep, sub = name.partition("/")
        if not sep:
            continue
        subs.setdefault(parent, []).append(
            Subresource(
                name=sub,
                kind=str(entry.get("kind") or ""),
                group=str(entry.get("group", group) or ""),
                version=str(entry.get("version") or version),
                verbs=tuple(entry.get("verbs") or ()),
            )
        )
    out: list[APIResource] = []
    for entry in entries:
        name = str(entry.get("name") or "")
        if not name or "/" in name:
            continue
        out.append(
            APIResource(
                group=group,
                version=version,
                name=name,
                kind=str(entry.get("kind") or ""),
                namespaced=bool(entry.get("namespaced")),
                singular_name=str(entry.get("singularName") or ""),
                verbs=tuple(entry.get("verbs") or ()),
                short_names=tuple(entry.get("shortNames") or ()),
                categories=tuple(entry.get("categories") or ()),
                subresources=tuple(subs.get(name, ())),
            )
        )
    return out


@dataclass
class _Group:
    name: str
    versions: list[str]
    preferred: str


@dataclass
class _Cached:
    resources: list[APIResource] | None  # None: the server has no such group-version
    fetched_at: float


class RESTMapper:
    """Cached discovery. Thread-safe; lookups that hit the cache make no requests.

    ``fetch(path)`` returns the parsed JSON of a GET (the client's raw GET) and raises
    :class:`opkit.errors.NotFound` for a 404.
    """

    def __init__(
        self,
        fetch: Callable[[str], Any],
        *,
        clock: Clock = REAL_CLOCK,
        min_refresh_interval: float = 5.0,
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._min_refresh = min_refresh_interval
        self._lock = threading.RLock()
        self._groups: list[_Group] | None = None
        self._groups_fetched_at = 0.0
        self._gvs: dict[tuple[str, str], _Cached] = {}

    # -- public lookups ---------------------------------------------------------------------

    def resource_for_kind(self, api_version: str, kind: str) -> APIResource:
        """The resource serving ``kind`` in ``api_version``; raises :class:`errors.NoMatch`."""
        group, version = split_api_version(api_version)
        with self._lock:
            found = self._find_kind(self._gv(group, version, refresh=False), kind)
            if found is None and self._stale(self._gvs.get((group, version))):
                found = self._find_kind(self._gv(group, version, refresh=True), kind)
        if found is None:
            raise errors.NoMatch(f'no matches for kind "{kind}" in version "{api_version}"')
        return found

    def kind_for(self, resource: str) -> APIResource:
        """Resolve ``plural``, ``singular``, a short name, ``name.group`` or ``name.version.group``.

        Preferred versions win, and the core group is searched first, as kubectl does.
        """
        with self._lock:
            found = self._resolve(resource, refresh=False)
            if found is None:
                found = self._resolve(resource, refresh=True)
        if found is None:
            raise errors.NoMatch(f'the server doesn\'t have a resource type "{resource}"')
        return found

    def resources_for(self, api_version: str) -> list[APIResource]:
        """Every top-level resource of a group-version (empty if the server does not serve it)."""
        group, version = split_api_version(api_version)
        with self._lock:
            return list(self._gv(group, version, refresh=False) or [])

    def all_resources(self, *, preferred_only: bool = True) -> list[APIResource]:
        """Every resource of every group (only preferred versions unless told otherwise)."""
        with self._lock:
            out: list[APIResource] = []
            for g in self._group_list(refresh=False):
                versions = [g.preferred] if preferred_only else g.versions
                for v in versions:
                    out.extend(self._gv(g.name, v, refresh=False) or [])
            return out

    def preferred_version(self, group: str) -> str | None:
        with self._lock:
            for g in self._group_list(refresh=False):
                if g.name == group:
                    return g.preferred
            for g in self._group_list(refresh=self._groups_stale()):
                if g.name == group:
                    return g.preferred
        return None

    def invalidate(self) -> None:
        """Forget everything; the next lookup refetches what it needs."""
        with self._lock:
            self._groups = None
            self._gvs.clear()

    # -- internals (called with the lock held) ----------------------------------------------

    def _stale(self, cached: _Cached | None) -> bool:
        return cached is None or self._clock.monotonic() - cached.fetched_at >= self._min_refresh

    def _groups_stale(self) -> bool:
        return (
            self._groups is None
            or self._clock.monotonic() - self._groups_fetched_at >= self._min_refresh
        )

    def _gv(self, group: str, version: str, *, refresh: bool) -> list[APIResource] | None:
        key = (group, version)
        cached = self._gvs.get(key)
        if cached is not None and not refresh:
            return cached.resources
        try:
            doc = self._fetch(_gv_path(group, version))
        except errors.NotFound:
            resources = None
        else:
            resources = _parse_resource_list(doc if isinstance(doc, dict) else {}, group, version)
        self._gvs[key] = _Cached(resources, self._clock.monotonic())
        return resources

    def _group_list(self, *, refresh: bool) -> list[_Group]:
        if self._groups is not None and not refresh:
            return self._groups
        groups: list[_Group] = []
        try:
            core = self._fetch("/api")
        except errors.NotFound:
            core = {}
        core_versions = [str(v) for v in (core or {}).get("versions") or []]
        if core_versions:
            groups.append(_Group("", core_versions, core_versions[0]))
        try:
            apis = self._fetch("/apis")
        except errors.NotFound:
            apis = {}
        for g in (apis or {}).get("groups") or []:
            versions = [str(v.get("version")) for v in g.get("versions") or []]
            if not versions:
                continue
            preferred = str((g.get("preferredVersion") or {}).get("version") or versions[0])
            groups.append(_Group(str(g.get("name") or ""), versions, preferred))
        self._groups = groups
        self._groups_fetched_at = self._clock.monotonic()
        return groups

    @staticmethod
    def _find_kind(resources: Iterable[APIResource] | None, kind: str) -> APIResource | None:
        for r in resources or ():
            if r.kind == kind:
                return r
        return None

    def _resolve(self, resource: str, *, refresh: bool) -> APIResource | None:
        if refresh:
            if not self._groups_stale():
                refreshed_groups = False
            else:
                self._group_list(refresh=True)
                refreshed_groups = True
        else:
            refreshed_groups = False
        candidates = _candidates(resource)
        for g in self._group_list(refresh=False):
            ordered = [g.preferred, *[v for v in g.versions if v != g.preferred]]
            for v in ordered:
                wanted = [n for (n, grp, ver) in candidates if _matches(grp, ver, g.name, v)]
                if not wanted:
                    continue
                key = (g.name, v)
                fresh_needed = refresh and (refreshed_groups or self._stale(self._gvs.get(key)))
                resources = self._gv(g.name, v, refresh=fresh_needed)
                for name in wanted:
                    found = _match_name(resources, name)
                    if found is not None:
                        return found
        return None


def _candidates(resource: str) -> list[tuple[str, str | None, str | None]]:
    """(name, group, version) readings of a kubectl-style resource argument."""
    out: list[tuple[str, str | None, str | None]] = [(resource, None, None)]
    name, sep, rest = resource.partition(".")
    if sep:
        version, sep2, group = rest.partition(".")
        if sep2:
            out.insert(0, (name, group, version))
        out.insert(0 if not sep2 else 1, (name, rest, None))
    return out


def _matches(want_group: str | None, want_version: str | None, group: str, version: str) -> bool:
    if want_group is not None and want_group != group:
        return False
    return want_version is None or want_version == version


def _match_name(resources: Iterable[APIResource] | None, name: str) -> APIResource | None:
    lower = name.lower()
    for r in resources or ():
        if lower in (r.name, r.singular_name):
            return r
    for r in resources or ():
        if lower in r.short_names or r.kind.lower() == lower:
            return r
    return None
