"""The shipped recipe: one scikit-learn pipeline per task over shared text features.

Both tasks use the same fitted feature steps (normalisation, hashed word and character n-grams
with TF-IDF, text statistics), so a comment is prepared and vectorised once and scored by two
calibrated linear heads. ``Model.pipeline(task)`` gives the complete per-task Pipeline.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction._hashing_fast import transform as _hashing_transform
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import normalize
from tqdm import tqdm

from classifier.data import TASKS, Example
from classifier.features import (
    STAT_NAMES,
    CharNgrams,
    Prepared,
    TextPreparer,
    TextStats,
    WordNgrams,
    prepare,
    text_stats,
)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Recipe:
    """Everything that decides what a training run learns, recorded in the model file."""

    word_bits: int = 19
    char_bits: int = 20
    word_max_n: int = 2
    char_min_n: int = 2
    char_max_n: int = 5
    alpha: float = 1e-5  # L2 regularisation of the abuse head (NB-scaled SGD)
    spam_C: float = 10.0  # inverse regularisation of the spam head (logistic)
    epochs: int = 30
    source_power: float = 0.8  # a source's total weight grows with size**power
    class_balance: float = 0.5  # 0: each source's natural class ratio, 1: equal class mass
    calibration: str = "sigmoid"
    calibration_folds: int = 3
    seed: int = 0
    tasks: tuple[str, ...] = TASKS
    extra_weight: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form."""
        data = asdict(self)
        data["tasks"] = list(self.tasks)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recipe:
        """Inverse of :meth:`to_dict`, ignoring unknown keys from newer files."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if "tasks" in known:
            known["tasks"] = tuple(known["tasks"])
        return cls(**known)


# Thresholds the product ships with; the policy may override them per site. Probabilities are
# calibrated on the training mix, where the best-separated comments reach about 0.8-0.95 abuse
# (labels disagree across corpora), so "hold for a human" starts at even odds.
DEFAULT_THRESHOLDS: dict[str, dict[str, float]] = {
    "spam": {"hold": 0.5, "reject": 0.98},
    "abuse": {"hold": 0.5, "reject": 0.95},
}


def build_featurizer(recipe: Recipe) -> Pipeline:
    """The shared feature steps: prepare, then word + char hashed TF-IDF and statistics."""

    def hashed(analyzer: Callable[[Prepared], list[str]], bits: int) -> Pipeline:
        return Pipeline(
            [
                (
                    "hash",
                    HashingVectorizer(
                        analyzer=analyzer,
                        n_features=2**bits,
                        alternate_sign=False,
                        norm=None,
                        dtype=np.float32,
                    ),
                ),
                ("tfidf", TfidfTransformer(sublinear_tf=True)),
            ]
        )

    return Pipeline(
        [
            ("prepare", TextPreparer()),
            (
                "union",
                FeatureUnion(
                    [
                        ("words", hashed(WordNgrams(recipe.word_max_n), recipe.word_bits)),
                        (
                            "chars",
                            hashed(
                                CharNgrams(recipe.char_min_n, recipe.char_max_n), recipe.char_bits
                            ),
                        ),
                        ("stats", TextStats()),
                    ]
                ),
            ),
        ]
    )


class NBLinearClassifier(ClassifierMixin, BaseEstimator):
    """Logistic-loss linear model on naive-Bayes-scaled features (NBSVM, Wang and Manning 2012).

    Each feature is scaled by its log-count ratio between the classes before the linear fit;
    the fitted model keeps only the combined coefficients, so it is a plain linear model with
    ``coef_`` and ``intercept_`` (and explanations read it like any other).
    """

    def __init__(
        self, alpha: float = 1e-5, epochs: int = 30, smoothing: float = 1.0, random_state: int = 0
    ) -> None:
        self.alpha = alpha
        self.epochs = epochs
        self.smoothing = smoothing
        self.random_state = random_state

    def fit(
        self,
        X: sparse.spmatrix,
        y: np.ndarray,
        sample_weight: np.ndarray | None = None,
    ) -> NBLinearClassifier:
        """Learn the log-count ratios, then the linear weights on the scaled features."""
        X = sparse.csr_matrix(X)
        y = np.asarray(y)
        self.classes_ = np.unique(y)
        if len(self.classes_) != 2:
            raise ValueError("NBLinearClassifier needs exactly two classes")
        positive = (y == self.classes_[1]).astype(np.float64)
        weights = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, float)
        present = X.copy()
        present.data = np.ones_like(present.data)
        p = self.smoothing + present.T @ (weights * positive)
        q = self.smoothing + present.T @ (weights * (1 - positive))
        ratio = np.log((p / p.sum()) / (q / q.sum()))
        # SGD reaches liblinear's leave-one-source-out AUC in a quarter of the time.
        linear = SGDClassifier(
            loss="log_loss",
            alpha=self.alpha,
            max_iter=self.epochs,
            tol=None,
            random_state=self.random_state,
        )
        linear.fit(X.multiply(ratio).tocsr(), y, sample_weight=weights)
        self.coef_ = (linear.coef_ * ratio).astype(np.float32)
        self.intercept_ = linear.intercept_.astype(np.float64)
        self.n_features_in_ = X.shape[1]
        return self

    def decision_function(self, X: sparse.spmatrix) -> np.ndarray:
        """Log-odds of the positive class (before calibration)."""
        return np.asarray(X @ self.coef_.ravel(), dtype=np.float64) + self.intercept_[0]

    def predict(self, X: sparse.spmatrix) -> np.ndarray:
        """The more likely class."""
        return self.classes_[(self.decision_function(X) > 0).astype(int)]


def build_head(recipe: Recipe, task: str) -> CalibratedClassifierCV:
    """A calibrated logistic-loss linear model for one task."""
    base: BaseEstimator
    if task == "spam":
        # Spam data is small (7k); plain logistic regression generalised across YouTube videos
        # better than the NB-scaled head, which wins on the large, noisy abuse data.
        base = LogisticRegression(C=recipe.spam_C, solver="liblinear", random_state=recipe.seed)
    else:
        base = NBLinearClassifier(
            alpha=recipe.alpha, epochs=recipe.epochs, random_state=recipe.seed
        )
    return CalibratedClassifierCV(
        base, method=recipe.calibration, cv=recipe.calibration_folds, ensemble=False
    )


def example_weights(examples: Sequence[Example], task: str, recipe: Recipe) -> np.ndarray:
    """Per-example weights so that no single corpus, and no corpus's class ratio, dominates."""
    by_source: Counter[str] = Counter()
    by_source_label: Counter[tuple[str, int]] = Counter()
    for example in examples:
        label = example.label(task)
        assert label is not None
        by_source[example.source] += 1
        by_source_label[(example.source, label)] += 1
    weights = np.empty(len(examples))
    for index, example in enumerate(examples):
        n = by_source[example.source]
        label = example.label(task)
        assert label is not None
        total = n**recipe.source_power
        natural = by_source_label[(example.source, label)] / n
        labels_present = sum(1 for lab in (0, 1) if by_source_label[(example.source, lab)])
        balanced = 1.0 / labels_present
        share = (1 - recipe.class_balance) * natural + recipe.class_balance * balanced
        weights[index] = total * share / by_source_label[(example.source, label)] * example.weight
    return weights * (len(examples) / weights.sum())


def _hashed_tfidf(branch: Pipeline, prepared: list[Prepared]) -> sparse.csr_matrix:
    """What ``Pipeline([HashingVectorizer, TfidfTransformer]).transform`` computes, minus checks."""
    hasher = branch.named_steps["hash"]
    tfidf = branch.named_steps["tfidf"]
    analyzer = hasher.analyzer
    counts = hasher._get_hasher().transform(analyzer(doc) for doc in prepared)
    counts = sparse.csr_matrix(counts, dtype=np.float64)
    if tfidf.sublinear_tf:
        np.log(counts.data, counts.data)
        counts.data += 1
    counts.data *= tfidf.idf_[counts.indices]
    return normalize(counts, norm=tfidf.norm, copy=False)


@dataclass(frozen=True)
class _FastBranch:
    """One feature branch as ``Model.score_one`` uses it: where its columns start, its weights."""

    offset: int
    end: int
    hasher: HashingVectorizer | None = None
    analyzer: Callable[[Prepared], list[str]] | None = None
    n_features: int = 0
    idf: np.ndarray | None = None
    sublinear_tf: bool = False


@dataclass(frozen=True)
class _FastParts:
    """The fitted numbers ``Model.score_one`` needs, taken out of the scikit-learn objects once."""

    branches: tuple[_FastBranch, ...]
    # task -> (coefficients, intercept, calibrator a, calibrator b)
    heads: dict[str, tuple[np.ndarray, float, float, float]]

    @classmethod
    def of(cls, model: Model) -> _FastParts:
        branches = []
        offset = 0
        for _, branch in model.featurizer.named_steps["union"].transformer_list:
            if isinstance(branch, Pipeline):
                hasher = branch.named_steps["hash"]
                tfidf = branch.named_steps["tfidf"]
                # The fast path covers the shipped recipe's settings; others take the slow one.
                if hasher.alternate_sign or hasher.binary or hasher.norm is not None:
                    raise ValueError("score_one supports only the shipped hashing settings")
                if tfidf.norm != "l2" or not tfidf.use_idf:
                    raise ValueError("score_one supports only l2-normalised TF-IDF")
                size = hasher.n_features
                branches.append(
                    _FastBranch(
                        offset,
                        offset + size,
                        hasher,
                        hasher.analyzer,
                        size,
                        np.asarray(tfidf.idf_, dtype=np.float64),
                        tfidf.sublinear_tf,
                    )
                )
            else:
                size = len(STAT_NAMES)
                branches.append(_FastBranch(offset, offset + size))
            offset += size
        heads = {}
        for task, head in model.heads.items():
            fitted = head.calibrated_classifiers_[0]
            calibrator = fitted.calibrators[0]
            heads[task] = (
                np.ascontiguousarray(np.ravel(fitted.estimator.coef_), dtype=np.float64),
                float(fitted.estimator.intercept_[0]),
                float(calibrator.a_),
                float(calibrator.b_),
            )
        return cls(tuple(branches), heads)


@dataclass
class Contribution:
    """One n-gram or statistic that pushed a score up, with where it stands in the original text."""

    feature: str
    weight: float
    spans: list[tuple[int, int]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "feature": self.feature,
            "weight": round(float(self.weight), 4),
            "spans": self.spans,
        }


@dataclass
class Model:
    """A trained model: shared features, one calibrated head per task, and its metadata."""

    featurizer: Pipeline
    heads: dict[str, CalibratedClassifierCV]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def tasks(self) -> tuple[str, ...]:
        """Tasks this model scores."""
        return tuple(self.heads)

    @property
    def version(self) -> str:
        """Content hash of the model file (set when saved or loaded)."""
        return str(self.meta.get("version", "unsaved"))

    @property
    def thresholds(self) -> dict[str, dict[str, float]]:
        """Recommended hold/reject thresholds per task."""
        return self.meta.get("thresholds", DEFAULT_THRESHOLDS)

    def pipeline(self, task: str) -> Pipeline:
        """The complete scikit-learn Pipeline for one task."""
        return Pipeline([("features", self.featurizer), ("classifier", self.heads[task])])

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        """Feature matrix shared by all heads (the same numbers as the pipeline's, faster)."""
        return self.transform_prepared([prepare(text) for text in texts])

    def transform_prepared(self, prepared: Sequence[Prepared]) -> sparse.csr_matrix:
        """``transform`` of texts already through ``prepare`` (explanations keep the offsets)."""
        prepared = list(prepared)
        parts = []
        for _, branch in self.featurizer.named_steps["union"].transformer_list:
            if isinstance(branch, Pipeline):
                parts.append(_hashed_tfidf(branch, prepared))
            else:
                parts.append(sparse.csr_matrix(np.asarray([text_stats(d) for d in prepared])))
        return sparse.hstack(parts, format="csr")

    def predict_matrix(self, features: sparse.csr_matrix) -> dict[str, np.ndarray]:
        """Probabilities per task from a feature matrix."""
        result = {}
        for task, head in self.heads.items():
            # Binary CalibratedClassifierCV(ensemble=False): one estimator, one calibrator of
            # its decision function; called directly to skip per-call input validation.
            fitted = head.calibrated_classifiers_[0]
            coef = np.ravel(fitted.estimator.coef_)
            decision = features @ coef + fitted.estimator.intercept_[0]
            result[task] = np.clip(fitted.calibrators[0].predict(decision), 0.0, 1.0)
        return result

    def score(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """Scores for many texts: ``[{"spam": p, "abuse": p}, ...]``."""
        if not texts:
            return []
        if len(texts) == 1:
            return [self.score_one(texts[0])]
        probabilities = self.predict_matrix(self.transform(texts))
        return [
            {task: float(probabilities[task][i]) for task in self.heads} for i in range(len(texts))
        ]

    def score_one(self, text: str) -> dict[str, float]:
        """Scores for one text: the pipeline's numbers without its per-call matrix overhead."""
        # The web app scores one comment per request; building and validating sparse matrices
        # cost four times the arithmetic, so this path gathers the few coefficients it needs.
        fast = self._fast_parts()
        if fast is None:
            features = self.transform([text])
            return {task: float(p[0]) for task, p in self.predict_matrix(features).items()}
        document = prepare(text)
        decisions = dict.fromkeys(fast.heads, 0.0)
        for branch in fast.branches:
            if branch.hasher is None:
                values = np.asarray(text_stats(document), dtype=np.float64)
                for task, (coef, _, _, _) in fast.heads.items():
                    decisions[task] += float(coef[branch.offset : branch.end] @ values)
                continue
            tokens = branch.analyzer(document)
            if not tokens:
                continue
            indices, _, _ = _hashing_transform(
                [((token, 1) for token in tokens)], branch.n_features, np.float64, False, seed=0
            )
            columns, counts = np.unique(indices, return_counts=True)
            weights = counts.astype(np.float64)
            if branch.sublinear_tf:
                weights = np.log(weights) + 1.0
            weights *= branch.idf[columns]
            length = float(np.sqrt(weights @ weights))
            if length > 0.0:
                weights /= length
            columns = columns + branch.offset
            for task, (coef, _, _, _) in fast.heads.items():
                decisions[task] += float(coef[columns] @ weights)
        result = {}
        for task, (_, intercept, a, b) in fast.heads.items():
            # _SigmoidCalibration.predict: expit(-(a * T + b)); exp overflows past ~709.
            exponent = min(a * (decisions[task] + intercept) + b, 700.0)
            result[task] = min(1.0, max(0.0, 1.0 / (1.0 + math.exp(exponent))))
        return result

    def _fast_parts(self) -> _FastParts | None:
        if "_fast" not in self.__dict__:
            try:
                self.__dict__["_fast"] = _FastParts.of(self)
            except ValueError:
                self.__dict__["_fast"] = None  # a recipe the fast path does not cover
        return self.__dict__["_fast"]

    def explain(self, text: str, top: int = 8) -> dict[str, list[Contribution]]:
        """The features that pushed each task's score up most, with spans in the original text."""
        from classifier.explain import explain

        return explain(self, text, top=top)


def hash_blocks(
    featurizer: Pipeline, texts: Sequence[str], show_progress: bool = False
) -> list[sparse.csr_matrix]:
    """The unfitted part of the features, once per text: hashed counts and statistics per branch."""
    rows = tqdm(texts, desc="normalising", unit=" texts", disable=not show_progress, mininterval=1)
    # The same preparation as the pipeline's first step, one text at a time for the progress bar.
    prepared = [prepare(text) for text in rows]
    blocks = []
    for _, branch in featurizer.named_steps["union"].transformer_list:
        if isinstance(branch, Pipeline):
            blocks.append(branch.named_steps["hash"].transform(prepared).tocsr())
        else:
            blocks.append(branch.transform(prepared).tocsr())
    return blocks


def fit_features(
    featurizer: Pipeline, blocks: Sequence[sparse.csr_matrix], rows: Sequence[int] | None = None
) -> sparse.csr_matrix:
    """Fit the TF-IDF weights on ``rows`` (all by default) and return every row's features."""
    parts = []
    for (_, branch), block in zip(
        featurizer.named_steps["union"].transformer_list, blocks, strict=True
    ):
        if isinstance(branch, Pipeline):
            tfidf = branch.named_steps["tfidf"]
            tfidf.fit(block if rows is None else block[rows])
            parts.append(tfidf.transform(block))
        else:
            parts.append(block)
    return sparse.hstack(parts, format="csr")


def fit_heads(
    matrix: sparse.csr_matrix,
    examples: Sequence[Example],
    recipe: Recipe,
    say: Progress,
    rows: Sequence[int] | None = None,
) -> tuple[dict[str, CalibratedClassifierCV], dict[str, dict[str, int]]]:
    """One calibrated head per task, fitted on the (given) rows labelled for that task."""
    candidates = range(len(examples)) if rows is None else rows
    heads: dict[str, CalibratedClassifierCV] = {}
    counts: dict[str, dict[str, int]] = {}
    for task in recipe.tasks:
        index = [i for i in candidates if examples[i].label(task) is not None]
        labelled = [examples[i] for i in index]
        y = np.asarray([example.label(task) for example in labelled])
        if len(set(y.tolist())) < 2:
            raise ValueError(f"task {task!r} needs both labels in the training data")
        weights = example_weights(labelled, task, recipe)
        say(f"training {task}: {len(y):,} examples, {int(y.sum()):,} positive")
        head = build_head(recipe, task)
        head.fit(matrix[index], y, sample_weight=weights)
        heads[task] = head
        counts[task] = {"examples": len(y), "positives": int(y.sum())}
    return heads, counts


def train(
    examples: Sequence[Example],
    recipe: Recipe | None = None,
    progress: Progress | None = None,
) -> Model:
    """Fit the shared features on every text and one calibrated head per task."""
    recipe = recipe or Recipe()
    say = progress or (lambda message: None)
    started = time.perf_counter()
    say(f"preparing {len(examples):,} texts")
    featurizer = build_featurizer(recipe)
    blocks = hash_blocks(
        featurizer, [example.text for example in examples], show_progress=progress is not None
    )
    say("fitting features")
    matrix = fit_features(featurizer, blocks)
    heads, counts = fit_heads(matrix, examples, recipe, say)
    say(f"trained in {time.perf_counter() - started:.1f}s")
    meta = {
        "recipe": recipe.to_dict(),
        "training": {
            "counts": counts,
            "sources": dict(sorted(Counter(e.source for e in examples).items())),
        },
        "thresholds": DEFAULT_THRESHOLDS,
        "features": {
            "stats": list(STAT_NAMES),
            "words": 2**recipe.word_bits,
            "chars": 2**recipe.char_bits,
        },
    }
    return Model(featurizer, heads, meta)
