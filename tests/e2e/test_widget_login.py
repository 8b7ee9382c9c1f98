"""The widget keeps its reader: a login lasts across reloads, articles and tabs; own comments
on later pages get their controls.

Like the other widget tests, the news pages are on ``localhost:PORT`` and the comment frame on
``127.0.0.1:PORT``: a third-party frame, where the login lives in the frame's own storage.
Chromium 156 blocks all third-party storage by default (its third-party cookie phase-out,
feature ``TrackingProtection3pcd``); the login test runs in a chromium with it off, as Chrome,
Firefox and Safari ship: third-party storage allowed, partitioned per top-level site.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa

from auth.models import User
from moderation.db import utcnow
from moderation.extensions import db
from moderation.models import Comment, CommentLike, Site, Thread
from moderation.status import Status
from tests.e2e.conftest import TIMEOUT_MS, LiveApp
from tests.e2e.test_widget_browser import (  # the widget tests' helpers and reader fixture
    log_in_in_frame,
    news_url,
    open_article,
    shot,
    thread_frame,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Frame

OTHER_ARTICLE = "/articles/harbour-festival-record-crowds"


@pytest.fixture(scope="module")
def partitioning_browser(browser: Browser, chromium_path: str) -> Iterator[Browser]:
    """A second headless chromium that allows partitioned third-party storage (see above)."""
    launched = browser.browser_type.launch(
        executable_path=chromium_path,
        headless=True,
        args=[
            "--no-sandbox",
            "--disable-dev-shm-usage",
            "--disable-gpu",
            "--disable-features=TrackingProtection3pcd",
        ],
    )
    yield launched
    launched.close()


@pytest.fixture
def reader(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh reader's profile in the suite's chromium (third-party storage blocked)."""
    context = browser.new_context(viewport={"width": 1000, "height": 2400})
    context.set_default_timeout(TIMEOUT_MS)
    yield context
    context.close()


@pytest.fixture
def lasting_reader(partitioning_browser: Browser) -> Iterator[BrowserContext]:
    """A fresh reader's profile in that browser."""
    context = partitioning_browser.new_context(viewport={"width": 1000, "height": 2400})
    context.set_default_timeout(TIMEOUT_MS)
    yield context
    context.close()


def logged_in_as(frame: Frame) -> str:
    """The name in "You are commenting using ...", once the frame shows it."""
    frame.locator("#login-user").wait_for(state="visible")
    assert frame.locator("#login-anonymous").is_hidden()
    assert "You are commenting using" in (frame.locator("#login-user").text_content() or "")
    return frame.locator("#login-name").text_content() or ""


def logged_out(frame: Frame) -> None:
    """Wait until the frame shows the login icons (nobody logged in)."""
    frame.locator("#login-anonymous").wait_for(state="visible")
    assert frame.locator("#login-user").is_hidden()


def test_login_survives_a_reload_where_third_party_storage_is_blocked(
    reader: BrowserContext, live_app: LiveApp, demo_news: dict[str, Any]
) -> None:
    # The suite's chromium blocks the frame's storage: only the partitioned (CHIPS) cookie,
    # set by /embed/session on HTTPS and on loopback, can keep this login.
    context = reader
    page = open_article(context, live_app)
    assert page.evaluate("() => document.hasStorageAccess !== undefined")
    log_in_in_frame(context, live_app, thread_frame(page), f"chips-{live_app.next()}@news.example")
    name = logged_in_as(thread_frame(page))
    cookies = [c for c in context.cookies() if c["name"] == "embed_token"]
    assert cookies and cookies[0]["secure"] and cookies[0]["httpOnly"]
    assert cookies[0]["sameSite"] == "None"

    page.reload()
    assert logged_in_as(thread_frame(page)) == name
    other = context.new_page()
    other.goto(news_url(live_app, OTHER_ARTICLE))
    assert logged_in_as(thread_frame(other)) == name

    # Log Out drops the cookie: a reload stays logged out.
    thread_frame(other).get_by_role("button", name="Log Out").click()
    logged_out(thread_frame(other))
    other.reload()
    logged_out(thread_frame(other))


def test_login_survives_a_reload_another_article_and_ends_everywhere_on_log_out(
    lasting_reader: BrowserContext, live_app: LiveApp, demo_news: dict[str, Any]
) -> None:
    context = lasting_reader
    address = f"lasting-reader-{live_app.next()}@news.example"
    page = open_article(context, live_app)
    log_in_in_frame(context, live_app, thread_frame(page), address)
    name = logged_in_as(thread_frame(page))
    assert name

    # A reload of the article: still logged in, no popup, no new login.
    page.reload()
    assert logged_in_as(thread_frame(page)) == name

    # Another article of the same newspaper in another tab (a later visit): logged in too.
    other = context.new_page()
    other.goto(news_url(live_app, OTHER_ARTICLE))
    other_frame = thread_frame(other)
    assert logged_in_as(other_frame) == name
    shot(other, "08-login-kept-on-another-article")

    # Log out in that tab: the first tab follows without a reload, and stays logged out.
    other_frame.get_by_role("button", name="Log Out").click()
    logged_out(other_frame)
    logged_out(thread_frame(page))
    page.reload()
    logged_out(thread_frame(page))
    other.reload()
    logged_out(thread_frame(other))

    # Logging in again in one tab logs the other in as well.
    log_in_in_frame(context, live_app, thread_frame(other), address)
    assert logged_in_as(thread_frame(page)) == name
    assert page.errors == []  # type: ignore[attr-defined]


def _long_thread(live: LiveApp, reader_address: str, slug: str) -> dict[str, int]:
    """60 published comments on a new demo article, oldest first, all a minute or two old:
    the reader wrote the 3rd (first page) and the 56th (second page) and liked the 58th."""
    with live.app.app_context():
        site = db.session.scalar(sa.select(Site).where(Site.key == "millbrook-courier"))
        assert site is not None
        user = User(email=reader_address, display_name="Paging Reader")
        db.session.add(user)
        db.session.flush()  # its id, for author_id below
        thread = Thread(
            site_id=site.id,
            url=f"{site.origins[0]}/articles/{slug}",
            title="Long thread",
            comment_count=60,
        )
        db.session.add(thread)
        start = utcnow() - timedelta(minutes=2)
        comments = []
        for i in range(60):
            own = i in (2, 55)
            body = f"Neighbourly remark number {i:02d} on {slug}."
            comment = Comment(
                thread=thread,
                site_id=site.id,
                author_id=user.id if own else None,
                author_name=user.display_name if own else f"Neighbour {i:02d}",
                body=body,
                html=f"<p>{body}</p>",
                status=Status.PUBLISHED,
                body_hash=hashlib.sha256(body.encode()).hexdigest(),
                created_at=start + timedelta(seconds=i),
            )
            db.session.add(comment)
            comments.append(comment)
        db.session.flush()
        db.session.add(CommentLike(comment_id=comments[57].id, user_id=user.id))
        comments[57].like_count = 1
        db.session.commit()
        found = {
            "own_first": comments[2].id,
            "own_second": comments[55].id,
            "liked": comments[57].id,
            "other_second": comments[56].id,
            "other_first": comments[3].id,
        }
        db.session.remove()
        return found


def test_own_comment_on_the_second_page_gets_edit_delete_and_likes_show(
    reader: BrowserContext, live_app: LiveApp, demo_news: dict[str, Any]
) -> None:
    # The reader already has an account (and comments); they log in on the long thread itself.
    address = f"paging-reader-{live_app.next()}@news.example"
    slug = f"long-thread-{live_app.next()}"
    ids = _long_thread(live_app, address, slug)
    page = reader.new_page()
    page.errors = []  # type: ignore[attr-defined]
    page.on("pageerror", lambda error: page.errors.append(str(error)))  # type: ignore[attr-defined]
    page.goto(news_url(live_app, f"/articles/{slug}"))
    frame = thread_frame(page)
    assert frame.locator("#comments li.comment").count() == 50
    log_in_in_frame(reader, live_app, frame, address)
    assert logged_in_as(frame) == "Paging Reader"

    def item(key: str) -> Any:
        return frame.locator(f'li.comment[data-id="{ids[key]}"]')

    # First page: the reader's own comment has Edit and Delete; a neighbour's has Like.
    item("own_first").get_by_role("button", name="Edit your comment").wait_for()
    assert item("own_first").get_by_role("button", name="Delete your comment").is_visible()
    assert item("other_first").locator('button[data-action="edit"]').count() == 0
    assert item("other_first").locator('button[data-action="like"]').count() == 1

    # Second page, by "Load more": the same for the comments it adds.
    frame.get_by_role("button", name="Load more comments").click()
    item("own_second").get_by_role("button", name="Edit your comment").wait_for()
    assert item("own_second").get_by_role("button", name="Delete your comment").is_visible()
    assert item("own_second").locator('button[data-action="like"]').count() == 0
    liked = item("liked").locator('button[data-action="like"]')
    frame.wait_for_function(
        "id => document.querySelector(`li[data-id='${id}'] button[data-action=like]`)"
        ".getAttribute('aria-pressed') === 'true'",
        arg=ids["liked"],
    )
    assert "(1)" in (liked.text_content() or "")
    other_like = item("other_second").locator('button[data-action="like"]')
    assert other_like.get_attribute("aria-pressed") == "false"
    assert item("other_second").locator('button[data-action="edit"]').count() == 0

    # The Edit on the second page works: the comment is saved and marked "edited".
    own = item("own_second")
    own.get_by_role("button", name="Edit your comment").click()
    own.get_by_role("textbox", name="Edit your comment").fill("Edited from the second page.")
    own.get_by_role("button", name="Save").click()
    own.locator(".comment__edited").wait_for()
    assert "Edited from the second page." in (own.locator(".comment__body").text_content() or "")
    shot(page, "09-own-comment-on-page-two")
    with live_app.app.app_context():
        stored = db.session.get(Comment, ids["own_second"])
        assert stored is not None and stored.body == "Edited from the second page."
        db.session.remove()
    assert page.errors == []  # type: ignore[attr-defined]
