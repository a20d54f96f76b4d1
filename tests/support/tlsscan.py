"""Which TLS protocol versions and cipher suites a server accepts, asked of a real scanner.

`scan(host, port, sni)` runs sslyze (PyPI, pinned in tests/requirements.txt) against one
listener and returns the accepted protocol versions ("SSLv2", "SSLv3", "TLSv1.0" .. "TLSv1.3")
and cipher suites by their IANA names ("TLS_AES_128_GCM_SHA256",
"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"). sslyze offers every suite it knows one at a time,
through the two OpenSSL builds its `nassl` wheel ships (a legacy one for SSLv2 .. TLS 1.1 and
old suites, a modern one for TLS 1.2 and 1.3), so what it reports does not depend on what the
machine's OpenSSL still allows.

It never turns a failure into "nothing accepted": if the scanner cannot reach the server or a
scan of one version errs, `ScanError` says so, since an empty set is what a policy test would
otherwise take as proof that a version is refused.

Limits: sslyze always sends SNI (no scan of the no-SNI default certificate here), and it counts
a suite as refused when the handshake times out (it does that for servers that stall on an old
version), so a server too slow to answer within `timeout` looks as if it refused.
"""

import socket
from dataclasses import dataclass, field
from pathlib import Path

PROTOCOLS = ("SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")
# sslyze's per-version cipher suite scans, by our protocol names
_COMMANDS = {
    "SSLv2": "ssl_2_0_cipher_suites",
    "SSLv3": "ssl_3_0_cipher_suites",
    "TLSv1.0": "tls_1_0_cipher_suites",
    "TLSv1.1": "tls_1_1_cipher_suites",
    "TLSv1.2": "tls_1_2_cipher_suites",
    "TLSv1.3": "tls_1_3_cipher_suites",
}


class ScanError(Exception):
    pass


@dataclass(frozen=True)
class ScanResult:
    protocols: frozenset  # accepted protocol versions, e.g. {"TLSv1.2", "TLSv1.3"}
    cipher_suites: frozenset  # IANA names accepted under any version
    by_protocol: dict = field(default_factory=dict)  # version -> frozenset of IANA names (accepted versions only)
    # Whether the server asked for a client certificate: "DISABLED", "OPTIONAL" (asked, but the
    # handshake went on without one) or "REQUIRED"; None when the scan presented one.
    client_auth: str = None


def available():
    """Whether the scanner can be imported (tests decide whether that is a skip or a failure)."""
    try:
        import sslyze  # noqa: F401
    except ImportError:
        return False
    return True


def scan(host, port, sni, protocols=PROTOCOLS, client_cert=None, client_key=None, timeout=5):
    """Scans `host:port` (an IP address or a name resolved here) sending `sni` as the server
    name, for the versions in `protocols`. `client_cert` / `client_key`: PEM paths presented
    when the server asks for a client certificate (a chain file is fine). Returns ScanResult."""
    from sslyze import (
        ClientAuthenticationCredentials,
        Scanner,
        ScanCommand,
        ScanCommandAttemptStatusEnum,
        ServerNetworkConfiguration,
        ServerNetworkLocation,
        ServerScanRequest,
        ServerScanStatusEnum,
    )

    unknown = set(protocols) - set(PROTOCOLS)
    if unknown:
        raise ValueError(f"unknown protocol versions {sorted(unknown)}: one of {PROTOCOLS}")
    ip = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)[0][4][0]
    credentials = None
    if client_cert is not None:
        credentials = ClientAuthenticationCredentials(
            certificate_chain_path=Path(client_cert), key_path=Path(client_key or client_cert)
        )
    request = ServerScanRequest(
        server_location=ServerNetworkLocation(hostname=sni, port=port, ip_address=ip),
        network_configuration=ServerNetworkConfiguration(
            tls_server_name_indication=sni,
            tls_client_auth_credentials=credentials,
            network_timeout=timeout,
            network_max_retries=1,
        ),
        scan_commands={ScanCommand(_COMMANDS[p]) for p in protocols},
    )
    scanner = Scanner()
    scanner.queue_scans([request])
    (result,) = list(scanner.get_results())
    if result.scan_status != ServerScanStatusEnum.COMPLETED:
        raise ScanError(
            f"sslyze could not scan {host}:{port} (SNI {sni}): {result.scan_status.value}\n"
            f"{result.connectivity_error_trace or ''}"
        )

    by_protocol = {}
    for p in protocols:
        attempt = getattr(result.scan_result, _COMMANDS[p])
        if attempt.status != ScanCommandAttemptStatusEnum.COMPLETED:
            raise ScanError(f"sslyze {p} scan of {host}:{port} failed: {attempt.error_reason}\n{attempt.error_trace}")
        accepted = frozenset(a.cipher_suite.name for a in attempt.result.accepted_cipher_suites)
        if accepted:
            by_protocol[p] = accepted
    return ScanResult(
        protocols=frozenset(by_protocol),
        cipher_suites=frozenset().union(*by_protocol.values()),
        by_protocol=by_protocol,
        client_auth=None if credentials else result.connectivity_result.client_auth_requirement.value,
    )
