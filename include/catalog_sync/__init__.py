"""Catalog Sync: load vendor MARC deliveries into an ILS, only what changed, safely."""

from __future__ import annotations

__version__ = "0.1.0"
