"""The comment moderation web service: ``create_app`` builds and wires the Flask app."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import event
from werkzeug.middleware.proxy_fix import ProxyFix

from moderation.config import build_config
from moderation.db import IdConverter, SQLiteWriteLock, set_sqlite_pragmas
from moderation.extensions import csrf, db, limiter, login_manager, migrate

__all__ = ["MIGRATIONS", "PROJECT_ROOT", "STATIC", "TEMPLATES", "create_app"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = PROJECT_ROOT / "templates"
STATIC = PROJECT_ROOT / "static"
MIGRATIONS = PROJECT_ROOT / "migrations"


def create_app(
    config: Mapping[str, Any] | None = None, *, instance_path: str | os.PathLike[str] | None = None
) -> Flask:
    """A configured app: environment settings (``config`` overrides them), extensions, routes."""
    # Imported here, as in the flaskr tutorial: auth.models imports moderation.extensions, so
    # importing the models at the top of this package would make a cycle.
    import auth
    from auth.models import User
    from moderation import (
        api,
        cli,
        console,
        desk_views,
        embed,
        errors,
        jobs,
        learning,
        notify,
        ops,
        security,
        views,
    )

    app = Flask(
        __name__,
        instance_relative_config=True,
        instance_path=os.path.abspath(instance_path) if instance_path is not None else None,
        template_folder=str(TEMPLATES),
        static_folder=str(STATIC),
    )
    # Before any route is registered: every <int:...> id in a URL stays within MAX_ID.
    app.url_map.converters["int"] = IdConverter
    app.config.from_mapping(build_config(Path(app.instance_path), os.environ, config or {}))
    os.makedirs(app.instance_path, exist_ok=True)  # the SQLite file and the secret key live here

    if app.config["PROXY_FIX_X_FOR"]:
        # Behind N reverse proxies, the client address is the Nth from the right in
        # X-Forwarded-For; rate limits and IP hashes need it rather than the proxy's.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=app.config["PROXY_FIX_X_FOR"], x_proto=1
        )

    db.init_app(app)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            event.listen(db.engine, "connect", set_sqlite_pragmas)
            database = db.engine.url.database
            if database and database != ":memory:" and not database.startswith("file:"):
                SQLiteWriteLock(os.path.abspath(database)).install(db.engine)
    migrate.init_app(app, db, directory=str(MIGRATIONS))
    csrf.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)

    @login_manager.user_loader
    def load_user(session_id: str) -> User | None:
        # "<id>:<session version>": logging out everywhere bumps the version, which voids
        # every older session cookie.
        user_id, _, version = session_id.partition(":")
        try:
            user = db.session.get(User, int(user_id))
        except ValueError:
            return None
        if user is None or str(user.session_version) != version:
            return None
        return user

    security.init_app(app)  # CSP nonces, security headers, JSON depth and NUL guards
    auth.register(app)
    errors.register_error_handlers(app)
    app.register_blueprint(views.bp)
    app.register_blueprint(desk_views.bp)  # the review desk's pages (/moderate)
    app.register_blueprint(embed.bp)  # /embed.js and the comment iframe (/embed/...)
    api.init_app(app)  # the JSON API and its OpenAPI document under /api/v1
    cli.register_commands(app)
    learning.register_commands(app)  # flask classifier ...
    jobs.init_app(app)  # background jobs: RQ with REDIS_URL, else threads (`flask jobs`)
    notify.init_app(app)  # e-mail notifications, /notifications/unsubscribe, `flask notify`
    console.init_app(app)  # the site owners' console (/console) and webhooks
    ops.init_app(app)  # /healthz, /readyz and /metrics (Prometheus), request timing
    return app
