"""The migrations build the schema the models describe, and undo it, on this run's database."""

from __future__ import annotations

from pathlib import Path

import flask_migrate
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask

from moderation import MIGRATIONS
from moderation.extensions import db

MODEL_TABLES = {
    "users",
    "identities",
    "login_links",
    "site_memberships",
    "api_tokens",
    "sites",
    "threads",
    "comments",
    "decisions",
    "reports",
    "site_authors",
    "author_notes",
    "author_events",
    "model_versions",
    "comment_likes",
    "site_invites",
    "webhooks",
    "webhook_deliveries",
    # Privacy (moderation/privacy.py)
    "ip_hash_keys",
    "privacy_events",
}


def tables(app: Flask) -> set[str]:
    """The tables in the app's database (its default schema)."""
    with app.app_context():
        return set(sa.inspect(db.engine).get_table_names())


def current_revision(app: Flask) -> str | None:
    """The revision the database is at."""
    with app.app_context(), db.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    """The newest revision in migrations/."""
    heads = ScriptDirectory(str(MIGRATIONS)).get_heads()
    assert len(heads) == 1, f"migrations/ has several heads {heads}; merge them"
    return heads[0]


def test_upgrade_from_empty_downgrade_and_upgrade_again(empty_app: Flask) -> None:
    assert tables(empty_app) == set()
    with empty_app.app_context():
        flask_migrate.upgrade()
    assert tables(empty_app) == MODEL_TABLES | {"alembic_version"}
    assert current_revision(empty_app) == head_revision()

    with empty_app.app_context():
        flask_migrate.downgrade(revision="-1")
    script = ScriptDirectory(str(MIGRATIONS)).get_revision(head_revision())
    assert current_revision(empty_app) == script.down_revision
    if script.down_revision is None:  # the initial revision: everything it made is gone
        assert tables(empty_app) <= {"alembic_version"}

    with empty_app.app_context():
        flask_migrate.upgrade()
    assert tables(empty_app) == MODEL_TABLES | {"alembic_version"}
    assert current_revision(empty_app) == head_revision()


def test_migrations_match_the_models(app: Flask) -> None:
    # The shared database was built by the migrations; any difference is a missing revision.
    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, db.metadata)
    assert differences == [], "models changed without a migration: flask --app wsgi db migrate"


def test_every_revision_can_be_undone() -> None:
    script = ScriptDirectory(str(MIGRATIONS))
    for revision in script.walk_revisions():
        source = Path(revision.path).read_text()
        assert "def downgrade() -> None:" in source
        assert "pass\n" not in source.split("def downgrade() -> None:")[1], revision.revision


def test_offline_sql_can_be_generated(app: Flask, capsys: pytest.CaptureFixture[str]) -> None:
    with app.app_context():
        flask_migrate.upgrade(sql=True)
    sql = capsys.readouterr().out
    assert "CREATE TABLE comments" in sql
    assert "CREATE INDEX ix_comments_site_status_created" in sql
