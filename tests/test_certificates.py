"""Certificates and client certificates as admin resources (`/v1/certificates`,
`/v1/clientcertificates`, `turnpike admin certs|clientcerts`), their store in the state
directory, configs that name them, `turnpike check` with the store, and the reload of
certificate files on change and on SIGHUP.

The control plane only: nothing here needs a TLS handshake."""

import datetime
import json
import os
import re
import signal
import stat
import subprocess
import time

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from conftest import BIN

HOST = "api.test"
CERT_ID = re.compile(r"cert-[a-z0-9]{12}")
CLIENT_ID = re.compile(r"[a-z0-9]{10}")


def mock_api(stages=None):
    return {
        "name": "shop",
        "integrations": {"hello": {"type": "mock", "status": 200, "body": "hello"}},
        "routes": [{"key": "GET /hello", "integration": "hello"}],
        "stages": stages or [{"name": "$default"}],
    }


def domain(host, certificate):
    return {"name": host, "certificate": certificate, "mappings": [{"api": "shop", "stage": "$default"}]}


@pytest.fixture
def gw(gateway):
    return gateway({"apis": [mock_api()]})


def import_cert(g, info, **extra):
    body = {"certificate_chain": info.chain_path.read_text(), "private_key": info.key_path.read_text(), **extra}
    return g.admin("POST", "/v1/certificates", json=body)


def imported_id(g, info, **extra):
    r = import_cert(g, info, **extra)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def hexbytes(colon_hex):
    return colon_hex.replace(":", "").lower()


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def key_lines(info):
    """The base64 lines of a private key PEM, none of which may appear in an answer."""
    return [line for line in info.key_path.read_text().splitlines() if line and not line.startswith("-----")]


def config_version(g):
    return g.admin("GET", "/v1/status").json()["config_version"]


def wait_for(cond, timeout=5.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


def cli(g, *args, **kw):
    env = dict(
        os.environ,
        TURNPIKE_ADMIN_URL=g.admin_url(""),
        TURNPIKE_ADMIN_TOKEN_FILE=g.config["admin"]["token_file"],
    )
    # JSON for the checks below, except `clientcerts show` without --json (its PEM alone).
    if args[:2] != ("clientcerts", "show") and "--json" not in args:
        args = ("--json", *args)
    return subprocess.run([BIN, "admin", *args], capture_output=True, text=True, env=env, timeout=20, **kw)


def test_an_imported_certificate_is_shown_with_its_details_and_never_its_key(gw, pki):
    info = pki.server_cert([HOST, f"*.{HOST}"], via_intermediate=True)
    r = import_cert(gw, info, name="main", tags={"team": "edge"})
    assert r.status_code == 201, r.text
    created = r.json()
    cert_id = created["id"]
    assert CERT_ID.fullmatch(cert_id), cert_id

    shown = gw.admin("GET", f"/v1/certificates/{cert_id}")
    assert shown.status_code == 200
    d = shown.json()
    assert d["name"] == "main" and d["tags"] == {"team": "edge"}
    assert d["subject"] == info.subject_dn
    assert d["issuer"] == info.issuer_dn
    assert d["sans"] == [HOST, f"*.{HOST}"]
    assert hexbytes(d["serial"]) == info.serial_hex
    assert hexbytes(d["fingerprint_sha256"]) == info.sha256_fingerprint
    assert d["not_before"] == iso(info.not_before)
    assert d["not_after"] == iso(info.not_after)
    assert d["key_type"] == "ECDSA-P256"
    assert d["chain_len"] == 2
    assert d["in_use_by"] == []
    assert d["certificate_chain"] == info.chain_path.read_text()

    listed = gw.admin("GET", "/v1/certificates")
    assert [c["id"] for c in listed.json()["certificates"]] == [cert_id]
    for answer in (r.text, shown.text, listed.text):
        assert "PRIVATE KEY" not in answer and "private_key" not in answer
        for line in key_lines(info):
            assert line not in answer


def test_the_store_in_the_state_directory_is_private(gw, pki):
    imported_id(gw, pki.server_cert([HOST]))
    resources = gw.state_dir / "resources"
    assert stat.S_IMODE(os.stat(resources).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(resources / "resources.redb").st_mode) == 0o600
    # Nothing in the state directory is readable by anyone else.
    for root, dirs, files in os.walk(gw.state_dir):
        for name in files:
            mode = stat.S_IMODE(os.stat(os.path.join(root, name)).st_mode)
            assert mode & 0o077 == 0, (name, oct(mode))


def test_bad_imports_are_refused_with_the_reason(gw, pki):
    cases = [
        (pki.expired_cert([HOST]), "expired on"),
        (pki.mismatched_key_cert([HOST]), "does not match"),
    ]
    for info, reason in cases:
        r = import_cert(gw, info)
        assert r.status_code == 400, r.text
        assert reason in r.json()["message"], r.text
    good = pki.server_cert([HOST])
    for body in [
        {"certificate_chain": "not a PEM", "private_key": good.key_path.read_text()},
        {"certificate_chain": good.chain_path.read_text()},
        {"certificate_chain": good.chain_path.read_text(), "private_key": good.key_path.read_text(), "bogus": 1},
    ]:
        r = gw.admin("POST", "/v1/certificates", json=body)
        assert r.status_code == 400, (body.keys(), r.text)
    assert gw.admin("POST", "/v1/certificates", data="{").status_code == 400
    assert gw.admin("GET", "/v1/certificates").json()["certificates"] == []


def test_aws_style_bodies_and_key_types_are_accepted(gw, pki):
    info = pki.server_cert([HOST], via_intermediate=True)
    intermediate = pki.intermediate.cert_path.read_text()
    r = gw.admin(
        "POST",
        "/v1/certificates",
        json={
            "certificateBody": info.cert_path.read_text(),
            "certificateChain": intermediate,
            "privateKey": info.key_path.read_text(),
            "certificateName": "aws",
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["chain_len"] == 2 and r.json()["name"] == "aws"
    for key_type, shown in [("rsa2048", "RSA-2048"), ("ec384", "ECDSA-P384"), ("ed25519", "Ed25519")]:
        r = import_cert(gw, pki.server_cert([HOST], key_type=key_type))
        assert r.status_code == 201, (key_type, r.text)
        assert r.json()["key_type"] == shown


def test_a_certificate_in_use_cannot_be_deleted(gw, pki):
    cert_id = imported_id(gw, pki.server_cert([HOST]))
    r = gw.admin("POST", "/v1/domains", json=domain(HOST, cert_id))
    assert r.status_code == 201, r.text
    assert gw.admin("GET", f"/v1/certificates/{cert_id}").json()["in_use_by"] == [HOST]
    r = gw.admin("DELETE", f"/v1/certificates/{cert_id}")
    assert r.status_code == 409, r.text
    assert r.json()["in_use_by"] == [HOST]
    assert cert_id in r.json()["message"]
    assert requests.get(gw.url("/hello"), headers={"Host": HOST}).text == "hello"

    assert gw.admin("DELETE", f"/v1/domains/{HOST}").status_code == 200
    r = gw.admin("DELETE", f"/v1/certificates/{cert_id}")
    assert r.status_code == 204 and r.content == b""
    assert gw.admin("GET", f"/v1/certificates/{cert_id}").status_code == 404
    assert gw.admin("DELETE", f"/v1/certificates/{cert_id}").status_code == 404


def test_a_config_naming_an_unknown_id_is_refused_and_the_old_config_keeps_serving(gw):
    before = config_version(gw)
    doc = {"apis": [mock_api()], "domains": [domain(HOST, "cert-000000000000")]}
    r = gw.admin("PUT", "/v1/config", json=doc)
    assert r.status_code == 400, r.text
    err = r.json()["errors"][0]
    assert err["path"] == "domains[0].certificate"
    assert "cert-000000000000" in err["reason"]

    doc = {"apis": [mock_api(stages=[{"name": "$default", "client_certificate": "zzzzzzzzzz"}])]}
    r = gw.admin("PUT", "/v1/config", json=doc)
    assert r.status_code == 400, r.text
    assert r.json()["errors"][0]["path"] == "apis[0].stages[0].client_certificate"

    assert config_version(gw) == before
    assert requests.get(gw.url("/hello")).text == "hello"
    assert "domains" not in gw.admin("GET", "/v1/config").json()


def test_rotation_republishes_the_config_and_is_checked_first(gw, pki):
    cert_id = imported_id(gw, pki.server_cert([HOST]), name="edge")
    assert gw.admin("POST", "/v1/domains", json=domain(HOST, cert_id)).status_code == 201
    before = config_version(gw)

    new = pki.server_cert([HOST, f"www.{HOST}"])
    r = gw.admin(
        "PUT",
        f"/v1/certificates/{cert_id}",
        json={"certificate_chain": new.chain_path.read_text(), "private_key": new.key_path.read_text()},
    )
    assert r.status_code == 200, r.text
    rotated = r.json()
    assert rotated["config_version"] > before
    assert hexbytes(rotated["fingerprint_sha256"]) == new.sha256_fingerprint
    assert rotated["name"] == "edge" and rotated["rotated_at"]
    assert gw.admin("GET", "/v1/deployments").json()["deployments"][0]["source"] == f"certificate:{cert_id}"
    assert wait_for(lambda: gw.admin("GET", "/v1/status").json()["workers_on_current_config"])
    assert requests.get(gw.url("/hello"), headers={"Host": HOST}).text == "hello"

    # A certificate that does not cover the domain: refused with the domain's path.
    other = pki.server_cert(["other.test"])
    r = gw.admin(
        "PUT",
        f"/v1/certificates/{cert_id}",
        json={"certificate_chain": other.chain_path.read_text(), "private_key": other.key_path.read_text()},
    )
    assert r.status_code == 400, r.text
    assert r.json()["errors"][0]["path"] == "domains[0].certificate"
    shown = gw.admin("GET", f"/v1/certificates/{cert_id}").json()
    assert hexbytes(shown["fingerprint_sha256"]) == new.sha256_fingerprint
    assert config_version(gw) == rotated["config_version"]


def test_certificates_survive_a_restart_with_the_config_naming_them(gateway, pki):
    g = gateway({"apis": [mock_api()]})
    cert_id = imported_id(g, pki.server_cert([HOST]))
    assert g.admin("POST", "/v1/domains", json=domain(HOST, cert_id)).status_code == 201
    client = g.admin("POST", "/v1/clientcertificates", json={}).json()["clientCertificateId"]
    assert g.terminate() == 0

    g.start()
    assert g.admin("GET", f"/v1/certificates/{cert_id}").json()["in_use_by"] == [HOST]
    assert g.admin("GET", f"/v1/clientcertificates/{client}").status_code == 200
    assert requests.get(g.url("/hello"), headers={"Host": HOST}).text == "hello"
    assert "ERROR" not in g.logs()


def test_the_cli_imports_shows_rotates_and_deletes_certificates(gw, pki):
    info = pki.server_cert([HOST])
    r = cli(gw, "certs", "import", "--chain", str(info.chain_path), "--key", str(info.key_path), "--name", "cli")
    assert r.returncode == 0, r.stdout + r.stderr
    cert_id = json.loads(r.stdout)["id"]
    assert CERT_ID.fullmatch(cert_id)

    r = cli(gw, "certs", "list")
    assert r.returncode == 0 and [c["id"] for c in json.loads(r.stdout)["certificates"]] == [cert_id]
    r = cli(gw, "certs", "show", cert_id)
    assert r.returncode == 0
    shown = json.loads(r.stdout)
    assert shown["name"] == "cli" and hexbytes(shown["fingerprint_sha256"]) == info.sha256_fingerprint
    assert "PRIVATE KEY" not in r.stdout

    new = pki.server_cert([HOST])
    r = cli(gw, "certs", "rotate", cert_id, "--chain", str(new.chain_path), "--key", str(new.key_path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert hexbytes(json.loads(r.stdout)["fingerprint_sha256"]) == new.sha256_fingerprint

    bad = pki.expired_cert([HOST])
    r = cli(gw, "certs", "import", "--chain", str(bad.chain_path), "--key", str(bad.key_path))
    assert r.returncode == 1 and "expired" in r.stderr and not r.stdout

    r = cli(gw, "certs", "delete", cert_id)
    assert r.returncode == 0 and r.stdout.strip() == f"deleted {cert_id}"
    assert cli(gw, "certs", "show", cert_id).returncode == 1
    assert cli(gw, "certs", "show", "../config").returncode == 1


def test_a_client_certificate_is_generated_downloadable_and_guarded(gw):
    r = gw.admin("POST", "/v1/clientcertificates", json={"description": "billing backend"})
    assert r.status_code == 201, r.text
    created = r.json()
    client_id = created["clientCertificateId"]
    assert CLIENT_ID.fullmatch(client_id), client_id
    assert created["description"] == "billing backend"
    assert "PRIVATE KEY" not in r.text

    cert = x509.load_pem_x509_certificate(created["pemEncodedCertificate"].encode())
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == client_id
    assert cert.issuer == cert.subject
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert cert.public_key().curve.name == "secp256r1"
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == datetime.timedelta(days=365)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in eku
    assert created["createdDate"] == iso(cert.not_valid_before_utc)
    assert created["expirationDate"] == iso(cert.not_valid_after_utc)

    # Downloadable, by the API and the CLI (the PEM alone, to hand to a backend).
    shown = gw.admin("GET", f"/v1/clientcertificates/{client_id}").json()
    assert shown["pemEncodedCertificate"] == created["pemEncodedCertificate"]
    r = cli(gw, "clientcerts", "show", client_id)
    assert r.returncode == 0 and r.stdout == created["pemEncodedCertificate"]
    listed = gw.admin("GET", "/v1/clientcertificates").json()["item"]
    assert [c["clientCertificateId"] for c in listed] == [client_id]

    # A stage that presents it keeps it from being deleted.
    r = gw.admin("PUT", "/v1/apis/shop/stages/$default", json={"name": "$default", "client_certificate": client_id})
    assert r.status_code == 200, r.text
    r = gw.admin("DELETE", f"/v1/clientcertificates/{client_id}")
    assert r.status_code == 409 and r.json()["in_use_by"] == ["shop/$default"]
    assert gw.admin("PUT", "/v1/apis/shop/stages/$default", json={"name": "$default"}).status_code == 200
    assert gw.admin("DELETE", f"/v1/clientcertificates/{client_id}").status_code == 204
    assert gw.admin("GET", f"/v1/clientcertificates/{client_id}").status_code == 404


def test_the_cli_generates_lists_and_deletes_client_certificates(gw):
    r = cli(gw, "clientcerts", "generate", "--description", "from the cli")
    assert r.returncode == 0, r.stdout + r.stderr
    client_id = json.loads(r.stdout)["clientCertificateId"]
    r = cli(gw, "clientcerts", "list")
    assert r.returncode == 0 and json.loads(r.stdout)["item"][0]["description"] == "from the cli"
    r = cli(gw, "clientcerts", "show", client_id, "--json")
    assert json.loads(r.stdout)["clientCertificateId"] == client_id
    r = cli(gw, "clientcerts", "delete", client_id)
    assert r.returncode == 0 and r.stdout.strip() == f"deleted {client_id}"


def test_check_reads_stored_certificates_when_the_store_is_free(gateway, pki, tmp_path):
    g = gateway({"apis": [mock_api()]})
    cert_id = imported_id(g, pki.server_cert([HOST]))
    path = tmp_path / "named.json"
    doc = {"admin": {"state_dir": str(g.state_dir)}, "apis": [mock_api()], "domains": [domain(HOST, cert_id)]}
    path.write_text(json.dumps(doc))

    # The running gateway holds the store: the id cannot be judged, which the check says as a
    # warning (it is not known to be wrong).
    r = subprocess.run([BIN, "check", "--config", str(path)], capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    assert "warning: domains[0].certificate" in r.stderr, r.stderr
    assert "not checked" in r.stderr and "locked" in r.stderr

    assert g.terminate() == 0
    r = subprocess.run([BIN, "check", "--config", str(path)], capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    # --state-dir elsewhere: no store there.
    r = subprocess.run(
        [BIN, "check", "--config", str(path), "--state-dir", str(tmp_path / "nothing")],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert r.returncode == 1 and "has no resource store" in r.stderr
    assert not (tmp_path / "nothing").exists(), "check creates nothing"
    # An unknown id with the store readable: the error alone.
    doc["domains"] = [domain(HOST, "cert-000000000000")]
    path.write_text(json.dumps(doc))
    r = subprocess.run([BIN, "check", "--config", str(path)], capture_output=True, text=True, timeout=20)
    assert r.returncode == 1 and "domains[0].certificate" in r.stderr and "note:" not in r.stderr


def file_config(live):
    return {
        "apis": [mock_api()],
        "certificates": [
            {"name": "main", "certificate_chain": str(live / "chain.pem"), "private_key": str(live / "key.pem")}
        ],
        "domains": [domain(HOST, "main")],
    }


def install(live, info):
    """Puts a certificate in place as certbot does: new files renamed over the old."""
    for src, dst in [(info.key_path, "key.pem"), (info.chain_path, "chain.pem")]:
        tmp = live / f".{dst}.new"
        tmp.write_bytes(src.read_bytes())
        os.chmod(tmp, 0o600)
        os.replace(tmp, live / dst)


def test_certificate_files_are_reloaded_when_they_change(gateway, pki, tmp_path):
    live = tmp_path / "live"
    live.mkdir()
    install(live, pki.server_cert([HOST]))
    g = gateway(file_config(live))
    before = config_version(g)

    install(live, pki.server_cert([HOST]))
    assert wait_for(lambda: config_version(g) > before, timeout=8), g.logs()
    reloaded = config_version(g)
    assert g.admin("GET", "/v1/deployments").json()["deployments"][0]["source"] == "tls-files"

    # A key that does not match: a warning with the field path, the old config keeps serving.
    # (The watch may have seen the new key before the new chain above: count from here.)
    refusal = "certificates[0]: the private key does not match the certificate"
    seen = g.logs().count(refusal)
    (live / "key.pem").write_bytes(pki.server_cert([HOST]).key_path.read_bytes())
    assert wait_for(lambda: g.logs().count(refusal) > seen, timeout=8), g.logs()
    assert "TLS files not reloaded, the running config keeps serving" in g.logs()
    assert config_version(g) == reloaded
    assert requests.get(g.url("/hello"), headers={"Host": HOST}).text == "hello"


def test_sighup_reloads_certificate_files_and_does_nothing_when_they_did_not_change(gateway, pki, tmp_path):
    live = tmp_path / "live"
    live.mkdir()
    install(live, pki.server_cert([HOST]))
    g = gateway(file_config(live))
    before = config_version(g)
    g.proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    assert config_version(g) == before, "unchanged files make no new version"
    assert g.proc.poll() is None

    # The 2 s file watch may notice a change first; it rarely does three times in a row.
    triggers = []
    for _ in range(3):
        version = config_version(g)
        install(live, pki.server_cert([HOST]))
        g.proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: config_version(g) > version, timeout=8), g.logs()
        line = [entry for entry in g.logs().splitlines() if "TLS files reloaded" in entry][-1]
        triggers.append("SIGHUP" if 'trigger="SIGHUP"' in line else line)
        if triggers[-1] == "SIGHUP":
            break
    assert "SIGHUP" in triggers, triggers
