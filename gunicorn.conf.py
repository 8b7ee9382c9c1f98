"""gunicorn settings for production: ``gunicorn -c gunicorn.conf.py wsgi:app`` (``make serve``).

Every value can be changed from the environment; docs/deployment.md explains the choices.

| variable | meaning | default |
|---|---|---|
| ``GUNICORN_BIND`` | where to listen (``host:port`` or ``unix:/path``) | ``127.0.0.1:$PORT`` |
| ``PORT`` | port, when ``GUNICORN_BIND`` is not set | 8000 |
| ``GUNICORN_WORKERS`` | worker processes | cores + 1, at most 8 |
| ``GUNICORN_THREADS`` | threads per worker (gthread) | 4 |
| ``GUNICORN_TIMEOUT`` | seconds a silent worker lives before it is killed and replaced | 30 |
| ``GUNICORN_GRACEFUL_TIMEOUT`` | seconds a stopping worker gets to finish its requests | 30 |
| ``GUNICORN_KEEPALIVE`` | seconds an idle keep-alive connection (from nginx) stays open | 5 |
| ``GUNICORN_LOG_LEVEL`` | gunicorn's error log level | ``info`` |
| ``GUNICORN_CONTROL_SOCKET`` | path of gunicorn's control socket (``gunicornc``) | none: off |
| ``PROMETHEUS_MULTIPROC_DIR`` | the workers' metric files (wiped at start) | a new temp dir |
"""

from __future__ import annotations

import gc
import glob
import os
import shutil
import tempfile
from typing import Any


def _whole_number(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise RuntimeError(f"{name} must be a whole number, not {value!r}.") from None
    if number < 1:
        raise RuntimeError(f"{name} must be 1 or more, not {number}.")
    return number


def default_workers(cores: int) -> int:
    """Worker processes for ``cores`` CPUs: one per core plus one, at most 8."""
    # Scoring a comment is CPU work under the GIL, so one process per core keeps every core
    # busy and the extra one covers a worker waiting on the database or collecting garbage.
    # gunicorn's usual 2 x cores + 1 assumes I/O-bound sync workers; here gthread threads
    # already overlap the I/O, and more processes would only add context switches and database
    # connections (each worker has its own pool: DATABASE_POOL_SIZE + DATABASE_MAX_OVERFLOW).
    return max(2, min(cores + 1, 8))


# os.sched_getaffinity honours CPU pinning (taskset, container cpusets); cpu_count does not.
CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1

# --- serving -----------------------------------------------------------------------------------

bind = os.environ.get("GUNICORN_BIND", "").strip() or f"127.0.0.1:{_whole_number('PORT', 8000)}"
workers = _whole_number("GUNICORN_WORKERS", default_workers(CORES))
worker_class = "gthread"
# Few threads: they cover database and network waits; with many, a CPU-bound request waits
# for the GIL behind all of them (20 threads doubled the posting p99 in docs/benchmarks.md).
threads = _whole_number("GUNICORN_THREADS", 4)
# Load the app (and, in when_ready, the classifier model) once in the master: the forked
# workers share those pages copy-on-write instead of each loading its own copy.
preload_app = True
timeout = _whole_number("GUNICORN_TIMEOUT", 30)
graceful_timeout = _whole_number("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = _whole_number("GUNICORN_KEEPALIVE", 5)
# Off: each restarted worker leaves its metric files behind (see below) for every scrape to read.
max_requests = 0
# gunicorn 25+ opens a control socket at $HOME/.gunicorn/gunicorn.ctl by default: one path for
# every gunicorn of the user (two servers on a machine would fight over it), in a home a service
# account may not write. Off unless GUNICORN_CONTROL_SOCKET names one (for gunicornc).
_control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET", "").strip()
if _control_socket:
    control_socket = _control_socket
else:
    control_socket_disable = True

# --- logging: to stdout/stderr, for journald or the platform's log collector -------------------

accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# Method, path without the query (query strings can carry tokens), status, size and the time
# taken in ms. No client address: the service keeps addresses only as keyed hashes.
access_log_format = '%(t)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms "%(a)s"'
# Some paths are secrets themselves (login, invitation and unsubscribe links): the logger
# redacts them, and tokens in any other atom, whatever the format above asks for.
logger_class = "moderation.access_log.RedactingLogger"

# --- Prometheus metrics shared by the workers --------------------------------------------------
# Set before the app is imported (preload), because prometheus_client picks its storage then.

_METRIC_FILES = ("counter_*.db", "gauge_*.db", "histogram_*.db", "summary_*.db")
_OWN_DIR_MARK = "MODERATION_METRICS_DIR_CREATED"
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="moderation-metrics-")
    os.environ[_OWN_DIR_MARK] = os.environ["PROMETHEUS_MULTIPROC_DIR"]
METRICS_DIR = os.environ["PROMETHEUS_MULTIPROC_DIR"]
os.makedirs(METRICS_DIR, exist_ok=True)
if os.environ.get("MODERATION_METRICS_WIPED") != str(os.getpid()):
    # Values from an earlier run would be summed into this one's; only the files
    # prometheus_client writes are removed, whatever else the directory holds.
    for pattern in _METRIC_FILES:
        for path in glob.glob(os.path.join(METRICS_DIR, pattern)):
            os.unlink(path)
    os.environ["MODERATION_METRICS_WIPED"] = str(os.getpid())


def when_ready(server: Any) -> None:
    """In the master, before the first fork: load the model, drop database connections."""
    app = server.app.wsgi()
    if not hasattr(app, "app_context"):
        return  # not our Flask app (another WSGI target): nothing to warm up
    from moderation import ops

    if ops.warm_up(app):
        server.log.info("Classifier model loaded in the master; workers share it")
    else:
        server.log.warning("Classifier model not loaded; workers will hold comments until it is")
    # Objects that exist now are never collected: the collector would otherwise touch (and so
    # copy) every shared page of the model in each worker.
    gc.freeze()


def post_fork(server: Any, worker: Any) -> None:
    """In each new worker: forget the master's pooled connections without closing them."""
    app = server.app.wsgi()
    if hasattr(app, "app_context"):
        from moderation import ops

        ops.after_fork(app)


def child_exit(server: Any, worker: Any) -> None:
    """In the master, when a worker ends: retire its live gauges."""
    try:
        from prometheus_client import multiprocess
    except ImportError:  # another app served with this file (bench/peer_load.py runs Isso)
        return
    multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    """When gunicorn stops: remove the metrics directory if this configuration made it."""
    if os.environ.get(_OWN_DIR_MARK) == METRICS_DIR:
        shutil.rmtree(METRICS_DIR, ignore_errors=True)
