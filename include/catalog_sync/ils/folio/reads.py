"""FOLIO's batched read of several biblios: their instances in one CQL retrieve, their MARC in
one SRS fetch by instance ids (FolioAdapter.get_biblios; see ILSClient.get_biblios)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from typing import Any, TypeVar

from catalog_sync.ils.errors import ILSError
from catalog_sync.ils.folio.client import FolioClient
from catalog_sync.ils.folio.records import check_id, srs_marcxml

T = TypeVar("T")
# FolioAdapter._call: a call under the adapter's concurrency bound, transient failures retried.
Call = Callable[[str, Callable[[], Awaitable[T]]], Awaitable[T]]


async def read_biblios(
    client: FolioClient,
    call: Call[Any],
    biblio_ids: Collection[str],
    correlation_id: str,
) -> tuple[dict[str, bytes], dict[str, dict[str, Any]]]:
    """(instance id -> MARCXML of its SRS record, instance id -> the instance as read).

    The instances are what the next update echoes the `_version` of, exactly as get_biblio
    keeps them. An instance without an SRS record, or whose MARC does not read, is left out:
    get_biblio reads it alone and says why.
    """
    ids = sorted(set(biblio_ids))
    for biblio_id in ids:
        check_id(biblio_id)
    if not ids:
        return {}, {}
    instances: list[dict[str, Any]] = await call(
        f"get {len(ids)} instances",
        lambda: client.get_instances(ids, correlation_id=correlation_id),
    )
    held = {str(i["id"]): i for i in instances if str(i.get("id")) in ids}
    if not held:
        return {}, {}
    sources: dict[str, dict[str, Any]] = await call(
        f"fetch {len(held)} source records",
        lambda: client.fetch_source_records(sorted(held), correlation_id=correlation_id),
    )
    copies: dict[str, bytes] = {}
    read: dict[str, dict[str, Any]] = {}
    for instance_id, instance in held.items():
        source = sources.get(instance_id)
        if source is None:
            continue
        try:
            copies[instance_id] = srs_marcxml(source)
        except ILSError:
            continue
        read[instance_id] = instance
    return copies, read
