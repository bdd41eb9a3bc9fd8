"""HTTP connections (`http`): a requests session and base URL for an HTTP API (the Cloudflare API, an app's
health endpoint).

A connection id inside Airflow gets its session from the http provider's `HttpHook`. Everywhere else the
same connection gives the same session, as the hook builds it:

- base URL: host when it holds "://", else `<schema or http>://<host>`, then `:<port>`;
- login / password: HTTP basic auth;
- extras `timeout`, `verify` (or `verify_ssl`), `cert`, `proxies` (or `proxy`), `stream`, `allow_redirects`,
  `max_redirects`, `trust_env`, `check_response` configure requests; every other extra is a request header.
  An API token goes in as a header, e.g. {"Authorization": "Bearer <token>"} for Cloudflare (its value is
  masked in Airflow's logs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from multicloud_dr.connections import ConnectionType, Endpoint, Setting, Table
from multicloud_dr.exceptions import ConfigError

if TYPE_CHECKING:
    import requests

DEFAULT_REDIRECT_LIMIT = 30   # requests' own default, which the hook keeps

HTTP = Table(
    conn_types=("http", "https"),
    prefixed=False,
    settings=(
        Setting("timeout", kind=object),
        Setting("verify", aliases=("verify_ssl",), kind=object),
        Setting("cert", kind=object),
        Setting("proxies", aliases=("proxy",), kind=dict),
        Setting("stream", kind=bool),
        Setting("allow_redirects", kind=bool),
        Setting("max_redirects", kind=int),
        Setting("trust_env", kind=bool),
        Setting("check_response", kind=bool),
        Setting("srv_lookup", kind=bool),
    ),
)


@dataclass
class HttpSession:
    """A configured requests session and the base URL its paths are relative to."""

    session: requests.Session
    base_url: str
    timeout: Any = None
    allow_redirects: bool = True
    check_response: bool = True

    def url(self, path: str) -> str:
        return f"{self.base_url.rstrip('/')}/{path.lstrip('/')}" if path else self.base_url

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """`method` on `path` below the base URL; an HTTP error status raises (unless check_response is false)."""
        kwargs.setdefault("timeout", self.timeout)
        kwargs.setdefault("allow_redirects", self.allow_redirects)
        response = self.session.request(method, self.url(path), **kwargs)
        if self.check_response:
            response.raise_for_status()
        return response


class HttpConnection(ConnectionType):
    table = HTTP
    needs = "an HTTP (http) connection"

    @property
    def base_url(self) -> str:
        host, schema = self.endpoint.host or "", self.endpoint.schema or "http"
        url = host if "://" in host else f"{schema}://{host}"
        return f"{url}:{self.endpoint.port}" if self.endpoint.port else url

    @property
    def headers(self) -> dict[str, str]:
        """The extras that are not settings: request headers, as the hook sends them."""
        return {k: v for k, v in self.endpoint.extra.items() if k not in self.table.extra_keys()}

    def http_session(self) -> HttpSession:
        values = self.values
        options = {"timeout": values.get("timeout"), "allow_redirects": values.get("allow_redirects", True),
                   "check_response": values.get("check_response", True)}
        if self.through_hook:
            from airflow.providers.http.hooks.http import HttpHook

            hook = HttpHook(method="GET", http_conn_id=self.conn_id)
            return HttpSession(hook.get_conn(), hook.base_url, **options)
        import requests
        from requests.auth import HTTPBasicAuth

        if values.get("srv_lookup"):
            raise ConfigError(f"{self.endpoint.describe()}: extra srv_lookup (DNS SRV records) works only inside "
                              f"Airflow (the http provider's hook): outside it, give the host itself")
        session = requests.Session()
        if self.endpoint.login:
            session.auth = HTTPBasicAuth(self.endpoint.login, self.endpoint.password or "")
        session.proxies = values.get("proxies", {})
        session.stream = values.get("stream", False)
        session.verify = values.get("verify", True)
        session.cert = values.get("cert")
        session.max_redirects = values.get("max_redirects", DEFAULT_REDIRECT_LIMIT)
        session.trust_env = values.get("trust_env", True)
        session.headers.update(self.headers)
        return HttpSession(session, self.base_url, **options)


def http_session(ref: str | Endpoint | HttpConnection) -> HttpSession:
    """A session and base URL from an http connection id, URI or Endpoint."""
    return HttpConnection.from_ref(ref).http_session()


def bearer_session(token: str):
    """A requests session that sends `token` as a bearer: for Airflow's own REST API, which the Disaster recovery
    page reads with the signed-in caller's token (monitoring/airflow_api.py) rather than through a connection."""
    import requests

    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    return session
