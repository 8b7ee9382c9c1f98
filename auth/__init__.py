"""Who is commenting: users, identities (e-mail, X, Facebook, site SSO), sessions, roles."""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    """Register the login blueprints on ``app``."""
    from auth import account, email_login, oauth, sso

    for module in (email_login, oauth, sso, account):
        app.register_blueprint(module.bp)
