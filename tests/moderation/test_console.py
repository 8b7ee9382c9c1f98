"""The site owners' console: sites, snippet, settings and preview, moderators, tokens, SSO."""

from __future__ import annotations

import re
from datetime import timedelta
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from flask import g
from flask.testing import FlaskClient
from sqlalchemy.orm import scoped_session

from auth.models import ApiToken, Role, SiteMembership, SiteRole, User
from moderation.db import utcnow
from moderation.models import Site, SiteInvite
from moderation.policy import SiteSettings
from moderation.status import Status
from tests.auth.smtp import Mailbox, link_path, log_in_by_mail, smtp_server

if TYPE_CHECKING:
    from tests.conftest import Factory

__all__ = ["smtp_server"]

DBSession = scoped_session[Any]
HOSTILE = '<script>alert("x")</script>'
PUBLIC_URL = "https://comments.example"


@pytest.fixture
def app_config(smtp_server: Mailbox) -> dict[str, Any]:
    """Mail goes to the loopback SMTP server; links use a fixed public address."""
    return {**smtp_server.mail_config(), "JOBS_SYNC": True, "PUBLIC_URL": PUBLIC_URL}


def sign_in(client: FlaskClient, user: User) -> None:
    """Put ``user`` in the client's Flask-Login session."""
    with client.session_transaction() as session:
        session["_user_id"] = user.get_id()
        session["_fresh"] = True
    # The test's app context (db_session) outlives requests: forget the user it cached.
    g.pop("_login_user", None)


def staff(factory: Factory, session: DBSession, site: Site, role: SiteRole, **fields: Any) -> User:
    """A user with ``role`` on ``site``."""
    user = factory.user(**fields)
    session.add(SiteMembership(user=user, site=site, role=role))
    session.commit()
    return user


class _Scripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.inline = 0
        self.sources: list[str] = []
        self._open = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            src = dict(attrs).get("src")
            self._open = not src
            if src:
                self.sources.append(src)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._open = False

    def handle_data(self, data: str) -> None:
        if self._open and data.strip():
            self.inline += 1


def scripts(html: str) -> _Scripts:
    """The page's script tags."""
    parser = _Scripts()
    parser.feed(html)
    return parser


# ---------------------------------------------------------------------------------------------
# (a) Sign-up, sites, the snippet
# ---------------------------------------------------------------------------------------------


def test_anonymous_people_are_sent_to_the_login_page(client: FlaskClient) -> None:
    response = client.get("/console")
    assert response.status_code == 302
    assert urlsplit(response.location).path == "/auth/login"
    assert "next=/console" in response.location


def test_signing_up_by_mail_then_creating_a_site_makes_the_creator_its_owner(
    client: FlaskClient, db_session: DBSession, smtp_server: Mailbox
) -> None:
    # A new person: the magic link creates the account (that is the sign-up).
    log_in_by_mail(client, smtp_server, "editor@gazette.example", next="/console")
    page = client.get("/console")
    assert page.status_code == 200
    assert "Create a site" in page.text

    response = client.post(
        "/console/sites",
        data={
            "name": "  The Gazette ",
            "origins": "https://gazette.example\nhttps://www.gazette.example/",
        },
    )
    assert response.status_code == 302
    site = db_session.scalar(sa.select(Site).where(Site.name == "The Gazette"))
    assert site is not None
    assert site.origins == ["https://gazette.example", "https://www.gazette.example"]
    user = db_session.scalar(sa.select(User).where(User.email == "editor@gazette.example"))
    assert user is not None and user.role_on(site) == "owner"
    assert response.location.endswith(f"/console/sites/{site.key}")

    overview = client.get(f"/console/sites/{site.key}")
    assert overview.status_code == 200
    snippet = (
        f"&lt;div id=&#34;comments&#34; data-site=&#34;{site.key}&#34;&gt;&lt;/div&gt;\n"
        f"&lt;script src=&#34;{PUBLIC_URL}/embed.js&#34; async&gt;&lt;/script&gt;"
    )
    assert snippet in overview.text
    assert 'data-copy="embed-snippet"' in overview.text
    found = scripts(overview.text)
    assert found.inline == 0
    assert found.sources == ["/static/js/console.js"]
    assert "The Gazette" in client.get("/console").text


def test_a_bad_origin_is_refused_with_a_message(
    client: FlaskClient, factory: Factory, db_session: DBSession
) -> None:
    sign_in(client, factory.user())
    response = client.post("/console/sites", data={"name": "Gazette", "origins": "gazette.example"})
    assert response.status_code == 400
    assert "is not an origin" in response.text
    assert db_session.scalar(sa.select(sa.func.count(Site.id))) == 0
    empty = client.post("/console/sites", data={"name": "", "origins": "https://a.example"})
    assert empty.status_code == 400
    assert "Enter a name." in empty.text


def test_owners_rename_a_site_and_change_its_origins(
    client: FlaskClient, factory: Factory, db_session: DBSession
) -> None:
    site = factory.site(name="Old name")
    owner = staff(factory, db_session, site, SiteRole.OWNER)
    sign_in(client, owner)
    response = client.post(
        f"/console/sites/{site.key}", data={"name": "New name", "origins": "https://new.example"}
    )
    assert response.status_code == 302
    db_session.refresh(site)
    assert (site.name, site.origins) == ("New name", ["https://new.example"])


def test_site_names_are_escaped(
    client: FlaskClient, factory: Factory, db_session: DBSession
) -> None:
    site = factory.site(name=HOSTILE)
    sign_in(client, staff(factory, db_session, site, SiteRole.OWNER))
    for path in ("/console", f"/console/sites/{site.key}", f"/console/sites/{site.key}/dashboard"):
        text = client.get(path).text
        assert HOSTILE not in text, path
        assert "&lt;script&gt;" in text, path


def test_roles_and_other_sites(
    client: FlaskClient, factory: Factory, db_session: DBSession
) -> None:
    site = factory.site()
    other = factory.site()
    moderator = staff(factory, db_session, site, SiteRole.MODERATOR)
    other_owner = staff(factory, db_session, other, SiteRole.OWNER)

    sign_in(client, moderator)
    assert client.get(f"/console/sites/{site.key}").status_code == 200
    assert client.get(f"/console/sites/{site.key}/dashboard").status_code == 200
    for page in ("settings", "moderators", "sso", "webhooks"):
        assert client.get(f"/console/sites/{site.key}/{page}").status_code == 403, page

    sign_in(client, other_owner)
    for page in ("", "/settings", "/moderators", "/sso", "/webhooks", "/dashboard"):
        assert client.get(f"/console/sites/{site.key}{page}").status_code == 404, page
    refused = client.post(
        f"/console/sites/{site.key}", data={"name": "Mine", "origins": "https://x.example"}
    )
    assert refused.status_code == 404
    db_session.refresh(site)
    assert site.name != "Mine"


# ---------------------------------------------------------------------------------------------
# (b) Moderation settings and the preview
# ---------------------------------------------------------------------------------------------


def _form_of(settings: SiteSettings, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name, value in {**settings.to_dict(), **changes}.items():
        if isinstance(value, bool):
            if value:
                data[name] = "y"
        elif isinstance(value, list):
            data[name] = "\n".join(value)
        elif value is None:
            data[name] = ""
        else:
            data[name] = str(value)
    return data


def test_the_settings_form_has_every_setting_with_its_help(
    client: FlaskClient, factory: Factory, db_session: DBSession
) -> None:
    site = factory.site()
    sign_in(client, staff(factory, db_session, site, SiteRole.OWNER))
    page = client.get(f"/console/sites/{site.key}/settings")
    assert page.status_code == 200
    for name, help_text in SiteSettings.FIELDS.items():
        assert f'name="{name}"' in page.text, name
        escaped = help_text.replace("'", "&#39;").replace('"', "&#34;")
        assert escaped in page.text, name
    assert 'type="range"' in page.text
    assert scripts(page.text).inline == 0


def test_saving_the_settings(client: FlaskClient, factory: Factory, db_session: DBSession) -> None:
    site = factory.site()
    sign_in(client, staff(factory, db_session, site, SiteRole.OWNER))
    data = _form_of(
        SiteSettings(),
        mode="pre",
        spam_hold=0.4,
        abuse_reject=0.95,
        banned_words=["idiot", "moron"],
        allow_guests=True,
        edit_minutes=15,
        notify_authors=False,
    )
    response = client.post(f"/console/sites/{site.key}/settings", data=data)
    assert response.status_code == 200, response.text
    assert "The settings were saved." in response.text
    db_session.refresh(site)
    saved = site.moderation_settings
    assert saved.mode == "pre"
    assert saved.spam_hold == pytest.approx(0.4)
    assert saved.abuse_reject == pytest.approx(0.95)
    assert saved.banned_words == ("idiot", "moron")
    assert saved.allow_guests is True
    assert saved.edit_minutes == 15
    assert saved.notify_authors is False
    assert saved.nudge is None  # left empty: none


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"spam_hold": "0.99", "spam_reject": "0.5"}, "spam_hold (0.99) must not be above"),
        ({"edit_minutes": "-1"}, "Give a whole number from 0 up."),
        ({"abuse_reject": "lots"}, "abuse_reject"),
        ({"reports_to_queue": "0"}, "Give a whole number from 1 up."),
    ],
)
def test_invalid_settings_are_shown_by_the_form_and_not_saved(
    client: FlaskClient,
    factory: Factory,
    db_session: DBSession,
    changes: dict[str, str],
    message: str,
) -> None:
    site = factory.site()
    sign_in(client, staff(factory, db_session, site, SiteRole.OWNER))
    data = {**_form_of(SiteSettings()), **changes}
    response = client.post(f"/console/sites/{site.key}/settings", data=data)
    assert response.status_code == 400
    assert message in response.text
    db_session.refresh(site)
    assert site.settings in ({}, None) or site.moderation_settings == SiteSettings()


def test_moderators_cannot_save_settings(
    client: FlaskClient, factory: Factory, db_session: DBSession
) -> None:
    site = factory.site()
    sign_in(client, staff(factory, db_session, site, SiteRole.MODERATOR))
    response = client.post(
        f"/console/sites/{site.key}/settings", data=_form_of(SiteSettings(), mode="pre")
    )
    assert response.status_code == 403
    db_session.refresh(site)
    assert site.moderation_settings.mode == "post"


def test_the_preview_replays_the_policy_over_the_latest_comments(
    client: FlaskClient, factory: Factory, db_session: DBSession
) -> None:
    site = factory.site()
    thread = factory.thread(site)
    for spam, abuse in [(0.1, 0.1), (0.3, 0.2), (0.45, 0.1), (0.6, 0.1), (0.99, 0.1), (0.1, 0.7)]:
        factory.comment(thread, spam_score=spam, abuse_score=abuse)
    factory.comment(thread, body="you idiot", spam_score=0.1, abuse_score=0.1)
    sign_in(client, staff(factory, db_session, site, SiteRole.OWNER))
    url = f"/console/sites/{site.key}/settings/preview"

    same = client.get(url).get_json()
    assert same["sample"] == 7
    # Defaults: hold at 0.5 (spam 0.6 and abuse 0.7), spam folder at 0.98.
    assert same["current"] == {"published": 4, "pending": 2, "spam": 1, "rejected": 0}
    assert same["proposed"] == same["current"]
    assert same["changed"] == 0

    lower = client.get(url, query_string={"spam_hold": "0.25", "banned_words": "idiot"}).get_json()
    assert lower["proposed"] == {"published": 1, "pending": 4, "spam": 1, "rejected": 1}
    assert lower["changed"] == 3
    assert lower["rules"]["spam_hold"] == 3  # 0.3, 0.45, 0.6
    assert lower["rules"]["banned_words"] == 1
    assert lower["current"] == same["current"]  # nothing was saved
    db_session.refresh(site)
    assert site.moderation_settings.spam_hold == pytest.approx(0.5)

    pre = client.get(url, query_string={"mode": "pre"}).get_json()
    assert pre["proposed"]["published"] == 0


def test_the_preview_refuses_invalid_values(
    client: FlaskClient, factory: Factory, db_session: DBSession
) -> None:
    site = factory.site()
    sign_in(client, staff(factory, db_session, site, SiteRole.OWNER))
    url = f"/console/sites/{site.key}/settings/preview"
    response = client.get(url, query_string={"spam_hold": "2"})
    assert response.status_code == 422
    assert "spam_hold" in response.get_json()["error"]
    crossed = client.get(url, query_string={"spam_hold": "0.9", "spam_reject": "0.5"})
    assert crossed.status_code == 422


def test_the_preview_uses_only_the_last_1000_comments(
    client: FlaskClient, factory: Factory, db_session: DBSession
) -> None:
    from moderation import console

    site = factory.site()
    thread = factory.thread(site)
    old = utcnow() - timedelta(days=1)
    factory.comment(thread, spam_score=0.9, abuse_score=0.1, created_at=old)
    for _ in range(3):
        factory.comment(thread, spam_score=0.1, abuse_score=0.1)
    sign_in(client, staff(factory, db_session, site, SiteRole.OWNER))
    original = console.PREVIEW_SAMPLE
    console.PREVIEW_SAMPLE = 3
    try:
        data = client.get(f"/console/sites/{site.key}/settings/preview").get_json()
    finally:
        console.PREVIEW_SAMPLE = original
    assert data["sample"] == 3
    assert data["current"]["pending"] == 0  # the old, spammy comment is outside the sample


# ---------------------------------------------------------------------------------------------
# (c) Moderators, API tokens, single sign-on
# ---------------------------------------------------------------------------------------------


def test_an_invited_person_logs_in_by_mail_and_becomes_a_moderator(
    app: Any, factory: Factory, db_session: DBSession, smtp_server: Mailbox
) -> None:
    site = factory.site(name="Gazette")
    owner = staff(factory, db_session, site, SiteRole.OWNER, display_name="Olive")
    owner_client = app.test_client()
    sign_in(owner_client, owner)
    sent = owner_client.post(
        f"/console/sites/{site.key}/moderators", data={"email": "Mia@Example.org"}
    )
    assert sent.status_code == 302
    mail = smtp_server.last_to("mia@example.org")
    assert "Gazette" in mail["Subject"]
    text = mail.get_body(preferencelist=("plain",)).get_content()
    match = re.search(rf"{re.escape(PUBLIC_URL)}/console/invites/\S+", text)
    assert match is not None
    invite_path = link_path(match.group(0))
    assert "mia@example.org" in owner_client.get(f"/console/sites/{site.key}/moderators").text

    # The invitee opens the link, is asked to log in, logs in by mail and lands back on it.
    invitee = app.test_client()
    g.pop("_login_user", None)  # requests share the test's app context (see sign_in)
    opened = invitee.get(invite_path)
    assert opened.status_code == 302 and "/auth/login" in opened.location
    landed = log_in_by_mail(invitee, smtp_server, "mia@example.org", next=invite_path)
    assert landed.status_code == 302 and landed.location.endswith(invite_path)
    page = invitee.get(invite_path)
    assert "Accept the invitation" in page.text
    accepted = invitee.post(invite_path)
    assert accepted.status_code == 302
    mia = db_session.scalar(sa.select(User).where(User.email == "mia@example.org"))
    assert mia is not None and mia.role_on(site) == "moderator"
    # Used up: a second use finds nothing.
    assert invitee.post(invite_path).status_code == 404
    assert invitee.get(f"/console/sites/{site.key}/dashboard").status_code == 200


def _invite(db_session: DBSession, site: Site, email: str, **fields: Any) -> str:
    import hashlib

    token = f"token-{email}"
    now = utcnow()
    db_session.add(
        SiteInvite(
            site_id=site.id,
            email=email,
            token_hash=hashlib.sha256(token.encode()).hexdigest(),
            created_at=now,
            expires_at=fields.pop("expires_at", now + timedelta(days=7)),
            **fields,
        )
    )
    db_session.commit()
    return token


def test_an_invitation_is_only_for_its_address_and_expires(
    client: FlaskClient, factory: Factory, db_session: DBSession
) -> None:
    site = factory.site()
    someone = factory.user(email="someone@example.org", email_verified=True)
    token = _invite(db_session, site, "invited@example.org")
    sign_in(client, someone)
    page = client.get(f"/console/invites/{token}")
    assert page.status_code == 200 and "another e-mail address" in page.text
    assert client.post(f"/console/invites/{token}").status_code == 403
    assert someone.role_on(site) is None

    expired = _invite(
        db_session, site, "someone@example.org", expires_at=utcnow() - timedelta(minutes=1)
    )
    assert client.get(f"/console/invites/{expired}").status_code == 404
    assert client.post(f"/console/invites/{expired}").status_code == 404
    assert client.get("/console/invites/nonsense").status_code == 404
    assert someone.role_on(site) is None


def test_inviting_someone_already_on_the_site_is_refused(
    client: FlaskClient, factory: Factory, db_session: DBSession, smtp_server: Mailbox
) -> None:
    site = factory.site()
    owner = staff(factory, db_session, site, SiteRole.OWNER)
    staff(factory, db_session, site, SiteRole.MODERATOR, email="mo@example.org")
    sign_in(client, owner)
    response = client.post(
        f"/console/sites/{site.key}/moderators", data={"email": "mo@example.org"}
    )
    assert response.status_code == 409
    assert "already works on the site" in response.text
    bad = client.post(f"/console/sites/{site.key}/moderators", data={"email": "not an address"})
    assert bad.status_code == 400
    assert smtp_server.messages == []
    assert db_session.scalar(sa.select(sa.func.count(SiteInvite.id))) == 0


def test_owners_remove_moderators_but_not_owners(
    client: FlaskClient, factory: Factory, db_session: DBSession
) -> None:
    site = factory.site()
    owner = staff(factory, db_session, site, SiteRole.OWNER)
    co_owner = staff(factory, db_session, site, SiteRole.OWNER)
    moderator = staff(factory, db_session, site, SiteRole.MODERATOR, display_name=HOSTILE)
    sign_in(client, owner)
    page = client.get(f"/console/sites/{site.key}/moderators")
    assert HOSTILE not in page.text and "&lt;script&gt;" in page.text
    removed = client.post(f"/console/sites/{site.key}/moderators/{moderator.id}/remove")
    assert removed.status_code == 302
    assert moderator.role_on(site) is None
    assert (
        client.post(f"/console/sites/{site.key}/moderators/{co_owner.id}/remove").status_code == 404
    )
    assert co_owner.role_on(site) == "owner"


def test_api_tokens_are_shown_once_and_can_be_revoked(
    client: FlaskClient, factory: Factory, db_session: DBSession
) -> None:
    user = factory.user()
    sign_in(client, user)
    created = client.post("/console/tokens", data={"name": "CMS"})
    assert created.status_code == 201
    match = re.search(r"mod_[A-Za-z0-9_-]{20,}", created.text)
    assert match is not None
    plain = match.group(0)
    token = ApiToken.find(plain)
    assert token is not None and token.user_id == user.id and token.name == "CMS"
    # Listed by name, never shown again.
    listing = client.get("/console/tokens")
    assert "CMS" in listing.text and plain not in listing.text
    assert (
        client.get("/api/v1/sites/nope", headers={"Authorization": f"Bearer {plain}"}).status_code
        == 404
    )

    assert client.post(f"/console/tokens/{token.id}/revoke").status_code == 302
    assert ApiToken.find(plain) is None
    assert (
        client.get("/api/v1/sites/nope", headers={"Authorization": f"Bearer {plain}"}).status_code
        == 401
    )

    stranger_token, _ = ApiToken.issue(factory.user(), "theirs")
    db_session.add(stranger_token)
    db_session.commit()
    assert client.post(f"/console/tokens/{stranger_token.id}/revoke").status_code == 404
    db_session.refresh(stranger_token)
    assert stranger_token.revoked_at is None
    assert client.post("/console/tokens", data={"name": ""}).status_code == 400


def test_the_sso_secret_is_shown_to_owners_and_rotated(
    client: FlaskClient, factory: Factory, db_session: DBSession
) -> None:
    site = factory.site(sso_secret="first-secret-value")
    sign_in(client, staff(factory, db_session, site, SiteRole.OWNER))
    assert "first-secret-value" in client.get(f"/console/sites/{site.key}/sso").text
    assert client.post(f"/console/sites/{site.key}/sso").status_code == 302
    db_session.refresh(site)
    assert site.sso_secret and site.sso_secret != "first-secret-value"
    assert len(site.sso_secret) >= 40
    assert site.sso_secret in client.get(f"/console/sites/{site.key}/sso").text


def test_admins_see_every_site(client: FlaskClient, factory: Factory) -> None:
    site = factory.site(name="Somebody's Gazette")
    sign_in(client, factory.user(role=Role.ADMIN))
    assert "Gazette" in client.get("/console").text
    assert client.get(f"/console/sites/{site.key}/settings").status_code == 200


def test_status_enum_is_what_the_preview_counts() -> None:
    # The preview reports every status a new comment can be routed to.
    assert {str(s) for s in Status} - {"deleted"} == {"published", "pending", "spam", "rejected"}
