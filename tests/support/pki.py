"""A test PKI for the HTTPS tests: CAs, server and client certificates, and the broken ones.

`Pki(directory)` writes PEM files into `directory` and hands back small records of what it
wrote: where the files are and what a test asserts on (subject and issuer DN in RFC 2253 form,
serial in decimal and hex, validity). Certificates are made with `cryptography`, not the
`openssl` command, so a test can ask for exactly the fields it needs and read them back.

What there is:

  server side   root CA "Turnpike Test Root CA" (+ intermediate on demand); server
                certificates for DNS and IP SANs, wildcards included, with a chosen key type;
                an expired one, a not-yet-valid one, a self-signed one, one with the wrong key
  client side   client CA "Turnpike Test Client CA" (+ intermediate on demand) for a truststore;
                client certificates with a chosen CN/O and serial; a client certificate from
                "Turnpike Untrusted Client CA", which no truststore here contains

Files: `<name>.crt` the certificate alone, `<name>.chain.pem` the certificate and the
intermediates above it (never the root: a server sends what the client lacks), `<name>.key`
the private key, PKCS#8, unencrypted. CA certificates go to `<ca-name>.crt`; `truststore()`
writes a bundle of several.

Speed: the CA keys and certificates are made once per process and shared by every `Pki`, so
the CAs are the same in every test directory; leaf keys are fresh for every certificate (a
test that swaps keys between two certificates must see them differ). EC P-256 is the default
everywhere; RSA only where a caller asks for `rsa2048`.
"""

import datetime
import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KEY_TYPES = ("ec256", "ec384", "rsa2048", "ed25519")
# Validity of a certificate relative to now: (not_before, not_after) offsets.
VALIDITIES = {
    "valid": (datetime.timedelta(hours=-1), datetime.timedelta(days=30)),
    "expired": (datetime.timedelta(days=-60), datetime.timedelta(days=-1)),
    "not_yet_valid": (datetime.timedelta(days=30), datetime.timedelta(days=60)),
}
ORG = "Turnpike Tests"
ROOT_CA = "Turnpike Test Root CA"
INTERMEDIATE_CA = "Turnpike Test Intermediate CA"
CLIENT_CA = "Turnpike Test Client CA"
CLIENT_INTERMEDIATE_CA = "Turnpike Test Client Intermediate CA"
UNTRUSTED_CLIENT_CA = "Turnpike Untrusted Client CA"


def generate_key(key_type):
    if key_type == "ec256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "ec384":
        return ec.generate_private_key(ec.SECP384R1())
    if key_type == "rsa2048":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if key_type == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"key type {key_type!r}: one of {', '.join(KEY_TYPES)}")


def _hash_for(signing_key):
    """The digest a CA with this key signs with (Ed25519 takes none)."""
    if isinstance(signing_key, ed25519.Ed25519PrivateKey):
        return None
    if isinstance(signing_key, ec.EllipticCurvePrivateKey) and signing_key.curve.key_size == 384:
        return hashes.SHA384()
    return hashes.SHA256()


def key_pem(key):
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def cert_pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def _now():
    # X.509 times have whole seconds: drop the rest so the records equal what the certificate says.
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def openssl_time(t):
    """A time as OpenSSL prints it, e.g. 'May  8 12:30:02 2031 GMT' (AWS's clientCert.validity
    example uses this form)."""
    return f"{t:%b} {t.day:2d} {t:%H:%M:%S %Y} GMT"


@dataclass(frozen=True)
class CertInfo:
    """One certificate as written: the files and the fields a test compares with."""

    name: str
    cert_path: Path  # this certificate alone
    chain_path: Path  # this certificate + intermediates, no root
    key_path: Path  # PKCS#8 PEM; for `mismatched_key_cert`, a key of another pair
    subject_dn: str  # RFC 2253 (most specific first), e.g. "CN=client-1,O=Example Corp"
    issuer_dn: str
    serial: int
    serial_hex: str  # lowercase, even length, no separators: "0a1b..."
    serial_colon_hex: str  # "0a:1b:..." as AWS's clientCert.serialNumber example shows it
    not_before: datetime.datetime  # UTC, aware
    not_after: datetime.datetime
    dns_names: tuple
    ip_addresses: tuple  # strings
    key_type: str
    sha256_fingerprint: str  # hex, lowercase, of the DER certificate

    @property
    def cert(self):
        return x509.load_pem_x509_certificate(self.cert_path.read_bytes())

    @property
    def pem(self):
        return self.cert_path.read_text()

    @property
    def key(self):
        return serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)


@dataclass(frozen=True)
class CA:
    """A CA's certificate file and details (its key stays in memory, shared per process)."""

    name: str
    cert_path: Path
    subject_dn: str
    serial: int
    not_before: datetime.datetime
    not_after: datetime.datetime

    @property
    def cert(self):
        return x509.load_pem_x509_certificate(self.cert_path.read_bytes())


class _Issuer:
    """A CA in memory: key, certificate, and the chain of intermediates up to its root."""

    def __init__(self, key, cert, above=()):
        self.key = key
        self.cert = cert
        self.above = tuple(above)  # intermediates above this one, nearest first, no root

    @property
    def chain(self):
        """What a leaf issued here sends after itself: this CA unless it is a root, then the rest."""
        return () if self.is_root else (self.cert, *self.above)

    @property
    def is_root(self):
        return self.cert.issuer == self.cert.subject


_ISSUERS = {}  # (ca name, key type) -> _Issuer; one per process, see the module doc


def _name(cn, o=None, ou=None):
    attrs = []
    if o is not None:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, o))
    if ou is not None:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    if cn is not None:
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def _issuer(name, key_type="ec256", parent=None):
    """The named CA, made on first use: a root when `parent` is None, else signed by `parent`."""
    cached = _ISSUERS.get((name, key_type))
    if cached is not None:
        return cached
    key = generate_key(key_type)
    now = _now()
    subject = _name(name, ORG)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=365))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None if parent is None else 0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if parent is None:
        cert = builder.issuer_name(subject).sign(key, _hash_for(key))
        issuer = _Issuer(key, cert)
    else:
        builder = builder.issuer_name(parent.cert.subject).add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(parent.key.public_key()), critical=False
        )
        cert = builder.sign(parent.key, _hash_for(parent.key))
        issuer = _Issuer(key, cert, parent.chain)
    _ISSUERS[(name, key_type)] = issuer
    return issuer


def _slug(text):
    return re.sub(r"[^A-Za-z0-9.-]+", "-", text.replace("*", "star")).strip("-").lower() or "cert"


class Pki:
    """Writes a test PKI's files into `directory` (created if missing).

    `ca_key_type` chooses the key of every CA this Pki signs with (EC P-256 by default; the
    CAs of each key type are made once per process)."""

    def __init__(self, directory, ca_key_type="ec256"):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ca_key_type = ca_key_type
        self._names = set()

    # -- CAs ---------------------------------------------------------------------------------

    def _ca_issuer(self, which):
        k = self.ca_key_type
        if which == ROOT_CA:
            return _issuer(ROOT_CA, k)
        if which == INTERMEDIATE_CA:
            return _issuer(INTERMEDIATE_CA, k, _issuer(ROOT_CA, k))
        if which == CLIENT_CA:
            return _issuer(CLIENT_CA, k)
        if which == CLIENT_INTERMEDIATE_CA:
            return _issuer(CLIENT_INTERMEDIATE_CA, k, _issuer(CLIENT_CA, k))
        if which == UNTRUSTED_CLIENT_CA:
            return _issuer(UNTRUSTED_CLIENT_CA, k)
        raise ValueError(which)

    def _ca(self, which):
        issuer = self._ca_issuer(which)
        path = self.dir / f"{_slug(which)}.crt"
        if not path.exists():
            path.write_bytes(cert_pem(issuer.cert))
        c = issuer.cert
        return CA(
            name=which,
            cert_path=path,
            subject_dn=c.subject.rfc4514_string(),
            serial=c.serial_number,
            not_before=c.not_valid_before_utc,
            not_after=c.not_valid_after_utc,
        )

    @property
    def root(self):
        """The server-side root CA: what a client trusts to reach turnpike (or turnpike, a backend)."""
        return self._ca(ROOT_CA)

    @property
    def intermediate(self):
        """The server-side intermediate, signed by `root`."""
        return self._ca(INTERMEDIATE_CA)

    @property
    def client_ca(self):
        """The client-side root CA: what a domain's mutual-TLS truststore holds."""
        return self._ca(CLIENT_CA)

    @property
    def client_intermediate(self):
        return self._ca(CLIENT_INTERMEDIATE_CA)

    @property
    def untrusted_client_ca(self):
        """A CA no truststore made here contains (its certificate is written only if asked for)."""
        return self._ca(UNTRUSTED_CLIENT_CA)

    def truststore(self, *cas, name="truststore"):
        """Writes the CA certificates `cas` (CA records) into one PEM bundle; returns its path."""
        path = self.dir / f"{_slug(name)}.pem"
        path.write_bytes(b"".join(ca.cert_path.read_bytes() for ca in cas))
        return path

    # -- leaves ------------------------------------------------------------------------------

    def server_cert(self, dns_names, ips=(), key_type="ec256", via_intermediate=False, validity="valid", name=None):
        """A server certificate for `dns_names` (wildcards allowed) and `ips`, signed by `root`,
        or by `intermediate` (and then the chain file holds it) when `via_intermediate`.
        `validity`: "valid" (now-1h .. now+30d), "expired", or "not_yet_valid"."""
        which = INTERMEDIATE_CA if via_intermediate else ROOT_CA
        return self._leaf(
            self._ca_issuer(which),
            subject=_name(_first(dns_names, ips), ORG),
            dns_names=dns_names,
            ips=ips,
            key_type=key_type,
            validity=validity,
            eku=ExtendedKeyUsageOID.SERVER_AUTH,
            name=name,
        )

    def expired_cert(self, dns_names, **kw):
        return self.server_cert(dns_names, validity="expired", **kw)

    def not_yet_valid_cert(self, dns_names, **kw):
        return self.server_cert(dns_names, validity="not_yet_valid", **kw)

    def self_signed_cert(self, dns_names, ips=(), key_type="ec256", name=None):
        """A server certificate that signs itself (not a CA): what `openssl req -x509` gives."""
        return self._leaf(
            None,
            subject=_name(_first(dns_names, ips), ORG),
            dns_names=dns_names,
            ips=ips,
            key_type=key_type,
            validity="valid",
            eku=ExtendedKeyUsageOID.SERVER_AUTH,
            name=name,
        )

    def mismatched_key_cert(self, dns_names, key_type="ec256", name=None):
        """A valid server certificate whose `key_path` holds a fresh key of the same type that
        is not the certificate's."""
        info = self.server_cert(dns_names, key_type=key_type, name=name)
        info.key_path.write_bytes(key_pem(generate_key(key_type)))
        return info

    def client_cert(
        self, cn, o=ORG, ou=None, serial=None, key_type="ec256", via_intermediate=False, validity="valid", name=None
    ):
        """A client certificate (clientAuth) with subject CN=`cn`, O=`o` (and OU=`ou`), signed by
        `client_ca` or, `via_intermediate`, by `client_intermediate`. `serial`: an int, or random."""
        which = CLIENT_INTERMEDIATE_CA if via_intermediate else CLIENT_CA
        return self._leaf(
            self._ca_issuer(which),
            subject=_name(cn, o, ou),
            key_type=key_type,
            validity=validity,
            eku=ExtendedKeyUsageOID.CLIENT_AUTH,
            serial=serial,
            name=name or cn,
        )

    def untrusted_client_cert(self, cn, o=ORG, ou=None, serial=None, key_type="ec256", name=None):
        """Like `client_cert`, but issued by `untrusted_client_ca`."""
        return self._leaf(
            self._ca_issuer(UNTRUSTED_CLIENT_CA),
            subject=_name(cn, o, ou),
            key_type=key_type,
            validity="valid",
            eku=ExtendedKeyUsageOID.CLIENT_AUTH,
            serial=serial,
            name=name or f"untrusted.{cn}",
        )

    def _leaf(self, issuer, subject, key_type, validity, eku, dns_names=(), ips=(), serial=None, name=None):
        if validity not in VALIDITIES:
            raise ValueError(f"validity {validity!r}: one of {', '.join(VALIDITIES)}")
        dns_names = tuple(dns_names)
        ips = tuple(str(ipaddress.ip_address(ip)) for ip in ips)
        key = generate_key(key_type)
        now = _now()
        before, after = VALIDITIES[validity]
        signer_key = key if issuer is None else issuer.key
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject if issuer is None else issuer.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number() if serial is None else serial)
            .not_valid_before(now + before)
            .not_valid_after(now + after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    # RSA key exchange (TLS 1.2 TLS_RSA_* suites) encrypts to the key
                    key_encipherment=key_type == "rsa2048",
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(signer_key.public_key()), critical=False
            )
        )
        sans = [x509.DNSName(d) for d in dns_names] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(signer_key, _hash_for(signer_key))

        name = self._unique(name or _first(dns_names, ips))
        cert_path = self.dir / f"{name}.crt"
        chain_path = self.dir / f"{name}.chain.pem"
        key_path = self.dir / f"{name}.key"
        cert_path.write_bytes(cert_pem(cert))
        chain = () if issuer is None else issuer.chain
        chain_path.write_bytes(cert_pem(cert) + b"".join(cert_pem(c) for c in chain))
        key_path.write_bytes(key_pem(key))
        key_path.chmod(0o600)
        serial_hex = format(cert.serial_number, "x")
        serial_hex = serial_hex.zfill(len(serial_hex) + len(serial_hex) % 2)
        return CertInfo(
            name=name,
            cert_path=cert_path,
            chain_path=chain_path,
            key_path=key_path,
            subject_dn=cert.subject.rfc4514_string(),
            issuer_dn=cert.issuer.rfc4514_string(),
            serial=cert.serial_number,
            serial_hex=serial_hex,
            serial_colon_hex=":".join(serial_hex[i : i + 2] for i in range(0, len(serial_hex), 2)),
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            dns_names=dns_names,
            ip_addresses=ips,
            key_type=key_type,
            sha256_fingerprint=cert.fingerprint(hashes.SHA256()).hex(),
        )

    def _unique(self, name):
        base = _slug(name)
        name, n = base, 1
        while name in self._names:
            n += 1
            name = f"{base}-{n}"
        self._names.add(name)
        return name


def _first(dns_names, ips):
    """The common name for a server certificate: its first DNS name, else its first IP."""
    for x in (*dns_names, *ips):
        return str(x)
    raise ValueError("a server certificate needs at least one DNS name or IP address")
