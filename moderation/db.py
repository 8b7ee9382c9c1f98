"""Column types and database helpers that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import enum
import fcntl
import os
import sqlite3
import threading
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from werkzeug.exceptions import NotFound
from werkzeug.routing import IntegerConverter

__all__ = [
    "MAX_ID",
    "BigId",
    "IdConverter",
    "JSONType",
    "SQLiteWriteLock",
    "UTCDateTime",
    "enum_column_type",
    "set_sqlite_pragmas",
    "utcnow",
]

# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY, while PostgreSQL
# needs BIGINT for tables that can outgrow two billion rows.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# The largest id either can hold: SQLite refuses a larger number as a parameter (OverflowError),
# so ids from requests are checked against it before they reach a query.
MAX_ID = 2**63 - 1


class IdConverter(IntegerConverter):
    """``<int:...>`` in URL rules, bounded by ``MAX_ID``: a larger number is a 404, not a 500."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_ID)  # also documents the bound in the OpenAPI document
        super().__init__(map, *args, **kwargs)

    def to_python(self, value: str) -> int:
        """The id; 404 at once for a number no row can have."""
        # Not werkzeug's ValidationError: on a path that other methods share, it answers 405.
        if len(value) > len(str(MAX_ID)) or int(value) > MAX_ID:
            raise NotFound()
        return int(super().to_python(value))


# JSONB on PostgreSQL can be indexed and compared; plain JSON (text) elsewhere.
JSONType = sa.JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC (a callable default, evaluated per row)."""
    return datetime.now(UTC)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python, whatever the database."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Reject naive datetimes; store UTC (naive on SQLite so stored text sorts by time)."""
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"A naive datetime ({value.isoformat()}) cannot be stored; use UTC.")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Attach UTC to what SQLite hands back naive."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def enum_column_type(enum_class: type[enum.Enum], name: str, length: int = 16) -> sa.Enum:
    """A string column limited to ``enum_class``'s values by a named CHECK constraint."""
    # Stored as VARCHAR + CHECK rather than a native enum type so the schema is the same on
    # SQLite and PostgreSQL; the name feeds the "ck" naming convention (ck_<table>_<name>).
    return sa.Enum(
        enum_class,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=length,
        validate_strings=True,
        values_callable=lambda members: [member.value for member in members],
    )


def set_sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    """Per-connection SQLite settings: WAL, a busy timeout and enforced foreign keys."""
    cursor = dbapi_connection.cursor()
    try:
        # WAL lets readers proceed while one writer commits; the busy timeout makes a second
        # writer wait instead of failing at once with "database is locked".
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # SQLite ignores foreign keys (and ON DELETE) unless asked, per connection.
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER")
_HOLDS_LOCK = "moderation_write_lock"


class SQLiteWriteLock:
    """One writer at a time across threads and processes, handed over the moment it is free.

    SQLite allows one writer; a second one waits in SQLite's busy handler, which polls with
    sleeps of up to 100 ms instead of waking when the lock is released. Under many concurrent
    posts those sleeps made the latency tail (p99 0.7-1.1 s at 120 posts/s). This lock is taken
    before a transaction's first write and released as the transaction ends (or, failing that,
    when its connection goes back to the pool), so waiting writers queue on a real lock instead.
    """

    def __init__(self, database_path: str, timeout: float = 10.0) -> None:
        self.path = f"{database_path}-writelock"
        self.timeout = timeout
        self._reset()
        # After a fork (gunicorn --preload) an inherited descriptor would share one flock
        # between the processes, and the thread lock's state is the parent's: start afresh.
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._thread_lock = threading.Lock()
        self._opening = threading.Lock()
        self._fd = -1

    def _descriptor(self) -> int:
        if self._fd < 0:
            with self._opening:  # the first writers of a process arrive together
                if self._fd < 0:
                    self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        return self._fd

    def acquire(self) -> None:
        """Wait for the writer lock (OperationalError after ``timeout`` seconds)."""
        descriptor = self._descriptor()
        if not self._thread_lock.acquire(timeout=self.timeout):
            raise sqlite3.OperationalError("database is locked (writer lock timeout)")
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        except BaseException:
            self._thread_lock.release()
            raise

    def release(self) -> None:
        """Let the next writer in."""
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._thread_lock.release()

    def install(self, engine: sa.Engine) -> None:
        """Take the lock before each transaction's first write on ``engine``'s connections."""

        def before_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            info = conn.connection.info
            if not info.get(_HOLDS_LOCK) and statement.lstrip()[:7].upper().startswith(_WRITES):
                self.acquire()
                info[_HOLDS_LOCK] = True

        def done(dbapi_connection: Any, record: Any, *args: Any) -> None:
            if record is not None and record.info.pop(_HOLDS_LOCK, False):
                self.release()

        def transaction_end(conn: Any) -> None:
            # Just before the driver's COMMIT/ROLLBACK: a writer let in now waits for that
            # call (microseconds) in SQLite's busy handler; holding on until the connection goes
            # back to the pool would keep out every writer while a connection stays checked out.
            try:
                info = conn.connection.info
            except sa.exc.SQLAlchemyError:
                return  # an invalidated connection: the pool's events release the lock
            if info.pop(_HOLDS_LOCK, False):
                self.release()

        sa.event.listen(engine, "before_cursor_execute", before_execute)
        sa.event.listen(engine, "commit", transaction_end)
        sa.event.listen(engine, "rollback", transaction_end)
        for name in ("checkin", "invalidate", "close"):
            sa.event.listen(engine.pool, name, done)
