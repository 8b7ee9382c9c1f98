"""SECURITY.md's threat table: every row names a control and tests that exist in the suite."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SECURITY = ROOT / "SECURITY.md"
TEST_REFERENCE = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")


def threat_rows() -> list[list[str]]:
    """The cells of every row of SECURITY.md's threat tables (those with a "test" column)."""
    rows: list[list[str]] = []
    in_threat_table = False
    for line in SECURITY.read_text(encoding="utf-8").splitlines():
        if not line.startswith("|"):
            in_threat_table = False
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if cells[:3] == ["threat", "control", "test"]:
            in_threat_table = True
        elif in_threat_table and not set(line) <= set("|- "):
            rows.append(cells)
    return rows


@cache
def defined_tests(path: str) -> frozenset[str]:
    """Names of the test functions defined at the top level of a test module."""
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    return frozenset(
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
    )


def test_every_threat_has_a_control_and_a_test() -> None:
    rows = threat_rows()
    assert len(rows) >= 60, f"only {len(rows)} threat rows found: is the table format intact?"
    incomplete = [row[0] for row in rows if len(row) != 3 or not all(row)]
    untested = [row[0] for row in rows if len(row) == 3 and not TEST_REFERENCE.search(row[2])]
    assert not incomplete, f"rows without a control or a test: {incomplete}"
    assert not untested, f"rows whose test column names no test: {untested}"


def test_every_named_test_exists() -> None:
    missing = [
        f"{path}::{name}"
        for row in threat_rows()
        for path, name in TEST_REFERENCE.findall(row[2])
        if not (ROOT / path).is_file() or name not in defined_tests(path)
    ]
    assert not missing, f"SECURITY.md names tests that do not exist: {missing}"


def test_every_security_test_module_is_in_the_threat_model() -> None:
    named = {path for row in threat_rows() for path, _ in TEST_REFERENCE.findall(row[2])}
    modules = {
        str(path.relative_to(ROOT))
        for path in (ROOT / "tests" / "security").glob("test_*.py")
        if path.name != Path(__file__).name
    }
    assert modules - named == set(), "security tests that SECURITY.md does not mention"
