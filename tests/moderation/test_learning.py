"""Learning from moderators' decisions: labels, retrain promotion and refusal, versions, rollback.

The full training sets take minutes, so every retrain here runs on a tiny generated data folder
(in the formats ``classifier.data`` reads) and a base model trained on it in the test run with a
small recipe; the candidate inherits that recipe from the active model.
"""

from __future__ import annotations

import csv
import json
import random
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa
from click.testing import Result
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy.orm import scoped_session

import classifier
from auth.models import ApiToken, Role, SiteMembership, SiteRole
from classifier.data import available_sources, load_sources
from classifier.model import Recipe, train
from classifier.persist import save_model
from moderation import jobs, scoring, service
from moderation.db import utcnow
from moderation.learning import DECISIONS_SOURCE, ModelState, decision_labels, split_recent
from moderation.models import ActorType, Comment, Decision, ModelVersion
from moderation.policy import SiteSettings
from moderation.reports import NewReport, report_comment
from moderation.status import Action, Status
from tests.classifier.conftest import TOPICS
from tests.conftest import TestDatabase, dispose, make_test_app, redis_reachable
from tests.moderation.test_jobs import REDIS, queued, run_worker

if TYPE_CHECKING:
    from tests.conftest import Factory

DBSession = scoped_session[Any]

# Small hashed feature spaces: a model trains in a fraction of a second.
SMALL = Recipe(word_bits=14, char_bits=15, calibration_folds=2)

ENDINGS = ["", " Regards.", " Just my view.", " Cheers!", " Thanks.", " Well said."]
BASE_CLEAN = [
    "I think {t} is a good idea.",
    "Has anyone read the report on {t}?",
    "Thanks for covering {t}, very useful.",
    "I disagree about {t}, the numbers look off.",
    "My family has followed {t} for years.",
    "Could the paper explain {t} in more detail?",
]
GENERIC_INSULTS = ["idiot", "moron", "stupid", "loser", "clown", "imbecile"]
BASE_ABUSE = [
    "you are a {i} and so is everyone who agrees with you about {t}",
    "only a {i} would write this about {t}",
    "shut up you {i}, nobody cares about {t}",
    "what a {i}, go away and take {t} with you",
]
BASE_SPAM = [
    "Make money fast from home, visit http://cash{n}.example.biz now",
    "WIN a FREE iPhone!!! click www.prize{n}.example.com",
    "Cheap pills, no prescription, call 555-010-{n:04d}",
    "Earn $500 a day, email me at rich{n}@example.net",
]
BASE_HAM = [
    "Are we still meeting at {h} tonight?",
    "Running late, see you at {h}.",
    "Can you pick up bread on the way to {h}?",
    "Call me when you get to {h}.",
]
PLACES = ["the station", "the pub", "mum's", "the office", "the gym", "the park", "the shop"]

# The site's own vocabulary, which the base data never shows.
SITE_SLURS = ["pillock", "wazzock", "numpty", "plonker", "gobdaw", "muppet"]
SITE_ABUSE = [
    "the plan for {t} was dreamt up by some {s}",
    "any {s} could run {t} better than this",
    "{s} alert: another letter about {t}",
    "typical {s} nonsense about {t} again",
]
# The site's readers also write what every comment section sees.
SITE_GENERIC_ABUSE = BASE_ABUSE
SITE_CLEAN = [
    "My street is affected by {t}, thanks for the update.",
    "Will there be a public meeting on {t}?",
    "Good to see {t} finally discussed here.",
    "We need more reporting like this on {t}.",
    *BASE_CLEAN,
]
SITE_SPAM = [
    "Sell your gold at Harbour Pawn today, ring 0800 {n} for a quote",
    "Harbour Pawn pays cash for watches, visit harbourpawn{n}.example",
]


def unique(rng: random.Random, make: Any, seen: set[str]) -> str:
    """A text from ``make(rng)`` not produced before."""
    while True:
        text = make(rng)
        if text not in seen:
            seen.add(text)
            return text


def write_base_data(folder: Path) -> Path:
    """A tiny data folder: Kaggle-insults-style abuse and SMS-style spam files."""
    rng = random.Random(7)
    seen: set[str] = set()
    (folder / "kaggle-insults").mkdir(parents=True)
    with (folder / "kaggle-insults" / "train.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Insult", "Date", "Comment"])
        for _ in range(160):
            abuse = unique(
                rng,
                lambda r: (
                    r.choice(BASE_ABUSE).format(i=r.choice(GENERIC_INSULTS), t=r.choice(TOPICS))
                    + r.choice(ENDINGS)
                ),
                seen,
            )
            clean = unique(
                rng,
                lambda r: r.choice(BASE_CLEAN).format(t=r.choice(TOPICS)) + r.choice(ENDINGS),
                seen,
            )
            writer.writerow([1, "", f'"{abuse}"'])
            writer.writerow([0, "", f'"{clean}"'])
    (folder / "sms-spam-collection").mkdir()
    lines = []
    for k in range(100):
        lines.append("spam\t" + rng.choice(BASE_SPAM).format(n=1000 + k))
        ham = unique(
            rng, lambda r: r.choice(BASE_HAM).format(h=r.choice(PLACES)) + r.choice(ENDINGS), seen
        )
        lines.append(f"ham\t{ham}")
    (folder / "sms-spam-collection" / "SMSSpamCollection").write_text("\n".join(lines) + "\n")
    return folder


def site_comments(n: int, seed: int) -> list[tuple[str, Action]]:
    """What a site's readers write and what its moderators decide, in order."""
    rng = random.Random(seed)
    seen: set[str] = set()
    items = []
    for k in range(n):
        roll = rng.random()
        if roll < 0.28:
            text = unique(
                rng,
                lambda r: (
                    r.choice(SITE_ABUSE).format(s=r.choice(SITE_SLURS), t=r.choice(TOPICS))
                    + r.choice(ENDINGS)
                ),
                seen,
            )
            items.append((text, Action.REJECT))
        elif roll < 0.40:
            text = unique(
                rng,
                lambda r: (
                    r.choice(SITE_GENERIC_ABUSE).format(
                        i=r.choice(GENERIC_INSULTS), t=r.choice(TOPICS)
                    )
                    + r.choice(ENDINGS)
                ),
                seen,
            )
            items.append((text, Action.REJECT))
        elif roll < 0.85:
            text = unique(
                rng,
                lambda r: r.choice(SITE_CLEAN).format(t=r.choice(TOPICS)) + r.choice(ENDINGS),
                seen,
            )
            items.append((text, Action.APPROVE))
        else:
            items.append((rng.choice(SITE_SPAM).format(n=4000 + k), Action.SPAM))
    return items


def is_local(text: str) -> bool:
    """Whether a text uses the site's own vocabulary (its slurs or its readers' phrases)."""
    phrases = [template.split("{t}")[0] for template in SITE_CLEAN[:4]]
    return any(slur in text for slur in SITE_SLURS) or text.startswith(tuple(phrases))


FLIP = {Action.APPROVE: Action.REJECT, Action.REJECT: Action.APPROVE, Action.SPAM: Action.SPAM}


def flipped(items: list[tuple[str, Action]], upto: int | None = None) -> list[tuple[str, Action]]:
    """Approve and reject swapped (in the first ``upto`` items, or all)."""
    end = len(items) if upto is None else upto
    return [(text, FLIP[a]) if k < end else (text, a) for k, (text, a) in enumerate(items)]


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny base training sets."""
    return write_base_data(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def base_model_file(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A base model trained on the tiny sets (standing in for the shipped model)."""
    examples = load_sources(available_sources(data_dir, shippable_only=True), data_dir)
    path = tmp_path_factory.mktemp("base") / "base.skops"
    save_model(train(examples, SMALL), path)
    return path


@pytest.fixture
def base_version(db_session: DBSession, base_model_file: Path) -> str:
    """The base model recorded as the active version; its version."""
    version = str(classifier.read_meta(base_model_file)["version"])
    db_session.add(
        ModelVersion(
            version=version,
            path=str(base_model_file),
            state=ModelState.ACTIVE,
            promoted_at=utcnow() - timedelta(days=1),
        )
    )
    db_session.commit()
    return version


@pytest.fixture(autouse=True)
def fresh_active_cache() -> Iterator[None]:
    """Every test (a new app) reads the active version from its own database."""
    scoring.forget_active()
    yield
    scoring.forget_active()


class Desk:
    """A site with a moderator, a commenter (with a token) and an article."""

    def __init__(self, factory: Factory, db_session: DBSession) -> None:
        self.session = db_session
        self.factory = factory
        self.site = factory.site(
            name="Gazette",
            settings=SiteSettings().with_updates({"mode": "pre", "flood_seconds": 0}).to_dict(),
        )
        self.moderator = factory.user(display_name="Mo Derator")
        db_session.add(SiteMembership(user=self.moderator, site=self.site, role=SiteRole.MODERATOR))
        self.commenter = factory.user(display_name="Cora Commenter")
        token, self.commenter_token = ApiToken.issue(self.commenter, name="test")
        moderator_token, self.moderator_token = ApiToken.issue(self.moderator, name="test")
        db_session.add_all([token, moderator_token])
        db_session.commit()
        self.thread = factory.thread(self.site)

    def decide(self, items: list[tuple[str, Action]]) -> list[Comment]:
        """Held comments with these texts, each decided by the moderator, in order."""
        held = [
            Comment(
                thread_id=self.thread.id,
                site_id=self.site.id,
                author_name="Reader",
                body=text,
                html=f"<p>{text}</p>",
                status=Status.PENDING,
                body_hash=f"{k}",
            )
            for k, (text, _) in enumerate(items)
        ]
        self.session.add_all(held)
        self.session.commit()
        return [
            service.decide_comment(comment.id, action, self.moderator)
            for comment, (_, action) in zip(held, items, strict=True)
        ]

    def post(self, client: FlaskClient, body: str) -> dict[str, Any]:
        """A comment posted through the API (held: the site pre-moderates)."""
        response = client.post(
            "/api/v1/comments",
            json={"site": self.site.key, "url": self.thread.url, "body": body},
            headers={"Authorization": f"Bearer {self.commenter_token}"},
        )
        assert response.status_code == 202, response.json
        return response.json["comment"]

    def queue(self, client: FlaskClient) -> list[dict[str, Any]]:
        """The moderation queue as the API shows it."""
        response = client.get(
            "/api/v1/moderation/queue",
            query_string={"site": self.site.key},
            headers={"Authorization": f"Bearer {self.moderator_token}"},
        )
        assert response.status_code == 200, response.json
        return response.json["comments"]


@pytest.fixture
def desk(factory: Factory, db_session: DBSession) -> Desk:
    """The site and its people."""
    return Desk(factory, db_session)


def run(runner: FlaskCliRunner, *args: str) -> Result:
    """``flask classifier ...``."""
    return runner.invoke(args=["classifier", *args])


def retrain(runner: FlaskCliRunner, data_dir: Path, *extra: str) -> tuple[Result, dict[str, Any]]:
    """Run retrain on the tiny data; the result and the JSON it printed."""
    result = run(runner, "retrain", "--data", str(data_dir), *extra)
    assert result.exit_code in (0, 1), (result.exit_code, result.stderr)
    return result, json.loads(result.stdout)


def states(db_session: DBSession) -> dict[str, str]:
    """Version -> state, as stored now."""
    db_session.expire_all()
    return dict(db_session.execute(sa.select(ModelVersion.version, ModelVersion.state)).all())


@pytest.fixture
def promoted(
    runner: FlaskCliRunner,
    desk: Desk,
    data_dir: Path,
    base_version: str,
    db_session: DBSession,
) -> dict[str, Any]:
    """A candidate that learnt the site's words and was promoted over the base model."""
    desk.decide(site_comments(220, seed=11))
    result, report = retrain(runner, data_dir)
    assert result.exit_code == 0, result.stderr
    assert report["promoted"] is True
    return report


# --- labels -------------------------------------------------------------------------------------


def test_labels_come_only_from_the_sites_moderators(
    desk: Desk, factory: Factory, db_session: DBSession, app: Flask
) -> None:
    approved, rejected, spam = desk.decide(
        [
            ("A fair point about the bridge.", Action.APPROVE),
            ("You pillock.", Action.REJECT),
            ("Harbour Pawn buys gold.", Action.SPAM),
        ]
    )
    # Readers report a published comment until it is hidden: reports and the system's
    # hiding are no labels.
    reported = factory.comment(desk.thread, body="The mayor is a disgrace to the town.")
    for _ in range(5):  # the default hides at 5
        reader = factory.user(created_at=utcnow() - timedelta(days=400))
        report_comment(NewReport(comment_id=reported.id, reporter=reader, reason="abuse"))
    db_session.expire_all()
    hidden = db_session.get(Comment, reported.id)
    assert (hidden.report_count, hidden.status, hidden.needs_review) == (5, Status.PENDING, True)
    assert all(
        d.actor_type == ActorType.SYSTEM
        for d in db_session.scalars(sa.select(Decision).where(Decision.comment_id == reported.id))
    )
    # A "decision" by someone who moderates nothing (a reader) is no label either ...
    stranger = factory.comment(desk.thread, body="Nothing to see here.", status=Status.PENDING)
    db_session.add(
        Decision(
            comment_id=stranger.id,
            site_id=desk.site.id,
            actor_type=ActorType.USER,
            actor_id=desk.commenter.id,
            action=Action.REJECT,
            from_status=Status.PENDING,
            to_status=Status.REJECTED,
        )
    )
    # ... nor is a moderator of another site's; an admin's is.
    other = factory.site(name="Other")
    outsider = factory.user()
    admin = factory.user(role=Role.ADMIN)
    db_session.add(SiteMembership(user=outsider, site=other, role=SiteRole.MODERATOR))
    db_session.commit()
    by_outsider = factory.comment(desk.thread, body="Outsider's pick.", status=Status.PENDING)
    db_session.add(
        Decision(
            comment_id=by_outsider.id,
            site_id=desk.site.id,
            actor_type=ActorType.USER,
            actor_id=outsider.id,
            action=Action.APPROVE,
            from_status=Status.PENDING,
            to_status=Status.PUBLISHED,
        )
    )
    db_session.commit()
    by_admin = factory.comment(desk.thread, body="Admin's call.", status=Status.PENDING)
    service.decide_comment(by_admin.id, Action.REJECT, admin)
    # The latest moderator's word wins: an undo (back to pending) leaves no label.
    undone = desk.decide([("Changed my mind about this one.", Action.APPROVE)])[0]
    db_session.add(
        Decision(
            comment_id=undone.id,
            site_id=desk.site.id,
            actor_type=ActorType.USER,
            actor_id=desk.moderator.id,
            action=None,
            from_status=Status.PUBLISHED,
            to_status=Status.PENDING,
        )
    )
    db_session.commit()

    labels = decision_labels()
    assert [(label.comment_id, label.spam, label.abuse) for label in labels] == [
        (approved.id, 0, 0),
        (rejected.id, None, 1),
        (spam.id, 1, None),
        (by_admin.id, None, 1),
    ]
    assert {label.site_key for label in labels} == {desk.site.key}
    assert labels[1].example(3.0).source == DECISIONS_SOURCE
    assert labels[1].example(3.0).weight == 3.0
    assert decision_labels([other.key]) == []


def test_recent_slice_is_the_newest(desk: Desk) -> None:
    desk.decide(site_comments(10, seed=3))
    labels = decision_labels()
    older, recent = split_recent(labels)
    assert (len(older), len(recent)) == (8, 2)
    assert max(x.decided_at for x in older) <= min(x.decided_at for x in recent)
    older, recent = split_recent(labels, recent_days=1, now=utcnow() + timedelta(days=2))
    assert (len(older), len(recent)) == (10, 0)


# --- retrain ------------------------------------------------------------------------------------


def test_retrain_promotes_a_candidate_that_learnt_the_site(
    promoted: dict[str, Any],
    base_version: str,
    db_session: DBSession,
    app: Flask,
    client: FlaskClient,
    desk: Desk,
) -> None:
    new = promoted["version"]
    assert promoted["state"] == "active" and promoted["compared_with"] == base_version
    assert promoted["reasons"] == []
    assert states(db_session) == {base_version: "retired", new: "active"}
    # Better on the recent decisions it never trained on, not worse on the fixed sets.
    recent = {row["task"]: row for row in promoted["metrics"]["recent"]["sets"]}
    assert recent["abuse"]["candidate"] > recent["abuse"]["active"]
    assert promoted["metrics"]["fixed"]["candidate_not_worse"] is True
    assert {row["set"] for row in promoted["metrics"]["fixed"]["sets"]} == {
        "kaggle-insults",
        "sms-spam-collection",
    }
    decisions = promoted["training"]["decisions"]
    assert decisions["older"]["n"] + decisions["recent"]["n"] + decisions["left_out"] == 220
    assert decisions["recent"]["n"] == 44
    assert decisions["left_out"] < 10  # the same text in the fixed sets is not learnt from
    assert decisions["older"]["to"] <= decisions["recent"]["from"]
    # A text the base sets label the other way loses that label (classifier.data.deduplicate).
    assert decisions["older"]["n"] - 5 < decisions["learnt"] <= decisions["older"]["n"]
    row = db_session.scalar(sa.select(ModelVersion).where(ModelVersion.version == new))
    assert row.path == f"models/{new}.skops"
    assert (Path(app.instance_path) / row.path).is_file()
    assert row.training["base"]["sets"] == ["sms-spam-collection", "kaggle-insults"]
    assert row.metrics["compared_with"] == base_version
    assert row.promoted_at is not None

    # New comments are scored by the promoted model, and the queue says so.
    posted = desk.post(client, "any numpty could run the bus routes better than this")
    comment = db_session.get(Comment, posted["id"])
    assert comment.model_version == new
    (item,) = desk.queue(client)
    assert item["id"] == posted["id"] and item["model_version"] == new


def test_retrain_shows_progress(
    runner: FlaskCliRunner, desk: Desk, data_dir: Path, base_version: str
) -> None:
    desk.decide(site_comments(120, seed=12))
    result, report = retrain(runner, data_dir)
    assert "moderator decisions: 96 to learn from, 24 recent ones held out" in result.stderr
    assert "training abuse" in result.stderr
    assert "training the control model" in result.stderr
    assert "on the fixed evaluation sets" in result.stderr
    assert report["training"]["decisions"]["weight"] == 10.0


def test_candidate_trained_on_flipped_labels_is_refused(
    runner: FlaskCliRunner,
    desk: Desk,
    data_dir: Path,
    base_version: str,
    db_session: DBSession,
    client: FlaskClient,
) -> None:
    # Every approval recorded as a rejection and back: the recent slice agrees with the poison,
    # so only the fixed evaluation sets can catch it.
    desk.decide(flipped(site_comments(220, seed=11)))
    result, report = retrain(runner, data_dir)
    assert result.exit_code == 1
    assert report["promoted"] is False and report["state"] == "refused"
    assert any("on the fixed evaluation set kaggle-insults/abuse" in r for r in report["reasons"])
    assert "Refused" in result.stderr and "kaggle-insults/abuse" in result.stderr
    assert states(db_session) == {base_version: "active", report["version"]: "refused"}
    posted = desk.post(client, "Will there be a public meeting on the new bridge?")
    assert db_session.get(Comment, posted["id"]).model_version == base_version


def test_candidate_poisoned_on_the_sites_own_words_is_refused(
    runner: FlaskCliRunner, desk: Desk, data_dir: Path, base_version: str, db_session: DBSession
) -> None:
    # Older decisions flipped only on the site's own vocabulary, the recent 44 honest: nothing
    # the fixed sets hold changes, so only the recent decisions can catch it.
    items = site_comments(220, seed=11)
    desk.decide(
        [
            (text, FLIP[action]) if k < 176 and is_local(text) else (text, action)
            for k, (text, action) in enumerate(items)
        ]
    )
    result, report = retrain(runner, data_dir)
    assert result.exit_code == 1 and report["state"] == "refused"
    assert report["metrics"]["fixed"]["candidate_not_worse"] is True
    (reason,) = report["reasons"]
    assert reason.startswith("worse on the 44 recent decisions for abuse: ROC AUC")
    recent = {row["task"]: row for row in report["metrics"]["recent"]["sets"]}
    assert recent["abuse"]["candidate"] < recent["abuse"]["active"]
    assert states(db_session) == {base_version: "active", report["version"]: "refused"}


def test_force_promotes_despite_a_refusal(
    runner: FlaskCliRunner, desk: Desk, data_dir: Path, base_version: str, db_session: DBSession
) -> None:
    desk.decide(flipped(site_comments(220, seed=11)))
    result, report = retrain(runner, data_dir, "--force")
    assert result.exit_code == 0 and report["promoted"] is True
    assert report["reasons"] and report["metrics"]["forced"] is True
    assert "despite" in result.stderr
    assert states(db_session)[report["version"]] == "active"


def test_retrain_refuses_bad_requests(
    runner: FlaskCliRunner,
    desk: Desk,
    data_dir: Path,
    base_version: str,
    tmp_path: Path,
    db_session: DBSession,
) -> None:
    desk.decide(site_comments(8, seed=5))
    few = run(runner, "retrain", "--data", str(data_dir))
    assert few.exit_code == 2 and "at least 10 are needed" in few.stderr
    unknown = run(runner, "retrain", "--data", str(data_dir), "--site", "nope")
    assert unknown.exit_code == 2 and "no site with the key 'nope'" in unknown.stderr
    missing = run(runner, "retrain", "--data", str(tmp_path / "none"))
    assert missing.exit_code == 2 and "No training sets at" in missing.stderr
    assert run(runner, "retrain", "--weight", "0").exit_code == 2
    # Only approvals recently: nothing to show that a candidate is better.
    desk.decide([(f"Fine piece number {k} on the bridge.", Action.APPROVE) for k in range(10)])
    one_sided = run(runner, "retrain", "--data", str(data_dir), "--recent-days", "1")
    assert one_sided.exit_code == 2
    assert "Only 0 older moderator decisions" in one_sided.stderr
    assert states(db_session) == {base_version: "active"}


def test_site_filter_learns_from_that_site_only(
    runner: FlaskCliRunner,
    desk: Desk,
    factory: Factory,
    data_dir: Path,
    base_version: str,
) -> None:
    desk.decide(site_comments(60, seed=21))
    other = factory.site(name="Other")
    mod = factory.user()
    factory.session.add(SiteMembership(user=mod, site=other, role=SiteRole.MODERATOR))
    factory.session.commit()
    thread = factory.thread(other)
    for k in range(5):
        comment = factory.comment(thread, body=f"Other site {k}", status=Status.PENDING)
        service.decide_comment(comment.id, Action.APPROVE, mod)
    _, report = retrain(runner, data_dir, "--site", desk.site.key)
    decisions = report["training"]["decisions"]
    assert decisions["sites"] == [desk.site.key]
    assert decisions["older"]["n"] + decisions["recent"]["n"] + decisions["left_out"] == 60
    assert set(decisions["older"]["sites"]) == {desk.site.key}


# --- versions, rollback, activate ---------------------------------------------------------------


def test_shipped_model_is_version_zero(runner: FlaskCliRunner, db_session: DBSession) -> None:
    result = run(runner, "versions")
    assert result.exit_code == 0, result.stderr
    (line,) = [json.loads(text) for text in result.stdout.splitlines()]
    shipped = classifier.read_meta(classifier.DEFAULT_MODEL_PATH)["version"]
    assert line["version"] == shipped and line["state"] == "active"
    assert line["path"] == str(classifier.DEFAULT_MODEL_PATH)
    assert line["training"]["shipped"] is True
    row = db_session.scalar(sa.select(ModelVersion))
    assert row.path == scoring.SHIPPED_MODEL
    nothing = run(runner, "rollback")
    assert nothing.exit_code == 2 and "no earlier active version" in nothing.stderr
    assert run(runner, "versions").stdout == result.stdout  # registered once


def test_rollback_and_activate(
    promoted: dict[str, Any],
    base_version: str,
    runner: FlaskCliRunner,
    db_session: DBSession,
    desk: Desk,
    client: FlaskClient,
) -> None:
    new = promoted["version"]
    back = run(runner, "rollback")
    assert back.exit_code == 0, back.stderr
    assert json.loads(back.stdout) == {"active": base_version, "retired": new}
    assert states(db_session) == {base_version: "active", new: "retired"}
    posted = desk.post(client, "typical wazzock nonsense about the election again")
    assert db_session.get(Comment, posted["id"]).model_version == base_version

    listed = [json.loads(text) for text in run(runner, "versions").stdout.splitlines()]
    assert [(v["version"], v["state"]) for v in listed] == [
        (base_version, "active"),
        (new, "retired"),
    ]
    assert listed[1]["metrics"]["compared_with"] == base_version

    again = run(runner, "activate", new[:8])
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout) == {"active": new, "retired": base_version}
    posted = desk.post(client, "any gobdaw could run the water supply better than this")
    assert db_session.get(Comment, posted["id"]).model_version == new
    # Rolling back twice returns to where it was.
    assert json.loads(run(runner, "rollback").stdout)["active"] == base_version
    assert json.loads(run(runner, "rollback").stdout)["active"] == new
    same = run(runner, "activate", new)
    assert same.exit_code == 0 and json.loads(same.stdout)["retired"] is None


def test_activate_refuses_unknown_and_unloadable_versions(
    promoted: dict[str, Any],
    base_version: str,
    runner: FlaskCliRunner,
    db_session: DBSession,
    app: Flask,
) -> None:
    unknown = run(runner, "activate", "ffffffff")
    assert unknown.exit_code == 2 and "no model version 'ffffffff'" in unknown.stderr
    assert run(runner, "activate", "ab").exit_code == 2
    (Path(app.instance_path) / "models" / f"{promoted['version']}.skops").unlink()
    assert run(runner, "rollback").exit_code == 0
    broken = run(runner, "activate", promoted["version"])
    assert broken.exit_code == 2 and "cannot be loaded" in broken.stderr
    assert states(db_session)[base_version] == "active"


def test_an_unloadable_active_model_holds_comments(
    promoted: dict[str, Any], app: Flask, desk: Desk, client: FlaskClient, db_session: DBSession
) -> None:
    scoring._models.pop(
        str(Path(app.instance_path) / "models" / f"{promoted['version']}.skops"), None
    )
    (Path(app.instance_path) / "models" / f"{promoted['version']}.skops").unlink()
    posted = desk.post(client, "Good to see the library budget finally discussed here.")
    comment = db_session.get(Comment, posted["id"])
    assert comment.model_version is None
    assert "classifier_unavailable" in [r["code"] for r in comment.reasons]


def test_other_processes_follow_within_the_interval(
    promoted: dict[str, Any],
    base_version: str,
    db_session: DBSession,
    app: Flask,
    database: TestDatabase,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    new = promoted["version"]
    # Another web process: its own app on the same database and instance folder.
    other = make_test_app(database, Path(app.instance_path))
    try:
        with other.app_context():
            assert scoring.model_version() == new
        # A rollback by another process: this one's cache knows nothing of it.
        db_session.execute(
            sa.update(ModelVersion)
            .where(ModelVersion.version == new)
            .values(state=ModelState.RETIRED)
        )
        db_session.execute(
            sa.update(ModelVersion)
            .where(ModelVersion.version == base_version)
            .values(state=ModelState.ACTIVE, promoted_at=utcnow())
        )
        db_session.commit()
        with other.app_context():
            assert scoring.model_version() == new  # not re-read yet
        monkeypatch.setattr(scoring, "ACTIVE_CHECK_SECONDS", 0.0)
        with other.app_context():
            assert scoring.model_version() == base_version
    finally:
        dispose(other)


def test_configured_model_path_wins(
    promoted: dict[str, Any],
    base_model_file: Path,
    base_version: str,
    database: TestDatabase,
    tmp_path: Path,
) -> None:
    pinned = make_test_app(
        database, tmp_path / "instance", {"CLASSIFIER_MODEL_PATH": str(base_model_file)}
    )
    try:
        with pinned.app_context():
            assert scoring.model_path() == str(base_model_file)
            assert scoring.model_version() == base_version
    finally:
        dispose(pinned)


# --- retraining in the background ---------------------------------------------------------------


class TestBackgroundRetraining:
    """``retrain --background`` queues the job on RQ's ``retraining`` queue; a worker runs it."""

    @pytest.fixture
    def app_config(self) -> Iterator[dict[str, Any]]:
        """RQ on the local Redis, with queues of this test's own (removed afterwards)."""
        if not redis_reachable():
            pytest.skip("needs a Redis server on 127.0.0.1:6379")
        prefix = f"test-{uuid.uuid4().hex[:12]}:"
        yield {**REDIS, "JOBS_QUEUE_PREFIX": prefix}
        from redis import Redis

        connection = Redis.from_url(REDIS["REDIS_URL"])
        try:
            keys = list(connection.scan_iter(f"*{prefix}*"))
            if keys:
                connection.delete(*keys)
        finally:
            connection.close()

    def test_background_retraining_waits_for_a_worker_then_promotes(
        self,
        app: Flask,
        runner: FlaskCliRunner,
        desk: Desk,
        data_dir: Path,
        base_version: str,
        db_session: DBSession,
    ) -> None:
        assert jobs.mode(app) == "rq"
        desk.decide(site_comments(220, seed=11))

        result = runner.invoke(
            args=["classifier", "retrain", "--background", "--data", str(data_dir)]
        )
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout) == {"queued": True, "queue": "retraining", "mode": "rq"}
        assert queued(app, "retraining") == 1
        versions = lambda: set(db_session.scalars(sa.select(ModelVersion.version)))  # noqa: E731
        assert versions() == {base_version}  # nothing trained until a worker takes the job

        run_worker(app, "retraining")
        assert queued(app, "retraining") == 0
        db_session.expire_all()
        active = db_session.scalars(
            sa.select(ModelVersion).where(ModelVersion.state == "active")
        ).one()
        assert active.version != base_version  # the site's decisions earned a promotion
        assert versions() == {base_version, active.version}

    def test_background_retraining_refuses_bad_requests_at_once(
        self, app: Flask, runner: FlaskCliRunner, desk: Desk, data_dir: Path, tmp_path: Path
    ) -> None:
        missing = runner.invoke(
            args=["classifier", "retrain", "--background", "--data", str(tmp_path / "nowhere")]
        )
        assert missing.exit_code != 0 and "does not exist" in missing.output
        unknown = runner.invoke(
            args=[
                "classifier",
                "retrain",
                "--background",
                "--data",
                str(data_dir),
                "--site",
                "nope",
            ]
        )
        assert unknown.exit_code != 0 and "nope" in unknown.output
        assert queued(app, "retraining") == 0
