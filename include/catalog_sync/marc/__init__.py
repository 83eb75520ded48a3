"""MARC ingestion: format sniffing, chunk splitting, streaming readers, record preparation."""
