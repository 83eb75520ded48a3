"""Run ids as folder names: readable, and never two runs in one folder (issue 14, item 11)."""

from __future__ import annotations

from pathlib import Path

from catalog_sync.paths import layout, safe_name
from catalog_sync.pipeline.process import rejects_path, staging_path
from catalog_sync.pipeline.report import report_dir

# Airflow's own run id, and a manual run id someone typed that sanitises to the same text.
SCHEDULED = "scheduled__2026-12-01T03:00:00+00:00"
LOOKALIKE = "scheduled__2026-12-01T03_00_00_00_00"


def test_run_ids_that_differ_only_in_replaced_characters_get_their_own_folders(
    tmp_path: Path,
) -> None:
    runtime = layout(tmp_path)
    ids = [SCHEDULED, LOOKALIKE, "scheduled__2026-12-01T03:00:00_00:00", "a/b", "a\\b", "a b"]

    assert len({safe_name(i) for i in ids}) == len(ids)
    assert staging_path(runtime, "demo", SCHEDULED, "c1") != staging_path(
        runtime, "demo", LOOKALIKE, "c1"
    )
    assert rejects_path(runtime, "demo", SCHEDULED, "c1") != rejects_path(
        runtime, "demo", LOOKALIKE, "c1"
    )
    assert report_dir(runtime, "demo", SCHEDULED) != report_dir(runtime, "demo", LOOKALIKE)


def test_folder_names_stay_readable_and_stable() -> None:
    assert safe_name(LOOKALIKE) == LOOKALIKE  # nothing replaced: the name is the run id
    name = safe_name(SCHEDULED)
    assert name.startswith("scheduled__2026-12-01T03_00_00_00_00")
    assert name == safe_name(SCHEDULED)  # the same run finds its folder on every worker
    assert "/" not in safe_name("../../x") and not safe_name("../../x").startswith(".")
