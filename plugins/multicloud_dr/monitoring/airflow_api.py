"""Reading Airflow's metadata through its public REST API (/api/v2), as the signed-in user: the page forwards the
caller's own token, so it shows only what that user may read, and never opens the metadata database itself."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import requests

from multicloud_dr.exceptions import DrError

TIMEOUT = (2.0, 5.0)        # connect, read: the page must load in about a second
PAGE_LIMIT = 100            # Airflow's default maximum_page_limit


class AirflowApiError(DrError):
    """The REST API refused or did not answer."""


def path(*parts: str) -> str:
    return "/".join(quote(str(p), safe="") for p in parts)


class AirflowApi:
    def __init__(self, base_url: str, token: str, session: requests.Session | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        from multicloud_dr.connections.http import bearer_session

        self.session = session or bearer_session(token)

    def get(self, route: str, **params: Any) -> dict[str, Any]:
        url = f"{self.base_url}/api/v2/{route.lstrip('/')}"
        try:
            response = self.session.get(url, params={k: v for k, v in params.items() if v is not None},
                                        timeout=TIMEOUT)
        except requests.RequestException as err:
            raise AirflowApiError(f"Airflow's REST API at {self.base_url} did not answer: {err}") from None
        if response.status_code != 200:
            raise AirflowApiError(f"GET /api/v2/{route} answered {response.status_code}: {response.text[:200]}")
        return response.json()

    def get_all(self, route: str, key: str, *, most: int = 20 * PAGE_LIMIT, **params: Any) -> list[dict[str, Any]]:
        """Every item of a paged list (`key` holds them), up to `most`."""
        items: list[dict[str, Any]] = []
        while len(items) < most:
            page = self.get(route, limit=PAGE_LIMIT, offset=len(items), **params)
            batch = page.get(key) or []
            items += batch
            if len(batch) < PAGE_LIMIT or len(items) >= int(page.get("total_entries", 0)):
                break
        return items[:most]

    def ui(self, *parts: str) -> str:
        """A link into the Airflow UI (relative to the site, so it works behind any proxy)."""
        return "/" + "/".join(quote(str(p), safe="") for p in parts)
