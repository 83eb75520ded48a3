-- Catalog Sync's state store (file hashes, applied fingerprints, commit ledger) lives beside
-- Airflow's metadata in the same Postgres server, in its own database.
CREATE DATABASE catalog_sync OWNER airflow;
