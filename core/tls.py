"""The server's TLS files: an operator's own, checked and never written; or a self-signed one."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

T = TypeVar("T")


class TlsFilesInvalid(Exception):
    """The configured TLS files cannot be used; the message names the file and the fix."""


def check_tls_files(cert: Path | None, key: Path | None) -> bool:
    """Check an operator's certificate and key (SPEC §8 v2): both or neither, each readable
    and parsable, the key the certificate's. Never writes either file.

    Returns True when both were given, False when neither was (self-signed is then used).
    """
    if cert is None and key is None:
        return False
    if cert is None or key is None:
        given, missing = (
            ("STATREPORT_TLS_CERT", "STATREPORT_TLS_KEY")
            if key is None
            else ("STATREPORT_TLS_KEY", "STATREPORT_TLS_CERT")
        )
        raise TlsFilesInvalid(
            f"{given} is set but {missing} is not: give both (your certificate and its private "
            "key), or neither for a self-signed certificate in the data directory."
        )
    certificate = _load(
        cert, "STATREPORT_TLS_CERT", "a PEM certificate", x509.load_pem_x509_certificate
    )
    private_key = _load(
        key,
        "STATREPORT_TLS_KEY",
        "an unencrypted PEM private key",
        lambda data: serialization.load_pem_private_key(data, password=None),
    )
    if certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        raise TlsFilesInvalid(
            f"STATREPORT_TLS_KEY {key} is not the private key of the certificate {cert}; "
            "give the key that the certificate was issued for."
        )
    return True


def _load(path: Path, variable: str, kind: str, parse: Callable[[bytes], T]) -> T:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise TlsFilesInvalid(f"{variable} {path} does not exist; check the path.") from None
    except IsADirectoryError:
        raise TlsFilesInvalid(f"{variable} {path} is a directory; give the file.") from None
    except OSError as exc:
        raise TlsFilesInvalid(
            f"{variable} {path} cannot be read ({exc.strerror}); check its permissions."
        ) from None
    try:
        return parse(data)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise TlsFilesInvalid(f"{variable} {path} is not {kind} ({exc}).") from None


def fingerprint(cert_path: Path) -> str:
    """The SHA-256 fingerprint of a PEM certificate, as colon-separated hex."""
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA256()))


def ensure_self_signed(cert_path: Path, key_path: Path, *, host: str) -> bool:
    """Create a self-signed certificate for localhost and ``host`` unless one exists; only
    for the data directory's default paths, never for files an operator gave.

    Returns True when a new certificate was written.
    """
    if cert_path.exists() and key_path.exists():
        return False
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    addresses = {"127.0.0.1", "::1"}
    try:
        ipaddress.ip_address(host)
        if host not in ("0.0.0.0", "::"):  # noqa: S104 - comparing, not binding
            addresses.add(host)
    except ValueError:
        if host != "localhost":
            names.append(x509.DNSName(host))
    names.extend(x509.IPAddress(ipaddress.ip_address(a)) for a in sorted(addresses))
    now = datetime.now(UTC)
    cert_bytes, key_bytes = self_signed_certificate(
        names,
        not_before=now - timedelta(minutes=5),
        not_after=now + timedelta(days=825),
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key_bytes)
    cert_path.write_bytes(cert_bytes)
    return True


def self_signed_certificate(
    names: list[x509.GeneralName], *, not_before: datetime, not_after: datetime
) -> tuple[bytes, bytes]:
    """A new P-256 key and a self-signed server certificate for ``names``, both PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "statreport self-signed")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_bytes
