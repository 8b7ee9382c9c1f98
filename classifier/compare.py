"""Compare two model files on the same evaluation sets: promote a candidate only if not worse."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from classifier.data import TASKS, Example, available_sources, load_labelled_file, load_sources
from classifier.model import Model
from classifier.persist import load_model

# One text in five, chosen by a hash of its text: stable across runs, data additions and models.
EVALUATION_SHARE = 5


def in_evaluation_slice(text: str) -> bool:
    """Whether a text belongs to the fixed evaluation slice."""
    return hashlib.sha1(text.encode("utf-8")).digest()[0] % EVALUATION_SHARE == 0


def evaluation_sets(data_dir: Path | None, extra: list[Path]) -> dict[str, list[Example]]:
    """The fixed slice of every training source, plus each extra labelled file whole."""
    sets: dict[str, list[Example]] = {}
    if data_dir is not None and data_dir.is_dir():
        names = available_sources(data_dir)
        for example in load_sources(names, data_dir):
            if in_evaluation_slice(example.text):
                sets.setdefault(example.source, []).append(example)
    for path in extra:
        sets[f"extra:{path.name}"] = load_labelled_file(path)
    return sets


def _auc(examples: list[Example], scores: list[dict[str, float]], task: str) -> float | None:
    pairs = [(e.label(task), s[task]) for e, s in zip(examples, scores, strict=True)]
    labelled = [(y, p) for y, p in pairs if y is not None]
    ys = [y for y, _ in labelled]
    if not ys or len(set(ys)) < 2:
        return None
    return round(float(roc_auc_score(ys, [p for _, p in labelled])), 4)


def compare_on_sets(
    active: Model,
    candidate: Model,
    sets: dict[str, list[Example]],
    tolerance: float = 0.005,
) -> dict[str, Any]:
    """ROC AUC of two loaded models per set and task; "worse" is a drop beyond ``tolerance``."""
    rows = []
    worse = []
    for name, examples in sorted(sets.items()):
        texts = [e.text for e in examples]
        a_scores = active.score(texts)
        c_scores = candidate.score(texts)
        for task in TASKS:
            a_auc, c_auc = _auc(examples, a_scores, task), _auc(examples, c_scores, task)
            if a_auc is None or c_auc is None:
                continue
            rows.append(
                {
                    "set": name,
                    "task": task,
                    "n": len(examples),
                    "active": a_auc,
                    "candidate": c_auc,
                    "delta": round(c_auc - a_auc, 4),
                }
            )
            if c_auc < a_auc - tolerance:
                worse.append(f"{name}/{task}: {c_auc} < {a_auc}")
    deltas = [r["delta"] for r in rows]
    return {
        "tolerance": tolerance,
        "sets": rows,
        "mean_delta": round(float(np.mean(deltas)), 4) if deltas else None,
        "worse_on": worse,
        "candidate_not_worse": not worse,
    }


def compare_models(
    active_path: Path,
    candidate_path: Path,
    data_dir: Path | None,
    extra: list[Path],
    tolerance: float = 0.005,
) -> dict[str, Any]:
    """ROC AUC of both models per set and task; the verdict is "not worse" on every fixed set."""
    active = load_model(active_path)
    candidate = load_model(candidate_path)
    sets = evaluation_sets(data_dir, extra)
    if not sets:
        raise ValueError("no evaluation sets: give --data with training sets or --extra files")
    return {
        "active": {"path": str(active_path), "version": active.version},
        "candidate": {"path": str(candidate_path), "version": candidate.version},
        **compare_on_sets(active, candidate, sets, tolerance),
    }
