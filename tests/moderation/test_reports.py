"""Reader reports: the API, weights, duplicates, the hourly cap, the queue and hide thresholds."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import scoped_session

from auth.models import ApiToken, Role, SiteMembership, SiteRole, User
from moderation import reports, service
from moderation.db import utcnow
from moderation.extensions import db
from moderation.models import ActorType, Comment, Decision, Report, Site, SiteAuthor, Thread
from moderation.policy import InvalidSettings, SiteSettings
from moderation.status import Action, Status
from tests.moderation.test_concurrency import run_at_once

if TYPE_CHECKING:
    from tests.conftest import Factory

DBSession = scoped_session[Any]
OLD = timedelta(days=400)


def bearer(token: str) -> dict[str, str]:
    """The header that signs a request with ``token``."""
    return {"Authorization": f"Bearer {token}"}


class Desk:
    """A site with staff, an author, a published comment and a supply of readers with tokens."""

    def __init__(self, factory: Factory, session: DBSession, **settings: Any) -> None:
        self.factory = factory
        self.session = session
        self.site = factory.site(name="Gazette", settings=SiteSettings(**settings).to_dict())
        self.other_site = factory.site(name="Herald")
        self.thread = factory.thread(self.site, comment_count=1)
        self.author, self.author_token = self.person("Ann Author")
        self.moderator, self.moderator_token = self.person("Mo", site_role=SiteRole.MODERATOR)
        self.other_moderator, self.other_token = self.person(
            "Otto", site_role=SiteRole.MODERATOR, site=self.other_site
        )
        self.comment = self.published("You are all wrong about the harbour.")

    def person(
        self,
        name: str,
        *,
        age: timedelta = OLD,
        site_role: SiteRole | None = None,
        site: Site | None = None,
        **fields: Any,
    ) -> tuple[User, str]:
        """A user whose account is ``age`` old, with a site role if given, and their token."""
        user = self.factory.user(display_name=name, created_at=utcnow() - age, **fields)
        if site_role is not None:
            self.session.add(SiteMembership(user=user, site=site or self.site, role=site_role))
        token, plain = ApiToken.issue(user, name="test")
        self.session.add(token)
        self.session.commit()
        return user, plain

    def published(self, body: str, **fields: Any) -> Comment:
        """A published comment by the author."""
        fields.setdefault("author_id", self.author.id)
        return self.factory.comment(self.thread, body=body, **fields)

    def readers(self, count: int, *, age: timedelta = OLD) -> list[str]:
        """Tokens of ``count`` new readers."""
        start = self.session.scalar(sa.select(sa.func.count(User.id)))
        return [self.person(f"Reader {start + n}", age=age)[1] for n in range(count)]


@pytest.fixture
def desk(factory: Factory, db_session: DBSession) -> Desk:
    """The default cast: reports_to_queue 3, reports_to_hide 5."""
    return Desk(factory, db_session)


def report(
    client: FlaskClient,
    comment_id: int,
    token: str,
    reason: str = "abuse",
    note: str | None = None,
) -> Any:
    """POST a report as the holder of ``token``."""
    payload: dict[str, Any] = {"reason": reason}
    if note is not None:
        payload["note"] = note
    return client.post(
        f"/api/v1/comments/{comment_id}/reports", json=payload, headers=bearer(token)
    )


def system_moves(session: DBSession, comment_id: int) -> list[tuple[Status, Status, str]]:
    """The system's decisions on a comment as (from, to, message), oldest first."""
    decisions = session.scalars(
        sa.select(Decision)
        .where(Decision.comment_id == comment_id, Decision.actor_type == ActorType.SYSTEM)
        .order_by(Decision.id)
    )
    moves = []
    for decision in decisions:
        assert (decision.action, decision.actor_id) == (None, None)
        assert [r["code"] for r in decision.reasons] == ["reported"]
        moves.append((decision.from_status, decision.to_status, decision.reasons[0]["message"]))
    return moves


def fresh(session: DBSession, comment_id: int) -> Comment:
    """The comment as stored now."""
    session.expire_all()
    comment = session.get(Comment, comment_id)
    assert comment is not None
    return comment


# --- the endpoint ----------------------------------------------------------------------------


def test_report_answers_201_with_the_report_and_the_comment(
    client: FlaskClient, desk: Desk, db_session: DBSession
) -> None:
    (token,) = desk.readers(1)
    response = report(client, desk.comment.id, token, "off_topic")
    assert response.status_code == 201, response.json
    body = response.json
    assert set(body) == {"report", "comment"}
    assert set(body["report"]) == {"id", "reason", "created_at"}
    assert body["report"]["reason"] == "off_topic"
    assert body["comment"] == {"id": desk.comment.id, "status": "published", "report_count": 1}

    stored = db_session.get(Report, body["report"]["id"])
    assert stored is not None
    assert (stored.comment_id, stored.site_id, stored.weight) == (
        desk.comment.id,
        desk.site.id,
        1.0,
    )
    comment = fresh(db_session, desk.comment.id)
    assert (comment.report_count, comment.report_weight, comment.needs_review) == (1, 1.0, False)
    assert comment.version == 1  # counting a report is not a change a moderator must reload for


def test_other_needs_a_note_and_notes_are_limited(
    client: FlaskClient, desk: Desk, db_session: DBSession
) -> None:
    (token,) = desk.readers(1)
    missing = report(client, desk.comment.id, token, "other")
    assert missing.status_code == 422
    assert "note" in missing.json["fields"]
    blank = report(client, desk.comment.id, token, "other", note="   ")
    assert blank.status_code == 422
    too_long = report(client, desk.comment.id, token, "spam", note="x" * 501)
    assert too_long.status_code == 422
    assert "note" in too_long.json["fields"]
    unknown = report(client, desk.comment.id, token, "boring")
    assert unknown.status_code == 422
    assert "reason" in unknown.json["fields"]
    assert db_session.scalar(sa.select(sa.func.count(Report.id))) == 0

    ok = report(client, desk.comment.id, token, "other", note="  Doxxes   a neighbour  ")
    assert ok.status_code == 201
    assert db_session.get(Report, ok.json["report"]["id"]).note == "Doxxes a neighbour"


def test_anonymous_readers_must_sign_in(client: FlaskClient, desk: Desk) -> None:
    response = client.post(f"/api/v1/comments/{desk.comment.id}/reports", json={"reason": "spam"})
    assert response.status_code == 401
    assert "Sign in" in response.json["error"]


def test_a_session_needs_the_custom_header(
    client: FlaskClient, desk: Desk, db_session: DBSession
) -> None:
    reader, _ = desk.person("Sam Session")
    with client.session_transaction() as session:
        session["_user_id"] = reader.get_id()
        session["_fresh"] = True
    path = f"/api/v1/comments/{desk.comment.id}/reports"
    # Without X-Requested-With a cross-site form could send it: not signed in.
    assert client.post(path, json={"reason": "spam"}).status_code == 401
    # A page of this service sends it, from its own origin (tests/security/test_csrf.py).
    headers = {"X-Requested-With": "fetch", "Origin": "http://localhost"}
    response = client.post(path, json={"reason": "spam"}, headers=headers)
    assert response.status_code == 201
    assert db_session.scalar(sa.select(Report.reporter_id)) == reader.id


def test_one_report_per_reader_per_comment(
    client: FlaskClient, desk: Desk, db_session: DBSession
) -> None:
    (token,) = desk.readers(1)
    assert report(client, desk.comment.id, token).status_code == 201
    again = report(client, desk.comment.id, token, "spam")
    assert again.status_code == 409
    assert again.json["error"] == "You already reported this comment."
    assert fresh(db_session, desk.comment.id).report_count == 1


def test_authors_cannot_report_their_own_comment(
    client: FlaskClient, desk: Desk, db_session: DBSession
) -> None:
    response = report(client, desk.comment.id, desk.author_token)
    assert response.status_code == 409
    assert response.json["error"] == "You cannot report your own comment."
    assert fresh(db_session, desk.comment.id).report_count == 0


@pytest.mark.parametrize("status", [Status.PENDING, Status.SPAM, Status.REJECTED, Status.DELETED])
def test_only_published_comments_can_be_reported(
    client: FlaskClient, desk: Desk, status: Status
) -> None:
    (token,) = desk.readers(1)
    held = desk.published("Held back.", status=status)
    response = report(client, held.id, token)
    assert response.status_code == 404
    assert response.json["error"] == f"There is no published comment {held.id} to report."
    assert report(client, 987654, token).status_code == 404


def test_shadow_comments_are_unknown_to_other_readers(client: FlaskClient, desk: Desk) -> None:
    (token,) = desk.readers(1)
    shadow = desk.published("Only its author sees this.", shadow=True)
    assert report(client, shadow.id, token).status_code == 404
    assert report(client, shadow.id, desk.author_token).status_code == 409  # their own


def test_the_hourly_cap_answers_429_with_retry_after(
    client: FlaskClient, desk: Desk, app: Flask
) -> None:
    app.config["MODERATION_REPORTS_PER_HOUR"] = 2
    (token,) = desk.readers(1)
    comments = [desk.published(f"Comment {n} to report.") for n in range(3)]
    assert report(client, comments[0].id, token).status_code == 201
    assert report(client, comments[1].id, token).status_code == 201
    refused = report(client, comments[2].id, token)
    assert refused.status_code == 429
    assert "2 comments in the last hour" in refused.json["error"]
    assert 3500 <= int(refused.headers["Retry-After"]) <= 3600
    assert refused.json["retry_after"] == int(refused.headers["Retry-After"])
    # Another reader is not affected.
    (other,) = desk.readers(1)
    assert report(client, comments[2].id, other).status_code == 201


def test_the_cap_counts_only_the_last_hour(
    client: FlaskClient, desk: Desk, app: Flask, db_session: DBSession
) -> None:
    app.config["MODERATION_REPORTS_PER_HOUR"] = 1
    reader, token = desk.person("Early Bird")
    older = desk.published("Reported long ago.")
    db_session.add(
        Report(
            comment_id=older.id,
            site_id=desk.site.id,
            reporter_id=reader.id,
            reason="spam",
            created_at=utcnow() - timedelta(minutes=61),
        )
    )
    db_session.commit()
    assert report(client, desk.comment.id, token).status_code == 201


# --- weights ---------------------------------------------------------------------------------


def test_weights_new_accounts_count_less_and_sanctioned_ones_not_at_all(
    client: FlaskClient, factory: Factory, db_session: DBSession
) -> None:
    desk = Desk(factory, db_session, new_account_days=10, new_account_report_weight=0.25)
    _, veteran = desk.person("Veteran", age=timedelta(days=11))
    _, newcomer = desk.person("Newcomer", age=timedelta(days=9))
    _, banned = desk.person("Banned", banned=True)
    _, suspended = desk.person("Suspended", suspended_until=utcnow() + timedelta(days=1))
    site_banned, site_banned_token = desk.person("Site banned")
    db_session.add(SiteAuthor(site_id=desk.site.id, user_id=site_banned.id, banned=True))
    db_session.commit()

    weights = {}
    for name, token in [
        ("veteran", veteran),
        ("newcomer", newcomer),
        ("banned", banned),
        ("suspended", suspended),
        ("site_banned", site_banned_token),
    ]:
        response = report(client, desk.comment.id, token, "spam")
        assert response.status_code == 201, (name, response.json)  # accepted all the same
        weights[name] = db_session.get(Report, response.json["report"]["id"]).weight
    assert weights == {
        "veteran": 1.0,
        "newcomer": 0.25,
        "banned": 0.0,
        "suspended": 0.0,
        "site_banned": 0.0,
    }
    comment = fresh(db_session, desk.comment.id)
    assert comment.report_count == 5
    assert comment.report_weight == pytest.approx(1.25)
    assert not comment.needs_review  # five reports, but they weigh 1.25 < 3


def test_default_weights(factory: Factory, db_session: DBSession, app: Flask) -> None:
    desk = Desk(factory, db_session)
    settings = desk.site.moderation_settings
    assert (settings.new_account_days, settings.new_account_report_weight) == (7, 0.5)
    now = utcnow()
    young, _ = desk.person("Young", age=timedelta(days=6, hours=23))
    grown, _ = desk.person("Grown", age=timedelta(days=7, minutes=1))
    assert reports.report_weight(young, desk.site.id, settings, now) == 0.5
    assert reports.report_weight(grown, desk.site.id, settings, now) == 1.0


# --- thresholds ------------------------------------------------------------------------------


def test_reports_to_queue_puts_it_in_the_reported_queue_still_visible(
    client: FlaskClient, desk: Desk, db_session: DBSession
) -> None:
    tokens = desk.readers(3)
    for token in tokens[:2]:
        assert report(client, desk.comment.id, token).status_code == 201
    assert not fresh(db_session, desk.comment.id).needs_review
    assert report(client, desk.comment.id, tokens[2]).status_code == 201

    comment = fresh(db_session, desk.comment.id)
    assert comment.needs_review
    assert comment.status == Status.PUBLISHED
    assert comment.version == 1
    assert db_session.get(Thread, desk.thread.id).comment_count == 1
    listed = client.get(
        "/api/v1/comments", query_string={"site": desk.site.key, "url": desk.thread.url}
    )
    assert [c["id"] for c in listed.json["comments"]] == [desk.comment.id]
    # A system decision for the audit log, with the same status on both sides.
    assert system_moves(db_session, desk.comment.id) == [
        (
            Status.PUBLISHED,
            Status.PUBLISHED,
            "in the Reported queue after 3 reader reports (abuse 3)",
        )
    ]


def test_reports_to_hide_hides_it_with_a_system_decision(
    client: FlaskClient, desk: Desk, db_session: DBSession
) -> None:
    tokens = desk.readers(6)
    reasons = ["spam", "abuse", "spam", "abuse", "spam"]
    answers = [report(client, desk.comment.id, t, r) for t, r in zip(tokens, reasons, strict=False)]
    assert [a.status_code for a in answers] == [201] * 5
    assert answers[3].json["comment"]["status"] == "published"
    assert answers[4].json["comment"] == {
        "id": desk.comment.id,
        "status": "pending",
        "report_count": 5,
    }

    comment = fresh(db_session, desk.comment.id)
    assert (comment.status, comment.needs_review, comment.version) == (Status.PENDING, True, 2)
    message = "hidden after 5 reader reports (spam 3, abuse 2)"
    assert comment.reasons[-1] == {"code": "reported", "message": message}
    assert system_moves(db_session, comment.id) == [
        (
            Status.PUBLISHED,
            Status.PUBLISHED,
            "in the Reported queue after 3 reader reports (spam 2, abuse 1)",
        ),
        (Status.PUBLISHED, Status.PENDING, message),
    ]
    assert db_session.get(Thread, desk.thread.id).comment_count == 0
    listed = client.get(
        "/api/v1/comments", query_string={"site": desk.site.key, "url": desk.thread.url}
    )
    assert listed.json["comments"] == []

    late = report(client, desk.comment.id, tokens[5])
    assert late.status_code == 409
    assert "already hidden" in late.json["error"]


def test_hiding_counts_weights_and_says_so(
    client: FlaskClient, factory: Factory, db_session: DBSession
) -> None:
    desk = Desk(factory, db_session, reports_to_queue=2, reports_to_hide=2)
    old = desk.readers(1)
    new = desk.readers(2, age=timedelta(days=1))
    assert report(client, desk.comment.id, old[0], "abuse").status_code == 201
    assert report(client, desk.comment.id, new[0], "off_topic").status_code == 201
    assert fresh(db_session, desk.comment.id).status == Status.PUBLISHED  # 1.5 < 2
    assert report(client, desk.comment.id, new[1], "abuse").status_code == 201
    comment = fresh(db_session, desk.comment.id)
    assert comment.status == Status.PENDING
    assert comment.reasons[-1]["message"] == (
        "hidden after 3 reader reports (abuse 2, off-topic 1), weighing 2 together"
    )


def test_a_hide_threshold_below_the_queue_threshold_hides_and_queues(
    client: FlaskClient, factory: Factory, db_session: DBSession
) -> None:
    desk = Desk(factory, db_session, reports_to_queue=4, reports_to_hide=2)
    for token in desk.readers(2):
        assert report(client, desk.comment.id, token, "spam").status_code == 201
    comment = fresh(db_session, desk.comment.id)
    assert (comment.status, comment.needs_review) == (Status.PENDING, True)
    assert system_moves(db_session, comment.id) == [
        (Status.PUBLISHED, Status.PENDING, "hidden after 2 reader reports (spam 2)")
    ]


def test_zero_never_hides(client: FlaskClient, factory: Factory, db_session: DBSession) -> None:
    desk = Desk(factory, db_session, reports_to_hide=0)
    for token in desk.readers(8):
        assert report(client, desk.comment.id, token).status_code == 201
    comment = fresh(db_session, desk.comment.id)
    assert (comment.status, comment.needs_review, comment.report_count) == (
        Status.PUBLISHED,
        True,
        8,
    )
    assert [to for _, to, _ in system_moves(db_session, comment.id)] == [Status.PUBLISHED]


def test_after_a_moderator_approves_only_new_reports_count(
    client: FlaskClient, desk: Desk, db_session: DBSession
) -> None:
    tokens = desk.readers(10)
    for token in tokens[:5]:
        report(client, desk.comment.id, token)
    assert fresh(db_session, desk.comment.id).status == Status.PENDING
    service.decide_comment(desk.comment.id, Action.APPROVE, desk.moderator)
    assert fresh(db_session, desk.comment.id).status == Status.PUBLISHED

    for token in tokens[5:9]:
        assert report(client, desk.comment.id, token).status_code == 201
    comment = fresh(db_session, desk.comment.id)
    assert (comment.status, comment.report_count) == (Status.PUBLISHED, 9)  # 4 since review
    assert report(client, desk.comment.id, tokens[9]).status_code == 201
    comment = fresh(db_session, desk.comment.id)
    assert comment.status == Status.PENDING
    # The approval took it out of the Reported queue; new reports put it back, then hide it.
    moves = system_moves(db_session, comment.id)
    assert [message for _, _, message in moves] == [
        "in the Reported queue after 3 reader reports (abuse 3)",
        "hidden after 5 reader reports (abuse 5)",
        "in the Reported queue after 3 reader reports (abuse 3)",
        "hidden after 5 reader reports (abuse 5)",
    ]
    assert [r["code"] for r in comment.reasons].count("reported") == 1


# --- settings --------------------------------------------------------------------------------


def test_report_settings_are_validated() -> None:
    defaults = SiteSettings()
    assert (defaults.reports_to_queue, defaults.reports_to_hide) == (3, 5)
    assert SiteSettings(reports_to_hide=0, reports_to_queue=9).reports_to_hide == 0
    # Below the queue threshold is allowed: hiding puts the comment in the queue too, and a
    # site raising reports_to_queue alone must not make its stored settings invalid.
    assert SiteSettings(reports_to_queue=6, reports_to_hide=5).reports_to_hide == 5
    with pytest.raises(InvalidSettings, match="reports_to_hide"):
        SiteSettings(reports_to_hide=-1)
    with pytest.raises(InvalidSettings, match="new_account_report_weight"):
        SiteSettings(new_account_report_weight=1.5)
    with pytest.raises(InvalidSettings, match="new_account_days"):
        SiteSettings(new_account_days=-1)
    parsed = defaults.with_updates(
        {"reports_to_hide": "8", "new_account_days": "14", "new_account_report_weight": "0.3"}
    )
    assert (parsed.reports_to_hide, parsed.new_account_days) == (8, 14)
    assert parsed.new_account_report_weight == 0.3
    for name in ("reports_to_hide", "new_account_days", "new_account_report_weight"):
        assert name in SiteSettings.FIELDS


def test_owners_change_report_settings_through_the_api(
    client: FlaskClient, desk: Desk, db_session: DBSession
) -> None:
    _, token = desk.person("Olive", site_role=SiteRole.OWNER)
    path = f"/api/v1/sites/{desk.site.key}"
    bad = client.patch(path, json={"settings": {"reports_to_hide": "a few"}}, headers=bearer(token))
    assert bad.status_code == 422
    assert "reports_to_hide must be a whole number" in bad.json["error"]
    good = client.patch(path, json={"settings": {"reports_to_hide": 0}}, headers=bearer(token))
    assert good.status_code == 200
    assert good.json["site"]["settings"]["reports_to_hide"] == 0


# --- the moderators' list --------------------------------------------------------------------


def test_moderators_list_the_reports_with_reporters(
    client: FlaskClient, desk: Desk, db_session: DBSession
) -> None:
    _, veteran_token = desk.person("Vera Veteran", age=timedelta(days=30))
    newcomer, newcomer_token = desk.person("Ned Newcomer", age=timedelta(days=2))
    report(client, desk.comment.id, veteran_token, "abuse")
    report(client, desk.comment.id, newcomer_token, "other", note="<script>alert(1)</script>")

    response = client.get(
        f"/api/v1/moderation/comments/{desk.comment.id}/reports",
        headers=bearer(desk.moderator_token),
    )
    assert response.status_code == 200
    body = response.json
    assert body["comment"] == {
        "id": desk.comment.id,
        "status": "published",
        "report_count": 2,
        "report_weight": 1.5,
        "needs_review": False,
    }
    first, second = body["reports"]  # newest first
    assert first["reason"] == "other"
    assert first["note"] == "<script>alert(1)</script>"  # data as written; clients escape it
    assert first["weight"] == 0.5
    assert first["reporter"]["id"] == newcomer.id
    assert first["reporter"]["name"] == "Ned Newcomer"
    assert first["reporter"]["account_age_days"] == pytest.approx(2.0, abs=0.1)
    assert first["reporter"]["new_account"] is True
    assert second["reporter"]["name"] == "Vera Veteran"
    assert second["reporter"]["new_account"] is False
    assert second["weight"] == 1.0

    limited = client.get(
        f"/api/v1/moderation/comments/{desk.comment.id}/reports?limit=1",
        headers=bearer(desk.moderator_token),
    )
    assert [r["id"] for r in limited.json["reports"]] == [first["id"]]


def test_only_the_sites_staff_see_the_reports(
    client: FlaskClient, desk: Desk, db_session: DBSession
) -> None:
    path = f"/api/v1/moderation/comments/{desk.comment.id}/reports"
    (reader,) = desk.readers(1)
    assert client.get(path).status_code == 401
    assert client.get(path, headers=bearer(reader)).status_code == 403
    hidden = client.get(path, headers=bearer(desk.other_token))
    assert hidden.status_code == 404
    assert "that you moderate" in hidden.json["error"]
    _, admin_token = desk.person("Ada", role=Role.ADMIN)
    assert client.get(path, headers=bearer(admin_token)).status_code == 200
    assert (
        client.get(
            "/api/v1/moderation/comments/987654/reports", headers=bearer(desk.moderator_token)
        ).status_code
        == 404
    )


# --- concurrency -----------------------------------------------------------------------------


def _report_as(user_ids: list[int], comment_id: int) -> Callable[[int], Any]:
    def work(index: int) -> reports.ReportOutcome:
        reporter = db.session.get(User, user_ids[index])
        return reports.report_comment(reports.NewReport(comment_id, reporter, "abuse"))

    return work


@pytest.mark.postgres_only
def test_concurrent_reports_keep_exact_counts(
    app: Flask, factory: Factory, db_session: DBSession
) -> None:
    desk = Desk(factory, db_session, reports_to_queue=5, reports_to_hide=0)
    count = 16
    readers = [desk.person(f"Racer {n}")[0].id for n in range(count)]
    results = run_at_once(app, count, _report_as(readers, desk.comment.id))
    assert all(isinstance(r, reports.ReportOutcome) for r in results), results

    comment = fresh(db_session, desk.comment.id)
    assert (comment.report_count, comment.report_weight) == (count, float(count))
    assert comment.needs_review
    assert comment.status == Status.PUBLISHED
    stored = db_session.scalar(
        sa.select(sa.func.count(Report.id)).where(Report.comment_id == comment.id)
    )
    assert stored == count
    assert [to for _, to, _ in system_moves(db_session, comment.id)] == [Status.PUBLISHED]


@pytest.mark.postgres_only
def test_concurrent_reports_hide_exactly_once(
    app: Flask, factory: Factory, db_session: DBSession
) -> None:
    desk = Desk(factory, db_session, reports_to_queue=3, reports_to_hide=6)
    count = 14
    readers = [desk.person(f"Racer {n}")[0].id for n in range(count)]
    results = run_at_once(app, count, _report_as(readers, desk.comment.id))

    accepted = [r for r in results if isinstance(r, reports.ReportOutcome)]
    refused = [r for r in results if isinstance(r, service.Conflict)]
    assert (len(accepted), len(refused)) == (6, count - 6), results
    assert sum(1 for r in accepted if r.hidden) == 1
    comment = fresh(db_session, desk.comment.id)
    assert (comment.status, comment.report_count, comment.report_weight) == (
        Status.PENDING,
        6,
        6.0,
    )
    # Entered the Reported queue once, hidden once.
    moves = system_moves(db_session, comment.id)
    assert [(before, after) for before, after, _ in moves] == [
        (Status.PUBLISHED, Status.PUBLISHED),
        (Status.PUBLISHED, Status.PENDING),
    ]
    assert db_session.get(Thread, desk.thread.id).comment_count == 0
    assert db_session.scalar(sa.select(sa.func.count(Report.id))) == 6
