"""Structured JSON audit events: bound to run, file, chunk and record, scrubbed of PII.

Events are stdlib logging records under the `catalog_sync.audit` logger, so Airflow captures
them into task logs like any log line; `configure_audit_log(path)` also writes them, one JSON
object per line, to the audit log file.

    configure_audit_log(layout.reports / "audit.jsonl")        # once per process (task)
    audit = get_audit_logger("process_chunk")
    with audit_context(run_id=run_id, vendor="demo", file_sha256=ref.file_sha256,
                       chunk_id=ref.chunk_id):
        audit.info("chunk.started", records=ref.record_count)
        for offset, record in records:
            with audit_context(correlation_id=correlation_id("demo", sha, ref.chunk_id, offset)):
                audit.warning("record.rejected", reason="missing_245")

Every string of every event, and every message of any record passing through an audit logger,
goes through the PII scrubbers first (the policy's scrubbers unless `set_audit_scrubber` says
otherwise): a last line of defence, not a licence to log record values.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType

from catalog_sync.privacy import Scrubber, load_policy

AUDIT_LOGGER = "catalog_sync.audit"
BOUND_KEYS = ("run_id", "vendor", "file_sha256", "chunk_id", "correlation_id")
_EVENT_NAME = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)*")
_KEY = re.compile(r"[a-z][a-z0-9_]*")
_RESERVED = frozenset({"ts", "level", "event", "logger", "message"})

_context: ContextVar[Mapping[str, str]] = ContextVar(
    "catalog_sync_audit_context", default=MappingProxyType({})
)
_scrubber_lock = threading.Lock()
_scrubber: Scrubber | None = None


def correlation_id(vendor: str, file_sha256: str, chunk_id: str, offset: int) -> str:
    """The record's correlation id, `vendor:file-hash:chunk:offset`, readable and deterministic.

    The same record of the same file always gets the same id, on any worker and any retry;
    an operator can read from it which file and byte offset the record came from.
    """
    return f"{vendor}:{file_sha256[:12]}:{chunk_id[:8]}:{offset}"


def set_audit_scrubber(scrubber: Scrubber) -> None:
    """Use `scrubber` for every audit event (default: the default policy's scrubbers)."""
    global _scrubber
    with _scrubber_lock:
        _scrubber = scrubber


def audit_scrubber() -> Scrubber:
    global _scrubber
    with _scrubber_lock:
        if _scrubber is None:
            _scrubber = Scrubber.from_policy(load_policy())
        return _scrubber


def bound_context() -> dict[str, str]:
    """The ids bound in the current context (task, thread or asyncio task)."""
    return dict(_context.get())


def bind_audit_context(**ids: str | None) -> Token[Mapping[str, str]]:
    """Bind ids for later events in this context; None unbinds. Undo with reset_audit_context."""
    for key in ids:
        if not _KEY.fullmatch(key) or key in _RESERVED:
            raise ValueError(f"{key!r} cannot be bound to audit events")
    merged = {**_context.get(), **{k: str(v) for k, v in ids.items() if v is not None}}
    for key in (k for k, v in ids.items() if v is None):
        merged.pop(key, None)
    return _context.set(MappingProxyType(merged))


def reset_audit_context(token: Token[Mapping[str, str]]) -> None:
    _context.reset(token)


@contextmanager
def audit_context(**ids: str | None) -> Iterator[None]:
    """Bind ids for the events inside the block; nested blocks add to the outer ones."""
    token = bind_audit_context(**ids)
    try:
        yield
    finally:
        _context.reset(token)


class ScrubFilter(logging.Filter):
    """Rewrites a log record's message (and traceback text) through the PII scrubbers."""

    def filter(self, record: logging.LogRecord) -> bool:
        scrub = audit_scrubber().scrub
        message = record.getMessage()
        record.msg = scrub(message)
        record.args = ()
        if record.exc_info:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return True


_SCRUB_FILTER = ScrubFilter()


class AuditJsonFormatter(logging.Formatter):
    """One JSON object per line: an audit event as emitted, or any other record wrapped as one."""

    def format(self, record: logging.LogRecord) -> str:
        payload = getattr(record, "audit_event", None)
        if not isinstance(payload, dict):
            payload = {
                "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
                "level": record.levelname.lower(),
                "event": "log",
                "logger": record.name,
                **bound_context(),
                "message": record.getMessage(),
            }
            if record.exc_text:
                payload["exception"] = record.exc_text
        return _dumps(audit_scrubber().scrub_value(payload))


def _dumps(payload: object) -> str:
    return json.dumps(payload, ensure_ascii=False, sort_keys=False, default=str)


class AuditLogger:
    """Emits named audit events with the bound ids; get one with `get_audit_logger`."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger

    def event(self, level: int, event: str, /, **fields: object) -> None:
        if not _EVENT_NAME.fullmatch(event):
            raise ValueError(f"audit event name {event!r} must be dotted lower_snake_case")
        if not self.logger.isEnabledFor(level):
            return
        clash = _RESERVED.intersection(fields)
        if clash:
            raise ValueError(f"audit fields {sorted(clash)} are reserved")
        payload: dict[str, object] = {
            "ts": datetime.now(UTC).isoformat(),
            "level": logging.getLevelName(level).lower(),
            "event": event,
            "logger": self.logger.name,
            **_context.get(),
            **fields,
        }
        scrubbed = audit_scrubber().scrub_value(payload)
        line = _dumps(scrubbed)
        # The JSON line is the message, so task logs show the whole event; the file handler
        # writes the same dict. No args: a '%' in a value must not be taken for a format.
        self.logger.log(level, line, extra={"audit_event": scrubbed})

    def debug(self, event: str, /, **fields: object) -> None:
        self.event(logging.DEBUG, event, **fields)

    def info(self, event: str, /, **fields: object) -> None:
        self.event(logging.INFO, event, **fields)

    def warning(self, event: str, /, **fields: object) -> None:
        self.event(logging.WARNING, event, **fields)

    def error(self, event: str, /, **fields: object) -> None:
        self.event(logging.ERROR, event, **fields)


def _audit_root() -> logging.Logger:
    root = logging.getLogger(AUDIT_LOGGER)
    if root.level == logging.NOTSET:
        # Audit events are not debug chatter: keep them even where the root logger says WARNING.
        root.setLevel(logging.INFO)
    return root


def get_audit_logger(name: str) -> AuditLogger:
    """The audit logger `catalog_sync.audit.<name>` (events also reach Airflow's task log)."""
    _audit_root()
    full = name if name.startswith(AUDIT_LOGGER) else f"{AUDIT_LOGGER}.{name}"
    logger = logging.getLogger(full)
    if _SCRUB_FILTER not in logger.filters:
        logger.addFilter(_SCRUB_FILTER)
    return AuditLogger(logger)


class AuditFileHandler(logging.FileHandler):
    """The audit log file: JSON lines, appended, scrubbed."""


def configure_audit_log(path: Path) -> logging.Handler:
    """Also write audit events to `path` as JSON lines; idempotent per path. Returns the handler."""
    path = Path(path).resolve()
    root = _audit_root()
    if _SCRUB_FILTER not in root.filters:
        root.addFilter(_SCRUB_FILTER)
    for handler in root.handlers:
        if isinstance(handler, AuditFileHandler) and Path(handler.baseFilename) == path:
            return handler
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = AuditFileHandler(path, mode="a", encoding="utf-8", delay=True)
    handler.setFormatter(AuditJsonFormatter())
    handler.addFilter(_SCRUB_FILTER)
    root.addHandler(handler)
    return handler


def remove_audit_log(handler: logging.Handler) -> None:
    """Detach and close a handler from `configure_audit_log` (end of task, tests)."""
    logging.getLogger(AUDIT_LOGGER).removeHandler(handler)
    handler.close()
