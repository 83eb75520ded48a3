"""Index run_changes by ILS id: matching asks whether a found ILS record is another's."""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("run_changes_ils_id", "run_changes", ["ils", "ils_id"])


def downgrade() -> None:
    op.drop_index("run_changes_ils_id", "run_changes")
