"""Import a generated WordPress export of ~50 MB through the CLI: time and peak memory.

    .venv/bin/python bench/import_big.py                 # SQLite, 50 MB, and a 5 MB file to compare
    .venv/bin/python bench/import_big.py --mb 200
    .venv/bin/python bench/import_big.py --db postgres   # database bench_import_<pid> on --pg-url

Writes the WXR file on the fly (posts with 40 comments each, a third of them replies, 5 % pending,
5 % spam, 2 % trash, HTML and unicode in the bodies), then runs `flask --app wsgi db upgrade`,
`sites create`, `import wordpress FILE --site KEY` twice (the second run must import nothing)
and `export --site KEY`, each in its own process, and prints each one's wall time and peak RSS
(from wait4) as JSON. Memory that stays flat from 5 MB to 50 MB is the point: the importer
streams.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
WORDS = (  # noqa: SIM905 (a sentence reads better than a list of quoted words)
    "council harbour festival bridge vote rates school library road parking bus ferry tide "
    "market volunteers crowd music weather flood budget mayor planning housing café naïve"
).split()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=float, default=50.0, help="size of the big file")
    parser.add_argument("--small-mb", type=float, default=5.0, help="size of the comparison file")
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL", DEFAULT_PG_URL))
    parser.add_argument("--seed", type=int, default=7)
    return parser.parse_args(argv)


def comment_html(rng: random.Random) -> str:
    """A comment body of 200-700 characters with some of WordPress's HTML."""
    words = [rng.choice(WORDS) for _ in range(rng.randint(30, 110))]
    if rng.random() < 0.3:
        words.insert(rng.randrange(len(words)), "<strong>really</strong>")
    if rng.random() < 0.2:
        words.append('<a href="https://example.org/source">source</a>')
    text = " ".join(words)
    return text.replace(" school ", "\n\n", 1)


def write_wxr(path: Path, size: int, rng: random.Random) -> dict[str, int]:
    """Write a WXR file of about ``size`` bytes; what it holds."""
    counts = {"posts": 0, "comments": 0}
    with path.open("w", encoding="utf-8") as out:
        out.write(
            '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0" '
            'xmlns:wp="http://wordpress.org/export/1.2/">\n<channel>\n<title>Bench</title>\n'
            "<link>http://bench.example</link>\n"
            "<wp:base_site_url>http://bench.example</wp:base_site_url>\n"
        )
        comment_id = 0
        while out.tell() < size:
            counts["posts"] += 1
            post = counts["posts"]
            out.write(
                f"<item><title>Story {post}</title>"
                f"<link>http://bench.example/{2020 + post % 5}/story-{post}/</link>"
                f"<wp:post_id>{post}</wp:post_id>"
                f"<wp:post_date_gmt>2024-01-01 00:00:00</wp:post_date_gmt>"
                "<wp:comment_status>open</wp:comment_status><wp:post_type>post</wp:post_type>\n"
            )
            first = comment_id + 1
            for n in range(40):
                comment_id += 1
                parent = rng.randint(first, comment_id - 1) if n and rng.random() < 0.33 else 0
                roll = rng.random()
                approved = (
                    "0"
                    if roll < 0.05
                    else "spam"
                    if roll < 0.10
                    else "trash"
                    if roll < 0.12
                    else "1"
                )
                out.write(
                    f"<wp:comment><wp:comment_id>{comment_id}</wp:comment_id>"
                    f"<wp:comment_author><![CDATA[Reader {rng.randint(1, 5000)}]]>"
                    "</wp:comment_author>"
                    f"<wp:comment_author_email>r{rng.randint(1, 5000)}@bench.example"
                    "</wp:comment_author_email>"
                    # Later comments are later in time, as replies follow their parents.
                    f"<wp:comment_date_gmt>2024-01-{1 + post % 28:02d} 10:{n:02d}:00"
                    "</wp:comment_date_gmt>"
                    f"<wp:comment_content><![CDATA[{comment_html(rng)}]]></wp:comment_content>"
                    f"<wp:comment_approved>{approved}</wp:comment_approved>"
                    "<wp:comment_type>comment</wp:comment_type>"
                    f"<wp:comment_parent>{parent}</wp:comment_parent></wp:comment>\n"
                )
            counts["comments"] = comment_id
            out.write("</item>\n")
        out.write("</channel>\n</rss>\n")
    return counts


def run_child(
    args: list[str], env: dict[str, str], stdout: Any = subprocess.PIPE
) -> dict[str, Any]:
    """Run ``flask --app wsgi ARGS`` (stdout to a file); wall seconds and the child's peak RSS."""
    command = [sys.executable, "-m", "flask", "--app", "wsgi", *args]
    start = time.perf_counter()
    pid = os.posix_spawn(
        sys.executable,
        command,
        env,
        file_actions=[(os.POSIX_SPAWN_DUP2, stdout.fileno(), 1)] if stdout is not None else [],
    )
    _, status, usage = os.wait4(pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"flask {' '.join(args)} failed with {os.waitstatus_to_exitcode(status)}")
    return {"seconds": round(seconds, 2), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1)}


def measure(path: Path, counts: dict[str, int], env: dict[str, str], work: Path) -> dict[str, Any]:
    """Create a site, import ``path`` twice and export it; the numbers of each step."""
    created = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "sites", "create", "--name", path.stem,
         "--origin", "http://bench.example"],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    key = json.loads(created.stdout)["site"]
    results: dict[str, Any] = {"file_mb": round(path.stat().st_size / 2**20, 1), **counts}
    for step in ("import", "reimport"):
        summary = work / f"{path.stem}-{step}.json"
        with summary.open("w") as out:
            results[step] = run_child(
                ["import", "wordpress", str(path), "--site", key, "--quiet"], env, out
            )
        results[step]["summary"] = json.loads(summary.read_text())["comments"]
    with (work / f"{path.stem}.ndjson").open("w") as out:
        results["export_ndjson"] = run_child(["export", "--site", key], env, out)
    results["comments_per_second"] = round(counts["comments"] / results["import"]["seconds"])
    return results


def main(argv: list[str] | None = None) -> None:
    """Generate, import, measure, print JSON."""
    options = parse_args(argv)
    rng = random.Random(options.seed)
    with tempfile.TemporaryDirectory(prefix="import-bench-") as tmp:
        work = Path(tmp)
        env = {**os.environ, "SECRET_KEY": "bench-" + "0" * 58, "APP_ENV": "development"}
        env.pop("REDIS_URL", None)
        pg_admin = None
        if options.db == "postgres":
            import psycopg

            name = f"bench_import_{os.getpid()}"
            pg_admin = (options.pg_url, name)
            with psycopg.connect(options.pg_url, autocommit=True) as connection:
                connection.execute(f'CREATE DATABASE "{name}"')
            env["DATABASE_URL"] = options.pg_url.rsplit("/", 1)[0] + "/" + name
        else:
            env["DATABASE_URL"] = f"sqlite:///{work / 'bench.db'}"
        try:
            subprocess.run(
                [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
                cwd=ROOT, env=env, check=True, capture_output=True,
            )  # fmt: skip
            with (work / "baseline.out").open("w") as out:
                baseline = run_child(["sites", "list"], env, out)
            report: dict[str, Any] = {
                "database": options.db,
                "app_only": baseline,  # the app's own import cost, for comparison
            }
            for label, megabytes in (("small", options.small_mb), ("big", options.mb)):
                path = work / f"{label}.xml"
                counts = write_wxr(path, int(megabytes * 2**20), rng)
                report[label] = measure(path, counts, env, work)
                path.unlink()
            print(json.dumps(report, indent=2))
        finally:
            if pg_admin is not None:
                import psycopg

                with psycopg.connect(pg_admin[0], autocommit=True) as connection:
                    connection.execute(f'DROP DATABASE IF EXISTS "{pg_admin[1]}" WITH (FORCE)')


if __name__ == "__main__":
    main()
