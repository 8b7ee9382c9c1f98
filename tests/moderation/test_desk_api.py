"""The review desk JSON API through the test client (docs/_parts/desk-api-contract.md)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.orm import scoped_session

from auth.models import ApiToken, SiteMembership, SiteRole
from moderation.db import utcnow
from moderation.models import AuthorEvent, Comment, Decision, Site, Thread
from moderation.policy import SiteSettings
from moderation.status import Status

if TYPE_CHECKING:
    from tests.conftest import Factory

DBSession = scoped_session[Any]

COMMENT_KEYS = {
    "id",
    "parent_id",
    "site",
    "thread",
    "author",
    "body",
    "html",
    "created_at",
    "status",
    "version",
    "scores",
    "model_version",
    "reasons",
    "report_count",
    "report_weight",
    "needs_review",
    "shadow",
    "nudged",
    "highlights",
    "parent",
    "last_decision",
}
SUMMARY_KEYS = {
    "id",
    "guest_email",
    "name",
    "login_methods",
    "account_created_at",
    "approved",
    "rejected",
    "pending",
    "spam",
    "reports_made",
    "reports_received",
    "notes_count",
    "state",
}


def bearer(token: str) -> dict[str, str]:
    """The header that signs a request with ``token``."""
    return {"Authorization": f"Bearer {token}"}


class Desk:
    """A site with a moderator, an owner, a commenter, and a moderator of another site."""

    def __init__(self, factory: Factory, session: DBSession) -> None:
        self.factory, self.session = factory, session
        self.site = factory.site(
            name="Gazette",
            settings=SiteSettings(
                first_comments_held=0, flood_seconds=0, suspect_words=("council",)
            ).to_dict(),
        )
        self.other_site = factory.site(name="Herald")
        self.moderator, self.mod_token = self.person(SiteRole.MODERATOR, "Mo Derator")
        self.owner, self.owner_token = self.person(SiteRole.OWNER, "Olive Owner")
        self.commenter, self.commenter_token = self.person(None, "Cora Commenter")
        self.stranger, self.stranger_token = self.person(
            SiteRole.MODERATOR, "Otto", site=self.other_site
        )
        self.thread = factory.thread(self.site, title="Council vote")

    def person(self, role: SiteRole | None, name: str, site: Site | None = None) -> Any:
        """A user with ``role`` on ``site`` (the desk's by default) and a token."""
        user = self.factory.user(display_name=name)
        if role is not None:
            self.session.add(SiteMembership(user=user, site=site or self.site, role=role))
        token, plain = ApiToken.issue(user, name="test")
        self.session.add(token)
        self.session.commit()
        return user, plain

    def held(self, **fields: Any) -> Comment:
        """A pending comment by the commenter."""
        fields.setdefault("status", Status.PENDING)
        fields.setdefault("author_id", self.commenter.id)
        return self.factory.comment(self.thread, **fields)


@pytest.fixture
def desk(factory: Factory, db_session: DBSession) -> Desk:
    """The cast."""
    return Desk(factory, db_session)


def error_of(response: Any, status: int) -> str:
    """The error sentence of a refused request, after checking its status."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    return str(response.json["error"])


# --- queue and counts ----------------------------------------------------------------------------


def test_queue_answers_cards_and_counts(client: FlaskClient, desk: Desk) -> None:
    parent = desk.factory.comment(desk.thread, author_name="Pat", body="The parent.")
    reply = desk.held(
        parent_id=parent.id,
        body="The council is wrong",
        abuse_score=0.2,
        spam_score=0.1,
        reasons=[{"code": "suspect_word", "message": "contains the word “council”"}],
    )
    desk.factory.comment(desk.thread, status=Status.SPAM)
    response = client.get(
        "/api/v1/moderation/queue",
        query_string={"site": desk.site.key, "queue": "pending"},
        headers=bearer(desk.mod_token),
    )
    assert response.status_code == 200
    (card,) = response.json["comments"]
    assert set(card) >= COMMENT_KEYS
    assert card["id"] == reply.id and card["site"] == desk.site.key
    assert card["thread"]["title"] == "Council vote"
    assert card["parent"] == {
        "id": parent.id,
        "author": {"name": "Pat"},
        "body": "The parent.",
        "status": "published",
    }
    assert card["highlights"] == [
        {"start": 4, "end": 11, "source": "suspect_word", "label": "council"}
    ]
    assert card["last_decision"] is None
    assert response.json["counts"] == {
        "pending": 1,
        "reported": 0,
        "spam": 1,
        "approved": 1,
        "rejected": 0,
    }
    # highlights=false: a faster page without them.
    quick = client.get(
        "/api/v1/moderation/queue",
        query_string={"site": desk.site.key, "highlights": "false"},
        headers=bearer(desk.mod_token),
    )
    assert quick.json["comments"][0]["highlights"] == []


def test_queue_filters_sorts_and_pages(client: FlaskClient, desk: Desk) -> None:
    low = desk.held(abuse_score=0.2, spam_score=0.9)
    high = desk.held(abuse_score=0.9, spam_score=0.1)
    middle = desk.held(abuse_score=0.5, spam_score=0.5)
    query = {"site": desk.site.key, "sort": "abuse", "limit": 2}
    first = client.get(
        "/api/v1/moderation/queue", query_string=query, headers=bearer(desk.mod_token)
    )
    assert [c["id"] for c in first.json["comments"]] == [high.id, middle.id]
    rest = client.get(
        "/api/v1/moderation/queue",
        query_string={**query, "cursor": first.json["next_cursor"]},
        headers=bearer(desk.mod_token),
    )
    assert [c["id"] for c in rest.json["comments"]] == [low.id]
    assert rest.json["next_cursor"] is None
    filtered = client.get(
        "/api/v1/moderation/queue",
        query_string={"min_spam": 0.5, "author": desk.commenter.id},  # every site of theirs
        headers=bearer(desk.mod_token),
    )
    assert [c["id"] for c in filtered.json["comments"]] == [low.id, middle.id]
    # The former parameter still works.
    spam = client.get(
        "/api/v1/moderation/queue",
        query_string={"site": desk.site.key, "status": "spam"},
        headers=bearer(desk.mod_token),
    )
    assert spam.status_code == 200 and spam.json["comments"] == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"queue": "deleted"}, "queue"),
        ({"sort": "loudest"}, "sort"),
        ({"min_abuse": "2"}, "min_abuse"),
        ({"limit": "0"}, "limit"),
        ({"author": "me"}, "author"),
    ],
)
def test_queue_refuses_bad_parameters(
    client: FlaskClient, desk: Desk, query: dict[str, str], field: str
) -> None:
    response = client.get(
        "/api/v1/moderation/queue",
        query_string={"site": desk.site.key, **query},
        headers=bearer(desk.mod_token),
    )
    assert error_of(response, 422) == f"Some fields are missing or invalid: {field}."


def test_queue_refuses_a_foreign_cursor_and_crossed_ranges(client: FlaskClient, desk: Desk) -> None:
    bad = client.get(
        "/api/v1/moderation/queue",
        query_string={"site": desk.site.key, "cursor": "garbage"},
        headers=bearer(desk.mod_token),
    )
    assert "cursor is not valid" in error_of(bad, 422)
    crossed = client.get(
        "/api/v1/moderation/queue",
        query_string={"site": desk.site.key, "min_abuse": 0.8, "max_abuse": 0.2},
        headers=bearer(desk.mod_token),
    )
    assert "must not be above" in error_of(crossed, 422)


def test_counts_endpoint(client: FlaskClient, desk: Desk) -> None:
    desk.held()
    response = client.get(
        "/api/v1/moderation/counts",
        query_string={"site": desk.site.key},
        headers=bearer(desk.mod_token),
    )
    assert response.json == {
        "counts": {"pending": 1, "reported": 0, "spam": 0, "approved": 0, "rejected": 0}
    }
    foreign = client.get(
        "/api/v1/moderation/counts",
        query_string={"site": desk.site.key},
        headers=bearer(desk.stranger_token),
    )
    assert "that you moderate" in error_of(foreign, 404)


# --- cards ---------------------------------------------------------------------------------------


def test_card_with_the_author_summary(client: FlaskClient, desk: Desk) -> None:
    comment = desk.held()
    desk.factory.comment(desk.thread, author_id=desk.commenter.id)  # one approved before
    response = client.get(
        f"/api/v1/moderation/comments/{comment.id}?expand=author", headers=bearer(desk.mod_token)
    )
    assert response.status_code == 200
    card = response.json["comment"]
    summary = card["author_summary"]
    assert set(summary) == SUMMARY_KEYS
    assert (summary["id"], summary["name"]) == (desk.commenter.id, "Cora Commenter")
    assert (summary["approved"], summary["pending"]) == (1, 1)
    assert summary["state"]["banned"] is False
    plain = client.get(f"/api/v1/moderation/comments/{comment.id}", headers=bearer(desk.mod_token))
    assert "author_summary" not in plain.json["comment"]


def test_cards_are_only_for_the_sites_staff(client: FlaskClient, desk: Desk) -> None:
    comment = desk.held()
    path = f"/api/v1/moderation/comments/{comment.id}"
    assert error_of(client.get(path), 401)
    assert "Only moderators" in error_of(
        client.get(path, headers=bearer(desk.commenter_token)), 403
    )
    foreign = client.get(path, headers=bearer(desk.stranger_token))
    missing = client.get("/api/v1/moderation/comments/999999", headers=bearer(desk.stranger_token))
    # Another site's comment answers exactly like one that does not exist.
    assert error_of(foreign, 404).replace(str(comment.id), "N") == error_of(missing, 404).replace(
        "999999", "N"
    )


# --- decisions -----------------------------------------------------------------------------------


def test_decision_then_the_conflict_carries_the_current_card(
    client: FlaskClient, desk: Desk, db_session: DBSession
) -> None:
    comment = desk.held()
    path = f"/api/v1/moderation/comments/{comment.id}/decision"
    first = client.post(
        path,
        json={"action": "reject", "version": 1, "reason": "Off topic.", "notify": False},
        headers=bearer(desk.mod_token),
    )
    assert first.status_code == 200
    card = first.json["comment"]
    assert (card["status"], card["version"]) == ("rejected", 2)
    decision = card["last_decision"]
    assert (decision["actor"], decision["action"]) == ("Mo Derator", "reject")
    assert (decision["from_status"], decision["to_status"]) == ("pending", "rejected")
    second = client.post(
        path, json={"action": "approve", "version": 1}, headers=bearer(desk.owner_token)
    )
    assert error_of(second, 409).startswith("This comment was already decided by Mo Derator at ")
    assert second.json["decided_by"] == "Mo Derator"
    current = second.json["comment"]
    assert (current["id"], current["status"], current["version"]) == (comment.id, "rejected", 2)
    datetime.fromisoformat(current["created_at"])  # ISO dates, as in every answer
    codes = [
        r["code"]
        for r in db_session.scalars(
            sa.select(Decision.reasons).where(Decision.actor_id == desk.moderator.id)
        ).one()
    ]
    assert codes == ["moderator_reject", "moderator_note", "no_notification"]


def test_bulk_decisions(client: FlaskClient, desk: Desk) -> None:
    first, second, third = desk.held(), desk.held(), desk.held()
    theirs = desk.factory.comment(desk.factory.thread(desk.other_site), status=Status.PENDING)
    client.post(
        f"/api/v1/moderation/comments/{second.id}/decision",
        json={"action": "approve"},
        headers=bearer(desk.owner_token),
    )
    response = client.post(
        "/api/v1/moderation/decisions",
        json={
            "action": "spam",
            "comments": [
                {"id": first.id, "version": 1},
                {"id": second.id, "version": 1},
                {"id": third.id},
                {"id": theirs.id},
            ],
        },
        headers=bearer(desk.mod_token),
    )
    assert response.status_code == 200
    results = response.json["results"]
    assert [(r["id"], r["ok"]) for r in results] == [
        (first.id, True),
        (second.id, False),
        (third.id, True),
        (theirs.id, False),
    ]
    assert results[0]["comment"]["status"] == "spam"
    assert (results[1]["status"], results[1]["decided_by"]) == (409, "Olive Owner")
    assert "already decided by Olive Owner" in results[1]["error"]
    assert results[3]["status"] == 404 and "that you moderate" in results[3]["error"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"action": "approve", "comments": []}, "comments"),
        ({"action": "approve", "comments": [{"id": i} for i in range(101)]}, "comments"),
        ({"action": "delete", "comments": [{"id": 1}]}, "action"),
        ({"action": "approve", "comments": [{"id": "1"}]}, "comments"),
    ],
)
def test_bulk_refuses_bad_input(
    client: FlaskClient, desk: Desk, payload: dict[str, Any], field: str
) -> None:
    response = client.post(
        "/api/v1/moderation/decisions", json=payload, headers=bearer(desk.mod_token)
    )
    assert error_of(response, 422) == f"Some fields are missing or invalid: {field}."


def test_bulk_is_for_moderators(client: FlaskClient, desk: Desk) -> None:
    comment = desk.held()
    payload = {"action": "approve", "comments": [{"id": comment.id}]}
    assert error_of(client.post("/api/v1/moderation/decisions", json=payload), 401)
    commenter = client.post(
        "/api/v1/moderation/decisions", json=payload, headers=bearer(desk.commenter_token)
    )
    assert error_of(commenter, 403) == "Only moderators can decide on comments."


def test_undo(client: FlaskClient, desk: Desk, db_session: DBSession) -> None:
    comment = desk.held()
    client.post(
        f"/api/v1/moderation/comments/{comment.id}/decision",
        json={"action": "approve"},
        headers=bearer(desk.mod_token),
    )
    not_mine = client.post(
        f"/api/v1/moderation/comments/{comment.id}/undo", headers=bearer(desk.owner_token)
    )
    assert "already decided by Mo Derator" in error_of(not_mine, 409)
    assert not_mine.json["comment"]["status"] == "published"
    undone = client.post(
        f"/api/v1/moderation/comments/{comment.id}/undo", headers=bearer(desk.mod_token)
    )
    assert undone.status_code == 200
    card = undone.json["comment"]
    assert card["status"] == "pending"
    assert (card["last_decision"]["action"], card["last_decision"]["to_status"]) == (
        None,
        "pending",
    )
    assert db_session.get(Thread, desk.thread.id).comment_count == 0
    # Too late.
    client.post(
        f"/api/v1/moderation/comments/{comment.id}/decision",
        json={"action": "reject"},
        headers=bearer(desk.mod_token),
    )
    db_session.execute(
        sa.update(Decision)
        .where(Decision.comment_id == comment.id)
        .values(created_at=utcnow() - timedelta(minutes=1))
    )
    db_session.commit()
    late = client.post(
        f"/api/v1/moderation/comments/{comment.id}/undo", headers=bearer(desk.mod_token)
    )
    assert "can be undone for 10 seconds" in error_of(late, 409)
    foreign = client.post(
        f"/api/v1/moderation/comments/{comment.id}/undo", headers=bearer(desk.stranger_token)
    )
    assert error_of(foreign, 404)


# --- authors -------------------------------------------------------------------------------------


def test_author_drawer_notes_and_actions(
    client: FlaskClient, desk: Desk, db_session: DBSession
) -> None:
    comment = desk.held(body="First <b>words</b>")
    base = f"/api/v1/moderation/authors/{desk.commenter.id}"
    site = {"site": desk.site.key}
    note = client.post(
        f"{base}/notes",
        query_string=site,
        json={"body": "<script>x</script> warned"},
        headers=bearer(desk.mod_token),
    )
    assert note.status_code == 201
    assert note.json["note"]["body"] == "<script>x</script> warned"  # JSON: the UI escapes it
    assert note.json["note"]["moderator"] == "Mo Derator"
    banned = client.post(
        f"{base}/actions",
        query_string=site,
        json={"action": "ban", "message": "Repeated abuse."},
        headers=bearer(desk.mod_token),
    )
    assert banned.status_code == 200
    state = banned.json["author"]["state"]
    assert (state["banned"], state["ban_message"]) == (True, "Repeated abuse.")
    suspended = client.post(
        f"{base}/actions",
        query_string=site,
        json={"action": "suspend", "hours": 2},
        headers=bearer(desk.mod_token),
    )
    until = datetime.fromisoformat(suspended.json["author"]["state"]["suspended_until"])
    assert timedelta(minutes=119) < until - utcnow() <= timedelta(hours=2)

    drawer = client.get(base, query_string=site, headers=bearer(desk.mod_token))
    assert drawer.status_code == 200
    body = drawer.json
    assert set(body["author"]) == SUMMARY_KEYS and body["author"]["notes_count"] == 1
    assert [c["id"] for c in body["comments"]] == [comment.id]
    assert body["comments"][0]["body"] == "First <b>words</b>"
    assert [n["body"] for n in body["notes"]] == ["<script>x</script> warned"]
    assert [e["action"] for e in body["events"]] == ["suspend", "ban", "note"]
    assert body["events"][1]["message"] == "Repeated abuse."
    assert db_session.scalar(sa.select(sa.func.count(AuthorEvent.id))) == 3


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"action": "suspend"}, "hours"),
        ({"action": "suspend", "hours": 0}, "hours"),
        ({"action": "obliterate"}, "action"),
        ({"action": "ban", "message": "m" * 1001}, "message"),
    ],
)
def test_author_actions_refuse_bad_input(
    client: FlaskClient, desk: Desk, payload: dict[str, Any], field: str
) -> None:
    desk.held()
    response = client.post(
        f"/api/v1/moderation/authors/{desk.commenter.id}/actions",
        query_string={"site": desk.site.key},
        json=payload,
        headers=bearer(desk.mod_token),
    )
    assert error_of(response, 422) == f"Some fields are missing or invalid: {field}."


def test_author_endpoints_are_only_for_the_sites_staff(client: FlaskClient, desk: Desk) -> None:
    desk.held()
    base = f"/api/v1/moderation/authors/{desk.commenter.id}"
    site = {"site": desk.site.key}
    for token, status in ((desk.stranger_token, 404), (desk.commenter_token, 403)):
        assert error_of(client.get(base, query_string=site, headers=bearer(token)), status)
        action = client.post(
            f"{base}/actions", query_string=site, json={"action": "ban"}, headers=bearer(token)
        )
        assert error_of(action, status)
        note = client.post(
            f"{base}/notes", query_string=site, json={"body": "x"}, headers=bearer(token)
        )
        assert error_of(note, status)
    # Someone who never wrote on the site is no author of it.
    nobody = client.get(
        f"/api/v1/moderation/authors/{desk.stranger.id}",
        query_string=site,
        headers=bearer(desk.mod_token),
    )
    assert "no author" in error_of(nobody, 404)
    desk.factory.comment(desk.thread, author_id=desk.owner.id)
    staff = client.post(
        f"/api/v1/moderation/authors/{desk.owner.id}/actions",
        query_string=site,
        json={"action": "ban"},
        headers=bearer(desk.mod_token),
    )
    assert "cannot be acted on" in error_of(staff, 403)


def test_guests(client: FlaskClient, desk: Desk) -> None:
    desk.factory.comment(
        desk.thread, guest_email="gus@example.org", author_name="Gus", status=Status.PENDING
    )
    query = {"site": desk.site.key, "email": "gus@example.org"}
    banned = client.post(
        "/api/v1/moderation/guests/actions",
        query_string=query,
        json={"action": "ban", "message": "Spam."},
        headers=bearer(desk.mod_token),
    )
    assert banned.json["author"]["state"]["banned"] is True
    assert banned.json["author"]["guest_email"] == "gus@example.org"
    client.post(
        "/api/v1/moderation/guests/notes",
        query_string=query,
        json={"body": "Links only."},
        headers=bearer(desk.mod_token),
    )
    drawer = client.get(
        "/api/v1/moderation/guests", query_string=query, headers=bearer(desk.mod_token)
    )
    assert drawer.json["author"]["name"] == "Gus" and drawer.json["author"]["pending"] == 1
    assert [e["action"] for e in drawer.json["events"]] == ["note", "ban"]
    foreign = client.get(
        "/api/v1/moderation/guests", query_string=query, headers=bearer(desk.stranger_token)
    )
    assert error_of(foreign, 404)


def test_openapi_documents_the_desk(client: FlaskClient) -> None:
    document = client.get("/api/v1/openapi.json").json
    schemas = document["components"]["schemas"]
    assert {"highlights", "parent", "last_decision", "needs_review", "shadow"} <= set(
        schemas["ModeratedComment"]["properties"]
    )
    bulk = document["paths"]["/api/v1/moderation/decisions"]["post"]
    assert bulk["security"] == [{"bearerAuth": []}]
    assert "pending" in schemas["QueueCounts"]["properties"]


# --- what author actions do to posting and reading ----------------------------------------------

CLEAN = "Thanks for covering the meeting, very informative."


def post_as(
    client: FlaskClient, desk: Desk, token: str | None, body: str = CLEAN, **extra: Any
) -> Any:
    """POST a comment on the desk's article."""
    payload = {"site": desk.site.key, "url": desk.thread.url, "body": body, **extra}
    headers = bearer(token) if token else {}
    return client.post("/api/v1/comments", json=payload, headers=headers)


def act(client: FlaskClient, desk: Desk, action: str, **payload: Any) -> Any:
    """Take an author action on the commenter, as the moderator."""
    response = client.post(
        f"/api/v1/moderation/authors/{desk.commenter.id}/actions",
        query_string={"site": desk.site.key},
        json={"action": action, **payload},
        headers=bearer(desk.mod_token),
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return response


def codes(response: Any) -> list[str]:
    """The reason codes of a posted comment's answer."""
    return [reason["code"] for reason in response.json["comment"].get("reasons", [])]


def test_a_site_ban_refuses_new_comments_there_only(
    client: FlaskClient, desk: Desk, db_session: DBSession
) -> None:
    desk.held()
    act(client, desk, "ban", message="Repeated abuse.")
    refused = post_as(client, desk, desk.commenter_token)
    assert error_of(refused, 403) == (
        "You are banned from commenting on this site. Repeated abuse."
    )
    elsewhere = desk.factory.site(
        settings=SiteSettings(first_comments_held=0, flood_seconds=0).to_dict()
    )
    other = client.post(
        "/api/v1/comments",
        json={"site": elsewhere.key, "url": f"{elsewhere.origins[0]}/a", "body": CLEAN},
        headers=bearer(desk.commenter_token),
    )
    assert other.status_code in (201, 202)
    act(client, desk, "unban")
    assert post_as(client, desk, desk.commenter_token).status_code in (201, 202)


def test_a_suspension_refuses_comments_until_it_ends(
    client: FlaskClient, desk: Desk, db_session: DBSession
) -> None:
    desk.held()
    act(client, desk, "suspend", hours=3, message="Cool off.")
    refused = post_as(client, desk, desk.commenter_token)
    message = error_of(refused, 403)
    assert message.startswith("You are suspended from commenting on this site until ")
    assert message.endswith("Cool off.")
    act(client, desk, "unsuspend")
    assert post_as(client, desk, desk.commenter_token).status_code in (201, 202)


def test_a_banned_guest_address_is_refused(client: FlaskClient, desk: Desk) -> None:
    desk.site.moderation_settings = desk.site.moderation_settings.with_updates(
        {"allow_guests": True}
    )
    desk.session.commit()
    guest = {"name": "Gus", "email": "gus@example.org"}
    assert post_as(client, desk, None, **guest).status_code == 202  # guests wait at first
    client.post(
        "/api/v1/moderation/guests/actions",
        query_string={"site": desk.site.key, "email": "GUS@example.org"},
        json={"action": "ban"},
        headers=bearer(desk.mod_token),
    )
    refused = post_as(client, desk, None, body="Another thought entirely.", **guest)
    assert error_of(refused, 403) == "You are banned from commenting on this site."


def test_premoderation_holds_every_comment(client: FlaskClient, desk: Desk) -> None:
    desk.held()
    act(client, desk, "premoderate")
    response = post_as(client, desk, desk.commenter_token)
    assert response.status_code == 202
    assert "premoderated_author" in codes(response)


def test_trust_skips_the_first_comment_hold(client: FlaskClient, desk: Desk) -> None:
    desk.site.moderation_settings = desk.site.moderation_settings.with_updates(
        {"first_comments_held": 2}
    )
    desk.session.commit()
    first = post_as(client, desk, desk.commenter_token)
    assert "first_comment" in codes(first)
    act(client, desk, "trust")
    second = post_as(client, desk, desk.commenter_token, body="A second, different remark.")
    assert "first_comment" not in codes(second)


def test_a_shadow_banned_authors_comments_are_theirs_alone(
    client: FlaskClient, desk: Desk, db_session: DBSession
) -> None:
    desk.held()
    act(client, desk, "shadow_ban")
    posted = post_as(client, desk, desk.commenter_token)
    # To its author it looks published ...
    assert posted.status_code == 201
    assert posted.json["comment"]["status"] == "published"
    comment_id = posted.json["comment"]["id"]
    stored = db_session.get(Comment, comment_id)
    db_session.refresh(stored)
    # ... but it is stored rejected, in the moderators' Rejected queue, with the reason.
    assert (stored.status, stored.shadow) == (Status.REJECTED, True)
    assert stored.reasons[0]["code"] == "shadow_banned"
    assert db_session.get(Thread, desk.thread.id).comment_count == 0  # nobody else sees it

    def listed(token: str | None) -> list[dict[str, Any]]:
        response = client.get(
            "/api/v1/comments",
            query_string={"site": desk.site.key, "url": desk.thread.url},
            headers=bearer(token) if token else {},
        )
        assert response.status_code == 200
        return [c for c in response.json["comments"] if c["id"] == comment_id]

    (mine,) = listed(desk.commenter_token)
    assert mine["status"] == "published"
    assert listed(None) == []
    assert listed(desk.owner_token) == []
    _, reader_token = desk.person(None, "Rita Reader")
    assert listed(reader_token) == []
    rejected = client.get(
        "/api/v1/moderation/queue",
        query_string={"site": desk.site.key, "queue": "rejected", "reason": "shadow_banned"},
        headers=bearer(desk.mod_token),
    )
    assert [c["id"] for c in rejected.json["comments"]] == [comment_id]
    assert rejected.json["comments"][0]["shadow"] is True
    # Answering their own shadow comment works as it would if it were published ...
    own_reply = post_as(
        client, desk, desk.commenter_token, body="And one more thing.", parent_id=comment_id
    )
    assert own_reply.status_code == 201
    # ... while to anyone else it is a comment that does not exist.
    other = post_as(client, desk, reader_token, body="Who said that?", parent_id=comment_id)
    assert other.json["error"] == f"There is no comment {comment_id} on this article to reply to."
    # Lifting the shadow ban lets later comments through as usual.
    act(client, desk, "unshadow_ban")
    later = post_as(client, desk, desk.commenter_token, body="A later, different remark.")
    assert db_session.get(Comment, later.json["comment"]["id"]).shadow is False


def test_queue_can_carry_every_authors_summary(
    client: FlaskClient, desk: Desk, db_session: DBSession
) -> None:
    mine = desk.held()
    desk.factory.comment(desk.thread, author_id=desk.commenter.id, status=Status.REJECTED)
    guest = desk.held(author_id=None, guest_email="gus@example.org", author_name="Gus")
    client.post(
        f"/api/v1/moderation/authors/{desk.commenter.id}/actions",
        query_string={"site": desk.site.key},
        json={"action": "premoderate"},
        headers=bearer(desk.mod_token),
    )
    client.post(
        "/api/v1/moderation/guests/notes",
        query_string={"site": desk.site.key, "email": "gus@example.org"},
        json={"body": "Links only."},
        headers=bearer(desk.mod_token),
    )
    page = client.get(
        "/api/v1/moderation/queue",
        query_string={"site": desk.site.key, "expand": "author"},
        headers=bearer(desk.mod_token),
    )
    by_id = {c["id"]: c["author_summary"] for c in page.json["comments"]}
    # The same record as the single card's, computed for the whole page at once.
    for comment in (mine, guest):
        card = client.get(
            f"/api/v1/moderation/comments/{comment.id}?expand=author",
            headers=bearer(desk.mod_token),
        )
        assert by_id[comment.id] == card.json["comment"]["author_summary"]
    assert by_id[mine.id]["state"]["premoderate"] is True
    assert (by_id[mine.id]["pending"], by_id[mine.id]["rejected"]) == (1, 1)
    assert (by_id[guest.id]["guest_email"], by_id[guest.id]["notes_count"]) == (
        "gus@example.org",
        1,
    )


def test_model_versions_are_listed_for_staff_and_changed_by_admins(
    client: FlaskClient, desk: Desk, db_session: DBSession
) -> None:
    from auth.models import Role
    from moderation.models import ModelVersion

    admin = desk.factory.user(display_name="Ada Admin", role=Role.ADMIN)
    token, admin_token = ApiToken.issue(admin, name="test")
    db_session.add(token)
    db_session.commit()

    listed = client.get("/api/v1/moderation/model-versions", headers=bearer(desk.mod_token))
    assert listed.status_code == 200
    shipped = listed.json["active"]
    assert [v["version"] for v in listed.json["versions"]] == [shipped]
    assert listed.json["versions"][0]["state"] == "active"
    readers = client.get("/api/v1/moderation/model-versions", headers=bearer(desk.commenter_token))
    assert readers.status_code == 403

    rollback = "/api/v1/moderation/model-versions/rollback"
    assert client.post(rollback, headers=bearer(desk.owner_token)).status_code == 403
    assert "no earlier active version" in error_of(
        client.post(rollback, headers=bearer(admin_token)), 409
    )
    unknown = "/api/v1/moderation/model-versions/zzzz9999/activate"
    assert client.post(unknown, headers=bearer(admin_token)).status_code == 404

    # A newer version became active, then turned out bad: roll back to the shipped one.
    db_session.execute(sa.update(ModelVersion).values(state="retired"))
    db_session.add(
        ModelVersion(version="deadbeefdeadbeef", path="models/missing.skops", state="active")
    )
    db_session.commit()
    back = client.post(rollback, headers=bearer(admin_token))
    assert back.status_code == 200
    assert back.json["active"]["version"] == shipped
    assert back.json["replaced"]["version"] == "deadbeefdeadbeef"
    # ... and a file that cannot be loaded is never activated.
    broken = client.post(
        "/api/v1/moderation/model-versions/deadbeef/activate", headers=bearer(admin_token)
    )
    assert "cannot be loaded" in error_of(broken, 409)
    again = client.get("/api/v1/moderation/model-versions", headers=bearer(desk.mod_token))
    assert again.json["active"] == shipped
