"""One `catalog_sync_<vendor>` DAG per vendor in include/config/vendors.yaml."""

from __future__ import annotations

from catalog_sync_airflow.factory import build_vendor_dags

globals().update(build_vendor_dags())
