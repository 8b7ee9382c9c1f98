"""The comment widget in a real browser, on the demo newspaper, served from another origin.

The news pages are opened on ``localhost:PORT`` and embed.js comes from ``127.0.0.1:PORT``
(the same app, a different origin and site), as a customer's page would load it.
"""

from __future__ import annotations

import hashlib
import time
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from moderation.db import utcnow
from moderation.extensions import db
from moderation.models import Comment, Thread
from moderation.status import Status
from tests.e2e.conftest import TIMEOUT_MS, LiveApp, log_in, wait_for_status

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Frame, Page

ARTICLE = "/articles/council-backs-mill-race-footbridge"
SCREENSHOTS = Path(__file__).parent / "screenshots"
CLEAN = "The three-metre width sounds right for cargo bikes and buggies alike."
ABUSIVE = "Anyone who wants this bridge is a pathetic moron and an idiot, shut up."


def news_url(live: LiveApp, path: str, host: str = "localhost") -> str:
    """``path`` on the newspaper's origin (the live app under another host name)."""
    return f"http://{host}:{urlsplit(live.url).port}{path}"


def shot(page: Page, name: str) -> None:
    """Keep a screenshot of a key state for people to look at."""
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def thread_frame(page: Page) -> Frame:
    """The comment iframe's frame, once its thread is rendered."""
    handle = page.wait_for_selector("#comments iframe", state="attached")
    frame = handle.content_frame()
    assert frame is not None
    frame.wait_for_selector("#thread")
    return frame


def frame_height(page: Page) -> float:
    return page.eval_on_selector("#comments iframe", "f => f.getBoundingClientRect().height")


def content_height(frame: Frame) -> float:
    return frame.evaluate("() => document.documentElement.getBoundingClientRect().height")


def wait_for_fit(page: Page, frame: Frame) -> None:
    """Wait until the iframe is as tall as its content (the resize messages arrived)."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while abs(frame_height(page) - content_height(frame)) > 1.5:
        assert time.monotonic() < deadline, (frame_height(page), content_height(frame))
        time.sleep(0.05)


def open_article(context: BrowserContext, live: LiveApp, host: str = "localhost") -> Page:
    """The demo article on the newspaper's origin, every request it makes recorded."""
    page = context.new_page()
    page.requests = []  # type: ignore[attr-defined]
    page.errors = []  # type: ignore[attr-defined]
    page.on("request", lambda request: page.requests.append(request.url))  # type: ignore[attr-defined]
    page.on("pageerror", lambda error: page.errors.append(str(error)))  # type: ignore[attr-defined]
    page.goto(news_url(live, ARTICLE, host))
    return page


def serious_violations(frame: Frame | Page, live: LiveApp) -> list[dict[str, Any]]:
    """axe-core's serious and critical findings on ``frame`` (axe vendored in static/vendor/)."""
    # Loaded from the service's own static files: the thread's CSP allows only 'self' scripts.
    frame.add_script_tag(url=f"{live.url}/static/vendor/axe.min.js")
    found = frame.evaluate(
        """async () => {
        const result = await axe.run(document, {resultTypes: ['violations']});
        return result.violations.map(v => ({id: v.id, impact: v.impact,
            nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}));
    }"""
    )
    return [v for v in found if v["impact"] in ("serious", "critical")]


def log_in_in_frame(context: BrowserContext, live: LiveApp, frame: Frame, address: str) -> None:
    """Log in from the widget: the e-mail icon opens a popup; the mailed link ends the login."""
    with context.expect_page() as popup_info:
        frame.get_by_role("link", name="Log in with e-mail").click()
    popup = popup_info.value
    popup.fill("#email", address)
    before = len(live.mailbox.messages)
    popup.get_by_role("button", name="Send me a login link").click()
    deadline = time.monotonic() + 10
    while len(live.mailbox.messages) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    popup.goto(live.mailbox.link_to(address))
    with popup.expect_event("close"):
        popup.get_by_role("button", name="Log me in").click()
    frame.locator("#login-user").wait_for(state="visible")


@pytest.fixture
def reader(browser: Browser) -> BrowserContext:
    """A fresh browser profile for a reader."""
    # Tall enough for the whole page: full-page screenshots paint only the visible part of
    # a cross-origin iframe.
    context = browser.new_context(viewport={"width": 1000, "height": 2400})
    context.set_default_timeout(TIMEOUT_MS)
    return context


def test_article_frames_the_thread_from_the_other_origin_and_fits_it(
    reader: BrowserContext, live_app: LiveApp, demo_news: dict[str, Any]
) -> None:
    page = open_article(reader, live_app)
    frame = thread_frame(page)
    service = urlsplit(live_app.url).netloc
    assert urlsplit(frame.url).netloc == service
    assert urlsplit(page.url).netloc != service
    frame.get_by_text("Will the bridge be wide enough for cargo bikes").wait_for()
    assert frame.locator("text=pathetic moron").count() == 0  # rejected comments never show
    wait_for_fit(page, frame)
    before = frame_height(page)
    frame.locator("#comment-help summary").click()  # content grows: the frame follows
    wait_for_fit(page, frame)
    assert frame_height(page) > before
    shot(page, "01-article-with-widget")
    assert serious_violations(frame, live_app) == []
    # Every request went to the newspaper or the comment service: both this loopback app.
    hosts = {urlsplit(url).netloc for url in page.requests}  # type: ignore[attr-defined]
    assert hosts <= {service, urlsplit(page.url).netloc}, hosts
    assert page.errors == []  # type: ignore[attr-defined]


def test_a_page_on_an_unlisted_origin_cannot_frame_the_widget(
    reader: BrowserContext, live_app: LiveApp, demo_news: dict[str, Any]
) -> None:
    # *.localhost resolves to loopback in chromium: the same app, but an origin the site lacks.
    page = open_article(reader, live_app, host="unlisted.localhost")
    handle = page.wait_for_selector("#comments iframe", state="attached")
    assert "/embed/thread" in (handle.get_attribute("src") or "")
    page.wait_for_timeout(1000)
    frame = handle.content_frame()
    assert frame is None or frame.query_selector("#thread") is None


def test_log_in_by_popup_post_hold_approve_and_see_it_published(
    browser: Browser, reader: BrowserContext, live_app: LiveApp, demo_news: dict[str, Any]
) -> None:
    address = f"widget-reader-{live_app.next()}@news.example"
    page = open_article(reader, live_app)
    frame = thread_frame(page)

    # Log in by e-mail link in the popup (the mail is caught by the SMTP server on loopback).
    log_in_in_frame(reader, live_app, frame, address)
    frame.locator("#login-user").wait_for(state="visible")
    assert frame.locator("#login-anonymous").is_hidden()
    shot(page, "02-logged-in")
    assert serious_violations(frame, live_app) == []

    # A clean comment appears at once, without reloading the page; focus moves to it.
    frame.get_by_label("Comment", exact=True).fill(CLEAN)
    frame.get_by_role("button", name="Post Comment").click()
    mine = frame.locator("li.comment", has_text=CLEAN)
    mine.wait_for()
    assert mine.locator(".comment__held").count() == 0
    assert frame.evaluate("() => document.activeElement.textContent").find(CLEAN) >= 0
    frame.wait_for_function("() => document.getElementById('thread-status').textContent !== ''")

    # An abusive one: first the nudge asks the author to reconsider; posted anyway, it is
    # held, shown to its author only, awaiting moderation.
    frame.get_by_label("Comment", exact=True).fill(ABUSIVE)
    frame.get_by_role("button", name="Post Comment").click()
    nudge = frame.get_by_role("alertdialog", name="Before you post")
    nudge.wait_for()
    assert frame.evaluate("() => document.activeElement.id") == "nudge-edit"
    shot(page, "03a-nudge")
    nudge.get_by_role("button", name="Post anyway").click()
    held = frame.locator("li.comment", has_text="pathetic moron")
    held.locator(".comment__held").wait_for()
    assert "awaiting moderation" in (held.locator(".comment__held").text_content() or "")
    shot(page, "03-awaiting-moderation")
    held_id = int(held.get_attribute("data-id") or 0)

    # Other readers do not see it.
    stranger = browser.new_context()
    other = open_article(stranger, live_app)
    other_frame = thread_frame(other)
    other_frame.get_by_text(CLEAN).wait_for()
    assert other_frame.locator("text=pathetic moron").count() == 0
    stranger.close()

    # A moderator approves it from the review desk with the keyboard alone.
    moderator = next(a["email"] for a in demo_news["accounts"] if a["role"] == "moderator")
    desk = log_in(browser, live_app, moderator, "/moderate?site=millbrook-courier")
    desk_page = desk.new_page()
    desk_page.goto("/moderate?site=millbrook-courier")
    desk_page.wait_for_selector(f'.desk-card[data-id="{held_id}"]')
    for _ in range(60):
        focused = desk_page.eval_on_selector(
            "#desk-cards .desk-card.is-focused", "n => n.dataset.id"
        )
        if int(focused) == held_id:
            break
        desk_page.keyboard.press("j")
    desk_page.keyboard.press("a")
    wait_for_status(live_app, held_id, "published")
    desk.close()

    # The reader sees it published after a reload.
    page.reload()
    frame = thread_frame(page)
    published = frame.locator(f'li.comment[data-id="{held_id}"]')
    published.wait_for()
    assert published.locator(".comment__held").count() == 0
    shot(page, "04-published")


def test_dark_theme_reaches_the_frame(
    reader: BrowserContext, live_app: LiveApp, demo_news: dict[str, Any]
) -> None:
    # The demo newspaper passes ?theme= on to the snippet's data-theme, as a customer would.
    page = reader.new_page()
    page.goto(news_url(live_app, ARTICLE + "?theme=dark"))
    frame = thread_frame(page)
    frame.wait_for_function("() => document.documentElement.className === 'theme-dark'")
    background = frame.evaluate("() => getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(13, 17, 23)"
    shot(page, "05-dark-theme")
    assert serious_violations(frame, live_app) == []


def test_reply_edit_like_and_report_from_the_keyboard(
    reader: BrowserContext, live_app: LiveApp, demo_news: dict[str, Any]
) -> None:
    page = open_article(reader, live_app)
    frame = thread_frame(page)
    log_in_in_frame(reader, live_app, frame, f"widget-replier-{live_app.next()}@news.example")

    # Reply to Kwame's question: the reply lands nested under it.
    kwame = frame.locator("li.comment", has_text="Will the bridge be wide enough").first
    kwame.get_by_role("button", name="Reply to Kwame Mensah").click()
    assert frame.evaluate("() => document.activeElement.id") == "comment-body"
    page.keyboard.type("Three metres, according to the plans in the appendix.")
    page.keyboard.press("Tab")  # on to the formatting help
    frame.get_by_role("button", name="Post Comment").focus()
    page.keyboard.press("Enter")
    reply = kwame.locator(".comments--replies li.comment", has_text="Three metres, according")
    reply.wait_for()
    assert reply.get_attribute("data-depth") == "2"
    reply = frame.locator(f'li.comment[data-id="{reply.get_attribute("data-id")}"]')

    # Edit it within the window: it is marked "edited".
    reply.get_by_role("button", name="Edit your comment").click()
    field = reply.get_by_role("textbox", name="Edit your comment")
    field.fill("Three metres wide, according to the plans in the appendix.")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    reply.locator(".comment__edited").wait_for()
    assert "Three metres wide" in (reply.locator(".comment__body").text_content() or "")
    shot(page, "06-reply-edited")

    # Like Joan's comment and report Dev's.
    joan = frame.locator("li.comment", has_text="Finally! I've asked").first
    like = joan.locator('button[data-action="like"]')
    like.click()
    frame.wait_for_function(
        "() => document.querySelector('li.comment button[data-action=like][aria-pressed=true]')"
    )
    assert "(1)" in (joan.locator('button[data-action="like"]').text_content() or "")
    dev = frame.locator("li.comment", has_text="£2.4 million seems a lot").first.locator(
        ":scope > article"
    )
    dev.get_by_role("button", name="Report comment by Dev Malhotra").click()
    dev.get_by_label("Why are you reporting this comment?").select_option("off_topic")
    dev.get_by_role("button", name="Send report").click()
    dev.get_by_text("Thank you, the moderators will look at it.").wait_for()
    shot(page, "07-reported")
    assert serious_violations(frame, live_app) == []
    assert page.errors == []  # type: ignore[attr-defined]


def test_front_page_counts_come_from_the_count_helper(
    reader: BrowserContext, live_app: LiveApp, demo_news: dict[str, Any]
) -> None:
    page = reader.new_page()
    with page.expect_response(lambda r: "/embed/counts?" in r.url) as answer_info:
        page.goto(news_url(live_app, "/"))
    answer = answer_info.value
    assert urlsplit(answer.url).netloc == urlsplit(live_app.url).netloc  # the service's origin
    counts = answer.json()["counts"]
    assert len(counts) == 3
    for url, n in counts.items():
        link = page.locator(f'a[data-comment-count="{url}"]')
        expected = "1 comment" if n == 1 else f"{n} comments"
        page.wait_for_function(
            '([u, t]) => document.querySelector(`a[data-comment-count="${u}"]`).textContent === t',
            arg=[url, expected],
        )
        assert link.text_content() == expected


def test_load_more_and_newest_first_on_a_long_thread(
    reader: BrowserContext, live_app: LiveApp, demo_news: dict[str, Any]
) -> None:
    slug = "millbrook-high-robotics-nationals"
    with live_app.app.app_context():
        thread = db.session.scalar(sa.select(Thread).where(Thread.url.like(f"%/{slug}")))
        assert thread is not None
        start = utcnow() - timedelta(hours=2)
        for i in range(70):
            body = f"Good luck to the robotics team, message {i:02d}."
            db.session.add(
                Comment(
                    thread=thread,
                    site_id=thread.site_id,
                    author_name=f"Well-wisher {i:02d}",
                    body=body,
                    html=f"<p>{body}</p>",
                    status=Status.PUBLISHED,
                    body_hash=hashlib.sha256(body.encode()).hexdigest(),
                    created_at=start + timedelta(seconds=i),
                )
            )
        thread.comment_count += 70
        db.session.commit()
        db.session.remove()

    page = reader.new_page()
    page.goto(news_url(live_app, f"/articles/{slug}"))
    frame = thread_frame(page)
    items = frame.locator("#comments li.comment")
    assert items.count() == 50
    more = frame.get_by_role("button", name="Load more comments")
    more.focus()
    page.keyboard.press("Enter")
    frame.wait_for_function("() => document.querySelectorAll('#comments li.comment').length > 50")
    total = items.count()
    assert total >= 70
    # Focus moves to the first comment that was added, for keyboard and screen reader users.
    assert frame.evaluate("() => document.activeElement.matches('li.comment')")
    frame.get_by_role("button", name="Load more comments").wait_for(state="hidden")
    wait_for_fit(page, frame)

    frame.get_by_label("Sort by").select_option("newest")
    frame = thread_frame(page)
    frame.wait_for_function("() => document.getElementById('thread').dataset.sort === 'newest'")
    created = frame.eval_on_selector_all(
        "#comments > li.comment", "items => items.map(li => li.dataset.created)"
    )
    assert created == sorted(created, reverse=True)
    assert frame.get_by_text("message 69").is_visible()  # the newest of the long tail
    assert frame.get_by_text("message 19").count() == 0  # the oldest are on the next page
