"""Abuse of the classifier: disguised insults and spam, and hidden links, posted through the API.

"Held" is the product's decision: each comment goes through ``POST /api/v1/comments`` on a site
with the default thresholds, so the normaliser, the shipped model, the policy and the link
counter all take part. Only rules that would hold every comment (the first-comment hold, the
flood and duplicate limits, earned trust that relaxes the thresholds) are turned off.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient

from auth.models import ApiToken, User
from classifier.obfuscate import obfuscate
from moderation.extensions import db
from moderation.models import Site
from moderation.policy import SiteSettings, count_links
from tests.conftest import APP_ENVIRONMENT, TestDatabase, dispose, empty_tables, make_test_app

# Insults and threats written for this test (not taken from the training sets). Each must be
# held in clear text; the test checks that before it measures anything else.
ABUSIVE = [
    "You are a worthless idiot and everybody here knows it",
    "Shut up you pathetic moron",
    "Nobody cares what a brainless loser like you thinks",
    "The writer of this garbage is a complete imbecile",
    "Go away you stupid troll, you disgusting creep",
    "You are human trash and should be ashamed",
    "What a dumb clown, get lost",
    "I will find you and hurt you, you scumbag",
    "Keep talking and I will beat you senseless, you coward",
    "You ugly fat pig, nobody wants you here",
    "Only an absolute moron would vote for this idiot",
    "You are a lying piece of garbage",
    "Shut your stupid mouth you pathetic fool",
    "Everyone who comments here is a brain dead idiot",
    "You are a disgusting parasite and a liar",
    "Get lost you useless jerk",
    "The mayor is a corrupt scumbag and an idiot",
    "You deserve to die, you miserable rat",
    "I hope someone punches your stupid face",
    "Crawl back under your rock, you pathetic loser",
    "This reporter is a clueless moron who cannot write",
    "Your mother should be ashamed of raising such an idiot",
    "You are too stupid to breathe",
    "Kill yourself you worthless creep",
    "Go cry somewhere else, you whiny little loser",
    "What an idiotic, moronic comment from a total fool",
    "You are a dumb ignorant hick",
    "Nobody asked for your opinion, stupid",
    "Shut up, idiot, you know nothing",
    "You people are scum and deserve nothing",
]
# Spam with one link, address or phone number each: below the default link limit (2), so only
# the spam score can hold it.
SPAM = [
    "Make money fast from home, visit http://cash-now.example.biz today",
    "WIN a FREE iPhone!!! click www.prize-winner.example.com to claim",
    "Cheap pills, no prescription, order at pharmacy-deals.example.net now",
    "Check out my channel and subscribe!!! http://youtu.be/abc123",
    "Earn $500 a day online, email me at richquick@example.net",
    "Hot singles want to meet you, sign up free at http://dating.example.xyz",
    "Buy cheap followers and likes at http://followers.example.shop best price",
    "Congratulations you won a cash prize, call 555-010-4477 to claim now",
]
KINDS = ("leet", "spacing", "homoglyph", "zero_width", "mixed")
VARIANTS = 2  # disguised versions of each phrase per kind
# Invisible characters are dropped before anything else reads the text, so a zero-width
# variant is the clear phrase again: every one must be held. Leetspeak, spacing and look-alike
# letters are undone by rules that can misread a word (is "ι" an "i" or an "l"?): at most one in
# twenty may slip. "mixed" pairs two kinds, often with masks ("h#man"), which the design holds
# to 0.91 (docs/classifier.md, robustness) and tests/classifier/test_robustness.py to 0.9.
REQUIRED = {"leet": 0.95, "spacing": 0.95, "homoglyph": 0.95, "zero_width": 1.0, "mixed": 0.90}
CLASSIFIER_HOLDS = {"abuse_score", "spam_score", "abuse_reject", "spam_reject"}

# Spam whose single link is disguised so that a reader still finds (or is sent to) it.
HIDDEN_LINKS = {
    "fullwidth letters and dot": "Cheap watches at ｃｈｅａｐ－ｗａｔｃｈｅｓ．ｃｏｍ today",
    "fullwidth dot": "Cheap watches at cheapwatches．com today",
    "ideographic full stop": "Cheap watches at cheapwatches。com today",
    "halfwidth ideographic full stop": "Cheap watches at cheapwatches｡com today",
    "fullwidth scheme": "Cheap watches at ｈｔｔｐｓ：／／ｃｈｅａｐ．ｅｘａｍｐｌｅ／ｘ today",
    "zero-width inside the domain": "Cheap watches at cheap\u200bwatches\u200c.\u200dcom today",
    "zero-width inside the scheme": "Cheap watches at h\u200bt\u2060tp://cheap.example/x today",
    "soft hyphens": "Cheap watches at cheap\u00adwatches.c\u00adom today",
    "homoglyph TLD": "Cheap watches at cheapwatches.сom today",
    "homoglyph host and TLD": "Cheap watches at сheapwatсhes.сом today",
    "homoglyph www": "Cheap watches at ԝԝԝ.cheapwatches.net today",
    "circled letters": "Cheap watches at ⓒⓗⓔⓐⓟ.ⓒⓞⓜ today",
    "mathematical bold": "Cheap watches at 𝐜𝐡𝐞𝐚𝐩𝐰𝐚𝐭𝐜𝐡𝐞𝐬.𝐜𝐨𝐦 today",
    "accents on the TLD": "Cheap watches at cheapwatches.c\u0301o\u0308m today",
    "hxxp": "Cheap watches at hxxp://cheapwatches.example/deal today",
    "hxxps and [:] [.]": "Cheap watches at hxxps[:]//cheapwatches[.]example/deal today",
    "[.]": "Cheap watches at cheapwatches[.]com today",
    "(dot)": "Cheap watches at cheapwatches(dot)com today",
    "spelled dot": "Cheap watches at cheapwatches dot com today",
    "bidi isolate in the host": "Cheap watches at cheap\u2066watches\u2069.com today",
    "bidi override around the host": "Cheap watches at \u202dcheapwatches.com\u202c today",
    "right-to-left mark": "Cheap watches at cheapwatches\u200f.com today",
    "Markdown link with innocent text": (
        "Cheap watches [the council report](http://cheapwatches.example/deal) today"
    ),
    "Markdown reference link": (
        "Cheap watches [read this][1] today\n\n[1]: http://cheapwatches.example/deal"
    ),
    "HTML anchor with innocent text": (
        'Cheap watches <a href="http://cheapwatches.example/deal">the report</a> today'
    ),
    "autolink": "Cheap watches <http://cheapwatches.example/deal> today",
    "punycode": "Cheap watches at http://xn--80ak6aa92e.com/deal today",
    "bare punycode": "Cheap watches at xn--80ak6aa92e.com today",
    "IDN with a scheme": "Cheap watches at http://дешевые-часы.рф/deal today",
    "bare IDN with a path": "Cheap watches at дешевые-часы.рф/deal today",
    "bare IDN host, common TLD": "Cheap watches at часы.com today",
    "bare IP address with a path": "Cheap watches at 192.0.2.44/deal today",
    "protocol-relative": "Cheap watches at //cheapwatches.example/deal today",
    "backslash path": "Cheap watches at cheapwatches.example\\deal today",
}
# Comments that must not count as links (the fixes above must not flag ordinary prose).
NOT_LINKS = [
    "Привет.Как дела у всех на этой неделе",
    "The council met at 10.30 and voted 5-4; see page 2.",
    "Version 1.2.3.4 of the app is out",
    "I wrote to the mayor at mayor@example.org",
    "Well.that was a surprise。本当に",
]


@dataclass(frozen=True)
class Posted:
    """One comment as the API answered it."""

    text: str
    code: int
    status: str
    reasons: tuple[str, ...]

    @property
    def held_by_classifier(self) -> bool:
        """Not published, and a score is among the reasons."""
        return self.status != "published" and bool(CLASSIFIER_HOLDS.intersection(self.reasons))


@pytest.fixture(scope="module")
def site_app(
    database: TestDatabase, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Flask, str, str]]:
    """One app for the module: a site at the default thresholds and a commenter's token."""
    with pytest.MonkeyPatch.context() as env:
        for name in APP_ENVIRONMENT:
            env.delenv(name, raising=False)
        app = make_test_app(database, tmp_path_factory.mktemp("classifier-abuse"))
        with app.app_context():
            empty_tables()
            # Only rules that would hold every comment of a steady author are turned off.
            settings = SiteSettings(
                first_comments_held=0, flood_seconds=0, duplicate_minutes=0, trusted_after=0
            )
            site = Site(name="Gazette", origins=["https://news.example"])
            site.moderation_settings = settings
            user = User(email="commenter@example.org", display_name="Commenter")
            token, plain = ApiToken.issue(user, name="test")
            db.session.add_all([site, user, token])
            db.session.commit()
            key = site.key
        try:
            yield app, key, plain
        finally:
            with app.app_context():
                empty_tables()
            dispose(app)


def post_all(client: FlaskClient, site: str, token: str, texts: list[str]) -> list[Posted]:
    """POST every text as a comment; the API's answers in order."""
    answers = []
    for n, text in enumerate(texts):
        response = client.post(
            "/api/v1/comments",
            json={"site": site, "url": f"https://news.example/articles/{n % 7}", "body": text},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code in (201, 202), response.get_data(as_text=True)
        comment = response.json["comment"]
        reasons = tuple(r["code"] for r in comment.get("reasons", ()))
        answers.append(Posted(text, response.status_code, comment["status"], reasons))
    return answers


def disguised(phrases: list[str], kind: str) -> list[str]:
    """``VARIANTS`` disguised versions of every phrase, from a seed fixed per kind."""
    rng = random.Random(f"h7-{kind}")
    return [obfuscate(text, kind, rng) for text in phrases for _ in range(VARIANTS)]


@pytest.fixture(scope="module")
def results(site_app: tuple[Flask, str, str]) -> dict[str, list[Posted]]:
    """Clear and disguised abuse and spam, each posted once through the API."""
    app, site, token = site_app
    client = app.test_client()
    results = {
        "clear abuse": post_all(client, site, token, ABUSIVE),
        "clear spam": post_all(client, site, token, SPAM),
    }
    for kind in KINDS:
        results[f"abuse {kind}"] = post_all(client, site, token, disguised(ABUSIVE, kind))
        results[f"spam {kind}"] = post_all(client, site, token, disguised(SPAM, kind))
    return results


def test_every_phrase_is_held_in_clear_text(results: dict[str, list[Posted]]) -> None:
    for group in ("clear abuse", "clear spam"):
        missed = [p for p in results[group] if not p.held_by_classifier]
        assert not missed, f"{group}: not held by the classifier: {missed}"
    assert all(p.code == 202 and p.status == "pending" for p in results["clear abuse"])
    assert all("abuse_score" in p.reasons for p in results["clear abuse"])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("task", ["abuse", "spam"])
def test_disguised_phrases_are_still_held(
    results: dict[str, list[Posted]], task: str, kind: str
) -> None:
    posted = results[f"{task} {kind}"]
    phrases = ABUSIVE if task == "abuse" else SPAM
    assert len(posted) == len(phrases) * VARIANTS
    # Each variant really is disguised (else the measure would flatter the normaliser).
    assert sum(p.text not in phrases for p in posted) >= 0.9 * len(posted)
    held = sum(p.held_by_classifier for p in posted)
    missed = [p.text for p in posted if not p.held_by_classifier]
    assert held / len(posted) >= REQUIRED[kind], f"{held}/{len(posted)} held; missed: {missed}"


@pytest.mark.parametrize("trick", list(HIDDEN_LINKS))
def test_link_hidden_by_a_unicode_trick_still_counts(trick: str) -> None:
    assert count_links(HIDDEN_LINKS[trick]) == 1


def test_prose_is_not_counted_as_links() -> None:
    assert [count_links(text) for text in NOT_LINKS] == [0] * len(NOT_LINKS)


def test_hidden_links_are_held_by_the_sites_link_limit(
    site_app: tuple[Flask, str, str],
) -> None:
    app, site, token = site_app
    with app.app_context():
        row = db.session.scalar(db.select(Site).where(Site.key == site))
        assert row is not None
        previous = row.moderation_settings
        row.moderation_settings = previous.with_updates({"max_links": 0})
        db.session.commit()
    try:
        client = app.test_client()
        texts = list(HIDDEN_LINKS.values())
        posted = post_all(client, site, token, texts)
        clean = post_all(client, site, token, ["Thanks for the report on the council budget."])
    finally:
        with app.app_context():
            row = db.session.scalar(db.select(Site).where(Site.key == site))
            assert row is not None
            row.moderation_settings = previous
            db.session.commit()
    not_held = [
        trick
        for trick, p in zip(HIDDEN_LINKS, posted, strict=True)
        if p.status != "pending" or "too_many_links" not in p.reasons
    ]
    assert not_held == [], f"hidden links published past max_links=0: {not_held}"
    # The limit itself is what holds them: a comment without a link is published.
    assert clean[0].status == "published", clean
