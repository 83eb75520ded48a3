"""Vendor configuration (include/config/vendors.yaml) as typed, validated models."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from catalog_sync.delivery.models import DeliverySource
from catalog_sync.paths import vendors_file
from catalog_sync.privacy.policy import PiiPolicy, load_policy
from catalog_sync.retention import RetentionPeriods

# 001+003 and 035 are accepted for configs written before, but Koha cannot search them
# (catalog_sync.changes.matching skips them; docs/koha.md): our record-key map covers 001+003.
# `oclc` (035 OCLC numbers) and `hrid` (001 as a FOLIO instance HRID) are searched in FOLIO;
# a vendor of a Koha connection naming them is refused at load (check_ils_fit).
MatchPoint = Literal["001+003", "035", "020", "022", "010", "oclc", "hrid"]
DEFAULT_MATCH_POINTS: tuple[MatchPoint, ...] = ("020", "022", "010")
IlsFlavour = Literal["koha", "folio"]
# Koha's q sees only the biblioitems columns, never 001 or 035 (docs/koha.md).
KOHA_UNSEARCHABLE = frozenset({"oclc", "hrid"})
# Item properties a FOLIO item has no place for: prices live in FOLIO's orders, and a public
# note needs a tenant's item note type.
FOLIO_ITEM_UNSUPPORTED = frozenset({"purchase_price", "replacement_price", "public_notes"})


class SourceConfig(BaseModel):
    """Where deliveries come from: a local inbox folder, or SFTP / HTTPS (`delivery`)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["local", "sftp", "https"] = "local"
    inbox: str = Field(
        default="", description="Local folder (relative to CATALOG_SYNC_HOME unless absolute)"
    )
    patterns: list[str] = Field(default_factory=lambda: ["*.mrc", "*.xml"])
    delivery: DeliverySource | None = None

    @model_validator(mode="after")
    def _source_complete(self) -> SourceConfig:
        if self.kind == "local" and not self.inbox:
            raise ValueError("a local source needs `inbox`")
        if self.kind != "local" and (self.delivery is None or self.delivery.kind != self.kind):
            raise ValueError(f"a {self.kind} source needs `delivery` with kind {self.kind}")
        return self


class ItemMapping(BaseModel):
    """Which subfields of a vendor's item field become which Koha item properties.

    Defaults are Koha's own 952 (MARC21 framework: $p barcode, $a home and $b holding library,
    $y item type, $o call number, $g purchase and $v replacement price, $t copy number, $z
    public and $x non-public note). A vendor whose items come in 949, 945 or another tag
    names its subfields.
    Every item needs a barcode: it is the item's key for exactly-once creates.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Any data field: 952, a vendor's 9XX, or an 876 from an Alma-style export.
    tag: str = Field(default="952", pattern=r"^(0[1-9][0-9]|[1-9][0-9]{2})$")
    barcode: str = Field(default="p", min_length=1, max_length=1)
    home_library: str | None = Field(default="a", min_length=1, max_length=1)
    holding_library: str | None = Field(default="b", min_length=1, max_length=1)
    item_type: str | None = Field(default="y", min_length=1, max_length=1)
    callnumber: str | None = Field(default="o", min_length=1, max_length=1)
    purchase_price: str | None = Field(default="g", min_length=1, max_length=1)
    replacement_price: str | None = Field(default="v", min_length=1, max_length=1)
    copy_number: str | None = Field(default="t", min_length=1, max_length=1)
    public_notes: str | None = Field(default="z", min_length=1, max_length=1)
    internal_notes: str | None = Field(default="x", min_length=1, max_length=1)
    # FOLIO only (Koha's item type decides circulation): the loan type subfield, and the names
    # used for an item field without the subfield (FOLIO requires both on every item).
    loan_type: str | None = Field(default=None, min_length=1, max_length=1)
    default_loan_type: str | None = Field(default=None, min_length=1)
    default_item_type: str | None = Field(default=None, min_length=1)
    # Koha refuses to delete a biblio with items (409); true deletes the items first.
    delete_with_items: bool = False

    @model_validator(mode="after")
    def _barcode_alone(self) -> ItemMapping:
        # One subfield may feed both libraries, but the key is never another property too.
        others = [p for p, c in self.subfield_map().items() if c == self.barcode]
        if others != ["external_id"]:
            raise ValueError(f"the barcode subfield ${self.barcode} is also mapped to {others}")
        return self

    def subfield_map(self) -> dict[str, str]:
        """Koha item property -> subfield code, for the properties this vendor maps."""
        props = {
            "external_id": self.barcode,
            "home_library_id": self.home_library,
            "holding_library_id": self.holding_library,
            "item_type_id": self.item_type,
            "callnumber": self.callnumber,
            "purchase_price": self.purchase_price,
            "replacement_price": self.replacement_price,
            "copy_number": self.copy_number,
            "public_notes": self.public_notes,
            "internal_notes": self.internal_notes,
            "loan_type_id": self.loan_type,
        }
        return {k: v for k, v in props.items() if v is not None}

    def defaults(self) -> dict[str, str]:
        """Item property -> the value an item field without its subfield gets."""
        props = {"item_type_id": self.default_item_type, "loan_type_id": self.default_loan_type}
        return {k: v for k, v in props.items() if v is not None}

    def price_subfields(self) -> frozenset[str]:
        return frozenset(c for c in (self.purchase_price, self.replacement_price) if c)


class RetryPolicy(BaseModel):
    """How Airflow retries a vendor's tasks (its DAG's default_args)."""

    model_config = ConfigDict(extra="forbid")

    retries: int = Field(default=2, ge=0)
    delay_seconds: float = Field(default=60, gt=0, description="Wait before the first retry")
    # Airflow's multiplier: with 2.0 the waits are 1, 2, 4 ... times delay_seconds.
    backoff: float = Field(default=2.0, ge=0)
    max_delay_seconds: float = Field(default=900, gt=0)


class VendorConfig(BaseModel):
    """One vendor feed: where its files come from and how its records are treated."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    owner: str = "catalog-ops"
    ils_conn_id: str = "ils_default"
    schedule: str | None = None
    timezone: str = "UTC"
    source: SourceConfig
    records_per_chunk: int = Field(default=2000, ge=1)
    required_fields: list[str] = Field(default_factory=lambda: ["001", "245"])
    record_key: list[str] = Field(default_factory=lambda: ["003", "001"])
    declared_format: Literal["iso2709", "marcxml", "bibframe"] | None = None
    retention: RetentionPeriods = Field(default_factory=RetentionPeriods)
    # Repair invalid UTF-8 (replacement characters) instead of rejecting the record.
    allow_utf8_repair: bool = False
    # lenient: blank a bad indicator, drop a stray byte after the indicators and keep the record
    # with a warning code (catalog_sync.marc.repair); strict: reject such records.
    marc_strictness: Literal["lenient", "strict"] = "lenient"
    # Change detection (include/catalog_sync/changes/matching.py, protected.py, pipeline/commit.py):
    match_points: list[MatchPoint] = Field(
        default_factory=lambda: list(DEFAULT_MATCH_POINTS),
        description="How a new record finds its ILS copy, strongest first",
    )
    protected_fields: list[str] | None = Field(
        default=None,
        description="Tags kept from the ILS copy (9XX patterns allowed); None: the YAML default",
    )
    drift_policy: Literal["overlay", "skip", "review"] = "review"
    # Item fields (Koha's 952 by default) become Koha items, never part of the bib payload.
    items: ItemMapping = Field(default_factory=ItemMapping)
    delete_cap_ratio: float = Field(default=0.02, ge=0, le=1)
    # Leases (catalog_sync.leases): each commit of this vendor also holds the branch's lease,
    # so two feeds of one branch never commit at once. None: record and holdings leases only.
    lease_branch: str | None = Field(default=None, description="Koha library (branch) code")
    # Cadence rules on top of `schedule` (catalog_sync.schedule), all in `timezone`.
    maintenance_window: str | None = Field(default=None, description="Local HH:MM-HH:MM")
    business_days_only: bool = False
    blackout_dates: list[date] = Field(default_factory=list)
    min_gap: str | None = Field(default=None, description="Least time between runs, e.g. 20h")
    # Who hears about changed, failed and held runs (catalog_sync.notifications).
    notify_to: list[str] = Field(default_factory=list)
    # A run changing more than this share of the vendor's known records waits for approval.
    change_ratio_threshold: float | None = Field(default=None, gt=0, le=1)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    # A commit task running longer is failed (and retried), so a hung ILS or Redis cannot hold
    # a pool slot forever. 30 min covers a 2,000-record chunk at a few requests per second.
    commit_timeout_minutes: float = Field(default=30, gt=0)

    @field_validator("name")
    @classmethod
    def _identifier(cls, v: str) -> str:
        if not v.replace("_", "").isalnum():
            raise ValueError(f"vendor name {v!r} must be letters, digits and underscores")
        return v

    def inbox_path(self, home: Path) -> Path:
        p = Path(self.source.inbox)
        return p if p.is_absolute() else home / p


class ILSConnectionConfig(BaseModel):
    """Per ILS connection: the Airflow pool that bounds concurrent commit tasks."""

    model_config = ConfigDict(extra="forbid")

    name: str
    pool_slots: int = Field(default=4, ge=1)
    description: str = ""
    # The ILS behind it (the Connection's `flavour` extra says the same): what a vendor may
    # ask of it is checked at load, not discovered mid-run.
    flavour: IlsFlavour = "koha"


def _read(path: Path | None) -> dict[str, Any]:
    path = path or vendors_file()
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping with a 'vendors' key")
    return raw


def load_vendors(path: Path | None = None) -> dict[str, VendorConfig]:
    """Read vendors.yaml; a malformed file raises with the vendor and field named."""
    raw = _read(path)
    vendors = raw.get("vendors") or {}
    loaded = {name: VendorConfig(name=name, **(body or {})) for name, body in vendors.items()}
    listed = raw.get("ils_connections") or {}
    policy: PiiPolicy | None = None
    for vendor in loaded.values():
        if policy is None:  # read once, not once per vendor: every task process loads this
            policy = load_policy()
        check_item_prices_masked(vendor, policy)
        conn = listed.get(vendor.ils_conn_id) or {}
        check_ils_fit(vendor, ILSConnectionConfig(name=vendor.ils_conn_id, **conn).flavour)
    return loaded


def check_ils_fit(vendor: VendorConfig, flavour: IlsFlavour) -> None:
    """Refuse what the vendor's ILS cannot do, naming it: a match point Koha cannot search, an
    item property FOLIO cannot hold. Never skipped silently at run time."""
    where = f"vendor {vendor.name}: its ILS connection {vendor.ils_conn_id} is {flavour}"
    mapping = vendor.items
    if flavour == "koha":
        unsearchable = [p for p in vendor.match_points if p in KOHA_UNSEARCHABLE]
        if unsearchable:
            raise ValueError(
                f"{where}, and Koha cannot search match points {unsearchable} (its q sees "
                "neither 001 nor 035, docs/koha.md); remove them or load into FOLIO"
            )
        if mapping.loan_type or mapping.default_loan_type:
            raise ValueError(
                f"{where}: `items.loan_type` / `default_loan_type` are FOLIO's (Koha's item "
                "type decides circulation); remove them"
            )
        return
    unsupported = sorted(p for p in mapping.subfield_map() if p in FOLIO_ITEM_UNSUPPORTED)
    if unsupported:
        raise ValueError(
            f"{where}, and a FOLIO item has no place for {unsupported}; set them to null "
            "under `items`"
        )


def check_item_prices_masked(vendor: VendorConfig, policy: PiiPolicy | None = None) -> None:
    """A vendor's mapped item price subfields must be masked by the PII policy: prices travel
    only in the ILS payload (the staged, logged and reported record is the masked one)."""
    policy = policy or load_policy()
    mapping = vendor.items
    unmasked = sorted(c for c in mapping.price_subfields() if not policy.rule_for(mapping.tag, c))
    if unmasked:
        subfields = ", ".join(f"{mapping.tag} ${c}" for c in unmasked)
        raise ValueError(
            f"vendor {vendor.name}: item price {subfields} is not masked by the PII policy; "
            "add a rule for it to pii_policy.yaml"
        )


def load_ils_connections(path: Path | None = None) -> dict[str, ILSConnectionConfig]:
    """ILS connections named by vendors, with their pool sizes (default pool for unlisted ones)."""
    listed = _read(path).get("ils_connections") or {}
    conns = {n: ILSConnectionConfig(name=n, **(b or {})) for n, b in listed.items()}
    for vendor in load_vendors(path).values():
        conns.setdefault(vendor.ils_conn_id, ILSConnectionConfig(name=vendor.ils_conn_id))
    return conns


def pool_specs(path: Path | None = None) -> dict[str, dict[str, Any]]:
    """`airflow pools import` JSON body: one pool per ILS connection, slots = its safe concurrency.

    docker-compose's airflow-init, `make demo` and `make airflow` all provision from this::

        python -c "from catalog_sync.config import pool_specs; import json; \\
                   print(json.dumps(pool_specs()))" > pools.json && airflow pools import pools.json
    """
    return {
        c.name: {"slots": c.pool_slots, "description": c.description, "include_deferred": False}
        for c in load_ils_connections(path).values()
    }
