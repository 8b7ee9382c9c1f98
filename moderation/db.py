"""Column types and database helpers that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect

__all__ = [
    "BigId",
    "JSONType",
    "UTCDateTime",
    "enum_column_type",
    "set_sqlite_pragmas",
    "utcnow",
]

# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY, while PostgreSQL
# needs BIGINT for tables that can outgrow two billion rows.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

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
