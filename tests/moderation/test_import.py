"""Importing WordPress and Disqus exports, and exporting a site as NDJSON and WXR."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa
from click.testing import Result
from flask.testing import FlaskCliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import scoped_session

from moderation.importers import ImportFailed, common, read_wxr, run_import
from moderation.importers.common import html_to_body
from moderation.importers.disqus import disqus_status
from moderation.importers.wordpress import wordpress_status
from moderation.models import Comment, Decision, Site, Thread
from moderation.render import render_markdown
from moderation.status import Status

if TYPE_CHECKING:
    from tests.conftest import Factory

FIXTURES = Path(__file__).parent / "fixtures" / "import"
BLOG = "https://blog.example"
DBSession = scoped_session[Any]


def run(runner: FlaskCliRunner, *args: str) -> Result:
    """Invoke a command the way ``flask --app wsgi ...`` would."""
    return runner.invoke(args=list(args))


def imported(result: Result) -> dict[str, Any]:
    """The summary a successful import printed."""
    assert result.exit_code == 0, result.output + (result.stderr or "")
    return json.loads(result.stdout)


def import_file(runner: FlaskCliRunner, kind: str, name: str, site: Site, *extra: str) -> Result:
    """``flask import KIND fixtures/NAME --site KEY --quiet``."""
    return run(runner, "import", kind, str(FIXTURES / name), "--site", site.key, "--quiet", *extra)


def comments_by_ref(session: DBSession, site: Site) -> dict[str, Comment]:
    """The site's imported comments by the id they had in the file ("comment-101", "post-9001")."""
    session.expire_all()
    rows = session.scalars(sa.select(Comment).where(Comment.site_id == site.id))
    return {c.import_ref.rsplit("#", 1)[-1].rsplit(":", 1)[-1]: c for c in rows if c.import_ref}


def threads_of(session: DBSession, site: Site) -> dict[str, Thread]:
    """The site's threads by URL."""
    session.expire_all()
    return {t.url: t for t in session.scalars(sa.select(Thread).where(Thread.site_id == site.id))}


def count_rows(session: DBSession, model: type, site: Site) -> int:
    """How many rows of ``model`` the site has."""
    session.expire_all()
    return session.scalar(
        sa.select(sa.func.count()).select_from(model).where(model.site_id == site.id)
    )


@pytest.fixture
def blog(factory: Factory) -> Site:
    """The site the fixtures' posts belong to."""
    return factory.site(name="Millbrook Blog", origins=[BLOG])


# ---------------------------------------------------------------------------------------------
# WordPress
# ---------------------------------------------------------------------------------------------


def test_wordpress_posts_become_threads_with_their_comments(
    runner: FlaskCliRunner, db_session: DBSession, blog: Site
) -> None:
    summary = imported(import_file(runner, "wordpress", "wordpress.xml", blog))

    assert summary["threads"] == {"created": 2, "existing": 0}
    assert summary["comments"]["created"] == 6
    assert summary["comments"]["not_comments"] == 1  # the pingback
    assert summary["comments"]["by_status"] == {
        "pending": 1,
        "published": 3,
        "rejected": 1,
        "spam": 1,
    }
    threads = threads_of(db_session, blog)
    festival = threads[f"{BLOG}/2024/05/harbour-festival/"]
    bridge = threads[f"{BLOG}/2024/06/council-bridge/"]
    assert set(threads) == {festival.url, bridge.url}  # the attachment had no comments
    assert festival.title == "Harbour festival draws record crowds"
    assert festival.created_at == datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    assert (festival.closed, bridge.closed) == (False, True)
    # Published comments only: 101 and 102 (103 pending, 104 spam, 105 trash).
    assert (festival.comment_count, bridge.comment_count) == (2, 1)

    c = comments_by_ref(db_session, blog)
    assert set(c) == {"comment-101", "comment-102", "comment-103", "comment-104", "comment-105",
                      "comment-201"}  # fmt: skip
    assert [c[f"comment-{n}"].status for n in (101, 102, 103, 104, 105)] == [
        Status.PUBLISHED,
        Status.PUBLISHED,
        Status.PENDING,
        Status.SPAM,
        Status.REJECTED,
    ]
    # Nesting: 103 answers 102, which answers 101.
    assert c["comment-101"].parent_id is None
    assert c["comment-102"].parent_id == c["comment-101"].id
    assert c["comment-103"].parent_id == c["comment-102"].id
    assert c["comment-101"].thread_id == festival.id and c["comment-201"].thread_id == bridge.id
    # Authors as guests: names kept, e-mail addresses lower-cased, no accounts.
    zoe = c["comment-101"]
    assert (zoe.author_name, zoe.guest_email, zoe.author_id) == (
        "Zoë Ångström",
        "zoe@example.org",
        None,
    )
    assert c["comment-105"].guest_email is None  # "not-an-address"
    assert c["comment-201"].author_name == "Ａｎｎａ"
    # Dates in UTC; a zero GMT date falls back to the local one.
    assert zoe.created_at == datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
    assert c["comment-201"].created_at == datetime(2024, 6, 3, 9, 0, tzinfo=UTC)
    # Unicode and HTML go through the service's own renderer.
    assert "🎉" in zoe.body and "¡qué bien!" in zoe.body
    assert "<strong>wonderful</strong>" in zoe.html
    assert "Second line." in zoe.html and zoe.html.count("<p>") == 2
    assert '<a href="https://harbour.example/photos" rel="nofollow ugc noopener">' in zoe.html
    bob = c["comment-102"]
    for unsafe in ("<script", "javascript:", "onerror", "<img", "alert"):
        assert unsafe not in bob.html
    assert "click me" in bob.html  # the dead link keeps its text
    assert "2*3*4 = 24 &amp; snake_case" in c["comment-103"].html
    assert "<blockquote>" in c["comment-201"].html
    # Not re-scored; each has one system decision saying where it came from.
    assert zoe.spam_score is None and zoe.abuse_score is None
    assert zoe.reasons[0]["code"] == "imported"
    assert "WordPress" in zoe.reasons[0]["message"]
    decisions = db_session.scalars(sa.select(Decision).where(Decision.site_id == blog.id)).all()
    assert len(decisions) == 6
    assert {d.comment_id for d in decisions} == {x.id for x in c.values()}
    assert {d.to_status for d in decisions if d.comment_id == c["comment-104"].id} == {Status.SPAM}


def test_the_progress_bar_counts_bytes_on_stderr(runner: FlaskCliRunner, blog: Site) -> None:
    path = FIXTURES / "wordpress.xml"
    result = run(runner, "import", "wordpress", str(path), "--site", blog.key)

    assert result.exit_code == 0, result.stderr
    assert "100%" in result.stderr and "wordpress.xml" in result.stderr
    assert json.loads(result.stdout)["comments"]["created"] == 6  # stdout is the summary alone


def test_importing_the_same_file_again_imports_nothing_twice(
    runner: FlaskCliRunner, db_session: DBSession, blog: Site
) -> None:
    imported(import_file(runner, "wordpress", "wordpress.xml", blog))
    again = imported(import_file(runner, "wordpress", "wordpress.xml", blog))

    assert again["threads"] == {"created": 0, "existing": 2}
    assert again["comments"]["created"] == 0
    assert again["comments"]["already_imported"] == 6
    assert count_rows(db_session, Comment, blog) == 6
    assert count_rows(db_session, Decision, blog) == 6
    threads = threads_of(db_session, blog)
    assert threads[f"{BLOG}/2024/05/harbour-festival/"].comment_count == 2


def test_a_post_that_already_has_a_thread_joins_it(
    runner: FlaskCliRunner, db_session: DBSession, factory: Factory, blog: Site
) -> None:
    url = f"{BLOG}/2024/05/harbour-festival/"
    thread = factory.thread(blog, url=url, title="Festival", comment_count=1)
    factory.comment(thread, body="Posted here before the import.")

    summary = imported(import_file(runner, "wordpress", "wordpress.xml", blog))

    assert summary["threads"] == {"created": 1, "existing": 1}
    threads = threads_of(db_session, blog)
    assert threads[url].id == thread.id
    assert threads[url].comment_count == 3  # its own comment and the two published imports
    assert threads[url].title == "Festival"  # the service's thread is left as it was


def test_comments_over_the_length_limit_are_skipped_and_reported(
    runner: FlaskCliRunner, db_session: DBSession, blog: Site
) -> None:
    summary = imported(import_file(runner, "wordpress", "huge_body.xml", blog))

    assert summary["comments"]["created"] == 1
    assert summary["comments"]["invalid"] == 1
    assert "comment-502" in summary["invalid_examples"][0]
    assert "limit" in summary["invalid_examples"][0]
    assert set(comments_by_ref(db_session, blog)) == {"comment-501"}


def test_missing_and_circular_parents_become_top_level(
    runner: FlaskCliRunner, db_session: DBSession, blog: Site
) -> None:
    summary = imported(import_file(runner, "wordpress", "missing_parent.xml", blog))

    c = comments_by_ref(db_session, blog)
    assert c["comment-401"].parent_id is None  # its parent is not in the file
    # 402 and 403 name each other: only the later one (same time, higher id) keeps its parent.
    assert c["comment-402"].parent_id is None
    assert c["comment-403"].parent_id == c["comment-402"].id
    assert c["comment-404"].parent_id is None  # itself
    assert summary["comments"]["parents_missing"] == 3
    assert summary["comments"]["created"] == 4


def test_posts_on_another_origin_are_refused_or_mapped(
    runner: FlaskCliRunner, db_session: DBSession, factory: Factory
) -> None:
    site = factory.site(origins=["https://news.example"])

    result = import_file(runner, "wordpress", "wordpress.xml", site)
    assert result.exit_code == 1
    assert "https://blog.example" in result.stderr
    assert "--map-origin https://blog.example=" in result.stderr
    assert "Nothing was imported" in result.stderr
    assert count_rows(db_session, Thread, site) == 0

    summary = imported(
        import_file(
            runner,
            "wordpress",
            "wordpress.xml",
            site,
            "--map-origin",
            "https://blog.example=https://news.example",
        )
    )
    assert summary["comments"]["created"] == 6
    assert set(threads_of(db_session, site)) == {
        "https://news.example/2024/05/harbour-festival/",
        "https://news.example/2024/06/council-bridge/",
    }


def test_bad_command_lines_say_what_is_wrong(runner: FlaskCliRunner, blog: Site) -> None:
    result = run(runner, "import", "wordpress", str(FIXTURES / "wordpress.xml"), "--site", "nope")
    assert result.exit_code == 2 and "no site with the key 'nope'" in result.stderr
    result = import_file(runner, "wordpress", "wordpress.xml", blog, "--map-origin", "blog")
    assert result.exit_code == 2 and "OLD=NEW" in result.stderr
    result = import_file(runner, "wordpress", "disqus.xml", blog)
    assert result.exit_code == 1 and "not a WordPress export" in result.stderr
    result = import_file(runner, "disqus", "wordpress.xml", blog)
    assert result.exit_code == 1 and "not a Disqus export" in result.stderr


# ---------------------------------------------------------------------------------------------
# Disqus
# ---------------------------------------------------------------------------------------------


def test_disqus_threads_posts_parents_and_flags(
    runner: FlaskCliRunner, db_session: DBSession, blog: Site
) -> None:
    summary = imported(import_file(runner, "disqus", "disqus.xml", blog))

    assert summary["threads"] == {"created": 2, "existing": 0}  # 7002 has no posts
    assert summary["comments"]["by_status"] == {"deleted": 1, "published": 4, "spam": 1}
    assert summary["comments"]["parents_missing"] == 0
    threads = threads_of(db_session, blog)
    festival = threads[f"{BLOG}/2024/05/harbour-festival/"]
    old = threads[f"{BLOG}/2024/08/closed-article/?ref=home"]  # the fragment is dropped
    assert old.closed and not festival.closed
    assert (festival.comment_count, old.comment_count) == (3, 1)

    p = comments_by_ref(db_session, blog)
    assert p["post-9002"].parent_id == p["post-9001"].id
    assert p["post-9003"].parent_id == p["post-9002"].id
    assert p["post-9004"].parent_id == p["post-9003"].id  # a reply to a deleted post keeps it
    assert p["post-9003"].status == Status.DELETED and p["post-9003"].body == "[deleted]"
    assert p["post-9005"].status == Status.SPAM
    mary = p["post-9001"]
    assert (mary.author_name, mary.guest_email) == ("Mary", "mary@example.org")
    assert "日本語もOK" in mary.body and "<strong>Bravo</strong>" in mary.html
    assert (p["post-9002"].author_name, p["post-9002"].guest_email) == ("Anonymous Guest", None)
    assert (
        'title="map"' not in p["post-9002"].html
        and 'rel="nofollow ugc noopener"' in p["post-9002"].html
    )
    assert p["post-9006"].created_at == datetime(2024, 8, 2, 6, 0, tzinfo=UTC)

    again = imported(import_file(runner, "disqus", "disqus.xml", blog))
    assert again["comments"]["created"] == 0 and again["comments"]["already_imported"] == 6


# ---------------------------------------------------------------------------------------------
# Hostile and broken files: a message, and nothing imported
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "name", "message"),
    [
        ("wordpress", "billion_laughs.xml", "DTD"),
        ("wordpress", "external_entity.xml", "DTD"),
        ("disqus", "doctype.xml", "DTD"),
        ("wordpress", "truncated.xml", "not well-formed"),
    ],
)
def test_hostile_or_broken_files_import_nothing(
    runner: FlaskCliRunner,
    db_session: DBSession,
    blog: Site,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    name: str,
    message: str,
) -> None:
    # Small batches: the truncated file's first post is written before the parser fails.
    monkeypatch.setattr(common, "BATCH_SIZE", 2)

    result = import_file(runner, kind, name, blog)

    assert result.exit_code == 1
    assert message in result.stderr and "Nothing was imported" in result.stderr
    assert "root:" not in result.output + result.stderr  # /etc/passwd never read
    assert count_rows(db_session, Thread, blog) == 0
    assert count_rows(db_session, Comment, blog) == 0
    assert count_rows(db_session, Decision, blog) == 0


def test_a_giant_element_is_refused_before_it_fills_memory(
    app: Any, db_session: DBSession, blog: Site, tmp_path: Path
) -> None:
    path = tmp_path / "giant.xml"
    text = (FIXTURES / "huge_body.xml").read_text()
    path.write_text(text.replace("All work and no play", "x" * 200_000, 1))

    with pytest.raises(ImportFailed, match="longer than 65,536 bytes"):
        run_import(blog.key, "WordPress", read_wxr(path, progress=False, max_gap=64 * 1024))
    assert count_rows(db_session, Comment, blog) == 0


# ---------------------------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------------------------


def test_export_writes_every_thread_comment_and_decision_as_json_lines(
    runner: FlaskCliRunner, blog: Site
) -> None:
    imported(import_file(runner, "wordpress", "wordpress.xml", blog))

    result = run(runner, "export", "--site", blog.key)

    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines[0]["type"] == "site" and lines[0]["key"] == blog.key
    assert lines[0]["origins"] == [BLOG]
    kinds = [line["type"] for line in lines[1:]]
    assert kinds == ["thread"] * 2 + ["comment"] * 6 + ["decision"] * 6
    comments = {
        line["import_ref"].rsplit("#", 1)[1]: line for line in lines if line["type"] == "comment"
    }
    reply = comments["comment-102"]
    assert reply["parent_id"] == comments["comment-101"]["id"]
    assert reply["status"] == "published" and reply["created_at"] == "2024-05-01T10:00:00+00:00"
    assert comments["comment-101"]["guest_email"] == "zoe@example.org"
    assert "🎉" in comments["comment-101"]["body"]
    assert "ip_hash" not in reply


def test_wxr_export_round_trips_through_the_wordpress_import(
    runner: FlaskCliRunner, db_session: DBSession, factory: Factory, blog: Site, tmp_path: Path
) -> None:
    imported(import_file(runner, "wordpress", "wordpress.xml", blog))
    imported(import_file(runner, "disqus", "disqus.xml", blog))
    # Statuses WordPress cannot tell apart travel in the export's own comment meta.
    # (WXR dates have whole seconds.)
    when = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    thread = factory.thread(blog, url=f"{BLOG}/native/", title="Native <&> thread", created_at=when)
    body = "Removed by *its* author"
    factory.comment(
        thread, body=body, html=render_markdown(body), status=Status.DELETED, created_at=when
    )

    result = run(runner, "export", "--site", blog.key, "--format", "wxr")
    assert result.exit_code == 0, result.stderr
    path = tmp_path / "export.xml"
    path.write_text(result.stdout, encoding="utf-8")
    fresh = factory.site(origins=[BLOG])
    summary = imported(
        run(runner, "import", "wordpress", str(path), "--site", fresh.key, "--quiet")
    )
    assert summary["comments"]["invalid"] == 0

    def snapshot(site: Site) -> tuple[set[Any], set[Any]]:
        threads = threads_of(db_session, site)
        by_id = {
            c.id: c
            for c in db_session.scalars(sa.select(Comment).where(Comment.site_id == site.id))
        }
        urls = {t.id: url for url, t in threads.items()}

        def key(c: Comment) -> tuple[Any, ...]:
            return (urls[c.thread_id], c.author_name, c.created_at)

        thread_facts = {
            (t.url, t.title, t.closed, t.created_at, t.comment_count) for t in threads.values()
        }
        comment_facts = {
            (*key(c), c.guest_email, c.status, c.html, c.body,
             key(by_id[c.parent_id]) if c.parent_id else None)
            for c in by_id.values()
        }  # fmt: skip
        return thread_facts, comment_facts

    original, copy = snapshot(blog), snapshot(fresh)
    assert len(original[1]) == 13  # 6 WordPress, 6 Disqus, 1 native
    assert copy[0] == original[0]
    assert copy[1] - original[1] == set() and original[1] - copy[1] == set()

    again = imported(run(runner, "import", "wordpress", str(path), "--site", fresh.key, "--quiet"))
    assert again["comments"]["created"] == 0


# ---------------------------------------------------------------------------------------------
# The pieces
# ---------------------------------------------------------------------------------------------


def test_status_mappings() -> None:
    assert [wordpress_status(v) for v in ("1", "0", "spam", "trash", "post-trashed", "??")] == [
        Status.PUBLISHED,
        Status.PENDING,
        Status.SPAM,
        Status.REJECTED,
        Status.REJECTED,
        Status.PENDING,  # unknown: a moderator decides
    ]
    assert disqus_status(is_deleted=False, is_spam=False) == Status.PUBLISHED
    assert disqus_status(is_deleted=True, is_spam=False) == Status.DELETED
    assert disqus_status(is_deleted=True, is_spam=True) == Status.SPAM
    assert disqus_status(False, False, is_approved=False) == Status.PENDING


def test_html_bodies_become_our_markdown_subset() -> None:
    assert html_to_body("one\ntwo\n\nthree") == "one\ntwo\n\nthree"
    assert html_to_body("<p>a <b>b</b> <i>c</i></p>") == "a **b** *c*"
    assert html_to_body('<a href="https://x.example/">x</a>') == "[x](https://x.example/)"
    assert html_to_body("<style>p{}</style><script>evil()</script>ok") == "ok"
    assert html_to_body("<h1>Title</h1><ul><li>item</li></ul>") == "Title\n\n- item"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=" \t\r\nab*_#>-[]().!é🎉\\`", max_size=60))
def test_plain_text_takes_a_shortcut_to_the_same_body(text: str) -> None:
    # Most comments have no markup; they skip the HTML parser and must come out the same.
    assert common._plain_to_body(text) == common._html_path_to_body(text)
