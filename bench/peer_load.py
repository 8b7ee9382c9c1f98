"""Load test against Isso: the same generated workload on our service and on Isso, side by side.

    make isso                                   # Isso from PyPI into .venv-isso (once)
    python bench/peer_load.py [--db sqlite|postgres] [--redis [URL]] [--clients 16]
                              [--seconds 30] [--workers 2] [--threads 4] [--json]

One after the other on loopback (see bench/README.md):

1. our service exactly as ``bench/load.py`` runs it (fresh database, one site, one commenter with
   an API token per client, ``gunicorn -w WORKERS --threads THREADS --preload wsgi:app``, rate
   limits off through ``RATELIMIT_ENABLED=false``), on SQLite or PostgreSQL, with Redis if asked;
2. Isso (``.venv-isso``) with a generated ``isso.cfg`` in a temp dir: its SQLite database there,
   moderation off, the rate guard off, ``host`` the articles' origin, served by the same gunicorn
   command line with ``isso.run`` and ``ISSO_SETTINGS``.

Both get the same workload from the same generator and seed: ``--seed-threads`` articles seeded
with ``--seed-comments`` comments each, a warm-up, then CLIENTS closed-loop keep-alive clients for
SECONDS, each request a thread read with probability READ_SHARE, otherwise a comment post
(1-4 generated sentences, some Markdown and links, a quarter of them replies quoting an earlier
comment of the same thread). Ours: ``POST /api/v1/comments`` with a bearer token and
``GET /api/v1/comments?site=&url=``; Isso: ``POST /new?uri=`` (author and e-mail, as its widget
sends them) and ``GET /?uri=&nested_limit=5`` (what its widget asks by default). Afterwards each
server's database is read: every id answered 201/202 must be stored. Exits 1 if either lost or
invented a comment.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

import load  # bench/ is not a package; load.py is its sibling

ROOT = load.ROOT
ISSO_PYTHON = ROOT / ".venv-isso" / "bin" / "python"
TARGETS = {"post_ratio": 5.0, "read_ratio": 10.0, "post_p99_ms": 100.0}

# Isso's own defaults except what the comparison needs: its database in the run's temp dir,
# moderation and the rate guard off (ours runs with rate limits off too), the articles' origin.
ISSO_CFG = """\
[general]
dbpath = {dbpath}
host = {origin}
notify = stdout

[moderation]
enabled = false

[guard]
enabled = false

[server]
listen = http://127.0.0.1:0
"""


def isso_read_path(site: str, url: str) -> str:
    """Isso's widget asks for a whole thread with up to 5 replies per top-level comment."""
    return f"/?uri={quote(urlsplit(url).path, safe='')}&nested_limit=5"


class IssoClient(load.Client):
    """The same commenter and reader, speaking Isso's API (no token: name and e-mail)."""

    def __init__(
        self, index: int, shared: load.Shared, port: int, seed: int, max_requests: int
    ) -> None:
        super().__init__(index, "", shared, port, seed, max_requests)
        self.auth = b""
        self.identity = {
            "author": f"Bench reader {index}",
            "email": f"bench{index:03d}@bench.example",
        }

    def post_request(self, data: dict[str, Any]) -> tuple[str, bytes]:
        comment: dict[str, Any] = {"text": data["body"], **self.identity}
        if "title" in data:  # a new thread: Isso would otherwise fetch the article for one
            comment["title"] = data["title"]
        if "parent_id" in data:
            comment["parent"] = data["parent_id"]
        path = f"/new?uri={quote(urlsplit(data['url']).path, safe='')}"
        return path, json.dumps(comment).encode()

    def post_answer(self, answer: bytes) -> tuple[int, bool]:
        comment = json.loads(answer)
        return comment["id"], comment["mode"] == 1  # 1 published, 2 waiting for moderation

    def read_count(self, answer: bytes) -> int:
        replies = json.loads(answer)["replies"]
        return len(replies) + sum(len(r.get("replies") or ()) for r in replies)


def isso_version() -> str:
    """The installed Isso's version (from its venv)."""
    out = subprocess.run(
        [str(ISSO_PYTHON), "-c", "import importlib.metadata as m; print(m.version('isso'))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def run_isso(args: argparse.Namespace) -> dict[str, Any]:
    """One load run of Isso on SQLite; the result in load.py's shape."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-isso-"))
    server: load.Gunicorn | None = None
    try:
        dbpath = tmp / "isso.db"
        cfg = tmp / "isso.cfg"
        cfg.write_text(ISSO_CFG.format(dbpath=dbpath, origin=load.ORIGIN))
        env = {**os.environ, "ISSO_SETTINGS": str(cfg), "PYTHONUNBUFFERED": "1"}
        env.pop("REDIS_URL", None)
        server = load.Gunicorn(
            env,
            args.workers,
            args.threads,
            tmp / "gunicorn.log",
            python=str(ISSO_PYTHON),
            app="isso.run",
            health="/info",
        )
        server.wait_ready()
        load.log(args, f"gunicorn on port {server.port}: {' '.join(server.command[2:])}", "isso")
        shared = load.Shared(
            site="", articles=[], read_paths=[], published={}, reader=isso_read_path
        )
        clients = [
            IssoClient(i, shared, server.port, args.seed, args.requests_per_connection)
            for i in range(args.clients)
        ]
        everything, part = load.measure(server, clients, shared, args, prefix="isso")
        server.stop()
        server = None
        conn = sqlite3.connect(dbpath)
        try:
            stored = {row[0] for row in conn.execute("SELECT id FROM comments")}
            (threads,) = conn.execute("SELECT count(*) FROM threads").fetchone()
        finally:
            conn.close()
        return {
            "config": {"db": "sqlite", "version": isso_version(), "command": server_command(args)},
            **part,
            "consistency": load.consistency(everything.acknowledged, stored),
            "database": {"threads": threads, "comments": len(stored)},
        }
    finally:
        if server is not None:
            server.stop()
        if args.keep:
            load.log(args, f"kept {tmp}", "isso")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def server_command(args: argparse.Namespace, app: str = "isso.run") -> str:
    return f"gunicorn -w {args.workers} --threads {args.threads} --preload {app}"


def ratio(ours: float | None, theirs: float | None) -> float | None:
    return round(ours / theirs, 2) if ours and theirs else None


def compare(ours: dict[str, Any], isso: dict[str, Any]) -> dict[str, Any]:
    """The ratios ours/Isso and the issue's targets."""
    o, i = ours["measured"], isso["measured"]
    post_ratio = ratio(o["post"]["per_second"], i["post"]["per_second"])
    read_ratio = ratio(o["read"]["per_second"], i["read"]["per_second"])
    p99 = o["post"]["latency_ms"]["p99"]
    return {
        "posts_per_second": post_ratio,
        "reads_per_second": read_ratio,
        "post_p99": ratio(p99, i["post"]["latency_ms"]["p99"]),
        "read_p99": ratio(o["read"]["latency_ms"]["p99"], i["read"]["latency_ms"]["p99"]),
        "cpu_ms_per_request": ratio(cpu_per_request(ours), cpu_per_request(isso)),
        "targets": {
            "posts_5x": post_ratio is not None and post_ratio >= TARGETS["post_ratio"],
            "reads_10x": read_ratio is not None and read_ratio >= TARGETS["read_ratio"],
            "post_p99_under_100ms": p99 is not None and p99 < TARGETS["post_p99_ms"],
            "nothing_lost": not ours["consistency"]["lost"] and not isso["consistency"]["lost"],
        },
    }


def cpu_per_request(result: dict[str, Any]) -> float | None:
    """Server CPU milliseconds per successful request in the measured window."""
    m = result["measured"]
    done = m["post"]["ok"] + m["read"]["ok"]
    return round(1000 * result["cpu"]["server_cpu_s"] / done, 2) if done else None


def print_side_by_side(result: dict[str, Any]) -> None:
    ours, isso, ratios = result["ours"], result["isso"], result["ratios"]
    cfg = ours["config"]
    db = cfg["db"] + (" + Redis" if cfg["redis"] else "")
    print(
        f"bench/peer_load.py  clients={cfg['clients']}  seconds={cfg['seconds']}  "
        f"warmup={cfg['warmup']}  read_share={cfg['read_share']}  seed={cfg['seed']}  "
        f"seeded={cfg['seed_threads']}x{cfg['seed_comments']}  nproc={ours['machine']['nproc']}"
    )
    print(f"ours: {server_command(argparse.Namespace(**cfg), 'wsgi:app')} on {db}")
    print(f"Isso {isso['config']['version']}: {isso['config']['command']} on SQLite\n")

    def row(label: str, a: Any, b: Any, r: Any = "", target: str = "") -> None:
        cells = [
            "-" if v is None else (f"{v:.1f}" if isinstance(v, float) else str(v))
            for v in (a, b, r)
        ]
        print(f"{label:26} {cells[0]:>14} {cells[1]:>14} {cells[2]:>10}  {target}")

    row("", "ours", "Isso", "ours/Isso", "target")
    print("-" * 80)
    om, im = ours["measured"], isso["measured"]
    row(
        "posts/s",
        om["post"]["per_second"],
        im["post"]["per_second"],
        ratios["posts_per_second"],
        ">= 5x",
    )
    row(
        "reads/s",
        om["read"]["per_second"],
        im["read"]["per_second"],
        ratios["reads_per_second"],
        ">= 10x",
    )
    for kind in ("post", "read"):
        for p in ("p50", "p99"):
            row(
                f"{kind} {p} ms",
                om[kind]["latency_ms"][p],
                im[kind]["latency_ms"][p],
                ratios[f"{kind}_p99"]
                if p == "p99"
                else ratio(om[kind]["latency_ms"][p], im[kind]["latency_ms"][p]),
                "< 100 ms (ours)" if (kind, p) == ("post", "p99") else "",
            )
    row("comments per read", om["read"]["comments_per_read"], im["read"]["comments_per_read"])
    row("posts held (202)", om["held"], im["held"])
    for kind in ("post", "read"):
        row(
            f"{kind} errors",
            sum(om[kind]["errors"].values()),
            sum(im[kind]["errors"].values()),
        )
    for name, r in (("ours", ours), ("Isso", isso)):
        c = r["consistency"]
        verdict = "OK" if c["equal"] else f"MISMATCH: {c['lost']} lost"
        if c["duplicate_ids"]:
            verdict += f"; {c['duplicate_ids']} ids answered to two posts (a wrong id answered)"
        print(
            f"{'acknowledged vs stored':26} {name}: {c['acknowledged']} acknowledged (all phases), "
            f"{c['stored']} stored -> {verdict}"
        )
    row("server CPU s (window)", ours["cpu"]["server_cpu_s"], isso["cpu"]["server_cpu_s"])
    row("server cores", ours["cpu"]["server_cores"], isso["cpu"]["server_cores"])
    row(
        "  per worker",
        " + ".join(f"{c:.2f}" for c in ours["cpu"]["server_processes"]),
        " + ".join(f"{c:.2f}" for c in isso["cpu"]["server_processes"]),
    )
    row(
        "server CPU ms / request",
        cpu_per_request(ours),
        cpu_per_request(isso),
        ratios["cpu_ms_per_request"],
    )
    row("load generator cores", ours["cpu"]["client_cores"], isso["cpu"]["client_cores"])
    row("everything else, cores", ours["cpu"]["other_cores"], isso["cpu"]["other_cores"])
    row("database: threads", ours["database"]["threads"], isso["database"]["threads"])
    row("database: comments", ours["database"]["comments"], isso["database"]["comments"])
    busy = [
        n
        for n, r in (("ours", ours), ("Isso", isso))
        if (r["cpu"]["other_cores"] or 0) > load.BUSY_MACHINE
    ]
    if busy:
        print(f"WARNING: other work used the CPU during the run of {', '.join(busy)}; run again.")
    t = ratios["targets"]
    print(
        "\ntargets: posts >= 5x Isso: {}; reads >= 10x Isso: {}; post p99 < 100 ms: {}; "
        "nothing lost: {}".format(*("met" if t[k] else "NOT met" for k in t))
    )
    for name, r in (("ours", ours), ("Isso", isso)):
        for sample in r["error_samples"]:
            print(f"  first errors ({name}): {sample}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite", help="ours only")
    p.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL", load.DEFAULT_PG_URL))
    p.add_argument(
        "--redis",
        nargs="?",
        const="redis://127.0.0.1:6379/9",
        default="",
        metavar="URL",
        help="serve ours with REDIS_URL (limiter storage, caches, job queues); default db 9",
    )
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers, both servers")
    p.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker, both")
    p.add_argument("--read-share", type=float, default=0.8)
    p.add_argument("--seed-threads", type=int, default=50)
    p.add_argument("--seed-comments", type=int, default=5)
    p.add_argument("--seed", type=int, default=1, help="random seed of the workload")
    p.add_argument(
        "--requests-per-connection",
        type=int,
        default=load.REQUESTS_PER_CONNECTION,
        help="a client reconnects after this many requests (0: never)",
    )
    p.add_argument("--only", choices=("ours", "isso"), help="run one side only (development)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--keep", action="store_true", help="keep the temp dirs (and PG database)")
    args = p.parse_args(argv)
    if not 0 <= args.read_share <= 1:
        p.error("--read-share must be from 0 to 1")
    if args.clients < 1 or args.seconds <= 0 or args.workers < 1 or args.threads < 1:
        p.error("--clients, --seconds, --workers and --threads must be positive")
    if args.only != "ours" and not ISSO_PYTHON.exists():
        p.error(f"{ISSO_PYTHON} not found: run `make isso` first")
    args.profile = 0
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    ours = isso = None
    if args.only != "isso":
        result = load.run(args)
        assert not isinstance(result, int)
        ours = result
        ours["config"]["command"] = server_command(args, "wsgi:app")
    if args.only != "ours":
        isso = run_isso(args)
    if ours is None or isso is None:  # one side only: load.py's table or JSON
        single = ours or isso
        assert single is not None
        print(json.dumps(single, indent=2))
        return 0 if not single["consistency"]["lost"] else 1
    result = {"ours": ours, "isso": isso, "ratios": compare(ours, isso)}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_side_by_side(result)
    return 0 if result["ratios"]["targets"]["nothing_lost"] else 1


if __name__ == "__main__":
    sys.exit(main())
