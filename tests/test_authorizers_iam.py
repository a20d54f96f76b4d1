"""AWS_IAM routes: SigV4-signed requests (service execute-api) verified against credentials
configured in the gateway, as botocore and awscurl sign them: header signatures, presigned
URLs, signed and unsigned payloads; AWS's 403 bodies for the rest. And resource policies by
source address, believing X-Forwarded-For only from trusted proxies."""

import datetime
import json
import os
import shutil
import subprocess
import sys
import time

import pytest
import requests
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import require_tool

KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def config(origin, tmp_path, **api_extra):
    secret = tmp_path / "ci.secret"
    secret.write_text(SECRET + "\n")
    return {
        "gateway": {"throttle": "off", "region": "eu-west-1", "account_id": "123456789012"},
        "iam": {
            "credentials": [
                {"access_key_id": KEY_ID, "secret_file": str(secret), "principal": "arn:aws:iam::123456789012:user/ci"},
                {
                    "access_key_id": "AKIAREADONLYEXAMPLE1",
                    "secret_file": str(secret),
                    "principal": "reader",
                    "resources": ["arn:aws:execute-api:eu-west-1:123456789012:shop/prod/GET/*"],
                },
            ]
        },
        "apis": [
            {
                "name": "shop",
                "integrations": {"users": {"type": "http_proxy", "uri": f"http://{origin.addr}"}},
                "routes": [
                    {"key": "ANY /pets", "integration": "users", "authorization_type": "AWS_IAM"},
                    {"key": "GET /open", "integration": "users"},
                ],
                "stages": [
                    {
                        "name": "prod",
                        "access_log": {
                            "destination": str(tmp_path / "access.log"),
                            "format": "$context.requestId $context.identity.caller $context.identity.accessKey $context.status",
                        },
                    }
                ],
                **api_extra,
            }
        ],
    }


def signed(method, url, body=b"", key_id=KEY_ID, secret=SECRET, region="eu-west-1", headers=None, when=None):
    req = AWSRequest(method=method, url=url, data=body, headers=headers or {})
    auth = SigV4Auth(Credentials(key_id, secret), "execute-api", region)
    if when is not None:
        # botocore reads the clock through datetime; sign as of `when`.
        import botocore.auth as ba

        real = ba.datetime.datetime
        class Fixed(real):
            @classmethod
            def utcnow(cls):
                return when
        ba.datetime.datetime = Fixed
        try:
            auth.add_auth(req)
        finally:
            ba.datetime.datetime = real
    else:
        auth.add_auth(req)
    return req.prepare()


def send(prepared):
    return requests.request(prepared.method, prepared.url, headers=dict(prepared.headers), data=prepared.body, timeout=10)


def test_botocore_signed_requests_pass_and_tampered_ones_fail(gateway, origin, tmp_path):
    g = gateway(config(origin, tmp_path))
    url = g.url("/prod/pets?color=brown&name=a%20b")
    assert send(signed("GET", url)).status_code == 200
    body = json.dumps({"name": "rex"}).encode()
    assert send(signed("POST", g.url("/prod/pets"), body, headers={"content-type": "application/json"})).status_code == 200
    assert origin.requests[-1].body == body

    r = requests.get(g.url("/prod/pets"))
    assert r.status_code == 403 and r.json() == {"message": "Missing Authentication Token"}

    p = signed("POST", g.url("/prod/pets"), body)
    tampered = requests.post(p.url, headers=dict(p.headers), data=b'{"name":"evil"}')
    assert tampered.status_code == 403
    assert tampered.json()["message"].startswith("The request signature we calculated does not match")

    p = signed("GET", g.url("/prod/pets?color=brown"))
    r = requests.get(g.url("/prod/pets?color=black"), headers=dict(p.headers))
    assert r.status_code == 403

    r = send(signed("GET", url, key_id="AKIAUNKNOWNEXAMPLE12"))
    assert r.status_code == 403
    assert r.json() == {"message": "The security token included in the request is invalid."}

    r = send(signed("GET", url, secret="wrong-secret"))
    assert r.status_code == 403

    old = datetime.datetime.utcnow() - datetime.timedelta(minutes=10)
    r = send(signed("GET", url, when=old))
    assert r.status_code == 403
    assert r.json()["message"].startswith("Signature expired")

    r = send(signed("GET", url, region="us-east-1"))
    assert r.status_code == 403

    assert len([q for q in origin.requests if q.target.startswith("/pets")]) == 2


def test_presigned_urls_unsigned_payloads_and_the_caller(gateway, origin, tmp_path):
    g = gateway(config(origin, tmp_path))
    req = AWSRequest(method="GET", url=g.url("/prod/pets?limit=5"))
    SigV4QueryAuth(Credentials(KEY_ID, SECRET), "execute-api", "eu-west-1", expires=60).add_auth(req)
    r = requests.get(req.prepare().url)
    assert r.status_code == 200, r.text

    p = signed("PUT", g.url("/prod/pets"), b"streamed", headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
    assert send(p).status_code == 200

    # A principal limited to GET routes.
    assert send(signed("GET", g.url("/prod/pets"), key_id="AKIAREADONLYEXAMPLE1")).status_code == 200
    r = send(signed("DELETE", g.url("/prod/pets"), key_id="AKIAREADONLYEXAMPLE1"))
    assert r.status_code == 403
    assert "reader is not authorized to perform: execute-api:Invoke" in r.json()["message"]

    deadline = time.time() + 5
    text = ""
    while time.time() < deadline:
        text = (tmp_path / "access.log").read_text() if (tmp_path / "access.log").exists() else ""
        if f"arn:aws:iam::123456789012:user/ci {KEY_ID} 200" in text:
            break
        time.sleep(0.1)
    assert f"arn:aws:iam::123456789012:user/ci {KEY_ID} 200" in text, text


def test_awscurl_signs_requests_the_gateway_accepts(gateway, origin, tmp_path):
    awscurl = shutil.which("awscurl") or os.path.join(os.path.dirname(sys.executable), "awscurl")
    require_tool(os.path.exists(awscurl), "awscurl")
    g = gateway(config(origin, tmp_path))
    env = dict(os.environ, AWS_ACCESS_KEY_ID=KEY_ID, AWS_SECRET_ACCESS_KEY=SECRET)
    env.pop("AWS_SESSION_TOKEN", None)
    out = subprocess.run(
        [awscurl, "--service", "execute-api", "--region", "eu-west-1", "-X", "POST", "-d", '{"a":1}',
         g.url("/prod/pets")],
        capture_output=True, text=True, env=env, timeout=30,
    )
    assert out.returncode == 0, out.stderr + out.stdout
    assert origin.requests[-1].body == b'{"a":1}'


def test_resource_policy_by_source_address_behind_trusted_proxies(gateway, origin, tmp_path):
    doc = config(origin, tmp_path, resource_policy={"allow": ["10.0.0.0/8", "2001:db8::/32"], "deny": ["10.9.0.0/16"]})
    doc["gateway"]["trusted_proxies"] = ["127.0.0.1/32"]
    g = gateway(doc)
    open_ = g.url("/prod/open")
    r = requests.get(open_)
    assert r.status_code == 403
    assert r.json() == {
        "message": "User: anonymous is not authorized to perform: execute-api:Invoke on resource: "
        "arn:aws:execute-api:eu-west-1:123456789012:shop/prod/GET/open"
    }
    assert requests.get(open_, headers={"X-Forwarded-For": "10.1.2.3"}).status_code == 200
    assert requests.get(open_, headers={"X-Forwarded-For": "2001:db8::7"}).status_code == 200
    # The client can prepend anything; the proxy's own entry (the rightmost) decides.
    assert requests.get(open_, headers={"X-Forwarded-For": "10.1.2.3, 192.0.2.1"}).status_code == 403
    assert requests.get(open_, headers={"X-Forwarded-For": "10.9.1.1"}).status_code == 403
    # The policy runs before any authorizer: a denied address never reaches SigV4.
    r = send(signed("GET", g.url("/prod/pets"), headers={"X-Forwarded-For": "192.0.2.1"}))
    assert r.status_code == 403 and r.json()["message"].startswith("User: anonymous")
    assert not [q for q in origin.requests if q.header("x-forwarded-for") and "10.9.1.1" in q.header("x-forwarded-for")[0]]

    # Without trusted proxies, X-Forwarded-For is not believed.
    doc2 = config(origin, tmp_path, resource_policy={"allow": ["10.0.0.0/8"]})
    g2 = gateway(doc2)
    assert requests.get(g2.url("/prod/open"), headers={"X-Forwarded-For": "10.1.2.3"}).status_code == 403
