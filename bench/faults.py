"""Long fault runs: PostgreSQL or Redis cut off under posting load; a worker killed mid-job.

    python bench/faults.py postgres [--restart] [--pg-url URL] [--clients 4] [--seconds 20]
    python bench/faults.py redis [--clients 4] [--seconds 20]
    python bench/faults.py worker

``postgres``: gunicorn (2 workers) on a fresh PostgreSQL database, clients posting without
pause; after a third of the run every backend of that database is terminated
(``pg_terminate_backend``), or, with ``--restart``, the whole server is restarted
(``pg_ctlcluster 15 main restart``, as root: it cuts off everyone using that server). Checks:
no request hangs, every failure is a 5xx with a JSON ``error``, every acknowledged comment is
stored, and the same gunicorn serves posts again afterwards (no restart).

``redis``: the same on SQLite with Redis (a redis-server of the run's own) for rate limits,
the cache and jobs; Redis is SIGKILLed after a third of the run and started again after two
thirds. Checks: no 5xx at all, every acknowledged comment stored, reads served throughout.

``worker``: RQ on its own redis-server, a decision mail through an SMTP server that stalls after
accepting the message; the ``flask jobs worker`` process is SIGKILLed mid-job and a new one
started. Nothing is simulated: RQ notices the dead worker when its heartbeat lapses (about
90 s), retries the job, and the retry finds the mail recorded as sent. Checks: the job ran
again and exactly one mail arrived.

Exit status 1 when a check fails. The results are printed as a table and, with ``--json``, JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.load import (  # the path above makes the project importable
    ROOT,
    Database,
    Gunicorn,
    create_users,
    flask_cli,
    free_port,
)

SECRET = "bench-faults-" + "0" * 40
ORIGIN = "http://bench.example"
HANG_SECONDS = 15.0  # a request taking longer than this counts as a hang
ACKNOWLEDGED = (201, 202)


# --- posting under a fault --------------------------------------------------------------------


@dataclass
class Outcome:
    """One request: when it started, its status (0: no answer), its JSON and how long it took."""

    at: float
    status: int
    answer: Any
    seconds: float
    body: str
    kind: str = "post"


@dataclass
class Run:
    """Everything the clients saw."""

    outcomes: list[Outcome] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, outcome: Outcome) -> None:
        with self.lock:
            self.outcomes.append(outcome)


def request(
    port: int, method: str, path: str, body: Any = None, token: str = ""
) -> tuple[int, Any]:
    """One HTTP request on a new connection; (0, reason) when no answer came."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=HANG_SECONDS)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        connection.request(method, path, json.dumps(body) if body is not None else None, headers)
        response = connection.getresponse()
        raw = response.read()
        try:
            return response.status, json.loads(raw)
        except ValueError:
            return response.status, raw[:200].decode(errors="replace")
    except (OSError, http.client.HTTPException) as exc:
        return 0, type(exc).__name__
    finally:
        connection.close()


def client_loop(
    port: int, site: str, token: str, number: int, stop: threading.Event, run: Run, started: float
) -> None:
    """Post (and read every third time) until told to stop."""
    count = 0
    url = f"{ORIGIN}/articles/fault-{number % 3}"
    while not stop.is_set():
        count += 1
        body = f"Client {number} says hello, number {count}."
        begin = time.monotonic()
        status, answer = request(
            port, "POST", "/api/v1/comments", {"site": site, "url": url, "body": body}, token
        )
        run.add(Outcome(begin - started, status, answer, time.monotonic() - begin, body))
        if count % 3 == 0:
            begin = time.monotonic()
            status, answer = request(port, "GET", f"/api/v1/comments?site={site}&url={url}")
            run.add(Outcome(begin - started, status, None, time.monotonic() - begin, "", "read"))


def drive(
    port: int, site: str, tokens: list[str], seconds: float, faults: list[tuple[float, Any]]
) -> tuple[Run, list[dict[str, Any]]]:
    """Clients posting for ``seconds``; each fault ``(at, action)`` runs at its time."""
    run, stop, started = Run(), threading.Event(), time.monotonic()
    threads = [
        threading.Thread(target=client_loop, args=(port, site, token, n, stop, run, started))
        for n, token in enumerate(tokens)
    ]
    for thread in threads:
        thread.start()
    done: list[dict[str, Any]] = []
    for at, action in faults:
        time.sleep(max(0.0, at - (time.monotonic() - started)))
        begin = time.monotonic()
        name = action()
        done.append(
            {
                "fault": name,
                "at": round(begin - started, 1),
                "took": round(time.monotonic() - begin, 1),
            }
        )
    time.sleep(max(0.0, seconds - (time.monotonic() - started)))
    stop.set()
    for thread in threads:
        thread.join(HANG_SECONDS * 2)
    return run, done


def judge(run: Run, stored: set[str], allow_5xx: bool, seconds: float) -> dict[str, Any]:
    """The checks shared by the load runs."""
    posts = [o for o in run.outcomes if o.kind == "post"]
    reads = [o for o in run.outcomes if o.kind == "read"]
    acknowledged = {o.body for o in posts if o.status in ACKNOWLEDGED}
    failures = [o for o in run.outcomes if o.status not in (*ACKNOWLEDGED, 200)]
    hangs = [o for o in run.outcomes if o.status == 0 or o.seconds >= HANG_SECONDS]
    unclean = [
        o
        for o in failures
        if not (
            500 <= o.status < 600
            and (o.kind == "read" or (isinstance(o.answer, dict) and "error" in o.answer))
        )
    ]
    tail = [o for o in posts if o.at >= seconds - 3]
    lost = acknowledged - stored
    result = {
        "posts": len(posts),
        "reads": len(reads),
        "acknowledged": len(acknowledged),
        "stored_of_acknowledged": len(acknowledged & stored),
        "lost": len(lost),
        "failed": len(failures),
        "failed_by_status": _by_status(failures),
        "hangs": len(hangs),
        "unclean_failures": len(unclean),
        "longest_request_s": round(max((o.seconds for o in run.outcomes), default=0), 2),
        "last_3s_posts_ok": sum(o.status in ACKNOWLEDGED for o in tail),
        "last_3s_posts": len(tail),
    }
    checks = {
        "nothing lost": not lost,
        "no hangs": not hangs,
        "failures are clean 5xx JSON": not unclean,
        "recovered without restart": bool(tail) and all(o.status in ACKNOWLEDGED for o in tail),
    }
    if not allow_5xx:
        checks["no 5xx"] = not any(500 <= o.status < 600 for o in run.outcomes)
    result["checks"] = checks
    if failures:
        result["first_failure"] = {"status": failures[0].status, "answer": failures[0].answer}
    return result


def _by_status(outcomes: list[Outcome]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[str(outcome.status)] = counts.get(str(outcome.status), 0) + 1
    return counts


def prepare(env: dict[str, str], clients: int) -> tuple[str, list[str]]:
    """Migrate, one site (post-moderated, no flood limit), ``clients`` commenters with tokens."""
    flask_cli(env, "db", "upgrade")
    site = flask_cli(env, "sites", "create", "--name", "Faults", "--origin", ORIGIN)["site"]
    settings = ("first_comments_held=0", "flood_seconds=0", "duplicate_minutes=0")
    flask_cli(env, "sites", "update", site, *[a for s in settings for a in ("--setting", s)])
    return site, [user["token"] for user in create_users(env, clients)]


def base_env(database_url: str, tmp: Path) -> dict[str, str]:
    """The service's environment for a run."""
    keep = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_", "REDIS_", "RATELIMIT_"))
    }
    return {
        **keep,
        "SECRET_KEY": SECRET,
        "DATABASE_URL": database_url,
        "RATELIMIT_ENABLED": "false",
        "CACHE_DIR": str(tmp),
        "PYTHONUNBUFFERED": "1",
    }


# --- postgres -------------------------------------------------------------------------------------


def run_postgres(args: argparse.Namespace) -> dict[str, Any]:
    """Gunicorn on PostgreSQL; backends terminated (or the server restarted) mid-run."""
    tmp = Path(tempfile.mkdtemp(prefix="faults-"))
    database = Database("postgres", tmp, args.pg_url)
    database.create()
    env = base_env(database.url, tmp)
    env["DATABASE_CONNECT_TIMEOUT"] = "3"
    site, tokens = prepare(env, args.clients)
    server = Gunicorn(env, workers=2, threads=4, log=tmp / "gunicorn.log")
    try:
        server.wait_ready()
        master = server.proc.pid

        def terminate() -> str:
            import psycopg

            with psycopg.connect(args.pg_url, autocommit=True, connect_timeout=5) as conn:
                killed = conn.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = %s",
                    (database.name,),
                ).fetchone()
            return f"pg_terminate_backend x{killed[0] if killed else 0}"

        def restart() -> str:
            print("WARNING: restarting PostgreSQL for everyone on this server", file=sys.stderr)
            subprocess.run(["pg_ctlcluster", "15", "main", "restart"], check=True, timeout=120)
            return "pg_ctlcluster 15 main restart"

        action = restart if args.restart else terminate
        run, faults = drive(server.port, site, tokens, args.seconds, [(args.seconds / 3, action)])
        stored = {row[0] for row in database.query("SELECT body FROM comments")}
        result = judge(run, stored, allow_5xx=True, seconds=args.seconds)
        result["checks"]["same gunicorn"] = server.proc.poll() is None and server.proc.pid == master
        result["faults"] = faults
        return result
    finally:
        server.stop()
        database.drop()


# --- redis ----------------------------------------------------------------------------------------


class RedisServer:
    """A redis-server of the run's own on a free port, without persistence."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> str:
        self.process = subprocess.Popen(
            [
                *("redis-server", "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self.folder)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return "redis-server started"
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> str:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        return "redis-server SIGKILL"


def run_redis(args: argparse.Namespace) -> dict[str, Any]:
    """Gunicorn on SQLite with Redis for limits, cache and jobs; Redis killed, then back."""
    tmp = Path(tempfile.mkdtemp(prefix="faults-"))
    redis = RedisServer(tmp)
    redis.start()
    database = Database("sqlite", tmp, "")
    env = base_env(database.url, tmp)
    env.update(
        REDIS_URL=redis.url, RATELIMIT_ENABLED="true", MODERATION_COMMENT_RATE_LIMIT="100000/minute"
    )
    site, tokens = prepare(env, args.clients)
    server = Gunicorn(env, workers=2, threads=4, log=tmp / "gunicorn.log")
    try:
        server.wait_ready()
        third = args.seconds / 3
        run, faults = drive(
            server.port, site, tokens, args.seconds, [(third, redis.kill), (2 * third, redis.start)]
        )
        stored = {row[0] for row in database.query("SELECT body FROM comments")}
        result = judge(run, stored, allow_5xx=False, seconds=args.seconds)
        result["faults"] = faults
        return result
    finally:
        server.stop()
        redis.kill()


# --- worker ---------------------------------------------------------------------------------------


def run_worker(args: argparse.Namespace) -> dict[str, Any]:
    """A worker SIGKILLed mid-job (after the SMTP server took the mail); RQ's own recovery."""
    from aiosmtpd.controller import Controller

    tmp = Path(tempfile.mkdtemp(prefix="faults-"))
    redis = RedisServer(tmp)
    redis.start()
    received: list[bytes] = []
    stall = {"quit": 600.0}

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            received.append(envelope.original_content or b"")
            return "250 OK"

        async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> str:
            await asyncio.sleep(stall["quit"])  # the first worker hangs here, mail delivered
            return "221 Bye"

    smtp_port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=smtp_port)
    controller.start()
    env = base_env(f"sqlite:///{tmp / 'worker.db'}", tmp)
    env.update(
        REDIS_URL=redis.url,
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=str(smtp_port),
        MAIL_USE_TLS="false",
        MAIL_TIMEOUT="900",
        NOTIFY_DECISION_DELAY="0",
        JOBS_RETRY_DELAYS="1,2,4",
    )
    log = tmp / "workers.log"
    workers: list[subprocess.Popen[bytes]] = []

    def start_worker() -> subprocess.Popen[bytes]:
        with log.open("ab") as output:
            process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "flask", "--app", "wsgi"),
                    *("jobs", "worker", "--maintenance-interval", "5"),
                ],
                cwd=ROOT,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        workers.append(process)
        return process

    try:
        flask_cli(env, "db", "upgrade")
        subprocess.run([sys.executable, "-c", _DECIDE], cwd=ROOT, env=env, check=True, timeout=120)
        first = start_worker()
        deadline = time.monotonic() + 120
        while not received and time.monotonic() < deadline:
            time.sleep(0.1)
        if not received:
            raise RuntimeError(f"the first worker sent nothing:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)
        os.killpg(first.pid, signal.SIGKILL)  # the worker and its work horse, mid-job
        first.wait(10)
        killed_at = time.monotonic()
        stall["quit"] = 0
        start_worker()
        from redis import Redis
        from rq import Queue
        from rq.serializers import JSONSerializer

        queue = Queue("mail", connection=Redis.from_url(redis.url), serializer=JSONSerializer)
        finished = None
        while time.monotonic() - killed_at < args.worker_timeout:
            if queue.finished_job_registry.count:
                finished = time.monotonic() - killed_at
                break
            time.sleep(1)
        output = log.read_text(errors="replace")
        result = {
            "mails_received": len(received),
            "job_ran_again_after_s": round(finished, 1) if finished is not None else None,
            "retry_skipped_the_sent_mail": "was already sent; not sending it again" in output,
        }
        result["checks"] = {
            "job ran again": finished is not None,
            "exactly one mail": len(received) == 1,
            "retry found the sent marker": result["retry_skipped_the_sent_mail"],
        }
        return result
    finally:
        for process in workers:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        controller.stop()
        redis.kill()


# A pre-moderated site, a moderator, a verified commenter; a held comment, approved: the
# decision mail goes to RQ's "mail" queue.
_DECIDE = """
from auth.models import SiteMembership, SiteRole, User
from moderation.extensions import db
from moderation.models import Site
from moderation.policy import SiteSettings
from moderation.service import NewComment, decide_comment, submit_comment
from moderation.status import Action
from wsgi import app

with app.app_context():
    site = Site(name="Faults", origins=["http://bench.example"])
    site.moderation_settings = SiteSettings(mode="pre")
    moderator = User(email="mod@bench.example", display_name="Mod", email_verified=True)
    joan = User(email="joan@bench.example", display_name="Joan", email_verified=True)
    db.session.add_all([site, moderator, joan])
    db.session.add(SiteMembership(user=moderator, site=site, role=SiteRole.MODERATOR))
    db.session.commit()
    comment, _ = submit_comment(
        NewComment(site.key, "http://bench.example/articles/one", "Please approve.", author=joan)
    )
    decide_comment(comment.id, Action.APPROVE, moderator)
"""


# --- main -----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("fault", choices=("postgres", "redis", "worker"))
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    )
    parser.add_argument(
        "--restart", action="store_true", help="restart the PostgreSQL server (root)"
    )
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--worker-timeout", type=float, default=300.0)
    parser.add_argument("--json", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run one fault scenario; 1 if a check failed."""
    args = parse_args(argv)
    runner = {"postgres": run_postgres, "redis": run_redis, "worker": run_worker}[args.fault]
    result = runner(args)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        for key, value in result.items():
            if key != "checks":
                print(f"{key:>28}: {value}")
        for name, ok in result["checks"].items():
            print(f"{'PASS' if ok else 'FAIL':>28}: {name}")
    return 0 if all(result["checks"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
