"""Who may do what: the ``can`` policy, the view decorators, and every route of the app by role."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import pytest
from flask import Flask, g
from flask.testing import FlaskClient
from joserfc import jwt
from joserfc.jwk import OctKey
from sqlalchemy.orm import scoped_session

from auth.email_login import hash_token
from auth.models import ApiToken, Identity, LoginLink, Role, SiteMembership, SiteRole, User
from auth.oauth import _deletion_serializer
from auth.permissions import (
    Permission,
    can,
    comment_refusal,
    require_login,
    require_site_role,
)
from moderation.db import utcnow
from moderation.extensions import db
from moderation.models import Comment, Site, Thread
from moderation.notify import unsubscribe_token
from moderation.policy import SiteSettings
from moderation.status import Status
from tests.auth.conftest import AUTH_ENVIRONMENT
from tests.conftest import (
    APP_ENVIRONMENT,
    TestDatabase,
    dispose,
    empty_tables,
    flush_test_redis,
    make_test_app,
)

if TYPE_CHECKING:
    from tests.conftest import Factory

DBSession = scoped_session[Any]

ROLES = ("anonymous", "commenter", "other_moderator", "moderator", "owner", "admin")

# Outcomes, by status class.
OK = "ok"  # 2xx, or a redirect somewhere other than the login page
LOGIN = "login"  # 401, or a redirect to the login page
FORBIDDEN = "forbidden"  # 403: staff of this site without enough rank
HIDDEN = "hidden"  # 404: not staff of this site, so the object does not exist for them
CONFLICT = "conflict"  # 409: allowed, but the state refuses it (e.g. nothing to undo)
INVALID = "invalid"  # 400: the request itself is refused, whoever sends it

# Facebook login configured, so its routes answer as in production (no request leaves the test).
FACEBOOK_SECRET = "facebook-app-secret"
MATRIX_CONFIG: dict[str, Any] = {
    "OAUTH_FACEBOOK_CLIENT_ID": "facebook-app-id",
    "OAUTH_FACEBOOK_CLIENT_SECRET": FACEBOOK_SECRET,
}
SSO_SECRET = "gazette-sso-secret-" + "s" * 32
ARTICLE_URL = "https://gazette.example/articles/first-story"
LOGIN_LINK = "matrix-login-link-token"


@dataclass(frozen=True)
class Case:
    """How to call one route, and the outcome per role (in ROLES order).

    ``path``, and the strings in ``json`` and ``form``, name the World's objects in braces:
    see ``World.refs``.
    """

    path: str
    outcomes: tuple[str, str, str, str, str, str]
    json: dict[str, Any] | None = None
    form: dict[str, str] | None = None
    headers: dict[str, str] | None = None


# The console's settings form with every setting at its default (checkboxes ticked are "y").
CONSOLE_SETTINGS_FORM: dict[str, str] = {
    name: ("y" if value else "")
    if isinstance(value, bool)
    else "\n".join(value)
    if isinstance(value, list)
    else ("" if value is None else str(value))
    for name, value in SiteSettings().to_dict().items()
    if value is not False
}
EVERYONE_OK = (OK, OK, OK, OK, OK, OK)
SIGNED_IN_OK = (LOGIN, OK, OK, OK, OK, OK)
STAFF_OK = (LOGIN, FORBIDDEN, HIDDEN, OK, OK, OK)  # moderators of this site and above
XHR = {"X-Requested-With": "XMLHttpRequest"}


# The whole policy in one table: (method, rule) -> request and expected outcome per role, for
# every rule of the URL map (test_every_route_is_in_the_table).
#                                              anonymous commenter  other_mod moderator owner admin
EXPECTED: dict[tuple[str, str], Case] = {
    # --- public pages: the demo site, the widget, health -------------------------------------
    ("GET", "/"): Case("/", EVERYONE_OK),
    ("GET", "/articles/<slug>"): Case("/articles/first-story", EVERYONE_OK),
    ("GET", "/static/<path:filename>"): Case("/static/js/embed.js", EVERYONE_OK),
    ("GET", "/healthz"): Case("/healthz", EVERYONE_OK),
    ("GET", "/readyz"): Case("/readyz", EVERYONE_OK),
    ("GET", "/embed.js"): Case("/embed.js", EVERYONE_OK),
    ("GET", "/embed/thread"): Case("/embed/thread?site={site}&url={article_url}", EVERYONE_OK),
    ("GET", "/embed/counts"): Case("/embed/counts?site={site}&url={article_url}", EVERYONE_OK),
    ("GET", "/embed/login-done"): Case("/embed/login-done", EVERYONE_OK),
    # Who is signed in: ``user`` is null for nobody, never an error.
    ("GET", "/embed/me"): Case("/embed/me?site={site}&url={article_url}", EVERYONE_OK),
    # Keeping the widget's cookie needs an embed token (the signed-in roles send theirs).
    ("POST", "/embed/session"): Case("/embed/session", SIGNED_IN_OK, headers=XHR),
    ("DELETE", "/embed/session"): Case("/embed/session", EVERYONE_OK, headers=XHR),
    # A signed unsubscribe link works for whoever holds it (mail clients POST it, RFC 8058).
    ("GET", "/notifications/unsubscribe/<token>"): Case(
        "/notifications/unsubscribe/{unsubscribe}", EVERYONE_OK
    ),
    ("POST", "/notifications/unsubscribe/<token>"): Case(
        "/notifications/unsubscribe/{unsubscribe}", EVERYONE_OK
    ),
    # --- the public JSON API ----------------------------------------------------------------
    ("GET", "/api/v1/openapi.json"): Case("/api/v1/openapi.json", EVERYONE_OK),
    ("GET", "/api/v1/comments"): Case(
        "/api/v1/comments?site={site}&url={article_url}", EVERYONE_OK
    ),
    ("GET", "/api/v1/counts"): Case("/api/v1/counts?site={site}&url={article_url}", EVERYONE_OK),
    ("GET", "/api/v1/me"): Case("/api/v1/me", SIGNED_IN_OK),
    # The site takes no guests: anonymous readers must sign in to post.
    ("POST", "/api/v1/comments"): Case(
        "/api/v1/comments",
        SIGNED_IN_OK,
        json={"site": "{site}", "url": ARTICLE_URL, "body": "A thoughtful reply."},
    ),
    # Someone else's comment: nobody edits or deletes it through the public API, staff included
    # (they decide on it in the desk); it is not theirs, so it is not found.
    # tests/security/test_idor.py checks the row is unchanged.
    ("PATCH", "/api/v1/comments/<int:comment_id>"): Case(
        "/api/v1/comments/{published}",
        (LOGIN, HIDDEN, HIDDEN, HIDDEN, HIDDEN, HIDDEN),
        json={"body": "Rewritten by someone else."},
    ),
    ("DELETE", "/api/v1/comments/<int:comment_id>"): Case(
        "/api/v1/comments/{published}", (LOGIN, HIDDEN, HIDDEN, HIDDEN, HIDDEN, HIDDEN)
    ),
    ("POST", "/api/v1/comments/<int:comment_id>/like"): Case(
        "/api/v1/comments/{published}/like", SIGNED_IN_OK
    ),
    ("DELETE", "/api/v1/comments/<int:comment_id>/like"): Case(
        "/api/v1/comments/{published}/like", SIGNED_IN_OK
    ),
    ("POST", "/api/v1/comments/<int:comment_id>/reports"): Case(
        "/api/v1/comments/{published}/reports", SIGNED_IN_OK, json={"reason": "spam"}
    ),
    # --- signing in and out -----------------------------------------------------------------
    ("GET", "/auth/login"): Case("/auth/login", EVERYONE_OK),
    ("POST", "/auth/email"): Case("/auth/email", EVERYONE_OK, form={"email": "new@example.org"}),
    ("GET", "/auth/email/<token>"): Case(f"/auth/email/{LOGIN_LINK}", EVERYONE_OK),
    # Using a link signs its addressee in, whoever was signed in before.
    ("POST", "/auth/email/<token>"): Case(f"/auth/email/{LOGIN_LINK}", EVERYONE_OK),
    ("GET", "/auth/popup-done"): Case("/auth/popup-done", EVERYONE_OK),
    ("POST", "/auth/logout"): Case("/auth/logout", EVERYONE_OK),
    ("POST", "/auth/logout-everywhere"): Case("/auth/logout-everywhere", EVERYONE_OK),
    ("GET", "/auth/<provider_name>/login"): Case("/auth/facebook/login", EVERYONE_OK),
    # Without the provider's code and state: refused for everyone (tests/auth/test_oauth.py
    # runs the whole flow against a real provider).
    ("GET", "/auth/<provider_name>/callback"): Case(
        "/auth/facebook/callback", (INVALID, INVALID, INVALID, INVALID, INVALID, INVALID)
    ),
    # The address step after a provider login: for someone signed in.
    ("GET", "/auth/oauth/email"): Case("/auth/oauth/email", SIGNED_IN_OK),
    ("POST", "/auth/oauth/email"): Case(
        "/auth/oauth/email", SIGNED_IN_OK, form={"email": "verify-me@example.org"}
    ),
    # Facebook's server calls these; a correctly signed request is all that counts.
    ("POST", "/auth/facebook/data-deletion"): Case(
        "/auth/facebook/data-deletion", EVERYONE_OK, form={"signed_request": "{signed_request}"}
    ),
    ("GET", "/auth/facebook/data-deletion/<code>"): Case(
        "/auth/facebook/data-deletion/{deletion_code}", EVERYONE_OK
    ),
    ("POST", "/auth/sso"): Case(
        "/auth/sso", EVERYONE_OK, json={"site": "{site}", "token": "{sso_token}"}
    ),
    # --- moderation (staff only) ------------------------------------------------------------
    ("GET", "/api/v1/moderation/queue"): Case("/api/v1/moderation/queue?site={site}", STAFF_OK),
    ("POST", "/api/v1/moderation/comments/<int:comment_id>/decision"): Case(
        "/api/v1/moderation/comments/{comment}/decision", STAFF_OK, json={"action": "approve"}
    ),
    ("GET", "/api/v1/sites/<key>"): Case(
        "/api/v1/sites/{site}", (LOGIN, HIDDEN, HIDDEN, OK, OK, OK)
    ),
    ("PATCH", "/api/v1/sites/<key>"): Case(
        "/api/v1/sites/{site}",
        (LOGIN, HIDDEN, HIDDEN, FORBIDDEN, OK, OK),
        json={"name": "Renamed Gazette"},
    ),
    # The review desk's pages: staff only; a site the moderator does not moderate is hidden.
    ("GET", "/moderate"): Case("/moderate?site={site}", STAFF_OK),
    ("GET", "/moderate/audit"): Case("/moderate/audit?site={site}", STAFF_OK),
    # The review desk API (moderation/desk_api.py). Bulk decisions answer per comment: another
    # site's comment is a 404 inside a 200.
    ("GET", "/api/v1/moderation/model-versions"): Case(
        "/api/v1/moderation/model-versions", (LOGIN, FORBIDDEN, OK, OK, OK, OK)
    ),
    # One model scores every site: only the installation's admins change it.
    ("POST", "/api/v1/moderation/model-versions/<version>/activate"): Case(
        "/api/v1/moderation/model-versions/zzzz9999/activate",
        (LOGIN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, HIDDEN),
    ),
    ("POST", "/api/v1/moderation/model-versions/rollback"): Case(
        "/api/v1/moderation/model-versions/rollback",
        (LOGIN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, CONFLICT),
    ),
    ("GET", "/api/v1/moderation/counts"): Case("/api/v1/moderation/counts?site={site}", STAFF_OK),
    ("GET", "/api/v1/moderation/comments/<int:comment_id>"): Case(
        "/api/v1/moderation/comments/{comment}?expand=author", STAFF_OK
    ),
    ("POST", "/api/v1/moderation/decisions"): Case(
        "/api/v1/moderation/decisions",
        (LOGIN, FORBIDDEN, OK, OK, OK, OK),
        json={"action": "approve", "comments": [{"id": "{comment}"}]},
    ),
    ("POST", "/api/v1/moderation/comments/<int:comment_id>/undo"): Case(
        "/api/v1/moderation/comments/{comment}/undo",
        (LOGIN, FORBIDDEN, HIDDEN, CONFLICT, CONFLICT, CONFLICT),
    ),
    ("GET", "/api/v1/moderation/authors/<int:user_id>"): Case(
        "/api/v1/moderation/authors/{author}?site={site}", STAFF_OK
    ),
    ("POST", "/api/v1/moderation/authors/<int:user_id>/notes"): Case(
        "/api/v1/moderation/authors/{author}/notes?site={site}",
        STAFF_OK,
        json={"body": "Polite so far."},
    ),
    ("POST", "/api/v1/moderation/authors/<int:user_id>/actions"): Case(
        "/api/v1/moderation/authors/{author}/actions?site={site}",
        STAFF_OK,
        json={"action": "trust"},
    ),
    ("GET", "/api/v1/moderation/guests"): Case(
        "/api/v1/moderation/guests?site={site}&email=g%40example.org", STAFF_OK
    ),
    ("POST", "/api/v1/moderation/guests/notes"): Case(
        "/api/v1/moderation/guests/notes?site={site}&email=g%40example.org",
        STAFF_OK,
        json={"body": "Posts links."},
    ),
    ("POST", "/api/v1/moderation/guests/actions"): Case(
        "/api/v1/moderation/guests/actions?site={site}&email=g%40example.org",
        STAFF_OK,
        json={"action": "ban", "message": "Spam."},
    ),
    # Reader reports, the audit log and activity (moderation/reports_api.py).
    ("GET", "/api/v1/moderation/comments/<int:comment_id>/reports"): Case(
        "/api/v1/moderation/comments/{comment}/reports", STAFF_OK
    ),
    ("GET", "/api/v1/moderation/audit"): Case("/api/v1/moderation/audit?site={site}", STAFF_OK),
    ("GET", "/api/v1/moderation/audit.csv"): Case(
        "/api/v1/moderation/audit.csv?site={site}", STAFF_OK
    ),
    ("GET", "/api/v1/moderation/activity"): Case(
        "/api/v1/moderation/activity?site={site}", STAFF_OK
    ),
    # An admin's export and erasure of someone's data (moderation/privacy.py): admins only; an
    # address nobody uses is a 404 (tests/moderation/test_privacy.py covers known ones).
    ("GET", "/api/v1/admin/privacy/export"): Case(
        "/api/v1/admin/privacy/export?email=nobody%40example.org",
        (LOGIN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, HIDDEN),
    ),
    ("POST", "/api/v1/admin/privacy/erase"): Case(
        "/api/v1/admin/privacy/erase",
        (LOGIN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, HIDDEN),
        json={"email": "nobody@example.org", "confirm": True},
    ),
    # Prometheus metrics (moderation/ops.py): by address or METRICS_TOKEN, never by role. The
    # test client is 127.0.0.1, allowed by default; tests/moderation/test_ops.py checks refusals.
    ("GET", "/metrics"): Case("/metrics", EVERYONE_OK),
    # --- the account pages: each person's own; nobody else's objects ------------------------
    ("GET", "/account/"): Case("/account/", SIGNED_IN_OK),
    ("POST", "/account/profile"): Case(
        "/account/profile", SIGNED_IN_OK, form={"profile-display_name": "New"}
    ),
    ("POST", "/account/preferences"): Case(
        "/account/preferences", SIGNED_IN_OK, form={"prefs-notify_replies": "y"}
    ),
    ("POST", "/account/identities/<int:identity_id>/unlink"): Case(
        "/account/identities/{identity}/unlink",  # someone else's identity
        (LOGIN, HIDDEN, HIDDEN, HIDDEN, HIDDEN, HIDDEN),
    ),
    ("GET", "/account/data.json"): Case("/account/data.json", SIGNED_IN_OK),
    ("POST", "/account/delete"): Case(
        "/account/delete", SIGNED_IN_OK, form={"delete-confirm": "y"}
    ),
    # --- the site owners' console (moderation/console.py) -----------------------------------
    # Anyone signed in may create a site; owners change theirs; moderators see the overview and
    # dashboard; others get 404.
    ("GET", "/console"): Case("/console", SIGNED_IN_OK),
    ("POST", "/console/sites"): Case(
        "/console/sites",
        SIGNED_IN_OK,
        form={"name": "New Gazette", "origins": "https://new.example"},
    ),
    ("GET", "/console/sites/<key>"): Case(
        "/console/sites/{site}", (LOGIN, HIDDEN, HIDDEN, OK, OK, OK)
    ),
    ("POST", "/console/sites/<key>"): Case(
        "/console/sites/{site}",
        (LOGIN, HIDDEN, HIDDEN, FORBIDDEN, OK, OK),
        form={"name": "Renamed", "origins": "https://renamed.example"},
    ),
    ("GET", "/console/sites/<key>/settings"): Case(
        "/console/sites/{site}/settings", (LOGIN, HIDDEN, HIDDEN, FORBIDDEN, OK, OK)
    ),
    ("POST", "/console/sites/<key>/settings"): Case(
        "/console/sites/{site}/settings",
        (LOGIN, HIDDEN, HIDDEN, FORBIDDEN, OK, OK),
        form=CONSOLE_SETTINGS_FORM,
    ),
    ("GET", "/console/sites/<key>/settings/preview"): Case(
        "/console/sites/{site}/settings/preview?spam_hold=0.3",
        (LOGIN, HIDDEN, HIDDEN, FORBIDDEN, OK, OK),
    ),
    ("GET", "/console/sites/<key>/moderators"): Case(
        "/console/sites/{site}/moderators", (LOGIN, HIDDEN, HIDDEN, FORBIDDEN, OK, OK)
    ),
    ("POST", "/console/sites/<key>/moderators"): Case(
        "/console/sites/{site}/moderators",
        (LOGIN, HIDDEN, HIDDEN, FORBIDDEN, OK, OK),
        form={"email": "invited@example.org"},
    ),
    ("POST", "/console/sites/<key>/moderators/<int:user_id>/remove"): Case(
        "/console/sites/{site}/moderators/{author}/remove",  # the author is no moderator
        (LOGIN, HIDDEN, HIDDEN, FORBIDDEN, HIDDEN, HIDDEN),
    ),
    ("POST", "/console/sites/<key>/invites/<int:invite_id>/revoke"): Case(
        "/console/sites/{site}/invites/999999/revoke",
        (LOGIN, HIDDEN, HIDDEN, FORBIDDEN, HIDDEN, HIDDEN),
    ),
    ("GET", "/console/invites/<token>"): Case(
        "/console/invites/not-a-token", (LOGIN, HIDDEN, HIDDEN, HIDDEN, HIDDEN, HIDDEN)
    ),
    ("POST", "/console/invites/<token>"): Case(
        "/console/invites/not-a-token", (LOGIN, HIDDEN, HIDDEN, HIDDEN, HIDDEN, HIDDEN)
    ),
    ("GET", "/console/tokens"): Case("/console/tokens", SIGNED_IN_OK),
    ("POST", "/console/tokens"): Case("/console/tokens", SIGNED_IN_OK, form={"name": "CMS"}),
    ("POST", "/console/tokens/<int:token_id>/revoke"): Case(
        "/console/tokens/999999/revoke", (LOGIN, HIDDEN, HIDDEN, HIDDEN, HIDDEN, HIDDEN)
    ),
    ("GET", "/console/sites/<key>/sso"): Case(
        "/console/sites/{site}/sso", (LOGIN, HIDDEN, HIDDEN, FORBIDDEN, OK, OK)
    ),
    ("POST", "/console/sites/<key>/sso"): Case(
        "/console/sites/{site}/sso", (LOGIN, HIDDEN, HIDDEN, FORBIDDEN, OK, OK)
    ),
    ("GET", "/console/sites/<key>/webhooks"): Case(
        "/console/sites/{site}/webhooks", (LOGIN, HIDDEN, HIDDEN, FORBIDDEN, OK, OK)
    ),
    ("POST", "/console/sites/<key>/webhooks"): Case(
        "/console/sites/{site}/webhooks",
        (LOGIN, HIDDEN, HIDDEN, FORBIDDEN, OK, OK),
        # A public address literal: no DNS lookup needed.
        form={"url": "https://93.184.215.14/hook", "events": "comment.created"},
    ),
    ("GET", "/console/sites/<key>/webhooks/<int:webhook_id>"): Case(
        "/console/sites/{site}/webhooks/999999", (LOGIN, HIDDEN, HIDDEN, FORBIDDEN, HIDDEN, HIDDEN)
    ),
    ("POST", "/console/sites/<key>/webhooks/<int:webhook_id>/secret"): Case(
        "/console/sites/{site}/webhooks/999999/secret",
        (LOGIN, HIDDEN, HIDDEN, FORBIDDEN, HIDDEN, HIDDEN),
    ),
    ("POST", "/console/sites/<key>/webhooks/<int:webhook_id>/delete"): Case(
        "/console/sites/{site}/webhooks/999999/delete",
        (LOGIN, HIDDEN, HIDDEN, FORBIDDEN, HIDDEN, HIDDEN),
    ),
    ("GET", "/console/sites/<key>/dashboard"): Case(
        "/console/sites/{site}/dashboard", (LOGIN, HIDDEN, HIDDEN, OK, OK, OK)
    ),
}


def all_routes(app: Flask) -> set[tuple[str, str]]:
    """Every (method, rule) of ``app``'s URL map (HEAD and OPTIONS answer for their GET)."""
    return {
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }


@dataclass
class World:
    """Site A (the target) and site B, with one person per role, a held and a published
    comment on A by a stranger, and the signed links the public routes take."""

    site: Site
    other_site: Site
    comment: Comment
    published: Comment
    stranger_identity: Identity
    users: dict[str, User] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    def refs(self) -> dict[str, str]:
        """The values a Case names in braces (read in the app context that built the World)."""
        return {
            "site": self.site.key,
            "other_site": self.other_site.key,
            "comment": str(self.comment.id),
            "published": str(self.published.id),
            "identity": str(self.stranger_identity.id),
            "author": str(self.comment.author_id),
            "article_url": quote(ARTICLE_URL, safe=""),
            "unsubscribe": unsubscribe_token(self.comment.author_id or 0, "replies"),
            "deletion_code": _deletion_serializer().dumps({"at": "2024-01-01", "found": False}),
            "signed_request": facebook_signed_request("no-such-facebook-user"),
            "sso_token": sso_token(self.site.key, "reader-42"),
        }


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def facebook_signed_request(facebook_user_id: str) -> str:
    """A data deletion request signed as Facebook signs it."""
    payload = _b64url(
        json.dumps({"algorithm": "HMAC-SHA256", "user_id": facebook_user_id}).encode()
    )
    signature = hmac.new(FACEBOOK_SECRET.encode(), payload.encode(), hashlib.sha256).digest()
    return f"{_b64url(signature)}.{payload}"


def sso_token(site_key: str, subject: str) -> str:
    """A current single sign-on token for ``site_key``, signed with its secret."""
    now = int(time.time())
    claims = {"sub": subject, "aud": site_key, "iat": now, "exp": now + 300}
    return jwt.encode({"alg": "HS256"}, claims, OctKey.import_key(SSO_SECRET))


def build_world(session: DBSession) -> World:
    """Everyone and everything the route matrix needs, added in one transaction."""

    def person(name: str, **fields: Any) -> User:
        user = User(display_name=name, email=f"{name.split()[0].lower()}@example.org", **fields)
        session.add(user)
        return user

    site = Site(name="Gazette", origins=["https://gazette.example"], sso_secret=SSO_SECRET)
    other_site = Site(name="Herald", origins=["https://herald.example"])
    stranger = person("Stranger")
    thread = Thread(site=site, url=ARTICLE_URL, title="First story")
    session.add_all([site, other_site, thread])
    session.flush()

    def comment(body: str, status: Status) -> Comment:
        row = Comment(
            thread=thread,
            site_id=site.id,
            author_id=stranger.id,
            author_name="Stranger",
            body=body,
            html=f"<p>{body}</p>",
            status=status,
            body_hash=hashlib.sha256(body.encode()).hexdigest(),
        )
        session.add(row)
        session.flush()  # the held comment first: the lower id
        return row

    held = comment("Held for a moderator.", Status.PENDING)
    published = comment("Already published.", Status.PUBLISHED)
    identity = Identity(user=stranger, provider="email", subject=stranger.email)
    users = {
        "commenter": person("Cora Commenter"),
        "other_moderator": person("Otto Moderator"),
        "moderator": person("Mo Moderator"),
        "owner": person("Olive Owner"),
        "admin": person("Ada Admin", role=Role.ADMIN),
    }
    session.add_all(
        [
            identity,
            SiteMembership(user=users["other_moderator"], site=other_site, role=SiteRole.MODERATOR),
            SiteMembership(user=users["moderator"], site=site, role=SiteRole.MODERATOR),
            SiteMembership(user=users["owner"], site=site, role=SiteRole.OWNER),
            LoginLink(
                email="reader@example.org",
                token_hash=hash_token(LOGIN_LINK),
                next_url="/",
                expires_at=utcnow() + timedelta(hours=1),
            ),
        ]
    )
    world = World(site, other_site, held, published, identity, users)
    for role, user in users.items():
        token, plain = ApiToken.issue(user, name="test")
        session.add(token)
        world.tokens[role] = plain
    session.commit()
    return world


@pytest.fixture
def world(db_session: DBSession) -> World:
    """The World, in the test's ``app``."""
    return build_world(db_session)


@dataclass(frozen=True)
class Visitor:
    """One role of a built World, as plain values: its session id and API token."""

    session_id: str | None
    token: str | None


def rebuild(app: Flask) -> tuple[dict[str, str], dict[str, Visitor]]:
    """Empty the database (and Redis), build the World again; its refs and visitors."""
    flush_test_redis()
    with app.app_context():
        empty_tables()
        world = build_world(db.session)
        visitors = {"anonymous": Visitor(None, None)}
        for role, user in world.users.items():
            visitors[role] = Visitor(user.get_id(), world.tokens[role])
        refs = world.refs()
        db.session.remove()
    return refs, visitors


@pytest.fixture(scope="module")
def matrix_app(database: TestDatabase, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """One app for the whole route matrix: each row rebuilds the World, not the app."""
    with pytest.MonkeyPatch.context() as environment:
        for name in APP_ENVIRONMENT + AUTH_ENVIRONMENT:
            environment.delenv(name, raising=False)
        instance: Path = tmp_path_factory.mktemp("matrix") / "instance"
        app = make_test_app(database, instance, MATRIX_CONFIG)
        yield app
        dispose(app)


def sign_in(client: FlaskClient, user: User | str) -> None:
    """Put ``user`` (or a user's session id) in the client's Flask-Login session."""
    with client.session_transaction() as session:
        session["_user_id"] = user if isinstance(user, str) else user.get_id()
        session["_fresh"] = True


def outcome(response: Any) -> str:
    """The status class of ``response``."""
    code = response.status_code
    if code in (301, 302, 303, 307, 308):
        return LOGIN if urlsplit(response.location).path == "/auth/login" else OK
    if code == 401:
        return LOGIN
    if code == 403:
        return FORBIDDEN
    if code == 409:
        return CONFLICT
    if code == 404:
        return HIDDEN
    if code == 400:
        return INVALID
    if 200 <= code < 300:
        return OK
    return f"unexpected {code}: {response.get_data(as_text=True)[:200]}"


def fill(value: Any, refs: dict[str, str]) -> Any:
    """``value`` with the World's refs put in its strings (ids stay numbers in JSON)."""
    if isinstance(value, str):
        if value.startswith("{") and value.endswith("}") and value[1:-1] in refs:
            ref = refs[value[1:-1]]
            return int(ref) if ref.isdigit() else ref
        return value.format(**refs)
    if isinstance(value, dict):
        return {name: fill(item, refs) for name, item in value.items()}
    if isinstance(value, list):
        return [fill(item, refs) for item in value]
    return value


def call(app: Flask, case: Case, method: str, refs: dict[str, str], visitor: Visitor) -> str:
    """The outcome of ``case`` for one visitor, from a client of its own."""
    client = app.test_client()
    path = case.path.format(**refs)
    headers = dict(case.headers or {})
    if visitor.session_id is not None:
        if path.startswith("/api/"):
            headers["Authorization"] = f"Bearer {visitor.token}"
        else:
            sign_in(client, visitor.session_id)
    if path == "/embed/session" and visitor.session_id is not None and method == "POST":
        with app.app_context():
            user = db.session.get(User, int(visitor.session_id.split(":")[0]))
            from moderation.embed import EMBED_TOKEN_HEADER, embed_token_for

            headers[EMBED_TOKEN_HEADER] = embed_token_for(user)
            db.session.remove()
    form = fill(case.form, refs) if case.form is not None else None
    json_body = fill(case.json, refs) if case.json is not None else None
    response = client.open(path, method=method, json=json_body, data=form, headers=headers)
    try:
        return outcome(response)
    finally:
        response.close()  # a static file's answer holds the file open


def test_every_route_is_in_the_table(matrix_app: Flask) -> None:
    routes = all_routes(matrix_app)
    missing = sorted(routes - EXPECTED.keys())
    assert not missing, f"New routes need a row in EXPECTED: {missing}"
    stale = sorted(EXPECTED.keys() - routes)
    assert not stale, f"EXPECTED lists routes that no longer exist: {stale}"


@pytest.mark.parametrize("route", sorted(EXPECTED), ids=lambda route: " ".join(route))
def test_route_by_role(matrix_app: Flask, route: tuple[str, str]) -> None:
    method, _ = route
    case = EXPECTED[route]
    refs, visitors = rebuild(matrix_app)
    got = []
    for role in ROLES:
        if method != "GET" and got and got[-1] == OK:
            # The last role's request went through and may have changed the World: the next
            # one sees it as built, so no outcome depends on the order of the roles.
            refs, visitors = rebuild(matrix_app)
        got.append(call(matrix_app, case, method, refs, visitors[role]))
    assert dict(zip(ROLES, got, strict=True)) == dict(zip(ROLES, case.outcomes, strict=True))


def test_moderator_of_a_cannot_see_or_act_on_site_b(
    client: FlaskClient, world: World, factory: Factory
) -> None:
    theirs = factory.comment(factory.thread(world.other_site), status=Status.PENDING)
    mine = {"Authorization": f"Bearer {world.tokens['moderator']}"}
    queue = client.get(f"/api/v1/moderation/queue?site={world.other_site.key}", headers=mine)
    decision = client.post(
        f"/api/v1/moderation/comments/{theirs.id}/decision",
        json={"action": "reject"},
        headers=mine,
    )
    missing = client.post(
        "/api/v1/moderation/comments/999999/decision", json={"action": "reject"}, headers=mine
    )
    site = client.get(f"/api/v1/sites/{world.other_site.key}", headers=mine)
    assert [queue.status_code, decision.status_code, site.status_code] == [404, 404, 404]
    # Another site's comment answers exactly like one that does not exist.
    assert decision.json["error"].replace(str(theirs.id), "N") == missing.json["error"].replace(
        "999999", "N"
    )


# --- can() ----------------------------------------------------------------------------------------

#                 anonymous commenter other_moderator moderator owner admin
CAN: dict[Permission, tuple[bool, bool, bool, bool, bool, bool]] = {
    Permission.COMMENT: (False, True, True, True, True, True),
    Permission.MODERATE: (False, False, False, True, True, True),
    Permission.CONFIGURE: (False, False, False, False, True, True),
    Permission.ADMIN: (False, False, False, False, False, True),
}


@pytest.mark.parametrize("action", list(CAN))
def test_can_matrix(world: World, action: Permission) -> None:
    got = tuple(can(world.users.get(role), action, world.site) for role in ROLES)
    assert got == CAN[action]
    # Actions are accepted as plain strings too.
    assert tuple(can(world.users.get(role), str(action), world.site) for role in ROLES) == got


def test_can_without_a_site(world: World) -> None:
    assert can(world.users["admin"], "admin")
    assert not can(world.users["owner"], "configure")
    assert not can(world.users["commenter"], "comment")


def test_unknown_action(world: World) -> None:
    with pytest.raises(ValueError, match="delete"):
        can(world.users["admin"], "delete", world.site)


def test_guests_may_comment_where_the_site_allows_it(world: World, db_session: DBSession) -> None:
    assert comment_refusal(None, world.site) == "Sign in to comment on this site."
    world.site.moderation_settings = SiteSettings(allow_guests=True)
    db_session.commit()
    assert can(None, Permission.COMMENT, world.site)


def test_banned_and_suspended_users_cannot_comment(world: World, db_session: DBSession) -> None:
    user = world.users["commenter"]
    user.banned = True
    db_session.commit()
    assert not can(user, "comment", world.site)
    assert comment_refusal(user, world.site) == "Your account is banned from commenting."

    user.banned = False
    until = (utcnow() + timedelta(days=2)).replace(microsecond=0)
    user.suspended_until = until
    db_session.commit()
    assert not can(user, "comment", world.site)
    assert comment_refusal(user, world.site) == (
        f"Your account is suspended until {until.isoformat(timespec='seconds')}."
    )

    user.suspended_until = utcnow() - timedelta(seconds=1)
    db_session.commit()
    assert can(user, "comment", world.site)


def test_staff_roles_do_not_lift_a_ban(world: World, db_session: DBSession) -> None:
    owner = world.users["owner"]
    owner.banned = True
    db_session.commit()
    assert not can(owner, "comment", world.site)
    assert can(owner, "configure", world.site)


@pytest.mark.parametrize("state", ["banned", "suspended"])
def test_refusal_matches_what_the_api_says(
    client: FlaskClient, world: World, db_session: DBSession, state: str
) -> None:
    user = world.users["commenter"]
    if state == "banned":
        user.banned = True
    else:
        user.suspended_until = utcnow() + timedelta(hours=3)
    db_session.commit()
    response = client.post(
        "/api/v1/comments",
        json={"site": world.site.key, "url": f"{world.site.origins[0]}/a", "body": "Hello there."},
        headers={"Authorization": f"Bearer {world.tokens['commenter']}"},
    )
    assert response.status_code == 403
    assert response.json["error"] == comment_refusal(user, world.site)


# --- the decorators ---------------------------------------------------------------------------


@pytest.fixture
def decorated(app: Flask) -> Flask:
    """The app with three test views behind the decorators."""

    @require_login
    def private() -> str:
        return "private"

    @require_site_role(SiteRole.MODERATOR)
    def moderate(key: str) -> str:
        return f"{g.site.key} {g.site_role}"

    @require_site_role("owner")
    def configure(key: str) -> str:
        return f"{g.site.key} {g.site_role}"

    @require_site_role("moderator", argument="site_key")
    def by_query() -> str:
        return g.site.key

    app.add_url_rule("/_test/private", view_func=private)
    app.add_url_rule("/_test/sites/<key>/moderate", view_func=moderate)
    app.add_url_rule("/_test/sites/<key>/configure", view_func=configure)
    app.add_url_rule("/_test/by-query", view_func=by_query)
    return app


#                 anonymous commenter other_moderator moderator owner admin
DECORATED: dict[str, tuple[int, int, int, int, int, int]] = {
    "/_test/private": (401, 200, 200, 200, 200, 200),
    "/_test/sites/{site}/moderate": (401, 404, 404, 200, 200, 200),
    "/_test/sites/{site}/configure": (401, 404, 404, 403, 200, 200),
    "/_test/by-query?site={site}": (401, 404, 404, 200, 200, 200),
    "/_test/sites/no-such-site/moderate": (401, 404, 404, 404, 404, 404),
}


@pytest.mark.parametrize("role", ROLES)
def test_decorators(decorated: Flask, world: World, role: str) -> None:
    got = []
    for template in DECORATED:
        client = decorated.test_client()
        if role != "anonymous":
            sign_in(client, world.users[role])
        got.append(client.get(template.format(site=world.site.key)).status_code)
    assert got == [codes[ROLES.index(role)] for codes in DECORATED.values()]


def test_decorator_leaves_the_site_and_role(decorated: Flask, world: World) -> None:
    client = decorated.test_client()
    sign_in(client, world.users["owner"])
    response = client.get(f"/_test/sites/{world.site.key}/moderate")
    assert response.get_data(as_text=True) == f"{world.site.key} owner"


def test_decorator_refuses_an_unknown_role() -> None:
    with pytest.raises(ValueError, match="Unknown role"):
        require_site_role("editor")
