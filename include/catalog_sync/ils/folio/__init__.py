"""FOLIO: an Okapi session, the storage calls a catalog load needs, and MARC-to-instance mapping."""
