"""Who people are: users, their roles on sites, and the API tokens they sign requests with."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, joinedload, mapped_column, relationship, validates

from moderation.db import BigId, JSONType, enum_column_type, utcnow
from moderation.extensions import db
from moderation.security import clean_name

if TYPE_CHECKING:
    from moderation.models import Site

__all__ = ["ApiToken", "Identity", "LoginLink", "Role", "SiteMembership", "SiteRole", "User"]

TOKEN_PREFIX = "mod_"


class Role(StrEnum):
    """A user's role across the whole installation."""

    COMMENTER = "commenter"
    ADMIN = "admin"


class SiteRole(StrEnum):
    """A user's role on one site."""

    MODERATOR = "moderator"
    OWNER = "owner"


class User(UserMixin, db.Model):
    """Someone who comments, moderates or runs a site."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str | None] = mapped_column(sa.String(254), unique=True)
    display_name: Mapped[str] = mapped_column(sa.String(100))
    role: Mapped[Role] = mapped_column(enum_column_type(Role, "role"), default=Role.COMMENTER)
    banned: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    suspended_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Bumped by "log out everywhere": sessions carry it, and an old value no longer loads.
    session_version: Mapped[int] = mapped_column(default=1, server_default="1")
    email_verified: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    avatar_url: Mapped[str | None] = mapped_column(sa.String(1024))
    # Notification preferences and other per-user choices (JSON; reassign, do not mutate).
    preferences: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)

    memberships: Mapped[list[SiteMembership]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )

    @validates("display_name")
    def _clean_display_name(self, _key: str, value: str) -> str:
        # Every path (profile form, OAuth, SSO, import, CLI) gets the same spoof-proof name.
        return clean_name(value)[:100] or "Reader"

    tokens: Mapped[list[ApiToken]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )
    identities: Mapped[list[Identity]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )

    def get_id(self) -> str:
        """Flask-Login's session id: the user id and the session version."""
        return f"{self.id}:{self.session_version}"

    def role_on(self, site: Site) -> str | None:
        """``"admin"`` for global admins, else ``"owner"``/``"moderator"`` on ``site``, or None."""
        if self.role == Role.ADMIN:
            return Role.ADMIN.value
        role = db.session.scalar(
            sa.select(SiteMembership.role).where(
                SiteMembership.user_id == self.id, SiteMembership.site_id == site.id
            )
        )
        return role.value if role is not None else None

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email or self.display_name!r}>"


class SiteMembership(db.Model):
    """A user's staff role on one site."""

    __tablename__ = "site_memberships"
    __table_args__ = (sa.UniqueConstraint("user_id", "site_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("users.id", ondelete="CASCADE"))
    site_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("sites.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[SiteRole] = mapped_column(enum_column_type(SiteRole, "role"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship(back_populates="memberships")
    site: Mapped[Site] = relationship(back_populates="memberships")

    def __repr__(self) -> str:
        return f"<SiteMembership user={self.user_id} site={self.site_id} {self.role}>"


class ApiToken(db.Model):
    """A bearer token for the JSON API; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(sa.String(100))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship(back_populates="tokens")

    @staticmethod
    def hash(plain: str) -> str:
        """The stored form of a token: its SHA-256 in hex."""
        return hashlib.sha256(plain.encode()).hexdigest()

    @classmethod
    def issue(cls, user: User, name: str) -> tuple[ApiToken, str]:
        """A new token for ``user`` and its plain text (show it once); the caller adds it."""
        # The prefix makes leaked tokens recognisable to secret scanners and to people.
        plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
        return cls(user=user, name=name, token_hash=cls.hash(plain)), plain

    @classmethod
    def find(cls, plain: str, *, with_user: bool = False) -> ApiToken | None:
        """The unrevoked token whose plain text is ``plain`` (and its user, in one query)."""
        # Looking up by hash leaks nothing through timing: the secret is never compared itself.
        query = sa.select(cls).where(cls.token_hash == cls.hash(plain), cls.revoked_at.is_(None))
        if with_user:
            query = query.options(joinedload(cls.user, innerjoin=True))
        return db.session.scalar(query)

    def __repr__(self) -> str:
        return f"<ApiToken {self.id} user={self.user_id} {self.name!r}>"


class Identity(db.Model):
    """One way a user logs in: an e-mail address, an X or Facebook account, a site's SSO."""

    __tablename__ = "identities"
    __table_args__ = (sa.UniqueConstraint("provider", "subject"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    # "email", "x", "facebook", or "sso:<site key>"
    provider: Mapped[str] = mapped_column(sa.String(80))
    # The provider's stable id for the person (the lower-cased address for "email").
    subject: Mapped[str] = mapped_column(sa.String(255))
    email: Mapped[str | None] = mapped_column(sa.String(254))
    email_verified: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    display_name: Mapped[str | None] = mapped_column(sa.String(100))
    # The provider's profile as last read (cached: X charges for every profile read).
    profile: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]

    user: Mapped[User] = relationship(back_populates="identities")

    @validates("display_name")
    def _clean_display_name(self, _key: str, value: str | None) -> str | None:
        return None if value is None else clean_name(value)[:100] or None

    def __repr__(self) -> str:
        return f"<Identity {self.provider}:{self.subject} user={self.user_id}>"


class LoginLink(db.Model):
    """A single-use signed link sent by e-mail; only the token's SHA-256 is stored."""

    __tablename__ = "login_links"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    # "login", or "verify" (confirm an address for an account that has one without e-mail)
    purpose: Mapped[str] = mapped_column(sa.String(20), default="login")
    user_id: Mapped[int | None] = mapped_column(
        BigId, sa.ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    next_url: Mapped[str | None] = mapped_column(sa.String(2048))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]

    def __repr__(self) -> str:
        return f"<LoginLink {self.id} {self.email} {self.purpose}>"
