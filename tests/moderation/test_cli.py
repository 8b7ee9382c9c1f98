"""The CLI contract other tools rely on (ARCHITECTURE.md, Contracts 3)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa
from click.testing import Result
from flask.testing import FlaskCliRunner
from sqlalchemy.orm import scoped_session

from auth.models import ApiToken, Role, SiteMembership, User
from moderation import PROJECT_ROOT
from moderation.models import Site
from moderation.policy import SiteSettings

if TYPE_CHECKING:
    from tests.conftest import Factory

DBSession = scoped_session[Any]


def run(runner: FlaskCliRunner, *args: str) -> Result:
    """Invoke a command the way ``flask --app wsgi ...`` would."""
    return runner.invoke(args=list(args))


def ok_json(result: Result) -> Any:
    """The JSON a successful command printed."""
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def refused(result: Result, message: str) -> None:
    """The command failed with exit code 2, ``message`` on stderr and nothing on stdout."""
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert message in result.stderr
    assert result.stdout == ""


def create_site(runner: FlaskCliRunner, *extra: str) -> dict[str, Any]:
    """A site created through the CLI, as printed."""
    return ok_json(
        run(
            runner,
            "sites",
            "create",
            "--name",
            "Gazette",
            "--origin",
            "https://news.example",
            *extra,
        )
    )


# --- sites ------------------------------------------------------------------------------------


def test_sites_create_prints_the_key_and_stores_the_site(
    runner: FlaskCliRunner, db_session: DBSession
) -> None:
    printed = ok_json(
        run(
            runner,
            "sites",
            "create",
            "--name",
            "The Harbour Gazette",
            "--origin",
            "https://News.Example/",
            "--origin",
            "http://127.0.0.1:5000",
            "--setting",
            "mode=pre",
            "--setting",
            "abuse_hold=0.7",
        )
    )
    assert set(printed) == {"site", "name", "origins", "settings"}
    assert printed["name"] == "The Harbour Gazette"
    assert printed["origins"] == ["https://news.example", "http://127.0.0.1:5000"]
    assert printed["settings"] == SiteSettings(mode="pre", abuse_hold=0.7).to_dict()
    site = db_session.scalars(sa.select(Site).where(Site.key == printed["site"])).one()
    assert site.moderation_settings.mode == "pre"
    assert site.origins == printed["origins"]


def test_sites_create_without_settings_uses_the_defaults(runner: FlaskCliRunner) -> None:
    assert create_site(runner)["settings"] == SiteSettings().to_dict()


@pytest.mark.parametrize(
    ("origin", "message"),
    [
        ("news.example", "write the scheme and host"),
        ("https://news.example/articles", "leave out any user, path, query or fragment"),
        ("ftp://news.example", "write the scheme and host"),
    ],
)
def test_sites_create_refuses_a_bad_origin(
    runner: FlaskCliRunner, db_session: DBSession, origin: str, message: str
) -> None:
    refused(run(runner, "sites", "create", "--name", "X", "--origin", origin), message)
    assert db_session.scalar(sa.select(sa.func.count()).select_from(Site)) == 0


def test_sites_create_refuses_a_bad_setting(runner: FlaskCliRunner, db_session: DBSession) -> None:
    result = run(
        runner,
        "sites",
        "create",
        "--name",
        "X",
        "--origin",
        "https://a.example",
        "--setting",
        "mode=maybe",
    )
    refused(result, "mode must be “post” or “pre”")
    assert db_session.scalar(sa.select(sa.func.count()).select_from(Site)) == 0


def test_sites_update_changes_settings(runner: FlaskCliRunner, db_session: DBSession) -> None:
    key = create_site(runner)["site"]
    printed = ok_json(
        run(
            runner,
            "sites",
            "update",
            key,
            "--setting",
            "mode=pre",
            "--setting",
            "first_comments_held=0",
            "--setting",
            "flood_seconds=0",
            "--setting",
            "abuse_hold=0.9",
            "--setting",
            "spam_hold=0.85",
            "--setting",
            "max_links=3",
        )
    )
    assert printed["site"] == key
    settings = printed["settings"]
    assert (settings["mode"], settings["first_comments_held"], settings["flood_seconds"]) == (
        "pre",
        0,
        0,
    )
    assert (settings["abuse_hold"], settings["spam_hold"], settings["max_links"]) == (0.9, 0.85, 3)
    site = db_session.scalars(sa.select(Site).where(Site.key == key)).one()
    assert site.moderation_settings == SiteSettings.from_dict(settings)


def test_sites_update_changes_name_and_origins(runner: FlaskCliRunner) -> None:
    key = create_site(runner)["site"]
    printed = ok_json(
        run(
            runner,
            "sites",
            "update",
            key,
            "--name",
            "Evening Post",
            "--origin",
            "https://post.example",
            "--origin",
            "https://www.post.example",
        )
    )
    assert printed["name"] == "Evening Post"
    assert printed["origins"] == ["https://post.example", "https://www.post.example"]


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("colour=blue", "Unknown setting “colour”"),
        ("abuse_hold=lots", "abuse_hold must be a number from 0 to 1"),
        ("max_links=-1", "max_links must be 0 or more"),
        ("mode", "--setting takes NAME=VALUE"),
    ],
)
def test_sites_update_refuses_bad_settings_and_changes_nothing(
    runner: FlaskCliRunner, db_session: DBSession, setting: str, message: str
) -> None:
    key = create_site(runner)["site"]
    refused(
        run(runner, "sites", "update", key, "--setting", "mode=pre", "--setting", setting), message
    )
    site = db_session.scalars(sa.select(Site).where(Site.key == key)).one()
    assert site.moderation_settings == SiteSettings()


def test_sites_update_of_unknown_site(runner: FlaskCliRunner) -> None:
    refused(run(runner, "sites", "update", "nope", "--setting", "mode=pre"), "no site with the key")


def test_sites_update_needs_something_to_change(runner: FlaskCliRunner) -> None:
    refused(run(runner, "sites", "update", create_site(runner)["site"]), "Nothing to change")


def test_sites_list_and_show(runner: FlaskCliRunner) -> None:
    assert ok_json(run(runner, "sites", "list")) == {"sites": []}
    first = create_site(runner)
    second = create_site(runner, "--setting", "mode=pre")
    assert ok_json(run(runner, "sites", "list")) == {"sites": [first, second]}
    assert ok_json(run(runner, "sites", "show", second["site"])) == second
    refused(run(runner, "sites", "show", "nope"), "no site with the key")


# --- users ------------------------------------------------------------------------------------


def test_users_create_a_commenter_without_token(
    runner: FlaskCliRunner, db_session: DBSession
) -> None:
    printed = ok_json(run(runner, "users", "create", "--email", "Reader@Example.org"))
    assert "token" not in printed
    user = db_session.get(User, printed["user_id"])
    assert user is not None
    assert (user.email, user.role, user.display_name) == (
        "reader@example.org",
        Role.COMMENTER,
        "reader",
    )
    assert db_session.scalar(sa.select(sa.func.count()).select_from(ApiToken)) == 0


def test_users_create_with_token_prints_a_working_token(
    runner: FlaskCliRunner, db_session: DBSession
) -> None:
    printed = ok_json(
        run(runner, "users", "create", "--email", "desk@example.org", "--name", "Desk", "--token")
    )
    token = printed["token"]
    assert token.startswith("mod_")
    stored = db_session.scalars(sa.select(ApiToken)).one()
    assert stored.token_hash == ApiToken.hash(token)
    assert token not in stored.token_hash
    found = ApiToken.find(token)
    assert found is not None and found.user_id == printed["user_id"]
    assert found.user.display_name == "Desk"


@pytest.mark.parametrize("role", ["moderator", "owner"])
def test_users_create_site_staff(runner: FlaskCliRunner, db_session: DBSession, role: str) -> None:
    key = create_site(runner)["site"]
    printed = ok_json(
        run(
            runner,
            "users",
            "create",
            "--email",
            "m@example.org",
            "--role",
            role,
            "--site",
            key,
            "--token",
        )
    )
    assert printed["role"] == role
    assert printed["site"] == key
    user = db_session.get(User, printed["user_id"])
    site = db_session.scalars(sa.select(Site).where(Site.key == key)).one()
    assert user is not None
    assert user.role == Role.COMMENTER  # staff of one site, not of all
    assert user.role_on(site) == role
    assert ApiToken.find(printed["token"]) is not None


def test_users_create_admin(
    runner: FlaskCliRunner, db_session: DBSession, factory: Factory
) -> None:
    printed = ok_json(
        run(runner, "users", "create", "--email", "root@example.org", "--role", "admin")
    )
    user = db_session.get(User, printed["user_id"])
    assert user is not None and user.role == Role.ADMIN
    assert user.role_on(factory.site()) == "admin"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "moderator"], "needs --site"),
        (["--role", "owner"], "needs --site"),
        (["--site", "whatever"], "--site only goes with --role moderator or --role owner"),
        (["--role", "admin", "--site", "whatever"], "--site only goes with"),
        (["--role", "moderator", "--site", "nope"], "no site with the key"),
        (["--role", "emperor"], "Invalid value for '--role'"),
    ],
)
def test_users_create_refuses_impossible_roles(
    runner: FlaskCliRunner, db_session: DBSession, args: list[str], message: str
) -> None:
    refused(run(runner, "users", "create", "--email", "x@example.org", *args), message)
    assert db_session.scalar(sa.select(sa.func.count()).select_from(User)) == 0


def test_users_create_refuses_a_bad_email(runner: FlaskCliRunner) -> None:
    refused(run(runner, "users", "create", "--email", "not-an-address"), "is not an e-mail address")


def test_users_create_again_reuses_the_user(runner: FlaskCliRunner, db_session: DBSession) -> None:
    one, two = create_site(runner)["site"], create_site(runner)["site"]
    first = ok_json(run(runner, "users", "create", "--email", "ed@example.org", "--token"))
    again = ok_json(
        run(
            runner,
            "users",
            "create",
            "--email",
            "ED@example.org",
            "--role",
            "moderator",
            "--site",
            one,
            "--token",
        )
    )
    promoted = ok_json(
        run(
            runner, "users", "create", "--email", "ed@example.org", "--role", "owner", "--site", one
        )
    )
    elsewhere = ok_json(
        run(
            runner,
            "users",
            "create",
            "--email",
            "ed@example.org",
            "--role",
            "moderator",
            "--site",
            two,
        )
    )
    assert first["user_id"] == again["user_id"] == promoted["user_id"] == elsewhere["user_id"]
    assert first["token"] != again["token"]
    assert ApiToken.find(first["token"]) is not None  # the earlier token keeps working
    assert db_session.scalar(sa.select(sa.func.count()).select_from(User)) == 1
    roles = db_session.execute(
        sa.select(Site.key, SiteMembership.role).join(Site).order_by(SiteMembership.id)
    ).all()
    assert [(k, str(r)) for k, r in roles] == [(one, "owner"), (two, "moderator")]


# --- the real entry point ---------------------------------------------------------------------


def test_flask_app_wsgi_end_to_end(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "SECRET_KEY": "cli-test-" + "0" * 55,
    }
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]

    def flask_run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*flask, *args], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120
        )

    assert flask_run("db", "upgrade").returncode == 0
    created = flask_run("sites", "create", "--name", "Demo", "--origin", "http://127.0.0.1:5000")
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)["site"]
    user = flask_run(
        "users",
        "create",
        "--email",
        "mod@example.org",
        "--role",
        "moderator",
        "--site",
        key,
        "--token",
    )
    assert set(json.loads(user.stdout)) >= {"user_id", "token"}
    bad = flask_run("sites", "update", key, "--setting", "spam_hold=2")
    assert bad.returncode == 2
    assert "spam_hold must be a number from 0 to 1" in bad.stderr
    assert bad.stdout == ""
