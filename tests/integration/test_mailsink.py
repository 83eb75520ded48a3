"""The local SMTP sink `make airflow` provisions as Connection smtp_default keeps every notice."""

from __future__ import annotations

import os
import signal
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from catalog_sync.mailsink import SERVICE, ensure_mail_sink
from catalog_sync.notifications import NoticeKind, build_notice
from catalog_sync.ownservices import load_record


def test_a_notice_sent_through_airflows_smtp_hook_lands_in_the_sink_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    run, folder = tmp_path / "run", tmp_path / "mail"
    uri = ensure_mail_sink(run, folder)
    record = load_record(run, SERVICE)
    assert record is not None
    pid = record.pid
    try:
        assert ensure_mail_sink(run, folder) == uri  # a second `make airflow` reuses it
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", uri)
        notice = build_notice(NoticeKind.FAILED, "demo", "manual__1", failed_task="fetch")
        with SmtpHook(smtp_conn_id="smtp_default") as smtp:
            smtp.send_email_smtp(
                to=["catalog-ops@library.example.org"],
                subject=notice.subject,
                html_content=notice.html,
                from_email="catalog-sync@localhost",
            )

        kept = sorted(folder.glob("*.eml"))
        assert len(kept) == 1
        mail = message_from_bytes(kept[0].read_bytes(), policy=policy.default)
        assert mail["Subject"] == "[Catalog Sync] demo: run FAILED"
        assert mail["To"] == "catalog-ops@library.example.org"
    finally:
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)  # started by this process: reap it
