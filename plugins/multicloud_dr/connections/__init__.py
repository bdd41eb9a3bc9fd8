"""Resolve a connection reference (a URI or an Airflow connection id) to an `Endpoint`.

Every command takes `URI_OR_CONN_ID`. Inside Airflow a connection id goes through Airflow's own
lookup (so secrets backends work). Outside Airflow (`drctl` on a break-glass shell) the same id is
read from the `AIRFLOW_CONN_<ID>` variable that Airflow itself would read, without importing
Airflow: the import costs seconds, and Airflow may be the thing that is broken.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from multicloud_dr.exceptions import ConnectionNotFoundError, InputError

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

DEFAULT_CONN_IDS = (
    MYSQL_PRIMARY,
    MYSQL_REPLICA,
    MYSQL_DR,
    POSTGRES_PRIMARY,
    POSTGRES_STANDBY,
    AZURE_BLOB_DR,
    AWS_PRIMARY,
    GCS_DR,
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
        if isinstance(value, str) and value and any(w in key.lower() for w in ("connection_string", "sas", "key",
                                                                               "secret", "token", "password")):
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

    in_airflow = running_in_airflow() and not secrets_backend.imported_airflow()
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
