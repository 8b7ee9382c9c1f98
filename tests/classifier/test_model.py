"""The recipe, tested by its properties: ranges, better than chance, explanations, determinism."""

from __future__ import annotations

import itertools

import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline

from classifier.data import Example
from classifier.model import Model, Recipe, example_weights, train
from tests.classifier.conftest import TINY


def test_probabilities_are_in_range(tiny_model: Model, held_back: list[Example]) -> None:
    scores = tiny_model.score([e.text for e in held_back] + ["", " ", "\u202e\u200b", "x" * 20000])
    assert len(scores) == len(held_back) + 4
    for row in scores:
        assert set(row) == {"spam", "abuse"}
        assert all(0.0 <= value <= 1.0 for value in row.values())


def test_better_than_chance_on_held_back_data(tiny_model: Model, held_back: list[Example]) -> None:
    scores = tiny_model.score([e.text for e in held_back])
    for task in ("spam", "abuse"):
        y = [e.label(task) for e in held_back]
        auc = roc_auc_score(y, [s[task] for s in scores])
        assert auc > 0.9, (task, auc)


def test_each_task_is_a_complete_pipeline(tiny_model: Model, held_back: list[Example]) -> None:
    pipeline = tiny_model.pipeline("abuse")
    assert isinstance(pipeline, Pipeline)
    texts = [e.text for e in held_back[:20]]
    direct = pipeline.predict_proba(texts)[:, 1]
    assert np.allclose(direct, [s["abuse"] for s in tiny_model.score(texts)])


def test_one_text_gets_the_pipelines_numbers(tiny_model: Model, held_back: list[Example]) -> None:
    texts = [e.text for e in held_back[:60]] + ["", " ", "\u202e\u200b", "x" * 20000, "a 1d10t"]
    batch = tiny_model.predict_matrix(tiny_model.transform(texts))
    for task in ("spam", "abuse"):
        single = [tiny_model.score_one(text)[task] for text in texts]
        assert np.allclose(batch[task], single, rtol=0, atol=1e-12), task
        # The pipeline itself computes in float32, hence the looser match.
        assert np.allclose(tiny_model.pipeline(task).predict_proba(texts)[:, 1], single), task
    # score() of one text takes the same path as score_one()
    assert tiny_model.score([texts[0]]) == [tiny_model.score_one(texts[0])]


def test_explanations_point_at_the_words_in_the_original_text(tiny_model: Model) -> None:
    text = "Honestly, a M0R0N on the new bridge"
    explanation = tiny_model.explain(text)
    top = explanation["abuse"]
    assert top and top[0].weight > 0
    assert all(a.weight >= b.weight for a, b in itertools.pairwise(top))
    highlighted = {text[start:end] for item in top[:3] for start, end in item.spans}
    assert "M0R0N" in highlighted


def test_training_is_deterministic(corpus: list[Example]) -> None:
    first = train(corpus[:300], TINY)
    second = train(corpus[:300], TINY)
    texts = [e.text for e in corpus[300:330]]
    assert first.score(texts) == second.score(texts)


def test_weights_balance_sources_and_classes() -> None:
    examples = [Example(f"a{i}", "big", abuse=int(i < 900)) for i in range(1000)]
    examples += [Example(f"b{i}", "small", abuse=int(i < 10)) for i in range(100)]
    weights = example_weights(examples, "abuse", Recipe(source_power=0.5, class_balance=1.0))
    big = weights[:1000].sum()
    small = weights[1000:].sum()
    assert abs(big / small - (1000 / 100) ** 0.5) < 1e-6
    small_pos = weights[1000:1010].sum()
    assert abs(small_pos - small / 2) < 1e-6
    assert abs(weights.sum() - len(examples)) < 1e-6


def test_extra_examples_carry_their_weight() -> None:
    examples = [Example("x", "mine", abuse=1, weight=3.0), Example("y", "mine", abuse=1)]
    examples += [Example("z", "mine", abuse=0)]
    weights = example_weights(examples, "abuse", Recipe(class_balance=0.0))
    assert abs(weights[0] / weights[1] - 3.0) < 1e-9


def test_a_model_needs_both_labels() -> None:
    import pytest

    with pytest.raises(ValueError, match="both labels"):
        train([Example("a", "s", spam=1, abuse=0), Example("b", "s", spam=1, abuse=1)], TINY)
