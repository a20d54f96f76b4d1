"""Mints the PyJWT test vectors in this folder (run once; the outputs are committed).

    python3 -m venv venv && venv/bin/pip install pyjwt cryptography && venv/bin/python mint.py

Writes <alg>.jwt (a token) and <alg>.jwks.json (the JWKS that verifies it) for RS256 (2048-bit
key), ES256 and EdDSA (Ed25519). exp is 2100-01-01 so the vectors stay valid.
"""
import json

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

CLAIMS = {
    "iss": "https://issuer.example.com",
    "aud": "turnpike-tests",
    "sub": "pyjwt-user",
    "exp": 4102444800,
    "iat": 1700000000,
    "scope": "read write",
    "groups": ["admin", "dev"],
}

keys = {
    "RS256": (rsa.generate_private_key(public_exponent=65537, key_size=2048), RSAAlgorithm),
    "ES256": (ec.generate_private_key(ec.SECP256R1()), ECAlgorithm),
    "EdDSA": (ed25519.Ed25519PrivateKey.generate(), OKPAlgorithm),
}
for alg, (key, algorithm) in keys.items():
    kid = "pyjwt-" + alg.lower()
    jwk = json.loads(algorithm.to_jwk(key.public_key()))
    jwk.update({"kid": kid, "use": "sig", "alg": alg})
    token = jwt.encode(CLAIMS, key, algorithm=alg, headers={"kid": kid})
    # Check with PyJWT itself before writing.
    jwt.decode(token, key.public_key(), algorithms=[alg], audience="turnpike-tests")
    with open(alg.lower() + ".jwt", "w") as f:
        f.write(token)
    with open(alg.lower() + ".jwks.json", "w") as f:
        json.dump({"keys": [jwk]}, f, indent=1)
        f.write("\n")
