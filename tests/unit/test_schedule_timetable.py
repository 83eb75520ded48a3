"""ComplianceTimetable: registered by the plugin, serialized with the DAG, scheduling across DST."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from airflow.serialization.decoders import decode_timetable
from airflow.serialization.encoders import encode_timetable
from airflow.serialization.serialized_objects import DagSerialization
from airflow.timetables.base import DataInterval, TimeRestriction
from pendulum import instance

from catalog_sync.config import load_vendors
from catalog_sync.schedule import CadencePolicy, MaintenanceWindow
from catalog_sync_airflow.factory import build_vendor_dag
from catalog_sync_airflow.timetables import ComplianceTimetable

NY = ZoneInfo("America/New_York")


def scheduled(timetable: ComplianceTimetable, start: datetime, count: int) -> list[datetime]:
    """The next `count` runs the scheduler would create, from `start`, with catchup on."""
    restriction = TimeRestriction(earliest=instance(start), latest=None, catchup=True)
    last: DataInterval | None = None
    runs = []
    for _ in range(count):
        info = timetable.next_dagrun_info(
            last_automated_data_interval=last, restriction=restriction
        )
        assert info is not None
        runs.append(info.run_after)
        last = info.data_interval
    return runs


def test_scheduler_runs_stay_at_0200_new_york_time_over_the_november_change() -> None:
    policy = CadencePolicy(
        "0 2 * * *", "America/New_York", MaintenanceWindow.parse("01:00-05:00"),
        business_days_only=True,
    )  # fmt: skip
    timetable = ComplianceTimetable(policy)

    runs = scheduled(timetable, datetime(2026, 10, 29, tzinfo=UTC), 4)

    assert [r.astimezone(NY).strftime("%a %d %H:%M %Z") for r in runs] == [
        "Thu 29 02:00 EDT",
        "Fri 30 02:00 EDT",
        "Mon 02 02:00 EST",
        "Tue 03 02:00 EST",
    ]


def test_plugin_registered_timetable_round_trips_through_airflow_serialization() -> None:
    timetable = ComplianceTimetable(CadencePolicy.from_dict({
        "cron": "30 2 * * 1-5", "timezone": "Europe/Berlin", "window": "01:00-05:00",
        "business_days_only": True, "blackout_dates": ["2026-12-24"], "min_gap_seconds": 72000,
    }))  # fmt: skip

    encoded = encode_timetable(timetable)
    decoded = decode_timetable(encoded)

    assert encoded["__type"] == "catalog_sync_airflow.timetables.ComplianceTimetable"
    assert decoded == timetable
    assert decoded.summary == timetable.summary


def test_demo_dag_shows_its_cadence_summary_after_serialization() -> None:
    dag = build_vendor_dag(load_vendors()["demo"])

    restored = DagSerialization.from_dict(DagSerialization.to_dict(dag))

    assert isinstance(restored.timetable, ComplianceTimetable)
    assert "window 01:00-05:00" in restored.timetable.summary
    assert "business days" in restored.timetable.summary
    assert "America/New_York" in restored.timetable.description


def test_without_catchup_the_first_run_is_the_next_allowed_start_from_now() -> None:
    timetable = ComplianceTimetable(CadencePolicy("0 2 * * *", "America/New_York"))
    restriction = TimeRestriction(
        earliest=instance(datetime(2026, 1, 1, tzinfo=UTC)), latest=None, catchup=False
    )

    info = timetable.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)

    assert info is not None
    now = datetime.now(UTC)
    assert now < info.run_after
    assert info.run_after.astimezone(NY).hour == 2
    assert info.data_interval.start == info.data_interval.end == info.run_after


def test_manual_runs_get_an_exact_interval_at_their_trigger_time() -> None:
    timetable = ComplianceTimetable(CadencePolicy("0 2 * * *"))
    at = instance(datetime(2026, 6, 1, 14, 5, tzinfo=UTC))

    assert timetable.infer_manual_data_interval(run_after=at) == DataInterval.exact(at)
