"""TLS for the test exchange: a self-signed certificate for clients that insist on wss/https.

Some clients refuse ``ws://`` (cryptofeed) or are simply configured for ``wss://``. The
exchange then serves TLS with a certificate that a test trusts explicitly (:func:`client_context`,
or ``SSL_CERT_FILE`` for clients that load the default store). The certificate is made with the
``cryptography`` package when it is installed (ccxt and the interop extra bring it) and with the
``openssl`` command otherwise, so TLS needs no dependency of its own; it is never on by default.
"""

from __future__ import annotations

import datetime
import importlib.util
import ipaddress
import shutil
import ssl
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

#: A test certificate outlives any test run and is not worth renewing.
VALID_DAYS = 30
#: Names every local client may connect by, whatever address the exchange binds.
LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")

Method = Literal["auto", "cryptography", "openssl"]


class TlsUnavailableError(RuntimeError):
    """Neither the ``cryptography`` package nor the ``openssl`` command is available."""


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """A PEM certificate and its private key."""

    cert: Path
    key: Path


def self_signed(
    directory: Path, hosts: Sequence[str] = LOCAL_NAMES, *, method: Method = "auto"
) -> TlsFiles:
    """Write ``cert.pem``/``key.pem`` for ``hosts`` (names or IP addresses) into ``directory``."""
    files = TlsFiles(directory / "cert.pem", directory / "key.pem")
    names = list(dict.fromkeys([*hosts, *LOCAL_NAMES]))
    if method == "auto":
        method = "cryptography" if _has_cryptography() else "openssl"
    if method == "cryptography":
        _with_cryptography(files, names)
    else:
        _with_openssl(files, names)
    return files


def server_context(files: TlsFiles) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(files.cert, files.key)
    return context


def client_context(cert: Path) -> ssl.SSLContext:
    """A client context that trusts ``cert`` (and checks the host name against it)."""
    return ssl.create_default_context(cafile=str(cert))


def _has_cryptography() -> bool:
    return importlib.util.find_spec("cryptography") is not None


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _with_cryptography(files: TlsFiles, names: Sequence[str]) -> None:
    # Optional: mypy on a venv without it must not fail, nor on one with it flag the ignore.
    from cryptography import x509  # type: ignore[import-not-found, unused-ignore]
    from cryptography.hazmat.primitives import (  # type: ignore[import-not-found, unused-ignore]
        hashes,
        serialization,
    )
    from cryptography.hazmat.primitives.asymmetric import (  # type: ignore[import-not-found, unused-ignore]
        ec,
    )
    from cryptography.x509.oid import NameOID  # type: ignore[import-not-found, unused-ignore]

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    alt_names: list[x509.GeneralName] = [
        x509.IPAddress(ipaddress.ip_address(n)) if _is_ip(n) else x509.DNSName(n) for n in names
    ]
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))  # tolerate clock skew
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False
        )
        .add_extension(_key_usage(x509), critical=True)
        .sign(key, hashes.SHA256())
    )
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _with_openssl(files: TlsFiles, names: Sequence[str]) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise TlsUnavailableError(
            "TLS needs the 'cryptography' package or the 'openssl' command; "
            "pip install cryptography, or pass --cert/--key"
        )
    alt = ",".join(f"IP:{n}" if _is_ip(n) else f"DNS:{n}" for n in names)
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(files.key),
            "-out",
            str(files.cert),
            "-days",
            str(VALID_DAYS),
            "-subj",
            f"/CN={names[0]}",
            "-addext",
            f"subjectAltName={alt}",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,digitalSignature,keyCertSign",
        ],
        check=True,
        capture_output=True,
    )


def _key_usage(x509: Any) -> Any:
    """Signs the TLS handshake and, being its own CA, itself (strict X.509 checks want both)."""
    used = {"digital_signature", "key_cert_sign"}
    names = (
        "digital_signature",
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "key_cert_sign",
        "crl_sign",
        "encipher_only",
        "decipher_only",
    )
    return x509.KeyUsage(**{name: name in used for name in names})
