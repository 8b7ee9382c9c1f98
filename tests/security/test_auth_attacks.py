"""Attacks on logging in: magic-link replay and hijack, OAuth state and PKCE tampering, open
redirects through ``next``, forged SSO tokens, guessing (429 with Retry-After) and account
enumeration by answer or by time.

Real components only: mail goes to the aiosmtpd server of tests/auth/smtp.py, OAuth runs
against the Authlib provider of tests/auth/oauth_provider.py on loopback. What tests/auth
already proves is not repeated here (see the report in docs/security.md).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import statistics
import time
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
import sqlalchemy as sa
from aiosmtpd.smtp import SMTP, Envelope, Session
from flask import Flask
from flask.testing import FlaskClient

from auth import MAX_NEXT_LENGTH, safe_next_url
from auth.email_login import BAD_LINKS_PER_HOUR
from auth.models import ApiToken, LoginLink, User
from moderation.api import BAD_TOKEN_LIMIT
from moderation.extensions import db
from moderation.models import Site
from tests.auth.oauth_provider import (
    LocalProvider,
    Person,
)
from tests.auth.smtp import Mailbox, link_path, request_link, running_mailbox
from tests.auth.test_sso import SECRET, b64, claims_for, sign
from tests.conftest import Factory, TestDatabase, dispose, make_test_app

# ---------------------------------------------------------------------------------------------
# The attack strings for ``next``: each has fooled a real login page somewhere.
# ---------------------------------------------------------------------------------------------

HOSTILE_NEXT = [
    "https://evil.example/",
    "http://evil.example",
    "//evil.example",
    "///evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "\\/evil.example",
    "https:evil.example",
    "https:/evil.example",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "java\tscript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "%2F%2Fevil.example",
    "/%2F%2Fevil.example",  # stays a path: a browser does not decode %2F into a slash
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r\n/evil.example",
    "\t//evil.example",
    " //evil.example",
    "http://localhost@evil.example/",
    "//localhost@evil.example",
    "/" + "a" * (MAX_NEXT_LENGTH + 10),
]
BENIGN_NEXT = ["/articles/vote?page=2#c5", "/", "/embed/thread?site=k&url=/a"]
OUR_ORIGIN = "http://localhost"
C0_AND_SPACE = "".join(chr(code) for code in range(33))


def stays_on_site(location: str) -> bool:
    """Whether a browser following ``location`` from our page stays on our origin.

    Reads the value as the WHATWG URL parser does, for the parts that matter: it trims C0
    controls and spaces, drops every tab and newline, and takes "\\" for "/" in http(s) URLs.
    """
    value = location.strip(C0_AND_SPACE)
    value = re.sub(r"[\t\n\r]", "", value).replace("\\", "/")
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", value):
        parts = urlsplit(value)
        return f"{parts.scheme}://{parts.netloc}".lower() == OUR_ORIGIN and (
            value.lower().startswith(OUR_ORIGIN + "/") or value.lower() == OUR_ORIGIN
        )
    return value.startswith("/") and not value.startswith("//")


def test_the_origin_check_itself() -> None:
    """The reference the redirect tests rely on: it must call every hostile value foreign."""
    for value in HOSTILE_NEXT:
        if value.startswith("/a") or value == "/%2F%2Fevil.example":
            continue  # harmless paths on purpose
        assert not stays_on_site(value), value
    for value in [*BENIGN_NEXT, "http://localhost/x", "/%2F%2Fevil.example"]:
        assert stays_on_site(value), value


def test_safe_next_url_keeps_paths_and_drops_everything_else() -> None:
    for value in HOSTILE_NEXT:
        kept = safe_next_url(value)
        assert stays_on_site(kept), (value, kept)
        assert len(kept) <= MAX_NEXT_LENGTH
    for value in ("/\x00/evil.example", "/\x7f/evil.example", "/\x0b//evil.example", None, ""):
        assert safe_next_url(value) == "/"
    for value in BENIGN_NEXT:
        assert safe_next_url(value) == value


# ---------------------------------------------------------------------------------------------
# Fixtures: one SMTP server and one OAuth provider for the module, an app per test.
# ---------------------------------------------------------------------------------------------


class SlowMailbox(Mailbox):
    """A mail relay that takes ``delay`` seconds longer for the addresses in ``slow``."""

    slow: set[str]
    delay: float = 0.0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Keep the message, after a pause for the slow addresses."""
        if any(address in self.slow for address in envelope.rcpt_tos):
            await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture(scope="module")
def mailbox() -> Iterator[Mailbox]:
    """The module's SMTP server; tests use their own addresses, so they never mix."""
    with running_mailbox(kind=SlowMailbox) as box:
        box.slow = set()
        yield box


def service_config(mailbox: Mailbox, provider: LocalProvider) -> dict[str, Any]:
    """Mail to the test server; X and Facebook at the local provider."""
    return {**mailbox.mail_config(), **provider.app_settings()}


@pytest.fixture
def app_config(mailbox: Mailbox, provider: LocalProvider) -> dict[str, Any]:
    """The conftest ``app`` with mail and OAuth wired to the local servers."""
    return service_config(mailbox, provider)


@pytest.fixture
def limited_app(
    app: Flask,
    database: TestDatabase,
    tmp_path: Path,
    mailbox: Mailbox,
    provider: LocalProvider,
) -> Iterator[Flask]:
    """The same service with its rate limits on, counting in memory (fresh for each test).

    Built after ``app`` (which emptied the tables): the limiter is one object per process and
    the app initialised last sets whether it counts.
    """
    overrides = {
        **service_config(mailbox, provider),
        "RATELIMIT_ENABLED": True,
        "RATELIMIT_STORAGE_URI": "memory://",
    }
    limited = make_test_app(database, tmp_path / "limited", overrides)
    yield limited
    dispose(limited)


def browser(app: Flask, address: str = "127.0.0.1") -> FlaskClient:
    """A browser on ``app`` at the client address ``address``."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def user_in_session(client: FlaskClient) -> int | None:
    """The user id the client's session cookie logs in (None: nobody)."""
    with client.session_transaction() as session:
        value = session.get("_user_id")
    return int(value.partition(":")[0]) if value else None


def retry_after(response: Any) -> int:
    """The Retry-After of a 429, which must be a whole number of seconds."""
    assert response.status_code == 429, response.get_data(as_text=True)[:300]
    value = response.headers.get("Retry-After", "")
    assert re.fullmatch(r"[1-9][0-9]*", value), f"Retry-After {value!r} is not integer seconds"
    return int(value)


# ---------------------------------------------------------------------------------------------
# Magic links
# ---------------------------------------------------------------------------------------------


def test_database_never_holds_a_raw_link_token(
    client: FlaskClient, mailbox: Mailbox, db_session: Any
) -> None:
    tokens = []
    for address in ("raw1@example.org", "raw2@example.org"):
        assert request_link(client, address, next="/articles/1").status_code == 200
        tokens.append(mailbox.link_to(address).rsplit("/", 1)[1])
    assert client.post(link_path(mailbox.link_to("raw1@example.org"))).status_code == 302
    # Every column of every row of every table, used link and open link alike.
    dump = []
    for table in db.metadata.sorted_tables:
        for row in db_session.execute(sa.select(table)):
            dump.append(" ".join(str(value) for value in row))
    everything = "\n".join(dump)
    assert "raw1@example.org" in everything  # the dump does hold the rows
    for token in tokens:
        assert len(token) >= 43  # 32 random bytes
        assert token not in everything


def test_a_new_link_voids_the_older_ones(client: FlaskClient, mailbox: Mailbox) -> None:
    # Decided as in Coral: only the newest mail's link works, so a forwarded or leaked older
    # mail is worthless once the person asked again.
    request_link(client, "twice@example.org")
    first = link_path(mailbox.link_to("twice@example.org"))
    request_link(client, "other@example.org")
    other = link_path(mailbox.link_to("other@example.org"))
    request_link(client, "twice@example.org")
    second = link_path(mailbox.link_to("twice@example.org"))
    assert first != second

    assert client.get(first).status_code == 400
    assert client.post(first).status_code == 400
    assert user_in_session(client) is None
    assert client.post(second).status_code == 302
    assert user_in_session(client) is not None
    # Another address's link is untouched.
    assert client.application.test_client().post(other).status_code == 302


def test_a_link_logs_in_only_the_address_it_was_sent_to(
    client: FlaskClient, mailbox: Mailbox, factory: Factory, db_session: Any
) -> None:
    victim = factory.user(email="victim@example.org")
    request_link(client, "mallory@example.org")
    path = link_path(mailbox.link_to("mallory@example.org"))
    hijack = {"email": "victim@example.org", "user_id": str(victim.id), "purpose": "verify"}
    assert client.get(path, query_string=hijack).status_code == 200
    assert client.post(path, query_string=hijack, data=hijack).status_code == 302
    mallory = db_session.scalar(sa.select(User).where(User.email == "mallory@example.org"))
    assert user_in_session(client) == mallory.id != victim.id
    # Used is used: after logging out, the same link does not log in again.
    client.post("/auth/logout")
    assert user_in_session(client) is None
    assert client.post(path).status_code == 400
    assert user_in_session(client) is None


def test_overlong_next_is_not_kept(client: FlaskClient, mailbox: Mailbox, db_session: Any) -> None:
    # The link row keeps next_url in a 2048-character column: a longer one would fail the
    # insert on PostgreSQL (a 500 for a hostile form field) or bloat the session cookie.
    request_link(client, "long@example.org", next="/" + "a" * 5000)
    stored = db_session.scalar(sa.select(LoginLink.next_url))
    assert stored is None or len(stored) <= MAX_NEXT_LENGTH
    response = client.post(link_path(mailbox.link_to("long@example.org")))
    assert response.headers["Location"] == "/"


# ---------------------------------------------------------------------------------------------
# OAuth: state, PKCE and replayed codes
# ---------------------------------------------------------------------------------------------


def start_oauth(client: FlaskClient, provider_name: str, query: str = "") -> str:
    """Our /login, then the provider's consent; returns the callback path with its query."""
    response = client.get(f"/auth/{provider_name}/login{query}")
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    hop = requests.get(response.headers["Location"], allow_redirects=False, timeout=10)
    assert hop.status_code == 302, hop.text
    callback = urlsplit(hop.headers["Location"])
    assert callback.path == f"/auth/{provider_name}/callback"
    return f"{callback.path}?{callback.query}"


def assert_clean_refusal(response: Any) -> None:
    """A 4xx HTML page that says to start again, and nothing of our insides."""
    assert 400 <= response.status_code < 500, response.status_code
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "Sign-in did not work" in page
    for leak in ("Traceback", "MismatchingState", "invalid_grant", "code_verifier", "Error:"):
        assert leak not in page


def with_query(path: str, **changes: str | None) -> str:
    """``path`` with query parameters replaced (None removes one)."""
    parts = urlsplit(path)
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    for name, value in changes.items():
        if value is None:
            query.pop(name, None)
        else:
            query[name] = value
    return f"{parts.path}?{urlencode(query)}"


def test_callback_without_or_with_a_forged_state_is_refused(
    client: FlaskClient, provider: LocalProvider
) -> None:
    path = start_oauth(client, "x")
    state = parse_qs(urlsplit(path).query)["state"][0]
    for forged in (
        with_query(path, state=None),
        with_query(path, state=""),
        with_query(path, state=state + "x"),
        with_query(path, state=state.upper() if state != state.upper() else state.lower()),
    ):
        response = client.get(forged)
        assert_clean_refusal(response)
        assert user_in_session(client) is None
    assert provider.tokens == {}  # refused before the code was ever exchanged


def test_state_from_another_browser_is_refused(
    app: Flask, provider: LocalProvider, db_session: Any
) -> None:
    # Login CSRF: the attacker starts a sign-in with their own X account and sends the
    # victim the callback link. The victim's browser did not start that flow.
    attacker, victim = app.test_client(), app.test_client()
    provider.person = Person(id="666", name="Attacker", email="attacker@example.org")
    attackers_callback = start_oauth(attacker, "x")
    start_oauth(victim, "x")  # the victim even has a flow of their own going
    response = victim.get(attackers_callback)
    assert_clean_refusal(response)
    assert user_in_session(victim) is None
    assert provider.tokens == {}
    assert db_session.scalar(sa.select(sa.func.count()).select_from(User)) == 0


def test_replayed_code_is_refused_and_logs_nobody_in(app: Flask, provider: LocalProvider) -> None:
    first = app.test_client()
    provider.person = Person(id="77", name="Ola", email="ola@example.org")
    path = start_oauth(first, "x", "?next=/articles/3")
    with first.session_transaction() as session:
        stolen = dict(session)  # what the browser holds before the callback: state, verifier
    assert first.get(path).headers["Location"] == "/articles/3"
    assert len(provider.tokens) == 1

    # The same browser again: its state was used up.
    assert_clean_refusal(first.get(path))
    # A copy of the browser from before the callback: the provider refuses the used code.
    second = app.test_client()
    with second.session_transaction() as session:
        session.update(stolen)
    assert_clean_refusal(second.get(path))
    assert user_in_session(second) is None
    assert len(provider.tokens) == 1


def test_missing_pkce_verifier_or_altered_code_is_refused(
    client: FlaskClient, provider: LocalProvider
) -> None:
    # (A wrong verifier: tests/auth/test_oauth.py::test_pkce_verifier_mismatch_is_a_400_page.)
    path = start_oauth(client, "facebook")
    with client.session_transaction() as session:
        for key, value in session.items():
            if key.startswith("_state_facebook_"):
                value["data"].pop("code_verifier", None)
                session[key] = value
    assert_clean_refusal(client.get(path))

    path = start_oauth(client, "facebook")
    code = parse_qs(urlsplit(path).query)["code"][0]
    assert_clean_refusal(
        client.get(with_query(path, code=code[:-1] + ("A" if code[-1] != "A" else "B")))
    )
    assert_clean_refusal(client.get(with_query(start_oauth(client, "facebook"), code=None)))
    assert provider.tokens == {}
    assert user_in_session(client) is None


# ---------------------------------------------------------------------------------------------
# Open redirects: every place that takes ``next``
# ---------------------------------------------------------------------------------------------


def test_login_page_never_offers_a_foreign_next(client: FlaskClient) -> None:
    bad = []
    for value in HOSTILE_NEXT:
        response = client.get("/auth/login", query_string={"next": value, "popup": "1"})
        page = response.get_data(as_text=True)
        if response.status_code != 200:
            bad.append((value, response.status_code))
            continue
        hidden = re.search(r'name="next" type="hidden" value="([^"]*)"', page)
        offered = [unescape(hidden.group(1))] if hidden else []
        for href in re.findall(r'href="(/auth/(?:x|facebook)/login\?[^"]*)"', page):
            offered.extend(parse_qs(urlsplit(unescape(href)).query).get("next", []))
        assert len(offered) == 3, page  # the form and both provider buttons
        bad.extend((value, kept) for kept in offered if not stays_on_site(kept))
    assert bad == []


def test_magic_link_never_redirects_off_site(client: FlaskClient, mailbox: Mailbox) -> None:
    bad = []
    for number, value in enumerate(HOSTILE_NEXT):
        address = f"redirect{number}@example.org"
        # The widget's popup ends on its own page whatever next says; a fifth of them suffice.
        for popup in ("", "1") if number % 5 == 0 else ("",):
            assert request_link(client, address, next=value, popup=popup).status_code == 200
            response = client.post(link_path(mailbox.link_to(address)))
            location = response.headers.get("Location", "")
            if response.status_code != 302 or not stays_on_site(location):
                bad.append((value, popup, response.status_code, location))
            if popup and location != "/auth/popup-done":
                bad.append((value, "popup ends elsewhere", location))
    assert bad == []


def test_oauth_never_redirects_off_site(app: Flask, provider: LocalProvider) -> None:
    bad = []
    for number, value in enumerate(HOSTILE_NEXT):
        client = app.test_client()
        provider.person = Person(id=f"r{number}", name="Red", email=f"red{number}@example.org")
        name = "x" if number % 2 else "facebook"
        path = start_oauth(
            client, name, "?" + urlencode({"next": value, "popup": "1" if number % 3 else ""})
        )
        response = client.get(path)
        location = response.headers.get("Location", "")
        if response.status_code != 302 or not stays_on_site(location):
            bad.append((value, response.status_code, location))
    assert bad == []


def test_oauth_email_step_links_stay_on_site(app: Flask, provider: LocalProvider) -> None:
    # A person without an address goes through /auth/oauth/email, whose "Skip" link is next.
    bad = []
    for number, value in enumerate(HOSTILE_NEXT[:8]):
        client = app.test_client()
        provider.person = Person(id=f"n{number}", name="No Mail")
        response = client.get(start_oauth(client, "x", "?" + urlencode({"next": value})))
        assert response.headers["Location"] == "/auth/oauth/email"
        page = client.get("/auth/oauth/email").get_data(as_text=True)
        links = [unescape(href) for href in re.findall(r'<a href="([^"]*)">Skip', page)]
        assert links, page
        bad.extend((value, link) for link in links if not stays_on_site(link))
    assert bad == []


def test_logout_never_redirects_off_site(client: FlaskClient, factory: Factory) -> None:
    user = factory.user()
    bad = []
    for route in ("/auth/logout", "/auth/logout-everywhere"):
        for value in HOSTILE_NEXT:
            with client.session_transaction() as session:
                session["_user_id"] = user.get_id()
            response = client.post(route, data={"next": value})
            location = response.headers.get("Location", "")
            if response.status_code != 302 or not stays_on_site(location):
                bad.append((route, value, response.status_code, location))
            user = db.session.get(User, user.id)  # logout-everywhere bumps the version
    assert bad == []


# ---------------------------------------------------------------------------------------------
# SSO tokens (alg none, RS256/HS384/HS512 swaps, wrong secrets, times, audience, missing
# claims and huge tokens are in tests/auth/test_sso.py)
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def sso_site(factory: Factory) -> Site:
    """A site with single sign-on."""
    return factory.site(name="Gazette", sso_secret=SECRET)


def sso(client: FlaskClient, site: Site, token: str, **extra: Any) -> Any:
    return client.post("/auth/sso", json={"site": site.key, "token": token, **extra})


def test_sso_header_tricks_are_refused(client: FlaskClient, sso_site: Site) -> None:
    attacker_key = "attacker-secret-" + "a" * 32
    claims = claims_for(sso_site)
    forged = {
        # The attacker's own key, offered in the header for the verifier to pick up.
        "embedded jwk": sign(
            claims,
            attacker_key,
            {"alg": "HS256", "jwk": {"kty": "oct", "k": b64(attacker_key.encode())}},
        ),
        "jku": sign(claims, attacker_key, {"alg": "HS256", "jku": "https://evil.example/k"}),
        "x5u": sign(claims, attacker_key, {"alg": "HS256", "x5u": "https://evil.example/c"}),
        "kid traversal": sign(claims, attacker_key, {"alg": "HS256", "kid": "../../dev/null"}),
        "empty-secret kid": sign(claims, "", {"alg": "HS256", "kid": "none"}),
        "alg list": sign(claims, SECRET, {"alg": ["HS256"]}),
        "alg with space": sign(claims, SECRET, {"alg": "HS256 "}),
        "crit": sign(claims, SECRET, {"alg": "HS256", "crit": ["exp"], "exp": 1}),
        "JWE shape": "e30.e30.e30.e30.e30",
        "JSON serialisation": json.dumps({"payload": "e30", "signatures": []}),
    }
    # RFC 7797: an unencoded payload, signed as such with the right secret. Not accepted.
    head = b64(json.dumps({"alg": "HS256", "b64": False, "crit": ["b64"]}).encode())
    plain = json.dumps(claims_for(sso_site, email=None))  # no dots, so still three parts
    assert "." not in plain
    forged["b64 false"] = _hs256(f"{head}.{plain}")
    answers = {name: sso(client, sso_site, token) for name, token in forged.items()}
    wrong = {
        name: (answer.status_code, answer.get_data(as_text=True)[:200])
        for name, answer in answers.items()
        if answer.status_code != 400 or not answer.json["error"].startswith("The sign-in token")
    }
    assert wrong == {}
    me = client.get("/api/v1/me", headers={"X-Requested-With": "fetch"})
    assert me.status_code == 401


def _hs256(signing_input: str) -> str:
    """``signing_input`` with its HS256 signature under the site's secret."""
    mac = hmac.new(SECRET.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def test_sso_non_finite_times_are_refused(client: FlaskClient, sso_site: Site) -> None:
    now = int(time.time())
    cases = [
        {"exp": float("inf")},
        {"exp": float("nan")},
        {"nbf": float("-inf")},
        {"iat": float("nan"), "exp": now + 60},
        {"exp": 10**30},
        {"exp": -(10**30)},
        {"exp": 10**400},  # a JSON integer no float can hold
        {"iat": -1},
    ]
    statuses = [
        sso(client, sso_site, sign(claims_for(sso_site, **changes), SECRET)).status_code
        for changes in cases
    ]
    assert statuses == [400] * len(cases)


def test_sso_ignores_a_next_field(client: FlaskClient, sso_site: Site) -> None:
    response = sso(client, sso_site, sign(claims_for(sso_site), SECRET), next="//evil.example")
    assert response.status_code == 200
    assert "Location" not in response.headers


# ---------------------------------------------------------------------------------------------
# Guessing: over a limit, 429 with Retry-After in whole seconds
# ---------------------------------------------------------------------------------------------


def limit_count(limit: str) -> int:
    """The number in a limit such as "20/hour"."""
    return int(limit.partition("/")[0])


def test_link_requests_from_one_address_are_limited(limited_app: Flask, mailbox: Mailbox) -> None:
    # (Per e-mail address: tests/auth/test_email_login.py::test_per_address_rate_limit.)
    hammer = browser(limited_app, "198.51.100.1")
    # Every request counts, sent or refused (the refused ones send no mail, which saves time).
    addresses = ["ip0@example.org", "ip1@example.org"] + [f"not-an-address-{n}" for n in range(8)]
    statuses = [request_link(hammer, address).status_code for address in addresses]
    assert statuses == [200] * 2 + [400] * 8
    last = request_link(hammer, "ip-last@example.org")
    assert 0 < retry_after(last) <= 3601
    assert last.mimetype == "text/html"
    assert request_link(browser(limited_app, "198.51.100.2"), "ip-x@example.org").status_code == 200


def test_bad_link_tokens_are_limited_and_good_links_do_not_count(
    limited_app: Flask, mailbox: Mailbox
) -> None:
    hammer = browser(limited_app, "198.51.100.3")
    allowed = limit_count(BAD_LINKS_PER_HOUR)
    request_link(hammer, "patient@example.org")
    good = link_path(mailbox.link_to("patient@example.org"))
    statuses = []
    for number in range(allowed):
        method = hammer.get if number % 2 else hammer.post
        statuses.append(method(f"/auth/email/guess-{number:04d}-{'x' * 30}").status_code)
        if number < 3:
            statuses.append(hammer.get(good).status_code)  # a mail scanner: not a refusal
    assert statuses.count(400) == allowed and statuses.count(200) == 3
    over = hammer.get("/auth/email/one-more-guess")
    assert 0 < retry_after(over) <= 3601
    assert retry_after(hammer.post(good)) > 0  # checked before the token: nothing learned
    # Another address (the real reader) is not slowed by the hammering.
    reader = browser(limited_app, "198.51.100.4")
    assert reader.post(good).status_code == 302
    assert user_in_session(reader) is not None


def test_bad_bearer_tokens_are_limited(limited_app: Flask, factory: Factory) -> None:
    with limited_app.app_context():
        owner = db.session.merge(factory.user(email="token@example.org"))
        token, plain = ApiToken.issue(owner, name="test")
        db.session.add(token)
        db.session.commit()
    hammer = browser(limited_app, "198.51.100.5")
    allowed = limit_count(BAD_TOKEN_LIMIT)
    statuses = [
        hammer.get("/api/v1/me", headers={"Authorization": f"Bearer guess-{n}"}).status_code
        for n in range(allowed)
    ]
    assert statuses == [401] * allowed
    over = hammer.get("/api/v1/me", headers={"Authorization": "Bearer one-more"})
    seconds = retry_after(over)
    assert 0 < seconds <= 61
    assert over.json["retry_after"] == seconds and "error" in over.json
    # The right token from the hammering address waits too: the answer tells nothing.
    assert hammer.get("/api/v1/me", headers={"Authorization": f"Bearer {plain}"}).status_code == 429
    other = browser(limited_app, "198.51.100.6")
    mine = other.get("/api/v1/me", headers={"Authorization": f"Bearer {plain}"})
    assert mine.status_code == 200 and mine.json["user"]["email"] == "token@example.org"
    # Anonymous reads are not refusals of a token: they do not count.
    assert other.get("/api/v1/me").status_code == 401


def test_sso_attempts_are_limited(limited_app: Flask, factory: Factory) -> None:
    with limited_app.app_context():
        site = db.session.merge(factory.site(name="Limited", sso_secret=SECRET))
        key = site.key
    hammer = browser(limited_app, "198.51.100.7")
    statuses = {
        hammer.post("/auth/sso", json={"site": key, "token": f"a.b.{n}"}).status_code
        for n in range(60)
    }
    assert statuses == {400}
    over = hammer.post("/auth/sso", json={"site": key, "token": "a.b.c"})
    assert 0 < retry_after(over) <= 61  # the limiter rounds the window's end up a second
    assert over.mimetype == "application/json" and "error" in over.json


# ---------------------------------------------------------------------------------------------
# Enumeration: the "send me a link" answer is the same for every address
# ---------------------------------------------------------------------------------------------


NONCE = re.compile(r"nonce-[A-Za-z0-9_-]+|nonce=\"[A-Za-z0-9_-]+\"")


def comparable(response: Any) -> tuple[int, list[tuple[str, str]], str]:
    """Status, headers but Date, and body, with the per-answer random CSP nonce blanked."""
    headers = sorted(
        (name, NONCE.sub("nonce", value)) for name, value in response.headers if name != "Date"
    )
    return response.status_code, headers, NONCE.sub("nonce", response.get_data(as_text=True))


def test_link_answer_is_identical_for_known_and_unknown_addresses(
    client: FlaskClient, mailbox: Mailbox, factory: Factory, db_session: Any
) -> None:
    # (Status and body only: tests/auth/test_email_login.py::test_same_answer_for_known_...)
    factory.user(email="member@example.org")
    before = len(mailbox.messages)
    known = request_link(client, "member@example.org", next="/a")
    unknown = request_link(client, "stranger@example.org", next="/a")
    assert comparable(known) == comparable(unknown)
    # The same work behind it: a mail and a link row each, and no account made for either yet.
    assert [m["To"] for m in mailbox.messages[before:]] == [
        "member@example.org",
        "stranger@example.org",
    ]
    links = db_session.scalars(sa.select(LoginLink.email).order_by(LoginLink.id)).all()
    assert links == ["member@example.org", "stranger@example.org"]
    assert db_session.scalar(sa.select(sa.func.count()).select_from(User)) == 1


def median_gap(client: FlaskClient, known: list[str], unknown: list[str]) -> tuple[float, float]:
    """Median answer times (seconds) of link requests for two lists of addresses, interleaved."""
    times: dict[str, list[float]] = {"known": [], "unknown": []}
    for number, pair in enumerate(zip(known, unknown, strict=True)):
        # Alternate who goes first, so a drift in machine load hits both sides alike.
        order = [("known", pair[0]), ("unknown", pair[1])]
        for side, address in order if number % 2 else reversed(order):
            started = time.perf_counter()
            response = request_link(client, address)
            times[side].append(time.perf_counter() - started)
            assert response.status_code == 200
    return statistics.median(times["known"]), statistics.median(times["unknown"])


# What the calibration plants at least: about one more round trip to a real mail relay.
PLANTED_DELAY = 0.100


def leaks(known: float, unknown: float) -> bool:
    """Whether the medians differ by more than 20 ms and more than half the faster one."""
    gap = abs(known - unknown)
    return gap >= max(0.020, 0.5 * min(known, unknown))


def test_link_answer_takes_the_same_time_for_known_and_unknown_addresses(
    client: FlaskClient, mailbox: SlowMailbox, factory: Factory
) -> None:
    """No timing oracle: 24 interleaved requests per side, medians within the bound.

    Both sides take the same path by construction (no account lookup before the mail is sent);
    this checks that nothing slipped in. The bound (20 ms or half the faster median, whichever
    is looser, about 45 ms here where one request costs about 90 ms) is shown to mean
    something by the second half: the same measurement against a relay that spends longer on
    members' mail (100 ms, or 1.2 requests' worth on a slow machine), as code doing extra work
    for existing accounts would (a password hash, a second mail, a remote call), must see it.
    Medians of interleaved requests shrug off the bursts of a shared machine that would swamp
    a mean.
    """
    rounds, calibration_rounds = 24, 6
    total = 2 + rounds + calibration_rounds
    members = [f"member{n}@example.org" for n in range(total)]
    for address in members:
        factory.user(email=address)
    strangers = [f"stranger{n}@example.org" for n in range(total)]
    median_gap(client, members[:2], strangers[:2])  # warm up: templates, SMTP, database

    known, unknown = median_gap(client, members[2 : rounds + 2], strangers[2 : rounds + 2])
    shown = f"known {known * 1000:.1f} ms, unknown {unknown * 1000:.1f} ms"
    assert not leaks(known, unknown), shown

    # A slow machine (or PostgreSQL) makes requests slower and so the 50 % bound wider: plant
    # more than the bound there, so that the calibration still says something.
    planted = max(PLANTED_DELAY, 1.2 * min(known, unknown))
    mailbox.slow, mailbox.delay = set(members), planted
    try:
        slow, fast = median_gap(client, members[rounds + 2 :], strangers[rounds + 2 :])
    finally:
        mailbox.slow, mailbox.delay = set(), 0.0
    shown = f"{slow * 1000:.1f} vs {fast * 1000:.1f} ms"
    assert leaks(slow, fast), f"a planted {planted * 1000:.0f} ms went unseen: {shown}"
