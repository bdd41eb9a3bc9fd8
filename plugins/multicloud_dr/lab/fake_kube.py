"""A fake Kubernetes API server for the lab: several clusters (AKS, GKE, EKS) from one process.

No Kubernetes API server can run on this machine, so the lab fakes one at its HTTP boundary, with the shapes of
the Kubernetes API reference (apps/v1 Deployment, autoscaling/v1 Scale, v1 ConfigMap, v1 Secret, v1 Status for
every error), close enough that the official `kubernetes` client (what the cncf-kubernetes provider's
KubernetesHook returns) works against it unchanged. `http://HOST:PORT/clusters/<cluster>` is one cluster's API
root (a kubeconfig's `server`, the client's Configuration.host); `kubeconfig()` writes one.

What it models, per cluster and namespace (any namespace exists; there are no Namespace objects):

- deployments (list, get, create, replace, merge/strategic/JSON patch, delete), their `scale` subresource (get,
  replace, patch) and `status` (get); configmaps and secrets (list, get, create, replace, patch, delete);
- `metadata.resourceVersion`: one counter per server, bumped by every write that changes something (a write that
  changes nothing keeps it, as the real API does); a replace or patch that carries a resourceVersion other than
  the current one is refused with 409 Conflict; a create of an existing name with 409 AlreadyExists;
- `metadata.generation` of a deployment: bumped by every change of its spec; `status.observedGeneration` follows
  it once the deployment's workload has been scaled (below), at once for an unbound deployment;
- a bearer token on every request but /healthz (401 Unauthorized otherwise); secrets' `data` is base64, and
  `stringData` is folded into it on write, as the real API server does;
- state persisted in one JSON file (mode 0600: it holds the secrets, like etcd), replaced atomically on every
  write, so a restart keeps every object.

A deployment may be BOUND to a `Workload`, a real local process (the lab's `app-dr`): when its spec changes (and
once at start, for the persisted or seeded value) a background thread calls `workload.scale(spec.replicas)`, and
the deployment's ready/available/updated replicas are its spec.replicas while `workload.ready()` says the process
answers its /health, else 0 (omitted, as the real API omits zero counts). So "scale to 0" really stops the DR app
and "wait for the rollout" really waits for it to answer.

Not modelled: watches, pods and replica sets, namespaces as objects, label selectors beyond `k=v` equality,
managedFields, server-side apply; a strategic merge patch is applied as a JSON merge patch (the same for every
field this project patches: replicas, data, labels).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import copy
import hmac
import json
import logging
import os
import re
import signal
import sys
import tempfile
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from multicloud_dr.exceptions import LabError

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 3 * 2**20            # the real API server refuses requests above 3 MiB
RECONCILER_STOP_SECONDS = 5.0
SERVER_VERSION = {"major": "1", "minor": "31", "gitVersion": "v1.31.0-multicloud-dr-fake", "gitCommit": "fake",
                  "gitTreeState": "clean", "buildDate": "2024-08-13T00:00:00Z", "goVersion": "go1.22.5",
                  "compiler": "gc", "platform": "linux/amd64"}


class Workload(Protocol):
    """A local process that plays a deployment. Both calls may come from different threads at once."""

    def scale(self, replicas: int) -> None:
        """0: stop the process; >= 1: start it if it is not running. Returns once that is done."""

    def ready(self) -> bool:
        """True when the process answers its /health with 200."""


class EnvWorkload(Workload, Protocol):
    """A workload whose process takes its pod's environment when it starts: what the deployment's container
    gets from `envFrom` (ConfigMaps, Secrets) and `env`, as a kubelet would give it. A process that runs
    keeps the environment it started with (a changed ConfigMap reaches it on its next start, as in a cluster)."""

    def scale(self, replicas: int, env: dict[str, str] | None = None) -> None: ...


@dataclass(frozen=True)
class _Kind:
    plural: str
    kind: str
    group: str            # "" for the core group
    namespaced_path: str  # the URL prefix below a cluster's root, before /namespaces/<ns>/<plural>

    @property
    def api_version(self) -> str:
        return f"{self.group}/v1" if self.group else "v1"

    def qualified(self, name: str) -> str:
        """How the real API names an object in messages: deployments.apps "web", configmaps "db"."""
        return f'{self.plural}.{self.group} "{name}"' if self.group else f'{self.plural} "{name}"'


KINDS: dict[str, _Kind] = {
    "deployments": _Kind("deployments", "Deployment", "apps", "/apis/apps/v1"),
    "configmaps": _Kind("configmaps", "ConfigMap", "", "/api/v1"),
    "secrets": _Kind("secrets", "Secret", "", "/api/v1"),
}

_CLUSTER_PATH = re.compile(r"^/clusters/(?P<cluster>[A-Za-z0-9][A-Za-z0-9._-]*)(?P<rest>/.*)?$")
_RESOURCE_PATH = re.compile(
    r"^(?P<prefix>/apis/apps/v1|/api/v1)/namespaces/(?P<namespace>[a-z0-9][a-z0-9-]*)/(?P<plural>[a-z]+)"
    r"(?:/(?P<name>[^/]+)(?:/(?P<sub>scale|status))?)?/?$")
_MERGE_PATCHES = ("application/merge-patch+json", "application/strategic-merge-patch+json")
_JSON_PATCH = "application/json-patch+json"


class ApiError(Exception):
    """An error the fake answers with, as a v1 Status."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self) -> dict[str, Any]:
        body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": self.message,
                "reason": self.reason, "code": self.code}
        if self.details:
            body["details"] = self.details
        return body


def _details(kind: _Kind, name: str, **more: str) -> dict[str, str]:
    return {"name": name, "kind": kind.plural} | ({"group": kind.group} if kind.group else {}) | more


def _not_found(kind: _Kind, name: str) -> ApiError:
    return ApiError(404, "NotFound", f"{kind.qualified(name)} not found", _details(kind, name))


def _conflict(kind: _Kind, name: str) -> ApiError:
    return ApiError(409, "Conflict", f"Operation cannot be fulfilled on {kind.qualified(name)}: the object has "
                                     f"been modified; please apply your changes to the latest version and try again",
                    _details(kind, name))


def _invalid(kind: _Kind, name: str, field: str, problem: str) -> ApiError:
    return ApiError(422, "Invalid", f'{kind.kind} "{name}" is invalid: {field}: {problem}',
                    {"name": name, "kind": kind.kind, "causes": [{"reason": "FieldValueInvalid", "message": problem,
                                                                   "field": field}]})


def _bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge key by key, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(document: Any, operations: Any) -> Any:
    """RFC 6902 JSON patch (add, remove, replace, test, copy, move); a failed `test` or a bad path is a 422."""
    if not isinstance(operations, list):
        raise _bad_request("a JSON patch is a list of operations")
    doc = copy.deepcopy(document)

    def split(pointer: str) -> list[str]:
        if pointer == "":
            return []
        if not pointer.startswith("/"):
            raise ApiError(422, "Invalid", f"the JSON pointer {pointer!r} does not start with /")
        return [p.replace("~1", "/").replace("~0", "~") for p in pointer[1:].split("/")]

    def parent(parts: list[str]) -> tuple[Any, str]:
        node = doc
        for part in parts[:-1]:
            node = node[int(part)] if isinstance(node, list) else node[part]
        return node, parts[-1]

    def get(parts: list[str]) -> Any:
        node = doc
        for part in parts:
            node = node[int(part)] if isinstance(node, list) else node[part]
        return node

    for op in operations:
        try:
            name, parts = op["op"], split(op["path"])
            if name == "test":
                if get(parts) != op["value"]:
                    raise ApiError(422, "Invalid", f"the test operation on {op['path']} failed")
                continue
            if name in ("copy", "move"):
                value = copy.deepcopy(get(split(op["from"])))
                if name == "move":
                    node, key = parent(split(op["from"]))
                    del node[int(key) if isinstance(node, list) else key]
                name, op = "add", {"path": op["path"], "value": value}
            if not parts:
                raise ApiError(422, "Invalid", "a JSON patch may not replace the whole object")
            node, key = parent(parts)
            if name == "remove":
                del node[int(key) if isinstance(node, list) else key]
            elif name == "replace":
                if isinstance(node, list):
                    node[int(key)] = op["value"]
                else:
                    if key not in node:
                        raise ApiError(422, "Invalid", f"replace of {op['path']}: no such member")
                    node[key] = op["value"]
            elif name == "add":
                if isinstance(node, list):
                    node.insert(len(node) if key == "-" else int(key), op["value"])
                else:
                    node[key] = op["value"]
            else:
                raise _bad_request(f"unknown JSON patch operation {name!r}")
        except (KeyError, IndexError, ValueError, TypeError) as err:
            raise ApiError(422, "Invalid", f"the JSON patch does not apply: {type(err).__name__} at "
                                           f"{op.get('path') if isinstance(op, dict) else op!r}") from None
    return doc


def kubeconfig(base_url: str, cluster: str, token: str, namespace: str) -> dict[str, Any]:
    """A kubeconfig (as a dict) for one of the fake's clusters: the `kube_config` extra of a kubernetes connection."""
    user = f"{cluster}-admin"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": {"server": f"{base_url.rstrip('/')}/clusters/{cluster}"}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": user, "namespace": namespace}}],
        "current-context": cluster,
        "preferences": {},
    }


def _split_key(key: str, parts: int, what: str) -> list[str]:
    fields = key.split("/")
    if len(fields) != parts or not all(fields):
        shape = "cluster/namespace/kind/name" if parts == 4 else "cluster/namespace/deployment"
        raise LabError(f"fake Kubernetes API: {what} key {key!r} is not {shape}")
    return fields


class _Reconciler:
    """Plays the deployment controller for one bound deployment: scales its workload to what the spec asks."""

    def __init__(self, api: FakeKubeApi, key: str, workload: Workload) -> None:
        self.api, self.key, self.workload = api, key, workload
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=f"fake-kube-reconcile-{key}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def poke(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        self._thread.join(RECONCILER_STOP_SECONDS)

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._stopping:
                return
            desired = self.api._desired(self.key)
            if desired is None:      # not created yet
                continue
            generation, replicas = desired
            error = None
            try:
                if getattr(self.workload, "takes_pod_env", False):
                    self.workload.scale(replicas, env=self.api.pod_env(self.key))  # type: ignore[call-arg]
                else:
                    self.workload.scale(replicas)
            except Exception as err:  # the workload's failure becomes the deployment's ReplicaFailure condition
                error = f"{type(err).__name__}: {err}"
                log.warning("fake Kubernetes API: scaling %s to %d failed: %s", self.key, replicas, error)
            self.api._observed(self.key, generation, replicas, error)


class FakeKubeApi:
    """The fake API server: objects in memory behind one lock, written through to `state_file`.

    `workloads` binds deployments ("cluster/namespace/deployment") to local processes; `seed` creates objects
    ("cluster/namespace/kind/name" -> the object's JSON) that the state file does not hold yet."""

    def __init__(self, *, token: str, state_file: Path, workloads: dict[str, Workload] | None = None,
                 seed: dict[str, dict] | None = None) -> None:
        if not token:
            raise LabError("fake Kubernetes API: give a non-empty bearer token")
        self._token = token.encode()
        self.state_file = Path(state_file)
        self._lock = threading.RLock()
        self._objects: dict[str, dict[str, Any]] = {}
        self._resource_version = 0
        self._failures: dict[str, str] = {}
        self._workloads = dict(workloads or {})
        for key in self._workloads:
            _split_key(key, 3, "workload")
        self._reconcilers = {key: _Reconciler(self, key, w) for key, w in self._workloads.items()}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._serving = threading.Event()
        self._started = False
        self._load()
        self._apply_seed(seed or {})

    # -- serving -------------------------------------------------------------------------------------------

    def serve_forever(self, host: str, port: int) -> None:
        """Serve until `shutdown()` (from another thread), SIGTERM or Ctrl-C: the lab's process."""
        server = self._bind(host, port)
        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        log.info("fake Kubernetes API on http://%s:%d/clusters/<cluster>", host, server.server_address[1])
        try:
            self._serving.set()
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            self._serving.clear()
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
            self._close()

    def start_in_thread(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve from a daemon thread (tests); returns the base URL (add /clusters/<cluster>)."""
        server = self._bind(host, port)
        self._serving.set()
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-kube-api", daemon=True)
        self._thread.start()
        return f"http://{host}:{server.server_address[1]}"

    def shutdown(self) -> None:
        """Stop serving and stop the reconcilers (the workloads keep whatever state they are in)."""
        server, thread = self._server, self._thread
        if server is None:
            return
        if self._serving.is_set():
            server.shutdown()           # returns once serve_forever has left its loop
        if thread is not None:          # start_in_thread; serve_forever closes in its own `finally`
            thread.join(RECONCILER_STOP_SECONDS)
            self._thread = None
            self._serving.clear()
            self._close()

    def _bind(self, host: str, port: int) -> ThreadingHTTPServer:
        if self._server is not None:
            raise LabError("fake Kubernetes API: already serving; call shutdown() first")
        handler = type("FakeKubeHandler", (_Handler,), {"api": self})
        try:
            self._server = ThreadingHTTPServer((host, port), handler)
        except OSError as err:
            raise LabError(f"fake Kubernetes API cannot listen on {host}:{port} ({err.strerror or err}): "
                           f"free the port or pick another") from None
        self._server.daemon_threads = True
        self._start_reconcilers()
        return self._server

    def _close(self) -> None:
        if self._server is not None:
            self._server.server_close()
            self._server = None
        for reconciler in self._reconcilers.values():
            reconciler.stop()
        self._reconcilers = {key: _Reconciler(self, key, w) for key, w in self._workloads.items()}
        self._started = False

    def _start_reconcilers(self) -> None:
        if self._started:
            return
        self._started = True
        for key, reconciler in self._reconcilers.items():
            reconciler.start()
            cluster, namespace, name = key.split("/")
            if self._key(cluster, namespace, "deployments", name) in self._objects:
                reconciler.poke()   # the persisted or seeded replicas, once at start

    # -- state ---------------------------------------------------------------------------------------------

    @staticmethod
    def _key(cluster: str, namespace: str, plural: str, name: str) -> str:
        return f"{cluster}/{namespace}/{plural}/{name}"

    def _load(self) -> None:
        try:
            data = json.loads(self.state_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise LabError(f"fake Kubernetes API: state file {self.state_file} cannot be read ({err}): "
                           f"remove it to start again from the seed") from None
        if not isinstance(data, dict) or not isinstance(data.get("objects"), dict):
            raise LabError(f"fake Kubernetes API: state file {self.state_file} is not this server's: remove it")
        self._objects = data["objects"]
        self._resource_version = int(data.get("resourceVersion", 0))

    def _persist(self) -> None:
        """Replace the state file atomically (a crash leaves the old one or the new one, never half)."""
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"resourceVersion": self._resource_version, "objects": self._objects}, sort_keys=True)
        fd, tmp = tempfile.mkstemp(prefix=".fake-kube-", dir=self.state_file.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.state_file)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def _apply_seed(self, seed: Mapping[str, dict]) -> None:
        created = False
        with self._lock:
            for key, obj in seed.items():
                cluster, namespace, plural, name = _split_key(key, 4, "seed")
                if plural not in KINDS:
                    raise LabError(f"fake Kubernetes API: seed key {key!r}: kind is one of {', '.join(KINDS)}")
                if key in self._objects:
                    continue
                body = copy.deepcopy(obj)
                body.setdefault("metadata", {}).setdefault("name", name)
                if plural == "deployments":
                    _deployment_defaults(body, name)
                try:
                    self._create(cluster, namespace, KINDS[plural], body, persist=False)
                except ApiError as err:
                    raise LabError(f"fake Kubernetes API: seed {key}: {err.message}") from None
                created = True
            if created or not self.state_file.exists():
                self._persist()

    def _next_version(self) -> str:
        self._resource_version += 1
        return str(self._resource_version)

    def pod_env(self, key: str) -> dict[str, str]:
        """The environment of the deployment's first container: `envFrom` ConfigMaps and Secrets (a missing one
        skipped when `optional`, else an error, as a kubelet would refuse to start the pod), then `env` values."""
        cluster, namespace, name = key.split("/")
        with self._lock:
            obj = self._objects.get(self._key(cluster, namespace, "deployments", name)) or {}
            containers = obj.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or [{}]
            env: dict[str, str] = {}
            for source in containers[0].get("envFrom") or []:
                for plural, ref_key in (("configmaps", "configMapRef"), ("secrets", "secretRef")):
                    ref = source.get(ref_key)
                    if not ref:
                        continue
                    found = self._objects.get(self._key(cluster, namespace, plural, ref["name"]))
                    if found is None:
                        if ref.get("optional"):
                            continue
                        raise LabError(f"{key}: {plural[:-1]} {ref['name']} (envFrom) does not exist")
                    data = found.get("data") or {}
                    if plural == "secrets":
                        data = {k: base64.b64decode(v).decode() for k, v in data.items()}
                    env |= {source.get("prefix", "") + k: v for k, v in data.items()}
            env |= {e["name"]: e["value"] for e in containers[0].get("env") or [] if "value" in e}
            return env

    def _desired(self, key: str) -> tuple[int, int] | None:
        cluster, namespace, name = key.split("/")
        with self._lock:
            obj = self._objects.get(self._key(cluster, namespace, "deployments", name))
            if obj is None:
                return None
            return obj["metadata"]["generation"], obj["spec"]["replicas"]

    def _observed(self, key: str, generation: int, replicas: int, error: str | None) -> None:
        cluster, namespace, name = key.split("/")
        with self._lock:
            obj = self._objects.get(self._key(cluster, namespace, "deployments", name))
            if obj is None:
                return
            status = obj.setdefault("status", {})
            if generation >= status.get("observedGeneration", 0):
                status["observedGeneration"] = generation
                status["replicas"] = replicas
            if error:
                self._failures[key] = error
            else:
                self._failures.pop(key, None)
            self._persist()

    # -- requests ------------------------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> tuple[int, Any]:
        """One request -> (HTTP status, JSON body). Every error is a v1 Status."""
        try:
            return self._route(method, target, headers, body)
        except ApiError as err:
            return err.code, err.status()

    def _route(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> tuple[int, Any]:
        url = urlsplit(target)
        path = unquote(url.path)
        if path in ("/healthz", "/livez", "/readyz"):
            return 200, "ok"
        if not self._authorized(headers.get("Authorization", "")):
            return 401, ApiError(401, "Unauthorized", "Unauthorized").status()
        match = _CLUSTER_PATH.match(path)
        rest = (match.group("rest") or "/") if match else None
        if match is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        cluster = match.group("cluster")
        if rest in ("/version", "/version/"):
            if method != "GET":
                raise ApiError(405, "MethodNotAllowed", f"the server does not allow the method {method} on /version")
            return 200, SERVER_VERSION
        resource = _RESOURCE_PATH.match(rest)
        kind = KINDS.get(resource.group("plural")) if resource else None
        if resource is None or kind is None or kind.namespaced_path != resource.group("prefix"):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if len(body) > MAX_BODY_BYTES:
            raise ApiError(413, "RequestEntityTooLarge", "the request is too large")
        namespace, name, sub = resource.group("namespace"), resource.group("name"), resource.group("sub")
        if sub and kind.plural != "deployments":
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        query = parse_qs(url.query)
        content_type = headers.get("Content-Type", "application/json").split(";")[0].strip().lower()
        if method == "PATCH" and content_type not in (*_MERGE_PATCHES, _JSON_PATCH):
            raise _unsupported_patch()
        payload = _parse_body(body) if body else None
        ref = (cluster, namespace, kind)
        if name is None:
            if method == "GET":
                return 200, self._list(ref, query.get("labelSelector", [""])[0])
            if method == "POST":
                created = self._create(cluster, namespace, kind, _object_body(payload, kind))
                return 201, self._render(created, kind, cluster)
            raise _method_not_allowed(method, rest)
        if sub == "scale":
            return self._scale(method, ref, name, payload, content_type)
        if sub == "status":
            if method != "GET":
                raise _method_not_allowed(method, rest)
            return 200, self._render(self._get(ref, name), kind, cluster)
        if method == "GET":
            return 200, self._render(self._get(ref, name), kind, cluster)
        if method == "PUT":
            return 200, self._render(self._replace(ref, name, _object_body(payload, kind)), kind, cluster)
        if method == "PATCH":
            return 200, self._render(self._patch(ref, name, payload, content_type), kind, cluster)
        if method == "DELETE":
            return 200, self._delete(ref, name, payload)
        raise _method_not_allowed(method, rest)

    def _authorized(self, header: str) -> bool:
        scheme, _, token = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self._token)

    def _get(self, ref: tuple[str, str, _Kind], name: str) -> dict[str, Any]:
        cluster, namespace, kind = ref
        with self._lock:
            obj = self._objects.get(self._key(cluster, namespace, kind.plural, name))
            if obj is None:
                raise _not_found(kind, name)
            return copy.deepcopy(obj)

    def _list(self, ref: tuple[str, str, _Kind], selector: str) -> dict[str, Any]:
        cluster, namespace, kind = ref
        wanted = dict(part.split("=", 1) for part in selector.split(",") if "=" in part)
        prefix = self._key(cluster, namespace, kind.plural, "")
        with self._lock:
            items = [copy.deepcopy(o) for k, o in sorted(self._objects.items()) if k.startswith(prefix)]
            version = str(self._resource_version)
        items = [o for o in items if all(o["metadata"].get("labels", {}).get(k) == v for k, v in wanted.items())]
        rendered = []
        for obj in items:
            item = self._render(obj, kind, cluster)
            item.pop("kind", None)        # list items carry no kind/apiVersion of their own
            item.pop("apiVersion", None)
            rendered.append(item)
        return {"kind": f"{kind.kind}List", "apiVersion": kind.api_version, "metadata": {"resourceVersion": version},
                "items": rendered}

    def _create(self, cluster: str, namespace: str, kind: _Kind, body: dict[str, Any], *,
                persist: bool = True) -> dict[str, Any]:
        meta = body.setdefault("metadata", {})
        name = meta.get("name")
        if not name:
            raise _invalid(kind, "", "metadata.name", "Required value: name or generateName is required")
        if meta.get("namespace") not in (None, namespace):
            raise _bad_request("the namespace of the provided object does not match the namespace sent on the request")
        if meta.get("resourceVersion"):
            raise _bad_request("resourceVersion should not be set on objects to be created")
        obj = _normalize(kind, name, body)
        with self._lock:
            key = self._key(cluster, namespace, kind.plural, name)
            if key in self._objects:
                raise ApiError(409, "AlreadyExists", f"{kind.qualified(name)} already exists", _details(kind, name))
            obj["metadata"].update({"namespace": namespace, "uid": str(uuid.uuid4()), "creationTimestamp": _now(),
                                    "resourceVersion": self._next_version()})
            if kind.plural == "deployments":
                obj["metadata"]["generation"] = 1
                obj["status"] = self._initial_status(key, obj)
            self._objects[key] = obj
            if persist:
                self._persist()
            self._after_write(kind, cluster, namespace, name)
            return copy.deepcopy(obj)

    def _replace(self, ref: tuple[str, str, _Kind], name: str, body: dict[str, Any]) -> dict[str, Any]:
        cluster, namespace, kind = ref
        meta = body.setdefault("metadata", {})
        if meta.get("name") not in (None, name):
            raise _bad_request(f"the name of the object ({meta.get('name')}) does not match the name on the URL "
                               f"({name})")
        if meta.get("namespace") not in (None, namespace):
            raise _bad_request("the namespace of the provided object does not match the namespace sent on the request")
        with self._lock:
            key = self._key(cluster, namespace, kind.plural, name)
            current = self._objects.get(key)
            if current is None:
                raise _not_found(kind, name)
            expected = meta.get("resourceVersion")
            if expected and expected != current["metadata"]["resourceVersion"]:
                raise _conflict(kind, name)
            return self._commit(key, kind, current, _normalize(kind, name, body))

    def _patch(self, ref: tuple[str, str, _Kind], name: str, patch: Any, content_type: str) -> dict[str, Any]:
        cluster, namespace, kind = ref
        with self._lock:
            current = self._get(ref, name)
            patched = _apply_patch(current, patch, content_type)
            expected = (patched.get("metadata") or {}).get("resourceVersion")
            if expected and expected != current["metadata"]["resourceVersion"]:
                raise _conflict(kind, name)
            patched.setdefault("metadata", {})["name"] = name
            key = self._key(cluster, namespace, kind.plural, name)
            return self._commit(key, kind, self._objects[key], _normalize(kind, name, patched))

    def _delete(self, ref: tuple[str, str, _Kind], name: str, options: Any) -> dict[str, Any]:
        cluster, namespace, kind = ref
        preconditions = (options.get("preconditions") or {}) if isinstance(options, dict) else {}
        with self._lock:
            current = self._get(ref, name)
            meta = current["metadata"]
            if preconditions.get("resourceVersion") not in (None, meta["resourceVersion"]) or \
                    preconditions.get("uid") not in (None, meta["uid"]):
                raise _conflict(kind, name)
            del self._objects[self._key(cluster, namespace, kind.plural, name)]
            self._next_version()
            self._persist()
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": _details(kind, name, uid=meta["uid"])}

    def _scale(self, method: str, ref: tuple[str, str, _Kind], name: str, payload: Any,
               content_type: str) -> tuple[int, Any]:
        cluster, namespace, kind = ref
        if method == "GET":
            return 200, self._scale_of(self._get(ref, name))
        if method not in ("PUT", "PATCH"):
            raise _method_not_allowed(method, "scale")
        with self._lock:
            current = self._get(ref, name)
            scale = self._scale_of(current)
            if method == "PUT":
                if not isinstance(payload, dict):
                    raise _bad_request("the body of a scale replace is an autoscaling/v1 Scale object")
                new = payload
            else:
                new = _apply_patch(scale, payload, content_type)
            expected = (new.get("metadata") or {}).get("resourceVersion")
            if expected and expected != current["metadata"]["resourceVersion"]:
                raise _conflict(kind, name)
            replicas = (new.get("spec") or {}).get("replicas", 0 if method == "PUT" else scale["spec"]["replicas"])
            if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
                raise _invalid(KINDS["deployments"], name, "spec.replicas",
                               f"Invalid value: {replicas!r}: must be greater than or equal to 0")
            updated = copy.deepcopy(current)
            updated["spec"]["replicas"] = replicas
            key = self._key(cluster, namespace, kind.plural, name)
            committed = self._commit(key, kind, self._objects[key], updated)
        return 200, self._scale_of(committed)

    def _commit(self, key: str, kind: _Kind, current: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        """Write `new` over `current` (the caller holds the lock and checked the resourceVersion). System fields
        stay the server's; a write that changes nothing changes nothing, not even the resourceVersion."""
        meta = new["metadata"]
        for field in ("uid", "creationTimestamp", "namespace", "resourceVersion", "generation"):
            if field in current["metadata"]:
                meta[field] = current["metadata"][field]
            else:
                meta.pop(field, None)
        if kind.plural == "deployments":
            new["status"] = copy.deepcopy(current.get("status", {}))
        if kind.plural == "configmaps" and current.get("immutable") and \
                any(new.get(f) != current.get(f) for f in ("data", "binaryData", "immutable")):
            raise _invalid(kind, meta["name"], "data", "Forbidden: field is immutable when `immutable` is set")
        if new == current:
            return copy.deepcopy(current)
        meta["resourceVersion"] = self._next_version()
        cluster, namespace, _, name = key.split("/")
        if kind.plural == "deployments" and new["spec"] != current["spec"]:
            meta["generation"] = current["metadata"]["generation"] + 1
            if f"{cluster}/{namespace}/{name}" not in self._workloads:
                new["status"] = self._initial_status(key, new)
        self._objects[key] = new
        self._persist()
        self._after_write(kind, cluster, namespace, name, spec_changed=meta.get("generation") !=
                          current["metadata"].get("generation"))
        return copy.deepcopy(new)

    def _initial_status(self, key: str, obj: dict[str, Any]) -> dict[str, Any]:
        """An unbound deployment is observed (and, when read, ready) at once; a bound one once its workload scaled."""
        cluster, namespace, _, name = key.split("/")
        if f"{cluster}/{namespace}/{name}" in self._workloads:
            return {}
        return {"observedGeneration": obj["metadata"]["generation"], "replicas": obj["spec"]["replicas"]}

    def _after_write(self, kind: _Kind, cluster: str, namespace: str, name: str, spec_changed: bool = True) -> None:
        reconciler = self._reconcilers.get(f"{cluster}/{namespace}/{name}")
        if kind.plural == "deployments" and reconciler is not None and spec_changed and self._started:
            reconciler.poke()

    # -- what a read shows ---------------------------------------------------------------------------------

    def _render(self, obj: dict[str, Any], kind: _Kind, cluster: str) -> dict[str, Any]:
        """The object as the API shows it: kind and apiVersion, and a deployment's status as of now."""
        obj = {"kind": kind.kind, "apiVersion": kind.api_version, **obj}
        if kind.plural == "deployments":
            obj["status"] = self._status(obj, cluster)
        return obj

    def _status(self, obj: dict[str, Any], cluster: str) -> dict[str, Any]:
        meta, spec, stored = obj["metadata"], obj["spec"], obj.get("status", {})
        key = f"{cluster}/{meta['namespace']}/{meta['name']}"
        workload = self._workloads.get(key)
        ready = True
        if workload is not None:
            try:
                ready = bool(workload.ready())
            except Exception:  # a workload that cannot say is not ready
                ready = False
        wanted = spec["replicas"]
        ready_count = wanted if ready else 0
        counts = {"observedGeneration": stored.get("observedGeneration", 0), "replicas": stored.get("replicas", 0),
                  "updatedReplicas": ready_count, "readyReplicas": ready_count, "availableReplicas": ready_count,
                  "unavailableReplicas": max(wanted - ready_count, 0)}
        status: dict[str, Any] = {k: v for k, v in counts.items() if v}     # the API omits zero counts
        available = ready_count >= wanted
        conditions = [{"type": "Available", "status": "True" if available else "False",
                       "reason": "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
                       "message": "Deployment has minimum availability." if available
                       else "Deployment does not have minimum availability."}]
        failure = self._failures.get(key)
        if failure:
            conditions.append({"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
                               "message": failure})
        status["conditions"] = conditions
        return status

    def _scale_of(self, deployment: dict[str, Any]) -> dict[str, Any]:
        meta = deployment["metadata"]
        labels = deployment["spec"].get("selector", {}).get("matchLabels", {})
        return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")},
                "spec": {"replicas": deployment["spec"]["replicas"]},
                "status": {"replicas": deployment.get("status", {}).get("replicas", 0),
                           "selector": ",".join(f"{k}={v}" for k, v in sorted(labels.items()))}}


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive (the client pools connections); JSON in, JSON out."""

    protocol_version = "HTTP/1.1"
    server_version = "multicloud-dr-fake-kube"
    api: FakeKubeApi

    def _serve(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY_BYTES:
            code, payload = 413, ApiError(413, "RequestEntityTooLarge", "the request is too large").status()
            self.close_connection = True
        else:
            body = self.rfile.read(length) if length else b""
            code, payload = self.api.handle(self.command, self.path, self.headers, body)
        data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain" if isinstance(payload, str) else "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("fake Kubernetes API: %s", format % args)


def _method_not_allowed(method: str, path: str) -> ApiError:
    return ApiError(405, "MethodNotAllowed", f"the server does not allow this method on the requested resource "
                                             f"({method} {path})")


def _parse_body(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise _bad_request(f"the request body is not JSON: {err}") from None


def _object_body(payload: Any, kind: _Kind) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise _bad_request(f"the request body is not a {kind.kind} object")
    if payload.get("kind") not in (None, kind.kind) or payload.get("apiVersion") not in (None, kind.api_version):
        raise _bad_request(f"the body is a {payload.get('apiVersion')}/{payload.get('kind')}, not a "
                           f"{kind.api_version}/{kind.kind}")
    return copy.deepcopy(payload)


def _apply_patch(current: dict[str, Any], patch: Any, content_type: str) -> dict[str, Any]:
    if content_type in _MERGE_PATCHES:
        if not isinstance(patch, dict):
            raise _bad_request("a merge patch is a JSON object")
        return merge_patch(current, patch)
    if content_type == _JSON_PATCH:
        result = json_patch(current, patch)
        if not isinstance(result, dict):
            raise _bad_request("the patched object is not an object")
        return result
    raise _unsupported_patch()


def _unsupported_patch() -> ApiError:
    return ApiError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format - accepted media "
                                                 f"types include: {_JSON_PATCH}, {', '.join(_MERGE_PATCHES)}")


def _deployment_defaults(body: dict[str, Any], name: str) -> None:
    """What a seed may leave out: one replica, a selector and a one-container template labelled app=<name>."""
    spec = body.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    labels = spec.setdefault("selector", {}).setdefault("matchLabels", {"app": name})
    template = spec.setdefault("template", {})
    template.setdefault("metadata", {}).setdefault("labels", dict(labels))
    template.setdefault("spec", {}).setdefault("containers", [{"name": name, "image": f"{name}:lab"}])


def _normalize(kind: _Kind, name: str, body: dict[str, Any]) -> dict[str, Any]:
    """Validate and default a written object, as the API server stores it (status is the server's)."""
    obj = {k: v for k, v in copy.deepcopy(body).items() if k not in ("kind", "apiVersion", "status")}
    meta = obj.setdefault("metadata", {})
    if not isinstance(meta, dict):
        raise _bad_request("metadata is not an object")
    meta["name"] = name
    for field in ("labels", "annotations"):
        value = meta.get(field)
        if value is not None and (not isinstance(value, dict) or
                                  not all(isinstance(v, str) for v in value.values())):
            raise _bad_request(f"metadata.{field} maps names to strings")
        if value == {}:
            meta.pop(field)
    if kind.plural == "deployments":
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            raise _invalid(kind, name, "spec", "Required value")
        spec.setdefault("replicas", 1)
        replicas = spec["replicas"]
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise _invalid(kind, name, "spec.replicas", f"Invalid value: {replicas!r}: must be greater than or equal "
                                                        f"to 0")
        if not (spec.get("selector") or {}).get("matchLabels") and not (spec.get("selector") or {}).get(
                "matchExpressions"):
            raise _invalid(kind, name, "spec.selector", "Required value")
        if not ((spec.get("template") or {}).get("spec") or {}).get("containers"):
            raise _invalid(kind, name, "spec.template.spec.containers", "Required value")
        spec.setdefault("strategy", {"type": "RollingUpdate",
                                     "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
    elif kind.plural == "configmaps":
        data = obj.get("data")
        if data is not None and (not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values())):
            raise _bad_request("ConfigMap.data maps keys to strings")
        if data == {}:
            obj.pop("data")
    else:
        data = obj.get("data") or {}
        string_data = obj.pop("stringData", None) or {}
        if not isinstance(data, dict) or not isinstance(string_data, dict):
            raise _bad_request("Secret.data and Secret.stringData map keys to strings")
        for key, value in data.items():
            try:
                base64.b64decode(value, validate=True)
            except (binascii.Error, TypeError, ValueError):
                raise _bad_request(f"Secret.data[{key!r}]: illegal base64 data") from None
        for key, value in string_data.items():
            if not isinstance(value, str):
                raise _bad_request(f"Secret.stringData[{key!r}] is not a string")
            data[key] = base64.b64encode(value.encode()).decode()
        if data:
            obj["data"] = data
        else:
            obj.pop("data", None)
        obj.setdefault("type", "Opaque")
    return obj


def main(argv: list[str] | None = None) -> int:
    """`python -m multicloud_dr.lab.fake_kube --port N --state FILE --token-file FILE [--seed FILE]` (no workloads:
    those are the lab's wiring, in-process). The token is read from a file, never from argv."""
    parser = argparse.ArgumentParser(prog="fake_kube", description="A fake Kubernetes API server (several clusters).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state", type=Path, required=True, help="the JSON state file (created if absent)")
    parser.add_argument("--token-file", type=Path, required=True, help="a file holding the bearer token")
    parser.add_argument("--seed", type=Path, help="a JSON file: {'cluster/namespace/kind/name': object}")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        token = args.token_file.read_text(encoding="utf-8").strip()
        seed = json.loads(args.seed.read_text(encoding="utf-8")) if args.seed else None
    except (OSError, json.JSONDecodeError) as err:
        print(f"fake_kube: {err}", file=sys.stderr)
        return 2
    try:
        FakeKubeApi(token=token, state_file=args.state, seed=seed).serve_forever(args.host, args.port)
    except LabError as err:
        print(f"fake_kube: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
