"""A `postgres` connection's client settings for psycopg2, TLS included.

The TLS extras are libpq's own parameters, as Airflow's Postgres provider passes them on: `sslmode`
(disable, allow, prefer, require, verify-ca, verify-full), `sslrootcert` (the CA), `sslcert` and `sslkey`
(a client certificate), `sslcrl`. A root certificate without an `sslmode` means verify-full (libpq's
default, prefer, would verify nothing).
"""

from __future__ import annotations

from typing import Any

import psycopg2

from multicloud_dr.connections import Endpoint
from multicloud_dr.exceptions import ConfigError, TlsError

SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
SSL_KEYS = ("sslmode", "sslrootcert", "sslcert", "sslkey", "sslcrl")


class PostgresConnection:
    """`PostgresConnection(endpoint)`: how psycopg2 reaches its server."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        where = endpoint.describe()
        ssl = {key: str(value) for key in SSL_KEYS if (value := endpoint.extra.get(key)) not in (None, "")}
        mode = ssl.get("sslmode")
        if mode is not None and mode not in SSL_MODES:
            raise ConfigError(f"{where}: extra sslmode is {mode!r}: give one of {', '.join(SSL_MODES)}")
        if "sslkey" in ssl and "sslcert" not in ssl:
            raise ConfigError(f"{where}: extra sslkey is set without sslcert: give the client certificate too")
        if "sslrootcert" in ssl and mode is None:
            ssl["sslmode"] = "verify-full"
        self.ssl = ssl

    def connect_kwargs(self) -> dict[str, Any]:
        """host, port, user, password, dbname (the schema, else postgres) and TLS for `psycopg2.connect`."""
        ep = self.endpoint
        return {"host": ep.host or "127.0.0.1", "port": ep.port or 5432, "user": ep.login, "password": ep.password,
                "dbname": ep.schema or "postgres", **self.ssl}

    def connect(self, **kwargs):
        """`psycopg2.connect(**connect_kwargs() | kwargs)`; a TLS failure becomes one TlsError line saying what
        to fix, any other error is the driver's."""
        try:
            return psycopg2.connect(**(self.connect_kwargs() | kwargs))
        except psycopg2.OperationalError as err:
            message = self.tls_failure(str(err))
            if message:
                raise TlsError(message) from None
            raise

    def tls_failure(self, text: str) -> str | None:
        """What to fix, when libpq's message `text` (from connecting) is about TLS; None otherwise."""
        where, lowered = self.endpoint.describe(), text.lower()
        root = self.ssl.get("sslrootcert")
        if "root certificate file" in lowered and ("does not exist" in lowered or "could not read" in lowered):
            return (f"{where}: the CA in extra sslrootcert ({root or '~/.postgresql/root.crt'}) cannot be read: "
                    f"give a PEM file this process can read")
        if "does not match host name" in lowered:
            return (f"TLS certificate of {where} does not name host {self.endpoint.host}: connect by a name the "
                    f"certificate lists, or set extra sslmode verify-ca to check the CA only")
        if "certificate has expired" in lowered:
            return f"TLS certificate of {where} has expired: renew the server's certificate"
        if "certificate verify failed" in lowered:
            return (f"TLS certificate of {where} not trusted by CA {root or '~/.postgresql/root.crt'}: set extra "
                    f"sslrootcert to the CA that signed the server's certificate")
        if "server does not support ssl" in lowered:
            return (f"{where} does not offer TLS but the connection asks for it (sslmode {self.ssl.get('sslmode')}): "
                    f"set ssl = on on the server, or set extra sslmode prefer")
        if "no pg_hba.conf entry" in lowered and ("no encryption" in lowered or "ssl off" in lowered):
            return (f"the server {where} requires TLS: set the connection's extra sslmode verify-full and "
                    f"sslrootcert (the CA that signed the server's certificate)")
        return None


def session_tls(conn) -> str:
    """The TLS of this session as the server sees it (pg_stat_ssl: "TLSv1.3 TLS_AES_256_GCM_SHA384"), or "off"."""
    with conn.cursor() as cur:
        cur.execute("SELECT ssl, version, cipher FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        row = cur.fetchone()
    return f"{row[1]} {row[2]}" if row and row[0] else "off"
