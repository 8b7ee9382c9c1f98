"""Site single sign-on: verifying the site's JWT and logging the reader in."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy.orm import scoped_session

from auth.models import Identity, User
from auth.sso import InvalidSSOToken, SSOClaims, verify_sso_token
from moderation.models import Site

if TYPE_CHECKING:
    from tests.conftest import Factory

DBSession = scoped_session[Any]

SECRET = "site-sso-secret-" + "s" * 32
OTHER_SECRET = "another-secret-" + "o" * 32


def b64(data: bytes) -> str:
    """Base64url without padding, as in JWS."""
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def sign(claims: dict[str, Any], secret: str | None, header: dict[str, Any] | None = None) -> str:
    """A compact JWS made by hand, so tests can forge any header (``secret=None``: unsigned)."""
    head = b64(json.dumps(header or {"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    signing_input = f"{head}.{body}".encode()
    if secret is None:
        return f"{head}.{body}."
    mac = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    return f"{head}.{body}.{b64(mac)}"


def claims_for(site: Site, **changes: Any) -> dict[str, Any]:
    """Valid claims for ``site``: a five-minute token for reader 42; ``None`` drops a claim."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": "42",
        "email": "Reader@Example.org",
        "name": "Rita Reader",
        "iat": now,
        "exp": now + 300,
        "aud": site.key,
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


@pytest.fixture
def site(factory: Factory) -> Site:
    """A site with single sign-on."""
    return factory.site(name="Gazette", sso_secret=SECRET)


@pytest.fixture
def other_site(factory: Factory) -> Site:
    """A second site with its own secret."""
    return factory.site(name="Herald", sso_secret=OTHER_SECRET)


def post(client: FlaskClient, site_key: str, token: Any) -> Any:
    """POST /auth/sso."""
    return client.post("/auth/sso", json={"site": site_key, "token": token})


def refused(response: Any, status: int = 400) -> str:
    """The error sentence of a refused sign-in."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    return str(response.json["error"])


def me(client: FlaskClient) -> Any:
    """Who the client's session is, through the JSON API."""
    return client.get("/api/v1/me", headers={"X-Requested-With": "fetch"})


# --- signing in -------------------------------------------------------------------------------


def test_valid_token_logs_the_reader_in(
    client: FlaskClient, site: Site, db_session: DBSession
) -> None:
    response = post(client, site.key, sign(claims_for(site), SECRET))
    assert response.status_code == 200, response.get_data(as_text=True)
    user = response.json["user"]
    assert user["name"] == "Rita Reader"
    assert user["site"] == site.key

    assert me(client).json["user"]["id"] == user["id"]
    identity = db_session.scalars(sa.select(Identity)).one()
    assert (identity.provider, identity.subject) == (f"sso:{site.key}", "42")
    assert identity.user_id == user["id"]
    assert identity.email == "reader@example.org"
    assert identity.display_name == "Rita Reader"
    assert identity.last_login_at is not None
    # The site's word about the address is recorded, not trusted for our e-mail logins.
    assert identity.email_verified is False
    account = db_session.get(User, user["id"])
    assert account.email is None
    assert account.email_verified is False


def test_second_sign_in_reuses_the_identity(
    client: FlaskClient, site: Site, db_session: DBSession
) -> None:
    first = post(client, site.key, sign(claims_for(site), SECRET)).json["user"]
    renamed = sign(claims_for(site, name="Rita R."), SECRET)
    second = post(client, site.key, renamed)
    assert second.status_code == 200
    assert second.json["user"]["id"] == first["id"]
    assert second.json["user"]["name"] == "Rita R."
    assert db_session.scalar(sa.select(sa.func.count(Identity.id))) == 1
    assert db_session.scalar(sa.select(sa.func.count(User.id))) == 1
    assert me(client).json["user"]["name"] == "Rita R."


def test_same_subject_on_two_sites_is_two_people(
    client: FlaskClient, site: Site, other_site: Site
) -> None:
    here = post(client, site.key, sign(claims_for(site), SECRET)).json["user"]
    there = post(client, other_site.key, sign(claims_for(other_site), OTHER_SECRET)).json["user"]
    assert here["id"] != there["id"]


def test_an_account_with_the_same_verified_email_is_not_taken_over(
    client: FlaskClient, site: Site, factory: Factory
) -> None:
    account = factory.user(email="reader@example.org", email_verified=True)
    signed_in = post(client, site.key, sign(claims_for(site), SECRET)).json["user"]
    assert signed_in["id"] != account.id


def test_token_without_name_gets_a_placeholder(client: FlaskClient, site: Site) -> None:
    response = post(client, site.key, sign(claims_for(site, name=None, sub="u-7"), SECRET))
    assert response.status_code == 200
    assert response.json["user"]["name"] == "Reader u-7"


@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": True}])
def test_no_csrf_token_needed(client: FlaskClient, site: Site, app_config: Any) -> None:
    assert post(client, site.key, sign(claims_for(site), SECRET)).status_code == 200


# --- refusals -----------------------------------------------------------------------------------


def test_expired_token(client: FlaskClient, site: Site) -> None:
    now = int(time.time())
    token = sign(claims_for(site, iat=now - 400, exp=now - 60), SECRET)
    assert "expired" in refused(post(client, site.key, token))
    assert me(client).status_code == 401


def test_expiry_has_thirty_seconds_of_leeway(client: FlaskClient, site: Site) -> None:
    now = int(time.time())
    token = sign(claims_for(site, iat=now - 300, exp=now - 10), SECRET)
    assert post(client, site.key, token).status_code == 200


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"exp": None}, "no expiry"),
        ({"exp": "soon"}, "must be a number"),
        ({"exp": True}, "must be a number"),
        ({"iat": 0, "exp": 3600}, "expired"),
        ({"iat": "offset", "exp": "offset+3600"}, "longer than 10 minutes"),
        ({"iat": None, "exp": "offset+3600"}, "more than 10 minutes from now"),
        ({"iat": "offset+600"}, "issued in the future"),
        ({"nbf": "offset+600"}, "not valid yet"),
    ],
)
def test_token_times(client: FlaskClient, site: Site, changes: dict[str, Any], reason: str) -> None:
    now = int(time.time())
    values = {
        name: now + int(value.removeprefix("offset") or 0)
        if isinstance(value, str) and value.startswith("offset")
        else value
        for name, value in changes.items()
    }
    token = sign(claims_for(site, **values), SECRET)
    assert reason in refused(post(client, site.key, token))


@pytest.mark.parametrize(
    "secret",
    [OTHER_SECRET, "site-key-as-secret", SECRET + "x"],
    ids=["other-site-secret", "site-key", "near-miss"],
)
def test_wrong_signing_key(client: FlaskClient, site: Site, secret: str) -> None:
    if secret == "site-key-as-secret":
        secret = site.key * 3  # the public site key is not a secret (and too short alone)
    token = sign(claims_for(site), secret)
    assert "signature does not match" in refused(post(client, site.key, token))


def test_tampered_claims(client: FlaskClient, site: Site) -> None:
    head, _, signature = sign(claims_for(site), SECRET).split(".")
    forged = b64(json.dumps(claims_for(site, sub="1")).encode())
    assert "signature does not match" in refused(
        post(client, site.key, f"{head}.{forged}.{signature}")
    )


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_unsigned_token(client: FlaskClient, site: Site, alg: str) -> None:
    token = sign(claims_for(site), None, header={"alg": alg, "typ": "JWT"})
    assert "not signed" in refused(post(client, site.key, token))
    # Even with a signature attached, "none" is not accepted.
    token = sign(claims_for(site), SECRET, header={"alg": alg})
    assert "not signed" in refused(post(client, site.key, token))


@pytest.mark.parametrize("alg", ["RS256", "ES256", "HS512", "HS384", "PS256", "hs256"])
def test_other_algorithms(client: FlaskClient, site: Site, alg: str) -> None:
    # The RS256/HS256 swap: an "RS256" token MAC'd with the secret must not be verified as HMAC.
    token = sign(claims_for(site), SECRET, header={"alg": alg, "typ": "JWT"})
    assert "only HS256 is accepted" in refused(post(client, site.key, token))


def test_header_without_algorithm(client: FlaskClient, site: Site) -> None:
    token = sign(claims_for(site), SECRET, header={"typ": "JWT"})
    assert "not signed" in refused(post(client, site.key, token))


def test_token_for_another_site(client: FlaskClient, site: Site, other_site: Site) -> None:
    # Signed with this site's secret, but meant for the other one.
    token = sign(claims_for(site, aud=other_site.key), SECRET)
    assert "another site" in refused(post(client, site.key, token))
    # The other site's valid token, replayed here.
    theirs = sign(claims_for(other_site), OTHER_SECRET)
    assert "signature does not match" in refused(post(client, site.key, theirs))


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"aud": None}, "no audience"),
        ({"aud": ["someone-else"]}, "another site"),
        ({"sub": None}, "no subject"),
        ({"sub": ""}, "no subject"),
        ({"sub": "   "}, "no subject"),
        ({"sub": {"id": 1}}, "no subject"),
        ({"sub": "x" * 300}, "longer than 255"),
        ({"name": 12}, "must be a string"),
        ({"email": ["a@b.c"]}, "must be a string"),
    ],
)
def test_bad_claims(client: FlaskClient, site: Site, changes: dict[str, Any], reason: str) -> None:
    token = sign(claims_for(site, **changes), SECRET)
    assert reason in refused(post(client, site.key, token))


def test_audience_list_and_numeric_subject(client: FlaskClient, site: Site) -> None:
    token = sign(claims_for(site, aud=["other", site.key], sub=42), SECRET)
    assert post(client, site.key, token).status_code == 200


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "a.b.c",
        "a.b",
        "....",
        "e30.e30.",  # {} header
        b64(b'{"alg":"HS256"}') + ".bm90IGpzb24." + b64(b"x" * 32),
        b64(b'{"alg":"HS256"}') + "." + b64(b"[1, 2]") + "." + b64(b"x" * 32),
        "x" * 5000,
        " ",
    ],
)
def test_garbage(client: FlaskClient, site: Site, token: str) -> None:
    message = refused(post(client, site.key, token))
    assert message.startswith("The sign-in token")


def test_forged_payload_with_valid_signature_over_non_json(site: Site, app: Flask) -> None:
    head = b64(b'{"alg":"HS256"}')
    body = b64(b"not json")
    mac = hmac.new(SECRET.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    with app.app_context(), pytest.raises(InvalidSSOToken, match="malformed"):
        verify_sso_token(site, f"{head}.{body}.{b64(mac)}")


@pytest.mark.parametrize(
    "body",
    [None, [], {"site": "k"}, {"token": "t"}, {"site": 1, "token": "t"}, {"site": "k", "token": 5}],
)
def test_bad_request_bodies(client: FlaskClient, site: Site, body: Any) -> None:
    if isinstance(body, dict) and body.get("site") == "k":
        body = {**body, "site": site.key}
    response = (
        client.post("/auth/sso", json=body)
        if body is not None
        else client.post(
            "/auth/sso", data="site=k", content_type="application/x-www-form-urlencoded"
        )
    )
    refused(response, 400)


def test_unknown_site_is_404(client: FlaskClient, site: Site) -> None:
    assert "no site" in refused(post(client, "nope", sign(claims_for(site), SECRET)), 404)


def test_site_without_sso_is_403(client: FlaskClient, factory: Factory) -> None:
    plain = factory.site(name="No SSO")
    token = sign(claims_for(plain), "whatever-" * 4)
    assert "does not use single sign-on" in refused(post(client, plain.key, token), 403)


# --- the verifier on its own ----------------------------------------------------------------------


def test_verify_returns_the_claims(site: Site, app: Flask) -> None:
    now = int(time.time())
    with app.app_context():
        claims = verify_sso_token(site, sign(claims_for(site, iat=now, exp=now + 60), SECRET))
    assert isinstance(claims, SSOClaims)
    assert (claims.site_key, claims.subject, claims.email, claims.name) == (
        site.key,
        "42",
        "reader@example.org",
        "Rita Reader",
    )
    assert int(claims.expires_at.timestamp()) == now + 60
    assert claims.issued_at is not None


def test_verify_uses_the_given_clock(site: Site, app: Flask) -> None:
    token = sign(claims_for(site, iat=1_000_000, exp=1_000_300), SECRET)
    with app.app_context():
        assert verify_sso_token(site, token, now=1_000_100).subject == "42"
        with pytest.raises(InvalidSSOToken, match="expired"):
            verify_sso_token(site, token, now=1_000_331)


# --- the CLI --------------------------------------------------------------------------------------


def test_cli_generates_and_stores_a_secret(
    runner: FlaskCliRunner, factory: Factory, db_session: DBSession, client: FlaskClient
) -> None:
    site = factory.site(name="Courier")
    result = runner.invoke(args=["sites", "sso-secret", site.key])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert printed["site"] == site.key
    assert len(printed["sso_secret"]) >= 43
    db_session.refresh(site)
    assert site.sso_secret == printed["sso_secret"]
    # The new secret works, and a second run replaces it.
    assert post(client, site.key, sign(claims_for(site), printed["sso_secret"])).status_code == 200
    again = json.loads(runner.invoke(args=["sites", "sso-secret", site.key]).output)
    assert again["sso_secret"] != printed["sso_secret"]


def test_cli_unknown_site(runner: FlaskCliRunner, app: Flask) -> None:
    result = runner.invoke(args=["sites", "sso-secret", "nope"])
    assert result.exit_code == 2
    assert "no site" in result.output
