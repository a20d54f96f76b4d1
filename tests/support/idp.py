"""A small OpenID Connect provider for the JWT authorizer tests: a discovery document and a
JSON Web Key Set served over HTTP on loopback, and tokens minted with PyJWT.

Keys are added and removed while it runs (key rotation); `stop()` takes it down (the
gateway's cached keys must keep working); every request is counted in `hits`.
"""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

ALGS = {
    "RS256": "rsa", "RS384": "rsa", "RS512": "rsa",
    "PS256": "rsa", "PS384": "rsa", "PS512": "rsa",
    "ES256": "p256", "ES384": "p384", "EdDSA": "ed25519",
}


def new_key(kind):
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "p384":
        return ec.generate_private_key(ec.SECP384R1())
    return ed25519.Ed25519PrivateKey.generate()


class Idp:
    def __init__(self, audience="my-app-client-id", max_age=3600):
        self.audience = audience
        self.max_age = max_age
        self.keys = {}  # kid -> (kind, private key)
        self.hits = {"discovery": 0, "jwks": 0}
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path == "/.well-known/openid-configuration":
                    idp.hits["discovery"] += 1
                    body = {"issuer": idp.issuer, "jwks_uri": idp.issuer + "/keys"}
                elif self.path == "/keys":
                    idp.hits["jwks"] += 1
                    body = idp.jwks()
                else:
                    self.send_response(404)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("cache-control", f"max-age={idp.max_age}")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def add_key(self, kid, kind="rsa"):
        self.keys[kid] = (kind, new_key(kind))

    def remove_key(self, kid):
        self.keys.pop(kid, None)

    def jwks(self):
        out = []
        for kid, (kind, key) in self.keys.items():
            alg = {"rsa": "RS256", "p256": "ES256", "p384": "ES384", "ed25519": "EdDSA"}[kind]
            jwk = json.loads(jwt.algorithms.get_default_algorithms()[alg].to_jwk(key.public_key()))
            jwk.update({"kid": kid, "use": "sig"})
            out.append(jwk)
        return {"keys": out}

    def token(self, kid="k1", alg=None, headers=None, key=None, **claims):
        """A signed token; claims default to a valid one for this issuer and audience."""
        kind, private = self.keys[kid] if kid in self.keys else ("rsa", key)
        alg = alg or {"rsa": "RS256", "p256": "ES256", "p384": "ES384", "ed25519": "EdDSA"}[kind]
        now = int(time.time())
        body = {"iss": self.issuer, "aud": self.audience, "sub": "user-1", "iat": now, "exp": now + 600}
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(body, key or private, algorithm=alg, headers={"kid": kid, **(headers or {})})

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
