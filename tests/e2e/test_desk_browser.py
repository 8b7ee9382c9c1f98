"""The review desk in a real browser: clearing a queue by keyboard, a race, undo, the help."""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING, Any

from tests.e2e.conftest import (
    LiveApp,
    ban_of,
    log_in,
    open_desk,
    reply_to_approved,
    report,
    statuses,
    wait_for_status,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

HOSTILE = '<img src=x onerror="window.__xss=1">Nice <b>try</b>'
STATUS_OF = {"a": "published", "r": "rejected", "s": "spam"}


def mixed_bodies(n: int) -> list[str]:
    """``n`` different comments: plain, rude, spammy, a suspect word, hostile markup, emoji."""
    kinds = [
        "I think the council got this one right, the crossing is overdue ({i}).",
        "You are an idiot and a moron, shut up already ({i}).",
        "BUY CHEAP PILLS NOW!!! best prices http://pills{i}.example click here",
        "This whole scheme smells like fraud to me ({i}).",
        "Does anyone know when the consultation closes? ({i})",
    ]
    bodies = [kinds[i % len(kinds)].format(i=i) for i in range(n)]
    bodies[7] = HOSTILE
    bodies[8] = "😀😀 what a fraud 😀 (8)"  # offsets count code points, not UTF-16 units
    return bodies


def desk_path(site_key: str) -> str:
    return f"/moderate?site={site_key}"


def focused_id(page: Page) -> int:
    value = page.eval_on_selector("#desk-cards .desk-card.is-focused", "n => n.dataset.id")
    return int(value)


def wait_for_pending(page: Page, count: int) -> None:
    """Wait until the Pending tab shows ``count``."""
    page.wait_for_function(
        "n => document.querySelector('[data-count=pending]').textContent === String(n)", arg=count
    )


def wait_for_pending_like(page: Page, queue: str, count: int) -> None:
    """Wait until the tab of ``queue`` shows ``count``."""
    page.wait_for_function(
        "([q, n]) => document.querySelector(`[data-count=${q}]`).textContent === String(n)",
        arg=[queue, count],
    )


def pending_count(page: Page) -> str:
    return page.text_content('[data-count="pending"]') or ""


def test_clear_a_queue_of_50_with_the_keyboard_alone(
    browser: Browser, live_app: LiveApp, desk_site: Any
) -> None:
    world = desk_site(mixed_bodies(50))
    assert set(statuses(live_app, world.comment_ids).values()) == {"pending"}
    context = log_in(browser, live_app, world.moderators[0], desk_path(world.site_key))
    page = open_desk(context, world.site_key, 50)
    wait_for_pending(page, 50)

    # What the moderator sees: hostile markup as text, the suspect word highlighted.
    hostile_card = page.locator(f'.desk-card[data-id="{world.comment_ids[7]}"] .desk-card__body')
    assert hostile_card.text_content() == HOSTILE
    assert page.locator(".desk-card__body img, .desk-card__body b").count() == 0
    # Highlights of adjacent words merge; after the emoji they still land on whole words.
    emoji_marks = page.locator(f'.desk-card[data-id="{world.comment_ids[8]}"] mark')
    marked = emoji_marks.all_text_contents()
    assert marked and marked[-1].endswith("fraud")
    assert all(f" {text} " in " what a fraud " for text in marked), marked
    assert page.locator(f'.desk-card[data-id="{world.comment_ids[3]}"] mark').count() >= 1
    assert page.locator(".desk-card__reasons li").count() >= 50  # every hold has its reason

    expected: dict[int, str] = {}
    keyboard = page.keyboard

    # One bulk action: select three with x (moving with j), reject them together.
    for step in range(3):
        if step:
            keyboard.press("j")
        keyboard.press("x")
    ids = page.eval_on_selector_all(".desk-card.is-selected", "ns => ns.map(n => n.dataset.id)")
    selected = [int(value) for value in ids]
    assert len(selected) == 3 and page.is_visible("#desk-bulk")
    keyboard.press("r")
    expected.update({comment_id: "rejected" for comment_id in selected})

    # The rest one by one, moving around with j and k on the way.
    keys = "asr"
    n = 0
    while page.locator("#desk-cards .desk-card").count():
        if n % 5 == 1:
            keyboard.press("j")  # skip one, decide the next, then come back up
        elif n % 5 == 3:
            keyboard.press("j")
            keyboard.press("k")
        key = keys[n % 3]
        expected[focused_id(page)] = STATUS_OF[key]
        keyboard.press(key)
        n += 1
        assert n <= 60, "the queue does not empty"

    wait_for_pending(page, 0)
    page.wait_for_selector("#desk-empty", state="visible")
    assert set(expected) == set(world.comment_ids)

    # Every decision reached the database as the key said; none failed on the way.
    got = statuses(live_app, world.comment_ids)
    for _ in range(50):
        if got == expected:
            break
        page.wait_for_timeout(100)
        got = statuses(live_app, world.comment_ids)
    assert got == expected
    assert page.locator(".desk-toast--error").count() == 0
    assert page.evaluate("window.__xss") is None
    assert page.errors == []  # type: ignore[attr-defined]

    # The audit log shows the shift: 50 decisions by this moderator, charted per hour.
    page.goto(f"/moderate/audit?site={world.site_key}")
    moderator_row = page.locator("#desk-activity-table tbody tr").first
    moderator_row.wait_for()
    cells = moderator_row.locator("th, td").all_text_contents()
    counts = collections.Counter(expected.values())
    assert cells[1:5] == [
        "50",
        str(counts["published"]),
        str(counts["rejected"]),
        str(counts["spam"]),
    ]
    assert page.locator("#desk-activity-chart svg rect").count() == 7 * 24
    assert page.locator("#desk-audit-table tbody tr").count() == 50  # the first page
    csv_link = page.get_attribute("#desk-audit-csv", "href") or ""
    assert csv_link.startswith("/api/v1/moderation/audit.csv?") and world.site_key in csv_link
    assert page.evaluate("window.__xss") is None
    context.close()


def test_two_moderators_one_comment(browser: Browser, live_app: LiveApp, desk_site: Any) -> None:
    world = desk_site(["First comment to decide.", "Second comment to decide."], moderators=2)
    path = desk_path(world.site_key)
    first = open_desk(log_in(browser, live_app, world.moderators[0], path), world.site_key, 2)
    # One card per page here: the second arrives through keyset pagination, by itself.
    second = open_desk(
        log_in(browser, live_app, world.moderators[1], path), world.site_key, 2, "&limit=1"
    )
    target = world.comment_ids[0]
    assert focused_id(first) == focused_id(second) == target

    first.keyboard.press("a")
    first.wait_for_selector(".desk-toast--success")
    assert statuses(live_app, [target])[target] == "published"

    second.keyboard.press("r")  # too late: the other moderator approved it
    card = second.locator(f'.desk-card[data-id="{target}"]')
    notice = card.locator(".desk-card__notice")
    notice.wait_for(state="visible")
    assert "already decided by Moderator 0" in (notice.text_content() or "")
    assert card.get_attribute("data-status") == "published"
    assert statuses(live_app, [target])[target] == "published"
    # Moving on from the notice works with the keyboard too.
    second.keyboard.press("j")
    assert focused_id(second) == world.comment_ids[1]
    first.context.close()
    second.context.close()


def test_undo_and_help(browser: Browser, live_app: LiveApp, desk_site: Any) -> None:
    world = desk_site(["Undo me, please.", "Leave me be."])
    context = log_in(browser, live_app, world.moderators[0], desk_path(world.site_key))
    page = open_desk(context, world.site_key, 2)
    target = world.comment_ids[0]

    page.keyboard.press("s")
    page.wait_for_selector(".desk-toast--success")
    assert statuses(live_app, [target])[target] == "spam"
    assert page.locator(".desk-card").count() == 1
    assert pending_count(page) == "1"

    page.keyboard.press("u")
    page.wait_for_function("() => document.querySelectorAll('.desk-card').length === 2")
    assert statuses(live_app, [target])[target] == "pending"
    assert focused_id(page) == target
    assert pending_count(page) == "2"

    page.keyboard.press("?")
    help_dialog = page.locator("#desk-help")
    help_dialog.wait_for(state="visible")
    assert "Keyboard shortcuts" in (help_dialog.text_content() or "")
    page.keyboard.press("a")  # shortcuts are off while the help is open
    page.keyboard.press("Escape")
    help_dialog.wait_for(state="hidden")
    assert statuses(live_app, [target])[target] == "pending"

    # b asks for a message first; Esc cancels, nothing happens.
    page.keyboard.press("b")
    page.locator("#desk-confirm").wait_for(state="visible")
    page.keyboard.press("Escape")
    page.locator("#desk-confirm").wait_for(state="hidden")
    assert page.errors == []  # type: ignore[attr-defined]
    context.close()


def test_author_tools_by_keyboard(browser: Browser, live_app: LiveApp, desk_site: Any) -> None:
    world = desk_site(["Reject me with a reason.", "Ban my author.", "Approved parent."])
    first, second, parent = world.comment_ids
    reply = reply_to_approved(live_app, world.site_key, parent, world.moderators[0])
    context = log_in(browser, live_app, world.moderators[0], desk_path(world.site_key))
    page = open_desk(context, world.site_key, 3)

    # A reply shows the comment it answers.
    quoted = page.locator(f'.desk-card[data-id="{reply}"] .desk-card__parent')
    assert "Approved parent." in (quoted.text_content() or "")
    assert "(published)" in (quoted.text_content() or "")

    # R: reject with a reason for the author, typed in the dialog; Ctrl+Enter confirms.
    page.keyboard.press("R")
    page.locator("#desk-confirm").wait_for(state="visible")
    page.keyboard.type("Please keep it civil.")
    page.keyboard.press("Control+Enter")
    page.wait_for_function("() => document.querySelectorAll('.desk-card').length === 2")
    wait_for_status(live_app, first, "rejected")

    # b: ban the author with a message.
    assert focused_id(page) == second
    page.keyboard.press("b")
    page.locator("#desk-confirm").wait_for(state="visible")
    page.keyboard.type("You were warned.")
    page.keyboard.press("Control+Enter")
    page.locator(".desk-toast--success", has_text="is banned").wait_for()
    assert ban_of(live_app, world.site_key, second) == (True, "You were warned.")
    facts = page.locator(f'.desk-card[data-id="{second}"] .desk-card__facts')
    assert "banned" in (facts.text_content() or "")

    # o: the author panel; a note written there is shown as text.
    page.keyboard.press("o")
    drawer = page.locator("#desk-drawer")
    drawer.wait_for(state="visible")
    page.locator("#desk-note-body").fill("<b>Warned</b> twice")
    page.locator("#desk-note-body").press("Tab")
    page.keyboard.press("Enter")  # on the "Add note" button
    drawer.locator(".desk-notes li", has_text="<b>Warned</b> twice").wait_for()
    assert drawer.locator(".desk-notes b").count() == 0
    assert drawer.get_by_role("button", name="Lift the ban").is_visible()
    page.keyboard.press("Escape")
    drawer.wait_for(state="hidden")
    assert page.evaluate("document.activeElement.dataset.id") == str(second)
    assert page.errors == []  # type: ignore[attr-defined]
    context.close()


def test_reported_queue_shows_the_reports(
    browser: Browser, live_app: LiveApp, desk_site: Any
) -> None:
    world = desk_site(["A published comment readers dislike.", "Parent of nothing."])
    published = world.comment_ids[0]
    reply_to_approved(live_app, world.site_key, published, world.moderators[0])
    report(live_app, published, [HOSTILE, "Off topic.", "Rude."])
    context = log_in(browser, live_app, world.moderators[0], desk_path(world.site_key))
    page = context.new_page()
    page.goto(f"/moderate?site={world.site_key}&queue=reported")
    card = page.locator(f'.desk-card[data-id="{published}"]')
    card.wait_for()
    assert page.get_attribute('[data-queue-tab="reported"]', "aria-pressed") == "true"
    assert page.text_content('[data-count="reported"]') == "1"
    assert "3 reader reports" in (card.locator(".desk-card__reports").text_content() or "")

    toggle = card.locator(".desk-card__reports button")
    assert toggle.text_content() == "Show the reports"
    toggle.focus()
    page.keyboard.press("Enter")
    items = card.locator(".desk-card__report-list li")
    items.nth(2).wait_for()
    assert toggle.get_attribute("aria-expanded") == "true"
    texts = items.all_text_contents()
    assert any(HOSTILE in text for text in texts)  # the note as text, not markup
    assert card.locator(".desk-card__report-list img").count() == 0
    assert all("weight 1.0" in text for text in texts)

    page.keyboard.press("a")  # approve: it stays published and leaves the Reported queue
    wait_for_pending_like(page, "reported", 0)
    assert statuses(live_app, [published])[published] == "published"
    assert page.evaluate("window.__xss") is None
    context.close()
