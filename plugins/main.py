"""The one AirflowPlugin of Catalog Sync: its timetable, the run report view and its link."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from catalog_sync_airflow.report_view import EXTERNAL_VIEW, FASTAPI_APP
from catalog_sync_airflow.timetables import ComplianceTimetable


class CatalogSyncPlugin(AirflowPlugin):
    name = "catalog_sync"
    timetables = [ComplianceTimetable]
    fastapi_apps = [FASTAPI_APP]
    external_views = [EXTERNAL_VIEW]
