"""Evaluation that predicts how the model does on comment sections it has never seen.

Three views, all with the shipped recipe retrained per split:
(a) a stratified held-out split of the training sources (in-source; flatters),
(b) leave-one-source-out: for each source, train on all the others and test on it (the number
    to optimise), with the plain TF-IDF baseline and the ``alt-profanity-check`` peer beside it,
(c) robustness: abusive held-out comments rewritten the way evaders write, and the mean drop.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)
from sklearn.model_selection import train_test_split

from classifier.data import SOURCES, TASKS, Example, available_sources, load_sources
from classifier.model import (
    DEFAULT_THRESHOLDS,
    Progress,
    Recipe,
    build_featurizer,
    fit_features,
    fit_heads,
    hash_blocks,
)
from classifier.obfuscate import KINDS, obfuscate

# The first-round sources of the plain baseline the issue measures against.
BASELINE_SOURCES = (
    "kaggle-insults",
    "davidson-hate-offensive",
    "olid",
    "stormfront-hate-speech",
    "trac1-aggression",
)
BASELINE_REFERENCE = {
    "kaggle-insults": 0.806,
    "davidson-hate-offensive": 0.800,
    "olid": 0.715,
    "stormfront-hate-speech": 0.731,
    "trac1-aggression": 0.682,
}
# The peer was trained on Davidson and on Jigsaw's data (our sample is Jigsaw's first rows).
PEER_TRAINED_ON = ("davidson-hate-offensive", "jigsaw-toxic-train-sample")


def metrics(y: Sequence[int], p: Sequence[float], thresholds: Sequence[float]) -> dict[str, Any]:
    """ROC AUC, PR AUC and precision/recall at each threshold."""
    y_arr = np.asarray(y)
    p_arr = np.asarray(p)
    result: dict[str, Any] = {"n": len(y_arr), "positives": int(y_arr.sum())}
    if 0 < y_arr.sum() < len(y_arr):
        result["roc_auc"] = round(float(roc_auc_score(y_arr, p_arr)), 4)
        result["pr_auc"] = round(float(average_precision_score(y_arr, p_arr)), 4)
    at = {}
    for threshold in thresholds:
        flagged = p_arr >= threshold
        true_positive = int((flagged & (y_arr == 1)).sum())
        at[str(threshold)] = {
            "precision": round(true_positive / max(int(flagged.sum()), 1), 4),
            "recall": round(true_positive / max(int(y_arr.sum()), 1), 4),
            "flagged": int(flagged.sum()),
        }
    result["at"] = at
    return result


class Workbench:
    """Examples hashed once, so every split only refits TF-IDF weights and the linear heads."""

    def __init__(self, examples: Sequence[Example], recipe: Recipe, progress: Progress) -> None:
        self.examples = list(examples)
        self.test_sets: dict[str, list[int]] = {}  # abuse test sets of (b), by name
        self.recipe = recipe
        self.say = progress
        started = time.perf_counter()
        self.featurizer = build_featurizer(recipe)
        self.blocks = hash_blocks(self.featurizer, [e.text for e in self.examples])
        self.say(f"hashed {len(self.examples):,} texts in {time.perf_counter() - started:.0f}s")

    def fit_predict(
        self, train_rows: Sequence[int], test_rows: Sequence[int], tasks: Sequence[str]
    ) -> dict[str, np.ndarray]:
        """Train on ``train_rows`` and return the probabilities of ``test_rows`` per task."""
        matrix = fit_features(self.featurizer, self.blocks, train_rows)
        recipe = replace(self.recipe, tasks=tuple(tasks))
        heads, _ = fit_heads(matrix, self.examples, recipe, lambda _: None, rows=train_rows)
        test = matrix[list(test_rows)]
        return {task: head.predict_proba(test)[:, 1] for task, head in heads.items()}


def _thresholds(task: str) -> list[float]:
    shipped = DEFAULT_THRESHOLDS[task]
    return sorted({0.5, 0.8, shipped["hold"], shipped["reject"]})


def _labels(examples: Sequence[Example], rows: Sequence[int], task: str) -> np.ndarray:
    return np.asarray([examples[i].label(task) for i in rows])


def held_out(bench: Workbench, pool: Sequence[int], seed: int) -> tuple[dict[str, Any], Any]:
    """(a) Stratified 80/20 split of the training pool; metrics per task and per source."""
    examples = bench.examples
    strata = [f"{examples[i].source}|{examples[i].spam}|{examples[i].abuse}" for i in pool]
    train_rows, test_rows = train_test_split(
        list(pool), test_size=0.2, random_state=seed, stratify=strata
    )
    scores = bench.fit_predict(train_rows, test_rows, TASKS)
    report: dict[str, Any] = {}
    curves = {}
    for task in TASKS:
        rows = [i for i in test_rows if examples[i].label(task) is not None]
        position = {row: k for k, row in enumerate(test_rows)}
        p = np.asarray([scores[task][position[i]] for i in rows])
        y = _labels(examples, rows, task)
        per_source = {}
        for source in sorted({examples[i].source for i in rows}):
            mask = np.asarray([examples[i].source == source for i in rows])
            per_source[source] = metrics(y[mask], p[mask], _thresholds(task))
        report[task] = {"all": metrics(y, p, _thresholds(task)), "sources": per_source}
        curves[f"held-out {task}"] = (y, p)
    return report, (test_rows, scores, curves)


def _spam_groups(examples: Sequence[Example], pool: Sequence[int]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for i in pool:
        example = examples[i]
        if example.spam is None:
            continue
        name = (
            f"youtube:{example.group}" if example.source.startswith("youtube") else example.source
        )
        groups.setdefault(name, []).append(i)
    return groups


def leave_one_source_out(
    bench: Workbench, pool: Sequence[int], extra_test: Sequence[int]
) -> tuple[dict[str, Any], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """(b) Train on every other source, test on the one left out; per task."""
    examples = bench.examples
    report: dict[str, Any] = {"spam": {}, "abuse": {}}
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    pool_set = set(pool)
    # Spam: each YouTube video in turn, and the SMS corpus.
    for name, rows in sorted(_spam_groups(examples, pool).items()):
        held = set(rows)
        train_rows = [i for i in pool if i not in held]
        started = time.perf_counter()
        p = bench.fit_predict(train_rows, rows, ["spam"])["spam"]
        y = _labels(examples, rows, "spam")
        report["spam"][name] = metrics(y, p, _thresholds("spam"))
        curves[f"spam: {name}"] = (y, p)
        bench.say(
            f"spam, left out {name}: ROC AUC {report['spam'][name].get('roc_auc')} "
            f"({time.perf_counter() - started:.0f}s)"
        )
    # Abuse: each source in turn; positives-only sources are tested with clean news comments
    # from a source that never trains the shipped model.
    abuse_sources = sorted({examples[i].source for i in pool if examples[i].abuse is not None})
    negatives = [i for i in extra_test if examples[i].abuse == 0]
    for source in abuse_sources:
        rows = [i for i in pool if examples[i].source == source and examples[i].abuse is not None]
        train_rows = [i for i in pool if examples[i].source != source]
        name = source
        if SOURCES[source].positives_only:
            if not negatives:
                continue
            rows = rows + negatives
            name = f"{source} + news negatives"
        started = time.perf_counter()
        bench.test_sets[name] = rows
        p = bench.fit_predict(train_rows, rows, ["abuse"])["abuse"]
        y = _labels(examples, rows, "abuse")
        report["abuse"][name] = metrics(y, p, _thresholds("abuse"))
        curves[f"abuse: {name}"] = (y, p)
        bench.say(
            f"abuse, left out {name}: ROC AUC {report['abuse'][name].get('roc_auc')} "
            f"({time.perf_counter() - started:.0f}s)"
        )
    # Sources never in the training pool (non-commercial ones): test the full-pool model.
    unseen = sorted(
        {examples[i].source for i in extra_test} - {examples[i].source for i in pool_set}
    )
    if unseen:
        full = bench.fit_predict(list(pool), list(extra_test), ["abuse"])["abuse"]
        for source in unseen:
            mask = np.asarray([examples[i].source == source for i in extra_test])
            rows = [i for i in extra_test if examples[i].source == source]
            bench.test_sets[source] = rows
            y = _labels(examples, rows, "abuse")
            report["abuse"][source] = metrics(y, full[mask], _thresholds("abuse"))
            curves[f"abuse: {source}"] = (y, full[mask])
    return report, curves


def baseline_loso(examples: Sequence[Example], progress: Progress) -> dict[str, Any]:
    """Plain word(1-2)+char(2-5) TF-IDF logistic regression, LOSO over the first five sources."""
    from scipy import sparse
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    result: dict[str, Any] = {}
    for source in BASELINE_SOURCES:
        train = [e for e in examples if e.source in BASELINE_SOURCES and e.source != source]
        test = [e for e in examples if e.source == source]
        if not train or not test:
            continue
        words = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)
        chars = TfidfVectorizer(analyzer="char", ngram_range=(2, 5), sublinear_tf=True, min_df=2)
        train_texts = [e.text for e in train]
        x = sparse.hstack([words.fit_transform(train_texts), chars.fit_transform(train_texts)])
        model = LogisticRegression(max_iter=2000, solver="liblinear")
        model.fit(x, [e.abuse for e in train])
        test_texts = [e.text for e in test]
        x_test = sparse.hstack([words.transform(test_texts), chars.transform(test_texts)])
        p = model.predict_proba(x_test.tocsr())[:, 1]
        result[source] = round(float(roc_auc_score([e.abuse for e in test], p)), 4)
        progress(f"baseline, left out {source}: ROC AUC {result[source]}")
    return result


def peer_scores(
    examples: Sequence[Example], test_sets: dict[str, list[int]], progress: Progress
) -> dict[str, Any]:
    """ROC AUC of the ``alt-profanity-check`` peer on each abuse test set it was not trained on."""
    from classifier.peer import PEER_NAME, PeerUnavailable, score_with_peer

    result: dict[str, Any] = {"name": PEER_NAME, "sources": {}}
    try:
        for name, rows in test_sets.items():
            if any(name.startswith(trained) for trained in PEER_TRAINED_ON):
                continue
            p = score_with_peer([examples[i].text for i in rows])
            result["sources"][name] = metrics([examples[i].abuse for i in rows], p, [0.5])
        progress(f"peer scored {len(result['sources'])} test sets")
    except PeerUnavailable as error:
        result["unavailable"] = str(error)
        progress(f"peer unavailable: {error}")
    return result


def robustness(
    bench: Workbench, pool: Sequence[int], test_rows: Sequence[int], limit: int, seed: int
) -> dict[str, Any]:
    """(c) Mean abuse-score drop when held-out abusive comments are obfuscated, per kind."""
    from classifier.model import Model

    examples = bench.examples
    train_rows = sorted(set(pool) - set(test_rows))
    matrix = fit_features(bench.featurizer, bench.blocks, train_rows)
    recipe = replace(bench.recipe, tasks=("abuse",))
    heads, _ = fit_heads(matrix, examples, recipe, lambda _: None, rows=train_rows)
    model = Model(bench.featurizer, heads)
    abusive = [examples[i].text for i in test_rows if examples[i].abuse == 1]
    rng = random.Random(seed)
    rng.shuffle(abusive)
    original = np.asarray([s["abuse"] for s in model.score(abusive[: limit * 3])])
    # Only comments the model already catches can lose score to an evader.
    chosen = [t for t, p in zip(abusive[: limit * 3], original, strict=True) if p >= 0.5][:limit]
    base = np.asarray([s["abuse"] for s in model.score(chosen)])
    result: dict[str, Any] = {"comments": len(chosen), "kinds": {}}
    drops = []
    for kind in KINDS:
        variants = [obfuscate(text, kind, random.Random(seed + k)) for k, text in enumerate(chosen)]
        scores = np.asarray([s["abuse"] for s in model.score(variants)])
        drop = float(np.mean(base - scores))
        drops.append(drop)
        result["kinds"][kind] = {
            "mean_drop": round(drop, 4),
            "still_flagged_at_0.5": round(float(np.mean(scores >= 0.5)), 4),
        }
    result["mean_drop"] = round(float(np.mean(drops)), 4)
    result["identity_terms"] = identity_probe(model)
    return result


IDENTITY_TERMS = (
    "muslim",
    "christian",
    "jewish",
    "atheist",
    "gay",
    "lesbian",
    "transgender",
    "straight",
    "black",
    "white",
    "asian",
    "latino",
    "immigrant",
    "disabled",
    "female",
    "male",
)
IDENTITY_TEMPLATES = (
    "I am a {} person and I live in this town.",
    "My neighbour is {} and she agrees with the council.",
    "As a {} reader, I found this article informative.",
    "The {} community organised the harbour festival this year.",
)


def identity_probe(model: Any) -> dict[str, Any]:
    """Abuse scores of neutral sentences naming an identity, against the same without one."""
    neutral = [t.format("local") for t in IDENTITY_TEMPLATES]
    base = float(np.mean([s["abuse"] for s in model.score(neutral)]))
    shifts = {}
    for term in IDENTITY_TERMS:
        texts = [t.format(term) for t in IDENTITY_TEMPLATES]
        shifts[term] = round(float(np.mean([s["abuse"] for s in model.score(texts)])) - base, 4)
    return {"neutral_mean_abuse": round(base, 4), "shift_by_term": shifts}


def plot_curves(curves: dict[str, tuple[np.ndarray, np.ndarray]], out_dir: Path) -> list[Path]:
    """ROC and precision-recall curves per task, one PNG each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for task in TASKS:
        items = [(k, v) for k, v in curves.items() if task in k and 0 < v[0].sum() < len(v[0])]
        if not items:
            continue
        figure, (roc_axis, pr_axis) = plt.subplots(1, 2, figsize=(13, 5.5))
        for name, (y, p) in items:
            fpr, tpr, _ = roc_curve(y, p)
            roc_axis.plot(fpr, tpr, label=f"{name} ({roc_auc_score(y, p):.3f})", linewidth=1.2)
            precision, recall, _ = precision_recall_curve(y, p)
            pr_axis.plot(recall, precision, label=name, linewidth=1.2)
        roc_axis.plot([0, 1], [0, 1], color="grey", linestyle=":")
        roc_axis.set(
            xlabel="false positive rate",
            ylabel="true positive rate",
            title=f"{task}: ROC (left-out sources)",
        )
        pr_axis.set(xlabel="recall", ylabel="precision", title=f"{task}: precision-recall")
        roc_axis.legend(fontsize=7, loc="lower right")
        pr_axis.legend(fontsize=7, loc="lower left")
        figure.tight_layout()
        path = out_dir / f"{task}-curves.png"
        figure.savefig(path, dpi=110)
        plt.close(figure)
        written.append(path)
    return written


def evaluate(
    data_dir: Path,
    recipe: Recipe,
    out_dir: Path | None = None,
    with_baseline: bool = True,
    with_peer: bool = True,
    include_noncommercial: bool = False,
    robustness_limit: int = 400,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run (a), (b), (c), the baseline and the peer; return the report (and write curves)."""
    say = progress or (lambda message: None)
    names = available_sources(data_dir)
    examples = load_sources(names, data_dir)
    say(f"loaded {len(examples):,} examples from {len(names)} sources")
    shippable = {n for n in names if SOURCES[n].redistributable or include_noncommercial}
    pool = [i for i, e in enumerate(examples) if e.source in shippable]
    extra_test = [i for i, e in enumerate(examples) if e.source not in shippable]
    bench = Workbench(examples, recipe, say)
    report: dict[str, Any] = {
        "recipe": recipe.to_dict(),
        "training_sources": sorted(shippable),
        "evaluation_only_sources": sorted(set(names) - shippable),
    }
    say("(a) held-out split")
    report["held_out"], (test_rows, _, held_curves) = held_out(bench, pool, recipe.seed)
    say("(b) leave one source out")
    report["leave_one_source_out"], curves = leave_one_source_out(bench, pool, extra_test)
    abuse = report["leave_one_source_out"]["abuse"]
    aucs = [v["roc_auc"] for v in abuse.values() if "roc_auc" in v]
    report["leave_one_source_out"]["abuse_mean_roc_auc"] = round(float(np.mean(aucs)), 4)
    spam = report["leave_one_source_out"]["spam"]
    report["leave_one_source_out"]["spam_min_youtube_roc_auc"] = min(
        (v["roc_auc"] for k, v in spam.items() if k.startswith("youtube:")), default=None
    )
    if with_baseline:
        say("baseline")
        measured = baseline_loso(examples, say)
        ours = {s: abuse[s]["roc_auc"] for s in BASELINE_SOURCES if s in abuse}
        report["baseline"] = {
            "reference": BASELINE_REFERENCE,
            "measured": measured,
            "ours": ours,
            "reference_mean": round(float(np.mean(list(BASELINE_REFERENCE.values()))), 4),
            "measured_mean": round(float(np.mean(list(measured.values()))), 4)
            if measured
            else None,
            "ours_mean": round(float(np.mean(list(ours.values()))), 4) if ours else None,
        }
    if with_peer:
        say("peer")
        report["peer"] = peer_scores(examples, bench.test_sets, say)
    say("(c) robustness")
    report["robustness"] = robustness(bench, pool, test_rows, robustness_limit, recipe.seed)
    if out_dir is not None:
        report["curves"] = [str(p) for p in plot_curves({**held_curves, **curves}, out_dir)]
    return report


def _fmt(value: object, width: int) -> str:
    return f"{value:{width}.3f}" if isinstance(value, (int, float)) else f"{'n/a':>{width}}"


def format_table(report: dict[str, Any]) -> str:
    """The report as a readable text table."""
    lines = []
    loso = report["leave_one_source_out"]
    peer = report.get("peer", {}).get("sources", {})
    baseline = report.get("baseline", {})
    lines.append("Leave-one-source-out, abuse (train on every other source, test on this one)")
    lines.append(
        f"{'source':44} {'ROC AUC':>8} {'PR AUC':>7} {'P@0.5':>6} {'R@0.5':>6}"
        f" {'base(ref)':>9} {'base(here)':>10} {'peer':>6}"
    )
    for source, m in loso["abuse"].items():
        at = m["at"].get("0.5", {})
        lines.append(
            f"{source:44} {_fmt(m.get('roc_auc'), 8)} {_fmt(m.get('pr_auc'), 7)}"
            f" {_fmt(at.get('precision'), 6)} {_fmt(at.get('recall'), 6)}"
            f" {_fmt(baseline.get('reference', {}).get(source), 9)}"
            f" {_fmt(baseline.get('measured', {}).get(source), 10)}"
            f" {_fmt(peer.get(source, {}).get('roc_auc'), 6)}"
        )
    lines.append(
        f"mean abuse ROC AUC over {len(loso['abuse'])} sources: {loso['abuse_mean_roc_auc']}"
    )
    if baseline:
        lines.append(
            f"on the baseline's five sources: ours {baseline.get('ours_mean')}, baseline reference "
            f"{baseline.get('reference_mean')}, baseline as measured here "
            f"{baseline.get('measured_mean')}"
        )
    lines.append("")
    lines.append("Leave-one-source-out, spam (each YouTube video in turn, and SMS)")
    for name, m in loso["spam"].items():
        lines.append(f"{name:44} {_fmt(m.get('roc_auc'), 8)} {_fmt(m.get('pr_auc'), 7)}")
    lines.append("")
    lines.append("Held-out stratified split (in-source; flatters)")
    for task in TASKS:
        m = report["held_out"][task]["all"]
        lines.append(f"{task:44} {_fmt(m.get('roc_auc'), 8)} {_fmt(m.get('pr_auc'), 7)}")
    robust = report.get("robustness")
    if robust:
        lines.append("")
        lines.append(
            f"Robustness ({robust['comments']} abusive held-out comments): mean score drop "
            f"{robust['mean_drop']}"
        )
        for kind, r in robust["kinds"].items():
            lines.append(
                f"  {kind:20} drop {r['mean_drop']:.3f}"
                f"  still flagged {r['still_flagged_at_0.5']:.3f}"
            )
        identity = robust.get("identity_terms")
        if identity:
            shifts = sorted(identity["shift_by_term"].items(), key=lambda kv: -kv[1])
            lines.append("")
            lines.append(
                "Identity terms in neutral sentences: abuse score shift against the same "
                f"sentence without one (neutral mean {identity['neutral_mean_abuse']})"
            )
            lines.append("  " + ", ".join(f"{term} {shift:+.3f}" for term, shift in shifts))
    return "\n".join(lines)
