"""Structured audit events: ids bound with structlog's contextvars, PII scrubbed by a processor.

Events run through a structlog processor chain (bound ids, timestamp and level, the PII
scrubber) and end as stdlib records of the `catalog_sync.audit` logger in structlog's
ProcessorFormatter shape, so Airflow's task log (structlog) shows each event with its ids and
fields as structured fields; `configure_audit_log(path)` also writes them, one JSON object per
line, to the audit log file.

    configure_audit_log(layout.reports / "audit.jsonl")        # once per process (task)
    audit = get_audit_logger("process_chunk")
    with audit_context(run_id=run_id, vendor="demo", file_sha256=ref.file_sha256,
                       chunk_id=ref.chunk_id):
        audit.info("chunk.started", records=ref.record_count)
        for offset, record in records:
            with audit_context(correlation_id=correlation_id("demo", sha, ref.chunk_id, offset)):
                audit.warning("record.rejected", reason="missing_245")

The ids are structlog contextvars, so Airflow's own log lines in the same task carry them too.
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
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from structlog.contextvars import bind_contextvars, get_contextvars, reset_contextvars
from structlog.typing import EventDict, Processor, WrappedLogger

from catalog_sync.privacy import Scrubber, load_policy

AUDIT_LOGGER = "catalog_sync.audit"
BOUND_KEYS = ("run_id", "vendor", "file_sha256", "chunk_id", "correlation_id")
_EVENT_NAME = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)*")
_KEY = re.compile(r"[a-z][a-z0-9_]*")
_RESERVED = frozenset({"ts", "timestamp", "level", "event", "logger", "message"})

# Which structlog contextvars are audit ids: Airflow binds its own (ti_id, try_number, ...),
# and those stay out of the audit file.
_audit_keys: ContextVar[frozenset[str]] = ContextVar("catalog_sync_audit_keys", default=frozenset())
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


@dataclass(frozen=True)
class AuditBinding:
    """What `bind_audit_context` changed, for `reset_audit_context` to undo."""

    ids: Mapping[str, Token[Any]]
    keys: Token[frozenset[str]]


def bound_context() -> dict[str, str]:
    """The audit ids bound in the current context (task, thread or asyncio task)."""
    ctx, keys = get_contextvars(), _audit_keys.get()
    ordered = [k for k in BOUND_KEYS if k in keys] + sorted(keys.difference(BOUND_KEYS))
    return {k: str(ctx[k]) for k in ordered if k in ctx}


def bind_audit_context(**ids: str | None) -> AuditBinding:
    """Bind ids for later events in this context; None unbinds. Undo with reset_audit_context."""
    for key in ids:
        if not _KEY.fullmatch(key) or key in _RESERVED:
            raise ValueError(f"{key!r} cannot be bound to audit events")
    # structlog treats Ellipsis as "not bound", so None unbinds through the same token.
    tokens = bind_contextvars(**{k: ... if v is None else str(v) for k, v in ids.items()})
    unbound = {k for k, v in ids.items() if v is None}
    keys = (_audit_keys.get() | set(ids)) - unbound
    return AuditBinding(tokens, _audit_keys.set(frozenset(keys)))


def reset_audit_context(binding: AuditBinding) -> None:
    _audit_keys.reset(binding.keys)
    reset_contextvars(**binding.ids)


@contextmanager
def audit_context(**ids: str | None) -> Iterator[None]:
    """Bind ids for the events inside the block; nested blocks add to the outer ones."""
    binding = bind_audit_context(**ids)
    try:
        yield
    finally:
        reset_audit_context(binding)


# The processor chain of an audit event.


def add_audit_fields(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """ts, level, event, logger, then the bound ids, then the event's own fields."""
    event = event_dict.pop("event")
    name = event_dict.pop("logger")
    return {
        "ts": datetime.now(UTC).isoformat(),
        "level": method_name,
        "event": event,
        "logger": name,
        **bound_context(),
        **event_dict,
    }


def scrub_pii(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """The PII scrubbers over every string of the event (keys and values, nested too)."""
    scrubbed = audit_scrubber().scrub_value(dict(event_dict))
    assert isinstance(scrubbed, dict), "a scrubbed dict is a dict"
    return scrubbed


class AuditRecord(dict[str, Any]):
    """An event on its way to stdlib handlers; plain handlers print it as its JSON line."""

    audit_line: str = ""

    def __str__(self) -> str:
        return self.audit_line


def to_stdlib(
    logger: WrappedLogger, method_name: str, event_dict: EventDict
) -> tuple[tuple[AuditRecord], dict[str, Any]]:
    """Hand the event to the stdlib logger as structlog's ProcessorFormatter expects it.

    Airflow's task log handler (a ProcessorFormatter) renders it as structured fields, with
    the `timestamp` key its JSON renderer needs; the audit file writes the event as built.
    """
    record = AuditRecord({"timestamp": event_dict["ts"], **event_dict})
    del record["ts"]
    record.audit_line = _dumps(event_dict)
    extra = {"_logger": logger, "_name": method_name, "audit_event": event_dict}
    return (record,), {"extra": extra}


AUDIT_PROCESSORS: tuple[Processor, ...] = (add_audit_fields, scrub_pii, to_stdlib)


class ScrubFilter(logging.Filter):
    """Rewrites a log record's message (and traceback text) through the PII scrubbers."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, AuditRecord):
            return True  # an audit event, scrubbed by its processor chain already
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
        self._events = structlog.wrap_logger(
            logger, processors=list(AUDIT_PROCESSORS), wrapper_class=structlog.stdlib.BoundLogger
        ).bind(logger=logger.name)

    def event(self, level: int, event: str, /, **fields: object) -> None:
        if not _EVENT_NAME.fullmatch(event):
            raise ValueError(f"audit event name {event!r} must be dotted lower_snake_case")
        if not self.logger.isEnabledFor(level):
            return
        clash = _RESERVED.intersection(fields)
        if clash:
            raise ValueError(f"audit fields {sorted(clash)} are reserved")
        self._events.log(level, event, **fields)

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
