"""JWT authorizers with AWS HTTP API semantics: keys from the issuer's OIDC discovery
document, fetched off the request path and cached; every check AWS makes (kid, iss, aud or
client_id, exp, nbf, iat, the algorithm fitting the key); scopes per route; 401 with
`WWW-Authenticate: Bearer` for a bad token and 403 for missing scopes; claims in
`$context.authorizer.claims.*`."""

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
import requests

from support.idp import Idp


@pytest.fixture
def idp():
    p = Idp()
    p.add_key("k1", "rsa")
    p.add_key("k2", "p256")
    p.add_key("k3", "ed25519")
    p.add_key("k4", "p384")
    yield p
    try:
        p.stop()
    except Exception:
        pass


def config(idp, origin, tmp_path, **authorizer):
    return {
        "gateway": {"throttle": "off"},
        "apis": [
            {
                "name": "shop",
                "authorizers": {
                    "cognito": {
                        "type": "jwt",
                        "identity_source": "$request.header.Authorization",
                        "issuer": idp.issuer,
                        "audience": ["my-app-client-id"],
                        **authorizer,
                    }
                },
                "integrations": {"users": {"type": "http_proxy", "uri": f"http://{origin.addr}"}},
                "routes": [
                    {"key": "GET /me", "integration": "users", "authorizer": "cognito"},
                    {
                        "key": "GET /admin",
                        "integration": "users",
                        "authorizer": "cognito",
                        "authorization_scopes": ["admin", "root"],
                    },
                    {"key": "GET /open", "integration": "users"},
                ],
                "stages": [
                    {
                        "name": "prod",
                        "access_log": {
                            "destination": str(tmp_path / "access.log"),
                            "format": '{"id":"$context.requestId","sub":"$context.authorizer.claims.sub","status":"$context.status","groups":"$context.authorizer.claims.cognito:groups"}',
                        },
                    }
                ],
            }
        ],
    }


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256(header, claims, secret):
    """What PyJWT refuses to make: an HMAC token keyed with a public key (the classic
    algorithm-confusion attack on verifiers that take the algorithm from the token)."""
    signing = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    sig = hmac.new(secret, signing.encode(), hashlib.sha256).digest()
    return f"{signing}.{b64(sig)}"


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def wait_keys(g, idp, kid="k1"):
    """Keys are fetched in the background: the first requests may see none yet."""
    deadline = time.time() + 10
    while time.time() < deadline:
        if requests.get(g.url("/prod/me"), headers=bearer(idp.token(kid=kid))).status_code == 200:
            return
        time.sleep(0.05)
    raise AssertionError(f"keys never arrived:\n{g.logs()}")


def test_tutorial_jwt_authorizer_admits_valid_tokens_and_refuses_the_rest(gateway, origin, idp, tmp_path):
    g = gateway(config(idp, origin, tmp_path))
    wait_keys(g, idp)

    # Valid tokens of every key type, with or without "Bearer ".
    for kid in ("k1", "k2", "k3", "k4"):
        r = requests.get(g.url("/prod/me"), headers=bearer(idp.token(kid=kid)))
        assert r.status_code == 200, (kid, r.text)
    r = requests.get(g.url("/prod/me"), headers={"Authorization": idp.token()})
    assert r.status_code == 200
    for alg in ("RS384", "RS512", "PS256", "PS384", "PS512"):
        assert requests.get(g.url("/prod/me"), headers=bearer(idp.token(alg=alg))).status_code == 200, alg
    # Cognito access tokens carry client_id instead of aud.
    t = idp.token(aud=None, client_id="my-app-client-id")
    assert requests.get(g.url("/prod/me"), headers=bearer(t)).status_code == 200

    now = int(time.time())
    rsa_public = idp.keys["k1"][1].public_key()
    from cryptography.hazmat.primitives import serialization

    pem = rsa_public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    header, payload, sig = idp.token().split(".")
    bad = {
        "missing": None,
        "empty bearer": "Bearer ",
        "garbage": "Bearer not.a.token",
        "alg none": jwt.encode({"iss": idp.issuer, "aud": "my-app-client-id", "exp": now + 60}, None, algorithm="none", headers={"kid": "k1"}),
        "HS256 keyed with the public key": hs256(
            {"alg": "HS256", "kid": "k1"}, {"iss": idp.issuer, "aud": "my-app-client-id", "exp": now + 60}, pem
        ),
        "alg does not fit the key": idp.token(kid="k2", alg="ES384"),
        "unknown kid": idp.token(kid="nope", key=idp.keys["k1"][1]),
        "wrong issuer": idp.token(iss="https://evil.example.com"),
        "wrong audience": idp.token(aud="someone-else"),
        "no exp": idp.token(exp=None),
        "expired": idp.token(exp=now - 5),
        "not yet valid": idp.token(nbf=now + 300),
        "issued in the future": idp.token(iat=now + 300),
        "tampered": f"{header}.{payload[:-2]}AA.{sig}",
    }
    for what, token in bad.items():
        headers = {} if token is None else {"Authorization": token if token.startswith("Bearer") else f"Bearer {token}"}
        r = requests.get(g.url("/prod/me"), headers=headers)
        assert r.status_code == 401, (what, r.status_code, r.text)
        assert r.json() == {"message": "Unauthorized"}, what
        assert r.headers["www-authenticate"].startswith("Bearer"), what
    assert not any(req.target == "/me" and not req.header("authorization") for req in origin.requests)
    # Open routes need nothing.
    assert requests.get(g.url("/prod/open")).status_code == 200


def test_scopes_per_route(gateway, origin, idp, tmp_path):
    g = gateway(config(idp, origin, tmp_path))
    wait_keys(g, idp)
    r = requests.get(g.url("/prod/admin"), headers=bearer(idp.token(scope="read write")))
    assert r.status_code == 403 and r.json() == {"message": "Forbidden"}
    assert requests.get(g.url("/prod/admin"), headers=bearer(idp.token(scope="read admin"))).status_code == 200
    assert requests.get(g.url("/prod/admin"), headers=bearer(idp.token(scp=["root"]))).status_code == 200
    assert requests.get(g.url("/prod/admin"), headers=bearer(idp.token())).status_code == 403


def test_claims_reach_the_access_log(gateway, origin, idp, tmp_path):
    g = gateway(config(idp, origin, tmp_path))
    wait_keys(g, idp)
    token = idp.token(sub="alice", **{"cognito:groups": ["admins", "ops"]})
    assert requests.get(g.url("/prod/me"), headers=bearer(token)).status_code == 200
    # Refused for its scopes, the caller is still known.
    assert requests.get(g.url("/prod/admin"), headers=bearer(token)).status_code == 403
    deadline = time.time() + 5
    lines = []
    while time.time() < deadline:
        log = tmp_path / "access.log"
        lines = [json.loads(l) for l in log.read_text().splitlines()] if log.exists() else []
        if sum(l["sub"] == "alice" for l in lines) >= 2:
            break
        time.sleep(0.1)
    assert [{k: l[k] for k in ("sub", "status", "groups")} for l in lines if l["sub"] == "alice"] == [
        {"sub": "alice", "status": "200", "groups": "[admins ops]"},
        {"sub": "alice", "status": "403", "groups": "[admins ops]"},
    ], lines


def test_key_rotation_and_the_issuer_going_down(gateway, origin, idp, tmp_path):
    g = gateway(config(idp, origin, tmp_path))
    wait_keys(g, idp)
    fetched = idp.hits["jwks"]
    # A token signed with a key published after the fetch: one refetch, then admitted.
    idp.add_key("k-new", "rsa")
    token = idp.token(kid="k-new")
    deadline = time.time() + 10
    while requests.get(g.url("/prod/me"), headers=bearer(token)).status_code != 200:
        assert time.time() < deadline, g.logs()
        time.sleep(0.05)
    assert idp.hits["jwks"] == fetched + 1
    # A flood of unknown kids costs at most one more fetch (rate-limited).
    forged = idp.token(kid="forged", key=idp.keys["k1"][1])
    for _ in range(50):
        assert requests.get(g.url("/prod/me"), headers=bearer(forged)).status_code == 401
    time.sleep(0.5)
    assert idp.hits["jwks"] <= fetched + 2

    # The issuer goes away: keys already fetched keep verifying new tokens.
    fresh = idp.token(kid="k2", sub="after-outage")
    idp.stop()
    assert requests.get(g.url("/prod/me"), headers=bearer(fresh)).status_code == 200


def test_explicit_jwks_uri_and_config_checks(gateway, origin, idp, tmp_path):
    g = gateway(config(idp, origin, tmp_path, jwks_uri=idp.issuer + "/keys"))
    wait_keys(g, idp)
    assert idp.hits["discovery"] == 0

    bad = config(idp, origin, tmp_path)
    bad["apis"][0]["authorizers"]["cognito"]["issuer"] = "http://idp.example.com"
    bad["apis"][0]["authorizers"]["cognito"]["audience"] = []
    bad["apis"][0]["routes"][0]["authorizer"] = "nope"
    bad["apis"][0]["routes"][2]["authorization_scopes"] = ["x"]
    r = g.admin("PUT", "/v1/config", json=bad)
    assert r.status_code == 400, r.text
    text = r.text
    assert "apis[0].authorizers.cognito.issuer" in text and "https://" in text
    assert "apis[0].authorizers.cognito.audience" in text
    assert "apis[0].routes[0].authorizer" in text and "nope" in text
    assert "apis[0].routes[2].authorization_scopes" in text
    # The old config keeps serving.
    assert requests.get(g.url("/prod/me"), headers=bearer(idp.token())).status_code == 200
