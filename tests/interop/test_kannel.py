"""Interop with Kannel 1.4 (Debian ``kannel``; ``make system-deps``) driving our simulator.

Kannel's bearerbox binds to the in-process :class:`SmscSimulator` as a transceiver ESME
(``smsc = smpp``); its smsbox takes HTTP sendsms requests and calls each message's ``dlr-url``
as receipts come back. One GSM message and one long UCS-2 message go in over HTTP; the test
checks what the simulator reassembled and that our deliver_sm receipts reached Kannel's DLR
matching (``%d`` = 1, delivered). Every port is a free one on 127.0.0.1, the configuration is
written to tmp_path, and the boxes are killed on the way out. Without bearerbox the test skips,
except under CI (CI=true), where a missing system dependency is a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from kannel_config import kannel_conf

from cloudsms.simulator import SmscSimulator

SHORT_GSM = "Hello from Kannel: 5 @ 2 = £10, ok?"
LONG_UCS2 = "互通测试：这是一条经过 Kannel 发送给我们模拟器的长短信，需要拆分成几段再重新组装。" * 3
SYSTEM_ID, PASSWORD = "kannel", "secret"
SOURCE, DESTINATION = "CloudSMS", "85261234567"
#: Budget for each wait; the whole test takes a few seconds when things work.
STEP_TIMEOUT_S = 15.0


def _tool(name: str) -> str | None:
    path = os.environ.get("PATH", "") + os.pathsep + "/usr/sbin" + os.pathsep + "/sbin"
    return shutil.which(name, path=path)


@pytest.fixture
def kannel_boxes() -> tuple[str, str]:
    bearerbox, smsbox = _tool("bearerbox"), _tool("smsbox")
    if bearerbox is None or smsbox is None:
        problem = (
            "Kannel's bearerbox/smsbox are not installed (apt-get install kannel: make system-deps)"
        )
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(problem)
        pytest.skip(problem)
    return bearerbox, smsbox


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def until(
    check: Callable[[], bool],
    what: str,
    logs: Path,
    procs: tuple[asyncio.subprocess.Process, ...] = (),
) -> None:
    """Poll ``check`` for at most STEP_TIMEOUT_S; on a timeout or a box exiting, fail with the
    tails of Kannel's logs."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STEP_TIMEOUT_S
    while not check():
        dead = [p.returncode for p in procs if p.returncode is not None]
        if dead or loop.time() > deadline:
            tails = []
            for name in ("bearerbox.out", "bearerbox.log", "smsbox.out", "smsbox.log"):
                path = logs / name
                if path.exists():
                    lines = path.read_text(errors="replace").splitlines()[-30:]
                    tails.append(f"--- {path}\n" + "\n".join(lines))
            why = f"a Kannel box exited ({dead})" if dead else "timed out"
            pytest.fail(f"{why} waiting for {what}\n" + "\n".join(tails))
        await asyncio.sleep(0.05)


def accepts(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextlib.asynccontextmanager
async def box(argv: list[str], out: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    with out.open("wb") as sink:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=sink, stderr=sink
        )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                async with asyncio.timeout(5):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()


@contextlib.asynccontextmanager
async def dlr_server(calls: list[dict[str, str]]) -> AsyncIterator[int]:
    async def on_dlr(request: web.Request) -> web.Response:
        calls.append(dict(request.query))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/dlr", on_dlr)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


async def test_kannel_through_our_simulator(kannel_boxes: tuple[str, str], tmp_path: Path) -> None:
    bearerbox, smsbox = kannel_boxes
    sim = SmscSimulator("127.0.0.1", 0, accounts={SYSTEM_ID: PASSWORD}, seed=11)
    await sim.start()
    dlrs: list[dict[str, str]] = []
    admin, boxport, sendsms = free_port(), free_port(), free_port()
    conf = tmp_path / "kannel.conf"
    conf.write_text(
        kannel_conf(
            tmp_path,
            smsc_id="sim",
            smsc_port=sim.port,
            username=SYSTEM_ID,
            password=PASSWORD,
            admin=admin,
            box=boxport,
            sendsms=sendsms,
        )
    )

    def bound() -> bool:
        return any(c.system_id == SYSTEM_ID and c.can_receive for c in sim.connections)

    def reported(tag: str, status: str) -> bool:
        return any(d["tag"] == tag and d["status"] == status for d in dlrs)

    def done() -> bool:
        return (
            len(sim.received) == 2
            and sim.receipts_acked == 2
            and all(reported(t, s) for t in ("short", "long") for s in ("8", "1"))
        )

    try:
        async with (
            asyncio.timeout(50),
            dlr_server(dlrs) as dlr_port,
            box([bearerbox, str(conf)], tmp_path / "bearerbox.out") as bb,
        ):
            await until(lambda: bound() and accepts(boxport), "bearerbox's bind", tmp_path, (bb,))
            async with box([smsbox, str(conf)], tmp_path / "smsbox.out") as sb:
                await until(lambda: accepts(sendsms), "smsbox's sendsms port", tmp_path, (bb, sb))
                async with aiohttp.ClientSession() as http:
                    for tag, text, coding in (
                        ("short", SHORT_GSM, {}),
                        ("long", LONG_UCS2, {"coding": "2", "charset": "UTF-8"}),
                    ):
                        params = {
                            "username": "tester",
                            "password": "tester",
                            "from": SOURCE,
                            "to": DESTINATION,
                            "text": text,
                            "dlr-mask": "31",
                            # Kannel fills in %d (DLR type), %F (our message id), %A (receipt text)
                            "dlr-url": f"http://127.0.0.1:{dlr_port}/dlr?tag={tag}"
                            "&status=%d&fid=%F&answer=%A",
                            **coding,
                        }
                        url = f"http://127.0.0.1:{sendsms}/cgi-bin/sendsms"
                        async with http.get(url, params=params) as resp:
                            body = await resp.text()
                        assert resp.status == 202 and body.startswith("0: Accepted"), body
                await until(done, "both messages and their receipts", tmp_path, (bb, sb))
    finally:
        await sim.stop()

    # What our simulator reassembled from Kannel's submit_sm PDUs.
    short, long = sorted(sim.received, key=lambda m: m.segments)
    assert short.text == SHORT_GSM  # GSM 03.38 default alphabet, '@' and '£' included
    assert short.data_coding == 0 and short.segments == 1
    assert (short.source_addr, short.destination_addr) == (SOURCE, DESTINATION)
    assert short.registered_delivery & 0x01
    assert long.text == LONG_UCS2
    assert long.data_coding == 8 and long.concatenation == "udh8"
    assert long.segments == -(-len(LONG_UCS2) // 67)  # 67 UCS-2 characters after a 6-octet UDH

    # Kannel asks for a receipt on the first segment of a split message only, and matches it
    # (by the receipted_message_id) to the whole message; it acknowledged each deliver_sm.
    firsts = {"short": short.message_ids[0], "long": long.message_ids[0]}
    assert sorted(d.message_id for d in sim.deliveries) == sorted(firsts.values())
    assert all(d.statuses == [0] and d.via == "trx" for d in sim.deliveries)
    for tag, message_id in firsts.items():
        calls = [d for d in dlrs if d["tag"] == tag]
        assert {d["fid"] for d in calls} == {message_id}, calls
        delivered = [d for d in calls if d["status"] == "1"]
        assert len(delivered) == 1, calls
        assert delivered[0]["answer"].startswith(f"id:{message_id} sub:001 dlvrd:001 ")
        assert "stat:DELIVRD err:000" in delivered[0]["answer"]
        assert any(d["status"] == "8" for d in calls), calls  # SMSC accepted (submit_sm_resp)
