"""Background jobs: inline, on the in-process threads, and through RQ on a real Redis."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from aiosmtpd.controller import Controller
from flask import Flask, has_app_context
from sqlalchemy.orm import scoped_session

from auth.models import SiteMembership, SiteRole
from moderation import jobs
from moderation.extensions import db
from moderation.jobs import enqueue, enqueue_in, job, mode, wait_for_jobs
from moderation.policy import SiteSettings
from moderation.service import NewComment, decide_comment, submit_comment
from moderation.status import Action, Status
from tests.auth.smtp import Mailbox, free_port, smtp_server
from tests.conftest import redis_reachable

if TYPE_CHECKING:
    from tests.conftest import Factory

__all__ = ["smtp_server"]

DBSession = scoped_session[Any]
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
# Decision mails wait out the desk's undo window by default; these tests want them at once.
THREADED = {"JOBS_SYNC": False, "NOTIFY_DECISION_DELAY": 0, "REDIS_URL": None}
REDIS = {
    "JOBS_SYNC": False,
    "NOTIFY_DECISION_DELAY": 0,
    "REDIS_URL": f"redis://{REDIS_HOST}:{REDIS_PORT}/0",
}

# What the jobs below saw: (tag, thread name, app context?, id of their database session).
CALLS: list[tuple[str, str, bool, int]] = []
ATTEMPTS: Counter[str] = Counter()
STARTED = threading.Event()
GATE = threading.Event()


@job("default")
def record(tag: str) -> None:
    """Note who ran this."""
    CALLS.append((tag, threading.current_thread().name, has_app_context(), id(db.session())))


@job("default")
def explode(tag: str) -> None:
    """Fail."""
    ATTEMPTS[tag] += 1
    raise RuntimeError(f"boom {tag}")


@job("default", retry=True)
def flaky(tag: str, failures: int) -> None:
    """Fail ``failures`` times, then work."""
    ATTEMPTS[tag] += 1
    if ATTEMPTS[tag] <= failures:
        raise RuntimeError(f"not yet {tag}")
    record(tag)


@job("default")
def blocked(tag: str) -> None:
    """Hold a thread until the test opens the gate."""
    STARTED.set()
    GATE.wait(10)
    record(tag)


@pytest.fixture
def app_config(request: pytest.FixtureRequest, smtp_server: Mailbox) -> Iterator[dict[str, Any]]:
    """Overrides per test (indirect parametrization); mail always goes to the loopback server.

    ``"redis"`` means RQ on the local Redis with queues of the test's own, removed afterwards.
    """
    param = getattr(request, "param", {})
    if param != "redis":
        yield {**smtp_server.mail_config(), **param}
        return
    if not redis_reachable():
        pytest.skip(f"needs a Redis server on {REDIS_HOST}:{REDIS_PORT}")
    prefix = f"test-{uuid.uuid4().hex[:12]}:"
    config = {**smtp_server.mail_config(), **REDIS, "JOBS_QUEUE_PREFIX": prefix}
    yield config
    from redis import Redis

    connection = Redis.from_url(REDIS["REDIS_URL"])
    try:
        keys = list(connection.scan_iter(f"*{prefix}*"))
        if keys:
            connection.delete(*keys)
    finally:
        connection.close()


@pytest.fixture(autouse=True)
def _fresh_state(app: Flask) -> Iterator[None]:
    CALLS.clear()
    ATTEMPTS.clear()
    STARTED.clear()
    GATE.clear()
    yield
    GATE.set()
    wait_for_jobs(app, timeout=10)
    jobs.shutdown(app)


def tags() -> list[str]:
    """The tags of the jobs that ran, in order."""
    return [call[0] for call in CALLS]


# --- inline --------------------------------------------------------------------------------------


def test_test_apps_run_jobs_inline_in_their_own_app_context(app: Flask) -> None:
    assert mode(app) == "sync"  # TESTING turns JOBS_SYNC on unless told otherwise
    with app.app_context():
        caller_session = id(db.session())
        enqueue(record, "now")
        assert tags() == ["now"]  # before enqueue returned
    _, thread, in_context, session = CALLS[0]
    assert thread == threading.current_thread().name and in_context
    assert session != caller_session  # the job's own app context, so its own session


def test_jobs_are_named_by_callable_or_path(app: Flask) -> None:
    with app.app_context():
        enqueue("tests.moderation.test_jobs:record", "by path")
        enqueue("tests.moderation.test_jobs.record", "by dotted path")
        enqueue(record, "by function")
    assert tags() == ["by path", "by dotted path", "by function"]


def test_only_plain_arguments_and_importable_functions(app: Flask) -> None:
    def local() -> None:
        pass

    with app.app_context():
        with pytest.raises(TypeError, match="plain values"):
            enqueue(record, object())
        with pytest.raises(TypeError, match="plain values"):
            enqueue(record, tag={1, 2})
        with pytest.raises(ValueError, match="module-level"):
            enqueue(local)
        with pytest.raises(ValueError, match="does not name a function"):
            enqueue("tests.moderation.test_jobs:nothing_here")
        with pytest.raises(ValueError, match="Unknown queue"):
            job("urgent")
    assert CALLS == []


def test_a_failing_inline_job_is_logged_not_raised(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    with app.app_context():
        enqueue(explode, "inline")
        enqueue(record, "after")
    assert "Background job tests.moderation.test_jobs:explode failed" in caplog.text
    assert "boom inline" in caplog.text
    assert tags() == ["after"]


# --- threads ----------------------------------------------------------------------------------


@pytest.mark.parametrize("app_config", [THREADED], indirect=True)
def test_threads_run_jobs_in_the_background(app: Flask) -> None:
    assert mode(app) == "threads"
    with app.app_context():
        GATE.clear()
        enqueue(blocked, "background")
        assert STARTED.wait(5)
        assert CALLS == []  # the caller went on while the job waits
        GATE.set()
    assert wait_for_jobs(app, timeout=5)
    assert tags() == ["background"]
    _, thread, in_context, _ = CALLS[0]
    assert thread.startswith("jobs-") and in_context
    workers = [t for t in threading.enumerate() if t.name == thread]
    assert workers and all(t.daemon for t in workers)  # never keeps the process alive


@pytest.mark.parametrize(
    "app_config", [{**THREADED, "JOBS_THREADS": 1, "JOBS_MAX_PENDING": 1}], indirect=True
)
def test_a_full_backlog_runs_the_job_in_the_caller(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    with app.app_context():
        enqueue(blocked, "running")
        assert STARTED.wait(5)
        enqueue(record, "queued")  # the one place in the backlog
        enqueue(record, "overflow")  # no room: runs here, now
        assert tags() == ["overflow"]
        assert CALLS[0][1] == threading.current_thread().name
        GATE.set()
    assert wait_for_jobs(app, timeout=5)
    assert tags() == ["overflow", "running", "queued"]
    assert "backlog is full" in caplog.text


@pytest.mark.parametrize(
    "app_config", [{**THREADED, "JOBS_RETRY_DELAYS": "0.01, 0.02, 0.03"}], indirect=True
)
def test_threads_retry_with_backoff_then_give_up(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    assert app.config["JOBS_RETRY_DELAYS"] == (0.01, 0.02, 0.03)
    with app.app_context():
        enqueue(flaky, "third time lucky", 2)
        enqueue(flaky, "never", 10)
        enqueue(explode, "no retry")
    assert wait_for_jobs(app, timeout=5)
    assert tags() == ["third time lucky"]
    assert ATTEMPTS == {"third time lucky": 3, "never": 4, "no retry": 1}
    assert caplog.text.count("boom no retry") == 1


@pytest.mark.parametrize("app_config", [THREADED], indirect=True)
def test_a_delayed_job_waits(app: Flask) -> None:
    with app.app_context():
        started = time.monotonic()
        enqueue_in(0.3, record, "later")
        assert CALLS == []
    assert wait_for_jobs(app, timeout=5)
    assert tags() == ["later"] and time.monotonic() - started >= 0.3


@pytest.fixture
def mail_newsroom(factory: Factory, db_session: DBSession) -> dict[str, Any]:
    """A pre-moderated site, its moderator and a held comment by a verified reader."""
    site = factory.site(name="Gazette")
    site.moderation_settings = SiteSettings(mode="pre", digest_pending=0, digest_minutes=0)
    moderator = factory.user(email="mod@gazette.example", email_verified=True)
    db_session.add(SiteMembership(user=moderator, site=site, role=SiteRole.MODERATOR))
    joan = factory.user(email="joan@example.org", email_verified=True)
    db_session.commit()
    comment, _ = submit_comment(
        NewComment(site.key, f"{site.origins[0]}/articles/harbour", "Lovely day.", author=joan)
    )
    assert comment.status == Status.PENDING
    return {"site": site, "moderator": moderator, "comment": comment}


def wait_for_mail(mailbox: Mailbox, count: int, timeout: float = 10) -> None:
    """Poll until the server holds ``count`` messages."""
    deadline = time.monotonic() + timeout
    while len(mailbox.messages) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(mailbox.messages) == count, [m["Subject"] for m in mailbox.messages]


@pytest.mark.parametrize("app_config", [THREADED], indirect=True)
def test_the_threaded_path_delivers_the_mail(
    app: Flask, smtp_server: Mailbox, mail_newsroom: dict[str, Any]
) -> None:
    decide_comment(mail_newsroom["comment"].id, Action.APPROVE, mail_newsroom["moderator"])
    wait_for_mail(smtp_server, 1)
    assert smtp_server.messages[0]["To"] == "joan@example.org"
    assert "is published" in smtp_server.messages[0]["Subject"]


# --- RQ on Redis ------------------------------------------------------------------------------


def queued(app: Flask, name: str) -> int:
    """How many jobs wait in RQ queue ``name`` of ``app``."""
    return int(jobs._rq_queue(app, name).count)


def run_worker(app: Flask, *queues: str) -> None:
    """``flask jobs worker --burst --no-fork`` until the queues are empty."""
    args = ["jobs", "worker", "--burst", "--no-fork"]
    for name in queues:
        args += ["--queue", name]
    result = app.test_cli_runner().invoke(args=args)
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("app_config", ["redis"], indirect=True)
def test_rq_holds_the_job_until_a_worker_runs_it(app: Flask) -> None:
    assert mode(app) == "rq"
    with app.app_context():
        enqueue(record, "through redis")
    assert CALLS == [] and queued(app, "default") == 1
    run_worker(app, "default")
    assert tags() == ["through redis"]
    assert CALLS[0][2]  # in an app context
    assert queued(app, "default") == 0


@pytest.mark.parametrize("app_config", ["redis"], indirect=True)
def test_rq_delivers_a_notification(
    app: Flask, smtp_server: Mailbox, mail_newsroom: dict[str, Any]
) -> None:
    decide_comment(mail_newsroom["comment"].id, Action.APPROVE, mail_newsroom["moderator"])
    assert smtp_server.messages == [] and queued(app, "mail") == 1
    run_worker(app)
    wait_for_mail(smtp_server, 1)
    assert smtp_server.messages[0]["To"] == "joan@example.org"


@pytest.mark.parametrize(
    "app_config",
    [{**THREADED, "REDIS_URL": f"redis://127.0.0.1:{free_port('127.0.0.1')}/0"}],
    indirect=True,
)
def test_without_a_reachable_redis_jobs_still_run_here(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    assert mode(app) == "rq"
    with app.app_context():
        enqueue(record, "fallback")
        started = time.monotonic()
        enqueue(record, "at once")  # no second wait for Redis
        assert time.monotonic() - started < 1
    assert wait_for_jobs(app, timeout=5)
    assert sorted(tags()) == ["at once", "fallback"]
    assert caplog.text.count("Could not queue job tests.moderation.test_jobs:record in Redis") == 1


@pytest.mark.parametrize("app_config", [{"REDIS_URL": None}], indirect=True)
def test_the_worker_needs_redis(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["jobs", "worker", "--burst"])
    assert result.exit_code != 0
    assert "REDIS_URL is not set" in result.output


@pytest.mark.parametrize(
    "app_config", [{**THREADED, "JOBS_RETRY_DELAYS": "0.3, 1, 2, 4"}], indirect=True
)
def test_a_mail_is_retried_until_the_server_is_back(
    app: Flask, mail_newsroom: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port("127.0.0.1")
    app.config["MAIL_PORT"] = port  # nobody listens there yet
    decide_comment(mail_newsroom["comment"].id, Action.APPROVE, mail_newsroom["moderator"])
    deadline = time.monotonic() + 10
    while "Could not send mail" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.02)
    assert "Could not send mail to joan@example.org" in caplog.text

    mailbox = Mailbox("127.0.0.1", port)
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        wait_for_mail(mailbox, 1)
    finally:
        controller.stop()
    assert mailbox.messages[0]["To"] == "joan@example.org"
    assert wait_for_jobs(app, timeout=5)
