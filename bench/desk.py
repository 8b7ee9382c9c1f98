"""How fast the review desk answers on a big database (seed it first with ``bench/seed.py``).

    python bench/seed.py > /tmp/seeded.json          # 1,000,000 comments on PostgreSQL
    python bench/desk.py --seeded /tmp/seeded.json [--requests 200] [--clients 1]

Starts gunicorn (2 workers) on the seeded database and times, per kind of request, the queue
calls a moderator makes: the Pending queue (first page and the pages after it), the other queues
and sorts, the counts, the audit log, and the desk's HTML page. Prints p50/p95/max in ms per kind
and whether p95 is under the 100 ms target.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from load import Connection, Gunicorn, percentile  # bench/ is not a package: via sys.path

TARGET_MS = 100.0


def kinds(sites: list[str]) -> dict[str, list[str]]:
    """Request paths by kind (several variants of each, chosen at random per request)."""
    one = [f"site={key}" for key in sites]
    q = "/api/v1/moderation/queue?"
    return {
        "pending, oldest first": [q + s for s in one],
        "pending, all sites": [q.rstrip("?")],
        "pending, highest abuse": [q + s + "&sort=abuse" for s in one],
        "pending, highest spam": [q + s + "&sort=spam" for s in one],
        "reported, most reported": [q + s + "&queue=reported&sort=reports" for s in one],
        "spam queue": [q + s + "&queue=spam" for s in one],
        "approved queue (~225,000 rows per site)": [q + s + "&queue=approved" for s in one],
        "rejected, abuse 0.5-1": [q + s + "&queue=rejected&min_abuse=0.5" for s in one],
        "counts": ["/api/v1/moderation/counts?" + s for s in one],
        "audit log": ["/api/v1/moderation/audit?" + s for s in one],
    }


def session_cookie(env: dict[str, str]) -> bytes:
    """A signed session cookie of the seeded moderator, as Flask-Login would set at login."""
    os.environ.update(env)
    import sqlalchemy as sa

    from auth.models import User
    from moderation import create_app
    from moderation.extensions import db

    app = create_app()
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.email == "moderator@bench.example"))
        assert user is not None, "seed the database with bench/seed.py first"
        serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
        value = serializer.dumps({"_user_id": user.get_id(), "_fresh": True})
    return b"Cookie: session=%s\r\n" % value.encode()


def timed(conn: Connection, path: str, headers: bytes) -> tuple[float, int, bytes]:
    started = time.perf_counter()
    status, body = conn.request("GET", path, headers=headers)
    return (time.perf_counter() - started) * 1000, status, body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeded", required=True, help="the JSON bench/seed.py printed")
    parser.add_argument("--requests", type=int, default=200, help="per kind")
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    seeded = json.loads(Path(args.seeded).read_text())
    env = {
        **os.environ,
        "DATABASE_URL": seeded["database_url"],
        "SECRET_KEY": secrets.token_hex(32),
        "RATELIMIT_ENABLED": "false",
    }
    token = seeded["moderator_token"].encode()
    bearer = b"Authorization: Bearer %s\r\n" % token
    cookie = session_cookie(env)
    rng = random.Random(1)
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        server = Gunicorn(env, args.workers, args.threads, Path(tmp) / "gunicorn.log")
        try:
            server.wait_ready()
            requests = kinds(seeded["sites"])
            requests["desk page (HTML, /moderate)"] = [
                f"/moderate?site={key}" for key in seeded["sites"]
            ]
            for kind, paths in requests.items():
                headers = cookie if kind.startswith("desk page") else bearer
                latencies: list[float] = []
                failures: list[str] = []
                lock = threading.Lock()
                per_client = max(1, args.requests // args.clients)

                def client(
                    headers: bytes = headers,
                    paths: list[str] = paths,
                    latencies: list[float] = latencies,
                    failures: list[str] = failures,
                    lock: threading.Lock = lock,
                    per_client: int = per_client,
                ) -> None:
                    conn = Connection("127.0.0.1", server.port)
                    cursor = None
                    for _ in range(per_client):
                        path = rng.choice(paths)
                        # Half the calls continue where the previous page ended (keyset pages).
                        if cursor and rng.random() < 0.5:
                            sep = "&" if "?" in path else "?"
                            path = f"{path}{sep}{urlencode({'cursor': cursor})}"
                        ms, status, body = timed(conn, path, headers)
                        with lock:
                            if status != 200:
                                failures.append(f"{status} {path}: {body[:200]!r}")
                            else:
                                latencies.append(ms)
                        if status == 200 and body.startswith(b"{"):
                            cursor = json.loads(body).get("next_cursor")
                    conn.close()

                warm = Connection("127.0.0.1", server.port)
                for path in paths:
                    timed(warm, path, headers)
                warm.close()
                workers = [threading.Thread(target=client) for _ in range(args.clients)]
                for worker in workers:
                    worker.start()
                for worker in workers:
                    worker.join()
                latencies.sort()
                p95 = percentile(latencies, 0.95)
                results[kind] = {
                    "requests": len(latencies),
                    "failures": len(failures),
                    "first_failure": failures[0] if failures else None,
                    "p50_ms": round(percentile(latencies, 0.5) or 0, 1),
                    "p95_ms": round(p95 or 0, 1),
                    "max_ms": round(latencies[-1], 1) if latencies else None,
                    "target_met": p95 is not None and p95 < TARGET_MS and not failures,
                }
                print(f"{kind}: {results[kind]}", file=sys.stderr, flush=True)
        finally:
            server.stop()
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(
            f"\n| request ({args.clients} client(s)) | n | p50 ms | p95 ms | max ms "
            "| p95 < 100 ms |"
        )
        print("|---|---|---|---|---|---|")
        for kind, row in results.items():
            mark = "yes" if row["target_met"] else f"NO ({row['failures']} failed)"
            print(
                f"| {kind} | {row['requests']} | {row['p50_ms']} | {row['p95_ms']} | "
                f"{row['max_ms']} | {mark} |"
            )
    return 0 if all(row["target_met"] for row in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
