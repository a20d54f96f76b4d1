"""HTTPS listeners and HTTPS backends, against the real binary with real TLS clients.

The certificate chosen by SNI (exact name, one-label wildcard, default, no SNI), key types,
security policies as a scanner (sslyze) sees them, mutual TLS and the client certificate in
the access log, plain HTTP and garbage on the TLS port, session resumption, certificate
rotation under load, TLS to backends, and what `turnpike check` refuses. Certificates come from
tests/support/pki.py; the handshake counters from the admin `/metrics`.
"""

import hashlib
import json
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time

import pytest
import requests

import tlsscan
from conftest import BIN, Gateway, free_port, one_response, parse_responses, require_tool
from origin import Origin, pattern
from pki import Pki, openssl_time

# -- helpers ---------------------------------------------------------------------------------


def cert_entry(name, info):
    return {"name": name, "certificate_chain": str(info.chain_path), "private_key": str(info.key_path)}


def mock_api(name="a", body="ok", default=True, stages=None):
    api = {
        "name": name,
        "integrations": {"m": {"type": "mock", "status": 200, "body": body}},
        "routes": [{"key": "$default", "integration": "m"}],
        "stages": stages or [{"name": "$default"}],
    }
    if default:
        api["default"] = True
    return api


def mapped(name, api="a", **tls):
    """A domain mapping `name` to `api`'s $default stage, with TLS settings (certificate,
    security_policy, mutual_tls)."""
    return {"name": name, "mappings": [{"api": api, "stage": "$default"}], **tls}


def client_context(pki=None, cert=None, version=None, ca=None):
    """A client context: trusts `ca` (default the test root; nothing when `pki` is None: no
    verification), does not check the name (tests compare fingerprints), presents `cert`,
    speaks only `version` if given."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    if pki is None and ca is None:
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx.load_verify_locations(ca or pki.root.cert_path)
    if cert is not None:
        ctx.load_cert_chain(cert.chain_path, cert.key_path)
    if version is not None:
        ctx.minimum_version = ctx.maximum_version = version
    return ctx


class Exchange:
    """One HTTPS request on its own connection: the response and what the handshake showed."""

    def __init__(self, response, tls):
        self.response = response
        self.status = response.status
        self.body = response.body
        der = tls.getpeercert(binary_form=True)
        self.fingerprint = hashlib.sha256(der).hexdigest()
        self.version = tls.version()
        self.cipher = tls.cipher()[0]
        self.session = tls.session
        self.session_reused = tls.session_reused


def read_tls(s):
    """Reads until the peer closes; TLS errors (an alert) propagate."""
    out = b""
    while True:
        try:
            chunk = s.recv(65536)
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            break
        if not chunk:
            break
        out += chunk
    return out


def tls_connect(port, sni, ctx, session=None, timeout=5):
    raw_sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        return ctx.wrap_socket(raw_sock, server_hostname=sni, session=session)
    except BaseException:
        raw_sock.close()
        raise


def https(port, sni, ctx, path="/", host=None, session=None):
    """GET `path` over a new TLS connection with SNI `sni` (None: none), Connection: close."""
    with tls_connect(port, sni, ctx, session) as s:
        host = host or sni or "127.0.0.1"
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        return Exchange(one_response(read_tls(s)), s)


def keep_alive_get(s, f, host, path="/"):
    """One request on an open TLS connection `s` (with `f = s.makefile("rb")`): (status line,
    body). The connection stays open."""
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    status = f.readline()
    length = 0
    while (line := f.readline()) not in (b"\r\n", b""):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return status, f.read(length)


def handshakes(g):
    """The admin's turnpike_tls_handshakes_total, by result."""
    text = g.admin("GET", "/metrics").text
    found = re.findall(r'^turnpike_tls_handshakes_total\{result="(\w+)"\} (\d+)$', text, re.M)
    assert found, text
    return {k: int(v) for k, v in found}


def wait_handshakes(g, expected, timeout=5.0):
    """The counters once every `expected` result has its value (the gateway counts a failure
    as it closes, which a client may see first), or as they are after `timeout`."""
    deadline = time.time() + timeout
    while True:
        got = handshakes(g)
        if all(got.get(k) == v for k, v in expected.items()) or time.time() > deadline:
            return got
        time.sleep(0.05)


def settled_handshakes(g):
    """The counters once two readings a moment apart agree (handshakes of earlier tests on a
    shared gateway are all counted)."""
    last = handshakes(g)
    for _ in range(50):
        time.sleep(0.1)
        now = handshakes(g)
        if now == last:
            return now
        last = now
    return last


def closed_baseline(g):
    """The `closed` count once the start-up probe of the TLS port (a connect and close, see
    conftest's wait_port) is counted."""
    return wait_handshakes(g, {"closed": 1})["closed"]


def wait_for(pred, timeout=5.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def check(tmp_path, config):
    """`turnpike check --config FILE` on `config`: (exit code, stderr)."""
    path = tmp_path / "check.json"
    path.write_text(json.dumps(config))
    r = subprocess.run([BIN, "check", "--config", str(path)], capture_output=True, text=True, timeout=30)
    return r.returncode, r.stderr


def curl(*args):
    require_tool(shutil.which("curl"), "curl")
    r = subprocess.run(
        ["curl", "-sS", "--max-time", "10", *map(str, args)], capture_output=True, text=True, timeout=20
    )
    return r.returncode, r.stdout, r.stderr


def refused(fn):
    """The error `fn` fails with as a refused handshake or connection does (an alert, a reset,
    EOF), or None if it succeeds."""
    try:
        fn()
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError, ConnectionAbortedError) as e:
        return e
    return None


def shared_site(tmp_path_factory, name, make_config):
    """A TLS gateway shared by parametrized cases (they compare certificates, or counters
    by difference): yields (gateway, pki, certs) for make_config(pki) -> (config, certs)."""
    where = tmp_path_factory.mktemp(name)
    pki = Pki(where / "pki")
    config, certs = make_config(pki)
    g = Gateway(config, where, tls=True)
    yield g, pki, certs
    g.stop()


# -- 1. the certificate by SNI ----------------------------------------------------------------


def sni_config(pki):
    certs = {
        "default": pki.server_cert(["default.test"], ips=["127.0.0.1"], name="default"),
        "api": pki.server_cert(["api.example.com"], name="api"),
        "shop": pki.server_cert(["shop.example.org"], key_type="rsa2048", name="shop"),
        "wild": pki.server_cert(["*.example.net"], name="wild"),
        "vip": pki.server_cert(["vip.example.net"], name="vip"),
        "eu": pki.server_cert(["*.eu.example.net"], name="eu"),
    }
    config = {
        "gateway": {"tls": {"certificate": "default"}},
        "certificates": [cert_entry(k, v) for k, v in certs.items()],
        "domains": [
            mapped("api.example.com", certificate="api"),
            mapped("shop.example.org", certificate="shop"),
            mapped("*.example.net", certificate="wild"),
            mapped("vip.example.net", certificate="vip"),
            mapped("*.eu.example.net", certificate="eu"),
        ],
        "apis": [mock_api()],
    }
    return config, certs


@pytest.fixture(scope="module")
def sni_site(tmp_path_factory):
    yield from shared_site(tmp_path_factory, "sni", sni_config)


@pytest.mark.parametrize(
    "sni, expected",
    [
        ("api.example.com", "api"),
        ("API.Example.COM", "api"),
        ("shop.example.org", "shop"),
        ("tenant.example.net", "wild"),
        ("vip.example.net", "vip"),  # the exact name beats the wildcard
        ("x.eu.example.net", "eu"),  # the longer wildcard
        # A wildcard domain covers every depth, for SNI as for Host routing (its certificate
        # covers one label, so a client checking the name refuses it; this one checks the chain)
        ("a.b.example.net", "wild"),
        ("example.net", "default"),
        ("unknown.test", "default"),
        (None, "default"),  # no SNI at all
        ("127.0.0.1", "default"),  # an IP address is not sent as SNI
    ],
)
def test_sni_picks_the_certificate_and_the_request_is_served(sni_site, sni, expected):
    g, pki, certs = sni_site
    ex = https(g.tls_port, sni, client_context(pki))
    assert ex.fingerprint == certs[expected].sha256_fingerprint, (sni, expected)
    assert (ex.status, ex.body) == (200, b"ok")


@pytest.mark.parametrize("name", ["api.example.com", "shop.example.org", "tenant.example.net", "vip.example.net"])
def test_curl_verifies_each_domain_by_name(sni_site, name):
    g, pki, _ = sni_site
    code, out, err = curl(
        "--cacert", pki.root.cert_path, "--resolve", f"{name}:{g.tls_port}:127.0.0.1", f"https://{name}:{g.tls_port}/"
    )
    assert (code, out) == (0, "ok"), err


# -- 2. no default certificate ----------------------------------------------------------------


def test_an_unknown_name_without_a_default_fails_the_handshake_and_others_are_served(gateway, pki):
    api_cert = pki.server_cert(["api.example.com"])
    g = gateway(
        {
            "certificates": [cert_entry("api", api_cert)],
            "domains": [mapped("api.example.com", certificate="api")],
            "apis": [mock_api()],
        },
        tls=True,
    )
    ctx = client_context(pki)
    keep = tls_connect(g.tls_port, "api.example.com", ctx)  # open across the failures
    for sni in ("unknown.test", "other.example.com", None):
        e = refused(lambda: https(g.tls_port, sni, ctx))
        assert e is not None, sni
        if sni:
            assert "UNRECOGNIZED_NAME" in str(e), f"{sni}: the unrecognized_name alert, got {e!r}"
    assert https(g.tls_port, "api.example.com", ctx).status == 200
    keep.sendall(b"GET / HTTP/1.1\r\nHost: api.example.com\r\nConnection: close\r\n\r\n")
    assert one_response(read_tls(keep)).status == 200
    keep.close()
    got = wait_handshakes(g, {"unknown_name": 3, "full": 2})
    assert (got["unknown_name"], got["full"]) == (3, 2), got


# -- 3. key types -----------------------------------------------------------------------------

KEY_TYPES = ["ec256", "ec384", "rsa2048", "ed25519"]


def keys_config(pki):
    certs = {k: pki.server_cert([f"{k}.keys.test"], key_type=k, name=k) for k in KEY_TYPES}
    config = {
        "gateway": {"tls": {"certificate": "ec256"}},
        "certificates": [cert_entry(k, v) for k, v in certs.items()],
        "domains": [mapped(f"{k}.keys.test", certificate=k) for k in KEY_TYPES],
        "apis": [mock_api()],
    }
    return config, certs


@pytest.fixture(scope="module")
def keys_site(tmp_path_factory):
    yield from shared_site(tmp_path_factory, "keys", keys_config)


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3], ids=["tls1.2", "tls1.3"])
@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_each_key_type_serves_over_each_version(keys_site, key_type, version):
    g, pki, certs = keys_site
    ex = https(g.tls_port, f"{key_type}.keys.test", client_context(pki, version=version))
    assert ex.fingerprint == certs[key_type].sha256_fingerprint
    assert (ex.status, ex.body) == (200, b"ok")
    assert ex.version == {ssl.TLSVersion.TLSv1_2: "TLSv1.2", ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]
    if version == ssl.TLSVersion.TLSv1_2:
        # OpenSSL names: the suite's authentication follows the key (EdDSA uses the ECDSA suites)
        kind = "RSA" if key_type == "rsa2048" else "ECDSA"
        assert ex.cipher.startswith(f"ECDHE-{kind}-"), ex.cipher


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_curl_with_each_key_type(keys_site, key_type):
    g, pki, _ = keys_site
    name = f"{key_type}.keys.test"
    code, out, err = curl(
        "--cacert", pki.root.cert_path, "--resolve", f"{name}:{g.tls_port}:127.0.0.1", f"https://{name}:{g.tls_port}/"
    )
    assert (code, out) == (0, "ok"), err


# -- 4. security policies ---------------------------------------------------------------------

TLS13_SUITES = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}
TLS12_SUITES = {
    kind: {
        f"TLS_ECDHE_{kind}_WITH_AES_128_GCM_SHA256",
        f"TLS_ECDHE_{kind}_WITH_AES_256_GCM_SHA384",
        f"TLS_ECDHE_{kind}_WITH_CHACHA20_POLY1305_SHA256",
    }
    for kind in ("ECDSA", "RSA")
}


def policy_config(pki):
    ecdsa = pki.server_cert(["ecdsa.policy.test"], name="ecdsa")
    rsa = pki.server_cert(["rsa.policy.test"], key_type="rsa2048", name="rsa")
    only13 = pki.server_cert(["tls13.policy.test"], name="tls13")
    config = {
        "gateway": {"tls": {"certificate": "ecdsa", "security_policy": "TLS_1_2"}},
        "certificates": [cert_entry("ecdsa", ecdsa), cert_entry("rsa", rsa), cert_entry("tls13", only13)],
        "domains": [
            mapped("rsa.policy.test", certificate="rsa", security_policy="TLS_1_2"),
            mapped("tls13.policy.test", certificate="tls13", security_policy="SecurityPolicy_TLS13_1_3_2025_09"),
        ],
        "apis": [mock_api()],
    }
    return config, None


@pytest.fixture(scope="module")
def policy_site(tmp_path_factory):
    yield from shared_site(tmp_path_factory, "policy", policy_config)


@pytest.mark.parametrize(
    "sni, expected",
    [
        ("ecdsa.policy.test", {"TLSv1.2": TLS12_SUITES["ECDSA"], "TLSv1.3": TLS13_SUITES}),
        ("rsa.policy.test", {"TLSv1.2": TLS12_SUITES["RSA"], "TLSv1.3": TLS13_SUITES}),
        ("tls13.policy.test", {"TLSv1.3": TLS13_SUITES}),
    ],
    ids=["TLS_1_2-ecdsa", "TLS_1_2-rsa", "TLS13_1_3"],
)
def test_policy_offers_exactly_its_versions_and_suites(policy_site, sni, expected):
    require_tool(tlsscan.available(), "sslyze")
    g, _, _ = policy_site
    result = tlsscan.scan("127.0.0.1", g.tls_port, sni)
    assert result.by_protocol == expected


def test_a_tls_1_2_client_is_refused_by_the_tls_1_3_only_domain(policy_site):
    g, _, _ = policy_site
    before = settled_handshakes(g)["refused"]
    only12 = client_context(version=ssl.TLSVersion.TLSv1_2)
    with pytest.raises(ssl.SSLError) as e:
        tls_connect(g.tls_port, "tls13.policy.test", only12)
    assert e.value.reason == "TLSV1_ALERT_PROTOCOL_VERSION", e.value
    assert https(g.tls_port, "rsa.policy.test", only12).status == 200, "the same client, another domain"
    got = wait_handshakes(g, {"refused": before + 1})
    assert got["refused"] == before + 1, got


@pytest.mark.parametrize("where", ["gateway", "domain"])
def test_check_refuses_the_tls_1_0_policy(tmp_path, where):
    pki = Pki(tmp_path / "pki")
    cert = pki.server_cert(["api.example.com"])
    config = {
        "gateway": {"listen": ["https://127.0.0.1:8443"], "tls": {"certificate": "main"}},
        "certificates": [cert_entry("main", cert)],
        "domains": [mapped("api.example.com", certificate="main")],
        "apis": [mock_api()],
    }
    target = config["gateway"]["tls"] if where == "gateway" else config["domains"][0]
    target["security_policy"] = "TLS_1_0"
    code, err = check(tmp_path, config)
    assert code == 1, err
    path = "gateway.tls.security_policy" if where == "gateway" else "domains[0].security_policy"
    assert re.search(rf"{re.escape(path)}: TLS_1_0 needs TLS 1.0 and 1.1, which rustls does not implement", err), err


# -- 5. mutual TLS ----------------------------------------------------------------------------

CLIENT_CERT_LOG = (
    '{"id":"$context.requestId","cn":"$context.identity.clientCert.subjectDN",'
    '"issuer":"$context.identity.clientCert.issuerDN",'
    '"serial":"$context.identity.clientCert.serialNumber","nb":"$context.identity.clientCert.validity.notBefore",'
    '"na":"$context.identity.clientCert.validity.notAfter","domain":"$context.domainName"}'
)


def mtls_config(pki, log):
    server = pki.server_cert(["mtls.example.com", "open.example.com"], name="server")
    return {
        "certificates": [cert_entry("server", server)],
        "domains": [
            mapped(
                "mtls.example.com",
                api="secure",
                certificate="server",
                mutual_tls={"truststore": str(pki.truststore(pki.client_ca))},
            ),
            mapped("open.example.com", api="open", certificate="server"),
        ],
        "apis": [
            mock_api(
                "secure",
                body="secure",
                default=False,
                stages=[{"name": "$default", "access_log": {"destination": str(log), "format": CLIENT_CERT_LOG}}],
            ),
            mock_api("open", body="open", default=False),
        ],
    }


def log_lines(path, n, timeout=5.0):
    def read():
        return [json.loads(line) for line in path.read_text().splitlines() if line] if path.exists() else []

    wait_for(lambda: len(read()) >= n, timeout)
    return read()


@pytest.mark.parametrize(
    "serial, via_intermediate",
    [(0x0A1B2C3D4E, False), (None, False), (0x7F0102, True)],
    ids=["short-serial", "random-serial", "via-intermediate"],
)
def test_mtls_client_certificate_reaches_the_access_log(gateway, pki, tmp_path, serial, via_intermediate):
    log = tmp_path / "access.log"
    g = gateway(mtls_config(pki, log), tls=True)
    client = pki.client_cert(
        "client-1", o="Example Corp", ou="Payments", serial=serial, via_intermediate=via_intermediate
    )
    ex = https(g.tls_port, "mtls.example.com", client_context(pki, cert=client))
    assert (ex.status, ex.body) == (200, b"secure")
    (line,) = log_lines(log, 1)
    del line["id"]
    assert line == {
        "cn": client.subject_dn,
        "issuer": client.issuer_dn,
        "serial": client.serial_colon_hex.upper(),
        "nb": openssl_time(client.not_before),
        "na": openssl_time(client.not_after),
        "domain": "mtls.example.com",
    }
    assert line["cn"] == "CN=client-1,OU=Payments,O=Example Corp"
    if via_intermediate:
        assert line["issuer"] == "CN=Turnpike Test Client Intermediate CA,O=Turnpike Tests"



def test_mtls_serial_with_the_high_bit_set_is_printed_without_the_sign_byte(gateway, pki, tmp_path):
    log = tmp_path / "access.log"
    g = gateway(mtls_config(pki, log), tls=True)
    client = pki.client_cert("client-hi", serial=0x80FF01)
    assert https(g.tls_port, "mtls.example.com", client_context(pki, cert=client)).status == 200
    (line,) = log_lines(log, 1)
    assert line["serial"] == "80:FF:01" == client.serial_colon_hex.upper()


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3], ids=["tls1.2", "tls1.3"])
@pytest.mark.parametrize("who", ["no-certificate", "untrusted-ca", "server-ca"])
def test_mtls_refuses_a_client_without_a_trusted_certificate(gateway, pki, tmp_path, who, version):
    log = tmp_path / "access.log"
    g = gateway(mtls_config(pki, log), tls=True)
    cert = {
        "no-certificate": None,
        "untrusted-ca": pki.untrusted_client_cert("intruder"),
        # a certificate from the server-side root: a CA, but not in the truststore
        "server-ca": pki.server_cert(["intruder.test"]),
    }[who]
    ctx = client_context(pki, cert=cert, version=version)
    alert = {
        "no-certificate": "TLSV13_ALERT_CERTIFICATE_REQUIRED",
        "untrusted-ca": "TLSV1_ALERT_UNKNOWN_CA",
        # webpki judges the certificate's purpose (serverAuth only) before its issuer
        "server-ca": "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE",
    }[who]
    if version == ssl.TLSVersion.TLSv1_2:
        with pytest.raises(ssl.SSLError) as e:
            tls_connect(g.tls_port, "mtls.example.com", ctx)
    else:
        # the client's side of a TLS 1.3 handshake ends before the server has judged its
        # certificate: the refusal (an alert) arrives on the first read
        with tls_connect(g.tls_port, "mtls.example.com", ctx) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: mtls.example.com\r\n\r\n")
            with pytest.raises(ssl.SSLError) as e:
                read_tls(s)
    assert e.value.reason == alert, e.value
    got = wait_handshakes(g, {"client_certificate": 1})
    assert got["client_certificate"] == 1 and got["full"] == 0, got
    # the gateway serves on: a good client right after
    good = pki.client_cert("client-ok")
    assert https(g.tls_port, "mtls.example.com", client_context(pki, cert=good)).status == 200
    assert [line["cn"] for line in log_lines(log, 1)] == [good.subject_dn]


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3], ids=["tls1.2", "tls1.3"])
def test_a_resumed_mtls_session_keeps_the_client_certificate(gateway, pki, tmp_path, version):
    log = tmp_path / "access.log"
    g = gateway(mtls_config(pki, log), tls=True)
    client = pki.client_cert("client-1")
    ctx = client_context(pki, cert=client, version=version)
    first = https(g.tls_port, "mtls.example.com", ctx)
    second = https(g.tls_port, "mtls.example.com", ctx, session=first.session)
    assert (first.status, second.status, second.session_reused) == (200, 200, True)
    assert [line["cn"] for line in log_lines(log, 2)] == [client.subject_dn] * 2



@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3], ids=["tls1.2", "tls1.3"])
def test_a_session_from_before_mtls_was_enabled_does_not_skip_it(gateway, pki, tmp_path, version):
    """A client resumes a session it got while the domain had no mutual TLS: once the config
    requires a client certificate, the resumption must not stand in for one."""
    log = tmp_path / "access.log"
    config = mtls_config(pki, log)
    mutual_tls = config["domains"][0].pop("mutual_tls")
    g = gateway(config, tls=True)
    ctx = client_context(pki, version=version)
    before = https(g.tls_port, "mtls.example.com", ctx)
    assert (before.status, before.body) == (200, b"secure")
    doc = g.admin("GET", "/v1/config").json()
    doc["domains"][0]["mutual_tls"] = mutual_tls
    assert g.admin("PUT", "/v1/config", json=doc).status_code == 200
    e = refused(lambda: https(g.tls_port, "mtls.example.com", ctx, session=before.session))
    assert e is not None, "served without a client certificate"


def test_a_domain_without_mtls_on_the_same_listener_asks_for_no_certificate(gateway, pki, tmp_path):
    require_tool(tlsscan.available(), "sslyze")
    g = gateway(mtls_config(pki, tmp_path / "access.log"), tls=True)
    only13 = ("TLSv1.3",)
    assert tlsscan.scan("127.0.0.1", g.tls_port, "open.example.com", protocols=only13).client_auth == "DISABLED"
    assert tlsscan.scan("127.0.0.1", g.tls_port, "mtls.example.com", protocols=only13).client_auth == "REQUIRED"
    ex = https(g.tls_port, "open.example.com", client_context(pki))
    assert (ex.status, ex.body) == (200, b"open")



def test_mtls_is_not_bypassed_by_a_host_header_for_another_sni(gateway, pki, tmp_path):
    """A client without a certificate completes a handshake for the open domain, then names
    the mutual-TLS domain in Host: it must not reach that domain's API (nginx answers 421)."""
    log = tmp_path / "access.log"
    g = gateway(mtls_config(pki, log), tls=True)
    ex = https(g.tls_port, "open.example.com", client_context(pki), host="mtls.example.com")
    assert ex.body != b"secure"
    assert ex.status in (421, 403), ex.response


# -- 6. plain HTTP and garbage on the TLS port ------------------------------------------------


@pytest.fixture
def site(gateway, pki):
    """A TLS gateway with one default certificate and a mock API."""
    cert = pki.server_cert(["site.test"], ips=["127.0.0.1"])
    g = gateway(
        {"gateway": {"tls": {"certificate": "main"}}, "certificates": [cert_entry("main", cert)], "apis": [mock_api()]},
        tls=True,
    )
    return g, cert


def test_plain_http_on_the_tls_port_gets_a_400_and_garbage_is_closed(site, pki):
    g, _ = site
    ctx = client_context(pki)
    keep = tls_connect(g.tls_port, "site.test", ctx)  # a keep-alive connection across it all
    kf = keep.makefile("rb")
    status, _ = keep_alive_get(keep, kf, "site.test")
    assert status.startswith(b"HTTP/1.1 200"), status

    with socket.create_connection(("127.0.0.1", g.tls_port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: site.test\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    r = one_response(data)
    assert r.status == 400
    assert r.header("Connection") == "close"
    assert r.json() == {"message": "The plain HTTP request was sent to HTTPS port"}

    def closed_silently(data):
        with socket.create_connection(("127.0.0.1", g.tls_port), timeout=5) as s:
            s.sendall(data)
            try:
                return s.recv(65536)
            except ConnectionResetError:
                return b""

    assert closed_silently(b"\x00\x01\x02garbage\r\n\r\n" * 10) == b""
    # a TLS record header, then a ClientHello that is not one: refused with an alert, or closed
    answer = closed_silently(b"\x16\x03\x01\x00\x08\x01\x00\x00\x04junk")
    assert answer == b"" or answer[:1] == b"\x15", answer

    status, body = keep_alive_get(keep, kf, "site.test")
    assert (status.startswith(b"HTTP/1.1 200"), body) == (True, b"ok"), status
    kf.close()
    keep.close()
    assert https(g.tls_port, "site.test", ctx).status == 200
    got = wait_handshakes(g, {"plain_http": 1, "not_tls": 1, "refused": 1, "full": 2})
    assert (got["plain_http"], got["not_tls"], got["refused"], got["full"]) == (1, 1, 1, 2), got


def test_a_client_that_connects_and_leaves_is_counted_closed(site):
    g, _ = site
    before = closed_baseline(g)
    socket.create_connection(("127.0.0.1", g.tls_port)).close()
    with socket.create_connection(("127.0.0.1", g.tls_port)) as s:
        s.sendall(b"\x16\x03\x01")  # half a record header, then gone
    got = wait_handshakes(g, {"closed": before + 2})
    assert got["closed"] == before + 2, got


def test_a_stalled_handshake_is_closed_at_the_header_timeout(gateway, pki):
    cert = pki.server_cert(["site.test"])
    g = gateway(
        {
            "gateway": {"header_timeout_ms": 300, "tls": {"certificate": "main"}},
            "certificates": [cert_entry("main", cert)],
            "apis": [mock_api()],
        },
        tls=True,
    )
    before = closed_baseline(g)
    with socket.create_connection(("127.0.0.1", g.tls_port), timeout=5) as s:
        s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # the start of a ClientHello
        start = time.time()
        assert s.recv(100) == b""
        assert time.time() - start < 3
    assert wait_handshakes(g, {"closed": before + 1})["closed"] == before + 1
    assert https(g.tls_port, "site.test", client_context(pki)).status == 200


# -- 7. session resumption --------------------------------------------------------------------


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3], ids=["tls1.2", "tls1.3"])
def test_a_second_connection_resumes_the_session(site, pki, version):
    g, cert = site
    ctx = client_context(pki, version=version)
    first = https(g.tls_port, "site.test", ctx)
    assert first.status == 200 and not first.session_reused
    assert first.session is not None
    second = https(g.tls_port, "site.test", ctx, session=first.session)
    assert second.status == 200
    assert second.session_reused
    assert second.fingerprint == cert.sha256_fingerprint  # Python reports the resumed session's peer
    got = wait_handshakes(g, {"full": 1, "resumed": 1})
    assert (got["full"], got["resumed"]) == (1, 1), got


# -- 8. certificate rotation ------------------------------------------------------------------


@pytest.mark.parametrize("how", ["new-files", "same-files-replaced"])
def test_rotation_under_load_loses_no_request(gateway, pki, tmp_path, how):
    old = pki.server_cert(["site.test"], name="old")
    new = pki.server_cert(["site.test"], name="new")
    g = gateway(
        {
            "gateway": {"workers": 2, "tls": {"certificate": "main"}},
            "certificates": [cert_entry("main", old)],
            "apis": [mock_api()],
        },
        tls=True,
    )
    ctx = client_context(pki)
    stop = threading.Event()
    failures, seen = [], []  # seen: (time, fingerprint) of each new connection
    kept = {"requests": 0, "fingerprint": None}

    def new_connections():
        while not stop.is_set():
            try:
                ex = https(g.tls_port, "site.test", ctx)
                assert ex.status == 200, ex.response
                seen.append((time.time(), ex.fingerprint))
            except Exception as e:  # noqa: BLE001 -- every failure counts
                failures.append(f"new connection: {e!r}")

    def keep_alive():
        try:
            with tls_connect(g.tls_port, "site.test", ctx) as s:
                kept["fingerprint"] = hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest()
                f = s.makefile("rb")
                while not stop.is_set():
                    status, body = keep_alive_get(s, f, "site.test")
                    assert body == b"ok" and status.startswith(b"HTTP/1.1 200"), status
                    kept["requests"] += 1
                    time.sleep(0.01)
        except Exception as e:  # noqa: BLE001
            failures.append(f"keep-alive: {e!r}")

    threads = [threading.Thread(target=new_connections) for _ in range(2)] + [threading.Thread(target=keep_alive)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.0)
        doc = g.admin("GET", "/v1/config").json()
        if how == "new-files":
            doc["certificates"] = [cert_entry("main", new)]
        else:
            shutil.copyfile(new.chain_path, old.chain_path)
            shutil.copyfile(new.key_path, old.key_path)
        r = g.admin("PUT", "/v1/config", json=doc)
        applied = time.time()
        assert r.status_code == 200, r.text
        before = kept["requests"]
        time.sleep(1.5)
        assert kept["requests"] > before, "the keep-alive connection made no request after the change"
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=10)
    assert failures == [], failures[:5]
    assert kept["fingerprint"] == old.sha256_fingerprint
    before = [fp for t, fp in seen if t < applied - 0.2]
    after = [fp for t, fp in seen if t > applied + 0.2]
    assert before and set(before) == {old.sha256_fingerprint}
    assert len(after) > 10 and set(after) == {new.sha256_fingerprint}, (len(after), set(after))
    assert https(g.tls_port, "site.test", client_context(pki)).fingerprint == new.sha256_fingerprint


# -- 9. HTTPS backends ------------------------------------------------------------------------


def backend_api(origin, **tls_config):
    return {
        "name": "a",
        "default": True,
        "integrations": {
            "p": {"type": "http_proxy", "uri": f"https://127.0.0.1:{origin.port}", "tls_config": tls_config},
        },
        "routes": [{"key": "$default", "integration": "p"}],
        "stages": [{"name": "$default"}],
    }


@pytest.fixture
def tls_origin(pki):
    cert = pki.server_cert(["origin.test"], name="origin")
    o = Origin(tls=(cert.chain_path, cert.key_path))
    yield o
    o.stop()


def front(pki, api):
    """A gateway config with an HTTPS listener in front of `api`."""
    cert = pki.server_cert(["site.test"], ips=["127.0.0.1"], name="front")
    return {"gateway": {"tls": {"certificate": "main"}}, "certificates": [cert_entry("main", cert)], "apis": [api]}


def test_https_backend_verified_by_ca_bundle_and_name(gateway, pki, tls_origin):
    api = backend_api(tls_origin, ca_bundle=str(pki.root.cert_path), server_name_to_verify="origin.test")
    g = gateway(front(pki, api), tls=True)
    ex = https(g.tls_port, "site.test", client_context(pki), path="/echo")
    assert ex.status == 200, ex.response
    seen = json.loads(ex.body)
    headers = {k.lower(): v for k, v in seen["headers"]}
    assert headers["x-forwarded-proto"] == "https"
    assert headers["x-forwarded-port"] == str(g.tls_port)
    r = requests.get(g.url("/echo"), timeout=5)
    assert r.status_code == 200
    assert {k.lower(): v for k, v in r.json()["headers"]}["x-forwarded-proto"] == "http"
    with tls_origin.lock:
        assert set(tls_origin.server_names) == {"origin.test"}, "the name to verify is the SNI sent"


def test_the_upstream_tls_connection_is_kept_alive_and_reused(gateway, pki, tls_origin):
    api = backend_api(tls_origin, ca_bundle=str(pki.root.cert_path), server_name_to_verify="origin.test")
    g = gateway(front(pki, api))
    with requests.Session() as s:
        a = s.get(g.url("/one"), timeout=5)
        b = s.get(g.url("/two"), timeout=5)
    assert (a.status_code, b.status_code) == (200, 200)
    assert tls_origin.connections == 1
    assert [r.conn for r in tls_origin.requests] == [tls_origin.requests[0].conn] * 2
    assert [r.seq for r in tls_origin.requests] == [0, 1]


def test_bodies_and_pipelining_over_tls_on_both_sides(gateway, pki, tls_origin):
    api = backend_api(tls_origin, ca_bundle=str(pki.root.cert_path), server_name_to_verify="origin.test")
    g = gateway(front(pki, api), tls=True)
    ctx = client_context(pki)
    for path, n in [("/download/3000000", 3000000), ("/chunked/1000000", 1000000), ("/close/1000000", 1000000)]:
        ex = https(g.tls_port, "site.test", ctx, path=path)
        assert (ex.status, len(ex.body)) == (200, n), path
        assert ex.body == pattern(n), path
    body = bytes(range(256)) * 8192  # 2 MiB
    with tls_connect(g.tls_port, "site.test", ctx) as s:
        # an upload, then two pipelined requests in the same records
        s.sendall(
            b"POST /up HTTP/1.1\r\nHost: site.test\r\nContent-Length: %d\r\n\r\n" % len(body)
            + body
            + b"GET /p1 HTTP/1.1\r\nHost: site.test\r\n\r\n"
            + b"GET /p2 HTTP/1.1\r\nHost: site.test\r\nConnection: close\r\n\r\n"
        )
        rs = parse_responses(read_tls(s))
    assert [r.status for r in rs] == [200, 200, 200]
    up, p1, p2 = (r.json() for r in rs)
    assert (up["body_len"], up["body_sha256"]) == (len(body), hashlib.sha256(body).hexdigest())
    assert (p1["target"], p2["target"]) == ("/p1", "/p2")
    # a response cut short by the backend is not passed off as complete
    with pytest.raises(ValueError, match="short body"):
        https(g.tls_port, "site.test", ctx, path="/die-mid/100000")


def test_a_pooled_tls_connection_the_backend_closed_is_replaced(gateway, pki, tls_origin):
    api = backend_api(tls_origin, ca_bundle=str(pki.root.cert_path), server_name_to_verify="origin.test")
    g = gateway(front(pki, api))
    with requests.Session() as s:
        assert s.get(g.url("/close-after"), timeout=5).status_code == 200  # then the origin hangs up
        time.sleep(0.2)
        for i in range(3):
            assert s.get(g.url(f"/after/{i}"), timeout=5).status_code == 200
    assert tls_origin.connections == 2
    assert [r.target for r in tls_origin.requests] == ["/close-after", "/after/0", "/after/1", "/after/2"]


@pytest.mark.parametrize(
    "tls_config, reason",
    [
        (
            lambda pki: {
                "ca_bundle": str(pki.truststore(pki.client_ca, name="other-ca")),
                "server_name_to_verify": "origin.test",
            },
            "upstream TLS handshake failed: certificate not trusted (unknown issuer)",
        ),
        (
            lambda pki: {"ca_bundle": str(pki.root.cert_path), "server_name_to_verify": "elsewhere.test"},
            "upstream TLS handshake failed: certificate not valid for the server name",
        ),
        (
            # no server name: the URI's host, 127.0.0.1, which the certificate does not carry
            lambda pki: {"ca_bundle": str(pki.root.cert_path)},
            "upstream TLS handshake failed: certificate not valid for the server name",
        ),
    ],
    ids=["wrong-ca", "wrong-name", "uri-host"],
)
def test_an_untrusted_backend_is_a_502_with_the_reason_logged(gateway, pki, tls_origin, tls_config, reason):
    g = gateway(front(pki, backend_api(tls_origin, **tls_config(pki))))
    r = requests.get(g.url("/x"), timeout=10)
    assert r.status_code == 502
    assert tls_origin.requests == []
    logs = g.wait_log(reason)
    line = next((line for line in logs.splitlines() if "integration failed" in line), "")
    assert "WARN" in line and reason in line, logs[-2000:]


def test_insecure_skip_verification_accepts_a_self_signed_backend(gateway, pki):
    cert = pki.self_signed_cert(["selfsigned.test"])
    o = Origin(tls=(cert.chain_path, cert.key_path))
    try:
        g = gateway(front(pki, backend_api(o, insecure_skip_verification=True)))
        assert requests.get(g.url("/x"), timeout=5).status_code == 200
        assert [r.target for r in o.requests] == ["/x"]
    finally:
        o.stop()
    # and without it, the same backend is refused
    o = Origin(tls=(cert.chain_path, cert.key_path))
    try:
        api = backend_api(o, ca_bundle=str(pki.root.cert_path), server_name_to_verify="selfsigned.test")
        g = gateway(front(pki, api))
        assert requests.get(g.url("/x"), timeout=5).status_code == 502
        assert o.requests == []
    finally:
        o.stop()


# -- 10. what the checker refuses -------------------------------------------------------------


@pytest.mark.parametrize(
    "problem, path, message",
    [
        ("expired", "certificates[0]", "the certificate expired on "),
        ("key-mismatch", "certificates[0]", "the private key does not match the certificate"),
        ("not-covered", "domains[0].certificate", 'certificate "main" does not cover "api.example.com"'),
    ],
)
def test_check_refuses_a_bad_certificate_with_its_field_path(tmp_path, problem, path, message):
    pki = Pki(tmp_path / "pki")
    cert = {
        "expired": lambda: pki.expired_cert(["api.example.com"]),
        "key-mismatch": lambda: pki.mismatched_key_cert(["api.example.com"]),
        "not-covered": lambda: pki.server_cert(["www.example.com", "*.api.example.com"]),
    }[problem]()
    config = {
        "gateway": {"listen": [f"https://127.0.0.1:{free_port()}"], "workers": 1},
        "admin": {"enabled": False},
        "certificates": [cert_entry("main", cert)],
        "domains": [mapped("api.example.com", certificate="main")],
        "apis": [mock_api()],
    }
    code, err = check(tmp_path, config)
    assert code == 1, err
    assert f"{path}: {message}" in err, err
    # and `serve` refuses to start on it
    cfg = tmp_path / "serve.json"
    cfg.write_text(json.dumps(config))
    r = subprocess.run([BIN, "serve", "--config", str(cfg)], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and path in r.stdout + r.stderr


def test_the_stage_client_certificate_is_presented_to_the_backend(gateway, pki, tmp_path):
    """AWS REST client certificates: generated by the gateway, named by a stage, presented to
    that stage's https backends, which trust it by its downloaded PEM."""
    g = gateway({"apis": [mock_api()]})
    made = g.admin("POST", "/v1/clientcertificates", json={"description": "billing backend"})
    assert made.status_code == 201, made.text
    cc = made.json()
    pem = g.admin("GET", f"/v1/clientcertificates/{cc['clientCertificateId']}").json()["pemEncodedCertificate"]
    assert pem == cc["pemEncodedCertificate"] and "PRIVATE KEY" not in pem
    trust = tmp_path / "gateway-client.pem"
    trust.write_text(pem)
    cert = pki.server_cert(["origin.test"], name="origin-mtls")
    origin = Origin(tls=(cert.chain_path, cert.key_path, str(trust)))
    try:
        doc = g.admin("GET", "/v1/config").json()
        api = backend_api(origin, ca_bundle=str(pki.root.cert_path), server_name_to_verify="origin.test")
        doc["apis"] = [api]
        assert g.admin("PUT", "/v1/config", json=doc).status_code == 200
        r = requests.get(g.url("/echo"), timeout=5)
        assert r.status_code == 502, "no client certificate: the backend refuses the handshake"
        assert "the upstream requires a client certificate" in g.wait_log("requires a client certificate")
        api["stages"][0]["client_certificate"] = cc["clientCertificateId"]
        applied = g.admin("PUT", "/v1/config", json=doc)
        assert applied.status_code == 200, applied.text
        r = requests.get(g.url("/echo"), timeout=5)
        assert r.status_code == 200, r.text
        assert origin.tls_failures >= 1 and len(origin.requests) == 1
        busy = g.admin("DELETE", f"/v1/clientcertificates/{cc['clientCertificateId']}")
        assert busy.status_code == 409, "in use by the stage"
    finally:
        origin.stop()


def test_a_deeper_name_under_a_wildcard_mtls_domain_still_needs_a_client_certificate(gateway, pki, tmp_path):
    """SNI and Host pick a domain by the same rule: a `*.` domain covers every depth of
    subdomain for both, so a name two labels down gets the wildcard domain's mutual TLS (and
    its policy), not the default certificate's open handshake."""
    secure = pki.server_cert(["*.sec.test"], name="sec")
    main = pki.server_cert(["site.test"], name="main")
    config = {
        "gateway": {"tls": {"certificate": "main"}},
        "certificates": [cert_entry("main", main), cert_entry("sec", secure)],
        "domains": [
            mapped(
                "*.sec.test",
                api="secure",
                certificate="sec",
                security_policy="SecurityPolicy_TLS13_1_3_2025_09",
                mutual_tls={"truststore": str(pki.truststore(pki.client_ca))},
            )
        ],
        "apis": [mock_api("secure", body="secure", default=False), mock_api("open", body="open")],
    }
    g = gateway(config, tls=True)
    insecure = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE
    for sni in ("x.sec.test", "a.b.sec.test"):
        e = refused(lambda: https(g.tls_port, sni, insecure))
        assert e is not None, f"{sni}: served without a client certificate"
    client = pki.client_cert("client-1")
    ok = client_context(pki, cert=client)
    ok.check_hostname = False
    ok.verify_mode = ssl.CERT_NONE
    assert https(g.tls_port, "a.b.sec.test", ok).body == b"secure"
    # A trailing dot names the same domain.
    assert https(g.tls_port, "x.sec.test", ok, host="x.sec.test.").body == b"secure"


def test_a_plain_connection_cannot_reach_a_mutual_tls_domain(gateway, pki, tmp_path):
    g = gateway(mtls_config(pki, tmp_path / "access.log"), tls=True)
    r = requests.get(g.url("/"), headers={"Host": "mtls.example.com"}, timeout=5)
    assert r.status_code == 421, r.text
    assert r.json() == {"message": "Misdirected Request"}
    r = requests.get(g.url("/"), headers={"Host": "open.example.com"}, timeout=5)
    assert (r.status_code, r.text) == (200, "open")


def test_a_second_gateway_on_a_busy_port_refuses_to_start(gateway, tmp_path):
    g = gateway({"apis": [mock_api()]})
    clash = {
        "gateway": {"listen": [f"127.0.0.1:{g.port}"], "workers": 1},
        "admin": {"enabled": False},
        "apis": [mock_api()],
    }
    path = tmp_path / "clash.json"
    path.write_text(json.dumps(clash))
    p = subprocess.run([BIN, "serve", "--config", str(path)], capture_output=True, text=True, timeout=20)
    assert p.returncode != 0
    assert "in use" in p.stderr, p.stderr
    assert requests.get(g.url("/"), timeout=5).status_code == 200


def test_a_new_upstream_tls_connection_resumes_the_session(gateway, pki, tls_origin):
    """The pool's connection is closed by the backend after each answer (`/close-after`): the
    next request opens a new TLS connection, which resumes the first one's session."""
    api = backend_api(tls_origin, ca_bundle=str(pki.root.cert_path), server_name_to_verify="origin.test")
    g = gateway(front(pki, api))
    for _ in range(3):
        assert requests.get(g.url("/close-after"), timeout=5).status_code == 200
        time.sleep(0.1)
    with tls_origin.lock:
        resumed = list(tls_origin.resumed)
    assert len(resumed) == 3, resumed
    assert resumed[0] is False and all(resumed[1:]), resumed
