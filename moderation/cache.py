"""A cache of public thread reads (the widget's page, the JSON list, counts), with generations.

Every cached answer is stored under a key that includes a *generation* of its site and of each
article it shows. A change to a comment, thread or site bumps those generations after the
transaction commits, so every variant (sort, theme, language, cursor...) is invalidated at
once; a short TTL (``CACHE_TTL``) is the safety net. Invalidation is not called by hand: the
SQLAlchemy session events below notice every change made through ``db.session`` (ORM objects and
``UPDATE``/``DELETE`` statements on comments, threads and sites).

The same generations let the posting service keep what it needs of a site's row (origins,
validated settings) in process (``site_entry``): a post reads the site's generation (a memory
read, or one Redis round trip) instead of the row, and the first post after a change reads the
row again. Anonymous thread reads are stored as the answer's bytes (``cached_bytes``) and served
as they are.

- ``REDIS_URL`` set: answers and generations live in Redis, shared by every process and machine.
  When Redis fails, reads skip the cache (straight to the database) for ``REDIS_PAUSE`` seconds,
  then try again; the first process to reach it again after missing a bump bumps a global epoch,
  which retires every page cached before the outage.
- no Redis: answers live in each process's memory (bounded, ``CACHE_MAX_MB``), and the
  generations in a small memory-mapped file under ``CACHE_DIR`` (the instance folder), shared
  by every process on the machine: gunicorn workers, ``flask`` commands. Several machines
  without Redis would not see each other's bumps: give them Redis (or ``CACHE_ENABLED=false``).

| variable | meaning | default |
|---|---|---|
| ``CACHE_ENABLED`` | cache public thread reads | ``true`` |
| ``CACHE_TTL`` | seconds a cached answer may live | 60 |
| ``CACHE_MAX_MB`` | megabytes of answers kept per process without Redis | 64 |
| ``CACHE_DIR`` | folder of the shared generation file without Redis | instance folder |
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import mmap
import os
import struct
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import chain
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from cachetools import TTLCache
from flask import Flask, current_app, has_app_context
from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction
from sqlalchemy.orm.util import identity_key
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BinaryExpression, BindParameter

from moderation.models import Comment, Site, Thread

__all__ = [
    "EXTENSION",
    "PageCache",
    "bump_all",
    "cached",
    "cached_bytes",
    "note_site_key",
    "page_cache",
    "site_entry",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

EXTENSION = "page_cache"
SLOTS = 1 << 16  # generation counters; two articles sharing one only invalidate each other
EPOCH_SLOT = 0  # bumped to retire everything (Redis came back, a change too wide to list)
REDIS_PAUSE = 5.0  # seconds reads skip Redis after it failed
MAX_LISTED = 500  # more changed threads than this in one statement: bump the epoch instead
GENERATION_FILE = "cache-generations.bin"
_WORD = struct.Struct("<Q")
_PENDING = "cache_changes"  # key in Session.info: generation slots to bump after commit
_SITE_KEYS = "cache_site_keys"  # key in Session.info: site id -> key known in this transaction
MAX_SITES = 1000  # site entries kept per process (site_entry); all dropped when full
_CHANGE_TABLES = frozenset({"comments", "threads", "sites"})


# --- slots --------------------------------------------------------------------------------------


def _slot(*parts: str) -> int:
    """A stable slot in 1..SLOTS-1 for ``parts`` (the same in every process and machine)."""
    digest = hashlib.blake2b("\0".join(parts).encode(), digest_size=8).digest()
    return 1 + int.from_bytes(digest, "big") % (SLOTS - 1)


def site_slot(site_key: str) -> int:
    """The generation slot of a site (its settings, origins, existence)."""
    return _slot("site", site_key)


def thread_slot(site_key: str, canonical_url: str) -> int:
    """The generation slot of one article of a site."""
    return _slot("thread", site_key, canonical_url)


# --- generation stores --------------------------------------------------------------------------


class _FileGenerations:
    """Counters in a memory-mapped file: every process on the machine sees every bump."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._bump_lock = threading.Lock()
        self._pid = -1
        self._fd = -1
        self._map: mmap.mmap | None = None

    def _mapped(self) -> mmap.mmap:
        # Opened again after a fork: flock() locks belong to the open file, which a forked
        # child would share with its parent, so they would not exclude each other.
        if self._map is None or self._pid != os.getpid():
            with self._lock:
                if self._map is None or self._pid != os.getpid():
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
                    size = SLOTS * _WORD.size
                    if os.fstat(fd).st_size < size:
                        os.ftruncate(fd, size)  # zeros; two processes doing it agree
                    self._map, self._fd, self._pid = mmap.mmap(fd, size), fd, os.getpid()
        return self._map

    def read(self, slots: Sequence[int]) -> list[int]:
        mapped = self._mapped()
        return [_WORD.unpack_from(mapped, slot * _WORD.size)[0] for slot in slots]

    def bump(self, slots: Iterable[int]) -> None:
        mapped = self._mapped()
        # Read-increment-write by one thread (flock does not exclude threads sharing the file)
        # of one process (flock does) at a time.
        with self._bump_lock:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                for slot in set(slots):
                    offset = slot * _WORD.size
                    _WORD.pack_into(mapped, offset, _WORD.unpack_from(mapped, offset)[0] + 1)
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)


class _RedisUnavailable(Exception):
    """Redis failed just now, or recently (the cache is skipped for a few seconds)."""


class _Redis:
    """Answers and generations in Redis, skipped for ``REDIS_PAUSE`` s after a failure."""

    def __init__(self, url: str, namespace: str) -> None:
        import redis  # only needed when Redis is configured

        self.client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.generations_key = f"{namespace}:generations"
        self.page_prefix = f"{namespace}:page:"
        self.down_until = 0.0
        self.missed_bump = False  # a bump was lost: retire everything once Redis answers

    def call(self, work: Callable[[Any], T]) -> T:
        if time.monotonic() < self.down_until:
            raise _RedisUnavailable
        try:
            if self.missed_bump:
                self.client.hincrby(self.generations_key, str(EPOCH_SLOT), 1)
                self.missed_bump = False
                log.warning("Redis is back; every cached page from before is retired")
            return work(self.client)
        except Exception as exc:  # any failure of the cache must leave the reader served
            if time.monotonic() >= self.down_until:
                log.warning(
                    "Redis is unreachable (%s); public pages are read from the database for %.0f s",
                    type(exc).__name__,
                    REDIS_PAUSE,
                )
            self.down_until = time.monotonic() + REDIS_PAUSE
            raise _RedisUnavailable from exc

    def read(self, slots: Sequence[int]) -> list[int]:
        values = self.call(lambda r: r.hmget(self.generations_key, [str(s) for s in slots]))
        return [int(value or 0) for value in values]

    def bump(self, slots: Iterable[int]) -> None:
        wanted = set(slots)

        def work(client: Any) -> None:
            pipe = client.pipeline(transaction=False)
            for slot in wanted:
                pipe.hincrby(self.generations_key, str(slot), 1)
            pipe.execute()

        try:
            self.call(work)
        except _RedisUnavailable:
            self.missed_bump = True
            log.warning("Redis is unreachable; a cache invalidation waits for it to come back")


# --- the cache ----------------------------------------------------------------------------------


class PageCache:
    """Cached public answers of one app (see the module's docstring)."""

    def __init__(self, app: Flask) -> None:
        config = app.config
        self.enabled = bool(config.get("CACHE_ENABLED", True))
        self.ttl = float(config.get("CACHE_TTL", 60))
        self.hits = 0
        self.misses = 0
        self.redis: _Redis | None = None
        self.files: _FileGenerations | None = None
        # Bounded by the characters held (a thread page is 5-200 KB), not by the count.
        self.memory: TTLCache[str, str | bytes] = TTLCache(
            maxsize=int(float(config.get("CACHE_MAX_MB", 64)) * 1024 * 1024),
            ttl=self.ttl,
            getsizeof=len,
        )
        self._lock = threading.Lock()  # cachetools caches are not thread-safe
        # site key -> (the generations it was read under, the value): see site_entry.
        self.sites: dict[str, tuple[tuple[int, ...], Any]] = {}
        if config.get("REDIS_URL"):
            self.redis = _Redis(config["REDIS_URL"], _namespace(app))
        else:
            folder = Path(config.get("CACHE_DIR") or app.instance_path)
            self.files = _FileGenerations(folder / GENERATION_FILE)

    # reading

    def fetch(
        self,
        kind: str,
        site_key: str,
        urls: Sequence[str],
        variant: Any,
        build: Callable[[], T],
        keep: Callable[[T], bool] | None = None,
    ) -> T:
        """The cached answer, else ``build()``'s (stored when ``keep`` accepts it)."""
        if not self.enabled:
            return build()
        raw, key = self._lookup(kind, site_key, urls, variant)
        if raw is not None:
            return json.loads(raw)  # type: ignore[no-any-return]
        value = build()
        if key is not None and (keep is None or keep(value)):
            self._put(key, json.dumps(value, separators=(",", ":")))
        return value

    def fetch_bytes(
        self,
        kind: str,
        site_key: str,
        urls: Sequence[str],
        variant: Any,
        build: Callable[[], bytes | None],
    ) -> bytes | None:
        """The cached bytes, else ``build()``'s (stored unless None), served as they are."""
        if not self.enabled:
            return build()
        raw, key = self._lookup(kind, site_key, urls, variant)
        if raw is not None:
            return raw if isinstance(raw, bytes) else raw.encode()
        value = build()
        if key is not None and value is not None:
            self._put(key, value)
        return value

    def _lookup(
        self, kind: str, site_key: str, urls: Sequence[str], variant: Any
    ) -> tuple[str | bytes | None, str | None]:
        """The stored answer (or None) and the key to store a new one under (None: do not)."""
        slots = [EPOCH_SLOT, site_slot(site_key), *(thread_slot(site_key, u) for u in urls)]
        try:
            generations = self._read(slots)
        except _RedisUnavailable:
            return None, None
        # Generations read before the database: a change committed after this read bumps them
        # past what the key holds, so a page built from older rows is never found again.
        key = _key(kind, site_key, urls, variant, generations)
        raw = self._get(key)
        if raw is not None:
            self.hits += 1
        else:
            self.misses += 1
        return raw, key

    def site_entry(self, site_key: str, load: Callable[[], T | None]) -> T | None:
        """``load()``'s value for a site, kept in process until the site's generation moves."""
        if not self.enabled:
            return load()
        try:
            generations = tuple(self._read([EPOCH_SLOT, site_slot(site_key)]))
        except _RedisUnavailable:
            return load()
        found = self.sites.get(site_key)
        if found is not None and found[0] == generations:
            return found[1]  # type: ignore[no-any-return]
        # Read before loading, as in fetch: a change committed meanwhile bumps past these.
        value = load()
        if value is not None:
            if len(self.sites) >= MAX_SITES:
                self.sites.clear()
            self.sites[site_key] = (generations, value)
        return value

    def _read(self, slots: Sequence[int]) -> list[int]:
        if self.redis is not None:
            return self.redis.read(slots)
        assert self.files is not None
        return self.files.read(slots)

    def _get(self, key: str) -> str | bytes | None:
        if self.redis is None:
            with self._lock:
                return self.memory.get(key)
        redis_ = self.redis
        try:
            return redis_.call(lambda r: r.get(redis_.page_prefix + key))  # type: ignore[no-any-return]
        except _RedisUnavailable:
            return None

    def _put(self, key: str, raw: str | bytes) -> None:
        if self.redis is None:
            with self._lock, contextlib.suppress(ValueError):  # larger than the whole cache
                self.memory[key] = raw
            return
        redis_ = self.redis
        ttl = max(1, int(self.ttl * 1000))
        with contextlib.suppress(_RedisUnavailable):  # served uncached; call() logged it
            redis_.call(lambda r: r.set(redis_.page_prefix + key, raw, px=ttl))

    # invalidating

    def bump(self, slots: Iterable[int]) -> None:
        """Retire every cached answer that used one of ``slots``."""
        wanted = list(slots)
        if not wanted:
            return
        if self.redis is not None:
            self.redis.bump(wanted)
        else:
            assert self.files is not None
            self.files.bump(wanted)


def _namespace(app: Flask) -> str:
    # Per database, so that installations (or test runs) sharing a Redis never read each
    # other's pages for a site with the same key.
    database = sa.make_url(app.config["SQLALCHEMY_DATABASE_URI"]).render_as_string(
        hide_password=True
    )
    options = str(app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {}).get("connect_args", ""))
    return "moderation:cache:" + hashlib.sha256(f"{database}|{options}".encode()).hexdigest()[:12]


def _key(kind: str, site_key: str, urls: Sequence[str], variant: Any, gens: list[int]) -> str:
    # repr of strings, numbers, None and lists of them is exact and the same in every process
    # (and 5-10 times cheaper than json.dumps on a read that is otherwise a dictionary lookup).
    text = repr((kind, site_key, tuple(urls), variant, gens))
    return hashlib.sha256(text.encode()).hexdigest()


def page_cache(app: Flask | None = None) -> PageCache:
    """The cache of ``app`` (the current one by default), made on first use."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    cache = app.extensions.get(EXTENSION)
    if cache is None:
        cache = app.extensions.setdefault(EXTENSION, PageCache(app))
    return cache  # type: ignore[no-any-return]


def cached(
    kind: str,
    site_key: str,
    urls: Sequence[str],
    variant: Mapping[str, Any] | Sequence[Any],
    build: Callable[[], T],
    keep: Callable[[T], bool] | None = None,
) -> T:
    """``build()``'s JSON-able answer, cached under the site, articles and ``variant``."""
    return page_cache().fetch(kind, site_key, urls, variant, build, keep)


def cached_bytes(
    kind: str,
    site_key: str,
    urls: Sequence[str],
    variant: Mapping[str, Any] | Sequence[Any],
    build: Callable[[], bytes | None],
) -> bytes | None:
    """``build()``'s answer body, cached as bytes (None from ``build``: not stored)."""
    return page_cache().fetch_bytes(kind, site_key, urls, variant, build)


def site_entry(site_key: str, load: Callable[[], T | None]) -> T | None:
    """``load()``'s value (what a site's row says), reused until the site changes."""
    return page_cache().site_entry(site_key, load)


def note_site_key(session: Session, site_id: int, site_key: str) -> None:
    """Tell this transaction's change tracking a site's key without loading its row."""
    session.info.setdefault(_SITE_KEYS, {})[site_id] = site_key


def bump_all(app: Flask | None = None) -> None:
    """Retire every cached answer of ``app`` (after a change the session events cannot see)."""
    page_cache(app).bump([EPOCH_SLOT])


# --- noticing changes -----------------------------------------------------------------------


def _pending(session: Session) -> set[int]:
    return session.info.setdefault(_PENDING, set())  # type: ignore[no-any-return]


def _loaded(session: Session, model: type, row_id: Any, name: str) -> Any:
    obj = session.identity_map.get(identity_key(model, row_id)) if row_id is not None else None
    return None if obj is None else obj.__dict__.get(name)


def _note_threads(session: Session, thread_ids: set[int]) -> None:
    """Add the slots of ``thread_ids`` (looked up in the session first, then in the database)."""
    slots = _pending(session)
    missing: set[int] = set()
    for thread_id in thread_ids:
        url = _loaded(session, Thread, thread_id, "url")
        site_id = _loaded(session, Thread, thread_id, "site_id")
        site_key = _loaded(session, Site, site_id, "key")
        if site_key is None and site_id is not None:
            site_key = session.info.get(_SITE_KEYS, {}).get(site_id)
        if url is None or site_key is None:
            missing.add(thread_id)
        else:
            slots.add(thread_slot(site_key, url))
    if not missing:
        return
    if len(missing) > MAX_LISTED:
        slots.add(EPOCH_SLOT)
        return
    threads, sites = Thread.__table__, Site.__table__
    rows = session.connection().execute(
        sa.select(sites.c.key, threads.c.url)
        .join_from(threads, sites, threads.c.site_id == sites.c.id)
        .where(threads.c.id.in_(missing))
    )
    slots.update(thread_slot(key, url) for key, url in rows)


def _note_sites(session: Session, site_ids: set[int]) -> None:
    slots = _pending(session)
    missing: set[int] = set()
    for site_id in site_ids:
        key = _loaded(session, Site, site_id, "key")
        if key is None:
            missing.add(site_id)
        else:
            slots.add(site_slot(key))
    if missing:
        sites = Site.__table__
        keys = session.connection().execute(sa.select(sites.c.key).where(sites.c.id.in_(missing)))
        slots.update(site_slot(key) for (key,) in keys)


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, _: UOWTransaction) -> None:
    """Note the articles and sites whose rows this flush wrote."""
    thread_ids: set[int] = set()
    site_ids: set[int] = set()
    for obj in chain(session.new, session.dirty, session.deleted):
        if obj in session.dirty and not session.is_modified(obj, include_collections=False):
            continue
        values = obj.__dict__
        if isinstance(obj, Comment):
            thread_id = values.get("thread_id")
            if thread_id is None and values.get("thread") is not None:
                thread_id = values["thread"].__dict__.get("id")
            if thread_id is not None:
                thread_ids.add(thread_id)
        elif isinstance(obj, Thread):
            if values.get("id") is not None:
                thread_ids.add(values["id"])
        elif isinstance(obj, Site) and values.get("id") is not None:
            site_ids.add(values["id"])
    if thread_ids:
        _note_threads(session, thread_ids)
    if site_ids:
        _note_sites(session, site_ids)


@event.listens_for(Session, "do_orm_execute")
def _before_statement(state: ORMExecuteState) -> None:
    """Note what an ``INSERT``, ``UPDATE`` or ``DELETE`` on comments, threads or sites changes."""
    if state.is_select:
        return  # most statements: nothing to look at
    statement = state.statement
    table = getattr(statement, "table", None)
    name = getattr(table, "name", None)
    if name not in _CHANGE_TABLES:
        return
    session = state.session
    if state.is_insert:
        _note_inserted(session, name, state.parameters)
        return
    if not (state.is_update or state.is_delete):
        return
    where = getattr(statement, "whereclause", None)
    if where is None:
        _pending(session).add(EPOCH_SLOT)  # the whole table: simpler to retire everything
        return
    column = {
        "comments": Comment.__table__.c.thread_id,
        "threads": Thread.__table__.c.id,
        "sites": Site.__table__.c.id,
    }[name]
    source = {"comments": Comment, "threads": Thread, "sites": Site}[name].__table__
    ids = _ids_without_asking(state, name, where)
    if ids is None:
        # The same condition, asked before the statement runs (and inside its transaction).
        ids = set(
            session.connection()
            .execute(
                sa.select(column).select_from(source).where(where).distinct().limit(MAX_LISTED + 1)
            )
            .scalars()
        )
    if len(ids) > MAX_LISTED:
        _pending(session).add(EPOCH_SLOT)
    elif name == "sites":
        _note_sites(session, ids)
    elif ids:
        _note_threads(session, ids)


def _note_inserted(session: Session, name: str, parameters: Any) -> None:
    """Note the threads (or sites) of rows an ``INSERT`` statement adds (not a flush's)."""
    rows = parameters if isinstance(parameters, list | tuple) else [parameters or {}]
    column = {"comments": "thread_id", "threads": "id"}.get(name)
    ids = {row.get(column) for row in rows} if column is not None else {None}
    if None in ids or not ids:
        _pending(session).add(EPOCH_SLOT)  # values not given as parameters: retire everything
    else:
        _note_threads(session, ids)


def _ids_without_asking(state: ORMExecuteState, name: str, where: Any) -> set[int] | None:
    """The thread or site ids of ``WHERE <table>.id = <value>``, without a query; else None."""
    if (
        not isinstance(where, BinaryExpression)
        or where.operator is not operators.eq
        or not isinstance(where.right, BindParameter)
        or where.right.callable is not None
        or where.right.expanding
    ):
        return None
    parameters = state.parameters
    if not parameters:
        row_id = where.right.value
    elif isinstance(parameters, dict) and where.right.key in parameters:
        row_id = parameters[where.right.key]  # the value bound at execution wins
    else:
        return None  # several parameter sets, or a value we cannot see
    table = {"comments": Comment, "threads": Thread, "sites": Site}[name].__table__
    if not isinstance(row_id, int) or not where.left.compare(table.c.id):
        return None
    if name != "comments":
        return {row_id}  # threads and sites are noted by their own id
    # A comment is noted by its thread: known without a query if the comment is loaded.
    thread_id = _loaded(state.session, Comment, row_id, "thread_id")
    return None if thread_id is None else {thread_id}


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    """Bump the noted generations now that the change is visible to other transactions."""
    session.info.pop(_SITE_KEYS, None)
    slots = session.info.pop(_PENDING, None)
    if not slots or not has_app_context():
        return
    try:
        page_cache().bump(slots)
    except Exception:  # never fail a committed change over its cache
        log.exception("Could not invalidate cached pages")


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, previous_transaction: Any) -> None:
    """Forget what a rolled-back transaction noted (only for the outermost transaction)."""
    if previous_transaction.parent is None and not session.in_transaction():
        session.info.pop(_PENDING, None)
        session.info.pop(_SITE_KEYS, None)


def status(app: Flask | None = None) -> dict[str, Any]:
    """Hits, misses and where the cache lives (for health pages and tests)."""
    cache = page_cache(app)
    return {
        "enabled": cache.enabled,
        "backend": "redis" if cache.redis is not None else "memory",
        "hits": cache.hits,
        "misses": cache.misses,
    }
