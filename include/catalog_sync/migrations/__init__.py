"""Alembic migrations of the state store, run by StateStore on open (`upgrade head`)."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from sqlalchemy import Connection

SCRIPT_LOCATION = str(Path(__file__).resolve().parent)


def alembic_config(connection: Connection | None = None, url: str | None = None) -> Config:
    """The Alembic config, built in code so it ships inside the package (no alembic.ini).

    Pass an open connection to migrate inside the caller's transaction, or a URL for the CLI:
    `python -c "from catalog_sync.migrations import upgrade_url; upgrade_url('sqlite:///x.db')"`.
    """
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


def upgrade_url(url: str) -> None:
    from alembic import command

    command.upgrade(alembic_config(url=url), "head")
