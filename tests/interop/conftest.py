"""Interop tests need perl with Net::SMPP (Debian: libnet-smpp-perl; `make system-deps`)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest


def _net_smpp_problem() -> str | None:
    if shutil.which("perl") is None:
        return "perl is not installed"
    probe = subprocess.run(
        ["perl", "-MNet::SMPP", "-e1"], capture_output=True, text=True, timeout=30
    )
    if probe.returncode != 0:
        return "Net::SMPP cannot be loaded (install libnet-smpp-perl: make system-deps)"
    return None


@pytest.fixture(scope="session")
def net_smpp() -> None:
    problem = _net_smpp_problem()
    if problem is not None:
        # Under CI a missing system dependency is a failure, not a silent skip.
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(problem)
        pytest.skip(problem)
