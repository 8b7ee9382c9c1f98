"""Browser tests: the real app on a loopback port, Debian's chromium driven by Playwright.

The app runs in a thread of the test process (werkzeug's threaded server) on a temporary SQLite
database migrated from empty, with CSRF protection on and mail sent to a real SMTP server on
loopback. Moderators log in through the e-mail login link, like people do; there is no test-only
route in the app. Without chromium (or the playwright package) the tests are skipped, except
under CI=true, where that is a failure.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

import flask_migrate
import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from flask import Flask
from werkzeug.serving import make_server

from auth.models import SiteMembership, SiteRole, User
from moderation import create_app, reports, service
from moderation.db import utcnow
from moderation.extensions import db
from moderation.models import Comment, Site, SiteAuthor
from moderation.policy import SiteSettings
from moderation.status import Action
from tests.auth.smtp import Mailbox, free_port

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

HOST = "127.0.0.1"
SECRET_KEY = "e2e-secret-key-" + "0" * 49
TIMEOUT_MS = 10_000


def _missing(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true turns this skip into a failure)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's chromium (apt-get install chromium); Playwright's own download is not used."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        _missing("needs Debian's chromium: apt-get install -y chromium")
    return str(path)


@pytest.fixture(scope="session")
def browser(chromium_path: str) -> Iterator[Browser]:
    """One headless chromium for the run."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("needs the playwright package: pip install -e '.[dev]'")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium_path,
            headless=True,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
        )
        yield launched
        launched.close()


@dataclass
class LiveApp:
    """The running app: its address, the Flask app (for seeding) and the mailbox."""

    url: str
    app: Flask
    mailbox: Mailbox
    _count: int = field(default=0)

    def next(self) -> int:
        """A number for unique names."""
        self._count += 1
        return self._count


@pytest.fixture(scope="session")
def live_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    """The app served on a free loopback port, with an SMTP server that keeps its mail."""
    mailbox = Mailbox(HOST, free_port(HOST))
    controller = Controller(mailbox, hostname=HOST, port=mailbox.port)
    controller.start()
    folder = tmp_path_factory.mktemp("e2e")
    port = free_port(HOST)
    app = create_app(
        {
            "APP_ENV": "development",
            "SECRET_KEY": SECRET_KEY,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'e2e.db'}",
            "RATELIMIT_ENABLED": False,
            "RATELIMIT_STORAGE_URI": "memory://",
            "SERVER_NAME": f"{HOST}:{port}",
            **mailbox.mail_config(),
        },
        instance_path=folder / "instance",
    )
    with app.app_context():
        flask_migrate.upgrade()
    server = make_server(HOST, port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="e2e-app", daemon=True)
    thread.start()
    try:
        yield LiveApp(f"http://{HOST}:{port}", app, mailbox)
    finally:
        server.shutdown()
        thread.join(timeout=5)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        controller.stop()


@dataclass
class DeskWorld:
    """A site with its moderators and held comments."""

    site_key: str
    moderators: list[str]  # e-mail addresses
    comment_ids: list[int]


def make_site(live: LiveApp, moderators: int = 1) -> tuple[str, list[str]]:
    """A pre-moderated site (every comment held) and its moderators' e-mail addresses."""
    n = live.next()
    with live.app.app_context():
        site = Site(name=f"Desk Gazette {n}", origins=[f"https://gazette{n}.example"])
        site.moderation_settings = SiteSettings(
            mode="pre",
            flood_seconds=0,
            duplicate_minutes=0,
            spam_reject=1.0,
            suspect_words=("fraud",),
            allow_guests=True,
            notify_authors=False,
        )
        db.session.add(site)
        db.session.flush()
        addresses = []
        for m in range(moderators):
            address = f"mod{m}-{n}@desk.example"
            user = User(email=address, display_name=f"Moderator {m} of {n}")
            db.session.add(user)
            db.session.add(SiteMembership(user=user, site=site, role=SiteRole.MODERATOR))
            addresses.append(address)
        db.session.commit()
        return site.key, addresses


def post_comments(live: LiveApp, site_key: str, bodies: list[str]) -> list[int]:
    """Post ``bodies`` through the comment service, as readers; replies to the first one."""
    ids: list[int] = []
    with live.app.app_context():
        site = db.session.scalar(sa.select(Site).where(Site.key == site_key))
        assert site is not None
        origin = site.origins[0]
        authors = []
        for a in range(5):
            tag = hashlib.sha1(f"{site_key}-{a}".encode()).hexdigest()[:8]
            user = User(email=f"reader{a}-{tag}@desk.example", display_name=f"Reader {a}")
            db.session.add(user)
            authors.append(user)
        db.session.commit()
        for i, body in enumerate(bodies):
            guest = i % 7 == 6
            comment, _ = service.submit_comment(
                service.NewComment(
                    site_key=site_key,
                    url=f"{origin}/articles/story-{i % 3}",
                    title=f"Story {i % 3}",
                    body=body,
                    parent_id=None,
                    author=None if guest else authors[i % len(authors)],
                    guest_name=f"Guest {i}" if guest else None,
                    guest_email=f"guest{i}@desk.example" if guest else None,
                    ip="127.0.0.1",
                    user_agent="e2e",
                )
            )
            ids.append(comment.id)
    return ids


def statuses(live: LiveApp, ids: list[int]) -> dict[int, str]:
    """The status of each comment, from the database."""
    with live.app.app_context():
        rows = db.session.execute(sa.select(Comment.id, Comment.status).where(Comment.id.in_(ids)))
        result = {comment_id: str(status) for comment_id, status in rows}
        db.session.remove()
        return result


def log_in(browser: Browser, live: LiveApp, address: str, next_path: str) -> BrowserContext:
    """A browser context logged in as ``address`` through the e-mail login link."""
    context = browser.new_context(base_url=live.url)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    before = len(live.mailbox.messages)
    page.goto("/auth/login?" + urlencode({"next": next_path}))
    page.fill("#email", address)
    page.get_by_role("button", name="Send me a login link").click()
    page.wait_for_load_state()
    deadline = time.monotonic() + 10
    while len(live.mailbox.messages) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    link = live.mailbox.link_to(address)
    page.goto(link)
    page.get_by_role("button", name="Log me in").click()
    page.wait_for_url(lambda url: urlsplit(url).path == urlsplit(next_path).path)
    page.close()
    return context


def open_desk(context: BrowserContext, site_key: str, cards: int, extra: str = "") -> Page:
    """The desk on ``site_key``'s Pending queue, once ``cards`` cards are shown."""
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors  # type: ignore[attr-defined]
    page.goto(f"/moderate?site={site_key}{extra}")
    page.wait_for_function(
        "n => document.querySelectorAll('#desk-cards .desk-card').length === n", arg=cards
    )
    return page


@pytest.fixture
def desk_site(live_app: LiveApp) -> Any:
    """Make a site with held comments: ``desk_site(bodies, moderators=1)``."""

    def make(bodies: list[str], moderators: int = 1) -> DeskWorld:
        key, addresses = make_site(live_app, moderators)
        return DeskWorld(key, addresses, post_comments(live_app, key, bodies))

    return make


def wait_for_status(live: LiveApp, comment_id: int, status: str, seconds: float = 5) -> None:
    """Wait until the comment has ``status`` in the database (decisions are asynchronous)."""
    deadline = time.monotonic() + seconds
    while statuses(live, [comment_id])[comment_id] != status:
        assert time.monotonic() < deadline, f"comment {comment_id} is not {status}"
        time.sleep(0.05)


def ban_of(live: LiveApp, site_key: str, comment_id: int) -> tuple[bool, str]:
    """Whether the author of ``comment_id`` is banned on the site, and the ban message."""
    with live.app.app_context():
        comment = db.session.get(Comment, comment_id)
        assert comment is not None and comment.author_id is not None
        row = db.session.execute(
            sa.select(SiteAuthor.banned, SiteAuthor.ban_message)
            .join(Site, Site.id == SiteAuthor.site_id)
            .where(Site.key == site_key, SiteAuthor.user_id == comment.author_id)
        ).one_or_none()
        db.session.remove()
        return (bool(row.banned), row.ban_message) if row is not None else (False, "")


def reply_to_approved(live: LiveApp, site_key: str, parent_id: int, moderator: str) -> int:
    """Approve ``parent_id`` as ``moderator`` and post a held reply to it; the reply's id."""
    with live.app.app_context():
        user = db.session.scalar(sa.select(User).where(User.email == moderator))
        parent = service.decide_comment(parent_id, Action.APPROVE, user)
        replier = User(email=f"replier-{parent_id}@desk.example", display_name="Replier")
        db.session.add(replier)
        db.session.commit()
        reply, _ = service.submit_comment(
            service.NewComment(
                site_key=site_key,
                url=parent.thread.url,
                body="I disagree with the comment above.",
                parent_id=parent_id,
                author=replier,
                ip="127.0.0.1",
            )
        )
        reply_id = reply.id
        db.session.remove()
        return reply_id


def report(live: LiveApp, comment_id: int, notes: list[str]) -> None:
    """One reader report per note on ``comment_id``, from readers with month-old accounts."""
    with live.app.app_context():
        for i, note in enumerate(notes):
            reader = User(
                email=f"reporter{i}-{comment_id}@desk.example",
                display_name=f"Reporter {i}",
                created_at=utcnow() - timedelta(days=30),
            )
            db.session.add(reader)
            db.session.commit()
            reports.report_comment(
                reports.NewReport(comment_id=comment_id, reporter=reader, reason="other", note=note)
            )
        db.session.remove()


@pytest.fixture(scope="session")
def demo_news(live_app: LiveApp) -> dict[str, Any]:
    """The demo newspaper seeded on the live app's port; new readers publish at once, and
    signed-in authors of likely abuse are nudged first."""
    from moderation import demo

    port = urlsplit(live_app.url).port
    with live_app.app.app_context():
        summary = demo.seed(reset=True, port=port)
        site = db.session.scalar(sa.select(Site).where(Site.key == demo.DEMO_SITE_KEY))
        assert site is not None
        site.moderation_settings = site.moderation_settings.with_updates(
            {"first_comments_held": 0, "flood_seconds": 0, "duplicate_minutes": 0, "nudge": 0.6}
        )
        db.session.commit()
        db.session.remove()
    return summary
