"""`cloudsms serve`'s process layout (issue 14.4): two processes by default on two cores.

Real processes over real sockets: the process the operator starts serves the endpoints and runs
its worker as a child; messages go through the child to the built-in simulator; a worker that
dies is started again; the worker does not outlive a killed API process; SIGTERM stops both;
``--processes 1`` runs one process; a bad value is refused in one line.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import re
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from serve_helpers import BIN, cli, free_port, post, wait_for

from cloudsms.config import Settings
from cloudsms.domain.pipeline import LocalClaim, OutboundMessage
from cloudsms.exceptions import ConfigError
from cloudsms.runtime.layout import (
    ROOM_ENV,
    WAKE_ENV,
    WorkerProcess,
    process_count,
    wake_listener,
)

UTC8 = dt.timezone(dt.timedelta(hours=8))
WORKER = re.compile(r"worker process started \(pid (\d+)\)")


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def until(check: object, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(check) and check():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout} s")


class Site:
    """A demo store and the environment of `cloudsms serve` on free ports."""

    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path
        self.uip, admin, smsc = free_port(), free_port(), free_port()
        self.env = {
            **os.environ,
            "CLOUDSMS_DATABASE_URL": f"sqlite:///{tmp_path / 'cloudsms.db'}",
            "CLOUDSMS_PORT": str(self.uip),
            "CLOUDSMS_ADMIN_PORT": str(admin),
            "CLOUDSMS_SIMULATOR_PORT": str(smsc),
        }
        self.env.pop("CLOUDSMS_PROCESSES", None)
        banner = cli("demo", "--no-serve", env=self.env, cwd=tmp_path)
        key = re.search(r"AUTH_KEY:\s+(\S+)", banner)
        assert key is not None
        self.key = key[1]
        self.log = tmp_path / "serve.log"
        self.serial = 0

    @contextmanager
    def serve(self, *args: str) -> Iterator[subprocess.Popen[bytes]]:
        with self.log.open("w") as out:
            server = subprocess.Popen(
                [str(BIN / "cloudsms"), "serve", *args],
                env=self.env, cwd=self.dir, stdout=out, stderr=out,
            )  # fmt: skip
        try:
            wait_for(self.log, lambda line: "(admin listener" in line, "admin listener")
            yield server
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()

    def send(self) -> str:
        self.serial += 1
        packet: dict[str, object] = {
            "METHOD": "SMS_SEND_REQUEST", "TYPE": "REQUEST", "SERIAL": self.serial,
            "TIME": dt.datetime.now(UTC8).strftime("%Y-%m-%d %H:%M:%S"), "AUTH_KEY": self.key,
            "ROUTE_ID": "DEMO", "VERSION": "2021-01-01", "SMS_CONTENT": "layout",
            "MULTI_MSISDN_LIST": [{"DEST_MSISDN": f"6700{self.serial:04d}", "COUNTRY_CODE": 852}],
        }  # fmt: skip
        answer = post(f"http://127.0.0.1:{self.uip}/dave/io", packet)
        assert answer["RESULT_CODE"] == 1, answer
        details = answer["DETAIL_LIST"]
        assert isinstance(details, list)
        uid: str = details[0]["SMS_UID"]
        return uid

    def state(self, uid: str) -> str | None:
        with contextlib.closing(sqlite3.connect(self.dir / "cloudsms.db")) as db:
            row = db.execute("SELECT state FROM messages WHERE sms_uid = ?", (uid,)).fetchone()
        return None if row is None else str(row[0])

    def delivered(self, uid: str) -> None:
        until(lambda: self.state(uid) == "delivered", f"{uid} delivered")


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return Site(tmp_path)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="auto runs one process on one core")
def test_default_is_an_api_process_supervising_its_worker(site: Site) -> None:
    with site.serve() as server:
        text = wait_for(site.log, lambda line: "worker process started" in line, "worker start")
        first = WORKER.search(text)
        assert first is not None
        worker = int(first[1])
        assert children(server.pid) == [worker]
        site.delivered(site.send())  # the worker process runs the carrier link

        os.kill(worker, signal.SIGKILL)  # a worker that dies is started again
        wait_for(site.log, lambda line: "exited with status -9" in line, "worker exit logged")
        until(lambda: len(WORKER.findall(site.log.read_text())) == 2, "worker started again")
        second = int(WORKER.findall(site.log.read_text())[1])
        assert second != worker and children(server.pid) == [second]
        site.delivered(site.send())

        server.send_signal(signal.SIGTERM)  # stops both, the worker first
        assert server.wait(timeout=60) in (0, -signal.SIGTERM)
        until(lambda: not alive(second), "worker stopped with the API process")
    assert "starting it again" not in site.log.read_text().split("SIGTERM received")[-1]


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="auto runs one process on one core")
def test_the_api_process_claims_messages_for_its_worker_as_it_accepts_them(site: Site) -> None:
    """Issue 14: the worker tells the API process its room; the group commit writes what it
    accepts QUEUED under the worker's claim and sends the messages down the pipe, so the
    worker's claim query never rewrites them (a trigger counts those rewrites)."""
    with contextlib.closing(sqlite3.connect(site.dir / "cloudsms.db")) as db:
        db.executescript(
            "CREATE TABLE claim_rewrites (n INTEGER); INSERT INTO claim_rewrites VALUES (0);"
            " CREATE TRIGGER count_claims AFTER UPDATE OF state ON messages"
            " WHEN OLD.state = 'accepted' AND NEW.state = 'queued'"
            " BEGIN UPDATE claim_rewrites SET n = n + 1; END;"
        )
    with site.serve():
        wait_for(site.log, lambda line: "worker process started" in line, "worker start")
        site.delivered(site.send())  # the worker is up, bound, and has told its room
        time.sleep(0.5)
        with contextlib.closing(sqlite3.connect(site.dir / "cloudsms.db")) as db:
            before = db.execute("SELECT n FROM claim_rewrites").fetchone()[0]
        uids = [site.send() for _ in range(20)]
        for uid in uids:
            site.delivered(uid)
        with contextlib.closing(sqlite3.connect(site.dir / "cloudsms.db")) as db:
            after = db.execute("SELECT n FROM claim_rewrites").fetchone()[0]
            claimers = {
                row[0]
                for row in db.execute(
                    f"SELECT claimed_by FROM messages WHERE sms_uid IN ({','.join('?' * 20)})",
                    uids,
                )
            }
    assert after == before  # none was written ACCEPTED and claimed afterwards
    assert len(claimers) == 1 and None not in claimers  # all under the worker's one claim


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="auto runs one process on one core")
def test_worker_does_not_outlive_a_killed_api_process(site: Site) -> None:
    with site.serve() as server:
        text = wait_for(site.log, lambda line: "worker process started" in line, "worker start")
        found = WORKER.search(text)
        assert found is not None
        worker = int(found[1])
        server.kill()
        server.wait()
        until(lambda: not alive(worker), "orphan worker stopped", timeout=40)
    with site.serve("--processes", "1") as server:  # restart: what was accepted goes out
        assert children(server.pid) == []
        site.delivered(site.send())


def test_one_process_when_asked(site: Site) -> None:
    with site.serve("--processes", "1") as server:
        uid = site.send()
        site.delivered(uid)
        assert children(server.pid) == []
        assert "worker process" not in site.log.read_text()


def test_bad_process_count_is_refused_in_one_line(site: Site) -> None:
    done = subprocess.run(
        [str(BIN / "cloudsms"), "serve", "--processes", "3"], env=site.env, cwd=site.dir,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0
    assert "processes must be one of auto, 1, 2, not '3'" in done.stderr
    assert "Traceback" not in done.stderr
    done = subprocess.run(
        [str(BIN / "cloudsms"), "serve", "--processes", "2", "--role", "api"], env=site.env,
        cwd=site.dir, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0 and "processes 2 runs role all" in done.stderr


@pytest.mark.parametrize(
    ("url", "role", "processes", "cores", "expected"),
    [
        ("sqlite:///x.db", "all", "auto", 2, 2),
        ("sqlite:///x.db", "all", "auto", 1, 1),
        ("sqlite:///x.db", "api", "auto", 4, 1),
        ("sqlite:///:memory:", "all", "auto", 4, 1),
        ("postgresql://u@h/db", "all", "auto", 4, 2),
        ("postgresql://u@h/db", "all", "auto", 1, 1),
        ("postgresql://u@h/db", "all", "2", 4, 2),
        ("sqlite:///x.db", "all", "1", 4, 1),
    ],
)
def test_process_count(url: str, role: str, processes: str, cores: int, expected: int) -> None:
    settings = Settings(database_url=url, role=role, processes=processes)
    assert process_count(settings, cores=cores) == expected


def test_process_count_refusals() -> None:
    with pytest.raises(ConfigError, match="not :memory:"):
        process_count(Settings(database_url="sqlite:///:memory:", processes="2"))


class PipeEnd:
    """The worker's dispatcher as the pipes see it: wake-ups, room, messages received."""

    def __init__(self, room: LocalClaim | None) -> None:
        self.woken = asyncio.Event()
        self.room = room
        self.messages: list[OutboundMessage] = []
        self.claimers: set[int] = set()

    def wake(self) -> None:
        self.woken.set()

    def local_claim(self) -> LocalClaim | None:
        return self.room

    def take_remote(self, claimer: int, messages: list[OutboundMessage]) -> None:
        self.claimers.add(claimer)
        self.messages += messages

    @property
    def uids(self) -> list[str]:
        return [m.sms_uid for m in self.messages]

    @property
    def remote_received(self) -> int:
        return len(self.uids)


async def test_accepted_packets_wake_the_worker_over_the_pipe() -> None:
    worker = WorkerProcess({}, argv=["true"])
    end = PipeEnd(None)
    fd = int(worker.env[WAKE_ENV])
    listener = wake_listener(end, {WAKE_ENV: str(fd)})
    assert listener is not None and wake_listener(None, {WAKE_ENV: str(fd)}) is None
    await listener.start()
    try:
        for _ in range(3):  # several accepts in one loop iteration: one byte
            worker.wake()
        await asyncio.wait_for(end.woken.wait(), 5)
    finally:
        await listener.stop()
        await worker.stop()


async def test_claims_for_the_worker_follow_its_room_and_reach_it_over_the_pipe() -> None:
    """The worker reports its room; the API side claims no more than that, minus what is on
    its way; the messages arrive whole, however the pipe splits them."""
    worker = WorkerProcess({}, argv=["sleep", "30"])
    end = PipeEnd(LocalClaim(claimer=7, limit=5))
    env = {WAKE_ENV: worker.env[WAKE_ENV], ROOM_ENV: worker.env[ROOM_ENV]}
    listener = wake_listener(end, env)
    assert listener is not None
    await worker.start()
    await listener.start()
    try:

        async def claim() -> LocalClaim | None:
            for _ in range(100):
                if worker.local_claim() is not None:
                    break
                await asyncio.sleep(0.02)
            return worker.local_claim()

        assert await claim() == LocalClaim(claimer=7, limit=5)
        # A newline or a NUL in a message's text cannot cut its line on the pipe.
        sent = [_message(f"U{i:04d}", "line\nbreak\0 ü€" * i) for i in range(3)]
        worker.take_claimed(sent)
        assert worker.local_claim() == LocalClaim(claimer=7, limit=2)  # 3 on their way
        for _ in range(100):
            if len(end.uids) == 3:
                break
            await asyncio.sleep(0.02)
        assert end.uids == ["U0000", "U0001", "U0002"]
        assert end.messages == sent and end.claimers == {7}  # whole, under the claim it named
        end.room = None  # no room (a backlog to claim first): nothing is claimed for it
        for _ in range(100):
            if worker.local_claim() is None:
                break
            await asyncio.sleep(0.02)
        assert worker.local_claim() is None
        many = [_message(f"L{i:06d}" + "x" * 20) for i in range(5000)]  # more than a pipe holds
        end.room = LocalClaim(claimer=7, limit=5000)
        worker.take_claimed(many)
        for _ in range(500):
            if len(end.uids) == 5003:
                break
            await asyncio.sleep(0.02)
        assert end.uids[3:] == [m.sms_uid for m in many]
    finally:
        await listener.stop()
        await worker.stop()


def _message(uid: str, content: str = "hi") -> OutboundMessage:
    return OutboundMessage(uid, 1, 852, "61234567", "R", "S", content, "gsm7", 1, 0, 1, 0)
