"""The widget's server side: /embed.js, the thread page in the iframe, its security, its login."""

from __future__ import annotations

import gzip
import hashlib
import re
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from moderation import embed
from moderation.models import Site
from moderation.policy import SiteSettings
from moderation.status import Status

if TYPE_CHECKING:
    from tests.conftest import Factory

ORIGIN = "https://news.example"
OTHER_ORIGIN = "https://www.news.example"


def thread_url(client: FlaskClient, site: Site, url: str, **extra: str) -> Any:
    """GET the thread page of ``url`` on ``site``."""
    return client.get("/embed/thread", query_string={"site": site.key, "url": url, **extra})


@pytest.fixture
def site(factory: Factory) -> Site:
    """A site on two origins, guests allowed, no first-comment holds."""
    return factory.site(
        origins=[ORIGIN, OTHER_ORIGIN],
        settings=SiteSettings(
            allow_guests=True, first_comments_held=0, flood_seconds=0, duplicate_minutes=0
        ).to_dict(),
    )


def test_embed_js_is_small_static_javascript(client: FlaskClient) -> None:
    response = client.get("/embed.js")
    assert response.status_code == 200
    assert response.mimetype in ("text/javascript", "application/javascript")
    body = response.get_data()
    assert len(gzip.compress(body, 9)) < 10 * 1024
    assert b"/embed/thread" in body
    # No third-party host appears in the loader (every request goes to the service).
    assert b"http://" not in body.replace(b"http://www.w3.org", b"")
    assert b"https://" not in body


def test_thread_page_frames_only_on_the_sites_origins(client: FlaskClient, site: Site) -> None:
    response = thread_url(client, site, f"{ORIGIN}/a/1")
    assert response.status_code == 200
    csp = response.headers["Content-Security-Policy"]
    assert f"frame-ancestors {ORIGIN} {OTHER_ORIGIN}" in csp
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "X-Frame-Options" not in response.headers


def test_site_without_origins_cannot_be_framed(client: FlaskClient, factory: Factory) -> None:
    bare = factory.site(origins=[])
    response = client.get(
        "/embed/thread", query_string={"site": bare.key, "url": "https://x.example/a"}
    )
    assert response.status_code == 400
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ({"site": "nope", "url": f"{ORIGIN}/a"}, 404),
        ({"url": f"{ORIGIN}/a"}, 404),
        ({"site": "SITE"}, 400),
        ({"site": "SITE", "url": "https://elsewhere.example/a"}, 400),
        ({"site": "SITE", "url": "javascript:alert(1)"}, 400),
    ],
)
def test_bad_thread_requests_get_a_clear_error_page(
    client: FlaskClient, site: Site, query: dict[str, str], status: int
) -> None:
    query = {k: (site.key if v == "SITE" else v) for k, v in query.items()}
    response = client.get("/embed/thread", query_string=query)
    assert response.status_code == status
    assert 'role="alert"' in response.get_data(as_text=True)


def test_thread_shows_published_comments_nested_three_levels_then_flat(
    client: FlaskClient, factory: Factory, site: Site
) -> None:
    thread = factory.thread(site, url=f"{ORIGIN}/a/deep")
    level1 = factory.comment(thread, author_name="<b>Ann</b>", html="<p>one</p>")
    level2 = factory.comment(thread, parent_id=level1.id, html="<p>two</p>")
    level3 = factory.comment(thread, parent_id=level2.id, html="<p>three</p>")
    level4 = factory.comment(thread, parent_id=level3.id, html="<p>four</p>")
    factory.comment(thread, status=Status.PENDING, html="<p>held text</p>")

    page = thread_url(client, site, thread.url).get_data(as_text=True)
    assert "&lt;b&gt;Ann&lt;/b&gt;" in page and "<b>Ann</b>" not in page
    assert "held text" not in page
    assert f'id="comment-{level3.id}" data-id="{level3.id}" data-depth="3"' in page
    # The fourth level is a sibling of the third, in the second level's reply list.
    assert f'id="comment-{level4.id}" data-id="{level4.id}" data-depth="3"' in page
    third = page.index(f'id="comment-{level3.id}"')
    fourth = page.index(f'id="comment-{level4.id}"')
    between = page[third:fourth]
    assert between.count("<li") == 1  # no list item opened inside the third
    assert "<script>" not in page.replace('<script src="/static/js/thread.js" defer></script>', "")


def test_tree_helper_flattens_beyond_max_depth(factory: Factory, site: Site) -> None:
    thread = factory.thread(site)
    chain = [factory.comment(thread)]
    for _ in range(5):
        chain.append(factory.comment(thread, parent_id=chain[-1].id))
    roots = embed.thread_tree(chain)
    assert len(roots) == 1
    second = roots[0].replies[0]
    assert [node.depth for node in second.replies] == [3, 3, 3, 3]
    assert [node.comment.id for node in second.replies] == [c.id for c in chain[2:]]


def test_parent_origin_is_echoed_only_when_it_is_the_sites(client: FlaskClient, site: Site) -> None:
    ok = thread_url(client, site, f"{ORIGIN}/a", origin=OTHER_ORIGIN).get_data(as_text=True)
    assert f'data-parent-origin="{OTHER_ORIGIN}"' in ok
    bad = thread_url(client, site, f"{ORIGIN}/a", origin="https://evil.example")
    assert 'data-parent-origin=""' in bad.get_data(as_text=True)


def test_guest_fields_follow_the_setting(client: FlaskClient, factory: Factory) -> None:
    members_only = factory.site(origins=[ORIGIN])
    page = thread_url(client, members_only, f"{ORIGIN}/a").get_data(as_text=True)
    assert 'id="guest-fields" hidden' in page
    assert "Click an icon to log in:" in page


def test_closed_thread_has_no_form(client: FlaskClient, factory: Factory, site: Site) -> None:
    thread = factory.thread(site, url=f"{ORIGIN}/a/closed", closed=True)
    page = thread_url(client, site, thread.url).get_data(as_text=True)
    assert "Comments are closed." in page
    assert 'id="comment-form"' not in page


def test_embed_token_round_trip_and_logout_everywhere(
    app: Flask, client: FlaskClient, factory: Factory
) -> None:
    user = factory.user(display_name="Tok En")
    token = embed.embed_token_for(user)
    assert embed.user_for_embed_token(token) == user
    assert embed.user_for_embed_token(token + "x") is None
    answer = client.get("/embed/me", headers={"X-Embed-Token": token}).get_json()
    assert answer["user"]["name"] == "Tok En"
    assert client.get("/embed/me").get_json() == {"user": None}
    user.session_version += 1
    factory.session.commit()
    assert embed.user_for_embed_token(token) is None


def test_embed_token_posts_a_comment_and_a_bad_one_is_401(
    client: FlaskClient, factory: Factory, site: Site
) -> None:
    user = factory.user(display_name="Poster")
    headers = {"X-Embed-Token": embed.embed_token_for(user), "X-Requested-With": "fetch"}
    body = {"site": site.key, "url": f"{ORIGIN}/a/post", "body": "A perfectly ordinary remark."}
    response = client.post("/api/v1/comments", json=body, headers=headers)
    assert response.status_code in (201, 202), response.get_json()
    headers["X-Embed-Token"] = "forged"
    refused = client.post("/api/v1/comments", json=body, headers=headers)
    assert refused.status_code == 401
    assert "log in again" in refused.get_json()["error"]


def test_login_done_hands_over_a_token_only_when_logged_in(client: FlaskClient) -> None:
    page = client.get("/embed/login-done")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert 'data-token=""' in text and "You are not logged in" in text
    assert page.headers["Cache-Control"] == "no-store"


def test_counts_answer_cors_only_for_the_sites_origins(
    client: FlaskClient, factory: Factory, site: Site
) -> None:
    thread = factory.thread(site, url=f"{ORIGIN}/a/counted", comment_count=12)
    query = {"site": site.key, "url": [thread.url, f"{ORIGIN}/a/none"]}
    response = client.get("/embed/counts", query_string=query, headers={"Origin": ORIGIN})
    assert response.get_json() == {"counts": {thread.url: 12, f"{ORIGIN}/a/none": 0}}
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    other = client.get(
        "/embed/counts", query_string=query, headers={"Origin": "https://evil.example"}
    )
    assert "Access-Control-Allow-Origin" not in other.headers
    assert client.get("/embed/counts", query_string={"site": "nope"}).status_code == 404


# --- editing, deleting and liking through the API ---------------------------------------------


def _post(client: FlaskClient, site: Site, token: str, body: str, path: str = "/a/e") -> Any:
    headers = {"X-Embed-Token": token}
    data = {"site": site.key, "url": f"{ORIGIN}{path}", "body": body}
    return client.post("/api/v1/comments", json=data, headers=headers)


def test_author_edits_own_comment_within_the_window(
    client: FlaskClient, factory: Factory, site: Site
) -> None:
    author = factory.user()
    token = embed.embed_token_for(author)
    posted = _post(client, site, token, "The bridge plans look sensible to me.")
    assert posted.status_code == 201
    comment_id = posted.get_json()["comment"]["id"]
    headers = {"X-Embed-Token": token}
    edited = client.patch(
        f"/api/v1/comments/{comment_id}",
        json={"body": "The *bridge* plans look fine."},
        headers=headers,
    )
    assert edited.status_code == 200, edited.get_json()
    answer = edited.get_json()["comment"]
    assert answer["html"].strip() == "<p>The <em>bridge</em> plans look fine.</p>"
    assert answer["edited_at"] is not None
    # The thread page marks it as edited.
    page = thread_url(client, site, f"{ORIGIN}/a/e").get_data(as_text=True)
    assert 'class="comment__edited">edited<' in page


def test_an_edit_into_abuse_is_held_and_leaves_the_count(
    client: FlaskClient, factory: Factory, site: Site
) -> None:
    token = embed.embed_token_for(factory.user())
    comment_id = _post(client, site, token, "Good work by the council here.").get_json()["comment"][
        "id"
    ]
    edited = client.patch(
        f"/api/v1/comments/{comment_id}",
        json={"body": "You are a pathetic moron and an idiot, shut up"},
        headers={"X-Embed-Token": token},
    )
    assert edited.status_code == 202
    assert edited.get_json()["comment"]["status"] in ("pending", "rejected")
    counts = client.get("/embed/counts", query_string={"site": site.key, "url": f"{ORIGIN}/a/e"})
    assert counts.get_json()["counts"][f"{ORIGIN}/a/e"] == 0


def test_others_cannot_edit_or_delete_and_the_window_closes(
    client: FlaskClient, factory: Factory, site: Site
) -> None:
    author_token = embed.embed_token_for(factory.user())
    stranger_token = embed.embed_token_for(factory.user())
    comment_id = _post(client, site, author_token, "A thoughtful remark.").get_json()["comment"][
        "id"
    ]
    url = f"/api/v1/comments/{comment_id}"
    assert client.patch(url, json={"body": "x y z"}).status_code == 401
    stranger = {"X-Embed-Token": stranger_token}
    assert client.patch(url, json={"body": "hijacked"}, headers=stranger).status_code == 404
    assert client.delete(url, headers=stranger).status_code == 404
    assert client.patch(url, json={}, headers={"X-Embed-Token": author_token}).status_code == 422
    # Past the window: the comment was posted ten minutes ago on a five-minute site.
    comment = factory.session.get(embed.Comment, comment_id)
    comment.created_at = comment.created_at - timedelta(minutes=10)
    factory.session.commit()
    late = client.patch(url, json={"body": "too late"}, headers={"X-Embed-Token": author_token})
    assert late.status_code == 403
    assert "5 minutes" in late.get_json()["error"]


def test_author_deletes_own_comment(client: FlaskClient, factory: Factory, site: Site) -> None:
    token = embed.embed_token_for(factory.user())
    comment_id = _post(client, site, token, "Second thoughts coming.", "/a/d").get_json()[
        "comment"
    ]["id"]
    response = client.delete(f"/api/v1/comments/{comment_id}", headers={"X-Embed-Token": token})
    assert response.status_code == 204
    page = thread_url(client, site, f"{ORIGIN}/a/d").get_data(as_text=True)
    assert "Second thoughts coming." not in page
    again = client.delete(f"/api/v1/comments/{comment_id}", headers={"X-Embed-Token": token})
    assert again.status_code == 403


def test_likes_once_per_reader_and_most_liked_sort(
    client: FlaskClient, factory: Factory, site: Site
) -> None:
    thread = factory.thread(site, url=f"{ORIGIN}/a/liked")
    author = factory.user()
    first = factory.comment(thread, author_id=author.id)
    second = factory.comment(thread)
    readers = [embed.embed_token_for(factory.user()) for _ in range(2)]
    for token in readers:
        liked = client.post(f"/api/v1/comments/{second.id}/like", headers={"X-Embed-Token": token})
        assert liked.status_code == 200
    twice = client.post(f"/api/v1/comments/{second.id}/like", headers={"X-Embed-Token": readers[0]})
    assert twice.get_json()["comment"]["like_count"] == 2
    own = client.post(
        f"/api/v1/comments/{first.id}/like",
        headers={"X-Embed-Token": embed.embed_token_for(author)},
    )
    assert own.status_code == 403
    assert client.post(f"/api/v1/comments/{second.id}/like").status_code == 401
    listed = client.get(
        "/api/v1/comments", query_string={"site": site.key, "url": thread.url, "sort": "liked"}
    ).get_json()
    assert [c["id"] for c in listed["comments"]] == [second.id, first.id]
    assert listed["comments"][0]["like_count"] == 2
    unliked = client.delete(
        f"/api/v1/comments/{second.id}/like", headers={"X-Embed-Token": readers[1]}
    )
    assert unliked.get_json()["comment"] == {"id": second.id, "like_count": 1, "liked": False}


def test_language_tag_is_checked(client: FlaskClient, site: Site) -> None:
    page = thread_url(client, site, f"{ORIGIN}/a", lang="de-CH").get_data(as_text=True)
    assert '<html lang="de-CH"' in page
    page = thread_url(client, site, f"{ORIGIN}/a", lang='"><x').get_data(as_text=True)
    assert '<html lang="en"' in page


def test_deletion_by_its_author_is_not_a_moderator_decision(
    client: FlaskClient, factory: Factory, site: Site
) -> None:
    token = embed.embed_token_for(factory.user())
    comment_id = _post(client, site, token, "Posted in haste.", "/a/x").get_json()["comment"]["id"]
    client.delete(f"/api/v1/comments/{comment_id}", headers={"X-Embed-Token": token})
    comment = factory.session.get(embed.Comment, comment_id)
    factory.session.refresh(comment)
    last = comment.decisions[-1]
    assert (str(last.actor_type), last.action, str(last.to_status)) == ("system", None, "deleted")
    assert last.reasons[0]["code"] == "author_deleted"


def test_me_lists_the_readers_own_held_comments_on_the_article(
    client: FlaskClient, factory: Factory, site: Site
) -> None:
    thread = factory.thread(site, url=f"{ORIGIN}/a/held")
    author, other = factory.user(), factory.user()
    mine = factory.comment(thread, author_id=author.id, status=Status.PENDING, html="<p>mine</p>")
    factory.comment(thread, author_id=other.id, status=Status.PENDING, html="<p>theirs</p>")
    factory.comment(thread, author_id=author.id, status=Status.REJECTED, html="<p>gone</p>")
    query = {"site": site.key, "url": thread.url}
    answer = client.get(
        "/embed/me", query_string=query, headers={"X-Embed-Token": embed.embed_token_for(author)}
    ).get_json()
    assert [c["id"] for c in answer["held"]] == [mine.id]
    assert answer["held"][0]["status"] == "pending"
    assert "held" not in client.get("/embed/me", query_string=query).get_json()


def test_https_keeps_the_login_in_a_partitioned_cookie(
    client: FlaskClient, factory: Factory, site: Site
) -> None:
    user = factory.user(display_name="Cookie Reader")
    token = embed.embed_token_for(user)
    xhr = {"X-Requested-With": "fetch"}
    stored = client.post(
        "/embed/session", headers={**xhr, "X-Embed-Token": token}, base_url="https://svc.example"
    )
    assert stored.get_json() == {"stored": True}
    cookie = stored.headers["Set-Cookie"]
    for flag in ("HttpOnly", "Secure", "SameSite=None", "Partitioned"):
        assert flag in cookie
    # The cookie alone signs API requests, but only together with X-Requested-With.
    me = client.get("/embed/me", headers=xhr, base_url="https://svc.example").get_json()
    assert me["user"]["name"] == "Cookie Reader"
    body = {"site": site.key, "url": f"{ORIGIN}/a/c", "body": "Signed by the cookie alone."}
    # The frame's fetch is same-origin: browsers send Origin on every POST.
    same_origin = {**xhr, "Origin": "https://svc.example"}
    posted = client.post(
        "/api/v1/comments", json=body, headers=same_origin, base_url="https://svc.example"
    )
    assert posted.status_code == 201
    forged = client.post("/api/v1/comments", json=body, base_url="https://svc.example")
    # Without the header (all a cross-site form can send) the request is anonymous: a guest.
    assert forged.status_code == 422
    assert "as a guest" in forged.get_json()["error"]
    dropped = client.delete("/embed/session", headers=xhr, base_url="https://svc.example")
    assert "embed_token=;" in dropped.headers["Set-Cookie"]


def test_plain_http_sets_the_cookie_only_on_loopback(client: FlaskClient, factory: Factory) -> None:
    token = embed.embed_token_for(factory.user())
    headers = {"X-Requested-With": "fetch", "X-Embed-Token": token}
    # A plain-HTTP service under a real name: browsers would refuse a Secure cookie anyway.
    public = {"base_url": "http://comments.example"}
    answer = client.post("/embed/session", headers=headers, **public)
    assert answer.get_json() == {"stored": False}
    assert "Set-Cookie" not in answer.headers
    # Loopback is a trustworthy origin: the demo and the browser tests get the HTTPS path.
    for host in ("http://127.0.0.1:5000", "http://localhost:5000"):
        local = client.post("/embed/session", headers=headers, base_url=host)
        assert local.get_json() == {"stored": True}, host
        cookie = local.headers["Set-Cookie"]
        assert "Secure" in cookie and "Partitioned" in cookie and "SameSite=None" in cookie
    assert (
        client.post("/embed/session", headers={"X-Embed-Token": token}, **public).status_code == 400
    )
    bad = client.post("/embed/session", headers={**headers, "X-Embed-Token": "nope"}, **public)
    assert bad.status_code == 401


def test_me_names_the_readers_own_comments_among_the_ids_asked_for(
    client: FlaskClient, factory: Factory, site: Site
) -> None:
    thread = factory.thread(site, url=f"{ORIGIN}/a/mine")
    author, other = factory.user(), factory.user()
    first = factory.comment(thread, author_id=author.id)
    theirs = factory.comment(thread, author_id=other.id)
    second = factory.comment(thread, author_id=author.id)
    unasked = factory.comment(thread, author_id=author.id)
    ids = ",".join(str(c.id) for c in (first, theirs, second))
    answer = client.get(
        "/embed/me",
        query_string={"ids": ids},
        headers={"X-Embed-Token": embed.embed_token_for(author)},
    ).get_json()
    assert answer["mine"] == sorted([first.id, second.id])
    assert unasked.id not in answer["mine"]
    assert "held" in answer and answer["held"] == []  # no site and url: no held comments asked
    assert "mine" not in client.get("/embed/me", query_string={"ids": ids}).get_json()


def test_thread_page_names_no_author_beyond_the_shown_name(
    client: FlaskClient, factory: Factory, site: Site
) -> None:
    # The page is cached and the same for every reader: whose comment is whose comes from
    # /embed/me, never from the page.
    thread = factory.thread(site, url=f"{ORIGIN}/a/anonymous-page")
    author = factory.user(display_name="Shown Name")
    factory.comment(thread, author_id=author.id, author_name="Shown Name")
    page = thread_url(client, site, thread.url).get_data(as_text=True)
    assert "Shown Name" in page
    assert "data-author-id" not in page


def test_widget_assets_are_fingerprinted_and_kept_a_year(client: FlaskClient, site: Site) -> None:
    page = thread_url(client, site, f"{ORIGIN}/a/assets").get_data(as_text=True)
    found = re.findall(
        r'(?:href|src)="(/static/(?:css/thread\.css|js/thread\.js)\?v=([0-9a-f]{12}))"', page
    )
    assert len(found) == 2, page[:600]
    for url, version in found:
        answer = client.get(url)
        assert answer.status_code == 200
        assert hashlib.sha256(answer.get_data()).hexdigest()[:12] == version
        cache = answer.headers["Cache-Control"]
        assert "max-age=31536000" in cache and "immutable" in cache and "public" in cache
        answer.close()
    # Without the digest, or with an old one, the file is revalidated as before.
    plain = client.get("/static/js/thread.js")
    assert "max-age=31536000" not in plain.headers.get("Cache-Control", "")
    plain.close()
    stale = client.get("/static/js/thread.js?v=000000000000")
    assert "max-age=31536000" not in stale.headers.get("Cache-Control", "")
    stale.close()


@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": True}])
def test_session_endpoint_works_with_csrf_protection_on(
    client: FlaskClient, factory: Factory
) -> None:
    # The frame has no CSRF token to send; X-Requested-With (required) is what a cross-site
    # form cannot forge. With CSRF on (as in production) this answered 400 before.
    token = embed.embed_token_for(factory.user())
    headers = {"X-Requested-With": "fetch", "X-Embed-Token": token}
    assert client.post("/embed/session", headers=headers).get_json() == {"stored": True}
    assert client.delete("/embed/session", headers=headers).status_code == 200
    assert client.post("/embed/session", headers={"X-Embed-Token": token}).status_code == 400
