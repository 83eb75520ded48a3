"""`python -m catalog_sync` is the `catalog-sync` command."""

from __future__ import annotations

from catalog_sync.cli import main

raise SystemExit(main())
