"""`python -m catalog_sync.emulator` runs the ILS emulator (options of `catalog-sync emulator`)."""

from __future__ import annotations

import sys

from catalog_sync.emulator.cli import emulator_main

raise SystemExit(emulator_main(sys.argv[1:]))
