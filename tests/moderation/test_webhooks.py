"""Webhooks: URL checks (SSRF), signatures, delivery through the job system, retries, the log."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa
from flask import Flask, g
from flask.testing import FlaskClient
from sqlalchemy.orm import scoped_session

from auth.models import SiteMembership, SiteRole, User
from moderation import webhooks
from moderation.extensions import db
from moderation.jobs import wait_for_jobs
from moderation.models import Comment, Site, Webhook, WebhookDelivery
from moderation.policy import SiteSettings
from moderation.service import NewComment, decide_comment, submit_comment
from moderation.status import Action, Status

if TYPE_CHECKING:
    from tests.conftest import Factory

DBSession = scoped_session[Any]
OPEN = {"spam_hold": 1.0, "spam_reject": 1.0, "abuse_hold": 1.0, "first_comments_held": 0}
ALLOW = {"WEBHOOKS_ALLOW_PRIVATE": True, "JOBS_SYNC": True}
THREADED = {
    "WEBHOOKS_ALLOW_PRIVATE": True,
    "JOBS_SYNC": False,
    "JOBS_RETRY_DELAYS": "0.05,0.05",
    "REDIS_URL": None,  # the in-process path, also in the PostgreSQL + Redis pass
}


@pytest.fixture
def app_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The test's parameter (``indirect=True``), else the defaults: private URLs refused."""
    return dict(getattr(request, "param", {}))


# ---------------------------------------------------------------------------------------------
# A real HTTP receiver on loopback
# ---------------------------------------------------------------------------------------------


@dataclass
class Receiver:
    """An HTTP server that records every POST and answers with the next scripted status."""

    url: str = ""
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # answered in order, then 200

    def wait_for(self, count: int, timeout: float = 5.0) -> None:
        """Block until ``count`` requests arrived."""
        deadline = time.monotonic() + timeout
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.01)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A receiver on 127.0.0.1 and a free port."""
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
            status = state.statuses.pop(0) if state.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/comments"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def sign_in(client: FlaskClient, user: User) -> None:
    """Put ``user`` in the client's Flask-Login session."""
    with client.session_transaction() as session:
        session["_user_id"] = user.get_id()
        session["_fresh"] = True
    g.pop("_login_user", None)  # requests share the test's app context


def staff(factory: Factory, session: DBSession, site: Site, role: SiteRole) -> User:
    """A user with ``role`` on ``site``."""
    user = factory.user()
    session.add(SiteMembership(user=user, site=site, role=role))
    session.commit()
    return user


def open_site(factory: Factory, session: DBSession) -> Site:
    """A site that publishes every comment at once."""
    site = factory.site()
    site.moderation_settings = SiteSettings(**OPEN)
    session.commit()
    return site


def post(site: Site, author: User, body: str = "A fair point about the harbour.") -> Comment:
    """A comment through the real posting service."""
    comment, _ = submit_comment(
        NewComment(
            site_key=site.key,
            url=f"{site.origins[0]}/articles/harbour",
            title="Harbour",
            body=body,
            author=author,
        )
    )
    return comment


def add_hook(session: DBSession, site: Site, url: str, events: list[str] | None = None) -> Webhook:
    """A webhook row (the console's own validation is tested separately)."""
    hook = Webhook(
        site_id=site.id, url=url, events=events or list(webhooks.EVENTS), secret="s3cret-key"
    )
    session.add(hook)
    session.commit()
    return hook


# ---------------------------------------------------------------------------------------------
# Signatures
# ---------------------------------------------------------------------------------------------


def test_a_signature_verifies_and_tampering_does_not() -> None:
    body = b'{"event":"comment.created"}'
    now = 1_800_000_000
    header = webhooks.sign("key", body, now)
    assert header.startswith(f"t={now},v1=")
    assert webhooks.verify_signature("key", body, header, now=now + 10)
    assert not webhooks.verify_signature("key", body + b" ", header, now=now)
    assert not webhooks.verify_signature("other", body, header, now=now)
    assert not webhooks.verify_signature("key", body, header, now=now + 3600)  # replayed
    assert not webhooks.verify_signature("key", body, "garbage", now=now)
    forged = header.replace(f"t={now}", f"t={now + 5}")
    assert not webhooks.verify_signature("key", body, forged, now=now)


# ---------------------------------------------------------------------------------------------
# URL checks
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "ftp://93.184.215.14/hook",
        "javascript:alert(1)",
        "https://user:pw@93.184.215.14/hook",
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
        "",
    ],
)
def test_private_and_odd_urls_are_refused(app: Flask, url: str) -> None:
    with app.app_context(), pytest.raises(webhooks.InvalidWebhook):
        webhooks.check_url(url)


def test_public_addresses_pass(app: Flask) -> None:
    with app.app_context():
        assert webhooks.check_url(" https://93.184.215.14/hook ") == "https://93.184.215.14/hook"


@pytest.mark.parametrize("app_config", [ALLOW], indirect=True)
def test_the_switch_allows_loopback_for_tests(app: Flask) -> None:
    with app.app_context():
        assert webhooks.check_url("http://127.0.0.1:9/hook") == "http://127.0.0.1:9/hook"
        with pytest.raises(webhooks.InvalidWebhook):
            webhooks.check_url("file:///etc/passwd")  # the scheme is still checked


def test_the_console_refuses_a_private_url_with_a_message(
    client: FlaskClient, factory: Factory, db_session: DBSession
) -> None:
    site = factory.site()
    sign_in(client, staff(factory, db_session, site, SiteRole.OWNER))
    response = client.post(
        f"/console/sites/{site.key}/webhooks",
        data={"url": "http://127.0.0.1:8080/hook", "events": ["comment.created"]},
    )
    assert response.status_code == 400
    assert "private, loopback or reserved" in response.text
    assert db_session.scalar(sa.select(sa.func.count(Webhook.id))) == 0
    none_chosen = client.post(
        f"/console/sites/{site.key}/webhooks", data={"url": "https://93.184.215.14/hook"}
    )
    assert none_chosen.status_code == 400


def test_owners_add_rotate_and_delete_webhooks(
    client: FlaskClient, factory: Factory, db_session: DBSession
) -> None:
    site = factory.site()
    sign_in(client, staff(factory, db_session, site, SiteRole.OWNER))
    created = client.post(
        f"/console/sites/{site.key}/webhooks",
        data={"url": "https://93.184.215.14/hook", "events": ["comment.decided"]},
    )
    assert created.status_code == 302
    hook = db_session.scalar(sa.select(Webhook))
    assert hook is not None and hook.events == ["comment.decided"] and len(hook.secret) >= 40
    page = client.get(f"/console/sites/{site.key}/webhooks")
    assert hook.secret in page.text and "https://93.184.215.14/hook" in page.text
    old = hook.secret
    assert client.post(f"/console/sites/{site.key}/webhooks/{hook.id}/secret").status_code == 302
    db_session.refresh(hook)
    assert hook.secret != old

    # Another site's owner cannot see or touch it.
    other = factory.site()
    sign_in(client, staff(factory, db_session, other, SiteRole.OWNER))
    assert client.get(f"/console/sites/{other.key}/webhooks/{hook.id}").status_code == 404
    assert client.post(f"/console/sites/{other.key}/webhooks/{hook.id}/delete").status_code == 404
    assert client.post(f"/console/sites/{site.key}/webhooks/{hook.id}/delete").status_code == 404
    assert db_session.get(Webhook, hook.id) is not None


# ---------------------------------------------------------------------------------------------
# Delivery
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("app_config", [ALLOW], indirect=True)
def test_events_are_posted_signed_and_logged(
    factory: Factory, db_session: DBSession, receiver: Receiver, client: FlaskClient
) -> None:
    site = open_site(factory, db_session)
    hook = add_hook(db_session, site, receiver.url)
    moderator = staff(factory, db_session, site, SiteRole.MODERATOR)
    comment = post(site, factory.user(display_name="Reader"))

    receiver.wait_for(1)
    assert len(receiver.requests) == 1
    headers, body = receiver.requests[0]
    assert headers["content-type"] == "application/json"
    assert headers["x-comments-event"] == "comment.created"
    assert webhooks.verify_signature(hook.secret, body, headers["x-comments-signature"])
    data = json.loads(body)
    assert data["event"] == "comment.created"
    assert data["site"] == site.key
    assert data["comment"]["id"] == comment.id
    assert data["comment"]["status"] == "published"
    assert data["comment"]["article_url"].endswith("/articles/harbour")

    decide_comment(comment.id, Action.REJECT, moderator, reason="Off topic")
    receiver.wait_for(2)
    headers, body = receiver.requests[1]
    assert headers["x-comments-event"] == "comment.decided"
    decided = json.loads(body)
    assert decided["decision"]["action"] == "reject"
    assert decided["decision"]["to_status"] == "rejected"
    assert decided["comment"]["status"] == "rejected"
    assert webhooks.verify_signature(hook.secret, body, headers["x-comments-signature"])

    rows = list(db_session.scalars(sa.select(WebhookDelivery).order_by(WebhookDelivery.id)))
    assert [(r.event, r.status, r.attempts, r.response_code) for r in rows] == [
        ("comment.created", "delivered", 1, 200),
        ("comment.decided", "delivered", 1, 200),
    ]
    assert rows[0].body.encode() == receiver.requests[0][1]  # the log keeps the exact body

    owner = staff(factory, db_session, site, SiteRole.OWNER)
    sign_in(client, owner)
    log = client.get(f"/console/sites/{site.key}/webhooks/{hook.id}")
    assert log.status_code == 200
    assert log.text.count("delivered") >= 2 and "comment.decided" in log.text


@pytest.mark.parametrize("app_config", [ALLOW], indirect=True)
def test_only_subscribed_events_are_sent(
    factory: Factory, db_session: DBSession, receiver: Receiver
) -> None:
    site = open_site(factory, db_session)
    add_hook(db_session, site, receiver.url, events=["comment.decided"])
    other = open_site(factory, db_session)
    add_hook(db_session, other, receiver.url)  # another site's hook hears nothing of this site
    post(site, factory.user())
    time.sleep(0.2)
    assert receiver.requests == []
    assert db_session.scalar(sa.select(sa.func.count(WebhookDelivery.id))) == 0


@pytest.mark.parametrize("app_config", [ALLOW], indirect=True)
def test_an_inline_failure_is_logged_as_failed(
    factory: Factory, db_session: DBSession, receiver: Receiver
) -> None:
    site = open_site(factory, db_session)
    add_hook(db_session, site, receiver.url, events=["comment.created"])
    receiver.statuses = [500]
    comment = post(site, factory.user())
    assert comment.status == Status.PUBLISHED  # the failed webhook did not fail the post
    delivery = db_session.scalar(sa.select(WebhookDelivery))
    assert delivery is not None
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("failed", 1, 500)
    assert "HTTP 500" in delivery.error


@pytest.mark.parametrize("app_config", [THREADED], indirect=True)
def test_failed_deliveries_are_retried_with_backoff(
    app: Flask, factory: Factory, db_session: DBSession, receiver: Receiver
) -> None:
    site = open_site(factory, db_session)
    add_hook(db_session, site, receiver.url, events=["comment.created"])
    receiver.statuses = [503, 500]  # then 200
    post(site, factory.user())
    assert wait_for_jobs(app, timeout=10)
    assert len(receiver.requests) == 3
    bodies = {body for _, body in receiver.requests}
    assert len(bodies) == 1  # the same body each time
    db_session.expire_all()
    delivery = db_session.scalar(sa.select(WebhookDelivery))
    assert delivery is not None
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("delivered", 3, 200)


@pytest.mark.parametrize("app_config", [THREADED], indirect=True)
def test_a_receiver_that_keeps_failing_ends_as_failed(
    app: Flask, factory: Factory, db_session: DBSession, receiver: Receiver
) -> None:
    site = open_site(factory, db_session)
    add_hook(db_session, site, receiver.url, events=["comment.created"])
    receiver.statuses = [500, 500, 500, 500]
    post(site, factory.user())
    assert wait_for_jobs(app, timeout=10)
    assert len(receiver.requests) == 3  # the first attempt and two retries
    db_session.expire_all()
    delivery = db_session.scalar(sa.select(WebhookDelivery))
    assert delivery is not None
    assert (delivery.status, delivery.attempts) == ("failed", 3)


def test_a_url_that_turned_private_is_not_called(
    app: Flask, factory: Factory, db_session: DBSession, receiver: Receiver
) -> None:
    # Stored while allowed (or before its DNS changed): checked again at delivery.
    site = open_site(factory, db_session)
    add_hook(db_session, site, receiver.url, events=["comment.created"])
    post(site, factory.user())
    assert receiver.requests == []
    delivery = db.session.scalar(sa.select(WebhookDelivery))
    assert delivery is not None and delivery.status == "failed"
    assert "private, loopback or reserved" in delivery.error


@pytest.mark.parametrize("app_config", [ALLOW], indirect=True)
def test_whether_a_site_has_webhooks_is_remembered_until_one_is_added(
    factory: Factory, db_session: DBSession, receiver: Receiver
) -> None:
    site = open_site(factory, db_session)
    post(site, factory.user())  # no webhooks: remembered, so the next posts ask nothing
    added_behind_its_back = add_hook(db_session, site, receiver.url)
    post(site, factory.user(), "Still the remembered answer.")
    assert db_session.scalar(sa.select(sa.func.count(WebhookDelivery.id))) == 0
    # Adding (or deleting) one through the service forgets the answer at once.
    db_session.delete(added_behind_its_back)
    db_session.commit()
    webhooks.create_webhook(site, receiver.url, list(webhooks.EVENTS))
    post(site, factory.user(), "Now it is heard.")
    assert db_session.scalar(sa.select(sa.func.count(WebhookDelivery.id))) == 1
