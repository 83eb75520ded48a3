"""Initial state store: loaded files, applied records and the commit ledger.

Stores made before migrations existed (create_all) already hold these tables: they are
adopted as they are, not created again.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "loaded_files" not in existing:
        op.create_table(
            "loaded_files",
            sa.Column("vendor", sa.String(64), primary_key=True),
            sa.Column("sha256", sa.String(64), primary_key=True),
            sa.Column("name", sa.Text, nullable=False),
            sa.Column("run_id", sa.Text, nullable=False),
            sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        )
    if "catalog_records" not in existing:
        op.create_table(
            "catalog_records",
            sa.Column("ils", sa.String(64), primary_key=True),
            sa.Column("record_key", sa.String(255), primary_key=True),
            sa.Column("ils_id", sa.String(64), nullable=True),
            sa.Column("fingerprint", sa.String(64), nullable=True),
            sa.Column("deleted", sa.String(1), nullable=False),
            sa.Column("run_id", sa.Text, nullable=False),
            sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        )
    if "commit_ledger" not in existing:
        op.create_table(
            "commit_ledger",
            sa.Column("idempotency_key", sa.String(64), primary_key=True),
            sa.Column("ils", sa.String(64), nullable=False),
            sa.Column("record_key", sa.String(255), nullable=False),
            sa.Column("fingerprint", sa.String(64), nullable=False),
            sa.Column("action", sa.String(16), nullable=False),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("ils_id", sa.String(64), nullable=True),
            sa.Column("run_id", sa.Text, nullable=False),
            sa.Column("chunk_id", sa.String(64), nullable=False),
            sa.Column("detail", sa.Text, nullable=True),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        )


def downgrade() -> None:
    op.drop_table("commit_ledger")
    op.drop_table("catalog_records")
    op.drop_table("loaded_files")
