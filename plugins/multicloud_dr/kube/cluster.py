"""One cluster as one kubernetes connection reaches it: its API clients and its namespace, and what the API
answered turned into errors that say what to do.

Every request carries its own timeout (`request_timeout`): the client's default is to wait forever on a
half-open connection, which is exactly what the API of a region that is burning does. The client (urllib3's
default) also retries a failed connection, and a GET that timed out, 3 times by itself: one call may take up to
4 timeouts, which the waits here allow for.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import re
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from multicloud_dr.connections import Endpoint
from multicloud_dr.connections.kubernetes import KubernetesConnection
from multicloud_dr.exceptions import ConfigError, KubernetesError

if TYPE_CHECKING:
    from kubernetes.client import ApiClient, AppsV1Api, CoreV1Api

T = TypeVar("T")

REQUEST_TIMEOUT_SECONDS = 30.0
PROBE_TIMEOUT_SECONDS = 10.0

ClusterRef = str | Endpoint | KubernetesConnection


class ApiUnreachableError(KubernetesError):
    """The cluster's API server did not answer (refused, timed out, reset, name not resolved): the cluster may be
    down or cut off from this worker. Unlike a refusal (401, 403, 404), a later retry may succeed."""


class Cluster:
    """The API of one cluster, reached through one kubernetes connection (an id, a URI or an Endpoint), working in
    `namespace` (default: the connection's). The clients are made on first use, once; `close()` releases them."""

    def __init__(self, conn: ClusterRef, namespace: str | None = None, *,
                 request_timeout: float = REQUEST_TIMEOUT_SECONDS) -> None:
        self.connection = KubernetesConnection.from_ref(conn, "scaling an application on Kubernetes")
        self.namespace = namespace or self.connection.namespace
        self.request_timeout = request_timeout

    @property
    def where(self) -> str:
        """The connection, for messages: its id, else its secret-free description."""
        if self.connection.conn_id:
            return f"connection {self.connection.conn_id}"
        return f"connection {self.connection.endpoint.describe()}"

    @cached_property
    def api_client(self) -> ApiClient:
        return self.connection.api_client()

    @cached_property
    def apps(self) -> AppsV1Api:
        from kubernetes import client

        return client.AppsV1Api(api_client=self.api_client)

    @cached_property
    def core(self) -> CoreV1Api:
        from kubernetes import client

        return client.CoreV1Api(api_client=self.api_client)

    def close(self) -> None:
        if "api_client" in self.__dict__:
            self.api_client.close()
            for name in ("api_client", "apps", "core"):
                self.__dict__.pop(name, None)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, action: str, fn: Callable[..., T], *args: Any, passthrough: Collection[int] = (),
             quote: bool = True, timeout: float | None = None, **kwargs: Any) -> T:
        """`fn(*args, **kwargs)` with a request timeout; the client's exceptions become KubernetesError (an API
        status in `passthrough` is re-raised as the client's ApiException, for the caller to handle). `action`
        says what was being done, e.g. "scale deployment petclinic/web"; `quote=False` keeps the API's own
        message out of the error (a Secret's)."""
        from kubernetes.client.exceptions import ApiException

        kwargs["_request_timeout"] = timeout or self.request_timeout
        try:
            return fn(*args, **kwargs)
        except ApiException as err:
            if err.status in passthrough:
                raise
            raise self.refused(action, err, quote=quote) from None
        except Exception as err:
            if not is_network_error(err):
                raise
            raise self.unreachable(action, err) from None

    def refused(self, action: str, err: Any, *, quote: bool = True) -> KubernetesError | ConfigError:
        """The error for an API status: what the server said, and what to do about it."""
        status, reason, message = api_status(err)
        said = f"{status} {reason}" + (f": {message}" if quote and message else "")
        if status == 401:
            return KubernetesError(f"{action}: the cluster of {self.where} refused its credentials ({said}): renew "
                                   f"the token or client certificate in that connection's kubeconfig (an EKS token "
                                   f"lasts 15 minutes: use the exec plugin, `aws eks get-token`)")
        if status == 403:
            return KubernetesError(f"{action}: the user of {self.where} is not allowed to ({said}): grant it a Role "
                                   f"in namespace {self.namespace} with get, update and patch on deployments, "
                                   f"deployments/scale, configmaps and secrets, and a RoleBinding")
        if status == 404:
            return ConfigError(f"{action}: not found in namespace {self.namespace} of the cluster of {self.where} "
                               f"({said}): check the topology's namespace and names against the cluster "
                               f"(`kubectl -n {self.namespace} get deployments,configmaps,secrets`)")
        if status == 409:
            return KubernetesError(f"{action}: changed by someone else at the same time ({said}): run it again")
        if status >= 500 or status == 429:
            return ApiUnreachableError(f"{action}: the API server of {self.where} answered {said}: the control plane "
                                       f"is overloaded or failing; retry later, and check the cluster's health")
        return KubernetesError(f"{action}: the API server of {self.where} refused the request ({said})")

    def unreachable(self, action: str, err: BaseException) -> ApiUnreachableError:
        host = getattr(self.api_client.configuration, "host", "?") if "api_client" in self.__dict__ else "?"
        return ApiUnreachableError(f"{action}: the API server of {self.where} ({host}) did not answer "
                                   f"({describe_network_error(err)}): check the cluster's endpoint and the network "
                                   f"from this worker; a retry may succeed")

    def probe(self, timeout: float = PROBE_TIMEOUT_SECONDS) -> str | None:
        """None when the API server answers GET /version within `timeout` (in all: the client retries a failed
        connection itself, so the call runs in a thread that is given up on at the deadline); else why not.
        Credentials are not checked (/version is public on most clusters): the next call finds a refusal."""
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        version = client.VersionApi(api_client=self.api_client)

        def ask() -> None:
            with contextlib.suppress(ApiException):   # a refusal is an answer: the server is there
                self.call("probe the API server", version.get_code, timeout=timeout, passthrough=(401, 403))

        pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="kube-probe")
        try:
            pool.submit(ask).result(timeout=timeout)
        except concurrent.futures.TimeoutError:
            return f"no answer within {timeout:g} s"
        except ApiUnreachableError as err:
            return str(err)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        return None


@contextmanager
def using_cluster(conn: ClusterRef | Cluster, namespace: str | None = None) -> Iterator[Cluster]:
    """The cluster `conn` names, in `namespace` (None: the connection's, or the Cluster's own); a Cluster given is
    used as it is (and left open), one made here is closed afterwards."""
    if isinstance(conn, Cluster) and (not namespace or namespace == conn.namespace):
        yield conn
        return
    if isinstance(conn, Cluster):
        conn = conn.connection
    with Cluster(conn, namespace) as cluster:
        yield cluster


def api_status(err: Any) -> tuple[int, str, str]:
    """(code, reason, message) of the client's ApiException, from its v1 Status body when there is one."""
    status, reason, message = int(getattr(err, "status", 0) or 0), str(getattr(err, "reason", "") or ""), ""
    try:
        body = json.loads(err.body) if getattr(err, "body", None) else {}
    except (TypeError, ValueError):
        body = {}
    if isinstance(body, dict):
        reason = str(body.get("reason") or reason)
        message = str(body.get("message") or "")
    return status, reason, message


_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")]+)")


def _transport_classes(err: BaseException) -> set[str]:
    """The names of the urllib3 classes `err` is an instance of. urllib3 is the kubernetes client's transport, not
    a distribution this project declares, so its errors are recognised by their module instead of imported."""
    return {cls.__name__ for cls in type(err).__mro__ if cls.__module__.startswith("urllib3")}


def is_network_error(err: BaseException) -> bool:
    """A connection that failed (refused, timed out, reset, name not resolved), as opposed to an API answer."""
    return isinstance(err, ConnectionError | TimeoutError) or "HTTPError" in _transport_classes(err)


def describe_network_error(err: BaseException) -> str:
    """A short reason for a failed connection ("Connection refused", "read timed out"), not urllib3's paragraph."""
    reason = getattr(err, "reason", None)
    cause = reason if "MaxRetryError" in _transport_classes(err) and isinstance(reason, BaseException) else err
    if "ReadTimeoutError" in _transport_classes(cause):
        return "read timed out"
    text = str(cause)
    if "timed out" in text.lower():
        return "connect timed out"
    match = _ERRNO.search(text)
    if match:
        return match.group(1).strip()
    if "ProtocolError" in _transport_classes(cause):
        return f"connection broken: {text[:120]}"
    return f"{type(cause).__name__}: {text[:160]}"
