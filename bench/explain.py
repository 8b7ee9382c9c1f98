"""EXPLAIN (ANALYZE, BUFFERS) of the review queue's queries on the seeded million-comment database.

    python bench/seed.py > /tmp/seeded.json      # once: the database bench_queue (~4 minutes)
    python bench/explain.py [--pg-url postgresql://postgres@127.0.0.1:5432/bench_queue]
                            [--repeat 3] [--json] [--plans DIR]

The SQL is not copied here: each case calls the review desk's own functions
(``moderation.desk.queue``, the per-site counts, the metrics' status count) and records the
statements they send; each statement on ``comments`` is then run again under
``EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)`` with the same parameters, ``--repeat`` times. Prints,
per statement: the indexes used, any sequential scan or sort, the rows returned, the execution
time (median of the repeats) and the shared buffers hit/read (of the last repeat).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/bench_queue"


@dataclass
class Statement:
    """One statement a case sent, and what its plans showed."""

    sql: str
    params: Any
    indexes: list[str] = field(default_factory=list)
    seq_scans: list[str] = field(default_factory=list)
    sorts: list[str] = field(default_factory=list)
    rows: int = 0
    times_ms: list[float] = field(default_factory=list)
    hit: int = 0
    read: int = 0
    plan: Any = None

    def summary(self) -> dict[str, Any]:
        """What the report prints for this statement."""
        return {
            "indexes": self.indexes,
            "seq_scans": self.seq_scans,
            "sorts": self.sorts,
            "rows": self.rows,
            "ms_median": round(statistics.median(self.times_ms), 2),
            "ms_max": round(max(self.times_ms), 2),
            "buffers_hit": self.hit,
            "buffers_read": self.read,
            "what": self.what(),
            "sql": " ".join(self.sql.split()),
        }

    def what(self) -> str:
        """A short name for the statement: a page of comments, or a count."""
        sql = " ".join(self.sql.split())
        if "GROUP BY" in sql:
            return "count by status"
        if "count(*)" in sql:
            return "count"
        if sql.startswith("SELECT comments.id"):
            return "page"
        return sql[:40]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_EXPLAIN_URL", DEFAULT_URL))
    parser.add_argument("--repeat", type=int, default=3, help="EXPLAIN ANALYZE runs per query")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--plans", type=Path, help="write each full JSON plan into this folder")
    return parser.parse_args(argv)


@contextmanager
def recording(engine: Any) -> Iterator[list[Statement]]:
    """The statements sent on ``engine`` inside the block."""
    import sqlalchemy as sa

    seen: list[Statement] = []

    def before(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        seen.append(Statement(statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", before)


def walk(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every node of a JSON plan, depth first."""
    yield node
    for child in node.get("Plans", ()):
        yield from walk(child)


def explain(connection: Any, statement: Statement, repeat: int) -> None:
    """Run ``statement`` under EXPLAIN ANALYZE ``repeat`` times; keep what its plan shows."""
    for _ in range(repeat):
        result = connection.exec_driver_sql(
            "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement.sql, statement.params
        ).scalar()
        document = result if isinstance(result, list) else json.loads(result)
        top = document[0]
        statement.times_ms.append(float(top["Execution Time"]))
    plan = top["Plan"]
    statement.plan = document
    statement.rows = int(plan.get("Actual Rows", 0))
    statement.hit = int(plan.get("Shared Hit Blocks", 0))
    statement.read = int(plan.get("Shared Read Blocks", 0))
    for node in walk(plan):
        kind = node["Node Type"]
        if "Index Name" in node:
            label = f"{node['Index Name']} ({kind.lower()})"
            if label not in statement.indexes:
                statement.indexes.append(label)
        elif kind == "Seq Scan":
            statement.seq_scans.append(f"{node.get('Relation Name')} ({node.get('Actual Rows')})")
        if kind in ("Sort", "Incremental Sort"):
            keys = ", ".join(node.get("Sort Key", []))
            statement.sorts.append(f"{kind.lower()} on {keys} ({node.get('Sort Method', '?')})")


def cases(moderator: Any, sites: list[Any]) -> list[tuple[str, Callable[[], Any]]]:
    """(name, call) for every queue query a moderator's desk makes, through desk.py."""
    from moderation import desk, ops
    from moderation.desk import QueueFilter

    one = [sites[0].key]

    def page(keys: list[str], **what: Any) -> Callable[[], Any]:
        return lambda: desk.queue(moderator, keys, QueueFilter(**what))

    def second_page(keys: list[str], **what: Any) -> Callable[[], Any]:
        def call() -> Any:
            first = desk.queue(moderator, keys, QueueFilter(**what))
            return desk.queue(moderator, keys, QueueFilter(**what), cursor=first.next_cursor)

        return call

    return [
        ("pending, oldest first (one site)", page(one)),
        ("pending, oldest first, page 2 (one site)", second_page(one)),
        ("pending, oldest first (all four sites)", page([])),
        ("pending, highest abuse", page(one, sort="abuse")),
        ("pending, highest spam", page(one, sort="spam")),
        ("pending, newest first", page(one, sort="newest")),
        ("pending, reason abuse_score", page(one, reason="abuse_score")),
        ("reported, most reported", page(one, queue="reported", sort="reports")),
        ("spam queue", page(one, queue="spam")),
        ("approved queue (~225,000 rows per site)", page(one, queue="approved")),
        ("approved, page 2", second_page(one, queue="approved")),
        ("rejected, abuse 0.5-1", page(one, queue="rejected", min_abuse=0.5)),
        ("queue counts of one site", lambda: desk._count_site(sites[0].id)),
        ("metrics: comments by status, all but published", ops._comment_counts),
    ]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.pg_url.startswith("postgres"):
        print("bench/explain.py needs a PostgreSQL URL (--pg-url).", file=sys.stderr)
        return 2
    os.environ.update(
        {
            "DATABASE_URL": args.pg_url,
            "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_hex(32),
            # EXPLAIN ANALYZE of a slow plan must finish to be read; the web's limit is 5 s.
            "DATABASE_STATEMENT_TIMEOUT_MS": "0",
        }
    )
    import sqlalchemy as sa

    from auth.models import SiteMembership, SiteRole, User
    from moderation import create_app
    from moderation.extensions import db
    from moderation.models import Comment, Site

    # Queue counts cached for the whole run: each page case then shows its page query alone,
    # and the counts have their own case (the desk caches them 5 s per site).
    app = create_app({"MODERATION_COUNTS_TTL": 3600})
    report: list[dict[str, Any]] = []
    with app.app_context():
        total = db.session.scalar(sa.select(sa.func.count()).select_from(Comment)) or 0
        if total == 0:
            print(
                "The database holds no comments: seed it first with bench/seed.py.",
                file=sys.stderr,
            )
            return 2
        moderator = db.session.scalar(
            sa.select(User)
            .join(SiteMembership, SiteMembership.user_id == User.id)
            .where(SiteMembership.role == SiteRole.MODERATOR)
            .group_by(User.id)
            .order_by(sa.func.count().desc(), User.id)
            .limit(1)
        )
        sites = list(db.session.scalars(sa.select(Site).order_by(Site.name, Site.id)))
        if moderator is None or not sites:
            print("No moderator or site found: was the database seeded?", file=sys.stderr)
            return 2
        server = db.session.scalar(sa.text("SHOW server_version"))
        from moderation import desk

        desk.queue_counts(sites)  # fill the counts cache
        for name, call in cases(moderator, sites):
            with recording(db.engine) as seen:
                call()
            db.session.rollback()
            statements = [s for s in seen if "comments" in s.sql and "SAVEPOINT" not in s.sql]
            with db.engine.connect() as connection:
                for statement in statements:
                    explain(connection, statement, args.repeat)
                connection.rollback()
            report.append({"case": name, "statements": [s.summary() for s in statements]})
            if args.plans:
                args.plans.mkdir(parents=True, exist_ok=True)
                slug = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
                for number, statement in enumerate(statements, 1):
                    path = args.plans / f"{slug}-{number}.json"
                    path.write_text(json.dumps({"sql": statement.sql, "plan": statement.plan}))

    if args.json:
        print(json.dumps({"comments": total, "server": server, "cases": report}, indent=2))
        return 0
    print(f"{total:,} comments; PostgreSQL {server}; median of {args.repeat} EXPLAIN ANALYZE runs")
    print()
    print(
        "| case | query | indexes | seq scan / sort | rows | ms (median/max) | buffers hit/read |"
    )
    print("|---|---|---|---|---|---|---|")
    for case in report:
        pages = sum(s["what"] == "page" for s in case["statements"])
        number = 0
        for s in case["statements"]:
            extra = "; ".join(s["seq_scans"] + s["sorts"]) or "–"
            what = s["what"]
            if what == "page" and pages > 1:
                number += 1
                what = f"page {number}"
            print(
                f"| {case['case']} | {what} | {', '.join(s['indexes']) or '–'} | {extra} "
                f"| {s['rows']:,} | {s['ms_median']:.2f} / {s['ms_max']:.2f} "
                f"| {s['buffers_hit']:,} / {s['buffers_read']:,} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
