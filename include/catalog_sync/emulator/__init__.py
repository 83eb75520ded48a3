"""A Koha-compatible ILS emulator with fault injection and a write log, for tests and the demo."""
