"""The JSON API fuzzed against its own OpenAPI document with schemathesis (issue 8, item 7).

Every operation of ``/api/v1/openapi.json`` gets generated requests, valid ones and invalid
ones, sent to the WSGI app (no server) with the bearer token of an admin, a site moderator or a
commenter, and with path, query and body values that mostly point at real sites, articles,
comments and users, so the handlers run past their lookups. Every answer must be no 5xx (and no
exception), a status the operation documents, with a documented content type and headers and a
body that matches its schema; invalid requests must be refused; a success with a token must
turn into 401 without one; a method an address does not take must answer 405 with ``Allow``.

``bench/fuzz_api.py`` (``make fuzz``) runs the same engine with many more examples.
"""

from __future__ import annotations

import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation.meta import negated_parameters
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    content_type_conformance,
    ignored_auth,
    missing_required_header,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

import classifier
from auth.models import ApiToken, Role, SiteMembership, SiteRole, User
from moderation.extensions import db
from moderation.models import Site
from tests.conftest import APP_ENVIRONMENT, TestDatabase, dispose, empty_tables, make_test_app

OPENAPI_PATH = "/api/v1/openapi.json"
CHECKS = (
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,  # an invalid request is refused (4xx), not half-processed
    ignored_auth,  # a success with a token is refused without one, or with a wrong one
    missing_required_header,
    unsupported_method,  # an undocumented method answers 405
    allow_header_conformance,  # ... naming the methods the address takes
)
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
ROLES = ("admin", "moderator", "commenter")  # whose bearer token signs a request
ORIGIN = "https://gazette.example"
# Per operation and mode: every operation sees valid and invalid requests by each role, and the
# whole run stays well under a minute on SQLite (bench/fuzz_api.py sends hundreds).
TEST_EXAMPLES = 10
# Names whose real values fit only in the path ("version" in a body is a comment's version).
PATH_ONLY = frozenset({"version"})
MIN_OPERATIONS = 32  # the API's operations when this was written; fewer means routes got lost


@dataclass(frozen=True)
class World:
    """What requests can point at: real keys, ids and URLs, and each role's token."""

    tokens: dict[str, str]
    site_keys: list[str]
    urls: list[str]
    comment_ids: list[int]
    user_ids: list[int]
    guest_emails: list[str]
    model_versions: list[str]

    def real_values(self) -> dict[str, list[Any]]:
        """Real values by the parameter names the API uses for them."""
        return {
            "site": self.site_keys,
            "key": self.site_keys,
            "url": self.urls,
            "article": self.urls,
            "comment_id": self.comment_ids,
            "parent_id": self.comment_ids,
            "comment": self.comment_ids,
            "user_id": self.user_ids,
            "author": self.user_ids,
            "moderator": self.user_ids,
            "email": self.guest_emails,
            "author_email": self.guest_emails,
            "version": self.model_versions,
        }


@dataclass
class OperationResult:
    """What fuzzing one operation in one mode found."""

    label: str
    examples: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: dict[str, str] = field(default_factory=dict)  # one line -> report with curl
    seconds: float = 0.0


def fuzz_app(database: TestDatabase, instance_path: Path) -> Flask:
    """An app for fuzzing: the tests' settings (no rate limits), no cache between requests."""
    return make_test_app(database, instance_path, {"CACHE_ENABLED": False})


def _staff(site: Site, role: SiteRole, email: str) -> User:
    user = User(email=email, display_name=email.partition("@")[0].title())
    db.session.add_all([user, SiteMembership(user=user, site=site, role=role)])
    return user


def build_world(app: Flask) -> World:
    """Empty tables, then two sites, their staff, a commenter, and comments posted by the API."""
    with app.app_context():
        empty_tables()
        gazette = Site(
            name="Gazette",
            origins=[ORIGIN],
            settings={"allow_guests": True, "flood_seconds": 0, "duplicate_minutes": 0},
        )
        herald = Site(name="Herald", origins=["https://herald.example"])
        db.session.add_all([gazette, herald])
        users = {
            "admin": User(email="ada@example.org", display_name="Ada", role=Role.ADMIN),
            "moderator": _staff(gazette, SiteRole.MODERATOR, "mo@example.org"),
            "owner": _staff(gazette, SiteRole.OWNER, "olive@example.org"),
            "other_moderator": _staff(herald, SiteRole.MODERATOR, "otto@example.org"),
            "commenter": User(email="cora@example.org", display_name="Cora"),
        }
        db.session.add_all(users.values())
        tokens = {}
        for role, user in users.items():
            token, tokens[role] = ApiToken.issue(user, name="fuzz")
            db.session.add(token)
        db.session.commit()
        site_keys = [gazette.key, herald.key]
        user_ids = [user.id for user in users.values()]

    client = app.test_client()
    urls = [f"{ORIGIN}/articles/{n}" for n in range(3)]

    def post(json: dict[str, Any], role: str | None = "commenter") -> int:
        headers = {"Authorization": f"Bearer {tokens[role]}"} if role else {}
        answer = client.post("/api/v1/comments", json=json, headers=headers)
        assert answer.status_code in (201, 202), answer.get_json()
        return int(answer.get_json()["comment"]["id"])

    bodies = (
        "A measured first comment about the budget.",  # held: the author's first
        "Thanks for the **clear** reporting, see [this](https://example.org/a).",
        "You are an idiot and a liar, get lost!!!",
        "BUY CHEAP PILLS http://spam.example http://spam.example/2 http://spam.example/3",
    )
    comment_ids = [
        post({"site": site_keys[0], "url": urls[n % 3], "title": "An article", "body": body})
        for n, body in enumerate(bodies)
    ]
    # Human decisions, so likes, replies, undo, history and the audit log have something to
    # work on; the other two comments stay in the queue.
    for comment_id in comment_ids[:2]:
        decided = client.post(
            f"/api/v1/moderation/comments/{comment_id}/decision",
            json={"action": "approve"},
            headers={"Authorization": f"Bearer {tokens['moderator']}"},
        )
        assert decided.status_code == 200, decided.get_json()
    guest_reply = {"name": "Guest", "email": "guest@example.net", "parent_id": comment_ids[0]}
    comment_ids.append(
        post(
            {"site": site_keys[0], "url": urls[0], "body": "A guest's reply.", **guest_reply}, None
        )
    )
    return World(
        tokens=tokens,
        site_keys=site_keys,
        urls=urls,
        comment_ids=comment_ids,
        user_ids=user_ids,
        guest_emails=["guest@example.net"],
        # The shipped model, recorded as the active version on first use (activating it: 200).
        model_versions=[str(classifier.read_meta(classifier.DEFAULT_MODEL_PATH)["version"])],
    )


def _anchor(case: schemathesis.Case, world: World, data: st.DataObject) -> None:
    """Point most generated ids, keys and URLs at real objects, so handlers do real work."""
    real = world.real_values()
    parts = [(ParameterLocation.PATH, case.path_parameters), (ParameterLocation.QUERY, case.query)]
    if isinstance(case.body, dict):
        parts.append((ParameterLocation.BODY, case.body))
    for location, values in parts:
        # A part made invalid on purpose stays as it is: the check is that it is refused.
        if not values or (case.meta is not None and case.meta.is_negative_at(location)):
            continue
        for name in list(values):
            if name in PATH_ONLY and location is not ParameterLocation.PATH:
                continue
            if name in real and data.draw(st.integers(0, 3), label=f"real {name}?"):
                value = data.draw(st.sampled_from(real[name]), label=name)
                values[name] = [value] if isinstance(values[name], list) else value


def _single_failures(error: BaseException) -> list[BaseException]:
    """The single failures in a schemathesis failure group (or the error itself)."""
    if isinstance(error, BaseExceptionGroup):
        return [one for inner in error.exceptions for one in _single_failures(inner)]
    return [error]


def _curl(case: schemathesis.Case) -> str:
    """A command that sends the failing request again (add a token of the role)."""
    headers = {k: v for k, v in case.headers.items() if k.lower() != "authorization"}
    return case.as_curl_command(headers=headers)


def fuzz_operation(
    operation: Any,
    mode: GenerationMode,
    max_examples: int,
    world: Callable[[], World],
) -> OperationResult:
    """Send up to ``max_examples`` generated requests to one operation; collect every failure."""
    result = OperationResult(f"{operation.label} [{mode.value}]")

    @settings(
        max_examples=max_examples,
        derandomize=True,  # the same requests on every run, in CI too
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],  # failures are collected, not shrunk
        suppress_health_check=list(HealthCheck),
    )
    @given(
        case=operation.as_strategy(generation_mode=mode),
        role=st.sampled_from(ROLES),
        data=st.data(),
    )
    def send(case: schemathesis.Case, role: str, data: st.DataObject) -> None:
        now = world()
        _anchor(case, now, data)
        # Sent as the caller's own header, so ignored_auth knows it is a valid token; not when
        # the case is about a missing or malformed token.
        token = {"Authorization": f"Bearer {now.tokens[role]}"}
        if ("Authorization", ParameterLocation.HEADER) in set(negated_parameters(case.meta)):
            token = {}
        result.examples += 1
        try:
            response = case.call(headers=token or None)
        except Exception as error:  # the app let an exception out instead of answering
            key = f"{result.label} {type(error).__name__}: {error}"
            result.failures.setdefault(key, f"{key}\n{traceback.format_exc()}{_curl(case)}")
            return
        result.statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=list(CHECKS), headers=token or None)
        except (AssertionError, BaseExceptionGroup) as error:
            for failure in _single_failures(error):
                title = getattr(failure, "title", type(failure).__name__)
                message = getattr(failure, "message", str(failure))
                key = f"{result.label} {title}: {message.splitlines()[0][:160]}"
                answer = f"[{response.status_code}] {response.text[:500]}"
                result.failures.setdefault(key, f"{key}\n{message[:1500]}\n{answer}\n{_curl(case)}")

    started = time.perf_counter()
    send()
    result.seconds = time.perf_counter() - started
    return result


def load_schema(app: Flask) -> Any:
    """The app's OpenAPI document for schemathesis, less its catch-all ``default`` answers.

    ``default`` documents the error shape of answers no client can plan for (500, 503); left
    in, every status would conform. Without it, each status an operation gives must be listed.
    """
    document = app.test_client().get(OPENAPI_PATH).get_json()
    for path in document["paths"].values():
        for operation in path.values():
            if isinstance(operation, dict):
                operation.get("responses", {}).pop("default", None)
    schema = schemathesis.openapi.from_dict(document)
    schema.app = app  # requests go straight to the WSGI app, as with from_wsgi
    return schema


def fuzz_api(
    app: Flask,
    max_examples: int,
    *,
    refresh_every: int = 0,
    on_result: Callable[[OperationResult], None] | None = None,
    only: str = "",
) -> list[OperationResult]:
    """Fuzz every operation of the app's OpenAPI document in both modes.

    A new world is built after an operation that changes data (it may have deleted, decided
    or erased what the next one needs) and, with ``refresh_every``, after that many requests.
    ``only`` keeps the operations whose path contains it.
    """
    schema = load_schema(app)
    results = []
    current: list[World] = []
    sent = 0

    def world() -> World:
        nonlocal sent
        sent += 1
        if not current or (refresh_every and sent % refresh_every == 0):
            current[:] = [build_world(app)]
        return current[0]

    for found in schema.get_all_operations():
        operation = found.ok()
        if only not in operation.path:
            continue
        for mode in MODES:
            result = fuzz_operation(operation, mode, max_examples, world)
            results.append(result)
            if on_result is not None:
                on_result(result)
            if operation.method.upper() != "GET":
                current.clear()
    return results


def api_routes(app: Flask) -> set[tuple[str, str]]:
    """(method, OpenAPI path) of every route the app serves under /api/v1 but the document."""
    routes = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or rule.rule == OPENAPI_PATH:
            continue
        path = rule.rule
        for argument in rule.arguments:
            path = path.replace(f"<int:{argument}>", f"{{{argument}}}")
            path = path.replace(f"<{argument}>", f"{{{argument}}}")
        routes |= {(method, path) for method in rule.methods - {"HEAD", "OPTIONS"}}
    return routes


@pytest.fixture(scope="module")
def fuzzed_app(database: TestDatabase, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """One app for the module (building one per operation would cost more than fuzzing)."""
    with pytest.MonkeyPatch.context() as patch:
        for name in APP_ENVIRONMENT:  # as the clean_env fixture does for function-scoped apps
            patch.delenv(name, raising=False)
        app = fuzz_app(database, tmp_path_factory.mktemp("fuzz") / "instance")
        yield app
        dispose(app)


def test_every_api_route_is_documented(fuzzed_app: Flask) -> None:
    """Fuzzing the document reaches every route only if the document lists every route."""
    schema = load_schema(fuzzed_app)
    documented = {
        (found.ok().method.upper(), found.ok().path) for found in schema.get_all_operations()
    }
    assert api_routes(fuzzed_app) == documented
    assert len(documented) >= MIN_OPERATIONS


def test_every_operation_survives_fuzzing(fuzzed_app: Flask) -> None:
    results = fuzz_api(fuzzed_app, TEST_EXAMPLES)
    operations = {result.label.rsplit(" [", 1)[0] for result in results}
    statuses = sum((result.statuses for result in results), Counter())
    examples = sum(result.examples for result in results)
    # For docs/security.md: what one run of make test sends.
    print(f"\nfuzzed {len(operations)} operations with {examples} requests: {dict(statuses)}")
    failures = [text for result in results for text in result.failures.values()]
    assert not failures, f"{len(failures)} distinct failures:\n\n" + "\n\n".join(failures[:20])
    assert len(operations) >= MIN_OPERATIONS
    assert examples >= len(operations) * len(MODES) * TEST_EXAMPLES * 0.8  # few were skipped
    # The world works: a good share of valid requests got past auth and lookups to real work.
    positive = [result for result in results if result.label.endswith("[positive]")]
    succeeded = sum(n for r in positive for status, n in r.statuses.items() if status < 300)
    assert succeeded >= 0.2 * sum(result.examples for result in positive)


def test_ids_beyond_what_the_database_holds_are_refused(fuzzed_app: Flask) -> None:
    """An id past 2**63 - 1 is a 404 (path) or 422 (query, body), never SQLite's OverflowError."""
    world = build_world(fuzzed_app)
    client = fuzzed_app.test_client()
    headers = {"Authorization": f"Bearer {world.tokens['admin']}"}
    huge = str(2**63)
    answers = {}
    for found in load_schema(fuzzed_app).get_all_operations():
        operation = found.ok()
        path = operation.path
        for parameter in operation.path_parameters:
            if parameter.definition.get("schema", {}).get("type") == "integer":
                path = path.replace(f"{{{parameter.name}}}", huge)
        if path != operation.path:
            answer = client.open(path, method=operation.method.upper(), headers=headers, json={})
            answers[f"{operation.method.upper()} {path}"] = (answer.status_code, 404)
    site, url = world.site_keys[0], world.urls[0]
    for method, path, json in (
        ("POST", "/api/v1/comments", {"site": site, "url": url, "body": "Hi", "parent_id": 2**63}),
        (
            "POST",
            "/api/v1/moderation/decisions",
            {"action": "approve", "comments": [{"id": 2**63}]},
        ),
        ("GET", f"/api/v1/moderation/queue?site={site}&author={huge}", None),
        ("GET", f"/api/v1/moderation/audit?site={site}&comment={huge}", None),
        ("GET", f"/api/v1/moderation/audit?site={site}&moderator={huge}", None),
    ):
        answer = client.open(path, method=method, headers=headers, json=json)
        answers[f"{method} {path}"] = (answer.status_code, 422)
    print(f"\n{len(answers)} requests with an id of 2**63")
    assert len(answers) >= 15  # every operation with an id in its path, and the id fields
    assert {key: got for key, (got, expected) in answers.items() if got != expected} == {}
