"""The console's widget settings: threads closed after N days, login providers per site, and
the live preview of the widget on the site page."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from html import unescape
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
from flask import g
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy.orm import scoped_session

from auth.models import ApiToken, SiteMembership, SiteRole, User
from moderation.console import PREVIEW_PATH
from moderation.db import utcnow
from moderation.models import Site, Thread
from moderation.policy import InvalidSettings, SiteSettings

if TYPE_CHECKING:
    from tests.conftest import Factory

DBSession = scoped_session[Any]
ORIGIN = "https://news.example"
CLEAN = "Thanks for covering the council meeting, very informative."
OAUTH = {
    "OAUTH_X_CLIENT_ID": "x-client",
    "OAUTH_X_CLIENT_SECRET": "x-secret",
    "OAUTH_FACEBOOK_CLIENT_ID": "fb-client",
    "OAUTH_FACEBOOK_CLIENT_SECRET": "fb-secret",
}


def open_site(factory: Factory, **settings: Any) -> Site:
    """A site on ORIGIN that publishes at once, with ``settings`` changed."""
    values = {"first_comments_held": 0, "flood_seconds": 0, "duplicate_minutes": 0, **settings}
    return factory.site(origins=[ORIGIN], settings=SiteSettings(**values).to_dict())


def token_of(db_session: DBSession, user: User) -> dict[str, str]:
    """A bearer header for ``user``."""
    token, plain = ApiToken.issue(user, name="test")
    db_session.add(token)
    db_session.commit()
    return {"Authorization": f"Bearer {plain}"}


def sign_in(client: FlaskClient, user: User) -> None:
    """Put ``user`` in the client's Flask-Login session."""
    with client.session_transaction() as session:
        session["_user_id"] = user.get_id()
        session["_fresh"] = True
    g.pop("_login_user", None)


def owner_of(factory: Factory, db_session: DBSession, site: Site) -> User:
    """A new owner of ``site``."""
    user = factory.user()
    db_session.add(SiteMembership(user=user, site=site, role=SiteRole.OWNER))
    db_session.commit()
    return user


def post(client: FlaskClient, site: Site, url: str, headers: dict[str, str], **extra: Any) -> Any:
    """POST a clean comment on ``url``."""
    payload = {"site": site.key, "url": url, "body": CLEAN, **extra}
    return client.post("/api/v1/comments", json=payload, headers=headers)


def login_icons(html: str) -> set[str]:
    """The providers of the widget's login icons."""
    return set(re.findall(r'class="login-icon login-icon--([a-z]+)"', html))


# ---------------------------------------------------------------------------------------------
# Close threads after N days
# ---------------------------------------------------------------------------------------------


def test_close_after_days_is_a_validated_setting() -> None:
    assert SiteSettings().close_after_days == 0
    assert SiteSettings().with_updates({"close_after_days": "14"}).close_after_days == 14
    with pytest.raises(InvalidSettings, match="close_after_days must be 0 or more"):
        SiteSettings(close_after_days=-1)
    with pytest.raises(InvalidSettings, match="close_after_days must be a whole number"):
        SiteSettings().with_updates({"close_after_days": "soon"})


def test_a_thread_older_than_close_after_days_refuses_comments(
    client: FlaskClient, factory: Factory, db_session: DBSession
) -> None:
    site = open_site(factory, close_after_days=30)
    headers = token_of(db_session, factory.user())
    old = factory.thread(site, url=f"{ORIGIN}/old", created_at=utcnow() - timedelta(days=31))
    recent = factory.thread(site, url=f"{ORIGIN}/recent", created_at=utcnow() - timedelta(days=29))
    parent = factory.comment(old)

    refused = post(client, site, old.url, headers)
    assert refused.status_code == 403
    assert refused.json == {"error": "Comments are closed on this article."}
    reply = post(client, site, old.url, headers, parent_id=parent.id)
    assert reply.status_code == 403
    assert post(client, site, recent.url, headers).status_code == 201
    # A new article's thread starts today: open.
    assert post(client, site, f"{ORIGIN}/new", headers).status_code == 201

    listed = client.get("/api/v1/comments", query_string={"site": site.key, "url": old.url})
    assert listed.status_code == 200
    assert listed.json["thread"]["closed"] is True
    listed = client.get("/api/v1/comments", query_string={"site": site.key, "url": recent.url})
    assert listed.json["thread"]["closed"] is False
    db_session.expire_all()
    assert db_session.get(Thread, old.id).closed is False  # computed, not written


def test_zero_never_closes_and_a_change_applies_at_once(
    client: FlaskClient, factory: Factory, db_session: DBSession
) -> None:
    site = open_site(factory)
    headers = token_of(db_session, factory.user())
    old = factory.thread(site, url=f"{ORIGIN}/ancient", created_at=utcnow() - timedelta(days=3650))
    assert post(client, site, old.url, headers).status_code == 201

    site.moderation_settings = site.moderation_settings.with_updates({"close_after_days": "7"})
    db_session.commit()
    assert post(client, site, old.url, headers, body="A second, different comment.").json == {
        "error": "Comments are closed on this article."
    }


def test_the_widget_shows_the_closed_notice_for_an_old_thread(
    client: FlaskClient, factory: Factory
) -> None:
    site = open_site(factory, close_after_days=2)
    old = factory.thread(site, url=f"{ORIGIN}/old", created_at=utcnow() - timedelta(days=3))
    factory.comment(old, body="An earlier comment, still shown.")
    fresh = factory.thread(site, url=f"{ORIGIN}/fresh")

    page = client.get("/embed/thread", query_string={"site": site.key, "url": old.url})
    assert page.status_code == 200
    assert "Comments are closed." in page.text
    assert 'data-closed="true"' in page.text
    assert 'id="comment-form"' not in page.text
    assert "An earlier comment, still shown." in page.text

    page = client.get("/embed/thread", query_string={"site": site.key, "url": fresh.url})
    assert 'data-closed="false"' in page.text and 'id="comment-form"' in page.text


def test_the_console_saves_close_after_days(
    client: FlaskClient, factory: Factory, db_session: DBSession
) -> None:
    site = open_site(factory)
    sign_in(client, owner_of(factory, db_session, site))
    page = client.get(f"/console/sites/{site.key}/settings")
    assert 'name="close_after_days"' in page.text
    data = form_data(site.moderation_settings, close_after_days="10")
    response = client.post(f"/console/sites/{site.key}/settings", data=data)
    assert response.status_code == 200, response.text
    db_session.refresh(site)
    assert site.moderation_settings.close_after_days == 10

    data = form_data(site.moderation_settings, close_after_days="-3")
    response = client.post(f"/console/sites/{site.key}/settings", data=data)
    assert response.status_code == 400
    assert "Give a whole number from 0 up." in response.text


def test_the_cli_sets_the_new_settings(
    runner: FlaskCliRunner, factory: Factory, db_session: DBSession
) -> None:
    site = open_site(factory)
    result = runner.invoke(
        args=[
            "sites",
            "update",
            site.key,
            "--setting",
            "close_after_days=30",
            "--setting",
            "login_providers=e-mail, twitter",
        ]
    )
    assert result.exit_code == 0, result.output
    db_session.refresh(site)
    assert site.moderation_settings.close_after_days == 30
    assert site.moderation_settings.login_providers == ("email", "x")

    result = runner.invoke(
        args=["sites", "update", site.key, "--setting", "login_providers=email,google"]
    )
    assert result.exit_code != 0
    assert "login_providers may only name email, x, facebook, not “google”" in result.output


def test_the_api_patches_the_new_settings(
    client: FlaskClient, factory: Factory, db_session: DBSession
) -> None:
    site = open_site(factory)
    headers = token_of(db_session, owner_of(factory, db_session, site))
    response = client.patch(
        f"/api/v1/sites/{site.key}",
        json={"settings": {"close_after_days": 5, "login_providers": ["facebook"]}},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    assert response.json["site"]["settings"]["close_after_days"] == 5
    assert response.json["site"]["settings"]["login_providers"] == ["facebook"]
    response = client.patch(
        f"/api/v1/sites/{site.key}",
        json={"settings": {"login_providers": ["facebook", "myspace"]}},
        headers=headers,
    )
    assert response.status_code == 422
    assert "login_providers may only name email, x, facebook" in response.json["error"]
    db_session.refresh(site)
    assert site.moderation_settings.login_providers == ("facebook",)


# ---------------------------------------------------------------------------------------------
# Login providers per site
# ---------------------------------------------------------------------------------------------


def form_data(settings: SiteSettings, **changes: Any) -> dict[str, Any]:
    """The settings form as a browser posts it."""
    data: dict[str, Any] = {}
    for name, value in {**settings.to_dict(), **changes}.items():
        if name == "login_providers":
            data[name] = list(value)  # checkboxes: one value per ticked box
        elif isinstance(value, bool):
            if value:
                data[name] = "y"
        elif isinstance(value, list):
            data[name] = "\n".join(value)
        elif value is None:
            data[name] = ""
        else:
            data[name] = str(value)
    return data


class TestWithOAuth:
    """X and Facebook configured on this server."""

    @pytest.fixture
    def app_config(self) -> dict[str, Any]:
        return dict(OAUTH)

    def test_the_widget_shows_only_the_sites_providers(
        self, client: FlaskClient, factory: Factory
    ) -> None:
        every = open_site(factory)
        page = client.get("/embed/thread", query_string={"site": every.key, "url": ORIGIN + "/a"})
        assert login_icons(page.text) == {"email", "x", "facebook"}

        some = open_site(factory, login_providers=("facebook",))
        page = client.get("/embed/thread", query_string={"site": some.key, "url": ORIGIN + "/a"})
        assert login_icons(page.text) == {"facebook"}
        assert "/auth/x/login" not in page.text
        assert "/auth/login" not in page.text  # no e-mail login, not even behind "Change"
        # The OAuth link names the site, so the start route can check it.
        link = unescape(re.search(r'href="(/auth/facebook/login[^"]*)"', page.text).group(1))
        assert parse_qs(urlsplit(link).query)["site"] == [some.key]

    def test_the_oauth_start_route_refuses_a_provider_the_site_disallows(
        self, client: FlaskClient, factory: Factory
    ) -> None:
        site = open_site(factory, login_providers=("email", "facebook"))
        refused = client.get("/auth/x/login", query_string={"site": site.key})
        assert refused.status_code == 403
        assert "This site does not offer signing in with X." in refused.text
        allowed = client.get("/auth/facebook/login", query_string={"site": site.key})
        assert allowed.status_code == 302
        assert allowed.headers["Location"].startswith("https://www.facebook.com/")
        # Without the site (a login outside the widget) the route cannot know which site's
        # choice applies: the provider is offered, as on the service's own login page.
        assert client.get("/auth/x/login").status_code == 302

    def test_the_console_has_a_checkbox_per_configured_provider(
        self, client: FlaskClient, factory: Factory, db_session: DBSession
    ) -> None:
        site = open_site(factory)
        sign_in(client, owner_of(factory, db_session, site))
        page = client.get(f"/console/sites/{site.key}/settings")
        boxes = re.findall(
            r'<input[^>]*name="login_providers"[^>]*type="checkbox"[^>]*value="([a-z]+)"'
            r'|<input[^>]*type="checkbox"[^>]*name="login_providers"[^>]*value="([a-z]+)"',
            page.text,
        )
        values = {a or b for a, b in boxes}
        assert values == {"email", "x", "facebook"}
        assert page.text.count("checked") >= 3  # no list: every provider is on
        assert "data-provider-missing" not in page.text

        response = client.post(
            f"/console/sites/{site.key}/settings",
            data=form_data(site.moderation_settings, login_providers=["email", "x"]),
        )
        assert response.status_code == 200, response.text
        db_session.refresh(site)
        assert site.moderation_settings.login_providers == ("email", "x")
        embed = client.get("/embed/thread", query_string={"site": site.key, "url": ORIGIN + "/b"})
        assert login_icons(embed.text) == {"email", "x"}

    def test_ticking_every_provider_keeps_the_open_list(
        self, client: FlaskClient, factory: Factory, db_session: DBSession
    ) -> None:
        site = open_site(factory)
        sign_in(client, owner_of(factory, db_session, site))
        data = form_data(
            site.moderation_settings, login_providers=["email", "x", "facebook"], edit_minutes=9
        )
        assert client.post(f"/console/sites/{site.key}/settings", data=data).status_code == 200
        db_session.refresh(site)
        assert site.moderation_settings.edit_minutes == 9
        # Still "every provider": one configured later on this server will show too.
        assert site.moderation_settings.login_providers == ()


def test_without_oauth_the_console_offers_email_and_notes_the_rest(
    client: FlaskClient, factory: Factory, db_session: DBSession
) -> None:
    site = open_site(factory, login_providers=("email", "facebook"))
    sign_in(client, owner_of(factory, db_session, site))
    page = client.get(f"/console/sites/{site.key}/settings")
    assert page.status_code == 200
    assert re.search(r'<input[^>]*value="email"', page.text)
    assert not re.search(r'<input[^>]*value="(x|facebook)"', page.text)
    assert 'data-provider-missing="X"' in page.text
    assert "OAUTH_FACEBOOK_CLIENT_ID" in page.text

    # Saving keeps Facebook chosen for when the server gets its credentials.
    data = form_data(site.moderation_settings, login_providers=["email"], mode="pre")
    assert client.post(f"/console/sites/{site.key}/settings", data=data).status_code == 200
    db_session.refresh(site)
    assert site.moderation_settings.mode == "pre"
    assert site.moderation_settings.login_providers == ("email", "facebook")

    # The widget offers what is both allowed and configured: e-mail.
    embed = client.get("/embed/thread", query_string={"site": site.key, "url": ORIGIN + "/c"})
    assert login_icons(embed.text) == {"email"}


def test_the_widget_hides_email_when_the_site_disallows_it(
    client: FlaskClient, factory: Factory
) -> None:
    site = open_site(factory, login_providers=("x",))
    page = client.get("/embed/thread", query_string={"site": site.key, "url": ORIGIN + "/d"})
    assert page.status_code == 200
    assert login_icons(page.text) == set()  # X is not configured here; e-mail is not allowed
    assert "/auth/login" not in page.text


# ---------------------------------------------------------------------------------------------
# The live preview
# ---------------------------------------------------------------------------------------------


def preview_src(html: str) -> str:
    """The src of the console's preview iframe."""
    tag = re.search(r'<iframe[^>]*id="preview-frame"[^>]*>', html)
    assert tag is not None, "no preview iframe"
    return unescape(re.search(r'src="([^"]+)"', tag.group(0)).group(1))


def test_the_site_page_frames_the_real_widget_without_creating_a_thread(
    client: FlaskClient, factory: Factory, db_session: DBSession
) -> None:
    site = factory.site(origins=[ORIGIN, "https://www.news.example"])
    sign_in(client, owner_of(factory, db_session, site))
    page = client.get(f"/console/sites/{site.key}")
    assert page.status_code == 200
    src = preview_src(page.text)
    parts = urlsplit(src)
    assert parts.path == "/embed/thread" and not parts.netloc
    query = parse_qs(parts.query)
    assert query["site"] == [site.key]
    assert query["url"] == [ORIGIN + PREVIEW_PATH]
    assert query["theme"] == ["light"]
    tag = re.search(r'<iframe[^>]*id="preview-frame"[^>]*>', page.text).group(0)
    sandbox = re.search(r'sandbox="([^"]*)"', tag).group(1).split()
    # No forms, no popups: nobody posts or logs in from the preview.
    assert "allow-forms" not in sandbox and "allow-popups" not in sandbox
    assert "allow-scripts" in sandbox
    for theme in ("light", "dark", "auto"):
        assert f'name="preview-theme" value="{theme}"' in page.text
    assert "<script>" not in page.text

    frame = client.get(src)
    assert frame.status_code == 200
    assert "Leave a Reply" in frame.text
    csp = frame.headers["Content-Security-Policy"]
    assert f"frame-ancestors {ORIGIN} https://www.news.example 'self'" in csp
    dark = client.get(src.replace("theme=light", "theme=dark"))
    assert 'class="theme-dark"' in dark.text
    threads = db_session.scalar(
        sa.select(sa.func.count(Thread.id)).where(Thread.site_id == site.id)
    )
    assert threads == 0


def test_moderators_see_the_preview_too(
    client: FlaskClient, factory: Factory, db_session: DBSession
) -> None:
    site = factory.site(origins=[ORIGIN])
    moderator = factory.user()
    db_session.add(SiteMembership(user=moderator, site=site, role=SiteRole.MODERATOR))
    db_session.commit()
    sign_in(client, moderator)
    page = client.get(f"/console/sites/{site.key}")
    assert page.status_code == 200
    assert preview_src(page.text).startswith("/embed/thread?")


def test_frame_ancestors_still_refuse_other_origins(client: FlaskClient, factory: Factory) -> None:
    site = factory.site(origins=[ORIGIN])
    frame = client.get("/embed/thread", query_string={"site": site.key, "url": ORIGIN + "/e"})
    directives = dict(
        part.strip().split(" ", 1) for part in frame.headers["Content-Security-Policy"].split(";")
    )
    assert directives["frame-ancestors"].split() == [ORIGIN, "'self'"]
    # Unknown sites still frame nowhere.
    unknown = client.get("/embed/thread", query_string={"site": "nope", "url": ORIGIN + "/e"})
    assert "frame-ancestors 'none'" in unknown.headers["Content-Security-Policy"]


def test_settings_json_round_trip_keeps_the_new_fields() -> None:
    settings = SiteSettings(close_after_days=3, login_providers=("facebook", "email"))
    stored = json.loads(json.dumps(settings.to_dict()))
    again = SiteSettings.from_dict(stored)
    assert again == settings
    assert again.login_providers == ("email", "facebook")  # one canonical order
    assert again.allows_login("email") and not again.allows_login("x")
    assert SiteSettings().allows_login("x")
