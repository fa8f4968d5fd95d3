"""System dependencies a test needs: skipped where missing, a failure under CI.

A developer without Chromium or a root shell still gets a green run of what can run, with the
reason for each skip (``-ra``). Under CI (``CI=true``, as CI services set it) the machine is
meant to have everything (``make system-deps assets``), so a missing part is a failure: a skip
there would hide a whole area of the suite behind one line nobody reads.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def unavailable(reason: str) -> NoReturn:
    """Skip the test for ``reason``, or fail it under CI."""
    if under_ci():
        pytest.fail(f"{reason} (CI=true: a missing dependency fails the test)", pytrace=False)
    pytest.skip(reason)
