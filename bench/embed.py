"""The widget's cost to an article page: embed.js size, time to a visible thread, big threads.

    python bench/embed.py [--loads 10] [--comments 5000] [--renders 50] [--phases]

1. ``/embed.js`` as served: bytes, and bytes gzipped (target: under 10 KB gzipped).
2. The demo article in headless chromium (Debian's), news page on ``localhost``, the service on
   ``127.0.0.1`` (cross-origin, as for a customer): from the moment the browser starts fetching
   embed.js to the iframe's first message to the page (sent once the thread is rendered and
   measured), over ``--loads`` fresh browser profiles (target: under 300 ms on loopback).
   ``--phases`` adds the median time of each step on the way (page and frame clocks aligned
   through ``performance.timeOrigin``), to see where the time goes.
3. A thread of ``--comments`` published comments: server time of its first page, in-process
   through Flask's test client, for the iframe page (``/embed/thread``) and the JSON API
   (target: under 50 ms).
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import flask_migrate
import sqlalchemy as sa
from load import free_port
from werkzeug.serving import make_server

from moderation import create_app, demo
from moderation.db import utcnow
from moderation.extensions import db
from moderation.models import Comment, Site, Thread
from moderation.status import Status

HOST = "127.0.0.1"
ARTICLE = "/articles/council-backs-mill-race-footbridge"
# Runs in every frame: the page notes when the comment frame first speaks to it.
FIRST_MESSAGE = """
window.addEventListener("message", () => {
  if (window.__firstMessage === undefined) window.__firstMessage = performance.now();
});
if (window.top === window) {
  new MutationObserver(() => {
    if (window.__frameAt === undefined && document.querySelector("iframe")) {
      window.__frameAt = performance.now();
    }
  }).observe(document, { childList: true, subtree: true });
}
"""
# The steps inside the comment frame, in its own clock (ms since its navigation started).
FRAME_STEPS = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const res = (part) => performance.getEntriesByType("resource").find((e) => e.name.includes(part));
  const paint = performance.getEntriesByName("first-contentful-paint")[0];
  return {
    origin: performance.timeOrigin,
    "frame request sent": nav.requestStart,
    "frame HTML received": nav.responseEnd,
    "thread.css received": res("thread.css") ? res("thread.css").responseEnd : null,
    "thread.js received": res("thread.js") ? res("thread.js").responseEnd : null,
    "frame DOM parsed": nav.domInteractive,
    "frame first paint": paint ? paint.startTime : null,
  };
}"""


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def seed_big_thread(site: Site, count: int) -> str:
    url = f"{site.origins[0]}/news/the-big-one"
    thread = Thread(site_id=site.id, url=url, title="The big one", comment_count=count)
    db.session.add(thread)
    db.session.flush()
    start = utcnow() - timedelta(days=3)
    db.session.execute(
        sa.insert(Comment),
        [
            {
                "thread_id": thread.id,
                "site_id": site.id,
                "author_name": f"Reader {n % 300}",
                "body": f"Comment number {n}: the council should publish the figures.",
                "html": f"<p>Comment number {n}: the council should publish the figures.</p>\n",
                "status": Status.PUBLISHED,
                "spam_score": 0.01,
                "abuse_score": 0.1,
                "reasons": [],
                "body_hash": f"{n:064d}",
                "created_at": start + timedelta(seconds=n),
                "updated_at": start + timedelta(seconds=n),
            }
            for n in range(count)
        ],
    )
    db.session.commit()
    return url


def render_times(app: Any, site_key: str, url: str, renders: int) -> dict[str, Any]:
    client = app.test_client()
    query = f"site={site_key}&url={quote(url, safe='')}"
    paths = {
        "iframe page (/embed/thread)": f"/embed/thread?{query}",
        "JSON API (/api/v1/comments)": f"/api/v1/comments?{query}",
    }
    found: dict[str, Any] = {}
    for name, path in paths.items():
        assert client.get(path).status_code == 200, path  # warm caches
        times = []
        for _ in range(renders):
            started = time.perf_counter()
            response = client.get(path)
            times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
        found[name] = {
            "p50_ms": round(statistics.median(times), 1),
            "p95_ms": round(percentile(times, 0.95), 1),
        }
    return found


def browser_loads(port: int, loads: int, phases: dict[str, list[float]]) -> list[float]:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("needs Debian's chromium (apt-get install -y chromium)")
    times: list[float] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium,
            headless=True,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
        )
        for _ in range(loads + 1):  # the first load warms the server; not counted
            context = browser.new_context(viewport={"width": 1000, "height": 2400})
            context.add_init_script(FIRST_MESSAGE)
            page = context.new_page()
            page.goto(f"http://localhost:{port}{ARTICLE}")
            page.wait_for_function("window.__firstMessage !== undefined", timeout=10_000)
            started = page.evaluate(
                """() => performance.getEntriesByType("resource")
                    .find((entry) => entry.name.endsWith("/embed.js")).startTime"""
            )
            times.append(page.evaluate("window.__firstMessage") - started)
            top = page.evaluate(
                """() => ({origin: performance.timeOrigin, frameAt: window.__frameAt,
                    js: performance.getEntriesByType("resource")
                        .find((entry) => entry.name.endsWith("/embed.js")).responseEnd})"""
            )
            frame = next(f for f in page.frames if "/embed/thread" in f.url)
            inner = frame.evaluate(FRAME_STEPS)
            shift = inner.pop("origin") - top["origin"] - started  # frame clock -> ours
            steps = {"embed.js received": top["js"] - started}
            steps["iframe inserted"] = top["frameAt"] - started
            steps.update({k: v + shift for k, v in inner.items() if v is not None})
            steps["first message at the page"] = times[-1]
            for name, value in steps.items():
                phases.setdefault(name, []).append(value)
            context.close()
        browser.close()
    return times[1:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--loads", type=int, default=10)
    parser.add_argument("--comments", type=int, default=5000)
    parser.add_argument("--renders", type=int, default=50)
    parser.add_argument("--phases", action="store_true", help="median time of each step")
    parser.add_argument(
        "--no-cache", action="store_true", help="read cache off: every render hits the database"
    )
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="bench-embed-"))
    port = free_port()
    app = create_app(
        {
            "SECRET_KEY": "bench-embed",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'embed.db'}",
            "RATELIMIT_ENABLED": False,
            "JOBS_SYNC": True,
            "CACHE_ENABLED": not args.no_cache,
        },
        instance_path=folder / "instance",
    )
    result: dict[str, Any] = {}
    try:
        with app.app_context():
            flask_migrate.upgrade()
            demo.seed(reset=True, port=port)
            site = db.session.scalar(sa.select(Site).where(Site.key == demo.DEMO_SITE_KEY))
            assert site is not None
            big = seed_big_thread(site, args.comments)
            script = app.test_client().get("/embed.js").data
            result["embed_js_bytes"] = len(script)
            result["embed_js_gzip_bytes"] = len(gzip.compress(script, 9))
            result[f"first page of a {args.comments}-comment thread"] = render_times(
                app, site.key, big, args.renders
            )
            db.session.remove()
        server = make_server(HOST, port, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            phases: dict[str, list[float]] = {}
            loads = browser_loads(port, args.loads, phases)
        finally:
            server.shutdown()
        result["embed.js fetch start to thread rendered (ms)"] = {
            "loads": len(loads),
            "p50": round(statistics.median(loads), 1),
            "p95": round(percentile(loads, 0.95), 1),
            "max": round(max(loads), 1),
        }
        if args.phases:  # the first (warm-up) load is left out, as above
            result["steps, median ms after embed.js fetch start"] = {
                name: round(statistics.median(values[1:]), 1) for name, values in phases.items()
            }
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
