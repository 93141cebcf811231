"""HTTP front end: routing, content negotiation, options parsing and responses.

Every request becomes exactly one response with a Status body on failure (ERR-1) -- bad
input never produces a 500 or a dropped connection. Watches are the one streaming case
(chunked, one event per line, see :mod:`._watch`).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import select
import socket
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

from opkit import labels

from . import _discovery, _openapi, _table, _typecheck
from ._builtin_common import as_dict
from ._fielderrors import FieldError
from ._fieldselect import parse_field_selector
from ._ops import DeleteOptions, WriteContext, parse_body
from ._status import (
    APIError,
    bad_request,
    expired,
    internal_error,
    invalid,
    method_not_allowed,
    not_acceptable,
    not_found,
    unsupported_media_type,
)
from ._store import ExpiredError, Stored, dumps
from ._types import ResourceType
from ._watch import WatchSession, close_quietly

if TYPE_CHECKING:
    from .server import _Core

__all__ = ["APIRequestHandler"]

log = logging.getLogger("opkit.testing.apiserver")

Obj = dict[str, Any]

JSON = "application/json"
YAML = "application/yaml"
DISCOVERY_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
PATCH_TYPES = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
}
_BUILTIN_PATCH_TYPES = [
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
]
_CR_PATCH_TYPES = [
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
]
_CONTINUE_EXPIRED = (
    "The provided continue parameter is too old to display a consistent list result. You can "
    "start a new list without the continue parameter, or use the continue token in this "
    "response to retrieve the remainder of the results. Continuing with the provided token "
    "results in an inconsistent list - objects that were created, modified, or deleted "
    "between the time the first chunk was returned and now may show up in the list."
)

VERSION_INFO = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.4",
    "gitCommit": "59526cd4867447956156ae3a602fcbac10a2c335",
    "gitTreeState": "clean",
    "buildDate": "2025-04-22T16:03:43Z",
    "goVersion": "go1.23.6",
    "compiler": "gc",
    "platform": "linux/amd64",
}

URL_NOT_FOUND = APIError(404, "the server could not find the requested resource", "NotFound")


def go_bool(value: str | None) -> bool:
    """HTTP-5: absent, "0" and "false" (any case) are false; anything else is true."""
    if value is None:
        return False
    return value.lower() not in ("0", "false")


@dataclass
class Response:
    code: int
    body: bytes
    content_type: str = JSON
    headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Route:
    rt: ResourceType
    namespace: str | None
    name: str | None
    sub: str
    watch_prefix: bool


@dataclass
class Accept:
    mode: str  # json | yaml | table | pom
    table_version: str = "v1"


def _parse_media(entry: str) -> tuple[str, dict[str, str]]:
    parts = [p.strip() for p in entry.split(";")]
    params: dict[str, str] = {}
    for p in parts[1:]:
        k, _, v = p.partition("=")
        params[k.strip().lower()] = v.strip()
    return parts[0].lower(), params


def negotiate(accept: str | None, *, discovery: bool = False) -> Accept | str:
    """HTTP-4: pick the first acceptable entry; returns an Accept or the discovery type."""
    if not accept:
        return Accept("json")
    for raw_entry in accept.split(","):
        entry = raw_entry.strip()
        if not entry:
            continue
        mtype, params = _parse_media(entry)
        as_ = params.get("as")
        if mtype in ("application/json", "*/*", "application/*") and as_:
            g, v = params.get("g"), params.get("v")
            if as_ == "Table" and g == "meta.k8s.io" and v in ("v1", "v1beta1"):
                return Accept("table", v)
            if (
                as_ in ("PartialObjectMetadata", "PartialObjectMetadataList")
                and g == "meta.k8s.io"
                and v in ("v1", "v1beta1")
            ):
                return Accept("pom", v)
            if (
                discovery
                and as_ == "APIGroupDiscoveryList"
                and g == "apidiscovery.k8s.io"
                and v == "v2"
            ):
                return DISCOVERY_V2
            continue
        if mtype in ("application/json", "*/*", "application/*"):
            return Accept("json")
        if mtype in ("application/yaml", "text/yaml"):
            return Accept("yaml")
    raise not_acceptable([JSON, YAML])


def _q(query: dict[str, list[str]], key: str) -> str | None:
    v = query.get(key)
    return v[0] if v else None


def _encode_continue(rev: int, key: tuple[str, str]) -> str:
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rev, "start": [key[0], key[1]]})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_continue(token: str) -> tuple[int, tuple[str, str]]:
    try:
        pad = "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(token + pad))
        rev = int(data["rv"])
        ns, name = data["start"]
        if data.get("v") != "meta.k8s.io/v1" or rev <= 0:
            raise ValueError("bad version")
        return rev, (str(ns), str(name))
    except (ValueError, KeyError, TypeError, binascii.Error) as e:
        raise bad_request(f"continue key is not valid: {e}") from e


def _options_invalid(kind: str, errors: list[FieldError]) -> APIError:
    return invalid(kind, "meta.k8s.io", "", errors)


def _parse_rv(value: str, what: str = "resourceVersion") -> int:
    try:
        rv = int(value)
        if rv < 0:
            raise ValueError
        return rv
    except ValueError:
        raise bad_request(f'invalid {what}: "{value}"') from None


class APIRequestHandler(BaseHTTPRequestHandler):
    """One connection; handles requests until the client closes (HTTP/1.1 keep-alive)."""

    protocol_version = "HTTP/1.1"
    server_version = "opkit-apiserver"
    sys_version = ""
    disable_nagle_algorithm = True
    core: _Core  # set on the subclass the server creates

    # -- plumbing ---------------------------------------------------------------------------

    def setup(self) -> None:
        super().setup()
        self.core.track_connection(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.core.track_connection(self.connection, False)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Protocol-level errors (bad request line, headers) still get a Status body."""
        self.close_connection = True
        err = APIError(code, message or self.responses.get(code, ("error",))[0])
        with contextlib.suppress(OSError):
            self._send(self._error(err))

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - %s", self.address_string(), format % args)

    def _read_body(self) -> bytes:
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            chunks: list[bytes] = []
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _serve(self) -> None:
        core = self.core
        started = time.monotonic()
        split = urlsplit(self.path)
        path = split.path
        query = parse_qs(split.query, keep_blank_values=True)
        self._query = query
        try:
            body = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return
        try:
            resp = self._dispatch(path, query, body)
        except APIError as e:
            resp = self._error(e)
        except Exception as e:  # never a dropped connection for bad input
            log.error("internal error serving %s %s: %s", self.command, self.path, e)
            log.debug("%s", traceback.format_exc())
            resp = self._error(internal_error(str(e)))
        if resp is not None:
            core.log_request(self.command, path, split.query, resp.code, time.monotonic() - started)
            self._send(resp)
        else:
            core.log_request(self.command, path, split.query, 200, time.monotonic() - started)

    # http.server calls do_<METHOD>; every method goes through the one pipeline (405 there).
    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve  # noqa: N815

    def _error(self, e: APIError) -> Response:
        headers = list(e.headers.items())
        return Response(e.code, dumps(e.status()), JSON, headers)

    def _send(self, resp: Response) -> None:
        head = [f"HTTP/1.1 {resp.code} {self.responses.get(resp.code, ('',))[0]}"]
        head.append(f"Content-Type: {resp.content_type}")
        head.append(f"Content-Length: {len(resp.body)}")
        head.append("Cache-Control: no-cache, private")
        head.append(f"Date: {self.date_time_string()}")
        for k, v in resp.headers:
            head.append(f"{k}: {v}")
        if self.close_connection:
            head.append("Connection: close")
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1", "replace")
        if self.command != "HEAD":
            data += resp.body
        self.wfile.write(data)

    # -- dispatch ---------------------------------------------------------------------------

    def _dispatch(self, path: str, query: dict[str, list[str]], body: bytes) -> Response | None:
        parts = [unquote(p) for p in path.split("/") if p]
        method = self.command
        if not parts:
            return self._json(200, {"paths": self.core.root_paths()})
        head = parts[0]
        if head == "version" and len(parts) == 1:
            return self._json(200, VERSION_INFO)
        if head in ("healthz", "livez", "readyz"):
            return Response(200, b"ok", "text/plain; charset=utf-8")
        if head == "openapi":
            return self._openapi(parts)
        if head == "api":
            if len(parts) == 1:
                return self._discovery_root(core=True)
            if len(parts) == 2:
                if parts[1] != "v1":
                    raise URL_NOT_FOUND
                return self._resource_list("", "v1")
            if parts[1] != "v1":
                raise URL_NOT_FOUND
            return self._resource(method, "", "v1", parts[2:], query=query, body=body)
        if head == "apis":
            if len(parts) == 1:
                return self._discovery_root(core=False)
            if len(parts) == 2:
                doc = _discovery.api_group(self.core.registry, parts[1])
                if doc is None:
                    raise URL_NOT_FOUND
                return self._json(200, doc)
            if len(parts) == 3:
                return self._resource_list(parts[1], parts[2])
            return self._resource(method, parts[1], parts[2], parts[3:], query=query, body=body)
        raise URL_NOT_FOUND

    def _json(self, code: int, obj: Any, headers: list[tuple[str, str]] | None = None) -> Response:
        return Response(code, dumps(obj), JSON, headers or [])

    def _openapi(self, parts: list[str]) -> Response:
        reg = self.core.registry
        if len(parts) >= 2 and parts[1] == "v3":
            if len(parts) == 2:
                return self._json(200, _openapi.index(reg))
            doc = _openapi.document(reg, "/".join(parts[2:]))
            if doc is None:
                raise URL_NOT_FOUND
            return self._json(200, doc)
        if len(parts) == 2 and parts[1] == "v2":
            return self._openapi_v2()
        raise URL_NOT_FOUND

    def _openapi_v2(self) -> Response:
        """An empty OpenAPI v2 document.

        kubectl validates ``kind: List`` manifests client-side against v2 whatever v3 says;
        a 404 there makes ``kubectl apply -f list.yaml`` fail, while an empty document (no
        definitions) lets the items through to server-side ``fieldValidation``. The protobuf
        media type is spelled with a dot: Go's mime parser rejects the ``@`` of the Accept form.
        """
        if "protobuf" in (self.headers.get("Accept") or ""):
            return Response(200, b"", "application/com.github.proto-openapi.spec.v2.v1.0+protobuf")
        doc = {"swagger": "2.0", "info": {"title": "Kubernetes", "version": "v1.32.4"}}
        return self._json(200, {**doc, "paths": {}, "definitions": {}})

    def _discovery_root(self, *, core: bool) -> Response:
        reg = self.core.registry
        chosen = negotiate(self.headers.get("Accept"), discovery=True)
        if chosen == DISCOVERY_V2:
            return Response(200, dumps(_discovery.aggregated(reg, core)), DISCOVERY_V2)
        if core:
            return self._json(200, _discovery.api_versions(self.core.server_address()))
        return self._json(200, _discovery.api_group_list(reg))

    def _resource_list(self, group: str, version: str) -> Response:
        doc = _discovery.api_resource_list(self.core.registry, group, version)
        if doc is None:
            raise URL_NOT_FOUND
        return self._json(200, doc)

    # -- resources --------------------------------------------------------------------------

    def _route(self, group: str, version: str, rest: list[str]) -> Route:
        watch_prefix = False
        if rest and rest[0] == "watch":
            watch_prefix = True
            rest = rest[1:]
        if not rest:
            raise URL_NOT_FOUND
        ns: str | None = None
        if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in ("status", "finalize"):
            ns = rest[1]
            rest = rest[2:]
        if len(rest) > 3:
            raise URL_NOT_FOUND
        plural = rest[0]
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else ""
        rt = self.core.registry.lookup(group, version, plural)
        if rt is None:
            raise URL_NOT_FOUND
        if ns is not None and not rt.namespaced:
            raise URL_NOT_FOUND
        if rt.namespaced and ns is None and name is not None:
            raise URL_NOT_FOUND
        if name == "":
            raise URL_NOT_FOUND
        return Route(rt, ns, name, sub, watch_prefix)

    def _resource(
        self,
        method: str,
        group: str,
        version: str,
        rest: list[str],
        *,
        query: dict[str, list[str]],
        body: bytes,
    ) -> Response | None:
        route = self._route(group, version, rest)
        rt, ns, name, sub = route.rt, route.namespace, route.name, route.sub
        watch = route.watch_prefix or go_bool(_q(query, "watch"))
        verb = self._verb(method, route, watch)
        core = self.core
        resources = (rt.plural, rt.group_resource, f"{rt.plural}/{sub}" if sub else rt.plural)
        fault = core.faults.check(verb, resources)
        delay = core.faults.latency(verb, resources)
        if delay > 0:
            time.sleep(delay)  # simulated network latency: real time even with a fake clock
        if fault is not None:
            raise fault
        if sub:
            return self._subresource(method, verb, route, query, body)
        if verb not in rt.verbs:
            raise method_not_allowed(verb, rt.plural)
        if name is None:
            if verb == "watch":
                return self._watch(rt, ns, query)
            if verb == "list":
                return self._list(rt, ns, query)
            if verb == "create":
                if ns is None and rt.namespaced:
                    raise method_not_allowed("create", rt.plural)
                return self._create(rt, ns or "", query, body)
            return self._delete_collection(rt, ns, query, body)
        if verb == "create":
            raise method_not_allowed("create", rt.plural)  # POST on an item path
        if verb == "watch":
            # /watch/.../{name}: a watch of the collection narrowed to one name
            fsel = _q(query, "fieldSelector")
            pinned = f"metadata.name={name}" + (f",{fsel}" if fsel else "")
            return self._watch(rt, ns, {**query, "fieldSelector": [pinned]})
        if verb == "get":
            return self._get(rt, ns or "", name, query)
        if verb == "update":
            return self._update(rt, ns or "", name, query, body, sub="")
        if verb == "patch":
            return self._patch(rt, ns or "", name, query, body, sub="")
        return self._delete(rt, ns or "", name, query, body)

    @staticmethod
    def _verb(method: str, route: Route, watch: bool) -> str:
        collection = route.name is None
        if method in ("GET", "HEAD"):
            if collection:
                return "watch" if watch else "list"
            return "watch" if route.watch_prefix else "get"
        if method == "POST":
            return "create"
        if method == "PUT" and not collection:
            return "update"
        if method == "PATCH" and not collection:
            return "patch"
        if method == "DELETE":
            return "deletecollection" if collection else "delete"
        raise method_not_allowed(method, route.rt.plural)

    def _accept(self) -> Accept:
        chosen = negotiate(self.headers.get("Accept"))
        assert isinstance(chosen, Accept)
        return chosen

    def _encode(self, rt: ResourceType, obj: Obj | Stored, code: int = 200) -> Response:
        """A single-object response in the negotiated format."""
        acc = self._accept()
        if self.command not in ("GET", "HEAD") and acc.mode in ("table", "pom"):
            acc = Accept("json")
        if acc.mode == "json" or (isinstance(obj, dict) and obj.get("kind") == "Status"):
            if isinstance(obj, Stored):
                return Response(code, self.core.backend.view_raw(rt, obj))
            return Response(code, dumps(obj))
        view = obj if isinstance(obj, dict) else self.core.backend.to_view(rt, obj.obj)
        if acc.mode == "yaml":
            return Response(code, yaml.safe_dump(view, sort_keys=False).encode(), YAML)
        if acc.mode == "pom":
            return Response(code, dumps(_pom(view, acc.table_version)))
        return Response(code, dumps(self._table(rt, [view], {}, with_definitions=True)))

    def _table(
        self, rt: ResourceType, objs: list[Obj], list_meta: Obj, *, with_definitions: bool
    ) -> Obj:
        include = _q(self._query, "includeObject") or "Metadata"
        return _table.to_table(
            rt,
            objs,
            include_object=include,
            with_definitions=with_definitions,
            list_meta=list_meta,
            now=self.core.clock.now(),
        )

    # -- reads ------------------------------------------------------------------------------

    def _wait_rev(self, rv: int) -> None:
        """RV-1: a resourceVersion from the future waits briefly, then 504."""
        store = self.core.store
        if rv <= store.rev:
            return
        if store.wait_for_rev(rv, self.core.too_large_rv_wait):
            return
        raise APIError(
            504,
            f"Timeout: Too large resource version: {rv}, current: {store.rev}",
            "Timeout",
            {
                "causes": [
                    {"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}
                ],
                "retryAfterSeconds": 1,
            },
        )

    def _get(self, rt: ResourceType, ns: str, name: str, query: dict[str, list[str]]) -> Response:
        store = self.core.store
        rv_s = _q(query, "resourceVersion") or ""
        match = _q(query, "resourceVersionMatch") or ""
        key_ns = ns if rt.namespaced else ""
        if rv_s and rv_s != "0":
            rv = _parse_rv(rv_s)
            self._wait_rev(rv)
            if match == "Exact":
                try:
                    stored = store.get_at(rt.storage, key_ns, name, rv)
                except ExpiredError as e:
                    raise expired(str(e)) from e
                if stored is None:
                    raise not_found(rt.plural, rt.group, name)
                return self._encode(rt, stored)
        stored = store.get(rt.storage, key_ns, name)
        if stored is None:
            raise not_found(rt.plural, rt.group, name)
        return self._encode(rt, stored)

    def _selectors(
        self, rt: ResourceType, query: dict[str, list[str]]
    ) -> Callable[[Obj], bool] | None:
        lsel_s = _q(query, "labelSelector") or ""
        fsel_s = _q(query, "fieldSelector") or ""
        try:
            lsel = labels.parse(lsel_s) if lsel_s else None
            fsel = (
                parse_field_selector(
                    fsel_s,
                    group=rt.group,
                    kind=rt.kind,
                    custom=rt.is_custom,
                    namespaced=rt.namespaced,
                )
                if fsel_s
                else None
            )
        except labels.SelectorError as e:
            raise bad_request(str(e)) from e
        if lsel is not None and lsel.empty():
            lsel = None
        if fsel is not None and fsel.empty():
            fsel = None
        if lsel is None and fsel is None:
            return None

        def matches(obj: Obj) -> bool:
            if lsel is not None and not lsel.matches((obj.get("metadata") or {}).get("labels")):
                return False
            return fsel is None or fsel.matches(obj)

        return matches

    def _list_options(self, query: dict[str, list[str]], *, watch: bool) -> None:
        """PAGE-3: ListOptions validation (apimachinery internalversion/validation)."""
        errs: list[FieldError] = []
        rv = _q(query, "resourceVersion") or ""
        match = _q(query, "resourceVersionMatch") or ""
        cont = _q(query, "continue") or ""
        sie = _q(query, "sendInitialEvents")
        path = "resourceVersionMatch"
        if watch:
            if sie is not None and match != "NotOlderThan":
                errs.append(
                    FieldError.forbidden(
                        path,
                        "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                    )
                )
            if match:
                if sie is None:
                    errs.append(
                        FieldError.forbidden(
                            path,
                            "resourceVersionMatch is forbidden for watch unless "
                            "sendInitialEvents is provided",
                        )
                    )
                if match != "NotOlderThan":
                    errs.append(FieldError.not_supported(path, match, ["NotOlderThan"]))
                if cont:
                    errs.append(
                        FieldError.forbidden(
                            path, "resourceVersionMatch is forbidden when continue is provided"
                        )
                    )
        else:
            if match:
                if not rv:
                    errs.append(
                        FieldError.forbidden(
                            path,
                            "resourceVersionMatch is forbidden unless resourceVersion is provided",
                        )
                    )
                if cont:
                    errs.append(
                        FieldError.forbidden(
                            path, "resourceVersionMatch is forbidden when continue is provided"
                        )
                    )
                if match not in ("Exact", "NotOlderThan"):
                    errs.append(
                        FieldError.not_supported(path, match, ["Exact", "NotOlderThan", ""])
                    )
                if match == "Exact" and rv == "0":
                    errs.append(
                        FieldError.forbidden(
                            path,
                            'resourceVersionMatch "exact" is forbidden for resourceVersion "0"',
                        )
                    )
            if sie is not None:
                errs.append(
                    FieldError.forbidden(
                        "sendInitialEvents", "sendInitialEvents is forbidden for list"
                    )
                )
        if errs:
            raise _options_invalid("ListOptions", errs)
        if cont and rv and not watch:
            raise bad_request("specifying resource version is not allowed when using continue")

    def _list(self, rt: ResourceType, ns: str | None, query: dict[str, list[str]]) -> Response:
        self._list_options(query, watch=False)
        acc = self._accept()
        matches = self._selectors(rt, query)
        store = self.core.store
        rv_s = _q(query, "resourceVersion") or ""
        match = _q(query, "resourceVersionMatch") or ""
        cont = _q(query, "continue") or ""
        limit_s = _q(query, "limit") or ""
        try:
            limit = int(limit_s) if limit_s else 0
        except ValueError:
            raise bad_request(f'invalid limit: "{limit_s}"') from None
        limit = max(limit, 0)
        at_rev: int | None = None
        after: tuple[str, str] | None = None
        if cont:
            at_rev, after = _decode_continue(cont)
        elif rv_s == "0":
            limit = 0 if matches is None else limit
        elif rv_s:
            rv = _parse_rv(rv_s)
            self._wait_rev(rv)
            if match == "Exact" or (limit and not match):
                at_rev = rv
        try:
            items, list_rev = store.list(rt.storage, ns, rev=at_rev, after=after)
        except ExpiredError as e:
            if cont:
                raise expired(_CONTINUE_EXPIRED) from e
            raise expired(str(e)) from e
        be = self.core.backend
        fast = rt.from_storage is None
        if matches is not None:
            chosen: list[Stored] = []
            for s in items:
                view = be.to_view(rt, s.obj) if not fast else s.obj
                if matches(view):
                    chosen.append(s)
                    if limit and len(chosen) > limit:
                        break
            items = chosen
        meta: Obj = {"resourceVersion": str(list_rev)}
        if limit and len(items) > limit:
            page = items[:limit]
            last = page[-1].obj.get("metadata") or {}
            key = (last.get("namespace", "") if rt.namespaced else "", last.get("name", ""))
            meta["continue"] = _encode_continue(list_rev, key)
            if matches is None:
                meta["remainingItemCount"] = len(items) - limit
            items = page
        if acc.mode == "json":
            raws = [be.view_raw(rt, s) for s in items]
            head = dumps({"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": meta})
            body = head[:-1] + b',"items":[' + b",".join(raws) + b"]}"
            return Response(200, body)
        views = [be.to_view(rt, s.obj) for s in items]
        if acc.mode == "yaml":
            doc: Obj = {"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": meta}
            doc["items"] = views
            return Response(200, yaml.safe_dump(doc, sort_keys=False).encode(), YAML)
        if acc.mode == "pom":
            return Response(
                200,
                dumps(
                    {
                        "kind": "PartialObjectMetadataList",
                        "apiVersion": f"meta.k8s.io/{acc.table_version}",
                        "metadata": meta,
                        "items": [_pom(v, acc.table_version) for v in views],
                    }
                ),
            )
        return Response(200, dumps(self._table(rt, views, meta, with_definitions=True)))

    def _watch(
        self, rt: ResourceType, ns: str | None, query: dict[str, list[str]]
    ) -> Response | None:
        self._list_options(query, watch=True)
        acc = self._accept()
        matches = self._selectors(rt, query)
        core = self.core
        rv_s = _q(query, "resourceVersion") or ""
        sie = go_bool(_q(query, "sendInitialEvents"))
        timeout_s = _q(query, "timeoutSeconds")
        timeout: float | None = core.watch_timeout
        if timeout_s:
            try:
                t = int(timeout_s)
            except ValueError:
                raise bad_request(f'invalid timeoutSeconds: "{timeout_s}"') from None
            if t > 0:
                timeout = float(t)
        start_rev: int | None = None
        if rv_s and rv_s != "0":
            rv = _parse_rv(rv_s)
            self._wait_rev(rv)  # a future revision: wait briefly, then 504 (RV-1)
            if not sie:
                start_rev = rv
        table_fn: Callable[[Obj, bool], Obj] | None = None
        if acc.mode == "table":

            def table_fn(obj: Obj, first: bool) -> Obj:
                return self._table(rt, [obj], {}, with_definitions=first)

        session = WatchSession(
            store=core.store,
            rt=rt,
            namespace=ns,
            to_view=core.backend.to_view,
            matches=matches,
            start_rev=start_rev,
            timeout=timeout,
            bookmarks=go_bool(_q(query, "allowWatchBookmarks")),
            bookmark_interval=core.bookmark_interval,
            send_initial_events=sie,
            table=table_fn,
            clock=core.clock,
            faults=core.faults,
            resources=(rt.plural, rt.group_resource),
            write=self._write_chunk,
            sock=self.connection,
        )
        started = session.start()
        if isinstance(started, ExpiredError):
            self._start_stream()
            session.send_expired(started)
            self._end_stream()
            return None
        core.add_session(session)
        try:
            self._start_stream()
            clean = session.run(*started)
        except OSError:
            clean = False
        finally:
            session.close()
            core.remove_session(session)
        if clean:
            self._end_stream()
        else:
            self.close_connection = True
            close_quietly(self.connection)
        return None

    def _start_stream(self, content_type: str = JSON) -> None:
        head = (
            "HTTP/1.1 200 OK\r\n"
            f"Content-Type: {content_type}\r\n"
            "Transfer-Encoding: chunked\r\n"
            "Cache-Control: no-cache, private\r\n"
            f"Date: {self.date_time_string()}\r\n\r\n"
        )
        self.wfile.write(head.encode())

    def _write_chunk(self, data: bytes) -> None:
        if data:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _end_stream(self) -> None:
        with contextlib.suppress(OSError):
            self.wfile.write(b"0\r\n\r\n")

    # -- writes -----------------------------------------------------------------------------

    def _write_ctx(self, query: dict[str, list[str]], options_kind: str) -> WriteContext:
        errs: list[FieldError] = []
        dry = query.get("dryRun") or []
        for i, v in enumerate(dry):
            if v != "All":
                errs.append(FieldError.not_supported(f"dryRun[{i}]", v, ["All"]))
        fv = _q(query, "fieldValidation") or ""
        if fv and fv not in ("Ignore", "Warn", "Strict"):
            errs.append(
                FieldError.not_supported("fieldValidation", fv, ["Ignore", "Strict", "Warn"])
            )
        manager = _q(query, "fieldManager") or ""
        if len(manager) > 128:
            errs.append(FieldError.too_long("fieldManager", 128))
        if errs:
            raise _options_invalid(options_kind, errs)
        if not manager:
            ua = self.headers.get("User-Agent") or ""
            manager = ua.split("/")[0] if ua else ""
        return WriteContext(dry_run=bool(dry), field_validation=fv or "Warn", field_manager=manager)

    def _content_type(self) -> str:
        ct = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        return ct or JSON

    def _decode(self, body: bytes, ctx: WriteContext) -> Any:
        ct = self._content_type()
        if ct not in (JSON, YAML):
            raise unsupported_media_type([JSON, YAML])
        return parse_body(body, ct, strict=ctx.field_validation == "Strict")

    def _finish_write(
        self, rt: ResourceType, result: Obj | Stored, ctx: WriteContext, code: int
    ) -> Response:
        if ctx.persisted:
            self.core.count_write()
        resp = self._encode(rt, result, code)
        for w in ctx.warnings:
            resp.headers.append(("Warning", '299 - "' + w.replace('"', '\\"') + '"'))
        return resp

    def _finish_scale(self, scale: Obj, ctx: WriteContext) -> Response:
        if ctx.persisted:
            self.core.count_write()
        return self._json(200, scale)

    def _create(
        self, rt: ResourceType, ns: str, query: dict[str, list[str]], body: bytes
    ) -> Response:
        ctx = self._write_ctx(query, "CreateOptions")
        obj = _expect_object(rt, self._decode(body, ctx))
        result = self.core.backend.create(rt, ns, obj, ctx)
        return self._finish_write(rt, result, ctx, 201)

    def _update(
        self,
        rt: ResourceType,
        ns: str,
        name: str,
        query: dict[str, list[str]],
        body: bytes,
        *,
        sub: str,
    ) -> Response:
        ctx = self._write_ctx(query, "UpdateOptions")
        obj = self._decode(body, ctx)
        be = self.core.backend
        if sub == "scale":
            return self._finish_scale(be.update_scale(rt, ns, name, obj, ctx), ctx)
        result = be.update(rt, ns, name, _expect_object(rt, obj), ctx, sub=sub)
        return self._finish_write(rt, result, ctx, 200)

    def _patch(
        self,
        rt: ResourceType,
        ns: str,
        name: str,
        query: dict[str, list[str]],
        body: bytes,
        *,
        sub: str,
    ) -> Response:
        ct = self._content_type()
        accepted = _CR_PATCH_TYPES if rt.is_custom else _BUILTIN_PATCH_TYPES
        if ct not in accepted:
            raise unsupported_media_type(accepted)
        ptype = PATCH_TYPES[ct]
        ctx = self._write_ctx(query, "PatchOptions")
        force_s = _q(query, "force")
        errs: list[FieldError] = []
        if ptype == "apply" and not _q(query, "fieldManager"):
            errs.append(FieldError.required("fieldManager", "is required for apply patch"))
        if ptype != "apply" and force_s is not None:
            errs.append(FieldError.forbidden("force", "may not be specified for non-apply patch"))
        if errs:
            raise _options_invalid("PatchOptions", errs)
        patch = parse_body(body, ct, strict=ctx.field_validation == "Strict" and ptype != "json")
        be = self.core.backend
        result = be.patch(rt, ns, name, ptype, patch, ctx=ctx, sub=sub, force=go_bool(force_s))
        if sub == "scale":
            assert isinstance(result, dict)
            return self._finish_scale(result, ctx)
        return self._finish_write(rt, result, ctx, ctx.status_code if ptype == "apply" else 200)

    def _delete_options(
        self, query: dict[str, list[str]], body: bytes
    ) -> tuple[DeleteOptions, WriteContext]:
        data: Obj = {}
        if body.strip():
            parsed = parse_body(body, YAML if self._content_type() == YAML else JSON)
            if parsed is not None and not isinstance(parsed, dict):
                raise bad_request(
                    "json: cannot unmarshal array into Go value of type v1.DeleteOptions"
                    if isinstance(parsed, list)
                    else "the DeleteOptions body must be a JSON object"
                )
            data = parsed or {}
            problems = _typecheck.type_errors(data, group="", version="v1", kind="DeleteOptions")
            if problems:
                raise bad_request(problems[0])
        dry = list(query.get("dryRun") or [])
        body_dry = data.get("dryRun")
        if isinstance(body_dry, list):
            dry.extend(str(x) for x in body_dry)
        errs: list[FieldError] = []
        for i, v in enumerate(dry):
            if v != "All":
                errs.append(FieldError.not_supported(f"dryRun[{i}]", v, ["All"]))
        policy = _q(query, "propagationPolicy") or data.get("propagationPolicy")
        orphan_q = _q(query, "orphanDependents")
        orphan: bool | None = go_bool(orphan_q) if orphan_q is not None else None
        if orphan is None and isinstance(data.get("orphanDependents"), bool):
            orphan = data["orphanDependents"]
        if policy is not None and policy not in ("Foreground", "Background", "Orphan"):
            errs.append(
                FieldError.not_supported(
                    "propagationPolicy", policy, ["Foreground", "Background", "Orphan"]
                )
            )
        if policy is not None and orphan is not None:
            errs.append(
                FieldError.invalid(
                    "propagationPolicy",
                    policy,
                    "orphanDependents and deletionPropagation cannot be both set",
                )
            )
        grace_s = _q(query, "gracePeriodSeconds")
        grace: int | None = None
        if grace_s is not None:
            try:
                grace = int(grace_s)
            except ValueError:
                raise bad_request(f'invalid gracePeriodSeconds: "{grace_s}"') from None
        elif isinstance(data.get("gracePeriodSeconds"), int):
            grace = data["gracePeriodSeconds"]
        if errs:
            raise _options_invalid("DeleteOptions", errs)
        pre = data.get("preconditions") or {}
        if not isinstance(pre, dict):
            pre = {}
        opts = DeleteOptions(
            propagation_policy=policy,
            orphan_dependents=orphan,
            grace_period_seconds=grace,
            precondition_uid=pre.get("uid"),
            precondition_rv=pre.get("resourceVersion"),
        )
        return opts, WriteContext(dry_run=bool(dry), field_manager="")

    def _delete(
        self, rt: ResourceType, ns: str, name: str, query: dict[str, list[str]], body: bytes
    ) -> Response:
        opts, ctx = self._delete_options(query, body)
        code, result = self.core.backend.delete(rt, ns, name, opts, ctx)
        return self._finish_write(rt, result, ctx, code)

    def _delete_collection(
        self, rt: ResourceType, ns: str | None, query: dict[str, list[str]], body: bytes
    ) -> Response:
        self._list_options(query, watch=False)
        opts, ctx = self._delete_options(query, body)
        matches = self._selectors(rt, query)
        be = self.core.backend
        items, _ = self.core.store.list(rt.storage, ns)
        deleted: list[Obj] = []
        for s in items:
            view = be.to_view(rt, s.obj)
            if matches is not None and not matches(view):
                continue
            meta = view.get("metadata") or {}
            try:
                _, result = be.delete(
                    rt, meta.get("namespace", ""), meta.get("name", ""), opts, ctx
                )
            except APIError as e:
                if e.code == 404:
                    continue
                raise
            if isinstance(result, Stored):
                deleted.append(be.to_view(rt, result.obj))
            elif result.get("kind") != "Status":
                deleted.append(result)
            else:
                deleted.append(view)
        if ctx.persisted:
            self.core.count_write()
        doc = {
            "kind": rt.list_kind,
            "apiVersion": rt.api_version,
            "metadata": {"resourceVersion": str(self.core.store.rev)},
            "items": deleted,
        }
        return self._json(200, doc)

    # -- subresources -----------------------------------------------------------------------

    def _subresource(
        self,
        method: str,
        verb: str,
        route: Route,
        query: dict[str, list[str]],
        body: bytes,
    ) -> Response | None:
        rt, sub = route.rt, route.sub
        ns = route.namespace or ""
        name = route.name or ""
        is_pod = rt.group == "" and rt.plural == "pods"
        if (sub == "status" and rt.has_status) or (sub == "scale" and rt.scale is not None):
            if verb == "get":
                if sub == "status":
                    return self._get(rt, ns, name, query)
                return self._get_scale(rt, ns, name)
            if verb == "update":
                return self._update(rt, ns, name, query, body, sub=sub)
            if verb == "patch":
                return self._patch(rt, ns, name, query, body, sub=sub)
            raise method_not_allowed(verb, f"{rt.plural}/{sub}")
        if rt.group == "" and rt.plural == "namespaces" and sub == "finalize":
            if verb != "update":
                raise method_not_allowed(verb, "namespaces/finalize")
            return self._update(rt, ns, name, query, body, sub="finalize")
        if is_pod and sub == "log":
            if verb != "get":
                raise method_not_allowed(verb, "pods/log")
            return self._pod_log(ns, name, query)
        if is_pod and sub in ("exec", "attach", "portforward", "proxy"):
            raise bad_request(
                f"pods/{sub} is not supported by the embedded API server: it serves plain "
                "HTTP only (no SPDY or WebSocket upgrades)"
            )
        if is_pod and sub in ("binding", "eviction") and method == "POST":
            return self._pod_action(ns, name, sub, query, body)
        raise URL_NOT_FOUND

    def _get_scale(self, rt: ResourceType, ns: str, name: str) -> Response:
        stored = self.core.store.get(rt.storage, ns if rt.namespaced else "", name)
        if stored is None:
            raise not_found(rt.plural, rt.group, name)
        be = self.core.backend
        return self._json(200, be.scale_of(rt, be.to_view(rt, stored.obj)))

    def _pod_log(self, ns: str, name: str, query: dict[str, list[str]]) -> Response | None:
        core = self.core
        rt = core.registry.lookup("", "v1", "pods")
        assert rt is not None
        stored = core.store.get(rt.storage, ns, name)
        if stored is None:
            raise not_found("pods", "", name)
        spec = stored.obj.get("spec") or {}
        names = [c.get("name", "") for c in spec.get("containers") or []]
        all_names = names + [c.get("name", "") for c in spec.get("initContainers") or []]
        container = _q(query, "container")
        if not container:
            if len(names) != 1:
                raise bad_request(
                    f"a container name must be specified for pod {name}, choose one of: "
                    f"[{' '.join(names)}]"
                )
            container = names[0]
        elif container not in all_names:
            raise bad_request(f"container {container} is not valid for pod {name}")
        previous = go_bool(_q(query, "previous"))
        follow = go_bool(_q(query, "follow"))
        provider = core.log_provider
        if provider is None:
            return Response(200, b"", "text/plain")
        chunks: Iterator[bytes] = iter(provider(ns, name, container, previous, follow))
        if not follow:
            try:
                data = b"".join(chunks)
            except Exception as e:
                raise bad_request(f"unable to retrieve container logs: {e}") from e
            return Response(200, data, "text/plain")
        self._start_stream("text/plain")
        try:
            # Providers should yield now and then (b"" is fine) so that a stopping server
            # or a departed client is noticed between chunks.
            for chunk in chunks:
                if core.closing or (not chunk and _peer_closed(self.connection)):
                    self.close_connection = True
                    return None
                self._write_chunk(chunk)
            self._end_stream()
        except OSError:
            self.close_connection = True
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    close()
        return None

    def _pod_action(
        self, ns: str, name: str, sub: str, query: dict[str, list[str]], body: bytes
    ) -> Response:
        core = self.core
        rt = core.registry.lookup("", "v1", "pods")
        assert rt is not None
        ctx = self._write_ctx(query, "CreateOptions")
        data = self._decode(body, ctx)
        if not isinstance(data, dict):
            raise bad_request("the request body must be an object")
        if sub == "eviction":
            core.backend.delete(rt, ns, name, DeleteOptions(), ctx)
            if ctx.persisted:
                core.count_write()
            return self._json(
                201,
                {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"},
            )
        node = (data.get("target") or {}).get("name")
        if not node:
            raise invalid("Binding", "", name, [FieldError.required("target.name", "")])
        if core.store.get(rt.storage, ns, name) is None:
            raise not_found("pods", "", name)
        bmeta: Obj = as_dict(data.get("metadata"))
        annotations: Obj = as_dict(bmeta.get("annotations"))
        refused: list[str] = []
        now = core.backend.now_str()

        def bind(pod: Obj) -> bool:
            """``setPodHostAndAnnotations``: nodeName, the binding's annotations and
            ``PodScheduled=True`` in one write."""
            meta = pod.setdefault("metadata", {})
            spec = pod.setdefault("spec", {})
            want_uid = bmeta.get("uid")
            if want_uid and want_uid != meta.get("uid"):
                refused.append(
                    f"Precondition failed: UID in precondition: {want_uid}, UID in object meta: "
                    f"{meta.get('uid', '')}"
                )
            elif meta.get("deletionTimestamp"):
                refused.append(f"pod {name} is being deleted, cannot be assigned to a host")
            elif spec.get("nodeName"):
                refused.append(f'pod {name} is already assigned to node "{spec["nodeName"]}"')
            elif spec.get("schedulingGates"):
                refused.append(f"pod {name} has non-empty .spec.schedulingGates")
            if refused:
                return False
            spec["nodeName"] = node
            if annotations:
                meta["annotations"] = {**as_dict(meta.get("annotations")), **annotations}
            status = pod["status"] = as_dict(pod.get("status"))
            conditions = status.get("conditions")
            if not isinstance(conditions, list):
                conditions = status["conditions"] = []
            scheduled = {
                "type": "PodScheduled",
                "status": "True",
                "lastProbeTime": None,
                "lastTransitionTime": now,
            }
            for i, cond in enumerate(conditions):
                if isinstance(cond, dict) and cond.get("type") == "PodScheduled":
                    if cond.get("status") == "True":
                        scheduled["lastTransitionTime"] = cond.get("lastTransitionTime") or now
                    conditions[i] = scheduled
                    break
            else:
                conditions.append(scheduled)
            return True

        if ctx.dry_run:
            stored = core.store.get(rt.storage, ns, name)
            written = stored is not None and bind(stored.copy_obj())
        else:
            written = core.backend.mutate(rt.storage, ns, name, bind)
        if refused:
            raise APIError(
                409,
                f'Operation cannot be fulfilled on pods/binding "{name}": {refused[0]}',
                "Conflict",
                {"name": name, "kind": "pods/binding"},
            )
        if written and not ctx.dry_run:
            core.count_write()
        # Upstream answers with a bare Success Status, which the Python client cannot
        # deserialize as a Binding; echoing the Binding works for every client.
        binding = {"apiVersion": "v1", "kind": "Binding", **data}
        binding.setdefault("metadata", {}).setdefault("name", name)
        binding["metadata"].setdefault("namespace", ns)
        return self._json(201, binding)


def _expect_object(rt: ResourceType, obj: Any) -> Obj:
    if not isinstance(obj, dict):
        raise bad_request(
            f"the object provided is unrecognized or malformed: expected a {rt.kind} object"
        )
    return obj


def _peer_closed(sock: socket.socket) -> bool:
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


def _pom(obj: Obj, version: str) -> Obj:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": f"meta.k8s.io/{version}",
        "metadata": obj.get("metadata") or {},
    }
