"""Logging people in and out, the same way for every login method."""

from __future__ import annotations

from flask import session
from flask_login import login_user, logout_user

from auth.models import Identity, User
from moderation.db import utcnow
from moderation.extensions import db


def log_in(user: User, identity: Identity | None = None) -> None:
    """Start a fresh session for ``user`` (a new session, so a planted one is worthless)."""
    # Clearing first rotates the session: nothing from before the login survives into it.
    session.clear()
    login_user(user, remember=False, fresh=True)
    if identity is not None:
        identity.last_login_at = utcnow()
    db.session.commit()


def log_out() -> None:
    """End this browser's session."""
    logout_user()
    session.clear()


def log_out_everywhere(user: User) -> None:
    """End every session of ``user`` on every device (old cookies stop loading)."""
    user.session_version += 1
    db.session.commit()
    log_out()
