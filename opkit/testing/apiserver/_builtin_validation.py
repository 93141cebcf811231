"""Validation of built-in kinds (META-5, LEASE-1, EVT-2, basic required fields).

Only what operators trip over is checked, in the upstream validators' words, so a 422 from
the embedded server reads like one from a real cluster.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

from opkit._validation import (
    dns1035_label_errors,
    dns1123_label_errors,
    dns1123_subdomain_errors,
    label_value_errors,
    max_len_error,
    qualified_name_errors,
    regex_error,
)

from ._builtin_common import as_dict, as_int, as_list, dicts_in, parse_time, selector_matches
from ._event_views import event_v1_to_core
from ._fielderrors import FieldError
from ._types import ResourceType

__all__ = ["validate"]

Obj = dict[str, Any]


_CONFIG_KEY_FMT = "[-._a-zA-Z0-9]+"
_CONFIG_KEY_RE = re.compile(_CONFIG_KEY_FMT)
_IANA_SVC_RE = re.compile(r"[-a-z0-9]+")
_CONFIG_KEY_MSG = "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"


def _path_segment_errors(value: str) -> list[str]:
    if value in (".", ".."):
        return [f"may not be '{value}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in value]


def _config_key_errors(key: str) -> list[str]:
    errs = []
    if len(key) > 253:
        errs.append(max_len_error(253))
    if not _CONFIG_KEY_RE.fullmatch(key):
        errs.append(
            regex_error(_CONFIG_KEY_MSG, _CONFIG_KEY_FMT, "key.name", "KEY_NAME", "key-name")
        )
    if key == ".":
        errs.append("must not be '.'")
    elif key == "..":
        errs.append("must not be '..'")
    elif key.startswith(".."):
        errs.append("must not start with '..'")
    return errs


def _name_rule(rt: ResourceType) -> Any:
    if rt.group == "" and rt.kind == "Namespace":
        return dns1123_label_errors
    if rt.group == "" and rt.kind == "Service":
        return dns1035_label_errors
    if rt.group == "rbac.authorization.k8s.io":
        return _path_segment_errors
    return dns1123_subdomain_errors


_ANNOTATIONS_MAX = 256 * 1024


def _validate_meta(rt: ResourceType, obj: Obj) -> list[FieldError]:
    errs: list[FieldError] = []
    meta = as_dict(obj.get("metadata"))
    name = meta.get("name")
    check_name = (rt.group, rt.kind) != ("", "Event") and rt.group != "apiextensions.k8s.io"
    if check_name and isinstance(name, str) and name:
        errs.extend(FieldError.invalid("metadata.name", name, m) for m in _name_rule(rt)(name))
    labels = meta.get("labels")
    if isinstance(labels, dict):
        for key, value in labels.items():
            errs.extend(
                FieldError.invalid("metadata.labels", key, m) for m in qualified_name_errors(key)
            )
            if isinstance(value, str):
                errs.extend(
                    FieldError.invalid("metadata.labels", value, m)
                    for m in label_value_errors(value)
                )
    annotations = meta.get("annotations")
    if isinstance(annotations, dict):
        total = 0
        for key, value in annotations.items():
            errs.extend(
                FieldError.invalid("metadata.annotations", key, m)
                for m in qualified_name_errors(str(key).lower())
            )
            total += len(str(key)) + len(str(value))
        if total > _ANNOTATIONS_MAX:
            errs.append(FieldError.too_long("metadata.annotations", _ANNOTATIONS_MAX))
    errs.extend(_owner_reference_errors(meta.get("ownerReferences")))
    errs.extend(_finalizer_errors(meta.get("finalizers")))
    return errs


_ORPHAN = "orphan"
_FOREGROUND = "foregroundDeletion"
# BannedOwners: group/version/kind that may never own anything.
_BANNED_OWNERS = {("", "v1", "Event")}


def _owner_reference_errors(refs: Any) -> list[FieldError]:
    """``ValidateOwnerReferences`` (paths carry no index, as upstream's do)."""
    path = "metadata.ownerReferences"
    errs: list[FieldError] = []
    first_controller = ""
    for ref in dicts_in(refs):
        api_version = str(ref.get("apiVersion") or "")
        kind = str(ref.get("kind") or "")
        group, version = "", api_version
        if api_version.count("/") == 1:
            group, version = api_version.split("/")
        elif "/" in api_version:
            version = ""
        if not version:
            errs.append(
                FieldError.invalid(f"{path}.apiVersion", api_version, "version must not be empty")
            )
        if not kind:
            errs.append(FieldError.invalid(f"{path}.kind", kind, "kind must not be empty"))
        if not ref.get("name"):
            errs.append(
                FieldError.invalid(f"{path}.name", ref.get("name") or "", "name must not be empty")
            )
        if not ref.get("uid"):
            errs.append(
                FieldError.invalid(f"{path}.uid", ref.get("uid") or "", "uid must not be empty")
            )
        if (group, version, kind) in _BANNED_OWNERS:
            errs.append(
                FieldError.invalid(
                    path, ref, f"{group}/{version}, Kind={kind} is disallowed from being an owner"
                )
            )
        if ref.get("controller") is True:
            current = f"{kind}/{ref.get('name') or ''}"
            if first_controller:
                errs.append(
                    FieldError.invalid(
                        path,
                        refs,
                        'Only one reference can have Controller set to true. Found "true" in '
                        f"references for {first_controller} and {current}",
                    )
                )
            else:
                first_controller = current
    return errs


def _finalizer_errors(finalizers: Any) -> list[FieldError]:
    """``ValidateFinalizers``: qualified names, and not both orphan and foreground."""
    path = "metadata.finalizers"
    names = [f for f in as_list(finalizers) if isinstance(f, str)]
    errs = [FieldError.invalid(path, f, m) for f in names for m in qualified_name_errors(f)]
    if _ORPHAN in names and _FOREGROUND in names:
        errs.append(
            FieldError.invalid(
                path, names, f"finalizer {_ORPHAN} and {_FOREGROUND} cannot be both set"
            )
        )
    return errs


def _port_range(path: str, value: Any, errs: list[FieldError]) -> None:
    port = as_int(value)
    if port is None or not 1 <= port <= 65535:
        errs.append(FieldError.invalid(path, value, "must be between 1 and 65535, inclusive"))


_PROTOCOLS = ["SCTP", "TCP", "UDP"]


def _validate_containers(
    spec: Obj, path: str, errs: list[FieldError], extra_volumes: set[str] | None = None
) -> None:
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        errs.append(FieldError.required(f"{path}.containers"))
    volumes = {v.get("name") for v in dicts_in(spec.get("volumes"))} | (extra_volumes or set())
    seen: set[str] = set()
    for group in ("initContainers", "containers"):
        for i, c in enumerate(dicts_in(spec.get(group))):
            cpath = f"{path}.{group}[{i}]"
            name = c.get("name")
            if not name:
                errs.append(FieldError.required(f"{cpath}.name"))
            elif isinstance(name, str):
                errs.extend(
                    FieldError.invalid(f"{cpath}.name", name, m) for m in dns1123_label_errors(name)
                )
                if name in seen:
                    errs.append(FieldError.duplicate(f"{cpath}.name", name))
                seen.add(name)
            if not c.get("image"):
                errs.append(FieldError.required(f"{cpath}.image"))
            for j, port in enumerate(dicts_in(c.get("ports"))):
                ppath = f"{cpath}.ports[{j}]"
                if not port.get("containerPort"):
                    errs.append(FieldError.required(f"{ppath}.containerPort"))
                else:
                    _port_range(f"{ppath}.containerPort", port["containerPort"], errs)
                if port.get("protocol") not in (None, *_PROTOCOLS):
                    errs.append(
                        FieldError.not_supported(f"{ppath}.protocol", port["protocol"], _PROTOCOLS)
                    )
            for j, mount in enumerate(dicts_in(c.get("volumeMounts"))):
                mname = mount.get("name")
                if not mname:
                    errs.append(FieldError.required(f"{cpath}.volumeMounts[{j}].name"))
                elif mname not in volumes:
                    errs.append(
                        FieldError(
                            "FieldValueNotFound", f"{cpath}.volumeMounts[{j}].name", "", mname
                        )
                    )
                if not mount.get("mountPath"):
                    errs.append(FieldError.required(f"{cpath}.volumeMounts[{j}].mountPath"))
    seen_volumes: set[str] = set()
    for i, v in enumerate(dicts_in(spec.get("volumes"))):
        vname = v.get("name")
        if not vname:
            errs.append(FieldError.required(f"{path}.volumes[{i}].name"))
        elif isinstance(vname, str):
            if vname in seen_volumes:
                errs.append(FieldError.duplicate(f"{path}.volumes[{i}].name", vname))
            seen_volumes.add(vname)
    policy = spec.get("restartPolicy")
    if policy not in (None, "Always", "OnFailure", "Never"):
        errs.append(
            FieldError.not_supported(
                f"{path}.restartPolicy", policy, ["Always", "OnFailure", "Never"]
            )
        )


def _validate_pod(rt: ResourceType, obj: Obj, old: Obj | None) -> list[FieldError]:
    errs: list[FieldError] = []
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [FieldError.required("spec.containers")]
    _validate_containers(spec, "spec", errs)
    if old is not None:
        errs.extend(_pod_update_errors(spec, as_dict(old.get("spec"))))
    return errs


# ---------------------------------------------------------------------------------------
# Update rules (immutable fields)


def _semantic(value: Any) -> Any:
    """``value`` with Go zero values dropped, so absent, null, "", 0, false, [] and {} compare
    equal (``apiequality.Semantic.DeepEqual`` on typed structs sees no difference there)."""
    if isinstance(value, dict):
        out = {k: _semantic(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if not _zero(v)}
    if isinstance(value, list):
        return [_semantic(v) for v in value]
    return value


def _zero(value: Any) -> bool:
    return value is None or value is False or value in ("", 0, [], {})


def _diff_lines(old: Any, new: Any, path: str, out: list[str]) -> None:
    if old == new:
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new), key=str):
            _diff_lines(old.get(key), new.get(key), f"{path}.{key}" if path else str(key), out)
        return
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            _diff_lines(a, b, f"{path}[{i}]", out)
        return
    dump = json.dumps
    out.append(f"- \t{path}: {dump(old, separators=(',', ':'), sort_keys=True)}")
    out.append(f"+ \t{path}: {dump(new, separators=(',', ':'), sort_keys=True)}")


def _spec_diff(type_name: str, old: Any, new: Any) -> str:
    """A compact old/new listing of what differs (upstream appends a go-cmp diff)."""
    lines: list[str] = []
    _diff_lines(old, new, "", lines)
    return "\n".join([f"  {type_name}{{", *lines, "  }"])


_POD_UPDATABLE = ",".join(
    (
        "`spec.containers[*].image`",
        "`spec.initContainers[*].image`",
        "`spec.activeDeadlineSeconds`",
        "`spec.tolerations` (only additions to existing tolerations)",
        "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously "
        "negative)",
    )
)
_MAX_INT32 = 2**31 - 1


def _pod_update_errors(spec: Obj, old_spec: Obj) -> list[FieldError]:
    """``ValidatePodUpdate``: only images, activeDeadlineSeconds, added tolerations, removed
    scheduling gates and a negative terminationGracePeriodSeconds set to 1 may change.

    Labels, annotations and the rest of the metadata are free; ``spec.nodeName`` is set
    through ``pods/binding``, which does not come here.
    """
    if spec == old_spec:
        return []  # the common case: a metadata or status write
    errs: list[FieldError] = []
    for group in ("containers", "initContainers"):
        new_c, old_c = as_list(spec.get(group)), as_list(old_spec.get(group))
        if len(new_c) != len(old_c):
            errs.append(
                FieldError.forbidden(
                    f"spec.{group}", "pod updates may not add or remove containers"
                )
            )
            return errs
        for i, c in enumerate(dicts_in(new_c)):
            image = c.get("image")
            if isinstance(image, str) and image and image.strip() != image:
                errs.append(
                    FieldError.invalid(
                        f"spec.{group}[{i}].image",
                        image,
                        "must not have leading or trailing whitespace",
                    )
                )
    deadline, old_deadline = (
        spec.get("activeDeadlineSeconds"),
        old_spec.get("activeDeadlineSeconds"),
    )
    if deadline is not None:
        path = "spec.activeDeadlineSeconds"
        if as_int(deadline) is None or not 0 <= deadline <= _MAX_INT32:
            errs.append(
                FieldError.invalid(path, deadline, f"must be between 0 and {_MAX_INT32}, inclusive")
            )
            return errs
        if as_int(old_deadline) is not None and old_deadline < deadline:
            errs.append(
                FieldError.invalid(path, deadline, "must be less than or equal to previous value")
            )
            return errs
    elif old_deadline is not None:
        errs.append(
            FieldError.invalid(
                "spec.activeDeadlineSeconds",
                None,
                "must not update from a positive integer to nil value",
            )
        )
    errs.extend(_only_added_tolerations(spec.get("tolerations"), old_spec.get("tolerations")))
    errs.extend(_only_deleted_gates(spec.get("schedulingGates"), old_spec.get("schedulingGates")))
    if _semantic(spec) == _semantic(old_spec):
        return errs
    munged = json.loads(json.dumps(spec))
    for group in ("containers", "initContainers"):
        for c, oc in zip(dicts_in(munged.get(group)), dicts_in(old_spec.get(group)), strict=False):
            c["image"] = oc.get("image")
    for key in ("activeDeadlineSeconds", "schedulingGates", "tolerations"):
        if key in old_spec:
            munged[key] = old_spec[key]
        else:
            munged.pop(key, None)
    old_grace = as_int(old_spec.get("terminationGracePeriodSeconds"))
    if old_grace is not None and old_grace < 0 and munged.get("terminationGracePeriodSeconds") == 1:
        munged["terminationGracePeriodSeconds"] = old_grace
    if as_list(old_spec.get("schedulingGates")):
        # A gated pod may gain nodeSelector entries (no changes or removals).
        old_sel = as_dict(old_spec.get("nodeSelector"))
        new_sel = as_dict(munged.get("nodeSelector"))
        if new_sel != old_sel:
            if any(new_sel.get(k) != v for k, v in old_sel.items()):
                errs.append(
                    FieldError.invalid(
                        "spec.nodeSelector",
                        new_sel,
                        "only additions to spec.nodeSelector are allowed (no mutations or "
                        "deletions)",
                    )
                )
            if "nodeSelector" in old_spec:
                munged["nodeSelector"] = old_spec["nodeSelector"]
            else:
                munged.pop("nodeSelector", None)
    if _semantic(munged) != _semantic(old_spec):
        diff = _spec_diff("core.PodSpec", _semantic(old_spec), _semantic(munged))
        errs.append(
            FieldError.forbidden(
                "spec", f"pod updates may not change fields other than {_POD_UPDATABLE}\n{diff}"
            )
        )
    return errs


def _only_added_tolerations(new: Any, old: Any) -> list[FieldError]:
    """``validateOnlyAddedTolerations``: existing ones may change only tolerationSeconds."""
    new_list = dicts_in(new)
    for tol in dicts_in(old):
        found = False
        for cand in new_list:
            probe = {**tol, "tolerationSeconds": cand.get("tolerationSeconds")}
            if _semantic(probe) == _semantic(cand):
                found = True
                break
        if not found:
            return [
                FieldError.forbidden(
                    "spec.tolerations",
                    "existing toleration can not be modified except its tolerationSeconds",
                )
            ]
    return []


def _only_deleted_gates(new: Any, old: Any) -> list[FieldError]:
    old_names = {g.get("name") for g in dicts_in(old)}
    return [
        FieldError.forbidden(
            f"spec.schedulingGates[{i}].name",
            f"only deletion is allowed, but found new scheduling gate '{g.get('name')}'",
        )
        for i, g in enumerate(dicts_in(new))
        if g.get("name") not in old_names
    ]


_QUANTITY_RE = re.compile(
    r"([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?)"
)
_QUANTITY_SCALE: dict[str, Decimal | int] = {
    "": 1,
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
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


def _quantity(value: Any) -> Decimal | None:
    if not isinstance(value, str):
        return None
    m = _QUANTITY_RE.fullmatch(value.strip())
    if m is None:
        return None
    number = Decimal(m[1])
    if m[2]:
        return number * Decimal(10) ** int(m[2][1:])
    return number * Decimal(_QUANTITY_SCALE[m[3] or ""])


_PVC_IMMUTABLE = (
    "spec is immutable after creation except resources.requests and volumeAttributesClassName "
    "for bound claims"
)
_BETA_STORAGE_CLASS = "volume.beta.kubernetes.io/storage-class"


def _validate_pvc(rt: ResourceType, obj: Obj, old: Obj | None) -> list[FieldError]:
    """``ValidatePersistentVolumeClaimUpdate``: the spec is frozen, except that an unbound
    claim's ``volumeName`` may be set once (the PV binder does), a missing
    ``storageClassName`` may be filled in, and a bound claim's storage request may change."""
    if old is None or obj.get("spec") == old.get("spec"):
        return []
    errs: list[FieldError] = []
    spec = json.loads(json.dumps(as_dict(obj.get("spec"))))
    old_spec = json.loads(json.dumps(as_dict(old.get("spec"))))
    if not old_spec.get("volumeName"):
        old_spec["volumeName"] = spec.get("volumeName")
    old_annotation = as_dict(as_dict(old.get("metadata")).get("annotations")).get(
        _BETA_STORAGE_CLASS
    )
    if (
        old_spec.get("storageClassName") is None
        and spec.get("storageClassName") is not None
        and (old_annotation is None or spec["storageClassName"] == old_annotation)
    ):
        spec.pop("storageClassName")
    bound = as_dict(obj.get("status")).get("phase") == "Bound"
    requests = as_dict(as_dict(spec.get("resources")).get("requests"))
    old_requests = as_dict(as_dict(old_spec.get("resources")).get("requests"))
    if bound and requests:
        if "storage" in old_requests:
            requests["storage"] = old_requests["storage"]
        else:
            requests.pop("storage", None)
    spec["volumeAttributesClassName"] = old_spec.get("volumeAttributesClassName")
    if _semantic(spec) != _semantic(old_spec):
        diff = _spec_diff("core.PersistentVolumeClaimSpec", _semantic(old_spec), _semantic(spec))
        errs.append(FieldError.forbidden("spec", f"{_PVC_IMMUTABLE}\n{diff}"))
    new_size = _quantity(
        as_dict(as_dict(as_dict(obj.get("spec")).get("resources")).get("requests")).get("storage")
    )
    old_size = _quantity(old_requests.get("storage"))
    status_size = _quantity(as_dict(as_dict(old.get("status")).get("capacity")).get("storage"))
    # RecoverVolumeExpansionFailure (beta, on): shrinking is fine down to above the capacity.
    if (
        new_size is not None
        and old_size is not None
        and new_size < old_size
        and new_size <= (status_size or 0)
    ):
        errs.append(
            FieldError.forbidden(
                "spec.resources.requests.storage", "field can not be less than status.capacity"
            )
        )
    new_mode = as_dict(obj.get("spec")).get("volumeMode")
    if new_mode != as_dict(old.get("spec")).get("volumeMode"):
        errs.append(FieldError.invalid("volumeMode", new_mode, "field is immutable"))
    return errs


def _validate_selector_and_template(
    spec: Obj, kind_word: str, errs: list[FieldError], *, restart_always: bool = True
) -> None:
    selector = spec.get("selector")
    if not isinstance(selector, dict):
        errs.append(FieldError.required("spec.selector"))
        selector = None
    elif not as_dict(selector.get("matchLabels")) and not as_list(selector.get("matchExpressions")):
        errs.append(
            FieldError.invalid(
                "spec.selector", selector, f"empty selector is invalid for {kind_word}"
            )
        )
        selector = None
    template = spec.get("template")
    if not isinstance(template, dict):
        errs.append(FieldError.required("spec.template"))
        return
    labels = as_dict(as_dict(template.get("metadata")).get("labels"))
    if selector is not None and not selector_matches(selector, labels):
        errs.append(
            FieldError.invalid(
                "spec.template.metadata.labels",
                labels,
                "`selector` does not match template `labels`",
            )
        )
    pod_spec = template.get("spec")
    if not isinstance(pod_spec, dict):
        errs.append(FieldError.required("spec.template.spec.containers"))
        return
    # A StatefulSet's pods get a volume per claim template (mounts may name them).
    claims = {
        str(as_dict(c.get("metadata")).get("name"))
        for c in dicts_in(spec.get("volumeClaimTemplates"))
    }
    _validate_containers(pod_spec, "spec.template.spec", errs, claims)
    policy = pod_spec.get("restartPolicy")
    if restart_always and policy not in (None, "Always"):
        errs.append(
            FieldError.not_supported("spec.template.spec.restartPolicy", policy, ["Always"])
        )


def _validate_replicas(spec: Obj, errs: list[FieldError]) -> None:
    replicas = spec.get("replicas")
    if replicas is not None and (as_int(replicas) is None or replicas < 0):
        errs.append(
            FieldError.invalid("spec.replicas", replicas, "must be greater than or equal to 0")
        )


# v1.32's list (revisionHistoryLimit became mutable only later).
_STS_MUTABLE = (
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
)


def _validate_statefulset(rt: ResourceType, obj: Obj, old: Obj | None) -> list[FieldError]:
    errs: list[FieldError] = []
    spec = as_dict(obj.get("spec"))
    _validate_replicas(spec, errs)
    policy = spec.get("podManagementPolicy")
    if policy not in (None, "OrderedReady", "Parallel"):
        errs.append(
            FieldError.invalid(
                "spec.podManagementPolicy", policy, "must be 'OrderedReady' or 'Parallel'"
            )
        )
    strategy = as_dict(spec.get("updateStrategy")).get("type")
    if strategy not in (None, "RollingUpdate", "OnDelete"):
        errs.append(
            FieldError.invalid(
                "spec.updateStrategy", strategy, "must be 'RollingUpdate' or 'OnDelete'"
            )
        )
    _validate_selector_and_template(spec, "statefulset", errs)
    if old is not None:
        old_spec = as_dict(old.get("spec"))
        frozen_new = {k: v for k, v in spec.items() if k not in _STS_MUTABLE}
        frozen_old = {k: v for k, v in old_spec.items() if k not in _STS_MUTABLE}
        if frozen_new != frozen_old and _semantic(frozen_new) != _semantic(frozen_old):
            errs.append(
                FieldError.forbidden(
                    "spec",
                    "updates to statefulset spec for fields other than 'replicas', 'ordinals', "
                    "'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and "
                    "'minReadySeconds' are forbidden",
                )
            )
    return errs


def _immutable_selector(obj: Obj, old: Obj | None, errs: list[FieldError]) -> None:
    if old is None:
        return
    new_sel = as_dict(obj.get("spec")).get("selector")
    old_sel = as_dict(old.get("spec")).get("selector")
    if new_sel != old_sel:
        errs.append(FieldError.invalid("spec.selector", new_sel, "field is immutable"))


def _validate_apps(kind_word: str) -> Any:
    def check(rt: ResourceType, obj: Obj, old: Obj | None) -> list[FieldError]:
        errs: list[FieldError] = []
        spec = as_dict(obj.get("spec"))
        if kind_word != "daemonset":
            _validate_replicas(spec, errs)
        _validate_selector_and_template(spec, kind_word, errs)
        _immutable_selector(obj, old, errs)
        return errs

    return check


def _validate_job(rt: ResourceType, obj: Obj, old: Obj | None) -> list[FieldError]:
    errs: list[FieldError] = []
    spec = as_dict(obj.get("spec"))
    template = spec.get("template")
    if not isinstance(template, dict) or not isinstance(template.get("spec"), dict):
        return [FieldError.required("spec.template")]
    _validate_containers(template["spec"], "spec.template.spec", errs)
    policy = template["spec"].get("restartPolicy")
    if policy not in ("OnFailure", "Never"):
        errs.append(
            FieldError.not_supported(
                "spec.template.spec.restartPolicy", policy, ["OnFailure", "Never"]
            )
        )
    return errs


_SERVICE_TYPES = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]


def _validate_service(rt: ResourceType, obj: Obj, old: Obj | None) -> list[FieldError]:
    errs: list[FieldError] = []
    spec = as_dict(obj.get("spec"))
    svc_type = spec.get("type", "ClusterIP")
    if svc_type not in _SERVICE_TYPES:
        errs.append(FieldError.not_supported("spec.type", svc_type, _SERVICE_TYPES))
    headless = spec.get("clusterIP") == "None"
    ports = dicts_in(spec.get("ports"))
    if svc_type == "ExternalName":
        if not spec.get("externalName"):
            errs.append(FieldError.required("spec.externalName"))
        if spec.get("clusterIP"):
            errs.append(
                FieldError.forbidden("spec.clusterIP", "may not be set for ExternalName services")
            )
    elif not ports and not headless:
        errs.append(FieldError.required("spec.ports"))
    names: set[str] = set()
    for i, port in enumerate(ports):
        path = f"spec.ports[{i}]"
        name = port.get("name")
        if len(ports) > 1 and not name:
            errs.append(FieldError.required(f"{path}.name"))
        elif isinstance(name, str) and name:
            errs.extend(
                FieldError.invalid(f"{path}.name", name, m) for m in dns1123_label_errors(name)
            )
            if name in names:
                errs.append(FieldError.duplicate(f"{path}.name", name))
            names.add(name)
        _port_range(f"{path}.port", port.get("port"), errs)
        if port.get("protocol") not in (None, *_PROTOCOLS):
            errs.append(FieldError.not_supported(f"{path}.protocol", port["protocol"], _PROTOCOLS))
        target = port.get("targetPort")
        if isinstance(target, str):
            if not (len(target) <= 15 and _IANA_SVC_RE.fullmatch(target)) or target.isdigit():
                errs.append(
                    FieldError.invalid(
                        f"{path}.targetPort",
                        target,
                        "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
                    )
                )
        elif target is not None:
            _port_range(f"{path}.targetPort", target, errs)
        if port.get("nodePort") and svc_type in ("ClusterIP", "ExternalName"):
            errs.append(
                FieldError.forbidden(
                    f"{path}.nodePort", f"may not be used when `type` is '{svc_type}'"
                )
            )
    if old is not None:
        old_spec = as_dict(old.get("spec"))
        if "ExternalName" not in (svc_type, old_spec.get("type", "ClusterIP")):
            old_ips = as_list(old_spec.get("clusterIPs"))
            new_ips = as_list(spec.get("clusterIPs"))
            for i, ip in enumerate(old_ips):
                if i < len(new_ips) and new_ips[i] != ip:
                    errs.append(
                        FieldError.invalid(
                            f"spec.clusterIPs[{i}]", new_ips, "may not change once set"
                        )
                    )
    return errs


def _validate_lease(rt: ResourceType, obj: Obj, old: Obj | None) -> list[FieldError]:
    errs: list[FieldError] = []
    spec = as_dict(obj.get("spec"))
    duration = spec.get("leaseDurationSeconds")
    if duration is not None:
        if as_int(duration) is None:
            errs.append(
                FieldError.type_invalid("spec.leaseDurationSeconds", duration, "must be an integer")
            )
        elif duration <= 0:
            errs.append(
                FieldError.invalid("spec.leaseDurationSeconds", duration, "must be greater than 0")
            )
    transitions = spec.get("leaseTransitions")
    if transitions is not None:
        if as_int(transitions) is None:
            errs.append(
                FieldError.type_invalid("spec.leaseTransitions", transitions, "must be an integer")
            )
        elif transitions < 0:
            errs.append(
                FieldError.invalid(
                    "spec.leaseTransitions", transitions, "must be greater than or equal to 0"
                )
            )
    for key in ("acquireTime", "renewTime"):
        value = spec.get(key)
        if value is not None and (not isinstance(value, str) or parse_time(value) is None):
            errs.append(FieldError.invalid(f"spec.{key}", value, "must be an RFC 3339 date-time"))
    holder = spec.get("holderIdentity")
    if holder is not None and not isinstance(holder, str):
        errs.append(FieldError.type_invalid("spec.holderIdentity", holder, "must be a string"))
    return errs


_REASON_LIMIT = 128
_ACTION_LIMIT = 128
_INSTANCE_LIMIT = 128
_NOTE_LIMIT = 1024


def _legacy_event_errors(core: Obj) -> list[FieldError]:
    """Rules every event must pass, whichever API wrote it (``legacyValidateEvent``).

    Field paths use the internal (core) names, as upstream reports them.
    """
    errs: list[FieldError] = []
    namespace = str(as_dict(core.get("metadata")).get("namespace") or "")
    involved_ns = str(as_dict(core.get("involvedObject")).get("namespace") or "")
    mismatch = FieldError.invalid(
        "involvedObject.namespace", involved_ns, "does not match event.namespace"
    )
    if not core.get("eventTime"):
        if not involved_ns:
            if namespace not in ("", "default"):
                errs.append(mismatch)
        elif namespace != involved_ns:
            errs.append(mismatch)
    else:
        if not involved_ns and namespace not in ("default", "kube-system"):
            errs.append(mismatch)
        controller = str(core.get("reportingComponent") or "")
        if not controller:
            errs.append(FieldError.required("reportingController"))
        errs.extend(
            FieldError.invalid("reportingController", controller, m)
            for m in qualified_name_errors(controller)
        )
        instance = str(core.get("reportingInstance") or "")
        if not instance:
            errs.append(FieldError.required("reportingInstance"))
        if len(instance) > _INSTANCE_LIMIT:
            errs.append(
                FieldError.invalid(
                    "reportingInstance", "", f"can have at most {_INSTANCE_LIMIT} characters"
                )
            )
        for key, limit in (("action", _ACTION_LIMIT), ("reason", _REASON_LIMIT)):
            value = str(core.get(key) or "")
            if not value:
                errs.append(FieldError.required(key))
            if len(value) > limit:
                errs.append(FieldError.invalid(key, "", f"can have at most {limit} characters"))
        if len(str(core.get("message") or "")) > _NOTE_LIMIT:
            errs.append(
                FieldError.invalid("message", "", f"can have at most {_NOTE_LIMIT} characters")
            )
    if namespace:
        errs.extend(
            FieldError.invalid("namespace", namespace, m)
            for m in dns1123_subdomain_errors(namespace)
        )
    return errs


def _series_errors(core: Obj) -> list[FieldError]:
    series = core.get("series")
    if not isinstance(series, dict):
        return []
    errs = []
    count = as_int(series.get("count"))
    if count is None or count < 2:
        errs.append(FieldError.invalid("series.count", "", "should be at least 2"))
    if not series.get("lastObservedTime"):
        errs.append(FieldError.required("series.lastObservedTime"))
    return errs


# Fields an update through events.k8s.io/v1 may not change (core names).
_EVENT_IMMUTABLE = (
    "involvedObject",
    "reason",
    "message",
    "source",
    "firstTimestamp",
    "lastTimestamp",
    "count",
    "type",
    "eventTime",
    "action",
    "related",
    "reportingComponent",
    "reportingInstance",
)


def _empty(value: Any) -> bool:
    return value in (None, "", 0, {}, [])


def _as_core_event(obj: Obj) -> Obj:
    is_v1 = obj.get("apiVersion") == "events.k8s.io/v1" or (
        "involvedObject" not in obj and "regarding" in obj
    )
    return event_v1_to_core(obj) if is_v1 else obj


def _validate_event_v1(rt: ResourceType, obj: Obj, old: Obj | None) -> list[FieldError]:
    """``ValidateEventCreate``/``ValidateEventUpdate`` for the events.k8s.io/v1 API."""
    core = event_v1_to_core(obj)
    errs = _legacy_event_errors(core)
    if old is None:
        errs.extend(_series_errors(core))
        if not core.get("eventTime"):
            errs.append(FieldError.required("eventTime"))
        event_type = core.get("type")
        if event_type not in ("Normal", "Warning"):
            errs.append(FieldError.invalid("type", "", f"has invalid value: {event_type or ''}"))
        for key in ("firstTimestamp", "lastTimestamp", "count"):
            if core.get(key):
                errs.append(FieldError.invalid(key, "", "needs to be unset"))
        source = as_dict(core.get("source"))
        if source.get("component") or source.get("host"):
            errs.append(FieldError.invalid("source", "", "needs to be unset"))
        return errs
    old_core = _as_core_event(old)
    if core.get("series") != old_core.get("series"):
        errs.extend(_series_errors(core))
    for key in _EVENT_IMMUTABLE:
        new_value, old_value = core.get(key), old_core.get(key)
        if new_value != old_value and not (_empty(new_value) and _empty(old_value)):
            path = "reportingController" if key == "reportingComponent" else key
            errs.append(FieldError.invalid(path, new_value, "field is immutable"))
    return errs


def _validate_event_core(rt: ResourceType, obj: Obj, old: Obj | None) -> list[FieldError]:
    return _legacy_event_errors(obj)


_MAX_DATA_SIZE = 1024 * 1024  # core.MaxSecretSize, also the ConfigMap limit


def _data_key_errors(field: str, keys: Any) -> list[FieldError]:
    return [
        FieldError.invalid(f"{field}[{key}]", key, m)
        for key in as_dict(keys)
        for m in _config_key_errors(str(key))
    ]


def _text_size(values: Any) -> int:
    return sum(
        len(v.encode("utf-8", "surrogatepass"))
        for v in as_dict(values).values()
        if isinstance(v, str)
    )


def _bytes_size(values: Any) -> int:
    """Decoded size of base64 values (already canonical: the server decoded them)."""
    total = 0
    for v in as_dict(values).values():
        if isinstance(v, str):
            total += len(v) // 4 * 3 - (len(v) - len(v.rstrip("=")))
    return total


def _immutable_data(
    obj: Obj, old: Obj | None, fields: tuple[str, ...], errs: list[FieldError]
) -> None:
    if old is None or old.get("immutable") is not True:
        return
    if obj.get("immutable") is not True:
        errs.append(FieldError.forbidden("immutable", "field is immutable when `immutable` is set"))
    for field in fields:
        if (obj.get(field) or {}) != (old.get(field) or {}):
            errs.append(FieldError.forbidden(field, "field is immutable when `immutable` is set"))


def _validate_configmap(rt: ResourceType, obj: Obj, old: Obj | None) -> list[FieldError]:
    """``ValidateConfigMap`` (+ ``ValidateConfigMapUpdate``)."""
    data, binary = as_dict(obj.get("data")), as_dict(obj.get("binaryData"))
    errs = _data_key_errors("data", data)
    errs.extend(
        FieldError.invalid(f"data[{key}]", key, "duplicate of key present in binaryData")
        for key in data
        if key in binary
    )
    errs.extend(_data_key_errors("binaryData", binary))
    if _text_size(data) + _bytes_size(binary) > _MAX_DATA_SIZE:
        # an empty path: the error is about the whole object
        errs.append(FieldError.too_long("", _MAX_DATA_SIZE))
    _immutable_data(obj, old, ("data", "binaryData"), errs)
    return errs


_SECRET_REQUIRED_KEYS = {
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/dockercfg": (".dockercfg",),
}


def _validate_secret(rt: ResourceType, obj: Obj, old: Obj | None) -> list[FieldError]:
    """``ValidateSecret`` (+ update rules); ``stringData`` is already merged into ``data``."""
    errs = _data_key_errors("data", obj.get("data"))
    if _bytes_size(obj.get("data")) > _MAX_DATA_SIZE:
        errs.append(FieldError.too_long("data", _MAX_DATA_SIZE))
    keys = set(as_dict(obj.get("data"))) | set(as_dict(obj.get("stringData")))
    for key in _SECRET_REQUIRED_KEYS.get(str(obj.get("type") or ""), ()):
        if key not in keys:
            errs.append(FieldError.required(f"data[{key}]"))
    if old is not None and (old.get("type") or "Opaque") != (obj.get("type") or "Opaque"):
        errs.append(FieldError.invalid("type", obj.get("type"), "field is immutable"))
    _immutable_data(obj, old, ("data",), errs)
    return errs


def _validate_pdb(rt: ResourceType, obj: Obj, old: Obj | None) -> list[FieldError]:
    spec = as_dict(obj.get("spec"))
    if "minAvailable" in spec and "maxUnavailable" in spec:
        return [
            FieldError.invalid("spec", spec, "minAvailable and maxUnavailable cannot be both set")
        ]
    return []


_VALIDATORS: dict[tuple[str, str], Any] = {
    ("", "Pod"): _validate_pod,
    ("", "Service"): _validate_service,
    ("", "ConfigMap"): _validate_configmap,
    ("", "Secret"): _validate_secret,
    ("", "PersistentVolumeClaim"): _validate_pvc,
    ("", "Event"): _validate_event_core,
    ("events.k8s.io", "Event"): _validate_event_v1,
    ("coordination.k8s.io", "Lease"): _validate_lease,
    ("apps", "StatefulSet"): _validate_statefulset,
    ("apps", "Deployment"): _validate_apps("deployment"),
    ("apps", "ReplicaSet"): _validate_apps("replicaset"),
    ("apps", "DaemonSet"): _validate_apps("daemonset"),
    ("batch", "Job"): _validate_job,
    ("policy", "PodDisruptionBudget"): _validate_pdb,
}


def validate(rt: ResourceType, obj: Obj, old: Obj | None = None) -> list[FieldError]:
    """Field errors for a create (``old=None``) or update of a main-resource write.

    Covers object names and labels for every kind (custom resources too) and the per-kind
    rules of built-ins. Run it after :func:`apply_defaults`.
    """
    errs = _validate_meta(rt, obj)
    if not rt.is_custom:
        check = _VALIDATORS.get((rt.group, rt.kind))
        if check is not None:
            errs.extend(check(rt, obj, old))
    return errs
