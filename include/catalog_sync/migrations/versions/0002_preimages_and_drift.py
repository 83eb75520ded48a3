"""Pre-images for revert, the fingerprint of what the ILS holds after our write, ILS acks."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("catalog_records") as batch:
        batch.add_column(sa.Column("vendor", sa.String(64), nullable=True))
        batch.add_column(sa.Column("ils_fingerprint", sa.String(64), nullable=True))
    op.create_index("catalog_records_ils_id", "catalog_records", ["ils", "ils_id"])
    op.create_index("catalog_records_vendor", "catalog_records", ["vendor", "deleted"])
    with op.batch_alter_table("commit_ledger") as batch:
        batch.add_column(sa.Column("ack", sa.Text, nullable=True))
    op.create_index("commit_ledger_run", "commit_ledger", ["run_id"])
    op.create_table(
        "run_changes",
        sa.Column("run_id", sa.String(250), primary_key=True),
        sa.Column("ils", sa.String(64), primary_key=True),
        sa.Column("record_key", sa.String(255), primary_key=True),
        sa.Column("vendor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("ils_id", sa.String(64), nullable=True),
        sa.Column("pre_image", sa.LargeBinary, nullable=True),
        sa.Column("had_state", sa.String(1), nullable=False),
        sa.Column("prev_ils_id", sa.String(64), nullable=True),
        sa.Column("prev_fingerprint", sa.String(64), nullable=True),
        sa.Column("prev_ils_fingerprint", sa.String(64), nullable=True),
        sa.Column("prev_deleted", sa.String(1), nullable=True),
        sa.Column("prev_run_id", sa.Text, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("run_changes")
    op.drop_index("commit_ledger_run", "commit_ledger")
    with op.batch_alter_table("commit_ledger") as batch:
        batch.drop_column("ack")
    op.drop_index("catalog_records_vendor", "catalog_records")
    op.drop_index("catalog_records_ils_id", "catalog_records")
    with op.batch_alter_table("catalog_records") as batch:
        batch.drop_column("ils_fingerprint")
        batch.drop_column("vendor")
