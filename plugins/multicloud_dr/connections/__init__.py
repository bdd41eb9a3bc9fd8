"""The connection layer: a connection reference (a URI or an Airflow connection id) -> an `Endpoint` ->
a client. No other module parses a connection or builds an SDK client.

Every command takes `URI_OR_CONN_ID`. Inside Airflow a connection id goes through Airflow's own
lookup (so secrets backends work). Outside Airflow (`drctl` on a break-glass shell) the same id is
read from the `AIRFLOW_CONN_<ID>` variable that Airflow itself would read, without importing
Airflow: the import costs seconds, and Airflow may be the thing that is broken.

One module per connection type turns an endpoint into a client: `mysql`, `postgres` (with their TLS
settings), `wasb` (and `azure`), `aws`, `gcp`, `kubernetes`, `http`. Inside Airflow, for a connection id,
the client comes from the provider's hook, so every authentication the provider supports works. Otherwise
each type's `Table` reads the same extras (`Setting`s, with their aliases and the providers' old
`extra__<type>__` spellings) and says what the SDK gets and which environment variables Terraform gets:
one mapping for drctl and for Terraform.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self
from urllib.parse import parse_qsl, unquote, urlsplit

from multicloud_dr.exceptions import ConfigError, ConnectionNotFoundError, InputError

# The connection ids the DAGs use unless the topology names others. The lab exports one
# AIRFLOW_CONN_* variable for each, so DAGs and drctl work against it with nothing else to set.
MYSQL_PRIMARY = "mysql_primary"
MYSQL_REPLICA = "mysql_replica"
MYSQL_DR = "mysql_dr"
POSTGRES_PRIMARY = "postgres_primary"
POSTGRES_STANDBY = "postgres_standby"
AZURE_BLOB_DR = "azure_blob_dr"
AWS_PRIMARY = "aws_primary"
GCS_DR = "gcs_dr"
APP_PRIMARY = "app_primary"      # http: the primary site's application (its /health)
APP_DR = "app_dr"                # http: the DR site's application
EKS_PRIMARY = "eks_primary"      # kubernetes: the primary site's cluster
AKS_DR = "aks_dr"                # kubernetes: the DR site's cluster
CLOUDFLARE = "cloudflare"        # http: Cloudflare's API (base URL .../client/v4, an Authorization header)

DEFAULT_CONN_IDS = (
    MYSQL_PRIMARY,
    MYSQL_REPLICA,
    MYSQL_DR,
    POSTGRES_PRIMARY,
    POSTGRES_STANDBY,
    AZURE_BLOB_DR,
    AWS_PRIMARY,
    GCS_DR,
    APP_PRIMARY,
    APP_DR,
    EKS_PRIMARY,
    AKS_DR,
    CLOUDFLARE,
)

# Airflow spells some URI schemes differently from their conn_type.
_SCHEME_TO_CONN_TYPE = {"postgresql": "postgres", "mariadb": "mysql", "mysql+pymysql": "mysql"}


@dataclass(frozen=True)
class Endpoint:
    """What is needed to reach one server or service. `password` is never logged or repr'd."""

    conn_type: str
    host: str | None = None
    port: int | None = None
    login: str | None = None
    password: str | None = field(default=None, repr=False)
    schema: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """A secret-free one-liner for logs and error messages."""
        user = f"{self.login}@" if self.login else ""
        port = f":{self.port}" if self.port else ""
        return f"{self.conn_type}://{user}{self.host or ''}{port}"


def running_in_airflow() -> bool:
    """True inside an Airflow task (or DAG parse), where Airflow's own connection lookup and hooks apply;
    False in drctl, which never imports Airflow."""
    return "airflow.sdk" in sys.modules


def env_var_name(conn_id: str) -> str:
    return f"AIRFLOW_CONN_{conn_id.upper()}"


def parse_uri(uri: str, source: str = "the connection URI") -> Endpoint:
    """Parse an Airflow-style connection URI (`scheme://login:password@host:port/schema?extra`).

    `source` names where the URI came from (e.g. AIRFLOW_CONN_MYSQL_DR) in error messages, which never
    quote the URI or any part of it: a password with an unescaped `/` or `@` ends up in any of them.
    """
    hint = "percent-encode any / ? # @ : [ ] in the user or password (e.g. / as %2F)"
    try:
        parts = urlsplit(uri)
    except ValueError:  # an unbalanced [IPv6] host
        raise ConnectionNotFoundError(f"{source} does not parse as a URI: write an IPv6 host as [::1]; "
                                      f"{hint}") from None
    try:
        port = parts.port
    except ValueError:  # not a number, or out of range
        raise ConnectionNotFoundError(f"{source}: the port is not a number 0..65535; {hint}") from None
    if not parts.scheme:
        raise ConnectionNotFoundError(f"{source} is not a URI: expected scheme://user:password@host:port/db")
    scheme = parts.scheme.lower()
    extra: dict[str, Any] = dict(parse_qsl(parts.query, keep_blank_values=True))
    if "__extra__" in extra:
        extra = json_object(extra["__extra__"], f"{source}: __extra__")
    return Endpoint(
        conn_type=_SCHEME_TO_CONN_TYPE.get(scheme, scheme.replace("-", "_")),
        host=unquote(parts.hostname) if parts.hostname else None,
        port=port,
        login=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        schema=unquote(parts.path.lstrip("/")) or None,
        extra=extra,
    )


def json_object(text: str, where: str, error: type[InputError] = ConnectionNotFoundError) -> dict[str, Any]:
    """A setting given as a JSON string (a connection's extra, a backend's kwargs): it must be a JSON
    object; otherwise `error`, in one line that names `where` and never echoes the text."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise error(f"{where} is not valid JSON ({err.msg} at character {err.pos}): "
                    f"give a JSON object, e.g. {{\"key\": \"value\"}}") from None
    if not isinstance(value, dict):
        raise error(f"{where} is a JSON {type(value).__name__}, not an object: "
                    f"give a JSON object, e.g. {{\"key\": \"value\"}}")
    return value


def parse_connection_value(value: str, source: str = "the connection") -> Endpoint:
    """Parse the value of an AIRFLOW_CONN_* variable: a URI or Airflow's JSON form. `source` (the
    variable's name) is what error messages name; they never quote the value, which holds a password."""
    value = value.strip()
    if value.startswith("{"):
        try:
            data = json.loads(value)
        except json.JSONDecodeError as err:
            raise ConnectionNotFoundError(f"{source}: connection JSON does not parse: {err.msg} "
                                          f"at character {err.pos}") from None
        extra = data.get("extra") or {}
        if isinstance(extra, str):
            extra = json_object(extra, f"{source}: extra") if extra.strip() else {}
        elif not isinstance(extra, dict):
            raise ConnectionNotFoundError(f"{source}: extra is a JSON {type(extra).__name__}, not an object")
        return Endpoint(
            conn_type=data.get("conn_type", ""),
            host=data.get("host"),
            port=_json_port(data.get("port"), source),
            login=data.get("login"),
            password=data.get("password"),
            schema=data.get("schema"),
            extra=extra,
        )
    return parse_uri(value, source)


def _json_port(port: Any, source: str) -> int | None:
    if port is None or port == "":
        return None
    if isinstance(port, str) and re.fullmatch(r"[0-9]{1,5}", port.strip()):
        port = int(port)
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
        raise ConnectionNotFoundError(f"{source}: the port is not a number 0..65535 (give an integer)")
    return port


def _from_airflow(conn_id: str) -> Endpoint | None:
    try:
        from airflow.sdk import BaseHook
        from airflow.sdk.exceptions import AirflowNotFoundException
    except ImportError:  # drctl on a machine without Airflow
        return None
    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None
    return Endpoint(
        conn_type=conn.conn_type or "",
        host=conn.host,
        port=conn.port,
        login=conn.login,
        password=conn.password,
        schema=conn.schema,
        extra=conn.extra_dejson,
    )


# Extras whose names hold one of these words hold a secret (an HTTP connection's `Authorization` header, a
# kubeconfig's token or client key, a service-account key, a SAS).
_SECRET_KEY_WORDS = ("connection_string", "sas", "key", "secret", "token", "password", "authorization", "kube_config",
                     "credential")
_SECRET_PARTS = re.compile(r"(?:AccountKey|SharedAccessSignature|sig)=([^;&]+)", re.IGNORECASE)


def mask_in_airflow(endpoint: Endpoint) -> None:
    """Register an endpoint's secrets with Airflow's log masker (when running inside Airflow): the
    password, and the key or SAS inside an Azure connection string, which may be logged alone."""
    if not running_in_airflow():
        return
    from airflow.sdk.log import mask_secret

    if endpoint.password:
        mask_secret(endpoint.password)
    for key, value in endpoint.extra.items():
        if isinstance(value, str) and value and any(w in key.lower() for w in _SECRET_KEY_WORDS):
            mask_secret(value)
            for part in _SECRET_PARTS.findall(value):
                mask_secret(part)


def get_endpoint(ref: str) -> Endpoint:
    """Resolve a URI or a connection id; a missing id raises an error that says how to define it."""
    if "://" in ref:
        endpoint = parse_uri(ref)
        mask_in_airflow(endpoint)
        return endpoint
    from multicloud_dr import secrets_backend  # outside Airflow: AIRFLOW_CONN_<ID>, then the secrets backend

    in_airflow = _airflow_resolves()
    value = os.environ.get(env_var_name(ref))
    if value and not in_airflow:
        return parse_connection_value(value, env_var_name(ref))
    endpoint = _from_airflow(ref) if in_airflow else secrets_backend.endpoint_from_backend(ref)
    if endpoint is None and value:
        endpoint = parse_connection_value(value, env_var_name(ref))
    if endpoint is None:
        raise ConnectionNotFoundError(
            f"no connection {ref!r}: create it in Airflow (Admin -> Connections), or export "
            f"{env_var_name(ref)}=<uri>, or pass a URI instead of a connection id "
            f"(for the local lab: `drctl lab up` then `. .lab/env`)"
        )
    mask_in_airflow(endpoint)
    return endpoint


def hooks_apply(ref: str) -> bool:
    """True when `ref` is a connection id and this process runs inside Airflow: then the provider's hook makes
    the client (a URI, or drctl, never goes through a hook)."""
    return "://" not in ref and _airflow_resolves()


def _airflow_resolves() -> bool:
    """Whether Airflow's own lookup (and hooks) apply: inside Airflow, and not drctl that imported Airflow
    only to reach a secrets backend."""
    from multicloud_dr import secrets_backend

    return running_in_airflow() and not secrets_backend.imported_airflow()


# -- The declarative part: what each connection type reads, what its SDK and Terraform get -----------------


@dataclass(frozen=True)
class Setting:
    """One setting of a connection type: where it is read, and the SDK keyword and Terraform variables it becomes.

    Read from the connection's `field` (login, password, host, schema or port) when that is set, else from the
    extra `name`, then from each of `aliases`; each extra also in the providers' old prefixed spelling
    `extra__<conn_type>__<key>` when the table allows it. Empty values count as unset, as in the hooks.
    `kind`: str or object (taken as given), bool ("true"/"false" accepted), int, or dict (a JSON object, given
    as one or as its text)."""

    name: str
    field: str | None = None
    aliases: tuple[str, ...] = ()
    kwarg: str | None = None
    env: tuple[str, ...] = ()
    kind: type = str

    @property
    def extra_names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


@dataclass(frozen=True)
class Mode:
    """One way of authenticating. A table's modes are tried in the order of the provider's hook; the first
    whose `requires` are all set is the connection's mode. Settings named in no mode apply in every mode."""

    name: str
    requires: tuple[str, ...] = ()
    uses: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()   # constant Terraform variables of the mode, e.g. ARM_USE_MSI=true

    @property
    def settings(self) -> tuple[str, ...]:
        return (*self.requires, *self.uses)


def _is_set(value: Any) -> bool:
    return value is not None and value != "" and value is not False


@dataclass(frozen=True)
class Table:
    """The settings and authentication modes of one connection type (its first `conn_types` entry; the others
    are accepted spellings)."""

    conn_types: tuple[str, ...]
    settings: tuple[Setting, ...]
    modes: tuple[Mode, ...] = (Mode("default"),)
    prefixed: bool = True    # the provider also reads extra__<conn_type>__<key>

    @property
    def conn_type(self) -> str:
        return self.conn_types[0]

    def setting(self, name: str) -> Setting:
        return next(s for s in self.settings if s.name == name)

    def spellings(self, setting: Setting) -> list[str]:
        """The extra keys `setting` is read from, in order."""
        names = setting.extra_names
        return [k for name in names for k in ((name, f"extra__{self.conn_type}__{name}") if self.prefixed else (name,))]

    def extra_keys(self) -> set[str]:
        """Every extra key a setting is read from (the other extras are not settings)."""
        return {k for s in self.settings for k in self.spellings(s)}

    def read(self, endpoint: Endpoint) -> dict[str, Any]:
        """The settings that are set, by name, converted to their kind."""
        values: dict[str, Any] = {}
        for setting in self.settings:
            found = [(setting.field, getattr(endpoint, setting.field))] if setting.field else []
            found += [(f"extra {key}", endpoint.extra.get(key)) for key in self.spellings(setting)]
            where, value = next(((w, v) for w, v in found if v is not None and v != ""), (None, None))
            if where is not None:
                values[setting.name] = _convert(value, setting.kind, f"{endpoint.describe()}: {where}")
        return values

    def mode(self, values: Mapping[str, Any]) -> Mode:
        return next((m for m in self.modes if all(_is_set(values.get(r)) for r in m.requires)), self.modes[-1])

    def active(self, mode: Mode) -> list[Setting]:
        """The settings that apply in `mode`: the mode's own and those of no mode."""
        in_modes = {name for m in self.modes for name in m.settings}
        return [s for s in self.settings if s.name in mode.settings or s.name not in in_modes]

    def kwargs(self, values: Mapping[str, Any], mode: Mode) -> dict[str, Any]:
        """SDK keyword -> value, for the settings that apply in `mode` and have a keyword."""
        return {s.kwarg: values[s.name] for s in self.active(mode) if s.kwarg and s.name in values}

    def env(self, values: Mapping[str, Any], mode: Mode) -> dict[str, str]:
        """Terraform variable -> value, for the settings that apply in `mode`, then the mode's constants."""
        env = {name: _env_text(values[s.name]) for s in self.active(mode) if s.name in values for name in s.env}
        return env | dict(mode.env)


def _convert(value: Any, kind: type, where: str) -> Any:
    if kind in (str, object):
        return value
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise ConfigError(f"{where} is not true or false")
    if kind is int:
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where} is not an integer") from None
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        return json_object(value, where, ConfigError)
    raise ConfigError(f"{where} is a {type(value).__name__}, not a JSON object")


def _env_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value) if isinstance(value, dict | list) else str(value)


class ConnectionType:
    """One resolved connection of a type: its endpoint, the settings its table reads, and whether the provider's
    hook makes its clients (inside Airflow, for a connection id). Subclasses set `table` and make the clients."""

    table: ClassVar[Table]
    needs: ClassVar[str]   # what the type is for, in error messages: "an Azure Blob Storage connection"

    def __init__(self, endpoint: Endpoint, conn_id: str | None = None, *, through_hook: bool = False) -> None:
        self.endpoint = endpoint
        self.conn_id = conn_id
        self.through_hook = through_hook and conn_id is not None
        self.values = self.table.read(endpoint)

    @classmethod
    def from_ref(cls, ref: str | Endpoint | ConnectionType, purpose: str | None = None) -> Self:
        """The connection `ref` names: a connection id, a URI, or an `Endpoint` (never through a hook). A
        connection of another type is refused with a message naming `purpose` (default: the type's use)."""
        if isinstance(ref, cls):
            return ref
        if isinstance(ref, ConnectionType):
            ref = ref.endpoint
        if isinstance(ref, Endpoint):
            conn = cls(ref)
        else:
            conn = cls(get_endpoint(ref), None if "://" in ref else ref, through_hook=hooks_apply(ref))
        if conn.endpoint.conn_type and conn.endpoint.conn_type not in cls.table.conn_types:
            raise ConfigError(f"{purpose or cls.needs} needs a connection of type "
                              f"{' or '.join(sorted(cls.table.conn_types))}, got {conn.endpoint.describe()}: "
                              f"pass {cls.needs}")
        return conn

    @property
    def mode(self) -> Mode:
        return self.table.mode(self.values)

    def terraform_env(self) -> dict[str, str]:
        """The environment variables Terraform's provider and state backend read for this connection."""
        return self.table.env(self.values, self.mode)

    def __repr__(self) -> str:
        hook = ", through the provider's hook" if self.through_hook else ""
        return f"{type(self).__name__}({self.endpoint.describe()}, mode {self.mode.name}{hook})"
