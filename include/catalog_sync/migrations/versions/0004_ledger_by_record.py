"""Index the ledger and run changes by record: every create asks for its own lost creates.

commit.py looks up each create's pending creates (commit_ledger) and its first intent
(run_changes) by (ils, record_key). Without these indexes both scan the whole table, so a
create cost grew with every record ever loaded: 3 ms at 5,000 ledger rows on the benchmark
machine, quadratic over an initial load (bench/results/2026-12-01-folio-pipeline).
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("commit_ledger_record", "commit_ledger", ["ils", "record_key"])
    op.create_index("run_changes_record", "run_changes", ["ils", "record_key"])


def downgrade() -> None:
    op.drop_index("run_changes_record", "run_changes")
    op.drop_index("commit_ledger_record", "commit_ledger")
