"""Alembic migrations of the state store, run by StateStore on open (`upgrade head`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection

if TYPE_CHECKING:
    from alembic.config import Config

SCRIPT_LOCATION = str(Path(__file__).resolve().parent)
# The newest revision under versions/: every task process checks its store against it before
# loading Alembic, which it then needs only when the store is behind (a test keeps it current).
HEAD_REVISION = "0004"


def alembic_config(connection: Connection | None = None, url: str | None = None) -> Config:
    """The Alembic config, built in code so it ships inside the package (no alembic.ini).

    Pass an open connection to migrate inside the caller's transaction, or a URL for the CLI:
    `python -c "from catalog_sync.migrations import upgrade_url; upgrade_url('sqlite:///x.db')"`.
    """
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


def upgrade_url(url: str) -> None:
    from alembic import command

    command.upgrade(alembic_config(url=url), "head")
