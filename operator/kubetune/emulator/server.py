"""`ApiServerEmulator`: kmock's `KubernetesEmulator` with the gaps to kube-apiserver filled.

kmock parses requests, renders discovery (`/api`, `/apis`, ...) and offers its DSL for extra
endpoints. Requests that address a resource (`/api/v1/namespaces/ns/configmaps/x`, ...) are
answered here instead, from an indexed store, because stock kmock finds a request's
reaction by walking its whole request log and finds objects by scanning them all (a run of
200 Jobs through kopf took 55 s instead of half a second), and it lacks uid, resourceVersion,
conflicts, PUT, selectors, status subresources, garbage collection (asynchronous, as
kube-controller-manager's: garbage_collector.py) and CRD registration. With `rbac=True`
requests are authenticated and authorized (authorization.py) and owner references are
admitted as OwnerReferencesPermissionEnforcement does (owner_references_admission.py).

The handler object is what aiohttp calls; `kubetune.emulator.runner` puts it on a port.
"""

from __future__ import annotations

import functools
import json
import pathlib
import re
from typing import Any

import aiohttp.web
import attrs
from kmock import KubernetesEmulator, Request, Response, resource
from typing_extensions import override

from kubetune.emulator import (
    admission_policies,
    authorization,
    discovery,
    errors,
    openapi,
    owner_references_admission,
    sar,
)
from kubetune.emulator.crds import read_crd_documents
from kubetune.emulator.faults import Fault, FaultInjector, FaultSpec, serve_with_faults
from kubetune.emulator.field_validation import CREATE, UPDATE, FieldValidation, decode_json, warning_header
from kubetune.emulator.garbage_collector import DEFAULT_DELAY_SECONDS, GarbageCollector
from kubetune.emulator.operations import INITIAL_NAMESPACES, Admit, ApiOperations
from kubetune.emulator.patches import decode_patch, media_type
from kubetune.emulator.paths import ResourcePath, parse_resource_path
from kubetune.emulator.pod_logs import LogFiles, serve_pod_log
from kubetune.emulator.registry import ResourceRegistry
from kubetune.emulator.resources import (
    BUILTIN_RESOURCES,
    CUSTOM_RESOURCE_DEFINITIONS,
    NAMESPACES,
    ResourceType,
)
from kubetune.emulator.selectors import (
    Predicate,
    combine,
    label_selector_matches,
    parse_field_selector,
    parse_label_selector,
)
from kubetune.emulator.store import ObjectStore
from kubetune.emulator.tables import as_table, wants_table
from kubetune.emulator.watching import WatchStream

# kmock keeps every request it served for assertions; only this many recent ones are kept.
REQUEST_LOG_LIMIT = 200


@attrs.define(kw_only=True)
class ApiServerEmulator(KubernetesEmulator):
    """A Kubernetes API server in memory, good enough for kopf, the client and kubectl."""

    # How many recent changes a watch can resume from (older resourceVersions get 410 Gone).
    watch_history_size: int = 10_000
    # Where pods' output is (set by the local executor); None: `pods/log` is a 400.
    pod_log_files: LogFiles | None = None
    # How long the garbage collector waits after a change before acting on it.
    gc_delay_seconds: float = DEFAULT_DELAY_SECONDS
    # Seconds between BOOKMARK events on watches with allowWatchBookmarks (kube-apiserver: ~1 min).
    bookmark_interval: float = 60.0
    # Fault injection (faults.py); None: a well-behaved server.
    faults: FaultInjector | None = None
    # Who may do what, for SubjectAccessReviews (sar.py); default: allow all (AlwaysAllow).
    access_decider: sar.Decide = sar.always_allow
    # RBAC mode: authenticate bearer tokens, authorize with the stored Roles and bindings,
    # and enforce OwnerReferencesPermissionEnforcement (authorization.py). Off: allow all.
    rbac: bool = False
    authenticator: authorization.Authenticator = attrs.field(factory=authorization.Authenticator)
    store: ObjectStore = attrs.field(init=False)
    registry: ResourceRegistry = attrs.field(init=False)
    operations: ApiOperations = attrs.field(init=False)
    garbage_collector: GarbageCollector = attrs.field(init=False)
    authorizer: authorization.RbacAuthorizer = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.store = ObjectStore(history_size=self.watch_history_size)
        self.registry = ResourceRegistry(self.resources)
        self.operations = ApiOperations(self.store, self.registry)
        self.garbage_collector = GarbageCollector(self.store, self.operations, self.gc_delay_seconds)
        self.authorizer = authorization.RbacAuthorizer(self.store)
        for resource_type in (*BUILTIN_RESOURCES, admission_policies.POLICIES,
                              admission_policies.BINDINGS, sar.SUBJECT_ACCESS_REVIEWS,
                              *authorization.RBAC_RESOURCES):
            self.registry.register(resource_type)
        if self.rbac and self.access_decider is sar.always_allow:
            # SubjectAccessReviews answer with the same RBAC decisions as the requests get.
            self.access_decider = self._rbac_decides
        for namespace in INITIAL_NAMESPACES:
            self.operations.ensure_namespace(namespace)
        # kubectl reads OpenAPI v3 for explain and to see that the server validates fields
        # itself; v2 is JSON only (see openapi.py).
        self.fallback["get /openapi/v3"] << (lambda: discovery.openapi_v3_index(self.registry))
        self.fallback["get", re.compile(r"/openapi/v3/.+")] << self._serve_openapi_v3_group_version
        self.fallback["get /openapi/v2"] << self._serve_openapi_v2
        for probe in ("/healthz", "/livez", "/readyz"):
            self.fallback[f"get {probe}"] << b"ok"

    # --- loading CRDs ------------------------------------------------------------------------

    def install_crd(self, crd: dict[str, Any]) -> dict[str, Any]:
        """Create (or replace) a CustomResourceDefinition; its resources are served at once."""
        name = crd["metadata"]["name"]
        if self.store.get(CUSTOM_RESOURCE_DEFINITIONS.storage_key, None, name) is None:
            return self.operations.create(CUSTOM_RESOURCE_DEFINITIONS, None, crd)
        body = {**crd, "metadata": {k: v for k, v in crd["metadata"].items() if k != "resourceVersion"}}
        return self.operations.replace(CUSTOM_RESOURCE_DEFINITIONS, None, name, body, None)

    def install_crds_from(self, folder: str | pathlib.Path) -> list[str]:
        """Install every CRD in the YAML files of a folder (e.g. the project's `crds/`)."""
        return [self.install_crd(crd)["metadata"]["name"] for crd in read_crd_documents(folder)]

    def set_faults(self, spec: str | FaultSpec | None) -> FaultInjector | None:
        """Start (or, with None, stop) injecting faults; returns the injector and its counts."""
        if spec is None:
            self.faults = None
            return None
        spec = FaultSpec.parse(spec) if isinstance(spec, str) else spec
        self.faults = FaultInjector(spec)
        return self.faults

    # --- HTTP entry point --------------------------------------------------------------------

    @override
    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        path = parse_resource_path(raw_request.path)
        if path is None:
            response = await super().__call__(raw_request)
            self._forget_old_requests()
            return response
        try:
            user = (self.authenticator.authenticate(raw_request.headers)
                    if self.rbac else authorization.ADMIN)
            return await serve_with_faults(self.faults, raw_request, path,
                                           functools.partial(self._serve_resource, user=user))
        except errors.ApiError as error:
            return _json_response(error.status_body(), error.code, error.warnings)

    @override
    def _get_resources(self) -> list[resource]:
        # Discovery shows exactly the registered resources (kmock would also scan its DSL).
        return list(self.resources)

    # --- discovery (kmock's handlers, overridden: see discovery.py for why) ------------------

    @override
    async def _serve_server_version(self, request: Request) -> Any:
        return discovery.server_version()

    @override
    async def _serve_api(self, request: Request) -> Any:
        return discovery.api_versions()

    @override
    async def _serve_apis(self, request: Request) -> Any:
        return discovery.api_group_list(self.registry)

    @override
    async def _serve_group(self, request: Request) -> Any:
        assert request.resource is not None  # kmock routes only /apis/<group> here
        return discovery.api_group(self.registry, request.resource.group or "") or _not_found()

    @override
    async def _serve_version(self, request: Request) -> Any:
        assert request.resource is not None  # kmock routes only /api(s)/.../<version> here
        group, version = request.resource.group or "", request.resource.version or ""
        return discovery.api_resource_list(self.registry, group, version) or _not_found()

    async def _serve_openapi_v3_group_version(self, request: Request) -> Any:
        gv_path = request.url.path.removeprefix("/openapi/v3/")
        document = discovery.openapi_v3_group_version(self.registry, gv_path)
        if document is None:
            return _not_found()
        parts = gv_path.strip("/").split("/")
        if parts[0] == "apis" and len(parts) == 3:
            openapi.add_crd_schemas_v3(document, self._crds(), parts[1], parts[2])
        return document

    async def _serve_openapi_v2(self, request: Request) -> Any:
        accept = request.headers.get("Accept", "")
        if accept and not any(kind in accept for kind in ("json", "*/*")):
            error = errors.not_acceptable(accept)  # protobuf only: see openapi.py
            return Response(status=error.code, payload=error.status_body())
        return openapi.openapi_v2(self.registry, self._crds())

    def _crds(self) -> list[dict[str, Any]]:
        return self.store.list(CUSTOM_RESOURCE_DEFINITIONS.storage_key)

    def _forget_old_requests(self) -> None:
        """Bound kmock's request log (and its per-reaction logs), which it never trims."""
        del self._requests[:-REQUEST_LOG_LIMIT]
        for payload in self._payloads:
            del payload._requests[:-REQUEST_LOG_LIMIT]

    async def _serve_resource(self, raw_request: aiohttp.web.BaseRequest, path: ResourcePath,
                              fault: Fault | None = None, *,
                              user: authorization.User = authorization.ADMIN,
                              ) -> aiohttp.web.StreamResponse:
        rtype = self.registry.lookup(path.group, path.version, path.plural)
        query = raw_request.query
        method = raw_request.method
        watching = method == "GET" and (path.legacy_watch or query.get("watch") in ("true", "1"))
        admit = None
        if self.rbac and rtype is not None:
            request = authorization.request_attributes(
                method, rtype, path.namespace, path.name, path.subresource, query, watching)
            if not self.authorizer.allows(user, request):
                raise authorization.forbidden(user, request)
            admit = self._owner_references_admission(user, request)
        if rtype is not None:
            admit = self._policy_admission(rtype, path.subresource, user, admit)
        if rtype is None or (path.namespace is not None and not rtype.namespaced):
            raise errors.unknown_resource()
        ops = self.operations
        if rtype is sar.SUBJECT_ACCESS_REVIEWS:  # create-only, never stored
            if method != "POST" or path.name is not None:
                raise errors.method_not_allowed()
            return _json_response(sar.review(await _read_json(raw_request), self.access_decider), 201)

        if watching:
            matches = self._predicate(rtype, path, query)
            timeout = float(query["timeoutSeconds"]) if query.get("timeoutSeconds") else None
            present = ops.present
            if wants_table(raw_request.headers.get("Accept", "")):
                # As kube-apiserver: each event's object is a one-row Table (kubectl get -w).
                include = query.get("includeObject", "Metadata")
                present = lambda rtype, obj: as_table(  # noqa: E731
                    rtype, ops.present(rtype, obj), include)
            watch = WatchStream(self.store, rtype, matches, present)
            interval = self.bookmark_interval
            if self.faults is not None and self.faults.spec.bookmarks:
                interval = self.faults.spec.bookmarks
            bookmarks = interval if query.get("allowWatchBookmarks") in ("true", "1") else None
            return await watch.serve(raw_request, query.get("resourceVersion"), timeout,
                                     bookmark_interval=bookmarks, fault=fault)
        if method == "GET" and path.subresource == "log" and rtype.storage_key == ("", "pods"):
            assert path.name is not None  # a subresource always follows a name
            pod = ops.get(rtype, path.namespace, path.name)
            return await serve_pod_log(raw_request, pod, self.pod_log_files, lambda: self.store.get(
                rtype.storage_key, path.namespace, path.name))
        if method == "GET" and path.subresource not in (None, "status"):
            raise errors.unknown_resource()
        if method == "GET":
            if path.name is None:
                result = ops.list(rtype, path.namespace, self._predicate(rtype, path, query))
            else:
                result = ops.get(rtype, path.namespace, path.name)
            if wants_table(raw_request.headers.get("Accept", "")):
                result = as_table(rtype, result, query.get("includeObject", "Metadata"))
            return _json_response(result)
        dry_run = _dry_run(query)
        if method in ("POST", "PUT", "PATCH"):
            validation = FieldValidation.from_query(
                query.get("fieldValidation"), CREATE if method == "POST" else UPDATE)
            try:
                return await self._serve_write(raw_request, rtype, path, validation,
                                               _stop_after(admit) if dry_run else admit)
            except errors.ApiError as error:
                error.warnings = validation.warnings
                raise
            except _DryRunResult as result:
                return _json_response(ops.present(rtype, result.obj),
                                      201 if method == "POST" else 200, validation.warnings)
        if method == "DELETE":
            options = await _delete_options(raw_request)
            if dry_run or _dry_run({"dryRun": options.get("dryRun") or []}):
                # Nothing is deleted: the answer is what would be.
                if path.name is None:
                    predicate = self._predicate(rtype, path, query)
                    return _json_response(ops.list(rtype, path.namespace, predicate))
                return _json_response(ops.get(rtype, path.namespace, path.name))
            if path.name is None:
                predicate = self._predicate(rtype, path, query)
                return _json_response(ops.delete_collection(rtype, path.namespace, predicate, options))
            return _json_response(ops.delete(rtype, path.namespace, path.name, options))
        raise errors.method_not_allowed()

    async def _serve_write(self, raw_request: aiohttp.web.BaseRequest, rtype: ResourceType,
                           path: ResourcePath, validation: FieldValidation,
                           admit: Admit | None = None) -> aiohttp.web.StreamResponse:
        ops, method = self.operations, raw_request.method
        if method == "POST" and path.name is None:
            body = await _read_json(raw_request, validation)
            created = ops.create(rtype, path.namespace, body, validation, admit)
            return _json_response(created, 201, validation.warnings)
        if method == "PUT" and path.name is not None:
            body = await _read_json(raw_request, validation)
            replaced = ops.replace(rtype, path.namespace, path.name, body, path.subresource,
                                   validation, admit)
            return _json_response(replaced, 200, validation.warnings)
        if method == "PATCH" and path.name is not None:
            content_type = raw_request.headers.get("Content-Type", "")
            patch = decode_patch(await raw_request.read(), content_type)
            patched = ops.patch(rtype, path.namespace, path.name, patch, content_type,
                                path.subresource, validation, admit)
            return _json_response(patched, 200, validation.warnings)
        raise errors.method_not_allowed()

    def _owner_references_admission(self, user: authorization.User,
                                    request: authorization.Attributes) -> Admit:
        def admit(old: dict[str, Any] | None, new: dict[str, Any]) -> None:
            owner_references_admission.check(
                self.authorizer, user, request, old, new, self._resources_of_kind)
        return admit

    def _rbac_decides(self, subject: sar.Subject, check: Any) -> bool:
        user = authorization.User(subject.name, subject.groups)
        return self.authorizer.allows(user, authorization.Attributes(
            check.verb, check.group, "", check.resource, check.namespace, check.name,
            check.subresource))

    def _resources_of_kind(self, api_version: str, kind: str) -> list[ResourceType]:
        """The REST mapping of an ownerReference's apiVersion and kind."""
        return [rtype for rtype in self.registry if rtype.api_version == api_version and rtype.kind == kind]

    def _find_params(self, kind: dict[str, Any], ref: dict[str, Any],
                     namespace: str | None) -> list[dict[str, Any]]:
        """The objects a binding's paramRef selects (admission_policies.FindParams)."""
        found = []
        for rtype in self._resources_of_kind(kind.get("apiVersion", ""), kind.get("kind", "")):
            scope = (ref.get("namespace") or namespace) if rtype.namespaced else None
            for obj in self.store.list(rtype.storage_key, scope):
                meta = obj.get("metadata") or {}
                if ref.get("name"):
                    if meta.get("name") == ref["name"]:
                        found.append(obj)
                elif label_selector_matches(ref.get("selector"), meta.get("labels") or {}):
                    found.append(obj)
        return found

    def _policy_admission(self, rtype: ResourceType, subresource: str | None,
                          user: authorization.User, then: Admit | None) -> Admit:
        """ValidatingAdmissionPolicies on each create and update (admission_policies.py), with
        the request's user for `request.userInfo` and `authorizer` (RBAC mode: its decisions;
        otherwise everything is allowed, as with AlwaysAllow); then the next admission step."""
        def decide(who: Any, check: Any) -> bool:
            return not self.rbac or self.authorizer.allows(who, authorization.Attributes(
                check.verb, check.group, "", check.resource, check.namespace, check.name,
                check.subresource))

        def admit(old: dict[str, Any] | None, new: dict[str, Any]) -> None:
            policies = self.store.list(admission_policies.POLICIES.storage_key, None)
            if policies:
                namespace = (new.get("metadata") or {}).get("namespace")
                ns = self.store.get(NAMESPACES.storage_key, None, namespace) if namespace else None
                labels = ((ns or {}).get("metadata") or {}).get("labels") or {}
                bindings = self.store.list(admission_policies.BINDINGS.storage_key, None)
                admission_policies.check(policies, bindings, "UPDATE" if old else "CREATE", rtype,
                                         labels, new, old, user, decide, subresource,
                                         namespace_object=ns, find_params=self._find_params)
            if then is not None:
                then(old, new)
        return admit

    @staticmethod
    def _predicate(rtype: ResourceType, path: ResourcePath, query: Any) -> Predicate:
        namespace, name = (path.namespace if rtype.namespaced else None), path.name

        def in_scope(obj: dict[str, Any]) -> bool:
            meta = obj["metadata"]
            return ((namespace is None or meta.get("namespace") == namespace)
                    and (name is None or meta["name"] == name))

        return combine(
            in_scope,
            parse_label_selector(query.get("labelSelector")),
            parse_field_selector(query.get("fieldSelector")),
        )


class _DryRunResult(Exception):  # not an error: carries the object a dry run did not store
    def __init__(self, obj: dict[str, Any]) -> None:
        super().__init__("dry run")
        self.obj = obj


def _dry_run(query: Any) -> bool:
    """`?dryRun=All` (kubectl --dry-run=server): the request runs every validation and
    admission step and answers with the object, but nothing is stored. kube-apiserver accepts
    only "All" (apiserver/pkg/endpoints/handlers/rest.go, ValidateDryRun); see
    https://kubernetes.io/docs/reference/using-api/api-concepts/#dry-run"""
    values = query.getall("dryRun", []) if hasattr(query, "getall") else query["dryRun"]
    for value in values:
        if value != "All":
            raise errors.bad_request(f'dryRun: Unsupported value: "{value}": supported values: "All"')
    return bool(values)


def _stop_after(admit: Admit | None) -> Admit:
    """Admission as usual, then stop before the write (a dry run)."""
    def admit_then_stop(old: dict[str, Any] | None, new: dict[str, Any]) -> None:
        if admit is not None:
            admit(old, new)
        raise _DryRunResult(new)
    return admit_then_stop


def _not_found() -> Response:
    error = errors.unknown_resource()
    return Response(status=error.code, payload=error.status_body())


def _json_response(body: Any, status: int = 200, warnings: list[str] | None = None) -> aiohttp.web.Response:
    response = aiohttp.web.Response(
        body=json.dumps(body).encode(), status=status, content_type="application/json")
    for warning in warnings or ():
        response.headers.add("Warning", warning_header(warning))
    return response


async def _read_json(raw_request: aiohttp.web.BaseRequest, validation: FieldValidation | None = None) -> Any:
    content_type = media_type(raw_request.headers.get("Content-Type"))
    if content_type not in ("", "application/json", "*/*"):
        raise errors.unsupported_media_type(("application/json",))  # e.g. protobuf
    raw = await raw_request.read()
    if not raw:
        return None
    try:
        body, duplicates = decode_json(raw)
    except ValueError as exc:
        raise errors.bad_request(f"the request body is not valid JSON: {exc}") from None
    if validation is not None:
        validation.duplicates = duplicates
    return body


async def _delete_options(raw_request: aiohttp.web.BaseRequest) -> dict[str, Any]:
    """DeleteOptions come in the body (client, kopf) or as query parameters (kubectl)."""
    options = await _read_json(raw_request) or {}
    if not isinstance(options, dict):
        raise errors.bad_request("DeleteOptions must be a JSON object")
    if "propagationPolicy" in raw_request.query:
        options.setdefault("propagationPolicy", raw_request.query["propagationPolicy"])
    return options
