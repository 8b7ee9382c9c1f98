"""Command line: ``python -m classifier train|evaluate|score|explain|compare|bench``."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from classifier.data import (
    available_sources,
    deduplicate,
    default_data_dir,
    fingerprint,
    load_labelled_file,
    load_sources,
)


def _progress(quiet: bool) -> Any:
    started = time.perf_counter()

    def say(message: str) -> None:
        if not quiet:
            print(f"[{time.perf_counter() - started:6.1f}s] {message}", file=sys.stderr, flush=True)

    return say


def _model(path: str | None) -> Any:
    from classifier import DEFAULT_MODEL_PATH, load_model

    return load_model(Path(path) if path else DEFAULT_MODEL_PATH)


def command_train(args: argparse.Namespace) -> int:
    """Train the shipped recipe and write a model file."""
    from classifier.evaluate import evaluate
    from classifier.model import Recipe, train
    from classifier.persist import save_model

    say = _progress(args.quiet)
    data_dir = Path(args.data)
    names = args.sources or available_sources(
        data_dir, shippable_only=not args.include_noncommercial
    )
    examples = load_sources(names, data_dir)
    say(f"loaded {len(examples):,} examples from {len(names)} sources: {', '.join(names)}")
    for extra in args.extra or []:
        added = load_labelled_file(Path(extra), weight=args.extra_weight)
        say(f"extra {extra}: {len(added):,} labelled examples, weight {args.extra_weight}")
        examples.extend(added)
    examples = deduplicate(examples)
    recipe = Recipe(extra_weight=args.extra_weight)
    model = train(examples, recipe, progress=None if args.quiet else say)
    model.meta["training"]["fingerprint"] = fingerprint(examples)
    model.meta["training"]["extra"] = [Path(e).name for e in args.extra or []]
    if args.with_metrics:
        say("evaluating the recipe for the model card (leave-one-source-out)")
        report = evaluate(data_dir, recipe, with_baseline=False, with_peer=False, progress=say)
        loso = report["leave_one_source_out"]
        model.meta["metrics"] = {
            "abuse_loso_roc_auc": {k: v.get("roc_auc") for k, v in loso["abuse"].items()},
            "abuse_loso_mean_roc_auc": loso["abuse_mean_roc_auc"],
            "spam_loso_roc_auc": {k: v.get("roc_auc") for k, v in loso["spam"].items()},
            "held_out_roc_auc": {
                task: report["held_out"][task]["all"].get("roc_auc") for task in report["held_out"]
            },
            "robustness_mean_drop": report["robustness"]["mean_drop"],
        }
    version = save_model(model, Path(args.out))
    size = Path(args.out).stat().st_size / 1e6
    print(json.dumps({"model": str(args.out), "version": version, "size_mb": round(size, 2)}))
    return 0


def command_evaluate(args: argparse.Namespace) -> int:
    """Print the evaluation report as JSON (stdout) and as a table (stderr and files)."""
    from classifier.evaluate import evaluate, format_table
    from classifier.model import Recipe
    from classifier.persist import read_meta

    say = _progress(args.quiet)
    recipe = Recipe()
    if args.model:
        recipe = Recipe.from_dict(read_meta(Path(args.model)).get("recipe", {}))
    out_dir = Path(args.out)
    report = evaluate(
        Path(args.data),
        recipe,
        out_dir=out_dir,
        with_baseline=not args.no_baseline,
        with_peer=not args.no_peer,
        include_noncommercial=args.include_noncommercial,
        progress=say,
    )
    if args.model:
        report["model"] = {"path": args.model, **_model_summary(args.model)}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2))
    table = format_table(report)
    (out_dir / "report.txt").write_text(table + "\n")
    print(table, file=sys.stderr)
    print(json.dumps(report))
    return 0


def _model_summary(path: str) -> dict[str, Any]:
    from classifier.persist import read_meta

    meta = read_meta(Path(path))
    return {"version": meta.get("version"), "sklearn_version": meta.get("sklearn_version")}


def _read_lines(stream: Any) -> Any:
    """Yield batches of the complete lines available, without waiting for more than one."""
    fd = stream.fileno()
    pending = b""
    while True:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            if pending.strip():
                yield [pending]
            return
        pending += chunk
        *lines, pending = pending.split(b"\n")
        if lines:
            yield lines


def command_score(args: argparse.Namespace) -> int:
    """JSON lines ``{"text": ...}`` in, ``{"spam": p, "abuse": p, ...}`` lines out, in order."""
    model = _model(args.model)
    failures = 0
    out = sys.stdout
    for batch in _read_lines(sys.stdin):
        texts: list[str | None] = []
        errors: list[str | None] = []
        for raw in batch:
            text, error = _parse_score_line(raw)
            texts.append(text)
            errors.append(error)
        valid = [t for t in texts if t is not None]
        scores = iter(model.score(valid))
        for error in errors:
            if error is not None:
                failures += 1
                out.write(json.dumps({"error": error}) + "\n")
                continue
            result = {k: round(v, 6) for k, v in next(scores).items()}
            result["model"] = model.version
            out.write(json.dumps(result) + "\n")
        out.flush()
    return 1 if failures else 0


def _parse_score_line(raw: bytes) -> tuple[str | None, str | None]:
    try:
        record = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        return None, f"line is not valid JSON: {error}"
    if isinstance(record, str):
        return record, None
    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
        return None, 'expected an object with a "text" string'
    return record["text"], None


def command_explain(args: argparse.Namespace) -> int:
    """Print, per task, the words that pushed the score up, with spans in the original text."""
    model = _model(args.model)
    texts = args.text or [json.loads(line)["text"] for line in sys.stdin if line.strip()]
    for text in texts:
        scores = model.score_one(text)
        explanation = model.explain(text, top=args.top)
        print(
            json.dumps(
                {
                    "text": text,
                    "scores": {k: round(v, 4) for k, v in scores.items()},
                    "explanation": {
                        task: [c.to_dict() for c in items] for task, items in explanation.items()
                    },
                },
                ensure_ascii=False,
            )
        )
    return 0


def command_compare(args: argparse.Namespace) -> int:
    """Score two model files on the same sets; exit 0 only if the candidate is not worse."""
    from classifier.compare import compare_models

    report = compare_models(
        Path(args.active),
        Path(args.candidate),
        data_dir=Path(args.data) if args.data else None,
        extra=[Path(p) for p in args.extra or []],
        tolerance=args.tolerance,
    )
    print(json.dumps(report, indent=2))
    return 0 if report["candidate_not_worse"] else 1


def command_bench(args: argparse.Namespace) -> int:
    """Print scoring speed, load time and memory of a model."""
    from classifier.bench import run_bench

    report = run_bench(Path(args.model) if args.model else None, Path(args.data), args.n)
    print(json.dumps(report, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m classifier``."""
    parser = argparse.ArgumentParser(prog="python -m classifier", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    data_default = str(default_data_dir())

    train = sub.add_parser("train", help="train the shipped recipe and write a model file")
    train.add_argument("--data", default=data_default, help="folder of training sets")
    train.add_argument("--out", required=True, help="model file to write (.skops)")
    train.add_argument("--extra", action="append", help="labelled JSONL/CSV to add (repeatable)")
    train.add_argument("--extra-weight", type=float, default=1.0, help="weight of --extra rows")
    train.add_argument("--sources", nargs="*", help="train on these sources only")
    train.add_argument(
        "--include-noncommercial",
        action="store_true",
        help="also train on non-commercial sets (not for a shipped model)",
    )
    train.add_argument(
        "--with-metrics",
        action="store_true",
        help="run leave-one-source-out and store the metrics in the file",
    )
    train.add_argument("--quiet", action="store_true")
    train.set_defaults(func=command_train)

    evaluate = sub.add_parser("evaluate", help="held-out, leave-one-source-out, peer, robustness")
    evaluate.add_argument("--model", help="evaluate this file's recipe (default: the shipped one)")
    evaluate.add_argument("--data", default=data_default)
    evaluate.add_argument("--out", default="reports/evaluation", help="folder for report + PNGs")
    evaluate.add_argument("--no-peer", action="store_true")
    evaluate.add_argument("--no-baseline", action="store_true")
    evaluate.add_argument("--include-noncommercial", action="store_true")
    evaluate.add_argument("--quiet", action="store_true")
    evaluate.set_defaults(func=command_evaluate)

    score = sub.add_parser("score", help="JSON lines in, scores out")
    score.add_argument("--model")
    score.set_defaults(func=command_score)

    explain = sub.add_parser("explain", help="why texts score as they do")
    explain.add_argument("text", nargs="*", help="texts (default: JSON lines on stdin)")
    explain.add_argument("--model")
    explain.add_argument("--top", type=int, default=8)
    explain.set_defaults(func=command_explain)

    compare = sub.add_parser("compare", help="is a candidate model file not worse than the active?")
    compare.add_argument("active")
    compare.add_argument("candidate")
    compare.add_argument("--data", default=data_default)
    compare.add_argument("--extra", action="append", help="labelled JSONL/CSV evaluation set")
    compare.add_argument("--tolerance", type=float, default=0.005)
    compare.set_defaults(func=command_compare)

    bench = sub.add_parser("bench", help="speed, load time and memory")
    bench.add_argument("--model")
    bench.add_argument("--data", default=data_default)
    bench.add_argument("--n", type=int, default=20000)
    bench.set_defaults(func=command_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = build_parser().parse_args(argv)
    from classifier.persist import ModelFileError

    try:
        return args.func(args)
    except (ModelFileError, FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
