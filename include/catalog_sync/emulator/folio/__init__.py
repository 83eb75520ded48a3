"""A FOLIO-compatible emulator: Okapi tenancy, mod-login, inventory storage and SRS routes."""
