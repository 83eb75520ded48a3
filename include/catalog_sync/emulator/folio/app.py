"""The FOLIO emulator's ASGI app: Okapi's tenant check, mod-login, and the storage routes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email.utils import format_datetime
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from catalog_sync.emulator.faultgate import ASGIApp, FaultGate
from catalog_sync.emulator.folio.control import register_control
from catalog_sync.emulator.folio.errors import FolioError, plain, unprocessable
from catalog_sync.emulator.folio.inventory import register_inventory
from catalog_sync.emulator.folio.refdata import register_refdata
from catalog_sync.emulator.folio.srs import register_srs
from catalog_sync.emulator.folio.srs_batch import register_srs_batch
from catalog_sync.emulator.folio.state import FolioConfig, FolioState, IssuedTokens, TokenCheck

ACCESS_COOKIE = "folioAccessToken"
REFRESH_COOKIE = "folioRefreshToken"
# Okapi's answer when no tenant is named: it falls back to its built-in supertenant.
SUPERTENANT = "supertenant"
_STORAGE_PREFIXES = (
    "/instance-storage/",
    "/holdings-storage/",
    "/item-storage/",
    "/source-storage/",
)


# RMB and Okapi answer every error but 422 as text/plain (raml-util rtypes), faults included:
# a client that expects Koha's JSON here would misread FOLIO's real 500s.
FOLIO_FAULT_BODIES: dict[int, tuple[str, bytes]] = {
    500: ("text/plain", b"Internal Server Error"),
    502: ("text/plain", b"Bad Gateway"),
    503: ("text/plain", b"Service Unavailable"),
    504: ("text/plain", b"Gateway Timeout"),
}


def build_folio_app(config: FolioConfig) -> ASGIApp:
    """Fault gate (rate limit, faults) in front of every route but /_emulator/."""
    state = FolioState(config)
    return FaultGate(create_folio_api(state), state, gated="/", bodies=FOLIO_FAULT_BODIES)


class Okapi:
    """What Okapi and mod-authtoken check before a module sees a request."""

    def __init__(self, state: FolioState) -> None:
        self.state = state

    def tenant(self, request: Request) -> str:
        tenant = request.headers.get("x-okapi-tenant")
        if not tenant:
            # Okapi routes a request without a tenant to its supertenant, which has no
            # storage modules enabled (okapi/doc/guide.md, "Creating a tenant").
            raise plain(
                404,
                f"No suitable module found for path {request.url.path} for tenant {SUPERTENANT}",
            )
        if tenant not in self.state.config.tenants:
            # Okapi's answer for a tenant it does not know (its ProxyService, as read in Okapi's
            # source; ../shared/reference does not quote it, so the client keys on the 404 at
            # login, not on this wording alone).
            raise plain(404, f"No such Tenant {tenant}")
        return tenant

    def authorize(self, request: Request, permission: str) -> str:
        """The tenant, once the access token is valid for it (else mod-authtoken's answer)."""
        tenant = self.tenant(request)
        token = _token(request)
        check = self.state.check_access(token, tenant)
        if check is TokenCheck.OK:
            return tenant
        self.state.counters["auth_failures"] += 1
        if check is TokenCheck.MISSING:
            raise plain(403, f"Token missing, access requires permission: {permission}")
        if check is TokenCheck.EXPIRED:
            raise plain(401, "Access token has expired")
        raise plain(401, "Invalid token")


def _token(request: Request) -> str | None:
    """X-Okapi-Token, Authorization: Bearer or the access cookie; conflicting ones are refused."""
    found = set()
    if request.headers.get("x-okapi-token"):
        found.add(request.headers["x-okapi-token"])
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        found.add(value.strip())
    if request.cookies.get(ACCESS_COOKIE):
        found.add(request.cookies[ACCESS_COOKIE])
    if len(found) > 1:
        raise plain(400, "X-Okapi-Token is not equal to Authorization token")
    return found.pop() if found else None


def create_folio_api(state: FolioState) -> FastAPI:
    store = state.store
    okapi = Okapi(state)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        store.close()  # a clean stop checkpoints the WAL into the database file

    app = FastAPI(title="Catalog Sync ILS emulator (FOLIO)", openapi_url=None, lifespan=lifespan)

    @app.exception_handler(FolioError)
    async def folio_error(request: Request, exc: FolioError) -> Response:
        if isinstance(exc.body, dict):
            return JSONResponse(exc.body, status_code=exc.status)
        return PlainTextResponse(exc.body, status_code=exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def routing_error(request: Request, exc: StarletteHTTPException) -> Response:
        tenant = request.headers.get("x-okapi-tenant") or SUPERTENANT
        if exc.status_code == 404 and not request.url.path.startswith(_STORAGE_PREFIXES):
            text = f"No suitable module found for path {request.url.path} for tenant {tenant}"
            return PlainTextResponse(text, status_code=404)
        return PlainTextResponse(str(exc.detail), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def unhandled(request: Request, exc: Exception) -> Response:
        return PlainTextResponse("Internal server error", status_code=500)

    def with_cookies(response: Response, tokens: IssuedTokens) -> Response:
        # mod-login sends the tokens only as cookies (login.raml's Set-Cookie example).
        for name, value, expires, path in (
            (ACCESS_COOKIE, tokens.access, tokens.access_expires, "/"),
            (REFRESH_COOKIE, tokens.refresh, tokens.refresh_expires, "/authn"),
        ):
            max_age = state.config.access_ttl if name == ACCESS_COOKIE else state.config.refresh_ttl
            response.headers.append(
                "set-cookie",
                f"{name}={value}; Max-Age={max_age}; "
                f"Expires={format_datetime(expires, usegmt=True)}; Path={path}; Secure; "
                "HTTPOnly; SameSite=Lax",
            )
        return response

    def expiry_body(tokens: IssuedTokens) -> dict[str, str]:
        return {
            "accessTokenExpiration": tokens.access_expires.isoformat().replace("+00:00", "Z"),
            "refreshTokenExpiration": tokens.refresh_expires.isoformat().replace("+00:00", "Z"),
        }

    @app.post("/authn/login-with-expiry")
    async def login_with_expiry(request: Request) -> Response:
        tenant = okapi.tenant(request)
        try:
            body: Any = json.loads(await request.body())
        except json.JSONDecodeError as exc:
            raise plain(400, "Bad request") from exc
        if not isinstance(body, dict):
            raise plain(400, "Bad request")
        if not body.get("username") and not body.get("userId"):
            raise plain(400, "You must provide a username or userId")
        if not body.get("password"):
            raise plain(400, "You must provide a password")
        if not state.credentials_ok(str(body.get("username", "")), str(body["password"])):
            state.counters["auth_failures"] += 1
            raise unprocessable(
                [
                    {
                        "message": "Wrong username or wrong password or account blocked",
                        "type": "error",
                        "code": "wrong.username.or.wrong.password.or.account.blocked",
                    }
                ]
            )
        tokens = state.issue(tenant)
        return with_cookies(JSONResponse(expiry_body(tokens), status_code=201), tokens)

    @app.post("/authn/refresh")
    async def refresh(request: Request) -> Response:
        tenant = okapi.tenant(request)
        token = request.cookies.get(REFRESH_COOKIE)
        if not token:
            raise plain(400, "No refresh token")
        if not state.use_refresh(token, tenant):
            state.counters["auth_failures"] += 1
            raise unprocessable([{"message": "Invalid token", "type": "error", "code": "-1"}])
        tokens = state.issue(tenant)
        return with_cookies(JSONResponse(expiry_body(tokens), status_code=201), tokens)

    @app.post("/authn/logout")
    async def logout(request: Request) -> Response:
        okapi.tenant(request)
        token = request.cookies.get(REFRESH_COOKIE)
        if not token:
            raise plain(400, "No refresh token")
        state.refresh.pop(token, None)
        return Response(status_code=204)

    register_inventory(app, state, okapi)
    register_refdata(app, state, okapi)
    register_srs(app, state, okapi)
    register_srs_batch(app, state, okapi)
    register_control(app, state)
    return app
