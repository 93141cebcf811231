"""TLS for in-cluster clients: a cluster CA, the API server's certificate, a TLS listener and
service-account tokens.

In-cluster clients (client-go's ``InClusterConfig``, the Python client's
``load_incluster_config``) insist on ``https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT``
verified with ``/var/run/secrets/kubernetes.io/serviceaccount/ca.crt``. :class:`ClusterPKI`
makes a fresh CA and a server certificate with the ``openssl`` command at cluster start
(P-256 keys, a few tens of milliseconds), and :class:`TLSListener` serves the embedded API
server's own request handler over TLS on a second socket, so both listeners share one state.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from opkit.testing.apiserver._handler import APIRequestHandler
from opkit.testing.apiserver.server import APIServer

__all__ = ["ClusterPKI", "PKIError", "TLSListener", "service_account_token"]

DEFAULT_DNS_NAMES = (
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
    "localhost",
)


class PKIError(RuntimeError):
    """Certificates could not be made (no ``openssl`` command, or it failed)."""


def _openssl(args: Sequence[str], cwd: Path) -> None:
    exe = shutil.which("openssl")
    if exe is None:
        raise PKIError("the openssl command is needed to make the cluster's TLS certificates")
    res = subprocess.run(
        [exe, *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=60
    )
    if res.returncode != 0:
        lines = (res.stderr or res.stdout).strip().splitlines()
        raise PKIError(f"openssl {args[0]} failed: {lines[-1] if lines else res.returncode}")


@dataclass(frozen=True)
class ClusterPKI:
    """Paths of the CA and server certificate/key (PEM) in ``directory``."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def server_cert(self) -> Path:
        return self.directory / "apiserver.crt"

    @property
    def server_key(self) -> Path:
        return self.directory / "apiserver.key"

    @property
    def ca_pem(self) -> bytes:
        return self.ca_cert.read_bytes()

    @classmethod
    def create(
        cls,
        directory: str | os.PathLike[str],
        *,
        ips: Sequence[str] = ("127.0.0.1",),
        dns_names: Sequence[str] = DEFAULT_DNS_NAMES,
    ) -> ClusterPKI:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        d.chmod(0o700)
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        _openssl(
            [
                "req", "-x509", "-new", *ec, "-keyout", "ca.key", "-out", "ca.crt",
                "-days", "3650", "-subj", "/CN=opkit-cluster-ca",
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            ],
            d,
        )  # fmt: skip
        _openssl(
            ["req", "-new", *ec, "-keyout", "apiserver.key", "-out", "apiserver.csr",
             "-subj", "/CN=kube-apiserver"],
            d,
        )  # fmt: skip
        sans = [f"IP:{ip}" for ip in ips] + [f"DNS:{n}" for n in dns_names]
        (d / "apiserver.ext").write_text(
            f"subjectAltName={','.join(sans)}\n"
            "extendedKeyUsage=serverAuth\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\n"
        )
        _openssl(
            ["x509", "-req", "-in", "apiserver.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-set_serial", str(int(time.time() * 1000)), "-days", "3650",
             "-out", "apiserver.crt", "-extfile", "apiserver.ext"],
            d,
        )  # fmt: skip
        for name in ("ca.key", "apiserver.key"):
            (d / name).chmod(0o600)
        return cls(d)

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.server_cert, self.server_key)
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx


def service_account_token(
    namespace: str, service_account: str, audience: str = "", expiration: int = 3607
) -> str:
    """A JWT-shaped bound token naming the service account. The embedded API server does not
    authenticate, so it is not signed; programs that only decode their token still work."""

    def b64(obj: Any) -> str:
        raw = json.dumps(obj, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    now = int(time.time())
    claims = {
        "iss": "https://kubernetes.default.svc.cluster.local",
        "aud": [audience or "https://kubernetes.default.svc.cluster.local"],
        "sub": f"system:serviceaccount:{namespace}:{service_account}",
        "iat": now,
        "nbf": now,
        "exp": now + max(600, expiration),
        "kubernetes.io": {
            "namespace": namespace,
            "serviceaccount": {"name": service_account},
        },
    }
    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}.opkit"


class _TLSServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = True
    allow_reuse_address = True
    request_queue_size = 128
    context: ssl.SSLContext

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = self.socket.accept()
        # The handshake happens on the connection's own thread (first read), never here.
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # failed handshakes and resets are the client's business


class TLSListener:
    """Serves an :class:`APIServer`'s handler over TLS on ``host:port`` (0: any free port)."""

    def __init__(self, api: APIServer, host: str, port: int, context: ssl.SSLContext) -> None:
        self._api = api
        self.host = host
        self._requested = port
        self._context = context
        self._httpd: _TLSServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1]) if self._httpd else self._requested

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    def start(self) -> TLSListener:
        core = self._api._core
        handler = type("TLSHandler", (APIRequestHandler,), {"core": core})
        httpd = _TLSServer((self.host, self._requested), handler)
        httpd.context = self._context
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"opkit-apiserver-tls-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
