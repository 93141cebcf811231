"""ServiceAccount controller and root-CA publisher (CTRL-8).

Every active namespace gets a ``default`` ServiceAccount (recreated if deleted) and the
``kube-root-ca.crt`` ConfigMap that real clusters publish everywhere (kept equal to the CA
bundle). The embedded API server speaks plain HTTP, so the default bundle is a placeholder
certificate whose key was thrown away: it exists because workloads and tools expect it.
"""

from __future__ import annotations

import contextlib
from typing import Any

from opkit import errors
from opkit.client import Client
from opkit.clock import Clock
from opkit.controller import Request, Result
from opkit.manager import Manager

from . import _common as c
from ._base import BuiltinController

__all__ = [
    "DEFAULT_SERVICE_ACCOUNT",
    "PLACEHOLDER_CA",
    "ROOT_CA_CONFIGMAP",
    "ServiceAccountController",
]

Obj = dict[str, Any]

DEFAULT_SERVICE_ACCOUNT = "default"
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
_DESCRIPTION = (
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal "
    "endpoints such as the internal service IP or kubernetes.default.svc. No other usage is "
    "guaranteed across distributions of Kubernetes clusters."
)

PLACEHOLDER_CA = """-----BEGIN CERTIFICATE-----
MIIBfDCCASOgAwIBAgIUF9+AgM6B66ncaqNOUTeolbAkQkkwCgYIKoZIzj0EAwIw
EzERMA8GA1UEAwwIb3BraXQtY2EwIBcNMjYxMTI2MjExMTQwWhgPMjEyNjExMDIy
MTExNDBaMBMxETAPBgNVBAMMCG9wa2l0LWNhMFkwEwYHKoZIzj0CAQYIKoZIzj0D
AQcDQgAESsV8IiZQTbffoWZI+Q01Pf/+BODXpRwK2jEBN3w7cB4Nzsl3YeMwVKbv
NLvZSEjIQq5Eb/jmYV5Ixo9LcG92KqNTMFEwHQYDVR0OBBYEFGGWmnFaByEP35Fb
orNGXWvlWcxOMB8GA1UdIwQYMBaAFGGWmnFaByEP35FborNGXWvlWcxOMA8GA1Ud
EwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDRwAwRAIgUSaT27Z2iWo0x6NH4c/eSJjB
ieIWKFqUBF+nh6eezJUCIC45FEw5k4Ock80svL4P2WNcKsad5qSeaKwqq5ByR1bx
-----END CERTIFICATE-----
"""
"""A self-signed ``CN=opkit-ca`` certificate (its private key no longer exists)."""


class ServiceAccountController(BuiltinController):
    """Keeps the ``default`` ServiceAccount and ``kube-root-ca.crt`` in every namespace."""

    name = "serviceaccount"

    def __init__(
        self, client: Client, *, clock: Clock | None = None, ca_bundle: str | None = None
    ) -> None:
        super().__init__(client, clock=clock)
        self.ca_bundle = ca_bundle if ca_bundle is not None else PLACEHOLDER_CA
        self._accounts = client.resource("v1", "ServiceAccount")
        self._configmaps = client.resource("v1", "ConfigMap")

    def setup(self, manager: Manager) -> None:
        ctrl = manager.controller(
            "serviceaccount",
            self,
            for_=("v1", "Namespace"),
            watches=[
                (("v1", "ServiceAccount"), _namespace_if_named(DEFAULT_SERVICE_ACCOUNT)),
                (("v1", "ConfigMap"), _namespace_if_named(ROOT_CA_CONFIGMAP)),
            ],
            need_leader_election=False,
        )
        self._bind(manager, ctrl)

    def sync(self, request: Request) -> Result | None:
        ns = self.cache.get("v1", "Namespace", None, request.name, copy=False)
        if ns is None or c.is_deleting(ns) or c.status_of(ns).get("phase") == "Terminating":
            return None
        name = request.name
        if self.cache.get("v1", "ServiceAccount", name, DEFAULT_SERVICE_ACCOUNT) is None:
            # behind cache, or the namespace began terminating meanwhile
            with contextlib.suppress(errors.AlreadyExists, errors.Forbidden, errors.NotFound):
                self._accounts.create(
                    {
                        "apiVersion": "v1",
                        "kind": "ServiceAccount",
                        "metadata": {"name": DEFAULT_SERVICE_ACCOUNT, "namespace": name},
                    },
                    field_manager=c.FIELD_MANAGER,
                )
        data = {"ca.crt": self.ca_bundle}
        annotations = {"kubernetes.io/description": _DESCRIPTION}
        cm = self.cache.get("v1", "ConfigMap", name, ROOT_CA_CONFIGMAP, copy=False)
        if cm is None:
            with contextlib.suppress(errors.AlreadyExists, errors.Forbidden, errors.NotFound):
                self._configmaps.create(
                    {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "metadata": {
                            "name": ROOT_CA_CONFIGMAP,
                            "namespace": name,
                            "annotations": annotations,
                        },
                        "data": data,
                    },
                    field_manager="root-ca-cert-publisher",
                )
        elif cm.get("data") != data or any(
            c.annotations_of(cm).get(k) != v for k, v in annotations.items()
        ):
            patch: Obj = {"metadata": {"annotations": annotations}, "data": data}
            if cm.get("binaryData"):
                patch["binaryData"] = None
            extra = {k: None for k in (cm.get("data") or {}) if k not in data}
            patch["data"] = {**extra, **data}
            with contextlib.suppress(errors.NotFound):
                self._configmaps.patch(
                    ROOT_CA_CONFIGMAP, patch, name, field_manager="root-ca-cert-publisher"
                )
        return None


def _namespace_if_named(wanted: str) -> Any:
    def mapper(obj: Obj) -> list[Request]:
        if c.name_of(obj) != wanted:
            return []
        return [Request("", c.namespace_of(obj))]

    return mapper
