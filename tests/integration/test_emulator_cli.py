"""`catalog-sync emulator` options: fault profiles, documented defaults, bad arguments."""

from __future__ import annotations

import pytest

from catalog_sync.emulator.cli import build_parser, emulator_main
from catalog_sync.emulator.faults import FaultProfileError, parse_fault_profile


def test_named_profiles_combine_with_key_value_overrides() -> None:
    profile = parse_fault_profile("flaky,drop_rate=0.1,error_statuses=500/502,seed=3")

    assert profile.error_rate == 0.2
    assert profile.drop_rate == 0.1
    assert profile.error_statuses == [500, 502]
    assert profile.seed == 3


def test_no_profile_means_no_faults() -> None:
    profile = parse_fault_profile(None)

    assert (profile.error_rate, profile.drop_rate, profile.slow_rate, profile.down_for) == (
        0,
        0,
        0,
        0,
    )


@pytest.mark.parametrize(
    "text", ["chaos", "error_rate=2", "error_statuses=five", "drop=0.1", "down_mode=maybe"]
)
def test_unreadable_fault_profiles_are_refused_with_the_offending_part(text: str) -> None:
    with pytest.raises(FaultProfileError):
        parse_fault_profile(text)


def test_bad_arguments_exit_2_before_anything_listens(capsys: pytest.CaptureFixture[str]) -> None:
    assert emulator_main(["--port", "1", "--faults", "chaos"]) == 2
    assert emulator_main(["--port", "1", "--rate-limit", "0"]) == 2
    assert emulator_main([]) == 2
    assert "chaos" in capsys.readouterr().err


def test_help_documents_the_defaults() -> None:
    text = build_parser().format_help()

    for default in ("catalog-demo", "catalog-sync-demo", "127.0.0.1", "in memory", "no limit"):
        assert default in text
