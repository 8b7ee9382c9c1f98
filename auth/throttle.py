"""Failed attempts with a secret, counted per client address: past a limit, wait (429).

Flask-Limiter's decorators count requests to a route; a gate that runs before every route of
the JSON API (the bearer token check) needs to count only its refusals, so it asks here.
The counters live in the limiter's storage (memory, or Redis when configured).
"""

from __future__ import annotations

import logging
import math
import time

from flask import current_app
from flask_limiter.util import get_remote_address
from limits import RateLimitItem, parse

from moderation.extensions import limiter

__all__ = ["count_failure", "seconds_to_wait"]

log = logging.getLogger(__name__)


def _counting() -> bool:
    # RATELIMIT_ENABLED=false (load benchmarks from one address) turns these limits off too.
    return bool(current_app.config.get("RATELIMIT_ENABLED", True)) and limiter.enabled


def _key(scope: str) -> tuple[str, str]:
    return f"failures:{scope}", get_remote_address()


def _storage_failed(error: Exception) -> None:
    # The same choice as the limiter's own (RATELIMIT_SWALLOW_ERRORS): an unreachable counter
    # store must not take logins down with it.
    if not current_app.config.get("RATELIMIT_SWALLOW_ERRORS", False):
        raise error
    log.warning("Failure counter unavailable: %s", error)


def seconds_to_wait(scope: str, limit: str) -> int | None:
    """Seconds this client must wait before trying ``scope`` again; None while under ``limit``."""
    if not _counting():
        return None
    item: RateLimitItem = parse(limit)
    try:
        if limiter.limiter.test(item, *_key(scope)):
            return None
        reset_at, _remaining = limiter.limiter.get_window_stats(item, *_key(scope))
    except Exception as exc:  # each storage back end raises its own error types
        _storage_failed(exc)
        return None
    return max(1, math.ceil(reset_at - time.time()))


def count_failure(scope: str, limit: str) -> None:
    """Count one failed attempt of this client against ``limit`` in ``scope``."""
    if not _counting():
        return
    try:
        limiter.limiter.hit(parse(limit), *_key(scope))
    except Exception as exc:  # each storage back end raises its own error types
        _storage_failed(exc)
