"""The lab's application: a small "pet clinic" web service on the sample database.

It plays the 3-tier application the DR plan protects: `app-primary` (the application on EKS, on
mysql-primary) and `app-dr` (the application on AKS, on mysql-dr). Each is one process:

    python -m multicloud_dr.lab.app --port PORT --site primary|dr

with its database settings in the environment, as a Kubernetes Deployment gets them from its ConfigMap and
Secret: DB_HOST, DB_PORT, DB_NAME, DB_USER, DB_PASSWORD (never argv) and DB_SSL_CA (the CA the server's
certificate is verified against, host name included; the DR server accepts TLS only).

- `GET /health`: 200 only when the database answers a real query on the sample schema and is writable
  (`@@global.read_only = 0`): a site whose database is a read-only replica or fenced is not a site users can
  be sent to. 503 otherwise, with the reason. This is what load balancers, the traffic switch's health gate
  and Cloudflare's monitors probe.
- `GET /owners`: the first 50 owners (name, city, number of pets) as HTML; `?format=json` as JSON.

A connection per request with short timeouts: a database that hangs makes /health fail within seconds
instead of piling up threads, and a failover that moves the database behind the app needs no reconnect logic.
"""

from __future__ import annotations

import argparse
import contextlib
import html
import json
import logging
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pymysql

from multicloud_dr.backup import source
from multicloud_dr.connections import Endpoint
from multicloud_dr.exceptions import ConfigError, DrError

log = logging.getLogger("multicloud_dr.lab.app")

SITES = ("primary", "dr")
OWNERS_PAGE = 50
CONNECT_TIMEOUT = 3     # seconds: a health probe must answer well within its own timeout
QUERY_TIMEOUT = 5


@dataclass(frozen=True)
class AppSettings:
    """Which site this process plays and how it reaches its database."""

    site: str
    database: Endpoint

    @classmethod
    def from_env(cls, site: str, environ: Mapping[str, str] = os.environ) -> AppSettings:
        if site not in SITES:
            raise ConfigError(f"--site is {site!r}: give one of {', '.join(SITES)}")
        missing = [name for name in ("DB_HOST", "DB_NAME", "DB_USER") if not environ.get(name)]
        if missing:
            raise ConfigError(f"{', '.join(missing)} not set: the app reads its database from DB_HOST, DB_PORT, "
                              f"DB_NAME, DB_USER, DB_PASSWORD and DB_SSL_CA (a ConfigMap and Secret in Kubernetes)")
        port = environ.get("DB_PORT", "3306")
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"DB_PORT is {port!r}: give a port number 1..65535")
        ca = environ.get("DB_SSL_CA")
        # A CA verifies the server's certificate and its host name (as the lab's connections do); without
        # one the driver's default applies, which a server that requires TLS refuses.
        extra = {"ssl": {"ca": ca}, "ssl_mode": "VERIFY_IDENTITY"} if ca else {}
        return cls(site, Endpoint("mysql", host=environ["DB_HOST"], port=int(port), login=environ["DB_USER"],
                                  password=environ.get("DB_PASSWORD", ""), schema=environ["DB_NAME"], extra=extra))


class ClinicDatabase:
    """The sample database as the application uses it."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    @property
    def where(self) -> str:
        return f"{self.endpoint.host}:{self.endpoint.port}/{self.endpoint.schema}"

    def describe(self) -> dict[str, Any]:
        return {"host": self.endpoint.host, "port": self.endpoint.port, "name": self.endpoint.schema}

    @contextlib.contextmanager
    def cursor(self) -> Iterator[pymysql.cursors.Cursor]:
        conn = source.connect(self.endpoint, self.endpoint.schema, connect_timeout=CONNECT_TIMEOUT,
                              read_timeout=QUERY_TIMEOUT, write_timeout=QUERY_TIMEOUT)
        with contextlib.closing(conn), conn.cursor() as cur:
            yield cur

    def health(self) -> dict[str, Any]:
        """The /health body. `status` is "ok" only when a real query on the schema answered and the server
        takes writes."""
        read_only: bool | None = None
        owners: int | None = None
        error: str | None = None
        try:
            with self.cursor() as cur:
                cur.execute("SELECT @@global.read_only")
                read_only = bool(cur.fetchone()[0])
                cur.execute("SELECT COUNT(*) FROM owners")
                owners = int(cur.fetchone()[0])
        except (DrError, pymysql.MySQLError) as err:
            error = self.explain(err)
        if error is None and read_only:
            error = (f"database {self.where} is read-only (@@global.read_only = 1): this site's database is not "
                     f"the writable one (a replica, or fenced); promote it or send traffic to the other site")
        return {"status": "ok" if error is None else "failing", "database": self.describe(),
                "read_only": read_only, "owners": owners, "error": error,
                "checked_at": datetime.now(UTC).isoformat(timespec="milliseconds")}

    def owners(self, limit: int = OWNERS_PAGE) -> list[dict[str, Any]]:
        with self.cursor() as cur:
            # The page first, then its pets: counting pets of every owner would read the whole table.
            cur.execute(
                "SELECT o.id, o.first_name, o.last_name, o.city, COUNT(p.id) "
                "FROM (SELECT id, first_name, last_name, city FROM owners ORDER BY id LIMIT %s) AS o "
                "LEFT JOIN pets AS p ON p.owner_id = o.id "
                "GROUP BY o.id, o.first_name, o.last_name, o.city ORDER BY o.id", (limit,))
            return [{"id": int(i), "first_name": first, "last_name": last, "city": city, "pets": int(pets)}
                    for i, first, last, city, pets in cur.fetchall()]

    def explain(self, err: Exception) -> str:
        """One line for an operator; never the password (the driver's messages do not hold it: kept so)."""
        if isinstance(err, DrError):
            text = str(err)
        elif isinstance(err, pymysql.MySQLError) and len(err.args) >= 2:
            text = f"query on {self.where} failed: MySQL error {err.args[0]}: {err.args[1]}"
            if err.args[0] == 1146:
                text += "; the sample schema is missing: restore the database (or `drctl lab up` seeds it)"
        else:
            text = f"query on {self.where} failed: {err}"
        text = " ".join(text.split())
        password = self.endpoint.password
        return text.replace(password, "***") if password else text


class ClinicServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], settings: AppSettings) -> None:
        super().__init__(address, ClinicHandler)
        self.settings = settings
        self.database = ClinicDatabase(settings.database)


class ClinicHandler(BaseHTTPRequestHandler):
    server: ClinicServer
    server_version = "petclinic-lab/1"

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if url.path == "/health":
            self._health()
        elif url.path == "/owners":
            self._owners(as_json=query.get("format") == ["json"])
        elif url.path == "/":
            self._send(HTTPStatus.OK, "text/html; charset=utf-8", self._page(
                "Pet clinic", '<p><a href="/owners">Owners</a> &middot; <a href="/health">Health</a></p>'))
        else:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no page {url.path}: try /owners or /health"})

    def _health(self) -> None:
        body = {"site": self.server.settings.site, **self.server.database.health()}
        self._json(HTTPStatus.OK if body["status"] == "ok" else HTTPStatus.SERVICE_UNAVAILABLE, body)

    def _owners(self, as_json: bool) -> None:
        database = self.server.database
        try:
            owners = database.owners()
        except (DrError, pymysql.MySQLError) as err:
            error = database.explain(err)
            if as_json:
                self._json(HTTPStatus.SERVICE_UNAVAILABLE, {"site": self.server.settings.site, "error": error})
            else:
                self._send(HTTPStatus.SERVICE_UNAVAILABLE, "text/html; charset=utf-8",
                           self._page("Owners unavailable", f"<p>{html.escape(error)}</p>"))
            return
        if as_json:
            self._json(HTTPStatus.OK, {"site": self.server.settings.site, "database": database.describe(),
                                       "owners": owners})
            return
        rows = "".join(
            f"<tr><td>{html.escape(o['first_name'])} {html.escape(o['last_name'])}</td>"
            f"<td>{html.escape(o['city'])}</td><td>{o['pets']}</td></tr>" for o in owners)
        self._send(HTTPStatus.OK, "text/html; charset=utf-8", self._page(
            "Owners", f"<p>The first {len(owners)} owners, from {html.escape(database.where)}.</p>"
                      f"<table><thead><tr><th>Name</th><th>City</th><th>Pets</th></tr></thead>"
                      f"<tbody>{rows}</tbody></table>"))

    def _page(self, title: str, body: str) -> str:
        site = html.escape(self.server.settings.site)
        return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)} - "
                f"pet clinic ({site})</title></head><body><h1>{html.escape(title)}</h1>"
                f"<p>Site: <strong>{site}</strong></p>{body}</body></html>")

    def _json(self, status: HTTPStatus, body: dict[str, Any]) -> None:
        self._send(status, "application/json", json.dumps(body))

    def _send(self, status: HTTPStatus, content_type: str, text: str) -> None:
        data = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # Load balancers, monitors and the lab probe /health every second or so: only failures are worth a line.
        if not (self.path.startswith("/health") and str(code) == "200"):
            super().log_request(code, size)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m multicloud_dr.lab.app", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--site", choices=SITES, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        settings = AppSettings.from_env(args.site)
    except ConfigError as err:
        print(f"petclinic app: {err}", file=sys.stderr)
        return 2
    server = ClinicServer((args.host, args.port), settings)
    log.info("pet clinic (%s) on http://%s:%d, database %s", args.site, args.host, args.port,
             server.database.where)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
