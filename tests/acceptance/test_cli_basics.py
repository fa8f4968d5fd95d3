"""The CLI's first minute: --version, -h, and errors that name the file or database (issue 12.10).

Each command runs as the installed console script, the way an operator types it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

import cloudsms

BIN = Path(sys.executable).parent


def cloudsms_cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "cloudsms"), *args],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_version_and_short_help(tmp_path: Path) -> None:
    assert cloudsms.__version__ == version("cloudsms")
    for flag in ("--version", "-V"):
        done = cloudsms_cli(flag, cwd=tmp_path)
        assert (done.returncode, done.stdout) == (0, f"cloudsms {cloudsms.__version__}\n")
    for args in (["-h"], ["customers", "-h"], ["customers", "create", "-h"]):
        done = cloudsms_cli(*args, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert "Usage: cloudsms" in done.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--ca", "nope.pem"], "error: CA bundle nope.pem: No such file or directory"),
        (["--cert", "nope.pem"], "error: client certificate nope.pem: No such file or directory"),
        (
            ["--cert", "junk.pem"],
            "error: client certificate junk.pem: not a PEM certificate with its private key,"
            " or the key does not match",
        ),
    ],
)
def test_send_names_the_tls_file_it_cannot_use(
    tmp_path: Path, args: list[str], expected: str
) -> None:
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    done = cloudsms_cli(
        "send", "--url", "https://127.0.0.1:9/x", "--key", "k", "--route", "R",
        "--to", "852-67000011", "--text", "hi", *args, cwd=tmp_path,
    )  # fmt: skip
    assert (done.returncode, done.stderr.strip()) == (2, expected)


def test_listen_and_serve_name_the_tls_file_they_cannot_use(tmp_path: Path) -> None:
    listen = cloudsms_cli(
        "listen", "--key", "k", "--port", "9", "--tls-cert", "nope.pem", cwd=tmp_path
    )
    assert listen.returncode == 2
    assert listen.stderr.strip() == "error: TLS file nope.pem: No such file or directory"

    db = f"sqlite:///{tmp_path / 'cloudsms.db'}"
    serve = cloudsms_cli(
        "serve", cwd=tmp_path, CLOUDSMS_DATABASE_URL=db, CLOUDSMS_TLS_CERT="cert.pem",
        CLOUDSMS_TLS_KEY="key.pem",
    )  # fmt: skip
    assert serve.returncode == 2
    assert "Traceback" not in serve.stderr
    assert serve.stderr.strip().splitlines()[-1] == (
        "error: tls_cert (CLOUDSMS_TLS_CERT) cert.pem: No such file or directory"
    )


def test_a_sqlite_file_in_a_missing_directory_is_named(tmp_path: Path) -> None:
    url = "sqlite:///no-such-dir/cloudsms.db"
    done = cloudsms_cli("--database-url", url, "db", "upgrade", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "error: database error: database file no-such-dir/cloudsms.db:"
        " directory no-such-dir does not exist"
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # SQLAlchemy cannot parse this one (port "abc"): the message quotes the URL as given.
        (
            "postgresql://ops:s3cret-pw@db:abc/x",
            "error: not a database URL: 'postgresql://ops:***@db:abc/x'",
        ),
        (
            "postgresql://ops:s3cret-pw@127.0.0.1:9/x",
            "error: database error: postgresql://ops:***@127.0.0.1:9/x: connection failed:",
        ),
    ],
)
@pytest.mark.parametrize("command", [["db", "upgrade"], ["customers", "list"], ["serve"]])
def test_a_wrong_database_url_is_named_without_its_password(
    tmp_path: Path, url: str, expected: str, command: list[str]
) -> None:
    done = cloudsms_cli("--database-url", url, *command, cwd=tmp_path)
    assert done.returncode in (1, 2)
    assert "s3cret-pw" not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    line = done.stderr.strip().splitlines()[-1]
    if command == ["serve"]:  # serve migrates first: "could not migrate the database: …"
        expected = expected.replace("database error:", "could not migrate the database:")
    assert line.startswith(expected), line
