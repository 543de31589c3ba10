"""Self-signed certificates made with openssl, for daemons that serve TLS in tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

LOOPBACK_NAMES = "IP:127.0.0.1,DNS:localhost"


def make_certificate(directory: Path, names: str = LOOPBACK_NAMES) -> tuple[Path, Path]:
    """A certificate (its own CA) and key for the subjectAltName `names`, in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=vcm test",
            "-addext",
            f"subjectAltName={names}",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key
