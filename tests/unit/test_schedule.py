"""Cadence rules: maintenance window, business days, blackouts, minimum gap, DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from catalog_sync.config import VendorConfig
from catalog_sync.schedule import (
    CadenceError,
    CadencePolicy,
    MaintenanceWindow,
    cadence_for,
    parse_gap,
)

NY = "America/New_York"
BERLIN = "Europe/Berlin"
WINDOW = MaintenanceWindow(time(1), time(5))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local(at: datetime, zone: str) -> str:
    return at.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %Z")


def starts(policy: CadencePolicy, first: datetime, last: datetime) -> list[str]:
    return [local(at, policy.timezone) for at in policy.runs_between(first, last)]


def test_business_day_runs_keep_their_local_hour_across_the_march_change_in_new_york() -> None:
    policy = CadencePolicy("0 2 * * *", NY, WINDOW, business_days_only=True)

    runs = policy.runs_between(utc(2026, 3, 5), utc(2026, 3, 11))

    assert [local(r, NY) for r in runs] == [
        "2026-03-05 02:00 EST",
        "2026-03-06 02:00 EST",
        "2026-03-09 02:00 EDT",  # weekend of the change (Sunday 8 March) skipped
        "2026-03-10 02:00 EDT",
    ]
    assert [r.hour for r in runs] == [7, 7, 6, 6]  # UTC moves, the library's clock does not


def test_a_start_that_does_not_exist_on_spring_forward_night_moves_past_the_gap_once() -> None:
    policy = CadencePolicy("30 2 * * *", NY, WINDOW)

    runs = policy.runs_between(utc(2026, 3, 7), utc(2026, 3, 10))

    assert [local(r, NY) for r in runs] == [
        "2026-03-07 02:30 EST",
        "2026-03-08 03:30 EDT",  # 02:30 never happens that night; still inside the window
        "2026-03-09 02:30 EDT",
    ]


def test_the_repeated_hour_of_the_november_change_starts_once_in_new_york() -> None:
    policy = CadencePolicy("30 1 * * *", NY, WINDOW)

    runs = policy.runs_between(utc(2026, 10, 31), utc(2026, 11, 3))

    assert [local(r, NY) for r in runs] == [
        "2026-10-31 01:30 EDT",
        "2026-11-01 01:30 EDT",  # not again at 01:30 EST an hour later
        "2026-11-02 01:30 EST",
    ]
    assert [r - runs[0] for r in runs] == [timedelta(0), timedelta(hours=24), timedelta(hours=49)]


def test_hourly_cron_inside_the_window_never_repeats_a_wall_clock_start_on_fall_back_night() -> (
    None
):
    policy = CadencePolicy("0 * * * *", NY, WINDOW)

    runs = policy.runs_between(utc(2026, 11, 1, 4), utc(2026, 11, 1, 12))

    assert [local(r, NY) for r in runs] == [
        "2026-11-01 01:00 EDT",
        "2026-11-01 02:00 EST",
        "2026-11-01 03:00 EST",
        "2026-11-01 04:00 EST",
    ]


def test_berlin_runs_follow_the_european_changes_on_their_own_dates() -> None:
    policy = CadencePolicy("30 2 * * *", BERLIN, WINDOW)

    spring = policy.runs_between(utc(2026, 3, 28), utc(2026, 3, 31))
    autumn = policy.runs_between(utc(2026, 10, 24), utc(2026, 10, 27))

    assert [local(r, BERLIN) for r in spring] == [
        "2026-03-28 02:30 CET",
        "2026-03-29 03:30 CEST",
        "2026-03-30 02:30 CEST",
    ]
    assert [local(r, BERLIN) for r in autumn] == [
        "2026-10-24 02:30 CEST",
        "2026-10-25 02:30 CEST",
        "2026-10-26 02:30 CET",
    ]
    # New York had not changed yet on 28-29 March: the zones are judged independently.
    assert local(spring[0], NY) == "2026-03-27 21:30 EDT"


def test_cron_times_outside_the_maintenance_window_never_start() -> None:
    policy = CadencePolicy("0 * * * *", NY, WINDOW)

    runs = policy.runs_between(utc(2026, 6, 1), utc(2026, 6, 3))

    assert {r.astimezone(ZoneInfo(NY)).hour for r in runs} == {1, 2, 3, 4}
    assert len(runs) == 8


def test_window_that_wraps_midnight_allows_late_evening_and_early_morning() -> None:
    policy = CadencePolicy("0 * * * *", "UTC", MaintenanceWindow.parse("22:00-02:00"))

    runs = policy.runs_between(utc(2026, 6, 1, 12), utc(2026, 6, 2, 12))

    assert [r.hour for r in runs] == [22, 23, 0, 1]


def test_blackout_dates_are_skipped_on_the_librarys_calendar() -> None:
    policy = CadencePolicy(
        "0 2 * * *", NY, WINDOW, blackout_dates=frozenset({date(2026, 12, 24), date(2026, 12, 25)})
    )

    runs = policy.runs_between(utc(2026, 12, 23), utc(2026, 12, 27, 12))

    assert [local(r, NY)[:10] for r in runs] == ["2026-12-23", "2026-12-26", "2026-12-27"]
    assert policy.refusal(utc(2026, 12, 24, 7)) == "blackout_date"


def test_minimum_gap_keeps_one_start_per_night_from_an_hourly_cron() -> None:
    policy = CadencePolicy("0 * * * *", NY, WINDOW, min_gap=timedelta(hours=20))

    runs = policy.runs_between(utc(2026, 6, 1), utc(2026, 6, 4))

    assert [local(r, NY) for r in runs] == [
        "2026-06-01 01:00 EDT",
        "2026-06-02 01:00 EDT",
        "2026-06-03 01:00 EDT",
    ]


def test_minimum_gap_counts_from_the_previous_run_not_from_the_question() -> None:
    policy = CadencePolicy("0 * * * *", "UTC", WINDOW, min_gap=timedelta(hours=2, minutes=30))

    at = policy.next_run(utc(2026, 6, 1, 1), last_run=utc(2026, 6, 1, 1))

    assert at == utc(2026, 6, 1, 4)


def test_refusal_names_the_rule_that_blocks_a_start() -> None:
    policy = CadencePolicy("0 2 * * *", NY, WINDOW, business_days_only=True)

    assert policy.refusal(utc(2026, 6, 1, 6)) is None  # Monday 02:00 EDT
    assert policy.refusal(utc(2026, 6, 1, 12)) == "outside_window"
    assert policy.refusal(utc(2026, 6, 6, 6)) == "not_business_day"


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"cron": "61 2 * * *"}, "cron_invalid"),
        ({"cron": "0 2 * * * 5"}, "cron_invalid"),
        ({"cron": "0 2 * * *", "timezone": "Mars/Olympus"}, "timezone_unknown"),
        ({"cron": "0 2 * * *", "min_gap": timedelta(hours=-1)}, "gap_negative"),
    ],
)
def test_unusable_cadence_is_refused_with_a_reason_code(
    kwargs: dict[str, object], reason: str
) -> None:
    with pytest.raises(CadenceError) as caught:
        CadencePolicy(**kwargs)  # type: ignore[arg-type]
    assert caught.value.reason == reason


def test_a_cron_that_never_meets_the_window_is_reported_not_looped_forever() -> None:
    policy = CadencePolicy("0 12 * * *", NY, WINDOW)

    with pytest.raises(CadenceError) as caught:
        policy.next_run(utc(2026, 6, 1))

    assert caught.value.reason == "no_run_possible"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("20h", timedelta(hours=20)), ("1h30m", timedelta(minutes=90)), ("1d", timedelta(days=1))],
)
def test_minimum_gap_reads_like_an_operator_writes_it(text: str, expected: timedelta) -> None:
    assert parse_gap(text) == expected


@pytest.mark.parametrize("text", ["20", "twenty hours", "5x"])
def test_unreadable_gap_is_refused(text: str) -> None:
    with pytest.raises(CadenceError):
        parse_gap(text)


def test_policy_survives_a_round_trip_through_plain_json_values() -> None:
    policy = CadencePolicy(
        "0 2 * * 1-5",
        NY,
        WINDOW,
        business_days_only=True,
        blackout_dates=frozenset({date(2026, 12, 25)}),
        min_gap=timedelta(hours=20),
    )

    assert CadencePolicy.from_dict(policy.to_dict()) == policy


def test_vendor_config_becomes_a_cadence_with_a_readable_summary() -> None:
    vendor = VendorConfig(
        name="acme",
        schedule="0 2 * * 1-5",
        timezone=NY,
        source={"kind": "local", "inbox": "inbox/acme"},  # type: ignore[arg-type]
        maintenance_window="01:00-05:00",
        business_days_only=True,
        blackout_dates=[date(2026, 12, 25)],
        min_gap="20h",
    )

    policy = cadence_for(vendor)

    assert policy is not None
    assert policy.summary == (
        "0 2 * * 1-5 (America/New_York), window 01:00-05:00, business days, "
        "1 blackout dates, gap ≥ 20h"
    )
    assert "2026-12-25" in policy.describe()
    assert cadence_for(vendor.model_copy(update={"schedule": None})) is None
