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
    # A user made in this request has no id (nor session version) until flushed, and the
    # cookie names both: without this, "None:None" would log nobody in.
    db.session.flush()
    login_user(user, remember=False, fresh=True)
    if identity is not None:
        identity.last_login_at = utcnow()
    db.session.commit()


def log_out(user: User | None = None) -> None:
    """End this browser's session; with ``user``, also void every copy of its cookie."""
    # The session is a signed cookie the server does not keep: clearing it in this browser
    # leaves a copied (stolen) cookie valid. Bumping the version is the only way to kill that
    # copy, and it ends the user's other sessions (and widget logins) with it.
    if user is not None:
        user.session_version += 1
        db.session.commit()
    logout_user()
    session.clear()


def log_out_everywhere(user: User) -> None:
    """End every session of ``user`` on every device (old cookies stop loading)."""
    log_out(user)
