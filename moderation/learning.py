"""Learning from moderators' decisions: labels, candidate models, promotion and rollback.

Every moderator's decision is a label: approve means neither spam nor abuse, spam means spam,
reject means abuse. ``flask classifier retrain`` trains a candidate on the base training sets
plus the older decisions (weighted), keeps the most recent decisions aside, and promotes the
candidate only if it is not worse on the fixed evaluation sets (never trained on) and better than
the active model on those recent decisions. Readers' reports and the system's routing never
become labels, and only the decisions of people who moderate the comment's site (or admins)
count.

Model versions live in ``ModelVersion`` rows, one of them active; the files of trained versions
are in ``<instance>/models/<version>.skops``. Web processes pick up a change of the active
version within ``scoring.ACTIVE_CHECK_SECONDS``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import sqlalchemy as sa
from flask import Flask, current_app
from flask.cli import AppGroup

import classifier
from auth.models import Role, SiteMembership, SiteRole, User
from moderation import scoring
from moderation.db import utcnow
from moderation.extensions import db
from moderation.jobs import enqueue, job
from moderation.jobs import mode as jobs_mode
from moderation.models import ActorType, Comment, Decision, ModelVersion, Site
from moderation.service import _in_transaction
from moderation.status import Action

if TYPE_CHECKING:
    from classifier.data import Example
    from classifier.model import Model, Recipe

__all__ = [
    "DECISIONS_SOURCE",
    "DEFAULT_WEIGHT",
    "LabelledDecision",
    "LearningError",
    "ModelState",
    "RetrainOptions",
    "RetrainResult",
    "activate_version",
    "active_version",
    "classifier_cli",
    "decision_labels",
    "register_commands",
    "retrain",
    "rollback",
    "split_recent",
]

DECISIONS_SOURCE = "moderator-decisions"
# Moderators' decisions are few next to the base sets (each source weighs size**0.8), so they
# count this many times their share; high enough to learn a site's own words, low enough that
# a handful of decisions cannot outweigh a corpus.
DEFAULT_WEIGHT = 10.0
RECENT_SHARE = 0.2  # without --recent-days, the newest fifth of the decisions is held out
MIN_TRAINING_DECISIONS = 10
FIXED_TOLERANCE = 0.005  # ROC AUC a candidate may lose on a fixed evaluation set
MODELS_FOLDER = "models"
# Recorded in ModelVersion.training of models trained without the fixed evaluation sets.
HELD_OUT_KEY = "evaluation_sets_held_out"

# What each moderator action says about each task; None: nothing (a spam comment may or may
# not be abusive, a rejected one may or may not be spam).
LABELS: dict[Action, tuple[int | None, int | None]] = {
    Action.APPROVE: (0, 0),
    Action.SPAM: (1, None),
    Action.REJECT: (None, 1),
}

Say = Callable[[str], None]


class ModelState(StrEnum):
    """Where a model version stands; exactly one is active."""

    CANDIDATE = "candidate"  # trained, not yet judged
    ACTIVE = "active"  # scores new comments
    RETIRED = "retired"  # was active; ``rollback`` and ``activate`` can bring it back
    REFUSED = "refused"  # failed the promotion checks


class LearningError(Exception):
    """A retrain, rollback or activation that cannot be done, with the reason in words."""


# ---------------------------------------------------------------------------------------------
# Labels from decisions
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelledDecision:
    """The latest moderator's decision on a comment, as a training label."""

    comment_id: int
    site_key: str
    text: str
    action: Action
    decided_at: datetime
    spam: int | None
    abuse: int | None

    def example(self, weight: float = 1.0) -> Example:
        """The decision as a classifier training example."""
        from classifier.data import Example, clean_text

        return Example(
            clean_text(self.text), DECISIONS_SOURCE, self.spam, self.abuse, weight=weight
        )


def _by_staff() -> sa.ColumnElement[bool]:
    """The decision's author moderates or owns the decision's site, or is an admin (today)."""
    member = sa.exists().where(
        SiteMembership.user_id == Decision.actor_id,
        SiteMembership.site_id == Decision.site_id,
        SiteMembership.role.in_([SiteRole.MODERATOR, SiteRole.OWNER]),
    )
    admin = sa.exists().where(User.id == Decision.actor_id, User.role == Role.ADMIN)
    return sa.or_(member, admin)


def decision_labels(site_keys: Sequence[str] = ()) -> list[LabelledDecision]:
    """Labels from the latest staff decision per comment, oldest first; ``site_keys`` filters."""
    latest = (
        sa.select(sa.func.max(Decision.id))
        .where(Decision.actor_type == ActorType.USER, _by_staff())
        .group_by(Decision.comment_id)
    )
    query = (
        sa.select(
            Decision.comment_id,
            Site.key,
            Comment.body,
            Decision.action,
            Decision.to_status,
            Decision.created_at,
        )
        .join(Comment, Comment.id == Decision.comment_id)
        .join(Site, Site.id == Decision.site_id)
        .where(Decision.id.in_(latest))
        .order_by(Decision.created_at, Decision.id)
    )
    if site_keys:
        query = query.where(Site.key.in_(list(site_keys)))
    labels = []
    for comment_id, site_key, body, action, to_status, decided_at in db.session.execute(query):
        # The latest word wins: an undo (back to pending) or a deletion leaves no label.
        if action not in LABELS or to_status != action.target:
            continue
        spam, abuse = LABELS[action]
        labels.append(LabelledDecision(comment_id, site_key, body, action, decided_at, spam, abuse))
    return labels


def split_recent(
    labels: Sequence[LabelledDecision], recent_days: int | None = None, now: datetime | None = None
) -> tuple[list[LabelledDecision], list[LabelledDecision]]:
    """(older, recent): the recent slice by date, or the newest fifth; ``labels`` oldest first."""
    if recent_days is not None:
        cutoff = (now or utcnow()) - timedelta(days=recent_days)
        older = [label for label in labels if label.decided_at < cutoff]
        recent = [label for label in labels if label.decided_at >= cutoff]
        return older, recent
    held = math.ceil(len(labels) * RECENT_SHARE)
    cut = len(labels) - held
    return list(labels[:cut]), list(labels[cut:])


def _folded(text: str) -> str:
    return " ".join(text.casefold().split())


def _tasks_with_both_labels(labels: Sequence[LabelledDecision]) -> list[str]:
    tasks = []
    for task in ("spam", "abuse"):
        values = {getattr(label, task) for label in labels} - {None}
        if values == {0, 1}:
            tasks.append(task)
    return tasks


# ---------------------------------------------------------------------------------------------
# Model versions
# ---------------------------------------------------------------------------------------------


def model_file(version: ModelVersion) -> Path:
    """The file of a model version."""
    return scoring.resolve_model_file(version.path, current_app.instance_path)


def active_version() -> ModelVersion | None:
    """The active model version, if one is recorded."""
    return db.session.scalar(
        sa.select(ModelVersion)
        .where(ModelVersion.state == ModelState.ACTIVE)
        .order_by(ModelVersion.promoted_at.desc(), ModelVersion.id.desc())
        .limit(1)
    )


def ensure_active_version() -> ModelVersion:
    """The active version; with none, the shipped model is recorded as active (version zero)."""

    def work() -> ModelVersion:
        active = active_version()
        if active is not None:
            return active
        meta = classifier.read_meta(classifier.DEFAULT_MODEL_PATH)
        row = db.session.scalar(
            sa.select(ModelVersion).where(ModelVersion.version == str(meta["version"]))
        )
        if row is None:
            row = ModelVersion(
                version=str(meta["version"]),
                path=scoring.SHIPPED_MODEL,
                metrics=meta.get("metrics", {}),
                training={"shipped": True, **meta.get("training", {})},
            )
            db.session.add(row)
        row.state = ModelState.ACTIVE
        row.promoted_at = utcnow()
        db.session.flush()
        return row

    return _in_transaction(work)


def find_version(version: str) -> ModelVersion:
    """The version whose hash is ``version`` or starts with it (at least 4 characters)."""
    text = version.strip()
    if len(text) < 4:
        raise LearningError("Give at least the first 4 characters of the version.")
    rows = db.session.scalars(
        sa.select(ModelVersion).where(ModelVersion.version.startswith(text, autoescape=True))
    ).all()
    exact = [row for row in rows if row.version == text]
    if exact:
        return exact[0]
    if not rows:
        raise LearningError(
            f"There is no model version {text!r}; `flask classifier versions` lists them."
        )
    if len(rows) > 1:
        raise LearningError(f"{text!r} matches several versions; give more characters.")
    return rows[0]


def _check_loads(row: ModelVersion) -> None:
    """Refuse to activate a file that would leave every comment held (missing, corrupt, other)."""
    path = model_file(row)
    try:
        meta = classifier.read_meta(path)
        if meta.get("version") != row.version:
            raise LearningError(
                f"{path} holds version {meta.get('version')}, not {row.version}; not activated."
            )
        classifier.load_model(path)
    except classifier.ModelFileError as error:
        raise LearningError(f"Version {row.version} cannot be loaded: {error}") from None


def _make_active(row_id: int, expected_active_id: int | None = None) -> tuple[ModelVersion, Any]:
    """In one transaction: retire the active version and activate ``row_id``."""

    def work() -> tuple[ModelVersion, ModelVersion | None]:
        current = db.session.scalars(
            sa.select(ModelVersion)
            .where(ModelVersion.state == ModelState.ACTIVE)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).all()
        if expected_active_id is not None and [r.id for r in current] != [expected_active_id]:
            now_active = ", ".join(r.version for r in current) or "none"
            raise LearningError(
                f"The active model changed while the candidate was trained (now {now_active}); "
                "run retrain again."
            )
        row = db.session.get(ModelVersion, row_id, with_for_update=True, populate_existing=True)
        assert row is not None
        previous = None
        for other in current:
            if other.id != row.id:
                other.state = ModelState.RETIRED
                previous = other
        row.state = ModelState.ACTIVE
        row.promoted_at = utcnow()
        db.session.flush()
        return row, previous

    result = _in_transaction(work)
    scoring.forget_active()  # this process scores with the new version at once
    return result


def activate_version(version: str) -> tuple[ModelVersion, ModelVersion | None]:
    """Make a recorded version the active one; (activated, the one it replaced or None)."""
    ensure_active_version()
    row = find_version(version)
    if row.state == ModelState.ACTIVE:
        return row, None
    _check_loads(row)
    return _make_active(row.id)


def rollback() -> tuple[ModelVersion, ModelVersion]:
    """Re-activate the version that was active before the current one; (activated, retired)."""
    current = ensure_active_version()
    previous = db.session.scalar(
        sa.select(ModelVersion)
        .where(ModelVersion.state == ModelState.RETIRED, ModelVersion.id != current.id)
        .order_by(ModelVersion.promoted_at.desc(), ModelVersion.id.desc())
        .limit(1)
    )
    if previous is None:
        raise LearningError(
            f"There is no earlier active version to roll back to ({current.version} is the only "
            "one that was ever active)."
        )
    _check_loads(previous)
    row, retired = _make_active(previous.id, expected_active_id=current.id)
    assert retired is not None
    return row, retired


def version_json(row: ModelVersion) -> dict[str, Any]:
    """What ``flask classifier versions`` prints for a version."""
    return {
        "version": row.version,
        "state": row.state,
        "path": str(model_file(row)),
        "created_at": row.created_at.isoformat(timespec="seconds"),
        "promoted_at": row.promoted_at.isoformat(timespec="seconds") if row.promoted_at else None,
        "metrics": row.metrics,
        "training": row.training,
    }


# ---------------------------------------------------------------------------------------------
# Retraining
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetrainOptions:
    """What ``flask classifier retrain`` was asked to do."""

    data_dir: Path
    site_keys: tuple[str, ...] = ()
    weight: float = DEFAULT_WEIGHT
    recent_days: int | None = None
    force: bool = False
    tolerance: float = FIXED_TOLERANCE


@dataclass
class RetrainResult:
    """The candidate, what it was compared with, and the verdict with its reasons."""

    version: str
    state: str
    promoted: bool
    compared_with: str
    reasons: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON ``retrain`` prints."""
        return {
            "version": self.version,
            "state": self.state,
            "promoted": self.promoted,
            "compared_with": self.compared_with,
            "reasons": self.reasons,
            "metrics": self.metrics,
            "training": self.training,
        }


def _check_sites(site_keys: Sequence[str]) -> None:
    known = set(db.session.scalars(sa.select(Site.key).where(Site.key.in_(list(site_keys)))))
    missing = [key for key in site_keys if key not in known]
    if missing:
        raise LearningError(
            f"There is no site with the key {missing[0]!r}; `flask sites list` shows them."
        )


def _decision_counts(labels: Sequence[LabelledDecision]) -> dict[str, Any]:
    return {
        "n": len(labels),
        "actions": dict(sorted(Counter(str(label.action) for label in labels).items())),
        "sites": dict(sorted(Counter(label.site_key for label in labels).items())),
        "from": labels[0].decided_at.isoformat(timespec="seconds") if labels else None,
        "to": labels[-1].decided_at.isoformat(timespec="seconds") if labels else None,
    }


def _recent_verdict(report: dict[str, Any], tolerance: float, recent_n: int) -> list[str]:
    """Why the candidate is not better on the recent decisions (a higher mean ROC AUC, no task
    worse than ``tolerance``); empty when it is."""
    rows = report["sets"]
    reasons = []
    for row in rows:
        if row["candidate"] < row["active"] - tolerance:
            reasons.append(
                f"worse on the {recent_n} recent decisions for {row['task']}: ROC AUC "
                f"{row['candidate']} against the active model's {row['active']}"
            )
    mean = sum(row["delta"] for row in rows) / len(rows) if rows else 0.0
    if not reasons and mean <= 0:
        shown = ", ".join(f"{r['task']} {r['candidate']} against {r['active']}" for r in rows)
        reasons.append(
            f"not better on the {recent_n} recent decisions (ROC AUC {shown or 'not measurable'})"
        )
    return reasons


def _record_candidate(version: str, path: str, training: dict[str, Any]) -> ModelVersion | None:
    """Record the trained file as a candidate; None when it is the active model itself."""

    def work() -> ModelVersion | None:
        row = db.session.scalar(sa.select(ModelVersion).where(ModelVersion.version == version))
        if row is not None and row.state == ModelState.ACTIVE:
            return None
        if row is None:
            row = ModelVersion(version=version, path=path)
            db.session.add(row)
        row.state = ModelState.CANDIDATE
        row.training = training
        row.metrics = {}
        db.session.flush()
        return row

    return _in_transaction(work)


def _set_verdict(row_id: int, state: ModelState, metrics: dict[str, Any]) -> None:
    def work() -> None:
        row = db.session.get(ModelVersion, row_id)
        assert row is not None
        row.state = state
        row.metrics = metrics

    _in_transaction(work)


def _save_candidate(model: Model, folder: Path) -> str:
    """Write the model as ``<folder>/<version>.skops``; its version."""
    from classifier.persist import save_model

    folder.mkdir(parents=True, exist_ok=True)
    # The version is the file's content hash, known only once written.
    scratch = folder / f".candidate-{os.getpid()}.skops"
    version = save_model(model, scratch)
    scratch.replace(folder / f"{version}.skops")
    return version


def _control_model(
    base: Sequence[Example], recipe: Recipe, folder: Path, say: Say
) -> tuple[Model, str]:
    """The recipe trained on the base sets alone (kept in ``folder`` for the next retrain)."""
    from classifier.data import fingerprint
    from classifier.model import train
    from classifier.persist import ModelFileError, load_model, save_model

    recipe = replace(recipe, extra_weight=1.0)
    key = hashlib.sha256(
        (fingerprint(base) + json.dumps(recipe.to_dict(), sort_keys=True)).encode()
    ).hexdigest()[:16]
    path = folder / f"control-{key}.skops"
    if path.is_file():
        try:
            return load_model(path), key
        except ModelFileError:
            say(f"{path} is unreadable; training the control model again")
    say(f"training the control model (base sets only, {len(base):,} examples); kept for next time")
    model = train(base, recipe, progress=say)
    folder.mkdir(parents=True, exist_ok=True)
    save_model(model, path)
    return model, key


def retrain(options: RetrainOptions, say: Say) -> RetrainResult:
    """Train a candidate on the base sets plus older decisions; promote it only if it earns it.

    The fixed evaluation sets (one text in five of every base set, chosen by a hash of the text:
    ``classifier.compare``) are never trained on. They judge the candidate against the active
    model when that model was trained without them too (every version this command made), and
    otherwise (the shipped model, which saw them) against a control model: the same recipe
    trained on the same base sets without the decisions.
    """
    from classifier.compare import compare_on_sets, evaluation_sets, in_evaluation_slice
    from classifier.data import available_sources, deduplicate, fingerprint, load_sources
    from classifier.model import Recipe, train
    from classifier.persist import load_model, read_meta

    if options.site_keys:
        _check_sites(options.site_keys)
    if not options.data_dir.is_dir():
        raise LearningError(
            f"No training sets at {options.data_dir}; give --data DIR (or set CLASSIFIER_DATA)."
        )
    names = available_sources(options.data_dir, shippable_only=True)
    if not names:
        raise LearningError(f"No known training sets in {options.data_dir}.")
    active = ensure_active_version()
    active_id, active_name, active_path = active.id, active.version, model_file(active)
    active_held_out = bool((active.training or {}).get(HELD_OUT_KEY))

    labels = decision_labels(options.site_keys)
    older, recent = split_recent(labels, options.recent_days)
    db.session.rollback()  # no transaction stays open during the minutes of training
    before = len(older)
    recent_keys = {_folded(label.text) for label in recent}
    # A text moderators saw again later is judged in the recent slice, not learnt from.
    older = [label for label in older if _folded(label.text) not in recent_keys]
    say(
        f"{len(labels):,} moderator decisions: {len(older):,} to learn from, "
        f"{len(recent):,} recent ones held out to judge the candidate"
    )
    if len(older) < MIN_TRAINING_DECISIONS:
        raise LearningError(
            f"Only {len(older)} older moderator decisions to learn from; at least "
            f"{MIN_TRAINING_DECISIONS} are needed (try a smaller --recent-days)."
        )
    if not _tasks_with_both_labels(recent):
        raise LearningError(
            f"The {len(recent)} recent decisions cannot show an improvement: they need both "
            "approved and rejected (or spam) comments (try a larger --recent-days)."
        )

    try:
        active_model = load_model(active_path)
    except classifier.ModelFileError as error:
        raise LearningError(f"The active model cannot be loaded to compare with: {error}") from None
    recipe = replace(
        Recipe.from_dict(read_meta(active_path).get("recipe", {})), extra_weight=options.weight
    )

    fixed_sets = evaluation_sets(options.data_dir, [])
    fixed_keys = {_folded(e.text) for examples in fixed_sets.values() for e in examples}
    base = [e for e in load_sources(names, options.data_dir) if not in_evaluation_slice(e.text)]
    older = [label for label in older if _folded(label.text) not in fixed_keys]
    left_out = before - len(older)  # texts also in the recent slice or the fixed sets
    say(
        f"loaded {len(base):,} base examples from {len(names)} sets ({', '.join(names)}); "
        f"{sum(map(len, fixed_sets.values())):,} more kept aside as fixed evaluation sets"
    )
    folder = Path(current_app.instance_path) / MODELS_FOLDER
    if active_held_out:
        reference, reference_name = active_model, f"active model {active_name}"
    else:
        control, key = _control_model(base, recipe, folder, say)
        reference, reference_name = control, f"control model {key} (base sets only)"

    examples = deduplicate(base + [label.example(options.weight) for label in older])
    learnt = sum(1 for e in examples if e.source == DECISIONS_SOURCE)
    say(f"training the candidate on {len(examples):,} examples ({learnt:,} from decisions)")
    model = train(examples, recipe, progress=say)
    model.meta["training"]["fingerprint"] = fingerprint(examples)
    training = {
        "base": {"data": str(options.data_dir), "sets": names, "examples": len(base)},
        HELD_OUT_KEY: True,
        "decisions": {
            "learnt": learnt,
            "left_out": left_out,
            "weight": options.weight,
            "older": _decision_counts(older),
            "recent": _decision_counts(recent),
            "recent_days": options.recent_days,
            "sites": list(options.site_keys) or "all",
        },
        "counts": model.meta["training"]["counts"],
        "recipe": recipe.to_dict(),
        "fingerprint": model.meta["training"]["fingerprint"],
    }
    version = _save_candidate(model, folder)
    say(f"candidate {version} written to {folder / (version + '.skops')}")
    row = _record_candidate(version, f"{MODELS_FOLDER}/{version}.skops", training)
    if row is None:
        return RetrainResult(
            version,
            ModelState.ACTIVE,
            False,
            active_name,
            ["the candidate is identical to the active model"],
            training=training,
        )
    row_id = row.id
    db.session.rollback()

    say(f"comparing with the {reference_name} on the fixed evaluation sets")
    fixed = compare_on_sets(reference, model, fixed_sets, options.tolerance)
    fixed["reference"] = reference_name
    reasons = [
        f"worse than the {reference_name} on the fixed evaluation set {item} "
        f"(ROC AUC, tolerance {options.tolerance})"
        for item in fixed["worse_on"]
    ]
    say(f"comparing with the active model on the {len(recent)} recent decisions")
    recent_examples = [label.example() for label in recent]
    recent_report = compare_on_sets(
        active_model, model, {"recent decisions": recent_examples}, options.tolerance
    )
    reasons.extend(_recent_verdict(recent_report, options.tolerance, len(recent)))
    promote = not reasons or options.force
    metrics = {
        "compared_with": active_name,
        "fixed": fixed,
        "recent": recent_report,
        "refusal_reasons": reasons,
        "forced": bool(reasons) and options.force,
    }
    _set_verdict(row_id, ModelState.CANDIDATE if promote else ModelState.REFUSED, metrics)
    if promote:
        try:
            _make_active(row_id, expected_active_id=active_id)
        except LearningError as error:
            reasons.append(str(error))
            _set_verdict(row_id, ModelState.REFUSED, {**metrics, "refusal_reasons": reasons})
            promote = False
    state = ModelState.ACTIVE if promote else ModelState.REFUSED
    return RetrainResult(version, state, promote, active_name, reasons, metrics, training)


# ---------------------------------------------------------------------------------------------
# Command line: flask classifier ...
# ---------------------------------------------------------------------------------------------

classifier_cli = AppGroup(
    "classifier", help="Retrain the classifier from moderators' decisions; model versions."
)


class CommandError(click.ClickException):
    """A refused command: the message goes to stderr, the exit code is 2."""

    exit_code = 2


def register_commands(app: Flask) -> None:
    """Add ``flask classifier ...`` to ``app.cli``."""
    app.cli.add_command(classifier_cli)


def _progress() -> Say:
    started = time.perf_counter()

    def say(message: str) -> None:
        click.echo(f"[{time.perf_counter() - started:6.1f}s] {message}", err=True)

    return say


def _warn_if_overridden() -> None:
    configured = current_app.config.get("CLASSIFIER_MODEL_PATH")
    if configured and Path(configured) != Path(classifier.DEFAULT_MODEL_PATH):
        click.echo(
            f"Note: CLASSIFIER_MODEL_PATH is set, so this app scores with {configured}, "
            "whatever version is active.",
            err=True,
        )


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, default=str))


@job("retraining", timeout=6 * 3600)
def retrain_job(
    data_dir: str,
    site_keys: list[str],
    weight: float = DEFAULT_WEIGHT,
    recent_days: int | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """``flask classifier retrain --background``: the same retraining, run by a worker."""
    log = logging.getLogger(__name__)
    options = RetrainOptions(
        data_dir=Path(data_dir),
        site_keys=tuple(site_keys),
        weight=weight,
        recent_days=recent_days,
        force=force,
    )
    result = retrain(options, lambda message: log.info("retraining: %s", message))
    log.warning(
        "retraining: %s %s (compared with %s)%s",
        "promoted" if result.promoted else "refused",
        result.version,
        result.compared_with,
        "; ".join(["", *result.reasons]),
    )
    return result.to_dict()


@classifier_cli.command("retrain")
@click.option(
    "--site",
    "sites",
    multiple=True,
    metavar="KEY",
    help="Learn from this site's decisions only (repeatable; default: every site).",
)
@click.option(
    "--data",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder of base training sets (default: CLASSIFIER_DATA or ../shared/data).",
)
@click.option(
    "--weight",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_WEIGHT,
    show_default=True,
    help="How much the decisions count against the base sets.",
)
@click.option(
    "--recent-days",
    type=click.IntRange(min=1),
    default=None,
    help="Hold out the decisions of the last N days (default: the newest fifth).",
)
@click.option("--force", is_flag=True, help="Promote even if the checks refuse the candidate.")
@click.option(
    "--background",
    is_flag=True,
    help="Queue the retraining for a worker (the 'retraining' queue) and return at once.",
)
def retrain_command(
    sites: tuple[str, ...],
    data: Path | None,
    weight: float,
    recent_days: int | None,
    force: bool,
    background: bool,
) -> None:
    """Train a candidate and promote it only if it is not worse and better on recent decisions."""
    from classifier.data import default_data_dir

    if background:
        folder = data or default_data_dir()
        if not folder.is_dir():
            raise CommandError(f"The training data folder {folder} does not exist.")
        if sites:
            try:
                _check_sites(sites)
            except LearningError as error:
                raise CommandError(str(error)) from None
        enqueue(retrain_job, str(folder.resolve()), list(sites), weight, recent_days, force)
        _echo_json({"queued": True, "queue": "retraining", "mode": jobs_mode()})
        return

    options = RetrainOptions(
        data_dir=data or default_data_dir(),
        site_keys=sites,
        weight=weight,
        recent_days=recent_days,
        force=force,
    )
    try:
        result = retrain(options, _progress())
    except LearningError as error:
        raise CommandError(str(error)) from None
    if result.promoted:
        note = " despite: " + "; ".join(result.reasons) if result.reasons else ""
        click.echo(f"Promoted {result.version} (was {result.compared_with}){note}.", err=True)
        _warn_if_overridden()
    else:
        click.echo(f"Refused {result.version}:", err=True)
        for reason in result.reasons:
            click.echo(f"  - {reason}", err=True)
    _echo_json(result.to_dict())
    if not result.promoted:
        sys.exit(1)


@classifier_cli.command("versions")
def versions_command() -> None:
    """List the model versions, oldest first, one JSON object per line."""
    ensure_active_version()
    for row in db.session.scalars(
        sa.select(ModelVersion).order_by(ModelVersion.created_at, ModelVersion.id)
    ):
        _echo_json(version_json(row))


@classifier_cli.command("rollback")
def rollback_command() -> None:
    """Re-activate the version that was active before the current one."""
    try:
        row, retired = rollback()
    except LearningError as error:
        raise CommandError(str(error)) from None
    _echo_json({"active": row.version, "retired": retired.version})
    _warn_if_overridden()


@classifier_cli.command("activate")
@click.argument("version")
def activate_command(version: str) -> None:
    """Make VERSION (a hash or its first characters) the active model."""
    try:
        row, retired = activate_version(version)
    except LearningError as error:
        raise CommandError(str(error)) from None
    _echo_json({"active": row.version, "retired": retired.version if retired else None})
    _warn_if_overridden()
