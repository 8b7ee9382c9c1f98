"""Known vulnerabilities in the installed dependencies, with pip-audit and PyPI's advisories.

pip-audit asks PyPI's JSON API (``/pypi/<name>/<version>/json``) about every installed
distribution of this environment (``--local``: the virtualenv, not the system's packages; the
project itself is editable and not on PyPI, so ``--skip-editable``). Where that API cannot be
reached (an offline machine, a mirror that serves only the simple index) the test is skipped
with a message, not failed: the issue asks for exactly that, also under CI=true.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import requests

VULNERABILITY_API = "https://pypi.org/pypi/{name}/{version}/json"
# One question first: when it gets no answer, the whole audit (one request per installed
# distribution) would get none either, so it is not run.
PROBE_PACKAGE = "flask"
PROBE_TIMEOUT = 5
AUDIT_TIMEOUT = 25  # seconds for the whole audit; a slower service counts as unreachable
# More unknown distributions than this means PyPI did not answer, not that they are private.
MOST_UNKNOWN = 0.5


def cache_dir() -> Path:
    """pip-audit's HTTP cache, kept between runs so a repeated audit asks PyPI little."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "pip-audit-tests"


def vulnerability_service_problem() -> str | None:
    """Why PyPI's per-version JSON API cannot be used from here, or None when it can."""
    version = metadata.version(PROBE_PACKAGE)
    url = VULNERABILITY_API.format(name=PROBE_PACKAGE, version=version)
    try:
        response = requests.get(url, timeout=PROBE_TIMEOUT)
    except requests.RequestException as exc:
        return f"{url} is unreachable ({type(exc).__name__})"
    if response.status_code != 200:
        return f"{url} answered HTTP {response.status_code}"
    try:
        body = response.json()
    except ValueError:
        return f"{url} did not answer JSON"
    if not isinstance(body, dict) or "vulnerabilities" not in body:
        return f"{url} answered without a vulnerabilities list"
    return None


def run_audit() -> dict[str, Any]:
    """pip-audit's JSON report on this virtualenv (skips the test if it cannot finish)."""
    command = [
        sys.executable,
        "-m",
        "pip_audit",
        "--local",
        "--skip-editable",
        "--format",
        "json",
        "--progress-spinner",
        "off",
        "--timeout",
        str(PROBE_TIMEOUT),
        "--cache-dir",
        str(cache_dir()),
    ]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=AUDIT_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        pytest.skip(
            f"pip-audit did not finish within {AUDIT_TIMEOUT} s (vulnerability service slow)"
        )
    # Exit status 1 means "vulnerabilities found" and still prints the report.
    try:
        return json.loads(done.stdout)
    except ValueError:
        tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        pytest.skip(f"pip-audit could not audit (exit {done.returncode}): {tail[0]}")


def test_installed_dependencies_have_no_known_vulnerabilities() -> None:
    problem = vulnerability_service_problem()
    if problem is not None:
        pytest.skip(f"pip-audit needs PyPI's vulnerability data, but {problem}")
    report = run_audit()
    dependencies = report["dependencies"]
    assert dependencies, "pip-audit found no installed distributions to audit"
    unknown = [d["name"] for d in dependencies if "skip_reason" in d]
    if len(unknown) > MOST_UNKNOWN * len(dependencies):
        pytest.skip(
            f"PyPI's JSON API did not know {len(unknown)} of {len(dependencies)} installed "
            "distributions: its vulnerability data is not reachable from here"
        )
    found = [
        f"{d['name']} {d['version']}: {v['id']} (fixed in {', '.join(v['fix_versions']) or '-'})"
        for d in dependencies
        for v in d.get("vulns", ())
    ]
    assert found == [], "known vulnerabilities: raise the floor in pyproject.toml\n" + "\n".join(
        found
    )
