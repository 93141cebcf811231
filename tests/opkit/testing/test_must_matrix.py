"""Coverage of every MUST item of apiserver_semantics.md by real-client tests.

One item per block: its ID, then one test per line as ``file::test``. Files: crud,
lifecycle, watch, kinds, faults = CORE's test_server_*.py; k-crd, k-work, k-life =
test_kubectl_{crd,workloads,lifecycle}.py; c-req, c-sem, c-conc =
test_client_{requests,semantics,concurrency}.py; ctrl-sts, ctrl-pod =
controllers/test_ctrl_{statefulset,podsim}.py (the built-in controllers, run next to the
server); matrix = this file. Unit tests of the building blocks (test_openapi.py,
test_table.py, test_builtins.py, test_schema.py, test_patch.py, test_ssa.py,
test_discovery_docs.py) are not listed. "(xfail An)" would mark a test held back by bug An
in /work/coord/BUGS.md (none for MUST items now). test_matrix_names_only_existing_tests
keeps this table honest.

ENV-1    crud::test_version_and_health
         k-work::test_version_picks_kubectl_132
ENV-2    crud::test_version_and_health
         c-req::test_every_error_response_is_keep_alive_with_length_and_cache_control
         matrix::test_cache_control_on_every_kind_of_response
ENV-3    matrix::test_typed_client_reads_every_served_kind
         c-sem::test_typed_deletes_of_kinds_that_return_the_object
         c-sem::test_typed_deletes_of_volumes_and_service_accounts_return_the_object
HTTP-1   c-req::test_bad_requests_are_status_errors_on_one_connection
         c-req::test_every_error_response_is_keep_alive_with_length_and_cache_control
         lifecycle::test_delete_response_shapes
         crud::test_garbage_http_gets_status_body
HTTP-2   c-conc::test_watchers_see_every_write_in_order
         watch::test_concurrent_writers_and_watchers_see_every_event_in_order
         k-life::test_get_watch_sees_changes
HTTP-3   crud::test_malformed_bodies_never_500
         c-req::test_missing_content_type_is_json_and_yaml_is_accepted
         c-req::test_bad_requests_are_status_errors_on_one_connection
HTTP-4   crud::test_yaml_body_and_accept_negotiation
         c-req::test_bad_requests_are_status_errors_on_one_connection
         k-work::test_describe_and_events
         k-crd::test_apply_crd_then_custom_resource_and_printer_columns
HTTP-5   kinds::test_go_style_booleans_and_unknown_params
         c-req::test_query_values_are_decoded_and_extras_ignored
URL-1    crud::test_unknown_resource_and_bad_verb
         c-sem::test_discovery_through_the_typed_clients
URL-2    lifecycle::test_custom_resource_scale
         lifecycle::test_custom_resource_status_and_generation
         c-req::test_post_on_an_item_path_is_405_and_changes_nothing
         k-crd::test_crd_update_status_conditions_and_removal
URL-3    c-sem::test_cluster_scoped_nodes_and_persistent_volumes
         c-req::test_unknown_group_version_and_name_paths
URL-4    c-sem::test_all_namespaces_lists_and_watches
         k-crd::test_get_all_and_all_namespaces
URL-6    crud::test_unknown_resource_and_bad_verb
         c-req::test_bad_requests_are_status_errors_on_one_connection
         c-req::test_unknown_group_version_and_name_paths
URL-7    lifecycle::test_namespace_finalize_endpoint
         kinds::test_namespace_status_subresource
VER-1    crud::test_version_and_health
         k-work::test_version_picks_kubectl_132
DISC-1   c-sem::test_discovery_through_the_typed_clients
         c-sem::test_dynamic_client_finds_a_crd_created_after_it_started
         k-crd::test_api_resources_lists_builtin_and_crd_kinds
         faults::test_discovery_documents
DISC-3   k-crd::test_get_all_and_all_namespaces
         c-sem::test_discovery_through_the_typed_clients
         faults::test_discovery_documents
DISC-4   lifecycle::test_crd_lifecycle
         c-sem::test_dynamic_client_finds_a_crd_created_after_it_started
         k-crd::test_apply_crd_then_custom_resource_and_printer_columns
OAPI-1   k-crd::test_apply_crd_then_custom_resource_and_printer_columns
         k-work::test_apply_updates_deployment_without_losing_fields
         faults::test_discovery_documents
OAPI-2   k-crd::test_apply_rejects_schema_violation_and_unknown_field
         k-work::test_diff_is_a_dry_run
         k-work::test_replace_and_conflict
OAPI-3   k-crd::test_apply_crd_then_custom_resource_and_printer_columns
         k-crd::test_apply_updates_custom_resource_with_merge_patch
META-1   crud::test_global_revision_counter
         c-conc::test_watchers_see_every_write_in_order
META-2   crud::test_create_sets_system_metadata
         k-crd::test_get_output_yaml_and_json
META-3   crud::test_immutable_metadata
META-4   crud::test_generate_name
META-6   crud::test_type_meta_fill_in_and_mismatch
         c-req::test_bad_requests_are_status_errors_on_one_connection
         c-req::test_missing_content_type_is_json_and_yaml_is_accepted
META-7   crud::test_create_sets_system_metadata
         c-sem::test_lease_times_and_validation
         c-sem::test_datetimes_round_trip_through_models
         c-sem::test_event_views_map_every_field
         kinds::test_lease_leader_election_flow
META-8   c-sem::test_list_shapes
         watch::test_list_is_ordered_by_namespace_then_name
META-9   crud::test_noop_update_keeps_revision
         c-sem::test_patch_runs_the_whole_write_path
         k-work::test_apply_updates_deployment_without_losing_fields
GEN-1    lifecycle::test_custom_resource_status_and_generation
         lifecycle::test_custom_resource_without_status_subresource
GEN-2    c-sem::test_deletion_bumps_generation_once
STAT-1   lifecycle::test_custom_resource_status_and_generation
         crud::test_generation_tracking_builtin
         c-sem::test_status_put_without_status_clears_it
         lifecycle::test_custom_resource_without_status_subresource
         k-crd::test_crd_update_status_conditions_and_removal
CONC-1   crud::test_optimistic_concurrency
         c-sem::test_leader_election_lease_lock
         k-work::test_replace_and_conflict
         kinds::test_lease_leader_election_flow
CONC-2   crud::test_optimistic_concurrency
         lifecycle::test_custom_resource_schema_semantics
CONC-3   crud::test_optimistic_concurrency
         c-sem::test_patch_runs_the_whole_write_path
CONC-5   crud::test_optimistic_concurrency
         k-work::test_replace_and_conflict
ERR-1    crud::test_already_exists_and_not_found_bodies
         c-req::test_bad_requests_are_status_errors_on_one_connection
ERR-2    c-sem::test_custom_resource_error_texts
         c-req::test_bad_requests_are_status_errors_on_one_connection
ERR-3    lifecycle::test_delete_response_shapes
         lifecycle::test_finalizers_hold_deletion
         c-sem::test_typed_deletes_of_kinds_that_return_the_object
         c-sem::test_typed_deletes_of_volumes_and_service_accounts_return_the_object
         matrix::test_delete_with_orphan_dependents_false_is_202
SEL-1    watch::test_label_and_field_selectors
         k-work::test_label_and_annotate
         c-req::test_bad_requests_are_status_errors_on_one_connection
SEL-2    watch::test_pod_and_event_field_selectors
         c-sem::test_field_selectors_per_kind
         k-work::test_describe_and_events
SEL-3    watch::test_watch_selector_enter_and_leave
         lifecycle::test_deletecollection_with_selector
         c-sem::test_watch_custom_resources_with_selectors
         k-life::test_get_watch_single_object
PAGE-1   watch::test_paging_with_continue
         k-work::test_get_pages_through_continue_tokens
RV-1     crud::test_get_and_list_resource_version_semantics
DRY-1    crud::test_dry_run_persists_nothing
         k-work::test_diff_is_a_dry_run
         c-sem::test_patch_runs_the_whole_write_path
VALID-1  crud::test_field_validation_modes
         k-crd::test_apply_rejects_schema_violation_and_unknown_field
VALID-2  crud::test_field_validation_modes
         c-req::test_bad_requests_are_status_errors_on_one_connection
         k-crd::test_apply_rejects_schema_violation_and_unknown_field
DEL-1    lifecycle::test_delete_response_shapes
         c-req::test_delete_with_malformed_options_body_is_rejected
DEL-2    lifecycle::test_finalizers_hold_deletion
         k-life::test_wait_for_delete
DEL-3    lifecycle::test_finalizers_hold_deletion
         k-life::test_wait_for_delete
         k-life::test_delete_waits_for_finalizers
DEL-4    lifecycle::test_pod_graceful_deletion_only_when_scheduled
         k-life::test_graceful_pod_deletion_and_force
GC-1     lifecycle::test_gc_background
         lifecycle::test_gc_owner_judged_by_uid
         k-life::test_delete_background_cascade_is_the_default
GC-2     lifecycle::test_gc_foreground
         k-life::test_delete_cascade_foreground_waits_for_children
GC-3     lifecycle::test_gc_orphan
         k-life::test_delete_cascade_orphan_keeps_children
NS-1     crud::test_namespace_must_exist_and_not_terminate
         lifecycle::test_namespace_deletion_lifecycle
         k-life::test_delete_namespace_goes_away
NS-2     lifecycle::test_namespace_deletion_lifecycle
         k-life::test_delete_namespace_goes_away
NS-3     lifecycle::test_namespace_deletion_lifecycle
         k-life::test_delete_namespace_goes_away
WATCH-1  watch::test_watch_bookmarks_only_when_asked
         k-life::test_get_watch_sees_changes
WATCH-2  watch::test_watch_from_now_sends_synthetic_added
         watch::test_watch_from_exact_revision
         c-conc::test_watchers_see_every_write_in_order
WATCH-3  watch::test_watch_from_exact_revision
         c-conc::test_watchers_see_every_write_in_order
         c-sem::test_watch_custom_resources_with_selectors
WATCH-4  watch::test_watch_expired_history_sends_410_event
         c-sem::test_shared_informer_relists_after_expired_watch
WATCH-5  watch::test_watch_timeout_ends_stream_cleanly
         watch::test_closed_watch_frees_watcher
         c-sem::test_watch_stream_survives_bookmarks_and_ends_on_timeout
WATCH-6  watch::test_watch_expired_history_sends_410_event
         c-sem::test_shared_informer_relists_after_expired_watch
         faults::test_compact_hook_and_request_log
PATCH-1  lifecycle::test_custom_resource_schema_semantics
         k-crd::test_patch_custom_resource_merge_json_and_strategic_is_415
         c-req::test_bad_requests_are_status_errors_on_one_connection
PATCH-2  c-sem::test_json_patch_operations_on_a_custom_resource
         k-work::test_patch_types_on_deployment
PATCH-3  crud::test_patch_types_on_builtin
         k-work::test_patch_types_on_deployment
         k-work::test_label_and_annotate
PATCH-4  k-work::test_apply_updates_deployment_without_losing_fields
         k-work::test_patch_types_on_deployment
         c-sem::test_scale_subresource_preconditions_and_statefulset_smp
PATCH-5  c-sem::test_patch_runs_the_whole_write_path
         k-work::test_patch_types_on_deployment
SSA-1    crud::test_server_side_apply_create_and_field_manager
         c-sem::test_server_side_apply_on_custom_resources
         k-work::test_server_side_apply_conflicts_and_force
         crud::test_server_side_apply_conflicts
SSA-2    crud::test_server_side_apply_create_and_field_manager
CRD-1    lifecycle::test_crd_validation_errors
         c-sem::test_crd_validation
         k-crd::test_apply_crd_then_custom_resource_and_printer_columns
CRD-2    lifecycle::test_crd_lifecycle
         k-crd::test_apply_crd_then_custom_resource_and_printer_columns
CRD-3    lifecycle::test_crd_lifecycle
         c-sem::test_crd_update_reregisters_versions_and_columns
         lifecycle::test_crd_removal_ends_its_watches
         k-crd::test_crd_update_status_conditions_and_removal
CRD-4    lifecycle::test_custom_resource_schema_semantics
         c-sem::test_custom_resource_error_texts
         k-crd::test_apply_rejects_schema_violation_and_unknown_field
CRD-5    lifecycle::test_custom_resource_schema_semantics
         k-crd::test_apply_rejects_schema_violation_and_unknown_field
CRD-6    lifecycle::test_custom_resource_schema_semantics
         c-sem::test_patch_runs_the_whole_write_path
CRD-7    lifecycle::test_custom_resource_schema_semantics
         k-crd::test_apply_crd_then_custom_resource_and_printer_columns
CRD-8    lifecycle::test_custom_resource_status_and_generation
         lifecycle::test_custom_resource_without_status_subresource
CRD-9    lifecycle::test_custom_resource_scale
         k-crd::test_scale_custom_resource
         c-sem::test_scale_subresource_preconditions_and_statefulset_smp
CRD-10   k-crd::test_apply_crd_then_custom_resource_and_printer_columns
         c-sem::test_crd_update_reregisters_versions_and_columns
         kinds::test_custom_resource_table_uses_printer_columns
         k-life::test_get_watch_custom_resources_prints_their_columns
TABLE-1  k-crd::test_apply_crd_then_custom_resource_and_printer_columns
         k-crd::test_pod_table_columns_and_wide
         k-work::test_get_pages_through_continue_tokens
         faults::test_table_output_for_get_list_and_watch
         k-life::test_get_watch_custom_resources_prints_their_columns
TABLE-2  k-crd::test_get_all_and_all_namespaces
LEASE-1  kinds::test_lease_leader_election_flow
         c-sem::test_leader_election_lease_lock
         c-sem::test_lease_times_and_validation
EVT-1    kinds::test_events_are_two_views_of_one_object
         c-sem::test_event_views_map_every_field
         k-work::test_describe_and_events
EVT-2    c-sem::test_event_validation
EVT-3    c-sem::test_event_views_map_every_field
         k-work::test_describe_and_events
PROTO-1  crud::test_malformed_bodies_never_500
         k-work::test_create_configmap_protobuf_is_415_and_workaround
PROTO-2  k-work::test_auth_can_i_fails_cleanly
         kinds::test_unserved_groups_answer_clearly
CTRL-1   lifecycle::test_gc_background
         lifecycle::test_gc_across_kinds_and_custom_resources
         k-life::test_delete_background_cascade_is_the_default
CTRL-2   lifecycle::test_namespace_deletion_lifecycle
         k-life::test_delete_namespace_goes_away
CTRL-3   ctrl-sts::test_ordered_ready_creates_pods_in_order_with_identity_claims_and_status
         ctrl-sts::test_rolling_update_replaces_pods_highest_first_and_records_revisions
         ctrl-sts::test_kubectl_rollout_status_statefulset
         k-work::test_rollout_status_statefulset (server side: defaults, status shape)
CTRL-4   ctrl-pod::test_scheduled_pod_runs_with_kubelet_like_status
         ctrl-pod::test_hooks_fail_restart_and_unready_a_pod
         lifecycle::test_pod_graceful_deletion_only_when_scheduled
         k-life::test_graceful_pod_deletion_and_force
CTRL-5   c-sem::test_service_ip_allocation_and_defaults
CTRL-11  crud::test_generation_tracking_builtin
         k-work::test_apply_updates_deployment_without_losing_fields
         c-sem::test_quantities_are_strings
"""

from __future__ import annotations

import ast
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from _server_fixtures import WIDGET_CRD, core, raw
from kubernetes import client

from opkit.testing import APIServer

HERE = Path(__file__).parent
SPEC = Path("/work/shared/reference/apiserver_semantics.md")
FILES = {
    "crud": "test_server_crud.py",
    "lifecycle": "test_server_lifecycle.py",
    "watch": "test_server_watch.py",
    "kinds": "test_server_kinds.py",
    "faults": "test_server_faults.py",
    "k-crd": "test_kubectl_crd.py",
    "k-work": "test_kubectl_workloads.py",
    "k-life": "test_kubectl_lifecycle.py",
    "c-req": "test_client_requests.py",
    "c-sem": "test_client_semantics.py",
    "c-conc": "test_client_concurrency.py",
    "matrix": "test_must_matrix.py",
    "ctrl-sts": "controllers/test_ctrl_statefulset.py",
    "ctrl-pod": "controllers/test_ctrl_podsim.py",
}


def _matrix() -> dict[str, list[tuple[str, str]]]:
    """ID -> [(file key, test name)] from the table above."""
    rows: dict[str, list[tuple[str, str]]] = {}
    current = ""
    for line in (__doc__ or "").splitlines():
        m = re.match(r"^([A-Z]+-\d+) +(.*)$", line)
        if m:
            current = m.group(1)
            rows[current] = []
            text = m.group(2)
        elif line.startswith(" ") and current:
            text = line
        else:
            continue
        rows[current] += re.findall(r"([a-z-]+)::(test_\w+)", text)
    return rows


def _tests_in(filename: str) -> set[str]:
    tree = ast.parse((HERE / filename).read_text())
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
    }


def test_matrix_names_only_existing_tests() -> None:
    rows = _matrix()
    assert len(rows) > 90
    defined = {key: _tests_in(name) for key, name in FILES.items()}
    missing = [
        f"{item}: {key}::{test}"
        for item, refs in rows.items()
        for key, test in refs
        if test not in defined[key]
    ]
    assert missing == []
    uncovered = {item for item, refs in rows.items() if not refs}
    assert uncovered == set()


@pytest.mark.skipif(not SPEC.exists(), reason="the research note lives outside the repository")
def test_matrix_lists_every_must_item_of_the_spec() -> None:
    text = SPEC.read_text()
    musts = set(re.findall(r"\*\*([A-Z]+-\d+) MUST", text))
    musts |= {"ENV-1", "ENV-2", "ENV-3"}  # MUSTs stated inside the ENV facts
    assert musts - set(_matrix()) == set()


# -- MUST items the other files leave open -------------------------------------------------------


def test_delete_with_orphan_dependents_false_is_202(
    apiserver: APIServer, k8s_api: client.ApiClient
) -> None:
    v1 = core(k8s_api)
    v1.create_namespaced_config_map(
        "default", {"metadata": {"name": "held", "finalizers": ["example.com/x"]}}
    )
    v1.create_namespaced_config_map("default", {"metadata": {"name": "free"}})
    base = "/api/v1/namespaces/default/configmaps/"
    # 202 only when orphanDependents=false was sent and the object is still there (ERR-3)
    code, _, body = raw(apiserver, "DELETE", base + "held?orphanDependents=false")
    assert code == 202 and body["kind"] == "ConfigMap"
    assert body["metadata"]["deletionTimestamp"]
    code, _, body = raw(apiserver, "DELETE", base + "free?orphanDependents=false")
    assert code == 200 and body["status"] == "Success"


def test_cache_control_on_every_kind_of_response(
    apiserver: APIServer, k8s_api: client.ApiClient
) -> None:
    core(k8s_api).create_namespaced_pod(
        "default",
        {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "x"}]}},
    )
    for path, headers in (
        ("/api", {}),
        (
            "/apis",
            {"Accept": "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"},
        ),
        ("/api/v1", {}),
        ("/openapi/v3", {}),
        ("/healthz", {}),
        (
            "/api/v1/namespaces/default/pods",
            {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"},
        ),
        ("/api/v1/namespaces/default/pods/p/log", {}),
        ("/api/v1/namespaces/default/pods?watch=1&timeoutSeconds=1", {}),
    ):
        code, hdrs, _ = raw(apiserver, "GET", path, headers=headers)
        assert code == 200, path
        assert hdrs["cache-control"] == "no-cache, private", path  # ENV-2


def _minimal_objects() -> list[tuple[str, str, str, dict[str, Any]]]:
    """(api class, create method, list method, body) for one object of each served kind."""
    pod_spec = {"containers": [{"name": "c", "image": "nginx:1"}]}
    template = {"metadata": {"labels": {"app": "a"}}, "spec": pod_spec}
    selector = {"matchLabels": {"app": "a"}}
    now = datetime.now(UTC)
    ref = {"kind": "Pod", "name": "p", "namespace": "default"}
    rules = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]
    role_ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "r"}
    return [
        ("CoreV1Api", "namespaced_pod", "namespaced_pod", {"spec": pod_spec}),
        (
            "CoreV1Api",
            "namespaced_service",
            "namespaced_service",
            {"spec": {"ports": [{"port": 80}]}},
        ),
        ("CoreV1Api", "namespaced_endpoints", "namespaced_endpoints", {"subsets": []}),
        ("CoreV1Api", "namespaced_config_map", "namespaced_config_map", {"data": {"a": "b"}}),
        ("CoreV1Api", "namespaced_secret", "namespaced_secret", {"stringData": {"a": "b"}}),
        ("CoreV1Api", "namespaced_service_account", "namespaced_service_account", {}),
        (
            "CoreV1Api",
            "namespaced_persistent_volume_claim",
            "namespaced_persistent_volume_claim",
            {
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Gi"}},
                }
            },
        ),
        (
            "CoreV1Api",
            "namespaced_event",
            "namespaced_event",
            {"involvedObject": ref, "reason": "R", "message": "m", "type": "Normal"},
        ),
        (
            "CoreV1Api",
            "persistent_volume",
            "persistent_volume",
            {
                "spec": {
                    "capacity": {"storage": "1Gi"},
                    "accessModes": ["ReadWriteOnce"],
                    "hostPath": {"path": "/tmp/x"},
                }
            },
        ),
        ("CoreV1Api", "node", "node", {}),
        ("CoreV1Api", "namespace", "namespace", {}),
        (
            "AppsV1Api",
            "namespaced_stateful_set",
            "namespaced_stateful_set",
            {"spec": {"serviceName": "s", "selector": selector, "template": template}},
        ),
        (
            "AppsV1Api",
            "namespaced_deployment",
            "namespaced_deployment",
            {"spec": {"selector": selector, "template": template}},
        ),
        (
            "AppsV1Api",
            "namespaced_replica_set",
            "namespaced_replica_set",
            {"spec": {"selector": selector, "template": template}},
        ),
        (
            "AppsV1Api",
            "namespaced_daemon_set",
            "namespaced_daemon_set",
            {"spec": {"selector": selector, "template": template}},
        ),
        (
            "AppsV1Api",
            "namespaced_controller_revision",
            "namespaced_controller_revision",
            {"revision": 1, "data": {"spec": {}}},
        ),
        (
            "CoordinationV1Api",
            "namespaced_lease",
            "namespaced_lease",
            {"spec": {"holderIdentity": "x", "leaseDurationSeconds": 15}},
        ),
        (
            "EventsV1Api",
            "namespaced_event",
            "namespaced_event",
            {
                "eventTime": now,
                "regarding": ref,
                "reason": "R",
                "action": "A",
                "type": "Normal",
                "reportingController": "example.com/c",
                "reportingInstance": "i",
            },
        ),
        (
            "DiscoveryV1Api",
            "namespaced_endpoint_slice",
            "namespaced_endpoint_slice",
            {"addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"]}]},
        ),
        (
            "PolicyV1Api",
            "namespaced_pod_disruption_budget",
            "namespaced_pod_disruption_budget",
            {"spec": {"minAvailable": 1, "selector": selector}},
        ),
        ("RbacAuthorizationV1Api", "namespaced_role", "namespaced_role", {"rules": rules}),
        (
            "RbacAuthorizationV1Api",
            "namespaced_role_binding",
            "namespaced_role_binding",
            {"roleRef": role_ref, "subjects": []},
        ),
        ("RbacAuthorizationV1Api", "cluster_role", "cluster_role", {"rules": rules}),
        (
            "RbacAuthorizationV1Api",
            "cluster_role_binding",
            "cluster_role_binding",
            {"roleRef": role_ref},
        ),
        (
            "ApiextensionsV1Api",
            "custom_resource_definition",
            "custom_resource_definition",
            {k: v for k, v in WIDGET_CRD.items() if k != "metadata"},
        ),
    ]


def test_typed_client_reads_every_served_kind(k8s_api: client.ApiClient) -> None:
    """Create one object of each kind, then read and list it through the typed APIs:
    the strict models reject any response missing a required field (ENV-3)."""
    for i, (api_name, create_suffix, list_suffix, body) in enumerate(_minimal_objects()):
        api: Any = getattr(client, api_name)(k8s_api)
        crd = create_suffix == "custom_resource_definition"
        name = "widgets.example.com" if crd else f"x{i}"  # core and v1 events share storage
        obj = {"metadata": {"name": name}, **body}
        namespaced = create_suffix.startswith("namespaced_")
        ns_args: tuple[str, ...] = ("default",) if namespaced else ()
        created = getattr(api, f"create_{create_suffix}")(*ns_args, obj)
        assert created.metadata.name == name, api_name + create_suffix
        assert created.metadata.resource_version and created.metadata.uid
        read = getattr(api, f"read_{create_suffix}")(name, *ns_args)
        assert read.metadata.uid == created.metadata.uid
        listed = getattr(api, f"list_{list_suffix}")(*ns_args)
        assert name in [i.metadata.name for i in listed.items]
        assert listed.metadata.resource_version
