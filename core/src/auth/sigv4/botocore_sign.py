"""Prints requests signed by botocore for execute-api, for the vectors in tests.rs.

    python3 -m venv venv && venv/bin/pip install botocore && venv/bin/python botocore_sign.py

Signs at the current time (tests.rs records the X-Amz-Date it got: BOTOCORE_NOW). The
vectors in tests.rs came from botocore 1.44.8.
"""
import json

from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

CREDS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
HOST = "https://abc123.execute-api.us-east-1.amazonaws.com"
CASES = [
    ("GET", HOST + "/prod/pets/a b", {}, b""),
    ("GET", HOST + "/prod/pets/a%20b", {}, b""),
    ("GET", HOST + "/prod/pets/%7Euser", {}, b""),
    ("GET", HOST + "/prod/pets?type=dog&page=2&q=a%20b", {}, b""),
    ("POST", HOST + "/prod/pets", {"Content-Type": "application/json"},
     b'{"type":"dog","price":249.99}'),
]

for method, url, headers, body in CASES:
    for kind in ("header", "query"):
        req = AWSRequest(method=method, url=url, headers=dict(headers), data=body)
        if kind == "header":
            SigV4Auth(CREDS, "execute-api", "us-east-1").add_auth(req)
        else:
            SigV4QueryAuth(CREDS, "execute-api", "us-east-1", expires=3600).add_auth(req)
        p = req.prepare()
        print(json.dumps({"kind": kind, "method": method, "url": p.url,
                          "headers": dict(p.headers.items()), "body": body.decode()}))
