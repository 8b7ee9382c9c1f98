"""The site dashboard: what the numbers are (queries) and how they are drawn (SVG geometry).

The queries group in the database; the charts are plain data (rectangles, labels) that
``templates/console/_charts.html`` turns into inline SVG, so every label is escaped by Jinja and
no JavaScript or chart library is needed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from auth.models import User
from moderation.audit import moderator_activity
from moderation.db import utcnow
from moderation.extensions import db
from moderation.models import ActorType, Comment, Decision, Site, Thread
from moderation.status import Status

__all__ = [
    "DAY_CHOICES",
    "BarChart",
    "Dashboard",
    "StackedChart",
    "build_dashboard",
    "histogram",
]

DAY_CHOICES = (7, 30, 90)
STATUS_ORDER = (Status.PUBLISHED, Status.PENDING, Status.REJECTED, Status.SPAM, Status.DELETED)
BUCKETS = 10  # score histogram bins of 0.1
REASON_SAMPLE = 5000  # routing decisions read to count hold reasons
TOP = 10

# Chart geometry, in SVG user units (the SVG scales to the page width).
WIDTH = 640
HEIGHT = 200
LEFT = 40  # room for the axis labels
BOTTOM = 24


@dataclass(frozen=True)
class Rect:
    """One bar (or one segment of a stacked bar)."""

    x: float
    y: float
    width: float
    height: float
    css: str  # a class name from console.css, e.g. "status-published"
    title: str  # the tooltip and the accessible text


@dataclass(frozen=True)
class Tick:
    """An axis label at ``x``/``y``."""

    x: float
    y: float
    text: str


@dataclass
class StackedChart:
    """Vertical bars made of stacked segments, with a legend."""

    title: str
    rects: list[Rect] = field(default_factory=list)
    ticks: list[Tick] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)  # (css, label)
    width: int = WIDTH
    height: int = HEIGHT
    empty: bool = True


@dataclass
class BarChart:
    """Horizontal bars with a label and a value each."""

    title: str
    rows: list[tuple[str, int, float]] = field(default_factory=list)  # label, value, width %


@dataclass
class Dashboard:
    """Everything the dashboard page shows for one site and period."""

    days: int
    since: datetime
    total: int
    per_day: StackedChart
    routed: int
    share_held: float | None
    share_published: float | None
    median_minutes: float | None
    decided: int
    spam_histogram: StackedChart
    abuse_histogram: StackedChart
    hold_reasons: BarChart
    articles: BarChart
    moderators: list[dict[str, Any]]


def _day_of(column: Any) -> Any:
    """The UTC day a timestamp falls in, in the database's dialect."""
    if db.engine.dialect.name == "postgresql":
        utc = sa.func.timezone(sa.literal_column("'UTC'"), column)
        return sa.func.date_trunc(sa.literal_column("'day'"), utc)
    return sa.func.strftime(sa.literal_column("'%Y-%m-%d'"), column)


def _as_day(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _scale(maximum: int) -> int:
    """A round number at least ``maximum`` for the top of the axis."""
    top = max(1, maximum)
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000):
        if top <= step * 4:
            return step * 4
    return top


def stacked(
    title: str,
    labels: list[str],
    series: list[tuple[str, str, list[int]]],
    tick_every: int = 1,
) -> StackedChart:
    """A stacked bar chart: ``series`` is (css class, label, one value per label)."""
    chart = StackedChart(title=title, legend=[(css, name) for css, name, _ in series])
    totals = [sum(values[i] for _, _, values in series) for i in range(len(labels))]
    top = _scale(max(totals, default=0))
    chart.empty = not any(totals)
    plot_h = HEIGHT - BOTTOM - 8
    slot = (WIDTH - LEFT) / max(1, len(labels))
    bar_w = max(1.0, slot * 0.8)
    for grid in range(5):
        value = top * grid // 4
        chart.ticks.append(Tick(LEFT - 4, HEIGHT - BOTTOM - plot_h * grid / 4, str(value)))
    for i, label in enumerate(labels):
        x = LEFT + i * slot + (slot - bar_w) / 2
        base = HEIGHT - BOTTOM
        for css, name, values in series:
            value = values[i]
            if not value:
                continue
            h = plot_h * value / top
            base -= h
            chart.rects.append(
                Rect(
                    round(x, 2),
                    round(base, 2),
                    round(bar_w, 2),
                    round(h, 2),
                    css,
                    f"{label}: {value} {name}",
                )
            )
        if i % tick_every == 0:
            chart.ticks.append(Tick(round(x + bar_w / 2, 2), HEIGHT - 6, label))
    return chart


def histogram(title: str, counts: list[int], css: str) -> StackedChart:
    """A histogram of scores from 0 to 1 in ``len(counts)`` bins."""
    labels = [f"{i / len(counts):.1f}" for i in range(len(counts))]
    return stacked(title, labels, [(css, "comments", counts)])


def _bars(title: str, rows: list[tuple[str, int]]) -> BarChart:
    top = max((value for _, value in rows), default=0)
    return BarChart(
        title=title,
        rows=[(label, value, round(100 * value / top, 1) if top else 0.0) for label, value in rows],
    )


def _score_counts(site: Site, since: datetime, column: Any) -> list[int]:
    scaled = column * BUCKETS
    if db.session.get_bind().dialect.name == "postgresql":
        bucket = sa.func.floor(scaled).label("bucket")  # CAST rounds there
    else:
        bucket = sa.cast(scaled, sa.Integer).label("bucket")  # SQLite's CAST truncates
    counts = [0] * BUCKETS
    for value, count in db.session.execute(
        sa.select(bucket, sa.func.count(Comment.id))
        .where(Comment.site_id == site.id, Comment.created_at >= since, column.is_not(None))
        .group_by(bucket)
    ):
        if value is not None:
            counts[min(BUCKETS - 1, max(0, int(value)))] += count  # a score of 1.0 joins 0.9
    return counts


def build_dashboard(
    site: Site, actor: User, days: int = 30, now: datetime | None = None
) -> Dashboard:
    """The dashboard of ``site`` over the last ``days`` days (``actor`` must be its staff)."""
    moment = now or utcnow()
    first_day = (moment - timedelta(days=days - 1)).date()
    since = datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC)
    in_period = (Comment.site_id == site.id, Comment.created_at >= since)

    # Comments per day by status (their current status).
    day = _day_of(Comment.created_at).label("day")
    grid: dict[date, Counter[str]] = {}
    for bucket, status, count in db.session.execute(
        sa.select(day, Comment.status, sa.func.count(Comment.id))
        .where(*in_period)
        .group_by(day, Comment.status)
    ):
        grid.setdefault(_as_day(bucket), Counter())[str(status)] += count
    dates = [first_day + timedelta(days=n) for n in range(days)]
    labels = [d.strftime("%d %b") for d in dates]
    series = [
        (f"status-{status}", str(status), [grid.get(d, Counter())[str(status)] for d in dates])
        for status in STATUS_ORDER
    ]
    per_day = stacked("Comments per day by status", labels, series, tick_every=max(1, days // 7))
    total = sum(sum(values) for _, _, values in series)

    # How the policy routed new comments: the system's first decision on each.
    routed_rows = dict(
        db.session.execute(
            sa.select(Decision.to_status, sa.func.count(Decision.id))
            .where(
                Decision.site_id == site.id,
                Decision.created_at >= since,
                Decision.actor_type == ActorType.SYSTEM,
                Decision.from_status.is_(None),
            )
            .group_by(Decision.to_status)
        ).all()
    )
    routed = sum(routed_rows.values())
    share_held = routed_rows.get(Status.PENDING, 0) / routed if routed else None
    share_published = routed_rows.get(Status.PUBLISHED, 0) / routed if routed else None

    # Why comments were held: the reasons of the latest routing decisions into the queue.
    reasons: Counter[str] = Counter()
    for stored in db.session.scalars(
        sa.select(Decision.reasons)
        .where(
            Decision.site_id == site.id,
            Decision.created_at >= since,
            Decision.actor_type == ActorType.SYSTEM,
            Decision.to_status == Status.PENDING,
        )
        .order_by(Decision.created_at.desc())
        .limit(REASON_SAMPLE)
    ):
        for reason in stored or []:
            code = reason.get("code") if isinstance(reason, dict) else None
            if code:
                reasons[str(code).replace("_", " ")] += 1

    # The busiest articles of the period.
    busiest = db.session.execute(
        sa.select(Thread.title, Thread.url, sa.func.count(Comment.id).label("n"))
        .join(Thread, Thread.id == Comment.thread_id)
        .where(*in_period)
        .group_by(Thread.id, Thread.title, Thread.url)
        .order_by(sa.desc("n"), Thread.id)
        .limit(TOP)
    ).all()

    activity = moderator_activity([site.key], actor, days=days, now=moment)
    return Dashboard(
        days=days,
        since=since,
        total=total,
        per_day=per_day,
        routed=routed,
        share_held=share_held,
        share_published=share_published,
        median_minutes=activity.median_minutes,
        decided=activity.decided,
        spam_histogram=histogram(
            "Spam scores", _score_counts(site, since, Comment.spam_score), "score-spam"
        ),
        abuse_histogram=histogram(
            "Abuse scores", _score_counts(site, since, Comment.abuse_score), "score-abuse"
        ),
        hold_reasons=_bars("Top reasons for holding", reasons.most_common(TOP)),
        articles=_bars("Busiest articles", [(title or url, n) for title, url, n in busiest]),
        moderators=activity.moderators,
    )
