"""privacy: rotating keys for IP address hashes, retention

Revision ID: 8b2f6d1e3c42
Revises: 7a1e5c0d2b31
Create Date: 2026-11-27 17:00:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = "8b2f6d1e3c42"
down_revision = "7a1e5c0d2b31"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    """Apply this revision."""
    # Comments keep their existing ip_hash (made with the old fixed key) until `flask privacy
    # purge` clears those older than IP_HASH_KEEP_DAYS, like any other.
    op.create_table(
        "ip_hash_keys",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key", sa.LargeBinary(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ip_hash_keys")),
        sa.UniqueConstraint("starts_at", name=op.f("uq_ip_hash_keys_starts_at")),
    )
    op.create_table(
        "privacy_events",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("actor_id", BIG_ID, nullable=True),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.Column("counts", JSON_TYPE, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"],
            ["users.id"],
            name=op.f("fk_privacy_events_actor_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_privacy_events")),
    )
    op.create_index(
        "ix_privacy_events_action_created",
        "privacy_events",
        ["action", "created_at"],
        unique=False,
    )


def downgrade() -> None:
    """Undo this revision."""
    op.drop_index("ix_privacy_events_action_created", table_name="privacy_events")
    op.drop_table("privacy_events")
    op.drop_table("ip_hash_keys")
