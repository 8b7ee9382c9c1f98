"""The app factory's configuration, the error pages, and the public HTML pages."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa
from flask import Flask, abort, request
from flask.testing import FlaskClient

from moderation import create_app
from moderation.errors import ApiError
from moderation.extensions import db, limiter
from moderation.status import Status

if TYPE_CHECKING:
    from tests.conftest import Factory

SQLITE_MEMORY = {"SQLALCHEMY_DATABASE_URI": "sqlite://"}


# --- configuration ----------------------------------------------------------------------------


def test_production_refuses_to_start_without_secret_key(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.setenv("APP_ENV", "production")
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app(SQLITE_MEMORY, instance_path=tmp_path)
    assert not (tmp_path / "secret_key").exists()


def test_production_refuses_a_short_secret_key(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.setenv("APP_ENV", "production")
    clean_env.setenv("SECRET_KEY", "dev")
    with pytest.raises(RuntimeError, match="too short"):
        create_app(SQLITE_MEMORY, instance_path=tmp_path)


def test_production_starts_with_secret_key_from_environment(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.setenv("APP_ENV", "production")
    clean_env.setenv("SECRET_KEY", "k" * 64)
    app = create_app(SQLITE_MEMORY, instance_path=tmp_path)
    assert app.config["SECRET_KEY"] == "k" * 64
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert not (tmp_path / "secret_key").exists()


def test_development_secret_key_is_generated_once_and_kept_private(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    first = create_app(SQLITE_MEMORY, instance_path=tmp_path)
    second = create_app(SQLITE_MEMORY, instance_path=tmp_path)
    key_file = tmp_path / "secret_key"
    assert key_file.read_text().strip() == first.config["SECRET_KEY"]
    assert len(first.config["SECRET_KEY"]) == 64
    assert second.config["SECRET_KEY"] == first.config["SECRET_KEY"]
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".secret_key")] == []


def test_ip_salt_is_derived_from_the_secret_key_unless_set(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    one = create_app({**SQLITE_MEMORY, "SECRET_KEY": "a" * 64}, instance_path=tmp_path)
    two = create_app({**SQLITE_MEMORY, "SECRET_KEY": "b" * 64}, instance_path=tmp_path)
    assert one.config["MODERATION_IP_SALT"] != two.config["MODERATION_IP_SALT"]
    assert "a" * 64 not in one.config["MODERATION_IP_SALT"]
    clean_env.setenv("MODERATION_IP_SALT", "pepper")
    three = create_app({**SQLITE_MEMORY, "SECRET_KEY": "a" * 64}, instance_path=tmp_path)
    assert three.config["MODERATION_IP_SALT"] == "pepper"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://app@db.internal/news", "postgresql+psycopg://app@db.internal/news"),
        (
            "postgres://app:pw@db.internal:5433/news",
            "postgresql+psycopg://app:pw@db.internal:5433/news",
        ),
        ("postgresql+psycopg://app@db/news", "postgresql+psycopg://app@db/news"),
    ],
)
def test_database_url_is_pointed_at_psycopg(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, url: str, expected: str
) -> None:
    clean_env.setenv("DATABASE_URL", url)
    clean_env.setenv("DATABASE_POOL_SIZE", "12")
    app = create_app({"SECRET_KEY": "s" * 64}, instance_path=tmp_path)
    assert app.config["SQLALCHEMY_DATABASE_URI"] == expected
    options = app.config["SQLALCHEMY_ENGINE_OPTIONS"]
    assert options["pool_pre_ping"] is True
    assert options["pool_size"] == 12


def test_default_database_is_sqlite_in_the_instance_folder(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    app = create_app({"SECRET_KEY": "s" * 64}, instance_path=tmp_path)
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'moderation.db'}"
    assert app.config["SQLALCHEMY_ENGINE_OPTIONS"] == {
        "connect_args": {"check_same_thread": False},
        "hide_parameters": True,
    }
    with app.app_context():
        pragmas = {
            name: db.session.execute(sa.text(f"PRAGMA {name}")).scalar()
            for name in ("journal_mode", "busy_timeout", "foreign_keys")
        }
    assert pragmas == {"journal_mode": "wal", "busy_timeout": 5000, "foreign_keys": 1}


def test_passed_config_overrides_the_environment(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.setenv("DATABASE_URL", "postgresql://elsewhere/db")
    clean_env.setenv("RATELIMIT_ENABLED", "true")
    app = create_app(
        {"DATABASE_URL": "sqlite://", "SECRET_KEY": "s" * 64, "RATELIMIT_ENABLED": False},
        instance_path=tmp_path,
    )
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "sqlite://"
    assert "pool_pre_ping" not in app.config["SQLALCHEMY_ENGINE_OPTIONS"]
    assert app.config["RATELIMIT_ENABLED"] is False


def test_environment_switches(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("RATELIMIT_ENABLED", "false")
    clean_env.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    clean_env.setenv("CLASSIFIER_MODEL_PATH", "/srv/models/site.skops")
    app = create_app({**SQLITE_MEMORY, "SECRET_KEY": "s" * 64}, instance_path=tmp_path)
    assert app.config["RATELIMIT_ENABLED"] is False
    assert app.config["RATELIMIT_STORAGE_URI"] == "redis://127.0.0.1:6379/0"
    assert app.config["CLASSIFIER_MODEL_PATH"] == "/srv/models/site.skops"


def test_defaults_need_no_redis_and_use_the_shipped_model(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    app = create_app({**SQLITE_MEMORY, "SECRET_KEY": "s" * 64}, instance_path=tmp_path)
    assert app.config["REDIS_URL"] is None
    assert app.config["RATELIMIT_STORAGE_URI"] == "memory://"
    assert app.config["RATELIMIT_ENABLED"] is True
    assert Path(app.config["CLASSIFIER_MODEL_PATH"]).name == "default.skops"


def test_malformed_environment_value_is_named(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.setenv("RATELIMIT_ENABLED", "sometimes")
    with pytest.raises(RuntimeError, match="RATELIMIT_ENABLED must be true or false"):
        create_app({**SQLITE_MEMORY, "SECRET_KEY": "s" * 64}, instance_path=tmp_path)


# --- errors -----------------------------------------------------------------------------------


@pytest.fixture
def error_routes(app: Flask) -> Flask:
    """Routes that fail in each way the handlers must cover."""

    @app.post("/api/v1/test/decision")
    def api_conflict() -> str:
        raise ApiError(409, "Someone already decided on this comment.", {"status": "published"})

    @app.get("/test/crash")
    @app.get("/api/v1/test/crash")
    def crash() -> str:
        raise RuntimeError("secret internals")

    @app.get("/test/forbidden")
    def forbidden() -> str:
        abort(403, "Only moderators of this site may see its queue.")

    @app.post("/test/upload")
    def upload() -> str:
        return str(len(request.get_data()))

    @app.get("/test/limited")
    @limiter.limit("1/minute")
    def limited() -> str:
        return "ok"

    app.config["PROPAGATE_EXCEPTIONS"] = False
    return app


def test_not_found_is_an_html_page_for_browsers(client: FlaskClient) -> None:
    response = client.get("/no/such/page", headers={"Accept": "text/html,*/*;q=0.8"})
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "<title>Not found" in page
    assert "There is nothing at this address." in page
    assert 'class="site-header"' in page  # the base layout


def test_not_found_is_json_under_api(client: FlaskClient) -> None:
    response = client.get("/api/v1/nothing")
    assert response.status_code == 404
    assert response.json == {"error": "There is nothing at this address."}


def test_clients_that_prefer_json_get_json(client: FlaskClient) -> None:
    response = client.get("/no/such/page", headers={"Accept": "application/json"})
    assert response.status_code == 404
    assert response.json == {"error": "There is nothing at this address."}


def test_method_not_allowed_keeps_the_allow_header(client: FlaskClient) -> None:
    response = client.post("/healthz")
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"]
    assert "<title>Method not allowed" in response.get_data(as_text=True)


def test_api_error_becomes_json_with_extra(error_routes: Flask, client: FlaskClient) -> None:
    response = client.post("/api/v1/test/decision")
    assert response.status_code == 409
    assert response.json == {
        "error": "Someone already decided on this comment.",
        "status": "published",
    }


def test_abort_message_is_shown(error_routes: Flask, client: FlaskClient) -> None:
    html = client.get("/test/forbidden")
    assert html.status_code == 403
    assert "Only moderators of this site may see its queue." in html.get_data(as_text=True)
    as_json = client.get("/test/forbidden", headers={"Accept": "application/json"})
    assert as_json.json == {"error": "Only moderators of this site may see its queue."}


@pytest.mark.parametrize("path", ["/test/crash", "/api/v1/test/crash"])
def test_server_error_hides_internals(error_routes: Flask, client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 500
    body = response.get_data(as_text=True)
    assert "secret internals" not in body
    if path.startswith("/api/"):
        assert response.json == {"error": "Something went wrong on our side."}
    else:
        assert "<title>Server error" in body


def test_request_too_large(error_routes: Flask, client: FlaskClient) -> None:
    error_routes.config["MAX_CONTENT_LENGTH"] = 10
    response = client.post("/test/upload", data=b"x" * 100)
    assert response.status_code == 413
    assert "<title>Too large" in response.get_data(as_text=True)


@pytest.mark.parametrize("app_config", [{"RATELIMIT_ENABLED": True}])
def test_too_many_requests(error_routes: Flask, client: FlaskClient, app_config: Any) -> None:
    assert client.get("/test/limited").status_code == 200
    response = client.get("/test/limited", headers={"Accept": "application/json"})
    assert response.status_code == 429
    assert response.json == {
        "error": "Too many requests; please slow down and try again shortly. "
        "The limit is 1 per 1 minute."
    }
    assert int(response.headers["Retry-After"]) > 0


@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": True}])
def test_form_post_without_csrf_token_is_refused(
    error_routes: Flask, client: FlaskClient, app_config: Any
) -> None:
    response = client.post("/test/upload", data={"field": "value"})
    assert response.status_code == 400
    assert "CSRF" in response.get_data(as_text=True)


@pytest.mark.parametrize("code", [400, 403, 404, 405, 409, 413, 429, 500])
def test_every_error_page_renders(app: Flask, code: int) -> None:
    with app.test_request_context("/"):
        page = app.jinja_env.get_template(f"errors/{code}.html").render(
            status=code, title="Title", message="A sentence."
        )
    assert "A sentence." in page
    assert "<script" not in page


# --- pages ------------------------------------------------------------------------------------


def test_healthz(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_front_page_without_sites_shows_how_to_start(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert "Nothing here yet." in response.get_data(as_text=True)


def test_front_page_lists_the_first_sites_articles(factory: Factory, client: FlaskClient) -> None:
    site = factory.site(name="The Harbour Gazette")
    factory.thread(site, url="https://news1.example/articles/council-vote", title="Council vote")
    factory.thread(factory.site(), title="Another site's article")
    page = client.get("/").get_data(as_text=True)
    assert "The Harbour Gazette" in page
    assert 'href="/articles/council-vote"' in page
    assert "Council vote" in page
    assert "Another site&#39;s article" not in page


def test_article_page_shows_published_comments_threaded_and_escaped(
    factory: Factory, client: FlaskClient
) -> None:
    site = factory.site()
    thread = factory.thread(site, url=f"{site.origins[0]}/articles/bridge", title="New bridge")
    first = factory.comment(
        thread, author_name="<script>alert(1)</script>", html="<p>Great <em>news</em></p>"
    )
    reply = factory.comment(thread, parent_id=first.id, author_name="Replier", html="<p>Agreed</p>")
    held = factory.comment(thread, status=Status.PENDING, html="<p>held text</p>")
    factory.comment(thread, status=Status.SPAM, html="<p>spam text</p>")
    factory.comment(thread, parent_id=held.id, author_name="Orphan", html="<p>orphan reply</p>")

    response = client.get("/articles/bridge")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "New bridge" in page
    assert "3 comments" in page
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<p>Great <em>news</em></p>" in page  # stored html is already sanitised
    assert "held text" not in page
    assert "spam text" not in page
    # The reply is nested inside its parent's list item; the orphan stands at the top level.
    parent_item = page[page.index(f'id="comment-{first.id}"') :]
    assert parent_item.index(f'id="comment-{reply.id}"') < parent_item.index("</li>")
    assert "orphan reply" in page


def test_article_page_of_unknown_slug_is_404(factory: Factory, client: FlaskClient) -> None:
    factory.thread(factory.site())
    assert client.get("/articles/no-such-article").status_code == 404


def test_article_slug_wildcards_are_literal(factory: Factory, client: FlaskClient) -> None:
    site = factory.site()
    factory.thread(site, url=f"{site.origins[0]}/articles/a-b")
    assert client.get("/articles/a_b").status_code == 404
    assert client.get("/articles/%25").status_code == 404
    assert client.get("/articles/a-b").status_code == 200


def test_pages_have_no_inline_scripts(factory: Factory, client: FlaskClient) -> None:
    site = factory.site()
    factory.comment(factory.thread(site, url=f"{site.origins[0]}/articles/x"))
    for path in ("/", "/articles/x", "/missing"):
        page = client.get(path).get_data(as_text=True)
        # Only external scripts (the widget's embed.js on article pages), never inline ones.
        assert page.count("<script") == page.count('<script src="http'), path
