"""The corrected Node.js sample of both integration guides (§12), run with ``node`` against the
platform: it is accepted, a rerun is a new packet (not a replay), and the document's own
``Content-Length: data.length`` gets the answer that says what went wrong.

Skipped when ``node`` is not installed (``make assets`` needs it, so CI has it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from platform_fixtures import RunningServer
from seed import Seeded, seed_customer

from cloudsms.config import Settings
from cloudsms.domain.codes import ResultCode
from cloudsms.storage.store import Store

DOCS = Path(__file__).resolve().parents[2] / "docs"
GUIDES = ("integration-guide.en.md", "integration-guide.zh.md")
NODE = shutil.which("node")
TESTED = re.compile(r"<!-- tested: node -->\n```js\n(.*?)\n```", re.S)


def sample(guide: str) -> str:
    [code] = TESTED.findall((DOCS / guide).read_text(encoding="utf-8"))
    return str(code)


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[tuple[RunningServer, Seeded]]:
    url = f"sqlite:///{tmp_path / 'cloudsms.db'}"
    store = Store.open(url)
    seeded = seed_customer(store.engine)
    store.close()
    settings = Settings.load(environ={}, database_url=url, role="api", config_poll_s=0.05)
    with RunningServer(settings) as server:
        yield server, seeded


def run_node(code: str, tmp_path: Path, server: RunningServer, seeded: Seeded) -> dict[str, Any]:
    script = tmp_path / "send.js"
    script.write_text(code, encoding="utf-8")
    env = {
        **os.environ,
        "CLOUDSMS_URL": server.url,
        "CLOUDSMS_AUTH_KEY": seeded.auth_key,
        "CLOUDSMS_ROUTE_ID": seeded.route,
    }
    assert NODE is not None
    done = subprocess.run([NODE, str(script)], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    status, _, body = done.stdout.strip().partition(" ")
    assert status == "200", done.stdout
    answer: dict[str, Any] = json.loads(body)
    return answer


def test_both_guides_carry_the_same_program() -> None:
    code = [re.sub(r"//.*", "", sample(guide)) for guide in GUIDES]  # comments are translated
    assert code[0] == code[1]


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_corrected_node_sample_sends_and_reruns(
    platform: tuple[RunningServer, Seeded], tmp_path: Path
) -> None:
    server, seeded = platform
    first = run_node(sample(GUIDES[0]), tmp_path, server, seeded)
    assert first["RESULT_CODE"] == ResultCode.OK, first
    time.sleep(1.05)  # SERIAL and TIME move on every second: a rerun is a new packet
    second = run_node(sample(GUIDES[1]), tmp_path, server, seeded)
    assert second["RESULT_CODE"] == ResultCode.OK, second
    uids = {a["DETAIL_LIST"][0]["SMS_UID"] for a in (first, second)}
    assert len(uids) == 2 and "" not in uids


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_the_documents_content_length_is_told_apart(
    platform: tuple[RunningServer, Seeded], tmp_path: Path
) -> None:
    """With the v2.4 document's ``"Content-Length": data.length`` the Chinese text is cut."""
    server, seeded = platform
    code = sample(GUIDES[0])
    assert "Buffer.byteLength(data)" in code
    answer = run_node(
        code.replace("Buffer.byteLength(data)", "data.length"), tmp_path, server, seeded
    )
    assert answer["RESULT_CODE"] == ResultCode.INVALID_CONTEXT
    assert answer["RESULT_DETAIL"].startswith("the body ended before its JSON did")
