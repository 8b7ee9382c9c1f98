"""Local spam and abuse scoring for comments: text in, probabilities and reasons out.

No Flask, no database: ``score``, ``explain``, ``train`` and safe model files. The heavy
modules (scikit-learn) load on first use, so ``classifier.normalize`` stays cheap to import.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from classifier.model import Contribution, Model

DEFAULT_MODEL_PATH = Path(__file__).resolve().parent / "models" / "default.skops"

_LAZY = {
    "Contribution": "classifier.model",
    "Model": "classifier.model",
    "Recipe": "classifier.model",
    "train": "classifier.model",
    "ModelFileError": "classifier.persist",
    "load_model": "classifier.persist",
    "read_meta": "classifier.persist",
    "save_model": "classifier.persist",
}

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


def __getattr__(name: str) -> Any:
    """Import the model code on first use of one of its names."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'classifier' has no attribute {name!r}")


def default_model() -> Model:
    """The model shipped in the package, loaded once per process."""
    global _default
    with _lock:
        if _default is None:
            from classifier.persist import load_model

            _default = load_model(DEFAULT_MODEL_PATH)
        return _default


def score(texts: Sequence[str], model: Model | None = None) -> list[dict[str, float]]:
    """``[{"spam": p, "abuse": p}, ...]`` for ``texts`` with the given or the shipped model."""
    return (model or default_model()).score(texts)


def explain(text: str, model: Model | None = None, top: int = 8) -> dict[str, list[Contribution]]:
    """The words and statistics that pushed each score up, with their spans in ``text``."""
    return (model or default_model()).explain(text, top=top)
