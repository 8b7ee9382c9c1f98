"""Who people are: users, their roles on sites, and the API tokens they sign requests with."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column, relationship

from moderation.db import BigId, enum_column_type, utcnow
from moderation.extensions import db

if TYPE_CHECKING:
    from moderation.models import Site

__all__ = ["ApiToken", "Role", "SiteMembership", "SiteRole", "User"]

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

    memberships: Mapped[list[SiteMembership]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )
    tokens: Mapped[list[ApiToken]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )

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
    def find(cls, plain: str) -> ApiToken | None:
        """The unrevoked token whose plain text is ``plain``, or None."""
        # Looking up by hash leaks nothing through timing: the secret is never compared itself.
        return db.session.scalar(
            sa.select(cls).where(cls.token_hash == cls.hash(plain), cls.revoked_at.is_(None))
        )

    def __repr__(self) -> str:
        return f"<ApiToken {self.id} user={self.user_id} {self.name!r}>"
