"""Who is commenting: users, identities (e-mail, X, Facebook, site SSO), sessions, roles."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask

__all__ = ["MAX_NEXT_LENGTH", "register", "safe_next_url"]

# The column that keeps a login link's destination (LoginLink.next_url) holds this much.
MAX_NEXT_LENGTH = 2048


def register(app: Flask) -> None:
    """Register the login blueprints on ``app``."""
    from auth import account, email_login, oauth, sso

    for module in (email_login, oauth, sso, account):
        app.register_blueprint(module.bp)


def safe_next_url(value: str | None) -> str:
    """``value`` if it is a path on this site, else ``"/"`` (no open redirects).

    The one check for every ``next`` a login, logout or popup takes: only a relative path
    that a browser cannot read as another host is followed.
    """
    if not value or len(value) > MAX_NEXT_LENGTH:
        return "/"
    if not value.startswith("/") or value.startswith("//"):
        return "/"
    # Browsers read "\" as "/", so "/\evil.example" would leave the site; and they drop tabs and
    # newlines, so "/\t/evil.example" becomes "//evil.example": controls are tricks.
    if "\\" in value or any(ord(char) < 32 or ord(char) == 127 for char in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value
