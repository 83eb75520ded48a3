"""The `catalog_sync_revert` DAG: undo one vendor run by its run id."""

from __future__ import annotations

from catalog_sync_airflow.revert import build_revert_dag

dag = build_revert_dag()
