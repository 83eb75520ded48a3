"""The emulator's HTTP API: Koha's /api/v1 routes we use, plus emulator-only extensions.

Koha's side (biblios.py, items.py, koha_http.py) follows Koha's published REST contract
(../shared/reference/koha, docs/ils-api-notes.md): routes, content types, `q` filtering on
the biblio/biblioitems columns only, headers validated as typed, error bodies, pagination
headers, and records rebuilt on save (999 $c/$d, 005, autoControlNumber's 001).

Emulator-only, and nothing's correctness may rest on them:
- the `x-catalog-sync-fence` header (a write with a stale lease token gets 409 stale_fence;
  a real Koha ignores the header, where it only narrows a window the leases already guard),
- 429 with Retry-After from a token bucket (`--rate-limit`), and injected faults (errors,
  slow answers, dropped connections, downtime, bad bodies: faults.py, faultgate.py),
- the control and audit routes under /_emulator/ (write log, counters, biblios, faults,
  token expiry, reset), which tests use to prove "written exactly once".
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from catalog_sync.emulator import biblios as biblio_routes
from catalog_sync.emulator import items as item_routes
from catalog_sync.emulator.controlroutes import register_control
from catalog_sync.emulator.faultgate import ASGIApp, FaultGate
from catalog_sync.emulator.httpd import RequestLineLimit
from catalog_sync.emulator.koha_http import API, INTERNAL_ERROR, KohaError, KohaRoutes
from catalog_sync.emulator.state import EmulatorConfig, EmulatorState


def build_app(config: EmulatorConfig) -> ASGIApp:
    """The ASGI app to serve: Apache's request-line limit, then the fault gate, in front of the
    Koha routes."""
    state = EmulatorState(config)
    return RequestLineLimit(FaultGate(create_api(state), state), state.counters)


def create_api(state: EmulatorState) -> FastAPI:
    store = state.store

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        store.close()  # a clean stop checkpoints the WAL into the database file

    app = FastAPI(
        title="Catalog Sync ILS emulator (Koha REST API subset)",
        openapi_url=None,
        lifespan=lifespan,
    )

    @app.exception_handler(KohaError)
    async def koha_error(request: Request, exc: KohaError) -> Response:
        return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def routing_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = "Not Found." if exc.status_code == 404 else str(exc.detail)
        body = {
            "errors": [{"message": message, "path": request.url.path}],
            "status": exc.status_code,
        }
        return JSONResponse(body, status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def unhandled(request: Request, exc: Exception) -> Response:
        return JSONResponse(INTERNAL_ERROR, status_code=500)

    koha = KohaRoutes(state)

    # -- OAuth2 ------------------------------------------------------------------------------

    @app.post(f"{API}/oauth/token")
    async def oauth_token(request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8")).items()}
        grant = form.get("grant_type")
        if grant != "client_credentials" or not state.config.oauth2_client_credentials:
            raise KohaError(400, {"error": "Unimplemented grant type"})
        token = state.issue_token(form.get("client_id", ""), form.get("client_secret", ""))
        if token is None:
            state.counters["auth_failures"] += 1
            raise KohaError(403, {"error": "unauthorized_client"})
        body = {"access_token": token, "token_type": "Bearer", "expires_in": state.config.token_ttl}
        return JSONResponse(body)

    biblio_routes.register(app, koha)
    item_routes.register(app, koha)

    # -- emulator control and audit (never rate-limited or faulted) ---------------------------

    def reset() -> None:
        store.reset()

    register_control(app, state, flavour="koha", reset=reset)

    @app.get("/_emulator/biblios")
    async def biblios() -> dict[str, Any]:
        rows = store.holdings_summary()
        return {"count": len(rows), "biblios": rows}

    return app


__all__ = ["KohaError", "build_app", "create_api"]
