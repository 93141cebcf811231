"""Container environment as the kubelet builds it: env, envFrom, valueFrom, ``$(VAR)``.

Order and rules follow the kubelet (``makeEnvironmentVariables``): ``envFrom`` sources first
(``prefix`` applied, keys that are not valid variable names skipped), then ``env`` in order,
each value expanded against what is defined so far plus the service variables
(``KUBERNETES_SERVICE_HOST``...), which are added last unless already defined. A missing
ConfigMap, Secret or key that is not ``optional`` is a :class:`ConfigError`
(``CreateContainerConfigError``); the kubelet retries when the object appears.
"""

from __future__ import annotations

import base64
import math
import os
import re
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = [
    "ConfigError",
    "Getter",
    "container_env",
    "expand",
    "field_value",
    "object_data",
    "parse_quantity",
    "resource_value",
]

Obj = dict[str, Any]
Getter = Callable[[str, str], "Mapping[str, Any] | None"]
"""``get(namespace, name)`` -> the object from the cache, or None."""

_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_LABEL_REF = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


class ConfigError(Exception):
    """The container cannot be configured yet (``CreateContainerConfigError``)."""


def expand(text: str, lookup: Callable[[str], str | None]) -> str:
    """Kubernetes ``$(VAR)`` expansion: ``$$`` is a literal ``$``; an undefined or unterminated
    reference is kept as written."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch != "$" or i + 1 >= n:
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "(":
            end = text.find(")", i + 2)
            if end < 0:
                out.append(text[i:])
                break
            name = text[i + 2 : end]
            value = lookup(name) if name else None
            out.append(value if value is not None else text[i : end + 1])
            i = end + 1
        else:
            out.append("$" + nxt)
            i += 2
    return "".join(out)


def object_data(obj: Mapping[str, Any], *, secret: bool) -> dict[str, bytes]:
    """Keys of a ConfigMap (``data`` + ``binaryData``) or Secret (``data`` base64 +
    ``stringData``) as bytes."""
    out: dict[str, bytes] = {}
    if secret:
        for k, v in (obj.get("data") or {}).items():
            try:
                out[k] = base64.b64decode(str(v or ""))
            except ValueError:
                out[k] = str(v).encode()
        for k, v in (obj.get("stringData") or {}).items():
            out[k] = str(v).encode()
        return out
    for k, v in (obj.get("data") or {}).items():
        out[k] = str(v if v is not None else "").encode()
    for k, v in (obj.get("binaryData") or {}).items():
        out[k] = base64.b64decode(str(v or ""))
    return out


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


# -- downward API -----------------------------------------------------------------------------


def _format_map(values: Mapping[str, Any]) -> str:
    """Labels/annotations as the downward API writes them: ``key="value"`` lines, sorted."""
    lines = []
    for k in sorted(values):
        v = str(values[k]).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        lines.append(f'{k}="{v}"')
    return "\n".join(lines)


def field_value(pod: Mapping[str, Any], path: str, *, pod_ip: str = "", host_ip: str = "") -> str:
    """The value of a ``fieldRef.fieldPath`` (the kubelet's supported set)."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    m = _LABEL_REF.match(path)
    if m:
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    simple: dict[str, Callable[[], Any]] = {
        "metadata.name": lambda: meta.get("name"),
        "metadata.namespace": lambda: meta.get("namespace"),
        "metadata.uid": lambda: meta.get("uid"),
        "metadata.labels": lambda: _format_map(meta.get("labels") or {}),
        "metadata.annotations": lambda: _format_map(meta.get("annotations") or {}),
        "spec.nodeName": lambda: spec.get("nodeName"),
        "spec.serviceAccountName": lambda: spec.get("serviceAccountName"),
        "status.hostIP": lambda: host_ip or status.get("hostIP"),
        "status.hostIPs": lambda: host_ip or status.get("hostIP"),
        "status.podIP": lambda: pod_ip or status.get("podIP"),
        "status.podIPs": lambda: pod_ip or status.get("podIP"),
    }
    getter = simple.get(path)
    if getter is None:
        raise ConfigError(f'unsupported fieldPath "{path}"')
    value = getter()
    return "" if value is None else str(value)


_SUFFIXES: dict[str, int | Decimal] = {
    "": 1,
    "m": Decimal("0.001"),
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")


def parse_quantity(value: Any) -> Decimal:
    """A resource quantity (``500m``, ``1Gi``, ``2``) as a number."""
    m = _QUANTITY.match(str(value).strip())
    if not m or m.group(2) not in _SUFFIXES:
        raise ConfigError(f"invalid quantity {value!r}")
    try:
        return Decimal(m.group(1)) * Decimal(_SUFFIXES[m.group(2)])
    except InvalidOperation:
        raise ConfigError(f"invalid quantity {value!r}") from None


def _node_allocatable(resource: str) -> Decimal:
    if resource.endswith("cpu"):
        return Decimal(os.cpu_count() or 1)
    if resource.endswith("memory"):
        try:
            return Decimal(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
        except (ValueError, OSError):
            return Decimal(2**33)
    return Decimal(2**40)  # ephemeral-storage and anything else: plenty


def resource_value(container: Mapping[str, Any], ref: Mapping[str, Any]) -> str:
    """``resourceFieldRef``: the container's limit/request, else the node's allocatable,
    divided by ``divisor`` and rounded up (as the kubelet does)."""
    resource = str(ref.get("resource") or "")
    kind, _, name = resource.partition(".")
    if kind not in ("limits", "requests") or not name:
        raise ConfigError(f'unsupported resource "{resource}"')
    given = ((container.get("resources") or {}).get(kind) or {}).get(name)
    value = parse_quantity(given) if given is not None else _node_allocatable(name)
    if given is None and kind == "requests":
        value = Decimal(0)
    divisor = parse_quantity(ref.get("divisor") or "1")
    if divisor == 0:
        divisor = Decimal(1)
    return str(math.ceil(value / divisor))


# -- env --------------------------------------------------------------------------------------


def _key_ref(ref: Mapping[str, Any], namespace: str, get: Getter, what: str) -> str | None:
    name = str(ref.get("name") or "")
    key = str(ref.get("key") or "")
    optional = bool(ref.get("optional"))
    obj = get(namespace, name)
    if obj is None:
        if optional:
            return None
        raise ConfigError(f'{what} "{name}" not found')
    data = object_data(obj, secret=what == "secret")
    if key not in data:
        if optional:
            return None
        raise ConfigError(f"couldn't find key {key} in {what.capitalize()} {namespace}/{name}")
    return _text(data[key])


def container_env(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    *,
    get_configmap: Getter,
    get_secret: Getter,
    service_env: Mapping[str, str] | None = None,
    pod_ip: str = "",
    host_ip: str = "",
) -> dict[str, str]:
    """The container's environment from its spec (without the image's own variables)."""
    namespace = str((pod.get("metadata") or {}).get("namespace") or "default")
    service_env = dict(service_env or {})
    env: dict[str, str] = {}

    def lookup(name: str) -> str | None:
        return env.get(name, service_env.get(name))

    for source in container.get("envFrom") or ():
        prefix = str(source.get("prefix") or "")
        if source.get("configMapRef") is not None:
            ref, get, what = source["configMapRef"], get_configmap, "configmap"
        elif source.get("secretRef") is not None:
            ref, get, what = source["secretRef"], get_secret, "secret"
        else:
            continue
        obj = get(namespace, str(ref.get("name") or ""))
        if obj is None:
            if ref.get("optional"):
                continue
            raise ConfigError(f'{what} "{ref.get("name")}" not found')
        for key, raw in sorted(object_data(obj, secret=what == "secret").items()):
            name = prefix + key
            if _ENV_NAME.match(name):
                env[name] = _text(raw)

    for var in container.get("env") or ():
        name = str(var.get("name") or "")
        if not name:
            continue
        source = var.get("valueFrom")
        if source is None:
            env[name] = expand(str(var.get("value") or ""), lookup)
            continue
        value: str | None
        if source.get("fieldRef") is not None:
            path = str(source["fieldRef"].get("fieldPath") or "")
            value = field_value(pod, path, pod_ip=pod_ip, host_ip=host_ip)
        elif source.get("resourceFieldRef") is not None:
            value = resource_value(container, source["resourceFieldRef"])
        elif source.get("configMapKeyRef") is not None:
            value = _key_ref(source["configMapKeyRef"], namespace, get_configmap, "configmap")
        elif source.get("secretKeyRef") is not None:
            value = _key_ref(source["secretKeyRef"], namespace, get_secret, "secret")
        else:
            value = ""
        if value is not None:
            env[name] = value

    for name, text in service_env.items():
        env.setdefault(name, text)
    return env
