"""Sites, article threads, comments and the decisions taken on them."""

from __future__ import annotations

import secrets
from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, WriteOnlyMapped, mapped_column, relationship

from auth.models import SiteMembership, User
from moderation.db import BigId, JSONType, enum_column_type, utcnow
from moderation.extensions import db
from moderation.policy import SiteSettings
from moderation.status import Action, Status

__all__ = [
    "ActorType",
    "Comment",
    "Decision",
    "Site",
    "Thread",
    "new_site_key",
    "normalise_origin",
]

DEFAULT_PORTS = {"http": 80, "https": 443}


class ActorType(StrEnum):
    """Who took a decision: the system (policy at submission) or a person."""

    SYSTEM = "system"
    USER = "user"


def new_site_key() -> str:
    """A fresh public site key: 12 URL-safe characters, never starting with a dash."""
    # A leading "-" would make `flask sites update KEY` read the key as an option.
    while (key := secrets.token_urlsafe(9)).startswith("-"):
        pass
    return key


def normalise_origin(value: str) -> str:
    """``value`` as a browser sends it in ``Origin`` (``scheme://host[:port]``); else ValueError."""
    text = value.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise ValueError(f"{value!r} is not a valid origin.") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ValueError(
            f"{value!r} is not an origin; write the scheme and host, like https://news.example."
        )
    if parts.username or parts.password or parts.path not in ("", "/"):
        raise ValueError(
            f"{value!r} is not an origin: leave out any user, path, query or fragment."
        )
    if parts.query or parts.fragment or text.endswith(("?", "#")):
        raise ValueError(
            f"{value!r} is not an origin: leave out any user, path, query or fragment."
        )
    host = parts.hostname.lower()
    if ":" in host:  # IPv6 literals keep their brackets in an origin
        host = f"[{host}]"
    if port is not None and port != DEFAULT_PORTS[scheme]:
        host = f"{host}:{port}"
    return f"{scheme}://{host}"


class Site(db.Model):
    """A news site that embeds the comments: its public key, origins and moderation settings."""

    __tablename__ = "sites"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(32), unique=True, default=new_site_key)
    name: Mapped[str] = mapped_column(sa.String(200))
    # Allowed origins of pages embedding the widget, e.g. ["https://news.example"]. JSON columns
    # see assignments, not in-place changes: assign a new list or dict to save a change.
    origins: Mapped[list[str]] = mapped_column(JSONType, default=list)
    # Validated through SiteSettings; read and assign it with ``moderation_settings``.
    settings: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # HS256 key for the site's own single sign-on tokens (must be readable to verify them).
    sso_secret: Mapped[str | None] = mapped_column(sa.String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    # Write-only: a site has too many threads (and a thread too many comments) to load them
    # all by touching an attribute; query them with ``site.threads.select()``.
    threads: WriteOnlyMapped[Thread] = relationship(
        back_populates="site", cascade="all, delete-orphan", passive_deletes=True
    )
    memberships: Mapped[list[SiteMembership]] = relationship(
        back_populates="site", cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def moderation_settings(self) -> SiteSettings:
        """The site's settings, validated (ValueError with a sentence if the stored data is bad)."""
        return SiteSettings.from_dict(self.settings or {})

    @moderation_settings.setter
    def moderation_settings(self, value: SiteSettings) -> None:
        self.settings = value.to_dict()

    def __repr__(self) -> str:
        return f"<Site {self.id} {self.key} {self.name!r}>"


class Thread(db.Model):
    """The comments of one article, identified by its canonical URL on a site."""

    __tablename__ = "threads"
    __table_args__ = (sa.UniqueConstraint("site_id", "url"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    site_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("sites.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(sa.String(2048))
    title: Mapped[str] = mapped_column(sa.String(500), default="")
    closed: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    # Published comments, kept current by the posting service so pages need no COUNT(*).
    comment_count: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    site: Mapped[Site] = relationship(back_populates="threads")
    comments: WriteOnlyMapped[Comment] = relationship(
        back_populates="thread", passive_deletes=True, cascade="all, delete-orphan"
    )

    @property
    def slug(self) -> str:
        """The last segment of the article's URL path, e.g. ``council-vote``."""
        segments = [s for s in urlsplit(self.url).path.split("/") if s]
        return segments[-1] if segments else ""

    def __repr__(self) -> str:
        return f"<Thread {self.id} {self.url!r}>"


class Comment(db.Model):
    """What someone wrote under an article, with its scores and where the policy put it."""

    __tablename__ = "comments"
    __table_args__ = (
        # The moderation queue: a site's pending comments, oldest first.
        sa.Index("ix_comments_site_status_created", "site_id", "status", "created_at", "id"),
        # A thread's published comments in order.
        sa.Index("ix_comments_thread_status_created", "thread_id", "status", "created_at", "id"),
        # An author's recent comments (flood limit, standing) ...
        sa.Index("ix_comments_author_created", "author_id", "created_at"),
        # ... and the same text posted twice.
        sa.Index("ix_comments_author_body_hash", "author_id", "body_hash"),
        # A guest's comments on a site, by e-mail (standing, flood limit, duplicates).
        sa.Index("ix_comments_site_guest_email", "site_id", "guest_email", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    thread_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("threads.id", ondelete="CASCADE"))
    # Denormalised from the thread so the queue query needs no join.
    site_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("sites.id", ondelete="CASCADE"))
    # Replies survive the hard deletion of their parent as top-level comments.
    parent_id: Mapped[int | None] = mapped_column(
        BigId, sa.ForeignKey("comments.id", ondelete="SET NULL"), index=True
    )
    author_id: Mapped[int | None] = mapped_column(
        BigId, sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    author_name: Mapped[str] = mapped_column(sa.String(100))
    # Guests (no account) are known by their e-mail address, lower-cased; None for users.
    guest_email: Mapped[str | None] = mapped_column(sa.String(254))
    body: Mapped[str] = mapped_column(sa.Text)  # as written (cleaned of control characters)
    html: Mapped[str] = mapped_column(sa.Text)  # sanitised rendering, safe to output
    status: Mapped[Status] = mapped_column(enum_column_type(Status, "status"))
    spam_score: Mapped[float | None]
    abuse_score: Mapped[float | None]
    model_version: Mapped[str | None] = mapped_column(sa.String(64))
    # [{"code": ..., "message": ...}] from the policy, shown to moderators as written.
    reasons: Mapped[list[dict[str, str]]] = mapped_column(JSONType, default=list)
    ip_hash: Mapped[str | None] = mapped_column(sa.String(64))
    user_agent: Mapped[str | None] = mapped_column(sa.String(512))
    body_hash: Mapped[str] = mapped_column(sa.String(64))  # sha256 of the normalised body
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Optimistic locking: an UPDATE from a stale copy matches no row and raises StaleDataError,
    # so two moderators deciding at once cannot both win.
    version: Mapped[int] = mapped_column(default=1, server_default="1")

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 (read by SQLAlchemy)

    thread: Mapped[Thread] = relationship(back_populates="comments")
    site: Mapped[Site] = relationship()
    author: Mapped[User | None] = relationship()
    parent: Mapped[Comment | None] = relationship(back_populates="replies", remote_side=[id])
    replies: Mapped[list[Comment]] = relationship(back_populates="parent", passive_deletes=True)
    decisions: Mapped[list[Decision]] = relationship(
        back_populates="comment",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="Decision.id",
    )

    def __repr__(self) -> str:
        return f"<Comment {self.id} {self.status}>"


class Decision(db.Model):
    """One change of a comment's status, by the system or a person, with its reasons."""

    __tablename__ = "decisions"
    __table_args__ = (
        sa.Index("ix_decisions_comment_id", "comment_id"),
        sa.Index("ix_decisions_site_created", "site_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    comment_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("comments.id", ondelete="CASCADE"))
    site_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("sites.id", ondelete="CASCADE"))
    actor_type: Mapped[ActorType] = mapped_column(enum_column_type(ActorType, "actor_type"))
    actor_id: Mapped[int | None] = mapped_column(
        BigId, sa.ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    # None when the system routes a new comment (held or published by the policy, no action).
    action: Mapped[Action | None] = mapped_column(enum_column_type(Action, "action"))
    from_status: Mapped[Status | None] = mapped_column(enum_column_type(Status, "from_status"))
    to_status: Mapped[Status] = mapped_column(enum_column_type(Status, "to_status"))
    reasons: Mapped[list[dict[str, str]]] = mapped_column(JSONType, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    comment: Mapped[Comment] = relationship(back_populates="decisions")
    actor: Mapped[User | None] = relationship()

    def __repr__(self) -> str:
        return f"<Decision {self.id} comment={self.comment_id} {self.to_status}>"
