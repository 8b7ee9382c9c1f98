"""The classifier as the web app uses it: loaded once per process, failing closed.

The model file is ``CLASSIFIER_MODEL_PATH`` when it names another file than the shipped model;
otherwise it is the active model version (``flask classifier ...``, moderation/learning.py), read
from the database at most every ``ACTIVE_CHECK_SECONDS`` per process, and the shipped model when
no version is active. A file is loaded on first use, by one thread while the others wait, and
kept until another version becomes active. A missing, corrupt or failing model never stops a
comment from being stored: ``score_comment`` returns None and the policy holds the comment with
the reason ``classifier_unavailable``.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from flask import Flask, current_app, has_app_context

import classifier
from moderation.extensions import db
from moderation.models import ModelVersion
from moderation.ops import CLASSIFIER_SECONDS
from moderation.policy import Scores

if TYPE_CHECKING:
    from classifier.model import Model

__all__ = [
    "SHIPPED_MODEL",
    "ensure_loaded",
    "forget_active",
    "loaded",
    "model_path",
    "model_version",
    "readiness_problem",
    "resolve_model_file",
    "score_comment",
]

log = logging.getLogger(__name__)

# A model that failed to load is tried again after this long, not on every comment: loading a
# damaged file costs time, but a file replaced by a deploy should be picked up eventually.
RETRY_SECONDS = 60.0
# How often a process asks the database which model version is active: a promotion or a
# rollback reaches every web process within this time, at one small query per interval.
ACTIVE_CHECK_SECONDS = 30.0
# The stored path of the shipped model: it moves with the installed package.
SHIPPED_MODEL = "shipped"

_lock = threading.Lock()
_models: dict[str, Model] = {}
_failures: dict[str, float] = {}  # path -> monotonic time of the last failed load
# app -> (monotonic time of the last check, the active version's file or None)
_active: weakref.WeakKeyDictionary[Flask, tuple[float, str | None]] = weakref.WeakKeyDictionary()


def resolve_model_file(stored: str, instance_path: str) -> Path:
    """The file a ``ModelVersion.path`` names: the shipped model, or a path in the instance."""
    if stored == SHIPPED_MODEL:
        return Path(classifier.DEFAULT_MODEL_PATH)
    path = Path(stored)
    return path if path.is_absolute() else Path(instance_path) / path


def _active_file(app: Flask) -> str | None:
    """The active version's file, re-read from the database at most every interval."""
    now = time.monotonic()
    checked = _active.get(app)
    if checked is not None and now - checked[0] < ACTIVE_CHECK_SECONDS:
        return checked[1]
    previous = checked[1] if checked is not None else None
    # Marked as checked first, so that concurrent requests do not all ask at once.
    _active[app] = (now, previous)
    try:
        # Through the request's own session, in a savepoint: a second pooled connection per
        # request can exhaust the pool under load (every thread holding one, waiting for
        # another), and the savepoint keeps a failure from spoiling the caller's transaction.
        with db.session.begin_nested():
            stored = db.session.scalar(
                sa.select(ModelVersion.path)
                .where(ModelVersion.state == "active")
                .order_by(ModelVersion.promoted_at.desc(), ModelVersion.id.desc())
                .limit(1)
            )
    except sa.exc.SQLAlchemyError:
        log.exception("Could not read the active model version; keeping %s", previous)
        return previous
    path = str(resolve_model_file(stored, app.instance_path)) if stored else None
    _active[app] = (now, path)
    if previous is not None and previous != path:
        log.info("The active model changed from %s to %s", previous, path)
        _forget_model(previous)
    return path


def _forget_model(path: str) -> None:
    # The shipped model stays: the classifier package keeps it for the process anyway.
    if Path(path) != Path(classifier.DEFAULT_MODEL_PATH):
        with _lock:
            _models.pop(path, None)


def forget_active() -> None:
    """Read the active version again on next use (this process changed it)."""
    _active.clear()


def model_path() -> str:
    """The model file of the current app: configured, else the active version, else shipped."""
    shipped = str(classifier.DEFAULT_MODEL_PATH)
    if not has_app_context():
        return shipped
    configured = current_app.config.get("CLASSIFIER_MODEL_PATH")
    # The configuration defaults to the shipped model; any other file is a deliberate choice
    # that wins over the versions in the database.
    if configured and Path(configured) != Path(shipped):
        return str(Path(configured))
    return _active_file(current_app._get_current_object()) or shipped  # type: ignore[attr-defined]


def _load(path: str) -> Model | None:
    model = _models.get(path)
    if model is not None:
        return model
    with _lock:
        # Checked again under the lock: another thread may have loaded it while this one waited.
        model = _models.get(path)
        if model is not None:
            return model
        failed_at = _failures.get(path)
        if failed_at is not None and time.monotonic() - failed_at < RETRY_SECONDS:
            return None
        try:
            if Path(path) == Path(classifier.DEFAULT_MODEL_PATH):
                # Shared with the classifier package's own cache, so it is loaded only once.
                model = classifier.default_model()
            else:
                model = classifier.load_model(Path(path))
        except Exception:
            _failures[path] = time.monotonic()
            log.exception("Could not load the classifier model %s; comments will be held", path)
            return None
        _failures.pop(path, None)
        _models[path] = model
        log.info("Loaded classifier model %s (version %s)", path, model.version)
        return model


def score_comment(text: str) -> Scores | None:
    """Spam and abuse scores for ``text``, or None (logged) if the model is unusable."""
    model = _load(model_path())
    if model is None:
        return None
    try:
        with CLASSIFIER_SECONDS.time():
            result = model.score([text])[0]
        return Scores(
            spam=float(result["spam"]), abuse=float(result["abuse"]), model_version=model.version
        )
    except Exception:
        log.exception("The classifier failed to score a comment; it will be held")
        return None


def model_version() -> str | None:
    """The version of the loaded model, or None if it is not (or cannot be) loaded."""
    model = _load(model_path())
    return model.version if model is not None else None


def loaded() -> bool:
    """Whether the current app's model is loaded and ready (never triggers a load)."""
    return model_path() in _models


def ensure_loaded() -> bool:
    """Load the current app's model now if needed (e.g. at start-up); whether it is ready."""
    return _load(model_path()) is not None


# A short, harmless text the readiness check scores: a model that loads but cannot score, or
# scores outside [0, 1], is as unusable as a missing one.
READINESS_PROBE = "Thanks for the article, the council vote was close."


def readiness_problem() -> str | None:
    """Why the current app's model cannot score comments now (loading it if needed), or None."""
    model = _load(model_path())
    if model is None:
        return "the classifier model could not be loaded; comments are held for moderators"
    try:
        result = model.score([READINESS_PROBE])[0]
        values = [float(result["spam"]), float(result["abuse"])]
    except Exception:
        log.exception("The classifier model failed the readiness probe")
        return "the classifier model fails to score; comments are held for moderators"
    if not all(0.0 <= value <= 1.0 for value in values):  # also False for NaN
        return "the classifier model returns scores outside 0-1; comments are held for moderators"
    return None
