"""Who may do what: the ``can`` policy, the view decorators, and every protected route by role."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
from flask import Flask, g
from flask.testing import FlaskClient
from sqlalchemy.orm import scoped_session

from auth.models import ApiToken, Identity, Role, SiteMembership, SiteRole, User
from auth.permissions import (
    Permission,
    can,
    comment_refusal,
    require_login,
    require_site_role,
)
from moderation.db import utcnow
from moderation.models import Comment, Site
from moderation.policy import SiteSettings
from moderation.status import Status

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

# Routes under these prefixes need someone signed in; each must have a row in EXPECTED.
PROTECTED_PREFIXES = (
    "/api/v1/moderation",
    "/api/v1/sites",
    "/moderate",
    "/console",
    "/account",
    "/api/v1/admin",
    "/metrics",
)


@dataclass(frozen=True)
class Case:
    """How to call one protected route, and the outcome per role (in ROLES order)."""

    path: str  # with {site}, {comment} and {identity} filled in from the World
    outcomes: tuple[str, str, str, str, str, str]
    json: dict[str, Any] | None = None
    form: dict[str, str] | None = None


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


# The whole policy in one table: (method, rule) -> request and expected outcome per role.
#                                              anonymous commenter  other_mod moderator owner admin
EXPECTED: dict[tuple[str, str], Case] = {
    ("GET", "/api/v1/moderation/queue"): Case(
        "/api/v1/moderation/queue?site={site}",
        (LOGIN, FORBIDDEN, HIDDEN, OK, OK, OK),
    ),
    ("POST", "/api/v1/moderation/comments/<int:comment_id>/decision"): Case(
        "/api/v1/moderation/comments/{comment}/decision",
        (LOGIN, FORBIDDEN, HIDDEN, OK, OK, OK),
        json={"action": "approve"},
    ),
    ("GET", "/api/v1/sites/<key>"): Case(
        "/api/v1/sites/{site}",
        (LOGIN, HIDDEN, HIDDEN, OK, OK, OK),
    ),
    ("PATCH", "/api/v1/sites/<key>"): Case(
        "/api/v1/sites/{site}",
        (LOGIN, HIDDEN, HIDDEN, FORBIDDEN, OK, OK),
        json={"name": "Renamed Gazette"},
    ),
    # The review desk's pages: staff only; a site the moderator does not moderate is hidden.
    ("GET", "/moderate"): Case("/moderate?site={site}", (LOGIN, FORBIDDEN, HIDDEN, OK, OK, OK)),
    ("GET", "/moderate/audit"): Case(
        "/moderate/audit?site={site}", (LOGIN, FORBIDDEN, HIDDEN, OK, OK, OK)
    ),
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
    ("GET", "/api/v1/moderation/counts"): Case(
        "/api/v1/moderation/counts?site={site}", (LOGIN, FORBIDDEN, HIDDEN, OK, OK, OK)
    ),
    ("GET", "/api/v1/moderation/comments/<int:comment_id>"): Case(
        "/api/v1/moderation/comments/{comment}?expand=author",
        (LOGIN, FORBIDDEN, HIDDEN, OK, OK, OK),
    ),
    ("POST", "/api/v1/moderation/decisions"): Case(
        "/api/v1/moderation/decisions",
        (LOGIN, FORBIDDEN, OK, OK, OK, OK),
        json={"action": "approve", "comments": [{"id": 1}]},
    ),
    ("POST", "/api/v1/moderation/comments/<int:comment_id>/undo"): Case(
        "/api/v1/moderation/comments/{comment}/undo",
        (LOGIN, FORBIDDEN, HIDDEN, CONFLICT, CONFLICT, CONFLICT),
    ),
    ("GET", "/api/v1/moderation/authors/<int:user_id>"): Case(
        "/api/v1/moderation/authors/{author}?site={site}", (LOGIN, FORBIDDEN, HIDDEN, OK, OK, OK)
    ),
    ("POST", "/api/v1/moderation/authors/<int:user_id>/notes"): Case(
        "/api/v1/moderation/authors/{author}/notes?site={site}",
        (LOGIN, FORBIDDEN, HIDDEN, OK, OK, OK),
        json={"body": "Polite so far."},
    ),
    ("POST", "/api/v1/moderation/authors/<int:user_id>/actions"): Case(
        "/api/v1/moderation/authors/{author}/actions?site={site}",
        (LOGIN, FORBIDDEN, HIDDEN, OK, OK, OK),
        json={"action": "trust"},
    ),
    ("GET", "/api/v1/moderation/guests"): Case(
        "/api/v1/moderation/guests?site={site}&email=g%40example.org",
        (LOGIN, FORBIDDEN, HIDDEN, OK, OK, OK),
    ),
    ("POST", "/api/v1/moderation/guests/notes"): Case(
        "/api/v1/moderation/guests/notes?site={site}&email=g%40example.org",
        (LOGIN, FORBIDDEN, HIDDEN, OK, OK, OK),
        json={"body": "Posts links."},
    ),
    ("POST", "/api/v1/moderation/guests/actions"): Case(
        "/api/v1/moderation/guests/actions?site={site}&email=g%40example.org",
        (LOGIN, FORBIDDEN, HIDDEN, OK, OK, OK),
        json={"action": "ban", "message": "Spam."},
    ),
    # Reader reports, the audit log and activity (moderation/reports_api.py).
    ("GET", "/api/v1/moderation/comments/<int:comment_id>/reports"): Case(
        "/api/v1/moderation/comments/{comment}/reports", (LOGIN, FORBIDDEN, HIDDEN, OK, OK, OK)
    ),
    ("GET", "/api/v1/moderation/audit"): Case(
        "/api/v1/moderation/audit?site={site}", (LOGIN, FORBIDDEN, HIDDEN, OK, OK, OK)
    ),
    ("GET", "/api/v1/moderation/audit.csv"): Case(
        "/api/v1/moderation/audit.csv?site={site}", (LOGIN, FORBIDDEN, HIDDEN, OK, OK, OK)
    ),
    ("GET", "/api/v1/moderation/activity"): Case(
        "/api/v1/moderation/activity?site={site}", (LOGIN, FORBIDDEN, HIDDEN, OK, OK, OK)
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
    ("GET", "/metrics"): Case("/metrics", (OK, OK, OK, OK, OK, OK)),
    # The account pages are each person's own: any signed-in user, nobody else's objects.
    ("GET", "/account/"): Case("/account/", (LOGIN, OK, OK, OK, OK, OK)),
    ("POST", "/account/profile"): Case(
        "/account/profile", (LOGIN, OK, OK, OK, OK, OK), form={"profile-display_name": "New"}
    ),
    ("POST", "/account/preferences"): Case(
        "/account/preferences", (LOGIN, OK, OK, OK, OK, OK), form={"prefs-notify_replies": "y"}
    ),
    ("POST", "/account/identities/<int:identity_id>/unlink"): Case(
        "/account/identities/{identity}/unlink",  # someone else's identity
        (LOGIN, HIDDEN, HIDDEN, HIDDEN, HIDDEN, HIDDEN),
    ),
    ("GET", "/account/data.json"): Case("/account/data.json", (LOGIN, OK, OK, OK, OK, OK)),
    ("POST", "/account/delete"): Case(
        "/account/delete", (LOGIN, OK, OK, OK, OK, OK), form={"delete-confirm": "y"}
    ),
    # The site owners' console (moderation/console.py): anyone signed in may create a site;
    # owners change theirs; moderators see the overview and dashboard; others get 404.
    ("GET", "/console"): Case("/console", (LOGIN, OK, OK, OK, OK, OK)),
    ("POST", "/console/sites"): Case(
        "/console/sites",
        (LOGIN, OK, OK, OK, OK, OK),
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
    ("GET", "/console/tokens"): Case("/console/tokens", (LOGIN, OK, OK, OK, OK, OK)),
    ("POST", "/console/tokens"): Case(
        "/console/tokens", (LOGIN, OK, OK, OK, OK, OK), form={"name": "CMS"}
    ),
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


def _protected(rule: str) -> bool:
    return any(rule == prefix or rule.startswith(prefix + "/") for prefix in PROTECTED_PREFIXES)


def protected_routes(app: Flask) -> set[tuple[str, str]]:
    """Every (method, rule) of ``app`` under a protected prefix."""
    return {
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        if _protected(rule.rule)
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }


@dataclass
class World:
    """Site A (the target) and site B, with one person per role and a held comment on A."""

    site: Site
    other_site: Site
    comment: Comment
    stranger_identity: Identity
    users: dict[str, User] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)


def staff(factory: Factory, session: DBSession, site: Site, role: SiteRole, name: str) -> User:
    """A user with ``role`` on ``site``."""
    user = factory.user(display_name=name)
    session.add(SiteMembership(user=user, site=site, role=role))
    session.commit()
    return user


@pytest.fixture
def world(factory: Factory, db_session: DBSession) -> World:
    """Everyone and everything the route matrix needs."""
    site = factory.site(name="Gazette")
    other_site = factory.site(name="Herald")
    stranger = factory.user(display_name="Stranger")
    comment = factory.comment(factory.thread(site), status=Status.PENDING, author_id=stranger.id)
    identity = Identity(user=stranger, provider="email", subject=stranger.email)
    db_session.add(identity)
    users = {
        "commenter": factory.user(display_name="Cora Commenter"),
        "other_moderator": staff(factory, db_session, other_site, SiteRole.MODERATOR, "Otto"),
        "moderator": staff(factory, db_session, site, SiteRole.MODERATOR, "Mo"),
        "owner": staff(factory, db_session, site, SiteRole.OWNER, "Olive"),
        "admin": factory.user(display_name="Ada Admin", role=Role.ADMIN),
    }
    world = World(site, other_site, comment, identity, users)
    for role, user in users.items():
        token, plain = ApiToken.issue(user, name="test")
        db_session.add(token)
        world.tokens[role] = plain
    db_session.commit()
    return world


def sign_in(client: FlaskClient, user: User) -> None:
    """Put ``user`` in the client's Flask-Login session."""
    with client.session_transaction() as session:
        session["_user_id"] = user.get_id()
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
    if 200 <= code < 300:
        return OK
    return f"unexpected {code}: {response.get_data(as_text=True)[:200]}"


def test_every_protected_route_is_in_the_table(app: Flask) -> None:
    routes = protected_routes(app)
    missing = sorted(routes - EXPECTED.keys())
    assert not missing, f"New protected routes need a row in EXPECTED: {missing}"
    stale = sorted(EXPECTED.keys() - routes)
    assert not stale, f"EXPECTED lists routes that no longer exist: {stale}"


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("route", sorted(EXPECTED), ids=lambda route: " ".join(route))
def test_route_by_role(
    client: FlaskClient, world: World, route: tuple[str, str], role: str
) -> None:
    method, _ = route
    case = EXPECTED[route]
    path = case.path.format(
        site=world.site.key,
        comment=world.comment.id,
        identity=world.stranger_identity.id,
        author=world.comment.author_id,
    )
    headers: dict[str, str] = {}
    if role != "anonymous":
        if path.startswith("/api/"):
            headers["Authorization"] = f"Bearer {world.tokens[role]}"
        else:
            sign_in(client, world.users[role])
    response = client.open(path, method=method, json=case.json, data=case.form, headers=headers)
    assert outcome(response) == case.outcomes[ROLES.index(role)], response.get_data(as_text=True)


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
