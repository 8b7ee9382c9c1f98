"""Configuration from the environment (12-factor): every key, its default and its area.

| variable | meaning | default |
|---|---|---|
| ``APP_ENV`` | ``development`` or ``production`` | ``development`` |
| ``SECRET_KEY`` | signs sessions and CSRF tokens; required in production | instance file |
| ``DATABASE_URL`` | SQLAlchemy URL (``postgresql://`` uses psycopg 3) | SQLite file |
| ``DATABASE_POOL_SIZE`` / ``DATABASE_MAX_OVERFLOW`` | PostgreSQL connection pool | 5 / 10 |
| ``DATABASE_POOL_RECYCLE`` | seconds before a pooled PostgreSQL connection is replaced | 1800 |
| ``DATABASE_POOL_TIMEOUT`` | seconds a request waits for a free pooled connection | 10 |
| ``DATABASE_POOL_PRE_PING`` | test a pooled connection before use (survives restarts) | ``true`` |
| ``DATABASE_STATEMENT_TIMEOUT_MS`` | PostgreSQL cancels longer statements; 0 = never | 5000 |
| ``DATABASE_CONNECT_TIMEOUT`` | seconds to wait for a new PostgreSQL connection | 5 |
| ``METRICS_TOKEN`` | bearer token that may read ``/metrics`` from anywhere | unset |
| ``METRICS_ALLOW`` | addresses/networks that may read ``/metrics`` without it | loopback |
| ``METRICS_CACHE_SECONDS`` | how long ``/metrics`` reuses its database and queue counts | 15 |
| ``REDIS_URL`` | Redis for rate limits and, later, background jobs | unset |
| ``RATELIMIT_ENABLED`` | ``false`` turns request rate limits off (load benchmarks) | ``true`` |
| ``RATELIMIT_STORAGE_URI`` | where rate-limit counters live | ``REDIS_URL`` or memory |
| ``MODERATION_COMMENT_RATE_LIMIT`` | comments per address (Flask-Limiter syntax) | 30/minute |
| ``CACHE_ENABLED`` / ``CACHE_TTL`` | cache public reads; seconds an answer lives | true / 60 |
| ``CACHE_MAX_MB`` / ``CACHE_DIR`` | answers per process (MB); generation file | 64 / instance |
| ``PROXY_FIX_X_FOR`` | how many reverse proxies set ``X-Forwarded-For`` | 0 |
| ``MAX_CONTENT_LENGTH`` | largest request body in bytes | 1 MiB |
| ``CLASSIFIER_MODEL_PATH`` | model file to score comments with | the shipped model |
| ``MODERATION_IP_SALT`` | secret mixed into the rotating IP-hash keys | from SECRET_KEY |
| ``IP_HASH_ROTATION_HOURS`` | hours one random IP-hashing key is used before the next | 24 |
| ``IP_HASH_KEEP_DAYS`` | days IP hashes (and their keys) are kept, to link repeat abuse | 7 |
| ``RETENTION_REJECTED_DAYS`` | days rejected and spam comments are kept (0 keeps them) | 90 |
| ``RETENTION_DELIVERIES_DAYS`` | days webhook deliveries are kept (0 keeps them) | 30 |
| ``RETENTION_AUTO`` | the app runs the retention purge about once a day | on (off in tests) |
| ``MAIL_SERVER`` | SMTP host for login links; unset writes mail to the log (development) | unset |
| ``MAIL_PORT`` / ``MAIL_TIMEOUT`` | SMTP port and socket timeout in seconds | 587 / 10 |
| ``MAIL_USE_TLS`` / ``MAIL_USE_SSL`` | STARTTLS, or TLS from the start (465) | true / false |
| ``MAIL_USERNAME`` / ``MAIL_PASSWORD`` | SMTP login, if the server needs one | unset |
| ``MAIL_SENDER`` | the From address | ``no-reply@localhost`` |
| ``SESSION_COOKIE_SECURE`` | ``true``: HTTPS-only (Secure) login cookies | on https |
| ``OAUTH_*`` | X and Facebook sign-in (see ``docs/login.md``) | unset, real endpoints |
| ``WEBHOOKS_ALLOW_PRIVATE`` | webhooks may call private and loopback hosts (tests) | ``false`` |
| ``WEBHOOKS_TIMEOUT`` | seconds one webhook delivery may take | 5 |

A mapping passed to ``create_app`` overrides all of it (tests use that).
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import os
import secrets
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "Environment",
    "build_config",
    "engine_options",
    "load_secret_key",
    "normalise_database_url",
    "shipped_model_path",
]

SECRET_KEY_FILE = "secret_key"
SQLITE_FILE = "moderation.db"
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


def build_config(
    instance_path: Path, environ: Mapping[str, str], overrides: Mapping[str, Any]
) -> dict[str, Any]:
    """The app's configuration: environment values and defaults, then ``overrides`` on top."""
    env = Environment(environ)
    app_env = overrides.get("APP_ENV") or env.text("APP_ENV", "development")

    # Core
    secret_key = overrides.get("SECRET_KEY") or environ.get("SECRET_KEY")
    if not secret_key:
        if app_env == "production":
            raise RuntimeError(
                "APP_ENV=production needs a SECRET_KEY in the environment; generate one with "
                "`python -c 'import secrets; print(secrets.token_hex(32))'`."
            )
        secret_key = load_secret_key(instance_path)
    if app_env == "production" and len(str(secret_key)) < 32:
        raise RuntimeError(
            "SECRET_KEY is too short for production; use at least 32 random characters."
        )

    # Database
    database_url = normalise_database_url(
        overrides.get("SQLALCHEMY_DATABASE_URI")
        or overrides.get("DATABASE_URL")
        or env.text("DATABASE_URL", f"sqlite:///{instance_path / SQLITE_FILE}")
    )

    # Redis and rate limits
    redis_url = overrides.get("REDIS_URL") or env.text("REDIS_URL", "") or None

    # OAuth: Facebook's Graph API is pinned to one version; its URLs below carry it.
    facebook_version = overrides.get("OAUTH_FACEBOOK_API_VERSION") or env.text(
        "OAUTH_FACEBOOK_API_VERSION", "v21.0"
    )

    config: dict[str, Any] = {
        "APP_ENV": app_env,
        "SECRET_KEY": secret_key,
        "MAX_CONTENT_LENGTH": env.integer("MAX_CONTENT_LENGTH", 1024 * 1024),
        "PROXY_FIX_X_FOR": env.integer("PROXY_FIX_X_FOR", 0),
        # Session and remember-me cookies: see _session_cookie_settings.
        **_session_cookie_settings(app_env, environ, overrides),
        # Database
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": engine_options(
            database_url,
            pool_size=env.integer("DATABASE_POOL_SIZE", 5),
            max_overflow=env.integer("DATABASE_MAX_OVERFLOW", 10),
            pool_recycle=env.integer("DATABASE_POOL_RECYCLE", 1800),
            pool_timeout=env.integer("DATABASE_POOL_TIMEOUT", 10),
            pre_ping=env.boolean("DATABASE_POOL_PRE_PING", True),
            statement_timeout_ms=env.integer("DATABASE_STATEMENT_TIMEOUT_MS", 5000),
            connect_timeout=env.integer("DATABASE_CONNECT_TIMEOUT", 5),
        ),
        "SQLALCHEMY_TRACK_MODIFICATIONS": False,
        # Redis and rate limits (Flask-Limiter's own setting names)
        "REDIS_URL": redis_url,
        "RATELIMIT_ENABLED": env.boolean("RATELIMIT_ENABLED", True),
        "RATELIMIT_STORAGE_URI": env.text("RATELIMIT_STORAGE_URI", redis_url or "memory://"),
        # Off: Flask-Limiter would put Retry-After on every response of a limited route (201s
        # included) and override the flood limit's; moderation.errors sets it on 429s.
        "RATELIMIT_HEADERS_ENABLED": False,
        # Redis down: count in process memory (same limits, per process) and never fail the
        # request over its limiter; short timeouts so that a dead Redis costs little.
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "RATELIMIT_SWALLOW_ERRORS": True,
        "RATELIMIT_STORAGE_OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        # Comments posted per address (moderation/api.py); raised for load and fault runs.
        "MODERATION_COMMENT_RATE_LIMIT": env.text("MODERATION_COMMENT_RATE_LIMIT", "30/minute"),
        # Cache of public thread reads (moderation/cache.py)
        "CACHE_ENABLED": env.boolean("CACHE_ENABLED", True),
        "CACHE_TTL": env.integer("CACHE_TTL", 60),
        "CACHE_MAX_MB": env.integer("CACHE_MAX_MB", 64),
        "CACHE_DIR": env.text("CACHE_DIR", "") or str(instance_path),
        # Classifier
        "CLASSIFIER_MODEL_PATH": env.text("CLASSIFIER_MODEL_PATH", "") or shipped_model_path(),
        # Moderation
        "MODERATION_IP_SALT": env.text("MODERATION_IP_SALT", "")
        or _derive_key(str(secret_key), "moderation-ip-salt"),
        # Privacy (moderation/privacy.py, docs/privacy.md): IP hash keys and retention
        "IP_HASH_ROTATION_HOURS": env.integer("IP_HASH_ROTATION_HOURS", 24),
        "IP_HASH_KEEP_DAYS": env.integer("IP_HASH_KEEP_DAYS", 7),
        "RETENTION_REJECTED_DAYS": env.integer("RETENTION_REJECTED_DAYS", 90),
        "RETENTION_DELIVERIES_DAYS": env.integer("RETENTION_DELIVERIES_DAYS", 30),
        # Off under TESTING: a purge started by a test's first comment would surprise the test.
        "RETENTION_AUTO": env.boolean("RETENTION_AUTO", not overrides.get("TESTING", False)),
        # Mail: login links now, notifications later (auth/mail.py sends it)
        "MAIL_SERVER": env.text("MAIL_SERVER", "") or None,
        "MAIL_PORT": env.integer("MAIL_PORT", 587),
        "MAIL_USE_TLS": env.boolean("MAIL_USE_TLS", True),
        "MAIL_USE_SSL": env.boolean("MAIL_USE_SSL", False),
        "MAIL_USERNAME": env.text("MAIL_USERNAME", "") or None,
        "MAIL_PASSWORD": env.text("MAIL_PASSWORD", "") or None,
        "MAIL_SENDER": env.text("MAIL_SENDER", "no-reply@localhost"),
        "MAIL_TIMEOUT": env.integer("MAIL_TIMEOUT", 10),
        # Webhooks (moderation/webhooks.py): private addresses are refused (SSRF) unless allowed.
        "WEBHOOKS_ALLOW_PRIVATE": env.boolean("WEBHOOKS_ALLOW_PRIVATE", False),
        "WEBHOOKS_TIMEOUT": env.integer("WEBHOOKS_TIMEOUT", 5),
        # Health and metrics (moderation/ops.py): who may read /metrics, and how stale its
        # database and queue counts may be (each scrape would otherwise run the GROUP BY).
        "METRICS_TOKEN": env.text("METRICS_TOKEN", "") or None,
        "METRICS_ALLOW": env.text("METRICS_ALLOW", "127.0.0.0/8,::1"),
        "METRICS_CACHE_SECONDS": env.integer("METRICS_CACHE_SECONDS", 15),
        # OAuth: sign in with X and Facebook (docs/login.md lists every key)
        "OAUTH_X_CLIENT_ID": env.text("OAUTH_X_CLIENT_ID", "") or None,
        "OAUTH_X_CLIENT_SECRET": env.text("OAUTH_X_CLIENT_SECRET", "") or None,
        "OAUTH_FACEBOOK_CLIENT_ID": env.text("OAUTH_FACEBOOK_CLIENT_ID", "") or None,
        "OAUTH_FACEBOOK_CLIENT_SECRET": env.text("OAUTH_FACEBOOK_CLIENT_SECRET", "") or None,
        # Every provider URL is a setting, so tests and API moves change configuration only.
        "OAUTH_X_AUTHORIZE_URL": env.text(
            "OAUTH_X_AUTHORIZE_URL", "https://x.com/i/oauth2/authorize"
        ),
        "OAUTH_X_TOKEN_URL": env.text("OAUTH_X_TOKEN_URL", "https://api.x.com/2/oauth2/token"),
        "OAUTH_X_PROFILE_URL": env.text("OAUTH_X_PROFILE_URL", "https://api.x.com/2/users/me"),
        "OAUTH_X_SCOPES": env.text("OAUTH_X_SCOPES", "users.read tweet.read"),
        # Ask X for the account's confirmed e-mail (the app must have "Request email" enabled).
        "OAUTH_X_EMAIL": env.boolean("OAUTH_X_EMAIL", False),
        "OAUTH_FACEBOOK_API_VERSION": facebook_version,
        "OAUTH_FACEBOOK_AUTHORIZE_URL": env.text(
            "OAUTH_FACEBOOK_AUTHORIZE_URL",
            f"https://www.facebook.com/{facebook_version}/dialog/oauth",
        ),
        "OAUTH_FACEBOOK_TOKEN_URL": env.text(
            "OAUTH_FACEBOOK_TOKEN_URL",
            f"https://graph.facebook.com/{facebook_version}/oauth/access_token",
        ),
        "OAUTH_FACEBOOK_PROFILE_URL": env.text(
            "OAUTH_FACEBOOK_PROFILE_URL", f"https://graph.facebook.com/{facebook_version}/me"
        ),
        "OAUTH_FACEBOOK_SCOPES": env.text("OAUTH_FACEBOOK_SCOPES", "public_profile email"),
        # Seconds a cached provider profile counts as fresh (X charges for every read).
        "OAUTH_PROFILE_MAX_AGE": env.integer("OAUTH_PROFILE_MAX_AGE", 24 * 3600),
        # Seconds to wait for a provider's token or profile endpoint.
        "OAUTH_HTTP_TIMEOUT": env.integer("OAUTH_HTTP_TIMEOUT", 10),
    }
    config.update(overrides)
    # Overrides may name the database either way; the normalised URL is the one that counts.
    config.pop("DATABASE_URL", None)
    config["SQLALCHEMY_DATABASE_URI"] = database_url
    return config


def _session_cookie_settings(
    app_env: str, environ: Mapping[str, str], overrides: Mapping[str, Any]
) -> dict[str, Any]:
    """Session and remember-me cookie flags: HttpOnly, ``SameSite=Lax``, Secure on HTTPS."""
    env = Environment(environ)
    scheme = overrides.get("PREFERRED_URL_SCHEME") or env.text("PREFERRED_URL_SCHEME", "http")
    secure = (
        scheme == "https" or app_env == "production" or env.boolean("SESSION_COOKIE_SECURE", False)
    )
    # Lax, not None: the login cookie then never rides along on another site's forms, fetches
    # or frames. Nothing needs it there: the comment iframe logs in with its own embed token
    # (moderation/embed.py, partitioned cookie included), and every login page is first-party.
    return {
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SECURE": secure,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_PARTITIONED": False,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SECURE": secure,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
    }


def normalise_database_url(url: str) -> str:
    """``url`` with PostgreSQL URLs pointed at the psycopg 3 driver we ship."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


def engine_options(
    database_url: str,
    pool_size: int = 5,
    max_overflow: int = 10,
    *,
    pool_recycle: int = 1800,
    pool_timeout: int = 10,
    pre_ping: bool = True,
    statement_timeout_ms: int = 0,
    connect_timeout: int = 0,
) -> dict[str, Any]:
    """SQLAlchemy engine options suited to the backend of ``database_url``."""
    if database_url.startswith("sqlite"):
        # Flask serves requests from several threads; SQLAlchemy's pool hands each connection
        # to one thread at a time, so sqlite3's own same-thread check is only in the way.
        # WAL, busy_timeout and foreign keys are set per connection by a connect event.
        # hide_parameters: SQL errors and echo logs omit bound values (tokens, secrets, e-mails).
        return {"connect_args": {"check_same_thread": False}, "hide_parameters": True}
    if database_url.startswith("postgresql"):
        if min(pool_size, max_overflow, pool_recycle, statement_timeout_ms, connect_timeout) < 0:
            raise RuntimeError("DATABASE_* pool sizes, timeouts and ages must not be negative.")
        options: dict[str, Any] = {
            "hide_parameters": True,  # as for SQLite: no bound values in errors or logs
            # pre_ping replaces connections PostgreSQL or a proxy closed while they sat idle.
            "pool_pre_ping": pre_ping,
            "pool_size": pool_size,
            "max_overflow": max_overflow,
            # Recycled before a firewall or PgBouncer drops them silently (often after an hour).
            "pool_recycle": pool_recycle,
            # A request that cannot get a connection soon fails with a 500 rather than piling up.
            "pool_timeout": pool_timeout,
        }
        connect_args: dict[str, Any] = {}
        if statement_timeout_ms:
            # Set per connection by the server, so a runaway query is cancelled even when the
            # worker that sent it is stuck; a session can still raise it with SET.
            connect_args["options"] = f"-c statement_timeout={statement_timeout_ms}"
        if connect_timeout:
            connect_args["connect_timeout"] = connect_timeout
        if connect_args:
            options["connect_args"] = connect_args
        return options
    return {}


def load_secret_key(instance_path: Path) -> str:
    """The development secret kept in ``instance/secret_key``, created (mode 0600) once."""
    path = instance_path / SECRET_KEY_FILE
    if not path.exists():
        instance_path.mkdir(parents=True, exist_ok=True)
        # Write a private temp file, then link it into place: of several processes starting at
        # once, exactly one wins and the others read its key, never a half-written file.
        fd, temp_name = tempfile.mkstemp(dir=instance_path, prefix=".secret_key.")
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32) + "\n")
            os.link(temp_name, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(temp_name)
    key = path.read_text().strip()
    if len(key) < 32:
        raise RuntimeError(f"{path} holds no usable secret key; delete it to generate a new one.")
    return key


def shipped_model_path() -> str | None:
    """Where the classifier package keeps its shipped model, found without importing it."""
    # find_spec on the top-level package does not import it (and scikit-learn with it).
    spec = importlib.util.find_spec("classifier")
    if spec is None or not spec.submodule_search_locations:
        return None
    return str(Path(next(iter(spec.submodule_search_locations))) / "models" / "default.skops")


def _derive_key(secret: str, purpose: str) -> str:
    return hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).hexdigest()


class Environment:
    """Typed reads of environment variables, with a clear error for malformed values."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def text(self, name: str, default: str) -> str:
        value = self._environ.get(name, "").strip()
        return value or default

    def integer(self, name: str, default: int) -> int:
        value = self._environ.get(name, "").strip()
        if not value:
            return default
        try:
            return int(value)
        except ValueError:
            raise RuntimeError(f"{name} must be a whole number, not {value!r}.") from None

    def boolean(self, name: str, default: bool) -> bool:
        value = self._environ.get(name, "").strip().lower()
        if not value:
            return default
        if value in TRUE_WORDS:
            return True
        if value in FALSE_WORDS:
            return False
        raise RuntimeError(f"{name} must be true or false, not {value!r}.")
