"""`cloudsms demo` (what `make run` runs): its banner's lines work when pasted (issue 12.8),
and the files it leaves in the working directory are ignored by git (issue 12.10).

The banner is pasted into bash as printed; only the report listener's port is changed from
8080 to a free one (the machine may run something there).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_the_banner_lines_work_when_pasted(tmp_path: Path) -> None:
    uip, admin, smsc, listen = free_port(), free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "CLOUDSMS_PORT": str(uip),
        "CLOUDSMS_ADMIN_PORT": str(admin),
        "CLOUDSMS_SIMULATOR_PORT": str(smsc),
    }
    log = tmp_path / "demo.log"
    reports = tmp_path / "reports.log"
    with log.open("w") as out:
        demo = subprocess.Popen(
            [str(BIN / "cloudsms"), "demo"], cwd=tmp_path, env=env, stdout=out, stderr=out
        )
    listener = None
    try:
        deadline = time.monotonic() + 60
        while f"listening on http://127.0.0.1:{admin}/ (admin" not in log.read_text():
            assert demo.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        banner = log.read_text().replace(":8080", f":{listen}").replace("8080", str(listen))
        curl = next(line for line in banner.splitlines() if line.startswith("curl "))
        listen_line = next(line for line in banner.splitlines() if "cloudsms listen" in line)
        callback = next(line for line in banner.splitlines() if "set-callback" in line)

        with reports.open("w") as out:
            listener = subprocess.Popen(
                ["bash", "-c", listen_line.strip().removesuffix("&")],
                cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        run = {"cwd": tmp_path, "env": env, "capture_output": True, "text": True, "timeout": 60}
        set_callback = subprocess.run(["bash", "-c", callback], **run)  # type: ignore[call-overload]
        assert set_callback.returncode == 0, set_callback.stderr
        time.sleep(1.5)  # the platform reads configuration changes within a second

        sent = subprocess.run(["bash", "-c", curl], **run)  # type: ignore[call-overload]
        assert '"RESULT_CODE":1,' in sent.stdout, sent.stdout + sent.stderr
        uid = re.search(r'"SMS_UID":"(\w+)"', sent.stdout)
        assert uid is not None
        deadline = time.monotonic() + 30
        while f"{uid[1]} 852-67000011 2 DELIVERED" not in reports.read_text():
            assert time.monotonic() < deadline, (
                "no report reached the pasted listener:\n" + reports.read_text() + log.read_text()
            )
            time.sleep(0.2)

        # A handset answers: the simulator's inbound message reaches the same listener.
        token_line = next(line for line in banner.splitlines() if "admin token create" in line)
        mo_line = next(line for line in banner.splitlines() if "simulator mo" in line)
        mo = subprocess.run(["bash", "-c", f"{token_line}\n{mo_line}"], **run)  # type: ignore[call-overload]
        assert mo.returncode == 0, mo.stdout + mo.stderr
        deadline = time.monotonic() + 30
        while "from 85261234567 to 12345: YES, see you at 3pm" not in reports.read_text():
            assert time.monotonic() < deadline, (
                "no MO reached the pasted listener:\n" + reports.read_text() + log.read_text()
            )
            time.sleep(0.2)
    finally:
        if listener is not None:
            os.killpg(listener.pid, signal.SIGTERM)
            listener.wait(timeout=30)
        demo.send_signal(signal.SIGTERM)
        demo.wait(timeout=30)

    # What the demo leaves in its working directory (the store and its lock files) is ignored.
    left = sorted(p.name for p in tmp_path.iterdir() if p.name not in ("demo.log", "reports.log"))
    assert "cloudsms.db-writelock" in left, left
    ignored = subprocess.run(
        [
            "git",
            "-C",
            str(REPO),
            "check-ignore",
            "--no-index",
            "--verbose",
            "--non-matching",
            *left,
        ],
        capture_output=True,
        text=True,
    )
    assert not [line for line in ignored.stdout.splitlines() if line.startswith("::")], (
        "not ignored by .gitignore:\n" + ignored.stdout
    )
