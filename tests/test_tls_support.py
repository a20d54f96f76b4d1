"""The TLS test support checked against independent judges before the HTTPS tests lean on it.

pki.py: its certificates verify (or fail) as it says under `cryptography`'s path validation
(the webpki rules rustls also follows), `openssl verify` and a real TLS server (nginx), and the
fields it reports are what `openssl x509` reads from the files. tlsscan.py: scanning nginx set up
with a known policy returns exactly that policy's versions and suites. Needs no turnpike binary.
"""

import datetime
import ipaddress
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import Criticality, ExtensionPolicy, PolicyBuilder, Store, VerificationError

import tlsscan
from conftest import free_port, require_tool
from pki import KEY_TYPES, Pki, openssl_time

NOW = datetime.datetime.now(datetime.timezone.utc)


def pem_certs(path):
    return x509.load_pem_x509_certificates(path.read_bytes())


def verify_server(leaf, trusted, name, intermediates=(), at=None):
    """The chain cryptography builds for `leaf` as a server certificate for `name` (a DNS name
    or an IP address string), or VerificationError."""
    try:
        subject = x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        subject = x509.DNSName(name)
    builder = PolicyBuilder().store(Store([c.cert for c in trusted])).time(at or NOW)
    return builder.build_server_verifier(subject).verify(leaf.cert, list(intermediates))


def verify_client(leaf, trusted, intermediates=()):
    # cryptography's client policy wants a SAN; webpki (what rustls verifies with) does not, and
    # client certificates named by their subject alone are common: allow a SAN, don't require one.
    ee = ExtensionPolicy.webpki_defaults_ee().may_be_present(
        x509.SubjectAlternativeName, Criticality.AGNOSTIC, None
    )
    builder = PolicyBuilder().store(Store([c.cert for c in trusted])).time(NOW)
    builder = builder.extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ee)
    verifier = builder.build_client_verifier()
    return verifier.verify(leaf.cert, list(intermediates))


def openssl(*args):
    require_tool(shutil.which("openssl"), "openssl")
    r = subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout + r.stderr


def openssl_x509_fields(path):
    _, out = openssl("x509", "-in", path, "-noout", "-subject", "-issuer", "-serial", "-dates", "-nameopt", "RFC2253")
    return dict(line.split("=", 1) for line in out.strip().splitlines())


# -- pki.py --------------------------------------------------------------------------------


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_server_cert_verifies_for_each_of_its_names(pki, key_type):
    leaf = pki.server_cert(["api.example.test", "www.example.test"], ips=["127.0.0.1", "::1"], key_type=key_type)
    for name in ("api.example.test", "www.example.test", "127.0.0.1", "::1"):
        chain = verify_server(leaf, [pki.root], name)
        assert [c.subject for c in chain] == [leaf.cert.subject, pki.root.cert.subject]
    with pytest.raises(VerificationError):
        verify_server(leaf, [pki.root], "other.example.test")
    with pytest.raises(VerificationError):
        verify_server(leaf, [pki.root], "127.0.0.2")

    assert pem_certs(leaf.chain_path) == [leaf.cert]  # issued by the root: nothing to add
    key_text = leaf.key_path.read_text()
    assert key_text.startswith("-----BEGIN PRIVATE KEY-----")  # PKCS#8, unencrypted
    assert oct(leaf.key_path.stat().st_mode & 0o777) == "0o600"
    assert leaf.key.public_key() == leaf.cert.public_key()
    public = leaf.cert.public_key()
    expected = {
        "ec256": lambda k: isinstance(k, ec.EllipticCurvePublicKey) and k.curve.name == "secp256r1",
        "ec384": lambda k: isinstance(k, ec.EllipticCurvePublicKey) and k.curve.name == "secp384r1",
        "rsa2048": lambda k: isinstance(k, rsa.RSAPublicKey) and k.key_size == 2048,
        "ed25519": lambda k: isinstance(k, ed25519.Ed25519PublicKey),
    }[key_type]
    assert expected(public), public
    eku = leaf.cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    code, out = openssl("verify", "-CAfile", pki.root.cert_path, leaf.cert_path)
    assert code == 0, out


def test_wildcard_covers_exactly_one_label(pki):
    leaf = pki.server_cert(["*.example.test"])
    assert leaf.name == "star.example.test"
    verify_server(leaf, [pki.root], "anything.example.test")
    for name in ("example.test", "a.b.example.test", "anything.example.org"):
        with pytest.raises(VerificationError):
            verify_server(leaf, [pki.root], name)


def test_intermediate_goes_in_the_chain_file_and_is_needed(pki):
    leaf = pki.server_cert(["deep.example.test"], via_intermediate=True)
    chain_file = pem_certs(leaf.chain_path)
    assert chain_file == [leaf.cert, pki.intermediate.cert]
    assert leaf.issuer_dn == pki.intermediate.subject_dn == "CN=Turnpike Test Intermediate CA,O=Turnpike Tests"
    chain = verify_server(leaf, [pki.root], "deep.example.test", intermediates=chain_file[1:])
    assert [c.subject for c in chain] == [leaf.cert.subject, pki.intermediate.cert.subject, pki.root.cert.subject]
    with pytest.raises(VerificationError):
        verify_server(leaf, [pki.root], "deep.example.test")
    untrusted = ("-untrusted", pki.intermediate.cert_path)
    code, out = openssl("verify", "-CAfile", pki.root.cert_path, *untrusted, leaf.cert_path)
    assert code == 0, out
    code, out = openssl("verify", "-CAfile", pki.root.cert_path, leaf.cert_path)
    assert code != 0 and "unable to get local issuer certificate" in out, out


@pytest.mark.parametrize(
    "make, openssl_error",
    [
        (Pki.expired_cert, "certificate has expired"),
        (Pki.not_yet_valid_cert, "certificate is not yet valid"),
    ],
)
def test_expired_and_not_yet_valid_fail_on_time_alone(pki, make, openssl_error):
    leaf = make(pki, ["when.example.test"])
    assert not (leaf.not_before <= NOW <= leaf.not_after)
    with pytest.raises(VerificationError):
        verify_server(leaf, [pki.root], "when.example.test")
    # the same certificate verifies at a time inside its validity: time is all that is wrong
    middle = leaf.not_before + (leaf.not_after - leaf.not_before) / 2
    verify_server(leaf, [pki.root], "when.example.test", at=middle)
    code, out = openssl("verify", "-CAfile", pki.root.cert_path, leaf.cert_path)
    assert code != 0 and openssl_error in out, out


def test_self_signed_is_its_own_issuer_and_not_trusted(pki):
    leaf = pki.self_signed_cert(["self.example.test"])
    assert leaf.issuer_dn == leaf.subject_dn == "CN=self.example.test,O=Turnpike Tests"
    leaf.cert.verify_directly_issued_by(leaf.cert)
    assert pem_certs(leaf.chain_path) == [leaf.cert]
    with pytest.raises(VerificationError):
        verify_server(leaf, [pki.root], "self.example.test")
    code, out = openssl("verify", "-CAfile", pki.root.cert_path, leaf.cert_path)
    assert code != 0 and "self-signed certificate" in out, out


def test_mismatched_key_really_mismatches(pki, tmp_path):
    leaf = pki.mismatched_key_cert(["wrong-key.example.test"])
    verify_server(leaf, [pki.root], "wrong-key.example.test")  # the certificate itself is fine
    assert leaf.key.public_key() != leaf.cert.public_key()
    assert isinstance(leaf.key, ec.EllipticCurvePrivateKey)  # same type, so only the key differs
    with pytest.raises(ssl.SSLError, match="KEY_VALUES_MISMATCH"):
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(leaf.chain_path, leaf.key_path)
    good = pki.server_cert(["right-key.example.test"])
    ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(good.chain_path, good.key_path)


def test_client_cert_fields_are_what_openssl_reads(pki):
    leaf = pki.client_cert("client-1", o="Example Corp", serial=0x0A1B2C3D4E)
    assert leaf.subject_dn == "CN=client-1,O=Example Corp"
    assert leaf.issuer_dn == "CN=Turnpike Test Client CA,O=Turnpike Tests"
    assert (leaf.serial, leaf.serial_hex, leaf.serial_colon_hex) == (0x0A1B2C3D4E, "0a1b2c3d4e", "0a:1b:2c:3d:4e")
    fields = openssl_x509_fields(leaf.cert_path)
    assert fields == {
        "subject": leaf.subject_dn,
        "issuer": leaf.issuer_dn,
        "serial": leaf.serial_hex.upper(),
        "notBefore": openssl_time(leaf.not_before),
        "notAfter": openssl_time(leaf.not_after),
    }
    assert leaf.not_before <= NOW <= leaf.not_after
    assert leaf.cert.fingerprint(hashes.SHA256()).hex() == leaf.sha256_fingerprint

    verified = verify_client(leaf, [pki.client_ca])
    assert [c.subject for c in verified.chain] == [leaf.cert.subject, pki.client_ca.cert.subject]
    eku = leaf.cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    with pytest.raises(VerificationError):
        verify_client(leaf, [pki.root])  # the server-side root does not vouch for clients
    with_ou = pki.client_cert("client-2", o="Example Corp", ou="Payments")
    assert with_ou.subject_dn == "CN=client-2,OU=Payments,O=Example Corp"
    assert openssl_x509_fields(with_ou.cert_path)["subject"] == with_ou.subject_dn


def test_untrusted_client_cert_differs_only_in_issuer(pki):
    trusted = pki.client_cert("client-1", o="Example Corp")
    untrusted = pki.untrusted_client_cert("client-1", o="Example Corp")
    assert untrusted.subject_dn == trusted.subject_dn
    assert untrusted.issuer_dn == "CN=Turnpike Untrusted Client CA,O=Turnpike Tests" != trusted.issuer_dn
    with pytest.raises(VerificationError):
        verify_client(untrusted, [pki.client_ca])
    verify_client(untrusted, [pki.untrusted_client_ca])  # well-formed: only the trust is missing


def test_client_cert_via_intermediate_against_a_truststore_bundle(pki):
    leaf = pki.client_cert("deep-client", via_intermediate=True)
    store = pki.truststore(pki.client_ca, pki.client_intermediate, name="client-truststore")
    assert pem_certs(store) == [pki.client_ca.cert, pki.client_intermediate.cert]
    assert pem_certs(leaf.chain_path) == [leaf.cert, pki.client_intermediate.cert]
    verify_client(leaf, [pki.client_ca], intermediates=pem_certs(leaf.chain_path)[1:])
    with pytest.raises(VerificationError):
        verify_client(leaf, [pki.client_ca])


def test_cas_are_made_once_per_session(tmp_path):
    a, b = Pki(tmp_path / "a"), Pki(tmp_path / "b")
    assert a.root.cert_path != b.root.cert_path
    assert a.root.cert_path.read_bytes() == b.root.cert_path.read_bytes()
    assert a.client_ca.serial == b.client_ca.serial
    assert a.root.serial != a.client_ca.serial != a.untrusted_client_ca.serial
    rsa_root = Pki(tmp_path / "c", ca_key_type="rsa2048").root
    assert isinstance(rsa_root.cert.public_key(), rsa.RSAPublicKey)


# -- a real TLS server: nginx ----------------------------------------------------------------

NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)


class Nginx:
    """nginx in the foreground, one process, on a free loopback port, with the given server
    blocks (each a list of directives; `listen` and `return` are added)."""

    def __init__(self, directory, servers):
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        blocks = []
        for i, directives in enumerate(servers):
            default = " default_server" if i == 0 else ""
            body = "\n    ".join(f"{d};" for d in directives)
            blocks.append(
                f"  server {{\n    listen 127.0.0.1:{self.port} ssl{default};\n    {body}\n"
                f'    return 200 "server {i}\\n";\n  }}'
            )
        temp = " ".join(f"{k}_temp_path {self.dir}/{k};" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        conf = self.dir / "nginx.conf"
        conf.write_text(
            f"daemon off;\nmaster_process off;\nworker_processes 1;\npid {self.dir}/nginx.pid;\n"
            f"error_log {self.dir}/error.log info;\nevents {{ worker_connections 256; }}\n"
            f"http {{\n  access_log off;\n  {temp}\n" + "\n".join(blocks) + "\n}\n"
        )
        self.log = self.dir / "error.log"
        self.proc = subprocess.Popen(
            [NGINX, "-p", str(self.dir), "-c", str(conf), "-e", str(self.log)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 10
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited with {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    break
            except OSError:
                if time.time() > deadline:
                    raise RuntimeError(f"nginx did not listen on {self.port}:\n{self.log.read_text()}")
                time.sleep(0.02)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def nginx(tmp_path):
    """Factory: nginx(servers) -> Nginx; stopped after the test."""
    require_tool(NGINX, "nginx")
    started = []

    def make(servers):
        n = Nginx(tmp_path / f"nginx-{len(started)}", servers)
        started.append(n)
        return n

    yield make
    for n in started:
        n.stop()


@pytest.fixture
def scanner():
    require_tool(tlsscan.available(), "sslyze (tests/requirements.txt)")
    return tlsscan.scan


def cert_directives(leaf):
    return [f"ssl_certificate {leaf.chain_path}", f"ssl_certificate_key {leaf.key_path}"]


def get(port, sni, cafile, client=None, path="/"):
    """HTTP/1.1 GET over TLS with `sni`, verifying the server against `cafile`; (status line,
    peer certificate as the ssl module reads it, negotiated version)."""
    ctx = ssl.create_default_context(cafile=str(cafile))
    if client is not None:
        ctx.load_cert_chain(client.chain_path, client.key_path)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw_sock:
        with ctx.wrap_socket(raw_sock, server_hostname=sni) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: {sni}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while chunk := s.recv(65536):
                data += chunk
            return data.split(b"\r\n", 1)[0].decode(), s.getpeercert(), s.version()


def test_nginx_serves_every_key_type_and_the_chain_verifies(pki, nginx):
    leaves = {k: pki.server_cert([f"{k}.example.test"], key_type=k, via_intermediate=True) for k in KEY_TYPES}
    wildcard = pki.server_cert(["*.wild.example.test"])
    server = nginx(
        [[f"server_name {leaf.dns_names[0]}", *cert_directives(leaf)] for leaf in leaves.values()]
        + [["server_name *.wild.example.test", *cert_directives(wildcard)]]
    )
    for k, leaf in leaves.items():
        status, peer, _ = get(server.port, leaf.dns_names[0], pki.root.cert_path)
        assert status == "HTTP/1.1 200 OK", k
        assert dict(x[0] for x in peer["subject"])["commonName"] == f"{k}.example.test"
        assert peer["serialNumber"] == leaf.serial_hex.upper()
    status, peer, _ = get(server.port, "api.wild.example.test", pki.root.cert_path)
    assert dict(x[0] for x in peer["subject"])["commonName"] == "*.wild.example.test"
    with pytest.raises(ssl.SSLCertVerificationError):
        get(server.port, "ec256.example.test", pki.client_ca.cert_path)  # wrong CA: rejected


def test_nginx_mutual_tls_tells_trusted_from_untrusted_clients(pki, nginx):
    leaf = pki.server_cert(["mtls.example.test"])
    store = pki.truststore(pki.client_ca, name="client-truststore")
    mtls = [f"ssl_client_certificate {store}", "ssl_verify_client on"]
    server = nginx([["server_name mtls.example.test", *cert_directives(leaf), *mtls]])
    trusted = pki.client_cert("client-1", o="Example Corp")
    assert get(server.port, "mtls.example.test", pki.root.cert_path, client=trusted)[0] == "HTTP/1.1 200 OK"
    # nginx finishes the handshake and answers 400 for a missing or unverifiable certificate
    assert get(server.port, "mtls.example.test", pki.root.cert_path)[0] == "HTTP/1.1 400 Bad Request"
    untrusted = pki.untrusted_client_cert("client-1", o="Example Corp")
    assert get(server.port, "mtls.example.test", pki.root.cert_path, client=untrusted)[0] == "HTTP/1.1 400 Bad Request"
    expired = pki.client_cert("client-old", validity="expired")
    assert get(server.port, "mtls.example.test", pki.root.cert_path, client=expired)[0] == "HTTP/1.1 400 Bad Request"
    log = server.log.read_text()
    for reason in ("no required SSL certificate", "unable to verify the first certificate", "certificate has expired"):
        assert reason in log, log


# -- tlsscan.py against nginx with known policies --------------------------------------------

TLS13_DEFAULT = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}
ECDSA_AEAD = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305"

SCAN_CASES = {
    # name: (server key type, nginx directives, {version: accepted IANA suites})
    "TLS 1.2 + 1.3, ECDSA AEAD suites": (
        "ec256",
        ["ssl_protocols TLSv1.2 TLSv1.3", f"ssl_ciphers {ECDSA_AEAD}"],
        {
            "TLSv1.2": {
                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
                "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
            },
            "TLSv1.3": TLS13_DEFAULT,
        },
    ),
    "TLS 1.3 only": ("ec256", ["ssl_protocols TLSv1.3"], {"TLSv1.3": TLS13_DEFAULT}),
    "TLS 1.3 only, two suites": (
        "ec256",
        ["ssl_protocols TLSv1.3", "ssl_conf_command Ciphersuites TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256"],
        {"TLSv1.3": {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384"}},
    ),
    # the control: without it, "TLS 1.0 not accepted" above could mean "cannot test TLS 1.0"
    "TLS 1.0 .. 1.2, RSA, old CBC suites": (
        "rsa2048",
        ["ssl_protocols TLSv1 TLSv1.1 TLSv1.2", "ssl_ciphers ECDHE-RSA-AES128-SHA:AES256-SHA:@SECLEVEL=0"],
        {
            v: {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "TLS_RSA_WITH_AES_256_CBC_SHA"}
            for v in ("TLSv1.0", "TLSv1.1", "TLSv1.2")
        },
    ),
}


@pytest.mark.parametrize("case", SCAN_CASES)
def test_scan_reports_exactly_the_policy(pki, nginx, scanner, case):
    key_type, directives, expected = SCAN_CASES[case]
    leaf = pki.server_cert(["policy.example.test"], key_type=key_type)
    server = nginx([["server_name policy.example.test", *cert_directives(leaf), *directives]])
    result = scanner("127.0.0.1", server.port, "policy.example.test")
    assert {v: set(s) for v, s in result.by_protocol.items()} == expected
    assert result.protocols == set(expected)
    assert result.cipher_suites == set().union(*expected.values())
    assert result.client_auth == "DISABLED"


def test_scan_follows_sni(pki, nginx, scanner):
    """One port, two names: an ECDSA and an RSA certificate with the same suite list, so each
    name's accepted TLS 1.2 suites show which certificate the scan reached."""
    ecdsa = pki.server_cert(["ecdsa.example.test"])
    rsa_leaf = pki.server_cert(["rsa.example.test"], key_type="rsa2048")
    common = ["ssl_protocols TLSv1.2", "ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"]
    server = nginx(
        [
            ["server_name ecdsa.example.test", *cert_directives(ecdsa), *common],
            ["server_name rsa.example.test", *cert_directives(rsa_leaf), *common],
        ]
    )
    a = scanner("127.0.0.1", server.port, "ecdsa.example.test")
    b = scanner("127.0.0.1", server.port, "rsa.example.test")
    assert a.by_protocol == {"TLSv1.2": {"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"}}
    assert b.by_protocol == {"TLSv1.2": {"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"}}


def test_scan_of_a_mutual_tls_listener(pki, nginx, scanner):
    leaf = pki.server_cert(["mtls.example.test"])
    store = pki.truststore(pki.client_ca, name="client-truststore")
    server = nginx(
        [
            [
                "server_name mtls.example.test",
                *cert_directives(leaf),
                "ssl_protocols TLSv1.2 TLSv1.3",
                f"ssl_ciphers {ECDSA_AEAD}",
                f"ssl_client_certificate {store}",
                "ssl_verify_client on",
            ]
        ]
    )
    client = pki.client_cert("scanner")
    with_cert = scanner(
        "127.0.0.1", server.port, "mtls.example.test", client_cert=client.chain_path, client_key=client.key_path
    )
    without = scanner("127.0.0.1", server.port, "mtls.example.test")
    assert with_cert.protocols == without.protocols == {"TLSv1.2", "TLSv1.3"}
    assert with_cert.by_protocol == without.by_protocol
    assert with_cert.by_protocol["TLSv1.3"] == TLS13_DEFAULT
    # nginx asks for a certificate but refuses only after the handshake (with a 400), so to a
    # scanner the certificate looks optional; sslyze learns that by waiting `timeout` seconds
    # for an alert that does not come, which makes this the slow scan here
    assert without.client_auth == "OPTIONAL"
    assert with_cert.client_auth is None


def test_scan_of_a_closed_port_raises(scanner):
    with pytest.raises(tlsscan.ScanError):
        scanner("127.0.0.1", free_port(), "nothing.example.test", protocols=("TLSv1.3",))
