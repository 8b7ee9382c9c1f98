"""widget and console: likes, edits, webhooks

Revision ID: 6064e7a29d4d
Revises: 28c895f0104f
Create Date: 2026-11-27 14:46:12.279866
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "6064e7a29d4d"
down_revision = "28c895f0104f"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    _console_upgrade()  # site invites, webhooks, webhook deliveries
    _widget_upgrade()  # comment edits and likes


def downgrade() -> None:
    """Undo this revision."""
    _widget_downgrade()
    _console_downgrade()


# ---------------------------------------------------------------------------------------------
# The site owners' console (moderation/console.py, moderation/webhooks.py)
# ---------------------------------------------------------------------------------------------


def _console_upgrade() -> None:
    from sqlalchemy.dialects import postgresql

    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    json_type = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
    op.create_table(
        "site_invites",
        sa.Column("id", big_id, nullable=False),
        sa.Column("site_id", big_id, nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("invited_by_id", big_id, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("accepted_by_id", big_id, nullable=True),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["sites.id"],
            name=op.f("fk_site_invites_site_id_sites"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["invited_by_id"],
            ["users.id"],
            name=op.f("fk_site_invites_invited_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["accepted_by_id"],
            ["users.id"],
            name=op.f("fk_site_invites_accepted_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_site_invites")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_site_invites_token_hash")),
    )
    op.create_index(op.f("ix_site_invites_site_id"), "site_invites", ["site_id"], unique=False)
    op.create_table(
        "webhooks",
        sa.Column("id", big_id, nullable=False),
        sa.Column("site_id", big_id, nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("events", json_type, nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_webhooks_site_id_sites"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhooks")),
    )
    op.create_index(op.f("ix_webhooks_site_id"), "webhooks", ["site_id"], unique=False)
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", big_id, nullable=False),
        sa.Column("webhook_id", big_id, nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("response_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(length=500), server_default="", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["webhook_id"],
            ["webhooks.id"],
            name=op.f("fk_webhook_deliveries_webhook_id_webhooks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
    )
    op.create_index(
        "ix_webhook_deliveries_webhook_created",
        "webhook_deliveries",
        ["webhook_id", "created_at"],
        unique=False,
    )


def _console_downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_webhook_created", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_index(op.f("ix_webhooks_site_id"), table_name="webhooks")
    op.drop_table("webhooks")
    op.drop_index(op.f("ix_site_invites_site_id"), table_name="site_invites")
    op.drop_table("site_invites")


# ---------------------------------------------------------------------------------------------
# The comment widget (moderation/embed.py): edits and likes
# ---------------------------------------------------------------------------------------------


def _widget_upgrade() -> None:
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    with op.batch_alter_table("comments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("edited_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("like_count", sa.Integer(), server_default="0", nullable=False)
        )
    op.create_table(
        "comment_likes",
        sa.Column("id", big_id, nullable=False),
        sa.Column("comment_id", big_id, nullable=False),
        sa.Column("user_id", big_id, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["comment_id"],
            ["comments.id"],
            name=op.f("fk_comment_likes_comment_id_comments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_comment_likes_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_comment_likes")),
        sa.UniqueConstraint(
            "comment_id", "user_id", name=op.f("uq_comment_likes_comment_id_user_id")
        ),
    )
    op.create_index(op.f("ix_comment_likes_user_id"), "comment_likes", ["user_id"], unique=False)


def _widget_downgrade() -> None:
    op.drop_index(op.f("ix_comment_likes_user_id"), table_name="comment_likes")
    op.drop_table("comment_likes")
    with op.batch_alter_table("comments", schema=None) as batch_op:
        batch_op.drop_column("like_count")
        batch_op.drop_column("edited_at")
