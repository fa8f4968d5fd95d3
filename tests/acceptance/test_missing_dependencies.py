"""The suite's rule for missing system dependencies, checked by running pytest as a subprocess:
a test that needs Chromium or a PostgreSQL cluster of its own is skipped, with the reason, on a
developer's machine without them, and FAILS under CI (``CI=true``), where a skip would hide it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BROWSER_TEST = "tests/browser/test_console_browser.py"
PG_RESTART_TEST = (
    "tests/acceptance/test_crash_pipeline.py::test_postgres_restart_under_load_loses_nothing"
)


def run_pytest(node: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "CI"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", node],
        cwd=ROOT, env={**environ, **env}, capture_output=True, text=True, timeout=240,
    )  # fmt: skip


def test_browser_test_reads_cloudsms_chromium_and_fails_under_ci_without_it() -> None:
    # CLOUDSMS_CHROMIUM survives tests/conftest.py's clean-up: the test looks where it says.
    skipped = run_pytest(BROWSER_TEST, CLOUDSMS_CHROMIUM="/nonexistent/chromium")
    assert skipped.returncode == 0, skipped.stdout[-3000:]
    assert "SKIPPED" in skipped.stdout and "no Chromium at /nonexistent/chromium" in skipped.stdout

    failed = run_pytest(BROWSER_TEST, CLOUDSMS_CHROMIUM="/nonexistent/chromium", CI="true")
    assert failed.returncode == 1, failed.stdout[-3000:]
    assert "no Chromium at /nonexistent/chromium" in failed.stdout
    assert "CI=true: a missing dependency fails the test" in failed.stdout


def test_postgres_restart_test_fails_under_ci_without_its_cluster_tools() -> None:
    # A PATH without pg_createcluster (the interpreter is named by its full path).
    path = str(Path(sys.executable).parent)
    skipped = run_pytest(PG_RESTART_TEST, PATH=path)
    assert skipped.returncode == 0, skipped.stdout[-3000:]
    assert "SKIPPED" in skipped.stdout and "PostgreSQL cluster tools" in skipped.stdout

    failed = run_pytest(PG_RESTART_TEST, PATH=path, CI="true")
    assert failed.returncode == 1, failed.stdout[-3000:]
    assert "PostgreSQL cluster tools" in failed.stdout and "CI=true" in failed.stdout
