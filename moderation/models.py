"""Sites, article threads, comments and the decisions taken on them."""

from __future__ import annotations

import functools
import json
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
    "AuthorEvent",
    "AuthorNote",
    "Comment",
    "Decision",
    "ModelVersion",
    "Report",
    "ReportReason",
    "Site",
    "SiteAuthor",
    "SiteInvite",
    "Thread",
    "Webhook",
    "WebhookDelivery",
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


@functools.lru_cache(maxsize=256)
def _settings_from_json(text: str) -> SiteSettings:
    # Validating the settings costs more than the rest of a comment's policy check, and they
    # rarely change: SiteSettings is immutable, so one validated copy per distinct value serves.
    return SiteSettings.from_dict(json.loads(text))


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
    # When the moderators' digest was last sent (claimed by one conditional UPDATE).
    digest_sent_at: Mapped[datetime | None]
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
        return _settings_from_json(json.dumps(self.settings or {}, sort_keys=True))

    @moderation_settings.setter
    def moderation_settings(self, value: SiteSettings) -> None:
        self.settings = value.to_dict()

    def __repr__(self) -> str:
        return f"<Site {self.id} {self.key} {self.name!r}>"


class Thread(db.Model):
    """The comments of one article, identified by its canonical URL on a site."""

    __tablename__ = "threads"
    __table_args__ = (
        sa.UniqueConstraint("site_id", "url"),
        # An imported post's source (moderation/importers): importing the file again finds it.
        sa.Index("ix_threads_site_import_ref", "site_id", "import_ref", unique=True),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    site_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("sites.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(sa.String(2048))
    title: Mapped[str] = mapped_column(sa.String(500), default="")
    closed: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    # Published comments, kept current by the posting service so pages need no COUNT(*).
    comment_count: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Where an imported thread came from, e.g. "wordpress:https://blog.example#post-12".
    import_ref: Mapped[str | None] = mapped_column(sa.String(300))

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
        # An author's standing on a site: approved and recent rejected comments, counted from
        # the index alone.
        sa.Index("ix_comments_author_site_status", "author_id", "site_id", "status", "created_at"),
        # A queue across several sites (a moderator's "all my sites"), oldest first: walked in
        # order and filtered by site, instead of sorting every held comment of those sites.
        sa.Index("ix_comments_status_created", "status", "created_at", "id"),
        # The Reported queue: comments readers reported past the site's threshold.
        sa.Index("ix_comments_site_review_created", "site_id", "needs_review", "created_at", "id"),
        # An imported comment's source (moderation/importers): importing again skips it.
        sa.Index("ix_comments_site_import_ref", "site_id", "import_ref", unique=True),
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
    # Reader reports: how many, and their weighted sum (reports from new accounts count less).
    report_count: Mapped[int] = mapped_column(default=0, server_default="0")
    report_weight: Mapped[float] = mapped_column(default=0.0, server_default="0")
    # In the Reported queue until a moderator decides on it (reports past the site's threshold).
    needs_review: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    # A shadow-banned author's comment: shown to its author as published, to nobody else.
    shadow: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    # The author was asked to reconsider (nudge) and posted anyway.
    nudged: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    # The classifier's strongest reasons as [[start, end, "abuse"|"spam", label], ...] in
    # ``body``, worked out once in the background for comments the desk shows (None: not yet).
    explained: Mapped[list[list[Any]] | None] = mapped_column(JSONType, default=None)
    # When its author last edited it (within the site's edit window); None: never edited.
    edited_at: Mapped[datetime | None]
    # Readers' likes (CommentLike rows), kept here for "most liked" sorting.
    like_count: Mapped[int] = mapped_column(default=0, server_default="0")
    # Where an imported comment came from, e.g. "disqus:post-456"; None for comments posted here.
    import_ref: Mapped[str | None] = mapped_column(sa.String(300))

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


class ReportReason(StrEnum):
    """Why a reader reports a comment."""

    SPAM = "spam"
    ABUSE = "abuse"
    OFF_TOPIC = "off_topic"
    OTHER = "other"


class Report(db.Model):
    """A reader's report of a published comment; one per reader and comment."""

    __tablename__ = "reports"
    __table_args__ = (
        sa.UniqueConstraint("comment_id", "reporter_id"),
        sa.Index("ix_reports_reporter_created", "reporter_id", "created_at"),
        sa.Index("ix_reports_site_created", "site_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    comment_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("comments.id", ondelete="CASCADE"))
    site_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("sites.id", ondelete="CASCADE"))
    reporter_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("users.id", ondelete="CASCADE"))
    reason: Mapped[ReportReason] = mapped_column(enum_column_type(ReportReason, "reason"))
    note: Mapped[str] = mapped_column(sa.String(500), default="")
    # 1 for established accounts, less for new ones (see the reports service).
    weight: Mapped[float] = mapped_column(default=1.0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    comment: Mapped[Comment] = relationship()
    reporter: Mapped[User] = relationship()

    def __repr__(self) -> str:
        return f"<Report {self.id} comment={self.comment_id} {self.reason}>"


class SiteAuthor(db.Model):
    """What a site's moderators decided about one author: bans, suspensions, trust, and so on."""

    __tablename__ = "site_authors"
    __table_args__ = (
        sa.UniqueConstraint("site_id", "user_id"),
        sa.UniqueConstraint("site_id", "guest_email"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    site_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("sites.id", ondelete="CASCADE"))
    # A user, or a guest known by e-mail address (exactly one of the two is set).
    user_id: Mapped[int | None] = mapped_column(
        BigId, sa.ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    guest_email: Mapped[str | None] = mapped_column(sa.String(254))
    banned: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    ban_message: Mapped[str] = mapped_column(sa.String(1000), default="", server_default="")
    suspended_until: Mapped[datetime | None]
    suspend_message: Mapped[str] = mapped_column(sa.String(1000), default="", server_default="")
    premoderate: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    trusted: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    shadow_banned: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(
        BigId, sa.ForeignKey("users.id", ondelete="SET NULL")
    )

    user: Mapped[User | None] = relationship(foreign_keys=[user_id])

    def __repr__(self) -> str:
        return f"<SiteAuthor site={self.site_id} user={self.user_id} {self.guest_email}>"


class AuthorNote(db.Model):
    """A moderator's note about an author, shown on their comment cards."""

    __tablename__ = "author_notes"
    __table_args__ = (
        sa.Index("ix_author_notes_site_user", "site_id", "user_id", "created_at"),
        sa.Index("ix_author_notes_site_guest", "site_id", "guest_email", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    site_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("sites.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(
        BigId, sa.ForeignKey("users.id", ondelete="CASCADE")
    )
    guest_email: Mapped[str | None] = mapped_column(sa.String(254))
    moderator_id: Mapped[int | None] = mapped_column(
        BigId, sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    body: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    moderator: Mapped[User | None] = relationship(foreign_keys=[moderator_id])


class AuthorEvent(db.Model):
    """An audited action on an author (ban, suspension, trust, notes ...), by a moderator."""

    __tablename__ = "author_events"
    __table_args__ = (
        sa.Index("ix_author_events_site_created", "site_id", "created_at"),
        sa.Index("ix_author_events_user", "user_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    site_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("sites.id", ondelete="CASCADE"))
    actor_id: Mapped[int | None] = mapped_column(
        BigId, sa.ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(
        BigId, sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    guest_email: Mapped[str | None] = mapped_column(sa.String(254))
    # "ban", "unban", "suspend", "unsuspend", "premoderate", "trust", "shadow_ban", ...
    action: Mapped[str] = mapped_column(sa.String(32))
    message: Mapped[str] = mapped_column(sa.Text, default="")
    until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    actor: Mapped[User | None] = relationship(foreign_keys=[actor_id])


class ModelVersion(db.Model):
    """A classifier model file the service trained or shipped, with its metrics; one active."""

    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    version: Mapped[str] = mapped_column(sa.String(64), unique=True)
    path: Mapped[str] = mapped_column(sa.String(1024))
    # "candidate", "active", "retired" (was active) or "refused" (failed the promotion checks)
    state: Mapped[str] = mapped_column(sa.String(16), default="candidate")
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # What it was trained on: base data, decisions per site and label, weights.
    training: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    promoted_at: Mapped[datetime | None]

    def __repr__(self) -> str:
        return f"<ModelVersion {self.version} {self.state}>"


# ---------------------------------------------------------------------------------------------
# The site owners' console: invitations, webhooks and their deliveries
# ---------------------------------------------------------------------------------------------


class SiteInvite(db.Model):
    """An owner's invitation to moderate a site, by e-mail; only the token's SHA-256 is kept."""

    __tablename__ = "site_invites"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    site_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("sites.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(sa.String(254))  # lower-cased
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    invited_by_id: Mapped[int | None] = mapped_column(
        BigId, sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    accepted_at: Mapped[datetime | None]
    accepted_by_id: Mapped[int | None] = mapped_column(
        BigId, sa.ForeignKey("users.id", ondelete="SET NULL")
    )

    site: Mapped[Site] = relationship()

    def __repr__(self) -> str:
        return f"<SiteInvite {self.id} site={self.site_id} {self.email}>"


class Webhook(db.Model):
    """A URL the service POSTs signed events of one site to."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    site_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("sites.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(sa.String(2048))
    # ["comment.created", "comment.decided"]; assign a new list to change it.
    events: Mapped[list[str]] = mapped_column(JSONType, default=list)
    # HMAC-SHA256 key of the signatures (readable: it signs every delivery).
    secret: Mapped[str] = mapped_column(sa.String(128))
    active: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    site: Mapped[Site] = relationship()

    def __repr__(self) -> str:
        return f"<Webhook {self.id} site={self.site_id} {self.url!r}>"


class WebhookDelivery(db.Model):
    """One event sent (or being sent) to one webhook: the exact body and how the attempts went."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        sa.Index("ix_webhook_deliveries_webhook_created", "webhook_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    webhook_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("webhooks.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(sa.String(32))
    body: Mapped[str] = mapped_column(sa.Text)  # the raw JSON body, signed as sent
    # "pending" (not tried yet), "retrying", "delivered" or "failed" (no attempts left)
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    response_code: Mapped[int | None]
    error: Mapped[str] = mapped_column(sa.String(500), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_attempt_at: Mapped[datetime | None]

    webhook: Mapped[Webhook] = relationship()

    def __repr__(self) -> str:
        return f"<WebhookDelivery {self.id} webhook={self.webhook_id} {self.status}>"


class CommentLike(db.Model):
    """A reader's like of a comment (one per reader and comment)."""

    __tablename__ = "comment_likes"
    __table_args__ = (sa.UniqueConstraint("comment_id", "user_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    comment_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("comments.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<CommentLike comment={self.comment_id} user={self.user_id}>"


# ---------------------------------------------------------------------------------------------
# Privacy (moderation/privacy.py): rotating keys of the IP address hashes, and its own log
# ---------------------------------------------------------------------------------------------


class IpHashKey(db.Model):
    """A random key that hashes IP addresses during one period; deleted after a few days."""

    __tablename__ = "ip_hash_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # The start of the period (a multiple of IP_HASH_ROTATION_HOURS since the epoch, UTC);
    # unique, so processes racing to create a period's key all end up with the same one.
    starts_at: Mapped[datetime] = mapped_column(unique=True)
    key: Mapped[bytes] = mapped_column(sa.LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<IpHashKey {self.id} from {self.starts_at.isoformat()}>"


class PrivacyEvent(db.Model):
    """A retention run, or an admin's export or erasure of someone's data (counts, no address)."""

    __tablename__ = "privacy_events"
    __table_args__ = (sa.Index("ix_privacy_events_action_created", "action", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    action: Mapped[str] = mapped_column(sa.String(16))  # "purge", "export" or "erase"
    # The admin who ran it (None: the command line or the scheduled job).
    actor_id: Mapped[int | None] = mapped_column(
        BigId, sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    via: Mapped[str] = mapped_column(sa.String(16))  # "cli", "api" or "job"
    # What was found, exported or removed: {"comments": 3, "accounts": 1, ...}.
    counts: Mapped[dict[str, int]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    actor: Mapped[User | None] = relationship()

    def __repr__(self) -> str:
        return f"<PrivacyEvent {self.id} {self.action} via {self.via}>"
