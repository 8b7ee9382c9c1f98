"""The classifier as the web app uses it: loaded once per process, failing closed.

The model file is ``CLASSIFIER_MODEL_PATH`` (the shipped model by default). It is loaded on first
use, by one thread while the others wait, and kept for the life of the process. A missing,
corrupt or failing model never stops a comment from being stored: ``score_comment`` returns
None and the policy holds the comment with the reason ``classifier_unavailable``.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from flask import current_app, has_app_context

import classifier
from moderation.policy import Scores

if TYPE_CHECKING:
    from classifier.model import Model

__all__ = ["ensure_loaded", "loaded", "model_path", "model_version", "score_comment"]

log = logging.getLogger(__name__)

# A model that failed to load is tried again after this long, not on every comment: loading a
# damaged file costs time, but a file replaced by a deploy should be picked up eventually.
RETRY_SECONDS = 60.0

_lock = threading.Lock()
_models: dict[str, Model] = {}
_failures: dict[str, float] = {}  # path -> monotonic time of the last failed load


def model_path() -> str:
    """The model file of the current app (the shipped model when none is configured)."""
    configured = current_app.config.get("CLASSIFIER_MODEL_PATH") if has_app_context() else None
    return str(Path(configured)) if configured else str(classifier.DEFAULT_MODEL_PATH)


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
