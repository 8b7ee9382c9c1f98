"""Operations: /healthz, /readyz, /metrics, database settings and gunicorn's configuration."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import scoped_session

from auth.models import ApiToken, User
from moderation import create_app
from moderation.config import build_config, engine_options
from moderation.extensions import db, limiter
from moderation.jobs import enqueue, job
from moderation.models import Comment, Site
from moderation.policy import SiteSettings
from moderation.status import Status
from tests.auth.smtp import free_port
from tests.conftest import (
    TEST_SECRET_KEY,
    Factory,
    TestDatabase,
    dispose,
    empty_tables,
    make_test_app,
    requested_database_url,
)

DBSession = scoped_session[Any]
PROJECT_ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = "redis://127.0.0.1:6379/3"  # this module's Redis database
CLEAN = "Thanks for covering the council meeting, very informative."


# --- helpers ----------------------------------------------------------------------------------


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text exposition: (name, sorted labels) -> value."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def metric(text: str, name: str, **labels: str) -> float:
    """One sample's value (0 when the series does not exist yet)."""
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


def scrape(client: FlaskClient) -> str:
    """/metrics as the test client (127.0.0.1) sees it."""
    response = client.get("/metrics")
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data(as_text=True)


def commenter_with_token(factory: Factory, db_session: DBSession) -> tuple[User, str]:
    """A commenter and an API token of theirs."""
    user = factory.user()
    token, plain = ApiToken.issue(user, name="test")
    db_session.add(token)
    db_session.commit()
    return user, plain


def post_comment(client: FlaskClient, site: Site, token: str, body: str = CLEAN) -> Any:
    """POST a comment through the JSON API."""
    return client.post(
        "/api/v1/comments",
        json={"site": site.key, "url": f"{site.origins[0]}/articles/story", "body": body},
        headers={"Authorization": f"Bearer {token}"},
    )


def closed_port() -> int:
    """A loopback port nothing listens on."""
    return free_port("127.0.0.1")


def redis_reachable() -> bool:
    """Whether the local Redis answers."""
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


# --- /healthz and /readyz ---------------------------------------------------------------------


def test_healthz_answers_without_the_database_and_readyz_names_it(
    database: TestDatabase, tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    if database.is_postgres:
        url = f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/nothing"
    else:
        url = f"sqlite:///{tmp_path / 'no' / 'such' / 'folder' / 'x.db'}"
    app = create_app(
        {"TESTING": True, "SECRET_KEY": TEST_SECRET_KEY, "SQLALCHEMY_DATABASE_URI": url},
        instance_path=tmp_path / "instance",
    )
    try:
        client = app.test_client()
        alive = client.get("/healthz")
        assert (alive.status_code, alive.json) == (200, {"status": "ok"})
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json["status"] == "unavailable"
        assert "database" in ready.json["failing"]
        assert ready.json["checks"]["database"] == "the database does not answer"
    finally:
        dispose(app)


def test_readyz_is_ok_when_everything_answers(client: FlaskClient, app: Flask) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.json
    checks = {"database": "ok", "classifier": "ok"}
    if app.config.get("REDIS_URL"):  # the PostgreSQL + Redis pass: Redis and the queue too
        checks |= {"redis": "ok", "jobs": "ok"}
    assert response.json == {"status": "ok", "checks": checks, "failing": []}


def test_health_endpoints_are_not_rate_limited(
    database: TestDatabase, tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    app = make_test_app(
        database, tmp_path / "instance", {"RATELIMIT_ENABLED": True, "RATELIMIT_DEFAULT": "2/hour"}
    )
    try:
        client = app.test_client()
        codes = {client.get(path).status_code for path in ["/healthz", "/readyz", "/metrics"] * 3}
        assert codes == {200}
        # The default limit is in force for the other pages.
        assert [client.get("/").status_code for _ in range(3)] == [200, 200, 429]
    finally:
        dispose(app)
        # Flask-Limiter keeps default limits on its one global object, across apps: without
        # this, every later app in the run would answer 429 from its third request on.
        limiter.limit_manager.set_default_limits([])


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_a_broken_model_makes_readyz_fail_and_comments_wait(
    database: TestDatabase,
    tmp_path: Path,
    clean_env: pytest.MonkeyPatch,
    damage: str,
) -> None:
    model = tmp_path / f"{damage}-{uuid.uuid4().hex}.skops"
    if damage == "corrupt":
        model.write_bytes(b"PK\x03\x04 this is not a model file" + os.urandom(256))
    app = make_test_app(database, tmp_path / "instance", {"CLASSIFIER_MODEL_PATH": str(model)})
    try:
        with app.app_context():
            empty_tables()
            factory = Factory(db.session)
            site = factory.site(settings=SiteSettings(first_comments_held=0).to_dict())
            _, token = commenter_with_token(factory, db.session)
            client = app.test_client()

            ready = client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json["failing"] == ["classifier"]
            assert "could not be loaded" in ready.json["checks"]["classifier"]

            # Fail closed: the comment is stored and held, never published unscored.
            posted = post_comment(client, site, token)
            assert posted.status_code == 202, posted.json
            assert posted.json["comment"]["status"] == "pending"
            stored = db.session.get(Comment, posted.json["comment"]["id"])
            assert stored is not None and stored.status == Status.PENDING
            assert stored.spam_score is None and stored.abuse_score is None
            assert [reason["code"] for reason in stored.reasons] == ["classifier_unavailable"]
            public = client.get(
                "/api/v1/comments", query_string={"site": site.key, "url": stored.thread.url}
            )
            assert public.json["comments"] == []
    finally:
        dispose(app)


@pytest.mark.parametrize("app_config", [{"REDIS_URL": f"redis://127.0.0.1:{closed_port()}/3"}])
def test_readyz_fails_when_redis_is_configured_but_unreachable(
    client: FlaskClient, app_config: dict[str, Any]
) -> None:
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json["failing"] == ["redis", "jobs"]
    assert response.json["checks"]["database"] == "ok"
    assert response.json["checks"]["classifier"] == "ok"
    assert response.json["checks"]["redis"] == "Redis does not answer"
    # /healthz stays up: a Redis outage is no reason to restart the process.
    assert client.get("/healthz").status_code == 200


@pytest.fixture
def redis_config() -> Iterator[dict[str, Any]]:
    """RQ on the local Redis (database 3), with queues of this test's own, removed after."""
    if not redis_reachable():
        pytest.skip("needs a Redis server on 127.0.0.1:6379")
    prefix = f"test-ops-{uuid.uuid4().hex[:12]}:"
    yield {"REDIS_URL": REDIS_URL, "JOBS_SYNC": False, "JOBS_QUEUE_PREFIX": prefix}
    from redis import Redis

    connection = Redis.from_url(REDIS_URL)
    try:
        keys = list(connection.scan_iter(f"*{prefix}*"))
        if keys:
            connection.delete(*keys)
    finally:
        connection.close()


@pytest.fixture
def redis_app(
    database: TestDatabase,
    tmp_path: Path,
    clean_env: pytest.MonkeyPatch,
    redis_config: dict[str, Any],
) -> Iterator[Flask]:
    """An app whose jobs go to RQ on the local Redis."""
    app = make_test_app(database, tmp_path / "instance", redis_config)
    with app.app_context():
        empty_tables()
    yield app
    dispose(app)


def test_readyz_checks_redis_and_the_queues_when_they_answer(redis_app: Flask) -> None:
    response = redis_app.test_client().get("/readyz")
    assert response.status_code == 200, response.json
    assert response.json["checks"] == {
        "database": "ok",
        "classifier": "ok",
        "redis": "ok",
        "jobs": "ok",
    }


# --- /metrics: who may read it ----------------------------------------------------------------


def test_metrics_are_served_to_loopback_by_default(client: FlaskClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert "moderation_comments" in response.get_data(as_text=True)


def test_metrics_are_refused_to_other_addresses(client: FlaskClient) -> None:
    response = client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert response.status_code == 403
    assert "moderation_comments" not in response.get_data(as_text=True)
    as_json = client.get(
        "/metrics",
        environ_base={"REMOTE_ADDR": "203.0.113.9"},
        headers={"Accept": "application/json"},
    )
    assert as_json.json == {
        "error": "The metrics are not served to this address (see METRICS_ALLOW)."
    }


@pytest.mark.parametrize("app_config", [{"METRICS_TOKEN": "s3cret-metrics-token"}])
def test_metrics_token_opens_them_to_any_address(
    client: FlaskClient, app_config: dict[str, Any]
) -> None:
    outside = {"REMOTE_ADDR": "203.0.113.9"}
    missing = client.get("/metrics", environ_base=outside)
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"].lower().startswith("bearer")
    wrong = client.get("/metrics", environ_base=outside, headers={"Authorization": "Bearer guess"})
    assert wrong.status_code == 401
    right = client.get(
        "/metrics",
        environ_base=outside,
        headers={"Authorization": "Bearer s3cret-metrics-token"},
    )
    assert right.status_code == 200
    assert "moderation_comments" in right.get_data(as_text=True)


@pytest.mark.parametrize("app_config", [{"METRICS_ALLOW": "10.0.0.0/8, 2001:db8::/32"}])
def test_metrics_allow_lists_networks(client: FlaskClient, app_config: dict[str, Any]) -> None:
    def status(address: str) -> int:
        return client.get("/metrics", environ_base={"REMOTE_ADDR": address}).status_code

    assert status("10.20.30.40") == 200
    assert status("2001:db8::7") == 200
    assert status("::ffff:10.1.1.1") == 200  # IPv4 through a dual-stack socket
    assert status("127.0.0.1") == 403  # the list replaces the loopback default
    assert status("11.0.0.1") == 403


def test_a_malformed_metrics_allow_stops_the_app(
    database: TestDatabase, tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    with pytest.raises(RuntimeError, match=r"METRICS_ALLOW .* 'intranet' is neither"):
        make_test_app(database, tmp_path / "instance", {"METRICS_ALLOW": "127.0.0.1,intranet"})


# --- /metrics: what they say ------------------------------------------------------------------


def test_posting_a_held_comment_moves_the_metrics(
    client: FlaskClient, factory: Factory, db_session: DBSession
) -> None:
    site = factory.site()  # first_comments_held=1: a new author's first comment waits
    factory.comment(factory.thread(site))  # one published comment already
    _, token = commenter_with_token(factory, db_session)
    before = scrape(client)

    posted = post_comment(client, site, token)
    assert posted.status_code == 202
    codes = [r["code"] for r in db_session.get(Comment, posted.json["comment"]["id"]).reasons]
    assert "first_comment" in codes

    client.application.extensions["ops"].snapshot = None  # no waiting out the cache
    after = scrape(client)
    for code in codes:
        name = "moderation_hold_reasons_total"
        labels = {"reason": code, "status": "pending"}
        assert metric(after, name, **labels) == metric(before, name, **labels) + 1
    assert metric(after, "moderation_comments", status="pending") == 1
    assert metric(after, "moderation_comments", status="spam") == 0
    assert ("moderation_comments", (("status", "published"),)) not in samples(after)
    posted = "moderation_comments_posted_total"
    assert metric(after, posted, status="pending") == metric(before, posted, status="pending") + 1
    assert (
        metric(after, "moderation_classifier_seconds_count")
        == metric(before, "moderation_classifier_seconds_count") + 1
    )
    name, posts = "moderation_request_seconds_count", {"endpoint": "api.create_comment"}
    assert metric(after, name, method="POST", **posts) == (
        metric(before, name, method="POST", **posts) + 1
    )
    assert metric(after, "moderation_metrics_source_up", source="database") == 1


def test_request_latency_is_labelled_by_endpoint_not_path(client: FlaskClient) -> None:
    before = scrape(client)
    for path in ("/no/such/page/1", "/no/such/page/2", "/healthz"):
        client.get(path)
    after = scrape(client)
    name = "moderation_request_seconds_count"
    assert metric(after, name, endpoint="unmatched", method="GET") == (
        metric(before, name, endpoint="unmatched", method="GET") + 2
    )
    assert metric(after, name, endpoint="ops.healthz", method="GET") == (
        metric(before, name, endpoint="ops.healthz", method="GET") + 1
    )
    assert "/no/such/page" not in after


def test_comment_counts_are_cached_for_a_few_seconds(client: FlaskClient, factory: Factory) -> None:
    first = scrape(client)
    factory.comment(status=Status.SPAM)
    cached = scrape(client)
    client.application.config["METRICS_CACHE_SECONDS"] = 0
    fresh = scrape(client)
    assert metric(first, "moderation_comments", status="spam") == 0
    assert metric(cached, "moderation_comments", status="spam") == 0
    assert metric(fresh, "moderation_comments", status="spam") == 1


@job("default")
def failing_job(tag: str) -> None:
    """A job that always fails."""
    raise RuntimeError(f"failing on purpose: {tag}")


@pytest.mark.parametrize("app_config", [{"JOBS_SYNC": True}])
def test_an_in_process_job_failure_is_counted(app: Flask, app_config: dict[str, Any]) -> None:
    client = app.test_client()
    before = scrape(client)
    with app.app_context():
        enqueue(failing_job, "inline")
    after = scrape(client)
    name = "moderation_job_failures_total"
    assert metric(after, name, queue="default") == metric(before, name, queue="default") + 1


def test_queue_depth_age_and_worker_failures_come_from_redis(redis_app: Flask) -> None:
    client = redis_app.test_client()
    redis_app.config["METRICS_CACHE_SECONDS"] = 0
    with redis_app.app_context():
        enqueue(failing_job, "through redis")
    time.sleep(1.1)  # RQ stores enqueue times to the millisecond; let the job grow older
    waiting = scrape(client)
    assert metric(waiting, "moderation_job_queue_depth", queue="default") == 1
    assert metric(waiting, "moderation_job_queue_depth", queue="mail") == 0
    assert metric(waiting, "moderation_job_queue_oldest_seconds", queue="default") >= 1.0
    assert metric(waiting, "moderation_metrics_source_up", source="redis") == 1

    result = redis_app.test_cli_runner().invoke(
        args=["jobs", "worker", "--burst", "--no-fork", "--queue", "default"]
    )
    assert result.exit_code == 0, result.output
    done = scrape(client)
    assert metric(done, "moderation_job_queue_depth", queue="default") == 0
    assert metric(done, "moderation_job_queue_oldest_seconds", queue="default") == 0
    assert metric(done, "moderation_rq_job_failures_total", queue="default") == 1
    assert metric(done, "moderation_job_queue_failed", queue="default") == 1


# --- PostgreSQL settings ----------------------------------------------------------------------


def test_engine_options_per_backend() -> None:
    sqlite = engine_options("sqlite:///x.db", statement_timeout_ms=5000, connect_timeout=5)
    assert sqlite == {"connect_args": {"check_same_thread": False}, "hide_parameters": True}
    postgres = engine_options(
        "postgresql+psycopg://db/app",
        pool_size=7,
        max_overflow=3,
        pool_recycle=600,
        pool_timeout=4,
        statement_timeout_ms=2500,
        connect_timeout=3,
    )
    assert postgres == {
        "hide_parameters": True,
        "pool_pre_ping": True,
        "pool_size": 7,
        "max_overflow": 3,
        "pool_recycle": 600,
        "pool_timeout": 4,
        "connect_args": {"options": "-c statement_timeout=2500", "connect_timeout": 3},
    }
    assert "connect_args" not in engine_options("postgresql+psycopg://db/app")


def test_database_settings_come_from_the_environment(tmp_path: Path) -> None:
    environ = {
        "DATABASE_URL": "postgresql://db.internal/news",
        "DATABASE_POOL_SIZE": "12",
        "DATABASE_POOL_RECYCLE": "900",
        "DATABASE_POOL_PRE_PING": "false",
        "DATABASE_STATEMENT_TIMEOUT_MS": "0",
        "DATABASE_CONNECT_TIMEOUT": "2",
        "SECRET_KEY": TEST_SECRET_KEY,
    }
    options = build_config(tmp_path, environ, {})["SQLALCHEMY_ENGINE_OPTIONS"]
    assert options["pool_size"] == 12 and options["pool_recycle"] == 900
    assert options["pool_pre_ping"] is False
    assert options["connect_args"] == {"connect_timeout": 2}  # 0: no statement timeout
    defaults = build_config(tmp_path, {"DATABASE_URL": environ["DATABASE_URL"]}, {})
    assert defaults["SQLALCHEMY_ENGINE_OPTIONS"]["connect_args"] == {
        "options": "-c statement_timeout=5000",
        "connect_timeout": 5,
    }
    with pytest.raises(RuntimeError, match="DATABASE_STATEMENT_TIMEOUT_MS must be a whole"):
        build_config(tmp_path, {**environ, "DATABASE_STATEMENT_TIMEOUT_MS": "5s"}, {})


def test_a_statement_over_the_timeout_is_cancelled(
    postgres_only: None, tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    url = requested_database_url()
    assert url is not None
    clean_env.setenv("DATABASE_URL", url)
    clean_env.setenv("DATABASE_STATEMENT_TIMEOUT_MS", "300")
    app = create_app({"TESTING": True, "SECRET_KEY": TEST_SECRET_KEY}, instance_path=tmp_path)
    try:
        with app.app_context():
            assert db.session.scalar(sa.text("SHOW statement_timeout")) == "300ms"
            db.session.execute(sa.text("SELECT pg_sleep(0.05)"))  # under the limit: fine
            started = time.monotonic()
            with pytest.raises(sa.exc.OperationalError, match="statement timeout"):
                db.session.execute(sa.text("SELECT pg_sleep(3)"))
            assert time.monotonic() - started < 2.0
            db.session.rollback()
            # The connection is still good for the next statement.
            assert db.session.scalar(sa.text("SELECT 1")) == 1
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


# --- gunicorn.conf.py and make serve ----------------------------------------------------------


def test_default_workers_follow_the_cores() -> None:
    conf = _load_gunicorn_conf()
    assert [conf.default_workers(n) for n in (1, 2, 4, 7, 16, 64)] == [2, 3, 5, 8, 8, 8]


def _load_gunicorn_conf() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "gunicorn_conf", PROJECT_ROOT / "gunicorn.conf.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    saved = dict(os.environ)
    try:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(Path(os.environ.get("TMPDIR", "/tmp")))
        os.environ["MODERATION_METRICS_WIPED"] = str(os.getpid())  # wipe nothing
        spec.loader.exec_module(module)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return module


def test_make_serve_refuses_to_start_without_a_secret_key() -> None:
    environ = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "APP_ENV")}
    done = subprocess.run(
        ["make", "-s", "serve"],
        cwd=PROJECT_ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "needs SECRET_KEY" in done.stderr
    assert "secrets.token_hex(32)" in done.stderr


def _get(port: int, path: str, method: str = "GET", body: Any = None, **headers: str) -> Any:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        payload = json.dumps(body) if body is not None else None
        if payload is not None:
            headers["Content-Type"] = "application/json"
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def test_gunicorn_serves_with_the_model_preloaded_and_shared_metrics(
    database: TestDatabase, factory: Factory, db_session: DBSession, tmp_path: Path
) -> None:
    site = factory.site()
    _, token = commenter_with_token(factory, db_session)
    url = database.url
    if database.schema is not None:
        # The web processes must see the test schema; no statement timeout to keep the
        # options parameter of the URL as it is.
        url += f"?options=-csearch_path%3D{database.schema}"
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_999999.db").write_bytes(b"stale")  # from an "earlier run"
    (metrics_dir / "keep.txt").write_text("not ours")
    port = free_port("127.0.0.1")
    environ = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("GUNICORN_", "PROMETHEUS"))},
        "APP_ENV": "production",
        "SECRET_KEY": TEST_SECRET_KEY,
        "DATABASE_URL": url,
        "DATABASE_STATEMENT_TIMEOUT_MS": "0",
        "RATELIMIT_ENABLED": "false",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "2",
        "GUNICORN_THREADS": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    environ.pop("REDIS_URL", None)
    environ.pop("CLASSIFIER_MODEL_PATH", None)
    log_path = tmp_path / "gunicorn.log"
    with log_path.open("w") as log_file:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=PROJECT_ROOT,
            env=environ,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if _get(port, "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            assert server.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        assert not (metrics_dir / "counter_999999.db").exists()
        assert (metrics_dir / "keep.txt").exists()

        status, body = _get(port, "/readyz")
        assert status == 200, body
        for _ in range(9):
            assert _get(port, "/healthz")[0] == 200
        status, body = _get(
            port,
            "/api/v1/comments",
            "POST",
            {"site": site.key, "url": f"{site.origins[0]}/articles/a", "body": CLEAN},
            Authorization=f"Bearer {token}",
        )
        assert status == 202, body
        status, text = _get(port, "/metrics")
        assert status == 200
        # Summed over every worker through PROMETHEUS_MULTIPROC_DIR: each request counted once.
        healthz = {"endpoint": "ops.healthz", "method": "GET"}
        assert metric(text, "moderation_request_seconds_count", **healthz) == 10
        held = {"reason": "first_comment", "status": "pending"}
        assert metric(text, "moderation_hold_reasons_total", **held) == 1
        assert metric(text, "moderation_comments", status="pending") == 1
        assert list(metrics_dir.glob("histogram_*.db")), "no metric files: not multiprocess mode"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    log = log_path.read_text()
    assert "Classifier model loaded in the master" in log
    assert "Control socket" not in log  # off: no shared $HOME/.gunicorn/gunicorn.ctl
    assert "Traceback" not in log, log
