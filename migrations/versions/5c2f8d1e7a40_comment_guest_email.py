"""Guest comments: the guest's e-mail address, for their standing, flood limit and duplicates.

Revision ID: 5c2f8d1e7a40
Revises: 117543b4c0e7
Create Date: 2026-11-27 11:20:00.000000
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "5c2f8d1e7a40"
down_revision = "117543b4c0e7"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add comments.guest_email and its index."""
    with op.batch_alter_table("comments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("guest_email", sa.String(length=254), nullable=True))
        batch_op.create_index(
            "ix_comments_site_guest_email", ["site_id", "guest_email", "created_at"], unique=False
        )


def downgrade() -> None:
    """Remove comments.guest_email and its index."""
    with op.batch_alter_table("comments", schema=None) as batch_op:
        batch_op.drop_index("ix_comments_site_guest_email")
        batch_op.drop_column("guest_email")
