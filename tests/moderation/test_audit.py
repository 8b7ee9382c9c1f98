"""The audit log (JSON and CSV) and moderator activity, on constructed decisions and events."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import scoped_session

from auth.models import ApiToken, Role, SiteMembership, SiteRole, User
from moderation import audit
from moderation.db import utcnow
from moderation.models import ActorType, AuthorEvent, Comment, Decision, Site
from moderation.service import Invalid
from moderation.status import Action, Status

if TYPE_CHECKING:
    from tests.conftest import Factory

DBSession = scoped_session[Any]
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def bearer(token: str) -> dict[str, str]:
    """The header that signs a request with ``token``."""
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Log:
    """Two sites, their staff, and a history of decisions and author actions on site A."""

    site: Site
    other_site: Site
    users: dict[str, User] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    comments: list[Comment] = field(default_factory=list)
    decisions: dict[str, Decision] = field(default_factory=dict)
    events: dict[str, AuthorEvent] = field(default_factory=dict)


def _person(
    factory: Factory,
    session: DBSession,
    log: Log,
    key: str,
    name: str,
    site: Site | None = None,
    site_role: SiteRole | None = None,
    **fields: Any,
) -> User:
    user = factory.user(display_name=name, **fields)
    if site is not None and site_role is not None:
        session.add(SiteMembership(user=user, site=site, role=site_role))
    token, plain = ApiToken.issue(user, name="test")
    session.add(token)
    session.commit()
    log.users[key], log.tokens[key] = user, plain
    return user


def _decision(
    session: DBSession,
    comment: Comment,
    at: datetime,
    to: Status,
    *,
    actor: User | None = None,
    action: Action | None = None,
    before: Status | None = None,
    reasons: list[dict[str, str]] | None = None,
) -> Decision:
    decision = Decision(
        comment_id=comment.id,
        site_id=comment.site_id,
        actor_type=ActorType.USER if actor is not None else ActorType.SYSTEM,
        actor_id=actor.id if actor is not None else None,
        action=action,
        from_status=before,
        to_status=to,
        reasons=reasons or [],
        created_at=at,
    )
    session.add(decision)
    session.commit()
    return decision


@pytest.fixture
def log(factory: Factory, db_session: DBSession) -> Log:
    """A small, fully known history (times relative to T0, a fixed past moment)."""
    site = factory.site(name="Gazette")
    other_site = factory.site(name="Herald")
    log = Log(site, other_site)
    mo = _person(factory, db_session, log, "mo", "Mo", site, SiteRole.MODERATOR)
    mia = _person(factory, db_session, log, "mia", "=Mia", site, SiteRole.MODERATOR)
    _person(factory, db_session, log, "owner", "Olive", site, SiteRole.OWNER)
    otto = _person(factory, db_session, log, "otto", "Otto", other_site, SiteRole.MODERATOR)
    _person(factory, db_session, log, "admin", "Ada", role=Role.ADMIN)
    _person(factory, db_session, log, "commenter", "Cora")
    troll = _person(factory, db_session, log, "troll", "-Troll")

    thread = factory.thread(site)
    first = factory.comment(thread, status=Status.PENDING, created_at=T0)
    second = factory.comment(thread, status=Status.PUBLISHED, created_at=T0)
    elsewhere = factory.comment(factory.thread(other_site), created_at=T0)
    log.comments = [first, second, elsewhere]
    held = [{"code": "abuse_score", "message": "abuse score 0.91 is above 0.50"}]
    d = log.decisions
    d["route1"] = _decision(db_session, first, T0, Status.PENDING, reasons=held)
    d["route2"] = _decision(db_session, second, T0, Status.PUBLISHED)
    d["approve"] = _decision(
        db_session,
        first,
        T0 + timedelta(minutes=30),
        Status.PUBLISHED,
        actor=mo,
        action=Action.APPROVE,
        before=Status.PENDING,
    )
    d["hold"] = _decision(
        db_session,
        second,
        T0 + timedelta(hours=2),
        Status.PENDING,
        before=Status.PUBLISHED,
        reasons=[{"code": "reported", "message": "hidden after 5 reader reports (spam 5)"}],
    )
    d["reject"] = _decision(
        db_session,
        second,
        T0 + timedelta(hours=3),
        Status.REJECTED,
        actor=mia,
        action=Action.REJECT,
        before=Status.PENDING,
        reasons=[{"code": "moderator_note", "message": "+1 for the formula"}],
    )
    d["elsewhere"] = _decision(
        db_session,
        elsewhere,
        T0 + timedelta(hours=1),
        Status.SPAM,
        actor=otto,
        action=Action.SPAM,
        before=Status.PUBLISHED,
    )
    ban = AuthorEvent(
        site_id=site.id,
        actor_id=mia.id,
        user_id=troll.id,
        action="ban",
        message="@SUM(A1) keeps insulting",
        created_at=T0 + timedelta(hours=3),  # the same moment as the rejection
    )
    suspend = AuthorEvent(
        site_id=site.id,
        actor_id=mo.id,
        guest_email="guest@example.org",
        action="suspend",
        message="",
        until=T0 + timedelta(days=1, hours=1),
        created_at=T0 + timedelta(hours=1),
    )
    db_session.add_all([ban, suspend])
    db_session.commit()
    log.events = {"ban": ban, "suspend": suspend}
    return log


def get_audit(client: FlaskClient, log: Log, who: str = "mo", **params: Any) -> Any:
    """GET the audit log as ``who``, for site A unless ``site`` is given."""
    params.setdefault("site", log.site.key)
    return client.get(
        "/api/v1/moderation/audit", query_string=params, headers=bearer(log.tokens[who])
    )


def ids(response: Any) -> list[tuple[str, int]]:
    """The (kind, id) of each entry, in order."""
    assert response.status_code == 200, response.json
    return [(entry["kind"], entry["id"]) for entry in response.json["entries"]]


def dec(log: Log, *names: str) -> list[tuple[str, int]]:
    """The (kind, id) of the named decisions."""
    return [("decision", log.decisions[name].id) for name in names]


def ev(log: Log, *names: str) -> list[tuple[str, int]]:
    """The (kind, id) of the named author events."""
    return [("author", log.events[name].id) for name in names]


# --- the log ---------------------------------------------------------------------------------


def test_the_log_is_newest_first_with_every_field(client: FlaskClient, log: Log) -> None:
    response = get_audit(client, log)
    # At T0+3h a decision and an author event tie: decisions come first.
    assert ids(response) == [
        *dec(log, "reject"),
        *ev(log, "ban"),
        *dec(log, "hold"),
        *ev(log, "suspend"),
        *dec(log, "approve", "route2", "route1"),
    ]
    assert response.json["next_cursor"] is None
    entries = response.json["entries"]
    reject = entries[0]
    assert reject == {
        "id": log.decisions["reject"].id,
        "kind": "decision",
        "comment_id": log.comments[1].id,
        "site": log.site.key,
        "actor": {"type": "user", "id": log.users["mia"].id, "name": "=Mia"},
        "action": "reject",
        "from_status": "pending",
        "to_status": "rejected",
        "reasons": [{"code": "moderator_note", "message": "+1 for the formula"}],
        "author": None,
        "until": None,
        "created_at": (T0 + timedelta(hours=3)).isoformat(),
    }
    ban = entries[1]
    assert ban["actor"] == {"type": "user", "id": log.users["mia"].id, "name": "=Mia"}
    assert ban["action"] == "ban"
    assert ban["author"] == {"id": log.users["troll"].id, "name": "-Troll", "guest_email": None}
    assert ban["reasons"] == [{"code": "moderator_note", "message": "@SUM(A1) keeps insulting"}]
    assert (ban["comment_id"], ban["from_status"], ban["to_status"]) == (None, None, None)
    hold = entries[2]
    assert hold["actor"] == {"type": "system", "id": None, "name": "System"}
    assert hold["action"] == "hold"
    suspend = entries[3]
    assert suspend["author"]["guest_email"] == "guest@example.org"
    assert suspend["until"] == (T0 + timedelta(days=1, hours=1)).isoformat()
    assert entries[-1]["action"] == "route"
    assert entries[-1]["reasons"][0]["code"] == "abuse_score"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"comment": "first"}, [("d", "approve"), ("d", "route1")]),
        ({"moderator": "mia"}, [("d", "reject"), ("e", "ban")]),
        ({"moderator": "mo"}, [("e", "suspend"), ("d", "approve")]),
        ({"actor_type": "system"}, [("d", "hold"), ("d", "route2"), ("d", "route1")]),
        (
            {"actor_type": "user"},
            [("d", "reject"), ("e", "ban"), ("e", "suspend"), ("d", "approve")],
        ),
        ({"action": "approve"}, [("d", "approve")]),
        ({"action": "route"}, [("d", "route2"), ("d", "route1")]),
        ({"action": "hold"}, [("d", "hold")]),
        ({"action": "ban"}, [("e", "ban")]),
        ({"action": "spam"}, []),  # the spam decision is on the other site
        (
            {"since": "2026-11-02T10:00:00Z"},
            [("d", "reject"), ("e", "ban"), ("d", "hold"), ("e", "suspend")],
        ),
        # until is exclusive; a naive time is UTC
        ({"until": "2026-11-02T10:00:00"}, [("d", "approve"), ("d", "route2"), ("d", "route1")]),
        (
            {"since": "2026-11-02T09:30:00+00:00", "until": "2026-11-02T11:00+00:00"},
            [("e", "suspend"), ("d", "approve")],
        ),
        # a date alone: since is its midnight, until includes the whole day
        ({"until": "2026-11-01"}, []),
        (
            {"since": "2026-11-02", "until": "2026-11-02", "moderator": "mo"},
            [("e", "suspend"), ("d", "approve")],
        ),
        ({"comment": "first", "moderator": "mo", "action": "approve"}, [("d", "approve")]),
        ({"comment": "first", "action": "ban"}, []),
    ],
)
def test_each_filter(
    client: FlaskClient, log: Log, params: dict[str, str], expected: list[tuple[str, str]]
) -> None:
    query = dict(params)
    if "comment" in query:
        query["comment"] = str(log.comments[0].id)
    if "moderator" in query:
        query["moderator"] = str(log.users[query["moderator"]].id)
    wanted = [
        ("decision", log.decisions[name].id) if kind == "d" else ("author", log.events[name].id)
        for kind, name in expected
    ]
    assert ids(get_audit(client, log, **query)) == wanted


def test_undo_and_reported_queue_entries_have_their_own_names(
    client: FlaskClient, log: Log, db_session: DBSession
) -> None:
    first, second = log.comments[:2]
    undo = _decision(
        db_session,
        first,
        T0 + timedelta(hours=5),
        Status.PENDING,
        actor=log.users["mo"],
        before=Status.PUBLISHED,
        reasons=[{"code": "moderator_undo", "message": "Mo undid their approve"}],
    )
    queued = _decision(
        db_session,
        second,
        T0 + timedelta(hours=4),
        Status.PUBLISHED,
        before=Status.PUBLISHED,
        reasons=[{"code": "reported", "message": "in the Reported queue after 3 reader reports"}],
    )
    assert ids(get_audit(client, log, action="undo")) == [("decision", undo.id)]
    assert ids(get_audit(client, log, action="move")) == [("decision", queued.id)]
    assert ids(get_audit(client, log, action="hold")) == dec(log, "hold")
    assert ids(get_audit(client, log, action="route")) == dec(log, "route2", "route1")
    newest = get_audit(client, log, limit=2).json["entries"]
    assert [(e["action"], e["actor"]["type"]) for e in newest] == [
        ("undo", "user"),
        ("move", "system"),
    ]


def test_several_sites_and_admins_without_a_site(
    client: FlaskClient, log: Log, db_session: DBSession
) -> None:
    # Mo moderates both sites now.
    db_session.add(
        SiteMembership(user=log.users["mo"], site=log.other_site, role=SiteRole.MODERATOR)
    )
    db_session.commit()
    both = get_audit(client, log, site=[log.site.key, log.other_site.key], action="spam")
    assert ids(both) == dec(log, "elsewhere")
    assert both.json["entries"][0]["site"] == log.other_site.key

    everything = client.get("/api/v1/moderation/audit", headers=bearer(log.tokens["admin"]))
    assert len(ids(everything)) == len(log.decisions) + len(log.events)
    assert {e["site"] for e in everything.json["entries"]} == {log.site.key, log.other_site.key}


def test_pages_follow_each_other_without_gaps_or_repeats(client: FlaskClient, log: Log) -> None:
    whole = ids(get_audit(client, log))
    seen: list[tuple[str, int]] = []
    cursor = None
    for _ in range(10):
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        response = get_audit(client, log, **params)
        page = ids(response)
        assert len(page) <= 2
        seen += page
        cursor = response.json["next_cursor"]
        if cursor is None:
            break
    assert seen == whole


def test_bad_input_is_a_422_sentence(client: FlaskClient, log: Log) -> None:
    cursor = get_audit(client, log, cursor="not-a-cursor")
    assert cursor.status_code == 422
    assert "cursor" in cursor.json["error"]
    since = get_audit(client, log, since="yesterday")
    assert since.status_code == 422
    assert "since must be a date or time" in since.json["error"]
    backwards = get_audit(client, log, since="2026-11-03", until="2026-11-01")
    assert backwards.status_code == 422
    assert get_audit(client, log, actor_type="robot").status_code == 422
    assert get_audit(client, log, limit=0).status_code == 422
    assert get_audit(client, log, action="drop table").status_code == 422
    assert get_audit(client, log, comment="first").status_code == 422


def test_who_may_read_the_log(client: FlaskClient, log: Log) -> None:
    assert client.get(f"/api/v1/moderation/audit?site={log.site.key}").status_code == 401
    assert get_audit(client, log, "commenter").status_code == 403
    other = get_audit(client, log, "otto")
    assert other.status_code == 404
    assert "that you moderate" in other.json["error"]
    # One site of yours does not open another.
    mixed = get_audit(client, log, "otto", site=[log.other_site.key, log.site.key])
    assert mixed.status_code == 404
    assert get_audit(client, log, "mo", site="no-such-site").status_code == 404
    for who in ("mo", "owner", "admin"):
        assert get_audit(client, log, who).status_code == 200
    missing = client.get("/api/v1/moderation/audit", headers=bearer(log.tokens["mo"]))
    assert missing.status_code == 422
    assert "site" in missing.json["error"]


# --- CSV -------------------------------------------------------------------------------------


def read_csv(response: Any) -> list[dict[str, str]]:
    """The rows of a CSV answer."""
    assert response.status_code == 200, response.get_data(as_text=True)
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def test_csv_export_has_every_filtered_entry_and_quotes_formulas(
    client: FlaskClient, log: Log
) -> None:
    response = client.get(
        "/api/v1/moderation/audit.csv",
        query_string={"site": log.site.key},
        headers=bearer(log.tokens["owner"]),
    )
    assert response.mimetype == "text/csv"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert f"audit-{log.site.key}-" in disposition
    assert response.headers["Cache-Control"] == "no-store"
    text = response.get_data(as_text=True)
    assert text.splitlines()[0] == ",".join(audit.CSV_COLUMNS)

    rows = read_csv(response)
    assert [(r["kind"], int(r["id"])) for r in rows] == ids(get_audit(client, log))
    reject, ban = rows[0], rows[1]
    assert reject["created_at"] == (T0 + timedelta(hours=3)).isoformat()
    assert reject["actor_name"] == "'=Mia"  # would run as a formula in a spreadsheet
    assert reject["reasons"] == "moderator_note: +1 for the formula"
    assert reject["comment_id"] == str(log.comments[1].id)
    assert (reject["from_status"], reject["to_status"]) == ("pending", "rejected")
    assert ban["reasons"] == "moderator_note: @SUM(A1) keeps insulting"  # not at the start
    assert ban["author_name"] == "'-Troll"
    assert ban["author_id"] == str(log.users["troll"].id)
    hold = rows[2]
    assert (hold["actor_type"], hold["actor_name"], hold["actor_id"]) == ("system", "System", "")
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@")), row


def test_csv_cells_that_would_be_formulas_are_quoted() -> None:
    assert audit._cell("=1+1") == "'=1+1"
    assert audit._cell("+1") == "'+1"
    assert audit._cell("-1") == "'-1"
    assert audit._cell("@cmd") == "'@cmd"
    assert audit._cell("\tx") == "'\tx"
    assert audit._cell("a=b") == "a=b"
    assert audit._cell(None) == ""
    assert audit._cell(-5) == -5  # numbers are data, not text a spreadsheet would evaluate


def test_csv_export_streams_every_batch_with_the_filters(
    client: FlaskClient, log: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit, "CSV_BATCH", 2)  # many pages from a small history
    everything = client.get(
        "/api/v1/moderation/audit.csv",
        query_string={"site": log.site.key},
        headers=bearer(log.tokens["mo"]),
    )
    rows = read_csv(everything)
    assert len(rows) == 7  # five decisions and two author actions on site A
    assert len({(r["kind"], r["id"]) for r in rows}) == 7
    system = client.get(
        "/api/v1/moderation/audit.csv",
        query_string={"site": log.site.key, "actor_type": "system"},
        headers=bearer(log.tokens["mo"]),
    )
    assert [r["action"] for r in read_csv(system)] == ["hold", "route", "route"]


def test_csv_refusals_are_json_errors(client: FlaskClient, log: Log) -> None:
    path = "/api/v1/moderation/audit.csv"
    assert client.get(path, query_string={"site": log.site.key}).status_code == 401
    hidden = client.get(
        path, query_string={"site": log.site.key}, headers=bearer(log.tokens["otto"])
    )
    assert hidden.status_code == 404
    assert hidden.mimetype == "application/json"
    assert "error" in hidden.json
    forbidden = client.get(
        path, query_string={"site": log.site.key}, headers=bearer(log.tokens["commenter"])
    )
    assert forbidden.status_code == 403


# --- activity --------------------------------------------------------------------------------


@pytest.fixture
def busy(factory: Factory, db_session: DBSession) -> dict[str, Any]:
    """Comments decided after known waits, in known hours, relative to a fixed 'now'."""
    site = factory.site(name="Busy Gazette")
    other = factory.site(name="Quiet Herald")
    mo = factory.user(display_name="Mo")
    mia = factory.user(display_name="Mia")
    for user in (mo, mia):
        db_session.add(SiteMembership(user=user, site=site, role=SiteRole.MODERATOR))
    db_session.commit()
    now = datetime(2026, 11, 20, 15, 40, tzinfo=UTC)
    thread = factory.thread(site)
    posted = now - timedelta(hours=5)  # 10:40
    # Waits to the first human decision, in minutes: 10, 20, 30, 40, 100.
    plan = [(10, mo, Action.APPROVE), (20, mo, Action.REJECT), (30, mia, Action.SPAM)]
    plan += [(40, mo, Action.APPROVE), (100, mia, Action.APPROVE)]
    for n, (wait, who, action) in enumerate(plan):
        comment = factory.comment(thread, body=f"Waited {n}", created_at=posted)
        _decision(db_session, comment, posted, Status.PENDING)  # system: not counted
        _decision(
            db_session,
            comment,
            posted + timedelta(minutes=wait),
            action.target,
            actor=who,
            action=action,
            before=Status.PENDING,
        )
    # A second human decision on the last comment: only the first one counts for the wait.
    last = comment
    _decision(
        db_session,
        last,
        posted + timedelta(minutes=200),  # 14:00
        Status.REJECTED,
        actor=mo,
        action=Action.REJECT,
        before=Status.PUBLISHED,
    )
    # Outside the window (8 days ago) and on another site: not counted.
    old = factory.comment(thread, body="Old", created_at=now - timedelta(days=8, hours=1))
    _decision(
        db_session,
        old,
        now - timedelta(days=8),
        Status.PUBLISHED,
        actor=mo,
        action=Action.APPROVE,
        before=Status.PENDING,
    )
    # Decided again in the window: counted as a decision, but its first one was before.
    _decision(
        db_session,
        old,
        now - timedelta(hours=1),  # 14:40
        Status.REJECTED,
        actor=mo,
        action=Action.REJECT,
        before=Status.PUBLISHED,
    )
    foreign = factory.comment(factory.thread(other), body="Elsewhere", created_at=posted)
    _decision(
        db_session,
        foreign,
        posted + timedelta(minutes=1),
        Status.SPAM,
        actor=mia,
        action=Action.SPAM,
        before=Status.PENDING,
    )
    db_session.add(
        AuthorEvent(
            site_id=site.id,
            actor_id=mia.id,
            user_id=mo.id,
            action="trust",
            created_at=now - timedelta(minutes=1),
        )
    )
    db_session.commit()
    return {"site": site, "mo": mo, "mia": mia, "now": now, "posted": posted}


def test_activity_numbers_on_known_data(busy: dict[str, Any], db_session: DBSession) -> None:
    admin = User(email="admin@example.org", display_name="Ada", role=Role.ADMIN)
    db_session.add(admin)
    db_session.commit()
    result = audit.moderator_activity([busy["site"].key], admin, days=7, now=busy["now"])

    assert result.until == busy["now"]
    assert result.since == datetime(2026, 11, 13, 16, 0, tzinfo=UTC)
    assert len(result.per_hour) == 7 * 24
    assert result.per_hour[-1][0] == datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
    counts = {hour.hour: count for hour, count in result.per_hour if count}
    # 10:50, 11:00, 11:10, 11:20 | 12:20 | 14:00, 14:40
    assert counts == {10: 1, 11: 3, 12: 1, 14: 2}
    assert sum(count for _, count in result.per_hour) == 7

    by_name = {m["name"]: m for m in result.moderators}
    assert by_name["Mo"]["decisions"] == 5
    assert (by_name["Mo"]["approve"], by_name["Mo"]["reject"], by_name["Mo"]["spam"]) == (2, 3, 0)
    assert by_name["Mia"]["decisions"] == 2
    assert (by_name["Mia"]["approve"], by_name["Mia"]["spam"]) == (1, 1)
    assert by_name["Mia"]["author_actions"] == 1
    assert [m["name"] for m in result.moderators] == ["Mo", "Mia"]

    assert result.decided == 5
    assert result.median_minutes == pytest.approx(30.0)
    assert result.p90_minutes == pytest.approx(76.0)  # 40 + 0.6 * (100 - 40)


def test_activity_days_and_empty_periods(busy: dict[str, Any], db_session: DBSession) -> None:
    result = audit.moderator_activity([busy["site"].key], busy["mo"], days=1, now=busy["now"])
    assert len(result.per_hour) == 24
    assert result.decided == 5
    quiet = audit.moderator_activity(
        [busy["site"].key], busy["mo"], days=1, now=busy["now"] + timedelta(days=3)
    )
    assert quiet.decided == 0
    assert (quiet.median_minutes, quiet.p90_minutes) == (None, None)
    assert quiet.moderators == []
    with pytest.raises(Invalid):
        audit.moderator_activity([busy["site"].key], busy["mo"], days=91)


def test_percentile_matches_linear_interpolation() -> None:
    assert audit._percentile([], 0.5) is None
    assert audit._percentile([7.0], 0.9) == 7.0
    assert audit._percentile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.5
    assert audit._percentile([0.0, 10.0], 0.9) == pytest.approx(9.0)


def test_activity_endpoint(client: FlaskClient, factory: Factory, db_session: DBSession) -> None:
    site = factory.site(name="Live Gazette")
    mo = factory.user(display_name="Mo")
    db_session.add(SiteMembership(user=mo, site=site, role=SiteRole.MODERATOR))
    outsider = factory.user(display_name="Otto")
    db_session.add(SiteMembership(user=outsider, site=factory.site(), role=SiteRole.MODERATOR))
    tokens = {}
    for user in (mo, outsider):
        token, plain = ApiToken.issue(user, name="test")
        db_session.add(token)
        tokens[user.display_name] = plain
    db_session.commit()
    now = utcnow()
    comment = factory.comment(factory.thread(site), created_at=now - timedelta(hours=3))
    _decision(
        db_session,
        comment,
        now - timedelta(hours=2),
        Status.PUBLISHED,
        actor=mo,
        action=Action.APPROVE,
        before=Status.PENDING,
    )

    response = client.get(
        "/api/v1/moderation/activity",
        query_string={"site": site.key, "days": 2},
        headers=bearer(tokens["Mo"]),
    )
    assert response.status_code == 200, response.json
    body = response.json
    assert body["sites"] == [site.key]
    assert len(body["per_hour"]) == 48
    assert sum(hour["count"] for hour in body["per_hour"]) == 1
    assert set(body["per_hour"][0]) == {"hour", "count"}
    assert body["moderators"] == [
        {
            "id": mo.id,
            "name": "Mo",
            "decisions": 1,
            "approve": 1,
            "reject": 0,
            "spam": 0,
            "author_actions": 0,
        }
    ]
    assert body["decided_comments"] == 1
    assert body["median_minutes"] == pytest.approx(60.0, abs=0.01)
    assert body["p90_minutes"] == pytest.approx(60.0, abs=0.01)

    hidden = client.get(
        "/api/v1/moderation/activity",
        query_string={"site": site.key},
        headers=bearer(tokens["Otto"]),
    )
    assert hidden.status_code == 404
    too_long = client.get(
        "/api/v1/moderation/activity",
        query_string={"site": site.key, "days": 400},
        headers=bearer(tokens["Mo"]),
    )
    assert too_long.status_code == 422


def test_the_endpoints_are_documented(client: FlaskClient) -> None:
    paths = client.get("/api/v1/openapi.json").json["paths"]
    assert "429" in paths["/api/v1/comments/{comment_id}/reports"]["post"]["responses"]
    assert "get" in paths["/api/v1/moderation/comments/{comment_id}/reports"]
    assert "text/csv" in paths["/api/v1/moderation/audit.csv"]["get"]["responses"]["200"]["content"]
    for path in ("/api/v1/moderation/audit", "/api/v1/moderation/activity"):
        assert paths[path]["get"]["security"] == [{"bearerAuth": []}]
