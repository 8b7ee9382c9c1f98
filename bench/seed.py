"""Seed a PostgreSQL database with a newsroom's worth of comments, fast (COPY, not the API).

    python bench/seed.py --pg-url postgresql://postgres@127.0.0.1:5432/test --database bench_queue
                         [--comments 1000000] [--sites 4] [--articles 4000] [--authors 50000]

Creates (or recreates) the database, migrates it with ``flask db upgrade``, then writes sites,
articles, commenters and comments with one system decision each, with PostgreSQL's COPY. Statuses
follow a busy news site: ~90 % published, 3 % pending, 4 % spam, 3 % rejected; 0.5 % of the
published ones reported into the Reported queue. Prints progress and what it made as JSON (site
keys and a moderator's API token for ``bench/desk.py``).
"""

from __future__ import annotations

import argparse
import hashlib
import html
import json
import os
import random
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import comment_text  # bench/ is not a package: found through sys.path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
STATUSES = (("published", 0.90), ("pending", 0.03), ("spam", 0.04), ("rejected", 0.03))
MODEL_VERSION = "bench-seed"
REASONS = {
    "published": [],
    "pending": [{"code": "abuse_score", "message": "abuse score 0.71 is above the hold 0.50"}],
    "spam": [{"code": "spam_reject", "message": "spam score 0.99 is above the spam 0.98"}],
    "rejected": [{"code": "banned_word", "message": "contains the banned word “x”"}],
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL", DEFAULT_PG_URL))
    parser.add_argument("--database", default="bench_queue")
    parser.add_argument("--comments", type=int, default=1_000_000)
    parser.add_argument("--sites", type=int, default=4)
    parser.add_argument("--articles", type=int, default=4_000)
    parser.add_argument("--authors", type=int, default=50_000)
    parser.add_argument("--days", type=int, default=180, help="spread the comments over this")
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args(argv)


def database_url(server_url: str, name: str) -> str:
    """``server_url`` with its database replaced by ``name``."""
    base, _, _ = server_url.rpartition("/")
    return f"{base}/{name}"


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def recreate(server_url: str, name: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def flask(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout


def copy_rows(conn: psycopg.Connection, table: str, columns: list[str], rows: Any) -> int:
    """COPY ``rows`` into ``table``; how many."""
    count = 0
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with conn.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def explanations(bodies: list[str]) -> dict[str, list[list[list[Any]]]]:
    """Per status with a score reason, each body's stored highlights (``Comment.explained``)."""
    sys.path.insert(0, str(ROOT))
    import classifier
    from moderation.desk import _explained

    path = str(classifier.DEFAULT_MODEL_PATH)
    found: dict[str, list[list[list[Any]]]] = {}
    for status, task in (("pending", "abuse"), ("spam", "spam")):
        found[status] = [
            [
                [h.start, h.end, h.source, h.label]
                for h in _explained(path, MODEL_VERSION, b, (task,))
            ]
            for b in bodies
        ]
    return found


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rng = random.Random(args.seed)
    url = database_url(args.pg_url, args.database)
    env = {**os.environ, "DATABASE_URL": url.replace("postgresql://", "postgresql+psycopg://", 1)}
    env.setdefault("SECRET_KEY", "bench-" + hashlib.sha256(os.urandom(16)).hexdigest())
    started = time.perf_counter()

    say(f"creating database {args.database}")
    recreate(args.pg_url, args.database)
    flask(env, "db", "upgrade")

    sites = []
    for n in range(args.sites):
        made = json.loads(
            flask(env, "sites", "create", "--name", f"Bench {n}", "--origin", f"https://s{n}.bench")
        )
        sites.append(made["site"])
    for n, key in enumerate(sites):  # the same moderator on every site (the address is reused)
        last = n == len(sites) - 1
        made = flask(
            env,
            "users",
            "create",
            "--email",
            "moderator@bench.example",
            "--role",
            "moderator",
            "--site",
            key,
            *(["--token"] if last else []),
        )
    moderator = json.loads(made)
    now = datetime.now(UTC)
    with psycopg.connect(url) as conn:
        site_ids = {
            key: conn.execute("SELECT id FROM sites WHERE key = %s", (key,)).fetchone()[0]
            for key in sites
        }
        say(f"{args.authors:,} commenters")
        first_user = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM users").fetchone()[0]
        copy_rows(
            conn,
            "users",
            [
                "id",
                "email",
                "display_name",
                "role",
                "banned",
                "created_at",
                "session_version",
                "email_verified",
                "preferences",
            ],
            (
                (
                    first_user + i,
                    f"reader{i}@bench.example",
                    f"Reader {i}",
                    "commenter",
                    False,
                    now - timedelta(days=rng.randint(1, 900)),
                    1,
                    True,
                    "{}",
                )
                for i in range(args.authors)
            ),
        )
        say(f"{args.articles:,} articles")
        threads: list[tuple[int, int]] = []  # (thread id, site id)
        for i in range(args.articles):
            site_id = site_ids[sites[i % len(sites)]]
            threads.append((i + 1, site_id))
        copy_rows(
            conn,
            "threads",
            ["id", "site_id", "url", "title", "closed", "comment_count", "created_at"],
            (
                (
                    tid,
                    sid,
                    f"https://s{(tid - 1) % len(sites)}.bench/news/story-{tid}",
                    f"Story {tid}",
                    False,
                    0,
                    now - timedelta(days=args.days),
                )
                for tid, sid in threads
            ),
        )
        bodies = [comment_text(rng) for _ in range(2_000)]
        say("explaining the held texts, as the posting service's background job does")
        explained = explanations(bodies)
        rendered = [f"<p>{html.escape(body)}</p>\n" for body in bodies]
        hashes = [hashlib.sha256(body.encode()).hexdigest() for body in bodies]
        weights = [share for _, share in STATUSES]
        names = [status for status, _ in STATUSES]
        span = args.days * 86_400

        def comments() -> Any:
            # Oldest first, so ids grow with time as they do in a live database.
            for i in range(args.comments):
                if i and i % 100_000 == 0:
                    say(f"  {i:,} comments")
                thread_id, site_id = threads[rng.randrange(len(threads))]
                status = rng.choices(names, weights)[0]
                reported = status == "published" and rng.random() < 0.005
                created = now - timedelta(seconds=span * (1 - i / args.comments))
                b = rng.randrange(len(bodies))
                author = first_user + rng.randrange(args.authors)
                yield (
                    i + 1,
                    thread_id,
                    site_id,
                    author,
                    f"Reader {author - first_user}",
                    bodies[b],
                    rendered[b],
                    status,
                    round(rng.random() * 0.6, 4),
                    round(rng.random() ** 2, 4),
                    MODEL_VERSION,
                    json.dumps(REASONS[status]),
                    hashes[b],
                    created,
                    created,
                    1,
                    3 if reported else 0,
                    3.0 if reported else 0.0,
                    reported,
                    False,
                    False,
                    json.dumps(explained[status][b]) if status in explained else None,
                )

        say(f"{args.comments:,} comments")
        copy_rows(
            conn,
            "comments",
            [
                "id",
                "thread_id",
                "site_id",
                "author_id",
                "author_name",
                "body",
                "html",
                "status",
                "spam_score",
                "abuse_score",
                "model_version",
                "reasons",
                "body_hash",
                "created_at",
                "updated_at",
                "version",
                "report_count",
                "report_weight",
                "needs_review",
                "shadow",
                "nudged",
                "explained",
            ],
            comments(),
        )
        say("one system decision per comment")
        conn.execute(
            """
            INSERT INTO decisions (comment_id, site_id, actor_type, to_status, reasons, created_at)
            SELECT id, site_id, 'system', status, reasons, created_at FROM comments
            """
        )
        conn.execute(
            """
            UPDATE threads SET comment_count = counted.n FROM (
                SELECT thread_id, count(*) AS n FROM comments WHERE status = 'published'
                GROUP BY thread_id
            ) AS counted WHERE threads.id = counted.thread_id
            """
        )
        for table in ("users", "threads", "comments", "decisions"):
            conn.execute(
                sql.SQL("SELECT setval(pg_get_serial_sequence({}, 'id'), max(id)) FROM {}").format(
                    sql.Literal(table), sql.Identifier(table)
                )
            )
        conn.commit()
        conn.autocommit = True
        say("VACUUM ANALYZE")
        conn.execute("VACUUM ANALYZE")
        counts = dict(
            conn.execute("SELECT status, count(*) FROM comments GROUP BY status").fetchall()
        )

    result = {
        "database_url": env["DATABASE_URL"],
        "sites": sites,
        "moderator_token": moderator["token"],
        "comments": counts,
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
