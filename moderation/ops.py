"""Operations endpoints: liveness (``/healthz``), readiness (``/readyz``), Prometheus ``/metrics``.

- ``/healthz``: the process answers; touches nothing else (a liveness probe must not fail
  because the database is down, or the orchestrator restarts healthy processes in a loop).
- ``/readyz``: 200 only when the database answers, the classifier model is loaded and scores,
  and, with ``REDIS_URL``, Redis and the job queues answer; else 503 naming each failing check.
- ``/metrics``: the Prometheus text format, for ``METRICS_TOKEN`` bearers and ``METRICS_ALLOW``
  addresses only. Counters and histograms live in this process (or, under gunicorn, in
  ``PROMETHEUS_MULTIPROC_DIR``, summed over the workers); the comment and queue gauges are read
  from the database and Redis at scrape time, cached ``METRICS_CACHE_SECONDS``.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    g,
    has_app_context,
    jsonify,
    request,
)
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Unauthorized

from moderation import events
from moderation.extensions import db, limiter
from moderation.models import Comment
from moderation.status import Status

__all__ = [
    "CLASSIFIER_SECONDS",
    "COMMENTS_POSTED",
    "HOLD_REASONS",
    "JOB_FAILURES",
    "REQUEST_SECONDS",
    "after_fork",
    "bp",
    "init_app",
    "readiness",
    "record_job_failure",
    "warm_up",
]

log = logging.getLogger(__name__)

EXTENSION = "ops"
# Where RQ workers count failed job attempts (a hash: queue -> count), so that the web
# processes can report failures that happened in other processes and machines.
JOB_FAILURES_KEY = "moderation:job-failures"
# The HTTP methods that get their own label; anything else is "other" (bounded cardinality).
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# --- metrics kept by each process -------------------------------------------------------------

# No "_created" series next to every counter and histogram: twice the lines for nothing we use.
disable_created_metrics()

HOLD_REASONS = Counter(
    "moderation_hold_reasons",
    "Reasons given for comments the system did not publish, by reason code and status.",
    ["reason", "status"],
)
CLASSIFIER_SECONDS = Histogram(
    "moderation_classifier_seconds",
    "Time the classifier took to score one comment.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
REQUEST_SECONDS = Histogram(
    "moderation_request_seconds",
    "Time to answer a request, by Flask endpoint and method.",
    ["endpoint", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
COMMENTS_POSTED = Counter(
    "moderation_comments_posted",
    "Comments posted, by the status the system gave them.",
    ["status"],
)
JOB_FAILURES = Counter(
    "moderation_job_failures",
    "Background job attempts that failed in this process (in-process jobs), by queue.",
    ["queue"],
)

bp = Blueprint("ops", __name__)


@dataclass
class _State:
    """Per-app settings and caches of this module."""

    allow: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    lock: threading.Lock = field(default_factory=threading.Lock)
    snapshot: tuple[float, _Snapshot] | None = None
    redis: Any = None


@dataclass(frozen=True)
class _Snapshot:
    """What a scrape reads from the database and Redis (cached a few seconds)."""

    comments: dict[str, int] | None  # None: the database did not answer
    queues: dict[str, dict[str, float]] | None  # queue -> figures; None: no Redis or it failed
    rq_failures: dict[str, int] | None


def init_app(app: Flask) -> None:
    """Add /healthz, /readyz and /metrics, the request timer and the posted-comment counters."""
    app.extensions[EXTENSION] = _State(allow=_parse_allow(app.config.get("METRICS_ALLOW", "")))
    app.register_blueprint(bp)
    # First, so that the time spent in other before_request hooks (sessions, limits) counts too.
    app.before_request_funcs.setdefault(None, []).insert(0, _start_timer)
    app.after_request(_observe_request)
    events.comment_posted.connect(_count_posted)  # global; connecting twice is a no-op


def _state(app: Flask) -> _State:
    return app.extensions[EXTENSION]  # type: ignore[no-any-return]


def _parse_allow(value: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    networks = []
    for item in value.split(","):
        if not item.strip():
            continue
        try:
            networks.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError:
            raise RuntimeError(
                f"METRICS_ALLOW must list addresses or networks separated by commas "
                f"(like 127.0.0.1,10.0.0.0/8); {item.strip()!r} is neither."
            ) from None
    return tuple(networks)


# --- liveness and readiness -------------------------------------------------------------------


@bp.get("/healthz")
@limiter.exempt
def healthz() -> tuple[Response, int]:
    """Liveness: the process answers (nothing else is checked)."""
    return jsonify({"status": "ok"}), 200


@bp.get("/readyz")
@limiter.exempt
def readyz() -> tuple[Response, int]:
    """Readiness: 200 when every dependency answers, else 503 naming the failing checks."""
    checks = readiness(current_app._get_current_object())  # type: ignore[attr-defined]
    failing = [name for name, problem in checks.items() if problem is not None]
    body = {
        "status": "unavailable" if failing else "ok",
        "checks": {name: problem or "ok" for name, problem in checks.items()},
        "failing": failing,
    }
    return jsonify(body), 503 if failing else 200


def readiness(app: Flask) -> dict[str, str | None]:
    """Each check's problem (a sentence), or None when it passed, in the current app context."""
    from moderation import scoring  # scoring imports this module's metrics

    checks: dict[str, str | None] = {"database": _check_database()}
    checks["classifier"] = scoring.readiness_problem()
    if app.config.get("REDIS_URL"):
        redis_problem = _check_redis(app)
        checks["redis"] = redis_problem
        checks["jobs"] = (
            "not checked: Redis does not answer" if redis_problem else _check_queues(app)
        )
    return checks


def _check_database() -> str | None:
    try:
        db.session.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as exc:
        db.session.rollback()
        log.warning("Readiness: the database does not answer (%s)", type(exc).__name__)
        return "the database does not answer"
    return None


def _redis(app: Flask) -> Any:
    """A Redis client for health and metrics, with short timeouts (made once per app)."""
    from redis import Redis

    state = _state(app)
    with state.lock:
        if state.redis is None:
            # Short: a probe that waits longer than the load balancer's check is useless.
            state.redis = Redis.from_url(
                app.config["REDIS_URL"], socket_connect_timeout=1, socket_timeout=1
            )
        return state.redis


def _check_redis(app: Flask) -> str | None:
    try:
        _redis(app).ping()
    except Exception as exc:
        log.warning("Readiness: Redis does not answer (%s)", type(exc).__name__)
        return "Redis does not answer"
    return None


def _queues(app: Flask) -> list[tuple[str, Any]]:
    """(name, RQ queue) for every job queue, on this module's Redis client."""
    from rq import Queue
    from rq.serializers import JSONSerializer

    from moderation.jobs import QUEUES

    prefix = app.config.get("JOBS_QUEUE_PREFIX", "")
    connection = _redis(app)
    return [
        (name, Queue(prefix + name, connection=connection, serializer=JSONSerializer))
        for name in QUEUES
    ]


def _check_queues(app: Flask) -> str | None:
    try:
        for _, queue in _queues(app):
            queue.count  # noqa: B018 - reading the queue is the check
    except Exception as exc:
        log.warning("Readiness: the job queues do not answer (%s)", type(exc).__name__)
        return "the job queues do not answer"
    return None


# --- metrics ----------------------------------------------------------------------------------


@bp.get("/metrics")
@limiter.exempt
def metrics() -> Response:
    """Prometheus metrics, for METRICS_TOKEN bearers and METRICS_ALLOW addresses."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    _require_metrics_access(app)
    collector = _SnapshotCollector(_snapshot(app))
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Several gunicorn workers: sum what every worker wrote to the shared directory.
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(collector)
        output = generate_latest(registry)
    else:
        scraped = CollectorRegistry()
        scraped.register(collector)
        output = generate_latest(REGISTRY) + generate_latest(scraped)
    return Response(output, headers={"Content-Type": CONTENT_TYPE_LATEST})


def _require_metrics_access(app: Flask) -> None:
    """Let a METRICS_TOKEN bearer or an allowed address through; 401 or 403 for anyone else."""
    token = app.config.get("METRICS_TOKEN")
    header = request.headers.get("Authorization", "")
    presented = header[7:].strip() if header[:7].lower() == "bearer " else ""
    if token and presented and hmac.compare_digest(presented.encode(), str(token).encode()):
        return
    if _address_allowed(request.remote_addr, _state(app).allow):
        return
    if token:
        # Say how to authenticate (RFC 6750); errors.py keeps the exception's headers.
        raise Unauthorized(
            "The metrics need Authorization: Bearer with the METRICS_TOKEN.",
            www_authenticate=WWWAuthenticate("Bearer", {"realm": "metrics"}),
        )
    abort(403, description="The metrics are not served to this address (see METRICS_ALLOW).")


def _address_allowed(
    address: str | None, allow: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
) -> bool:
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # "::ffff:127.0.0.1" from a dual-stack socket
    return any(ip in network for network in allow if network.version == ip.version)


def _snapshot(app: Flask) -> _Snapshot:
    """The database and Redis figures, read at most once per METRICS_CACHE_SECONDS."""
    state = _state(app)
    ttl = float(app.config.get("METRICS_CACHE_SECONDS", 15))
    cached = state.snapshot
    if cached is not None and time.monotonic() - cached[0] < ttl:
        return cached[1]
    snapshot = _Snapshot(
        comments=_comment_counts(),
        queues=_queue_figures(app) if app.config.get("REDIS_URL") else None,
        rq_failures=_rq_failures(app) if app.config.get("REDIS_URL") else None,
    )
    state.snapshot = (time.monotonic(), snapshot)
    return snapshot


# Published comments are left out: they are ~90 % of the table, and counting them took 0.4-1 s
# at a million comments (bench/explain.py); the held ones are an index-only scan of the rest.
# moderation_comments_posted_total gives the rate of every status instead.
COUNTED_STATUSES = tuple(status for status in Status if status != Status.PUBLISHED)


def _comment_counts() -> dict[str, int] | None:
    try:
        rows = db.session.execute(
            sa.select(Comment.status, sa.func.count())
            .where(Comment.status.in_(COUNTED_STATUSES))
            .group_by(Comment.status)
        ).all()
    except sa.exc.SQLAlchemyError:
        db.session.rollback()
        log.warning("Metrics: could not count the comments", exc_info=True)
        return None
    counts = {str(status): 0 for status in COUNTED_STATUSES}
    counts.update({str(status): int(count) for status, count in rows})
    return counts


def _queue_figures(app: Flask) -> dict[str, dict[str, float]] | None:
    try:
        figures: dict[str, dict[str, float]] = {}
        now = datetime.now(UTC)
        for name, queue in _queues(app):
            depth = queue.count
            oldest = 0.0
            if depth:
                first = queue.get_job_ids(0, 1)
                job = queue.fetch_job(first[0]) if first else None
                if job is not None and job.enqueued_at is not None:
                    oldest = max(0.0, (now - job.enqueued_at).total_seconds())
            figures[name] = {
                "depth": depth,
                "oldest": oldest,
                "scheduled": queue.scheduled_job_registry.count,
                "failed": queue.failed_job_registry.count,
            }
        return figures
    except Exception:
        log.warning("Metrics: could not read the job queues", exc_info=True)
        return None


def _rq_failures(app: Flask) -> dict[str, int] | None:
    prefix = app.config.get("JOBS_QUEUE_PREFIX", "")
    try:
        raw = _redis(app).hgetall(prefix + JOB_FAILURES_KEY)
    except Exception:
        log.warning("Metrics: could not read the job failure counts", exc_info=True)
        return None
    return {key.decode(): int(value) for key, value in raw.items()}


class _SnapshotCollector(Collector):
    """Exposes a snapshot as gauges (read fresh, never stored in the multiprocess files)."""

    def __init__(self, snapshot: _Snapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Any]:
        snap = self.snapshot
        up = GaugeMetricFamily(
            "moderation_metrics_source_up",
            "Whether the last read of a metrics source worked (1) or failed (0).",
            labels=["source"],
        )
        up.add_metric(["database"], 0 if snap.comments is None else 1)
        if snap.comments is not None:
            comments = GaugeMetricFamily(
                "moderation_comments",
                "Comments stored, by status (all but published: see the posted counter).",
                labels=["status"],
            )
            for status, count in sorted(snap.comments.items()):
                comments.add_metric([status], count)
            yield comments
        if snap.queues is not None or snap.rq_failures is not None:
            up.add_metric(["redis"], 0 if snap.queues is None or snap.rq_failures is None else 1)
        if snap.queues is not None:
            families = {
                "depth": GaugeMetricFamily(
                    "moderation_job_queue_depth", "Jobs waiting in an RQ queue.", labels=["queue"]
                ),
                "oldest": GaugeMetricFamily(
                    "moderation_job_queue_oldest_seconds",
                    "Age of the oldest job waiting in an RQ queue (0 when empty).",
                    labels=["queue"],
                ),
                "scheduled": GaugeMetricFamily(
                    "moderation_job_queue_scheduled",
                    "Jobs of an RQ queue waiting for their time (delayed or retried).",
                    labels=["queue"],
                ),
                "failed": GaugeMetricFamily(
                    "moderation_job_queue_failed",
                    "Jobs in an RQ queue's failed registry (out of retries; kept a week).",
                    labels=["queue"],
                ),
            }
            for name, figures in snap.queues.items():
                for key, family in families.items():
                    family.add_metric([name], figures[key])
            yield from families.values()
        if snap.rq_failures is not None:
            failures = CounterMetricFamily(
                "moderation_rq_job_failures",
                "Job attempts that failed in RQ workers, by queue (counted in Redis).",
                labels=["queue"],
            )
            for name, count in sorted(snap.rq_failures.items()):
                failures.add_metric([name], count)
            yield failures
        yield up


# --- hooks the rest of the app calls ----------------------------------------------------------


def _start_timer() -> None:
    g._ops_request_started = time.perf_counter()


def _observe_request(response: Response) -> Response:
    started = g.pop("_ops_request_started", None)
    if started is not None:
        rule = request.url_rule
        method = request.method if request.method in METHODS else "other"
        REQUEST_SECONDS.labels(
            endpoint=rule.endpoint if rule is not None else "unmatched", method=method
        ).observe(time.perf_counter() - started)
    return response


def _count_posted(sender: Any, comment: Comment, **extra: Any) -> None:
    """Count a posted comment by status, and the reasons of each one the system held."""
    status = str(comment.status)
    COMMENTS_POSTED.labels(status=status).inc()
    if comment.status == Status.PUBLISHED:
        return
    for reason in comment.reasons or ():
        code = reason.get("code") if isinstance(reason, dict) else None
        HOLD_REASONS.labels(reason=str(code or "unknown"), status=status).inc()


def record_job_failure(queue: str, redis: Any = None) -> None:
    """Count a failed job attempt: in this process, or (RQ workers) in Redis for every web."""
    if redis is None:
        JOB_FAILURES.labels(queue=queue).inc()
        return
    # A work horse is a short-lived fork: counting in its memory would be lost with it.
    prefix = current_app.config.get("JOBS_QUEUE_PREFIX", "") if has_app_context() else ""
    try:
        redis.hincrby(prefix + JOB_FAILURES_KEY, queue, 1)
    except Exception:
        log.warning("Could not count a failed job of queue %s in Redis", queue, exc_info=True)


def warm_up(app: Flask) -> bool:
    """Load the classifier now and close the database connections that took (before a fork)."""
    from moderation import scoring

    with app.app_context():
        try:
            ready = scoring.ensure_loaded()
        finally:
            # Connections opened here must not be inherited by forked workers: two processes
            # talking over one socket corrupt both conversations.
            db.session.remove()
            for engine in db.engines.values():
                engine.dispose()
    return ready


def after_fork(app: Flask) -> None:
    """In a forked worker: forget (without closing) the parent's pooled connections."""
    with app.app_context():
        for engine in db.engines.values():
            engine.dispose(close=False)
    state = app.extensions.get(EXTENSION)
    if state is not None:
        state.snapshot = None
