"""The FastAPI app behind the Disaster recovery page, mounted by Airflow's api-server at /dr (plugins/
dr_page_plugin.py): `GET /dr/` the page, `GET /dr/api/status` its data as JSON.

Airflow serves a plugin's FastAPI app without authentication, so this app checks the caller itself, the same
way Airflow's own API does: a JWT from the configured auth manager, taken from `Authorization: Bearer ...` (a
script's token from `POST /auth/token`) or from the `_token` cookie the Airflow UI keeps for a signed-in user.
No token, or one the auth manager rejects (expired, revoked, forged), answers 401 and shows nothing. The page then
reads Airflow's REST API with that same token, so a user sees only what Airflow lets them see.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.responses import HTMLResponse, JSONResponse

log = logging.getLogger(__name__)

COOKIE = "_token"   # airflow.api_fastapi.auth.managers.base_auth_manager.COOKIE_NAME_JWT_TOKEN


def _token_of(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer ") and header[7:].strip():
        return header[7:].strip()
    return request.cookies.get(COOKIE) or None


async def signed_in(request: Request) -> str:
    """The caller's token, checked by Airflow's auth manager; 401 otherwise."""
    token = _token_of(request)
    if not token:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "sign in to Airflow first (or send a bearer token from "
                                                          "POST /auth/token)", headers={"WWW-Authenticate": "Bearer"})
    from airflow.api_fastapi.app import get_auth_manager

    try:
        await get_auth_manager().get_user_from_token(token)
    except Exception:   # expired, revoked, malformed or forged: all the same to the caller
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "the token is not valid (expired or revoked?): sign in "
                                                          "again", headers={"WWW-Authenticate": "Bearer"}) from None
    return token


def _base_url() -> str:
    """Where this api-server answers its own REST API: [api] base_url (the lab sets it), else the local port."""
    from airflow.configuration import conf

    base = conf.get("api", "base_url", fallback="") or ""
    if base.startswith("http"):
        return base.rstrip("/")
    return f"http://127.0.0.1:{conf.getint('api', 'port', fallback=8080)}{base.rstrip('/')}"


def current_status(token: str) -> dict[str, Any]:
    from multicloud_dr.config import load_topology
    from multicloud_dr.monitoring.airflow_api import AirflowApi
    from multicloud_dr.monitoring.status import build_status

    return build_status(load_topology(), AirflowApi(_base_url(), token))


def create_app() -> FastAPI:
    app = FastAPI(title="multicloud-dr: Disaster recovery", docs_url=None, redoc_url=None, openapi_url=None)

    # Plain `def`: FastAPI runs them on its thread pool, so the REST calls they make to this same api-server are
    # answered by its event loop meanwhile.
    @app.get("/api/status")
    def api_status(token: str = Depends(signed_in)) -> JSONResponse:
        return JSONResponse(current_status(token), headers={"Cache-Control": "no-store"})

    @app.get("/", response_class=HTMLResponse)
    def page(token: str = Depends(signed_in)) -> HTMLResponse:
        from multicloud_dr.monitoring.page import render

        return HTMLResponse(render(current_status(token)), headers={"Cache-Control": "no-store"})

    return app
