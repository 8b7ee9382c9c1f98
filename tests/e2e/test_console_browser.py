"""The site owners' console in a real browser: the live widget preview with its theme switcher,
and the settings page's threshold preview updating as a slider moves."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from auth.models import SiteMembership, SiteRole, User
from moderation.extensions import db
from moderation.models import Comment, Site, Thread
from moderation.status import Status
from tests.e2e.conftest import LiveApp, log_in

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Frame, Page

SCREENSHOTS = Path(__file__).parent / "screenshots"


def shot(page: Page, name: str) -> None:
    """Keep a screenshot of a key state for people to look at."""
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def owned_site(live: LiveApp, scores: list[float]) -> tuple[str, str, str]:
    """A site with an owner and published comments of these abuse scores; key, address, origin."""
    n = live.next()
    with live.app.app_context():
        origin = f"https://console{n}.example"
        site = Site(name=f"Console Gazette {n}", origins=[origin])
        owner = User(email=f"owner{n}@console.example", display_name=f"Owner {n}")
        db.session.add_all(
            [site, owner, SiteMembership(user=owner, site=site, role=SiteRole.OWNER)]
        )
        thread = Thread(site=site, url=f"{origin}/articles/story", title="Story")
        db.session.add(thread)
        db.session.flush()
        for i, abuse in enumerate(scores):
            body = f"Comment {i} about the story."
            db.session.add(
                Comment(
                    thread=thread,
                    site_id=site.id,
                    author_name=f"Reader {i}",
                    body=body,
                    html=f"<p>{body}</p>",
                    status=Status.PUBLISHED,
                    spam_score=0.05,
                    abuse_score=abuse,
                    body_hash=hashlib.sha256(body.encode()).hexdigest(),
                )
            )
        db.session.commit()
        result = (site.key, owner.email or "", origin)
        db.session.remove()
        return result


def preview_threads(live: LiveApp, site_key: str) -> int:
    """How many threads the site has for the preview article (the preview must create none)."""
    with live.app.app_context():
        count = db.session.scalar(
            sa.select(sa.func.count(Thread.id))
            .join(Site, Site.id == Thread.site_id)
            .where(Site.key == site_key, Thread.url.endswith("/__preview__"))
        )
        db.session.remove()
        return int(count or 0)


def preview_frame(page: Page) -> Frame:
    """The preview iframe's frame, once its thread is rendered."""
    handle = page.wait_for_selector("#preview-frame", state="attached")
    frame = handle.content_frame()
    assert frame is not None
    frame.wait_for_selector("#thread")
    return frame


def test_the_site_page_previews_the_widget_in_each_theme(
    browser: Browser, live_app: LiveApp
) -> None:
    key, owner, origin = owned_site(live_app, [])
    context = log_in(browser, live_app, owner, f"/console/sites/{key}")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console",
        lambda message: (
            errors.append(message.text)
            if "Content Security Policy" in message.text or "frame-ancestors" in message.text
            else None
        ),
    )
    page.goto(f"/console/sites/{key}")

    frame = preview_frame(page)
    assert frame.is_visible("#reply-title")
    assert "Leave a Reply" in (frame.text_content("#reply-title") or "")
    assert frame.evaluate("() => document.documentElement.className") == "theme-light"
    assert f"{origin}/__preview__" in frame.url
    shot(page, "console-01-preview-light")

    page.get_by_label("Dark", exact=True).check()
    page.wait_for_function(
        "() => document.getElementById('preview-frame').getAttribute('src').includes('theme=dark')"
    )
    frame = preview_frame(page)
    frame.wait_for_function("() => document.documentElement.className === 'theme-dark'")
    snippet = page.text_content("#embed-snippet") or ""
    assert f'data-site="{key}" data-theme="dark"' in snippet
    background = frame.evaluate("() => getComputedStyle(document.body).backgroundColor")
    shot(page, "console-02-preview-dark")

    page.get_by_label("Auto (the reader's system setting)", exact=True).check()
    preview_frame(page).wait_for_function(
        "() => document.documentElement.className === 'theme-auto'"
    )
    assert 'data-theme="auto"' in (page.text_content("#embed-snippet") or "")
    page.get_by_label("Light", exact=True).check()
    preview_frame(page).wait_for_function(
        "() => document.documentElement.className === 'theme-light'"
    )
    assert "data-theme" not in (page.text_content("#embed-snippet") or "")
    light = preview_frame(page).evaluate("() => getComputedStyle(document.body).backgroundColor")
    assert light != background  # the dark theme really looked different

    # Posting is switched off in the preview (sandbox without allow-forms): nothing is stored.
    frame = preview_frame(page)
    frame.fill("#comment-body", "Trying to post from the console preview.")
    frame.click("#comment-submit")
    time.sleep(0.5)
    assert preview_threads(live_app, key) == 0
    assert errors == []
    context.close()


def test_the_threshold_preview_updates_as_a_slider_moves(
    browser: Browser, live_app: LiveApp
) -> None:
    scores = [0.1, 0.2, 0.3, 0.4, 0.55, 0.65, 0.75, 0.85, 0.95, 0.97]
    key, owner, _ = owned_site(live_app, scores)
    context = log_in(browser, live_app, owner, f"/console/sites/{key}/settings")
    page = context.new_page()
    page.goto(f"/console/sites/{key}/settings")

    def held(row: str) -> str:
        return page.text_content(f'tr[data-row="{row}"] td[data-status="pending"]') or ""

    page.wait_for_selector("#preview-table:not([hidden])")
    # Saved abuse_hold 0.50: six of the ten comments score at or above it.
    page.wait_for_function(
        "() => document.querySelector('tr[data-row=proposed] td[data-status=pending]')"
        ".textContent === '6'"
    )
    assert held("current") == "6"

    slider = page.locator("#abuse_hold")
    slider.focus()
    page.keyboard.press("End")  # 1.00: nothing reaches it
    page.wait_for_function(
        "() => document.querySelector('tr[data-row=proposed] td[data-status=pending]')"
        ".textContent === '0'"
    )
    assert page.text_content('output[data-output-for="abuse_hold"]') == "1.00"
    assert "6 would be routed differently" in (page.text_content("#preview-summary") or "")
    assert "0 of the 10" in (page.text_content('[data-rule="abuse_hold"]') or "")

    page.keyboard.press("Home")  # 0.00: everything is held
    page.wait_for_function(
        "() => document.querySelector('tr[data-row=proposed] td[data-status=pending]')"
        ".textContent === '10'"
    )
    assert held("current") == "6"  # the saved settings did not change
    shot(page, "console-03-threshold-preview")
    context.close()
