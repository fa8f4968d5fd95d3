"""`cloudsms serve` on a port that is taken: one readable line and exit code 2, no traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest


def listening_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def serve(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cloudsms", "serve"],
        env={
            **os.environ,
            "CLOUDSMS_DATABASE_URL": f"sqlite:///{tmp_path / 'cloudsms.db'}",
            "CLOUDSMS_LOG_LEVEL": "warning",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("setting", "what"),
    [("CLOUDSMS_PORT", "UIP endpoint"), ("CLOUDSMS_ADMIN_PORT", "admin listener")],
)
def test_a_taken_port_is_one_readable_error(tmp_path: Path, setting: str, what: str) -> None:
    with listening_socket() as taken:
        port = taken.getsockname()[1]
        free = listening_socket()
        other = free.getsockname()[1]
        free.close()  # a port nobody holds, for the listener that is not under test
        other_setting = "CLOUDSMS_ADMIN_PORT" if setting == "CLOUDSMS_PORT" else "CLOUDSMS_PORT"
        done = serve(tmp_path, **{setting: str(port), other_setting: str(other)})
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[-1] == (
        f"error: cannot listen on 127.0.0.1:{port} for the {what}: Address already in use"
        f" (another cloudsms running? choose another port with {setting}"
        + (" / --port)" if setting == "CLOUDSMS_PORT" else ")")
    )


def test_a_taken_smpp_port_is_one_readable_error(tmp_path: Path) -> None:
    with listening_socket() as taken:
        port = taken.getsockname()[1]
        free = [listening_socket() for _ in range(2)]
        uip, admin = (s.getsockname()[1] for s in free)
        for s in free:
            s.close()
        done = serve(
            tmp_path,
            CLOUDSMS_SMPP_PORT=str(port),
            CLOUDSMS_PORT=str(uip),
            CLOUDSMS_ADMIN_PORT=str(admin),
        )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: cannot listen on 127.0.0.1:{port} for the customers' SMPP server: Address"
        " already in use (another cloudsms running? choose another port with CLOUDSMS_SMPP_PORT)"
    )
