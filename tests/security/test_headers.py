"""Security headers on every response, and a strict nonce CSP on every HTML page.

The walk is generated from ``app.url_map``: every GET route is requested, anonymously and as an
admin, and a route with no URL below (and no reason to skip it) fails the coverage test.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import html5lib
import pytest
from flask import Flask, g
from flask.testing import FlaskClient
from sqlalchemy.orm import scoped_session
from werkzeug.test import TestResponse

from auth.models import Role, SiteMembership, SiteRole, User
from moderation.models import Webhook
from moderation.security import PERMISSIONS_POLICY
from tests.conftest import Factory

ORIGIN = "https://news.example"
AVATAR_HOST = "https://pbs.avatars.example"
ADMIN = "admin"
ANONYMOUS = "anonymous"

# Where each GET endpoint is asked for; {site}, {comment}, {user}, {webhook} come from the world.
ROUTES: dict[str, str] = {
    "site.index": "/",
    "site.article": "/articles/story",
    "auth_account.page": "/account/",
    "auth_account.download_data": "/account/data.json",
    "auth_email_login.login": "/auth/login",
    "auth_email_login.confirm": "/auth/email/not-a-real-token",
    "auth_email_login.popup_done": "/auth/popup-done",
    "auth_oauth.login": "/auth/x/login",
    "auth_oauth.callback": "/auth/x/callback?state=s&code=c",
    "auth_oauth.email": "/auth/oauth/email",
    "auth_oauth.facebook_deletion_status": "/auth/facebook/data-deletion/no-such-code",
    "console.index": "/console",
    "console.invitation": "/console/invites/not-a-real-token",
    "console.site": "/console/sites/{site}",
    "console.dashboard": "/console/sites/{site}/dashboard",
    "console.moderators": "/console/sites/{site}/moderators",
    "console.settings": "/console/sites/{site}/settings",
    "console.settings_preview": "/console/sites/{site}/settings/preview?abuse_hold=0.5",
    "console.sso": "/console/sites/{site}/sso",
    "console.webhooks_page": "/console/sites/{site}/webhooks",
    "console.webhook_log": "/console/sites/{site}/webhooks/{webhook}",
    "console.tokens": "/console/tokens",
    "desk.queue": "/moderate",
    "desk.audit": "/moderate/audit",
    "embed.embed_js": "/embed.js",
    "embed.thread_page": "/embed/thread?site={site}&url=" + ORIGIN + "/articles/story",
    "embed.login_done": "/embed/login-done",
    "embed.me": "/embed/me",
    "embed.counts": "/embed/counts?site={site}&url=" + ORIGIN + "/articles/story",
    "notifications.unsubscribe_page": "/notifications/unsubscribe/not-a-real-token",
    "ops.healthz": "/healthz",
    "ops.readyz": "/readyz",
    "ops.metrics": "/metrics",
    "static": "/static/js/desk.js",
    "api-docs.openapi_json": "/api/v1/openapi.json",
    "api.list_comments": "/api/v1/comments?site={site}&url=" + ORIGIN + "/articles/story",
    "api.counts": "/api/v1/counts?site={site}&url=" + ORIGIN + "/articles/story",
    "api.me": "/api/v1/me",
    "api.moderation_queue": "/api/v1/moderation/queue?site={site}",
    "api.get_site": "/api/v1/sites/{site}",
    "desk_api.author": "/api/v1/moderation/authors/{user}",
    "desk_api.card": "/api/v1/moderation/comments/{comment}",
    "desk_api.counts": "/api/v1/moderation/counts",
    "desk_api.guest": "/api/v1/moderation/guests?site={site}&email=g@example.org",
    "desk_api.model_versions": "/api/v1/moderation/model-versions",
    "reports_api.activity": "/api/v1/moderation/activity",
    "reports_api.audit_log": "/api/v1/moderation/audit",
    "reports_api.audit_csv": "/api/v1/moderation/audit.csv",
    "reports_api.comment_reports": "/api/v1/moderation/comments/{comment}/reports",
    "privacy_api.export_endpoint": "/api/v1/admin/privacy/export?email=a@example.org",
}
# GET routes deliberately not walked, with the reason (none today: every GET route is walked).
SKIPPED: dict[str, str] = {}

# Pages that must really render (200, HTML) for the checks to mean something.
MUST_RENDER = {
    ANONYMOUS: {
        "site.index",
        "site.article",
        "auth_email_login.login",
        "auth_email_login.popup_done",
        "embed.thread_page",
        "embed.login_done",
    },
    ADMIN: {
        "site.index",
        "site.article",
        "auth_account.page",
        "console.index",
        "console.site",
        "console.dashboard",
        "console.moderators",
        "console.settings",
        "console.sso",
        "console.webhooks_page",
        "console.webhook_log",
        "console.tokens",
        "desk.queue",
        "desk.audit",
        "embed.thread_page",
        "embed.login_done",
    },
}
# The login popup's pages (and the newspaper's): an opener policy would cut the popup off.
NO_OPENER_POLICY = ("auth_email_login.", "auth_oauth.", "embed.", "site.")
# Framed by newspapers: their CSP frame-ancestors names the site's origins instead of DENY.
FRAMABLE = {"embed.thread_page"}
UNSAFE = ("'unsafe-inline'", "'unsafe-eval'", "'unsafe-hashes'", "'strict-dynamic'", "*")


@dataclass(frozen=True)
class World:
    """The objects the walk's URLs point at."""

    values: dict[str, Any]
    admin: User


@pytest.fixture
def world(factory: Factory, db_session: scoped_session[Any]) -> World:
    """A site with an article, a comment, a webhook, and an admin who owns the site."""
    site = factory.site(origins=[ORIGIN])
    thread = factory.thread(site, url=f"{ORIGIN}/articles/story", title="Story")
    comment = factory.comment(thread)
    admin = factory.user(role=Role.ADMIN, avatar_url=f"{AVATAR_HOST}/me.png")
    hook = Webhook(
        site=site, url="https://hooks.example/in", events=["comment.created"], secret="s" * 32
    )
    db_session.add_all([SiteMembership(user=admin, site=site, role=SiteRole.OWNER), hook])
    db_session.commit()
    values = {"site": site.key, "comment": comment.id, "user": admin.id, "webhook": hook.id}
    return World(values, admin)


def sign_in(client: FlaskClient, user: User) -> None:
    """Put ``user`` in the client's Flask-Login session."""
    with client.session_transaction() as session:
        session["_user_id"] = user.get_id()
        session["_fresh"] = True
    g.pop("_login_user", None)  # the test's app context may cache the previous user


def directives(policy: str) -> dict[str, list[str]]:
    """A CSP header as {directive: [sources]}."""
    found = {}
    for part in policy.split(";"):
        name, *sources = part.split()
        found[name] = sources
    return found


def page_problems(endpoint: str, response: TestResponse, signed_in: bool) -> list[str]:
    """What is wrong with the headers and markup of one HTML response."""
    problems = []
    headers = response.headers
    policy = headers.get("Content-Security-Policy", "")
    csp = directives(policy) if policy else {}
    nonces = {s[len("'nonce-") : -1] for s in csp.get("script-src", []) if s.startswith("'nonce-")}
    if len(nonces) != 1 or len(next(iter(nonces))) < 22:
        problems.append(f"no single 128-bit nonce in script-src: {policy!r}")
    nonce = next(iter(nonces), None)
    for directive in ("default-src", "script-src", "style-src", "object-src", "base-uri"):
        if directive not in csp:
            problems.append(f"CSP lacks {directive}")
    if csp.get("object-src") != ["'none'"] or csp.get("base-uri") != ["'none'"]:
        problems.append("object-src and base-uri must be 'none'")
    if f"'nonce-{nonce}'" not in csp.get("style-src", []):
        problems.append("style-src lacks the nonce")
    for word in UNSAFE:
        if any(word in sources for sources in csp.values()):
            problems.append(f"CSP allows {word}")
    ancestors = csp.get("frame-ancestors")
    if endpoint in FRAMABLE:
        if "X-Frame-Options" in headers or not ancestors or ancestors == ["'none'"]:
            problems.append("a framable page must name its ancestors and send no X-Frame-Options")
    elif ancestors != ["'none'"] or headers.get("X-Frame-Options") != "DENY":
        problems.append(
            f"not framable: frame-ancestors {ancestors}, XFO {headers.get('X-Frame-Options')}"
        )
    opener = headers.get("Cross-Origin-Opener-Policy")
    if endpoint.startswith(NO_OPENER_POLICY):
        if opener is not None:
            problems.append(f"COOP {opener!r} would break the login popup")
    elif endpoint in MUST_RENDER[ADMIN] and opener != "same-origin-allow-popups":
        problems.append(f"COOP is {opener!r}")
    if signed_in and endpoint not in FRAMABLE and headers.get("Cache-Control") != "no-store":
        problems.append(f"signed-in page cached: Cache-Control {headers.get('Cache-Control')!r}")

    document = html5lib.parse(response.get_data(as_text=True), namespaceHTMLElements=False)
    for element in document.iter():
        tag = element.tag if isinstance(element.tag, str) else ""
        for name in element.attrib:
            if name.lower() == "style" or name.lower().startswith("on"):
                problems.append(f"<{tag} {name}=...> is blocked by the CSP or is an inline handler")
        if tag == "script":
            if element.get("nonce") != nonce:
                problems.append(f"<script src={element.get('src')!r}> lacks the page's nonce")
            if not element.get("src") or (element.text or "").strip():
                problems.append("inline <script>")
        is_stylesheet = tag == "link" and "stylesheet" in (element.get("rel") or "").split()
        if (tag == "style" or is_stylesheet) and element.get("nonce") != nonce:
            problems.append(f"<{tag}> lacks the page's nonce")
    return problems


def universal_problems(response: TestResponse) -> list[str]:
    """What is missing of the headers every response carries."""
    expected = {
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "strict-origin-when-cross-origin",
        "Permissions-Policy": PERMISSIONS_POLICY,
    }
    problems = [
        f"{name}: {response.headers.get(name)!r}"
        for name, value in expected.items()
        if response.headers.get(name) != value
    ]
    if "Strict-Transport-Security" in response.headers:
        problems.append("HSTS sent over plain HTTP")
    return problems


def walk(client: FlaskClient, world: World, who: str) -> tuple[list[str], set[str]]:
    """Ask for every route; the problems found and the endpoints that rendered as HTML."""
    problems: list[str] = []
    rendered: set[str] = set()
    for endpoint, template in ROUTES.items():
        if who == ADMIN:
            sign_in(client, world.admin)  # some auth routes end the session they are shown
        response = client.get(template.format(**world.values))
        found = universal_problems(response)
        if response.mimetype == "text/html":
            found += page_problems(endpoint, response, signed_in=who == ADMIN)
            if response.status_code == 200:
                rendered.add(endpoint)
        problems += [f"{who} {endpoint} ({response.status_code}): {p}" for p in found]
        response.close()
    return problems, rendered


def test_every_get_route_is_walked(app: Flask) -> None:
    get_endpoints = {
        rule.endpoint for rule in app.url_map.iter_rules() if "GET" in (rule.methods or ())
    }
    assert get_endpoints - ROUTES.keys() - SKIPPED.keys() == set(), "GET routes not walked"
    assert (ROUTES.keys() | SKIPPED.keys()) - get_endpoints == set(), "rows naming no route"
    assert all(reason.strip() for reason in SKIPPED.values())


@pytest.mark.parametrize("who", [ANONYMOUS, ADMIN])
def test_every_response_carries_the_headers_and_every_page_a_strict_nonce_csp(
    app: Flask, world: World, who: str
) -> None:
    # One role per test: the test's app context (and its g) is shared by all its requests.
    problems, rendered = walk(app.test_client(), world, who)
    assert MUST_RENDER[who] <= rendered, MUST_RENDER[who] - rendered
    assert problems == []


def test_nonces_are_fresh_on_every_request_even_from_the_page_cache(
    client: FlaskClient, world: World
) -> None:
    seen = set()
    for path in ("/", "/auth/login", ROUTES["embed.thread_page"].format(**world.values)):
        for _ in range(2):  # the thread page's second answer comes from the cache
            response = client.get(path)
            nonce = re.search(r"'nonce-([^']+)'", response.headers["Content-Security-Policy"])
            assert nonce is not None
            assert nonce.group(1) not in seen
            seen.add(nonce.group(1))
            if "<script" in response.text:
                assert f'nonce="{nonce.group(1)}"' in response.text
            assert response.text.count("nonce=") == response.text.count(nonce.group(1))


def test_hsts_only_on_https(client: FlaskClient, world: World) -> None:
    for path in ("/", "/healthz", "/static/js/desk.js", "/api/v1/openapi.json"):
        secure = client.get(path, base_url="https://comments.example")
        assert secure.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
        plain = client.get(path, base_url="http://comments.example")
        assert "Strict-Transport-Security" not in plain.headers
        secure.close()
        plain.close()


def test_the_demo_pages_may_load_the_widget_from_the_other_host(
    client: FlaskClient, world: World
) -> None:
    for host, other in (("localhost:5000", "127.0.0.1:5000"), ("127.0.0.1:5000", "localhost:5000")):
        page = client.get("/articles/story", base_url=f"http://{host}")
        csp = directives(page.headers["Content-Security-Policy"])
        for directive in ("script-src", "frame-src", "connect-src"):
            assert f"http://{other}" in csp[directive], directive
        assert f'src="http://{other}/embed.js"' in page.text
        # Only that host: the page itself still loads nothing else from anywhere.
        assert csp["default-src"] == ["'self'"] and csp["img-src"] == ["'self'", "data:"]


def test_the_account_page_shows_only_the_avatar_host(
    app: Flask, world: World, db_session: scoped_session[Any]
) -> None:
    client = app.test_client()
    sign_in(client, world.admin)
    img_src = directives(client.get("/account/").headers["Content-Security-Policy"])["img-src"]
    assert img_src == ["'self'", "data:", AVATAR_HOST]
    # A hostile avatar address cannot splice directives into the header.
    world.admin.avatar_url = "https://evil.example;script-src *;/x.png"
    db_session.commit()
    policy = client.get("/account/").headers["Content-Security-Policy"]
    assert "evil.example" not in policy
    assert directives(policy)["script-src"][0] == "'self'" and "*" not in policy
