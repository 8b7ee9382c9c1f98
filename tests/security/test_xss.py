"""The XSS corpus through every field a user controls and every place the field is shown.

One world per module, built through the real services. Main world: for each vector
(tests/security/xss_vectors.py) a site named with it, an author whose display name and avatar
carry it, and an article whose URL, title and one comment body carry it. Mail cases: each mail
costs 0.1-0.3 s, so 25 sites pack about eight vectors into each field a mail shows (site and
display name, article URL and title, body, the moderator's rejection note) and into the
moderators' texts (report note, author note, ban message). Notices (``notices``): the reply,
digest and invitation mails, one per 100-character pack of display names (106 cover the
corpus), and the webhook payloads, received by a real HTTP server on loopback. Each field tags
the marker with its own letter (``XB012``: vector X012 in a body), so a leak names the field.
Every output is then fetched once per case (or once for all) and parsed as a browser would:
nothing may become active HTML, and every vector must reach the output as text, so no test
passes on an empty page.
"""

from __future__ import annotations

import html
import json
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlencode
from xml.etree import ElementTree

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from markdown_it import MarkdownIt

from auth import safe_next_url
from auth.models import Role, SiteMembership, SiteRole, User
from moderation.console import create_site
from moderation.desk import AuthorKey, act_on_author, add_note
from moderation.extensions import db
from moderation.models import Comment, Site
from moderation.policy import SiteSettings
from moderation.render import clean_body, render_markdown
from moderation.reports import NewReport, report_comment
from moderation.service import NewComment, decide_comment, submit_comment
from moderation.status import Action, Status
from moderation.webhooks import EVENTS, create_webhook, verify_signature
from tests.auth.smtp import Mailbox
from tests.security.conftest import ModuleApp, Receiver, sign_in
from tests.security.htmlcheck import (
    SANITISED_ATTRIBUTES,
    SANITISED_TAGS,
    active_items,
    findings,
    page_markers,
    parse,
    risky_style,
    risky_url,
    sanitised_problems,
    signatures,
)
from tests.security.xss_vectors import FAMILIES, MARKER, VECTORS, Vector, for_field, markers_in

PUBLIC_URL = "https://comments.example"
CONTROL = Vector("control", "X000", "A harmless comment X000 about the harbour.")
# Field letters: the marker XB012 is vector X012 in a comment body.
FIELDS = {
    "B": "comment body",
    "N": "display name",
    "W": "avatar URL (the profile's web address)",
    "T": "article title",
    "U": "article URL",
    "R": "report note",
    "M": "moderator's decision note",
    "O": "moderator's note on the author",
    "K": "ban message",
    "S": "site name",
    "Q": "query parameter reflected in a page",
    "P": "replied-to comment's body (quoted by the reply mail)",
    "A": "replier's display name",
    "D": "deciding moderator's display name (webhook)",
    "G": "digest recipient's display name",
    "I": "inviting owner's display name",
}
ARTICLE_SITES = 5  # the main world's comments, spread so one export holds about 40 each
MAIL_CASES = 25  # mails cost 0.1-0.3 s each: vectors are packed, about 8 into each mail
BAN_CASES = 12  # ban messages hold 1,000 characters: about 17 vectors in each ban mail
REIMPORT_ORIGIN = "https://reimport.example"
# Nothing holds a comment in the article sites: the widget and the API show every vector.
OPEN = SiteSettings(
    spam_hold=1.0,
    spam_reject=1.0,
    abuse_hold=1.0,
    first_comments_held=0,
    flood_seconds=0,
    duplicate_minutes=0,
    max_links=100,
    digest_pending=0,
    digest_minutes=0,
)
# The mail sites hold every comment, so a moderator's decision (and its e-mail) follows.
HELD = SiteSettings(
    mode="pre",
    spam_reject=1.0,  # hostile text scores as spam: routed to Spam, it would skip Pending
    first_comments_held=0,
    flood_seconds=0,
    duplicate_minutes=0,
    notify_authors=True,
    digest_pending=0,
    digest_minutes=0,
)


def storable(text: str) -> str:
    """``text`` as a database column can hold it (PostgreSQL refuses NUL in text)."""
    return text.replace("\x00", "")


def field_text(vector: Vector, letter: str) -> str:
    """The vector as field ``letter`` carries it, storable."""
    return storable(for_field(vector, letter)[0])


def pack(vectors: list[Vector], letter: str, limit: int) -> tuple[str, set[str]]:
    """As many of ``vectors`` as fit in ``limit`` characters, one a line; and their markers."""
    lines: list[str] = []
    markers: set[str] = set()
    for vector in vectors:
        text = field_text(vector, letter)
        if len("\n".join([*lines, text])) <= limit:
            lines.append(text)
            markers.add(for_field(vector, letter)[1])
    return "\n".join(lines), markers


@dataclass
class Case:
    """One vector in the main world: its own site (name), author, article and comment."""

    vector: Vector
    name_site_key: str = ""
    site_key: str = ""
    url: str = ""
    title: str = ""
    user_id: int = 0
    comment_id: int = 0

    def marker(self, letter: str) -> str:
        """The vector's marker as field ``letter`` carries it."""
        return for_field(self.vector, letter)[1]

    def markers(self, letters: str) -> set[str]:
        """Markers of several fields."""
        return {self.marker(letter) for letter in letters}


@dataclass
class MailCase:
    """Several vectors packed into one site, author and pair of comments, for the e-mails."""

    vectors: list[Vector]
    ban_vectors: list[Vector]  # none: the author is not banned, and gets one mail, not two
    site_key: str = ""
    user_id: int = 0
    email: str = ""
    reported_id: int = 0  # a main-world comment: its report carries this case's notes
    rejected_id: int = 0
    markers: dict[str, set[str]] = field(default_factory=dict)  # per field letter

    def expected(self, letters: str) -> set[str]:
        """The markers the case's fields ``letters`` carry."""
        return {m for letter in letters for m in self.markers.get(letter, set())}


@dataclass
class World:
    """The app, its mailbox and the cases; ``cases[0]`` and ``mail_cases[0]`` are harmless."""

    app: Flask
    mailbox: Mailbox
    admin_id: int
    moderator_id: int  # moderates the control sites only: the baseline of pages listing sites
    reimport_key: str
    article_sites: list[str]
    cases: list[Case]
    mail_cases: list[MailCase]

    @property
    def hostile(self) -> list[Case]:
        """The main world's cases that carry a vector."""
        return self.cases[1:]

    def client(self, user_id: int | None = None) -> FlaskClient:
        """A test client, signed in as ``user_id`` (the admin if None)."""
        client = self.app.test_client()
        with self.app.app_context():
            sign_in(client, db.session.get(User, user_id or self.admin_id))
        return client


def _add_people_and_sites(cases: list[Case]) -> list[tuple[User, Site]]:
    """Each case's author (name, avatar) and named site, stored in one transaction."""
    made = []
    for index, case in enumerate(cases):
        avatar = field_text(case.vector, "W")
        author = User(
            email=f"author{index}@example.org",
            display_name=field_text(case.vector, "N")[:100],
            # Half the avatars look like a web address, half are the raw vector.
            avatar_url=f"https://img.example/{avatar}" if index % 2 else avatar,
        )
        # As the console's create_site stores a name (checked through it in the mail cases).
        name = " ".join(field_text(case.vector, "S").split())
        made.append((author, Site(name=name, origins=[f"https://n{index}.example"])))
    db.session.add_all([row for pair in made for row in pair])
    db.session.commit()
    return made


def _add_case(
    case: Case, index: int, author: User, name_site: Site, article_sites: list[Site]
) -> None:
    """One vector through the article URL, title and body, by the case's author."""
    site = article_sites[index % len(article_sites)]
    # "#" would end the URL's path: a fragment is not part of an article's address.
    query = field_text(case.vector, "U").replace("#", "%23")
    comment, _ = submit_comment(
        NewComment(
            site_key=site.key,
            url=f"{site.origins[0]}/articles/{index}?q={query}",
            title=field_text(case.vector, "T"),
            body=field_text(case.vector, "B"),
            author=author,
        )
    )
    case.name_site_key, case.site_key, case.url = name_site.key, site.key, comment.thread.url
    case.title, case.user_id, case.comment_id = comment.thread.title, author.id, comment.id


def _add_mail_case(case: MailCase, index: int, admin: User, reporter: User, reported: Case) -> None:
    """Packed vectors through every field a mail shows, and the moderators' notes."""
    texts = {}
    for letter, limit in {"S": 200, "N": 100, "T": 500, "U": 1500, "B": 480}.items():
        texts[letter], case.markers[letter] = pack(case.vectors, letter, limit)
    for letter, limit in {"M": 500, "R": 500, "O": 2000}.items():
        texts[letter], case.markers[letter] = pack(case.vectors, letter, limit)
    texts["K"], case.markers["K"] = pack(case.ban_vectors, "K", 1000)
    site = create_site(admin, texts["S"], [f"https://m{index}.example"])
    site.moderation_settings = HELD
    author = User(email=f"mail{index}@example.org", display_name=texts["N"], email_verified=True)
    db.session.add(author)
    db.session.commit()
    url = f"{site.origins[0]}/articles/{index}?q=" + texts["U"].replace("#", "%23")
    new = NewComment(site.key, url, texts["B"], title=texts["T"], author=author)
    rejected, _ = submit_comment(new)
    decide_comment(rejected.id, Action.REJECT, admin, reason=texts["M"], notify=True)
    report_comment(NewReport(reported.comment_id, reporter, "other", note=texts["R"]))
    key = AuthorKey(user_id=author.id)
    add_note(admin, site.key, key, texts["O"])
    if case.ban_vectors:
        act_on_author(admin, site.key, key, "ban", message=texts["K"])
    case.site_key, case.user_id, case.email = site.key, author.id, author.email or ""
    case.reported_id, case.rejected_id = reported.comment_id, rejected.id


@pytest.fixture(scope="module")
def world(module_app: ModuleApp, module_mailbox: Mailbox) -> World:
    """Every vector through every field, once for the module."""
    app = module_app(
        **module_mailbox.mail_config(),
        JOBS_SYNC=True,
        PUBLIC_URL=PUBLIC_URL,
        MODERATION_REPORTS_PER_HOUR=0,
        WEBHOOKS_ALLOW_PRIVATE=True,  # the receiver of the webhook payloads is on loopback
    )
    cases = [Case(CONTROL), *(Case(vector) for vector in VECTORS)]
    mail_cases = [MailCase([CONTROL], [CONTROL])] + [
        MailCase(list(VECTORS[k::MAIL_CASES]), list(VECTORS[k::BAN_CASES]) if k < BAN_CASES else [])
        for k in range(MAIL_CASES)
    ]
    with app.app_context():
        admin = User(
            email="chief@news.example",
            display_name="Chief editor",
            role=Role.ADMIN,
            email_verified=True,
        )
        reporter = User(email="reader@example.org", display_name="Reader", email_verified=True)
        moderator = User(email="desk@news.example", display_name="Desk", email_verified=True)
        db.session.add_all([admin, reporter, moderator])
        db.session.commit()
        article_sites = [
            create_site(admin, f"Gazette {j}", [f"https://a{j}.example"])
            for j in range(ARTICLE_SITES)
        ]
        for site in article_sites:
            site.moderation_settings = OPEN
        db.session.commit()
        people_and_sites = _add_people_and_sites(cases)
        for index, (case, (author, name_site)) in enumerate(
            zip(cases, people_and_sites, strict=True)
        ):
            _add_case(case, index, author, name_site, article_sites)
        for index, mail_case in enumerate(mail_cases):
            _add_mail_case(mail_case, index, admin, reporter, cases[index])
        reimport = Site(name="Re-import", origins=[REIMPORT_ORIGIN])
        db.session.add(reimport)
        # The control moderator sees the harmless sites only: baselines of site lists.
        for key in (cases[0].name_site_key, mail_cases[0].site_key):
            control = db.session.scalar(sa.select(Site).where(Site.key == key))
            db.session.add(SiteMembership(user=moderator, site=control, role=SiteRole.MODERATOR))
        db.session.commit()
        ids = admin.id, moderator.id, reimport.key, [site.key for site in article_sites]
    return World(app, module_mailbox, *ids, cases, mail_cases)


# --- checking -----------------------------------------------------------------------------------


def body_problems(html: str | ElementTree.Element) -> list[str]:
    """Comment bodies in a page (or its parsed tree) that hold more than the safe subset."""
    problems = []
    for element in (parse(html) if isinstance(html, str) else html).iter():
        if "comment__body" not in (element.get("class") or "").split():
            continue
        for child in element.iter():
            if child is element:
                continue
            tag = child.tag if isinstance(child.tag, str) else ""
            if tag not in SANITISED_TAGS:
                problems.append(f"<{tag}> inside a comment body")
            extra = set(child.attrib) - SANITISED_ATTRIBUTES.get(tag, frozenset())
            if extra:
                problems.append(f"<{tag}> with {sorted(extra)} inside a comment body")
    return problems


class Report:
    """What one output did with the corpus: problems found, markers that never arrived."""

    def __init__(self, output: str) -> None:
        self.output = output
        self.problems: list[str] = []
        self.missing: set[str] = set()
        self.pages = 0
        self.vectors: set[str] = set()

    def page(self, where: str, html: str, baseline: set[Any], expected: set[str]) -> None:
        """Check one HTML page: no active item beyond the baseline, every marker shown."""
        tree = parse(html)
        self.pages += 1
        self.problems += [f"{where}: {problem}" for problem in findings(tree, baseline)]
        self.problems += [f"{where}: {problem}" for problem in body_problems(tree)]
        shown = page_markers(tree)
        self.missing |= expected - shown
        self.vectors |= {m[0] + m[-3:] for m in expected & shown}

    def verify(self) -> None:
        """Fail with everything found; print the counts for the record."""
        print(f"{self.output}: {len(self.vectors)} vectors in {self.pages} pages checked")
        assert not self.problems, "\n".join(self.problems[:40])
        assert not self.missing, f"never shown in {self.output}: {sorted(self.missing)[:40]}"
        assert self.vectors, "nothing was checked"


def get_html(client: FlaskClient, path: str, **headers: str) -> str:
    """An HTML page that must load."""
    response = client.get(path, headers=headers)
    assert response.status_code == 200, (path, response.status_code, response.text[:300])
    assert response.mimetype == "text/html"
    return response.text


def get_json(client: FlaskClient, path: str) -> Any:
    """A JSON answer, which must say it is JSON and forbid sniffing."""
    response = client.get(path, headers={"X-Requested-With": "XMLHttpRequest"})
    assert response.status_code == 200, (path, response.status_code, response.text[:300])
    assert response.mimetype == "application/json", path
    assert response.headers.get("X-Content-Type-Options") == "nosniff", path
    return response.get_json()


def html_values(data: Any, keys: tuple[str, ...] = ("html", "body_html")) -> Iterator[str]:
    """Every value under an ``html`` key anywhere in a JSON document."""
    if isinstance(data, dict):
        for key, value in data.items():
            if key in keys and isinstance(value, str):
                yield value
            else:
                yield from html_values(value, keys)
    elif isinstance(data, list):
        for value in data:
            yield from html_values(value, keys)


def check_json(report: Report, where: str, data: Any, expected: set[str]) -> None:
    """Check one JSON answer: sanitised ``html`` fields, every expected marker present."""
    report.pages += 1
    for fragment in html_values(data):
        report.problems += [f"{where}: {p}" for p in sanitised_problems(fragment)]
    shown = markers_in(json.dumps(data, ensure_ascii=False))
    report.missing |= expected - shown
    report.vectors |= {m[0] + m[-3:] for m in expected & shown}


# --- outputs ------------------------------------------------------------------------------------


def thread_path(case: Case, **extra: str) -> str:
    """The widget's iframe page for the case's article, as embed.js opens it."""
    query = {"site": case.site_key, "url": case.url, "title": case.title, **extra}
    return "/embed/thread?" + urlencode(query)


def test_widget_thread_pages(world: World) -> None:
    """Widget: body, author name, article title and URL stay text in the iframe page."""
    client = world.app.test_client()
    report = Report("widget /embed/thread")
    baseline = signatures([get_html(client, thread_path(world.cases[0]))])
    for case in world.hostile:
        page = get_html(client, thread_path(case))
        report.page(case.vector.marker, page, baseline, case.markers("BNTU"))
    report.verify()


def test_widget_client_side_rendering_inserts_only_server_html() -> None:
    """thread.js and desk.js: innerHTML only ever takes the server's sanitised ``html``."""
    static = Path(__file__).resolve().parents[2] / "static" / "js"
    sinks = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(")
    found = {}
    for script in sorted(static.glob("*.js")):
        for number, line in enumerate(script.read_text().splitlines(), 1):
            if sinks.search(line) and not line.lstrip().startswith("//"):
                found[f"{script.name}:{number}"] = line.strip()
    # The two places thread.js shows a comment it got from the API (new or edited).
    allowed = re.compile(r"^body\.innerHTML = c\.html; // sanitised on the server")
    assert found, "the scan found no sink at all: has thread.js changed?"
    assert all(allowed.match(line) for line in found.values()), found


def test_public_api_json(world: World) -> None:
    """API: ``GET /api/v1/comments`` answers JSON, nosniff, with sanitised ``html``."""
    client = world.app.test_client()
    report = Report("API /api/v1/comments")
    for case in world.hostile:
        query = urlencode({"site": case.site_key, "url": case.url})
        data = get_json(client, f"/api/v1/comments?{query}")
        assert [c["id"] for c in data["comments"]] == [case.comment_id]
        check_json(report, case.vector.marker, data, case.markers("BN"))
    report.verify()


def _pages(client: FlaskClient, path: str, **query: Any) -> Iterator[Any]:
    """Every page of a paginated desk answer (``next_cursor``)."""
    cursor = None
    while True:
        data = get_json(
            client, f"{path}?{urlencode({**query, 'limit': 200, 'cursor': cursor or ''})}"
        )
        yield data
        cursor = data.get("next_cursor")
        if not cursor:
            return


def _all_markers(report: Report, client: FlaskClient, path: str, **query: Any) -> set[str]:
    """The markers in every page of a paginated answer, each page checked on the way."""
    shown: set[str] = set()
    for number, data in enumerate(_pages(client, path, **query)):
        check_json(report, f"{path} page {number}", data, set())
        shown |= markers_in(json.dumps(data, ensure_ascii=False))
    return shown


def test_review_desk(world: World) -> None:
    """Desk: its page, queues, reports, author drawer and audit log show every field as text."""
    client = world.client()
    report = Report("review desk")
    page = get_html(client, "/moderate")
    baseline = signatures([get_html(world.client(world.moderator_id), "/moderate")])
    sites = {c.marker("S") for c in world.hostile}
    sites |= {m for case in world.mail_cases[1:] for m in case.expected("S")}
    report.page("/moderate", page, baseline, sites)
    queue = "/api/v1/moderation/queue"
    approved = {m for case in world.hostile for m in case.markers("BNTU")}
    report.missing |= approved - _all_markers(report, client, queue, queue="approved")
    # Cards name their site by key; the page's site filter (checked above) gives the name.
    rejected = {m for case in world.mail_cases for m in case.expected("BNTU")}
    report.missing |= rejected - _all_markers(report, client, queue, queue="rejected")
    notes = {m for case in world.mail_cases for m in case.expected("M")}
    report.missing |= notes - _all_markers(report, client, "/api/v1/moderation/audit")
    for case in world.mail_cases[1:]:
        data = get_json(client, f"/api/v1/moderation/comments/{case.reported_id}/reports")
        check_json(report, f"reports {case.site_key}", data, case.expected("R"))
        query = urlencode({"site": case.site_key})
        data = get_json(client, f"/api/v1/moderation/authors/{case.user_id}?{query}")
        check_json(report, f"author {case.site_key}", data, case.expected("NOK"))
    report.verify()


def test_console_and_dashboard(world: World) -> None:
    """Console: site names on the index, overview and dashboard; article titles on the chart."""
    client = world.client()
    report = Report("site console and dashboard")
    moderator = world.client(world.moderator_id)
    index = get_html(client, "/console")
    sites = {c.marker("S") for c in world.hostile}
    sites |= {m for case in world.mail_cases[1:] for m in case.expected("S")}
    report.page("/console", index, signatures([get_html(moderator, "/console")]), sites)
    # The control mail site has comments and decisions: its dashboard draws every chart.
    control = world.mail_cases[0].site_key
    overview = signatures([get_html(moderator, f"/console/sites/{control}")])
    dashboard = signatures([get_html(moderator, f"/console/sites/{control}/dashboard")])
    # Overview pages of the mail sites: each holds about eight vectors in its name.
    for case in world.mail_cases[1:]:
        page = get_html(client, f"/console/sites/{case.site_key}")
        report.page(case.site_key, page, overview, case.expected("S"))
    # An article site's dashboard names its ten busiest articles: ten titles each.
    for key in world.article_sites:
        page = get_html(client, f"/console/sites/{key}/dashboard")
        report.page(key, page, dashboard, set())
        titles = {m for m in page_markers(page) if m[1] == "T"}
        assert len(titles) == 10, (key, titles)
    for case in world.mail_cases[1:]:
        page = get_html(client, f"/console/sites/{case.site_key}/dashboard")
        report.page(case.site_key, page, dashboard, case.expected("ST"))
    report.verify()


def test_account_and_login_pages(world: World) -> None:
    """Account page and the widget's login popup: the name and avatar address stay inert."""
    report = Report("account page + widget login-done page")
    control = world.client(world.cases[0].user_id)
    account = signatures([get_html(control, "/account/")])
    done = signatures([get_html(control, "/embed/login-done")])
    for index, case in enumerate(world.hostile, 1):
        client = world.client(case.user_id)
        # An avatar shows only from an https:// address: the odd cases' avatars.
        expected = case.markers("NW" if index % 2 else "N")
        report.page(case.vector.marker, get_html(client, "/account/"), account, expected)
        page = get_html(client, "/embed/login-done")
        report.page(case.vector.marker, page, done, case.markers("N"))
    report.verify()


def _html_part(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None and part.get_content_type() == "text/html"
    return str(part.get_content())


def test_emails(world: World) -> None:
    """E-mails: the rejection (with the moderator's note) and the ban mail carry fields as text."""
    report = Report("e-mails")
    by_address: dict[str, list[EmailMessage]] = {}
    for message in world.mailbox.messages:
        by_address.setdefault(str(message["To"]), []).append(message)
    control = by_address[world.mail_cases[0].email]
    assert len(control) == 2, [m["Subject"] for m in control]
    baseline = signatures([_html_part(message) for message in control])
    for case in world.mail_cases[1:]:
        messages = by_address.get(case.email, [])
        wanted = 2 if case.ban_vectors else 1  # the rejection, and the ban if banned
        assert len(messages) == wanted, (case.email, [m["Subject"] for m in messages])
        for number, message in enumerate(messages):
            assert "\n" not in str(message["Subject"]), case.email
            report.page(f"{case.email} mail {number}", _html_part(message), baseline, set())
        shown = page_markers("\n".join(_html_part(message) for message in messages))
        expected = case.expected("BNTUSMK")
        report.missing |= expected - shown
        report.vectors |= {m[0] + m[-3:] for m in expected}
    report.verify()


# --- reply, digest and invitation e-mails; webhook payloads -------------------------------------
# A display name holds 100 characters: the corpus needs 106 of them (longest first, first fit).
# Each mail therefore goes out once per name pack, plus once harmlessly (its baseline), and the
# longer fields (site names, titles, URLs, bodies) cycle through their fewer packs in the same
# mails: every vector passes through every field of each mail. Webhooks: every reply's
# comment.created payload (every vector through each comment field); a decision costs as much as
# a reply, so comment.decided comes once per note pack (every vector through the note, 48 of
# them through the moderator's name).

NOTICE_LIMITS = {
    "N": 100, "A": 100, "G": 100, "I": 100, "D": 100,  # display names
    "S": 200, "T": 500, "U": 1500, "P": 480, "B": 480, "M": 500,  # a mail quotes 500 of a body
}  # fmt: skip
# The fields each output shows, by letter (see FIELDS).
REPLY_FIELDS, DIGEST_FIELDS, INVITATION_FIELDS = "NASTUPB", "GS", "IS"
CREATED_FIELDS, DECIDED_FIELDS = "ABTU", "ABTUDM"


def corpus_packs(letter: str, limit: int) -> list[tuple[str, set[str]]]:
    """The whole corpus in as few texts of ``limit`` characters as first fit finds; markers."""
    texts = sorted(
        ((field_text(vector, letter), for_field(vector, letter)[1]) for vector in VECTORS),
        key=lambda pair: -len(pair[0]),
    )
    packs: list[tuple[list[str], set[str]]] = []
    for text, marker in texts:
        for lines, markers in packs:
            if len("\n".join([*lines, text])) <= limit:
                lines.append(text)
                markers.add(marker)
                break
        else:
            packs.append(([text], {marker}))
    return [("\n".join(lines), markers) for lines, markers in packs]


class NoticePlan:
    """Case 0 is harmless; case k >= 1 carries pack k-1 of each field (cycled when fewer)."""

    def __init__(self) -> None:
        self.packs = {letter: corpus_packs(letter, n) for letter, n in NOTICE_LIMITS.items()}
        self.cases = range(len(self.packs["N"]) + 1)
        self.sites = len(self.packs["S"]) + 1  # site 0 is harmless

    def text(self, letter: str, case: int) -> str:
        """Field ``letter``'s text in ``case``."""
        if case == 0:
            return field_text(CONTROL, letter)
        return self.packs[letter][(case - 1) % len(self.packs[letter])][0]

    def markers(self, letters: str, case: int) -> set[str]:
        """The markers fields ``letters`` carry in ``case`` (its site's name for S)."""
        found: set[str] = set()
        for letter in letters:
            number = self.site(case) if letter == "S" else case
            if number:
                packs = self.packs[letter]
                found |= packs[(number - 1) % len(packs)][1]
        return found

    def site(self, case: int) -> int:
        """The number of ``case``'s site (site n is named with the S text of case n)."""
        return 0 if case == 0 else 1 + (case - 1) % (self.sites - 1)

    def users(self, prefix: str, letter: str) -> list[User]:
        """A user per case, named with its ``letter`` text, at ``<prefix><case>@example.org``."""
        return [
            User(
                email=f"{prefix}{case}@example.org",
                display_name=self.text(letter, case),
                email_verified=True,
            )
            for case in self.cases
        ]

    def named_sites(self, prefix: str, settings: SiteSettings) -> list[Site]:
        """A site per site name (whitespace collapsed, as the console stores names)."""
        made = []
        for number in range(self.sites):
            name = " ".join(self.text("S", number).split())
            made.append(Site(name=name, origins=[f"https://{prefix}{number}.example"]))
            made[-1].moderation_settings = settings
        return made


@dataclass
class Notices:
    """What the notification outputs must carry: per recipient (mails) or event (webhooks)."""

    mails: dict[str, dict[str, set[str]]]  # output -> recipient -> expected markers
    digest_run: dict[str, Any]  # what ``flask notify digests`` printed
    digest_sites: set[str]
    secrets: dict[str, str]  # site key -> its webhook's secret
    payloads: dict[tuple[str, int], set[str]]  # (event, comment id) -> expected markers
    bodies: dict[int, str]  # comment id -> the body it was posted with


def _replies(
    plan: NoticePlan,
    sites: list[Site],
    people: tuple[list[User], list[User], dict[int, User]],
    hook_url: str,
    notices: Notices,
) -> None:
    """Readers' comments; then, webhooks on, a reply to each (the reply mail, comment.created);
    a moderator rejects a reply per note (comment.decided)."""
    readers, repliers, deciders = people
    threads = []
    for case in plan.cases:
        site = sites[plan.site(case)]
        url = f"{site.origins[0]}/articles/{case}?q=" + plan.text("U", case).replace("#", "%23")
        title = plan.text("T", case)
        parent, _ = submit_comment(
            NewComment(site.key, url, plan.text("P", case), title, author=readers[case])
        )
        threads.append((site.key, url, title, parent.id))
    # Webhooks only now: the replies' payloads carry every field (the readers' comments would
    # only double the deliveries).
    for site in sites:
        notices.secrets[site.key] = create_webhook(site, hook_url, list(EVENTS)).secret
    for case, (key, url, title, parent_id) in zip(plan.cases, threads, strict=True):
        new = NewComment(key, url, plan.text("B", case), title, parent_id, repliers[case])
        reply, _ = submit_comment(new)
        notices.bodies[reply.id] = new.body
        notices.mails["reply"][readers[case].email or ""] = plan.markers(REPLY_FIELDS, case)
        notices.payloads["comment.created", reply.id] = plan.markers(CREATED_FIELDS, case)
        if case in deciders:
            # Published, then rejected: news for the webhook, no mail to the author.
            decide_comment(reply.id, Action.REJECT, deciders[case], reason=plan.text("M", case))
            notices.payloads["comment.decided", reply.id] = plan.markers(DECIDED_FIELDS, case)


@pytest.fixture(scope="module")
def notices(world: World, module_receiver: Receiver) -> Notices:
    """Replies (mails, webhooks), moderators' decisions, digests and invitations, once."""
    plan = NoticePlan()
    notices = Notices({"reply": {}, "digest": {}, "invitation": {}}, {}, set(), {}, {}, {})
    app = world.app
    with app.app_context():
        reply_sites, digest_sites = plan.named_sites("r", OPEN), plan.named_sites("d", HELD)
        readers, repliers = plan.users("reader", "N"), plan.users("replier", "A")
        # The harmless case and the last cases, whose name packs hold the most (short) vectors.
        decided = [0, *plan.cases[-len(plan.packs["M"]) :]]
        everyone = plan.users("decider", "D")
        deciders = {case: everyone[case] for case in decided}
        inviters = plan.users("inviter", "I")
        digested = plan.users("digest", "G")
        held = User(email="held@example.org", display_name="Held reader", email_verified=True)
        for reader in readers:
            reader.preferences = {"notify_replies": True}
        db.session.add_all([*reply_sites, *digest_sites, held])
        db.session.add_all([*readers, *repliers, *deciders.values(), *inviters, *digested])
        for case in plan.cases:
            reply_site, digest_site = reply_sites[plan.site(case)], digest_sites[plan.site(case)]
            db.session.add_all(
                [
                    SiteMembership(user=inviters[case], site=reply_site, role=SiteRole.OWNER),
                    SiteMembership(user=digested[case], site=digest_site, role=SiteRole.MODERATOR),
                ]
            )
            if case in deciders:
                role = SiteRole.MODERATOR
                db.session.add(SiteMembership(user=deciders[case], site=reply_site, role=role))
            notices.mails["digest"][digested[case].email or ""] = plan.markers(DIGEST_FIELDS, case)
        db.session.commit()
        _replies(plan, reply_sites, (readers, repliers, deciders), module_receiver.url, notices)
        # A held comment on each digest site, then digests on: cron's command sends them.
        for site in digest_sites:
            new = NewComment(site.key, f"{site.origins[0]}/held", "Worth a look.", author=held)
            assert submit_comment(new)[0].status == Status.PENDING
            site.moderation_settings = replace(HELD, digest_pending=1)
        db.session.commit()
        result = app.test_cli_runner().invoke(args=["notify", "digests"])
        assert result.exit_code == 0, result.output
        notices.digest_run = json.loads(result.output)
        notices.digest_sites = {site.key for site in digest_sites}
        invitations = [
            (user.id, reply_sites[plan.site(case)].key) for case, user in enumerate(inviters)
        ]
    # Invitations go through the console's form, as each site's owner sends them.
    for case, (user_id, key) in enumerate(invitations):
        address = f"invitee{case}@example.org"
        response = world.client(user_id).post(
            f"/console/sites/{key}/moderators", data={"email": address}
        )
        assert response.status_code == 302, (case, response.status_code, response.text[:300])
        notices.mails["invitation"][address] = plan.markers(INVITATION_FIELDS, case)
    return notices


def _mails_by_address(world: World) -> dict[str, list[EmailMessage]]:
    by_address: dict[str, list[EmailMessage]] = {}
    for message in world.mailbox.messages:
        by_address.setdefault(str(message["To"]), []).append(message)
    return by_address


def assert_whole_corpus(expected: Iterable[set[str]], letters: str) -> None:
    """Each field ``letters`` names carries every vector of the corpus in some case."""
    markers = {m for found in expected for m in found}
    every = {vector.marker for vector in VECTORS}
    for letter in letters:
        carried = {m[0] + m[-3:] for m in markers if m[1] == letter}
        assert carried == every, f"{FIELDS[letter]}: {sorted(every - carried)[:20]} never sent"


def check_notice_mails(world: World, notices: Notices, output: str, letters: str) -> None:
    """One mail to each recipient, single-line subject, HTML inert and showing every marker."""
    report = Report(f"{output} e-mails")
    by_address = _mails_by_address(world)
    expected = notices.mails[output]
    assert_whole_corpus(expected.values(), letters)
    control, *_ = (address for address, markers in expected.items() if not markers)
    baseline = signatures([_html_part(message) for message in by_address[control]])
    for address, markers in expected.items():
        messages = by_address.get(address, [])
        assert len(messages) == 1, (output, address, [m["Subject"] for m in messages])
        subject = str(messages[0]["Subject"])
        assert "\n" not in subject and "\r" not in subject, (address, subject)
        report.page(address, _html_part(messages[0]), baseline, markers)
    report.verify()


def test_reply_emails(world: World, notices: Notices) -> None:
    """Reply mail: both names, site, article title and URL, both excerpts stay text."""
    check_notice_mails(world, notices, "reply", REPLY_FIELDS)


def test_digest_emails(world: World, notices: Notices) -> None:
    """Moderators' digest (``flask notify digests``): site name and moderator's name stay text."""
    run = notices.digest_run
    assert set(run["sent"]) == notices.digest_sites and run["failed"] == 0, run
    check_notice_mails(world, notices, "digest", DIGEST_FIELDS)


def test_invitation_emails(world: World, notices: Notices) -> None:
    """Console invitation: the inviting owner's name and the site name stay text."""
    check_notice_mails(world, notices, "invitation", INVITATION_FIELDS)


def test_webhook_payloads(world: World, notices: Notices, module_receiver: Receiver) -> None:
    """Webhooks: signed JSON; its text fields are the posted text, raw; any HTML field is safe."""
    report = Report("webhook payloads")
    for event, letters in (
        ("comment.created", CREATED_FIELDS),
        ("comment.decided", "M"),  # a decision per note pack (see above)
    ):
        expected = [markers for (kind, _), markers in notices.payloads.items() if kind == event]
        assert_whole_corpus(expected, letters)
    with world.app.app_context():
        ids = {comment_id for _, comment_id in notices.payloads}
        stored = {
            comment.id: {
                "body": comment.body,
                "author_name": comment.author_name,
                "article_title": comment.thread.title,
                "article_url": comment.thread.url,
                "decision": [
                    (d.reasons, db.session.get(User, d.actor_id).display_name)
                    for d in comment.decisions
                    if d.actor_id is not None
                ],
            }
            for comment in db.session.scalars(sa.select(Comment).where(Comment.id.in_(ids)))
        }
    received: dict[tuple[str, int], Any] = {}
    for path, headers, body in module_receiver.requests:
        assert headers["content-type"] == "application/json", (path, headers)
        data = json.loads(body.decode("utf-8"))
        key = (data["event"], data["comment"]["id"])
        assert key not in received, f"{key} delivered twice"
        received[key] = data
        assert headers["x-comments-event"] == data["event"]
        signature = headers["x-comments-signature"]
        assert verify_signature(notices.secrets[data["site"]], body, signature), key
        row = stored[key[1]]
        # Raw: what the author typed (controls dropped, as stored), never escaped or sanitised.
        assert data["comment"]["body"] == clean_body(notices.bodies[key[1]]), key
        for name in ("body", "author_name", "article_title", "article_url"):
            assert data["comment"][name] == row[name], (key, name)
        if key[0] == "comment.decided":
            decision = data["decision"]
            assert [(decision["reasons"], decision["moderator"])] == row["decision"], key
        check_json(report, f"{key}", data, notices.payloads[key])
    assert set(received) == set(notices.payloads)
    report.verify()


def _export(world: World, key: str, fmt: str) -> str:
    with world.app.app_context():
        result = world.app.test_cli_runner().invoke(args=["export", "--site", key, "--format", fmt])
    assert result.exit_code == 0, result.output
    return result.output


def _exported_sites(world: World) -> list[tuple[str, set[str]]]:
    """The sites to export and the markers each must hold."""
    article = {key: set() for key in world.article_sites}
    for case in world.hostile:
        article[case.site_key] |= case.markers("BNTU")
    mail = [(case.site_key, case.expected("BNTUS")) for case in world.mail_cases[1:]]
    return [*article.items(), *mail]


def test_ndjson_export(world: World) -> None:
    """NDJSON export: every line is JSON that gives back the stored text exactly."""
    report = Report("export ndjson")
    with world.app.app_context():
        stored = {
            c.id: (c.body, c.html, c.author_name) for c in db.session.scalars(sa.select(Comment))
        }
    for key, expected in _exported_sites(world):
        # Lines end with \n only: a U+2028 inside a JSON string is part of the string.
        lines = [json.loads(line) for line in _export(world, key, "ndjson").split("\n") if line]
        comments = [line for line in lines if line["type"] == "comment"]
        assert comments, key
        for comment in comments:
            exported = (comment["body"], comment["html"], comment["author_name"])
            assert exported == stored[comment["id"]]
        check_json(report, key, lines, expected)
    report.verify()


def test_wxr_export_and_reimport(world: World) -> None:
    """WXR export: well-formed XML whose text is the stored text; re-importing stays inert."""
    report = Report("export wxr + re-import")
    runner = world.app.test_cli_runner()
    namespace = {"wp": "http://wordpress.org/export/1.2/"}
    exported = 0
    with world.app.app_context():
        origins = {site.key: site.origins[0] for site in db.session.scalars(sa.select(Site))}
    for number, (key, expected) in enumerate(_exported_sites(world)):
        text = _export(world, key, "wxr")
        root = ElementTree.fromstring(text)  # raises on anything but well-formed XML
        contents = [
            comment.findtext("wp:comment_content", namespaces=namespace) or ""
            for comment in root.iterfind("./channel/item/wp:comment", namespace)
        ]
        assert contents, key
        exported += len(contents)
        for content in contents:
            report.problems += [f"{key}: {p}" for p in sanitised_problems(content)]
        report.pages += 1
        shown = markers_in(" ".join(root.itertext()))
        report.missing |= expected - shown
        report.vectors |= {m[0] + m[-3:] for m in expected & shown}
        path = Path(world.app.instance_path) / f"export-{number}.xml"
        path.write_text(text, encoding="utf-8")
        args = ["import", "wordpress", str(path), "--site", world.reimport_key, "--quiet"]
        args += ["--map-origin", f"{origins[key]}={REIMPORT_ORIGIN}"]
        with world.app.app_context():
            result = runner.invoke(args=args)
        assert result.exit_code == 0, (key, result.output)
    with world.app.app_context():
        site_id = db.session.scalar(sa.select(Site.id).where(Site.key == world.reimport_key))
        imported = list(db.session.scalars(sa.select(Comment).where(Comment.site_id == site_id)))
    assert len(imported) == exported
    for comment in imported:
        where = f"re-imported comment {comment.id}"
        report.problems += [f"{where}: {p}" for p in sanitised_problems(comment.html)]
    report.verify()


def _packs(letter: str, size: int = 10) -> list[tuple[str, set[str]]]:
    """The corpus in groups of ``size``, each as one text (one vector a line) and its markers."""
    groups = [list(VECTORS[i : i + size]) for i in range(0, len(VECTORS), size)]
    return [pack(group, letter, 10_000) for group in groups]


def test_reflected_input_in_error_and_login_pages(world: World) -> None:
    """Query parameters echoed back (error messages, the login form's next) stay text."""
    client, admin = world.app.test_client(), world.client()
    report = Report("reflected query parameters")
    site = world.article_sites[0]
    pages = [
        # The widget's error page quotes the article address it could not read.
        (client, 400, lambda text: thread_path(Case(CONTROL, site_key=site, url=text))),
        # The desk's 404 names the site key it was asked for.
        (admin, 404, lambda text: "/moderate?" + urlencode({"site": text})),
    ]
    for user, status, path_of in pages:
        response = user.get(path_of("harmless X000 text"))
        assert response.status_code == status, response.text[:300]
        baseline = signatures([response.text])
        for text, markers in _packs("Q"):
            response = user.get(path_of(text))
            assert response.status_code == status, (path_of(text)[:80], response.status_code)
            assert response.mimetype == "text/html"
            report.page(path_of(text)[:40], response.text, baseline, markers)
    # The login form keeps where to go next, when safe_next_url accepts it as a local path
    # (no controls, no backslash): the others are provably dropped, so shown nowhere.
    baseline = signatures([get_html(client, "/auth/login?next=/moderate")])
    kept = 0
    for vector in VECTORS:
        text, marker = for_field(vector, "Q")
        target = "/moderate?q=" + storable(text)  # a NUL in a query string is a 400
        page = get_html(client, "/auth/login?" + urlencode({"next": target}))
        expected = {marker} if safe_next_url(target) == target else set()
        kept += bool(expected)
        report.page(f"login {vector.marker}", page, baseline, expected)
    assert kept > 0.8 * len(VECTORS), kept
    # The API says the same in JSON, which must not be sniffed into HTML.
    for text, markers in _packs("Q"):
        query = urlencode({"site": site, "url": text})
        response = client.get(f"/api/v1/comments?{query}")
        assert response.status_code in (400, 422) and response.mimetype == "application/json"
        assert response.headers.get("X-Content-Type-Options") == "nosniff"
        check_json(report, "api error", response.get_json(), markers)
    report.verify()


def test_downloads_are_not_pages(world: World) -> None:
    """The audit CSV and the account's data download are attachments a browser never renders."""
    response = world.client().get(
        "/api/v1/moderation/audit.csv", headers={"X-Requested-With": "XMLHttpRequest"}
    )
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert response.headers.get("X-Content-Type-Options") == "nosniff"
    notes = {m for case in world.mail_cases[1:] for m in case.expected("M")}
    assert notes <= markers_in(response.text)
    for case in world.hostile[::20]:
        response = world.client(case.user_id).get("/account/data.json")
        assert response.status_code == 200 and response.mimetype == "application/json"
        assert response.headers.get("X-Content-Type-Options") == "nosniff"
        assert case.marker("N") in markers_in(response.text)


def test_world_is_as_planned(world: World) -> None:
    """The checks' premise: every main comment published, each mail case's pair decided."""
    with world.app.app_context():
        statuses = dict(db.session.execute(sa.select(Comment.id, Comment.status)).all())
    assert all(statuses[case.comment_id] == Status.PUBLISHED for case in world.cases)
    assert all(statuses[case.rejected_id] == Status.REJECTED for case in world.mail_cases)
    every = {vector.marker for vector in VECTORS}
    for letter in "BTUMRK":  # the fields long enough to pack every vector into some e-mail
        packed = {m[0] + m[-3:] for case in world.mail_cases[1:] for m in case.expected(letter)}
        assert packed == every, f"{FIELDS[letter]}: {sorted(every - packed)} in no mail case"


# --- the checker and the corpus themselves -----------------------------------------------------
# A checker that never flags anything would let the tests above pass on any page: here it is
# handed each vector the way a broken output would show it (unescaped in text, in a quoted
# attribute, in a link, Markdown rendered without sanitising, encodings decoded once).

# Markdown as a careless site would render it: raw HTML passed through, every link followed.
_UNSAFE_MARKDOWN = MarkdownIt("commonmark", {"html": True})
_UNSAFE_MARKDOWN.validateLink = lambda url: True  # type: ignore[method-assign]


def decoded(text: str) -> str:
    """``text`` after the decoding a confused pipeline might apply (entities, %XX, UTF-7 <>)."""
    for _ in range(3):
        text = unquote(html.unescape(text))
    text = text.replace("+ADw-", "<").replace("+AD4-", ">")
    return unicodedata.normalize("NFKC", text).replace("\u200b", "")


def unsafe_renderings(vector: Vector) -> list[str]:
    """Pages that show ``vector`` without escaping it, in the contexts a template offers."""
    text = vector.text
    return [
        f"<p>{text}</p>",
        f'<p title="{text}">x</p>',
        f"<p title='{text}'>x</p>",
        f'<a href="{text}">x</a>',
        _UNSAFE_MARKDOWN.render(text),
        f"<p>{decoded(text)}</p>",
    ]


def test_corpus_is_broad_and_traceable() -> None:
    """At least 170 distinct vectors in 12+ families, each with its own marker in its payload."""
    texts = [vector.text for vector in VECTORS]
    assert len(set(texts)) == len(texts) >= 170
    assert len(FAMILIES) >= 12 and all(len(payloads) >= 8 for payloads in FAMILIES.values())
    markers = [vector.marker for vector in VECTORS]
    assert len(set(markers)) == len(markers)
    for vector in VECTORS:
        assert set(MARKER.findall(vector.text)) == {vector.marker}, vector
        # Display names hold 100 characters: the marker must survive that cut, field-tagged.
        tagged, marker = for_field(vector, "N")
        assert marker in tagged[:100], vector


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_checker_flags_each_family_unescaped(family: str) -> None:
    """Every family has vectors the checker flags when an output forgets to escape them."""
    vectors = [vector for vector in VECTORS if vector.family == family]
    flagged = {
        vector.marker
        for vector in vectors
        if any(findings(page, set()) for page in unsafe_renderings(vector))
    }
    assert flagged, f"the checker flags no {family} vector"
    # Each flag is traced to its vector: the marker is inside the active item.
    for vector in vectors:
        for page in unsafe_renderings(vector):
            for problem in findings(page, set()):
                assert "carries" not in problem or vector.marker in problem


def test_checker_flags_almost_the_whole_corpus_unescaped() -> None:
    """Over 90% of the vectors are active somewhere when unescaped (the rest target contexts
    such as template engines or textarea break-outs that a plain page does not have)."""
    flagged = [
        vector
        for vector in VECTORS
        if any(findings(page, set()) for page in unsafe_renderings(vector))
    ]
    assert len(flagged) >= 0.9 * len(VECTORS), len(flagged)


def test_checker_baseline_allows_own_items_only() -> None:
    """A page's own script file passes; an extra inline script or a marked item does not."""
    own = '<html><head><script src="/static/js/thread.js?v=1"></script></head><body></body></html>'
    baseline = signatures([own])
    assert findings(own.replace("v=1", "v=2"), baseline) == []
    extra = own.replace("</body>", "<script>alert(1)</script></body>")
    assert any("inline" in problem for problem in findings(extra, baseline))
    marked = own.replace("v=1", "v=XB012")
    assert any("XB012" in problem for problem in findings(marked, baseline))


@pytest.mark.parametrize(
    ("snippet", "kind"),
    [
        ("<img src=x onerror=alert(1)>", "handler"),
        ('<a href=" &#x09;JaVa&#x0A;ScRiPt:alert(1)">x</a>', "url"),
        ('<a href="data:text/html,x">x</a>', "url"),
        ('<iframe srcdoc="&lt;b&gt;"></iframe>', "srcdoc"),
        ('<p style="width: expr/**/ession(alert(1))">x</p>', "style-attribute"),
        ('<p style="background: \\75 rl(x)">x</p>', "style-attribute"),
        ("<svg><a xlink:href=javascript:1><text>x</text></a></svg>", "url"),
        ("<svg><set attributeName=href to=javascript:1 /></svg>", "url"),
        ('<meta http-equiv="refresh" content="0">', "element"),
        ("<math><mi>x</mi></math>", "element"),
        ("<template><p>x</p></template>", "element"),
    ],
)
def test_checker_recognises_active_constructs(snippet: str, kind: str) -> None:
    """Browser normalisation is applied: entities, case, tabs, CSS comments and escapes."""
    assert kind in {item.kind for item in active_items(snippet)}, active_items(snippet)


def test_checker_leaves_inert_html_alone() -> None:
    """Escaped text, http links, data:image on img and plain styles are not active."""
    page = (
        "<p>&lt;script&gt;alert(1)&lt;/script&gt; javascript:alert(1)</p>"
        '<a href="https://ok.example/?q=javascript:">x</a><img src="data:image/png;base64,AA">'
        '<p style="white-space: pre-wrap" title="onerror=alert(1)">x</p>'
    )
    assert active_items(page) == []
    assert not risky_url("data:image/png;base64,AA", "img", "src")
    assert risky_url("data:image/svg+xml,x", "a", "href")
    assert not risky_style("color: red")


def test_sanitised_check_rejects_what_the_renderer_would_never_write() -> None:
    """The comment-subset check refuses other tags, attributes and link schemes."""
    assert sanitised_problems('<p>ok <a href="https://x.example" rel="nofollow">x</a></p>') == []
    assert sanitised_problems("<p><img src=x></p>")
    assert sanitised_problems('<p class="x">x</p>')
    assert sanitised_problems('<a href="mailto:a@b.example" target="_blank">x</a>')
    assert sanitised_problems('<a href="ftp://x.example">x</a>')


def test_renderer_output_for_the_whole_corpus_is_inert_and_complete() -> None:
    """moderation/render.py keeps every vector as visible text inside the safe subset."""
    problems, lost = [], []
    for vector in VECTORS:
        rendered = render_markdown(vector.text)
        problems += [f"{vector.marker}: {p}" for p in sanitised_problems(rendered)]
        if vector.marker not in page_markers(rendered):
            lost.append(vector.marker)
    print(f"render_markdown: {len(VECTORS)} vectors rendered inert")
    assert not problems, problems[:20]
    assert not lost, lost
