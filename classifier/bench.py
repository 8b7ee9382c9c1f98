"""Scoring speed, load time and memory, measured the way the service uses a model."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from classifier.data import available_sources, load_sources

TARGETS = {
    "batch_comments_per_second": (">=", 3000),
    "single_p99_ms": ("<", 5.0),
    "load_seconds": ("<", 1.0),
    "rss_after_load_mb": ("<", 300),
}

_LOAD_PROBE = """
import json, sys, time
started = time.perf_counter()
from pathlib import Path
from classifier import load_model, DEFAULT_MODEL_PATH
import classifier.model, classifier.persist
imported = time.perf_counter()
model = load_model(Path(sys.argv[1]) if sys.argv[1] else DEFAULT_MODEL_PATH)
loaded = time.perf_counter()
model.score_one("warm up")
rss = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS"))
print(json.dumps({
    "load_seconds": loaded - imported,
    "import_seconds": imported - started,
    "cold_start_seconds": time.perf_counter() - started,
    "rss_after_load_mb": rss / 1024,
}))
"""


def sample_texts(data_dir: Path, n: int, seed: int = 0) -> list[str]:
    """``n`` real comments drawn from every training source (falls back to synthetic ones)."""
    texts: list[str] = []
    if data_dir.is_dir():
        texts = [e.text for e in load_sources(available_sources(data_dir), data_dir)]
    if not texts:
        texts = [
            f"comment number {i} about the council meeting, see http://example.com/{i}"
            for i in range(1000)
        ]
    rng = random.Random(seed)
    return [rng.choice(texts) for _ in range(n)]


def run_bench(model_path: Path | None, data_dir: Path, n: int = 20000) -> dict[str, Any]:
    """Measure load (fresh process, imports included), batch throughput and single latency."""
    from classifier import DEFAULT_MODEL_PATH, load_model

    probe = subprocess.run(
        [sys.executable, "-c", _LOAD_PROBE, str(model_path or "")],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(probe.stdout)
    model = load_model(model_path or DEFAULT_MODEL_PATH)
    texts = sample_texts(data_dir, n)
    result["mean_comment_chars"] = round(float(np.mean([len(t) for t in texts])), 1)
    model.score(texts[:200])
    started = time.perf_counter()
    for start in range(0, len(texts), 1000):
        model.score(texts[start : start + 1000])
    result["batch_comments_per_second"] = len(texts) / (time.perf_counter() - started)
    latencies = []
    for text in texts[:3000]:
        begin = time.perf_counter()
        model.score_one(text)
        latencies.append((time.perf_counter() - begin) * 1000)
    result["single_p50_ms"] = float(np.percentile(latencies, 50))
    result["single_p99_ms"] = float(np.percentile(latencies, 99))
    result["model_version"] = model.version
    result["model_file_mb"] = (model_path or DEFAULT_MODEL_PATH).stat().st_size / 1e6
    result = {k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}
    result["targets_met"] = {
        name: (result[name] >= bound if op == ">=" else result[name] < bound)
        for name, (op, bound) in TARGETS.items()
    }
    return result
