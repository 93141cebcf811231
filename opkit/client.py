"""A dict-based Kubernetes client over the official ``kubernetes.client.ApiClient``.

The official client does the transport (TLS, auth plugins, token refresh, proxies); everything
above it is here and works on plain JSON dicts, never on the generated pydantic models, which
are slow on large lists and break between major versions. Non-2xx answers become typed
:mod:`opkit.errors`; transient failures are retried (see :mod:`opkit._retry` for which calls
may be repeated); watches have a client read timeout so a silently dead connection is noticed.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import os
import threading
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal, Self
from urllib.parse import quote

import urllib3
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from opkit import errors
from opkit._closing import Closing
from opkit._retry import NO_RETRY, RetryPolicy, call_with_retries
from opkit.clock import REAL_CLOCK, Clock
from opkit.discovery import APIResource, RESTMapper
from opkit.log import get_logger

__all__ = [
    "DEFAULT_POOL_MAXSIZE",
    "DEFAULT_RETRY",
    "NO_RETRY",
    "Client",
    "PatchType",
    "ResourceClient",
    "RetryPolicy",
    "WatchStream",
]

_log = get_logger(component="opkit.client")

Obj = dict[str, Any]
RequestTimeout = float | tuple[float, float]
PatchType = Literal["merge", "json", "strategic", "apply"]
Query = Mapping[str, Any] | Sequence[tuple[str, Any]]

DEFAULT_RETRY = RetryPolicy()
DEFAULT_TIMEOUT: tuple[float, float] = (10.0, 60.0)
DEFAULT_WATCH_READ_TIMEOUT = 75.0
# Connections kept per host: room for a watch per informer plus the ordinary requests.
DEFAULT_POOL_MAXSIZE = 64

PATCH_CONTENT_TYPES: dict[str, str] = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "apply": "application/apply-patch+yaml",
}
# A merge, strategic or apply patch sets fields to given values: applying it twice is the same
# as applying it once. A JSON patch may add to a list or test a value, so it is not.
_IDEMPOTENT_PATCHES = frozenset({"merge", "strategic", "apply"})

_SERVICE_HOST_ENV = "KUBERNETES_SERVICE_HOST"


def _transport_error(exc: BaseException) -> errors.TransportError:
    """Classify a urllib3/socket failure by whether the request can have reached the server."""
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, urllib3.exceptions.ReadTimeoutError | TimeoutError):
        return errors.ReadTimeout(text)
    if isinstance(
        exc,
        urllib3.exceptions.NewConnectionError
        | urllib3.exceptions.ConnectTimeoutError
        | urllib3.exceptions.NameResolutionError
        | ConnectionRefusedError,
    ):
        return errors.ConnectionFailed(text, request_sent=False)
    return errors.ConnectionFailed(text, request_sent=True)


def _read_all(resp: urllib3.BaseHTTPResponse) -> bytes:
    """The whole body of a response, its connection returned to the pool either way."""
    try:
        data: bytes = resp.read()
    except Exception as exc:
        raise _transport_error(exc) from exc
    finally:
        resp.release_conn()
    return data


def _parse_json(data: bytes) -> Any:
    if not data:
        return {}
    try:
        return json.loads(data)
    except ValueError:
        return data.decode("utf-8", errors="replace")


def _query_items(query: Query | None) -> list[tuple[str, Any]]:
    if not query:
        return []
    items = list(query.items()) if isinstance(query, Mapping) else list(query)
    return [(k, v) for k, v in items if v is not None]


class _Shared:
    """State shared by a client and its :meth:`Client.with_options` views."""

    def __init__(self, refresh_interval: float) -> None:
        self.lock = threading.Lock()
        self.mapper: RESTMapper | None = None
        self.refresh_interval = refresh_interval


class Client(Closing):
    """A connection to one API server.

    Build it with :meth:`from_kubeconfig`, :meth:`in_cluster` or :meth:`auto`, or wrap an
    existing ``ApiClient``. Thread-safe. ``timeout`` is ``(connect, read)`` seconds (or one total)
    for ordinary requests; ``retry`` bounds retries of transient failures; ``clock`` is used for
    retry waits and the discovery cache. Call :meth:`close` (or use ``with``) when done.
    """

    def __init__(
        self,
        api_client: k8s_client.ApiClient,
        *,
        clock: Clock = REAL_CLOCK,
        retry: RetryPolicy = DEFAULT_RETRY,
        timeout: RequestTimeout = DEFAULT_TIMEOUT,
        discovery_refresh_interval: float = 5.0,
    ) -> None:
        self.api_client = api_client
        self.clock = clock
        self.retry = retry
        self.timeout = timeout
        self._shared = _Shared(discovery_refresh_interval)

    # -- construction -----------------------------------------------------------------------

    @classmethod
    def from_configuration(
        cls,
        configuration: k8s_client.Configuration,
        *,
        pool_maxsize: int | None = None,
        **kwargs: Any,
    ) -> Client:
        """Wrap a ``Configuration``. urllib3's own retries are turned off: opkit decides.

        Every informer's watch holds one pooled connection for as long as it runs, so the
        official default pool (5 per CPU) fills up in an operator with a dozen informers and
        every other request then opens (and drops) a fresh connection. The pool therefore
        keeps at least :data:`DEFAULT_POOL_MAXSIZE` connections; ``pool_maxsize`` sets the
        size exactly.
        """
        configuration.retries = False
        if pool_maxsize is not None:
            if pool_maxsize < 1:
                raise ValueError(f"pool_maxsize must be at least 1, not {pool_maxsize}")
            configuration.connection_pool_maxsize = pool_maxsize
        else:
            configuration.connection_pool_maxsize = max(
                int(configuration.connection_pool_maxsize or 0), DEFAULT_POOL_MAXSIZE
            )
        return cls(k8s_client.ApiClient(configuration), **kwargs)

    @classmethod
    def from_kubeconfig(
        cls, path: str | os.PathLike[str] | None = None, context: str | None = None, **kwargs: Any
    ) -> Client:
        """Load a kubeconfig (``path``, else ``$KUBECONFIG``, else ``~/.kube/config``).

        The result goes into a fresh ``Configuration``; the process-wide default the official
        loaders would otherwise change is left alone.
        """
        if path is None:
            path = os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
        configuration = k8s_client.Configuration()
        k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=os.fspath(path),
            context=context,
            client_configuration=configuration,
            persist_config=False,
        )
        return cls.from_configuration(configuration, **kwargs)

    @classmethod
    def in_cluster(cls, **kwargs: Any) -> Client:
        """Use the pod's service account (token re-read as it rotates)."""
        configuration = k8s_client.Configuration()
        k8s_config.load_incluster_config(  # type: ignore[no-untyped-call]
            client_configuration=configuration
        )
        return cls.from_configuration(configuration, **kwargs)

    @classmethod
    def auto(cls, **kwargs: Any) -> Client:
        """In-cluster when ``KUBERNETES_SERVICE_HOST`` is set, else the kubeconfig."""
        if os.environ.get(_SERVICE_HOST_ENV):
            _log.debug("using in-cluster configuration")
            return cls.in_cluster(**kwargs)
        _log.debug("using kubeconfig")
        return cls.from_kubeconfig(**kwargs)

    def with_options(
        self,
        *,
        retry: RetryPolicy | None = None,
        timeout: RequestTimeout | None = None,
    ) -> Client:
        """A view of this client with other retry/timeout settings (same connection pool)."""
        view = copy.copy(self)
        if retry is not None:
            view.retry = retry
        if timeout is not None:
            view.timeout = timeout
        return view

    def close(self) -> None:
        self.api_client.close()  # type: ignore[no-untyped-call]

    @property
    def host(self) -> str:
        return str(self.api_client.configuration.host)

    # -- discovery --------------------------------------------------------------------------

    @property
    def mapper(self) -> RESTMapper:
        """The discovery cache (created on first use, shared by :meth:`with_options` views)."""
        shared = self._shared
        with shared.lock:
            if shared.mapper is None:
                shared.mapper = RESTMapper(
                    lambda path: self.request("GET", path),
                    clock=self.clock,
                    min_refresh_interval=shared.refresh_interval,
                )
            return shared.mapper

    def resource(self, api_version: str, kind: str) -> ResourceClient:
        """A client for the resource serving ``kind`` (looked up through discovery)."""
        return ResourceClient(self, self.mapper.resource_for_kind(api_version, kind))

    def resource_for(
        self, group: str, version: str, plural: str, namespaced: bool, kind: str = ""
    ) -> ResourceClient:
        """A client for a known group/version/plural (no discovery request)."""
        return ResourceClient(
            self,
            APIResource(
                group=group, version=version, name=plural, kind=kind, namespaced=namespaced
            ),
        )

    def resource_for_object(self, obj: Mapping[str, Any]) -> ResourceClient:
        """A client for the resource of ``obj`` (from its apiVersion and kind)."""
        return self.resource(str(obj.get("apiVersion") or ""), str(obj.get("kind") or ""))

    def server_version(self) -> Obj:
        result: Obj = self.request("GET", "/version")
        return result

    # -- requests ---------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        query: Query | None = None,
        body: Any = None,
        content_type: str | None = None,
        *,
        idempotent: bool | None = None,
        timeout: RequestTimeout | None = None,
    ) -> Any:
        """Send any request and return the parsed JSON answer (text if it is not JSON).

        Retried like the typed calls; ``idempotent`` defaults to True only for GET and HEAD.
        """
        method = method.upper()
        if idempotent is None:
            idempotent = method in ("GET", "HEAD")
        return self._call(
            method,
            path,
            query=query,
            body=body,
            content_type=content_type,
            idempotent=idempotent,
            timeout=timeout,
        )

    def _call(
        self,
        method: str,
        path: str,
        *,
        query: Query | None = None,
        body: Any = None,
        content_type: str | None = None,
        idempotent: bool,
        timeout: RequestTimeout | None = None,
    ) -> Any:
        what = f"{method} {path}"

        def once() -> Any:
            resp = self._send(
                method, path, query=query, body=body, content_type=content_type, timeout=timeout
            )
            data = _read_all(resp)
            if not 200 <= resp.status < 300:
                raise errors.from_status(resp.status, data, dict(resp.headers))
            return _parse_json(data)

        return call_with_retries(
            once, policy=self.retry, clock=self.clock, idempotent=idempotent, what=what
        )

    def _send(
        self,
        method: str,
        path: str,
        *,
        query: Query | None,
        body: Any,
        content_type: str | None,
        timeout: RequestTimeout | None,
    ) -> urllib3.BaseHTTPResponse:
        """One HTTP exchange; returns the unread response (the caller reads or streams it)."""
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type or "application/json"
        api = self.api_client
        try:
            serialized = api.param_serialize(
                method,
                path,
                query_params=_query_items(query),
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
            )
            rest_resp = api.call_api(*serialized, _request_timeout=timeout or self.timeout)
        except ApiException as exc:
            # The REST layer turns TLS failures into status-0 ApiExceptions.
            if not exc.status:
                raise errors.ConnectionFailed(str(exc.reason or exc), request_sent=False) from exc
            raise errors.from_status(exc.status, exc.body, exc.headers) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise _transport_error(exc) from exc
        response: urllib3.BaseHTTPResponse = rest_resp.response
        return response

    def _open_stream(
        self,
        path: str,
        query: Query | None,
        *,
        read_timeout: float,
    ) -> urllib3.BaseHTTPResponse:
        connect = self.timeout[0] if isinstance(self.timeout, tuple) else self.timeout

        def once() -> urllib3.BaseHTTPResponse:
            resp = self._send(
                "GET",
                path,
                query=query,
                body=None,
                content_type=None,
                timeout=(connect, read_timeout),
            )
            if 200 <= resp.status < 300:
                return resp
            raise errors.from_status(resp.status, _read_all(resp), dict(resp.headers))

        return call_with_retries(
            once, policy=self.retry, clock=self.clock, idempotent=True, what=f"WATCH {path}"
        )


def _object_namespace(obj: Mapping[str, Any]) -> str | None:
    meta = obj.get("metadata")
    if isinstance(meta, Mapping):
        ns = meta.get("namespace")
        if isinstance(ns, str) and ns:
            return ns
    return None


def _object_name(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata")
    name = meta.get("name") if isinstance(meta, Mapping) else None
    if not isinstance(name, str) or not name:
        raise ValueError("object has no metadata.name")
    return name


def _has_resource_version(obj: Mapping[str, Any]) -> bool:
    meta = obj.get("metadata")
    return isinstance(meta, Mapping) and bool(meta.get("resourceVersion"))


class ResourceClient:
    """Verbs on one resource type. Objects in and out are plain dicts.

    For a namespaced resource, calls on a single object need a namespace: the argument, or
    the object's ``metadata.namespace``. ``list``/``watch`` without one cover all namespaces.
    """

    def __init__(self, client: Client, resource: APIResource) -> None:
        self.client = client
        self.resource = resource

    def __repr__(self) -> str:
        r = self.resource
        return f"ResourceClient({r.api_version}, {r.name}, namespaced={r.namespaced})"

    @property
    def api_version(self) -> str:
        return self.resource.api_version

    @property
    def kind(self) -> str:
        return self.resource.kind

    @property
    def namespaced(self) -> bool:
        return self.resource.namespaced

    # -- paths --------------------------------------------------------------------------------

    def path(
        self, namespace: str | None = None, name: str | None = None, subresource: str | None = None
    ) -> str:
        """The URL path of the collection, an object, or an object's subresource."""
        r = self.resource
        base = f"/api/{r.version}" if not r.group else f"/apis/{r.group}/{r.version}"
        if r.namespaced and namespace:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{r.name}"
        if name is not None:
            base += f"/{quote(name, safe='')}"
            if subresource:
                base += f"/{subresource}"
        return base

    def _ns(self, namespace: str | None, obj: Mapping[str, Any] | None = None) -> str | None:
        if not self.resource.namespaced:
            return None
        ns = namespace or (_object_namespace(obj) if obj is not None else None)
        if not ns:
            raise ValueError(f"{self.resource.group_resource} is namespaced: a namespace is needed")
        return ns

    def _call(
        self,
        method: str,
        path: str,
        *,
        query: Query | None = None,
        body: Any = None,
        content_type: str | None = None,
        idempotent: bool,
    ) -> Obj:
        """One request whose answer is an object (or a Status)."""
        result: Obj = self.client._call(
            method, path, query=query, body=body, content_type=content_type, idempotent=idempotent
        )
        return result

    @staticmethod
    def _write_query(dry_run: bool, field_manager: str | None) -> list[tuple[str, Any]]:
        query: list[tuple[str, Any]] = []
        if dry_run:
            query.append(("dryRun", "All"))
        if field_manager:
            query.append(("fieldManager", field_manager))
        return query

    # -- reads --------------------------------------------------------------------------------

    def get(
        self, name: str, namespace: str | None = None, *, subresource: str | None = None
    ) -> Obj:
        path = self.path(self._ns(namespace), name, subresource)
        return self._call("GET", path, idempotent=True)

    def list(
        self,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_: str | None = None,
        resource_version: str | None = None,
        resource_version_match: str | None = None,
        timeout_seconds: int | None = None,
    ) -> Obj:
        """One LIST request; the raw List dict (``items``, ``metadata.continue``, ...)."""
        query = [
            ("labelSelector", label_selector or None),
            ("fieldSelector", field_selector or None),
            ("limit", limit or None),
            ("continue", continue_ or None),
            ("resourceVersion", resource_version),
            ("resourceVersionMatch", resource_version_match or None),
            ("timeoutSeconds", timeout_seconds),
        ]
        path = self.path(namespace if self.resource.namespaced else None)
        return self._call("GET", path, query=query, idempotent=True)

    def list_all(
        self,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        page_size: int = 500,
        resource_version: str | None = None,
        resource_version_match: str | None = None,
    ) -> Obj:
        """LIST in pages of ``page_size`` and return one List with every item.

        Like client-go's pager: continue pages drop the resourceVersion, and a continue token
        that expired midway leads to one unpaginated LIST at the original resourceVersion.
        The result carries the first page's ``metadata.resourceVersion`` (the snapshot's).
        """
        select = functools.partial(
            self.list, namespace, label_selector=label_selector, field_selector=field_selector
        )
        first = select(
            limit=page_size,
            resource_version=resource_version,
            resource_version_match=resource_version_match,
        )
        items: list[Any] = list(first.get("items") or [])
        token = (first.get("metadata") or {}).get("continue")
        while token:
            try:
                page = select(limit=page_size, continue_=token)
            except errors.Gone:
                return select(
                    resource_version=resource_version,
                    resource_version_match=resource_version_match,
                )
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
        result = dict(first)
        meta = dict(first.get("metadata") or {})
        meta.pop("continue", None)
        meta.pop("remainingItemCount", None)
        result["metadata"] = meta
        result["items"] = items
        return result

    def watch(
        self,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        timeout_seconds: int | None = None,
        allow_watch_bookmarks: bool = True,
        label_selector: str | None = None,
        field_selector: str | None = None,
        read_timeout: float = DEFAULT_WATCH_READ_TIMEOUT,
        send_initial_events: bool | None = None,
        resource_version_match: str | None = None,
    ) -> WatchStream:
        """Open a watch; iterate the returned stream for ``{"type", "object"}`` events.

        ``timeout_seconds`` is the server-side duration of the watch; ``read_timeout`` is how
        long the client tolerates silence before raising :class:`errors.WatchStalled` (keep it
        above the server's bookmark interval). An ERROR event raises its typed error
        (:class:`errors.Gone` for 410: relist).
        """
        query = [
            ("watch", "true"),
            ("resourceVersion", resource_version),
            ("timeoutSeconds", timeout_seconds),
            ("allowWatchBookmarks", "true" if allow_watch_bookmarks else None),
            ("labelSelector", label_selector or None),
            ("fieldSelector", field_selector or None),
            (
                "sendInitialEvents",
                None
                if send_initial_events is None
                else ("true" if send_initial_events else "false"),
            ),
            ("resourceVersionMatch", resource_version_match or None),
        ]
        path = self.path(namespace if self.resource.namespaced else None)
        response = self.client._open_stream(path, query, read_timeout=read_timeout)
        return WatchStream(response, read_timeout=read_timeout, description=path)

    # -- writes -------------------------------------------------------------------------------

    def create(
        self,
        obj: Mapping[str, Any],
        namespace: str | None = None,
        *,
        dry_run: bool = False,
        field_manager: str | None = None,
        subresource: str | None = None,
        name: str | None = None,
    ) -> Obj:
        """POST ``obj``. Never repeated after an ambiguous failure (it could create twice)."""
        ns = self._ns(namespace, obj)
        if subresource and not name:
            raise ValueError("creating a subresource needs the parent's name")
        path = self.path(ns, name, subresource) if subresource else self.path(ns)
        return self._call(
            "POST",
            path,
            query=self._write_query(dry_run, field_manager),
            body=dict(obj),
            idempotent=False,
        )

    def update(
        self,
        obj: Mapping[str, Any],
        namespace: str | None = None,
        *,
        dry_run: bool = False,
        field_manager: str | None = None,
        subresource: str | None = None,
    ) -> Obj:
        """PUT ``obj``; with ``metadata.resourceVersion`` set it fails with Conflict if stale."""
        path = self.path(self._ns(namespace, obj), _object_name(obj), subresource)
        return self._call(
            "PUT",
            path,
            query=self._write_query(dry_run, field_manager),
            body=dict(obj),
            idempotent=_has_resource_version(obj),
        )

    def update_status(
        self,
        obj: Mapping[str, Any],
        namespace: str | None = None,
        *,
        dry_run: bool = False,
        field_manager: str | None = None,
    ) -> Obj:
        """PUT to the status subresource (only ``status`` changes)."""
        return self.update(
            obj, namespace, dry_run=dry_run, field_manager=field_manager, subresource="status"
        )

    def patch(
        self,
        name: str,
        body: Any,
        namespace: str | None = None,
        *,
        patch_type: PatchType = "merge",
        field_manager: str | None = None,
        force: bool = False,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> Obj:
        """PATCH an object: ``merge`` (RFC 7386), ``json`` (RFC 6902 list of operations),
        ``strategic`` (built-in kinds only) or ``apply`` (server-side apply; needs
        ``field_manager``; ``force`` takes over conflicting fields)."""
        content_type = PATCH_CONTENT_TYPES.get(patch_type)
        if content_type is None:
            raise ValueError(f"unknown patch type {patch_type!r}")
        if patch_type == "json" and not isinstance(body, list):
            raise ValueError("a JSON patch is a list of operations")
        if patch_type == "apply" and not field_manager:
            raise ValueError("server-side apply needs a field_manager")
        if force and patch_type != "apply":
            raise ValueError("force is only allowed with patch_type='apply'")
        query = self._write_query(dry_run, field_manager)
        if force:
            query.append(("force", "true"))
        path = self.path(self._ns(namespace), name, subresource)
        return self._call(
            "PATCH",
            path,
            query=query,
            body=body,
            content_type=content_type,
            idempotent=patch_type in _IDEMPOTENT_PATCHES,
        )

    def patch_status(
        self,
        name: str,
        body: Any,
        namespace: str | None = None,
        *,
        patch_type: PatchType = "merge",
        field_manager: str | None = None,
        force: bool = False,
        dry_run: bool = False,
    ) -> Obj:
        return self.patch(
            name,
            body,
            namespace,
            patch_type=patch_type,
            field_manager=field_manager,
            force=force,
            subresource="status",
            dry_run=dry_run,
        )

    def apply(
        self,
        obj: Mapping[str, Any],
        namespace: str | None = None,
        *,
        field_manager: str,
        force: bool = False,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> Obj:
        """Server-side apply of ``obj`` (creates it when missing)."""
        return self.patch(
            _object_name(obj),
            dict(obj),
            self._ns(namespace, obj),
            patch_type="apply",
            field_manager=field_manager,
            force=force,
            subresource=subresource,
            dry_run=dry_run,
        )

    def delete(
        self,
        name: str,
        namespace: str | None = None,
        *,
        propagation_policy: Literal["Orphan", "Background", "Foreground"] | None = None,
        grace_period_seconds: int | None = None,
        preconditions: Mapping[str, str] | None = None,
        dry_run: bool = False,
    ) -> Obj:
        """DELETE an object; returns the server's answer (the object while finalizers are
        pending, else a Success Status). ``preconditions`` takes ``uid`` and/or
        ``resourceVersion``; only a delete with preconditions is repeated after an ambiguous
        failure (otherwise a retry could remove a re-created object of the same name)."""
        path = self.path(self._ns(namespace), name)
        options = _delete_options(propagation_policy, grace_period_seconds, preconditions, dry_run)
        return self._call("DELETE", path, body=options, idempotent=bool(preconditions))

    def delete_collection(
        self,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        propagation_policy: Literal["Orphan", "Background", "Foreground"] | None = None,
        grace_period_seconds: int | None = None,
        dry_run: bool = False,
    ) -> Obj:
        """DELETE every matching object (of one namespace, for namespaced resources)."""
        query = [
            ("labelSelector", label_selector or None),
            ("fieldSelector", field_selector or None),
        ]
        path = self.path(self._ns(namespace))
        options = _delete_options(propagation_policy, grace_period_seconds, None, dry_run)
        return self._call("DELETE", path, query=query, body=options, idempotent=True)

    # -- scale --------------------------------------------------------------------------------

    def get_scale(self, name: str, namespace: str | None = None) -> Obj:
        return self.get(name, namespace, subresource="scale")

    def update_scale(
        self, scale: Mapping[str, Any], namespace: str | None = None, *, dry_run: bool = False
    ) -> Obj:
        return self.update(scale, namespace, dry_run=dry_run, subresource="scale")

    def patch_scale(
        self,
        name: str,
        body: Any,
        namespace: str | None = None,
        *,
        patch_type: PatchType = "merge",
        dry_run: bool = False,
    ) -> Obj:
        """PATCH the scale subresource, e.g. ``{"spec": {"replicas": 3}}``."""
        return self.patch(
            name, body, namespace, patch_type=patch_type, subresource="scale", dry_run=dry_run
        )

    def scale(self, name: str, replicas: int, namespace: str | None = None) -> Obj:
        """Set ``spec.replicas`` through the scale subresource."""
        return self.patch_scale(name, {"spec": {"replicas": replicas}}, namespace)


def _delete_options(
    propagation_policy: str | None,
    grace_period_seconds: int | None,
    preconditions: Mapping[str, str] | None,
    dry_run: bool,
) -> Obj:
    options: Obj = {"kind": "DeleteOptions", "apiVersion": "v1"}
    if propagation_policy is not None:
        options["propagationPolicy"] = propagation_policy
    if grace_period_seconds is not None:
        options["gracePeriodSeconds"] = grace_period_seconds
    if preconditions:
        unknown = set(preconditions) - {"uid", "resourceVersion"}
        if unknown:
            raise ValueError(f"unknown delete preconditions: {sorted(unknown)}")
        options["preconditions"] = dict(preconditions)
    if dry_run:
        options["dryRun"] = ["All"]
    return options


class WatchStream(Closing, Iterator[Obj]):
    """The events of one watch request, parsed, in order.

    Iteration ends when the server ends the watch (its ``timeoutSeconds``) or after
    :meth:`close`, which may be called from another thread to unblock a reader. Raises
    :class:`errors.WatchStalled` after ``read_timeout`` seconds of silence,
    :class:`errors.ConnectionFailed` if the connection breaks, and the typed error of an
    ERROR event (:class:`errors.Gone` for 410, with the Status in ``body``). The stream is
    closed in every one of those cases. :attr:`resource_version` is the last one seen
    (bookmarks included), the place to resume from.
    """

    _CHUNK = 65536

    def __init__(
        self,
        response: urllib3.BaseHTTPResponse,
        *,
        read_timeout: float = DEFAULT_WATCH_READ_TIMEOUT,
        description: str = "",
    ) -> None:
        self._response = response
        self._read_timeout = read_timeout
        self.description = description
        self.resource_version: str | None = None
        self._buffer = b""  # an incomplete last line
        self._lines: deque[bytes] = deque()  # complete lines not yet parsed
        self._closed = False
        self._released = False
        self._lock = threading.Lock()

    @property
    def closed(self) -> bool:
        return self._closed

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> Obj:
        while True:
            if self._closed:
                self._release()
                raise StopIteration
            if self._lines:
                line = self._lines.popleft()
                if line.strip():
                    return self._event(line)
                continue
            chunk = self._read()
            if not chunk:
                tail, self._buffer = self._buffer, b""
                self.close()
                if tail.strip():
                    return self._event(tail)
                raise StopIteration
            # Split each chunk once: re-partitioning a growing buffer per event is quadratic.
            lines = (self._buffer + chunk).split(b"\n")
            self._buffer = lines.pop()
            self._lines.extend(lines)

    def _read(self) -> bytes:
        try:
            data: bytes = self._response.read1(self._CHUNK)
        except Exception as exc:
            if self._closed:
                return b""
            self.close()
            err = _transport_error(exc)
            if isinstance(err, errors.ReadTimeout):
                raise errors.WatchStalled(
                    f"watch {self.description} silent for {self._read_timeout}s"
                ) from exc
            raise err from exc
        return data

    def _event(self, line: bytes) -> Obj:
        try:
            event = json.loads(line)
        except ValueError as exc:
            self.close()
            raise errors.ConnectionFailed(f"malformed watch event: {line[:200]!r}") from exc
        if not isinstance(event, dict):
            self.close()
            raise errors.ConnectionFailed(f"malformed watch event: {line[:200]!r}")
        obj = event.get("object")
        if event.get("type") == "ERROR":
            self.close()
            status = obj if isinstance(obj, dict) else {}
            code = status.get("code") if isinstance(status.get("code"), int) else 500
            raise errors.from_status(int(code or 500), json.dumps(status))
        if isinstance(obj, dict):
            rv = (obj.get("metadata") or {}).get("resourceVersion")
            if rv:
                self.resource_version = str(rv)
        return event

    def close(self) -> None:
        """End the stream and free its connection; safe to call more than once, from any
        thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        # Shutting the socket down unblocks a reader in another thread; closing drops the
        # half-read connection (it cannot be reused) and release_conn returns its pool slot.
        with contextlib.suppress(Exception):
            self._response.shutdown()
        with contextlib.suppress(Exception):
            self._response.close()
        self._release()

    def _release(self) -> None:
        with self._lock:
            if self._released:
                return
            self._released = True
        with contextlib.suppress(Exception):
            self._response.release_conn()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()
