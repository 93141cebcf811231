"""Pod network: one network namespace per pod, addressed in 127.0.0.0/8, joined by a bridge.

Only loopback-range addresses are used, so nothing a pod sends can leave the machine. The kernel
treats 127/8 as "martian" on any interface but ``lo`` and the host's ``lo`` claims the whole
/8, so plain routing is not enough. The recipe (all of it is undone by deleting the links and
namespaces; no ``ip rule``, no global sysctl, no file under /etc is touched):

Host side
  * bridge ``opk0`` holding ``127.200.0.1/16``, ``route_localnet=1`` (accept and send
    127/8 on it) and ``forwarding=0`` (never route a pod's packet off the bridge);
  * ``ip route add 127.200.0.0/16 dev opk0 src 127.200.0.1 table local``: the local table is
    consulted before main and holds ``local 127.0.0.0/8 dev lo``, which would otherwise swallow
    every pod address (the kernel merges local and main while no ``ip rule`` exists, hiding the
    problem until someone adds a rule). The bridge's own ``local 127.200.0.1`` /32 stays more
    specific, so the host still receives its own address. The route dies with the bridge.

Pod side (namespace ``opk0-<pod>``; veth ``opk0hNNNN`` on the bridge, its peer is ``eth0``)
  * ``route_localnet=1`` for all/default/eth0/lo, ``lo`` up (so ``localhost`` is the pod);
  * ``127.200.x.y/16`` on eth0, the same ``table local`` route via eth0 (pod to pod and pod to
    host), a default route via the bridge address, and ``unreachable`` routes for 10/8,
    172.16/12 and 192.168/16 so a fake ClusterIP fails at once instead of leaving the pod.

rp_filter (strict or loose) and accept_local need no change: the reverse path of every pod
address is the interface it arrives on. Host to pod, pod to pod and pod to host all work, and
every pod can listen on ``0.0.0.0:2379``.

A crashed run leaves its bridge, veths and namespaces behind. Each live network holds an
abstract unix socket named after its bridge (released by the kernel when the process dies), so
:func:`cleanup_leftovers` can tell stale resources from a network another process is using.
Bridge names must start with ``opk`` for the same reason.

Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN); otherwise :class:`PodNetworkUnavailable`.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

__all__ = [
    "NETNS_DIR",
    "PodInterface",
    "PodNetwork",
    "PodNetworkError",
    "PodNetworkUnavailable",
    "cleanup_leftovers",
]

NETNS_DIR = Path("/run/netns")
NAME_PREFIX = "opk"
_BRIDGE_RE = re.compile(r"^opk[a-z0-9]{0,7}$")
_AUTO_BRIDGES = 32
_PRIVATE_RANGES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
_LOCK_PREFIX = "\0opkit-podnet-"


class PodNetworkUnavailable(RuntimeError):  # noqa: N818 (name fixed by the kubelet brief)
    """Pod networking cannot work in this environment (not root, no iproute2, ...)."""


class PodNetworkError(RuntimeError):
    """A network operation failed."""


@dataclass(frozen=True)
class PodInterface:
    """A pod's network: its namespace, address and the host end of its veth pair."""

    pod_id: str
    netns: str
    ip: str
    host_veth: str

    @property
    def netns_path(self) -> Path:
        return NETNS_DIR / self.netns


def _ip_binary() -> str:
    found = shutil.which("ip") or next(
        (
            p
            for p in ("/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip")
            if os.access(p, os.X_OK)
        ),
        None,
    )
    if found is None:
        raise PodNetworkUnavailable("pod networking needs the `ip` command (iproute2)")
    return found


def _run(argv: list[str], *, stdin: str | None = None, check: bool = True) -> str:
    res = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False, timeout=60)
    if check and res.returncode != 0:
        msg = (res.stderr.strip() or res.stdout.strip() or f"exit {res.returncode}").splitlines()
        raise PodNetworkError(f"{' '.join(argv[:6])}: {msg[0] if msg else ''}")
    return res.stdout


def _write_sysctl(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _try_lock(bridge: str) -> socket.socket | None:
    """Hold the liveness lock of ``bridge``; None if a live process holds it."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.bind(_LOCK_PREFIX + bridge)
    except OSError:
        s.close()
        return None
    return s


def _default_subnet(bridge: str) -> str:
    m = re.fullmatch(r"opk(\d+)", bridge)
    index = int(m.group(1)) if m else 0
    if index > 55:
        raise ValueError(f"no default subnet for bridge {bridge!r}; pass subnet=")
    return f"127.{200 + index}.0.0/16"


def _slug(pod_id: str) -> str:
    clean = re.sub(r"[^a-z0-9_.-]+", "-", pod_id.lower()).strip("-.") or "pod"
    if clean == pod_id and len(clean) <= 40:
        return clean
    return f"{clean[:32]}-{hashlib.sha1(pod_id.encode()).hexdigest()[:8]}"


def _links(ip: str) -> dict[str, str]:
    """Host link name -> kind (``bridge``, ``veth``, ... or ``""``)."""
    out = _run([ip, "-j", "-d", "link", "show"])
    return {
        str(link["ifname"]): str((link.get("linkinfo") or {}).get("info_kind", ""))
        for link in json.loads(out or "[]")
    }


def _netns_names() -> set[str]:
    try:
        return {p.name for p in NETNS_DIR.iterdir()}
    except FileNotFoundError:
        return set()


def _kill_netns_pids(ip: str, netns: str) -> None:
    out = _run([ip, "netns", "pids", netns], check=False)
    for line in out.split():
        with contextlib.suppress(ValueError, ProcessLookupError):
            os.kill(int(line), signal.SIGKILL)


def _remove_bridge_resources(ip: str, bridge: str) -> list[str]:
    """Delete every namespace and link of ``bridge`` (caller holds its lock)."""
    removed: list[str] = []
    for ns in sorted(_netns_names()):
        if ns.startswith(bridge + "-"):
            _kill_netns_pids(ip, ns)
            _run([ip, "netns", "del", ns], check=False)
            removed.append(f"netns {ns}")
    veth = re.compile(re.escape(bridge) + r"h[0-9a-f]{4}")
    links = _links(ip)
    for link, kind in sorted(links.items()):
        if kind == "veth" and veth.fullmatch(link):
            _run([ip, "link", "del", link], check=False)
            removed.append(f"link {link}")
    if links.get(bridge) == "bridge":
        _run([ip, "link", "del", bridge], check=False)
        removed.append(f"link {bridge}")
    return removed


def cleanup_leftovers(bridge: str | None = None) -> list[str]:
    """Remove pod networks left by crashed runs (all ``opk*`` ones, or just ``bridge``'s).

    Networks whose owning process is alive are left alone. Returns what was removed, as
    ``"netns NAME"`` / ``"link NAME"`` strings. Needs root; a no-op (empty list) otherwise.
    """
    if os.geteuid() != 0:
        return []
    ip = _ip_binary()
    if bridge is not None:
        candidates = {bridge}
    else:
        candidates = {ns.split("-", 1)[0] for ns in _netns_names() if "-" in ns}
        veth = re.compile(r"(.+)h[0-9a-f]{4}")
        for link, kind in _links(ip).items():
            if kind == "bridge":
                candidates.add(link)
            elif kind == "veth" and (m := veth.fullmatch(link)):
                candidates.add(m.group(1))
    removed: list[str] = []
    for br in sorted(c for c in candidates if _BRIDGE_RE.match(c)):
        lock = _try_lock(br)
        if lock is None:
            continue  # a live process owns this network
        try:
            removed += _remove_bridge_resources(ip, br)
        finally:
            lock.close()
    return removed


class PodNetwork:
    """The pod network of one cluster: a bridge, and a namespace + veth + address per pod.

    ``bridge=None`` picks the first free ``opk<N>`` (subnet ``127.(200+N).0.0/16``). Use as a
    context manager, or call :meth:`start` and :meth:`teardown_all`. Thread-safe.
    """

    def __init__(self, *, bridge: str | None = None, subnet: str | None = None) -> None:
        if bridge is not None and not _BRIDGE_RE.match(bridge):
            raise ValueError(
                f"bridge name {bridge!r} must be 'opk' plus up to 7 of [a-z0-9] "
                "(veth names derive from it and must fit in 15 characters)"
            )
        self._requested_bridge = bridge
        self._requested_subnet = subnet
        if subnet is not None:
            self._check_subnet(subnet)
        self.bridge = bridge or ""
        self.subnet: ipaddress.IPv4Network = ipaddress.IPv4Network(subnet or "127.200.0.0/16")
        self._lock = threading.RLock()
        self._owner: socket.socket | None = None
        self._subnet_owner: socket.socket | None = None
        self._ip = ""
        self._pods: dict[str, PodInterface] = {}
        self._used: set[int] = set()
        self._cursor = 2

    @staticmethod
    def _check_subnet(subnet: str) -> None:
        net = ipaddress.IPv4Network(subnet)
        if net.prefixlen != 16 or not net.subnet_of(ipaddress.IPv4Network("127.0.0.0/8")):
            raise ValueError(f"pod subnet must be a /16 inside 127.0.0.0/8, not {subnet}")
        if net.network_address.packed[1] == 0:
            raise ValueError("pod subnet must not contain 127.0.0.1 (use e.g. 127.200.0.0/16)")

    # --- lifecycle ---------------------------------------------------------------------------
    @property
    def bridge_ip(self) -> str:
        """The host's address on the pod network (API server and other host services bind it)."""
        return str(self.subnet.network_address + 1)

    @property
    def started(self) -> bool:
        return self._owner is not None

    def start(self) -> PodNetwork:
        """Create the bridge, first removing every network that crashed runs left behind."""
        with self._lock:
            if self._owner is not None:
                return self
            if os.geteuid() != 0:
                raise PodNetworkUnavailable(
                    "pod networking needs root (network namespaces, a bridge and veth pairs); "
                    "run as root, as CI does"
                )
            self._ip = _ip_binary()
            self._claim_bridge()
            try:
                cleanup_leftovers()  # other crashed runs' networks (ours is locked: skipped)
                _remove_bridge_resources(self._ip, self.bridge)
                # Fail here, not at the first pod, where namespaces cannot be made.
                probe = f"{self.bridge}-probe"
                _run([self._ip, "netns", "add", probe])
                _run([self._ip, "netns", "del", probe])
                self._create_bridge()
            except PodNetworkError as e:
                _remove_bridge_resources(self._ip, self.bridge)
                self._release()
                if "not permitted" in str(e) or "Permission denied" in str(e):
                    raise PodNetworkUnavailable(f"pod networking not permitted here: {e}") from e
                raise
            return self

    def _claim_bridge(self) -> None:
        """Take the liveness locks of a bridge name and of its subnet (both must be unique)."""
        if self._requested_bridge is not None:
            names = [self._requested_bridge]
        else:
            names = [f"opk{i}" for i in range(_AUTO_BRIDGES)]
        for name in names:
            subnet = self._requested_subnet or _default_subnet(name)
            self._check_subnet(subnet)
            lock = _try_lock(name)
            if lock is None:
                continue
            net = ipaddress.IPv4Network(subnet)
            subnet_lock = _try_lock(f"subnet-{net.network_address}")
            if subnet_lock is None:
                lock.close()
                continue
            self.bridge, self.subnet = name, net
            self._owner, self._subnet_owner = lock, subnet_lock
            return
        if self._requested_bridge is not None:
            raise PodNetworkError(
                f"bridge {self._requested_bridge} or its subnet is in use by another live opkit "
                "pod network"
            )
        raise PodNetworkError(f"all {_AUTO_BRIDGES} opk<N> bridges are in use")

    def _create_bridge(self) -> None:
        br, addr = self.bridge, self.bridge_ip
        _run([self._ip, "link", "add", br, "type", "bridge"])
        conf = f"/proc/sys/net/ipv4/conf/{br}"
        _write_sysctl(f"{conf}/route_localnet", "1")
        _write_sysctl(f"{conf}/forwarding", "0")
        batch = (
            f"addr add {addr}/16 dev {br}\n"
            f"link set {br} up\n"
            f"route add {self.subnet} dev {br} src {addr} table local\n"
        )
        _run([self._ip, "-batch", "-"], stdin=batch)

    def _release(self) -> None:
        for lock in (self._owner, self._subnet_owner):
            if lock is not None:
                lock.close()
        self._owner = self._subnet_owner = None

    def teardown_all(self) -> None:
        """Remove every pod namespace, veth, the bridge and its routes; release the name."""
        with self._lock:
            if self._owner is None:
                return
            try:
                for pod_id in list(self._pods):
                    self.teardown_pod(pod_id)
                _remove_bridge_resources(self._ip, self.bridge)
            finally:
                self._release()

    close = teardown_all

    def __enter__(self) -> PodNetwork:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.teardown_all()

    # --- pods --------------------------------------------------------------------------------
    def _allocate(self) -> int:
        size = self.subnet.num_addresses
        for _ in range(size):
            n = self._cursor
            self._cursor = n + 1 if n + 1 < size - 1 else 2
            if n not in self._used:
                self._used.add(n)
                return n
        raise PodNetworkError(f"pod subnet {self.subnet} is full")

    def add_pod(self, pod_id: str) -> PodInterface:
        """Create the pod's namespace and address (idempotent per ``pod_id``)."""
        with self._lock:
            if self._owner is None:
                raise PodNetworkError("pod network not started")
            if pod_id in self._pods:
                return self._pods[pod_id]
            n = self._allocate()
            ip = str(self.subnet.network_address + n)
            netns = f"{self.bridge}-{_slug(pod_id)}"
            if any(p.netns == netns for p in self._pods.values()):
                netns = f"{netns[:40]}-{n:04x}"
            pod = PodInterface(
                pod_id=pod_id, netns=netns, ip=ip, host_veth=f"{self.bridge}h{n:04x}"
            )
            self._pods[pod_id] = pod
            try:
                self._create_pod(pod)
            except BaseException:
                self.teardown_pod(pod_id)
                raise
            return pod

    def _create_pod(self, pod: PodInterface) -> None:
        ip, ns, hv = self._ip, pod.netns, pod.host_veth
        _run([ip, "netns", "add", ns])
        _run([ip, "link", "add", hv, "type", "veth", "peer", "name", "eth0", "netns", ns])
        _write_sysctl(f"/proc/sys/net/ipv4/conf/{hv}/route_localnet", "1")
        _run([ip, "link", "set", hv, "master", self.bridge, "up"])
        # Inside the namespace: sysctls need a process there (/proc/sys/net is per namespace),
        # then one ip batch for addresses and routes.
        sysctls = " ".join(
            f"/proc/sys/net/ipv4/conf/{c}/route_localnet" for c in ("all", "default", "eth0", "lo")
        )
        script = f'for f in {sysctls}; do echo 1 > "$f"; done && exec "$0" -batch -'
        lines = [
            "link set lo up",
            f"addr add {pod.ip}/16 dev eth0",
            "link set eth0 up",
            f"route add {self.subnet} dev eth0 src {pod.ip} table local",
            f"route add default via {self.bridge_ip} dev eth0 src {pod.ip}",
            *(f"route add unreachable {r}" for r in _PRIVATE_RANGES),
        ]
        _run([ip, "netns", "exec", ns, "sh", "-c", script, ip], stdin="\n".join(lines) + "\n")

    def get(self, pod_id: str) -> PodInterface | None:
        with self._lock:
            return self._pods.get(pod_id)

    def pods(self) -> list[PodInterface]:
        with self._lock:
            return list(self._pods.values())

    def exec_prefix(self, pod_id: str) -> list[str]:
        """argv prefix that runs a command inside the pod's network namespace."""
        pod = self.get(pod_id)
        if pod is None:
            raise KeyError(f"no pod network for {pod_id!r}")
        return [self._ip, "netns", "exec", pod.netns]

    def teardown_pod(self, pod_id: str) -> None:
        """Kill what still runs in the pod's namespace, delete it and its veth, free the IP."""
        with self._lock:
            pod = self._pods.pop(pod_id, None)
            if pod is None:
                return
            n = int(ipaddress.IPv4Address(pod.ip)) - int(self.subnet.network_address)
            try:
                if pod.netns in _netns_names():
                    _kill_netns_pids(self._ip, pod.netns)
                # Deleting the host end removes the pair at once; a namespace's own links
                # are otherwise destroyed asynchronously after the namespace goes.
                _run([self._ip, "link", "del", pod.host_veth], check=False)
                _run([self._ip, "netns", "del", pod.netns], check=False)
            finally:
                self._used.discard(n)
