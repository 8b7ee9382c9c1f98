"""import and export: where imported threads and comments came from

Revision ID: 7a1e5c0d2b31
Revises: 6064e7a29d4d
Create Date: 2026-11-27 17:00:00
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "7a1e5c0d2b31"
down_revision = "6064e7a29d4d"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    # One unique index per site makes importing the same export again a no-op (NULL, the
    # value of everything posted here, never collides).
    for table in ("threads", "comments"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("import_ref", sa.String(length=300), nullable=True))
            batch_op.create_index(
                f"ix_{table}_site_import_ref", ["site_id", "import_ref"], unique=True
            )


def downgrade() -> None:
    """Undo this revision."""
    for table in ("comments", "threads"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(f"ix_{table}_site_import_ref")
            batch_op.drop_column("import_ref")
