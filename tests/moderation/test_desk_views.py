"""The review desk's HTML pages: who may open them, what they list, and that they escape."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import scoped_session

from auth.models import Role, SiteMembership, SiteRole, User
from moderation import PROJECT_ROOT
from moderation.models import Site

if TYPE_CHECKING:
    from tests.conftest import Factory

DBSession = scoped_session[Any]
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'
PAGES = ("/moderate", "/moderate/audit")


def sign_in(client: FlaskClient, user: User) -> None:
    """Put ``user`` in the client's Flask-Login session."""
    with client.session_transaction() as session:
        session["_user_id"] = user.get_id()
        session["_fresh"] = True


def staff(factory: Factory, session: DBSession, site: Site, role: SiteRole, **fields: Any) -> User:
    """A user with ``role`` on ``site``."""
    user = factory.user(**fields)
    session.add(SiteMembership(user=user, site=site, role=role))
    session.commit()
    return user


class _Page(HTMLParser):
    """What a page holds: its scripts, stylesheets, site options and the desk's data."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.inline_scripts = 0
        self.stylesheets: list[str | None] = []
        self.site_options: list[str | None] = []
        self.desk: dict[str, str | None] = {}
        self._in_site_select = False
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script":
            self.scripts.append(values)
            self._in_script = not values.get("src")
        elif tag == "link" and values.get("rel") == "stylesheet":
            self.stylesheets.append(values.get("href"))
        elif tag == "select" and values.get("data-filter") == "site":
            self._in_site_select = True
        elif tag == "option" and self._in_site_select:
            self.site_options.append(values.get("value"))
        elif values.get("id") == "desk":
            self.desk = values

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._in_site_select = False
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts += 1


def parse(html: str) -> _Page:
    """The parsed page."""
    page = _Page()
    page.feed(html)
    return page


@pytest.mark.parametrize("path", PAGES)
def test_anonymous_people_are_sent_to_the_login_page(client: FlaskClient, path: str) -> None:
    response = client.get(path + "?queue=spam")
    assert response.status_code == 302
    location = urlsplit(response.location)
    assert location.path == "/auth/login"
    assert parse_qs(location.query)["next"] == [path + "?queue=spam"]


@pytest.mark.parametrize("path", PAGES)
def test_commenters_are_refused(client: FlaskClient, factory: Factory, path: str) -> None:
    factory.site(name="Gazette")
    sign_in(client, factory.user())
    response = client.get(path)
    assert response.status_code == 403
    assert "review desk is for the moderators" in response.get_data(as_text=True)


@pytest.mark.parametrize("path", PAGES)
def test_a_site_the_moderator_does_not_moderate_is_hidden(
    client: FlaskClient, factory: Factory, db_session: DBSession, path: str
) -> None:
    mine, theirs = factory.site(name="Gazette"), factory.site(name="Herald")
    sign_in(client, staff(factory, db_session, mine, SiteRole.MODERATOR))
    assert client.get(f"{path}?site={theirs.key}").status_code == 404
    assert client.get(f"{path}?site=no-such-site").status_code == 404
    assert client.get(f"{path}?site={mine.key}").status_code == 200


def test_the_desk_lists_only_the_moderators_sites(
    client: FlaskClient, factory: Factory, db_session: DBSession
) -> None:
    gazette, herald, courier = (factory.site(name=n) for n in ("Gazette", "Herald", "Courier"))
    moderator = staff(factory, db_session, gazette, SiteRole.MODERATOR)
    db_session.add(SiteMembership(user=moderator, site=courier, role=SiteRole.OWNER))
    db_session.commit()
    sign_in(client, moderator)

    response = client.get("/moderate")
    assert response.status_code == 200
    page = parse(response.get_data(as_text=True))
    # "All my sites" first, then the two sites by name; never the Herald.
    assert page.site_options == ["", courier.key, gazette.key]
    assert herald.key not in response.get_data(as_text=True)
    assert page.desk["data-page"] == "queue"
    assert page.desk["data-queue"] == "pending"
    assert page.desk["data-api"] == "/api/v1/moderation"


def test_an_admin_sees_every_site(client: FlaskClient, factory: Factory) -> None:
    sites = [factory.site(name=n) for n in ("Bugle", "Argus")]
    sign_in(client, factory.user(role=Role.ADMIN))
    page = parse(client.get("/moderate/audit").get_data(as_text=True))
    assert page.site_options == ["", sites[1].key, sites[0].key]
    assert page.desk["data-page"] == "audit"


def test_one_site_needs_no_all_sites_choice(
    client: FlaskClient, factory: Factory, db_session: DBSession
) -> None:
    site = factory.site(name="Gazette")
    sign_in(client, staff(factory, db_session, site, SiteRole.MODERATOR))
    page = parse(client.get("/moderate?queue=rejected").get_data(as_text=True))
    assert page.site_options == [site.key]
    assert page.desk["data-queue"] == "rejected"
    # An unknown queue name is not reflected into the page; the desk opens on Pending.
    page = parse(client.get("/moderate?queue=<b>x</b>").get_data(as_text=True))
    assert page.desk["data-queue"] == "pending"


def test_pages_load_our_own_script_and_styles_only(
    client: FlaskClient, factory: Factory, db_session: DBSession
) -> None:
    site = factory.site(name="Gazette")
    sign_in(client, staff(factory, db_session, site, SiteRole.MODERATOR))
    for path in PAGES:
        page = parse(client.get(path).get_data(as_text=True))
        assert [script.get("src") for script in page.scripts] == ["/static/js/desk.js"]
        assert page.inline_scripts == 0
        assert page.stylesheets == ["/static/css/desk.css"]
    script = client.get("/static/js/desk.js")
    styles = client.get("/static/css/desk.css")
    assert script.status_code == 200 and b"X-Requested-With" in script.data
    assert styles.status_code == 200 and b".desk-card" in styles.data
    script.close()
    styles.close()


def test_hostile_names_are_escaped(
    client: FlaskClient, factory: Factory, db_session: DBSession
) -> None:
    site = factory.site(name=HOSTILE)
    moderator = staff(factory, db_session, site, SiteRole.MODERATOR, display_name=HOSTILE)
    sign_in(client, moderator)
    for path in PAGES:
        html = client.get(path).get_data(as_text=True)
        assert "<script>alert" not in html
        assert "<img src=x" not in html
        assert "&lt;script&gt;alert(" in html  # the site's name, as text
        page = parse(html)
        assert page.desk["data-moderator"] == HOSTILE  # an attribute value, quoted and escaped
        assert [script.get("src") for script in page.scripts] == ["/static/js/desk.js"]


def test_the_script_never_parses_user_text_as_html() -> None:
    # Comments, names and notes are inserted as text nodes; the browser tests show the result.
    source = Path(PROJECT_ROOT, "static", "js", "desk.js").read_text(encoding="utf-8")
    code = re.sub(r"//[^\n]*", "", source)  # the header comment names innerHTML on purpose
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in code, sink


def test_the_help_lists_every_shortcut(
    client: FlaskClient, factory: Factory, db_session: DBSession
) -> None:
    site = factory.site(name="Gazette")
    sign_in(client, staff(factory, db_session, site, SiteRole.MODERATOR))
    html = client.get("/moderate").get_data(as_text=True)
    help_table = html[html.index('id="desk-help"') :]
    for key in ("j", "k", "a", "r", "R", "s", "x", "b", "o", "u", "?", "Esc"):
        assert f"<kbd>{key}</kbd>" in help_table, key
    assert 'aria-live="polite"' in html  # toasts are announced
