"""Why a comment scored as it did: the words and statistics that pushed each score up.

The heads are calibrated linear models, so a feature's push is its TF-IDF value times the
model's coefficient; calibration is monotonic, so a positive push raises the probability.
Character n-grams are summed into the word they belong to, and every word is mapped back to
its span in the original text (through the normaliser's offset map) for highlighting.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import TYPE_CHECKING

import numpy as np
from sklearn.utils import murmurhash3_32

from classifier.features import STAT_NAMES, Prepared, prepared_from
from classifier.normalize import normalize_full

if TYPE_CHECKING:
    from classifier.model import Contribution, Model

_WORD = re.compile(r"\w+")


def _index(gram: str, size: int) -> int:
    # The same bucket HashingVectorizer uses (signed murmur3, absolute value, modulo).
    return abs(murmurhash3_32(gram, seed=0)) % size


def linear_coefficients(model: Model, task: str) -> np.ndarray:
    """The coefficient vector of a task's linear model (the estimator fitted on all data)."""
    head = model.heads[task]
    estimator = head.calibrated_classifiers_[0].estimator
    return np.ravel(estimator.coef_)


def explain(model: Model, text: str, top: int = 8) -> dict[str, list[Contribution]]:
    """Top contributions per task, each with the spans in ``text`` it comes from."""
    from classifier.model import Contribution

    normalized = normalize_full(text)
    prepared: Prepared = prepared_from(text, normalized)
    # The model's own fast path: the pipeline's transform validates its input at every step,
    # which cost three quarters of an explanation (8.8 ms) and made the desk's cards slow.
    row = model.transform_prepared([prepared]).tocsr()
    values = dict(zip(row.indices.tolist(), row.data.tolist(), strict=True))
    union = model.featurizer.named_steps["union"]
    word_size = union.transformer_list[0][1].named_steps["hash"].n_features
    char_hash = union.transformer_list[1][1].named_steps["hash"]
    char_size = char_hash.n_features
    min_n, max_n = char_hash.analyzer.min_n, char_hash.analyzer.max_n
    words = [(m.group(), m.start(), m.end()) for m in _WORD.finditer(normalized.text)]

    occurrences: dict[int, list[tuple[str, tuple[int, int]]]] = defaultdict(list)
    for position, (word, start, end) in enumerate(words):
        occurrences[_index(word, word_size)].append((word, (start, end)))
        if position + 1 < len(words):
            following, _, end2 = words[position + 1]
            pair = f"{word} {following}"
            occurrences[_index(pair, word_size)].append((pair, (start, end2)))
    # Character n-grams are credited to the whitespace-separated token they come from.
    for match in re.finditer(r"\S+", normalized.text):
        token, start = match.group(), match.start()
        padded = f" {token} "
        for n in range(min_n, min(max_n, len(padded)) + 1):
            for i in range(len(padded) - n + 1):
                index = word_size + _index(padded[i : i + n], char_size)
                occurrences[index].append((token, (start, start + len(token))))

    result: dict[str, list[Contribution]] = {}
    for task in model.tasks:
        coef = linear_coefficients(model, task)
        push: dict[tuple[str, tuple[int, int]], float] = defaultdict(float)
        for index, places in occurrences.items():
            value = values.get(index)
            if value is None:
                continue
            # A feature seen in several places shares its push between them.
            share = value * coef[index] / len(places)
            for place in places:
                push[place] += share
        contributions = [
            Contribution(label, float(weight), [normalized.span(start, end)])
            for (label, (start, end)), weight in push.items()
            if weight > 0
        ]
        stats_offset = word_size + char_size
        for position, name in enumerate(STAT_NAMES):
            index = stats_offset + position
            weight = values.get(index, 0.0) * coef[index]
            if weight > 0:
                contributions.append(Contribution(f"stat:{name}", float(weight), []))
        contributions.sort(key=lambda c: c.weight, reverse=True)
        result[task] = _merge_same_label(contributions)[:top]
    return result


def _merge_same_label(contributions: list[Contribution]) -> list[Contribution]:
    """One entry per label, with every place it occurs."""
    merged: dict[str, Contribution] = {}
    for item in contributions:
        if item.feature in merged:
            merged[item.feature].weight += item.weight
            merged[item.feature].spans.extend(item.spans)
        else:
            merged[item.feature] = item
    return sorted(merged.values(), key=lambda c: c.weight, reverse=True)
