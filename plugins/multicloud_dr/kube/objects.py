"""Write the keys of a ConfigMap or a Secret (what points a site's app at its database, and its credentials).

Read, compare, write: the object is read; when every key given already has its value nothing is written (the
resourceVersion stays); otherwise the object is replaced carrying the resourceVersion that was read, so a change
made meanwhile is a 409 Conflict instead of being overwritten; then it is read and decided again (at most
`CONFLICT_TRIES` times). An absent object is created (and a create that lost the race to another creator is
retried as an update).

The keys given are merged into the object: other keys stay as they are, including keys another writer added
between our read and our write (the retry re-reads them). A key is never removed here.

Secret values never reach a log or an error message: only key names do, and the API's own message is left out
of a Secret's errors. Inside Airflow the values are also registered with the log masker.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from multicloud_dr.connections import running_in_airflow
from multicloud_dr.exceptions import ConfigError, KubernetesError
from multicloud_dr.kube.cluster import Cluster, ClusterRef, using_cluster

log = logging.getLogger(__name__)

CONFLICT_TRIES = 5


@dataclass(frozen=True)
class WriteResult:
    """What a write did. Names only, never values."""

    kind: str                         # ConfigMap or Secret
    namespace: str
    name: str
    action: str                       # created, updated or unchanged
    keys: tuple[str, ...]             # the keys this write sets
    changed_keys: tuple[str, ...]     # those whose value was different (all of them when created)
    attempts: int
    resource_version: str

    @property
    def changed(self) -> bool:
        return self.action != "unchanged"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "namespace": self.namespace, "name": self.name, "action": self.action,
                "keys": list(self.keys), "changed_keys": list(self.changed_keys), "attempts": self.attempts,
                "resource_version": self.resource_version}


@dataclass(frozen=True)
class _Kind:
    """How one kind is read, created, replaced and encoded."""

    name: str
    read: Callable[[Cluster], Callable[..., Any]]
    create: Callable[[Cluster], Callable[..., Any]]
    replace: Callable[[Cluster], Callable[..., Any]]
    build: Callable[[str, dict[str, str]], Any]     # (name, stored data) -> a new object
    decode: Callable[[str], str | None]             # stored value -> the value compared
    encode: Callable[[str], str]                    # value -> stored value
    secret: bool


def _b64decode(value: str) -> str | None:
    try:
        return base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None   # binary or malformed: never equal to a text value, so it is rewritten


def _b64encode(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def _config_map(name: str, data: dict[str, str]) -> Any:
    from kubernetes import client

    return client.V1ConfigMap(api_version="v1", kind="ConfigMap", metadata=client.V1ObjectMeta(name=name), data=data)


def _secret(name: str, data: dict[str, str]) -> Any:
    from kubernetes import client

    return client.V1Secret(api_version="v1", kind="Secret", metadata=client.V1ObjectMeta(name=name), data=data,
                           type="Opaque")


CONFIG_MAP = _Kind("ConfigMap", lambda c: c.core.read_namespaced_config_map,
                   lambda c: c.core.create_namespaced_config_map, lambda c: c.core.replace_namespaced_config_map,
                   _config_map, decode=lambda v: v, encode=lambda v: v, secret=False)
SECRET = _Kind("Secret", lambda c: c.core.read_namespaced_secret, lambda c: c.core.create_namespaced_secret,
               lambda c: c.core.replace_namespaced_secret, _secret, decode=_b64decode, encode=_b64encode, secret=True)


def set_config_map(conn: ClusterRef | Cluster, namespace: str | None, name: str,
                   data: Mapping[str, str]) -> WriteResult:
    """Set `data`'s keys in ConfigMap `name` (created if absent); other keys are kept. See the module docstring."""
    with using_cluster(conn, namespace) as cluster:
        return ObjectWrite(cluster, CONFIG_MAP, name, data).run()


def set_secret(conn: ClusterRef | Cluster, namespace: str | None, name: str,
               string_data: Mapping[str, str]) -> WriteResult:
    """Set `string_data`'s keys (plain text; stored base64) in Secret `name` (created if absent, type Opaque);
    other keys are kept. Values are never logged."""
    if running_in_airflow():
        from airflow.sdk.log import mask_secret

        for value in string_data.values():
            mask_secret(value)
    with using_cluster(conn, namespace) as cluster:
        return ObjectWrite(cluster, SECRET, name, string_data).run()


class ObjectWrite:
    """One read-compare-write of the keys of one ConfigMap or Secret, retried on conflict."""

    def __init__(self, cluster: Cluster, kind: _Kind, name: str, values: Mapping[str, str]) -> None:
        bad = [key for key, value in values.items() if not isinstance(value, str)]
        if bad:
            raise ConfigError(f"{kind.name} {name}: the values of {', '.join(sorted(bad))} are not text: give strings "
                              f"(quote numbers in the topology, e.g. \"3306\")")
        self.cluster, self.kind, self.name, self.values = cluster, kind, name, dict(values)
        self.ns = cluster.namespace
        self.what = f"{kind.name} {self.ns}/{name}"

    def run(self) -> WriteResult:
        from kubernetes.client.exceptions import ApiException

        keys = tuple(sorted(self.values))
        for attempt in range(1, CONFLICT_TRIES + 1):
            try:
                current = self._call("read", self.kind.read(self.cluster), self.name, self.ns, passthrough=(404,))
            except ApiException:
                current = None
            if current is None:
                data = {k: self.kind.encode(v) for k, v in self.values.items()}
                try:
                    created = self._call("create", self.kind.create(self.cluster), self.ns,
                                         self.kind.build(self.name, data), passthrough=(409,))
                except ApiException:
                    log.info("%s: created by someone else meanwhile (try %d of %d): reading it", self.what, attempt,
                             CONFLICT_TRIES)
                    continue
                log.info("%s: created with keys %s", self.what, ", ".join(keys))
                return self._result("created", keys, attempt, created)
            stored = dict(current.data or {})
            changed = tuple(k for k in keys if k not in stored or self.kind.decode(stored[k]) != self.values[k])
            if not changed:
                log.info("%s: keys %s already set: nothing written", self.what, ", ".join(keys))
                return self._result("unchanged", (), attempt, current)
            current.data = stored | {k: self.kind.encode(self.values[k]) for k in changed}
            try:     # current.metadata.resource_version is what was read: the API refuses the write if it moved
                replaced = self._call("update", self.kind.replace(self.cluster), self.name, self.ns, current,
                                      passthrough=(404, 409))
            except ApiException as err:
                log.info("%s: %s meanwhile (try %d of %d): reading it again", self.what,
                         "deleted" if err.status == 404 else "changed by someone else", attempt, CONFLICT_TRIES)
                continue
            log.info("%s: updated keys %s%s", self.what, ", ".join(changed),
                     " (values not logged)" if self.kind.secret else "")
            return self._result("updated", changed, attempt, replaced)
        raise KubernetesError(f"{self.what} on {self.cluster.where} kept changing between our read and our write "
                              f"({CONFLICT_TRIES} tries): another writer is updating it all the time (see "
                              f"`kubectl -n {self.ns} get {self.kind.name.lower()} {self.name} -o yaml`, its "
                              f"managedFields); stop it, then run this again")

    def _call(self, verb: str, fn: Callable[..., Any], *args: Any, passthrough: tuple[int, ...]) -> Any:
        return self.cluster.call(f"{verb} {self.what}", fn, *args, passthrough=passthrough,
                                 quote=not self.kind.secret)

    def _result(self, action: str, changed: tuple[str, ...], attempts: int, obj: Any) -> WriteResult:
        return WriteResult(self.kind.name, self.ns, self.name, action, tuple(sorted(self.values)), changed, attempts,
                           obj.metadata.resource_version)
