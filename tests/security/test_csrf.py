"""Cross-site request forgery: every state-changing route, the JSON API's cookie rules, CORS.

The app runs with CSRF tokens on, as in production (the suite's other apps turn them off).
``test_every_state_changing_route_refuses_a_forged_request`` walks the whole URL map: a route
that appears without either refusing a token-less request or a row in ``EXEMPT`` (with the
reason it is safe) fails it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from html import unescape
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import Rule

from auth.models import ApiToken, Identity, Role, SiteMembership, SiteRole, User
from moderation import embed
from moderation.extensions import db
from moderation.models import Comment, Site, Thread, Webhook
from moderation.status import Status

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
OUR_ORIGIN = "http://localhost"  # the test client's host_url
SITE_ORIGIN = "https://gazette.example"  # the newspaper embedding the widget
FOREIGN_ORIGIN = "https://evil.example"
SAME_ORIGIN_REFUSAL = "this service's own pages"  # in the 403 of moderation.api

# Routes that take no CSRF token, and why a forged cross-site request still gets nothing.
# Keys are endpoints; a whole blueprint is named "<blueprint>.*".
EXEMPT: dict[str, str] = {
    "api.*": "JSON API: a bearer token or X-Embed-Token (not ambient), or the session cookie with "
    "X-Requested-With (a cross-site form cannot add it; a cross-origin fetch needs a preflight "
    "nobody grants) from this service's own origin",
    "desk_api.*": "the review desk's JSON API: the same gate as api.*",
    "reports_api.*": "reports and audit JSON API: the same gate as api.*",
    "privacy_api.*": "admins' export and erasure JSON API: the same gate as api.*",
    "embed.session_cookie": "needs X-Requested-With; POST stores only a valid X-Embed-Token "
    "sent in a header, DELETE only forgets the widget's own cookie",
    "auth_sso.sso_login": "JSON only (a form cannot send application/json) and signed by the "
    "site's SSO secret",
    "auth_oauth.facebook_data_deletion": "called by Facebook's servers with a signed_request "
    "HMAC-signed by the app secret",
    "notifications.unsubscribe": "RFC 8058 one-click body without a token; the signed link "
    "names the recipient, and the page's own button still checks the CSRF token",
}

# Routes a forged request (valid session, no token) is sent to last: they end the session.
LAST = ("auth_email_login.logout", "auth_email_login.logout_everywhere", "auth_account.delete")


@pytest.fixture
def app_config() -> dict[str, Any]:
    """CSRF tokens on, as in production."""
    return {"WTF_CSRF_ENABLED": True}


@dataclass(frozen=True)
class World:
    """A site with an owner, an admin, a held comment and one of everything a URL can name.

    Plain values, made in an app context of their own: requests must not share the test's
    app context, or Flask-Login would keep one request's user (``g``) for the next.
    """

    site_key: str
    owner: str  # Flask-Login session ids ("<id>:<version>")
    admin: str
    admin_id: int
    author_id: int
    comment_id: int
    identity_id: int
    webhook_id: int
    token_id: int
    admin_token: str
    reader_token: str  # an embed token of a reader without a recent comment


@pytest.fixture
def world(app: Flask) -> World:
    """Everything the URL map's parameters can point at."""
    with app.app_context():
        site = Site(name="Gazette", origins=[SITE_ORIGIN])
        owner = User(email="owner@example.org", display_name="Olive Owner")
        admin = User(email="admin@example.org", display_name="Ada Admin", role=Role.ADMIN)
        author = User(email="author@example.org", display_name="Sam Author")
        reader = User(email="reader@example.org", display_name="Rae Reader")
        thread = Thread(site=site, url=f"{SITE_ORIGIN}/a/held", title="Held")
        comment = Comment(
            thread=thread,
            site=site,
            author=author,
            author_name="Sam Author",
            body="Held for review.",
            html="<p>Held for review.</p>",
            body_hash=hashlib.sha256(b"Held for review.").hexdigest(),
            status=Status.PENDING,
        )
        identity = Identity(user=admin, provider="email", subject=admin.email)
        webhook = Webhook(
            site=site, url="https://93.184.215.14/hook", events=["comment.created"], secret="s" * 32
        )
        token, _ = ApiToken.issue(owner, name="CMS")
        admin_token, plain = ApiToken.issue(admin, name="admin")
        membership = SiteMembership(user=owner, site=site, role=SiteRole.OWNER)
        db.session.add_all([comment, reader, identity, webhook, token, admin_token, membership])
        db.session.commit()
        return World(
            site_key=site.key,
            owner=owner.get_id(),
            admin=admin.get_id(),
            admin_id=admin.id,
            author_id=author.id,
            comment_id=comment.id,
            identity_id=identity.id,
            webhook_id=webhook.id,
            token_id=token.id,
            admin_token=plain,
            reader_token=embed.embed_token_for(reader),
        )


def url_for_rule(rule: Rule, world: World) -> str:
    """The rule's path with every parameter pointing at a row of ``world``."""
    values = {
        "key": world.site_key,
        "comment_id": world.comment_id,
        "user_id": world.author_id,
        "identity_id": world.identity_id,
        "invite_id": 999_999,
        "webhook_id": world.webhook_id,
        "token_id": world.token_id,
        "token": "not-a-real-token",
        "version": "zzzz9999",
    }
    unknown = sorted(set(rule.arguments) - values.keys())
    assert not unknown, f"{rule.rule}: give url_for_rule a value for {unknown}"
    path = rule.rule
    for name in rule.arguments:
        path = re.sub(rf"<(?:[^:<>]+:)?{name}>", str(values[name]), path)
    return path


def state_changing_rules(app: Flask) -> list[tuple[str, Rule]]:
    """Every (method, rule) that changes state, the session-ending ones last."""
    found = [
        (method, rule)
        for rule in app.url_map.iter_rules()
        for method in sorted((rule.methods or set()) & STATE_CHANGING)
    ]
    return sorted(found, key=lambda item: (item[1].endpoint in LAST, item[1].rule, item[0]))


def exemption(endpoint: str) -> str | None:
    """Why ``endpoint`` takes no CSRF token, if it is listed."""
    return EXEMPT.get(endpoint) or EXEMPT.get(endpoint.split(".", 1)[0] + ".*")


def sign_in(client: FlaskClient, login_id: str) -> None:
    """Put a user in the client's Flask-Login session (the cookie a browser would hold)."""
    with client.session_transaction() as session:
        session["_user_id"] = login_id
        session["_fresh"] = True


def error_of(response: Any) -> str:
    """The refusal's sentence (JSON ``error`` or the page's text)."""
    if response.is_json:
        return str((response.get_json() or {}).get("error", ""))
    return unescape(response.get_data(as_text=True))


def csrf_refused(response: Any) -> bool:
    """Whether ``response`` is Flask-WTF's refusal of a missing or bad token."""
    # Flask-WTF's sentences: "The CSRF token is missing.", "The CSRF tokens do not match." ...
    return response.status_code == 400 and "The CSRF " in error_of(response)


def snapshot(app: Flask) -> dict[str, Any]:
    """A few cheap facts every forged request must leave as they were."""
    with app.app_context():
        rows = {
            "sites": sa.select(Site.name, Site.origins, Site.settings, Site.sso_secret),
            "comments": sa.select(Comment.id, Comment.status, Comment.body),
            "users": sa.select(User.id, User.display_name, User.session_version, User.preferences),
            "tokens": sa.select(ApiToken.id, ApiToken.name),
            "webhooks": sa.select(Webhook.id, Webhook.url, Webhook.secret),
            "identities": sa.select(Identity.id),
            "members": sa.select(SiteMembership.user_id, SiteMembership.role),
        }
        return {name: sorted(map(tuple, db.session.execute(query))) for name, query in rows.items()}


def test_every_state_changing_route_refuses_a_forged_request(app: Flask, world: World) -> None:
    rules = state_changing_rules(app)
    assert len(rules) >= 40, "the URL map walk found too few routes"
    listed = {endpoint.rstrip("*") for endpoint in EXEMPT}
    stale = [
        name for name in listed if not any(rule.endpoint.startswith(name) for _, rule in rules)
    ]
    assert not stale, f"EXEMPT names routes that no longer exist: {stale}"

    before = snapshot(app)
    unsafe: list[str] = []
    for role, user in (("owner", world.owner), ("admin", world.admin)):
        client = app.test_client()
        sign_in(client, user)
        for method, rule in rules:
            path = url_for_rule(rule, world)
            label = f"{method} {rule.rule} as {role}"
            if exemption(rule.endpoint) is None:
                # What a cross-site form can send: the cookie, a plausible body, no token.
                response = client.open(path, method=method, data={"name": "Forged"})
                if not csrf_refused(response):
                    unsafe.append(f"{label}: {response.status_code} {error_of(response)[:80]}")
            elif rule.rule.startswith("/api/"):
                # The cookie, JSON, no X-Requested-With: treated exactly as no cookie at all.
                forged = client.open(path, method=method, json={"name": "Forged"})
                anonymous = app.test_client().open(path, method=method, json={"name": "Forged"})
                if forged.status_code < 400 or (forged.status_code, error_of(forged)) != (
                    anonymous.status_code,
                    error_of(anonymous),
                ):
                    unsafe.append(f"{label}: the session cookie alone counted")
            else:
                # Exempt browser routes: a cross-site form still gets nothing.
                response = client.open(path, method=method, data={"token": "forged"})
                if not 400 <= response.status_code < 500:
                    unsafe.append(f"{label}: exempt route accepted a forged form")
    assert not unsafe, "Add a CSRF token check or a reasoned EXEMPT row:\n" + "\n".join(unsafe)
    assert snapshot(app) == before


def form_token(client: FlaskClient) -> str:
    """The CSRF token of a rendered form (the account page), tied to the client's session."""
    page = client.get("/account/")
    assert page.status_code == 200
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.get_data(as_text=True))
    assert match is not None, "the account page renders no CSRF token"
    return match.group(1)


def test_a_valid_token_passes_every_browser_form(app: Flask, world: World) -> None:
    client = app.test_client()
    sign_in(client, world.admin)
    token = form_token(client)
    checked = 0
    for method, rule in state_changing_rules(app):
        if exemption(rule.endpoint) is not None or rule.endpoint in LAST:
            continue
        response = client.open(url_for_rule(rule, world), method=method, data={"csrf_token": token})
        assert not csrf_refused(response), f"{method} {rule.rule} refused a valid token"
        checked += 1
    assert checked >= 15

    # A representative few really do their work with the token (and without it did nothing).
    key = world.site_key
    ok = client.post(
        "/account/profile", data={"csrf_token": token, "profile-display_name": "Ada Renamed"}
    )
    assert ok.status_code == 302
    created = client.post("/console/tokens", data={"csrf_token": token, "name": "Newsroom CMS"})
    assert created.status_code in (200, 201, 302)
    renamed = client.post(
        f"/console/sites/{key}",
        data={"csrf_token": token, "name": "Gazette II", "origins": "https://gazette.example"},
    )
    assert renamed.status_code in (200, 302)
    after = snapshot(app)
    assert (world.admin_id, "Ada Renamed") in [user[:2] for user in after["users"]]
    assert "Newsroom CMS" in [name for _, name in after["tokens"]]
    assert "Gazette II" in [site[0] for site in after["sites"]]

    # The session-ending routes, last: a token logs out; the version bump voids the cookie.
    assert client.post("/auth/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/account/").status_code == 302
    with app.app_context():
        assert db.session.get(User, world.admin_id).get_id() != world.admin
    # A token from another session is not this session's token.
    other = app.test_client()
    sign_in(other, world.owner)
    assert form_token(other) != token
    assert csrf_refused(other.post("/account/profile", data={"csrf_token": token}))


def api_cases(app: Flask, world: World) -> list[tuple[str, str]]:
    """(method, path) of every state-changing JSON API route."""
    return [
        (method, url_for_rule(rule, world))
        for method, rule in state_changing_rules(app)
        if rule.rule.startswith("/api/")
    ]


def test_api_cookie_needs_the_header_and_our_own_origin(app: Flask, world: World) -> None:
    client = app.test_client()
    sign_in(client, world.admin)
    xhr = {"X-Requested-With": "fetch"}
    before = snapshot(app)
    cross_site = [
        {"Origin": FOREIGN_ORIGIN},
        {"Origin": "null"},  # sandboxed frames and file: pages
        {"Origin": "http://localhost.evil.example"},
        {"Origin": "http://localhost:8080"},  # another port is another origin
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},  # a sibling subdomain is not us either
        {"Referer": f"{FOREIGN_ORIGIN}/page"},
        {},  # a browser names where a state-changing fetch comes from; nothing named, refused
    ]
    cases = api_cases(app, world)
    assert len(cases) >= 15
    for method, path in cases:
        for headers in cross_site:
            response = client.open(path, method=method, json={}, headers={**xhr, **headers})
            assert response.status_code == 403, (method, path, headers, response.status_code)
            assert SAME_ORIGIN_REFUSAL in error_of(response)
    assert snapshot(app) == before

    # From our own origin, the same cookie works (whatever the route then says of the body).
    for method, path in cases:
        if path.endswith("/activate"):
            continue  # looks the version up among the stored models: seconds; rollback is checked
        response = client.open(path, method=method, json={}, headers={**xhr, "Origin": OUR_ORIGIN})
        assert response.status_code not in (401, 403), (method, path, response.json)
    for own in ({"Sec-Fetch-Site": "same-origin"}, {"Referer": f"{OUR_ORIGIN}/moderate"}):
        response = client.post("/api/v1/moderation/decisions", json={}, headers={**xhr, **own})
        assert response.status_code == 422, own  # past the gate, refused for its empty body
    # A TLS proxy that does not pass the scheme on: the browser's https origin is still ours.
    https = client.post(
        "/api/v1/moderation/decisions",
        json={"action": "approve", "comments": [{"id": world.comment_id}]},
        headers={**xhr, "Origin": "https://localhost"},
    )
    assert https.status_code == 200
    # Reads need no origin: a cross-origin page cannot add the header without a preflight.
    assert client.get("/api/v1/me", headers={**xhr, "Origin": FOREIGN_ORIGIN}).status_code == 200


def test_tokens_in_headers_are_not_ambient_and_pass_from_other_origins(
    client: FlaskClient, world: World
) -> None:
    decision = f"/api/v1/moderation/comments/{world.comment_id}/decision"
    bearer = {"Authorization": f"Bearer {world.admin_token}", "Origin": FOREIGN_ORIGIN}
    assert client.post(decision, json={"action": "approve"}, headers=bearer).status_code == 200
    # The widget's embed token in its header: also fine from anywhere (a CMS backend, say).
    body = {"site": world.site_key, "url": f"{SITE_ORIGIN}/a/1", "body": "Fine words."}
    # (Comments themselves may only come from the site's pages: the service checks that.)
    header = {"X-Embed-Token": world.reader_token, "Origin": SITE_ORIGIN}
    assert client.post("/api/v1/comments", json=body, headers=header).status_code in (201, 202)


def test_the_widgets_partitioned_cookie_needs_our_origin_too(
    client: FlaskClient, world: World
) -> None:
    https = {"base_url": "https://svc.example"}
    xhr = {"X-Requested-With": "fetch"}
    token = world.reader_token
    stored = client.post("/embed/session", headers={**xhr, "X-Embed-Token": token}, **https)
    assert stored.get_json() == {"stored": True}
    body = {"site": world.site_key, "url": f"{SITE_ORIGIN}/a/2", "body": "Kind words."}
    foreign = client.post(
        "/api/v1/comments", json=body, headers={**xhr, "Origin": FOREIGN_ORIGIN}, **https
    )
    assert foreign.status_code == 403 and SAME_ORIGIN_REFUSAL in foreign.json["error"]
    # The iframe is served from the service, so its fetches carry the service's origin.
    own = client.post(
        "/api/v1/comments", json=body, headers={**xhr, "Origin": "https://svc.example"}, **https
    )
    assert own.status_code in (201, 202), own.json
    assert own.json["comment"]["author"] == {"name": "Rae Reader"}


def test_no_answer_grants_credentials_to_a_foreign_origin(
    app: Flask, world: World, client: FlaskClient
) -> None:
    sign_in(client, world.admin)
    paths = [
        re.sub(r"<[^>]+>", "1", rule.rule)
        for rule in app.url_map.iter_rules()
        if "GET" in (rule.methods or set()) and not rule.arguments
    ] + [path for _, path in api_cases(app, world)]
    assert len(paths) > 30
    for path in paths:
        for method in ("OPTIONS", "GET"):
            response = client.open(
                path,
                method=method,
                headers={
                    "Origin": FOREIGN_ORIGIN,
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "x-requested-with",
                },
            )
            allowed = response.headers.get("Access-Control-Allow-Origin")
            assert response.headers.get("Access-Control-Allow-Credentials") is None, path
            assert allowed in (None, "*"), (path, allowed)  # "*" never carries credentials
            assert (
                "x-requested-with"
                not in response.headers.get("Access-Control-Allow-Headers", "").lower()
            )


def test_counts_cors_is_limited_to_the_sites_origins(client: FlaskClient, world: World) -> None:
    query = {"site": world.site_key, "url": f"{SITE_ORIGIN}/a/1"}
    mine = client.get(
        "/embed/counts", query_string=query, headers={"Origin": "https://gazette.example"}
    )
    assert mine.status_code == 200
    assert mine.headers["Access-Control-Allow-Origin"] == "https://gazette.example"
    assert "Origin" in mine.headers.get("Vary", "")
    assert mine.headers.get("Access-Control-Allow-Credentials") is None
    for origin in (FOREIGN_ORIGIN, "https://gazette.example.evil.example", "null"):
        theirs = client.get("/embed/counts", query_string=query, headers={"Origin": origin})
        assert theirs.status_code == 200  # public numbers, but no browser lets the page read them
        assert "Access-Control-Allow-Origin" not in theirs.headers, origin
