"""``statreport serve`` and an operator's TLS files (SPEC §8 v2): both or neither, checked,
never written."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from core.tls import ensure_self_signed
from statreport.server import free_port
from tests.support import ADMIN_TOKEN


def _serve(data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "statreport", "serve", "--data-dir", str(data_dir)],
        env={
            "PATH": "/usr/bin:/bin",
            "STATREPORT_ADMIN_TOKEN": ADMIN_TOKEN,
            "STATREPORT_PORT": str(free_port()),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def operator_pair(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "own" / "cert.pem", tmp_path / "own" / "real-key.pem"
    ensure_self_signed(cert, key, host="127.0.0.1")
    return cert, key


def test_a_key_alone_is_refused_and_left_as_it_was(
    tmp_path: Path, operator_pair: tuple[Path, Path]
) -> None:
    _, key = operator_pair
    before = _digest(key)
    result = _serve(tmp_path / "data", STATREPORT_TLS_KEY=str(key))
    assert result.returncode == 2, result.stderr
    assert "STATREPORT_TLS_KEY is set but STATREPORT_TLS_CERT is not" in result.stderr
    assert _digest(key) == before
    assert not (tmp_path / "data" / "tls").exists()


def test_a_cert_alone_is_refused_even_with_a_default_tls_folder(
    tmp_path: Path, operator_pair: tuple[Path, Path]
) -> None:
    cert, _ = operator_pair
    data = tmp_path / "data"
    ensure_self_signed(data / "tls" / "cert.pem", data / "tls" / "key.pem", host="127.0.0.1")
    before = _digest(cert)
    result = _serve(data, STATREPORT_TLS_CERT=str(cert))
    assert result.returncode == 2, result.stderr
    assert "STATREPORT_TLS_CERT is set but STATREPORT_TLS_KEY is not" in result.stderr
    assert _digest(cert) == before


def test_a_missing_or_unparsable_file_is_named(
    tmp_path: Path, operator_pair: tuple[Path, Path]
) -> None:
    cert, key = operator_pair
    missing = tmp_path / "nowhere" / "cert.pem"
    result = _serve(
        tmp_path / "data", STATREPORT_TLS_CERT=str(missing), STATREPORT_TLS_KEY=str(key)
    )
    assert result.returncode == 2
    assert f"STATREPORT_TLS_CERT {missing} does not exist" in result.stderr
    assert not missing.exists()
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key")
    result = _serve(
        tmp_path / "data", STATREPORT_TLS_CERT=str(cert), STATREPORT_TLS_KEY=str(garbage)
    )
    assert result.returncode == 2
    assert f"STATREPORT_TLS_KEY {garbage} is not an unencrypted PEM private key" in result.stderr
    assert garbage.read_text() == "not a key"


def test_a_key_of_another_certificate_is_refused(
    tmp_path: Path, operator_pair: tuple[Path, Path]
) -> None:
    cert, _ = operator_pair
    other_cert, other_key = tmp_path / "other" / "cert.pem", tmp_path / "other" / "key.pem"
    ensure_self_signed(other_cert, other_key, host="127.0.0.1")
    result = _serve(
        tmp_path / "data", STATREPORT_TLS_CERT=str(cert), STATREPORT_TLS_KEY=str(other_key)
    )
    assert result.returncode == 2
    assert "is not the private key of the certificate" in result.stderr
