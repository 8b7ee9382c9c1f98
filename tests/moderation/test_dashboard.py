"""The dashboard: its numbers from the database, and its server-side SVG charts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any

import pytest
from flask import g
from flask.testing import FlaskClient
from sqlalchemy.orm import scoped_session

from auth.models import SiteMembership, SiteRole, User
from moderation.dashboard import build_dashboard, histogram
from moderation.models import ActorType, Comment, Decision, Site
from moderation.status import Action, Status

if TYPE_CHECKING:
    from tests.conftest import Factory

DBSession = scoped_session[Any]
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
HOSTILE = '<script>alert("x")</script>'


def sign_in(client: FlaskClient, user: User) -> None:
    """Put ``user`` in the client's Flask-Login session."""
    with client.session_transaction() as session:
        session["_user_id"] = user.get_id()
        session["_fresh"] = True
    g.pop("_login_user", None)  # requests share the test's app context


def staff(factory: Factory, session: DBSession, site: Site, role: SiteRole, **fields: Any) -> User:
    """A user with ``role`` on ``site``."""
    user = factory.user(**fields)
    session.add(SiteMembership(user=user, site=site, role=role))
    session.commit()
    return user


def routed(
    session: DBSession,
    comment: Comment,
    status: Status,
    reasons: list[str] = (),  # type: ignore[assignment]
) -> None:
    """The system's routing decision of a new comment, at its creation time."""
    session.add(
        Decision(
            comment_id=comment.id,
            site_id=comment.site_id,
            actor_type=ActorType.SYSTEM,
            to_status=status,
            reasons=[{"code": code, "message": code} for code in reasons],
            created_at=comment.created_at,
        )
    )
    session.commit()


@pytest.fixture
def newsroom(factory: Factory, db_session: DBSession) -> dict[str, Any]:
    """A site with a week of comments, routings and two moderators' decisions."""
    site = factory.site(name="Gazette")
    mia = staff(factory, db_session, site, SiteRole.MODERATOR, display_name="Mia")
    leo = staff(factory, db_session, site, SiteRole.MODERATOR, display_name="Leo")
    busy = factory.thread(site, title="Council votes on harbour")
    quiet = factory.thread(site, title=HOSTILE)
    day = timedelta(days=1)
    rows = [
        # (days ago, thread, status, spam, abuse, routed to, reasons, decided by, minutes later)
        (0, busy, Status.PUBLISHED, 0.05, 0.10, Status.PUBLISHED, [], None, 0),
        (0, busy, Status.PUBLISHED, 0.15, 0.20, Status.PUBLISHED, [], None, 0),
        (1, busy, Status.PUBLISHED, 0.25, 0.55, Status.PENDING, ["abuse_score"], mia, 10),
        (1, busy, Status.REJECTED, 0.35, 0.85, Status.PENDING, ["abuse_score"], mia, 30),
        (2, busy, Status.SPAM, 0.99, 0.05, Status.SPAM, ["spam_reject"], None, 0),
        (
            3,
            quiet,
            Status.PENDING,
            0.60,
            0.30,
            Status.PENDING,
            ["spam_score", "first_comment"],
            None,
            0,
        ),
        (3, quiet, Status.PUBLISHED, 1.00, 0.00, Status.PENDING, ["first_comment"], leo, 50),
        (40, quiet, Status.PUBLISHED, 0.5, 0.5, Status.PUBLISHED, [], None, 0),  # outside 30 days
    ]
    comments = []
    for ago, thread, status, spam, abuse, first, reasons, moderator, minutes in rows:
        created = NOW - ago * day - timedelta(hours=1)
        comment = factory.comment(
            thread, status=status, spam_score=spam, abuse_score=abuse, created_at=created
        )
        routed(db_session, comment, first, reasons)
        if moderator is not None:
            db_session.add(
                Decision(
                    comment_id=comment.id,
                    site_id=site.id,
                    actor_type=ActorType.USER,
                    actor_id=moderator.id,
                    action=Action.APPROVE if status == Status.PUBLISHED else Action.REJECT,
                    from_status=Status.PENDING,
                    to_status=status,
                    created_at=created + timedelta(minutes=minutes),
                )
            )
            db_session.commit()
        comments.append(comment)
    owner = staff(factory, db_session, site, SiteRole.OWNER, display_name="Olive")
    return {"site": site, "owner": owner, "mia": mia, "leo": leo, "comments": comments}


def test_the_numbers(newsroom: dict[str, Any]) -> None:
    data = build_dashboard(newsroom["site"], newsroom["owner"], days=30, now=NOW)
    assert data.total == 7  # the 40-day-old comment is outside the period
    assert data.routed == 7
    assert data.share_held == pytest.approx(4 / 7)
    assert data.share_published == pytest.approx(2 / 7)
    assert data.decided == 3
    assert data.median_minutes == pytest.approx(30)
    assert [label for label, _, _ in data.hold_reasons.rows][:2] == ["abuse score", "first comment"]
    assert dict((label, n) for label, n, _ in data.hold_reasons.rows)["spam score"] == 1
    articles = [(label, n) for label, n, _ in data.articles.rows]
    assert articles == [("Council votes on harbour", 5), (HOSTILE, 2)]
    names = {m["name"]: m for m in data.moderators}
    assert names["Mia"]["decisions"] == 2 and names["Mia"]["approve"] == 1
    assert names["Leo"]["decisions"] == 1


def test_comments_per_day_are_stacked_by_status(newsroom: dict[str, Any]) -> None:
    data = build_dashboard(newsroom["site"], newsroom["owner"], days=7, now=NOW)
    titles = [rect.title for rect in data.per_day.rects]
    today = NOW.strftime("%d %b")
    yesterday = (NOW - timedelta(days=1)).strftime("%d %b")
    assert f"{today}: 2 published" in titles
    assert f"{yesterday}: 1 published" in titles
    assert f"{yesterday}: 1 rejected" in titles
    # Segments of one day sit on top of each other, never overlapping.
    day_rects = sorted(
        (r for r in data.per_day.rects if r.title.startswith(yesterday)), key=lambda r: r.y
    )
    assert day_rects[0].y + day_rects[0].height == pytest.approx(day_rects[1].y, abs=0.01)
    assert len({r.x for r in day_rects}) == 1
    assert not data.per_day.empty
    # Taller bar for the larger count: a rectangle's height is proportional to its count.
    heights = {r.title: r.height for r in data.per_day.rects}
    assert heights[f"{today}: 2 published"] == pytest.approx(
        2 * heights[f"{yesterday}: 1 rejected"]
    )


def test_score_histograms(newsroom: dict[str, Any]) -> None:
    data = build_dashboard(newsroom["site"], newsroom["owner"], days=30, now=NOW)
    spam = {r.title: r.height for r in data.spam_histogram.rects}
    # 0.05, 0.15, 0.25, 0.35 one each; 0.60 in 0.6; 0.99 and 1.00 both in the last bin.
    assert set(spam) == {
        "0.0: 1 comments",
        "0.1: 1 comments",
        "0.2: 1 comments",
        "0.3: 1 comments",
        "0.6: 1 comments",
        "0.9: 2 comments",
    }
    assert spam["0.9: 2 comments"] == pytest.approx(2 * spam["0.0: 1 comments"])


def test_an_empty_site_has_empty_charts(factory: Factory, db_session: DBSession) -> None:
    site = factory.site()
    owner = staff(factory, db_session, site, SiteRole.OWNER)
    data = build_dashboard(site, owner, days=7, now=NOW)
    assert data.total == 0 and data.per_day.empty and data.share_held is None
    assert data.median_minutes is None
    assert histogram("x", [0] * 10, "score-spam").empty


class _Svg(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.svgs = 0
        self.rects = 0
        self.scripts: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "svg":
            self.svgs += 1
        elif tag == "rect":
            self.rects += 1
        elif tag == "script":
            self.scripts.append(dict(attrs))


def test_the_page_draws_svg_without_scripts_from_elsewhere(
    client: FlaskClient, newsroom: dict[str, Any]
) -> None:
    sign_in(client, newsroom["mia"])  # moderators may look
    response = client.get(f"/console/sites/{newsroom['site'].key}/dashboard?days=90")
    assert response.status_code == 200
    page = _Svg()
    page.feed(response.text)
    assert page.svgs >= 3 and page.rects > 5
    assert all((s.get("src") or "").startswith("/static/") for s in page.scripts)
    assert HOSTILE not in response.text and "&lt;script&gt;" in response.text
    assert "Mia" in response.text and 'id="figure-held"' in response.text


def test_a_bad_period_is_refused(client: FlaskClient, newsroom: dict[str, Any]) -> None:
    sign_in(client, newsroom["owner"])
    for days in ("5", "abc", "1000"):
        response = client.get(f"/console/sites/{newsroom['site'].key}/dashboard?days={days}")
        assert response.status_code == 400
        assert "days must be one of 7, 30, 90" in response.text
