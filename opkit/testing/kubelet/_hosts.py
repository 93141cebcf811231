"""Cluster name resolution without a DNS server: hosts files for pods, a resolver for the host.

:func:`cluster_records` turns Services, their Endpoints/EndpointSlices and Pods into the names
cluster DNS would serve (``<svc>.<ns>.svc.cluster.local``, ``<host>.<subdomain>.<ns>.svc...``
and the shorter forms a pod's search path makes work). ClusterIPs of the embedded plane are
fake and unroutable, so a Service name maps to the addresses of its ready endpoints instead,
one hosts line per address (every client tries the first; a name with no ready endpoint does
not resolve). Pod hostnames follow CoreDNS: a pod with ``hostname`` and ``subdomain`` gets a
name when a headless Service called ``subdomain`` publishes it (ready, or
``publishNotReadyAddresses``).

Pods see the names through a private ``/etc/hosts`` (:func:`hosts_text`, bind-mounted by
:mod:`._podexec`; update it with :func:`write_hosts_file`, which rewrites in place because a
bind mount pins the inode). The host side gets them through :func:`install_resolver`, which
hooks ``socket.getaddrinfo``/``gethostbyname`` in this process, and :func:`run_with_cluster_dns`
for subprocesses that resolve on their own (``etcdctl``, ``getent``). The host's files are
never written.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from ._podexec import podexec_argv

__all__ = [
    "CLUSTER_DOMAIN",
    "HostRecord",
    "ResolverHook",
    "cluster_records",
    "hosts_table",
    "hosts_text",
    "install_resolver",
    "parse_hosts",
    "resolv_conf_text",
    "run_with_cluster_dns",
    "write_hosts_file",
]

CLUSTER_DOMAIN = "cluster.local"
Lookup = Callable[[str], "str | Sequence[str] | None"]

_KUBELET_BASE = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "fe00::0\tip6-mcastprefix\n"
    "fe00::1\tip6-allnodes\n"
    "fe00::2\tip6-allrouters\n"
)


@dataclass(frozen=True)
class HostRecord:
    """One resolvable cluster name with every spelling of it, and its addresses.

    ``names`` resolve from anywhere (canonical FQDN first); ``short`` only inside pods of
    ``namespace``, where the DNS search path would complete them.
    """

    namespace: str
    names: tuple[str, ...]
    ips: tuple[str, ...]
    short: tuple[str, ...] = field(default=())


def _meta(obj: Mapping[str, Any]) -> tuple[str, str]:
    md = obj.get("metadata") or {}
    return str(md.get("namespace") or "default"), str(md.get("name") or "")


def _ip_key(ip: str) -> tuple[int, int]:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return (9, 0)
    return (addr.version, int(addr))


def _pod_ready(pod: Mapping[str, Any]) -> bool:
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    status = pod.get("status") or {}
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )


def _pod_ip(pod: Mapping[str, Any]) -> str | None:
    status = pod.get("status") or {}
    if status.get("phase") in ("Succeeded", "Failed"):
        return None
    ip = status.get("podIP")
    return str(ip) if ip else None


def _endpoints_backends(
    ep: Mapping[str, Any],
) -> list[tuple[str, str | None]]:
    out = []
    for subset in ep.get("subsets") or []:
        for addr in subset.get("addresses") or []:
            if addr.get("ip"):
                out.append((str(addr["ip"]), addr.get("hostname") or None))
    return out


def _slice_backends(sl: Mapping[str, Any]) -> list[tuple[str, str | None]]:
    out = []
    for ep in sl.get("endpoints") or []:
        if (ep.get("conditions") or {}).get("ready") is False:
            continue
        for ip in (ep.get("addresses") or [])[:1]:
            out.append((str(ip), ep.get("hostname") or None))
    return out


def cluster_records(
    services: Iterable[Mapping[str, Any]],
    pods: Iterable[Mapping[str, Any]],
    endpoints: Iterable[Mapping[str, Any]] = (),
    *,
    cluster_domain: str = CLUSTER_DOMAIN,
) -> list[HostRecord]:
    """The names cluster DNS would serve, from cluster state (pure; sorted, deterministic).

    ``endpoints`` may hold core/v1 Endpoints and discovery.k8s.io/v1 EndpointSlices. A
    Service with neither is resolved from its selector over ``pods`` (ready ones, or all with
    an IP when it publishes not-ready addresses), so names work before endpoints exist.
    """
    pods = list(pods)
    by_ip: dict[tuple[str, str], Mapping[str, Any]] = {}
    for pod in pods:
        ip = _pod_ip(pod)
        if ip:
            by_ip[(_meta(pod)[0], ip)] = pod

    backends: dict[tuple[str, str], list[tuple[str, str | None]]] = {}
    for obj in endpoints:
        ns, name = _meta(obj)
        if obj.get("kind") == "EndpointSlice" or "endpoints" in obj:
            labels = (obj.get("metadata") or {}).get("labels") or {}
            svc = labels.get("kubernetes.io/service-name")
            if svc:
                backends.setdefault((ns, str(svc)), []).extend(_slice_backends(obj))
        else:
            backends.setdefault((ns, name), []).extend(_endpoints_backends(obj))

    records: list[HostRecord] = []
    for svc in services:
        ns, name = _meta(svc)
        spec = svc.get("spec") or {}
        if not name or spec.get("type") == "ExternalName":
            continue
        headless = spec.get("clusterIP") == "None"
        publish_all = bool(spec.get("publishNotReadyAddresses"))
        found = backends.get((ns, name))
        if found is None:
            selector = spec.get("selector") or {}
            found = []
            if selector:
                for pod in pods:
                    labels = (pod.get("metadata") or {}).get("labels") or {}
                    ip = _pod_ip(pod)
                    if (
                        _meta(pod)[0] == ns
                        and ip
                        and all(labels.get(k) == v for k, v in selector.items())
                        and (publish_all or _pod_ready(pod))
                    ):
                        pspec = pod.get("spec") or {}
                        host = pspec.get("hostname") if pspec.get("subdomain") == name else None
                        found.append((ip, host or None))
        ips = tuple(sorted({ip for ip, _ in found}, key=_ip_key))
        base = f"{name}.{ns}.svc"
        if ips:
            records.append(
                HostRecord(ns, (f"{base}.{cluster_domain}", base, f"{name}.{ns}"), ips, (name,))
            )
        if not headless:
            continue
        hostnames: dict[str, set[str]] = {}
        for ip, given in found:
            host = given
            if host is None:
                owner = by_ip.get((ns, ip)) or {}
                pspec = owner.get("spec") or {}
                if pspec.get("subdomain") == name and pspec.get("hostname"):
                    host = str(pspec["hostname"])
            if host:
                hostnames.setdefault(host, set()).add(ip)
        for host in sorted(hostnames):
            hbase = f"{host}.{base}"
            records.append(
                HostRecord(
                    ns,
                    (f"{hbase}.{cluster_domain}", hbase, f"{host}.{name}.{ns}"),
                    tuple(sorted(hostnames[host], key=_ip_key)),
                    (f"{host}.{name}",),
                )
            )
    records.sort(key=lambda r: r.names[0])
    return records


def _own_entry(pod: Mapping[str, Any], cluster_domain: str) -> str:
    ns, name = _meta(pod)
    spec = pod.get("spec") or {}
    ip = _pod_ip(pod) or str((pod.get("status") or {}).get("podIP") or "")
    if not ip:
        return ""
    hostname = str(spec.get("hostname") or name)
    if spec.get("subdomain"):
        return f"{ip}\t{hostname}.{spec['subdomain']}.{ns}.svc.{cluster_domain}\t{hostname}\n"
    return f"{ip}\t{hostname}\n"


def hosts_text(
    records: Iterable[HostRecord],
    *,
    namespace: str | None = None,
    pod: Mapping[str, Any] | None = None,
    cluster_domain: str = CLUSTER_DOMAIN,
    base: str | None = None,
) -> str:
    """A hosts file: ``base`` (default: the kubelet's localhost lines), the pod's own entry if
    ``pod`` is given, then one line per address of each record. Short names are added for
    records in ``namespace`` (default: the pod's namespace)."""
    if namespace is None and pod is not None:
        namespace = _meta(pod)[0]
    parts = [_KUBELET_BASE if base is None else base]
    if parts[0] and not parts[0].endswith("\n"):
        parts.append("\n")
    if pod is not None:
        parts.append("# this pod\n" + _own_entry(pod, cluster_domain))
    parts.append("# cluster names (opkit local kubelet)\n")
    for rec in records:
        names = rec.names + (rec.short if rec.namespace == namespace else ())
        line = " ".join(names)
        parts.extend(f"{ip}\t{line}\n" for ip in rec.ips)
    return "".join(parts)


def hosts_table(
    records: Iterable[HostRecord], *, namespace: str | None = None
) -> dict[str, list[str]]:
    """Name -> addresses (lower-case names), for a resolver hook or a quick lookup."""
    table: dict[str, list[str]] = {}
    for rec in records:
        for name in rec.names + (rec.short if rec.namespace == namespace else ()):
            ips = table.setdefault(name.lower(), [])
            ips.extend(ip for ip in rec.ips if ip not in ips)
    return table


def parse_hosts(text: str) -> dict[str, list[str]]:
    """Parse hosts-file text into name -> addresses, in file order (lower-case names)."""
    table: dict[str, list[str]] = {}
    for raw in text.splitlines():
        fields = raw.split("#", 1)[0].split()
        if len(fields) < 2:
            continue
        for name in fields[1:]:
            ips = table.setdefault(name.lower(), [])
            if fields[0] not in ips:
                ips.append(fields[0])
    return table


def resolv_conf_text(namespace: str, *, cluster_domain: str = CLUSTER_DOMAIN) -> str:
    """A pod's ``/etc/resolv.conf``: the cluster search path, and a name server on the pod's
    own loopback where nothing listens, so names missing from its hosts file fail at once
    instead of being asked of the host's (real) resolver."""
    return (
        f"search {namespace}.svc.{cluster_domain} svc.{cluster_domain} {cluster_domain}\n"
        "nameserver 127.0.0.1\n"
        "options ndots:5\n"
    )


def write_hosts_file(path: str | os.PathLike[str], text: str) -> None:
    """Write a hosts file that may be bind-mounted somewhere: same inode, new content.

    A rename would leave running pods looking at the old file. Readers may briefly see a
    partial file during the rewrite, as with any in-place write.
    """
    data = text.encode()
    p = Path(path)
    with open(p, "r+b" if p.exists() else "wb") as f:
        f.write(data)
        f.truncate(len(data))
        f.flush()


# --- host-side resolver hook ----------------------------------------------------------------
_hook_lock = threading.Lock()
_lookups: tuple[Lookup, ...] = ()
_originals: dict[str, Any] = {}


def _resolve(host: object) -> list[str] | None:
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if not isinstance(host, str) or not host:
        return None
    name = host.rstrip(".").lower()
    for lookup in _lookups:
        found = lookup(name)
        if found:
            return [found] if isinstance(found, str) else list(found)
    return None


def _getaddrinfo(  # noqa: PLR0917 (socket.getaddrinfo's signature)
    host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
) -> list[Any]:
    orig = _originals["getaddrinfo"]
    ips = _resolve(host)
    if ips is None:
        return list(orig(host, port, family, type, proto, flags))
    out: list[Any] = []
    error: socket.gaierror | None = None
    for ip in ips:
        try:
            res = orig(ip, port, family, type, proto, flags | socket.AI_NUMERICHOST)
        except socket.gaierror as e:  # e.g. an IPv4 answer to an AF_INET6 question
            error = e
            continue
        for fam, typ, pro, canon, addr in res:
            out.append((fam, typ, pro, str(host) if canon else canon, addr))
    if not out and error is not None:
        raise error
    return out


def _gethostbyname(host: str) -> str:
    ips = _resolve(host)
    if ips is None:
        return str(_originals["gethostbyname"](host))
    return ips[0]


def _gethostbyname_ex(host: str) -> tuple[str, list[str], list[str]]:
    ips = _resolve(host)
    if ips is None:
        result: tuple[str, list[str], list[str]] = _originals["gethostbyname_ex"](host)
        return result
    return host, [], ips


_PATCHES: dict[str, Callable[..., Any]] = {
    "getaddrinfo": _getaddrinfo,
    "gethostbyname": _gethostbyname,
    "gethostbyname_ex": _gethostbyname_ex,
}


class ResolverHook:
    """An installed lookup; :meth:`uninstall` (or leaving the ``with`` block) removes it."""

    def __init__(self, lookup: Lookup) -> None:
        self._lookup = lookup
        self._installed = False

    def _install(self) -> None:
        global _lookups
        with _hook_lock:
            if not _lookups:
                for attr, fn in _PATCHES.items():
                    _originals[attr] = getattr(socket, attr)
                    setattr(socket, attr, fn)
            _lookups = (self._lookup, *_lookups)
            self._installed = True

    def uninstall(self) -> None:
        global _lookups
        with _hook_lock:
            if not self._installed:
                return
            self._installed = False
            remaining = list(_lookups)
            remaining.remove(self._lookup)
            _lookups = tuple(remaining)
            if not _lookups:
                for attr, fn in _PATCHES.items():
                    if getattr(socket, attr) is fn:
                        setattr(socket, attr, _originals[attr])

    def __enter__(self) -> ResolverHook:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.uninstall()


def install_resolver(lookup: Lookup) -> ResolverHook:
    """Resolve names through ``lookup`` first in this process (``socket.getaddrinfo``,
    ``gethostbyname``, ``gethostbyname_ex``; so urllib3, the kubernetes client and asyncio too).

    ``lookup`` gets a lower-case name without a trailing dot and returns an address, a list of
    them, or None to fall through to the next hook and finally the system resolver. Hooks
    nest (latest first); code that bound ``getaddrinfo`` itself before installation is not
    affected.
    """
    hook = ResolverHook(lookup)
    hook._install()
    return hook


def run_with_cluster_dns(
    argv: Sequence[str],
    hosts_text: str,
    *,
    include_host_entries: bool = True,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    timeout: float | None = None,
    input: str | None = None,
    check: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` with ``hosts_text`` as its ``/etc/hosts`` (a private mount namespace).

    For programs that read ``/etc/hosts`` themselves (Go binaries such as ``etcdctl``,
    ``getent``). ``include_host_entries`` keeps the host's own entries first. Output is
    captured as text. Needs root or unprivileged user namespaces.
    """
    text = hosts_text
    if include_host_entries:
        with contextlib.suppress(OSError):
            text = Path("/etc/hosts").read_text() + "\n" + hosts_text
    with tempfile.TemporaryDirectory(prefix="opkit-hosts-") as tmp:
        path = Path(tmp) / "hosts"
        path.write_text(text)
        path.chmod(0o644)
        return subprocess.run(
            [*podexec_argv(hosts_file=path), *argv],
            env=dict(env) if env is not None else None,
            cwd=cwd,
            timeout=timeout,
            input=input,
            capture_output=True,
            text=True,
            check=check,
        )
