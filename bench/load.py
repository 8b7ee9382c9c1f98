"""Load benchmark: post and read comments through gunicorn; check that no acknowledged post is lost.

    python bench/load.py [--db sqlite|postgres] [--clients 16] [--seconds 30] [--workers 2]
                         [--threads 20] [--read-share 0.8] [--json]

What it does (see bench/README.md):

1. a fresh database (a SQLite file in a temp dir, or a database ``bench_<pid>`` on the PostgreSQL
   server of ``--pg-url``), ``flask --app wsgi db upgrade``, one site with the first-comment hold,
   the flood limit and the duplicate check turned off, one commenter with an API token per client;
2. ``gunicorn -w WORKERS --threads THREADS --preload`` on a free loopback port, rate limits off;
3. seeds ``--seed-threads`` articles with a few comments each, warms up, then runs CLIENTS
   closed-loop clients (one keep-alive connection each) for SECONDS: a thread read with
   probability READ_SHARE, otherwise a comment post (1-4 generated sentences, some with a link,
   some replying to a published comment);
4. prints throughput, latency percentiles, errors, and acknowledged (201/202) versus stored
   comments of the bench's authors; exits 1 if they differ;
5. stops gunicorn and removes the temp dir (and drops the PostgreSQL database).

The load generator runs on the same machine as the server and competes with it for the CPU;
its own CPU use is measured and printed. It is deliberately small: raw sockets, no HTTP library.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
ORIGIN = "http://bench.example"
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
SITE_SETTINGS = ("first_comments_held=0", "flood_seconds=0", "duplicate_minutes=0")
ACKNOWLEDGED = (201, 202)
BUSY_MACHINE = 0.15  # cores used by other work during the run above which the run is suspect
# A client opens a new connection after this many requests, as browsers and proxies do. With
# connections kept for the whole run, whichever gunicorn worker won the first burst of accepts
# kept every client (one worker at 0.66 cores, the other idle, on gunicorn 27's gthread).
REQUESTS_PER_CONNECTION = 25


# ---------------------------------------------------------------------------------------------
# Generated news-comment text
# ---------------------------------------------------------------------------------------------

_OPENERS = [
    "Honestly,",
    "I think",
    "As someone who lives here,",
    "Good reporting, but",
    "Interesting piece.",
    "Not sure about this.",
    "Finally!",
    "With respect to the author,",
    "My neighbours and I agree that",
    "Speaking as a teacher,",
    "",
    "",
]
_SUBJECTS = [
    "the council",
    "the new bus timetable",
    "the mayor's budget",
    "the school board",
    "this housing plan",
    "the bridge repair",
    "the water utility",
    "the police report",
    "the library closure",
    "the stadium deal",
    "the planning committee",
    "the hospital trust",
    "local businesses",
    "the festival organisers",
]
_VERBS = [
    "should have consulted residents about",
    "has clearly underestimated",
    "deserves more credit for",
    "keeps ignoring",
    "will end up paying for",
    "needs to explain",
    "got it right on",
    "is being too slow on",
    "was warned years ago about",
    "should publish the numbers behind",
]
_OBJECTS = [
    "the parking changes",
    "the rising rents downtown",
    "the cycle lanes on Main Street",
    "the delays on the ring road",
    "the cost of the new roof",
    "the flooding by the river",
    "the night bus service",
    "the trees along Elm Avenue",
    "the overtime bill",
    "the consultation last spring",
    "the empty shops on the high street",
    "the survey results",
]
_CLOSERS = [
    "Let's see what happens at the next meeting.",
    "Thanks for covering this.",
    "I'd like to see a follow-up story.",
    "Has anyone asked the residents?",
    "This has been going on for years.",
    "Numbers, please, not promises.",
    "Well said by the people quoted here.",
    "I'll be at the hearing on Thursday.",
    "Not the first time, sadly.",
    "Credit where it's due.",
]
_LINKS = [
    "The full report is [on the council site](https://council.example/reports/{n}).",
    "Background: https://archive.example/story/{n}",
    "See the minutes here: [meeting {n}](https://minutes.example/{n}).",
]


def _sentence(rng: random.Random) -> str:
    opener = rng.choice(_OPENERS)
    core = f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)}."
    text = f"{opener} {core}" if opener else core[0].upper() + core[1:]
    if rng.random() < 0.15:
        text = text.replace(" the ", " *the* ", 1)
    return text


def comment_text(rng: random.Random) -> str:
    """1-4 sentences of a plausible comment on local news; about one in eight has a link."""
    parts = [_sentence(rng) for _ in range(rng.randint(1, 3))]
    if rng.random() < 0.5:
        parts.append(rng.choice(_CLOSERS))
    if rng.random() < 0.125:
        parts.append(rng.choice(_LINKS).format(n=rng.randint(100, 99999)))
    parts = parts[:4]
    if rng.random() < 0.2:  # a second paragraph
        cut = max(1, len(parts) // 2)
        return " ".join(parts[:cut]) + "\n\n" + " ".join(parts[cut:])
    return " ".join(parts)


# ---------------------------------------------------------------------------------------------
# A tiny keep-alive HTTP/1.1 client (cheap: the load generator shares the CPU with the server)
# ---------------------------------------------------------------------------------------------


class HttpError(Exception):
    """The connection broke or the answer was not HTTP we understand."""


class Connection:
    """One keep-alive connection; ``request`` returns (status, body) and reconnects as needed."""

    def __init__(self, host: str, port: int, timeout: float = 30.0, max_requests: int = 0) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.max_requests = max_requests  # then reconnect; 0: keep the connection
        self.served = 0
        self.sock: socket.socket | None = None
        self.reader: Any = None
        self.host_header = f"{host}:{port}".encode()

    def _connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock
        self.reader = sock.makefile("rb", buffering=65536)

    def close(self) -> None:
        if self.reader is not None:
            with contextlib.suppress(OSError):
                self.reader.close()
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
        self.sock = self.reader = None

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: bytes = b""
    ) -> tuple[int, bytes]:
        head = b"%s %s HTTP/1.1\r\nHost: %s\r\n%s" % (
            method.encode(),
            path.encode(),
            self.host_header,
            headers,
        )
        if body is not None:
            head += b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
        if self.max_requests and self.served >= self.max_requests:
            self.close()
        try:
            if self.sock is None:
                self._connect()
                self.served = 0
            assert self.sock is not None
            self.served += 1
            self.sock.sendall(head + b"\r\n" + (body or b""))
            return self._response()
        except (OSError, HttpError, ValueError) as exc:
            self.close()
            raise HttpError(f"{type(exc).__name__}: {exc}") from None

    def _response(self) -> tuple[int, bytes]:
        line = self.reader.readline(65537)
        if not line:
            raise HttpError("connection closed before the status line")
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise HttpError(f"bad status line {line!r}")
        status = int(parts[1])
        length: int | None = None
        chunked = close = False
        while True:
            header = self.reader.readline(65537)
            if header in (b"\r\n", b"\n", b""):
                break
            name, _, value = header.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                close = b"close" in value.lower()
        if chunked:
            data = bytearray()
            while True:
                size = int(self.reader.readline(65537).split(b";")[0], 16)
                if size == 0:
                    while self.reader.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                data += self.reader.read(size)
                self.reader.readline(65537)
            payload = bytes(data)
        elif length is not None:
            payload = self.reader.read(length)
            if len(payload) != length:
                raise HttpError("connection closed inside the body")
        else:
            payload, close = self.reader.read(), True
        if close:
            self.close()
        return status, payload


# ---------------------------------------------------------------------------------------------
# The workload
# ---------------------------------------------------------------------------------------------


@dataclass
class Shared:
    """What the clients share: the site, the article pool, published comments to reply to."""

    site: str
    articles: list[str]  # article URLs that have a thread
    read_paths: list[str]  # GET paths, one per article, quoted once
    published: dict[str, list[int]]  # article URL -> published comment ids (reply targets)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # The GET path that reads an article's thread (another server speaks another API).
    reader: Callable[[str, str], str] | None = None

    def add_article(self, url: str) -> None:
        with self.lock:
            self.articles.append(url)
            self.read_paths.append((self.reader or read_path)(self.site, url))
            self.published.setdefault(url, [])


def read_path(site: str, url: str) -> str:
    return f"/api/v1/comments?site={quote(site, safe='')}&url={quote(url, safe='')}"


@dataclass
class Tally:
    """One client's measurements (merged at the end; no locks on the hot path)."""

    latency: dict[str, list[float]] = field(default_factory=lambda: {"post": [], "read": []})
    statuses: dict[str, Counter[str]] = field(
        default_factory=lambda: {"post": Counter(), "read": Counter()}
    )
    acknowledged: list[int] = field(default_factory=list)  # comment ids answered 201/202
    published: int = 0
    held: int = 0
    read_comments: int = 0  # comments in the answers to successful reads
    error_samples: list[str] = field(default_factory=list)

    def merge(self, other: Tally) -> None:
        for kind in ("post", "read"):
            self.latency[kind] += other.latency[kind]
            self.statuses[kind].update(other.statuses[kind])
        self.acknowledged += other.acknowledged
        self.published += other.published
        self.held += other.held
        self.read_comments += other.read_comments
        self.error_samples += other.error_samples[: max(0, 5 - len(self.error_samples))]


class Client:
    """One simulated commenter/reader with its own token, connection and random stream."""

    def __init__(
        self,
        index: int,
        token: str,
        shared: Shared,
        port: int,
        seed: int,
        max_requests: int = REQUESTS_PER_CONNECTION,
    ) -> None:
        self.index = index
        self.shared = shared
        self.conn = Connection("127.0.0.1", port, max_requests=max_requests)
        self.rng = random.Random(seed * 7919 + index)
        self.auth = b"Authorization: Bearer %s\r\n" % token.encode()
        self.bodies = [comment_text(self.rng) for _ in range(200)]
        self.posted = 0

    def post(self, tally: Tally, url: str | None = None, title: str | None = None) -> None:
        shared, rng = self.shared, self.rng
        if url is None:
            if rng.random() < 0.02:  # a new article gets its first comment
                url = f"{ORIGIN}/news/{rng.randint(2020, 2026)}/story-{rng.getrandbits(32):08x}"
                title = "A new story"
            else:
                url = rng.choice(shared.articles)
        self.posted += 1
        text = rng.choice(self.bodies)
        if rng.random() < 0.3:  # vary the text a little more than the pool does
            text = f"{text} {_sentence(rng)}"
        data: dict[str, Any] = {"site": shared.site, "url": url, "body": text}
        if title:
            data["title"] = title
        candidates = shared.published.get(url)
        if candidates and rng.random() < 0.25:
            data["parent_id"] = rng.choice(candidates[-50:])
            data["body"] = f"> {text.split('.')[0]}.\n\nReplying to that: {_sentence(rng)}"
        path, payload = self.post_request(data)
        result = self._timed(tally, "post", "POST", path, payload, self.auth)
        if result is None:
            return
        status, answer = result
        if status in ACKNOWLEDGED:
            comment_id, published = self.post_answer(answer)
            tally.acknowledged.append(comment_id)
            if published:
                tally.published += 1
                if url not in shared.published:
                    shared.add_article(url)
                shared.published[url].append(comment_id)
            else:
                tally.held += 1
        elif len(tally.error_samples) < 5:
            tally.error_samples.append(f"POST {status}: {answer[:200]!r}")

    def post_request(self, data: dict[str, Any]) -> tuple[str, bytes]:
        """Our API: the comment as JSON to /api/v1/comments (the token is in ``self.auth``)."""
        return "/api/v1/comments", json.dumps(data).encode()

    def post_answer(self, answer: bytes) -> tuple[int, bool]:
        """The new comment's id and whether it was published, from a 201/202 answer."""
        comment = json.loads(answer)["comment"]
        return comment["id"], comment["status"] == "published"

    def _timed(
        self, tally: Tally, kind: str, method: str, path: str, body: bytes | None, headers: bytes
    ) -> tuple[int, bytes] | None:
        """One request, its latency and status counted; None after a connection error."""
        started = time.perf_counter()
        try:
            status, answer = self.conn.request(method, path, body, headers)
        except HttpError as exc:
            tally.latency[kind].append(time.perf_counter() - started)
            tally.statuses[kind]["connection error"] += 1
            if len(tally.error_samples) < 5:
                tally.error_samples.append(f"{method}: {exc}")
            return None
        tally.latency[kind].append(time.perf_counter() - started)
        tally.statuses[kind][str(status)] += 1
        return status, answer

    def read(self, tally: Tally) -> None:
        path = self.rng.choice(self.shared.read_paths)
        result = self._timed(tally, "read", "GET", path, None, b"")
        if result is None:
            return
        status, answer = result
        if status == 200:
            tally.read_comments += self.read_count(answer)
        elif len(tally.error_samples) < 5:
            tally.error_samples.append(f"GET {status}: {answer[:200]!r}")

    def read_count(self, answer: bytes) -> int:
        """How many comments a thread read answered (pages differ between servers)."""
        return len(json.loads(answer)["comments"])

    def run(self, tally: Tally, deadline: float, read_share: float) -> None:
        while time.perf_counter() < deadline:
            if self.rng.random() < read_share:
                self.read(tally)
            else:
                self.post(tally)


def run_clients(
    clients: list[Client], seconds: float, read_share: float
) -> tuple[Tally, float, dict[str, float]]:
    """Run every client until the deadline; merged tally, wall seconds, client CPU seconds."""
    tallies = [Tally() for _ in clients]
    cpu_before = os.times()
    started = time.perf_counter()
    deadline = started + seconds
    threads = [
        threading.Thread(target=c.run, args=(t, deadline, read_share), daemon=True)
        for c, t in zip(clients, tallies, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 120)
    elapsed = time.perf_counter() - started
    cpu_after = os.times()
    if any(thread.is_alive() for thread in threads):
        raise RuntimeError("a client did not finish within two minutes of the deadline")
    merged = Tally()
    for tally in tallies:
        merged.merge(tally)
    cpu = {
        "user": cpu_after.user - cpu_before.user,
        "system": cpu_after.system - cpu_before.system,
    }
    return merged, elapsed, cpu


def seed_threads(clients: list[Client], shared: Shared, count: int, per_thread: int) -> Tally:
    """Create ``count`` articles with ``per_thread`` comments each, spread over the clients."""
    tally = Tally()
    urls = [f"{ORIGIN}/news/2026/bench-story-{n:03d}" for n in range(count)]

    def work(client: Client, mine: list[str], out: Tally) -> None:
        for url in mine:
            client.post(out, url=url, title=f"Bench story {url[-3:]}")
            for _ in range(per_thread - 1):
                client.post(out, url=url)

    parts = [Tally() for _ in clients]
    threads = [
        threading.Thread(target=work, args=(c, urls[i :: len(clients)], parts[i]), daemon=True)
        for i, c in enumerate(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    for part in parts:
        tally.merge(part)
    for url in urls:  # articles whose first comment was held still have a thread to read
        if url not in shared.published:
            shared.add_article(url)
    return tally


# ---------------------------------------------------------------------------------------------
# Databases, the CLI and gunicorn
# ---------------------------------------------------------------------------------------------


class Database:
    """A fresh database for one run, and the count of what it stored."""

    def __init__(self, kind: str, tmp: Path, pg_url: str) -> None:
        self.kind = kind
        self.tmp = tmp
        self.pg_url = pg_url
        self.name: str | None = None
        if kind == "sqlite":
            self.path = tmp / "bench.db"
            self.url = f"sqlite:///{self.path}"
        else:
            self.name = f"bench_{os.getpid()}"
            parts = urlsplit(pg_url)
            self.url = urlunsplit(parts._replace(path=f"/{self.name}"))

    def create(self) -> None:
        if self.kind == "postgres":
            import psycopg

            with psycopg.connect(self.pg_url, autocommit=True, connect_timeout=5) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.name}"')
                conn.execute(f'CREATE DATABASE "{self.name}"')

    def drop(self) -> None:
        if self.kind == "postgres" and self.name:
            import psycopg

            with psycopg.connect(self.pg_url, autocommit=True, connect_timeout=5) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if self.kind == "sqlite":
            import sqlite3

            conn = sqlite3.connect(self.path)
            try:
                return conn.execute(sql.replace("%s", "?"), params).fetchall()
            finally:
                conn.close()
        import psycopg

        with psycopg.connect(self.url, connect_timeout=5) as conn:
            return conn.execute(sql, params).fetchall()

    def stored_ids(self, author_ids: list[int]) -> set[int]:
        marks = ", ".join(["%s"] * len(author_ids))
        rows = self.query(
            f"SELECT id FROM comments WHERE author_id IN ({marks})", tuple(author_ids)
        )
        return {row[0] for row in rows}

    def threads_and_comments(self) -> tuple[int, int]:
        (threads,) = self.query("SELECT count(*) FROM threads")[0]
        (comments,) = self.query("SELECT count(*) FROM comments")[0]
        return threads, comments


def flask_cli(env: dict[str, str], *args: str) -> Any:
    """Run ``flask --app wsgi ARGS`` and return its JSON output (None if it printed none)."""
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        raise RuntimeError(f"flask {' '.join(args)} failed:\n{result.stderr.strip()}")
    out = result.stdout.strip()
    return json.loads(out.splitlines()[-1]) if out.startswith("{") else None


# ``flask users create --email E --token`` once per client, in one process: each separate
# `flask` start costs about a second of CPU, which adds up for 64 clients.
_CREATE_USERS = """
import json, sys
from wsgi import app
runner = app.test_cli_runner()
for email in sys.argv[1:]:
    result = runner.invoke(args=["users", "create", "--email", email, "--token"])
    if result.exit_code != 0:
        sys.exit(f"users create --email {email} failed: {result.output}")
    print(result.output.strip().splitlines()[-1])
"""


def create_users(env: dict[str, str], count: int) -> list[dict[str, Any]]:
    emails = [f"bench{n:03d}@bench.example" for n in range(count)]
    result = subprocess.run(
        [sys.executable, "-c", _CREATE_USERS, *emails],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        raise RuntimeError(f"creating users failed:\n{result.stderr.strip()}")
    users = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    if len(users) != count or not all(u.get("token") for u in users):
        raise RuntimeError(f"expected {count} users with tokens, got:\n{result.stdout}")
    return users


def machine_busy_seconds() -> float | None:
    """CPU seconds all processes on the machine spent busy so far (Linux /proc/stat)."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal: busy is all but idle, iowait and steal
    busy = sum(values[:3]) + sum(values[5:7])
    return busy / os.sysconf("SC_CLK_TCK")


# ``--profile N``: N posts, then N reads, in-process through Flask's test client under cProfile
# (no gunicorn, no HTTP): where a request's CPU time goes, function by function.
_PROFILE = """
import cProfile, io, json, os, pstats, random, sys, time
sys.path.insert(0, os.path.join(os.getcwd(), "bench"))
from load import ORIGIN, comment_text
from wsgi import app
site, tokens, count, top = sys.argv[1], sys.argv[2].split(","), int(sys.argv[3]), int(sys.argv[4])
client = app.test_client()
rng = random.Random(1)
urls = [f"{ORIGIN}/news/2026/bench-story-{n:03d}" for n in range(50)]
bodies = [comment_text(rng) for _ in range(500)]

def post(i):
    answer = client.post("/api/v1/comments", json={"site": site, "url": urls[i % 50],
        "title": "Bench story", "body": bodies[i % 500]},
        headers={"Authorization": "Bearer " + tokens[i % len(tokens)]})
    assert answer.status_code in (201, 202), answer.data

def read(i):
    answer = client.get("/api/v1/comments", query_string={"site": site, "url": urls[i % 50]})
    assert answer.status_code == 200, answer.data

for i in range(max(200, count)):  # warm-up: model load, statement caches, threads to read
    post(i)
for name, fn in (("post", post), ("read", read)):
    started, cpu = time.perf_counter(), time.process_time()
    for i in range(count):
        fn(i)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    profile = cProfile.Profile()
    profile.enable()
    for i in range(count):
        fn(i)
    profile.disable()
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out).sort_stats("cumulative")
    stats.print_stats(top)
    # Our own functions apart: which step of a request costs what.
    stats.print_stats(r"/(moderation|auth|classifier)/", top)
    print(f"=== {count} {name}s in-process: {1000 * cpu / count:.2f} ms CPU and "
          f"{1000 * wall / count:.2f} ms wall per request without the profiler ===")
    print(out.getvalue())
"""


def profile_in_process(env: dict[str, str], site: str, tokens: list[str], count: int) -> int:
    return subprocess.run(
        [sys.executable, "-c", _PROFILE, site, ",".join(tokens), str(count), "40"],
        cwd=ROOT,
        env=env,
        timeout=1800,
    ).returncode


def processes_cpu(name: str) -> dict[int, float]:
    """CPU seconds of every process whose command name is ``name`` (e.g. PostgreSQL backends)."""
    ticks = os.sysconf("SC_CLK_TCK")
    found: dict[int, float] = {}
    with contextlib.suppress(OSError):
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError, IndexError, ValueError):
                    stat = Path(f"/proc/{entry}/stat").read_text()
                    if stat[stat.index("(") + 1 : stat.rindex(")")] == name:
                        fields_ = stat.rsplit(")", 1)[1].split()
                        found[int(entry)] = (int(fields_[11]) + int(fields_[12])) / ticks
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Gunicorn:
    """gunicorn serving wsgi:app on a loopback port, in its own process group."""

    def __init__(
        self,
        env: dict[str, str],
        workers: int,
        threads: int,
        log: Path,
        python: str = sys.executable,
        app: str = "wsgi:app",
        health: str = "/healthz",
        config: Path | None = None,
    ) -> None:
        self.port = free_port()
        # gunicorn reads ./gunicorn.conf.py by itself: name the config, so that ours runs as
        # deployed (that file) and a peer gets an empty one rather than ours.
        if config is None:
            ours = app == "wsgi:app"
            config = ROOT / "gunicorn.conf.py" if ours else log.with_name("empty.conf.py")
            if not config.exists():
                config.write_text("")
        self.log = log
        self.health = health
        self.logfile = log.open("wb")
        command = [
            python,
            "-m",
            "gunicorn",
            "-c",
            str(config),
            "-w",
            str(workers),
            "--threads",
            str(threads),
            "--preload",
            "-b",
            f"127.0.0.1:{self.port}",
            "--log-level",
            "warning",
            app,
        ]
        self.command = command
        self.proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=self.logfile,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{self.log.read_text(errors='replace')}")
            conn = Connection("127.0.0.1", self.port, timeout=2)
            try:
                status, _ = conn.request("GET", self.health)
                if status == 200:
                    return
            except HttpError:
                pass
            finally:
                conn.close()
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not answer {self.health} within {timeout:.0f} s")

    def pids(self) -> list[int]:
        """The master and its workers (Linux /proc), for CPU accounting."""
        found = [self.proc.pid]
        with contextlib.suppress(OSError):
            for entry in os.listdir("/proc"):
                if entry.isdigit():
                    with contextlib.suppress(OSError, IndexError, ValueError):
                        stat = Path(f"/proc/{entry}/stat").read_text()
                        if int(stat.rsplit(")", 1)[1].split()[1]) == self.proc.pid:
                            found.append(int(entry))
        return found

    def cpu_seconds(self) -> dict[int, float]:
        """User + system CPU seconds of the master and each current worker, by pid."""
        ticks = os.sysconf("SC_CLK_TCK")
        found: dict[int, float] = {}
        for pid in self.pids():
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields_ = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                found[pid] = (int(fields_[11]) + int(fields_[12])) / ticks
        return found

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # graceful: workers finish their requests
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.logfile.close()


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------


def percentile(sorted_values: list[float], share: float) -> float | None:
    if not sorted_values:
        return None
    rank = max(1, round(share * len(sorted_values)))  # nearest rank
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summarise(tally: Tally, elapsed: float) -> dict[str, Any]:
    kinds: dict[str, Any] = {}
    for kind in ("post", "read"):
        values = sorted(tally.latency[kind])
        statuses = tally.statuses[kind]
        ok = sum(n for s, n in statuses.items() if s in ("200", "201", "202"))
        kinds[kind] = {
            "requests": len(values),
            "ok": ok,
            "per_second": round(ok / elapsed, 1) if elapsed else 0.0,
            "latency_ms": {
                name: (round(v * 1000, 1) if (v := percentile(values, share)) is not None else None)
                for name, share in (("p50", 0.50), ("p95", 0.95), ("p99", 0.99), ("max", 1.0))
            },
            "statuses": dict(sorted(statuses.items())),
            "errors": {s: n for s, n in sorted(statuses.items()) if s not in ("200", "201", "202")},
        }
    reads = kinds["read"]["ok"]
    kinds["read"]["comments_per_read"] = round(tally.read_comments / reads, 1) if reads else None
    return kinds


def print_table(result: dict[str, Any]) -> None:
    cfg, m = result["config"], result["measured"]
    print(
        f"bench/load.py  db={cfg['db']}  clients={cfg['clients']}  seconds={cfg['seconds']}  "
        f"workers={cfg['workers']}  threads={cfg['threads']}  read_share={cfg['read_share']}"
    )
    print(
        f"machine: nproc={result['machine']['nproc']}  python={result['machine']['python']}  "
        f"(load generator on the same machine)"
    )
    print(f"measured {m['elapsed_s']:.1f} s after {cfg['warmup']} s warm-up\n")
    columns = ("ok/s", "requests", "p50 ms", "p95 ms", "p99 ms", "max ms")
    header = f"{'':6} " + " ".join(f"{c:>{9 if c == 'requests' else 8}}" for c in columns)
    header += "  errors"
    print(header)
    print("-" * len(header))
    for kind, label in (("post", "posts"), ("read", "reads")):
        k = m[kind]
        lat = k["latency_ms"]

        def cell(v: float | None) -> str:
            return f"{v:8.1f}" if v is not None else f"{'-':>8}"

        errors = ", ".join(f"{s}: {n}" for s, n in k["errors"].items()) or "none"
        print(
            f"{label:6} {k['per_second']:8.1f} {k['requests']:9d} {cell(lat['p50'])} "
            f"{cell(lat['p95'])} {cell(lat['p99'])} {cell(lat['max'])}  {errors}"
        )
    print(
        f"\nposts answered: {m['published']} published (201), {m['held']} held (202) in the "
        f"measured window"
    )
    cpu = result["cpu"]
    print(
        f"CPU in the measured window: server {cpu['server_cores']:.2f} cores (workers: "
        f"{', '.join(f'{c:.2f}' for c in cpu['server_processes'])}), load generator "
        f"{cpu['client_cores']:.2f} cores, PostgreSQL {cpu['postgres_cores']:.2f} cores, "
        "everything else "
        f"{cpu['other_cores'] if cpu['other_cores'] is not None else '?'} cores "
        f"(of {result['machine']['nproc']})"
    )
    if cpu["other_cores"] is not None and cpu["other_cores"] > BUSY_MACHINE:
        print(
            f"WARNING: other work used {cpu['other_cores']:.2f} cores during the run; the "
            "numbers understate this machine (run again when it is quiet)."
        )
    c = result["consistency"]
    verdict = "OK" if c["equal"] else "MISMATCH"
    print(
        f"acknowledged (201/202, all phases): {c['acknowledged']}  stored for the bench's "
        f"authors: {c['stored']}  -> {verdict}"
    )
    if not c["equal"]:
        print(
            f"  acknowledged but not stored: {c['missing_sample']} ({c['missing']}); stored but "
            f"not acknowledged: {c['extra_sample']} ({c['extra']})"
        )
    if result["error_samples"]:
        print("\nfirst errors:")
        for sample in result["error_samples"]:
            print(f"  {sample}")
    print(
        f"\ndatabase afterwards: {result['database']['threads']} threads, "
        f"{result['database']['comments']} comments"
    )


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    p.add_argument(
        "--pg-url",
        default=os.environ.get("BENCH_PG_URL", DEFAULT_PG_URL),
        help="a PostgreSQL server and a database to connect to for CREATE DATABASE",
    )
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--warmup", type=float, default=3.0, help="seconds of unmeasured load first")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=20)
    p.add_argument("--read-share", type=float, default=0.8)
    p.add_argument("--seed-threads", type=int, default=50)
    p.add_argument("--seed-comments", type=int, default=5, help="comments per seeded thread")
    p.add_argument("--seed", type=int, default=1, help="random seed of the workload")
    p.add_argument(
        "--redis",
        nargs="?",
        const="redis://127.0.0.1:6379/9",
        default="",
        metavar="URL",
        help="serve with REDIS_URL (limiter storage, caches, job queues); default db 9",
    )
    p.add_argument(
        "--requests-per-connection",
        type=int,
        default=REQUESTS_PER_CONNECTION,
        help="a client reconnects after this many requests (0: never)",
    )
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (and PG database)")
    p.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="instead of the load run: N posts and N reads in-process under cProfile",
    )
    args = p.parse_args(argv)
    if not 0 <= args.read_share <= 1:
        p.error("--read-share must be from 0 to 1")
    if args.clients < 1 or args.seconds <= 0 or args.workers < 1 or args.threads < 1:
        p.error("--clients, --seconds, --workers and --threads must be positive")
    return args


def log(args: argparse.Namespace, message: str, prefix: str = "load") -> None:
    print(f"[{prefix}] {message}", file=sys.stderr, flush=True)


def measure(
    server: Gunicorn,
    clients: list[Client],
    shared: Shared,
    args: argparse.Namespace,
    prefix: str = "load",
) -> tuple[Tally, dict[str, Any]]:
    """Seed, warm up and run the measured window; every phase's tally and the measured part."""
    everything = seed_threads(clients, shared, args.seed_threads, args.seed_comments)
    log(
        args,
        f"seeded {len(shared.articles)} threads ({len(everything.acknowledged)} posts)",
        prefix,
    )
    if args.warmup > 0:
        warm, _, _ = run_clients(clients, args.warmup, args.read_share)
        everything.merge(warm)
    log(args, f"measuring for {args.seconds:g} s", prefix)
    server_cpu_before = server.cpu_seconds()
    busy_before = machine_busy_seconds()
    postgres_before = processes_cpu("postgres")
    measured, elapsed, client_cpu = run_clients(clients, args.seconds, args.read_share)
    server_cpu_after = server.cpu_seconds()
    busy_after = machine_busy_seconds()
    postgres_after = processes_cpu("postgres")
    postgres_cpu = sum(
        after - postgres_before.get(pid, 0.0) for pid, after in postgres_after.items()
    )
    per_process = {
        pid: round((after - server_cpu_before.get(pid, 0.0)) / elapsed, 2)
        for pid, after in server_cpu_after.items()
    }
    server_cpu = sum(server_cpu_after.values()) - sum(server_cpu_before.values())
    everything.merge(measured)
    for client in clients:
        client.conn.close()
    part: dict[str, Any] = {
        "measured": {
            "elapsed_s": round(elapsed, 2),
            "post": None,
            "read": None,
            "published": measured.published,
            "held": measured.held,
        },
        "cpu": {
            "server_cores": round(server_cpu / elapsed, 2),
            "server_cpu_s": round(server_cpu, 2),
            "server_processes": [
                per_process[pid] for pid in sorted(per_process) if pid != server.proc.pid
            ],
            "client_cores": round((client_cpu["user"] + client_cpu["system"]) / elapsed, 2),
            # Every PostgreSQL process on the machine (the bench's backends and the rest).
            "postgres_cores": round(postgres_cpu / elapsed, 2),
            # Everything else busy on the machine meanwhile: other processes (PostgreSQL,
            # other jobs) and kernel time not charged to a process (loopback softirq).
            "other_cores": (
                round(
                    (
                        busy_after
                        - busy_before
                        - server_cpu
                        - postgres_cpu
                        - sum(client_cpu.values())
                    )
                    / elapsed,
                    2,
                )
                if busy_before is not None and busy_after is not None
                else None
            ),
        },
        "error_samples": measured.error_samples,
    }
    part["measured"].update(summarise(measured, elapsed))
    return everything, part


def consistency(acknowledged: list[int], stored: set[int]) -> dict[str, Any]:
    """Every comment id answered 201/202 against the ids stored afterwards."""
    acked = set(acknowledged)
    missing, extra = sorted(acked - stored), sorted(stored - acked)
    return {
        "acknowledged": len(acknowledged),
        "distinct_acknowledged": len(acked),
        "stored": len(stored),
        "equal": len(acknowledged) == len(stored) and not missing and not extra,
        # Posts acknowledged but not stored (by id, or by count when ids were answered twice).
        "lost": max(len(missing), len(acknowledged) - len(stored)),
        # The same id answered to two posts: the server told a client the wrong id.
        "duplicate_ids": len(acknowledged) - len(acked),
        "missing": len(missing),
        "extra": len(extra),
        "missing_sample": missing[:10],
        "extra_sample": extra[:10],
    }


def run(args: argparse.Namespace) -> dict[str, Any] | int:
    """One load run of our service; the result, or the exit code of ``--profile``."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-load-"))
    db = Database(args.db, tmp, args.pg_url)
    server: Gunicorn | None = None
    try:
        db.create()
        env = {
            **os.environ,
            "DATABASE_URL": db.url,
            "SECRET_KEY": secrets.token_hex(32),
            "RATELIMIT_ENABLED": "false",
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("REDIS_URL", None)
        if args.redis:
            env["REDIS_URL"] = args.redis
        log(args, f"database {db.url}; migrating")
        flask_cli(env, "db", "upgrade")
        site = flask_cli(env, "sites", "create", "--name", "Bench", "--origin", ORIGIN)["site"]
        settings = [a for s in SITE_SETTINGS for a in ("--setting", s)]
        flask_cli(env, "sites", "update", site, *settings)
        users = create_users(env, args.clients)
        author_ids = [int(u["user_id"]) for u in users]
        if args.profile:
            return profile_in_process(env, site, [u["token"] for u in users], args.profile)

        server = Gunicorn(env, args.workers, args.threads, tmp / "gunicorn.log")
        server.wait_ready()
        log(args, f"gunicorn on port {server.port}: {' '.join(server.command[2:])}")

        shared = Shared(site=site, articles=[], read_paths=[], published={})
        clients = [
            Client(i, u["token"], shared, server.port, args.seed, args.requests_per_connection)
            for i, u in enumerate(users)
        ]
        everything, part = measure(server, clients, shared, args)
        server.stop()
        server = None

        threads_count, comments_count = db.threads_and_comments()
        result: dict[str, Any] = {
            "config": {
                "db": args.db,
                "redis": bool(args.redis),
                "clients": args.clients,
                "seconds": args.seconds,
                "warmup": args.warmup,
                "workers": args.workers,
                "threads": args.threads,
                "read_share": args.read_share,
                "requests_per_connection": args.requests_per_connection,
                "seed_threads": args.seed_threads,
                "seed_comments": args.seed_comments,
                "seed": args.seed,
            },
            "machine": {
                "nproc": os.cpu_count(),
                "python": sys.version.split()[0],
                "platform": sys.platform,
            },
            **part,
            "consistency": consistency(everything.acknowledged, db.stored_ids(author_ids)),
            "database": {"threads": threads_count, "comments": comments_count},
        }
        return result
    finally:
        if server is not None:
            server.stop()
        if args.keep:
            log(args, f"kept {tmp}" + (f" and database {db.name}" if db.name else ""))
        else:
            shutil.rmtree(tmp, ignore_errors=True)
            try:
                db.drop()
            except Exception as exc:  # report; do not mask the run's own error
                log(args, f"could not drop database {db.name}: {exc}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = run(args)
    if isinstance(result, int):
        return result
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)
    return 0 if result["consistency"]["equal"] else 1


if __name__ == "__main__":
    sys.exit(main())
