"""Local spam and abuse scoring for comments: text in, probabilities and reasons out.

No Flask, no database: ``score``, ``explain``, ``train`` and safe model files.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from classifier.model import Contribution, Model, Recipe, train
from classifier.persist import ModelFileError, load_model, read_meta, save_model

DEFAULT_MODEL_PATH = Path(__file__).resolve().parent / "models" / "default.skops"

__all__ = [
    "DEFAULT_MODEL_PATH",
    "Contribution",
    "Model",
    "ModelFileError",
    "Recipe",
    "default_model",
    "explain",
    "load_model",
    "read_meta",
    "save_model",
    "score",
    "train",
]

_lock = threading.Lock()
_default: Model | None = None


def default_model() -> Model:
    """The model shipped in the package, loaded once per process."""
    global _default
    with _lock:
        if _default is None:
            _default = load_model(DEFAULT_MODEL_PATH)
        return _default


def score(texts: Sequence[str], model: Model | None = None) -> list[dict[str, float]]:
    """``[{"spam": p, "abuse": p}, ...]`` for ``texts`` with the given or the shipped model."""
    return (model or default_model()).score(texts)


def explain(text: str, model: Model | None = None, top: int = 8) -> dict[str, list[Contribution]]:
    """The words and statistics that pushed each score up, with their spans in ``text``."""
    return (model or default_model()).explain(text, top=top)
