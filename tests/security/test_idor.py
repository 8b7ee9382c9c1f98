"""Object references across sites (IDOR): another site's objects answer exactly like missing ones.

The moderator and the owner of site A reference every object of site B that a route names by id
or key (comments, authors, identities, moderators, invitations, webhooks, API tokens, the site
itself): the answer is a 404 with the same body as for an id that does not exist, and nothing of
the database changes. The routes come from the URL map: a new route with an ``<int:...>`` or a
``<key>`` in its rule fails ``test_every_object_route_is_probed`` until it has a probe here.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from werkzeug.routing import IntegerConverter

from auth.models import ApiToken, Identity, SiteMembership, SiteRole, User
from moderation.db import utcnow
from moderation.extensions import db
from moderation.models import Comment, Site, SiteInvite, Thread, Webhook
from moderation.status import Status
from tests.auth.conftest import AUTH_ENVIRONMENT
from tests.conftest import (
    APP_ENVIRONMENT,
    TestDatabase,
    dispose,
    empty_tables,
    flush_test_redis,
    make_test_app,
)

ATTACKERS = ("moderator", "owner")  # of site A
MISSING_ID = "987654"
MISSING_KEY = "no-such-site-key"
B_INVITE_TOKEN = "herald-invitation-token"
# Columns a refused request may touch without changing anything of B: the A token's last use.
VOLATILE = {("api_tokens", "last_used_at")}


@dataclass(frozen=True)
class Probe:
    """One request naming B's objects, and its twin naming objects that do not exist.

    ``path`` names objects in braces (see ``Refs``); ``missing`` is the same request with
    MISSING_ID / MISSING_KEY in their place. ``status`` per attacker is 404 unless the route
    needs more rank on A than the attacker has: then both requests answer the same 403.
    """

    method: str
    rule: str
    path: str
    missing: str
    json: dict[str, Any] | None = None
    form: dict[str, str] | None = None
    status: tuple[int, int] = (404, 404)  # moderator, owner of A


NOTE = {"body": "Seen on the other site."}
OWNER_ONLY_ON_A = (403, 404)  # A's moderator lacks the rank on A; the object is never looked up

# Every route that names a site's object by id or key, with B's objects put in.
PROBES: tuple[Probe, ...] = (
    # --- the JSON API (the attackers send their own API tokens) -------------------------------
    Probe("GET", "/api/v1/sites/<key>", "/api/v1/sites/{b_site}", f"/api/v1/sites/{MISSING_KEY}"),
    Probe(
        "PATCH",
        "/api/v1/sites/<key>",
        "/api/v1/sites/{b_site}",
        f"/api/v1/sites/{MISSING_KEY}",
        json={"name": "Taken over"},
    ),
    Probe(
        "POST",
        "/api/v1/moderation/comments/<int:comment_id>/decision",
        "/api/v1/moderation/comments/{b_held}/decision",
        f"/api/v1/moderation/comments/{MISSING_ID}/decision",
        json={"action": "reject"},
    ),
    Probe(
        "GET",
        "/api/v1/moderation/comments/<int:comment_id>",
        "/api/v1/moderation/comments/{b_held}?expand=author",
        f"/api/v1/moderation/comments/{MISSING_ID}?expand=author",
    ),
    Probe(
        "POST",
        "/api/v1/moderation/comments/<int:comment_id>/undo",
        "/api/v1/moderation/comments/{b_decided}/undo",
        f"/api/v1/moderation/comments/{MISSING_ID}/undo",
    ),
    Probe(
        "GET",
        "/api/v1/moderation/comments/<int:comment_id>/reports",
        "/api/v1/moderation/comments/{b_held}/reports",
        f"/api/v1/moderation/comments/{MISSING_ID}/reports",
    ),
    # B's author on B: the site is hidden.
    Probe(
        "GET",
        "/api/v1/moderation/authors/<int:user_id>",
        "/api/v1/moderation/authors/{b_author}?site={b_site}",
        f"/api/v1/moderation/authors/{{b_author}}?site={MISSING_KEY}",
    ),
    Probe(
        "POST",
        "/api/v1/moderation/authors/<int:user_id>/notes",
        "/api/v1/moderation/authors/{b_author}/notes?site={b_site}",
        f"/api/v1/moderation/authors/{{b_author}}/notes?site={MISSING_KEY}",
        json=NOTE,
    ),
    Probe(
        "POST",
        "/api/v1/moderation/authors/<int:user_id>/actions",
        "/api/v1/moderation/authors/{b_author}/actions?site={b_site}",
        f"/api/v1/moderation/authors/{{b_author}}/actions?site={MISSING_KEY}",
        json={"action": "ban", "message": "Not yours to ban."},
    ),
    # B's author under A's key: someone who never wrote on A is no author of A.
    *(
        Probe(
            method,
            f"/api/v1/moderation/authors/<int:user_id>{suffix}",
            f"/api/v1/moderation/authors/{{b_author}}{suffix}?site={{a_site}}",
            f"/api/v1/moderation/authors/{MISSING_ID}{suffix}?site={{a_site}}",
            json=body,
        )
        for method, suffix, body in (
            ("GET", "", None),
            ("POST", "/notes", NOTE),
            ("POST", "/actions", {"action": "ban", "message": "Banned from A unseen."}),
        )
    ),
    # A held comment is not public: a reader of any site cannot like, report, edit or delete it.
    Probe(
        "POST",
        "/api/v1/comments/<int:comment_id>/like",
        "/api/v1/comments/{b_held}/like",
        f"/api/v1/comments/{MISSING_ID}/like",
    ),
    Probe(
        "DELETE",
        "/api/v1/comments/<int:comment_id>/like",
        "/api/v1/comments/{b_held}/like",
        f"/api/v1/comments/{MISSING_ID}/like",
    ),
    Probe(
        "POST",
        "/api/v1/comments/<int:comment_id>/reports",
        "/api/v1/comments/{b_held}/reports",
        f"/api/v1/comments/{MISSING_ID}/reports",
        json={"reason": "spam"},
    ),
    Probe(
        "PATCH",
        "/api/v1/comments/<int:comment_id>",
        "/api/v1/comments/{b_published}",
        f"/api/v1/comments/{MISSING_ID}",
        json={"body": "Rewritten from site A."},
    ),
    Probe(
        "DELETE",
        "/api/v1/comments/<int:comment_id>",
        "/api/v1/comments/{b_published}",
        f"/api/v1/comments/{MISSING_ID}",
    ),
    # --- the account pages (signed in) ------------------------------------------------------
    Probe(
        "POST",
        "/account/identities/<int:identity_id>/unlink",
        "/account/identities/{b_identity}/unlink",
        f"/account/identities/{MISSING_ID}/unlink",
    ),
    # --- the console: B's key ----------------------------------------------------------------
    *(
        Probe(method, rule, rule.replace("<key>", "{b_site}"), rule.replace("<key>", MISSING_KEY))
        for method, rule in (
            ("GET", "/console/sites/<key>"),
            ("GET", "/console/sites/<key>/settings"),
            ("GET", "/console/sites/<key>/settings/preview"),
            ("POST", "/console/sites/<key>/settings"),
            ("GET", "/console/sites/<key>/moderators"),
            ("GET", "/console/sites/<key>/sso"),
            ("POST", "/console/sites/<key>/sso"),
            ("GET", "/console/sites/<key>/webhooks"),
            ("GET", "/console/sites/<key>/dashboard"),
        )
    ),
    Probe(
        "POST",
        "/console/sites/<key>",
        "/console/sites/{b_site}",
        f"/console/sites/{MISSING_KEY}",
        form={"name": "Taken over", "origins": "https://evil.example"},
    ),
    # The owner of A adding themselves (or anyone) to B.
    Probe(
        "POST",
        "/console/sites/<key>/moderators",
        "/console/sites/{b_site}/moderators",
        f"/console/sites/{MISSING_KEY}/moderators",
        form={"email": "{attacker_email}"},
    ),
    Probe(
        "POST",
        "/console/sites/<key>/webhooks",
        "/console/sites/{b_site}/webhooks",
        f"/console/sites/{MISSING_KEY}/webhooks",
        form={"url": "https://93.184.215.14/steal", "events": "comment.created"},
    ),
    # --- the console: B's objects, under B's key and under A's ------------------------------
    *(
        probe
        for method, rule, obj in (
            ("POST", "/console/sites/<key>/moderators/<int:user_id>/remove", "b_moderator"),
            ("POST", "/console/sites/<key>/invites/<int:invite_id>/revoke", "b_invite"),
            ("GET", "/console/sites/<key>/webhooks/<int:webhook_id>", "b_webhook"),
            ("POST", "/console/sites/<key>/webhooks/<int:webhook_id>/secret", "b_webhook"),
            ("POST", "/console/sites/<key>/webhooks/<int:webhook_id>/delete", "b_webhook"),
        )
        for probe in (
            Probe(
                method,
                rule,
                re.sub(r"<int:\w+>", "{" + obj + "}", rule.replace("<key>", "{b_site}")),
                re.sub(r"<int:\w+>", MISSING_ID, rule.replace("<key>", "{b_site}")),
            ),
            Probe(
                method,
                rule,
                re.sub(r"<int:\w+>", "{" + obj + "}", rule.replace("<key>", "{a_site}")),
                re.sub(r"<int:\w+>", MISSING_ID, rule.replace("<key>", "{a_site}")),
                status=OWNER_ONLY_ON_A,
            ),
        )
    ),
    # Another user's API token (B's owner's): only its holder may revoke it.
    Probe(
        "POST",
        "/console/tokens/<int:token_id>/revoke",
        "/console/tokens/{b_token}/revoke",
        f"/console/tokens/{MISSING_ID}/revoke",
    ),
)

# Routes that take the site as ?site=KEY: B's key answers like a key nobody uses.
QUERY_ROUTES: tuple[tuple[str, str, dict[str, Any] | None], ...] = (
    ("GET", "/api/v1/moderation/queue?site={site}", None),
    ("GET", "/api/v1/moderation/counts?site={site}", None),
    ("GET", "/api/v1/moderation/audit?site={site}", None),
    ("GET", "/api/v1/moderation/audit.csv?site={site}", None),
    ("GET", "/api/v1/moderation/activity?site={site}", None),
    ("GET", "/api/v1/moderation/guests?site={site}&email=g%40example.org", None),
    ("POST", "/api/v1/moderation/guests/notes?site={site}&email=g%40example.org", NOTE),
    (
        "POST",
        "/api/v1/moderation/guests/actions?site={site}&email=g%40example.org",
        {"action": "ban", "message": "Not yours."},
    ),
    ("GET", "/moderate?site={site}", None),
    ("GET", "/moderate/audit?site={site}", None),
)


def object_routes(app: Flask) -> set[tuple[str, str]]:
    """Every (method, rule) whose rule names an object by an integer id or by a key."""
    found = set()
    for rule in app.url_map.iter_rules():
        by_id = any(isinstance(conv, IntegerConverter) for conv in rule._converters.values())
        by_key = any(name == "key" or name.endswith("_key") for name in rule.arguments)
        if by_id or by_key:
            found.update((m, rule.rule) for m in (rule.methods or set()) - {"HEAD", "OPTIONS"})
    return found


# --- the two sites ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attacker:
    """Staff of site A, as plain values."""

    session_id: str
    token: str
    email: str


def _comment(session: Any, thread: Thread, author: User, body: str, status: Status) -> Comment:
    row = Comment(
        thread=thread,
        site_id=thread.site_id,
        author_id=author.id,
        author_name=author.display_name,
        body=body,
        html=f"<p>{body}</p>",
        status=status,
        body_hash=hashlib.sha256(body.encode()).hexdigest(),
    )
    session.add(row)
    return row


def build_sites(session: Any) -> tuple[dict[str, str], dict[str, Attacker], dict[str, User]]:
    """Sites A and B with staff, comments, an invitation and a webhook each; refs and people."""
    ids = iter(range(424201, 424299))  # B's rows: ids no page contains by chance
    people: dict[str, User] = {}
    for name in ("a_moderator", "a_owner", "a_reader", "b_moderator", "b_owner", "b_reader"):
        people[name] = User(
            id=next(ids) if name.startswith("b_") else None,
            display_name=name.replace("_", " ").title(),
            email=f"{name.replace('_', '.')}@example.org",
            email_verified=True,
        )
    a = Site(name="Gazette", origins=["https://gazette.example"], sso_secret="a" * 40)
    b = Site(name="Herald", origins=["https://herald.example"], sso_secret="b" * 40)
    a_thread = Thread(site=a, url="https://gazette.example/articles/one", title="One")
    b_thread = Thread(site=b, url="https://herald.example/articles/two", title="Two")
    session.add_all([*people.values(), a, b, a_thread, b_thread])
    session.flush()
    for user, site, role in (
        (people["a_moderator"], a, SiteRole.MODERATOR),
        (people["a_owner"], a, SiteRole.OWNER),
        (people["b_moderator"], b, SiteRole.MODERATOR),
        (people["b_owner"], b, SiteRole.OWNER),
    ):
        session.add(SiteMembership(user=user, site=site, role=role))
    _comment(session, a_thread, people["a_reader"], "A reader on A.", Status.PUBLISHED)
    b_held = _comment(session, b_thread, people["b_reader"], "Held on B.", Status.PENDING)
    b_published = _comment(session, b_thread, people["b_reader"], "Out on B.", Status.PUBLISHED)
    b_decided = _comment(session, b_thread, people["b_reader"], "Decided on B.", Status.PENDING)
    for row in (b_held, b_published, b_decided):
        row.id = next(ids)
    identity = Identity(
        id=next(ids), user=people["b_reader"], provider="email", subject="b.reader@example.org"
    )
    invite = SiteInvite(
        id=next(ids),
        site=b,
        email="newcomer@example.org",
        token_hash=hashlib.sha256(B_INVITE_TOKEN.encode()).hexdigest(),
        invited_by_id=people["b_owner"].id,
        expires_at=utcnow() + timedelta(days=7),
    )
    webhook = Webhook(
        id=next(ids),
        site=b,
        url="https://93.184.215.14/b-hook",
        events=["comment.created"],
        secret="s" * 40,
    )
    b_token, _ = ApiToken.issue(people["b_owner"], name="Herald CMS")
    b_token.id = next(ids)
    attackers: dict[str, Attacker] = {}
    session.add_all([identity, invite, webhook, b_token])
    for role in ATTACKERS:
        user = people[f"a_{role}"]
        token, plain = ApiToken.issue(user, name="A's token")
        session.add(token)
        attackers[role] = Attacker(user.get_id(), plain, user.email or "")
    session.commit()
    # B's moderator decided one comment, so undoing it is possible for B's staff only.
    from moderation import service
    from moderation.status import Action

    service.decide_comment(b_decided.id, Action.APPROVE, people["b_moderator"], notify=False)
    refs = {
        "a_site": a.key,
        "b_site": b.key,
        "b_held": str(b_held.id),
        "b_published": str(b_published.id),
        "b_decided": str(b_decided.id),
        "b_author": str(people["b_reader"].id),
        "b_identity": str(identity.id),
        "b_moderator": str(people["b_moderator"].id),
        "b_invite": str(invite.id),
        "b_webhook": str(webhook.id),
        "b_token": str(b_token.id),
    }
    return refs, attackers, people


def snapshot() -> dict[str, list[tuple[str, ...]]]:
    """Every row of every table, as text (in the app context)."""
    state = {}
    with db.engine.connect() as connection:
        for table in db.metadata.sorted_tables:
            columns = [c for c in table.columns if (table.name, c.name) not in VOLATILE]
            rows = connection.execute(sa.select(*columns)).all()
            state[table.name] = sorted(tuple(str(value) for value in row) for row in rows)
    return state


@pytest.fixture(scope="module")
def idor_app(database: TestDatabase, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """One app for the module; each test builds the two sites again."""
    with pytest.MonkeyPatch.context() as environment:
        for name in APP_ENVIRONMENT + AUTH_ENVIRONMENT:
            environment.delenv(name, raising=False)
        instance: Path = tmp_path_factory.mktemp("idor") / "instance"
        app = make_test_app(database, instance)
        yield app
        dispose(app)


@dataclass
class Sites:
    """The built sites: refs to B's objects, the attackers, and the app."""

    app: Flask
    refs: dict[str, str]
    attackers: dict[str, Attacker]

    def state(self) -> dict[str, list[tuple[str, ...]]]:
        """The database, every row."""
        with self.app.app_context():
            return snapshot()


@pytest.fixture
def sites(idor_app: Flask) -> Sites:
    """Sites A and B, built afresh."""
    flush_test_redis()
    with idor_app.app_context():
        empty_tables()
        refs, attackers, _ = build_sites(db.session)
        db.session.remove()
    return Sites(idor_app, refs, attackers)


def send(
    app: Flask,
    attacker: Attacker,
    method: str,
    path: str,
    *,
    json: dict[str, Any] | None = None,
    form: dict[str, str] | None = None,
) -> Any:
    """``path`` as ``attacker``: their API token for the API, their session elsewhere."""
    client = app.test_client()
    headers = {}
    if path.startswith("/api/"):
        headers["Authorization"] = f"Bearer {attacker.token}"
    else:
        with client.session_transaction() as session:
            session["_user_id"] = attacker.session_id
            session["_fresh"] = True
    return client.open(path, method=method, json=json, data=form, headers=headers)


# Per-response values: CSP nonces and the CSRF token of the page's logout form.
NONCE = re.compile(r"nonce(-|=\")[A-Za-z0-9+/=_-]+")
CSRF = re.compile(r"csrf_token\" value=\"[^\"]+\"")


def shape(response: Any, *names: str) -> tuple[int, str, str]:
    """Status, type and body, with the names of the objects and the CSP nonce blanked out."""
    body = CSRF.sub("csrf", NONCE.sub("nonce", response.get_data(as_text=True)))
    for name in names:
        body = body.replace(name, "<ref>")
    return response.status_code, response.mimetype, body


def check(sites: Sites, probe: Probe, role: str) -> None:
    """B's objects answer like missing ones, with the expected status, and nothing changes."""
    attacker = sites.attackers[role]
    refs = {**sites.refs, "attacker_email": attacker.email}
    before = sites.state()
    form = {name: value.format(**refs) for name, value in (probe.form or {}).items()}
    target = probe.path.format(**refs)
    theirs = send(sites.app, attacker, probe.method, target, json=probe.json, form=form or None)
    missing_path = probe.missing.format(**refs)
    missing = send(
        sites.app, attacker, probe.method, missing_path, json=probe.json, form=form or None
    )
    named = [refs[name] for name in re.findall(r"{(\w+)}", probe.path)]
    expected = probe.status[ATTACKERS.index(role)]
    assert theirs.status_code == expected, (target, theirs.get_data(as_text=True)[:300])
    also = [refs[name] for name in re.findall(r"{(\w+)}", probe.missing)]
    assert shape(theirs, *named) == shape(missing, MISSING_ID, MISSING_KEY, *also), target
    assert sites.state() == before, f"{probe.method} {target} changed the database"


@pytest.mark.parametrize("role", ATTACKERS)
@pytest.mark.parametrize(
    "probe", PROBES, ids=lambda probe: f"{probe.method} {probe.path.split('?')[0]}"
)
def test_site_a_staff_cannot_reach_site_b(sites: Sites, probe: Probe, role: str) -> None:
    check(sites, probe, role)


@pytest.mark.parametrize("role", ATTACKERS)
def test_site_b_by_query_answers_like_no_site(sites: Sites, role: str) -> None:
    for method, path, body in QUERY_ROUTES:
        probe = Probe(
            method,
            path.split("?")[0],
            path.replace("{site}", "{b_site}"),
            path.replace("{site}", MISSING_KEY),
            json=body,
        )
        check(sites, probe, role)


def test_every_object_route_is_probed(idor_app: Flask) -> None:
    probed = {(probe.method, probe.rule) for probe in PROBES}
    missing = sorted(object_routes(idor_app) - probed)
    assert not missing, f"Routes naming an object need a Probe in PROBES: {missing}"
    stale = sorted(probed - object_routes(idor_app))
    assert not stale, f"PROBES name routes that no longer take an id or key: {stale}"


@pytest.mark.parametrize("role", ATTACKERS)
def test_the_attackers_reach_their_own_site(sites: Sites, role: str) -> None:
    """The control: the same tokens and sessions open A's pages, so B's 404s are about B."""
    attacker = sites.attackers[role]
    paths = [path for method, path, _ in QUERY_ROUTES if method == "GET"]
    paths += ["/api/v1/sites/{site}", "/console/sites/{site}", "/console/sites/{site}/dashboard"]
    for path in paths:
        target = path.format(site=sites.refs["a_site"])
        assert send(sites.app, attacker, "GET", target).status_code == 200, target


def test_a_commenter_cannot_edit_or_delete_another_commenters_comment(idor_app: Flask) -> None:
    """Someone else's comment on the same site answers like a missing one; it stays as it was."""
    flush_test_redis()
    with idor_app.app_context():
        empty_tables()
        site = Site(name="Gazette", origins=["https://gazette.example"])
        thread = Thread(site=site, url="https://gazette.example/articles/one", title="One")
        cora = User(display_name="Cora", email="cora@example.org")
        dan = User(display_name="Dan", email="dan@example.org")
        db.session.add_all([site, thread, cora, dan])
        db.session.flush()
        theirs = _comment(db.session, thread, dan, "Dan's own words.", Status.PUBLISHED)
        theirs.id = 424250
        token, plain = ApiToken.issue(cora, name="Cora's token")
        db.session.add(token)
        db.session.commit()
        db.session.remove()
    sites = Sites(idor_app, {"theirs": "424250"}, {"cora": Attacker("", plain, "")})
    before = sites.state()
    client = idor_app.test_client()
    headers = {"Authorization": f"Bearer {plain}"}
    answers = []
    for comment_id in ("424250", MISSING_ID):
        for method in ("PATCH", "DELETE"):
            response = client.open(
                f"/api/v1/comments/{comment_id}",
                method=method,
                json={"body": "Cora rewrote this."} if method == "PATCH" else None,
                headers=headers,
            )
            answers.append(shape(response, comment_id))
    assert [status for status, _, _ in answers] == [404, 404, 404, 404]
    assert answers[:2] == answers[2:]  # Dan's comment answers exactly like a missing one
    assert sites.state() == before


def test_an_invitation_to_b_for_someone_else_does_not_make_a_owner_staff_of_b(
    sites: Sites,
) -> None:
    """Holding B's invitation link is not enough: it must be addressed to the one accepting."""
    owner = sites.attackers["owner"]
    before = sites.state()
    page = send(sites.app, owner, "GET", f"/console/invites/{B_INVITE_TOKEN}")
    accept = send(sites.app, owner, "POST", f"/console/invites/{B_INVITE_TOKEN}")
    assert (page.status_code, accept.status_code) == (200, 403)
    assert sites.state() == before  # no membership, the invitation still unused
    after = send(sites.app, owner, "GET", f"/console/sites/{sites.refs['b_site']}")
    assert after.status_code == 404
