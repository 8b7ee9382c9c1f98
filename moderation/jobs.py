"""Background jobs: RQ on Redis when ``REDIS_URL`` is set, else a small pool of threads.

A job is a module-level function taking plain values (ids, short strings: JSON), marked with
``@job``; ``enqueue(function_or_path, *args, **kwargs)`` runs it later, in its own app context:

- ``REDIS_URL`` set: an RQ queue (JSON-serialised), run by ``flask jobs worker``; failed jobs
  are retried with backoff when the job asks for it.
- no Redis: a bounded pool of daemon threads inside the web process (``JOBS_THREADS``), retries
  on timers; a full backlog (``JOBS_MAX_PENDING``) runs the job in the caller instead.
- ``JOBS_SYNC=true``: inline, at once (tests; one-shot scripts). Also the default when
  ``TESTING`` is on, so a test suite never races with leftover threads.

Whatever the mode, a failing job is logged and never fails the request that enqueued it.

| variable | meaning | default |
|---|---|---|
| ``JOBS_SYNC`` | run jobs inline | ``false`` (``true`` under ``TESTING``) |
| ``JOBS_THREADS`` | threads of the in-process pool | 2 |
| ``JOBS_MAX_PENDING`` | jobs the in-process pool may hold before running them inline | 1000 |
| ``JOBS_RETRY_DELAYS`` | seconds between attempts of a retried job | ``30,120,600`` |
| ``JOBS_QUEUE_PREFIX`` | prefix of the RQ queue names (several apps on one Redis) | empty |
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import click
from cachetools import TTLCache
from flask import Flask, current_app, has_app_context
from flask.cli import AppGroup

from moderation.config import Environment
from moderation.extensions import db

__all__ = [
    "QUEUES",
    "JobSpec",
    "already_done",
    "enqueue",
    "enqueue_in",
    "init_app",
    "job",
    "jobs_cli",
    "mode",
    "record_done",
    "run_job",
    "shutdown",
    "wait_for_jobs",
]

log = logging.getLogger(__name__)

# Queue names, most urgent first: a worker without --queue serves them in this order.
QUEUES: tuple[str, ...] = ("mail", "notifications", "webhooks", "default", "retraining")
DEFAULT_RETRY_DELAYS = (30.0, 120.0, 600.0)
EXTENSION = "jobs"
REDIS_PAUSE = 30  # seconds jobs stay in process after Redis failed to take one

F = TypeVar("F", bound=Callable[..., Any])

jobs_cli = AppGroup("jobs", help="Background jobs: the RQ worker (with REDIS_URL).")


# ---------------------------------------------------------------------------------------------
# Declaring jobs
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobSpec:
    """How a job runs: its queue, and whether a failure is retried (with backoff)."""

    queue: str = "default"
    retry: bool = False
    timeout: int = 180  # seconds RQ lets one attempt run


def job(queue: str = "default", *, retry: bool = False, timeout: int = 180) -> Callable[[F], F]:
    """Mark a module-level function as a job for ``queue`` (retried on failure if ``retry``)."""
    if queue not in QUEUES:
        raise ValueError(f"Unknown queue {queue!r}; the queues are {', '.join(QUEUES)}.")

    def mark(function: F) -> F:
        function.job_spec = JobSpec(queue, retry, timeout)  # type: ignore[attr-defined]
        return function

    return mark


def _path_of(function: Callable[..., Any]) -> str:
    """``module:name`` of a module-level function; ValueError for anything a worker can't import."""
    module = getattr(function, "__module__", None)
    name = getattr(function, "__qualname__", "")
    if not module or not name or "." in name or "<" in name:
        raise ValueError(
            f"{function!r} is not a module-level function; a worker could not import it."
        )
    return f"{module}:{name}"


def _resolve(path: str) -> Callable[..., Any]:
    """The function that ``module:name`` (or ``module.name``) names."""
    module_name, sep, name = path.partition(":")
    if not sep:
        module_name, _, name = path.rpartition(".")
    if not module_name or not name:
        raise ValueError(f"{path!r} does not name a function; write module:function.")
    function = getattr(importlib.import_module(module_name), name, None)
    if not callable(function):
        raise ValueError(f"{path!r} does not name a function.")
    return function


def _spec(function: Callable[..., Any]) -> JobSpec:
    return getattr(function, "job_spec", None) or JobSpec()


def _check_plain(args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
    # The same rule in every mode: what works inline must also survive the trip through Redis.
    try:
        json.dumps([list(args), dict(kwargs)])
    except (TypeError, ValueError):
        raise TypeError(
            "Job arguments must be plain values (ids, strings, numbers); pass the id of a row, "
            "not the row."
        ) from None


# ---------------------------------------------------------------------------------------------
# Settings and state
# ---------------------------------------------------------------------------------------------


def _parse_delays(value: Any) -> tuple[float, ...]:
    if isinstance(value, str):
        parts = [part.strip() for part in value.split(",") if part.strip()]
        try:
            return tuple(float(part) for part in parts)
        except ValueError:
            raise RuntimeError(
                f"JOBS_RETRY_DELAYS must be seconds separated by commas, not {value!r}."
            ) from None
    return tuple(float(part) for part in value)


def init_app(app: Flask) -> None:
    """Read the ``JOBS_*`` settings (environment, then overrides) and add ``flask jobs``."""
    config = app.config
    env = Environment(os.environ)  # the same parsing, and errors, as every other setting
    config.setdefault("JOBS_SYNC", env.boolean("JOBS_SYNC", bool(config.get("TESTING"))))
    config.setdefault("JOBS_THREADS", env.integer("JOBS_THREADS", 2))
    config.setdefault("JOBS_MAX_PENDING", env.integer("JOBS_MAX_PENDING", 1000))
    config.setdefault(
        "JOBS_RETRY_DELAYS",
        os.environ.get("JOBS_RETRY_DELAYS", "").strip() or DEFAULT_RETRY_DELAYS,
    )
    config.setdefault("JOBS_QUEUE_PREFIX", os.environ.get("JOBS_QUEUE_PREFIX", "").strip())
    config["JOBS_RETRY_DELAYS"] = _parse_delays(config["JOBS_RETRY_DELAYS"])
    if config["JOBS_THREADS"] < 1 or config["JOBS_MAX_PENDING"] < 1:
        raise RuntimeError("JOBS_THREADS and JOBS_MAX_PENDING must be 1 or more.")
    app.extensions[EXTENSION] = _State()
    app.cli.add_command(jobs_cli)


@dataclass
class _State:
    """Per-app job machinery, made on first use (and again in a forked child)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    pool: _ThreadPool | None = None
    redis: Any = None
    redis_down_until: float = 0.0  # time.monotonic() until which jobs skip Redis


def _state(app: Flask) -> _State:
    state = app.extensions.get(EXTENSION)
    if state is None:
        raise RuntimeError("moderation.jobs.init_app(app) was not called for this app.")
    return state


def mode(app: Flask | None = None) -> str:
    """How jobs run for ``app``: ``"sync"``, ``"rq"`` or ``"threads"``."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    if app.config.get("JOBS_SYNC"):
        return "sync"
    return "rq" if app.config.get("REDIS_URL") else "threads"


# ---------------------------------------------------------------------------------------------
# Enqueueing
# ---------------------------------------------------------------------------------------------


def enqueue(function: str | Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """Run ``function(*args, **kwargs)`` in the background (see the module's docstring)."""
    _submit(0.0, function, args, kwargs)


def enqueue_in(
    seconds: float, function: str | Callable[..., Any], *args: Any, **kwargs: Any
) -> None:
    """Like ``enqueue``, but not before ``seconds`` have passed (inline mode runs it at once)."""
    _submit(max(0.0, seconds), function, args, kwargs)


def _submit(
    delay: float,
    function: str | Callable[..., Any],
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
) -> None:
    path = function if isinstance(function, str) else _path_of(function)
    target = _resolve(path)  # fail now, in the caller, rather than in a worker later
    _check_plain(args, kwargs)
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    how = mode(app)
    if how == "sync":
        _run_logged(app, path, target, args, kwargs)
        return
    state = _state(app)
    if how == "rq" and time.monotonic() >= state.redis_down_until:
        try:
            _enqueue_rq(app, delay, path, _spec(target), args, kwargs)
            return
        except Exception as exc:  # Redis down: degrade to the in-process pool, keep the job
            # Skip Redis for a while, so that requests do not each wait for its timeout.
            state.redis_down_until = time.monotonic() + REDIS_PAUSE
            log.error(
                "Could not queue job %s in Redis (%s); running jobs in this process for %d s",
                path,
                type(exc).__name__,
                REDIS_PAUSE,
            )
    _pool(app).submit(_Task(path, tuple(args), dict(kwargs), _spec(target)), delay)


def _run_logged(
    app: Flask,
    path: str,
    function: Callable[..., Any],
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
) -> bool:
    """Run one job in a fresh app context; log (never raise) its failure. True if it worked."""
    try:
        with app.app_context():
            function(*args, **kwargs)
        return True
    except Exception:
        log.exception("Background job %s failed", path)
        from moderation import ops  # metrics; imported late: ops is not needed to run jobs

        ops.record_job_failure(_spec(function).queue)
        return False


# ---------------------------------------------------------------------------------------------
# RQ
# ---------------------------------------------------------------------------------------------


def _redis(app: Flask) -> Any:
    from redis import Redis

    state = _state(app)
    with state.lock:
        if state.redis is None:
            state.redis = Redis.from_url(
                app.config["REDIS_URL"], socket_connect_timeout=2, socket_timeout=5
            )
        return state.redis


def _rq_queue(app: Flask, name: str) -> Any:
    from rq import Queue
    from rq.serializers import JSONSerializer

    return Queue(
        app.config["JOBS_QUEUE_PREFIX"] + name,
        connection=_redis(app),
        serializer=JSONSerializer,
    )


def _enqueue_rq(
    app: Flask,
    delay: float,
    path: str,
    spec: JobSpec,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
) -> None:
    from rq import Retry

    queue_ = _rq_queue(app, spec.queue)
    delays = app.config["JOBS_RETRY_DELAYS"]
    retry = (
        Retry(max=len(delays), interval=[max(1, round(d)) for d in delays])
        if spec.retry and delays
        else None
    )
    options: dict[str, Any] = {
        "args": (path, *args),
        "kwargs": dict(kwargs),
        "timeout": spec.timeout,
        "retry": retry,
        "description": path,
        "failure_ttl": 7 * 24 * 3600,  # a week to look at what failed
    }
    if delay > 0:
        # Scheduled: the worker's scheduler moves it into the queue when it is due.
        job_ = queue_.create_job(run_job, **options)
        queue_.schedule_job(job_, datetime.now(UTC) + timedelta(seconds=delay))
        return
    queue_.enqueue_call(run_job, **options)


# The process that imported this module; a forked RQ work horse has another pid.
_process_pid = os.getpid()


def run_job(path: str, *args: Any, **kwargs: Any) -> Any:
    """What an RQ worker runs: the job at ``path``, in its own app context (errors propagate)."""
    global _process_pid
    function = _resolve(path)
    if has_app_context():
        app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    else:
        app = _standalone_app()
    with app.app_context():
        if _process_pid != os.getpid():
            # A forked work horse shares its parent's pooled connections: drop them unclosed
            # (closing would close the parent's) and open its own.
            db.engine.dispose(close=False)
            _process_pid = os.getpid()
        try:
            return function(*args, **kwargs)
        except Exception:
            from moderation import ops  # metrics: counted in Redis, where /metrics reads it

            ops.record_job_failure(_spec(function).queue, redis=_redis(app))
            raise


_standalone: Flask | None = None


def _standalone_app() -> Flask:
    """The app for a plain ``rq worker`` started outside Flask's CLI (built once)."""
    global _standalone
    if _standalone is None:
        from moderation import create_app

        _standalone = create_app()
    return _standalone


@jobs_cli.command("worker")
@click.option(
    "--queue",
    "-q",
    "queues",
    multiple=True,
    type=click.Choice(QUEUES),
    help="Serve only this queue (repeatable); default: all, most urgent first.",
)
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@click.option(
    "--fork/--no-fork",
    default=True,
    help="Run each job in a forked process (default) or in the worker itself.",
)
@click.option(
    "--maintenance-interval",
    default=60,
    show_default=True,
    type=click.IntRange(min=2),
    help="Seconds between checks for jobs of dead workers (run again, or failed).",
)
def worker_command(
    queues: tuple[str, ...], burst: bool, fork: bool, maintenance_interval: int
) -> None:
    """Run an RQ worker for the background jobs (needs REDIS_URL)."""
    from rq import SimpleWorker, Worker
    from rq.serializers import JSONSerializer

    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    if not app.config.get("REDIS_URL"):
        raise click.ClickException(
            "REDIS_URL is not set: without Redis, jobs run inside the web process and need "
            "no worker."
        )
    worker_class = Worker if fork else SimpleWorker
    worker = worker_class(
        [_rq_queue(app, name) for name in (queues or QUEUES)],
        connection=_redis(app),
        serializer=JSONSerializer,
        # RQ's 10 minutes would leave the job of a killed worker waiting that long after its
        # heartbeat lapsed (about 90 s); the check is a few cheap Redis calls. An idle worker
        # only looks up between waits for a job, each worker_ttl - 15 s long: as often.
        maintenance_interval=maintenance_interval,
        worker_ttl=maintenance_interval + 15,
    )
    # The scheduler moves retried and delayed jobs back into their queues when they are due.
    worker.work(burst=burst, with_scheduler=True)


# ---------------------------------------------------------------------------------------------
# The in-process pool
# ---------------------------------------------------------------------------------------------


@dataclass
class _Task:
    path: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    spec: JobSpec
    attempt: int = 1


class _ThreadPool:
    """A fixed number of daemon threads working through a bounded queue of tasks."""

    def __init__(self, app: Flask, threads: int, max_pending: int) -> None:
        self.app = app
        self.pid = os.getpid()
        self.tasks: queue.Queue[_Task | None] = queue.Queue(maxsize=max_pending)
        self.size = threads
        self.threads: list[threading.Thread] = []
        self.outstanding = 0  # queued, running or waiting for a retry or delay
        self.idle = threading.Condition()
        self.closed = False

    def _start(self) -> None:
        with self.idle:
            if self.threads or self.closed:
                return
            for number in range(self.size):
                thread = threading.Thread(target=self._work, name=f"jobs-{number + 1}", daemon=True)
                thread.start()
                self.threads.append(thread)

    def submit(self, task: _Task, delay: float = 0.0) -> None:
        """Queue ``task`` (after ``delay`` seconds)."""
        self._start()
        with self.idle:
            self.outstanding += 1
        if delay > 0:
            timer = threading.Timer(delay, self._put, (task,))
            timer.daemon = True
            timer.start()
        else:
            self._put(task)

    def _put(self, task: _Task) -> None:
        try:
            self.tasks.put_nowait(task)
        except queue.Full:
            # Better late in this thread than lost: the backlog is full.
            log.warning("The job backlog is full; running %s in the calling thread", task.path)
            self._run(task)

    def _work(self) -> None:
        while True:
            task = self.tasks.get()
            if task is None:
                return
            self._run(task)

    def _run(self, task: _Task) -> None:
        finished = True
        try:
            function = _resolve(task.path)
            if not _run_logged(self.app, task.path, function, task.args, task.kwargs):
                finished = not self._retry(task)
        finally:
            if finished:
                with self.idle:
                    self.outstanding -= 1
                    self.idle.notify_all()

    def _retry(self, task: _Task) -> bool:
        delays = self.app.config["JOBS_RETRY_DELAYS"]
        if not task.spec.retry or task.attempt > len(delays) or self.closed:
            return False
        delay = delays[task.attempt - 1]
        log.info("Retrying job %s in %.0f s (attempt %d)", task.path, delay, task.attempt + 1)
        task.attempt += 1
        timer = threading.Timer(delay, self._put, (task,))
        timer.daemon = True
        timer.start()
        return True

    def wait(self, timeout: float) -> bool:
        """Block until no task is outstanding; False if ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        with self.idle:
            while self.outstanding:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.idle.wait(left)
        return True

    def close(self) -> None:
        """Let the threads finish what is queued, then stop."""
        with self.idle:
            self.closed = True
            threads = list(self.threads)
        for _ in threads:
            self.tasks.put(None)


def _pool(app: Flask) -> _ThreadPool:
    state = _state(app)
    with state.lock:
        # A pool made before a fork (gunicorn --preload) has no threads in the child.
        if state.pool is None or state.pool.pid != os.getpid() or state.pool.closed:
            state.pool = _ThreadPool(
                app, app.config["JOBS_THREADS"], app.config["JOBS_MAX_PENDING"]
            )
        return state.pool


# ---------------------------------------------------------------------------------------------
# Done markers: a retried job skips the steps an earlier attempt finished (no duplicate mail)
# ---------------------------------------------------------------------------------------------

DONE_TTL = 30 * 24 * 3600  # seconds a done marker is kept: longer than any retry schedule
_done_here: TTLCache[str, bool] = TTLCache(maxsize=100_000, ttl=DONE_TTL)
_done_lock = threading.Lock()


def _done_key(app: Flask, key: str) -> str:
    return f"{app.config['JOBS_QUEUE_PREFIX']}jobs:done:{key}"


def already_done(key: str) -> bool:
    """Whether a job recorded the step ``key`` as done (``record_done``), here or in Redis."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    with _done_lock:
        if _done_here.get(_done_key(app, key)):
            return True
    if not app.config.get("REDIS_URL"):
        return False
    try:
        return bool(_redis(app).exists(_done_key(app, key)))
    except Exception:  # Redis down: at-least-once, a duplicate is better than a lost mail
        log.warning("Redis is unreachable; cannot check whether %s was already done", key)
        return False


def record_done(key: str) -> None:
    """Record that the step ``key`` happened, so that a retry of its job does not repeat it."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    with _done_lock:
        _done_here[_done_key(app, key)] = True
    if not app.config.get("REDIS_URL"):
        return
    try:
        _redis(app).set(_done_key(app, key), "1", ex=DONE_TTL)
    except Exception:
        log.warning("Redis is unreachable; %s is recorded as done in this process only", key)


def wait_for_jobs(app: Flask, timeout: float = 10.0) -> bool:
    """Wait until the in-process pool of ``app`` has nothing left to do; False on timeout."""
    pool = _state(app).pool
    return True if pool is None else pool.wait(timeout)


def shutdown(app: Flask) -> None:
    """Stop ``app``'s in-process threads once their queue is empty."""
    state = _state(app)
    with state.lock:
        pool, state.pool = state.pool, None
    if pool is not None:
        pool.close()
