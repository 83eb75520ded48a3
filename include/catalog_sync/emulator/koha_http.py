"""What every Koha route shares: error answers, auth, header validation, pagination, fencing."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import Request

from catalog_sync.emulator.query import MATCH_VALUES
from catalog_sync.emulator.records import JSON, READ_TYPES, media_type
from catalog_sync.emulator.state import EmulatorState
from catalog_sync.emulator.store import WriteContext

API = "/api/v1"
# Emulator only (Koha has no such check): sent by catalog_sync's Koha adapter inside a record
# lease as "scope=token, scope=token"; a token older than one already seen gets 409.
FENCE_HEADER = "x-catalog-sync-fence"
PAGE_PARAMS = frozenset({"_page", "_per_page", "_match", "_order_by"})
SCHEMAS = ("MARC21", "UNIMARC")


class KohaError(Exception):
    """An answer with Koha's status and body."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


def openapi_error(path: str, message: str, status: int = 400) -> KohaError:
    """Mojolicious::Plugin::OpenAPI's validation error shape."""
    return KohaError(status, {"errors": [{"message": message, "path": path}], "status": status})


def not_found(what: str) -> KohaError:
    return KohaError(404, {"error": f"{what} not found", "error_code": "not_found"})


def invalid_parameter(path: str, message: str) -> KohaError:
    """Koha's BadParameter answer (Plugin/Exceptions.pm)."""
    return KohaError(
        400,
        {
            "error": "Invalid parameter value",
            "error_code": "invalid_parameter_value",
            "path": path,
            "message": message,
        },
    )


INTERNAL_ERROR = {
    "error": "Something went wrong, check Koha logs for details.",
    "error_code": "internal_server_error",
}


def _integer_header(request: Request, name: str) -> None:
    value = request.headers.get(name)
    if value is not None and not value.strip().lstrip("-").isdigit():
        raise openapi_error(f"/{name}", "Expected integer - got string.")


@dataclass
class KohaRoutes:
    """Helpers bound to one emulator's state, used by every route module."""

    state: EmulatorState

    def authorize(self, request: Request, edit: bool = False) -> None:
        header = request.headers.get("authorization")
        is_basic = (header or "").lower().startswith("basic ")
        if is_basic and not self.state.config.basic_auth:
            self.state.counters["auth_failures"] += 1
            raise KohaError(401, {"error": "Basic authentication disabled"})
        principal = self.state.authenticate(header)
        if principal is None:
            self.state.counters["auth_failures"] += 1
            raise KohaError(401, {"error": "Authentication failure."})
        if edit and not principal.can_edit:
            self.state.counters["auth_failures"] += 1
            body = {
                "error": "Authorization failure. Missing required permission(s).",
                "required_permissions": {"editcatalogue": "edit_catalogue"},
            }
            raise KohaError(403, body)

    @staticmethod
    def write_headers(request: Request) -> bool:
        """Validate a biblio write's headers as the spec types them; True if duplicates are
        confirmed (x-confirm-not-duplicate truthy)."""
        schema = request.headers.get("x-record-schema")
        if schema is not None and schema not in SCHEMAS:
            raise openapi_error("/x-record-schema", "Not in enum list: MARC21, UNIMARC.")
        _integer_header(request, "x-confirm-not-duplicate")
        return int(request.headers.get("x-confirm-not-duplicate", "0").strip() or 0) != 0

    @staticmethod
    def known_params(request: Request, allowed: frozenset[str]) -> None:
        """Koha answers an undeclared query parameter with 400 (Auth.pm)."""
        for name in request.query_params:
            if name not in allowed:
                raise openapi_error(f"/query/{name}", "Malformed query string")

    @staticmethod
    def write_context(request: Request, payload: bytes | None) -> WriteContext:
        return WriteContext(
            request.method, request.url.path, request.headers.get("x-request-id"), payload
        )

    def admit(self, request: Request) -> None:
        """Refuse a write fenced by a lease token older than one already seen (emulator only).
        Called just before the store write, with no await between, so no other request can
        slip in between the check and the write."""
        header = request.headers.get(FENCE_HEADER)
        if not header:
            return
        try:
            fences = {
                scope.strip(): int(token)
                for scope, _, token in (part.rpartition("=") for part in header.split(","))
            }
        except ValueError as exc:
            raise openapi_error(f"/header/{FENCE_HEADER}", "Expected scope=integer.") from exc
        stale = self.state.store.admit_fences(fences)
        if stale is not None:
            self.state.counters["fenced_writes"] += 1
            body = {
                "error": f"Stale fencing token for {stale}: a later lease holder has written.",
                "error_code": "stale_fence",
            }
            raise KohaError(409, body)

    def biblio_or_404(self, biblio_id: int) -> sqlite3.Row:
        row = self.state.store.get_biblio(biblio_id)
        if row is None:
            raise not_found("Bibliographic record")
        return row

    def page_args(self, request: Request, extra: frozenset[str] = frozenset()) -> tuple[int, int]:
        """_page and _per_page (-1: everything), after the params and headers are checked."""
        _integer_header(request, "x-koha-request-id")
        self.known_params(request, PAGE_PARAMS | extra)
        params = request.query_params
        # Koha applies _match to column-named query params, which these routes refuse as
        # undeclared; so it never changes a `q`, but its value is still validated.
        match = params.get("_match")
        if match is not None and match not in MATCH_VALUES:
            raise openapi_error(
                "/query/_match", "Not in enum list: contains, exact, starts_with, ends_with."
            )
        values: dict[str, int] = {}
        for name, default in (("_page", 1), ("_per_page", self.state.config.page_size)):
            raw = params.get(name)
            if raw is not None and not raw.strip().lstrip("-").isdigit():
                raise openapi_error(f"/query/{name}", "Expected integer - got string.")
            values[name] = int(raw) if raw is not None else default
        if values["_page"] < 1:
            raise invalid_parameter("/query/_page", "_page must be 1 or more")
        if values["_per_page"] < 1 and values["_per_page"] != -1:
            raise invalid_parameter("/query/_per_page", "_per_page must be -1 or 1 or more")
        return values["_page"], values["_per_page"]

    @staticmethod
    def paginate(
        request: Request, total: int, base_total: int, page: int, per_page: int
    ) -> dict[str, str]:
        """X-Total-Count, X-Base-Total-Count and RFC 5988 Link, as Koha's Pagination plugin."""
        headers = {"X-Total-Count": str(total), "X-Base-Total-Count": str(base_total)}
        if "x-koha-request-id" in request.headers:
            headers["x-koha-request-id"] = request.headers["x-koha-request-id"]
        if per_page < 0:
            return headers
        last = max(1, -(-total // per_page))
        base = str(request.url.remove_query_params(["_page", "_per_page"]))
        sep = "&" if "?" in base else "?"

        def link(target: int, rel: str) -> str:
            query = urlencode({"_page": target, "_per_page": per_page})
            return f'<{base}{sep}{query}>; rel="{rel}"'

        links = []
        if page > 1:
            links.append(link(page - 1, "prev"))
        if page < last:
            links.append(link(page + 1, "next"))
        links += [link(1, "first"), link(last, "last")]
        headers["Link"] = ", ".join(links)
        return headers


def negotiate(accept: str | None) -> str | None:
    """First acceptable media type in the Accept header's order; JSON when anything goes."""
    if not accept:
        return JSON
    for part in accept.split(","):
        wanted = media_type(part)
        if wanted in READ_TYPES:
            return wanted
        if wanted in ("*/*", "application/*"):
            return JSON
    return None
