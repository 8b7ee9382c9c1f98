"""Fixtures for the web app: a database migrated once per run, empty tables for every test.

The database is ``TEST_DATABASE_URL`` when set (PostgreSQL, e.g.
``postgresql+psycopg://postgres@127.0.0.1:5432/test``; the run works in its own schema, dropped
and recreated first), else a temporary SQLite file. Tests marked ``postgres_only`` (or using the
``postgres_only`` fixture) are skipped on SQLite, and fail instead under ``CI=true``.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import flask_migrate
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy.orm import scoped_session

from auth.models import User
from moderation import create_app
from moderation.config import engine_options, normalise_database_url
from moderation.extensions import db
from moderation.models import Comment, Site, Thread
from moderation.status import Status

# The local OAuth provider's fixtures (provider_server, provider), for every test package.
pytest_plugins = ["tests.auth.oauth_provider"]

TEST_SCHEMA = "test_run"
TEST_SECRET_KEY = "test-secret-key-" + "0" * 48
# Environment variables create_app reads; cleared so a developer's shell cannot leak into tests.
APP_ENVIRONMENT = (
    "APP_ENV",
    "SECRET_KEY",
    "DATABASE_URL",
    "DATABASE_POOL_SIZE",
    "DATABASE_MAX_OVERFLOW",
    "REDIS_URL",
    "RATELIMIT_ENABLED",
    "RATELIMIT_STORAGE_URI",
    "PROXY_FIX_X_FOR",
    "MAX_CONTENT_LENGTH",
    "CLASSIFIER_MODEL_PATH",
    "MODERATION_IP_SALT",
    # moderation/ops.py and the PostgreSQL settings
    "METRICS_TOKEN",
    "METRICS_ALLOW",
    "METRICS_CACHE_SECONDS",
    "DATABASE_POOL_RECYCLE",
    "DATABASE_POOL_TIMEOUT",
    "DATABASE_POOL_PRE_PING",
    "DATABASE_STATEMENT_TIMEOUT_MS",
    "DATABASE_CONNECT_TIMEOUT",
    # moderation/cache.py, the comment rate limit, moderation/privacy.py
    "CACHE_ENABLED",
    "CACHE_TTL",
    "CACHE_MAX_MB",
    "CACHE_DIR",
    "MODERATION_COMMENT_RATE_LIMIT",
    "IP_HASH_ROTATION_HOURS",
    "IP_HASH_KEEP_DAYS",
    "RETENTION_AUTO",
    "RETENTION_REJECTED_DAYS",
    "RETENTION_DELIVERIES_DAYS",
)


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers these fixtures understand."""
    config.addinivalue_line(
        "markers", "postgres_only: needs PostgreSQL (TEST_DATABASE_URL); fails under CI=true"
    )


def requested_database_url() -> str | None:
    """The database URL the run was asked to use, if any."""
    url = os.environ.get("TEST_DATABASE_URL", "").strip()
    return normalise_database_url(url) if url else None


def running_on_postgres() -> bool:
    """Whether this run's database is PostgreSQL."""
    return (requested_database_url() or "").startswith("postgresql")


def require_postgres() -> None:
    """Skip the current test unless the run uses PostgreSQL; fail instead under CI=true."""
    if running_on_postgres():
        return
    reason = "needs PostgreSQL: set TEST_DATABASE_URL=postgresql+psycopg://..."
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true turns this skip into a failure)", pytrace=False)
    pytest.skip(reason)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests that use the ``postgres_only`` fixture, so a SQLite pass can deselect them."""
    for item in items:
        if "postgres_only" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres_only)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Apply the ``postgres_only`` marker."""
    if item.get_closest_marker("postgres_only") is not None:
        require_postgres()


@dataclass(frozen=True)
class TestDatabase:
    """A database for tests: its URL and, on PostgreSQL, the schema the tests work in."""

    __test__ = False  # not a test class, despite the name

    url: str
    schema: str | None = None

    @property
    def is_postgres(self) -> bool:
        """Whether this is PostgreSQL."""
        return self.url.startswith("postgresql")

    def app_config(self) -> dict[str, Any]:
        """``create_app`` overrides that point the app at this database."""
        options = engine_options(self.url)
        if self.schema is not None:
            # Every pooled connection starts with the test schema first on its search path.
            options["connect_args"] = {"options": f"-c search_path={self.schema}"}
        return {"SQLALCHEMY_DATABASE_URI": self.url, "SQLALCHEMY_ENGINE_OPTIONS": options}

    def recreate(self) -> None:
        """Start from nothing: a new empty schema (PostgreSQL) or no file (SQLite)."""
        if self.schema is None:
            path = Path(sa.make_url(self.url).database or "")
            for leftover in path.parent.glob(path.name + "*"):  # the file, -wal and -shm
                leftover.unlink()
            return
        engine = sa.create_engine(self.url)
        problem = None
        try:
            with engine.begin() as connection:
                connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
                connection.exec_driver_sql(f'CREATE SCHEMA "{self.schema}"')
        except sa.exc.OperationalError as exc:
            problem = exc.orig
        finally:
            engine.dispose()
        if problem is not None:
            shown = sa.make_url(self.url).render_as_string(hide_password=True)
            pytest.fail(
                f"TEST_DATABASE_URL is {shown}, but PostgreSQL is unreachable: {problem}",
                pytrace=False,
            )

    def drop(self) -> None:
        """Remove the schema (PostgreSQL; a SQLite file goes with its temporary folder)."""
        if self.schema is None:
            return
        engine = sa.create_engine(self.url)
        try:
            with engine.begin() as connection:
                connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
        finally:
            engine.dispose()


def requested_redis_url() -> str | None:
    """The Redis the run was asked to use (``TEST_REDIS_URL``), if any."""
    return os.environ.get("TEST_REDIS_URL", "").strip() or None


def redis_config() -> dict[str, Any]:
    """App settings for the run's Redis; nothing without ``TEST_REDIS_URL``."""
    url = requested_redis_url()
    return {"REDIS_URL": url, "RATELIMIT_STORAGE_URI": url} if url else {}


def flush_test_redis() -> None:
    """Empty the run's Redis database, so no counter or cached page outlives its test."""
    url = requested_redis_url()
    if url is None:
        return
    from redis import Redis

    connection = Redis.from_url(url)
    try:
        connection.flushdb()
    finally:
        connection.close()


def redis_reachable(host: str = "127.0.0.1", port: int = 6379) -> bool:
    """Whether a Redis server listens there (the local one by default)."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def memory_or_redis(param: str, url: str) -> Iterator[dict[str, Any]]:
    """Overrides for a ``memory``/``redis`` parametrised app; cache keys in Redis removed after."""
    if param == "memory":
        yield {}
        return
    if not redis_reachable():
        pytest.skip("needs a Redis server on 127.0.0.1:6379")
    yield {"REDIS_URL": url}
    from redis import Redis

    connection = Redis.from_url(url)
    try:
        keys = list(connection.scan_iter("moderation:cache:*"))
        if keys:
            connection.delete(*keys)
    finally:
        connection.close()


def make_test_app(
    database: TestDatabase, instance_path: Path, overrides: dict[str, Any] | None = None
) -> Flask:
    """An app for tests on ``database``: fixed secret, no CSRF tokens, no rate limits.

    With ``TEST_REDIS_URL`` set (CI's PostgreSQL + Redis pass) the app also uses that Redis,
    as a production deployment does: rate-limit counters, the read cache, the desk's counts.
    Jobs still run inline (``JOBS_SYNC`` under ``TESTING``) unless a test asks otherwise.
    """
    config = {
        "TESTING": True,
        "SECRET_KEY": TEST_SECRET_KEY,
        "WTF_CSRF_ENABLED": False,
        "RATELIMIT_ENABLED": False,
        "RATELIMIT_STORAGE_URI": "memory://",
        **redis_config(),
        **database.app_config(),
        **(overrides or {}),
    }
    return create_app(config, instance_path=instance_path)


def dispose(app: Flask) -> None:
    """Close the app's session and every pooled connection."""
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def make_database(tmp_path: Path, schema: str) -> TestDatabase:
    """A new, empty database of the run's kind: a SQLite file or a PostgreSQL schema."""
    url = requested_database_url()
    if url is None:
        database = TestDatabase(f"sqlite:///{tmp_path / (schema + '.db')}")
    elif url.startswith("postgresql"):
        database = TestDatabase(url, schema=schema)
    else:
        # Recreating means deleting: only do that to a schema or a file the run made itself.
        pytest.fail(
            "TEST_DATABASE_URL must be a PostgreSQL URL; leave it unset for a temporary SQLite "
            "database.",
            pytrace=False,
        )
    database.recreate()
    return database


@pytest.fixture(scope="session")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestDatabase]:
    """The run's database, built once by running the migrations from empty."""
    database = make_database(tmp_path_factory.mktemp("database"), TEST_SCHEMA)
    app = make_test_app(database, tmp_path_factory.mktemp("instance"))
    try:
        with app.app_context():
            flask_migrate.upgrade()
    finally:
        dispose(app)
    yield database
    database.drop()


def empty_tables() -> None:
    """Delete every row of every model table (not alembic_version), in the app context."""
    tables = db.metadata.sorted_tables
    with db.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Fail rather than hang when a leaked connection still holds a lock.
            connection.exec_driver_sql("SET LOCAL lock_timeout = '10s'")
            # DELETE, not TRUNCATE: on a test's few rows it takes 4 ms where TRUNCATE of every
            # table takes 60 ms, over a thousand times a run. Ids restart as with SQLite.
            for table in reversed(tables):
                connection.execute(table.delete())
            connection.exec_driver_sql(
                "SELECT setval(quote_ident(schemaname) || '.' || quote_ident(sequencename), "
                "1, false) FROM pg_sequences WHERE schemaname = current_schema()"
            )
        else:
            for table in reversed(tables):
                connection.execute(table.delete())


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No app configuration in the environment, as on a fresh machine; set what a test needs."""
    for name in APP_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Extra ``create_app`` overrides; override this fixture in a module to change them."""
    return {}


@pytest.fixture
def app(
    database: TestDatabase,
    app_config: dict[str, Any],
    tmp_path: Path,
    clean_env: pytest.MonkeyPatch,
) -> Iterator[Flask]:
    """A fresh app on the run's database, with empty tables (and an empty Redis, if any)."""
    flush_test_redis()
    app = make_test_app(database, tmp_path / "instance", app_config)
    with app.app_context():
        empty_tables()
    yield app
    dispose(app)


@pytest.fixture
def empty_app(
    database: TestDatabase, tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> Iterator[Flask]:
    """An app on a second database of the run's kind, without any table (for migrations)."""
    empty = make_database(tmp_path, "test_migrations")
    app = make_test_app(empty, tmp_path / "instance")
    yield app
    dispose(app)
    empty.drop()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client for ``app``."""
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    """A runner for ``app``'s CLI commands (``runner.invoke(args=[...])``)."""
    return app.test_cli_runner()


@pytest.fixture
def db_session(app: Flask) -> Iterator[scoped_session[Any]]:
    """``db.session`` inside an app context held for the whole test.

    Requests from ``client`` during the test reuse this app context and so this session:
    commit what a request should see.
    """
    with app.app_context():
        yield db.session
        db.session.rollback()


@pytest.fixture
def postgres_only() -> None:
    """Skip the test unless the run uses PostgreSQL (fails instead under CI=true)."""
    require_postgres()


@pytest.fixture
def factory(db_session: scoped_session[Any]) -> Factory:
    """Makers for sites, users, threads and comments, committed so every session sees them."""
    return Factory(db_session)


class Factory:
    """Creates valid rows with as little typing as a test needs; each call commits."""

    def __init__(self, session: scoped_session[Any]) -> None:
        self.session = session
        self._count = 0

    def _next(self) -> int:
        self._count += 1
        return self._count

    def _save(self, obj: Any) -> Any:
        self.session.add(obj)
        self.session.commit()
        return obj

    def site(self, **fields: Any) -> Site:
        """A site with default origins and settings."""
        n = self._next()
        fields.setdefault("name", f"Site {n}")
        fields.setdefault("origins", [f"https://news{n}.example"])
        return self._save(Site(**fields))

    def user(self, **fields: Any) -> User:
        """A commenter."""
        n = self._next()
        fields.setdefault("email", f"user{n}@example.org")
        fields.setdefault("display_name", f"User {n}")
        return self._save(User(**fields))

    def thread(self, site: Site | None = None, **fields: Any) -> Thread:
        """An article thread on ``site`` (a new site if none)."""
        site = site or self.site()
        n = self._next()
        fields.setdefault("url", f"{site.origins[0]}/articles/article-{n}")
        fields.setdefault("title", f"Article {n}")
        return self._save(Thread(site=site, **fields))

    def comment(self, thread: Thread | None = None, **fields: Any) -> Comment:
        """A comment on ``thread`` (a new thread if none), published unless told otherwise."""
        thread = thread or self.thread()
        n = self._next()
        body = fields.pop("body", f"Comment number {n}.")
        fields.setdefault("author_name", f"Reader {n}")
        fields.setdefault("html", f"<p>{body}</p>")
        fields.setdefault("status", Status.PUBLISHED)
        fields.setdefault("body_hash", hashlib.sha256(body.encode()).hexdigest())
        return self._save(Comment(thread=thread, site_id=thread.site_id, body=body, **fields))
